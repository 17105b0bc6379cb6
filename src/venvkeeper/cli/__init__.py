"""The command line: parse, call one library function, render, pick the exit code.

This is the only module that prints or exits. Exit codes (a contract, see the README):
0 every venv ok, 1 the worst is a warning (or unknown), 2 the worst is critical,
3 a usage error or an internal failure. ``check`` speaks the monitoring plugin protocol
instead: one status line on stdout, 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN, never a
traceback.
"""

from __future__ import annotations

import argparse
import enum
import os
import sys
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, BinaryIO, Callable, NoReturn, Optional, TextIO, cast

from venvkeeper import __version__
from venvkeeper.errors import UsageError, VenvkeeperError
from venvkeeper.textutil import escape, escape_value

# Each command imports what it needs when it runs: start-up stays small (restarts is
# meant to be cheap enough for a monitoring check).
if TYPE_CHECKING:
    from collections.abc import Iterable

    from venvkeeper.config import Config
    from venvkeeper.model.findings import Severity
    from venvkeeper.model.plan import Prediction
    from venvkeeper.model.repair import RepairResult
    from venvkeeper.model.report import Report, VenvReport
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


# argparse names a type function in its message ("invalid _positive_int value") unless
# the function raises ArgumentTypeError: each says what it wants, in words.


def _whole_number(text: str, least: int, wanted: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be {wanted}, not {text!r}") from None
    if value < least:
        raise argparse.ArgumentTypeError(f"must be {wanted}, not {value}")
    return value


def _positive_int(text: str) -> int:
    return _whole_number(text, 1, "a positive whole number (1 or more)")


def _non_negative_int(text: str) -> int:
    return _whole_number(text, 0, "a whole number, 0 or more")


def _backend_choices() -> list[Any]:
    from venvkeeper.repair import BackendChoice

    return list(BackendChoice)


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number above 0, not {text!r}") from None
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a number above 0, not {text}")
    return value


class _ParseError(Exception):
    """A command line argparse rejected: reported by :func:`main` (as a plugin status
    line for ``check``)."""

    def __init__(self, parser: argparse.ArgumentParser, message: str) -> None:
        super().__init__(message)
        self.parser = parser
        self.message = message


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise _ParseError(self, message)


def _add_selection(p: argparse.ArgumentParser) -> None:
    p.add_argument("--size", action="store_true", help="also measure each venv's size on disk")
    p.add_argument(
        "--deep",
        action="store_true",
        help="also run each venv's interpreter (as its owner, clean environment, timeout)"
        " to confirm its packages import; without it nothing in a scanned tree is executed",
    )
    p.add_argument("--deep-timeout", type=_positive_float, default=30.0, metavar="SECONDS")
    p.add_argument("--json", action="store_true", help="print JSON (schema in the README)")


def _add_scan(sub: argparse._SubParsersAction[_Parser]) -> None:
    p = sub.add_parser("scan", help="find every venv under the roots and diagnose each one")
    _add_walk(p)
    p.add_argument("--only-problems", action="store_true", help="list only venvs that are not ok")
    p.add_argument("-q", "--quiet", action="store_true", help="print only the summary line")
    _add_selection(p)
    _add_record(p)
    p.set_defaults(func=_cmd_scan)


def _add_db(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--db",
        metavar="PATH",
        help="the inventory database (default: $VENVKEEPER_DB, else"
        " /var/lib/venvkeeper/inventory.db for root, else"
        " $XDG_STATE_HOME/venvkeeper/inventory.db)",
    )


def _add_record(p: argparse.ArgumentParser) -> None:
    _add_db(p)
    p.add_argument(
        "--no-record", action="store_true", help="do not record this scan in the inventory"
    )


def _add_walk(p: argparse.ArgumentParser) -> None:
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
        type=_positive_int,
        default=None,
        metavar="N",
        help="most parallel directory walkers; the extra ones run only while listings are"
        " slow (cold cache, NFS) (default 4)",
    )


def _add_change(p: argparse.ArgumentParser) -> None:
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
    p.add_argument("--json", action="store_true", help="print JSON (schema in the README)")


def _add_predict(sub: argparse._SubParsersAction[_Parser]) -> None:
    p = sub.add_parser(
        "predict", help="which venvs a planned Python change (or another host) would break"
    )
    _add_walk(p)
    _add_change(p)
    p.add_argument("--only-problems", action="store_true", help="leave out the venvs that survive")
    p.set_defaults(func=_cmd_predict)


def _add_plan(sub: argparse._SubParsersAction[_Parser]) -> None:
    p = sub.add_parser(
        "plan",
        help="the repair plan of every venv that is broken (or would be, under a change)",
    )
    _add_walk(p)
    _add_change(p)
    p.add_argument("--all", action="store_true", help="also list venvs that need nothing")
    p.set_defaults(func=_cmd_plan)


def _add_host_profile(sub: argparse._SubParsersAction[_Parser]) -> None:
    p = sub.add_parser(
        "host-profile",
        help="this host's Python interpreters as JSON, for predict --host-profile elsewhere",
    )
    p.add_argument(
        "--search",
        action="append",
        default=[],
        metavar="DIR",
        help="search only these bin directories (default: /usr/bin, /usr/local/bin, /opt/*/bin,"
        " pyenv and uv installations, ~/.local/bin of every user, and PATH)",
    )
    p.add_argument(
        "--no-run",
        action="store_true",
        help="never run an interpreter, even a root-owned system one whose files do not"
        " tell its version",
    )
    p.add_argument(
        "--no-packages", action="store_true", help="do not ask dpkg/rpm who owns each one"
    )
    p.add_argument("-o", "--output", metavar="FILE", help="write the profile to FILE")
    p.set_defaults(func=_cmd_host_profile)


def _add_show(sub: argparse._SubParsersAction[_Parser]) -> None:
    p = sub.add_parser("show", help="every fact and finding of one venv")
    p.add_argument("path", metavar="PATH")
    _add_selection(p)
    p.set_defaults(func=_cmd_show)


def _add_restarts(sub: argparse._SubParsersAction[_Parser]) -> None:
    p = sub.add_parser(
        "restarts",
        help="running processes that still use a replaced interpreter or a changed venv",
    )
    p.add_argument(
        "--proc-root", default="/proc", metavar="DIR", help="the procfs to read (default /proc)"
    )
    p.add_argument(
        "--unit-commands",
        action="store_true",
        help="print the systemctl restart lines (never run by venvkeeper)",
    )
    p.add_argument(
        "--no-judge",
        action="store_true",
        help="do not judge the venvs of the processes (no 'repair first' warnings)",
    )
    p.add_argument("--json", action="store_true", help="print JSON (schema in the README)")
    p.set_defaults(func=_cmd_restarts)


def _add_inventory(sub: argparse._SubParsersAction[_Parser]) -> None:
    p = sub.add_parser(
        "inventory",
        help="every venv the recorded scans know: last status, first and last seen, vanished",
    )
    _add_db(p)
    p.add_argument("--json", action="store_true", help="print JSON (schema in the README)")
    p.set_defaults(func=_cmd_inventory)


def _add_changes(sub: argparse._SubParsersAction[_Parser]) -> None:
    p = sub.add_parser(
        "changes", help="venvs new, vanished, newly broken or fixed since a recorded scan"
    )
    p.add_argument(
        "--since",
        metavar="DURATION|SCAN_ID",
        help="the starting point: a scan id (12) or an age (30m, 12h, 1d, 2w); default: the"
        " scan before the latest",
    )
    _add_db(p)
    p.add_argument("--json", action="store_true", help="print JSON (schema in the README)")
    p.set_defaults(func=_cmd_changes)


def _add_history(sub: argparse._SubParsersAction[_Parser]) -> None:
    p = sub.add_parser("history", help="one venv over the recorded scans")
    p.add_argument("path", metavar="PATH")
    _add_db(p)
    p.add_argument("--json", action="store_true", help="print JSON (schema in the README)")
    p.set_defaults(func=_cmd_history)


def _add_check(sub: argparse._SubParsersAction[_Parser]) -> None:
    p = sub.add_parser(
        "check",
        help="a monitoring plugin (Nagios, Icinga): one status line, exit 0/1/2/3",
    )
    _add_walk(p)
    p.add_argument(
        "--warning",
        type=_positive_int,
        default=None,
        metavar="N",
        help="WARNING when at least N venvs are not ok (default: [check] warning of the"
        " configuration, else 1)",
    )
    p.add_argument(
        "--critical",
        type=_positive_int,
        default=None,
        metavar="N",
        help="CRITICAL when at least N venvs are critical (default: [check] critical of the"
        " configuration, else 1)",
    )
    p.add_argument(
        "--ignore",
        action="append",
        default=[],
        metavar="GLOB",
        help="leave out venvs whose path matches (repeatable)",
    )
    p.add_argument(
        "--ignore-code",
        action="append",
        default=[],
        metavar="CODE",
        help="leave out findings of this code (repeatable)",
    )
    _add_record(p)
    p.set_defaults(func=_cmd_check)


def _add_export(sub: argparse._SubParsersAction[_Parser]) -> None:
    p = sub.add_parser(
        "export",
        help="write Prometheus metrics for node_exporter's textfile collector",
    )
    _add_walk(p)
    p.add_argument(
        "--prometheus",
        required=True,
        metavar="FILE",
        help="the metrics file to write, atomically (name it *.prom, in the textfile"
        " collector's directory)",
    )
    p.add_argument(
        "--from-inventory",
        action="store_true",
        help="do not scan: export the latest scan of the inventory",
    )
    _add_record(p)
    p.set_defaults(func=_cmd_export)


def _add_apt_hook(sub: argparse._SubParsersAction[_Parser]) -> None:
    p = sub.add_parser(
        "apt-hook",
        help="run by apt (install-apt-hooks): pre-install tells which venvs the Python"
        " packages of this apt run will break; post-invoke checks venvs and restarts; exits 0",
    )
    stages = p.add_subparsers(dest="stage", metavar="STAGE", parser_class=_Parser)
    stages.required = True
    pre = stages.add_parser(
        "pre-install",
        help="a DPkg::Pre-Install-Pkgs hook: reads apt's hook protocol version 3 on stdin",
    )
    post = stages.add_parser("post-invoke", help="a DPkg::Post-Invoke hook")
    for q in (pre, post):
        _add_walk(q)
        q.add_argument(
            "--proc-root",
            default="/proc",
            metavar="DIR",
            help="the procfs to read (default /proc)",
        )
        q.add_argument(
            "--timeout",
            type=_positive_float,
            default=120.0,
            metavar="SECONDS",
            help="give up after this long, and let apt go on (default 120)",
        )
        q.set_defaults(func=_cmd_apt_hook)
    pre.add_argument(
        "--host-prefix",
        metavar="DIR",
        help="judge package removals as files under this distro prefix (DIR/bin/python3.X,"
        " DIR/lib/python3.X) instead of the packages' dpkg file lists, and python3 upgrades as"
        " DIR/bin/python3 repointed (a chroot or simulated distro)",
    )
    pre.add_argument(
        "--no-processes",
        action="store_true",
        help="do not look for the running services of each venv",
    )
    pre.add_argument("--json", action="store_true", help="print predict's JSON")


#: apthook.DEFAULT_APT_CONF_DIR, not imported here to keep start-up small (a test checks).
_APT_CONF_DIR = "/etc/apt/apt.conf.d"


def _add_install_apt_hooks(sub: argparse._SubParsersAction[_Parser]) -> None:
    p = sub.add_parser(
        "install-apt-hooks",
        help=f"write {_APT_CONF_DIR}/60venvkeeper: apt runs venvkeeper before and after dpkg",
    )
    p.add_argument(
        "--apt-conf-dir",
        default=_APT_CONF_DIR,
        metavar="DIR",
        help=f"the apt configuration directory (default {_APT_CONF_DIR})",
    )
    p.add_argument(
        "--venvkeeper",
        metavar="PATH",
        help="the venvkeeper command the hooks run (default: this one's absolute path)",
    )
    p.add_argument("--uninstall", action="store_true", help="remove the hooks")
    p.set_defaults(func=_cmd_install_apt_hooks)


def _add_codes(sub: argparse._SubParsersAction[_Parser]) -> None:
    p = sub.add_parser("codes", help="list every finding code and its usual severity")
    p.set_defaults(func=_cmd_codes)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="venvkeeper",
        description="Find every Python virtual environment on this host and tell which ones"
        " a Python upgrade broke, by reading files only.",
    )
    parser.add_argument("--version", action="version", version=f"venvkeeper {__version__}")
    parser.add_argument(
        "--config",
        metavar="FILE",
        help="read only this configuration file (default: /etc/venvkeeper/config.toml, then"
        " $XDG_CONFIG_HOME/venvkeeper/config.toml; also $VENVKEEPER_CONFIG)",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    _add_scan(sub)
    _add_show(sub)
    _add_predict(sub)
    _add_plan(sub)
    _add_host_profile(sub)
    _add_restarts(sub)
    _add_wheelhouse(sub)
    _add_repair(sub)
    _add_rollback(sub)
    _add_prune_backups(sub)
    _add_inventory(sub)
    _add_changes(sub)
    _add_history(sub)
    _add_check(sub)
    _add_export(sub)
    _add_apt_hook(sub)
    _add_install_apt_hooks(sub)
    _add_codes(sub)
    return parser


def _add_sources(p: argparse.ArgumentParser, what: str) -> None:
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


def _sources(args: argparse.Namespace) -> Sources:
    from venvkeeper.repair import Sources

    # installers run in / : a local wheelhouse is made absolute here
    return Sources(
        args.index_url,
        tuple(os.path.abspath(d) if os.path.isdir(d) else d for d in args.find_links),
        args.offline,
    )


def _add_wheelhouse(sub: argparse._SubParsersAction[_Parser]) -> None:
    p = sub.add_parser(
        "wheelhouse",
        help="before an upgrade: fetch the wheels the rebuilds of the venvs it breaks will"
        " need, for an offline repair after it",
    )
    p.add_argument(
        "--dest", "-d", required=True, metavar="DIR", help="where the wheels go (it must exist)"
    )
    _add_walk(p)
    _add_change(p)
    _add_sources(p, "the downloads")
    p.set_defaults(func=_cmd_wheelhouse, no_processes=True)


def _add_repair(sub: argparse._SubParsersAction[_Parser]) -> None:
    p = sub.add_parser(
        "repair",
        help="repair venvs as their plans say (relink, rewrite paths, rebuild), atomically,"
        " keeping the original as a backup",
    )
    p.add_argument("paths", nargs="*", metavar="PATH", help="venvs to repair")
    p.add_argument(
        "--all",
        action="store_true",
        help="treat the PATHs as roots (default /): repair every venv under them whose plan"
        " needs work",
    )
    p.add_argument(
        "--dry-run", action="store_true", help="print what would be done, change nothing"
    )
    p.add_argument(
        "--python",
        metavar="PATH",
        help="the new base interpreter (default: the plan's target); also moves a working"
        " venv to another Python",
    )
    p.add_argument(
        "--backend",
        choices=[c.value for c in _backend_choices()],
        default="auto",
        help="installer for rebuilds: uv when found (default), else pip of the new venv",
    )
    _add_sources(p, "rebuilds")
    p.add_argument(
        "--allow-upgrades",
        action="store_true",
        help="when an exact pin cannot install on the new Python, take the nearest version"
        " that does (every change is reported)",
    )
    p.add_argument(
        "--force",
        action="store_true",
        help="also rebuild venvs that pipx, poetry, uv tool... or a system package manage",
    )
    p.add_argument(
        "--copies",
        action="store_true",
        help="copy the interpreter into rebuilt venvs (default: link it, so the distro's"
        " security fixes reach the venv)",
    )
    p.add_argument(
        "--keep-backups",
        type=_non_negative_int,
        default=2,
        metavar="N",
        help="backups kept per venv after a repair (default 2)",
    )
    p.add_argument(
        "-j", "--jobs", type=_positive_int, default=2, metavar="N", help="venvs at once (default 2)"
    )
    p.add_argument("-q", "--quiet", action="store_true", help="no progress lines")
    p.add_argument("--json", action="store_true", help="print JSON (schema in the README)")
    p.set_defaults(func=_cmd_repair)


def _add_rollback(sub: argparse._SubParsersAction[_Parser]) -> None:
    p = sub.add_parser(
        "rollback", help="put a venv's newest backup back (the current one becomes a backup)"
    )
    p.add_argument("path", metavar="PATH")
    p.add_argument("--list", action="store_true", help="only list the backups, newest first")
    p.add_argument("--json", action="store_true", help="print JSON (schema in the README)")
    p.set_defaults(func=_cmd_rollback)


def _add_prune_backups(sub: argparse._SubParsersAction[_Parser]) -> None:
    p = sub.add_parser(
        "prune-backups",
        help="delete all but the newest backups of venvs (or of a directory's venvs)",
    )
    p.add_argument("paths", nargs="+", metavar="PATH", help="venvs, or directories holding venvs")
    p.add_argument(
        "--keep",
        type=_non_negative_int,
        default=0,
        metavar="N",
        help="newest backups kept per venv (default 0: delete them all)",
    )
    p.set_defaults(func=_cmd_prune_backups)


def _progress(stream: TextIO) -> Optional[Callable[[int, int], None]]:
    if not stream.isatty():
        return None

    started = time.monotonic()

    def show(dirs: int, venvs: int) -> None:
        # The walk may run in another process: then only venvs are counted as they come.
        walked = f"{dirs:,} directories, " if dirs else ""
        elapsed = time.monotonic() - started
        stream.write(f"\r\x1b[Kscanning: {walked}{venvs:,} venvs judged ({elapsed:.0f}s)")
        stream.flush()

    return show


def _config(args: argparse.Namespace) -> Config:
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


def _either(option: Optional[bool], configured: Optional[bool]) -> bool:
    if option is not None:
        return option
    return bool(configured)


def _scan_options(args: argparse.Namespace) -> ScanOptions:
    from venvkeeper.scan.pipeline import ScanOptions

    cfg = _config(args)
    opts = ScanOptions(
        roots=tuple(args.roots) or cfg.roots,
        exclude=cfg.exclude + tuple(args.exclude),
        all_dirs=args.all_dirs,
        one_file_system=_either(args.one_file_system, cfg.one_file_system),
        include_network=_either(args.include_network, cfg.network_filesystems),
        size=getattr(args, "size", False),
        deep=getattr(args, "deep", False),
        deep_timeout=getattr(args, "deep_timeout", 30.0),
        **({"walk_workers": args.workers} if args.workers else {}),
    )
    from venvkeeper.host.fsutil import check_directory

    for r in opts.roots:
        # a root that cannot be listed would be an empty scan: "OK, no venvs" is a lie
        check_directory(r)
    return opts


def _cmd_scan(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from venvkeeper.checks.policy import apply
    from venvkeeper.formats import OutputFormat, render, table
    from venvkeeper.formats import json as json_format
    from venvkeeper.scan.pipeline import scan

    opts = _scan_options(args)
    db = _record_to(args, err)
    progress = None if (args.quiet or args.json) else _progress(err)
    report = apply(scan(options=opts, progress=progress), _config(args).policy)
    if progress is not None:
        err.write("\r\x1b[K")
    if db is not None:
        _record(db, report, opts)
    if args.json:
        for chunk in json_format.render_chunks(report):
            out.write(chunk)
    elif args.quiet:
        out.write(table.summary(report) + "\n")
    else:
        tty = out.isatty()
        width = os.get_terminal_size(out.fileno()).columns if tty else 0
        out.write(
            render(
                report, OutputFormat.TABLE, color=tty, only_problems=args.only_problems, width=width
            )
        )
    return int(exit_code_for(report.worst))


def _db_path(args: argparse.Namespace) -> str:
    from venvkeeper.inventory.store import default_path

    return os.path.abspath(args.db) if args.db else default_path()


def _db_named(args: argparse.Namespace) -> bool:
    """Whether the inventory was named (--db, $VENVKEEPER_DB) rather than the default
    place: only the default place may be created, or be skipped with a warning."""
    return bool(getattr(args, "db", None) or os.environ.get("VENVKEEPER_DB"))


def _record_to(args: argparse.Namespace, err: TextIO) -> Optional[str]:
    """The inventory this scan goes to (None with --no-record), checked before the scan:
    a database that cannot take it fails now, not after minutes of walking.

    A default place that cannot be created or opened (a user without a writable home, a
    read-only filesystem) costs a warning, not the scan; a database given by --db or
    $VENVKEEPER_DB must work, and a corrupt or newer one is always an error."""
    if args.no_record:
        return None
    from venvkeeper.errors import InventoryUnavailable
    from venvkeeper.inventory.store import check_writable

    db = _db_path(args)
    try:
        check_writable(db, make_parents=not _db_named(args))
    except InventoryUnavailable as e:
        if _db_named(args):
            raise
        err.write(f"venvkeeper: warning: this scan is not recorded: {escape_value(str(e))}\n")
        return None
    return db


def _record(db: str, report: Report, opts: ScanOptions) -> int:
    from venvkeeper.inventory.record import record_report

    return record_report(db, report, opts.exclude)


def _cmd_show(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from venvkeeper.checks.policy import apply_to_venv
    from venvkeeper.formats import json as json_format
    from venvkeeper.formats import table
    from venvkeeper.scan.pipeline import ScanOptions, inspect_path

    opts = ScanOptions(size=args.size, deep=args.deep, deep_timeout=args.deep_timeout)
    # [ignore] does not apply to a venv named on the command line; the rest does.
    rep = apply_to_venv(inspect_path(args.path, opts), _config(args).policy)
    out.write(json_format.render_venv(rep) if args.json else table.render_show(rep))
    return int(exit_code_for(rep.status))


def _predict(args: argparse.Namespace, err: TextIO) -> Prediction:
    from venvkeeper.checks.policy import apply
    from venvkeeper.host.interpreters import load_profile
    from venvkeeper.predict.changes import Change, parse_python_becomes, predict
    from venvkeeper.scan.pipeline import scan

    change = Change(
        python_becomes=tuple(parse_python_becomes(t) for t in args.python_becomes),
        remove=tuple(os.path.abspath(p) for p in args.remove),
        remove_packages=tuple(args.remove_package),
        profile=load_profile(args.host_profile) if args.host_profile else None,
    )
    opts = _scan_options(args)
    policy = _config(args).policy
    progress = None if args.json else _progress(err)
    report = apply(scan(options=opts, progress=progress), policy)
    if progress is not None:
        err.write("\r\x1b[K")
    users = None
    if not args.no_processes:
        from venvkeeper.restarts.scan import venv_users

        try:
            users = venv_users(args.proc_root)
        except VenvkeeperError as e:
            err.write(f"venvkeeper: warning: running processes not read: {escape_value(str(e))}\n")
    return predict(report, change, users=users, policy=policy)


def _cmd_predict(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from venvkeeper.formats import predict as fmt

    pred = _predict(args, err)
    if args.json:
        out.write(fmt.render_json(pred))
    else:
        width = os.get_terminal_size(out.fileno()).columns if out.isatty() else 0
        out.write(fmt.render_predict(pred, args.only_problems, width))
    return int(exit_code_for(pred.worst))


def _cmd_plan(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from venvkeeper.formats import predict as fmt

    pred = _predict(args, err)
    out.write(fmt.render_json(pred) if args.json else fmt.render_plan(pred, not args.all))
    return int(exit_code_for(pred.worst))


def _cmd_wheelhouse(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from venvkeeper.formats import repair as fmt
    from venvkeeper.host.fsutil import check_directory
    from venvkeeper.repair.wheelhouse import prefetch

    check_directory(args.dest)
    pred = _predict(args, err)
    report = prefetch(pred, os.path.abspath(args.dest), _sources(args))
    out.write(fmt.render_wheelhouse_json(report) if args.json else fmt.render_wheelhouse(report))
    return report.worst


def _cmd_host_profile(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from venvkeeper.host.interpreters import Places, default_places, host_profile, render_profile

    places = default_places()
    if args.search:
        from venvkeeper.host.fsutil import check_directory

        for d in args.search:
            check_directory(d)
        places = Places(tuple(os.path.abspath(d) for d in args.search), ())
    text = render_profile(host_profile(places, run=not args.no_run, packages=not args.no_packages))
    if args.output:
        from venvkeeper.host.fsutil import write_atomically

        write_atomically(args.output, text)
    else:
        out.write(text)
    return int(ExitCode.OK)


def _cmd_restarts(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from venvkeeper.formats import restarts as fmt
    from venvkeeper.restarts.scan import scan_processes

    report = scan_processes(args.proc_root, judge=not args.no_judge, policy=_config(args).policy)
    if args.json:
        out.write(fmt.render_json(report))
    elif args.unit_commands:
        out.write(fmt.unit_commands(report))
    else:
        width = os.get_terminal_size(out.fileno()).columns if out.isatty() else 0
        out.write(fmt.render_table(report, width))
    if report.broken:
        return int(ExitCode.CRITICAL)
    return int(ExitCode.WARNING if report.needing_restart else ExitCode.OK)


def _repair_targets(args: argparse.Namespace, err: TextIO) -> list[str]:
    """The venvs to repair. A PATH that is not a directory is a usage error (exit 3),
    with or without --all: there is nothing there to repair or to search."""
    from venvkeeper.host.fsutil import check_directory

    if not args.all and not args.paths:
        raise UsageError("repair: give the venvs to repair, or --all [ROOT ...]")
    for p in args.paths:
        check_directory(p, listable=args.all)
    if not args.all:
        return [os.path.abspath(p) for p in args.paths]
    from venvkeeper.scan.pipeline import ScanOptions, scan

    roots = tuple(args.paths)
    report = scan(options=ScanOptions(roots=roots))
    from venvkeeper.model.findings import Severity

    return [
        v.facts.path for v in report.venvs if v.alias_of is None and v.status is not Severity.OK
    ]


def _cmd_repair(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    import signal
    import threading

    from venvkeeper.formats import repair as fmt
    from venvkeeper.model.repair import Outcome
    from venvkeeper.repair import BackendChoice, RepairOptions, repair_all

    options = RepairOptions(
        python=args.python,
        backend=BackendChoice(args.backend),
        sources=_sources(args),
        allow_upgrades=args.allow_upgrades,
        force=args.force,
        dry_run=args.dry_run,
        keep_backups=args.keep_backups,
        copies=args.copies,
        jobs=args.jobs,
    )
    targets = _repair_targets(args, err)
    cancel = threading.Event()
    total = len(targets)
    done = [0]

    def progress(path: str, result: Optional[RepairResult]) -> None:
        if args.quiet or args.json:
            return
        if result is None:
            err.write(f"venvkeeper: repairing {escape(path)} ...\n")
        else:
            done[0] += 1
            err.write(
                f"venvkeeper: [{done[0]}/{total}] {escape(path)}: {result.outcome.value}"
                f" ({result.seconds:.1f}s)\n"
            )
        err.flush()

    def stop(signum: int, frame: object) -> None:
        # The first signal stops every repair in flight (each puts its original back);
        # more signals while they do so are ignored.
        if not cancel.is_set():
            cancel.set()
            raise KeyboardInterrupt

    old = {s: signal.signal(s, stop) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    try:
        results = repair_all(targets, options, progress=progress, cancel=cancel)
    finally:
        for s, h in old.items():
            signal.signal(s, h)
    if args.json:
        out.write(fmt.render_json(results))
    else:
        width = os.get_terminal_size(out.fileno()).columns if out.isatty() else 0
        out.write(fmt.render_table(results, width))
    if any(r.outcome is Outcome.FAILED for r in results):
        return int(ExitCode.CRITICAL)
    if any(r.outcome is Outcome.REFUSED for r in results):
        return int(ExitCode.WARNING)
    return int(ExitCode.OK)


def _cmd_rollback(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from venvkeeper.formats import repair as fmt
    from venvkeeper.repair import list_backups, rollback

    if args.list:
        kept = list_backups(args.path)
        if args.json:
            out.write(fmt.render_backups_json(kept))
        else:
            for b in kept:
                when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(b.created))
                out.write(f"{when}  {escape(b.reason):20}  {escape(b.path)}\n")
            if not kept:
                out.write(f"no backups of {escape(args.path)}\n")
        return int(ExitCode.OK)
    result = rollback(args.path)
    out.write(fmt.render_json([result]) if args.json else fmt.render_table([result]))
    return int(ExitCode.OK if result.outcome.ok else ExitCode.CRITICAL)


def _cmd_prune_backups(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from venvkeeper.host.fsutil import check_directory
    from venvkeeper.repair import prune_backups

    for p in args.paths:
        check_directory(p)
    try:
        pruned = prune_backups(args.paths, args.keep)
    except OSError as e:  # rmtree names only the entry it failed on: say where it was
        from venvkeeper.errors import os_failure

        where = ", ".join(args.paths)
        raise os_failure(e, f"cannot delete the backups in {where}:") from e
    n = refused = 0
    for venv, gone, why in pruned:
        for g in gone:
            out.write(f"deleted {escape(g)}\n")
            n += 1
        if why is not None:
            out.write(f"refused {escape(venv)}: {escape(why)}\n")
            refused += 1
    out.write(f"{n} backup(s) deleted, {len(pruned)} venv(s) with backups\n")
    return int(ExitCode.WARNING if refused else ExitCode.OK)


def _cmd_inventory(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from venvkeeper.formats import inventory as fmt
    from venvkeeper.inventory.queries import inventory
    from venvkeeper.inventory.store import open_store

    db = _db_path(args)
    with open_store(db, create=False) as store:
        inv = inventory(store)
    out.write(fmt.inventory_json(inv, db) if args.json else fmt.inventory_table(inv))
    return int(ExitCode.OK)


def _cmd_changes(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from venvkeeper.formats import inventory as fmt
    from venvkeeper.inventory.queries import changes, parse_since
    from venvkeeper.inventory.store import open_store

    since = parse_since(args.since) if args.since is not None else None
    with open_store(_db_path(args), create=False) as store:
        ch = changes(store, since)
    out.write(fmt.changes_json(ch) if args.json else fmt.changes_table(ch))
    return int(ExitCode.OK)


def _cmd_history(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from venvkeeper.formats import inventory as fmt
    from venvkeeper.inventory.queries import history
    from venvkeeper.inventory.store import open_store

    with open_store(_db_path(args), create=False) as store:
        h = history(store, args.path)
    out.write(fmt.history_json(h) if args.json else fmt.history_table(h))
    return int(ExitCode.OK)


def _cmd_check(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """Every failure is UNKNOWN on stdout, in one line: :func:`main` writes it."""
    from venvkeeper.checks.policy import apply
    from venvkeeper.formats import nagios
    from venvkeeper.inventory.monitor import Thresholds, evaluate
    from venvkeeper.inventory.record import snapshot_of
    from venvkeeper.scan.pipeline import scan

    cfg = _config(args)
    # Set values only (0 in the configuration means "not set"): the defaults are 1 and 1.
    warning = args.warning if args.warning is not None else (cfg.check_warning or None)
    critical = args.critical if args.critical is not None else (cfg.check_critical or None)
    thresholds = Thresholds(
        warning=warning or 1,
        critical=critical or 1,
        ignore=tuple(args.ignore),
        ignore_codes=(*cfg.check_ignore_codes, *args.ignore_code),
    )
    thresholds.validate()
    opts = _scan_options(args)
    db = _record_to(args, err)
    report = apply(scan(options=opts), cfg.policy)
    if db is not None:
        _record(db, report, opts)
    result = evaluate(snapshot_of(report, opts.exclude), thresholds)
    out.write(nagios.render(result))
    return result.state.exit_code


def _cmd_export(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from venvkeeper.formats import prometheus
    from venvkeeper.host.fsutil import write_atomically
    from venvkeeper.inventory.queries import last_snapshot
    from venvkeeper.inventory.record import snapshot_of
    from venvkeeper.inventory.store import open_store
    from venvkeeper.scan.pipeline import scan

    target = os.path.abspath(args.prometheus)
    if not os.path.isdir(os.path.dirname(target)):
        raise VenvkeeperError(f"cannot write {escape(target)}: its directory does not exist")
    if args.from_inventory:
        if args.roots:
            raise VenvkeeperError("--from-inventory exports a recorded scan: give no ROOT")
        with open_store(_db_path(args), create=False) as store:
            snap = last_snapshot(store)
    else:
        from venvkeeper.checks.policy import apply

        opts = _scan_options(args)
        db = _record_to(args, err)
        report = apply(scan(options=opts), _config(args).policy)
        if db is not None:
            _record(db, report, opts)
        snap = snapshot_of(report, opts.exclude)
    write_atomically(target, prometheus.render(snap), mode=0o644, exact_mode=True)
    return int(ExitCode.OK)


class _HookTimeout(Exception):
    pass


def _read_hook_input() -> str:
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


def _cmd_apt_hook(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """Never breaks apt: every failure is one line on stderr, and the exit status is 0."""
    import signal
    import threading

    def expire(signum: int, frame: object) -> None:
        raise _HookTimeout

    timer = threading.current_thread() is threading.main_thread()
    old = signal.signal(signal.SIGALRM, expire) if timer else None
    try:
        if timer:
            signal.setitimer(signal.ITIMER_REAL, args.timeout)
        if args.stage == "pre-install":
            _hook_pre_install(args, _read_hook_input(), out, err)
        else:
            _hook_post_invoke(args, out, err)
    except _HookTimeout:
        err.write(f"venvkeeper: apt hook gave up after {args.timeout:g}s; apt goes on\n")
    except (Exception, KeyboardInterrupt) as e:
        what = "; ".join(_failure(e).lines) if isinstance(e, Exception) else "interrupted"
        err.write(f"venvkeeper: apt hook failed ({escape_value(what)}); apt goes on\n")
    finally:
        if timer:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, old)
    return int(ExitCode.OK)


def _predict_command(change: object) -> str:
    from venvkeeper.predict.changes import Change

    assert isinstance(change, Change)
    argv = ["venvkeeper", "predict"]
    for link, version in change.python_becomes:
        argv.append(f"--python-becomes={link}={version}" if link else f"--python-becomes={version}")
    argv += [f"--remove={p}" for p in change.remove]
    argv += [f"--remove-package={p}" for p in change.remove_packages]
    return escape(" ".join(argv))


def _obsolete_note(reports: Iterable[VenvReport], limit: int = 5) -> str:
    """The apt hooks' lines about venvs on a base no configured archive offers any more."""
    from venvkeeper.checks.obsolete import OBSOLETE

    found = [r for r in reports if any(f.code == OBSOLETE for f in r.findings)]
    if not found:
        return ""
    n = len(found)
    lines = [
        f"venvkeeper: {n} venv{'' if n == 1 else 's'} run on a Python that no configured"
        " archive offers any more (base-obsolete: no more security fixes); venvkeeper"
        " repair --all moves them to a supported one"
    ]
    lines += [f"  warning   {escape(r.path)}  base-obsolete" for r in found[:limit]]
    if n > limit:
        lines.append(f"  ... and {n - limit} more: venvkeeper scan --only-problems")
    return "\n".join(lines) + "\n"


def _hook_pre_install(args: argparse.Namespace, text: str, out: TextIO, err: TextIO) -> None:
    from venvkeeper.apt.hook import parse_input, python_change
    from venvkeeper.checks.policy import apply
    from venvkeeper.formats import predict as fmt
    from venvkeeper.model.plan import Effect
    from venvkeeper.predict.changes import predict
    from venvkeeper.scan.pipeline import scan

    hook = parse_input(text)
    pc = python_change(hook.actions, prefix=args.host_prefix)
    if pc is None:
        return  # this apt run leaves Python alone: say nothing
    out.write("venvkeeper: Python packages in this apt run: " + escape("; ".join(pc.notes)) + "\n")
    if pc.patch_only:
        out.write(
            "venvkeeper: no minor version change and nothing removed: venvs keep working;"
            " processes on these interpreters will need a restart (venvkeeper restarts)\n"
        )
        return
    policy = _config(args).policy
    report = apply(scan(options=_scan_options(args)), policy)
    users = None
    if not args.no_processes:
        from venvkeeper.restarts.scan import venv_users

        try:
            users = venv_users(args.proc_root)
        except VenvkeeperError:
            users = None
    pred = predict(report, pc.change, users=users, policy=policy)
    if args.json:
        out.write(fmt.render_json(pred))
        return
    breaking = [v for v in pred.venvs if v.effect.breaks]
    if breaking:
        out.write(fmt.render_predict(pred, only_problems=True))
        out.write(
            f"venvkeeper: {len(breaking)} venv{'' if len(breaking) == 1 else 's'} will break"
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


def _hook_post_invoke(args: argparse.Namespace, out: TextIO, err: TextIO) -> None:
    from venvkeeper.checks.policy import apply
    from venvkeeper.formats import restarts as restarts_fmt
    from venvkeeper.formats import table
    from venvkeeper.model.findings import Severity
    from venvkeeper.restarts.scan import scan_processes
    from venvkeeper.scan.pipeline import scan

    policy = _config(args).policy
    opts = _scan_options(args)
    report = apply(scan(options=opts), policy)
    try:  # into the default inventory, so `venvkeeper changes` shows what the upgrade did
        from venvkeeper.inventory.record import record_report
        from venvkeeper.inventory.store import default_path

        record_report(
            default_path(), report, opts.exclude, make_parents=not os.environ.get("VENVKEEPER_DB")
        )
    except VenvkeeperError as e:
        err.write(f"venvkeeper: warning: this scan is not recorded: {escape_value(str(e))}\n")
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
    restarts = scan_processes(args.proc_root, policy=policy)
    out.write(f"venvkeeper: {restarts_fmt.summary(restarts)}\n")
    units = list(dict.fromkeys(p.unit or f"pid {p.pid}" for p in restarts.needing_restart))
    if units:
        shown = ", ".join(escape(u) for u in units[:8])
        more = f" and {len(units) - 8} more" if len(units) > 8 else ""
        out.write(f"  to restart: {shown}{more} (venvkeeper restarts --unit-commands)\n")


def _cmd_install_apt_hooks(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    import shutil

    from venvkeeper.apt.hook import CONF_NAME, render_conf, resolve_self, verify_conf
    from venvkeeper.host.fsutil import write_atomically

    directory = args.apt_conf_dir
    if not os.path.isdir(directory):
        raise VenvkeeperError(f"{escape(directory)} is not a directory (is apt installed?)")
    path = os.path.join(directory, CONF_NAME)
    if args.uninstall:
        try:
            os.unlink(path)
        except FileNotFoundError:
            out.write(f"{escape(path)} was not installed\n")
            return int(ExitCode.OK)
        except OSError as e:
            raise VenvkeeperError(f"cannot remove {escape(path)}: {e.strerror or e}") from e
        out.write(f"removed {escape(path)}\n")
        return int(ExitCode.OK)
    exe = args.venvkeeper or resolve_self(sys.argv[0], shutil.which("venvkeeper"))
    if exe is None:
        raise VenvkeeperError(
            "cannot tell where the venvkeeper command is; name it with --venvkeeper PATH"
        )
    exe = os.path.abspath(exe)
    if not (os.path.isfile(exe) and os.access(exe, os.X_OK)):
        raise VenvkeeperError(f"{escape(exe)} is not an executable file")
    text = render_conf(exe)
    # a file apt cannot parse in apt.conf.d would stop every apt command: ask apt first
    if not verify_conf(text):
        err.write("venvkeeper: warning: apt-config not found: the file was not checked by apt\n")
    write_atomically(path, text, 0o644)
    out.write(
        f"installed {escape(path)}: apt will run {escape(exe)} apt-hook pre-install before"
        " dpkg and apt-hook post-invoke after it\n"
    )
    return int(ExitCode.OK)


def _cmd_codes(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from venvkeeper.checks import all_codes

    for code, doc in sorted(all_codes().items()):
        out.write(f"{code:30} {doc.severity.value:9} {doc.summary}\n")
    return 0


@dataclass(frozen=True)
class _Failure:
    """What an exception that ended a command prints, and the exit code it gives."""

    lines: tuple[str, ...]
    code: int
    internal: bool  # a bug: "internal error ... Please report this"


def _failure(e: Exception) -> _Failure:
    """The one mapping from an exception to its message and exit code (the README's
    exit codes): an error venvkeeper raised says what to do; an OS error is the path it
    names and what went wrong, in words (permission denied, no space left, ...); anything
    else is a bug."""
    from venvkeeper.errors import os_failure

    if isinstance(e, OSError):
        e = os_failure(e)
    if isinstance(e, VenvkeeperError):
        return _Failure(e.lines(), e.exit_code, internal=False)
    return _Failure((f"{type(e).__name__}: {e}",), int(ExitCode.ERROR), internal=True)


class _Output:
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


def main(
    argv: Optional[list[str]] = None, out: Optional[TextIO] = None, err: Optional[TextIO] = None
) -> int:
    """Run one command: the only place that turns an error into its message and exit code
    (:func:`_failure`); ``check`` prints its failure as one UNKNOWN line on stdout."""
    stdout = _Output(out or sys.stdout)
    out = cast(TextIO, stdout)
    err = err or sys.stderr
    parser = build_parser()
    words = sys.argv[1:] if argv is None else argv
    try:
        try:
            args = parser.parse_args(argv)
        finally:
            if sys.stdout is stdout.stream:  # --help and --version print to sys.stdout
                stdout.flush()
    except _ParseError as e:
        if words[:1] == ["check"]:  # a monitoring plugin answers on stdout, in one line
            from venvkeeper.formats import nagios

            out.write(nagios.render_unknown(f"usage error: {e.message}"))
        e.parser.print_usage(err)
        # argparse quotes most values with repr(), not "unrecognized arguments"
        err.write(f"{e.parser.prog}: error: {escape_value(e.message)}\n")
        stdout.flush()
        return int(ExitCode.ERROR)
    except SystemExit as e:
        return int(e.code) if isinstance(e.code, int) else int(ExitCode.ERROR)
    except BrokenPipeError:  # --help | head
        stdout._reader_gone()
        return int(ExitCode.OK)
    if not getattr(args, "func", None):  # a usage error: the usage goes to stderr
        parser.print_usage(err)
        err.write(f"{parser.prog}: error: give a COMMAND (venvkeeper --help lists them)\n")
        return int(ExitCode.ERROR)
    args.err = err
    try:
        code = int(args.func(args, out, err))
    except KeyboardInterrupt:
        err.write("venvkeeper: interrupted\n")
        return 130
    except Exception as e:
        failure = _failure(e)
        if args.command == "check":
            from venvkeeper.formats import nagios

            text = "; ".join(failure.lines)
            text = f"internal error: {text}" if failure.internal else text
            out.write(nagios.render_unknown(text))
        elif failure.internal:
            err.write(
                f"venvkeeper: internal error: {escape_value(failure.lines[0])}\n"
                "Please report this with the command line you used.\n"
            )
        else:
            for line in failure.lines:
                err.write(f"venvkeeper: error: {escape_value(line)}\n")
        stdout.flush()
        if failure.internal and os.environ.get("VENVKEEPER_DEBUG"):
            raise
        return failure.code
    stdout.flush()
    return code
