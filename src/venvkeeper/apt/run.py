"""The apt hooks' work: read apt's input, predict before dpkg runs, report after it.

apt waits for its hooks and prints what they print. So a hook reads all of its input
first (apt must never write into a pipe nobody reads), says nothing when the apt run
leaves Python alone, gives up after a timeout, and turns every failure into one line:
:func:`guarded` is the only way in, and it never raises.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, BinaryIO, Callable, Optional, TextIO

from venvkeeper.errors import VenvkeeperError, failure_of
from venvkeeper.textutil import escape, escape_value, noun, plural

if TYPE_CHECKING:
    from venvkeeper.apt.hook import PythonChange
    from venvkeeper.configured import ScanConfig, ScanRequest
    from venvkeeper.model.plan import Prediction
    from venvkeeper.model.policy import Policy
    from venvkeeper.model.report import VenvReport


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


def _obsolete_note(reports: Iterable[VenvReport], limit: int = 5) -> str:
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


def pre_install(
    text: str, settings_of: Callable[[], HookSettings], out: TextIO, host_prefix: Optional[str]
) -> None:
    """Before dpkg: what the Python changes of this apt run will break (nothing printed
    when it leaves Python alone). The settings are asked for only when there is something
    to judge: an apt run that leaves Python alone costs no configuration read."""
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

    found = read_consumers("/", settings.proc_root if settings.processes else None)
    return judge_consumers(pred, found, pc.change)


def post_invoke(settings: HookSettings, out: TextIO, err: TextIO) -> None:
    """After dpkg: the venvs' state (recorded in the default inventory) and the processes
    to restart."""
    import dataclasses

    from venvkeeper.configured import Recording, scan_as_configured
    from venvkeeper.formats import restarts as restarts_fmt
    from venvkeeper.formats import table
    from venvkeeper.inventory.store import default_path
    from venvkeeper.model.findings import Severity
    from venvkeeper.restarts.scan import scan_processes

    policy = settings.policy
    # into the default inventory, so `venvkeeper changes` shows what the upgrade did; a
    # failure to record is a warning: apt goes on
    record = Recording(default_path(), named=bool(os.environ.get("VENVKEEPER_DB")), lenient=True)

    def warn(message: str) -> None:
        err.write(f"venvkeeper: warning: {escape_value(message)}\n")

    request = dataclasses.replace(settings.scan, record=record)
    report = scan_as_configured(settings.config, request, warn=warn).report
    out.write(f"venvkeeper: {table.summary(report)}\n")
    broken = [v for v in report.venvs if v.status is Severity.CRITICAL]
    for v in broken[:5]:
        main = v.main_finding
        out.write(f"  critical  {escape(v.path)}  {escape(main.code) if main else ''}\n")
    if len(broken) > 5:
        out.write(f"  ... and {len(broken) - 5} more: venvkeeper scan --only-problems\n")
    if broken:
        out.write("  to repair them: venvkeeper repair --all --dry-run, then without --dry-run\n")
    out.write(_obsolete_note(report.venvs))
    restarts = scan_processes(settings.proc_root, policy=policy)
    out.write(f"venvkeeper: {restarts_fmt.summary(restarts)}\n")
    units = list(dict.fromkeys(p.unit or f"pid {p.pid}" for p in restarts.needing_restart))
    if units:
        shown = ", ".join(escape(u) for u in units[:8])
        more = f" and {len(units) - 8} more" if len(units) > 8 else ""
        out.write(f"  to restart: {shown}{more} (venvkeeper restarts --unit-commands)\n")
