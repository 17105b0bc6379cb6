"""Verification of a built venv before the swap: its interpreter starts, every top-level
module of the old package set imports, every console script's entry point loads and its
shebang names an interpreter the venv has.

This runs the *new* tree's interpreter (built by venvkeeper from known sources, or the
original's own files for a relink), as the venv's owner, with a minimal environment,
``-I`` (no PYTHON* variables, no user site, no script directory), ``-B`` (no bytecode
written: verifying leaves no trace) and a timeout.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Optional

from venvkeeper.errors import worker_failed
from venvkeeper.host import fsutil
from venvkeeper.host.trust import TrustCache, user_name
from venvkeeper.model.venv import VenvFacts
from venvkeeper.predict.seeds import SeedNeeds
from venvkeeper.repair.backends import Run
from venvkeeper.repair.transaction import RepairError
from venvkeeper.repair.work import Log, Work
from venvkeeper.scan.deep import importable_names, interpreter_distrust, venv_distrust
from venvkeeper.textutil import canonical_name

MAX_MODULES = 2000
#: Most interpreters importing at once during a verification.
PARALLEL = 4

# Runs inside the new venv (CPython 3.8+). Input on stdin: {"modules": [...], "dists": [...]}.
_PROBE = r"""
import importlib, json, re, sys
try:
    from importlib import metadata
except ImportError:
    metadata = None
want = json.loads(sys.stdin.read())
failed, scripts = [], []
for m in want["modules"]:
    try:
        importlib.import_module(m)
    except BaseException as e:
        failed.append([m, (type(e).__name__ + ": " + str(e))[:300]])
names = set(want["dists"])
if metadata is not None:
    for d in metadata.distributions():
        n = re.sub(r"[-_.]+", "-", (d.metadata["Name"] or "")).lower()
        if n not in names:
            continue
        for ep in d.entry_points:
            if ep.group not in ("console_scripts", "gui_scripts"):
                continue
            try:
                ep.load()
            except BaseException as e:
                scripts.append([ep.name, (type(e).__name__ + ": " + str(e))[:300]])
sys.stdout.write("\n@@venvkeeper@@" + json.dumps({"failed": failed, "scripts": scripts,
    "version": "%d.%d" % sys.version_info[:2], "prefix": sys.prefix}))
"""


def modules(
    facts: VenvFacts, skip: Sequence[str] = (), seeds: Optional[SeedNeeds] = None
) -> list[str]:
    """Top-level importable names of the venv's packages (*skip*: ``name==version`` specs
    left to the seed, e.g. pip). A seed's modules are asked for only as far as the venv
    used them: ``pkg_resources`` only when something used it (*seeds*), since the nearest
    setuptools that works on a new Python may not have it."""
    dists = [d for d in facts.distributions if d.placeholder is None]  # left out of rebuilds
    names = importable_names(dists, (s.split("==")[0] for s in skip), MAX_MODULES)
    if seeds is not None and not seeds.pkg_resources:
        names = [n for n in names if n != "pkg_resources"]
    return names


def _shebang(path: str) -> Optional[str]:
    """The interpreter the script *path* names (a regular file, not a link: opened as
    :func:`fsutil.open_regular` does, so a FIFO never blocks)."""
    head = fsutil.read_head(path, 512, follow_links=False)
    if head is None or not head.startswith(b"#!"):
        return None
    line = head[2:].split(b"\n", 1)[0].strip()
    if line in (b"/bin/sh", b"/bin/bash", b"/usr/bin/env sh") or line.endswith(b"/sh"):
        # The exec trick for long paths: the interpreter is on the second line.
        rest = head.split(b"\n")[1:3]
        for r in rest:
            if b"exec" in r:
                parts = r.replace(b"'", b" ").replace(b'"', b" ").split()
                for p in parts:
                    if p.startswith(b"/") and b"/bin/python" in p:
                        return os.fsdecode(p)
        return None
    return os.fsdecode(line.split()[0]) if line else None


def check_scripts(tree: str, final: str) -> list[str]:
    """Scripts in *tree*/bin whose shebang names the venv (at its *final* path) but an
    interpreter name the venv lacks."""
    bad: list[str] = []
    prefix = final.rstrip("/") + "/bin/"
    try:
        names = sorted(os.listdir(os.path.join(tree, "bin")))
    except OSError:
        return [f"{tree}/bin unreadable"]
    for n in names:
        p = os.path.join(tree, "bin", n)
        interp = _shebang(p)  # None for a link, a FIFO, anything but a regular file
        if interp is None or not interp.startswith(prefix):
            continue
        if not os.path.lexists(os.path.join(tree, "bin", interp[len(prefix) :])):
            bad.append(f"{n} (#!{interp})")
    return bad


def _probe(run: Run, argv: Sequence[str], payload: str) -> dict[str, Any]:
    done = run(argv, 300, payload)
    marker = done.stdout.rfind("@@venvkeeper@@")
    if done.returncode != 0 or marker < 0:
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise RepairError(
            f"verification: the new interpreter failed (exit {done.returncode}): {tail}"
        )
    try:
        data = fsutil.load_json(done.stdout[marker + len("@@venvkeeper@@") :] or "{}")
    except ValueError as e:
        raise RepairError(f"verification: unreadable probe output ({e})") from e
    return data if isinstance(data, dict) else {}


def verify(
    tree: str,
    final: str,
    mods: Sequence[str],
    dists: Sequence[str],
    run: Run,
    *,
    minor: Optional[str] = None,
    imports: bool = True,
) -> None:
    """Raise :class:`RepairError` unless the venv built at *tree* (to live at *final*)
    works. *imports* False only starts the interpreter (used when the tree's own code
    must not run as root: see the caller)."""
    python = os.path.join(tree, "bin", "python")
    if not os.path.lexists(python):
        python = os.path.join(tree, "bin", "python3")
    if not imports:
        argv = [python, "-I", "-S", "-c", "import sys; sys.stdout.write('\\n@@venvkeeper@@{}')"]
        results = [_probe(run, argv, "")]
    else:
        # Importing is mostly compiling: the modules are shared among a few interpreters
        # running at once (one per CPU, at most PARALLEL), and so are the console scripts.
        argv = [python, "-I", "-B", "-c", _PROBE]  # -B: verifying leaves no bytecode behind
        n = max(1, min(PARALLEL, os.cpu_count() or 1, (len(mods) + 7) // 8))
        parts = [list(mods[k::n]) for k in range(n)]
        payloads = [
            json.dumps({"modules": part, "dists": list(dists[k::n])})
            for k, part in enumerate(parts)
        ]
        with ThreadPoolExecutor(max_workers=n) as pool:
            try:
                results = list(pool.map(lambda p: _probe(run, argv, p), payloads))
            except RepairError:
                raise
            except Exception as e:  # a worker's bug fails this repair, said in one line
                raise RepairError(f"verification: {worker_failed(e, 'a probe')}") from e
    problems: list[str] = []
    for data in results:
        problems += [f"import {m}: {why}" for m, why in data.get("failed", [])]
        problems += [f"script {n}: {why}" for n, why in data.get("scripts", [])]
        version = data.get("version")
        if minor and version and version != minor.rstrip("t"):
            problems.append(f"the interpreter runs {version}, not {minor}")
    problems += [f"script {s} names a missing interpreter" for s in check_scripts(tree, final)]
    if problems:
        more = f"; and {len(problems) - 5} more" if len(problems) > 5 else ""
        shown = "; ".join(problems[:5]) + more
        raise RepairError(f"verification failed: {shown}")


def verify_built(work: Work, log: Log, new: str) -> None:
    """Verify the tree *work* built at *new* (:func:`verify`), run as the user the job runs
    as, only as far as the one trust rule allows (the question ``--deep`` asks:
    :func:`venv_distrust`): its interpreter must be trusted, or nothing runs and the
    repair fails; when something it would import is not (a site directory others can
    write, a .pth adding a directory of another user's), the interpreter only starts
    (``-I -S``) and the imports are not verified, said in *log*."""
    plan = work.plan
    uid = work.uid
    cache = TrustCache()
    python = os.path.join(new, "bin", "python")
    if not os.path.lexists(python):
        python = os.path.join(new, "bin", "python3")
    bad = interpreter_distrust(python, uid, cache)
    if bad is not None:
        raise RepairError(
            f"verification not run: {bad}: another user could change what it would run"
            f" as {user_name(uid)}"
        )
    untrusted = venv_distrust(new, uid, cache)
    if untrusted is not None:
        log.note(f"imports not verified: {untrusted}")
    verify(
        new,
        work.in_root(work.dest),
        modules(work.rep.facts, plan.skipped, seeds=work.seeds),
        [canonical_name(r.name) for r in plan.packages],
        work.run,
        minor=plan.target.version if plan.target else None,
        imports=untrusted is None,
    )
