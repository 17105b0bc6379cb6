"""``scan`` (find and judge every venv), ``show`` (one venv in full), ``codes`` (the finding
codes).
"""

from __future__ import annotations

import argparse

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


def _add_scan(sub: argparse._SubParsersAction[Parser]) -> None:
    p = sub.add_parser("scan", help="find every venv under the roots and diagnose each one")
    add_walk(p)
    p.add_argument("--only-problems", action="store_true", help="list only venvs that are not ok")
    p.add_argument("-q", "--quiet", action="store_true", help="print only the summary line")
    add_selection(p)
    add_record(p)
    p.set_defaults(func=_cmd_scan)


def _add_show(sub: argparse._SubParsersAction[Parser]) -> None:
    p = sub.add_parser("show", help="every fact and finding of one venv")
    p.add_argument("path", metavar="PATH")
    add_selection(p)
    p.set_defaults(func=_cmd_show)


def _add_codes(sub: argparse._SubParsersAction[Parser]) -> None:
    p = sub.add_parser("codes", help="list every finding code and its usual severity")
    add_format(p)
    p.set_defaults(func=_cmd_codes)


def _cmd_scan(args: argparse.Namespace, ctx: Context) -> int:
    from venvkeeper.configured import scan_as_configured

    with ctx.progress(enabled=not (args.quiet or machine(args))) as progress:
        report = scan_as_configured(
            ctx.config, scan_request(args), progress=progress, warn=ctx.warn
        ).report
    emit(ctx, args, Kind.SCAN, report, only_problems=args.only_problems, quiet=args.quiet)
    return int(exit_code_for(report.worst))


def _cmd_show(args: argparse.Namespace, ctx: Context) -> int:
    from venvkeeper.checks.policy import apply_to_venv
    from venvkeeper.scan.pipeline import ScanOptions, inspect_path

    opts = ScanOptions(size=args.size, deep=args.deep, deep_timeout=args.deep_timeout)
    # [ignore] does not apply to a venv named on the command line; the rest does.
    rep = apply_to_venv(inspect_path(args.path, opts), ctx.config.policy)
    emit(ctx, args, Kind.SHOW, rep)
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
