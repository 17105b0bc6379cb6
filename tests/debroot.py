"""Real Debian roots for the end-to-end tests: any suite debootstrapped, then any chain of
real release upgrades (bullseye -> bookworm -> trixie -> forky).

A :class:`Chain` names a root: the suite debootstrap builds (with its package list), then
the :class:`Hop` of each release upgrade after it (sources switched, ``apt-get update``,
``apt-get full-upgrade``, then the new release's packages installed and the old minor's
purged). Each root of a chain is built once and kept as a tarball under
``~/.cache/venvkeeper-tests/`` (``$VENVKEEPER_TEST_CACHE``), named by the suite, the package
list, each hop and this module's recipe versions: a fresh clone on the same machine reuses
it. A hop's root is built from the previous root's tarball in a scratch directory, so every
tarball holds a release as apt left it, without any test's own files (``KEEP``).
:func:`become` turns a test's root into the next release: it unpacks that release's
tarball and moves the test's files (``KEEP``) across (the upgrade never touches them: this
is what the upgrade would have left). One lock per tarball: two runs on one machine build
each tarball once.

Everything runs as root in a ``chroot`` with its own ``/proc`` (mounted for each command and
unmounted after it, with anything the command left mounted); a ``policy-rc.d`` forbids
starting services. Only Debian's archive (``deb.debian.org``) is reached. A test that cannot
have a root (not root, no debootstrap, the archive unreachable) is skipped with the reason.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import pytest

MIRROR = "http://deb.debian.org/debian"
SUITE = "bookworm"
NEXT = "trixie"
VARIANT = "minbase"
#: What bookworm needs for ``python3 -m venv`` (ensurepip's wheels are split out on
#: Debian), python3-packaging for venvkeeper itself (its one hard dependency), and
#: python3-pip for ``venvkeeper wheelhouse`` (its prefetch is pip's download), and
#: Debian's virtualenv (it seeds pip, setuptools and wheel from Debian's wheels).
PACKAGES = (
    "python3",
    "python3-venv",
    "python3.11-venv",
    "python3-pip-whl",
    "python3-setuptools-whl",
    "python3-packaging",
    "python3-pip",
    "python3-virtualenv",
)
#: Bump when the way a debootstrapped root is built changes: older tarballs are then not
#: reused.
RECIPE = 1
#: Bump when the way a hop is made changes (a plain ``Hop(suite)`` keeps its old name).
HOP_RECIPE = 1
#: The test's own files in a root (venvs, wheels, venvkeeper's source): never in a cached
#: root, moved into an unpacked one by :func:`become`.
KEEP = ("srv", "opt")
CACHE = Path(os.environ.get("VENVKEEPER_TEST_CACHE") or "~/.cache/venvkeeper-tests").expanduser()
ENV = {
    "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "HOME": "/root",
    "LC_ALL": "C.UTF-8",
    "DEBIAN_FRONTEND": "noninteractive",
    "PIP_DISABLE_PIP_VERSION_CHECK": "1",
    "PIP_NO_INPUT": "1",
}
POLICY_RC_D = "#!/bin/sh\n# venvkeeper tests: never start services in this root\nexit 101\n"
#: apt's answer to a Release file past its Valid-Until (forky's, at times).
NO_VALID_UNTIL = ("-o", "Acquire::Check-Valid-Until=false")


@dataclass(frozen=True)
class Hop:
    """One real release upgrade: the sources switched to *suite*, ``apt-get update``,
    ``apt-get full-upgrade``, then *install* installed and the installed ones of *purge*
    purged (the old minor: debootstrap marks every package manual, so autoremove would
    keep it)."""

    suite: str
    install: tuple[str, ...] = ()
    purge: tuple[str, ...] = ()
    #: False where the archive's Release may be past its Valid-Until (forky).
    check_valid_until: bool = True
    #: False: ``--no-install-recommends`` (a smaller root, a faster hop).
    recommends: bool = True

    def tag(self) -> str:
        """The hop's part of a tarball's name: its suite, and a hash of the rest."""
        if self == Hop(self.suite):
            return self.suite
        fields = dataclasses.asdict(self)
        fields["recipe"] = HOP_RECIPE
        return f"{self.suite}.{_digest(fields)[:8]}"

    def apt_options(self) -> list[str]:
        opts = [] if self.check_valid_until else list(NO_VALID_UNTIL)
        if not self.recommends:
            opts += ["-o", "APT::Install-Recommends=false"]
        return opts


@dataclass(frozen=True)
class Chain:
    """A root: *suite* debootstrapped with *packages*, then each of *hops*."""

    suite: str
    packages: tuple[str, ...]
    hops: tuple[Hop, ...] = ()

    @property
    def release(self) -> str:
        """The suite this root is now."""
        return self.hops[-1].suite if self.hops else self.suite

    def key(self) -> str:
        recipe: dict[str, object] = {
            "suite": self.suite,
            "variant": VARIANT,
            "packages": list(self.packages),
            "mirror": MIRROR,
        }
        recipe["recipe"] = RECIPE
        return _digest(recipe)[:12]

    def tarball(self) -> Path:
        hops = "".join(f"-{h.tag()}" for h in self.hops)
        return CACHE / f"debian-{self.suite}-{VARIANT}-{self.key()}{hops}.tar{_ext()}"

    def upto(self, n: int) -> Chain:
        """This chain's root after its first *n* hops."""
        return dataclasses.replace(self, hops=self.hops[:n])

    def then(self, hop: Hop) -> Chain:
        return dataclasses.replace(self, hops=(*self.hops, hop))

    def releases(self) -> list[Chain]:
        """The root of each release of the chain, the first (debootstrapped) first."""
        return [self.upto(n) for n in range(len(self.hops) + 1)]


#: The roots the single-upgrade tests use: bookworm, and bookworm upgraded to trixie.
BOOKWORM = Chain(SUITE, PACKAGES)
TRIXIE = BOOKWORM.then(Hop(NEXT))


def minor_packages(minor: str) -> tuple[str, ...]:
    """Debian's packages of Python *minor* itself: what a purge of that minor removes."""
    return (
        f"python{minor}",
        f"python{minor}-minimal",
        f"python{minor}-venv",
        f"libpython{minor}",
        f"libpython{minor}-minimal",
        f"libpython{minor}-stdlib",
    )


#: Each release's python3 minor.
MINORS = {"bullseye": "3.9", "bookworm": "3.11", "trixie": "3.13", "forky": "3.14"}
#: The release chain: bullseye (3.9) -> bookworm (3.11) -> trixie (3.13) -> forky (3.14,
#: with python3.15). Each hop installs the new release's venv creators (``python3.X-venv``;
#: pipx from bookworm on, which bullseye does not ship) and purges the old minor. bullseye
#: has python3-pip (``venvkeeper wheelhouse`` downloads with pip), python3-packaging
#: (venvkeeper's one dependency) and Debian's virtualenv; the upgrades keep them.
CHAIN = Chain(
    "bullseye",
    (
        "python3",
        "python3-venv",
        "python3.9-venv",
        "python3-pip",
        "python3-packaging",
        "python3-virtualenv",
    ),
    (
        Hop("bookworm", ("python3.11-venv", "pipx"), minor_packages("3.9"), recommends=False),
        Hop("trixie", ("python3.13-venv",), minor_packages("3.11"), recommends=False),
        Hop(
            "forky",
            ("python3.14-venv", "python3.15", "python3.15-venv"),
            minor_packages("3.13"),
            check_valid_until=False,
            recommends=False,
        ),
    ),
)


def _digest(obj: object) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()


def cache_key() -> str:
    return BOOKWORM.key()


def base_tarball() -> Path:
    return BOOKWORM.tarball()


def upgraded_tarball(packages: Sequence[str] = PACKAGES, key: str = "") -> Path:
    """The upgraded root's tarball: the chain's for the default package set and no *key*;
    else one per package set and per *key* (a hash of what a test put in the root before
    the upgrade besides :data:`KEEP`, such as its configs, which the upgrade reads)."""
    if tuple(packages) == PACKAGES and not key:
        return TRIXIE.tarball()
    base = Chain(SUITE, tuple(packages))
    extra = f"-{key}" if key else ""
    return CACHE / f"debian-{SUITE}-{VARIANT}-{base.key()}{extra}-{NEXT}.tar{_ext()}"


def _ext() -> str:
    return ".zst" if shutil.which("zstd") else ".gz"


def _compress_flag() -> list[str]:
    return ["-I", "zstd -T0 -3 -q"] if shutil.which("zstd") else ["-z"]


# --- preconditions ------------------------------------------------------------------------


def archive_reachable(suite: str = SUITE) -> Optional[str]:
    """None when Debian's archive answers, else why not."""
    url = f"{MIRROR}/dists/{suite}/Release"
    try:
        with urllib.request.urlopen(urllib.request.Request(url, method="HEAD"), timeout=15):
            return None
    except (urllib.error.URLError, OSError) as e:
        return f"Debian's archive is unreachable ({url}: {e})"


def require_root_tools() -> None:
    if os.geteuid() != 0:
        pytest.skip("a Debian chroot needs root (debootstrap, chroot, mount)")
    for t in ("chroot", "mount", "umount", "tar"):
        if shutil.which(t) is None:
            pytest.skip(f"{t} is not installed")


def _require_network(suite: str) -> None:
    why = archive_reachable(suite)
    if why is not None:
        print(f"skipping: {why}")
        pytest.skip(why)


# --- mounts and removal -----------------------------------------------------------------


def mounts_under(root: Path) -> list[str]:
    """Mount points at or below *root* (deepest first), from /proc/self/mountinfo."""
    prefix = os.path.realpath(root)
    found = []
    with open("/proc/self/mountinfo", encoding="utf-8", errors="surrogateescape") as f:
        for line in f:
            point = line.split()[4].encode().decode("unicode_escape")
            if point == prefix or point.startswith(prefix + "/"):
                found.append(point)
    return sorted(found, key=len, reverse=True)


def _umount_all(root: Path) -> None:
    for point in mounts_under(root):
        subprocess.run(["umount", point], capture_output=True, timeout=60)
    left = mounts_under(root)
    if left:
        subprocess.run(["umount", "-l", *left], capture_output=True, timeout=60)
        left = mounts_under(root)
    if left:
        raise RuntimeError(f"still mounted under {root}: {left}")


def remove_root(root: Path) -> None:
    """Delete a root, never through a mount (a /proc or /dev left mounted)."""
    if not root.exists():
        return
    _umount_all(root)
    shutil.rmtree(root)


@contextlib.contextmanager
def mounted(root: Path) -> Iterator[None]:
    """/proc mounted in *root* (the device nodes are debootstrap's own), unmounted after with
    anything else the command left mounted; mounts that were there before (a bind-mounted
    tree the test holds) stay."""
    before = set(mounts_under(root))
    proc = root / "proc"
    proc.mkdir(exist_ok=True)
    subprocess.run(["mount", "-t", "proc", "proc", str(proc)], check=True, timeout=60)
    try:
        yield
    finally:
        _umount(p for p in mounts_under(root) if p not in before)


def _umount(points: Iterator[str]) -> None:
    left = []
    for point in points:  # deepest first
        if subprocess.run(["umount", point], capture_output=True, timeout=60).returncode:
            left.append(point)
    if left:
        subprocess.run(["umount", "-l", *left], capture_output=True, timeout=60)


@contextlib.contextmanager
def bound(src: Path, root: Path, target: str) -> Iterator[Path]:
    """*src* bind-mounted at *target* (an absolute path) inside *root*, unmounted after."""
    point = root / target.lstrip("/")
    point.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "--bind", str(src), str(point)], check=True, timeout=60)
    try:
        yield point
    finally:
        _umount(iter([str(point)]))


@contextlib.contextmanager
def in_memory(path: Path, size: str = "8G") -> Iterator[Path]:
    """*path* (created) on a tmpfs of its own for the roots of one test, unmounted (and
    everything in it gone at once) after. A root with 30 venvs is over 100,000 files:
    removing them from a disk that other work keeps busy took longer than a release's
    repairs. tmpfs only holds what is written: about 1 GB for the chain's root, 2 GB for
    the matrix's four roots."""
    path.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(path)],
        check=True,
        timeout=60,
    )
    try:
        yield path
    finally:
        _umount(iter(mounts_under(path)))
        if mounts_under(path):
            raise RuntimeError(f"still mounted under {path}: {mounts_under(path)}")
        path.rmdir()


def chroot_run(
    root: Path,
    argv: Sequence[str],
    env: Optional[Mapping[str, str]] = None,
    *,
    timeout: float = 600,
    check: bool = True,
    cwd: str = "/",
    input: Optional[str] = None,
) -> subprocess.CompletedProcess[str]:
    """Run *argv* inside *root* with a clean environment (``ENV`` plus *env*), under
    ``timeout`` (seconds)."""
    full = dict(ENV)
    full.update(env or {})
    with mounted(root):
        res = subprocess.run(
            ["chroot", str(root), "/usr/bin/env", "-C", cwd, *argv],
            capture_output=True,
            text=True,
            timeout=timeout,
            env=full,
            input=input,
            stdin=None if input is not None else subprocess.DEVNULL,
        )
    if check and res.returncode != 0:
        raise RuntimeError(
            f"in {root}: {list(argv)} failed ({res.returncode}):\n{res.stdout[-3000:]}\n"
            f"{res.stderr[-3000:]}"
        )
    return res


def _network_files(root: Path) -> None:
    for name in ("resolv.conf", "hosts"):
        src = Path("/etc", name)
        dst = root / "etc" / name
        if src.is_file():
            with contextlib.suppress(OSError):
                dst.unlink()
            shutil.copyfile(src, dst)


# --- building, caching, unpacking -------------------------------------------------------


@contextlib.contextmanager
def _locked(name: str) -> Iterator[None]:
    """One builder of a tarball at a time (two test runs on one machine)."""
    CACHE.mkdir(parents=True, exist_ok=True)
    with open(CACHE / f"{name}.lock", "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        yield


def _pack(root: Path, dest: Path, exclude: Sequence[str] = ()) -> None:
    part = dest.with_name(dest.name + ".part")
    argv = ["tar", "--numeric-owner", "--xattrs", *_compress_flag(), "-cf", str(part)]
    argv += ["--exclude=./proc/*", "--exclude=./sys/*"]
    argv += [f"--exclude=./{x}" for x in exclude]
    subprocess.run([*argv, "-C", str(root), "."], check=True, timeout=900, capture_output=True)
    os.replace(part, dest)


def _unpack(tarball: Path, dest: Path) -> None:
    dest.mkdir(parents=True)
    argv = ["tar", "--numeric-owner", "--xattrs", *_compress_flag(), "-xpf", str(tarball)]
    subprocess.run([*argv, "-C", str(dest)], check=True, timeout=900, capture_output=True)


def _debootstrap(chain: Chain, dest: Path) -> None:
    exe = shutil.which("debootstrap") or "/usr/sbin/debootstrap"
    if not os.path.exists(exe):
        pytest.skip("debootstrap is not installed (./dev.sh test installs it with apt)")
    _require_network(chain.suite)
    res = subprocess.run(
        [
            exe,
            f"--variant={VARIANT}",
            "--include=" + ",".join(chain.packages),
            chain.suite,
            str(dest),
            MIRROR,
        ],
        capture_output=True,
        text=True,
        timeout=1800,
        env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL": "C"},
    )
    if res.returncode != 0:
        log = dest / "debootstrap" / "debootstrap.log"
        tail = log.read_text(errors="replace")[-3000:] if log.exists() else res.stderr[-3000:]
        raise RuntimeError(f"debootstrap {chain.suite} failed ({res.returncode}):\n{tail}")
    policy = dest / "usr/sbin/policy-rc.d"
    policy.write_text(POLICY_RC_D)
    policy.chmod(0o755)


def cached(chain: Chain) -> Path:
    """The tarball of *chain*'s root, built first when missing (a hop's from the previous
    release's, recursively; each under its own lock)."""
    require_root_tools()
    tarball = chain.tarball()
    with _locked(tarball.name):
        if tarball.exists():
            return tarball
        build = CACHE / f"build-{os.getpid()}-{chain.release}"
        remove_root(build)
        try:
            if not chain.hops:
                _debootstrap(chain, build)
            else:
                unpack_root(chain.upto(len(chain.hops) - 1), build)
                upgrade(build, chain.upto(len(chain.hops) - 1).release, chain.hops[-1])
            _pack(build, tarball, exclude=KEEP)
        finally:
            remove_root(build)
    return tarball


def unpack_root(chain: Chain, dest: Path) -> Path:
    """*chain*'s root at *dest* (unpacked from the cache, built into it first if needed)."""
    _unpack(cached(chain), dest)
    _network_files(dest)
    return dest


def bookworm_root(dest: Path, packages: Sequence[str] = PACKAGES) -> Path:
    """A bookworm root at *dest* (unpacked from the cache, built into it first if needed),
    with *packages* (the default set, or more: each set is a tarball of its own)."""
    return unpack_root(Chain(SUITE, tuple(packages)), dest)


def apt_update(root: Path, suite: str = SUITE, options: Sequence[str] = ()) -> None:
    """``apt-get update`` in *root* (its sources name *suite*), skipped when the archive
    cannot be reached."""
    _require_network(suite)
    _network_files(root)
    chroot_run(root, ["apt-get", *options, "update"], timeout=900)


def _switch_sources(root: Path, old: str, new: str) -> None:
    for f in [root / "etc/apt/sources.list", *(root / "etc/apt/sources.list.d").glob("*")]:
        if f.is_file():
            f.write_text(
                f.read_text().replace(f" {old} ", f" {new} ").replace(f" {old}\n", f" {new}\n")
            )


def full_upgrade(
    root: Path, old: str = SUITE, new: str = NEXT, options: Sequence[str] = ()
) -> subprocess.CompletedProcess[str]:
    """A real ``apt-get full-upgrade`` of *root* (*old*) to *new*, the sources switched; its
    output (stdout and stderr) is returned. Never cached: see :func:`become`."""
    _switch_sources(root, old, new)
    apt_update(root, new, options)
    res = chroot_run(
        root,
        [
            "apt-get",
            "-y",
            *options,
            "-o",
            "Dpkg::Options::=--force-confnew",
            "-o",
            "Dpkg::Options::=--force-confdef",
            "full-upgrade",
        ],
        timeout=1800,
    )
    chroot_run(root, ["apt-get", "clean"])
    return res


def installed(root: Path, pkgs: Sequence[str]) -> list[str]:
    """Those of *pkgs* that dpkg has installed in *root*."""
    res = chroot_run(root, ["dpkg-query", "-W", "-f", "${Package} ${Status}\n", *pkgs], check=False)
    return [ln.split()[0] for ln in res.stdout.splitlines() if ln.endswith(" installed")]


def upgrade(root: Path, old: str, hop: Hop) -> None:
    """*hop* done in *root* (now *old*), for real: full-upgrade, install, purge, clean."""
    opts = hop.apt_options()
    full_upgrade(root, old, hop.suite, opts)
    if hop.install:
        chroot_run(root, ["apt-get", "-y", *opts, "install", *hop.install], timeout=1800)
    gone = installed(root, hop.purge)
    if gone:
        purge(root, gone)
    chroot_run(root, ["apt-get", "clean"])


def become(root: Path, chain: Chain) -> dict[str, float]:
    """*root* (the test's, at *chain*'s previous release) as *chain*'s last hop leaves it:
    that release's cached root unpacked, the test's own files (``KEEP``) moved into it.
    Returns timings (s): building the cache when it was missing, unpacking."""
    times: dict[str, float] = {}
    t0 = time.monotonic()
    had = chain.tarball().exists()
    cached(chain)
    if not had:
        times[f"build {chain.release}"] = time.monotonic() - t0
    t1 = time.monotonic()
    new = root.with_name(root.name + ".next")
    old = root.with_name(root.name + ".prev")
    remove_root(new)
    remove_root(old)
    unpack_root(chain, new)
    for name in KEEP:
        if (root / name).exists():
            remove_root(new / name)
            os.rename(root / name, new / name)
    os.rename(root, old)
    os.rename(new, root)
    remove_root(old)
    times[f"unpack {chain.release}"] = time.monotonic() - t1
    return times


def upgrade_to_trixie(
    root: Path,
    packages: Sequence[str] = PACKAGES,
    *,
    key: str = "",
    keep: Sequence[str] = KEEP,
) -> dict[str, float]:
    """*root* (a bookworm root of *packages*) as a real ``apt-get full-upgrade`` to trixie
    leaves it. The default root is the chain's cached trixie (:func:`become`). A root of
    other packages, or with a test's own files the upgrade reads (*key*: their hash, such
    as configs in /etc), is upgraded in place the first time and cached without *keep*
    (the test's own top directories); after that the cached root is unpacked and *keep*
    moved into it. Returns timings."""
    if tuple(packages) == PACKAGES and not key:
        return become(root, TRIXIE)
    times: dict[str, float] = {}
    tarball = upgraded_tarball(packages, key)
    with _locked(tarball.name):
        t0 = time.monotonic()
        if not tarball.exists():
            full_upgrade(root)
            times["full-upgrade"] = time.monotonic() - t0
            _pack(root, tarball, exclude=keep)
            times["pack"] = time.monotonic() - t0 - times["full-upgrade"]
            return times
    new = root.with_name(root.name + ".upgraded")
    old = root.with_name(root.name + ".bookworm")
    remove_root(new)
    _unpack(tarball, new)
    for name in keep:
        if (root / name).exists():
            remove_root(new / name)
            os.rename(root / name, new / name)
    os.rename(root, old)
    os.rename(new, root)
    remove_root(old)
    _network_files(root)
    times["unpack-upgraded"] = time.monotonic() - t0
    return times


def purge(root: Path, pkgs: Sequence[str]) -> subprocess.CompletedProcess[str]:
    """``apt-get purge`` *pkgs* in *root* (no download needed)."""
    return chroot_run(root, ["apt-get", "-y", "purge", *pkgs], timeout=900)
