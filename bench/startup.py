"""Start-up of the short commands: their import time, and ``restarts`` against needrestart.

    python bench/startup.py [--runs 9] [--python PY ...]

For each interpreter (default: this one, and Debian's /usr/bin/python3 when it can import
venvkeeper's dependencies), with venvkeeper's bytecode compiled first as an installed
package's is:

- **import time** of ``restarts --json``, ``show VENV`` and ``check --no-record DIR``,
  run as the console script runs them, from ``python -X importtime``: the sum of the
  top-level imports from the first venvkeeper module on (so the interpreter's own
  start-up, ``site``, is left out), the best of ``--runs`` runs;
- **wall time** of each command, the median of ``--runs`` runs;
- ``restarts --json`` against ``needrestart -b -r l`` (batch, list only: it restarts
  nothing) on this host's real ``/proc``, medians of ``--runs`` runs after one untimed
  warm-up each, with the number of processes and of those running from venvs.

VENV is a venv the bench makes (``python -m venv --without-pip``) in a temporary DIR,
removed at the end. Writes bench/out/startup.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SRC = HERE.parent / "src"
sys.path.insert(0, str(HERE))

from procs import needrestart  # noqa: E402

#: What the console script does (pip's generated ``venvkeeper`` script).
SCRIPT = "import sys; from venvkeeper.cli import main; sys.exit(main(sys.argv[1:]))"


def env_for(python: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    env["PYTHONPATH"] = str(SRC)
    return env


def usable(python: str) -> bool:
    probe = "import venvkeeper.cli, packaging"
    res = subprocess.run(
        [python, "-c", probe], env=env_for(python), capture_output=True, timeout=60, check=False
    )
    return res.returncode == 0


def import_ms(python: str, argv: list[str]) -> float:
    """The command's import time in ms: top-level imports from the first venvkeeper on."""
    res = subprocess.run(
        [python, "-X", "importtime", "-c", SCRIPT, *argv],
        env=env_for(python),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    total, on = 0, False
    for line in res.stderr.splitlines():
        parts = line.split("|")
        if not line.startswith("import time:") or len(parts) != 3:
            continue
        cumulative, name = parts[1].strip(), parts[2]
        if not cumulative.isdigit():
            continue  # the header line
        on = on or "venvkeeper" in name
        if on and not name[1:].startswith(" "):  # a top-level import: its cumulative time
            total += int(cumulative)
    return total / 1000


def wall_s(argv: list[str], env: dict[str, str] | None = None) -> float:
    t = time.perf_counter()
    subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    return time.perf_counter() - t


def median(xs: list[float]) -> float:
    return statistics.median(xs)


def processes(proc: str = "/proc") -> tuple[int, int]:
    """(processes, of which run from a venv, as ``restarts`` itself maps them)."""
    sys.path.insert(0, str(SRC))
    from venvkeeper.restarts.scan import venv_users

    total = sum(1 for name in os.listdir(proc) if name.isdigit())
    return total, sum(len(users) for users in venv_users(proc).values())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=9)
    ap.add_argument("--python", action="append", default=[])
    args = ap.parse_args()
    pythons = args.python or [sys.executable] + (
        ["/usr/bin/python3"] if os.path.exists("/usr/bin/python3") else []
    )
    pythons = [p for p in pythons if usable(p)]
    by_python: dict[str, dict[str, dict[str, float]]] = {}
    host: dict[str, object] = {}
    world = Path(tempfile.mkdtemp(prefix="vk-bench-startup-"))
    try:
        venv = world / "venv"
        subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
        commands = {
            "restarts --json": ["restarts", "--json"],
            "show VENV": ["show", str(venv)],
            "check --no-record DIR": ["check", "--no-record", str(world)],
        }
        for py in pythons:
            subprocess.run(
                [py, "-m", "compileall", "-q", str(SRC / "venvkeeper")],
                env=env_for(py),
                check=False,
                stdout=subprocess.DEVNULL,
            )
            version = subprocess.run(
                [py, "-c", "import sys; print(sys.version.split()[0])"],
                capture_output=True,
                text=True,
                check=True,
            ).stdout.strip()
            figures: dict[str, dict[str, float]] = {}
            for label, argv in commands.items():
                imports = min(import_ms(py, argv) for _ in range(args.runs))
                walls = [wall_s([py, "-c", SCRIPT, *argv], env_for(py)) for _ in range(args.runs)]
                figures[label] = {"import_ms": round(imports, 1), "wall_s": round(median(walls), 4)}
            by_python[f"{py} ({version})"] = figures
        nr = needrestart()
        total, in_venvs = processes()
        host.update({"processes": total, "from_venvs": in_venvs})
        if nr and pythons:
            py = pythons[-1]
            vk = [py, "-c", SCRIPT, "restarts", "--json"]
            nr_argv = [nr, "-b", "-r", "l"]
            wall_s(vk, env_for(py))
            wall_s(nr_argv)
            vk_t = median([wall_s(vk, env_for(py)) for _ in range(args.runs)])
            nr_t = median([wall_s(nr_argv) for _ in range(args.runs)])
            host.update(
                {
                    "venvkeeper_python": py,
                    "venvkeeper_restarts_s": round(vk_t, 4),
                    "needrestart_s": round(nr_t, 4),
                    "ratio": round(vk_t / nr_t, 2),
                }
            )
    finally:
        shutil.rmtree(world, ignore_errors=True)
    (HERE / "out").mkdir(exist_ok=True)
    doc = {"runs": args.runs, "pythons": by_python, "host": host}
    (HERE / "out" / "startup.json").write_text(json.dumps(doc, indent=2) + "\n")
    for py, figures in by_python.items():
        print(py)
        for label, f in figures.items():
            print(f"  {label:24} imports {f['import_ms']:6.1f} ms   wall {f['wall_s']:.3f} s")
    print(f"host: {host['processes']} processes, {host['from_venvs']} from venvs")
    if "ratio" in host:
        print(
            f"restarts --json {host['venvkeeper_restarts_s']} s,"
            f" needrestart -b -r l {host['needrestart_s']} s: {host['ratio']}x"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
