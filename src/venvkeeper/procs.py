"""Running processes that still use a replaced interpreter or a changed venv.

Reads ``/proc`` only (its root is a parameter, so tests build their own) and never runs
anything: not an interpreter, not a file named by a process, nothing from a process's
environment (needrestart's CVE-2024-48990 family came from exactly that). ``environ`` is
read for ``VIRTUAL_ENV`` as a hint of which venv a process uses, and for nothing else.

A process is mapped to a venv by its command line (relative paths resolved against its
``cwd``; ``env`` launchers, console-script shebangs, ``python -m``, uwsgi's ``--home``), else
by venv paths among its mapped files, else by its parent's venv (gunicorn and uwsgi
workers with rewritten titles), else by ``VIRTUAL_ENV``. It needs a restart when:

- ``interpreter-replaced``: its ``exe`` or a mapped ``libpython`` shows ``(deleted)``;
- ``library-replaced``: a shared object it mapped from the venv or from the base's
  ``lib/pythonX.Y`` was replaced or deleted;
- ``venv-changed``: the venv's packages, ``bin/`` or ``pyvenv.cfg`` changed after the
  process started (an upgrade, a repair that swapped the venv);
- ``venv-swapped``: it runs packages from another directory than the venv its command line
  names (the old venv moved aside by a repair).

Processes in another mount namespace (containers) or under another root directory (chroots:
``/proc/PID/root`` is not our ``/``) are listed, not judged: the paths of their command lines
and maps are not this host's, and judging (or repairing) a venv by them would name the
wrong directory.
"""

from __future__ import annotations

import os
import pwd
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Optional

from venvkeeper import fsutil
from venvkeeper.errors import VenvkeeperError
from venvkeeper.model import (
    Elsewhere,
    ForeignProcess,
    ProcessReport,
    RestartReason,
    RestartReport,
    Severity,
    VenvReport,
    VenvUser,
)

if TYPE_CHECKING:
    from venvkeeper.policy import Policy

PF_KTHREAD = 0x00200000
DELETED = " (deleted)"
SMALL = 64 << 10
MAPS_LIMIT = 8 << 20
#: Executables worth reading the maps of: Pythons and programs that embed one.
_PYTHONISH = re.compile(
    r"(python|pypy)(\d+(\.\d+)?t?)?(-dbg|d|m)?|uwsgi.*|apache2|httpd|unitd|gunicorn.*"
)
_SITE = re.compile(r"^(/.+?)/lib(?:64)?/python\d+\.\d+t?/site-packages/")
_BASE_LIB = re.compile(r"/lib(?:64)?/python\d+\.\d+t?/")
_LIBPYTHON = re.compile(r"libpython\d+\.\d+t?\w*\.so")
#: Interpreter options that take a value (``-X dev``), which is then not the script.
_VALUE_OPTS = {"-X", "-W", "-Q", "--check-hash-based-pycs"}
_UWSGI_HOME = {"-H", "--home", "--virtualenv", "--venv", "--pyhome"}
_UNIT = re.compile(r".+\.(service|socket|mount|swap|timer|path|target)")
_USER_MANAGER = re.compile(r"user@\d+\.service")
#: A file counts as changed when it is newer than the process by more than this (the start
#: time is known to a clock tick, the boot time to 10 ms).
_TOLERANCE = 0.05


def _read(path: str, limit: int = SMALL) -> bytes:
    """At most *limit* bytes of a /proc file (its size reads as 0); raises OSError."""
    return fsutil.read_open(path, limit)[0]


def _readlink(path: str) -> Optional[str]:
    try:
        return os.readlink(path)
    except (OSError, ValueError):
        return None


def _dir_id(path: str) -> Optional[tuple[int, int]]:
    """(device, inode) of a directory (``/proc/PID/root`` is followed), None if unknown."""
    try:
        st = os.stat(path)
    except (OSError, ValueError):
        return None
    return st.st_dev, st.st_ino


@dataclass(frozen=True)
class Stat:
    comm: str
    state: str
    ppid: int
    flags: int
    starttime: int  # clock ticks since boot


def parse_stat(data: bytes) -> Stat:
    """``/proc/PID/stat``: the command name sits in parentheses and may hold anything,
    including spaces and parentheses, so the fields are counted after the *last* ``)``."""
    text = data.decode("utf-8", "surrogateescape")
    left, right = text.find("("), text.rfind(")")
    if left < 0 or right < left:
        raise ValueError("no (comm) in stat")
    rest = text[right + 1 :].split()
    if len(rest) < 20:
        raise ValueError("short stat")
    return Stat(text[left + 1 : right], rest[0], int(rest[1]), int(rest[6]), int(rest[19]))


def parse_cgroup(text: str) -> tuple[Optional[str], bool, Optional[str]]:
    """(unit, is a user unit, session scope) from ``/proc/PID/cgroup``, v1 or v2."""
    path = None
    for line in text.splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        if "name=systemd" in parts[1].split(","):
            path = parts[2]
            break
        if parts[0] == "0" and parts[1] == "":
            path = parts[2]
    if not path:
        return None, False, None
    comps = [c for c in path.split("/") if c]
    user = any(_USER_MANAGER.fullmatch(c) for c in comps)
    for c in reversed(comps):
        if c.endswith(".scope"):
            return None, user, c
        if _UNIT.fullmatch(c) and not _USER_MANAGER.fullmatch(c):
            return c, user, None
        if _USER_MANAGER.fullmatch(c):
            return None, True, None
    return None, False, None


@dataclass(frozen=True)
class MappedFile:
    path: str
    deleted: bool
    inode: int


def parse_maps(data: bytes) -> list[MappedFile]:
    """The mappings of ``/proc/PID/maps`` that matter here, one per path: replaced or
    deleted files, and files under a site-packages."""
    out: dict[str, MappedFile] = {}
    if b"(deleted)" not in data and b"/site-packages/" not in data:
        return []  # the common case, decided at C speed
    for raw in data.split(b"\n"):
        # Only replaced files and site-packages matter: skip the rest before splitting.
        if b"(deleted)" not in raw and b"/site-packages/" not in raw:
            continue
        fields = raw.split(None, 5)
        if len(fields) < 6 or not fields[5].startswith(b"/"):
            continue
        path = fields[5].decode("utf-8", "surrogateescape")
        deleted = path.endswith(DELETED)
        if deleted:
            path = path[: -len(DELETED)]
        try:
            inode = int(fields[4])
        except ValueError:
            continue
        if path not in out or deleted:
            out[path] = MappedFile(path, deleted, inode)
    return list(out.values())


def _is_venv(path: str) -> bool:
    return fsutil.is_file(path.rstrip("/") + "/pyvenv.cfg")


def _venv_above(path: str, levels: int = 5) -> Optional[str]:
    """The venv a file lies in (``VENV/bin/x``, ``VENV/lib/.../x``), looking a few levels up."""
    d = os.path.dirname(path)
    for _ in range(levels):
        if d in ("/", ""):
            return None
        if _is_venv(d):
            return d
        d = os.path.dirname(d)
    return None


def venv_from_argv(argv: tuple[str, ...], cwd: Optional[str]) -> Optional[str]:
    """The venv a command line names: its interpreter, its script, or uwsgi's home."""
    args = list(argv)
    # env [-i] [-u NAME] [NAME=VALUE...] PROGRAM ...
    if args and os.path.basename(args[0]) == "env":
        args = args[1:]
        while args and (args[0].startswith("-") or "=" in args[0]):
            if args[0] in ("-u", "--unset", "-C", "--chdir", "-S", "--split-string"):
                args = args[1:]
            args = args[1:]
    if not args:
        return None

    def absolute(p: str) -> Optional[str]:
        if p.startswith("/"):
            return os.path.normpath(p)
        if cwd and "/" in p:
            return os.path.normpath(os.path.join(cwd, p))
        return None

    for i, a in enumerate(args):
        if a in _UWSGI_HOME and i + 1 < len(args):
            home = absolute(args[i + 1])
            if home and _is_venv(home):
                return home
        if a.startswith("--home=") or a.startswith("--virtualenv="):
            home = absolute(a.split("=", 1)[1])
            if home and _is_venv(home):
                return home
    first = absolute(args[0])
    if first is not None:
        found = _venv_above(first, 2)
        if found:
            return found
    # the script: the first argument that is not an option (or an option's value)
    i = 1
    while i < len(args):
        a = args[i]
        if a in ("-c", "-m"):
            return None
        if a in _VALUE_OPTS:
            i += 2
            continue
        if a.startswith("-"):
            i += 1
            continue
        script = absolute(a)
        return _venv_above(script) if script else None
    return None


def venv_from_maps(maps: list[MappedFile]) -> list[str]:
    """Venvs whose site-packages files the process has mapped."""
    found: list[str] = []
    for m in maps:
        hit = _SITE.match(m.path)
        if hit and hit.group(1) not in found and _is_venv(hit.group(1)):
            found.append(hit.group(1))
    return found


def _environ_hint(proc_pid: str) -> Optional[str]:
    """``VIRTUAL_ENV`` from the environment: a hint only, and used for nothing else."""
    try:
        data = _read(f"{proc_pid}/environ", 256 << 10)
    except OSError:
        return None
    for item in data.split(b"\0"):
        if item.startswith(b"VIRTUAL_ENV="):
            value = item[12:].decode("utf-8", "surrogateescape")
            if value.startswith("/") and _is_venv(value):
                return os.path.normpath(value)
    return None


@dataclass
class _VenvState:
    newest: float
    newest_path: str
    report: Optional[VenvReport] = None


def _newest_change(venv: str) -> tuple[float, str]:
    """The latest change to what decides a venv's code: the venv directory itself (a swap
    by rename changes its ctime), ``pyvenv.cfg``, ``bin/``, every site-packages and every
    distribution directory in it. Files inside packages are not walked (cost)."""
    best = (0.0, venv)

    def see(path: str, ctime: bool = False) -> None:
        nonlocal best
        try:
            st = os.lstat(path)
        except OSError:
            return
        t = max(st.st_mtime, st.st_ctime) if ctime else st.st_mtime
        if t > best[0]:
            best = (t, path)

    see(venv, ctime=True)
    see(f"{venv}/pyvenv.cfg")
    see(f"{venv}/bin")
    for lib in ("lib", "lib64"):
        for e in fsutil.listdir(f"{venv}/{lib}"):
            site = f"{e.path}/site-packages"
            if not _only_bytecode_since(site):
                see(site)  # a package removed (installs also show in their dist-info)
            for d in fsutil.listdir(site):
                if d.name.endswith((".dist-info", ".egg-info")):
                    see(d.path)
    return best


def _only_bytecode_since(site: str) -> bool:
    """Whether the last change to *site* may have been Python creating its
    ``__pycache__`` (the first import of a top-level module, by any process): then the
    directory's time says nothing about packages."""
    try:
        site_mtime = os.lstat(site).st_mtime
        cache_ctime = os.lstat(f"{site}/__pycache__").st_ctime
    except OSError:
        return False
    return cache_ctime >= site_mtime - _TOLERANCE


@dataclass
class _Scan:
    proc: str
    judge: bool
    boot: float
    tick: float
    own_ns: Optional[str]
    own_pid: Optional[int]
    own_root: Optional[tuple[int, int]] = None
    skipped: dict[str, int] = field(default_factory=dict)
    venvs: dict[str, _VenvState] = field(default_factory=dict)
    users: dict[int, str] = field(default_factory=dict)
    policy: Optional[Policy] = None

    def skip(self, reason: str) -> None:
        self.skipped[reason] = self.skipped.get(reason, 0) + 1

    def user(self, uid: int) -> str:
        if uid not in self.users:
            try:
                self.users[uid] = pwd.getpwuid(uid).pw_name
            except (KeyError, OverflowError):
                self.users[uid] = str(uid)
        return self.users[uid]

    def venv_state(self, venv: str) -> _VenvState:
        if venv not in self.venvs:
            t, p = _newest_change(venv)
            rep = None
            if self.judge:
                from venvkeeper.scan import inspect_path

                try:
                    rep = inspect_path(venv)
                except Exception:  # one odd venv must not cost the whole report
                    rep = None
                if rep is not None and self.policy is not None:
                    from venvkeeper.policy import apply_to_venv, ignored

                    ignore = ignored(venv, self.policy)
                    rep = None if ignore else apply_to_venv(rep, self.policy)
            self.venvs[venv] = _VenvState(t, p, rep)
        return self.venvs[venv]


def _boot_time(proc: str) -> float:
    """When the system booted, to turn start ticks into times. ``/proc/uptime`` has 10 ms
    precision; ``btime`` in ``/proc/stat`` only whole seconds (the fallback)."""
    try:
        uptime = float(_read(f"{proc}/uptime", 256).split()[0])
        return time.time() - uptime
    except (OSError, ValueError, IndexError):
        pass
    try:
        for line in _read(f"{proc}/stat", 1 << 20).decode("ascii", "replace").splitlines():
            if line.startswith("btime "):
                return float(line.split()[1])
    except (OSError, ValueError):
        pass
    raise VenvkeeperError(f"cannot read the boot time from {proc}/stat: is {proc} a procfs?")


def _pids(proc: str) -> Iterator[str]:
    try:
        with os.scandir(proc) as it:
            names = [e.name for e in it if e.name.isdigit()]
    except OSError as e:
        raise VenvkeeperError(f"cannot list {proc}: {e.strerror}") from e
    yield from sorted(names, key=int)


@dataclass
class _Candidate:
    pid: int
    st: Stat
    uid: int
    exe: Optional[str]
    argv: tuple[str, ...]
    cwd: Optional[str]
    maps: list[MappedFile]
    venv: Optional[str] = None
    evidence: Optional[str] = None


def _examine(s: _Scan, name: str) -> Optional[_Candidate | ForeignProcess]:
    """Read one process; None when it is not a candidate (or was skipped, counted).

    The ``exe`` link is read first: most processes are not Python and cost that one
    ``readlink``. Only when it cannot be read is ``stat`` read, to tell a kernel thread, a
    zombie, a vanished process and one we may not look at apart."""
    base = f"{s.proc}/{name}"
    pid = int(name)
    if pid == s.own_pid:
        return None
    exe_link = _readlink(f"{base}/exe")
    if exe_link is None:
        _classify_unreadable(s, base, pid)
        return None
    exe_name = os.path.basename(exe_link.removesuffix(DELETED))
    if not _PYTHONISH.fullmatch(exe_name):
        return None
    try:
        uid = os.stat(base).st_uid
        st = parse_stat(_read(f"{base}/stat"))
    except (FileNotFoundError, ProcessLookupError, NotADirectoryError):
        s.skip("vanished")
        return None
    except (OSError, ValueError):
        s.skip("unreadable")
        return None
    if st.state in ("Z", "X", "x"):
        s.skip("zombie")
        return None
    exe, exe_deleted = exe_link.removesuffix(DELETED), exe_link.endswith(DELETED)
    ns = _readlink(f"{base}/ns/mnt")
    if s.own_ns is not None and ns is not None and ns != s.own_ns:
        return ForeignProcess(pid, st.comm, exe, exe_deleted)
    # A chroot: its root reads as another directory, or (when that directory is outside
    # ours) as "/" that is not our root. Unreadable (another user's): judged as before.
    root = _readlink(f"{base}/root")
    if root is not None and (root != "/" or _dir_id(f"{base}/root") not in (None, s.own_root)):
        return ForeignProcess(pid, st.comm, exe, exe_deleted, Elsewhere.CHROOT, root)
    try:
        raw = _read(f"{base}/cmdline", 256 << 10)
    except OSError:
        raw = b""
    argv = tuple(a.decode("utf-8", "surrogateescape") for a in raw.split(b"\0") if a)
    if len(argv) == 1 and " " in argv[0] and not os.path.exists(argv[0]):
        argv = tuple(argv[0].split())  # a rewritten process title ("gunicorn: worker [app]")
    try:
        maps = parse_maps(_read(f"{base}/maps", MAPS_LIMIT))
    except FileNotFoundError:
        s.skip("vanished")
        return None
    except OSError:
        maps = []
    cwd = _readlink(f"{base}/cwd")
    return _Candidate(pid, st, uid, exe_link, argv, cwd, maps)


def _classify_unreadable(s: _Scan, base: str, pid: int) -> None:
    """Why a process's ``exe`` could not be read: counted, never raised."""
    try:
        st = parse_stat(_read(f"{base}/stat"))
    except (FileNotFoundError, ProcessLookupError, NotADirectoryError):
        s.skip("vanished")
        return
    except (OSError, ValueError):
        s.skip("unreadable")
        return
    if st.flags & PF_KTHREAD or pid == 2 or st.ppid == 2:
        s.skip("kernel-thread")
    elif st.state in ("Z", "X", "x"):
        s.skip("zombie")
    elif not os.path.lexists(base):
        s.skip("vanished")
    else:
        s.skip("permission-denied")


def _reasons(s: _Scan, c: _Candidate, started: float) -> list[RestartReason]:
    out: list[RestartReason] = []
    exe = c.exe or ""
    if exe.endswith(DELETED):
        path = exe[: -len(DELETED)]
        out.append(
            RestartReason(
                "interpreter-replaced",
                f"its interpreter {path} was replaced or deleted after it started",
                path,
            )
        )
    replaced_lib = [m for m in c.maps if m.deleted]
    venv_root = (c.venv.rstrip("/") + "/") if c.venv else None
    for m in replaced_lib:
        name = os.path.basename(m.path)
        if _LIBPYTHON.match(name):
            out.append(
                RestartReason("interpreter-replaced", f"its {name} was replaced or deleted", m.path)
            )
        elif venv_root and m.path.startswith(venv_root):
            out.append(
                RestartReason(
                    "library-replaced",
                    f"{m.path} of its venv was replaced or deleted (a package upgraded)",
                    m.path,
                )
            )
        elif _BASE_LIB.search(m.path) and ".so" in name:
            out.append(
                RestartReason(
                    "library-replaced",
                    f"{m.path} of its Python was replaced or deleted (an upgrade)",
                    m.path,
                )
            )
    if c.venv:
        others = [v for v in venv_from_maps(c.maps) if v != c.venv]
        if others and c.evidence == "cmdline":
            out.append(
                RestartReason(
                    "venv-swapped",
                    f"it runs packages from {others[0]}, not from {c.venv} that its command"
                    " names (the venv was replaced, the old one moved aside)",
                    others[0],
                )
            )
        state = s.venv_state(c.venv)
        if state.newest > started + _TOLERANCE:
            when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(state.newest))
            out.append(
                RestartReason(
                    "venv-changed",
                    f"its venv changed at {when}, after it started"
                    f" ({os.path.relpath(state.newest_path, c.venv)} is newer):"
                    " it still runs the old code",
                    state.newest_path,
                )
            )
    return out


def _start(proc: str, judge: bool) -> _Scan:
    self_link = _readlink(f"{proc}/self")
    return _Scan(
        proc=proc,
        judge=judge,
        boot=_boot_time(proc),
        tick=float(os.sysconf("SC_CLK_TCK")),
        own_ns=_readlink(f"{proc}/self/ns/mnt"),
        own_pid=int(self_link) if self_link and self_link.isdigit() else None,
        own_root=_dir_id(f"{proc}/self/root") or _dir_id("/"),
    )


def _collect(s: _Scan) -> tuple[dict[int, _Candidate], list[ForeignProcess], int]:
    """Every Python-ish process, each mapped to its venv where it has one."""
    cands: dict[int, _Candidate] = {}
    foreign: list[ForeignProcess] = []
    scanned = 0
    for name in _pids(s.proc):
        scanned += 1
        got = _examine(s, name)
        if isinstance(got, ForeignProcess):
            foreign.append(got)
        elif got is not None:
            cands[got.pid] = got
    for c in cands.values():
        v = venv_from_argv(c.argv, c.cwd)
        if v:
            c.venv, c.evidence = v, "cmdline"
            continue
        exe = (c.exe or "").removesuffix(DELETED)
        in_maps = ([v] if (v := _venv_above(exe, 2)) else []) + venv_from_maps(c.maps)
        if in_maps:
            c.venv, c.evidence = in_maps[0], "maps"
    for c in cands.values():  # workers with rewritten titles: their master's venv
        parent = cands.get(c.st.ppid)
        if c.venv is None and parent is not None and parent.venv is not None:
            c.venv, c.evidence = parent.venv, "parent"
    for c in cands.values():
        if c.venv is None:
            hint = _environ_hint(f"{s.proc}/{c.pid}")
            if hint:
                c.venv, c.evidence = hint, "environ (hint)"
    return cands, foreign, scanned


def _unit_of(proc: str, pid: int) -> tuple[Optional[str], bool, Optional[str]]:
    try:
        return parse_cgroup(_read(f"{proc}/{pid}/cgroup").decode("utf-8", "replace"))
    except OSError:
        return None, False, None


def venv_users(proc: str = "/proc") -> dict[str, tuple[VenvUser, ...]]:
    """The running processes of each venv (for predict: the services a change would
    break). Reads /proc as ``restarts`` does; judges nothing."""
    s = _start(proc, judge=False)
    cands, _foreign, _scanned = _collect(s)
    out: dict[str, list[VenvUser]] = {}
    for c in sorted(cands.values(), key=lambda c: c.pid):
        if c.venv is None:
            continue
        unit, user_unit, session = _unit_of(proc, c.pid)
        out.setdefault(c.venv, []).append(
            VenvUser(c.pid, s.user(c.uid), c.st.comm, unit, user_unit, session)
        )
    return {v: tuple(users) for v, users in out.items()}


def scan_processes(
    proc: str = "/proc", *, judge: bool = True, policy: Optional[Policy] = None
) -> RestartReport:
    """Every process that needs a restart (or would restart into a broken venv).

    *proc* is the procfs root; *judge* also judges each venv found (statically, as
    ``scan`` does) to warn when a restart would land in a broken venv, under *policy*
    (the configuration's: an ignored venv is not judged)."""
    t0 = time.perf_counter()
    s = _start(proc, judge)
    s.policy = policy
    cands, foreign, scanned = _collect(s)
    out: list[ProcessReport] = []
    for c in cands.values():
        started = s.boot + c.st.starttime / s.tick
        reasons = _reasons(s, c, started)
        state = s.venv_state(c.venv) if c.venv else None
        rep = state.report if state else None
        if not reasons and (rep is None or rep.status is not Severity.CRITICAL):
            continue
        unit, user_unit, session = _unit_of(proc, c.pid)
        out.append(
            ProcessReport(
                pid=c.pid,
                ppid=c.st.ppid,
                uid=c.uid,
                user=s.user(c.uid),
                comm=c.st.comm,
                argv=c.argv,
                exe=c.exe,
                started_at=started,
                unit=unit,
                user_unit=user_unit,
                session=session,
                venv=c.venv,
                venv_evidence=c.evidence,
                reasons=tuple(reasons),
                venv_status=rep.status if rep else None,
                venv_finding=rep.main_finding if rep and rep.status is Severity.CRITICAL else None,
            )
        )
    out.sort(key=lambda p: (p.unit or "~", p.pid))
    return RestartReport(
        processes=tuple(out),
        foreign=tuple(foreign),
        scanned=scanned,
        skipped=dict(s.skipped),
        duration_seconds=time.perf_counter() - t0,
    )
