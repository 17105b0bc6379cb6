"""``venvkeeper restarts`` against ``needrestart -b`` on the same real processes.

    python bench/procs.py [--procs 1000] [--python 100] [--runs 5] [--compare-only]

Builds a distro-like prefix (a copy of a pyenv CPython 3.11 binary, its stdlib linked), a
venv on it with a package, and starts ``--procs`` processes: ``--python`` of them are
Python processes from the venv (a script, a console script, ``python -m``), the rest are
``sleep``. Then it replaces the base binary (write beside, rename over: what dpkg does)
and upgrades a pure-Python package in the venv, and runs both tools:

- the comparison: what each one reports (printed, and written to bench/out/procs-compare.txt);
- the timing: the median of ``--runs`` runs of ``venvkeeper restarts --json`` and of
  ``needrestart -b -r l`` (batch, list only: it never restarts anything), after one
  untimed warm-up each, and venvkeeper's own ``duration_seconds`` (the /proc scan and
  the judging of the venvs found, without the interpreter's start-up). needrestart is
  installed with apt when missing (root). venvkeeper's bytecode is compiled first, as an
  installed package's is.

Every process is killed at the end, whatever happens.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

from conftest import find_python  # noqa: E402
from factory import install, make_project, make_venv  # noqa: E402

VENVKEEPER = Path(sys.executable).parent / "venvkeeper"
BODY = "import time\nimport alpha\nprint('ready', flush=True)\ntime.sleep(3600)\n"


def needrestart() -> str | None:
    found = shutil.which("needrestart") or (
        "/usr/sbin/needrestart" if os.path.exists("/usr/sbin/needrestart") else None
    )
    if found or os.geteuid() != 0:
        return found
    subprocess.run(
        ["apt-get", "install", "-y", "-q", "needrestart"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        check=False,
        env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
    )
    return shutil.which("needrestart") or (
        "/usr/sbin/needrestart" if os.path.exists("/usr/sbin/needrestart") else None
    )


def build(root: Path) -> tuple[Path, Path, Path]:
    src = find_python("3.11")
    if src is None:
        sys.exit("bench/procs.py: needs a CPython 3.11 (pyenv)")
    real = src.parent.parent
    prefix = root / "usr"
    (prefix / "bin").mkdir(parents=True)
    shutil.copy2(src, prefix / "bin" / "python3.11")
    (prefix / "bin" / "python3").symlink_to("python3.11")
    (prefix / "lib").mkdir()
    (prefix / "lib" / "python3.11").symlink_to(real / "lib" / "python3.11")
    alpha = make_project(root, "alpha")
    venv = make_venv(prefix / "bin" / "python3", root / "app")
    install(venv, alpha)
    script = venv / "bin" / "sleeper"
    script.write_text(f"#!{venv}/bin/python\n{BODY}")
    script.chmod(0o755)
    (root / "job.py").write_text(BODY)
    site = next(venv.glob("lib/python3.*/site-packages"))
    (site / "sleepmod.py").write_text(BODY)
    alpha2 = make_project(root / "v2", "alpha", "2.0")
    return prefix, venv, alpha2.path


def spawn(argv: list[str], cwd: Path, wait_ready: bool) -> subprocess.Popen[bytes]:
    p = subprocess.Popen(
        argv,
        cwd=cwd,
        stdout=subprocess.PIPE if wait_ready else subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
        env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"},
    )
    if wait_ready:
        assert p.stdout is not None
        p.stdout.readline()
    return p


def timed(argv: list[str]) -> tuple[float, str, int]:
    t0 = time.perf_counter()
    res = subprocess.run(argv, capture_output=True, text=True, timeout=1800, check=False)
    return time.perf_counter() - t0, res.stdout + res.stderr, res.returncode


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--procs", type=int, default=1000)
    ap.add_argument("--python", type=int, default=100, help="how many are Python processes")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--compare-only", action="store_true")
    ap.add_argument("--out", type=Path, default=HERE / "out")
    args = ap.parse_args()
    nr = needrestart()
    args.out.mkdir(parents=True, exist_ok=True)
    # An installed package has its bytecode compiled (pip does it); a source checkout run
    # with PYTHONDONTWRITEBYTECODE would recompile every module at every start.
    import venvkeeper

    subprocess.run(
        [sys.executable, "-m", "compileall", "-q", str(Path(venvkeeper.__file__).parent)],
        check=False,
    )
    root = Path(tempfile.mkdtemp(prefix="vk-procs-"))
    procs: list[subprocess.Popen[bytes]] = []
    try:
        prefix, venv, alpha2 = build(root)
        kinds = [
            [f"{venv}/bin/python", str(root / "job.py")],
            [f"{venv}/bin/sleeper"],
            [f"{venv}/bin/python", "-m", "sleepmod"],
        ]
        n_python = 3 if args.compare_only else args.python
        n_total = 3 if args.compare_only else args.procs
        for i in range(n_python):
            procs.append(spawn(kinds[i % 3], root, wait_ready=True))
        for _ in range(n_total - n_python):
            procs.append(spawn(["sleep", "3600"], root, wait_ready=False))
        time.sleep(1)
        # the upgrade: the base binary replaced, a package of the venv upgraded
        tmp = prefix / "bin" / ".python3.11.new"
        shutil.copy2(prefix / "bin" / "python3.11", tmp)
        os.replace(tmp, prefix / "bin" / "python3.11")
        install(venv, type("P", (), {"path": alpha2})())  # type: ignore[arg-type]
        vk = [str(VENVKEEPER), "restarts"]
        _, vk_out, vk_code = timed(vk)
        text = [f"$ venvkeeper restarts   (exit {vk_code})", vk_out.rstrip(), ""]
        if nr:
            _, nr_out, nr_code = timed([nr, "-b", "-r", "l"])
            text += [f"$ needrestart -b -r l   (exit {nr_code})", nr_out.rstrip(), ""]
        else:
            text += ["needrestart is not installed (not root?): no comparison"]
        report = "\n".join(text) + "\n"
        print(report)
        if args.compare_only:
            (args.out / "procs-compare.txt").write_text(report)
            return 0
        results: dict[str, object] = {"processes": args.procs, "python": args.python}
        for name, argv in [("venvkeeper restarts --json", [*vk, "--json"])] + (
            [("needrestart -b -r l", [nr, "-b", "-r", "l"])] if nr else []
        ):
            timed(argv)  # warm-up
            runs = [timed(argv) for _ in range(args.runs)]
            walls = [r[0] for r in runs]
            results[name] = {
                "median": statistics.median(walls),
                "min": min(walls),
                "max": max(walls),
            }
            if name.startswith("venvkeeper"):
                # the /proc scan alone, without the interpreter's start-up and imports
                inner = [json.loads(r[1][r[1].index("{") :])["duration_seconds"] for r in runs]
                results["venvkeeper scan alone"] = {"median": statistics.median(inner)}
                print(
                    f"{'venvkeeper: /proc scan alone':28} median {statistics.median(inner):.3f} s"
                )
            print(
                f"{name:28} median {statistics.median(walls):.3f} s  (min {min(walls):.3f},"
                f" max {max(walls):.3f}, {args.runs} runs)"
            )
        if nr:
            ratio = (
                results["venvkeeper restarts --json"]["median"]
                / results[  # type: ignore[index]
                    "needrestart -b -r l"
                ]["median"]
            )  # type: ignore[index]
            results["ratio"] = ratio
            print(f"venvkeeper / needrestart: {ratio:.3f}x")
        (args.out / "procs.json").write_text(json.dumps(results, indent=2) + "\n")
        return 0
    finally:
        for p in procs:
            with contextlib.suppress(OSError):
                os.killpg(p.pid, signal.SIGKILL)
        for p in procs:
            p.wait()
            if p.stdout is not None:
                p.stdout.close()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
