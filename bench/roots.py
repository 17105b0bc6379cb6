"""What judging venvs as their OS root sees them costs: a scan with other roots (the
default) against ``--no-other-roots``, on 300 venvs of this host and on 300 venvs inside a
Debian bookworm root.

    sudo .dev/venv/bin/python bench/roots.py [--dir /tmp/vk-roots-bench] [--runs 9]

Builds, once, in DIR: ``host/pNNN/.venv`` (hard-linked copies of one ``python3 -m venv``
made by this host's /usr/bin/python3) and ``machines/deb`` (tests/debroot.py's cached
bookworm root) holding ``srv/pNNN/.venv`` (copies of a venv made in it by chroot). Then for
each tree and mode: the CPU time of an in-process scan (walk and inspection in this
process, one worker: the work itself, not the machine's load), and the wall time of
``venvkeeper scan --json --no-record`` (medians; one untimed warm-up). Needs root (chroot).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
VENVKEEPER = Path(sys.executable).parent / "venvkeeper"
COPIES = 300


def _copies(template: Path, parent: Path) -> None:
    for i in range(1, COPIES + 1):
        d = parent / f"p{i:03}"
        (d / "src").mkdir(parents=True)
        subprocess.run(["cp", "-al", str(template), str(d / ".venv")], check=True)
    shutil.rmtree(template)


def build(top: Path) -> tuple[Path, Path]:
    host, machines = top / "host", top / "machines"
    if not host.exists():
        subprocess.run(["/usr/bin/python3", "-m", "venv", str(top / "template")], check=True)
        _copies(top / "template", host)
    root = machines / "deb"
    if not root.exists():
        sys.path.insert(0, str(HERE.parent / "tests"))
        from debroot import bookworm_root, chroot_run

        bookworm_root(root)
        chroot_run(root, ["python3", "-m", "venv", "/srv/template"])
        _copies(root / "srv/template", root / "srv")
    return host, machines


def cpu(tree: Path, other_roots: bool, runs: int) -> float:
    from venvkeeper.scan.pipeline import ScanOptions, scan

    opts = ScanOptions(
        walk_beside=False, walk_workers=1, inspect_workers=1, other_roots=other_roots
    )
    xs = []
    for _ in range(runs):
        t0 = time.process_time()
        scan([str(tree)], opts)
        xs.append(time.process_time() - t0)
    return statistics.median(xs)


def wall(tree: Path, extra: list[str], runs: int) -> float:
    argv = [str(VENVKEEPER), "scan", "--json", "--no-record", *extra, str(tree)]
    subprocess.run(argv, capture_output=True)
    xs = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run(argv, capture_output=True)
        xs.append(time.perf_counter() - t0)
    return statistics.median(xs)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dir", default="/tmp/vk-roots-bench")
    ap.add_argument("--runs", type=int, default=9)
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("bench/roots.py needs root (it makes venvs in a root through chroot)")
        return 2
    host, machines = build(Path(args.dir))
    load = os.getloadavg()[0]
    print(f"{COPIES} venvs per tree; {args.runs} runs; load average {load:.1f}\n")
    print("| tree | mode | CPU s (in-process) | wall s (CLI) |")
    print("|---|---|---|---|")
    for name, tree in (("this host's venvs", host), ("venvs inside a bookworm root", machines)):
        for mode, other, extra in (
            ("default (other roots)", True, []),
            ("--no-other-roots", False, ["--no-other-roots"]),
        ):
            c = cpu(tree, other, args.runs)
            w = wall(tree, extra, args.runs)
            print(f"| {name} | {mode} | {c:.3f} | {w:.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
