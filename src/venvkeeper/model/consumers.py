"""What each venv serves: the consumers that will start a venv's interpreter or scripts.

A :class:`Consumer` is something that starts Python from a venv, now or later: a systemd
unit (system or a user's), a cron line, a run-parts script, a command in a PATH directory
(a pipx app among them), a uWSGI app, an Apache ``WSGIDaemonProcess``, a supervisor
program, a gunicorn config, an at job, a SysV init script or ``/etc/rc.local``. It holds
the :class:`Reference` values that name a venv (how and how surely), who runs it, whether
it is enabled and running, the Python an embedding server was built for, what to restart
after a repair and how it fails when its venv breaks. Readers (``venvkeeper.consumers``)
make them from files only; checks judge them (:class:`ConsumerFacts` -> findings);
:class:`JudgedConsumer` is the verdict.

Paths are host paths as the OS gives them (a consumer read in another root has that root
in front); the literal text a file holds is kept in :attr:`Reference.text`.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import TYPE_CHECKING, Optional

from venvkeeper.model.findings import Finding, Severity

if TYPE_CHECKING:
    from venvkeeper.model.venv import VenvFacts


class ConsumerKind(enum.Enum):
    """What the consumer is (the reader that found it)."""

    SYSTEMD = "systemd"  # a unit of the system manager
    SYSTEMD_USER = "systemd-user"  # a unit of a user's manager (linger or enabled links)
    CRON = "cron"  # a line of /etc/crontab, /etc/cron.d or a user's crontab
    ANACRON = "anacron"  # a line of /etc/anacrontab
    CRON_SCRIPT = "cron-script"  # a script in /etc/cron.{hourly,daily,weekly,monthly}
    COMMAND = "command"  # a script or link in a PATH directory
    PIPX = "pipx"  # a pipx app's link (user, legacy user or --global)
    UWSGI = "uwsgi"  # a uWSGI app (apps-enabled, uwsgi-app@, Emperor vassal, --ini)
    MOD_WSGI = "mod-wsgi"  # Apache mod_wsgi: WSGIDaemonProcess or WSGIPythonHome
    SUPERVISOR = "supervisor"  # a supervisor [program:x]
    GUNICORN = "gunicorn"  # a gunicorn config (-c FILE, GUNICORN_CMD_ARGS)
    AT_JOB = "at-job"  # a pending at job in atd's spool
    SYSV_INIT = "sysv-init"  # an /etc/init.d script run as NAME.service (no native unit)
    RC_LOCAL = "rc-local"  # /etc/rc.local, run by rc-local.service when executable


class RefKind(enum.Enum):
    """How a consumer names a venv (shared/CONSUMERS.md §1)."""

    EXEC_INTERP = "exec-interp"  # runs VENV/bin/python*
    EXEC_SCRIPT = "exec-script"  # runs VENV/bin/SCRIPT
    EXEC_VIA_LINK = "exec-via-link"  # runs a link that leads into VENV/bin
    EXEC_VIA_SHEBANG = "exec-via-shebang"  # runs a script whose shebang names VENV's python
    PATH_ENTRY = "path-entry"  # a bare name found through a PATH holding VENV/bin
    ACTIVATE = "activate"  # sources VENV/bin/activate
    EMBEDDED_HOME = "embedded-home"  # an embedding server's home= / python-home=
    SITEPKGS_HARDCODE = "sitepkgs-hardcode"  # names VENV/lib/pythonX.Y/... (a minor)
    CONFIG_CHAIN = "config-chain"  # hands a config file to a server (uwsgi --ini F ...)


class Confidence(enum.Enum):
    """How surely the reference names that venv."""

    EXACT = "exact"  # a literal path
    EXPANDED = "expanded"  # after specifiers or variables
    PATH_INFERRED = "path-inferred"  # a bare name through a PATH the launcher uses
    SHELL_HEURISTIC = "shell-heuristic"  # a pattern in shell or Python code
    UNRESOLVED = "unresolved"  # an unknowable variable, an unknown instance: literal only

    @property
    def rank(self) -> int:
        return _CONFIDENCE_RANK[self]


_CONFIDENCE_RANK = {c: i for i, c in enumerate(reversed(list(Confidence)))}


class VenvState(enum.Enum):
    """What the reader found at the venv path a reference names."""

    VENV = "venv"  # a directory holding pyvenv.cfg
    GONE = "gone"  # nothing there (the venv was removed or moved)
    NOT_VENV = "not-venv"  # a directory, but no pyvenv.cfg
    UNKNOWN = "unknown"  # could not look (permission), or the path is not known


class FailsHow(enum.Enum):
    """How a consumer fails when its venv breaks (for predict and the apt hook)."""

    WONT_START = "will-not-start"  # 203/EXEC, "bad interpreter", "No such file"
    IMPORT_ERROR = "import-error"  # starts, then fails at import (a failed unit, a loop)
    HTTP_500 = "http-500"  # answers 500 while its server looks healthy
    NEXT_RUN = "next-run"  # a scheduled job: fails at its next run
    NEXT_USE = "next-use"  # a command: fails when someone runs it

    @property
    def phrase(self) -> str:
        """How a sentence says it: ``it will not start (203/EXEC)``."""
        return _FAILS_PHRASE[self]


_FAILS_PHRASE = {
    FailsHow.WONT_START: "will not start (203/EXEC)",
    FailsHow.IMPORT_ERROR: "starts and fails at import",
    FailsHow.HTTP_500: "answers HTTP 500 while its server looks healthy",
    FailsHow.NEXT_RUN: "fails at its next run",
    FailsHow.NEXT_USE: "fails when it is run",
}


class Manager(enum.Enum):
    """Who restarts a consumer."""

    SYSTEM = "system"  # the system manager: systemctl try-restart / reload UNIT
    USER = "user"  # a user's manager: named, never touched by root
    NONE = "none"  # nothing to restart: a cron job or a command runs anew each time


class RestartVerb(enum.Enum):
    TRY_RESTART = "try-restart"
    RELOAD = "reload"  # web servers: a graceful reload re-creates their daemon processes
    NONE = "none"


@dataclass(frozen=True)
class Restart:
    """What to restart (or reload) once the consumer's venv is repaired."""

    manager: Manager = Manager.NONE
    unit: Optional[str] = None
    verb: RestartVerb = RestartVerb.NONE
    user: Optional[str] = None  # the user whose manager runs *unit* (Manager.USER)

    @property
    def command(self) -> Optional[str]:
        """The command line a sysadmin would run, or None."""
        if self.unit is None or self.verb is RestartVerb.NONE:
            return None
        if self.manager is Manager.USER:
            return f"systemctl --user -M {self.user or '?'}@ {self.verb.value} {self.unit}"
        return f"systemctl {self.verb.value} {self.unit}"


NO_RESTART = Restart()


@dataclass(frozen=True)
class Reference:
    """One place where a consumer names a venv.

    *text* is the literal text of the file (an argv word, a value); *path* the path it
    names once expanded (a host path), None when it cannot be known; *venv* the venv
    directory that path lies in (by ``pyvenv.cfg``, or by shape when the venv is gone),
    None when none; *minor* the ``X.Y`` of a hard-coded ``lib/pythonX.Y``."""

    kind: RefKind
    confidence: Confidence
    text: str
    path: Optional[str]
    venv: Optional[str]
    venv_state: VenvState
    source: str
    line: int
    minor: Optional[str] = None
    via: tuple[str, ...] = ()  # links followed, or the config files of a chain
    key: str = ""  # the directive or option: "ExecStart", "home", "python-path", ...


@dataclass(frozen=True)
class Launch:
    """How the consumer starts its command, as read (the argv before run-time expansion)."""

    argv: tuple[str, ...] = ()
    env: tuple[tuple[str, str], ...] = ()
    cwd: Optional[str] = None
    root_dir: Optional[str] = None  # RootDirectory=: the argv's paths lie in it


class Activation(enum.Enum):
    """What starts it: the basis of :meth:`Consumer.fails_how`."""

    SERVICE = "service"  # a unit started at boot or by hand
    TIMER = "timer"  # a unit started by a .timer
    PATH = "path"  # a unit started by a .path
    SOCKET = "socket"  # a unit started by a .socket
    SCHEDULE = "schedule"  # cron, anacron, run-parts
    COMMAND = "command"  # a user runs it
    WEB = "web"  # an embedding web server serves it (uwsgi, mod_wsgi)
    PROCESS = "process"  # a process manager runs it (supervisor, gunicorn)


@dataclass(frozen=True)
class Consumer:
    """One consumer and every reference it makes to a venv.

    *name* is how a sysadmin calls it: the unit name, ``FILE:LINE`` of a cron line, the
    command's path, ``program:NAME`` of supervisor, the uWSGI config, ``GROUP`` of a
    ``WSGIDaemonProcess``. *problems* are its own findings (a file that could not be read
    or parsed), made by the reader."""

    kind: ConsumerKind
    name: str
    source: str
    line: int
    user: Optional[str]
    refs: tuple[Reference, ...]
    activation: Activation
    enabled: Optional[bool] = None  # None: not a notion for it (a command)
    running: Optional[bool] = None  # None: unknown (no /proc given, or not a process)
    trigger: Optional[str] = None  # "probe.timer", "daily", "*/5 * * * *", "@reboot"
    embedded_python: Optional[str] = None  # "3.11": the embedding module's Python
    embedded_module: Optional[str] = None  # the module it was read from
    restart: Restart = NO_RESTART
    launch: Launch = Launch()
    via: tuple[str, ...] = ()  # the chain that reaches it: ("apache2.service", conf, ...)
    problems: tuple[Finding, ...] = ()
    #: Every file whose word this consumer is taken on (host paths): its source, the files
    #: of its references (drop-ins, environment files, included configs, the links of a
    #: command) and of its chain. Root acts on a consumer only when no other user can
    #: change any of these (the trust rule is the caller's).
    files: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        """How a sentence names it: ``app.service``, ``cron /etc/cron.d/x:3``,
        ``uapp.service (user alice)``, ``uwsgi /etc/uwsgi/x.ini (uwsgi.service)``. Raw:
        escape it to print."""
        if self.kind is ConsumerKind.SYSTEMD:
            return self.name + (f" (via {self.trigger})" if self.trigger else "")
        if self.kind is ConsumerKind.SYSTEMD_USER:
            return f"{self.name} (user {self.user or '?'})"
        if self.kind in (ConsumerKind.UWSGI, ConsumerKind.MOD_WSGI, ConsumerKind.SUPERVISOR):
            parent = self.restart.unit
            return f"{self.kind.value} {self.name}" + (f" ({parent})" if parent else "")
        return f"{self.kind.value} {self.name}"

    @property
    def primary(self) -> Optional[Reference]:
        """The reference that decides the consumer's venv: the surest, then the one that
        runs the venv (exec before embedded before activate ...)."""
        if not self.refs:
            return None
        return min(
            self.refs,
            key=lambda r: (r.venv is None, -r.confidence.rank, _KIND_ORDER[r.kind]),
        )

    @property
    def venv(self) -> Optional[str]:
        p = self.primary
        return p.venv if p is not None else None

    @property
    def venvs(self) -> tuple[str, ...]:
        """Every venv it names, primary first."""
        out = dict.fromkeys(r.venv for r in (self.primary, *self.refs) if r and r.venv)
        return tuple(v for v in out if v is not None)

    def fails_how(self, loud: bool = True) -> FailsHow:
        """How it fails when its venv breaks: *loud* when the venv's interpreter goes
        away (``bin/python3`` -> a removed ``python3.X``), else silent (the interpreter is
        replaced by another minor and imports fail)."""
        kinds = {r.kind for r in self.refs}
        if self.activation is Activation.WEB or RefKind.EMBEDDED_HOME in kinds:
            return FailsHow.HTTP_500
        if self.activation is Activation.SCHEDULE or self.activation is Activation.TIMER:
            return FailsHow.NEXT_RUN
        if self.activation is Activation.COMMAND:
            return FailsHow.NEXT_USE
        if kinds == {RefKind.SITEPKGS_HARDCODE}:
            return FailsHow.IMPORT_ERROR
        return FailsHow.WONT_START if loud else FailsHow.IMPORT_ERROR

    def fails_phrase(self, how: FailsHow) -> str:
        """How a sentence says that it fails *how*: an init script's or rc.local's daemon
        does not start, but the script may end well all the same (Debian's skeleton ends
        with ``:``): no 203/EXEC, and its unit can look active."""
        if how is FailsHow.WONT_START and self.kind in _SCRIPT_KINDS:
            return "will not start (its script cannot run it; the unit may still look active)"
        return how.phrase


_KIND_ORDER = {k: i for i, k in enumerate(RefKind)}
_SCRIPT_KINDS = frozenset({ConsumerKind.SYSV_INIT, ConsumerKind.RC_LOCAL})


@dataclass(frozen=True)
class ConsumerFacts:
    """What the consumer checks judge: the consumer and the facts of each venv it names
    (None for a path that is not a venv, or not inspected)."""

    consumer: Consumer
    venvs: tuple[tuple[str, Optional[VenvFacts]], ...] = ()

    def facts_of(self, venv: Optional[str]) -> Optional[VenvFacts]:
        for path, facts in self.venvs:
            if path == venv:
                return facts
        return None


@dataclass(frozen=True)
class JudgedConsumer:
    """A consumer with its findings (its own and the checks'), and its venvs' verdicts."""

    consumer: Consumer
    findings: tuple[Finding, ...]
    venv_status: Optional[Severity] = None  # the primary venv's status (None: not judged)

    @property
    def status(self) -> Severity:
        """The worst of its findings and its venv's status: a consumer of a broken venv
        is broken."""
        worst = self.venv_status.status if self.venv_status is not None else Severity.OK
        for f in self.findings:
            if f.severity.status.rank > worst.rank:
                worst = f.severity.status
        return worst


@dataclass(frozen=True)
class ConsumerScan:
    """Everything the readers found: the consumers and what they could not read."""

    consumers: tuple[Consumer, ...]
    problems: tuple[Finding, ...] = ()  # reader-level problems (a load dir unreadable)
    seconds: float = 0.0
    files: int = 0  # consumer files read


@dataclass(frozen=True)
class ConsumerReport:
    """``venvkeeper consumers``: each consumer judged, the venvs nothing uses."""

    consumers: tuple[JudgedConsumer, ...]
    unused: tuple[str, ...]
    problems: tuple[Finding, ...] = ()
    seconds: float = 0.0

    @property
    def worst(self) -> Severity:
        worst = Severity.OK
        for c in self.consumers:
            if c.status.rank > worst.rank:
                worst = c.status
        return worst

    def of_venv(self, venv: str) -> tuple[JudgedConsumer, ...]:
        return tuple(c for c in self.consumers if venv in c.consumer.venvs)


@dataclass(frozen=True)
class ConsumerPrediction:
    """One consumer of a venv under a planned change: whether it breaks, and how.

    *breaks*: it works now and fails after the change; *fails_how* is how it then fails
    (None when it does not); *broken_now*: it fails already. *after_repair*: the venv's
    planned repair leaves it broken until a line of its config changes (a hard-coded
    ``lib/pythonX.Y``), as ``FILE:LINE: lib/python3.11 -> lib/python3.13``."""

    consumer: Consumer
    venv: str
    breaks: bool
    fails_how: Optional[FailsHow]
    why: str
    broken_now: bool = False
    embedded_then: Optional[str] = None  # the embedding module's Python after the change
    after_repair: Optional[str] = None


class ActionKind(enum.Enum):
    """What ``repair`` does for a consumer once its venv is repaired."""

    RESTART = "restart"  # systemctl try-restart (or reload) a unit
    EDIT = "edit"  # change a hard-coded lib/pythonX.Y in a consumer's file


class ActionOutcome(enum.Enum):
    DONE = "done"
    FAILED = "failed"  # the command failed, or the edit was put back
    PRINTED = "printed"  # not asked for (no --restart / --fix-consumers): printed
    PLANNED = "planned"  # --dry-run
    REFUSED = "refused"  # a file another user can change: root does not act on its word
    HELD = "held"  # its venv still fails: never restarted into
    NAMED = "named"  # a unit of a user's manager: named, never touched by root
    NOT_RUNNING = "not-running"  # nothing runs: nothing to restart

    @property
    def ok(self) -> bool:
        return self not in (ActionOutcome.FAILED, ActionOutcome.REFUSED, ActionOutcome.HELD)


@dataclass(frozen=True)
class LineEdit:
    """One line of a consumer's file changed: *old* and *new* are the whole line."""

    path: str
    line: int
    old: str
    new: str


@dataclass(frozen=True)
class ConsumerAction:
    """One restart or edit for the consumers of a repaired venv, and what came of it.

    *consumers* are the labels of the consumers that ask for it (one reload of apache2
    serves every site of a venv); *command* the exact command line (run, or to run)."""

    kind: ActionKind
    outcome: ActionOutcome
    venv: str
    consumers: tuple[str, ...]
    detail: str
    unit: Optional[str] = None
    command: Optional[str] = None
    edit: Optional[LineEdit] = None
    user: Optional[str] = None  # the user whose manager runs *unit* (a user's unit)
