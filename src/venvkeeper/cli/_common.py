"""The command line: parse, call one library function, render, pick the exit code.

This is the only module that prints or exits. Exit codes (a contract: docs/reference/exit-codes.md):
0 every venv ok, 1 the worst is a warning (or unknown), 2 the worst is critical,
3 a usage error or an internal failure. ``check`` speaks the monitoring plugin protocol
instead: one status line on stdout, 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN, never a
traceback.
"""

from __future__ import annotations

import argparse
import enum
import os
import time
from typing import TYPE_CHECKING, Callable, NoReturn, Optional, TextIO

from venvkeeper.textutil import escape, escape_value, noun

# Each command imports what it needs when it runs: start-up stays small (restarts is
# meant to be cheap enough for a monitoring check).
if TYPE_CHECKING:
    from venvkeeper.config import Config
    from venvkeeper.formats.layout import Terminal
    from venvkeeper.model.findings import Severity
    from venvkeeper.model.report import Report
    from venvkeeper.repair import Sources
    from venvkeeper.scan.pipeline import ScanOptions


class ExitCode(enum.IntEnum):
    OK = 0
    WARNING = 1
    CRITICAL = 2
    ERROR = 3


def exit_code_for(worst: Severity) -> ExitCode:
    """The exit status of a scan whose worst venv status is *worst*."""
    from venvkeeper.model.findings import Severity

    return {
        Severity.OK: ExitCode.OK,
        Severity.INFO: ExitCode.OK,
        Severity.WARNING: ExitCode.WARNING,
        Severity.UNKNOWN: ExitCode.WARNING,
        Severity.CRITICAL: ExitCode.CRITICAL,
    }[worst]


def whole_number(text: str, least: int, wanted: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be {wanted}, not {text!r}") from None
    if value < least:
        raise argparse.ArgumentTypeError(f"must be {wanted}, not {value}")
    return value


def positive_int(text: str) -> int:
    return whole_number(text, 1, "a positive whole number (1 or more)")


def non_negative_int(text: str) -> int:
    return whole_number(text, 0, "a whole number, 0 or more")


#: The values of :class:`venvkeeper.repair.BackendChoice`, spelled out so that building the
#: parser imports nothing of the repair machinery (a test checks they agree).
BACKENDS = ("auto", "uv", "pip")


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number above 0, not {text!r}") from None
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a number above 0, not {text}")
    return value


class ParseError(Exception):
    """A command line argparse rejected: reported by :func:`main` (as a plugin status
    line for ``check``)."""

    def __init__(self, parser: argparse.ArgumentParser, message: str) -> None:
        super().__init__(message)
        self.parser = parser
        self.message = message


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise ParseError(self, message)


def add_json(p: argparse.ArgumentParser) -> None:
    """``--json``: every command's document is in the one envelope, with a shipped schema."""
    p.add_argument(
        "--json",
        action="store_true",
        help="print JSON (its JSON Schema ships in venvkeeper/schemas/)",
    )


def add_selection(p: argparse.ArgumentParser) -> None:
    p.add_argument("--size", action="store_true", help="also measure each venv's size on disk")
    p.add_argument(
        "--deep",
        action="store_true",
        help="also run each venv's interpreter (as its owner, clean environment, timeout)"
        " to confirm its packages import; without it nothing in a scanned tree is executed",
    )
    p.add_argument("--deep-timeout", type=positive_float, default=30.0, metavar="SECONDS")
    add_json(p)


def add_db(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--db",
        metavar="PATH",
        help="the inventory database (default: $VENVKEEPER_DB, else"
        " /var/lib/venvkeeper/inventory.db for root, else"
        " $XDG_STATE_HOME/venvkeeper/inventory.db)",
    )


def add_record(p: argparse.ArgumentParser) -> None:
    add_db(p)
    p.add_argument(
        "--no-record", action="store_true", help="do not record this scan in the inventory"
    )


def add_walk(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "roots",
        nargs="*",
        metavar="ROOT",
        help="directories to search (default: [scan] roots of the configuration, else every"
        " local filesystem from /)",
    )
    p.add_argument(
        "--exclude",
        action="append",
        default=[],
        metavar="GLOB",
        help="skip directories whose name (or path, when GLOB has a /) matches (added to"
        " [scan] exclude of the configuration)",
    )
    p.add_argument(
        "--all-dirs",
        action="store_true",
        help="also descend into .git, .hg, .svn, .bzr and __pycache__ directories, and into"
        " container storage (/var/lib/docker, ...)",
    )
    p.add_argument(
        "--no-other-roots",
        dest="other_roots",
        action="store_false",
        help="judge venvs inside other OS roots (chroots, /var/lib/machines/*, container"
        " roots) by this host's paths, as venvkeeper did before, and do not walk"
        " /var/lib/machines, /var/lib/lxc and /var/lib/lxd (default: each such venv is"
        " judged as its own root sees it)",
    )
    p.add_argument(
        "--one-file-system",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="do not cross into other filesystems below each root (default: [scan]"
        " one_file_system of the configuration, else no)",
    )
    p.add_argument(
        "--include-network",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="also walk network filesystems (nfs, cifs, sshfs, ...) (default: [scan]"
        " network_filesystems of the configuration, else no)",
    )
    p.add_argument(
        "--workers",
        type=positive_int,
        default=None,
        metavar="N",
        help="most parallel directory walkers; the extra ones run only while listings are"
        " slow (cold cache, NFS) (default 4)",
    )


def add_change(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("the planned change (options combine; none: this host as it is)")
    g.add_argument(
        "--python-becomes",
        action="append",
        default=[],
        metavar="[LINK=]X.Y",
        help="unversioned links (default /usr/bin/python3 and /usr/bin/python) will lead to"
        " pythonX.Y in their directory",
    )
    g.add_argument(
        "--remove",
        action="append",
        default=[],
        metavar="PATH",
        help="an interpreter, link or prefix that will disappear (with everything below it)",
    )
    g.add_argument(
        "--remove-package",
        action="append",
        default=[],
        metavar="NAME",
        help="a system package (dpkg, rpm) whose files will disappear, e.g. python3.10-minimal",
    )
    g.add_argument(
        "--host-profile",
        metavar="FILE",
        help="judge the venvs as the host of this profile would (venvkeeper host-profile)",
    )
    g.add_argument(
        "--in-root",
        metavar="DIR",
        help="the change happens inside the OS root DIR (a chroot, /var/lib/machines/NAME),"
        " its paths as DIR names them; venvs elsewhere are judged as they are (default:"
        " the change happens on this host, and venvs inside other roots are unaffected)",
    )
    p.add_argument(
        "--proc-root",
        default="/proc",
        metavar="DIR",
        help="the procfs to read the venvs' running processes from (default /proc)",
    )
    p.add_argument(
        "--no-processes",
        action="store_true",
        help="do not look for the running processes (services) of each venv",
    )
    add_json(p)


def add_sources(p: argparse.ArgumentParser, what: str) -> None:
    p.add_argument("--index-url", metavar="URL", help=f"package index for {what}")
    p.add_argument(
        "--find-links",
        action="append",
        default=[],
        metavar="DIR",
        help=f"a wheelhouse (or find-links URL) for {what}; repeatable",
    )
    p.add_argument(
        "--offline", action="store_true", help="no network: only --find-links and caches"
    )


def sources_of(args: argparse.Namespace) -> Sources:
    from venvkeeper.repair import Sources

    # installers run in / : a local wheelhouse is made absolute here
    return Sources(
        args.index_url,
        tuple(os.path.abspath(d) if os.path.isdir(d) else d for d in args.find_links),
        args.offline,
    )


def terminal(stream: TextIO) -> Terminal:
    """What *stream* allows (width, colour, live progress): the rule of
    :func:`venvkeeper.formats.layout.decide` on this process's environment."""
    from venvkeeper.formats.layout import decide

    tty = stream.isatty()
    size: Optional[int] = None
    if tty:
        try:
            size = os.get_terminal_size(stream.fileno()).columns
        except (OSError, ValueError):
            size = None
    return decide(tty, os.environ, size)


#: The progress line on screen now, if any: :func:`clear_progress` takes it away.
_shown: list[ProgressLine] = []


class ProgressLine:
    """The scan's progress on *stream* (stderr). A terminal that can gets one line redrawn
    in place (``\r``, ``ESC[K``); a dumb terminal one plain line, once, when the scan
    takes a while; anything else nothing. Used as a context manager, it takes its line
    away when the scan ends however it ends (an error, Ctrl-C)."""

    def __init__(self, stream: TextIO, enabled: bool = True) -> None:
        self.stream = stream
        term = terminal(stream) if enabled else None
        self.live = term is not None and term.live
        self.dumb = enabled and not self.live and stream.isatty()
        self.started = time.monotonic()
        self.drawn = False
        self.told = False

    def __call__(self, dirs: int, venvs: int) -> None:
        elapsed = time.monotonic() - self.started
        if self.dumb:
            if not self.told and elapsed >= 1:
                self.told = True
                self.stream.write("venvkeeper: scanning...\n")
                self.stream.flush()
            return
        # The walk may run in another process: then only venvs are counted as they come.
        walked = f"{dirs:,} {noun(dirs, 'directory', 'directories')}, " if dirs else ""
        judged = f"{venvs:,} {noun(venvs, 'venv')} judged"
        self.stream.write(f"\r\x1b[Kscanning: {walked}{judged} ({elapsed:.0f}s)")
        self.stream.flush()
        if not self.drawn:
            self.drawn = True
            _shown.append(self)

    def clear(self) -> None:
        if self.drawn:
            self.drawn = False
            if self in _shown:
                _shown.remove(self)
            try:
                self.stream.write("\r\x1b[K")
                self.stream.flush()
            except (OSError, ValueError):  # the terminal went away: nothing to clear
                pass

    def __enter__(self) -> Optional[Callable[[int, int], None]]:
        return self if (self.live or self.dumb) else None

    def __exit__(self, *exc: object) -> None:
        self.clear()


def progress_line(stream: TextIO, enabled: bool = True) -> ProgressLine:
    """``with progress_line(err) as progress: scan(..., progress=progress)``."""
    return ProgressLine(stream, enabled)


def clear_progress() -> None:
    """Take away any progress line still on screen (main's Ctrl-C path)."""
    for shown in list(_shown):
        shown.clear()


def config_of(args: argparse.Namespace) -> Config:
    """The configuration (read once per run); command-line options override it."""
    from venvkeeper.config import load_config

    cached: Optional[Config] = getattr(args, "loaded_config", None)
    if cached is None:
        cached = load_config(getattr(args, "config", None))
        args.loaded_config = cached
        err: Optional[TextIO] = getattr(args, "err", None)
        if err is not None:
            for warning in cached.warnings:
                err.write(f"venvkeeper: warning: {escape(warning)}\n")
    return cached


def either(option: Optional[bool], configured: Optional[bool]) -> bool:
    if option is not None:
        return option
    return bool(configured)


def scan_options(args: argparse.Namespace) -> ScanOptions:
    from venvkeeper.scan.pipeline import ScanOptions

    cfg = config_of(args)
    opts = ScanOptions(
        roots=tuple(args.roots) or cfg.roots,
        exclude=cfg.exclude + tuple(args.exclude),
        all_dirs=args.all_dirs,
        one_file_system=either(args.one_file_system, cfg.one_file_system),
        include_network=either(args.include_network, cfg.network_filesystems),
        size=getattr(args, "size", False),
        deep=getattr(args, "deep", False),
        deep_timeout=getattr(args, "deep_timeout", 30.0),
        other_roots=getattr(args, "other_roots", True),
        **({"walk_workers": args.workers} if args.workers else {}),
    )
    from venvkeeper.host.fsutil import check_directory

    for r in opts.roots:
        # a root that cannot be listed would be an empty scan: "OK, no venvs" is a lie
        check_directory(r)
    return opts


def db_path(args: argparse.Namespace) -> str:
    from venvkeeper.inventory.store import default_path

    return os.path.abspath(args.db) if args.db else default_path()


def db_named(args: argparse.Namespace) -> bool:
    """Whether the inventory was named (--db, $VENVKEEPER_DB) rather than the default
    place: only the default place may be created, or be skipped with a warning."""
    return bool(getattr(args, "db", None) or os.environ.get("VENVKEEPER_DB"))


def record_to(args: argparse.Namespace, err: TextIO) -> Optional[str]:
    """The inventory this scan goes to (None with --no-record), checked before the scan:
    a database that cannot take it fails now, not after minutes of walking.

    A default place that cannot be created or opened (a user without a writable home, a
    read-only filesystem) costs a warning, not the scan; a database given by --db or
    $VENVKEEPER_DB must work, and a corrupt or newer one is always an error."""
    if args.no_record:
        return None
    from venvkeeper.errors import InventoryUnavailable
    from venvkeeper.inventory.store import check_writable

    db = db_path(args)
    try:
        check_writable(db, make_parents=not db_named(args))
    except InventoryUnavailable as e:
        if db_named(args):
            raise
        err.write(f"venvkeeper: warning: this scan is not recorded: {escape_value(str(e))}\n")
        return None
    return db


def record_scan(db: str, report: Report, opts: ScanOptions) -> int:
    from venvkeeper.inventory.record import record_report

    return record_report(db, report, opts.exclude)


class Output:
    """The commands' stdout. Once its reader has gone (``| head``: a broken pipe) the rest
    is dropped, so that the command runs to its end and exits with its verdict's code;
    the interpreter's last flush at exit goes to /dev/null instead of failing."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.gone = False

    def write(self, text: str) -> int:
        if not self.gone:
            try:
                self.stream.write(text)
            except BrokenPipeError:
                self._reader_gone()
        return len(text)

    def flush(self) -> None:
        if not self.gone:
            try:
                self.stream.flush()
            except BrokenPipeError:
                self._reader_gone()

    def isatty(self) -> bool:
        return self.stream.isatty()

    def fileno(self) -> int:
        return self.stream.fileno()

    def _reader_gone(self) -> None:
        self.gone = True
        try:
            fd = self.stream.fileno()
        except (OSError, ValueError):  # not a file (io.UnsupportedOperation is both)
            return
        null = os.open(os.devnull, os.O_WRONLY | os.O_CLOEXEC)
        try:
            os.dup2(null, fd)
        finally:
            os.close(null)
