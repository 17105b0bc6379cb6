"""venvkeeper's apt hooks against needrestart's, on a real Debian root with 10,000 venvs.

    python bench/apt_hook.py [--venvs 10000] [--files 300000] [--runs 5] [--root DIR]

As root (chroot, mount): a bookworm root from tests/debroot.py's cache (debootstrap builds
it the first time, from deb.debian.org), venvkeeper's source in it run by the root's own
``/usr/bin/python3`` as the Debian package would, 10,000 hard-linked copies of one venv
made there on python3 (bench/make_tree.py's ``fleet`` packages, wheels fetched from PyPI),
``venvkeeper install-apt-hooks``, a first ``venvkeeper scan`` (what the daily timer does),
and needrestart installed from Debian's archive (list mode: it restarts nothing). Then
``--runs`` apt runs of each kind, with both tools' hooks installed as their packages install
them, each hook timed by a wrapper (``date +%s%N`` before and after):

- an apt run of no Python package: a tiny local ``.deb`` installed, then removed;
- a Python patch upgrade: python3.11, python3.11-minimal, libpython3.11-minimal and
  libpython3.11-stdlib reinstalled (``apt-get install --reinstall``): dpkg replaces the
  interpreter and its stdlib as a patch upgrade does, under the same version (Debian's
  own patch upgrades keep the upstream version: bookworm's python3.11 is 3.11.2 in every
  point release);
- the same with the patch version changed: libpython3.11-dev is installed (its
  ``patchlevel.h`` tells venvkeeper the X.Y.Z), and before each run the bench writes
  another version into it (3.11.100, 3.11.101, ...), so that every venv's base has a new
  patch version when the post-invoke hook runs, as after Ubuntu's or a pyenv Python's
  patch upgrade.

Prints the median time of each hook per kind, the load average, and writes
bench/out/apt_hook.json. The root is kept in ``--root`` for the next run (``--fresh``
rebuilds it).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))
sys.path.insert(0, str(HERE))

import make_tree  # noqa: E402

from debroot import bookworm_root, chroot_run, remove_root  # noqa: E402

SRC = HERE.parent / "src" / "venvkeeper"
PY311 = ("python3.11", "python3.11-minimal", "libpython3.11-minimal", "libpython3.11-stdlib")
PATCHLEVEL = "/usr/include/python3.11/patchlevel.h"
LOG = "/var/log/vk-bench-hooks"
TIMED = """#!/bin/sh
# {name} run by apt: timed (nanoseconds) into {log}
s=$(date +%s%N)
{command} "$@"
rc=$?
echo "{name} $* $(( $(date +%s%N) - s ))" >> {log}
exit $rc
"""
VK = """#!/usr/bin/python3
import sys
sys.path.insert(0, "/opt/venvkeeper-src")
from venvkeeper.cli import main
sys.exit(main())
"""


def sh(root: Path, *argv: str, timeout: float = 3600) -> str:
    return chroot_run(root, list(argv), timeout=timeout).stdout


def prepare(root: Path, venvs: int, files: int) -> None:
    stamp = root / "opt" / "vk-bench.json"
    want = {"venvs": venvs, "files": files, "v": 1}
    if stamp.exists() and json.loads(stamp.read_text()) == want:
        print(f"apt_hook: {root} is ready")
    else:
        remove_root(root)
        root.parent.mkdir(parents=True, exist_ok=True)
        bookworm_root(root)
        wheels = root / "opt" / "wheels"
        subprocess.run(
            [
                sys.executable, "-m", "pip", "download", "-q", "--disable-pip-version-check",
                "--only-binary=:all:", "--python-version", "3.11", "--platform",
                "manylinux2014_x86_64", "-d", str(wheels), *make_tree.TEMPLATES["fleet"],
            ],
            check=True, timeout=1800,
        )  # fmt: skip
        sh(root, "python3", "-m", "venv", "--without-pip", "/srv/template")
        sh(
            root, "python3", "-m", "pip", "--python", "/srv/template/bin/python", "install",
            "-q", "--no-index", "--find-links", "/opt/wheels", *make_tree.TEMPLATES["fleet"],
        )  # fmt: skip
        tree = root / "srv" / "tree"
        rng = random.Random(1)
        projects = make_tree.make_ordinary(tree, files, rng)
        for i in range(venvs):
            where = rng.choice(projects) / (".venv" if i % 3 else f"envs/env{i}")
            if where.exists():
                where = where.parent / f"venv{i}"
            make_tree.link_copy(root / "srv" / "template", where)
        sh(root, "apt-get", "update", "-q")
        sh(root, "apt-get", "install", "-y", "-q", "needrestart")
        conf = root / "etc" / "needrestart" / "conf.d" / "vk-bench.conf"
        conf.write_text(
            "# venvkeeper's bench: list only, never restart anything\n"
            "$nrconf{restart} = 'l';\n$nrconf{ui} = 'NeedRestart::UI::stdio';\n"
        )
        sh(root, "apt-get", "install", "-y", "-q", "--download-only", "--reinstall", *PY311)
        debs = root / "opt" / "debs"
        for name in ("vk-unrelated",):
            pkg = debs / name
            (pkg / "DEBIAN").mkdir(parents=True)
            (pkg / "DEBIAN" / "control").write_text(
                f"Package: {name}\nVersion: 1.0-1\nArchitecture: all\n"
                "Maintainer: venvkeeper bench <root@localhost>\nDescription: nothing\n"
            )
            subprocess.run(["dpkg-deb", "--build", str(pkg), str(debs / f"{name}.deb")],
                           check=True, capture_output=True)  # fmt: skip
        stamp.write_text(json.dumps(want))
    # venvkeeper as this checkout has it, and both tools' hooks timed
    dest = root / "opt" / "venvkeeper-src" / "venvkeeper"
    shutil.rmtree(dest.parent, ignore_errors=True)
    shutil.copytree(SRC, dest, ignore=shutil.ignore_patterns("__pycache__"))
    sh(root, "python3", "-m", "compileall", "-q", "/opt/venvkeeper-src")
    bin_dir = root / "usr" / "local" / "bin"
    (bin_dir / "venvkeeper").write_text(VK)
    (bin_dir / "vk-timed").write_text(
        TIMED.format(name="venvkeeper", command="/usr/local/bin/venvkeeper", log=LOG)
    )
    for f in ("venvkeeper", "vk-timed"):
        (bin_dir / f).chmod(0o755)
    sh(root, "/usr/local/bin/venvkeeper", "install-apt-hooks", "--venvkeeper",
       "/usr/local/bin/vk-timed")  # fmt: skip
    nr = root / "etc" / "apt" / "apt.conf.d" / "99needrestart"
    text = nr.read_text()
    if "nr-timed" not in text:
        nr.write_text(text.replace("/usr/lib/needrestart/apt-pinvoke", "/usr/local/bin/nr-timed"))
    (bin_dir / "nr-timed").write_text(
        TIMED.format(name="needrestart", command="/usr/lib/needrestart/apt-pinvoke", log=LOG)
    )
    (bin_dir / "nr-timed").chmod(0o755)
    if not (root / PATCHLEVEL.lstrip("/")).exists():  # what tells the X.Y.Z (bench v2)
        sh(root, "apt-get", "install", "-y", "-q", "libpython3.11-dev")


def hook_times(root: Path) -> list[tuple[str, str, float]]:
    log = root / LOG.lstrip("/")
    if not log.exists():
        return []
    out = []
    for line in log.read_text().splitlines():
        parts = line.split()
        out.append((parts[0], " ".join(parts[1:-1]), int(parts[-1]) / 1e9))
    log.unlink()
    return out


def apt(root: Path, *argv: str) -> str:
    res = chroot_run(root, ["apt-get", "-y", "-q", *argv], timeout=3600, check=False)
    if res.returncode != 0:
        raise SystemExit(f"apt-get {argv} failed:\n{res.stdout[-3000:]}\n{res.stderr[-3000:]}")
    return res.stdout + res.stderr


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", type=Path, default=HERE.parent / ".dev" / "bench-apt" / "root")
    ap.add_argument("--venvs", type=int, default=10000)
    ap.add_argument("--files", type=int, default=300_000)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--fresh", action="store_true")
    ap.add_argument("--out", type=Path, default=HERE / "out")
    args = ap.parse_args(argv)
    if os.geteuid() != 0:
        raise SystemExit("bench/apt_hook.py needs root (chroot, mount)")
    if args.fresh:
        remove_root(args.root)
    prepare(args.root, args.venvs, args.files)
    root = args.root
    hook_times(root)
    res = chroot_run(root, ["/usr/local/bin/venvkeeper", "scan", "-q"], timeout=7200, check=False)
    if res.returncode not in (0, 1, 2):
        raise SystemExit(f"the timer's scan failed: {res.stderr[-2000:]}")
    print("the timer's scan:", res.stdout.strip())
    load0 = os.getloadavg()
    kinds = {
        "unrelated install": ("install", "/opt/debs/vk-unrelated.deb"),
        "unrelated remove": ("remove", "vk-unrelated"),
        "python patch": ("install", "--reinstall", *PY311),
        "python patch, version changed": ("install", "--reinstall", *PY311),
    }
    results: dict[str, dict[str, list[float]]] = {k: {} for k in kinds}
    sample = {}
    header = root / PATCHLEVEL.lstrip("/")
    original = header.read_bytes()
    try:
        for i in range(args.runs):
            for kind, run in kinds.items():
                if kind.endswith("version changed"):
                    header.write_bytes(original.replace(b'"3.11.2"', f'"3.11.{100 + i}"'.encode()))
                out = apt(root, *run)
                sample[kind] = out
                for tool, what, seconds in hook_times(root):
                    words = what.split()
                    stage = words[1] if tool == "venvkeeper" and len(words) > 1 else "hook"
                    results[kind].setdefault(f"{tool} {stage}", []).append(seconds)
    finally:
        header.write_bytes(original)
    load1 = os.getloadavg()
    print(f"load average: {load0[0]:.1f} at the start, {load1[0]:.1f} at the end")
    summary: dict[str, dict[str, float]] = {}
    for kind, hooks in results.items():
        print(f"{kind}:")
        summary[kind] = {}
        for hook, times in sorted(hooks.items()):
            med = statistics.median(times)
            summary[kind][hook] = med
            print(f"  {hook:28} median {med:6.3f} s of {len(times)}: "
                  + ", ".join(f"{t:.3f}" for t in times))  # fmt: skip
    for kind in results:
        vk = summary[kind].get("venvkeeper post-invoke")
        nr = summary[kind].get("needrestart hook")
        if vk is not None and nr:
            print(f"{kind}: venvkeeper post-invoke / needrestart's hook = {vk / nr:.2f}x")
    for kind in ("python patch", "python patch, version changed"):
        print(f"what apt showed ({kind}):")
        print("\n".join("  " + ln for ln in sample.get(kind, "").splitlines()
                        if "venvkeeper" in ln or "restart" in ln.lower()))  # fmt: skip
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "apt_hook.json").write_text(
        json.dumps({"runs": results, "median_s": summary, "load": [load0, load1]}, indent=2) + "\n"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
