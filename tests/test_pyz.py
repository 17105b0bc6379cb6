"""The zipapp (tools/build_pyz.py, ``./dev.sh pyz``): built once per session from the
registry's wheels (cached), then run from its zip by every CPython 3.9-3.13 the machine has,
isolated (``-I``, no PYTHONPATH, nothing of the dev venv), against real venvs whose truth
comes from running them."""

from __future__ import annotations

import json
import os
import pty
import re
import select
import subprocess
import sys
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest

import venvkeeper

from conftest import base_status, find_python, validate_json
from factory import break_venv, clean_env, make_venv, run_in_venv, system_venv

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
BUILDER = ROOT / "tools" / "build_pyz.py"
MINORS = ("3.9", "3.10", "3.11", "3.12", "3.13")
#: What the archive carries besides venvkeeper (tomli for 3.9 and 3.10).
BUNDLED = ("packaging", "prometheus_client", "tomli")


@pytest.fixture(scope="session")
def pyz(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The archive, built by the real builder (wheels from the registry, or its cache)."""
    out = tmp_path_factory.mktemp("pyz") / "venvkeeper.pyz"
    res = subprocess.run(
        [sys.executable, str(BUILDER), "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"},
    )
    if res.returncode == 3:
        pytest.skip(f"offline and no cached wheels: {res.stderr.strip()}")
    assert res.returncode == 0, res.stderr
    assert f"{out}: " in res.stdout and "bytes" in res.stdout  # it prints its size
    return out


@dataclass(frozen=True)
class Venvs:
    root: Path
    ok: Path  # on the OS's Python: ok
    broken: Path  # its bin/python points at nothing: critical


@pytest.fixture(scope="module")
def venvs(tmp_path_factory: pytest.TempPathFactory) -> Venvs:
    root = tmp_path_factory.mktemp("pyz-world")
    ok = system_venv(root / "ok")
    broken = system_venv(root / "broken")
    break_venv(broken)
    return Venvs(root, ok, broken)


def run_env(tmp: Path) -> dict[str, str]:
    """No PYTHONPATH, no configuration of the host's, a private inventory."""
    cfg = tmp / "empty.toml"
    cfg.write_text("")
    env = clean_env(VENVKEEPER_CONFIG=str(cfg), VENVKEEPER_DB=str(tmp / "inventory.db"))
    assert not any(k.startswith("PYTHON") for k in env)
    return env


def run_pyz(
    python: Path, pyz: Path, tmp: Path, *args: str, verbose: bool = False
) -> subprocess.CompletedProcess[str]:
    argv = [str(python), "-I", *(["-v"] if verbose else []), str(pyz), *args]
    return subprocess.run(
        argv, capture_output=True, text=True, timeout=120, env=run_env(tmp), cwd="/"
    )


def imports(stderr: str) -> dict[str, str]:
    """What -v (PYTHONVERBOSE) says of each imported module: how it was loaded (3.9:
    ``import m # loaded from Zip PATH``; 3.10+: ``import 'm' # <zipimporter object "PATH/">``)."""
    return dict(re.findall(r"^import '?([\w.]+)'? # (.+)$", stderr, re.M))


def files_read(stderr: str) -> list[str]:
    """The files -v says code came from (source, bytecode, extension modules)."""
    return re.findall(r"^# code object from '?(.+?)'?$", stderr, re.M) + re.findall(
        r"^# extension module '[\w.]+' loaded from '(.+)'$", stderr, re.M
    )


def assert_only_stdlib_and(pyz: Path, python: Path, stderr: str) -> None:
    """venvkeeper and every dependency came from the archive, everything else from the
    interpreter's own installation (its stdlib, and what its site module runs from the
    .pth files of its own site-packages): nothing from the dev venv or this checkout."""
    prefix = subprocess.run(
        [str(python), "-I", "-c", "import sys; print(sys.base_prefix)"],
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout.strip()
    got = imports(stderr)
    assert "venvkeeper.cli" in got, stderr[-2000:]
    for name, how in got.items():
        if name.split(".")[0] in ("venvkeeper", *BUNDLED):
            assert str(pyz) in how, (name, how)
    dev = (sys.prefix, str(ROOT))
    for f in files_read(stderr):
        assert f.startswith(f"{prefix}/lib/") and not f.startswith(dev), f


@pytest.fixture(params=MINORS)
def python(request: pytest.FixtureRequest) -> Path:
    exe = find_python(request.param)
    if exe is None:
        pytest.skip(f"CPython {request.param} is not installed on this machine (pyenv or PATH)")
    return exe


def by_path(doc: dict[str, object]) -> dict[str, dict[str, object]]:
    return {v["path"]: v for v in doc["venvs"]}  # type: ignore[attr-defined,index]


def test_scan_json_on_every_python(pyz: Path, venvs: Venvs, python: Path, tmp_path: Path) -> None:
    own = make_venv(python, venvs.root / f"own-{python.name}")
    try:
        res = run_pyz(python, pyz, tmp_path, "scan", "--json", str(venvs.root), verbose=True)
        assert res.returncode == 2, res.stderr[-2000:]  # a critical venv: exit 2
        assert_only_stdlib_and(pyz, python, res.stderr)
        got = by_path(validate_json("scan", res.stdout))
        # ground truth: run each venv's interpreter
        assert run_in_venv(venvs.ok, "import sys").returncode == 0
        assert run_in_venv(own, "import sys").returncode == 0
        assert run_in_venv(venvs.broken, "import sys").returncode != 0
        assert got[str(venvs.ok)]["status"] == "ok", got[str(venvs.ok)]
        assert got[str(venvs.broken)]["status"] == "critical"
        codes = {f["code"] for f in got[str(venvs.broken)]["findings"]}  # type: ignore[attr-defined]
        assert "interpreter-dangling" in codes, codes
        # a venv of this very interpreter runs: sound (a warning on an unmanaged base)
        assert got[str(own)]["status"] == base_status(python), got[str(own)]
    finally:
        import shutil

        shutil.rmtree(own)


def test_colour_table_prometheus_and_restarts_on_every_python(
    pyz: Path, venvs: Venvs, python: Path, tmp_path: Path
) -> None:
    # the table, in colour (SGR codes) because its output is a terminal
    out, code = run_in_pty([str(python), "-I", str(pyz), "scan", str(venvs.root)], tmp_path)
    assert code == 2, out
    assert "\x1b[" in out, out
    plain = re.sub(r"\x1b\[[0-9;]*m", "", out)
    assert "critical" in plain and str(venvs.broken.name) in plain, plain

    # the Prometheus export (prometheus_client's renderer)
    prom = tmp_path / "venvkeeper.prom"
    res = run_pyz(python, pyz, tmp_path, "export", "--prometheus", str(prom), str(venvs.root))
    assert res.returncode == 0, res.stderr
    text = prom.read_text()
    assert (
        f'venvkeeper_venv_status{{creator="venv",path="{venvs.broken}",python="",'
        f'status="critical"}} 1.0'
    ) in text, text
    assert "# TYPE venvkeeper_venvs gauge" in text

    # restarts: a process of a venv whose module changed under it
    v = make_venv(python, tmp_path / "app")
    site = next(v.glob("lib/python3.*/site-packages"))
    body = "import sys, time\nprint('ready', flush=True)\ntime.sleep(120)\n"
    (site / "sleepmod.py").write_text(body)
    p = subprocess.Popen(
        [str(v / "bin" / "python"), "-m", "sleepmod"],
        stdout=subprocess.PIPE,
        text=True,
        env=clean_env(),
        cwd="/",
    )
    try:
        assert p.stdout is not None and p.stdout.readline().strip() == "ready"
        time.sleep(0.3)  # the change comes clearly after the start
        new = site / "sleepmod.py.new"
        new.write_text(body + "# v2\n")
        os.replace(new, site / "sleepmod.py")
        res = run_pyz(python, pyz, tmp_path, "restarts", "--json")
        assert res.returncode in (0, 1, 2), res.stderr
        procs = {q["pid"]: q for q in validate_json("restarts", res.stdout)["processes"]}
        assert p.pid in procs, res.stdout[-3000:]
        assert "venv-changed" in json.dumps(procs[p.pid]), procs[p.pid]
    finally:
        p.kill()
        p.wait()
        assert p.stdout is not None
        p.stdout.close()


def run_in_pty(argv: list[str], tmp: Path) -> tuple[str, int]:
    """Run *argv* with a terminal as its stdout and stderr; (what it wrote, exit code)."""
    master, slave = pty.openpty()
    env = {**run_env(tmp), "TERM": "xterm", "COLUMNS": "200"}
    p = subprocess.Popen(argv, stdout=slave, stderr=slave, env=env, cwd="/")
    os.close(slave)
    chunks = []
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 1)
            if ready:
                try:
                    data = os.read(master, 65536)
                except OSError:  # EIO: the child closed the terminal
                    break
                if not data:
                    break
                chunks.append(data)
            elif p.poll() is not None:
                break
        code = p.wait(timeout=60)
    finally:
        os.close(master)
        if p.poll() is None:
            p.kill()
            p.wait()
    return b"".join(chunks).decode("utf-8", "replace"), code


def test_runs_by_its_shebang_on_the_os_python(pyz: Path, venvs: Venvs, tmp_path: Path) -> None:
    """``./venvkeeper.pyz`` as a user runs it: /usr/bin/env python3 from a plain PATH; with
    PYTHONVERBOSE the interpreter tells where every module came from. It needs no home and
    writes nothing beside itself."""
    assert pyz.read_bytes().startswith(b"#!/usr/bin/env python3\n")
    assert os.access(pyz, os.X_OK)
    res = subprocess.run(
        ["./venvkeeper.pyz", "--version"],
        capture_output=True,
        text=True,
        timeout=60,
        env=run_env(tmp_path),
        cwd=pyz.parent,
    )
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == f"venvkeeper {venvkeeper.__version__}"
    # no home to write to (root's timer runs with ProtectHome=): nothing is extracted
    env = {**run_env(tmp_path), "PYTHONVERBOSE": "1", "HOME": "/nonexistent"}
    res = subprocess.run(
        [str(pyz), "scan", "--json", str(venvs.root)],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd="/",
    )
    assert res.returncode == 2, res.stderr[-2000:]
    assert by_path(validate_json("scan", res.stdout))[str(venvs.ok)]["status"] == "ok"
    system = subprocess.run(
        ["/usr/bin/env", "python3", "-c", "import sys; print(sys.executable)"],
        capture_output=True,
        text=True,
        timeout=60,
        env=run_env(tmp_path),
    ).stdout.strip()
    assert_only_stdlib_and(pyz, Path(system), res.stderr)
    assert sorted(os.listdir(pyz.parent)) == [pyz.name]


def test_bundled_libraries_work_from_the_zip(pyz: Path, python: Path) -> None:
    """Each dependency imports from the archive (first on sys.path, as when it runs), and
    the parts that could read data files beside their modules work there: the
    Prometheus text renderer, packaging's specifiers, the distributions' metadata."""
    code = f"""
import importlib, importlib.metadata, json, sys
sys.path.insert(0, {str(pyz)!r})
files = {{m: importlib.import_module(m).__file__ for m in {BUNDLED!r}}}
from prometheus_client import CollectorRegistry, Gauge, generate_latest
from packaging.specifiers import SpecifierSet
reg = CollectorRegistry()
Gauge("g", "a gauge", registry=reg).set(1)
out = generate_latest(reg).decode() + str(SpecifierSet(">=3.9").contains("3.12"))
versions = {{d: importlib.metadata.version(d) for d in ("packaging", "prometheus_client")}}
print(json.dumps({{"files": files, "out": out, "versions": versions}}))
"""
    res = subprocess.run(
        [str(python), "-I", "-c", code],
        capture_output=True,
        text=True,
        timeout=120,
        env=clean_env(),
    )
    assert res.returncode == 0, res.stderr
    doc = json.loads(res.stdout)
    for mod, f in doc["files"].items():
        assert f.startswith(f"{pyz}/{mod}/"), (mod, f)
    assert "g 1.0" in doc["out"] and doc["out"].endswith("True")
    names = set(zipfile.ZipFile(pyz).namelist())
    for dist, version in doc["versions"].items():
        assert f"{dist}-{version}.dist-info/METADATA" in names
    # colour is venvkeeper's own SGR codes: no terminal library is inside
    assert not [n for n in names if n.split("/")[0] in ("rich", "pygments", "markdown_it")]


def test_archive_contents_and_reproducibility(pyz: Path, tmp_path: Path) -> None:
    """Licences of everything bundled are in; bytecode, scripts and pip's records are not;
    a second build gives the same bytes."""
    names = zipfile.ZipFile(pyz).namelist()
    assert "__main__.py" in names and "LICENSE" in names
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]
    assert not [n for n in names if n.startswith("bin/") or n.endswith("/RECORD")]
    infos = {n.split("/")[0] for n in names if ".dist-info/" in n}
    assert len(infos) >= len(BUNDLED), infos
    for info in infos:
        assert any(n.startswith(f"{info}/") and "LICENSE" in n.upper() for n in names), info
    again = tmp_path / "again.pyz"
    res = subprocess.run(
        [sys.executable, str(BUILDER), "--offline", "--out", str(again)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert res.returncode == 0, res.stderr
    assert again.read_bytes() == pyz.read_bytes()


def test_an_old_python_gets_one_line(pyz: Path, tmp_path: Path) -> None:
    old = find_python("3.8")
    if old is None:
        pytest.skip("CPython 3.8 is not installed on this machine (pyenv or PATH)")
    res = run_pyz(old, pyz, tmp_path, "--version")
    assert res.returncode == 1
    assert res.stderr.strip().startswith("venvkeeper: needs CPython 3.9 or newer, this is 3.8")
    assert "Traceback" not in res.stderr


def test_offline_without_cached_wheels_is_one_clear_line(tmp_path: Path) -> None:
    """What the session fixture skips on: exit 3 and a line naming the wheel cache."""
    empty, out = tmp_path / "wheels", tmp_path / "x.pyz"
    res = subprocess.run(
        [sys.executable, str(BUILDER), "--offline", "--wheels", str(empty), "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert res.returncode == 3, res.stderr
    assert res.stderr.startswith("build_pyz: the wheels of packaging") and str(empty) in res.stderr
    assert "Traceback" not in res.stderr and len(res.stderr.splitlines()) == 1
    assert not list(tmp_path.glob("*.pyz")) and not list(tmp_path.glob(".*part"))
