"""``consumers``: what each venv serves (systemd units, cron jobs, commands, web servers and
process managers), each judged, and the venvs nothing uses."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Optional

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

if TYPE_CHECKING:
    from venvkeeper.model.consumers import ConsumerAction, ConsumerScan
    from venvkeeper.model.plan import Prediction
    from venvkeeper.model.repair import RepairResult
    from venvkeeper.predict.changes import Change


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
    p.add_argument(
        "--unused",
        action="store_true",
        help="list the venvs that nothing uses, one a line (default: only their count;"
        " --json lists them always)",
    )
    add_format(p)
    p.set_defaults(func=_cmd_consumers)


def _cmd_consumers(args: argparse.Namespace, ctx: Context) -> int:
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
    emit(ctx, args, Kind.CONSUMERS, result, unused=args.unused)
    return int(exit_code_for(result.worst))


def add_predict_options(p: argparse.ArgumentParser) -> None:
    """``predict``'s options for the consumers it judges with the venvs."""
    g = p.add_argument_group("consumers (units, cron jobs, commands, web servers)")
    g.add_argument(
        "--no-consumers",
        action="store_true",
        help="do not read the units, cron jobs, commands and server configs that use each"
        " venv, nor tell which of them the change breaks",
    )
    g.add_argument(
        "--system-root",
        default="/",
        metavar="DIR",
        help="read the consumers of the system installed in DIR (a chroot, an image)"
        " instead of this host's (default /)",
    )


def predicted_consumers(args: argparse.Namespace, pred: Prediction, change: Change) -> Prediction:
    """*pred* with each venv's consumers judged under *change*, unless ``--no-consumers``
    (or a command without these options). The consumers are those of ``--system-root``,
    else of the OS root the change happens in (``--in-root``), else this host's."""
    if getattr(args, "no_consumers", True):
        return pred
    from venvkeeper.consumers import read_consumers
    from venvkeeper.host.fsutil import check_directory
    from venvkeeper.predict.consumers import judge_consumers

    root = args.system_root if args.system_root != "/" else (change.root or "/")
    check_directory(root)
    # the host's /proc tells nothing of another system's units, unless named
    proc = args.proc_root if root == "/" or args.proc_root != "/proc" else None
    if args.no_processes:
        proc = None
    return judge_consumers(pred, read_consumers(root, proc), change, root=root)


def add_repair_options(p: argparse.ArgumentParser) -> None:
    """``repair``'s options for what runs from the repaired venvs."""
    g = p.add_argument_group(
        "consumers (without these options, the exact commands and edits are printed)"
    )
    g.add_argument(
        "--restart",
        action="store_true",
        help="once a venv is repaired and judged working: try-restart the running system"
        " units that use it and reload the web servers that embed it (apache2, uWSGI);"
        " never on the word of a file another user can change; users' units are named,"
        " not touched; off with --dry-run",
    )
    g.add_argument(
        "--fix-consumers",
        action="store_true",
        help="change the lines of consumers that hard-code another lib/pythonX.Y than the"
        " repaired venv's, each as a transaction with a backup beside the file, only in"
        " files root alone can change",
    )
    g.add_argument(
        "--no-consumers",
        action="store_true",
        help="do not read the repaired venvs' units, jobs and server configs",
    )
    g.add_argument(
        "--system-root",
        default="/",
        metavar="DIR",
        help="the consumers are those of the system installed in DIR (a chroot, an image):"
        " their files are edited there, their units are not this host's to restart"
        " (default /)",
    )


def repair_scan(args: argparse.Namespace) -> Optional[ConsumerScan]:
    """The consumers ``repair`` acts for (of ``--system-root``), read once before the
    repair (which venvs a server embeds, and for which Python) and used again after it
    (what to restart and edit); None when they are not read (``--no-consumers``,
    ``--sibling``)."""
    if args.no_consumers or args.sibling:
        return None
    from venvkeeper.consumers import read_consumers
    from venvkeeper.host.fsutil import check_directory

    check_directory(args.system_root)
    return read_consumers(args.system_root, "/proc" if args.system_root == "/" else None)


def repair_consumers(
    args: argparse.Namespace,
    ctx: Context,
    results: list[RepairResult],
    scan: Optional[ConsumerScan] = None,
) -> Optional[tuple[ConsumerAction, ...]]:
    """The restarts and edits for the consumers of the repaired venvs (done, planned or
    printed); None when they are not read (``--no-consumers``, ``--sibling``). *scan*: the
    consumers read before the repair (read now when not given)."""
    if args.no_consumers or args.sibling:
        return None
    if not results:
        return ()
    from venvkeeper.checks.policy import apply_to_venv
    from venvkeeper.errors import VenvkeeperError
    from venvkeeper.model.report import VenvReport
    from venvkeeper.repair.consumers import ActOptions, consumer_actions
    from venvkeeper.scan.pipeline import ScanOptions, inspect_path

    policy = ctx.config.policy

    def report_of(path: str) -> Optional[VenvReport]:
        try:
            return apply_to_venv(inspect_path(path, ScanOptions()), policy)
        except VenvkeeperError:
            return None

    from venvkeeper.host.fsutil import check_directory

    check_directory(args.system_root)
    options = ActOptions(
        restart=args.restart,
        fix=args.fix_consumers,
        dry_run=args.dry_run,
        root=args.system_root,
        proc="/proc" if args.system_root == "/" else None,
    )
    return consumer_actions(results, options, report_of, scan)


def add(sub: argparse._SubParsersAction[Parser]) -> None:
    """Add this family's commands to the top-level parser."""
    _add_consumers(sub)
