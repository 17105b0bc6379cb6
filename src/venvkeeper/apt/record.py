"""The pre-install hook's record of an apt run, read by the post-invoke hook of the same run.

apt runs ``DPkg::Pre-Install-Pkgs`` with the run's package actions, and ``DPkg::Post-Invoke``
with nothing. So the pre-install hook leaves a record, ``apt-run.json`` in venvkeeper's state
directory (beside the inventory; root-only, written atomically): which apt run it belongs
to, the run's packages, and what Python files those packages own in the dpkg database
before dpkg runs (their interpreters, stdlibs and headers, the embedding modules of uWSGI,
mod_wsgi and libpython, and the venvs a package ships). After dpkg, the post-invoke hook
adds what the same packages own now, and judges only the venvs that depend on any of
those files; a run that touches none does nothing at all.

An apt run is known by its process: the nearest ancestor of the hook that is not a shell
(apt, apt-get, aptitude, unattended-upgrade...), by its pid, its start time and the boot.
The record is trusted only when root owns it and its directory and nobody else may write
either, when it parses, belongs to this apt run and names only paths where interpreter
packages put Python (:func:`read`): else the post-invoke hook says why in one line and
judges every venv, as it did before there was a record.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Iterable, Sequence
from typing import NamedTuple, Optional

RECORD_NAME = "apt-run.json"
FORMAT = 1
#: Most of a record read (the package names of a release upgrade, some 100 KiB).
RECORD_LIMIT = 16 << 20
#: Most of one dpkg ``.list`` file read (the largest packages list some 10 MiB).
LIST_LIMIT = 64 << 20
#: What starts a hook between apt and venvkeeper (apt runs each hook with ``sh -c``), by
#: the name of the executable.
SHELLS = frozenset({"sh", "dash", "bash", "zsh", "ksh", "mksh", "ash", "busybox"})

_PREFIX = r"(?:/usr(?:/local)?|/opt/[^/]+(?:/[^/]+)?)?"
#: Where packages put Python, in the shapes the record may name (and nothing else).
INTERPRETER = re.compile(_PREFIX + r"/s?bin/python(?:\d+(?:\.\d+)?t?)?")
STDLIB = re.compile(_PREFIX + r"/lib(?:32|64)?/python\d+\.\d+t?")
INCLUDE = re.compile(_PREFIX + r"/include/python\d+\.\d+t?m?")
#: Debian's mod_wsgi is ``mod_wsgi.so-3.11`` (the ``mod_wsgi.so`` link is made at install),
#: uWSGI's plugins ``python311_plugin.so``, and both need ``libpython3.11.so.1.0``.
MODULE = re.compile(
    r"/usr/lib/\S*(?:mod_wsgi\S*\.so(?:-\d+\.\d+)?|uwsgi/plugins/python\S*_plugin\.so"
    r"|libpython\d+\.\d+t?\S*\.so[.\d]*)"
)
#: Words one of those paths holds: a dpkg list with none of them owns no Python file.
_WORDS = ("python", "pyvenv.cfg", "mod_wsgi")
_STDLIB_FILE = re.compile(r"(" + _PREFIX + r"/lib(?:32|64)?/python\d+\.\d+t?)/.+")
_INCLUDE_FILE = re.compile(r"(" + _PREFIX + r"/include/python\d+\.\d+t?m?)/patchlevel\.h")
#: The directories merged-/usr Debian links into /usr: dpkg may list a file under either.
_MERGED = ("/bin/", "/sbin/", "/lib/", "/lib32/", "/lib64/", "/libx32/")


def canonical(path: str) -> str:
    """*path* as merged-/usr sees it (``/bin/python3`` is ``/usr/bin/python3``)."""
    return "/usr" + path if path.startswith(_MERGED) else path


class RunId(NamedTuple):
    """An apt run: the process that runs the hooks, by pid, start time and boot."""

    pid: int
    start: int  # clock ticks since boot (/proc/PID/stat)
    boot: str

    def as_json(self) -> dict[str, object]:
        return {"pid": self.pid, "start": self.start, "boot": self.boot}


def _stat_of(proc: str, pid: int) -> Optional[tuple[str, int, int]]:
    """(comm, ppid, starttime) of *pid*, None when it cannot be read."""
    from venvkeeper.host.fsutil import read_open

    try:
        text = read_open(f"{proc}/{pid}/stat", 4096)[0].decode("utf-8", "surrogateescape")
        left, right = text.find("("), text.rfind(")")
        rest = text[right + 1 :].split()
        return text[left + 1 : right], int(rest[1]), int(rest[19])
    except (OSError, ValueError, IndexError):
        return None


def _is_shell(proc: str, pid: int, comm: str) -> bool:
    """Whether *pid* runs a shell: its executable (a shell script's name is its own, its
    executable the shell's), else its name."""
    try:
        exe = os.readlink(f"{proc}/{pid}/exe")
    except (OSError, ValueError):
        return comm in SHELLS
    return os.path.basename(exe.removesuffix(" (deleted)")) in SHELLS


def current_run(proc_root: str = "/proc", pid: Optional[int] = None) -> Optional[RunId]:
    """The apt run this hook belongs to: its nearest ancestor that is not a shell."""
    from venvkeeper.host.fsutil import read_open

    try:
        boot = read_open(f"{proc_root}/sys/kernel/random/boot_id", 64)[0].decode("ascii").strip()
    except (OSError, ValueError):
        boot = ""
    here = os.getppid() if pid is None else pid
    for _ in range(16):
        found = _stat_of(proc_root, here)
        if found is None:
            return None
        comm, ppid, start = found
        if not _is_shell(proc_root, here, comm) or ppid <= 1:
            break
        here = ppid
    else:
        return None
    # apt runs the post-invoke scripts from a fork of itself: the run is the process the
    # forks came from (the topmost of consecutive ancestors of the same name)
    for _ in range(16):
        parent = _stat_of(proc_root, ppid) if ppid > 1 else None
        if parent is None or parent[0] != comm:
            break
        here, (_, ppid, start) = ppid, parent
    return RunId(here, start, boot)


class Owned(NamedTuple):
    """The Python files some packages own: what an apt run of them can change."""

    interpreters: frozenset[str] = frozenset()
    stdlibs: frozenset[str] = frozenset()
    includes: frozenset[str] = frozenset()
    modules: frozenset[str] = frozenset()
    venvs: frozenset[str] = frozenset()  # venvs a package ships (dh-virtualenv)

    def __or__(self, other: Owned) -> Owned:
        return Owned(
            self.interpreters | other.interpreters,
            self.stdlibs | other.stdlibs,
            self.includes | other.includes,
            self.modules | other.modules,
            self.venvs | other.venvs,
        )

    @property
    def empty(self) -> bool:
        return not (
            self.interpreters or self.stdlibs or self.includes or self.modules or self.venvs
        )

    def paths(self) -> frozenset[str]:
        """Every host path of it, as merged-/usr sees them (the venvs left out)."""
        return frozenset(
            canonical(p) for p in (*self.interpreters, *self.stdlibs, *self.includes, *self.modules)
        )


def classify(paths: Iterable[str]) -> Owned:
    """The Python files among *paths* (the lines of a dpkg ``.list``)."""
    interpreters, stdlibs, includes, modules, venvs = set(), set(), set(), set(), set()
    listed = [p for p in paths if any(w in p for w in _WORDS)]
    shipped = {p[: -len("/pyvenv.cfg")] for p in listed if p.endswith("/pyvenv.cfg")}
    for p in listed:
        if any(p.startswith(v + "/") for v in shipped):
            continue  # the venv's own files: the venv is judged as a whole
        if INTERPRETER.fullmatch(p):
            interpreters.add(p)
        elif m := _STDLIB_FILE.fullmatch(p):
            stdlibs.add(m.group(1))
        elif m := _INCLUDE_FILE.fullmatch(p):
            includes.add(m.group(1))
        elif MODULE.fullmatch(p):
            modules.add(p)
    venvs.update(shipped)
    return Owned(
        frozenset(interpreters),
        frozenset(stdlibs),
        frozenset(includes),
        frozenset(modules),
        frozenset(venvs),
    )


def owned(packages: Sequence[str], dpkg_root: str = "/") -> Owned:
    """What *packages* own now, from the dpkg database of *dpkg_root* (static reads of
    ``var/lib/dpkg/info/*.list``; a package not installed owns nothing)."""
    from venvkeeper.host import fsutil

    info = os.path.join(dpkg_root, "var/lib/dpkg/info")
    wanted = set(packages)
    if not wanted:
        return Owned()
    try:
        names = os.listdir(info)
    except OSError:
        return Owned()
    result = Owned()
    for n in names:
        if not n.endswith(".list"):
            continue
        pkg = n[: -len(".list")].split(":", 1)[0]
        if pkg not in wanted:
            continue
        try:
            data = fsutil.read_bytes(f"{info}/{n}", LIST_LIMIT)[0]
        except OSError:
            continue
        text = data.decode("utf-8", "surrogateescape")
        if not any(w in text for w in _WORDS):
            continue
        result = result | classify(text.splitlines())
    return result


class Record(NamedTuple):
    """What the pre-install hook left for the post-invoke hook of the same apt run."""

    run: RunId
    created: float
    packages: tuple[str, ...]
    owned: Owned  # before dpkg ran


def path_of(state_dir: str) -> str:
    return os.path.join(state_dir, RECORD_NAME)


def write(state_dir: str, record: Record, *, make_parents: bool) -> None:
    """Write *record* (root-only, atomically) into *state_dir*."""
    from venvkeeper.host.fsutil import write_bytes_atomically

    if make_parents:
        os.makedirs(state_dir, mode=0o700, exist_ok=True)
    o = record.owned
    doc = {
        "format": FORMAT,
        "run": record.run.as_json(),
        "created": record.created,
        "packages": sorted(record.packages),
        "interpreters": sorted(o.interpreters),
        "stdlibs": sorted(o.stdlibs),
        "includes": sorted(o.includes),
        "modules": sorted(o.modules),
        "venvs": sorted(o.venvs),
    }
    data = json.dumps(doc, separators=(",", ":")).encode("utf-8", "surrogateescape")
    write_bytes_atomically(path_of(state_dir), data, 0o600, exact_mode=True)


def _strings(doc: dict[str, object], key: str) -> list[str]:
    value = doc.get(key)
    if not isinstance(value, list) or not all(isinstance(x, str) for x in value):
        raise ValueError(f"{key} is not a list of strings")
    return value


def read(state_dir: str, run: Optional[RunId]) -> tuple[Optional[Record], str]:
    """The record of the apt run *run*, or ``(None, why not)`` in a few words."""
    from venvkeeper.host import fsutil
    from venvkeeper.host.state import untrusted

    path = path_of(state_dir)
    if not os.path.lexists(path):
        return None, f"no record of this apt run in {state_dir} (did the pre-install hook run?)"
    why = untrusted(path)
    if why is not None:
        return None, f"the apt run's record is not trusted ({why})"
    try:
        doc = fsutil.load_json_file(path, limit_bytes=RECORD_LIMIT, max_depth=4)
        if not isinstance(doc, dict) or doc.get("format") != FORMAT:
            raise ValueError("not a venvkeeper apt run record")
        r = doc.get("run")
        if not isinstance(r, dict):
            raise ValueError("no run")
        rec_run = RunId(int(r["pid"]), int(r["start"]), str(r["boot"]))
        created = float(doc["created"])
        packages = tuple(_strings(doc, "packages"))
        lists = {k: _strings(doc, k) for k in ("interpreters", "stdlibs", "includes", "modules")}
        venvs = _strings(doc, "venvs")
    except (OSError, ValueError, KeyError, TypeError) as e:
        return None, f"the apt run's record {path} cannot be read ({e})"
    if run is None or rec_run != run:
        return None, f"the record in {path} is of another apt run"
    shapes = {
        "interpreters": INTERPRETER,
        "stdlibs": STDLIB,
        "includes": INCLUDE,
        "modules": MODULE,
    }
    for key, shape in shapes.items():
        odd = [p for p in lists[key] if not shape.fullmatch(p)]
        if odd:
            return None, (
                f"the record in {path} names {key} outside the known interpreters' places"
                f" ({odd[0][:120]!r})"
            )
    odd = [p for p in venvs if not p.startswith("/") or os.path.normpath(p) != p]
    if odd:
        return None, f"the record in {path} names a venv that is not a clean absolute path"
    owned_then = Owned(
        frozenset(lists["interpreters"]),
        frozenset(lists["stdlibs"]),
        frozenset(lists["includes"]),
        frozenset(lists["modules"]),
        frozenset(venvs),
    )
    return Record(rec_run, created, packages, owned_then), ""


def record_run(
    packages: Sequence[str], state_dir: str, proc_root: str, dpkg_root: str, make_parents: bool
) -> Optional[Record]:
    """Leave the record of this apt run (None when the run cannot be told)."""
    run = current_run(proc_root)
    if run is None:
        return None
    rec = Record(run, time.time(), tuple(dict.fromkeys(packages)), owned(packages, dpkg_root))
    write(state_dir, rec, make_parents=make_parents)
    return rec
