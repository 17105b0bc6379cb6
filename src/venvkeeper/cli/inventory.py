"""The inventory: ``inventory``, ``changes``, ``history``; monitoring: ``check`` (a monitoring
plugin), ``export`` (Prometheus textfile).
"""

from __future__ import annotations

import argparse
import os
from typing import TYPE_CHECKING

from venvkeeper.cli._common import (
    ExitCode,
    Parser,
    add_db,
    add_format,
    add_record,
    add_walk,
    db_path,
    emit,
    positive_int,
    scan_request,
)
from venvkeeper.cli.context import Context
from venvkeeper.errors import VenvkeeperError
from venvkeeper.formats.envelope import Kind
from venvkeeper.textutil import escape

if TYPE_CHECKING:
    from venvkeeper.model.inventory import ScanSnapshot


def _add_inventory(sub: argparse._SubParsersAction[Parser]) -> None:
    p = sub.add_parser(
        "inventory",
        help="every venv the recorded scans know: last status, first and last seen, vanished",
    )
    add_db(p)
    add_format(p)
    p.set_defaults(func=_cmd_inventory)


def _add_changes(sub: argparse._SubParsersAction[Parser]) -> None:
    p = sub.add_parser(
        "changes", help="venvs new, vanished, newly broken or fixed since a recorded scan"
    )
    p.add_argument(
        "--since",
        metavar="DURATION|SCAN_ID",
        help="the starting point: a scan id (12) or an age (30m, 12h, 1d, 2w); default: the"
        " scan before the latest",
    )
    add_db(p)
    add_format(p)
    p.set_defaults(func=_cmd_changes)


def _add_history(sub: argparse._SubParsersAction[Parser]) -> None:
    p = sub.add_parser("history", help="one venv over the recorded scans")
    p.add_argument("path", metavar="PATH")
    add_db(p)
    add_format(p)
    p.set_defaults(func=_cmd_history)


def _add_check(sub: argparse._SubParsersAction[Parser]) -> None:
    p = sub.add_parser(
        "check",
        help="a monitoring plugin (Nagios, Icinga): one status line, exit 0/1/2/3",
    )
    add_walk(p)
    p.add_argument(
        "--warning",
        type=positive_int,
        default=None,
        metavar="N",
        help="WARNING when at least N venvs are not ok (default: [check] warning of the"
        " configuration, else 1)",
    )
    p.add_argument(
        "--critical",
        type=positive_int,
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
    add_record(p)
    p.set_defaults(func=_cmd_check)


def _add_export(sub: argparse._SubParsersAction[Parser]) -> None:
    p = sub.add_parser(
        "export",
        help="write Prometheus metrics for node_exporter's textfile collector",
    )
    add_walk(p)
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
    add_record(p)
    p.set_defaults(func=_cmd_export)


def _cmd_inventory(args: argparse.Namespace, ctx: Context) -> int:
    from venvkeeper.inventory.queries import inventory
    from venvkeeper.inventory.store import open_store

    db = db_path(args)
    with open_store(db, create=False) as store:
        inv = inventory(store)
    emit(ctx, args, Kind.INVENTORY, (inv, db))
    return int(ExitCode.OK)


def _cmd_changes(args: argparse.Namespace, ctx: Context) -> int:
    from venvkeeper.inventory.queries import changes, parse_since
    from venvkeeper.inventory.store import open_store

    since = parse_since(args.since) if args.since is not None else None
    with open_store(db_path(args), create=False) as store:
        ch = changes(store, since)
    emit(ctx, args, Kind.CHANGES, ch)
    return int(ExitCode.OK)


def _cmd_history(args: argparse.Namespace, ctx: Context) -> int:
    from venvkeeper.inventory.queries import history
    from venvkeeper.inventory.store import open_store

    with open_store(db_path(args), create=False) as store:
        h = history(store, args.path)
    emit(ctx, args, Kind.HISTORY, h)
    return int(ExitCode.OK)


def _cmd_check(args: argparse.Namespace, ctx: Context) -> int:
    """Every failure is UNKNOWN on stdout, in one line: :func:`main` writes it."""
    from venvkeeper.configured import scan_as_configured
    from venvkeeper.formats import nagios
    from venvkeeper.inventory.monitor import Thresholds, evaluate
    from venvkeeper.inventory.snapshot import snapshot_of

    cfg = ctx.config
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
    scanned = scan_as_configured(cfg, scan_request(args), warn=ctx.warn)
    result = evaluate(snapshot_of(scanned.report, scanned.options.exclude), thresholds)
    ctx.out.write(nagios.render(result))
    return result.state.exit_code


def _cmd_export(args: argparse.Namespace, ctx: Context) -> int:
    from venvkeeper.formats import prometheus
    from venvkeeper.host.fsutil import write_atomically

    target = os.path.abspath(args.prometheus)
    if not os.path.isdir(os.path.dirname(target)):
        raise VenvkeeperError(f"cannot write {escape(target)}: its directory does not exist")
    snap: ScanSnapshot
    if args.from_inventory:
        from venvkeeper.inventory.queries import last_snapshot
        from venvkeeper.inventory.store import open_store

        if args.roots:
            raise VenvkeeperError("--from-inventory exports a recorded scan: give no ROOT")
        with open_store(db_path(args), create=False) as store:
            snap = last_snapshot(store)
    else:
        from venvkeeper.configured import scan_as_configured
        from venvkeeper.inventory.snapshot import snapshot_of

        scanned = scan_as_configured(ctx.config, scan_request(args), warn=ctx.warn)
        snap = snapshot_of(scanned.report, scanned.options.exclude)
    write_atomically(target, prometheus.render(snap), mode=0o644, exact_mode=True)
    return int(ExitCode.OK)


def add(sub: argparse._SubParsersAction[Parser]) -> None:
    """Add this family's commands to the top-level parser."""
    _add_inventory(sub)
    _add_changes(sub)
    _add_history(sub)
    _add_check(sub)
    _add_export(sub)
