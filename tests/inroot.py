"""venvkeeper and the ground truth inside a Debian root (tests/debroot.py).

venvkeeper runs there as a user of that release would run it: its source copied to
/opt/venvkeeper-src and run by the root's own python3 (3.9 to 3.14) with Debian's
python3-packaging. The venvs there link to the root's /usr/bin/python3, which only exists as
such inside it.

:func:`probe` is the ground truth: each venv run in the root (an import of its modules,
its console scripts, its own ``pip freeze``), by a script the root's python3 runs.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Optional

from debroot import chroot_run

from conftest import json_kind, validate_json

SRC = Path(__file__).resolve().parent.parent / "src" / "venvkeeper"
VK_ENV = {"PYTHONPATH": "/opt/venvkeeper-src", "VENVKEEPER_DB": "/var/tmp/venvkeeper.db"}
PROBE_PATH = "/opt/probe.py"
JOBS_PATH = "/opt/jobs.py"

#: Run by the root's python3 (3.9 and later) on a JSON list of venvs on stdin: does each
#: import its modules and run its console scripts (each must print what is expected), and
#: what does its own pip freeze (the seeds, Debian's pkg-resources placeholder and pip's
#: option lines left out)?
PROBE = r"""
import json, subprocess, sys
from concurrent.futures import ThreadPoolExecutor

SKIP = ("pip==", "setuptools==", "wheel==", "distribute==", "pkg-resources==0.0.0",
        "pkg_resources==0.0.0")


def run(argv):
    try:
        p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           universal_newlines=True, timeout=300, stdin=subprocess.DEVNULL)
        return p.returncode, p.stdout.strip()
    except (OSError, subprocess.TimeoutExpired) as e:
        return -1, str(e)


def probe(v):
    py = v["path"] + "/bin/python"
    why = []
    code, text = run([py, "-c", "import " + ", ".join(v["modules"])])
    if code:
        why.append("import: " + text[-400:])
    for script, want in v["scripts"]:
        code, text = run([v["path"] + "/bin/" + script])
        if code or text != want:
            why.append(script + ": " + text[-400:])
    frozen = None
    if v["freeze"]:
        code, text = run([py, "-m", "pip", "freeze", "--local"])
        if code == 0:
            frozen = sorted(x for x in text.splitlines()
                            if x and not x.startswith(("#", "-f ", "-i ", "--"))
                            and not x.lower().startswith(SKIP))
    return v["path"], {"runs": not why, "why": why, "freeze": frozen}


with ThreadPoolExecutor(4) as pool:
    print(json.dumps(dict(pool.map(probe, json.load(sys.stdin)))))
"""


#: Run by the root's python3 on {"jobs": {name: [argv, ...]}, "env": {...}, "workers": N}:
#: each job's commands one after the other (stopping at the first that fails), the jobs N
#: at a time (making venvs is mostly waiting on pip and ensurepip: two cores do two).
JOBS = r"""
import json, os, subprocess, sys
from concurrent.futures import ThreadPoolExecutor

spec = json.load(sys.stdin)
env = dict(os.environ, **spec["env"])


def job(item):
    name, argvs = item
    out = []
    for argv in argvs:
        try:
            p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env,
                               universal_newlines=True, timeout=900, stdin=subprocess.DEVNULL)
            code, text = p.returncode, p.stdout
        except (OSError, subprocess.TimeoutExpired) as e:
            code, text = -1, str(e)
        out.append(text)
        if code:
            return name, [code, "$ " + " ".join(argv) + "\n" + "".join(out)[-3000:]]
    return name, [0, ""]


with ThreadPoolExecutor(spec["workers"]) as pool:
    print(json.dumps(dict(pool.map(job, spec["jobs"].items()))))
"""


def install(root: Path) -> None:
    """venvkeeper's source, the probe and the job runner, into *root*."""
    shutil.copytree(
        SRC, root / "opt/venvkeeper-src/venvkeeper", ignore=shutil.ignore_patterns("__pycache__")
    )
    (root / PROBE_PATH.lstrip("/")).write_text(PROBE)
    (root / JOBS_PATH.lstrip("/")).write_text(JOBS)


def run_jobs(
    root: Path,
    jobs: Mapping[str, Sequence[Sequence[str]]],
    env: Optional[Mapping[str, str]] = None,
    workers: int = 2,
) -> None:
    """Each job of *jobs* (name -> its commands, run in order) in *root*, *workers* jobs
    at a time, in one chroot; any failure fails the test with the job's output."""
    spec = {"jobs": {k: [list(a) for a in v] for k, v in jobs.items()}, "workers": workers}
    spec["env"] = dict(env or {})
    out = chroot_run(root, ["python3", JOBS_PATH], input=json.dumps(spec), timeout=3600)
    failed = {k: v[1] for k, v in json.loads(out.stdout).items() if v[0]}
    assert not failed, "\n".join(f"{k}:\n{v}" for k, v in failed.items())


def vk(
    root: Path, *args: str, env: Optional[Mapping[str, str]] = None, timeout: float = 1800
) -> tuple[int, Any]:
    """``venvkeeper ARGS --json`` inside *root* by its python3: (exit code, the document,
    checked against its kind's schema)."""
    argv = ["python3", "-m", "venvkeeper", *args, "--json"]
    res = chroot_run(root, argv, {**VK_ENV, **(env or {})}, check=False, timeout=timeout)
    if res.returncode not in (0, 1, 2, 3) or not res.stdout.startswith("{"):
        raise AssertionError(f"venvkeeper {args} failed ({res.returncode}):\n{res.stderr}")
    return res.returncode, validate_json(json_kind(args), res.stdout)


def probe(root: Path, venvs: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """Each of *venvs* (``path``, ``modules``, ``scripts``: [(name, output)], ``freeze``)
    run in *root*: path -> ``runs``, ``why`` (what failed), ``freeze`` (None unless asked,
    or when pip failed)."""
    out = chroot_run(root, ["python3", PROBE_PATH], input=json.dumps(list(venvs)), timeout=1800)
    result: dict[str, dict[str, Any]] = json.loads(out.stdout)
    return result
