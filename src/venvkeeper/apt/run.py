"""The apt hooks' work: read apt's input, predict before dpkg runs, report after it.

apt waits for its hooks and prints what they print. So a hook reads all of its input
first (apt must never write into a pipe nobody reads), says nothing when the apt run
leaves Python alone, gives up after a timeout, and turns every failure into one line:
:func:`guarded` is the only way in, and it never raises.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, BinaryIO, Callable, NamedTuple, Optional, Protocol, TextIO

from venvkeeper.errors import VenvkeeperError, failure_of
from venvkeeper.textutil import escape, escape_value, noun, plural

if TYPE_CHECKING:
    from venvkeeper.apt.hook import PythonChange
    from venvkeeper.configured import ScanConfig, ScanRequest
    from venvkeeper.model.findings import Finding, Severity
    from venvkeeper.model.plan import Prediction
    from venvkeeper.model.policy import Policy
    from venvkeeper.model.report import Report


@dataclass(frozen=True)
class HookSettings:
    """What a hook run scans (as configured: :mod:`venvkeeper.configured`) and how it
    reports."""

    config: ScanConfig
    scan: ScanRequest
    proc_root: str = "/proc"
    processes: bool = True
    json: bool = False
    consumers: bool = True  # judge the units, jobs and web servers of each venv too
    system_root: str = "/"  # whose units and server configs name the consumers

    @property
    def policy(self) -> Policy:
        return self.config.policy


class _HookTimeout(Exception):
    pass


def read_input() -> str:
    """All of apt's hook input (fd 0, or $APT_HOOK_INFO_FD), read to the end first thing:
    apt must never write into a pipe that nobody reads."""
    from venvkeeper.apt.hook import INPUT_LIMIT
    from venvkeeper.textutil import decode

    fd_text = os.environ.get("APT_HOOK_INFO_FD", "0")
    stream: BinaryIO
    if fd_text.isdigit() and int(fd_text) != 0:
        stream = os.fdopen(int(fd_text), "rb", closefd=False)
    elif sys.stdin is None:
        return ""
    elif sys.stdin.isatty():
        raise VenvkeeperError("apt-hook pre-install reads apt's hook input on stdin")
    else:
        stream = sys.stdin.buffer
    data = stream.read(INPUT_LIMIT)
    while stream.read(1 << 16):  # drain the rest
        pass
    return decode(data)


def guarded(timeout: float, work: Callable[[], None], err: TextIO) -> None:
    """Run *work* for at most *timeout* seconds. Never breaks apt: every failure is one
    line on *err*, and nothing is raised."""
    import signal
    import threading

    def expire(signum: int, frame: object) -> None:
        raise _HookTimeout

    timer = threading.current_thread() is threading.main_thread()
    old = signal.signal(signal.SIGALRM, expire) if timer else None
    try:
        if timer:
            signal.setitimer(signal.ITIMER_REAL, timeout)
        work()
    except _HookTimeout:
        err.write(f"venvkeeper: apt hook gave up after {timeout:g}s; apt goes on\n")
    except (Exception, KeyboardInterrupt) as e:
        what = "; ".join(failure_of(e).lines) if isinstance(e, Exception) else "interrupted"
        err.write(f"venvkeeper: apt hook failed ({escape_value(what)}); apt goes on\n")
    finally:
        if timer:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, old)


def _predict_command(change: object) -> str:
    from venvkeeper.predict.changes import Change

    assert isinstance(change, Change)
    import shlex

    argv = ["venvkeeper", "predict"]
    for link, version in change.python_becomes:
        argv.append(f"--python-becomes={link}={version}" if link else f"--python-becomes={version}")
    argv += [f"--remove={p}" for p in change.remove]
    argv += [f"--remove-package={p}" for p in change.remove_packages]
    return escape(" ".join(shlex.quote(a) for a in argv))


class Judged(Protocol):
    """A judged venv as the hooks tell it: a scan's report or the inventory's snapshot."""

    @property
    def path(self) -> str: ...

    @property
    def status(self) -> Severity: ...

    @property
    def findings(self) -> tuple[Finding, ...]: ...


def _obsolete_note(reports: Iterable[Judged], limit: int = 5) -> str:
    """The apt hooks' lines about venvs on a base no configured archive offers any more."""
    from venvkeeper.checks.obsolete import OBSOLETE

    found = [r for r in reports if any(f.code == OBSOLETE for f in r.findings)]
    if not found:
        return ""
    n = len(found)
    lines = [
        f"venvkeeper: {plural(n, 'venv')} {noun(n, 'runs', 'run')} on a Python that no configured"
        " archive offers any more (base-obsolete: no more security fixes); venvkeeper"
        " repair --all moves them to a supported one"
    ]
    lines += [f"  warning   {escape(r.path)}  base-obsolete" for r in found[:limit]]
    if n > limit:
        lines.append(f"  ... and {n - limit} more: venvkeeper scan --only-problems")
    return "\n".join(lines) + "\n"


class StatePlaces(NamedTuple):
    """Where the hooks keep and read their state: venvkeeper's state directory (the
    inventory's), the procfs that tells the apt run, and the root of the dpkg database."""

    state_dir: str
    proc_root: str = "/proc"
    dpkg_root: str = "/"
    make_parents: bool = False  # the state directory may be created (the default place)

    @classmethod
    def default(cls, proc_root: str = "/proc") -> StatePlaces:
        from venvkeeper.inventory.paths import default_path

        return cls(
            os.path.dirname(default_path()),
            proc_root,
            "/",
            make_parents=not os.environ.get("VENVKEEPER_DB"),
        )


def leave_record(text: str, places: StatePlaces, err: TextIO) -> None:
    """The record of this apt run for the post-invoke hook (apt.record): its packages and
    the Python files they own before dpkg. A failure is one line, and costs only the
    post-invoke hook's selectiveness."""
    from venvkeeper.apt import record
    from venvkeeper.apt.hook import AptHookError, parse_input

    try:
        packages = [a.name for a in parse_input(text).actions]
        if (
            record.record_run(
                packages, places.state_dir, places.proc_root, places.dpkg_root, places.make_parents
            )
            is None
        ):
            err.write("venvkeeper: warning: this apt run cannot be told from /proc: no record\n")
    except AptHookError:
        return  # told by the prediction, which parses the same input
    except (OSError, VenvkeeperError) as e:
        err.write(
            "venvkeeper: warning: no record of this apt run"
            f" ({escape_value(str(e))}): the post-invoke hook will judge every venv\n"
        )


def pre_install(
    text: str,
    settings_of: Callable[[], HookSettings],
    out: TextIO,
    host_prefix: Optional[str],
    places: Optional[StatePlaces] = None,
    err: TextIO = sys.stderr,
) -> None:
    """Before dpkg: leave the record of this apt run (with *places*), then tell what the
    Python changes of this apt run will break (nothing printed when it leaves Python
    alone). The settings are asked for only when there is something to judge: an apt run
    that leaves Python alone costs no configuration read."""
    if places is not None:
        leave_record(text, places, err)
    from venvkeeper.apt.hook import parse_input, python_change
    from venvkeeper.configured import scan_as_configured
    from venvkeeper.formats import predict as fmt
    from venvkeeper.model.plan import Effect
    from venvkeeper.predict.changes import predict

    hook = parse_input(text)
    pc = python_change(hook.actions, prefix=host_prefix)
    if pc is None:
        return  # this apt run leaves Python alone: say nothing
    out.write("venvkeeper: Python packages in this apt run: " + escape("; ".join(pc.notes)) + "\n")
    if pc.patch_only:
        out.write(
            "venvkeeper: no minor version change and nothing removed: venvs keep working;"
            " processes on these interpreters will need a restart (venvkeeper restarts)\n"
        )
        return
    settings = settings_of()
    policy = settings.policy
    report = scan_as_configured(settings.config, settings.scan).report
    users = None
    if settings.processes:
        from venvkeeper.restarts.scan import venv_users

        try:
            users = venv_users(settings.proc_root)
        except VenvkeeperError:
            users = None
    pred = _with_consumers(predict(report, pc.change, users=users, policy=policy), pc, settings)
    if settings.json:
        out.write(fmt.render_json(pred))
        return
    breaking = [v for v in pred.venvs if v.effect.breaks]
    consumers = pred.breaking_consumers
    if breaking or consumers:
        out.write(fmt.render_predict(pred, only_problems=True))
        also = f" and {plural(len(consumers), 'consumer')}" if consumers else ""
        out.write(
            f"venvkeeper: {plural(len(breaking), 'venv')}{also} will break"
            " when dpkg goes on; repair plans: "
            + _predict_command(pc.change).replace(" predict ", " plan ", 1)
            + "\nvenvkeeper: for an offline repair, fetch the wheels the rebuilds need now: "
            + _predict_command(pc.change).replace(" predict ", " wheelhouse --dest DIR ", 1)
            + "\nvenvkeeper: after the upgrade, `venvkeeper repair --all` rebuilds them with"
            " the same packages (`--dry-run` first to see how; `--offline --find-links DIR`"
            " from the fetched wheels)\n"
        )
    else:
        others = len(pred.venvs) - pred.count(Effect.SURVIVES)
        out.write(
            f"venvkeeper: {len(pred.venvs)} venvs checked: none will break"
            + (f" ({others} already broken or degraded)" if others else "")
            + "\n"
        )
    # Those that break are told above; those that survive may still be left on a Python
    # no archive patches any more (python3.11 after a full-upgrade to trixie).
    out.write(_obsolete_note(v.then for v in pred.venvs if v.then and not v.effect.breaks))


def _with_consumers(pred: Prediction, pc: PythonChange, settings: HookSettings) -> Prediction:
    """*pred* with the consumers of each venv judged under the apt run's change (the
    embedding modules' packages of the run included)."""
    if not settings.consumers:
        return pred
    from venvkeeper.consumers import read_consumers
    from venvkeeper.predict.consumers import judge_consumers

    found = read_consumers(settings.system_root, _proc(settings))
    return judge_consumers(pred, found, pc.change)


def post_invoke(
    settings_of: Callable[[], HookSettings],
    out: TextIO,
    err: TextIO,
    places: Optional[StatePlaces] = None,
) -> None:
    """After dpkg: the venvs this apt run can have changed, judged again (recorded in the
    default inventory), the consumers that embed what it changed or use those venvs, and
    the processes to restart.

    With the pre-install hook's record of this apt run (*places*), only the venvs that
    depend on the Python files its packages owned before dpkg ran or own now are judged,
    from the facts the inventory keeps (no walk:
    :func:`venvkeeper.configured.judge_changed`); a run that touches no Python file does
    nothing and says nothing. Without a usable record, or without an inventory that
    stands for the host, one line says why and every venv is judged."""
    from venvkeeper.apt import record as apt_record

    if places is None:
        return _judge_all(settings_of(), out, err)
    rec, why = apt_record.read(places.state_dir, apt_record.current_run(places.proc_root))
    if rec is None:
        err.write(f"venvkeeper: {escape(why)}: judging every venv\n")
        return _judge_all(settings_of(), out, err)
    touched = rec.owned | apt_record.owned(rec.packages, places.dpkg_root)
    if touched.empty:
        return  # no Python file in this apt run: nothing to judge, nothing to say
    settings = settings_of()
    from venvkeeper.configured import Scanned, judge_changed

    result = judge_changed(
        settings.config,
        _recorded(settings),
        touched.paths(),
        sorted(touched.venvs),
        warn=_warner(err),
    )
    if isinstance(result, Scanned):
        out.write(_summary(result.report))
        venvs: Sequence[Judged] = result.report.venvs
        changed: Sequence[str] = [v.path for v in venvs]
    else:
        n = len(result.venvs)
        counts = _counts(v.status for v in result.venvs)
        scope = "on the Python packages of this apt run"
        if not n:
            out.write(f"venvkeeper: no venv depends {scope}\n")
        else:
            out.write(
                f"venvkeeper: {plural(n, 'venv')} {noun(n, 'depends', 'depend')} {scope},"
                f" judged again in {result.duration:.2f}s: {counts}\n"
            )
        venvs, changed = result.venvs, result.changed
    _tell_venvs(venvs, out)
    _tell_consumers(settings, touched.modules, changed, out)
    _tell_restarts(settings, out)


def _recorded(settings: HookSettings) -> ScanRequest:
    """The hook's scan, recorded in the default inventory (so that ``venvkeeper changes``
    shows what the upgrade did); a failure to record is a warning: apt goes on."""
    import dataclasses

    from venvkeeper.configured import Recording
    from venvkeeper.inventory.paths import default_path

    record = Recording(default_path(), named=bool(os.environ.get("VENVKEEPER_DB")), lenient=True)
    return dataclasses.replace(settings.scan, record=record)


def _warner(err: TextIO) -> Callable[[str], None]:
    def warn(message: str) -> None:
        err.write(f"venvkeeper: warning: {escape_value(message)}\n")

    return warn


def _counts(statuses: Iterable[Severity]) -> str:
    from venvkeeper.model.findings import Severity

    got = list(statuses)
    order = (Severity.CRITICAL, Severity.WARNING, Severity.UNKNOWN, Severity.OK)
    return ", ".join(f"{got.count(s)} {s.value}" for s in order)


def _summary(report: Report) -> str:
    from venvkeeper.formats import table

    return f"venvkeeper: {table.summary(report)}\n"


def _judge_all(settings: HookSettings, out: TextIO, err: TextIO) -> None:
    """Every venv under the roots, scanned as configured (reusing what the inventory keeps
    of those unchanged) and recorded in the default inventory; the consumers of the broken
    ones; the processes to restart."""
    from venvkeeper.configured import scan_as_configured

    report = scan_as_configured(settings.config, _recorded(settings), warn=_warner(err)).report
    out.write(_summary(report))
    _tell_venvs(report.venvs, out)
    _tell_restarts(settings, out)


def _tell_venvs(venvs: Sequence[Judged], out: TextIO) -> None:
    """The broken venvs among *venvs*, and those on an obsolete base."""
    from venvkeeper.model.findings import Severity

    broken = [v for v in venvs if v.status is Severity.CRITICAL]
    for v in broken[:5]:
        main = max(v.findings, key=lambda f: f.severity.rank, default=None)
        out.write(f"  critical  {escape(v.path)}  {escape(main.code) if main else ''}\n")
    if len(broken) > 5:
        out.write(f"  ... and {len(broken) - 5} more: venvkeeper scan --only-problems\n")
    if broken:
        out.write("  to repair them: venvkeeper repair --all --dry-run, then without --dry-run\n")
    out.write(_obsolete_note(venvs))


def _tell_consumers(
    settings: HookSettings, modules: Iterable[str], venvs: Sequence[str], out: TextIO
) -> None:
    """The consumers this apt run can have changed, judged again: those that embed an
    embedding module (mod_wsgi, a uWSGI python plugin, libpython) it changed, and those
    that use one of the venvs judged again. Nothing is read when there are neither."""
    root = settings.system_root.rstrip("/")
    # dpkg names the modules as the system sees them; consumers carry host paths
    modules = sorted(root + m if root and m.startswith("/") else m for m in modules)
    if not settings.consumers or (not modules and not venvs):
        return
    from venvkeeper.consumers import read_consumers
    from venvkeeper.consumers.judge import depending, judge
    from venvkeeper.formats.consumers import label
    from venvkeeper.model.findings import Severity
    from venvkeeper.scan.pipeline import judge_venv

    found = depending(read_consumers(settings.system_root, _proc(settings)), modules, venvs)
    if not found.consumers:
        return
    report = judge(found, lambda path: judge_venv(path, settings.policy))
    n = len(report.consumers)
    out.write(
        f"venvkeeper: {plural(n, 'consumer')} {noun(n, 'embeds', 'embed')} or"
        f" {noun(n, 'uses', 'use')} what this apt run changed:"
        f" {_counts(j.status for j in report.consumers)}\n"
    )
    broken = [j for j in report.consumers if j.status is Severity.CRITICAL]
    for j in broken[:5]:
        code = j.findings[0].code if j.findings else "venv-broken"
        out.write(f"  critical  {escape(label(j.consumer))}  {escape(code)}\n")
    if len(broken) > 5:
        out.write(f"  ... and {len(broken) - 5} more: venvkeeper consumers\n")


def _proc(settings: HookSettings) -> Optional[str]:
    """The /proc that tells which units run now (None: not looked at; another system's
    units do not run in this host's /proc)."""
    return settings.proc_root if settings.processes and settings.system_root == "/" else None


def _tell_restarts(settings: HookSettings, out: TextIO) -> None:
    """The processes to restart."""
    from venvkeeper.formats import restarts as restarts_fmt
    from venvkeeper.restarts.scan import scan_processes

    restarts = scan_processes(settings.proc_root, policy=settings.policy)
    out.write(f"venvkeeper: {restarts_fmt.summary(restarts)}\n")
    units = list(dict.fromkeys(p.unit or f"pid {p.pid}" for p in restarts.needing_restart))
    if units:
        shown = ", ".join(escape(u) for u in units[:8])
        more = f" and {len(units) - 8} more" if len(units) > 8 else ""
        out.write(f"  to restart: {shown}{more} (venvkeeper restarts --unit-commands)\n")
