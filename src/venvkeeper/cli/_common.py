"""What the command families share: the exit codes, the options, and the one way a
command's result is printed (:func:`emit`, through ``--format``).

Exit codes (a contract: docs/reference/exit-codes.md): 0 every venv ok, 1 the worst is a
warning (or unknown), 2 the worst is critical, 3 a usage error or an internal failure.
``check`` speaks the monitoring plugin protocol instead: one status line on stdout, 0 OK,
1 WARNING, 2 CRITICAL, 3 UNKNOWN, never a traceback.
"""

from __future__ import annotations

import argparse
import enum
import os
from typing import TYPE_CHECKING, Any, NoReturn, Optional

# Each command imports what it needs when it runs: start-up stays small (restarts is
# meant to be cheap enough for a monitoring check).
if TYPE_CHECKING:
    from venvkeeper.cli.context import Context
    from venvkeeper.configured import Recording, ScanRequest
    from venvkeeper.formats import OutputFormat
    from venvkeeper.formats.envelope import Kind
    from venvkeeper.model.findings import Severity
    from venvkeeper.repair import Sources


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


def add_format(p: argparse.ArgumentParser) -> None:
    """``--format`` (every :class:`~venvkeeper.formats.OutputFormat`; the package is light:
    no format module is imported until one renders) and its alias ``--json``."""
    from venvkeeper.formats import DEFAULT, OutputFormat

    p.add_argument(
        "--format",
        choices=[f.value for f in OutputFormat],
        default=DEFAULT.value,
        help="the output: a table for people (default), or JSON (its JSON Schema ships in"
        " venvkeeper/schemas/)",
    )
    p.add_argument(
        "--json",
        dest="format",
        action="store_const",
        const="json",
        help="print JSON: --format json",
    )


#: The name other branches know it by.
add_json = add_format


def output_format(args: argparse.Namespace) -> OutputFormat:
    """The format the command line asked for (the default for a command without
    ``--format``)."""
    from venvkeeper.formats import DEFAULT, OutputFormat

    return OutputFormat(getattr(args, "format", None) or DEFAULT.value)


def emit(ctx: Context, args: argparse.Namespace, kind: Kind, value: Any, **options: Any) -> None:
    """Print *value*, the command's result of *kind*, in the format of ``--format`` for
    stdout's terminal; *options* are the command's display options (``only_problems``...)."""
    from venvkeeper.formats import chunks

    for chunk in chunks(output_format(args), kind, value, ctx.term, **options):
        ctx.out.write(chunk)


def machine(args: argparse.Namespace) -> bool:
    """The output is for programs (not the table): no progress line."""
    from venvkeeper.formats import DEFAULT

    return getattr(args, "format", DEFAULT.value) != DEFAULT.value


def add_selection(p: argparse.ArgumentParser) -> None:
    p.add_argument("--size", action="store_true", help="also measure each venv's size on disk")
    p.add_argument(
        "--deep",
        action="store_true",
        help="also run each venv's interpreter (as its owner, clean environment, timeout)"
        " to confirm its packages import; without it nothing in a scanned tree is executed",
    )
    p.add_argument("--deep-timeout", type=positive_float, default=30.0, metavar="SECONDS")
    add_format(p)


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
    add_full(p)


def add_full(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--full",
        action="store_true",
        help="read every venv and list every directory again, instead of reusing what the"
        " inventory kept of those unchanged since the last scan",
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
    add_format(p)


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


def scan_request(args: argparse.Namespace, **overrides: Any) -> ScanRequest:
    """What the command line says about the scan (the options of :func:`add_walk`,
    :func:`add_selection`, :func:`add_record`); *overrides* replace fields."""
    from venvkeeper.configured import ScanRequest

    fields: dict[str, Any] = {
        "roots": tuple(getattr(args, "roots", ())),
        "exclude": tuple(getattr(args, "exclude", ())),
        "all_dirs": getattr(args, "all_dirs", False),
        "one_file_system": getattr(args, "one_file_system", None),
        "include_network": getattr(args, "include_network", None),
        "size": getattr(args, "size", False),
        "deep": getattr(args, "deep", False),
        "deep_timeout": getattr(args, "deep_timeout", 30.0),
        "workers": getattr(args, "workers", None),
        "other_roots": getattr(args, "other_roots", True),
        "record": recording(args),
    }
    fields.update(overrides)
    return ScanRequest(**fields)


def db_path(args: argparse.Namespace) -> str:
    from venvkeeper.inventory.store import default_path

    return os.path.abspath(args.db) if args.db else default_path()


def db_named(args: argparse.Namespace) -> bool:
    """Whether the inventory was named (--db, $VENVKEEPER_DB) rather than the default
    place: only the default place may be created, or be skipped with a warning."""
    return bool(getattr(args, "db", None) or os.environ.get("VENVKEEPER_DB"))


def recording(args: argparse.Namespace) -> Optional[Recording]:
    """The inventory this scan goes to: None for a command that does not record, or with
    --no-record."""
    if not hasattr(args, "no_record") or args.no_record:
        return None
    from venvkeeper.configured import Recording

    return Recording(db_path(args), named=db_named(args), full=getattr(args, "full", False))
