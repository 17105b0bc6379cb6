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

Processes in another mount namespace (containers) are listed, not judged: the paths of
their command lines and maps are not this host's, and judging (or repairing) a venv by them
would name the wrong directory. A process under another root directory (a chroot:
``/proc/PID/root`` names a directory of ours) is judged against that root: its command line
(and ``VIRTUAL_ENV``) names paths inside the root, while the kernel shows its ``exe``,
``cwd`` and mapped files as this host's paths (seen on Linux 6.1); its venv is judged as
the root sees it, and reported with the root. A chroot whose directory cannot be named
(outside ours, or deleted) is listed, not judged.
"""

from __future__ import annotations

import os
import pwd
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Optional

from venvkeeper.host.hostfs import RootFS
from venvkeeper.model.findings import Severity
from venvkeeper.model.restarts import (
    Elsewhere,
    ForeignProcess,
    ProcessReport,
    RestartReason,
    RestartReport,
    VenvUser,
)
from venvkeeper.model.venv import path_in_root
from venvkeeper.restarts.procfs import (
    DELETED,
    MAPS_LIMIT,
    PF_KTHREAD,
    MappedFile,
    Stat,
    boot_time,
    dir_id,
    parse_cgroup,
    parse_maps,
    parse_stat,
    pids,
    read_link,
    read_proc,
)
from venvkeeper.restarts.venvs import (
    BASE_LIB,
    LIBPYTHON,
    PYTHONISH,
    TOLERANCE,
    VenvState,
    environ_hint,
    newest_change,
    venv_above,
    venv_from_argv,
    venv_from_maps,
)

if TYPE_CHECKING:
    from venvkeeper.model.policy import Policy


@dataclass
class _Scan:
    """The state of one ``/proc`` scan: the boot time and clock tick, our own namespace and
    root, the venvs judged so far, the processes skipped by reason."""

    proc: str
    judge: bool
    boot: float
    tick: float
    own_ns: Optional[str]
    own_pid: Optional[int]
    own_root: Optional[tuple[int, int]] = None
    skipped: dict[str, int] = field(default_factory=dict)
    venvs: dict[str, VenvState] = field(default_factory=dict)
    users: dict[int, str] = field(default_factory=dict)
    policy: Optional[Policy] = None
    roots: dict[str, RootFS] = field(default_factory=dict)

    def root_fs(self, root: str) -> RootFS:
        """The files of the chroot *root* as its processes see them (one per root)."""
        if root not in self.roots:
            self.roots[root] = RootFS(root)
        return self.roots[root]

    def skip(self, reason: str) -> None:
        self.skipped[reason] = self.skipped.get(reason, 0) + 1

    def user(self, uid: int) -> str:
        if uid not in self.users:
            try:
                self.users[uid] = pwd.getpwuid(uid).pw_name
            except (KeyError, OverflowError):
                self.users[uid] = str(uid)
        return self.users[uid]

    def venv_state(self, venv: str, root: Optional[str] = None) -> VenvState:
        """What changed last in *venv* (a path of ours), and its verdict; *root*: the chroot
        whose processes run it, which judges it."""
        if venv not in self.venvs:
            t, p = newest_change(venv)
            rep = None
            if self.judge:
                from venvkeeper.model.policy import Policy
                from venvkeeper.scan.pipeline import judge_venv

                if root is not None and path_in_root(root, venv) == venv:
                    root = None  # not in the chroot (its maps name ours): its own root judges
                rep = judge_venv(venv, self.policy or Policy(), root)
            self.venvs[venv] = VenvState(t, p, rep)
        return self.venvs[venv]


@dataclass
class _Candidate:
    """A process that may need a restart, before it is judged."""

    pid: int
    st: Stat
    uid: int
    exe: Optional[str]
    argv: tuple[str, ...]
    cwd: Optional[str]
    maps: list[MappedFile]
    venv: Optional[str] = None  # a path of ours, also for a chrooted process
    evidence: Optional[str] = None
    root: Optional[str] = None  # the chroot it runs in (a directory of ours), if any


def _examine(s: _Scan, name: str) -> Optional[_Candidate | ForeignProcess]:
    """Read one process; None when it is not a candidate (or was skipped, counted).

    The ``exe`` link is read first: most processes are not Python and cost that one
    ``readlink``. Only when it cannot be read is ``stat`` read, to tell a kernel thread, a
    zombie, a vanished process and one we may not look at apart."""
    base = f"{s.proc}/{name}"
    pid = int(name)
    if pid == s.own_pid:
        return None
    exe_link = read_link(f"{base}/exe")
    if exe_link is None:
        _classify_unreadable(s, base, pid)
        return None
    exe_name = os.path.basename(exe_link.removesuffix(DELETED))
    if not PYTHONISH.fullmatch(exe_name):
        return None
    try:
        uid = os.stat(base).st_uid
        st = parse_stat(read_proc(f"{base}/stat"))
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
    ns = read_link(f"{base}/ns/mnt")
    if s.own_ns is not None and ns is not None and ns != s.own_ns:
        return ForeignProcess(pid, st.comm, exe, exe_deleted)
    # A chroot: its root reads as another directory, or (when that directory is outside
    # ours) as "/" that is not our root. Unreadable (another user's): judged as before.
    root = read_link(f"{base}/root")
    chroot: Optional[str] = None
    if root is not None and (root != "/" or dir_id(f"{base}/root") not in (None, s.own_root)):
        if root == "/" or not root.startswith("/") or root.endswith(DELETED):
            # Its root is not a directory we can name: its paths cannot be read here.
            return ForeignProcess(pid, st.comm, exe, exe_deleted, Elsewhere.CHROOT, root)
        chroot = root
    try:
        raw = read_proc(f"{base}/cmdline", 256 << 10)
    except OSError:
        raw = b""
    argv = tuple(a.decode("utf-8", "surrogateescape") for a in raw.split(b"\0") if a)
    here = (chroot or "").rstrip("/")  # its command line names paths inside its root
    if len(argv) == 1 and " " in argv[0] and not os.path.exists(here + argv[0]):
        argv = tuple(argv[0].split())  # a rewritten process title ("gunicorn: worker [app]")
    try:
        maps = parse_maps(read_proc(f"{base}/maps", MAPS_LIMIT))
    except FileNotFoundError:
        s.skip("vanished")
        return None
    except OSError:
        maps = []
    cwd = read_link(f"{base}/cwd")
    return _Candidate(pid, st, uid, exe_link, argv, cwd, maps, root=chroot)


def _classify_unreadable(s: _Scan, base: str, pid: int) -> None:
    """Why a process's ``exe`` could not be read: counted, never raised."""
    try:
        st = parse_stat(read_proc(f"{base}/stat"))
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
        if LIBPYTHON.match(name):
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
        elif BASE_LIB.search(m.path) and ".so" in name:
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
        state = s.venv_state(c.venv, c.root)
        if state.newest > started + TOLERANCE:
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
    self_link = read_link(f"{proc}/self")
    return _Scan(
        proc=proc,
        judge=judge,
        boot=boot_time(proc),
        tick=float(os.sysconf("SC_CLK_TCK")),
        own_ns=read_link(f"{proc}/self/ns/mnt"),
        own_pid=int(self_link) if self_link and self_link.isdigit() else None,
        own_root=dir_id(f"{proc}/self/root") or dir_id("/"),
    )


def _collect(s: _Scan) -> tuple[dict[int, _Candidate], list[ForeignProcess], int]:
    """Every Python-ish process, each mapped to its venv where it has one."""
    cands: dict[int, _Candidate] = {}
    foreign: list[ForeignProcess] = []
    scanned = 0
    for name in pids(s.proc):
        scanned += 1
        got = _examine(s, name)
        if isinstance(got, ForeignProcess):
            foreign.append(got)
        elif got is not None:
            cands[got.pid] = got
    for c in cands.values():
        if c.root is not None:  # a chroot: its command line names the root's paths
            fs = s.root_fs(c.root)
            cwd = path_in_root(c.root, c.cwd) if c.cwd else None
            inner = venv_from_argv(c.argv, cwd, fs)
            if inner:
                c.venv, c.evidence = fs.host_path(inner), "cmdline"
                continue
        else:
            v = venv_from_argv(c.argv, c.cwd)
            if v:
                c.venv, c.evidence = v, "cmdline"
                continue
        exe = (c.exe or "").removesuffix(DELETED)
        in_maps = ([v] if (v := venv_above(exe, 2)) else []) + venv_from_maps(c.maps)
        if in_maps:
            c.venv, c.evidence = in_maps[0], "maps"
    for c in cands.values():  # workers with rewritten titles: their master's venv
        parent = cands.get(c.st.ppid)
        if c.venv is None and parent is not None and parent.venv is not None:
            c.venv, c.evidence = parent.venv, "parent"
    for c in cands.values():
        if c.venv is None:
            rfs = s.root_fs(c.root) if c.root is not None else None
            hint = environ_hint(f"{s.proc}/{c.pid}", rfs)
            if hint:
                c.venv, c.evidence = rfs.host_path(hint) if rfs else hint, "environ (hint)"
    return cands, foreign, scanned


def _unit_of(proc: str, pid: int) -> tuple[Optional[str], bool, Optional[str]]:
    try:
        return parse_cgroup(read_proc(f"{proc}/{pid}/cgroup").decode("utf-8", "replace"))
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
        state = s.venv_state(c.venv, c.root) if c.venv else None
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
                root=c.root,
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
