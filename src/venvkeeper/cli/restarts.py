"""``restarts``: the processes still running a replaced interpreter or a changed venv, and
their units.
"""

from __future__ import annotations

import argparse

from venvkeeper.cli._common import ExitCode, Parser, add_format, emit
from venvkeeper.cli.context import Context
from venvkeeper.formats.envelope import Kind


def _add_restarts(sub: argparse._SubParsersAction[Parser]) -> None:
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
        help="print the systemctl restart lines, and what to do (as comments) for processes"
        " outside any unit; venvkeeper never runs them",
    )
    p.add_argument(
        "--no-judge",
        action="store_true",
        help="do not judge the venvs of the processes (no 'repair first' warnings)",
    )
    add_format(p)
    p.set_defaults(func=_cmd_restarts)


def _cmd_restarts(args: argparse.Namespace, ctx: Context) -> int:
    from venvkeeper.restarts.scan import scan_processes

    report = scan_processes(args.proc_root, judge=not args.no_judge, policy=ctx.config.policy)
    emit(ctx, args, Kind.RESTARTS, report, unit_commands=args.unit_commands)
    if report.broken:
        return int(ExitCode.CRITICAL)
    return int(ExitCode.WARNING if report.needing_restart else ExitCode.OK)


def add(sub: argparse._SubParsersAction[Parser]) -> None:
    """Add this family's commands to the top-level parser."""
    _add_restarts(sub)
