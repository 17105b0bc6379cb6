"""The copy builds, ``relink`` and ``rewrite-paths``: the venv copied beside itself as its
owner (``cp -a``: owners, modes, links, times, xattrs, hard links), then edited in the
copy (:mod:`.edit`): the interpreter links moved to the target, the recorded paths moved
from where the venv was made to where it is."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Callable

from venvkeeper.host import programs
from venvkeeper.host.command import Completed
from venvkeeper.model.plan import Strategy
from venvkeeper.repair import edit
from venvkeeper.repair.carry import match_root
from venvkeeper.repair.transaction import RepairError
from venvkeeper.repair.work import Work


def copy_tree(src: str, dst: str, run: Callable[[Sequence[str], float], Completed]) -> None:
    """``cp -a`` of *src*'s contents into the empty directory *dst*: owners, modes, links,
    timestamps, xattrs (SELinux labels) and hard links kept; reflinks where the
    filesystem has them. *run* runs it as the venv's owner."""
    cp = programs.require("cp")  # the system's, by its absolute path (never PATH)
    done = run([cp, "-a", "--reflink=auto", "--", src + "/.", dst], 1800)
    if done.returncode != 0:
        raise RepairError(f"copying {src} failed: {done.stderr.strip()[-300:]}")


def build_copy(work: Work, new: str) -> None:
    """The venv of *work* copied into *new* and edited as its plan says."""
    copy_tree(work.source, new, work.run)
    if work.plan.strategy is Strategy.RELINK:
        edit.relink(new, work.target, on_host=work.root is None)
    old = work.plan.old_location
    if old:
        edit.rewrite_paths(new, old, work.in_root(work.source))
    match_root(new, work.source)
