"""What a new tree keeps of the old venv besides its packages: the files no package made
(carried over into a rebuild), the paths it records (rewritten to its final place), and
its top directory's owner, mode and security label.

Each works on the transaction's new tree only; the old venv is only read.
"""

from __future__ import annotations

import contextlib
import os
import stat

from venvkeeper.errors import CommandError, os_reason
from venvkeeper.host import command, fsutil, programs
from venvkeeper.host.command import Completed
from venvkeeper.repair import edit
from venvkeeper.repair.transaction import RepairError
from venvkeeper.repair.work import Log, Work

#: Largest file carried over from the old venv into a rebuilt one.
EXTRA_LIMIT = 1 << 30


def copy_extra(src: str, dst: str) -> list[str]:
    """Carry *src* (a file, link or directory of the old venv that no package made) over
    to *dst*, with owners, modes and times; nothing is followed and nothing but regular
    files is opened (:func:`fsutil.open_regular`: the tree is the owner's, a FIFO there
    never blocks). Returns what was left behind, and why."""
    left: list[str] = []
    stack = [(src, dst)]
    while stack:
        s, d = stack.pop()
        if os.path.lexists(d):
            continue
        try:
            st = os.lstat(s)
            if stat.S_ISLNK(st.st_mode):
                os.symlink(os.readlink(s), d)
            elif stat.S_ISDIR(st.st_mode):
                os.mkdir(d, 0o700)
                names = sorted(os.listdir(s))
                stack.extend((os.path.join(s, n), os.path.join(d, n)) for n in reversed(names))
                os.chmod(d, stat.S_IMODE(st.st_mode))
            elif stat.S_ISREG(st.st_mode):
                fsutil.copy_regular(s, d, EXTRA_LIMIT)
            else:
                left.append(f"{s} ({fsutil.describe_mode(st.st_mode)})")
                continue
        except OSError as e:
            left.append(f"{s} ({os_reason(e)})")
            continue
        with contextlib.suppress(OSError):
            os.lchown(d, st.st_uid, st.st_gid)
    return left


def carry_over(work: Work, log: Log, new: str) -> None:
    """Make the rebuilt tree *new* the venv at its final place: the old venv's files that
    no package made copied in (said in the notes, and what could not be), every path it
    records rewritten from *new* to the destination (and, for a sibling, from the
    original's path, which what was carried over names), and the ``prompt`` key dropped
    when the old venv had none (it was given only so that it is not the sibling's name)."""
    extras = edit.extras(work.source, edit.owned_files(work.source))
    not_copied: list[str] = []
    for rel in extras:
        not_copied += copy_extra(os.path.join(work.source, rel), os.path.join(new, rel))
    if extras:
        log.note(f"carried over: {', '.join(extras[:6])}")
    if not_copied:
        log.note(f"not carried over: {', '.join(not_copied[:6])}")
    edit.rewrite_paths(new, work.in_root(new), work.in_root(work.dest))
    if work.dest != work.source:  # what was carried over names the original
        edit.rewrite_paths(new, work.in_root(work.source), work.in_root(work.dest))
    if not work.plan.prompt:
        edit.drop_cfg_key(new, "prompt")


def _root_run(argv: list[str], timeout: float) -> Completed:
    try:
        return command.run(argv, timeout=timeout, env={"PATH": "/usr/bin:/bin"}, cwd="/")
    except CommandError as e:
        raise RepairError(str(e)) from e


def match_root(tree: str, like: str) -> None:
    """The new venv's top directory *tree* gets the old one's (*like*) owner, mode and
    security label (``restorecon``, by its absolute path, relabels what is below)."""
    st = os.lstat(like)
    with contextlib.suppress(PermissionError):
        os.lchown(tree, st.st_uid, st.st_gid)
    os.chmod(tree, st.st_mode & 0o7777)
    with contextlib.suppress(OSError):
        label = os.getxattr(like, "security.selinux", follow_symlinks=False)
        os.setxattr(tree, "security.selinux", label, follow_symlinks=False)
        restorecon = programs.find("restorecon")  # /usr/sbin: run by its absolute path
        if restorecon is not None:
            _root_run([restorecon, "-R", "-F", tree], 600)
