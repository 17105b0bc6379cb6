"""The system package manager, asked read-only: who owns a file, which files a package has.

dpkg (Debian, Ubuntu) and rpm (Fedora, RHEL, SUSE) are supported. Only their query commands
run (``dpkg-query -S/-L``, ``rpm -qf/-ql``), found in the system directories (never on the
caller's ``PATH``) unless the caller names a directory, with a timeout and a clean
environment.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Optional

from venvkeeper.errors import CommandError, UsageError
from venvkeeper.host import command, programs

TIMEOUT = 60.0
_GLOB = set("*?[]\\")
#: Where dpkg-query and rpm are looked for, unless a caller names a directory: never the
#: caller's PATH (as root, a planted ``dpkg-query`` early on it would run as root).
SYSTEM_PATH = "/usr/bin:/bin:/usr/sbin:/sbin"
_ENV = {"PATH": SYSTEM_PATH, "LC_ALL": "C"}


def _tool(names: Sequence[str], search_path: Optional[str]) -> Optional[tuple[str, str]]:
    """The first of *names* found on *search_path* (an explicit ``PATH``-like list, e.g. a
    stand-in tool directory), or on :data:`SYSTEM_PATH` when it is None; each checked by
    the trust rule (:mod:`venvkeeper.host.programs`)."""
    dirs = (SYSTEM_PATH if search_path is None else search_path).split(":")
    for name in names:
        found = programs.find(name, dirs=dirs)
        if found:
            return name, found
    return None


def manager(search_path: Optional[str] = None) -> Optional[str]:
    """``"dpkg"``, ``"rpm"`` or None: the package manager this host has."""
    found = _tool(("dpkg-query", "rpm"), search_path)
    if found is None:
        return None
    return "dpkg" if found[0] == "dpkg-query" else "rpm"


def owners(paths: Sequence[str], search_path: Optional[str] = None) -> dict[str, str]:
    """The package owning each of *paths* (those owned by none are left out). One query
    for all of them; an absent package manager or a failed query gives ``{}``."""
    paths = [p for p in dict.fromkeys(paths) if p.startswith("/") and not _GLOB & set(p)]
    found = _tool(("dpkg-query", "rpm"), search_path)
    if not paths or found is None:
        return {}
    name, exe = found
    try:
        if name == "dpkg-query":
            res = command.run([exe, "-S", *paths], timeout=TIMEOUT, env=_ENV)
            return _parse_dpkg_search(res.stdout, set(paths))
        res = command.run(
            [exe, "-qf", "--queryformat", "%{NAME}\\n", *paths], timeout=TIMEOUT, env=_ENV
        )
        return _parse_rpm_owners(res.stdout, paths)
    except CommandError:
        return {}


def _parse_dpkg_search(text: str, wanted: set[str]) -> dict[str, str]:
    """``dpkg-query -S`` lines: ``pkg[:arch][, pkg2]: /path``; diversions are skipped."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        if line.startswith("diversion by") or ": /" not in line:
            continue
        pkgs, _, path = line.partition(": /")
        path = "/" + path
        if path in wanted and path not in out:
            out[path] = pkgs.split(",")[0].strip().split(":")[0]
    return out


def _parse_rpm_owners(text: str, paths: Sequence[str]) -> dict[str, str]:
    """``rpm -qf`` prints one line per path, in order (``file ... is not owned ...``)."""
    out: dict[str, str] = {}
    lines = text.splitlines()
    if len(lines) != len(paths):
        return out
    for path, line in zip(paths, lines):
        line = line.strip()
        if line and " " not in line:
            out[path] = line
    return out


def package_files(
    package: str, search_path: Optional[str] = None, root: Optional[str] = None
) -> list[str]:
    """Every file and link *package* installed (directories left out: other packages share
    them; none for a package dpkg knows without files). Raises :class:`UsageError` when
    there is no package manager or no such package. *root*: ask the package database of
    that OS root (a chroot) instead of this host's; the paths are then as the root names
    them."""
    found = _tool(("dpkg-query", "rpm"), search_path)
    if found is None:
        raise UsageError(
            f"--remove-package {package}: neither dpkg nor rpm is installed, so venvkeeper"
            " cannot tell which files the package owns; name them with --remove PATH instead"
        )
    name, exe = found
    where: list[str] = []
    if root is not None and root != "/":
        where = [f"--admindir={root.rstrip('/')}/var/lib/dpkg"]
        if name != "dpkg-query":
            where = ["--root", root]
    argv = [exe, *where, "-L", package] if name == "dpkg-query" else [exe, *where, "-ql", package]
    res = command.run(argv, timeout=TIMEOUT, env=_ENV)
    listed = [ln for ln in res.stdout.splitlines() if ln.startswith("/")]
    if res.returncode == 0 and "does not contain any files" in res.stdout:
        # dpkg knows it, without files: removed already and only its conffiles left (a
        # release upgrade leaves python3.11-venv so), or a metapackage: removing it
        # removes no file.
        return []
    if res.returncode != 0 or not listed:
        why = (res.stderr.strip() or res.stdout.strip()).splitlines()
        raise UsageError(
            f"--remove-package {package}: {name} knows no installed package of that name"
            + (f" ({why[0]})" if why else "")
        )
    out = []
    below = root.rstrip("/") if root is not None else ""
    for p in dict.fromkeys(listed):
        try:
            if os.path.isdir(below + p) and not os.path.islink(below + p):
                continue
        except (OSError, ValueError):
            pass
        out.append(p)
    return out
