"""Build dist/venvkeeper.pyz: venvkeeper and its pure-Python dependencies in one zipapp.

    python tools/build_pyz.py [--out dist/venvkeeper.pyz] [--wheels DIR] [--offline]

For hosts without the Debian package: one file that runs on any CPython 3.9+
(``#!/usr/bin/env python3``), so a minor upgrade of the system Python cannot kill it, as it
kills a tool that pip put in /usr/local/lib/python3.X/dist-packages.

Why the stdlib ``zipapp`` and not shiv or pex: shiv unpacks itself into ~/.shiv on its
first run, which fails where the home is read-only or hidden (root's systemd timer runs
with ProtectHome=, contrib/systemd), and leaves a copy per version behind; pex brings its
own runtime and bootstrap into every run. A plain zipapp is run by the interpreter's own
zipimport straight from the archive: nothing is extracted, nothing is needed beyond the
stdlib, nothing is written at run time. That holds because every dependency is pure Python
and reads no data file through a ``__file__`` path at run time (prometheus_client,
packaging, tomli: tests/test_pyz.py runs scan,
its JSON, a colour table, restarts and the Prometheus export from the archive on every
CPython 3.9-3.13 of the machine).

The wheels are resolved once for the oldest supported Python (3.9, pure wheels only:
``py3-none-any``), so one set serves 3.9 to 3.13 and tomli is inside for 3.9/3.10 (3.11+
use tomllib). They are downloaded into a cache (default ~/.cache/venvkeeper-build/
pyz-wheels); offline, the cached wheels are used. The archive is reproducible: its entries
are sorted and dated SOURCE_DATE_EPOCH (or 1980-01-01), with fixed modes. No ``.pyc`` is
shipped: a bytecode file serves one minor only, and zipimport compiles what it imports.

Exit status: 0 built, 2 bad arguments, 3 the wheels could not be had (offline and not
cached), 1 any other failure.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

try:
    import tomllib
except ImportError:  # Python < 3.11
    import tomli as tomllib
from packaging.requirements import Requirement  # the dev venv has both (venvkeeper needs them)

ROOT = Path(__file__).resolve().parent.parent
INTERPRETER = "/usr/bin/env python3"
#: The oldest Python the archive supports: the wheels are resolved for it.
OLDEST = "3.9"
#: The minors it is tested on (tests/test_pyz.py); a dependency any of them needs is inside.
SUPPORTED = ("3.9", "3.10", "3.11", "3.12", "3.13")
#: pip's options that pick pure-Python wheels for every CPython from OLDEST on.
PURE = [
    "--only-binary=:all:",
    "--python-version",
    OLDEST,
    "--implementation",
    "py",
    "--abi",
    "none",
    "--platform",
    "any",
]
#: What is dropped from the installed tree: scripts, bytecode, pip's bookkeeping.
DROP_DIRS = {"__pycache__", "bin"}
DROP_DIST_INFO = {"RECORD", "INSTALLER", "REQUESTED", "direct_url.json"}

MAIN = '''\
"""venvkeeper as a zipapp: python3 venvkeeper.pyz COMMAND ..."""
import sys

if sys.version_info < (3, 9):
    sys.exit(
        "venvkeeper: needs CPython 3.9 or newer, this is %d.%d (%s)"
        % (sys.version_info[0], sys.version_info[1], sys.executable)
    )

from venvkeeper.cli import main

sys.exit(main())
'''


class NoWheels(Exception):
    """The runtime dependencies could not be downloaded nor found in the cache."""


def default_wheels() -> Path:
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache")
    return Path(cache, "venvkeeper-build", "pyz-wheels")


def requirements() -> list[str]:
    """pyproject's runtime dependencies for the archive: each one that any supported minor
    needs, without its marker (pip evaluates markers for the Python that runs pip, not for
    ``--python-version``: tomli, for 3.9 and 3.10 only, would be left out on 3.11)."""
    with open(ROOT / "pyproject.toml", "rb") as f:
        deps: list[str] = tomllib.load(f)["project"]["dependencies"]
    out = []
    for dep in deps:
        req = Requirement(dep)
        if req.marker is None or any(
            req.marker.evaluate({"python_version": v, "python_full_version": f"{v}.0"})
            for v in SUPPORTED
        ):
            req.marker = None
            out.append(str(req))
    return out


def _pip(*args: str) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q", *args]
    return subprocess.run(argv, capture_output=True, text=True, timeout=600)


def install_deps(stage: Path, wheels: Path, offline: bool) -> None:
    """The runtime dependencies, installed (not compiled) into *stage* from *wheels*,
    which is refreshed from the registry first unless *offline*."""
    reqs = requirements()
    wheels.mkdir(parents=True, exist_ok=True)
    if not offline:
        got = _pip("download", *PURE, "-d", str(wheels), *reqs)
        if got.returncode != 0:
            print(
                f"build_pyz: cannot download the wheels ({_last_line(got.stderr)}):"
                f" using the cached ones in {wheels}",
                file=sys.stderr,
            )
    res = _pip(
        "install",
        *PURE,
        "--no-index",
        "--find-links",
        str(wheels),
        "--no-compile",
        "--target",
        str(stage),
        *reqs,
    )
    if res.returncode != 0:
        raise NoWheels(
            f"the wheels of {', '.join(reqs)} are neither downloadable nor all in {wheels}:"
            f" {_last_line(res.stderr)}"
        )


def _last_line(text: str) -> str:
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return lines[-1] if lines else "no message"


def stage_tree(stage: Path) -> None:
    """venvkeeper's own source, its licence and ``__main__.py`` beside the dependencies;
    scripts, bytecode and pip's records out (each dependency keeps its METADATA and its
    licence files)."""
    shutil.copytree(
        ROOT / "src" / "venvkeeper",
        stage / "venvkeeper",
        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"),
    )
    shutil.copyfile(ROOT / "LICENSE", stage / "LICENSE")
    (stage / "__main__.py").write_text(MAIN, encoding="utf-8")
    for name in DROP_DIRS:
        for d in sorted(stage.rglob(name), reverse=True):
            if d.is_dir():
                shutil.rmtree(d)
    for info in stage.glob("*.dist-info"):
        for name in DROP_DIST_INFO:
            (info / name).unlink(missing_ok=True)


def write_archive(stage: Path, out: Path) -> None:
    """*stage* as a zipapp at *out*: the shebang, then a zip with sorted entries, one date
    and fixed modes; executable. This is what ``zipapp.create_archive`` writes, done by
    hand for one reason: its directory walk is unsorted before Python 3.13, so the same
    tree would not give the same bytes. (Copying a finished zip through create_archive
    would keep its offsets relative to the zip, not the file, which unzip warns about.)"""
    epoch = int(os.environ.get("SOURCE_DATE_EPOCH", "315532800"))
    date = time.gmtime(max(epoch, 315532800))[:6]
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(f".{out.name}.part")
    try:
        with open(partial, "wb") as f:
            f.write(b"#!" + INTERPRETER.encode() + b"\n")
            with zipfile.ZipFile(f, "w") as z:
                for path in sorted(p for p in stage.rglob("*") if p.is_file()):
                    info = zipfile.ZipInfo(path.relative_to(stage).as_posix(), date_time=date)
                    info.external_attr = 0o100644 << 16
                    info.compress_type = zipfile.ZIP_DEFLATED
                    z.writestr(info, path.read_bytes(), compresslevel=9)
            f.flush()
            os.fsync(f.fileno())
        partial.chmod(0o755)
        os.replace(partial, out)
    finally:
        partial.unlink(missing_ok=True)


def build(out: Path, wheels: Path, offline: bool = False) -> int:
    """Build the archive at *out*; its size in bytes."""
    with tempfile.TemporaryDirectory(prefix="venvkeeper-pyz-") as d:
        stage = Path(d, "stage")
        install_deps(stage, wheels, offline)
        stage_tree(stage)
        write_archive(stage, out)
    return out.stat().st_size


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, default=ROOT / "dist" / "venvkeeper.pyz")
    p.add_argument(
        "--wheels", type=Path, default=default_wheels(), help="the wheel cache (%(default)s)"
    )
    p.add_argument("--offline", action="store_true", help="use only the cached wheels")
    args = p.parse_args(argv)
    try:
        size = build(args.out.resolve(), args.wheels, args.offline)
    except NoWheels as e:
        print(f"build_pyz: {e}", file=sys.stderr)
        return 3
    except (OSError, subprocess.SubprocessError) as e:
        print(f"build_pyz: {e}", file=sys.stderr)
        return 1
    print(f"{args.out}: {size} bytes ({size / 1e6:.1f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
