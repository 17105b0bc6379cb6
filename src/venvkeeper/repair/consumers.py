"""After a repair: restart what runs from the repaired venvs, and change the hard-coded
``lib/pythonX.Y`` lines of their consumers (``repair --restart``, ``--fix-consumers``).

For each venv a repair put right, its consumers (:mod:`venvkeeper.consumers`) say what to
do:

- **edits**: a consumer that reaches the venv through a hard-coded ``lib/pythonX.Y`` of
  another minor than the venv's now gets that line changed (:mod:`.lineedit`: lock,
  backup beside, one edit, atomic rename, read back; put back on any failure);
- **restarts**: the running units of the system manager that use the venv are
  ``try-restart``-ed, the enabled ones systemd holds as failed (they died on the broken
  venv) restarted, the web servers that embed it reloaded (apache2, uWSGI), once each,
  after the edits (and ``daemon-reload`` when a unit's file was edited); ``systemctl`` is
  found by :mod:`venvkeeper.host.programs` (an absolute path root may trust).

Never on a consumer's word alone when another user could change it: a consumer any of
whose files (:attr:`Consumer.files`: unit, drop-ins, crontab, config, environment file,
link) fails the trust rule for the acting user (:func:`venvkeeper.host.trust.distrust`)
makes root neither restart nor edit, and the action says which file and who controls it.
Never into a venv that still fails: a venv judged critical after its repair, a server
that embeds another Python than the venv's, a consumer whose hard-code is still wrong:
held, with the reason. Units of users' managers are named, never touched. Without
``restart``/``fix``, or with ``dry_run``, the exact commands and edits are returned,
not run.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Optional

from venvkeeper.checks.consumers import site_minor
from venvkeeper.consumers.judge import by_venv, real
from venvkeeper.errors import CommandError, VenvkeeperError
from venvkeeper.host.trust import TrustCache, distrust
from venvkeeper.model.consumers import (
    ActionKind,
    ActionOutcome,
    Consumer,
    ConsumerAction,
    ConsumerScan,
    LineEdit,
    Manager,
    RefKind,
    RestartVerb,
)
from venvkeeper.model.findings import Severity
from venvkeeper.model.repair import Outcome, RepairResult
from venvkeeper.model.report import VenvReport
from venvkeeper.repair.lineedit import EditError, edit_line, plan_edit

#: Most a systemctl call may take (a unit's stop and start).
TIMEOUT = 300.0
_ENV = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL": "C", "SYSTEMD_PAGER": ""}
#: What a venv's consumers run into once it is judged again after its repair.
_HOLD = (Severity.CRITICAL,)
#: References that run the venv (not what a server embeds or a path names).
_RUNS = frozenset(RefKind) - {RefKind.EMBEDDED_HOME, RefKind.SITEPKGS_HARDCODE}

ReportOf = Callable[[str], Optional[VenvReport]]


@dataclass(frozen=True)
class ActOptions:
    """What ``repair`` was asked to do for the consumers. *root*: the system whose
    consumers are read (its units, crontabs, configs); *proc*: which units run now.
    *systemctl*: the program to run (None: found in the system directories)."""

    restart: bool = False
    fix: bool = False
    dry_run: bool = False
    root: str = "/"
    proc: Optional[str] = "/proc"
    systemctl: Optional[str] = None


@dataclass
class _Unit:
    """One unit to restart, with the consumers that ask for it and those held back."""

    manager: Manager
    unit: str
    verb: RestartVerb
    user: Optional[str]
    venv: str
    running: Optional[bool]
    enabled: Optional[bool]
    command: str
    asking: list[str] = field(default_factory=list)


def _trouble(c: Consumer, uid: int, cache: TrustCache, extra: Sequence[str] = ()) -> Optional[str]:
    """Why the acting user may not act on *c*'s word: the first of its files (and
    *extra*) that another user can change; None when it may."""
    for f in dict.fromkeys([*c.files, *extra]):
        if not f.startswith("/"):
            continue
        problem = distrust(f, uid, cache=cache)
        if problem is not None:
            who = "root" if uid == 0 else f"uid {uid}"
            return (
                f"{problem}: {who} acts on nothing another user can change (restarts no"
                " unit, edits no file on its word)"
            )
    return None


def embedded_targets(scan: ConsumerScan, uid: Optional[int] = None) -> Mapping[str, str]:
    """The Python ``X.Y`` each venv must be rebuilt for because a server embeds it
    (:func:`venvkeeper.consumers.judge.embedded_minors`), taken only from consumers whose
    files nobody but the acting user (*uid*, default this process's) and root can change:
    a rebuild on another minor is an act, never taken on another user's word."""
    from venvkeeper.consumers.judge import embedded_minors

    me = os.geteuid() if uid is None else uid
    cache = TrustCache()
    return embedded_minors(c for c in scan.consumers if _trouble(c, me, cache) is None)


def _inside(path: str, root: str) -> str:
    """A host path as the system in *root* names it."""
    prefix = root.rstrip("/")
    return path[len(prefix) :] if prefix and path.startswith(prefix + "/") else path


def consumer_actions(
    results: Sequence[RepairResult],
    options: ActOptions,
    report_of: ReportOf,
    scan: Optional[ConsumerScan] = None,
) -> tuple[ConsumerAction, ...]:
    """The restarts and edits for the consumers of the venvs of *results*, done when
    *options* ask for them (and not a dry run), else planned or printed. *report_of*
    judges a venv as it is now (None: not a venv). Never raises for one consumer: its
    action says what went wrong."""
    if scan is None:
        from venvkeeper.consumers import read_consumers

        scan = read_consumers(options.root, options.proc)
    found = by_venv(scan.consumers)
    uid = os.geteuid()
    cache = TrustCache()
    edits: list[ConsumerAction] = []
    held: list[ConsumerAction] = []
    units: dict[tuple[str, str, str, Optional[str]], _Unit] = {}
    for r in results:
        consumers = found.get(real(r.path), ())
        if not consumers:
            continue
        minor, why_hold = _venv_now(r, report_of)
        for c in consumers:
            name = c.label
            trouble = _trouble(c, uid, cache)
            done = [
                _do_edit(e, c, r.path, trouble, options) for e in _edits(c, r.path, minor, options)
            ]
            edits += done
            fixed = all(a.outcome in (ActionOutcome.DONE, ActionOutcome.PLANNED) for a in done)
            restart = c.restart
            if r.outcome is Outcome.NOTHING:
                continue  # nothing changed in the venv: nothing to restart
            if restart.unit is None or restart.verb is RestartVerb.NONE:
                continue
            hold = why_hold or _consumer_hold(c, r.path, minor, fixed)
            if restart.manager is Manager.USER:
                who = restart.user or "its user"
                held.append(
                    ConsumerAction(
                        ActionKind.RESTART,
                        ActionOutcome.NAMED,
                        r.path,
                        (name,),
                        f"a unit of {who}'s manager: root does not touch it; {who} restarts it",
                        restart.unit,
                        restart.command,
                        user=restart.user,
                    )
                )
                continue
            if hold or trouble:  # the trust rule first: it says who controls what
                held.append(
                    ConsumerAction(
                        ActionKind.RESTART,
                        ActionOutcome.REFUSED if trouble else ActionOutcome.HELD,
                        r.path,
                        (name,),
                        trouble or hold or "",
                        restart.unit,
                        restart.command,
                    )
                )
                continue
            key = (restart.manager.value, restart.unit, restart.verb.value, restart.user)
            u = units.get(key)
            if u is None:
                u = units[key] = _Unit(
                    restart.manager,
                    restart.unit,
                    restart.verb,
                    restart.user,
                    r.path,
                    c.running,
                    c.enabled,
                    restart.command or "",
                )
            elif c.running:
                u.running = True
            u.asking.append(name)
    reload_first = any(
        a.outcome is ActionOutcome.DONE and a.edit is not None and _is_unit_file(a.edit.path)
        for a in edits
    )
    restarts = _restarts(list(units.values()), options, reload_first)
    return (*edits, *restarts, *held)


def _venv_now(r: RepairResult, report_of: ReportOf) -> tuple[Optional[str], Optional[str]]:
    """The venv's minor after its repair, and why its consumers must not be restarted
    into it (None: they may)."""
    if r.outcome is Outcome.PLANNED:
        return (r.target.version if r.target else None), None
    if r.outcome not in (Outcome.REPAIRED, Outcome.NOTHING):
        return None, f"its venv was not repaired ({r.outcome.value}): not restarted into it"
    rep = report_of(r.path)
    if rep is None:
        return None, "its venv is not a venv after its repair: not restarted into it"
    if rep.status in _HOLD:
        main = rep.main_finding
        what = f" ({main.code})" if main else ""
        return site_minor(rep.facts), f"its venv still fails{what}: not restarted into it"
    return site_minor(rep.facts), None


def _consumer_hold(c: Consumer, venv: str, minor: Optional[str], fixed: bool) -> Optional[str]:
    """Why this consumer would fail if restarted now, though its venv works."""
    refs = [r for r in c.refs if r.venv and real(r.venv) == real(venv)]
    kinds = {r.kind for r in refs}
    embedded = c.embedded_python
    if RefKind.EMBEDDED_HOME in kinds and embedded and minor and embedded != minor:
        return (
            f"it embeds Python {embedded} and its venv is now Python {minor}: not reloaded"
            f" (repair --python /usr/bin/python{embedded} the venv)"
        )
    if not kinds & _RUNS and RefKind.EMBEDDED_HOME not in kinds and minor:
        stale = [r for r in refs if r.kind is RefKind.SITEPKGS_HARDCODE and r.minor != minor]
        if stale and not fixed:
            r = stale[0]
            return (
                f"{r.source}:{r.line} still hard-codes lib/python{r.minor} and its venv is"
                f" now Python {minor}: not restarted (repair --fix-consumers changes it)"
            )
    return None


def _edits(c: Consumer, venv: str, minor: Optional[str], options: ActOptions) -> list[LineEdit]:
    """The lines of *c* that hard-code another ``lib/pythonX.Y`` of *venv* than *minor*
    (each line once). A line that cannot be found comes back as an edit to explain."""
    if minor is None:
        return []
    out: dict[tuple[str, int], LineEdit] = {}
    for r in c.refs:
        if r.kind is not RefKind.SITEPKGS_HARDCODE or not r.minor or r.minor == minor:
            continue
        if not r.venv or real(r.venv) != real(venv):
            continue
        try:
            e = plan_edit(r.source, r.line, r.minor, minor, _inside(r.venv, options.root))
        except (EditError, OSError) as err:
            e = LineEdit(r.source, r.line, "", str(err))  # not found: said, not done
        out.setdefault((e.path, e.line), e)
    return list(out.values())


def _do_edit(
    edit: LineEdit, c: Consumer, venv: str, trouble: Optional[str], options: ActOptions
) -> ConsumerAction:
    name = (c.label,)
    if not edit.old:  # plan_edit could not find it: edit.new says why
        return ConsumerAction(ActionKind.EDIT, ActionOutcome.FAILED, venv, name, edit.new)
    if trouble is None:
        trouble = _trouble(c, os.geteuid(), TrustCache(), (edit.path,))
    if trouble is not None:
        return ConsumerAction(
            ActionKind.EDIT, ActionOutcome.REFUSED, venv, name, trouble, edit=edit
        )
    if not options.fix or options.dry_run:
        outcome = ActionOutcome.PLANNED if options.fix else ActionOutcome.PRINTED
        what = "" if options.fix else "repair --fix-consumers changes it"
        return ConsumerAction(ActionKind.EDIT, outcome, venv, name, what, edit=edit)
    try:
        backup = edit_line(edit)
    except (EditError, VenvkeeperError) as e:
        return ConsumerAction(ActionKind.EDIT, ActionOutcome.FAILED, venv, name, str(e), edit=edit)
    return ConsumerAction(
        ActionKind.EDIT,
        ActionOutcome.DONE,
        venv,
        name,
        f"changed; the original is kept as {backup}",
        edit=edit,
    )


def _is_unit_file(path: str) -> bool:
    """A unit's file or drop-in: systemd reads it again only on ``daemon-reload``."""
    return "/systemd/" in path and (
        path.endswith(".conf") or any(path.endswith(s) for s in _UNIT_SUFFIXES)
    )


_UNIT_SUFFIXES = (".service", ".socket", ".timer", ".path")


def _systemctl(options: ActOptions) -> Optional[str]:
    if options.systemctl is not None:
        return options.systemctl
    from venvkeeper.host.programs import find

    return find("systemctl")


def _restarts(units: list[_Unit], options: ActOptions, reload_first: bool) -> list[ConsumerAction]:
    out: list[ConsumerAction] = []
    other = options.root.rstrip("/") != ""  # another system's units: not this host's
    act = options.restart and not options.dry_run and not other
    exe = _systemctl(options) if act and units else None
    if act and units and exe is None:
        return [
            ConsumerAction(
                ActionKind.RESTART, ActionOutcome.FAILED, u.venv, tuple(u.asking),
                "systemctl was not found in the system directories", u.unit, u.command,
            )
            for u in units
        ]  # fmt: skip
    if act and reload_first and exe is not None and any(u.running is not False for u in units):
        done = _run(exe, ["daemon-reload"])
        if done is not None:
            out.append(
                ConsumerAction(
                    ActionKind.RESTART, ActionOutcome.FAILED, "", (), done, None,
                    "systemctl daemon-reload",
                )
            )  # fmt: skip
    for u in units:
        asking = tuple(u.asking)
        if u.running is False and act and u.enabled and exe is not None and _failed(exe, u.unit):
            # It died on the broken venv: try-restart would leave it down; bring it back.
            command = f"systemctl restart {u.unit}"
            failed = _run(exe, ["restart", u.unit])
            out.append(
                ConsumerAction(
                    ActionKind.RESTART,
                    ActionOutcome.FAILED if failed else ActionOutcome.DONE,
                    u.venv,
                    asking,
                    failed or "it had failed (on its broken venv): restarted now that it works",
                    u.unit,
                    command,
                )
            )
            continue
        if u.running is False:
            hint = f"; start it when wanted: systemctl restart {u.unit}" if u.enabled else ""
            out.append(
                ConsumerAction(
                    ActionKind.RESTART, ActionOutcome.NOT_RUNNING, u.venv, asking,
                    f"not running: nothing to restart{hint}", u.unit, u.command,
                )
            )  # fmt: skip
            continue
        verb = u.verb.value
        if u.running is None:  # not known: the verbs that do nothing to a stopped unit
            verb = "try-reload-or-restart" if u.verb is RestartVerb.RELOAD else "try-restart"
        command = f"systemctl {verb} {u.unit}"
        if not act:
            outcome = ActionOutcome.PLANNED if options.restart else ActionOutcome.PRINTED
            detail = "" if options.restart else "run it, or repair --restart"
            if other:
                outcome = ActionOutcome.PRINTED
                detail = f"a unit of the system in {options.root}: run it there"
            out.append(
                ConsumerAction(ActionKind.RESTART, outcome, u.venv, asking, detail, u.unit, command)
            )
            continue
        assert exe is not None
        failed = _run(exe, [verb, u.unit])
        out.append(
            ConsumerAction(
                ActionKind.RESTART,
                ActionOutcome.FAILED if failed else ActionOutcome.DONE,
                u.venv,
                asking,
                failed or "",
                u.unit,
                command,
            )
        )
    return out


def _failed(exe: str, unit: str) -> bool:
    """Whether systemd holds *unit* in the failed state (``systemctl is-failed``: a query)."""
    from venvkeeper.host import command

    try:
        res = command.run([exe, "is-failed", "--quiet", unit], timeout=TIMEOUT, env=_ENV)
    except CommandError:
        return False
    return res.returncode == 0


def _run(exe: str, args: list[str]) -> Optional[str]:
    """Run systemctl; None when it worked, else what went wrong."""
    from venvkeeper.host import command

    try:
        res = command.run([exe, *args], timeout=TIMEOUT, env=_ENV)
    except CommandError as e:
        return str(e)
    if res.returncode != 0:
        tail = (res.stderr.strip() or res.stdout.strip()).splitlines()[-1:]
        return f"systemctl {' '.join(args)} exited {res.returncode}" + (
            f": {tail[0]}" if tail else ""
        )
    return None
