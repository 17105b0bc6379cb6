"""Files of single Debian packages, for tests that need what a release shipped without a
whole root: ``apt-get download`` from Debian's archive (the suite's own package lists, kept
apart from the host's apt state), unpacked with ``dpkg-deb -x``.

The unpacked tree is cached beside the debootstrapped roots (:data:`debroot.CACHE`, with
the same lock), named by the suite and the packages: a test downloads once per machine. A
test that cannot have them (no apt-get, the archive unreachable, no keyring for the suite)
is skipped with the reason.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

import pytest

from debroot import CACHE, MIRROR, _locked, _require_network

#: Bump when the way a tree is made changes: older trees are then not reused.
RECIPE = 1
KEYRING = Path("/usr/share/keyrings/debian-archive-keyring.gpg")


def _apt_options(work: Path) -> list[str]:
    return [
        "-o",
        f"Dir::Etc::SourceList={work / 'sources.list'}",
        "-o",
        "Dir::Etc::SourceParts=/dev/null",
        "-o",
        f"Dir::State::Lists={work / 'lists'}",
        "-o",
        f"Dir::Cache={work / 'cache'}",
        "-o",
        "Dir::State::status=/dev/null",
        "-o",
        "Acquire::Languages=none",
        "-o",
        "Acquire::Check-Valid-Until=false",  # an old suite's Release may be past its date
        "-o",
        "APT::Sandbox::User=root",
    ]


def debian_files(suite: str, packages: Sequence[str]) -> Path:
    """The files of *packages* as *suite* ships them, unpacked under the returned root
    (``ROOT/usr/...``)."""
    if os.geteuid() != 0:
        pytest.skip("apt-get download of Debian packages needs root here")
    if shutil.which("apt-get") is None or shutil.which("dpkg-deb") is None:
        pytest.skip("apt-get and dpkg-deb are needed to fetch Debian packages")
    if not KEYRING.is_file():
        pytest.skip(f"no {KEYRING} to check the archive's signatures")
    key = hashlib.sha256(repr((suite, sorted(packages), RECIPE)).encode()).hexdigest()[:12]
    dest = CACHE / f"debfiles-{suite}-{key}"
    with _locked(dest.name):
        if (dest / ".done").exists():
            return dest
        _require_network(suite)
        work = CACHE / f"{dest.name}.build-{os.getpid()}"
        shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(dest, ignore_errors=True)
        try:
            for sub in ("lists/partial", "cache/archives/partial", "debs", "root"):
                (work / sub).mkdir(parents=True)
            (work / "sources.list").write_text(f"deb [signed-by={KEYRING}] {MIRROR} {suite} main\n")
            opts = _apt_options(work)
            env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL": "C"}
            for argv, cwd in (
                (["apt-get", *opts, "update"], work),
                (["apt-get", *opts, "download", *packages], work / "debs"),
            ):
                res = subprocess.run(
                    argv, capture_output=True, text=True, timeout=900, env=env, cwd=cwd
                )
                if res.returncode != 0:
                    raise RuntimeError(f"{argv[0]} {argv[-1]} failed:\n{res.stderr[-2000:]}")
            for deb in sorted((work / "debs").glob("*.deb")):
                subprocess.run(
                    ["dpkg-deb", "-x", str(deb), str(work / "root")],
                    check=True,
                    capture_output=True,
                    timeout=300,
                )
            (work / "root" / ".done").write_text(" ".join(packages) + "\n")
            os.rename(work / "root", dest)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return dest
