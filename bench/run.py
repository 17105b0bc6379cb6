"""Time ``venvkeeper scan --json`` against ``find -name pyvenv.cfg`` and ``fdfind``.

    python bench/run.py [--tree ROOT] [--runs 5] [--also-root] [--cold] [--out bench/out]
                        [--venvkeeper-args "--workers 1"]

Warm cache by default (one untimed warm-up run each); ``--cold`` drops the page cache
before every run (root only). Reports the median, min and max wall time, peak RSS of the
child, the ratio to find, and venvs inspected per second. Writes results.md and
results.json to the output directory.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
VENVKEEPER = Path(sys.executable).parent / "venvkeeper"


def drop_caches() -> bool:
    try:
        os.sync()
        Path("/proc/sys/vm/drop_caches").write_text("3\n")
        return True
    except OSError:
        return False


def timed(argv: list[str], timeout: float = 1800) -> tuple[float, int, int, bytes]:
    """(wall seconds, peak RSS in KiB, exit status, stdout) of one run of *argv*.

    The peak RSS comes from GNU time when it is installed: the rusage of a child forked
    from this (large) Python process may report the parent's pages."""
    gnu_time = Path("/usr/bin/time")
    rss_file = HERE / "out" / ".rss"
    rss_file.parent.mkdir(parents=True, exist_ok=True)
    full = [str(gnu_time), "-f", "%M", "-o", str(rss_file), *argv] if gnu_time.exists() else argv
    t0 = time.perf_counter()
    proc = subprocess.run(
        full, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, timeout=timeout, check=False
    )
    wall = time.perf_counter() - t0
    rss = 0
    if gnu_time.exists():
        rss = int(rss_file.read_text().split()[-1])
    return wall, rss, proc.returncode, proc.stdout


def fd_command() -> str | None:
    found = shutil.which("fdfind") or shutil.which("fd")
    if found or os.geteuid() != 0:
        return found
    res = subprocess.run(
        ["apt-get", "install", "-y", "-q", "fd-find"], capture_output=True, timeout=600
    )
    if res.returncode != 0:
        subprocess.run(["apt-get", "update", "-q"], capture_output=True, timeout=600)
        subprocess.run(
            ["apt-get", "install", "-y", "-q", "fd-find"], capture_output=True, timeout=600
        )
    return shutil.which("fdfind")


def measure(name: str, argv: list[str], runs: int, cold: bool) -> dict[str, object]:
    if not cold:
        timed(argv)  # warm-up, untimed
    walls, rss = [], []
    out = b""
    code = 0
    for _ in range(runs):
        if cold:
            drop_caches()
        wall, peak, code, out = timed(argv)
        walls.append(wall)
        rss.append(peak)
    return {
        "tool": name,
        "command": " ".join(shlex.quote(a) for a in argv),
        "median_s": round(statistics.median(walls), 3),
        "min_s": round(min(walls), 3),
        "max_s": round(max(walls), 3),
        "peak_rss_mib": round(max(rss) / 1024, 1),
        "exit": code,
        "stdout": out,
    }


def suite(
    root: str,
    runs: int,
    cold: bool,
    vk_args: list[str],
    prune_pseudo: bool,
    skip: tuple[str, ...] = (),
) -> list[dict]:
    """Each tool over *root*; *skip* are paths that every tool leaves out (the benchmark
    trees themselves, when / is measured)."""
    results = []
    vk_skip = [a for p in skip for a in ("--exclude", p)]
    vk = measure(
        "venvkeeper",
        [str(VENVKEEPER), "scan", "--json", "--no-record", *vk_args, *vk_skip, root],
        runs,
        cold,
    )
    stdout = vk.pop("stdout")
    assert isinstance(stdout, bytes)
    if vk["exit"] not in (0, 1, 2):
        raise SystemExit(f"venvkeeper failed (exit {vk['exit']})")
    doc = json.loads(stdout)
    vk["found"] = len(doc["venvs"])
    vk["venvs_per_s"] = round(vk["found"] / vk["median_s"]) if vk["median_s"] else None
    results.append(vk)
    find = ["find", root]
    if prune_pseudo or skip:
        pruned = (["/proc", "/sys", "/dev"] if prune_pseudo else []) + list(skip)
        find += ["("]
        for i, p in enumerate(pruned):
            find += (["-o"] if i else []) + ["-path", p]
        find += [")", "-prune", "-o"]
    find += ["-name", "pyvenv.cfg", "-print"]
    f = measure("find", find, runs, cold)
    f["found"] = f.pop("stdout").count(b"\n")  # type: ignore[union-attr]
    results.append(f)
    fd = fd_command()
    if fd:
        fdargv = [fd, "--no-ignore", "--hidden", "--glob", "pyvenv.cfg", root]
        if prune_pseudo or skip:
            pruned = (["/proc", "/sys", "/dev"] if prune_pseudo else []) + list(skip)
            fdargv[1:1] = [a for p in pruned for a in ("--exclude", p)]
        r = measure("fd", fdargv, runs, cold)
        r["found"] = r.pop("stdout").count(b"\n")  # type: ignore[union-attr]
        results.append(r)
    else:
        print("bench: fd-find is not installed and could not be installed: skipped")
    base = f["median_s"]
    for r in results:
        r["ratio_to_find"] = round(r["median_s"] / base, 2) if base else None  # type: ignore[operator]
    return results


def inspection_rate(root: str, runs: int) -> dict[str, float]:
    """Static inspection and checks alone (no walk, no start-up), in this process: venvs
    and distributions judged per second, median of *runs*."""
    from venvkeeper.checks.registry import run_checks
    from venvkeeper.host.bases import HostCache
    from venvkeeper.scan.discovery import Candidate, WalkOptions, walk
    from venvkeeper.scan.inspect import inspect_venv

    found = [c for c in walk([root], WalkOptions()) if isinstance(c, Candidate)]
    times = []
    dists = 0
    for _ in range(runs + 1):
        host = HostCache()
        t0 = time.perf_counter()
        dists = 0
        for c in found:
            facts = inspect_venv(c.path, c.kind, host=host)
            run_checks(facts)
            dists += len(facts.distributions)
        times.append(time.perf_counter() - t0)
    best = statistics.median(times[1:])
    return {
        "venvs": len(found),
        "seconds": round(best, 3),
        "venvs_per_s": round(len(found) / best),
        "dists_per_s": round(dists / best),
    }


def markdown(title: str, rows: list[dict]) -> str:
    lines = [
        f"### {title}",
        "",
        "| tool | median s | min s | max s | vs find | peak RSS MiB | found | venvs/s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['tool']} | {r['median_s']} | {r['min_s']} | {r['max_s']} |"
            f" {r['ratio_to_find']}{'x' if r['ratio_to_find'] != '' else ''} |"
            f" {r['peak_rss_mib']} | {r['found']} |"
            f" {r.get('venvs_per_s') or ''} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tree", default="/tmp/vk-bench-tree")
    ap.add_argument("--venvs", type=int, default=300)
    ap.add_argument("--files", type=int, default=300_000)
    ap.add_argument("--template", default="service", help="see make_tree.py")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--also-root", action="store_true", help="also scan / of this machine")
    ap.add_argument("--cold", action="store_true", help="drop the page cache before each run")
    ap.add_argument("--out", type=Path, default=HERE / "out")
    ap.add_argument("--venvkeeper-args", default="", help="extra arguments for venvkeeper scan")
    args = ap.parse_args(argv)
    subprocess.run(
        [
            sys.executable,
            str(HERE / "make_tree.py"),
            args.tree,
            "--venvs",
            str(args.venvs),
            "--files",
            str(args.files),
            "--template",
            args.template,
        ],
        check=True,
        timeout=3600,
    )
    tree_info = json.loads((Path(args.tree) / ".bench-tree.json").read_text())
    vk_args = shlex.split(args.venvkeeper_args)
    cache = "cold" if args.cold else "warm"
    sections = [
        (
            f"Synthetic tree, {tree_info['template']} template"
            f" ({tree_info['venvs']} venvs of {tree_info['entries_per_venv']:,} entries,"
            f" {tree_info['files']:,} files,"
            f" {tree_info['directories']:,} directories; {cache} cache)",
            suite(args.tree, args.runs, args.cold, vk_args, prune_pseudo=False),
        )
    ]
    rate = inspection_rate(args.tree, args.runs)
    sections[0][1].append(
        {
            "tool": f"venvkeeper inspection only ({rate['dists_per_s']:,} distributions/s)",
            "median_s": rate["seconds"],
            "min_s": "",
            "max_s": "",
            "ratio_to_find": "",
            "peak_rss_mib": "",
            "found": rate["venvs"],
            "venvs_per_s": rate["venvs_per_s"],
            "dists_per_s": rate["dists_per_s"],
        }
    )
    if args.also_root:
        trees = tuple(str(p) for p in Path(args.tree).parent.glob("vk-bench-*"))
        sections.append(
            (
                f"/ of this machine, benchmark trees left out ({cache} cache)",
                suite("/", args.runs, args.cold, vk_args, prune_pseudo=True, skip=trees),
            )
        )
    args.out.mkdir(parents=True, exist_ok=True)
    md = "".join(markdown(t, rows) + "\n" for t, rows in sections)
    header = (
        f"venvkeeper args: `{args.venvkeeper_args or '(default)'}`; {args.runs} runs"
        f" each; {os.cpu_count()} CPUs; {time.strftime('%Y-%m-%d')}\n\n"
    )
    (args.out / "results.md").write_text(header + md)
    (args.out / "results.json").write_text(
        json.dumps(
            {
                "tree": tree_info,
                "cache": cache,
                "venvkeeper_args": args.venvkeeper_args,
                "sections": [{"title": t, "rows": rows} for t, rows in sections],
            },
            indent=2,
        )
        + "\n"
    )
    print(header + md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
