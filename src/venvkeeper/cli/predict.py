"""``predict`` (what a planned change breaks), ``plan`` (the repairs it would need),
``host-profile`` (this host, for predictions on another), ``matrix`` (a shared tree judged
as each of many hosts sees it), ``wheelhouse`` (the wheels those repairs need, fetched
before the change).
"""

from __future__ import annotations

import argparse
import os
from typing import TYPE_CHECKING, Optional

from venvkeeper.cli._common import (
    ExitCode,
    Parser,
    add_change,
    add_format,
    add_sources,
    add_walk,
    emit,
    exit_code_for,
    machine,
    scan_request,
    sources_of,
)
from venvkeeper.cli.consumers import add_predict_options, predicted_consumers
from venvkeeper.cli.context import Context
from venvkeeper.errors import UsageError, VenvkeeperError
from venvkeeper.formats.envelope import Kind

if TYPE_CHECKING:
    from venvkeeper.model.host import HostProfile
    from venvkeeper.model.plan import Prediction


def _add_predict(sub: argparse._SubParsersAction[Parser]) -> None:
    p = sub.add_parser(
        "predict", help="which venvs a planned Python change (or another host) would break"
    )
    add_walk(p)
    add_change(p)
    p.add_argument("--only-problems", action="store_true", help="leave out the venvs that survive")
    add_predict_options(p)
    p.set_defaults(func=_cmd_predict)


def _add_plan(sub: argparse._SubParsersAction[Parser]) -> None:
    p = sub.add_parser(
        "plan",
        help="the repair plan of every venv that is broken (or would be, under a change)",
    )
    add_walk(p)
    add_change(p)
    p.add_argument("--all", action="store_true", help="also list venvs that need nothing")
    p.set_defaults(func=_cmd_plan)


def _add_host_profile(sub: argparse._SubParsersAction[Parser]) -> None:
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


def _add_matrix(sub: argparse._SubParsersAction[Parser]) -> None:
    p = sub.add_parser(
        "matrix",
        help="one scan of a shared tree (NFS) judged as each host of its profiles sees it:"
        " which venv works on which host, and the per-minor layout that serves them all",
        description="Scan the ROOTs once (network filesystems included unless"
        " --no-include-network) and judge every venv as each host of the profiles sees it;"
        " hosts with identical profiles are judged once. Exit status: 0 every venv works on"
        " every host it is for, 1 some verdict is unknown, 2 some venv breaks on some host,"
        " 3 a usage error (a bad profile).",
    )
    add_walk(p)
    p.add_argument(
        "--host-profile",
        action="append",
        default=[],
        metavar="FILE",
        help="a host's profile (venvkeeper host-profile on that host); repeatable",
    )
    p.add_argument(
        "--profiles-dir",
        action="append",
        default=[],
        metavar="DIR",
        help="every *.json file in DIR is a host profile; repeatable",
    )
    add_format(p)
    p.set_defaults(func=_cmd_matrix)


def _add_wheelhouse(sub: argparse._SubParsersAction[Parser]) -> None:
    p = sub.add_parser(
        "wheelhouse",
        help="before an upgrade: fetch the wheels the rebuilds of the venvs it breaks will"
        " need, for an offline repair after it",
    )
    p.add_argument(
        "--dest", "-d", required=True, metavar="DIR", help="where the wheels go (it must exist)"
    )
    add_walk(p)
    add_change(p)
    add_sources(p, "the downloads")
    p.set_defaults(func=_cmd_wheelhouse, no_processes=True)


def _predict(args: argparse.Namespace, ctx: Context) -> Prediction:
    from venvkeeper.configured import scan_as_configured
    from venvkeeper.host.interpreters import load_profile
    from venvkeeper.predict.changes import Change, parse_python_becomes, predict

    change = Change(
        python_becomes=tuple(parse_python_becomes(t) for t in args.python_becomes),
        remove=tuple(os.path.abspath(p) for p in args.remove),
        remove_packages=tuple(args.remove_package),
        profile=load_profile(args.host_profile) if args.host_profile else None,
        root=_in_root(args),
    )
    with ctx.progress(enabled=not machine(args)) as progress:
        report = scan_as_configured(
            ctx.config, scan_request(args), progress=progress, warn=ctx.warn
        ).report
    users = None
    if not args.no_processes:
        from venvkeeper.restarts.scan import venv_users

        try:
            users = venv_users(args.proc_root)
        except VenvkeeperError as e:
            ctx.warn(f"running processes not read: {e}")
    pred = predict(report, change, users=users, policy=ctx.config.policy)
    return predicted_consumers(args, pred, change)


def _in_root(args: argparse.Namespace) -> Optional[str]:
    """``--in-root DIR``: the OS root the change happens in (a usage error unless DIR is
    one, or with ``--no-other-roots``, which judges no venv inside it)."""
    if not getattr(args, "in_root", None):
        return None
    from venvkeeper.host.fsutil import check_directory
    from venvkeeper.host.osroots import Roots

    given: str = args.in_root
    check_directory(given, listable=False)
    root = os.path.realpath(given)
    if not args.other_roots:
        raise UsageError(
            "--in-root: venvs inside other OS roots are judged only without --no-other-roots"
        )
    if root == "/" or not Roots().is_root(root):
        raise UsageError(
            f"--in-root {given}: not an OS root (no etc/os-release with a usr/bin,"
            " not a known container store)"
        )
    return root


def _cmd_predict(args: argparse.Namespace, ctx: Context) -> int:
    pred = _predict(args, ctx)
    emit(ctx, args, Kind.PREDICT, pred, only_problems=args.only_problems)
    return int(exit_code_for(pred.worst))


def _cmd_plan(args: argparse.Namespace, ctx: Context) -> int:
    pred = _predict(args, ctx)
    emit(ctx, args, Kind.PLAN, pred, only_needed=not args.all)
    return int(exit_code_for(pred.worst))


def _cmd_wheelhouse(args: argparse.Namespace, ctx: Context) -> int:
    from venvkeeper.host.fsutil import check_directory
    from venvkeeper.repair.wheelhouse import prefetch

    check_directory(args.dest)
    pred = _predict(args, ctx)
    report = prefetch(pred, os.path.abspath(args.dest), sources_of(args))
    emit(ctx, args, Kind.WHEELHOUSE, report)
    return report.worst


def _profiles_of(args: argparse.Namespace) -> list[tuple[str, HostProfile]]:
    """(file, profile) of every --host-profile and every *.json of each --profiles-dir;
    the first bad one is a one-line usage error that names it."""
    from venvkeeper.host.fsutil import check_directory
    from venvkeeper.host.interpreters import load_profile

    files = list(args.host_profile)
    for d in args.profiles_dir:
        check_directory(d)
        found = sorted(e.path for e in os.scandir(d) if e.name.endswith(".json"))
        if not found:
            raise UsageError(f"--profiles-dir {d}: no *.json profile in it")
        files += found
    if not files:
        raise UsageError(
            "matrix: give the hosts' profiles (--host-profile FILE, --profiles-dir DIR)"
        )
    return [(f, load_profile(f)) for f in files]


def _cmd_matrix(args: argparse.Namespace, ctx: Context) -> int:
    """Exit 0 when every venv works on every host it is for, 1 when some cell is
    unknown (and none breaks), 2 when a venv breaks on some host."""
    from venvkeeper.configured import scan_as_configured
    from venvkeeper.model.matrix import CellState
    from venvkeeper.predict.matrix import build_matrix

    profiles = _profiles_of(args)
    # the trees a matrix is for are network mounts: walked unless --no-include-network
    network = True if args.include_network is None else args.include_network
    with ctx.progress(enabled=not machine(args)) as progress:
        report = scan_as_configured(
            ctx.config,
            # Each profile describes a whole host, which sees the tree at its paths: a venv
            # is judged as that host sees it, wherever the tree sits here (even inside an
            # OS root).
            scan_request(args, include_network=network, other_roots=False),
            progress=progress,
            warn=ctx.warn,
        ).report
    m = build_matrix(report, profiles, policy=ctx.config.policy)
    emit(ctx, args, Kind.MATRIX, m)
    if m.count(CellState.BREAKS):
        return int(ExitCode.CRITICAL)
    return int(ExitCode.WARNING if m.count(CellState.UNKNOWN) else ExitCode.OK)


def _cmd_host_profile(args: argparse.Namespace, ctx: Context) -> int:
    from venvkeeper.formats.profile import render_profile
    from venvkeeper.host.interpreters import Places, default_places, host_profile

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
        ctx.out.write(text)
    return int(ExitCode.OK)


def add(sub: argparse._SubParsersAction[Parser]) -> None:
    """Add this family's commands to the top-level parser."""
    _add_predict(sub)
    _add_plan(sub)
    _add_host_profile(sub)
    _add_matrix(sub)
    _add_wheelhouse(sub)
