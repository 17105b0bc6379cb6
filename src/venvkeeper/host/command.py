"""The one subprocess wrapper: no shell, a timeout always, errors that carry the command."""

from __future__ import annotations

import contextlib
import functools
import os
import selectors
import signal
import subprocess
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Callable, Optional

from venvkeeper.errors import CommandError

#: Most a child may print on one stream before it is stopped.
OUTPUT_LIMIT = 1 << 20


@dataclass(frozen=True)
class Completed:
    """A finished command: its exit status and its (bounded) output."""

    argv: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str
    raw_stdout: bytes = b""  # with binary=True: stdout as it came (stdout is then "")


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
    output_limit: int = OUTPUT_LIMIT,
    cancel: Optional[threading.Event] = None,
    on_start: Optional[Callable[[int], None]] = None,
    die_with_parent: bool = False,
    binary: bool = False,
) -> Completed:
    """Run *argv* and capture its output.

    ``user``/``group`` drop privileges in the child (supplementary groups cleared) when set.
    The child leads a session of its own: on a timeout, or when it prints more than
    *output_limit* bytes on a stream, or when *cancel* is set, the whole process group is
    killed, grandchildren included. Raises :class:`CommandError` when the program cannot
    start, times out, floods its output, is cancelled, or (with *check*) exits non-zero.

    *on_start* is told the child's pid (= its process group) as soon as it exists. With
    *die_with_parent* the child gets SIGKILL when we die, even by SIGKILL (the kernel's
    parent-death signal, set after the change of user by util-linux ``setpriv``, where
    the system has it).

    With *binary* the output is kept as bytes in ``raw_stdout`` (large data, such as a
    decompressor's, is not decoded).
    """
    args = [str(a) for a in argv]
    spawn = args
    if die_with_parent and _setpriv():
        spawn = [_setpriv(), "--pdeathsig", "KILL", "--", *args]
    try:
        proc = subprocess.Popen(
            spawn,
            stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=dict(env) if env is not None else None,
            cwd=cwd,
            user=user,
            group=(group if group is not None else user) if user is not None else None,
            extra_groups=[] if user is not None else None,
            start_new_session=True,
        )
    except (OSError, ValueError, subprocess.SubprocessError) as e:
        raise CommandError(f"cannot run {args[0]}: {e}", args) from e
    with proc:  # closes the pipes whatever happens
        try:
            if on_start is not None:
                on_start(proc.pid)
            out, err, problem = _collect(proc, input, timeout, output_limit, cancel)
        finally:
            if proc.poll() is None:
                _kill_group(proc)
            proc.wait()
    if problem == "timeout":
        raise CommandError(f"{args[0]} did not finish within {timeout:g}s", args)
    if problem == "cancelled":
        raise CommandError(f"{args[0]} was stopped: interrupted", args)
    if problem == "flood":
        raise CommandError(f"{args[0]} printed more than {output_limit} bytes: stopped", args)
    stdout = "" if binary else out.decode("utf-8", "replace")
    stderr = err.decode("utf-8", "replace")
    done = Completed(tuple(args), proc.returncode, stdout, stderr, out if binary else b"")
    if check and proc.returncode != 0:
        tail = stderr.strip().splitlines()[-5:]
        raise CommandError(f"{args[0]} exited {proc.returncode}: {' / '.join(tail)}", args, stderr)
    return done


@functools.lru_cache(maxsize=1)
def _setpriv() -> str:
    """util-linux ``setpriv`` from the system's directories (checked by the trust rule:
    :mod:`venvkeeper.host.programs`) when it knows ``--pdeathsig`` (2.33+), else ''."""
    from venvkeeper.host import programs

    exe = programs.find("setpriv", dirs=programs.SYSTEM_DIRS)
    if not exe:
        return ""
    try:
        done = subprocess.run(
            [exe, "--help"], capture_output=True, timeout=10, env={"LANG": "C"}, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return ""
    return exe if b"--pdeathsig" in done.stdout else ""


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(OSError):
        os.killpg(proc.pid, signal.SIGKILL)


def _collect(
    proc: subprocess.Popen[bytes],
    input: Optional[str],
    timeout: float,
    limit: int,
    cancel: Optional[threading.Event] = None,
) -> tuple[bytes, bytes, Optional[str]]:
    """Feed *input*, read both pipes until they close, within *timeout* and *limit*."""
    deadline = time.monotonic() + timeout
    assert proc.stdout is not None and proc.stderr is not None
    buffers: dict[int, list[bytes]] = {proc.stdout.fileno(): [], proc.stderr.fileno(): []}
    sizes = dict.fromkeys(buffers, 0)
    if proc.stdin is not None:
        with contextlib.suppress(BrokenPipeError):
            proc.stdin.write((input or "").encode())
        with contextlib.suppress(BrokenPipeError):
            proc.stdin.close()
    with selectors.DefaultSelector() as sel:
        for fd in buffers:
            sel.register(fd, selectors.EVENT_READ)
        while sel.get_map():
            left = deadline - time.monotonic()
            if left <= 0:
                return b"", b"", "timeout"
            if cancel is not None and cancel.is_set():
                return b"", b"", "cancelled"
            for key, _ in sel.select(left if cancel is None else min(left, 0.2)):
                fd = key.fd
                chunk = os.read(fd, 65536)
                if not chunk:
                    sel.unregister(fd)
                    continue
                sizes[fd] += len(chunk)
                if sizes[fd] > limit:
                    return b"", b"", "flood"
                buffers[fd].append(chunk)
    left = deadline - time.monotonic()
    try:
        proc.wait(max(left, 0.001))
    except subprocess.TimeoutExpired:
        return b"", b"", "timeout"
    return (
        b"".join(buffers[proc.stdout.fileno()]),
        b"".join(buffers[proc.stderr.fileno()]),
        None,
    )
