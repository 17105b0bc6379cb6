"""``predict`` (what a planned change breaks), ``plan`` (the repairs it would need),
``host-profile`` (this host, for predictions on another), ``matrix`` (a shared tree judged
as each of many hosts sees it), ``wheelhouse`` (the wheels those repairs need, fetched
before the change).
"""

from __future__ import annotations

import argparse
import os
from typing import TYPE_CHECKING, TextIO

from venvkeeper.cli._common import (
    ExitCode,
    Parser,
    add_change,
    add_json,
    add_sources,
    add_walk,
    config_of,
    exit_code_for,
    progress_line,
    scan_options,
    sources_of,
    terminal,
)
from venvkeeper.cli.consumers import add_predict_options, predicted_consumers
from venvkeeper.errors import UsageError, VenvkeeperError
from venvkeeper.textutil import escape_value

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
    add_json(p)
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
    opts = scan_options(args)
    policy = config_of(args).policy
    with progress_line(err, enabled=not args.json) as progress:
        report = apply(scan(options=opts, progress=progress), policy)
    users = None
    if not args.no_processes:
        from venvkeeper.restarts.scan import venv_users

        try:
            users = venv_users(args.proc_root)
        except VenvkeeperError as e:
            err.write(f"venvkeeper: warning: running processes not read: {escape_value(str(e))}\n")
    pred = predict(report, change, users=users, policy=policy)
    return predicted_consumers(args, pred, change, err)


def _cmd_predict(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from venvkeeper.formats import predict as fmt

    pred = _predict(args, err)
    if args.json:
        out.write(fmt.render_json(pred))
    else:
        out.write(fmt.render_predict(pred, args.only_problems, terminal(out).width or 0))
    return int(exit_code_for(pred.worst))


def _cmd_plan(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from venvkeeper.formats import predict as fmt

    pred = _predict(args, err)
    if args.json:
        from venvkeeper.formats.envelope import Kind

        out.write(fmt.render_json(pred, Kind.PLAN))
    else:
        out.write(fmt.render_plan(pred, not args.all))
    return int(exit_code_for(pred.worst))


def _cmd_wheelhouse(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from venvkeeper.formats import repair as fmt
    from venvkeeper.host.fsutil import check_directory
    from venvkeeper.repair.wheelhouse import prefetch

    check_directory(args.dest)
    pred = _predict(args, err)
    report = prefetch(pred, os.path.abspath(args.dest), sources_of(args))
    out.write(fmt.render_wheelhouse_json(report) if args.json else fmt.render_wheelhouse(report))
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


def _cmd_matrix(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """Exit 0 when every venv works on every host it is for, 1 when some cell is
    unknown (and none breaks), 2 when a venv breaks on some host."""
    from venvkeeper.checks.policy import apply
    from venvkeeper.formats import matrix as fmt
    from venvkeeper.model.matrix import CellState
    from venvkeeper.predict.matrix import build_matrix
    from venvkeeper.scan.pipeline import scan

    profiles = _profiles_of(args)
    if args.include_network is None:  # the trees a matrix is for are network mounts
        args.include_network = True
    opts = scan_options(args)
    policy = config_of(args).policy
    progress = None if args.json else progress_line(err)
    report = apply(scan(options=opts, progress=progress), policy)
    if progress is not None:
        err.write("\r\x1b[K")
    m = build_matrix(report, profiles, policy=policy)
    if args.json:
        out.write(fmt.render_json(m))
    else:
        width = os.get_terminal_size(out.fileno()).columns if out.isatty() else 80
        out.write(fmt.render_table(m, width))
    if m.count(CellState.BREAKS):
        return int(ExitCode.CRITICAL)
    return int(ExitCode.WARNING if m.count(CellState.UNKNOWN) else ExitCode.OK)


def _cmd_host_profile(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
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
        out.write(text)
    return int(ExitCode.OK)


def add(sub: argparse._SubParsersAction[Parser]) -> None:
    """Add this family's commands to the top-level parser."""
    _add_predict(sub)
    _add_plan(sub)
    _add_host_profile(sub)
    _add_matrix(sub)
    _add_wheelhouse(sub)
