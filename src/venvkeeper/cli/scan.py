"""``scan`` (find and judge every venv), ``show`` (one venv in full), ``codes`` (the finding
codes).
"""

from __future__ import annotations

import argparse
from collections.abc import Iterable
from typing import TYPE_CHECKING, Optional

from venvkeeper.cli._common import (
    Parser,
    add_format,
    add_record,
    add_selection,
    add_walk,
    emit,
    exit_code_for,
    machine,
    scan_request,
)
from venvkeeper.cli.context import Context
from venvkeeper.formats.envelope import Kind

if TYPE_CHECKING:
    from venvkeeper.model.consumers import Consumer


def _add_scan(sub: argparse._SubParsersAction[Parser]) -> None:
    p = sub.add_parser("scan", help="find every venv under the roots and diagnose each one")
    add_walk(p)
    p.add_argument("--only-problems", action="store_true", help="list only venvs that are not ok")
    p.add_argument("-q", "--quiet", action="store_true", help="print only the summary line")
    add_selection(p)
    add_record(p)
    add_no_consumers(p)
    p.set_defaults(func=_cmd_scan)


def _add_show(sub: argparse._SubParsersAction[Parser]) -> None:
    p = sub.add_parser("show", help="every fact and finding of one venv")
    p.add_argument("path", metavar="PATH")
    p.add_argument(
        "--no-other-roots",
        dest="other_roots",
        action="store_false",
        help="judge a venv inside another OS root (a chroot) by this host's paths",
    )
    add_selection(p)
    add_no_consumers(p)
    p.set_defaults(func=_cmd_show)


def _add_codes(sub: argparse._SubParsersAction[Parser]) -> None:
    p = sub.add_parser("codes", help="list every finding code and its usual severity")
    add_format(p)
    p.set_defaults(func=_cmd_codes)


def add_no_consumers(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--no-consumers",
        action="store_true",
        help="do not read this host's units, cron jobs, commands and server configs for"
        " USED BY (venvkeeper consumers tells more)",
    )


def used_by(
    args: argparse.Namespace, paths: Iterable[str]
) -> Optional[dict[str, tuple[Consumer, ...]]]:
    """Each venv path's consumers on this host, None with --no-consumers."""
    if args.no_consumers:
        return None
    from venvkeeper.consumers import read_consumers
    from venvkeeper.consumers.judge import by_venv, real

    found = by_venv(read_consumers().consumers)
    return {p: found.get(real(p), ()) for p in paths}


def _cmd_scan(args: argparse.Namespace, ctx: Context) -> int:
    from venvkeeper.configured import scan_as_configured

    with ctx.progress(enabled=not (args.quiet or machine(args))) as progress:
        report = scan_as_configured(
            ctx.config, scan_request(args), progress=progress, warn=ctx.warn
        ).report
    users = None if args.quiet else used_by(args, (v.path for v in report.venvs))
    emit(
        ctx,
        args,
        Kind.SCAN,
        report,
        only_problems=args.only_problems,
        quiet=args.quiet,
        used_by=users,
    )
    return int(exit_code_for(report.worst))


def _cmd_show(args: argparse.Namespace, ctx: Context) -> int:
    from venvkeeper.checks.policy import apply_to_venv
    from venvkeeper.scan.pipeline import ScanOptions, inspect_path

    opts = ScanOptions(
        size=args.size, deep=args.deep, deep_timeout=args.deep_timeout, other_roots=args.other_roots
    )
    # [ignore] does not apply to a venv named on the command line; the rest does.
    rep = apply_to_venv(inspect_path(args.path, opts), ctx.config.policy)
    users = used_by(args, [rep.path])
    emit(ctx, args, Kind.SHOW, rep, consumers=None if users is None else users[rep.path])
    return int(exit_code_for(rep.status))


def _cmd_codes(args: argparse.Namespace, ctx: Context) -> int:
    from venvkeeper.checks.registry import all_codes

    emit(ctx, args, Kind.CODES, all_codes())
    return 0


def add(sub: argparse._SubParsersAction[Parser]) -> None:
    """Add this family's commands to the top-level parser."""
    _add_scan(sub)
    _add_show(sub)
    _add_codes(sub)
