"""``consumers``: what each venv serves (systemd units, cron jobs, commands, web servers and
process managers), each judged, and the venvs nothing uses."""

from __future__ import annotations

import argparse

from venvkeeper.cli._common import (
    Parser,
    add_format,
    add_walk,
    emit,
    exit_code_for,
    scan_request,
)
from venvkeeper.cli.context import Context
from venvkeeper.formats.envelope import Kind


def _add_consumers(sub: argparse._SubParsersAction[Parser]) -> None:
    p = sub.add_parser(
        "consumers",
        help="what each venv serves: systemd units, cron jobs, commands, uWSGI, mod_wsgi,"
        " supervisor and gunicorn, read from their files and judged",
    )
    add_walk(p)
    p.add_argument(
        "--system-root",
        default="/",
        metavar="DIR",
        help="read the consumers of the system installed in DIR (a chroot, an image)"
        " instead of this host's (default /); its venvs are scanned when no ROOT is given",
    )
    p.add_argument(
        "--proc-root",
        default="/proc",
        metavar="DIR",
        help="the procfs that tells which units run now (default /proc)",
    )
    p.add_argument(
        "--no-scan",
        action="store_true",
        help="judge only the venvs the consumers name: do not walk the ROOTs for the venvs"
        " that nothing uses",
    )
    add_format(p)
    p.set_defaults(func=_cmd_consumers)


def _cmd_consumers(args: argparse.Namespace, ctx: Context) -> int:
    from typing import Optional

    from venvkeeper.checks.policy import apply_to_venv
    from venvkeeper.configured import scan_as_configured
    from venvkeeper.consumers import read_consumers
    from venvkeeper.consumers.judge import judge, real
    from venvkeeper.errors import VenvkeeperError
    from venvkeeper.host.fsutil import check_directory
    from venvkeeper.model.report import VenvReport
    from venvkeeper.scan.pipeline import ScanOptions, inspect_path

    check_directory(args.system_root)
    # another system's venvs are scanned when no ROOT is given
    roots = args.roots or ([args.system_root] if args.system_root != "/" else [])
    policy = ctx.config.policy
    # the host's /proc tells nothing of another system's units, unless named
    proc = args.proc_root if args.system_root == "/" or args.proc_root != "/proc" else None
    found = read_consumers(args.system_root, proc)
    reports: dict[str, VenvReport] = {}
    scanned: list[str] = []
    if not args.no_scan:
        request = scan_request(args, roots=tuple(roots))
        report = scan_as_configured(ctx.config, request, warn=ctx.warn).report
        for v in report.venvs:
            reports[real(v.path)] = v
            scanned.append(v.path)

    def report_of(path: str) -> Optional[VenvReport]:
        got = reports.get(real(path))
        if got is not None:
            return got
        try:
            return apply_to_venv(inspect_path(path, ScanOptions()), policy)
        except VenvkeeperError:
            return None

    result = judge(found, report_of, scanned)
    emit(ctx, args, Kind.CONSUMERS, result)
    return int(exit_code_for(result.worst))


def add(sub: argparse._SubParsersAction[Parser]) -> None:
    """Add this family's commands to the top-level parser."""
    _add_consumers(sub)
