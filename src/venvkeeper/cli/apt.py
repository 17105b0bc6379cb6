"""``apt-hook`` (what apt runs before and after dpkg) and ``install-apt-hooks``."""

from __future__ import annotations

import argparse
import os
import sys
from typing import TYPE_CHECKING, BinaryIO, TextIO

from venvkeeper.errors import VenvkeeperError
from venvkeeper.textutil import escape, escape_value

# Each command imports what it needs when it runs: start-up stays small (restarts is
# meant to be cheap enough for a monitoring check).
if TYPE_CHECKING:
    from collections.abc import Iterable

    from venvkeeper.model.report import VenvReport
from venvkeeper.cli._common import (
    ExitCode,
    Parser,
    add_walk,
    config_of,
    failure_of,
    positive_float,
    scan_options,
)


def _add_apt_hook(sub: argparse._SubParsersAction[Parser]) -> None:
    p = sub.add_parser(
        "apt-hook",
        help="run by apt (install-apt-hooks): pre-install tells which venvs the Python"
        " packages of this apt run will break; post-invoke checks venvs and restarts; exits 0",
    )
    stages = p.add_subparsers(dest="stage", metavar="STAGE", parser_class=Parser)
    stages.required = True
    pre = stages.add_parser(
        "pre-install",
        help="a DPkg::Pre-Install-Pkgs hook: reads apt's hook protocol version 3 on stdin",
    )
    post = stages.add_parser("post-invoke", help="a DPkg::Post-Invoke hook")
    for q in (pre, post):
        add_walk(q)
        q.add_argument(
            "--proc-root",
            default="/proc",
            metavar="DIR",
            help="the procfs to read (default /proc)",
        )
        q.add_argument(
            "--timeout",
            type=positive_float,
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


def _add_install_apt_hooks(sub: argparse._SubParsersAction[Parser]) -> None:
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
        what = "; ".join(failure_of(e).lines) if isinstance(e, Exception) else "interrupted"
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
    policy = config_of(args).policy
    report = apply(scan(options=scan_options(args)), policy)
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

    policy = config_of(args).policy
    opts = scan_options(args)
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


def add(sub: argparse._SubParsersAction[Parser]) -> None:
    """Add this family's commands to the top-level parser."""
    _add_apt_hook(sub)
    _add_install_apt_hooks(sub)
