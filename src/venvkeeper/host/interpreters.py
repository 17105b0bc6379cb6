"""The Pythons installed on a host (not venvs): found, judged, and read back from a profile.

``venvkeeper host-profile`` searches the usual places and ``PATH``; the profile it prints
(:mod:`venvkeeper.formats.profile`) is what ``predict --host-profile`` reads to judge a
shared tree of venvs as another host would. Versions are read statically (the file name,
the stdlib landmark, ``patchlevel.h``); only a system interpreter owned by root, in
directories only root can write, is ever run to ask its version, and only when the files
do not tell.
"""

from __future__ import annotations

import contextlib
import glob
import os
import re
import socket
import stat
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any, Optional

from venvkeeper.errors import CommandError, UsageError
from venvkeeper.host import command, fsutil, pkgdb
from venvkeeper.host.bases import (
    HostCache,
    classify_origin,
    follow_links,
    forget,
    uv_minor_link,
)
from venvkeeper.host.fsutil import normpath
from venvkeeper.host.hostfs import REAL, HostFS, Overlay, interpreter_bytes, patchlevel_bytes
from venvkeeper.host.trust import distrust
from venvkeeper.model.host import HostProfile, Interpreter, InterpreterName
from venvkeeper.model.venv import BaseOrigin

#: The kind of a profile (the envelope of every venvkeeper JSON document,
#: :mod:`venvkeeper.formats.envelope`, which writes it), and the kind that profiles of
#: schema version 1 had: both are read, for profiles made by older venvkeepers.
PROFILE_KIND = "host-profile"
PROFILE_KINDS = (PROFILE_KIND, "venvkeeper-host-profile")
#: The newest schema version read: the envelope's SCHEMA_VERSION (a test checks they are
#: equal, so whoever raises it decides what it means for profiles). Version 1 differs
#: only in its envelope: its fields are read the same way.
PROFILE_SCHEMA = 2
MAX_HOMES = 2000
#: The most a profile file may weigh and nest (one lists a host's Pythons: some kB, 5 deep).
PROFILE_LIMIT = 16 << 20
PROFILE_DEPTH = 16

#: File names that are interpreters (not python3-config, not python3.11-dbg-config, ...).
NAME = re.compile(r"python(\d+(\.\d+t?)?)?")
_VERSIONED = re.compile(r"python(\d+\.\d+t?)")
#: What a profile's searched prefixes hide: lib/python3.10, lib/python310.zip, ...
_STDLIB_DIR = r"python\d[\d.]*t?(\.zip)?"


@dataclass(frozen=True)
class Places:
    """Where to look for interpreters: bin directories, and trees of installations."""

    bin_dirs: tuple[str, ...]
    trees: tuple[str, ...]  # each child's bin/ is searched (pyenv versions, uv pythons)


def _homes(root: str = "/") -> list[str]:
    homes = [os.path.join(root, "root")]
    with contextlib.suppress(OSError):
        homes += sorted(e.path for e in os.scandir(os.path.join(root, "home")) if e.is_dir())
    return homes[:MAX_HOMES]


def default_places(env_path: Optional[str] = None) -> Places:
    """The usual places on Linux, and the directories on *env_path* (default ``$PATH``)."""
    bins = ["/usr/bin", "/bin", "/usr/local/bin"]
    bins += sorted(glob.glob("/opt/*/bin")) + sorted(glob.glob("/opt/*/*/bin"))
    bins += ["/opt/homebrew/bin", "/home/linuxbrew/.linuxbrew/bin"]
    trees = []
    for env in ("PYENV_ROOT",):
        if os.environ.get(env):
            trees.append(os.path.join(os.environ[env], "versions"))
    if os.environ.get("UV_PYTHON_INSTALL_DIR"):
        trees.append(os.environ["UV_PYTHON_INSTALL_DIR"])
    for home in _homes():
        bins.append(f"{home}/.local/bin")
        trees += [f"{home}/.pyenv/versions", f"{home}/.local/share/uv/python"]
    path = os.environ.get("PATH", "") if env_path is None else env_path
    bins += [d for d in path.split(os.pathsep) if d.startswith("/")]
    return Places(tuple(dict.fromkeys(bins)), tuple(dict.fromkeys(trees)))


def _tree_bins(tree: str, fs: HostFS) -> list[str]:
    return [f"{tree}/{n}/bin" for n in sorted(fs.listdir(tree))]


def _is_venv_bin(d: str, fs: HostFS) -> bool:
    """A venv's bin/ on PATH (an activated venv) holds no base interpreter."""
    return fs.path_state(os.path.dirname(d) + "/pyvenv.cfg") is True


def _version_from_names(names: Iterable[InterpreterName]) -> Optional[str]:
    for n in names:
        for hop in n.hops:
            m = _VERSIONED.fullmatch(hop.rsplit("/", 1)[-1])
            if m:
                return m.group(1)
    return None


def _root_only(path: str) -> bool:
    """Only root can change *path*, every link on the way to it and every directory above
    them (the one trust rule, :func:`venvkeeper.host.trust.distrust`): running it cannot
    run anything another user planted."""
    return distrust(path, 0) is None


_PROBE = (
    "import sys; v = sys.version_info; "
    "print('%d.%d.%d' % v[:3]); print(sys.base_prefix); print(getattr(sys, 'abiflags', ''))"
)


def _ask(exe: str) -> Optional[tuple[str, str, str]]:
    """(X.Y[t], X.Y.Z, prefix) from running a root-owned system interpreter, isolated."""
    try:
        res = command.run(
            [exe, "-I", "-S", "-c", _PROBE],
            timeout=10,
            env={"PATH": "/usr/bin:/bin", "LC_ALL": "C"},
            cwd="/",
        )
    except CommandError:
        return None
    lines = res.stdout.splitlines()
    if res.returncode != 0 or len(lines) < 3 or not re.fullmatch(r"\d+\.\d+\.\d+", lines[0]):
        return None
    minor = lines[0].rsplit(".", 1)[0] + ("t" if "t" in lines[2] else "")
    return minor, lines[0], lines[1]


def find_interpreters(
    places: Places,
    fs: HostFS = REAL,
    *,
    run: bool = False,
    packages: bool = False,
    package_tools: Optional[str] = None,
    packages_root: Optional[str] = "/",
) -> tuple[Interpreter, ...]:
    """Every interpreter reachable by a Python-ish name in *places*, one entry per binary
    with every name that leads to it. *run* lets root-owned system interpreters be asked
    their version when their files do not tell; *packages* asks the package manager who
    owns each one (dpkg-query/rpm from *package_tools*, default the system directories).
    A system interpreter whose package no archive of the Debian root *packages_root*
    offers any more is marked ``obsolete`` (None: another host's files, do not ask this
    one's dpkg)."""
    forget()  # links as they are now (a uv minor link repointed since the last scan)
    by_exe: dict[str, list[InterpreterName]] = {}
    seen_dirs: set[str] = set()
    dirs = list(places.bin_dirs) + [b for t in places.trees for b in _tree_bins(t, fs)]
    for d in dirs:
        try:
            real = fs.realpath(d)
        except (OSError, ValueError):
            continue
        if real in seen_dirs or fs.dir_state(d) is not True or _is_venv_bin(d, fs):
            continue
        seen_dirs.add(real)
        # A uv-managed Python is named through uv's minor-version link when it has one: the
        # name a venv must keep to follow uv's patch upgrades.
        d = uv_minor_link(d, fs) or d
        for name in sorted(fs.listdir(d)):
            if not NAME.fullmatch(name):
                continue
            chain = follow_links(f"{d}/{name}", name, fs)
            if chain.resolved is None:
                continue
            by_exe.setdefault(chain.resolved, []).append(InterpreterName(chain.hops[0], chain.hops))
    host = HostCache(fs, packages_root)
    found: list[Interpreter] = []
    for exe, names in by_exe.items():
        names.sort(key=lambda n: (len(n.path), n.path))
        version = _version_from_names(names)
        source = "name" if version else "unknown"
        is_script = host.is_script(exe)
        prefix: Optional[str] = None
        stdlib: Optional[bool] = False
        if version is None and not is_script:
            guess = os.path.dirname(os.path.dirname(exe))
            cands = [
                m.group(1)
                for n in fs.listdir(guess + "/lib")
                if (m := _VERSIONED.fullmatch(n)) and fs.is_file(f"{guess}/lib/{n}/os.py")
            ]
            if len(cands) == 1:
                version, source = cands[0], "stdlib"
        patch = None
        if version and not is_script:  # a shim has no stdlib of its own
            prefix, denied = host.stdlib_prefix(os.path.dirname(exe), version)
            stdlib = True if prefix else (None if denied else False)
            patch = host.patch_version(prefix, version, exe)
        unsure = version is None or patch is None
        if run and fs is REAL and not is_script and unsure and _root_only(exe):
            asked = _ask(exe)
            if asked is not None and (version is None or asked[0] == version):
                version, patch, source = asked[0], asked[1], "ran"
                if prefix is None:
                    prefix, denied = host.stdlib_prefix(asked[2] + "/bin", version)
                    stdlib = True if prefix else (None if denied else False)
        obsolete: Optional[bool] = None
        origin = classify_origin(exe, "/nonexistent-venv")
        if origin is BaseOrigin.SYSTEM and packages_root is not None:
            obsolete = host.obsolete_package(exe) is not None
        found.append(
            Interpreter(
                executable=exe,
                names=tuple(names),
                version=version,
                patch_version=patch,
                prefix=prefix,
                stdlib_present=stdlib,
                origin=origin,
                is_script=is_script,
                version_source=source,
                obsolete=obsolete,
            )
        )
    if packages and found:
        paths = [p for i in found for p in (i.executable, *(n.path for n in i.names))]
        owned = pkgdb.owners(paths, package_tools)
        found = [
            replace(
                i,
                package=owned.get(i.executable)
                or next((owned[n.path] for n in i.names if n.path in owned), None),
            )
            for i in found
        ]
    found.sort(key=lambda i: i.names[0].path if i.names else i.executable)
    return tuple(found)


def _dir_links(paths: Iterable[str], fs: HostFS) -> tuple[tuple[str, str], ...]:
    """Every directory link met on the way to *paths* (``/bin`` -> ``usr/bin``)."""
    out: dict[str, str] = {}
    for p in paths:
        d = os.path.dirname(p)
        parts = [x for x in d.split("/") if x]
        cur = ""
        for part in parts:
            cur = f"{cur}/{part}"
            if cur in out:
                continue
            try:
                if stat.S_ISLNK(fs.lstat(cur).st_mode):
                    out[cur] = fs.readlink(cur)
            except (OSError, ValueError):
                break
    return tuple(sorted(out.items()))


def host_profile(
    places: Optional[Places] = None,
    *,
    run: bool = True,
    packages: bool = True,
    package_tools: Optional[str] = None,
) -> HostProfile:
    """This host's interpreters, as ``venvkeeper host-profile`` prints them. *package_tools*
    is where dpkg-query/rpm are looked for (default: the system directories, never PATH)."""
    places = places or default_places()
    interps = find_interpreters(places, run=run, packages=packages, package_tools=package_tools)
    bins = [d for d in places.bin_dirs if REAL.dir_state(d) is True]
    trees = [t for t in places.trees if REAL.dir_state(t) is True]
    hops = [h for i in interps for n in i.names for h in n.hops] + [b + "/x" for b in bins]
    return HostProfile(
        hostname=socket.gethostname(),
        created_at=time.time(),
        os_release=_os_release(),
        bin_dirs=tuple(bins),
        trees=tuple(trees),
        dir_links=_dir_links(hops + [t + "/x" for t in trees], REAL),
        interpreters=interps,
    )


def _os_release(path: str = "/etc/os-release") -> str:
    head = REAL.read_head(path, 16 << 10)
    if not head:
        return ""
    for line in head.decode("utf-8", "replace").splitlines():
        if line.startswith("PRETTY_NAME="):
            return line.split("=", 1)[1].strip().strip('"')
    return ""


# --- the profile as a file (written by venvkeeper.formats.profile) ----------------------


class _Bad(Exception):
    pass


def _get(
    d: Any, key: str, kind: type | tuple[type, ...], where: str, optional: bool = False
) -> Any:
    if not isinstance(d, dict):
        raise _Bad(f"{where} is not an object")
    v = d.get(key)
    if v is None and optional:
        return None
    if not isinstance(v, kind) or (isinstance(v, bool) and kind is not bool):
        raise _Bad(f"{where}.{key} is missing or not a {getattr(kind, '__name__', kind)}")
    return v


def _abs_paths(items: Any, where: str) -> tuple[str, ...]:
    if not isinstance(items, list) or not all(
        isinstance(x, str) and x.startswith("/") for x in items
    ):
        raise _Bad(f"{where} must be a list of absolute paths")
    return tuple(normpath(x) for x in items)


def profile_from_dict(data: Any) -> HostProfile:
    """Validate and load a profile; raises ``ValueError`` naming the first bad field."""
    try:
        if _get(data, "kind", str, "profile") not in PROFILE_KINDS:
            raise _Bad(f"not a venvkeeper host profile (kind is not {PROFILE_KIND!r})")
        version = _get(data, "schema_version", int, "profile")
        if version > PROFILE_SCHEMA:
            raise _Bad(
                f"schema_version {version} is newer than this venvkeeper reads"
                f" ({PROFILE_SCHEMA}): upgrade venvkeeper"
            )
        searched = _get(data, "searched", dict, "profile")
        links = _get(data, "dir_links", dict, "profile")
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in links.items()):
            raise _Bad("profile.dir_links must map paths to link targets")
        interps = []
        for n, item in enumerate(_get(data, "interpreters", list, "profile")):
            where = f"interpreters[{n}]"
            names = []
            for m, nm in enumerate(_get(item, "names", list, where)):
                hops = _abs_paths(_get(nm, "hops", list, f"{where}.names[{m}]"), f"{where}.hops")
                if not hops:
                    raise _Bad(f"{where}.names[{m}].hops is empty")
                names.append(InterpreterName(hops[0], hops))
            version = _get(item, "version", str, where, optional=True)
            if version is not None and not re.fullmatch(r"\d+\.\d+t?", version):
                raise _Bad(f"{where}.version {version!r} is not X.Y")
            origin = _get(item, "origin", str, where)
            try:
                origin_value = BaseOrigin(origin)
            except ValueError:
                raise _Bad(f"{where}.origin {origin!r} is unknown") from None
            stdlib = item.get("stdlib_present")
            interps.append(
                Interpreter(
                    executable=_abs_paths([_get(item, "executable", str, where)], where)[0],
                    names=tuple(names),
                    version=version,
                    patch_version=_get(item, "patch_version", str, where, optional=True),
                    prefix=_get(item, "prefix", str, where, optional=True),
                    stdlib_present=stdlib if isinstance(stdlib, bool) else None,
                    origin=origin_value,
                    is_script=bool(item.get("is_script")),
                    package=_get(item, "package", str, where, optional=True),
                    version_source="profile",
                    obsolete=obs if isinstance(obs := item.get("obsolete"), bool) else None,
                )
            )
        return HostProfile(
            hostname=str(data.get("hostname") or "?"),
            created_at=float(data.get("created_at") or 0),
            os_release=str(data.get("os_release") or ""),
            bin_dirs=_abs_paths(_get(searched, "bin_dirs", list, "searched"), "searched.bin_dirs"),
            trees=_abs_paths(_get(searched, "trees", list, "searched"), "searched.trees"),
            dir_links=tuple(sorted(links.items())),
            interpreters=tuple(interps),
        )
    except _Bad as e:
        raise ValueError(str(e)) from None


def load_profile(path: str) -> HostProfile:
    """Read a profile file; a clear :class:`UsageError` for anything wrong with it."""
    try:
        # The file the caller named: a link to it is followed (it is not a scanned tree).
        data = fsutil.load_json_file(
            path, limit_bytes=PROFILE_LIMIT, max_depth=PROFILE_DEPTH, follow_links=True
        )
    except fsutil.NotRegularFile as e:
        raise UsageError(f"host profile {path}: cannot read it: {e.strerror}, not a file") from None
    except OSError as e:
        raise UsageError(f"host profile {path}: cannot read it: {e.strerror or e}") from None
    except fsutil.JSONError as e:
        raise UsageError(f"host profile {path}: {e}") from None
    try:
        return profile_from_dict(data)
    except ValueError as e:
        raise UsageError(f"host profile {path}: {e}") from None


def profile_overlay(p: HostProfile, base: HostFS = REAL) -> Overlay:
    """The filesystem as the profiled host has it: in the places it searched, exactly the
    interpreters it lists (and their stdlib landmarks); elsewhere, this host's files."""
    hidden: list[tuple[str, str]] = []
    bin_dirs = list(p.bin_dirs)
    for tree in p.trees:
        # Installations the profile does not list do not exist there; those it lists are
        # described like bin directories. (Not the whole tree: venvs may live in it.)
        listed = sorted(
            {
                path[len(tree) + 1 :].split("/", 1)[0]
                for i in p.interpreters
                for path in (i.executable, *(h for n in i.names for h in n.hops))
                if path.startswith(tree + "/")
            }
        )
        keep = "|".join(re.escape(x) for x in listed)
        hidden.append((tree, f"(?!(?:{keep})$).*" if keep else ".*"))
        bin_dirs += [f"{tree}/{x}/bin" for x in listed]
    for d in bin_dirs:
        hidden.append((d, NAME.pattern))
        prefix = os.path.dirname(d)
        for sub in ("lib", "lib64", "include"):
            hidden.append((normpath(f"{prefix}/{sub}"), _STDLIB_DIR))
    links: dict[str, str] = {}
    files: dict[str, bytes] = {}
    denied: list[str] = []
    for i in p.interpreters:
        if i.version and i.stdlib_present is None and not i.is_script:
            # The profile could not tell whether its stdlib is there (its user could not
            # read it): venvs on it are "cannot tell" there, not "stdlib gone".
            denied.append(f"{os.path.dirname(os.path.dirname(i.executable))}/lib/python{i.version}")
        for n in i.names:
            for a, b in zip(n.hops, n.hops[1:]):
                links[a] = b
        files[i.executable] = interpreter_bytes(i.is_script)
        if i.version and i.prefix and i.stdlib_present:
            files[f"{i.prefix}/lib/python{i.version}/os.py"] = b""
            if i.patch_version:
                files[f"{i.prefix}/include/python{i.version}/patchlevel.h"] = patchlevel_bytes(
                    i.patch_version
                )
    return Overlay(
        base,
        links=links,
        files=files,
        hidden=hidden,
        dir_links=dict(p.dir_links),
        denied=denied,
    )


def places_in_root(fs: HostFS, extra: Sequence[str] = ()) -> Places:
    """The usual places of another OS root, listed through *fs* (its
    :class:`~venvkeeper.host.hostfs.RootFS`): its system and ``/usr/local`` bin
    directories, ``/opt/*/bin`` and ``/opt/*/*/bin``, its users' ``~/.local/bin``, pyenv
    and uv installations, plus *extra* bin directories. Not ``PATH``: this process's
    ``PATH`` says nothing of the root."""
    bins = ["/usr/bin", "/bin", "/usr/local/bin"]
    opt = [f"/opt/{n}" for n in sorted(fs.listdir("/opt")) if not n.startswith(".")]
    bins += [f"{d}/bin" for d in opt]
    bins += [f"{d}/{n}/bin" for d in opt for n in sorted(fs.listdir(d)) if not n.startswith(".")]
    homes = ["/root", *(f"/home/{n}" for n in sorted(fs.listdir("/home"))[:MAX_HOMES])]
    trees: list[str] = []
    for home in homes:
        bins.append(f"{home}/.local/bin")
        trees += [f"{home}/.pyenv/versions", f"{home}/.local/share/uv/python"]
    return Places(tuple(dict.fromkeys([*bins, *extra])), tuple(trees))


def places_for(profile: Optional[HostProfile], extra: Sequence[str] = ()) -> Places:
    """Where to look for interpreters on the host a profile (or this host) describes, plus
    *extra* bin directories (the ``home`` of the venvs being judged)."""
    base = Places(profile.bin_dirs, profile.trees) if profile is not None else default_places()
    return Places(tuple(dict.fromkeys(base.bin_dirs + tuple(extra))), base.trees)
