"""apt hooks (Debian, Ubuntu): what an apt run's Python changes will break, told before dpkg
touches anything, and a check after it.

``DPkg::Pre-Install-Pkgs`` runs ``venvkeeper apt-hook pre-install`` with the package actions
on stdin in apt's hook protocol version 3 (apt.conf(5)): a line ``VERSION 3``, the
configuration as ``key=value`` lines (%-encoded), a blank line, then one line per action::

    name oldver oldarch oldmulti-arch compare newver newarch newmulti-arch action

where versions and architectures are ``-`` when absent, compare is ``<``, ``=`` or ``>``,
and action is a ``.deb`` path, ``**CONFIGURE**``, ``**REMOVE**`` or ``**ERROR**``. Version 2
has five fields (no architectures). The actions on Python interpreter packages become a
:class:`~venvkeeper.predict.changes.Change`; nothing here runs anything but read-only queries.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Optional
from urllib.parse import unquote

from venvkeeper.errors import CommandError, VenvkeeperError
from venvkeeper.host import command
from venvkeeper.predict.changes import EMBEDDER_PACKAGES, Change
from venvkeeper.textutil import escape

#: Most of stdin read; apt's configuration dump is some KiB, each action one short line.
INPUT_LIMIT = 16 << 20
CONF_NAME = "60venvkeeper"
DEFAULT_APT_CONF_DIR = "/etc/apt/apt.conf.d"

REMOVE = "**REMOVE**"
CONFIGURE = "**CONFIGURE**"


class AptHookError(VenvkeeperError):
    """The hook's input is not what apt sends."""


@dataclass(frozen=True)
class PackageAction:
    """One package action of an apt run, as apt's hook protocol states it."""

    name: str
    old_version: Optional[str]
    compare: str  # "<" upgrade, ">" downgrade (or removal), "=" same version
    new_version: Optional[str]
    action: str  # a .deb path, **CONFIGURE**, **REMOVE**, **ERROR**
    old_arch: Optional[str] = None
    new_arch: Optional[str] = None

    @property
    def removes(self) -> bool:
        return self.action == REMOVE or (self.new_version is None and self.old_version is not None)


@dataclass(frozen=True)
class HookInput:
    """What apt hands a ``Pre-Install-Pkgs`` hook: its configuration and package actions."""

    version: int
    config: tuple[tuple[str, str], ...]  # decoded (key, value), lists as repeated keys
    actions: tuple[PackageAction, ...]

    def config_value(self, key: str) -> Optional[str]:
        key = key.lower()
        found = [v for k, v in self.config if k.lower() == key]
        return found[-1] if found else None


def _field(text: str) -> Optional[str]:
    return None if text == "-" else text


def parse_input(text: str) -> HookInput:
    """Parse what apt writes to a ``Pre-Install-Pkgs`` hook (protocol version 2 or 3)."""
    lines = text.splitlines()
    if not lines:
        raise AptHookError("no input from apt (is this run as a DPkg::Pre-Install-Pkgs hook?)")
    head = lines[0].strip()
    m = re.fullmatch(r"VERSION (\d+)", head)
    if m is None:
        raise AptHookError(
            f"apt sent no protocol version line (first line: '{escape(head[:80])}'): the"
            ' hook needs DPkg::Tools::Options::...::Version "3"; run venvkeeper'
            " install-apt-hooks again"
        )
    version = int(m.group(1))
    if version not in (2, 3):
        raise AptHookError(f"apt hook protocol version {version} is not supported (2 or 3 is)")
    config: list[tuple[str, str]] = []
    i = 1
    while i < len(lines) and lines[i].strip():
        key, sep, value = lines[i].partition("=")
        if not sep:
            raise AptHookError(f"line {i + 1}: expected key=value in apt's configuration dump")
        key = key[:-2] if key.endswith("::") else key  # a list entry: Key::=value
        config.append((unquote(key), unquote(value)))
        i += 1
    if i >= len(lines):
        raise AptHookError("apt's configuration dump does not end with a blank line")
    fields = 9 if version == 3 else 5
    actions: list[PackageAction] = []
    for n, line in enumerate(lines[i + 1 :], i + 2):
        if not line.strip():
            continue
        parts = line.split(maxsplit=fields - 1)
        if len(parts) != fields or parts[(4 if version == 3 else 2)] not in ("<", "=", ">"):
            raise AptHookError(
                f"line {n}: not a version {version} package action: {escape(line[:120])}"
            )
        if version == 3:
            name, old, old_arch, _om, cmp, new, new_arch, _nm, action = parts
        else:
            name, old, cmp, new, action = parts
            old_arch = new_arch = "-"
        actions.append(
            PackageAction(
                name,
                _field(old),
                cmp,
                _field(new),
                action,
                _field(old_arch),
                _field(new_arch),
            )
        )
    return HookInput(version, tuple(config), tuple(actions))


# --- from package actions to a planned change -------------------------------------------

#: python3.11, python3.11-minimal, libpython3.11-minimal, libpython3.11-stdlib, ...
_VERSIONED = re.compile(r"(lib)?python(\d+\.\d+t?)(?:-(minimal|stdlib|dev|venv|dbg|nopie))?")
#: The packages that carry the unversioned /usr/bin/python3 link (python3-minimal) or
#: depend on exactly one minor through it (python3).
_DEFAULT = ("python3", "python3-minimal")
_UPSTREAM = re.compile(r"^(?:\d+:)?(\d+)\.(\d+)")


def minor_of(debian_version: Optional[str]) -> Optional[str]:
    """``3.12`` of ``3.12.6-1`` (an epoch ``1:`` dropped); None when not a Python version."""
    m = _UPSTREAM.match(debian_version or "")
    return f"{m.group(1)}.{m.group(2)}" if m else None


@dataclass(frozen=True)
class PythonChange:
    """What an apt run does to the Python interpreters, and the change predict judges."""

    change: Change
    notes: tuple[str, ...]  # one line per interpreter package change, for the reader
    patch_only: bool  # only upgrades within a minor: venvs keep working, processes restart


def _interesting(name: str) -> bool:
    return name in _DEFAULT or name in EMBEDDER_PACKAGES or _VERSIONED.fullmatch(name) is not None


def python_change(
    actions: Sequence[PackageAction], *, prefix: Optional[str] = None
) -> Optional[PythonChange]:
    """The planned change the interpreter packages among *actions* make (None if they
    touch none).

    A removed interpreter package (``python3.X-minimal``, ``libpython3.X-minimal``,
    ``libpython3.X-stdlib``, ``python3.X``, ``python3-minimal``, ...) takes its files away:
    with *prefix* None these are the package's own file list (dpkg), else the paths a distro
    prefix holds (``PREFIX/bin/python3.X``, ``PREFIX/lib/python3.X``, ``PREFIX/include/
    python3.X``: for a simulated or chrooted distro). ``python3`` or
    ``python3-minimal`` moving to another minor repoints ``python3`` (``/usr/bin/python3``
    and ``/usr/bin/python``, or ``PREFIX/bin/python3``) to ``python3.NEW``."""
    last: dict[str, PackageAction] = {}
    for a in actions:
        if _interesting(a.name):
            prev = last.get(a.name)
            # the unpack line (.deb) and the **CONFIGURE** line tell the same versions;
            # a **REMOVE** anywhere wins
            if prev is None or not prev.removes:
                last[a.name] = a
    if not last:
        return None
    becomes: Optional[str] = None
    embedders: list[str] = []  # embedding modules' packages upgraded or installed
    removed_pkgs: list[str] = []
    notes: list[str] = []
    patch_only = True
    for name in sorted(last):
        a = last[name]
        old, new = a.old_version or "-", a.new_version or "-"
        if a.removes:
            removed_pkgs.append(name)
            notes.append(f"{name} {old} removed")
            patch_only = False
            continue
        if name in EMBEDDER_PACKAGES:
            embedders.append(name)
        if name in _DEFAULT:
            was, will = minor_of(a.old_version), minor_of(a.new_version)
            if will is not None and will != was:
                becomes = will
                patch_only = False
                notes.append(f"{name} {old} -> {new}: python3 becomes python{will}")
                continue
        if a.old_version is None:
            notes.append(f"{name} {new} installed")
        elif a.old_version != a.new_version:
            notes.append(f"{name} {old} -> {new}")
        else:  # dpkg replaces its files all the same
            notes.append(f"{name} {new} reinstalled")
    remove: list[str] = []
    remove_packages: tuple[str, ...] = ()
    if prefix is None:
        remove_packages = tuple(removed_pkgs)
    else:
        for name in removed_pkgs:
            m = _VERSIONED.fullmatch(name)
            if m is None:  # python3-minimal: the unversioned link; python3: no interpreter
                if name == "python3-minimal":
                    remove.append(f"{prefix}/bin/python3")
                continue
            lib, minor, part = m.group(1), m.group(2), m.group(3)
            if not lib and part in (None, "minimal"):
                remove.append(f"{prefix}/bin/python{minor}")
            if lib and part in (None, "minimal", "stdlib"):
                remove.append(f"{prefix}/lib/python{minor}")
            if part == "dev":
                remove.append(f"{prefix}/include/python{minor}")
    link = None if prefix is None else f"{prefix}/bin/python3"
    change = Change(
        python_becomes=((link, becomes),) if becomes else (),
        remove=tuple(dict.fromkeys(remove)),
        remove_packages=remove_packages,
        # rebuilt for the python3 of this run (an upgrade alone keeps the minor it has)
        embedders=tuple((p, None) for p in embedders),
    )
    return PythonChange(change, tuple(notes), patch_only)


# --- the apt configuration file ---------------------------------------------------------

_SAFE_PATH = re.compile(r"/[A-Za-z0-9_./+-]+")
#: The hook's command line starts with this assignment: apt reads a Pre-Install-Pkgs
#: command's protocol options from DPkg::Tools::Options::<its first word>, and the first
#: word must be ours alone (not "if", which other hooks may start with).
_VAR = "VENVKEEPER_APT_HOOK"


def render_conf(venvkeeper: str) -> str:
    """The apt.conf snippet that runs both hooks through *venvkeeper* (an absolute path).

    Each command line is failure-proof: it does nothing when the binary is gone
    (uninstalled without ``--uninstall``); ``|| true`` keeps any failure from apt; and
    venvkeeper's stderr goes through at most its last 4 KiB, as it is when venvkeeper ran
    (``apt-hook`` exits 0 whatever happens inside), else as one line with the exit status
    and the last line it wrote (a Python that cannot import venvkeeper: no traceback)."""
    if not _SAFE_PATH.fullmatch(venvkeeper) or "//" in venvkeeper:
        raise VenvkeeperError(
            f"{escape(venvkeeper)}: the venvkeeper path for the apt hooks must be absolute and"
            " hold only letters, digits and _ . / + - (it goes into a shell command line)"
        )

    def run(stage: str) -> str:
        # stdout goes to apt (fd 3); stderr and then the exit status into awk. No double
        # quote may appear: apt.conf has no way to escape one inside a string.
        return (
            f"{_VAR}={venvkeeper} ; if [ -x ${_VAR} ]; then {{ {{ ${_VAR} apt-hook {stage}"
            " 2>&1 >&3 3>&- ; printf '\\n(exit status %s)\\n' $? ; } | tail -c 4096 | awk"
            " -v ok='(exit status 0)' -v sep=': ' -v q='?'"
            " -v skip='venvkeeper: apt hook skipped: venvkeeper cannot start'"
            " '{ gsub(/[[:cntrl:]]/, q) } NF { a[++n] = $0 } END { if (a[n] == ok) { for (i = 1;"
            " i < n; i++) print a[i] } else { if (n > 1) a[n] = a[n] sep substr(a[n - 1], 1, 200)"
            " ; print skip, a[n] } }' >&2 ; } 3>&1 || true; fi"
        )

    return (
        "// Written by `venvkeeper install-apt-hooks`; remove with"
        " `venvkeeper install-apt-hooks --uninstall`.\n"
        "// Before dpkg runs: which venvs the Python packages of this apt run will break.\n"
        f'DPkg::Pre-Install-Pkgs {{ "{run("pre-install")}"; }};\n'
        "// apt picks the hook's protocol by the first word of its command line.\n"
        f'DPkg::Tools::Options::{_VAR}={venvkeeper}::Version "3";\n'
        "// After dpkg ran: venvs broken now, and processes that need a restart.\n"
        f'DPkg::Post-Invoke {{ "{run("post-invoke")}"; }};\n'
    )


def resolve_self(argv0: str, which: Optional[str]) -> Optional[str]:
    """The absolute path of the running ``venvkeeper`` command, if it can be told."""
    if os.path.basename(argv0) == "venvkeeper" and os.path.isfile(argv0):
        return os.path.abspath(argv0)
    return which


#: What apt's hooks see as PATH when apt runs under sudo (its secure_path).
HOOK_PATH = ("/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin")

INSTEAD = (
    "install venvkeeper for root instead: the Debian package (apt install"
    " ./venvkeeper_VERSION_all.deb: /usr/bin/venvkeeper), or the zipapp as"
    " /usr/local/bin/venvkeeper (owned by root, mode 755), then run install-apt-hooks again"
)


def hook_distrust(exe: str) -> Optional[str]:
    """Why apt must not run *exe* as root on every dpkg run; None when only root can
    change it end to end: the file (and every link and directory on the way), the
    interpreter its ``#!`` line names (``env NAME`` found as apt would find it, on
    :data:`HOOK_PATH`), that interpreter's standard library, and the code it imports (its
    venv, or its site directories), all under the one trust rule for root."""
    from venvkeeper.host import fsutil
    from venvkeeper.host.trust import TrustCache, distrust
    from venvkeeper.scan.deep import installation_distrust

    cache = TrustCache()
    problem = distrust(exe, 0, cache=cache)
    if problem is not None:
        return str(problem)
    head = fsutil.read_head(exe, 512) or b""
    if not head.startswith(b"#!"):
        return None  # a binary: the file is all there is
    words = [os.fsdecode(w) for w in head[2:].split(b"\n", 1)[0].split()]
    if not words:
        return f"{exe} has an empty #! line"
    interp = words[0]
    if os.path.basename(interp) == "env":
        problem = distrust(interp, 0, cache=cache)
        if problem is not None:
            return f"{exe} runs {interp}: {problem}"
        names = [w for w in words[1:] if not w.startswith("-") and "=" not in w]
        found = [f"{d}/{n}" for n in names[:1] for d in HOOK_PATH if fsutil.is_file(f"{d}/{n}")]
        if not found:
            return f"{exe} names {' '.join(words[1:])} through env, and apt finds none"
        interp = found[0]
    bad = installation_distrust(interp, 0, cache)
    return None if bad is None else f"{exe} runs {interp}: {bad}"


def verify_conf(text: str, apt_config: Optional[str] = None) -> bool:
    """Ask apt itself to parse *text* (``apt-config -c FILE dump``) and check that it sees
    both hooks and the protocol version. False when this host has no ``apt-config``;
    raises :class:`VenvkeeperError` when apt rejects the text. ``apt-config`` comes from
    the system's directories (:mod:`venvkeeper.host.programs`), never from PATH."""
    from venvkeeper.host import programs

    exe = apt_config or programs.find("apt-config")
    if exe is None:
        return False
    with tempfile.NamedTemporaryFile("w", suffix=".conf", prefix="venvkeeper-apt-") as f:
        f.write(text)
        f.flush()
        try:
            res = command.run(
                [exe, "-c", f.name, "dump"],
                timeout=30,
                env={"PATH": "/usr/bin:/bin", "LC_ALL": "C"},
            )
        except CommandError as e:
            raise VenvkeeperError(f"apt-config could not check the hooks: {e}") from e
    dump = res.stdout.lower()
    wanted = (
        "dpkg::pre-install-pkgs::",
        f"dpkg::tools::options::{_VAR.lower()}",
        "dpkg::post-invoke::",
    )
    missing = [w for w in wanted if w not in dump]
    if res.returncode != 0 or missing:
        why = res.stderr.strip().splitlines()[:1] or [f"it does not show {', '.join(missing)}"]
        raise VenvkeeperError(f"apt rejects the hook configuration: {escape(why[0])}")
    return True
