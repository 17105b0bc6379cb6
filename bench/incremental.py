"""An incremental scan of an unchanged host against a cold one, on the same tree.

    python bench/incremental.py [--tree ROOT] [--venvs 10000] [--files 1000000]
                                [--template fleet] [--runs 5]

Builds the tree with bench/make_tree.py if needed (10,000 venvs of the ``fleet`` template by
default: some 7 GB), then alternates, ``--runs`` times each after one untimed warm-up of
each (warm page cache):

- cold: ``venvkeeper scan --full --db DB -q ROOT``: every venv read, every directory listed,
  and what the next scan reuses kept in the inventory (a temporary one);
- incremental: ``venvkeeper scan --db DB -q ROOT``: unchanged venvs not read again,
  unchanged directories not listed again (docs/performance.md).

Both record the scan. Prints the medians, their ratio, and the machine's load average at
the start and the end (the machine may be shared: compare within one run). Writes
bench/out/incremental.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
VENVKEEPER = Path(sys.executable).parent / "venvkeeper"


def timed(argv: list[str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the command and its children) of one run."""
    before = os.times()
    t0 = time.perf_counter()
    res = subprocess.run(argv, capture_output=True, text=True, timeout=7200)
    wall = time.perf_counter() - t0
    after = os.times()
    if res.returncode not in (0, 1, 2):
        raise SystemExit(f"{argv} failed ({res.returncode}): {res.stderr[-2000:]}")
    if res.stderr.strip():
        raise SystemExit(f"{argv} said: {res.stderr[-2000:]}")
    cpu = (after.children_user - before.children_user) + (
        after.children_system - before.children_system
    )
    return wall, cpu


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tree", type=Path, default=HERE.parent / ".dev" / "bench-fleet")
    ap.add_argument("--venvs", type=int, default=10000)
    ap.add_argument("--files", type=int, default=1_000_000)
    ap.add_argument("--template", default="fleet")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--out", type=Path, default=HERE / "out")
    args = ap.parse_args(argv)
    subprocess.run(
        [
            sys.executable, str(HERE / "make_tree.py"), str(args.tree),
            "--venvs", str(args.venvs), "--files", str(args.files),
            "--template", args.template,
        ],
        check=True, timeout=7200,
    )  # fmt: skip
    tree = json.loads((args.tree / ".bench-tree.json").read_text())
    with tempfile.TemporaryDirectory(prefix="vk-bench-incr-") as tmp:
        db = os.path.join(tmp, "inventory.db")
        cold = [str(VENVKEEPER), "scan", "--full", "--db", db, "-q", str(args.tree)]
        warm = [str(VENVKEEPER), "scan", "--db", db, "-q", str(args.tree)]
        load_start = os.getloadavg()
        timed(cold)  # warm-up: the page cache, and the inventory's first facts
        timed(warm)
        rows: dict[str, list[tuple[float, float]]] = {"cold": [], "incremental": []}
        for _ in range(args.runs):
            rows["cold"].append(timed(cold))
            rows["incremental"].append(timed(warm))
        load_end = os.getloadavg()
        size = os.path.getsize(db)
    med = {k: statistics.median(w for w, _ in v) for k, v in rows.items()}
    cpu = {k: statistics.median(c for _, c in v) for k, v in rows.items()}
    ratio = med["incremental"] / med["cold"]
    print(
        f"tree: {args.tree} ({tree['venvs']:,} venvs of {tree['entries_per_venv']:,} entries,"
        f" {tree['files']:,} files, {tree['directories']:,} directories; warm cache)"
    )
    print(f"load average: {load_start[0]:.1f} at the start, {load_end[0]:.1f} at the end")
    for k in rows:
        walls = ", ".join(f"{w:.2f}" for w, _ in rows[k])
        print(f"{k:12} median {med[k]:6.2f} s  (CPU {cpu[k]:6.2f} s)  runs: {walls}")
    print(f"incremental / cold: {ratio:.2f}x (CPU {cpu['incremental'] / cpu['cold']:.2f}x)")
    print(f"inventory: {size / 1e6:.0f} MB")
    print(f"commands:\n  {' '.join(cold)}\n  {' '.join(warm)}")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "incremental.json").write_text(
        json.dumps(
            {
                "tree": tree,
                "runs": {k: [list(r) for r in v] for k, v in rows.items()},
                "median_s": med,
                "cpu_s": cpu,
                "ratio": ratio,
                "load": [load_start, load_end],
                "inventory_bytes": size,
            },
            indent=2,
        )
        + "\n"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
