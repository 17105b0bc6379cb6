"""``apt-hook`` (what apt runs before and after dpkg) and ``install-apt-hooks``."""

from __future__ import annotations

import argparse
import os
import sys

from venvkeeper.cli._common import (
    ExitCode,
    Parser,
    add_format,
    add_walk,
    positive_float,
    scan_request,
)
from venvkeeper.cli.context import Context
from venvkeeper.errors import VenvkeeperError
from venvkeeper.textutil import escape


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
    add_format(pre)  # --json: predict's JSON


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


def _cmd_apt_hook(args: argparse.Namespace, ctx: Context) -> int:
    """Never breaks apt: every failure is one line on stderr, and the exit status is 0."""
    from venvkeeper.apt import run

    def settings() -> run.HookSettings:
        return run.HookSettings(
            config=ctx.config,
            scan=scan_request(args),
            proc_root=args.proc_root,
            processes=not getattr(args, "no_processes", False),
            json=getattr(args, "format", None) == "json",
        )

    def work() -> None:
        places = run.StatePlaces.default(args.proc_root)
        if args.stage == "pre-install":
            run.pre_install(run.read_input(), settings, ctx.out, args.host_prefix, places, ctx.err)
        else:
            run.post_invoke(settings, ctx.out, ctx.err, places)

    run.guarded(args.timeout, work, ctx.err)
    return int(ExitCode.OK)


def _cmd_install_apt_hooks(args: argparse.Namespace, ctx: Context) -> int:
    out, err = ctx.out, ctx.err
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
    _refuse_untrusted_hook(exe)
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


def _refuse_untrusted_hook(exe: str) -> None:
    """apt runs the hooks as root on every dpkg run: refuse a venvkeeper that root does
    not own end to end (the one trust rule), saying why and what to install instead."""
    from venvkeeper.apt.hook import INSTEAD, hook_distrust

    problem = hook_distrust(exe)
    if problem is not None:
        raise VenvkeeperError(
            f"refused: {escape(problem)}: apt would run it as root on every dpkg run, and"
            f" another user could change what runs; {INSTEAD}"
        )


def add(sub: argparse._SubParsersAction[Parser]) -> None:
    """Add this family's commands to the top-level parser."""
    _add_apt_hook(sub)
    _add_install_apt_hooks(sub)
