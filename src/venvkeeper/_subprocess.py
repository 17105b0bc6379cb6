"""The one subprocess wrapper: no shell, a timeout always, errors that carry the command."""

from __future__ import annotations

import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Optional

from venvkeeper.errors import CommandError


@dataclass(frozen=True)
class Completed:
    argv: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str


def run(
    argv: Sequence[str],
    *,
    timeout: float,
    env: Optional[Mapping[str, str]] = None,
    cwd: Optional[str] = None,
    user: Optional[int] = None,
    group: Optional[int] = None,
    check: bool = False,
    input: Optional[str] = None,
) -> Completed:
    """Run *argv* and capture its output.

    ``user``/``group`` drop privileges in the child (supplementary groups cleared) when set.
    Raises :class:`CommandError` when the program cannot start, times out, or (with *check*)
    exits non-zero.
    """
    args = [str(a) for a in argv]
    try:
        proc = subprocess.run(
            args,
            capture_output=True,
            text=True,
            errors="replace",
            timeout=timeout,
            env=dict(env) if env is not None else None,
            cwd=cwd,
            input=input,
            stdin=None if input is not None else subprocess.DEVNULL,
            check=False,
            user=user,
            group=(group if group is not None else user) if user is not None else None,
            extra_groups=[] if user is not None else None,
        )
    except subprocess.TimeoutExpired as e:
        raise CommandError(f"{args[0]} did not finish within {timeout:g}s", args) from e
    except (OSError, ValueError) as e:
        raise CommandError(f"cannot run {args[0]}: {e}", args) from e
    done = Completed(tuple(args), proc.returncode, proc.stdout, proc.stderr)
    if check and proc.returncode != 0:
        tail = proc.stderr.strip().splitlines()[-5:]
        raise CommandError(
            f"{args[0]} exited {proc.returncode}: {' / '.join(tail)}", args, proc.stderr
        )
    return done
