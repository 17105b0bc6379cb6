"""Rollback to a backup, and the backups kept beside each venv (list, prune)."""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Sequence
from typing import Optional

from venvkeeper.errors import (
    VenvkeeperError,
)
from venvkeeper.model.plan import Strategy
from venvkeeper.model.repair import Backup, Outcome, RepairResult
from venvkeeper.repair.safety import Unsafe, actor_for
from venvkeeper.repair.transaction import (
    Busy,
    Hook,
    RepairError,
    backups,
    delete_backup,
    foreign_backups,
    locked,
    recover,
    transact,
)


def rollback(path: str, hook: Optional[Hook] = None) -> RepairResult:
    """Put the newest backup of *path* back in place, by the same transaction: the venv
    that was there becomes a backup in turn (a rollback can be rolled back)."""
    started = time.monotonic()
    path = os.path.realpath(os.path.abspath(path))

    def result(outcome: Outcome, msg: str, **kw: object) -> RepairResult:
        return RepairResult(
            path,
            Strategy.MANUAL,
            outcome,
            msg,
            seconds=time.monotonic() - started,
            **kw,  # type: ignore[arg-type]
        )

    try:
        actor = actor_for(path)
        with locked(path, actor):
            recovered = recover(path, actor)
            kept = backups(path, actor)
            if not kept:
                foreign = foreign_backups(path, actor)
                why = "no backup to roll back to"
                if foreign:
                    why += f" (not venvkeeper's, left alone: {', '.join(foreign[:3])})"
                return result(Outcome.FAILED, why, recovered=recovered)
            b = kept[0]
            if not os.path.lexists(path):
                with actor.beside():
                    os.rename(b.path, path)
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(b.path + ".json")
                return result(Outcome.REPAIRED, f"restored {b.path}", recovered=recovered)

            def check(new: str) -> None:
                if not os.path.isfile(os.path.join(new, "pyvenv.cfg")) and not os.path.isdir(
                    os.path.join(new, "bin")
                ):
                    raise RepairError(f"{new} does not look like a venv: not restored")

            backup = transact(
                path,
                "rollback",
                check,
                lambda new: None,
                hook=hook or (lambda s: None),
                new=b.path,
                actor=actor,
            )
            with actor.beside(), contextlib.suppress(FileNotFoundError):
                os.unlink(b.path + ".json")
            return result(
                Outcome.REPAIRED,
                f"restored the backup of {_when(b.created)}"
                f" ({b.reason}); the venv it replaced is kept at {backup}",
                backup=backup,
                recovered=recovered,
            )
    except Unsafe as e:
        return result(Outcome.REFUSED, str(e))
    except (VenvkeeperError, OSError) as e:
        return result(Outcome.FAILED, str(e))


def _when(t: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t))


def list_backups(path: str) -> list[Backup]:
    """The backups of *path* that venvkeeper made (as :func:`backups` accepts them, for
    whoever acts on that venv)."""
    path = os.path.realpath(os.path.abspath(path))
    return backups(path, actor_for(path))


def prune_backups(paths: Sequence[str], keep: int) -> list[tuple[str, list[str], Optional[str]]]:
    """Delete all but the *keep* newest backups of each venv in *paths* (a path may also
    be a directory holding venvs: every venv with backups directly in it). Returns
    (venv, deleted backups, why refused or None) triples."""
    venvs: dict[str, None] = {}
    for p in paths:
        p = os.path.realpath(os.path.abspath(p))
        venvs[p] = None
        with contextlib.suppress(OSError):
            for e in os.scandir(p):
                if e.name.startswith(".") and ".venvkeeper-backup-" in e.name:
                    name = e.name[1:].split(".venvkeeper-backup-")[0]
                    venvs[os.path.join(p, name)] = None
    out: list[tuple[str, list[str], Optional[str]]] = []
    for v in venvs:
        try:
            actor = actor_for(v)
        except Unsafe as e:
            out.append((v, [], str(e)))
            continue
        except OSError:
            continue
        kept = backups(v, actor)
        if not kept:
            continue
        gone: list[str] = []
        try:
            with locked(v, actor):
                recover(v, actor)
                for b in backups(v, actor)[keep:]:
                    delete_backup(b, actor)
                    gone.append(b.path)
        except Busy:
            continue
        except (Unsafe, RepairError) as e:
            out.append((v, gone, str(e)))
            continue
        out.append((v, gone, None))
    return out
