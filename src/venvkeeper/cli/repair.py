"""``repair`` (relink, fix paths or rebuild, as a transaction), ``rollback`` (back to a
backup), ``prune-backups``.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Optional

from venvkeeper.cli._common import (
    BACKENDS,
    ExitCode,
    Parser,
    add_format,
    add_sources,
    emit,
    machine,
    non_negative_int,
    positive_int,
    scan_request,
    sources_of,
)
from venvkeeper.cli.consumers import add_repair_options, repair_consumers, repair_scan
from venvkeeper.cli.context import Context
from venvkeeper.errors import UsageError
from venvkeeper.formats.envelope import Kind
from venvkeeper.textutil import escape

if TYPE_CHECKING:
    from venvkeeper.model.repair import RepairResult


def _add_repair(sub: argparse._SubParsersAction[Parser]) -> None:
    p = sub.add_parser(
        "repair",
        help="repair venvs as their plans say (relink, rewrite paths, rebuild), atomically,"
        " keeping the original as a backup",
    )
    p.add_argument("paths", nargs="*", metavar="PATH", help="venvs to repair")
    p.add_argument(
        "--all",
        action="store_true",
        help="treat the PATHs as roots (default: [scan] roots of the configuration, else /):"
        " repair every venv under them that is not ok, as the configuration says (its"
        " exclude, network filesystems and ignore)",
    )
    p.add_argument(
        "--sibling",
        action="store_true",
        help="for a venv shared by hosts of several Python minors: build PATH-pyX.Y beside"
        " each PATH for this host's Python X.Y (its python3, or --python), with the very same"
        " packages; PATH itself is left untouched",
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
        choices=BACKENDS,
        default="auto",
        help="installer for rebuilds: uv when found (default), else pip of the new venv",
    )
    add_sources(p, "rebuilds")
    _add_uv(p)
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
        type=non_negative_int,
        default=2,
        metavar="N",
        help="backups kept per venv after a repair (default 2)",
    )
    p.add_argument(
        "-j", "--jobs", type=positive_int, default=2, metavar="N", help="venvs at once (default 2)"
    )
    p.add_argument("-q", "--quiet", action="store_true", help="no progress lines")
    add_repair_options(p)
    add_format(p)
    p.set_defaults(func=_cmd_repair)


def _add_rollback(sub: argparse._SubParsersAction[Parser]) -> None:
    p = sub.add_parser(
        "rollback", help="put a venv's newest backup back (the current one becomes a backup)"
    )
    p.add_argument("path", metavar="PATH")
    p.add_argument("--list", action="store_true", help="only list the backups, newest first")
    add_format(p)
    p.set_defaults(func=_cmd_rollback)


def _add_prune_backups(sub: argparse._SubParsersAction[Parser]) -> None:
    p = sub.add_parser(
        "prune-backups",
        help="delete all but the newest backups of venvs (or of a directory's venvs)",
    )
    p.add_argument("paths", nargs="+", metavar="PATH", help="venvs, or directories holding venvs")
    p.add_argument(
        "--keep",
        type=non_negative_int,
        default=0,
        metavar="N",
        help="newest backups kept per venv (default 0: delete them all)",
    )
    add_format(p)
    p.set_defaults(func=_cmd_prune_backups)


def _repair_targets(
    args: argparse.Namespace, ctx: Context, embedded: Mapping[str, str]
) -> list[str]:
    """The venvs to repair. A PATH that is not a directory is a usage error (exit 3),
    with or without --all: there is nothing there to repair or to search. With --all,
    the venvs of a scan as configured (its roots, exclude and ignore) that are not ok, and
    those a server embeds with another Python than theirs (*embedded*: the minor each
    venv's server needs, by the venv's real path)."""
    from venvkeeper.host.fsutil import check_directory

    if not args.all and not args.paths:
        raise UsageError("repair: give the venvs to repair, or --all [ROOT ...]")
    for p in args.paths:
        check_directory(p, listable=args.all)
    if not args.all:
        return [os.path.abspath(p) for p in args.paths]
    from venvkeeper.configured import scan_as_configured
    from venvkeeper.model.findings import Severity

    request = scan_request(args, roots=tuple(args.paths))
    report = scan_as_configured(ctx.config, request, warn=ctx.warn).report
    from venvkeeper.checks.consumers import site_minor

    return [
        v.facts.path
        for v in report.venvs
        if v.alias_of is None
        and (
            v.status is not Severity.OK
            or embedded.get(os.path.realpath(v.facts.path), site_minor(v.facts))
            != site_minor(v.facts)
        )
    ]


def _cmd_repair(args: argparse.Namespace, ctx: Context) -> int:
    import signal
    import threading

    from venvkeeper.model.repair import Outcome
    from venvkeeper.repair import BackendChoice, RepairOptions, repair_all

    if args.sibling and (args.all or not args.paths):
        raise UsageError("repair --sibling: give the shared venvs (not --all)")
    scan = repair_scan(args)
    embedded: Mapping[str, str] = {}
    if scan is not None and not args.python:
        from venvkeeper.repair.consumers import embedded_targets

        embedded = embedded_targets(scan)
    targets = _repair_targets(args, ctx, embedded)
    minor_for = tuple(
        (real, embedded[real])
        for real in sorted({os.path.realpath(t) for t in targets})
        if real in embedded
    )
    options = RepairOptions(
        python=args.python,
        backend=BackendChoice(args.backend),
        sources=sources_of(args),
        allow_upgrades=args.allow_upgrades,
        force=args.force,
        dry_run=args.dry_run,
        keep_backups=args.keep_backups,
        copies=args.copies,
        jobs=args.jobs,
        uv=_uv_of(args, ctx),
        minor_for=minor_for,
    )
    err = ctx.err
    cancel = threading.Event()
    total = len(targets)
    done = [0]

    def progress(path: str, result: Optional[RepairResult]) -> None:
        if args.quiet or machine(args):
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
        if args.sibling:
            from venvkeeper.repair import build_sibling

            results = []
            for t in targets:
                progress(t, None)
                results.append(build_sibling(t, options, cancel=cancel))
                progress(t, results[-1])
        else:
            results = repair_all(targets, options, progress=progress, cancel=cancel)
    finally:
        for s, h in old.items():
            signal.signal(s, h)
    actions = repair_consumers(args, ctx, results, scan)
    emit(ctx, args, Kind.REPAIR, results, consumers=actions)
    if any(r.outcome is Outcome.FAILED for r in results):
        return int(ExitCode.CRITICAL)
    if any(r.outcome is Outcome.REFUSED for r in results) or not all(
        a.outcome.ok for a in actions or ()
    ):
        return int(ExitCode.WARNING)
    return int(ExitCode.OK)


def _cmd_rollback(args: argparse.Namespace, ctx: Context) -> int:
    from venvkeeper.repair import list_backups, rollback

    if args.list:
        emit(ctx, args, Kind.ROLLBACK_LIST, (os.path.abspath(args.path), list_backups(args.path)))
        return int(ExitCode.OK)
    result = rollback(args.path)
    emit(ctx, args, Kind.ROLLBACK, result)
    return int(ExitCode.OK if result.outcome.ok else ExitCode.CRITICAL)


def _cmd_prune_backups(args: argparse.Namespace, ctx: Context) -> int:
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
    emit(ctx, args, Kind.PRUNE_BACKUPS, pruned)
    refused = any(why is not None for _, _, why in pruned)
    return int(ExitCode.WARNING if refused else ExitCode.OK)


def add(sub: argparse._SubParsersAction[Parser]) -> None:
    """Add this family's commands to the top-level parser."""
    _add_repair(sub)
    _add_rollback(sub)
    _add_prune_backups(sub)


def _add_uv(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--uv",
        metavar="PATH",
        help="the uv binary rebuilds use (default: [repair] uv of the configuration, else"
        " /usr/local/bin, the system directories, then beside venvkeeper; as root never"
        " PATH or HOME); as root it must be one only root can change",
    )


def _uv_of(args: argparse.Namespace, ctx: Context) -> Optional[str]:
    """``--uv``, else the configuration's ``[repair] uv``: checked now by the trust rule
    (a refusal is an error before any venv is touched)."""
    from venvkeeper.host import programs

    uv: Optional[str] = args.uv or ctx.config.repair_uv
    if uv is None:
        return None
    what = "--uv" if args.uv else "[repair] uv"
    return programs.checked(os.path.abspath(uv) if args.uv else uv, what=what)
