"""``venvkeeper repair`` (a rebuild) against the floor: ``uv venv`` plus ``uv pip install``
of the same pinned set by hand, and against venvkeeper's pip backend.

    python bench/repair.py [--runs 5] [--old 3.11] [--new 3.12]

Downloads (once, into .dev/bench-wheels) wheels of a typical web-service set of about 30
distributions for both minors, makes a venv of them on CPython OLD (pyenv), then times:

- floor: ``uv venv --python NEW`` + ``uv pip install --offline --find-links WH -r pins``
  (the very pins the venv holds), into a fresh directory;
- venvkeeper (uv): ``venvkeeper repair --python NEW --offline --find-links WH`` of a fresh
  copy of the venv: inspect, plan, build beside, install, verify (every top-level module
  imported, every console script's entry point loaded), swap, backup;
- venvkeeper (pip): the same with ``--backend pip``;
- prefetch: ``venvkeeper wheelhouse`` of the same venv made through a ``python3`` link that
  then moves from OLD to NEW (the silent upgrade): the wheels of every pin for NEW, fetched
  with pip from the wheelhouse into a fresh directory.

Each after one untimed warm-up (the uv cache holds the wheels: a warm cache for every
contender); the median of ``--runs`` runs is reported.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

from conftest import find_python  # noqa: E402

VENVKEEPER = Path(sys.executable).parent / "venvkeeper"
UV = shutil.which("uv") or str(Path(sys.executable).parent / "uv")

#: A typical service: web framework, HTTP client, ORM, CLI, YAML, dates, two compiled ones.
PACKAGES = [
    "flask==3.0.3",
    "requests==2.32.3",
    "sqlalchemy==2.0.36",
    "click==8.1.7",
    "pyyaml==6.0.2",
    "python-dateutil==2.9.0.post0",
    "rich==13.9.4",
    "attrs==24.2.0",
    "jsonschema==4.23.0",
    "packaging==24.2",
    "psutil==6.1.0",
    "tabulate==0.9.0",
    "gunicorn==23.0.0",
]


def sh(*argv: object, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    res = subprocess.run([str(a) for a in argv], capture_output=True, text=True, env=env)
    if res.returncode != 0:
        sys.exit(f"{argv} failed:\n{res.stdout}\n{res.stderr}")
    return res


def env() -> dict[str, str]:
    return {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": "/root",
        "LANG": "C.UTF-8",
        "UV_CACHE_DIR": "/tmp/vk-bench-uv-cache",
        "UV_NO_CONFIG": "1",
        "PIP_CONFIG_FILE": "/dev/null",
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
    }


def wheelhouse(root: Path, minors: list[str]) -> Path:
    wh = root / ".dev" / "bench-wheels"
    stamp = wh / (".done-" + "-".join(minors))
    if stamp.exists():
        return wh
    wh.mkdir(parents=True, exist_ok=True)
    for m in minors:
        sh(
            sys.executable,
            "-m",
            "pip",
            "download",
            "-q",
            "-d",
            wh,
            "--only-binary=:all:",
            "--python-version",
            m,
            *PACKAGES,
            env={**env(), "PIP_CONFIG_FILE": "/dev/null"},
        )
    stamp.touch()
    return wh


def timed(argv: list[object]) -> float:
    t0 = time.perf_counter()
    sh(*argv, env=env())
    return time.perf_counter() - t0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--old", default="3.11")
    ap.add_argument("--new", default="3.12")
    args = ap.parse_args()
    old, new = find_python(args.old), find_python(args.new)
    if old is None or new is None:
        sys.exit(f"bench/repair.py: needs CPython {args.old} and {args.new} (pyenv)")
    wh = wheelhouse(HERE.parent, [args.old, args.new])
    root = Path(tempfile.mkdtemp(prefix="vk-bench-repair-"))
    try:
        template = root / "template"
        sh(UV, "venv", "-q", "--python", old, template, env=env())
        sh(
            UV,
            "pip",
            "install",
            "-q",
            "--python",
            template / "bin" / "python",
            "--offline",
            "--find-links",
            wh,
            *PACKAGES,
            env=env(),
        )
        freeze = sh(UV, "pip", "freeze", "--python", template / "bin" / "python", env=env()).stdout
        pins = root / "pins.txt"
        pins.write_text(freeze)
        n = len(freeze.split())
        src = ["--offline", "--find-links", wh]

        def floor(i: int) -> float:
            d = root / f"floor-{i}"
            return timed([UV, "venv", "-q", "--python", new, d]) + timed(
                [UV, "pip", "install", "-q", "--python", d / "bin" / "python", *src, "-r", pins]
            )

        mods = sorted(
            {
                line.split("/")[0].split(",")[0].removesuffix(".py").split(".cpython")[0]
                for rec in (template / "lib").glob("python*/site-packages/*.dist-info/RECORD")
                for line in rec.read_text().splitlines()
                if not line.startswith(("../", "__")) and ".dist-info" not in line.split(",")[0]
            }
            - {"pip", "setuptools", "_distutils_hack", "pkg_resources", "wheel"}
        )
        mods = [m for m in mods if m.isidentifier() and not m.startswith("_")]

        def floor_verified(i: int) -> float:
            d = root / f"floor-{i}"  # what a verified rebuild pays: the same imports
            return floor(i) + timed(
                [d / "bin" / "python", "-I", "-B", "-c", "import " + ",".join(mods)]
            )

        def ours(i: int, backend: str) -> float:
            d = root / f"{backend}-{i}" / "app"
            d.parent.mkdir()
            sh("cp", "-a", template, d)
            return timed(
                [VENVKEEPER, "repair", "-q", "--backend", backend, "--python", new, *src, d]
            )

        rows: dict[str, list[float]] = {
            "floor (uv venv + uv pip install)": [],
            "floor + importing every module once": [],
            "venvkeeper repair (uv)": [],
            "venvkeeper repair (pip)": [],
        }
        # the prefetch's venv: the same pins, made through a python3 link that an upgrade
        # then repoints from OLD to NEW
        link = root / "pybin" / "python3"
        link.parent.mkdir()
        link.symlink_to(old)
        silent = root / "silent" / "app"
        sh(link, "-m", "venv", "--without-pip", silent, env=env())
        sh(UV, "pip", "install", "-q", "--python", silent / "bin" / "python", *src, "-r", pins,
           env=env())  # fmt: skip
        link.unlink()
        link.symlink_to(new)

        def prefetch(i: int) -> float:
            d = root / f"prefetch-{i}"
            d.mkdir()
            argv = [VENVKEEPER, "wheelhouse", "--no-processes", "--dest", d, *src, silent.parent]
            t0 = time.perf_counter()
            subprocess.run([str(a) for a in argv], capture_output=True, env=env())
            took = time.perf_counter() - t0
            got = len(list(d.glob("*.whl")))
            if got < n - 1:
                sys.exit(f"the prefetch fetched {got} wheels of {n}")
            return took

        rows["venvkeeper wheelhouse (prefetch)"] = []
        for i in range(args.runs + 1):
            f, fv = floor(2 * i), floor_verified(2 * i + 1)
            u, p = ours(i, "uv"), ours(i, "pip")
            w = prefetch(i)
            if i == 0:
                continue  # warm-up
            for key, t in zip(rows, (f, fv, u, p, w)):
                rows[key].append(t)
        base = statistics.median(rows["floor (uv venv + uv pip install)"])
        print(
            f"rebuild of a venv of {n} distributions, CPython {args.old} -> {args.new},"
            f" offline from a wheelhouse, warm cache, median of {args.runs}"
        )
        print(f"({len(mods)} top-level modules imported by the verification)")
        verified = statistics.median(rows["floor + importing every module once"])
        print(
            f"{'':36} {'median s':>9} {'min s':>7} {'max s':>7} {'vs floor':>9} {'vs +imports':>12}"
        )
        for key, ts in rows.items():
            med = statistics.median(ts)
            print(
                f"{key:36} {med:9.2f} {min(ts):7.2f} {max(ts):7.2f} {med / base:8.2f}x"
                f" {med / verified:11.2f}x"
            )
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
