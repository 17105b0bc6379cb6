"""``venvkeeper matrix`` at fleet scale: 300 venvs judged against 100 host profiles.

    python bench/matrix.py [--tree DIR] [--runs 3] [--files 30000]

The tree is bench/make_tree.py's (``--template small``, 300 venvs), built with
``/usr/bin/python3`` so that its venvs link ``/usr/bin/python3``, as on a shared tree
of a distro's Python. Three real profiles: this host's (``host-profile --search
/usr/bin``), and two made from it with ``python3`` leading to the dev machine's other
CPythons (pyenv's 3.12 and 3.13: their patch levels from their own profiles). 100 profiles
are written from those three with varied hostnames and OS release texts (34, 33, 33).

Times (wall, median of ``--runs`` after one warm-up): the scan alone, the matrix against
the 3 profiles, and against the 100 (which must cost about the same: 3 judgements).
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

from conftest import find_python  # noqa: E402

VENVKEEPER = [sys.executable, "-m", "venvkeeper"]
SYSTEM = "/usr/bin/python3"


def sh(*argv: object) -> subprocess.CompletedProcess[str]:
    res = subprocess.run([str(a) for a in argv], capture_output=True, text=True, timeout=3600)
    if res.returncode not in (0, 1, 2):
        raise SystemExit(f"{argv} failed ({res.returncode}): {res.stderr[-500:]}")
    return res


def profile_of(search: str) -> dict:
    doc: dict = json.loads(sh(*VENVKEEPER, "host-profile", "--search", search).stdout)
    return doc


def with_python3(base: dict, minor: str, patch: str) -> dict:
    """*base* (a profile of /usr/bin) with python3 leading to python*minor* there."""
    doc = json.loads(json.dumps(base))
    exe = f"/usr/bin/python{minor}"
    keep = [
        i
        for i in doc["interpreters"]
        if not any(n["path"] == "/usr/bin/python3" for n in i["names"])
    ]
    keep.append(
        {
            "executable": exe,
            "version": minor,
            "patch_version": patch,
            "prefix": "/usr",
            "stdlib_present": True,
            "origin": "system",
            "is_script": False,
            "package": f"python{minor}-minimal",
            "version_source": "name",
            "obsolete": False,
            "names": [
                {"path": "/usr/bin/python3", "hops": ["/usr/bin/python3", exe]},
                {"path": exe, "hops": [exe]},
            ],
        }
    )
    doc["interpreters"] = keep
    return doc


def timed(argv: list[str], runs: int) -> tuple[float, subprocess.CompletedProcess[str]]:
    sh(*argv)  # warm-up
    times = []
    res = None
    for _ in range(runs):
        t0 = time.perf_counter()
        res = sh(*argv)
        times.append(time.perf_counter() - t0)
    assert res is not None
    return statistics.median(times), res


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tree", type=Path, default=HERE.parent / ".dev" / "bench-matrix" / "tree")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--files", type=int, default=30000)
    args = ap.parse_args(argv)
    work = args.tree.parent
    subprocess.run(
        [
            *(SYSTEM, str(HERE / "make_tree.py"), str(args.tree), "--venvs", "300"),
            *("--files", str(args.files), "--template", "small"),
        ],
        check=True,
    )
    real = profile_of("/usr/bin")
    three = {"bookworm": real}
    for minor, release in (("3.12", "Ubuntu 24.04 LTS"), ("3.13", "Debian GNU/Linux 13 (trixie)")):
        py = find_python(minor)
        if py is None:
            raise SystemExit(f"bench/matrix.py needs a CPython {minor} (pyenv)")
        (interp,) = [i for i in profile_of(str(py.parent))["interpreters"] if i["version"] == minor]
        doc = with_python3(real, minor, interp["patch_version"])
        doc["os_release"] = release
        three[release] = doc
    dirs = {"3": work / "profiles-3", "100": work / "profiles-100"}
    for d in dirs.values():
        shutil.rmtree(d, ignore_errors=True)
        d.mkdir(parents=True)
    kinds = list(three.values())
    for n, doc in enumerate(kinds):
        (dirs["3"] / f"kind{n}.json").write_text(json.dumps(dict(doc, hostname=f"kind{n}")))
    for n in range(100):
        doc = dict(kinds[n % 3], hostname=f"web{n + 1:03d}", created_at=1.7e9 + n)
        (dirs["100"] / f"web{n + 1:03d}.json").write_text(json.dumps(doc))
    root = str(args.tree)
    scan_cmd = [*VENVKEEPER, "scan", root, "--json", "--no-record"]
    rows = [("scan alone", scan_cmd)]
    for k, d in dirs.items():
        rows.append(
            (
                f"matrix, {k} profiles",
                [*VENVKEEPER, "matrix", root, "--profiles-dir", str(d), "--json"],
            )
        )
    print(f"tree: {root} (300 venvs + template; --files {args.files})")
    results = []
    for label, cmd in rows:
        med, res = timed(cmd, args.runs)
        extra = ""
        if "matrix" in cmd:
            doc = json.loads(res.stdout)
            s = doc["summary"]
            extra = (
                f"  {len(doc['venvs'])} venvs x {doc['profiles']} profiles,"
                f" {doc['judgements']} judgements; cells: {s['works']} works,"
                f" {s['breaks']} breaks, {s['unknown']} unknown"
            )
        else:
            extra = f"  {len(json.loads(res.stdout)['venvs'])} venvs"
        results.append((label, med))
        print(f"{label:22} median {med:6.2f}s of {args.runs}{extra}")
        print(f"  command: {' '.join(cmd)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
