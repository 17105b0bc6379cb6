"""One line of a consumer's file changed, as a transaction (``repair --fix-consumers``).

The file at the path is, at every instant, the original or the complete new one:

1. the lock beside it (``.NAME.venvkeeper-lock``, the repair transaction's own);
2. the file is read (a regular file, not through a link: the real path) and the line must
   still be exactly what was planned, else nothing is written;
3. a backup beside it (``.NAME.venvkeeper-backup-STAMP``: hidden, and of a name no
   consumer reads: cron and run-parts skip dotted names, systemd and Apache read only
   their own suffixes), written and synced first, with the original's owner and mode;
4. the new content goes to ``.NAME.venvkeeper-new-STAMP`` (owner, group, mode and the
   ``security.*`` attributes of the original), is synced, and renamed over the file;
5. the file is read again and must be what was written; else, and on any failure or
   interrupt after the rename, the backup's content is put back the same way.

The backup is kept: ``repair`` names it. Whose file it is and whether root may change it
is the caller's question (the trust rule).
"""

from __future__ import annotations

import contextlib
import os
import re
import stat
from typing import Optional

from venvkeeper.errors import VenvkeeperError
from venvkeeper.host import fsutil
from venvkeeper.model.consumers import LineEdit
from venvkeeper.repair.transaction import locked, sibling, stamp

#: Most read of a consumer's file (a unit, a config, a crontab).
LIMIT = 4 << 20


class EditError(VenvkeeperError):
    """The line could not be changed; the file is as it was."""


def _read(path: str) -> tuple[bytes, os.stat_result]:
    try:
        fd = fsutil.open_regular(path)
    except fsutil.NotRegularFile:
        raise EditError(f"{path} is not a regular file: not changed") from None
    try:
        st = os.fstat(fd)
        data, more = fsutil.read_fd(fd, LIMIT)
        if more:
            raise EditError(f"{path} is larger than {LIMIT >> 20} MiB: not changed")
        return data, st
    finally:
        os.close(fd)


def _write(path: str, data: bytes, like: os.stat_result, attrs: dict[str, bytes]) -> None:
    """*data* into the new file *path* (which must not exist), owned and moded as *like*."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        os.fchown(fd, like.st_uid, like.st_gid)
        os.fchmod(fd, stat.S_IMODE(like.st_mode))
        for name, value in attrs.items():
            with contextlib.suppress(OSError):
                os.setxattr(fd, name, value)
        while data:
            data = data[os.write(fd, data) :]
        os.fsync(fd)
    finally:
        os.close(fd)


def _security_attrs(path: str) -> dict[str, bytes]:
    """The SELinux label and the like, so the new file is labelled as the old one."""
    out: dict[str, bytes] = {}
    with contextlib.suppress(OSError):
        for name in os.listxattr(path, follow_symlinks=False):
            if name.startswith("security."):
                with contextlib.suppress(OSError):
                    out[name] = os.getxattr(path, name, follow_symlinks=False)
    return out


def split_lines(data: bytes) -> list[bytes]:
    return data.splitlines(keepends=True)


def text_of(line: bytes) -> str:
    """A line without its ending, as text (bytes that are not UTF-8 kept as escapes)."""
    return line.rstrip(b"\r\n").decode("utf-8", "surrogateescape")


def edit_line(edit: LineEdit) -> str:
    """Change line *edit.line* of *edit.path* (its real file, when the path is a link)
    from *edit.old* to *edit.new* (whole lines, without their endings). Returns the
    backup's path. Raises :class:`EditError` with the file untouched."""
    real = os.path.realpath(edit.path)
    try:
        with locked(real):
            return _edit(real, edit)
    except OSError as e:
        raise EditError(f"{real}: {fsutil.os_error_reason(e)}: not changed") from e


def _edit(real: str, edit: LineEdit) -> str:
    data, st = _read(real)
    lines = split_lines(data)
    i = edit.line - 1
    if not 0 <= i < len(lines) or text_of(lines[i]) != edit.old:
        raise EditError(f"{real}:{edit.line} changed since it was read: not changed")
    ending = lines[i][len(lines[i].rstrip(b"\r\n")) :]
    lines[i] = edit.new.encode("utf-8", "surrogateescape") + ending
    new = b"".join(lines)
    attrs = _security_attrs(real)
    when = stamp()
    backup = sibling(real, f"backup-{when}")
    tmp = sibling(real, f"new-{when}")
    _write(backup, data, st, attrs)
    renamed = False
    try:
        _write(tmp, new, st, attrs)
        os.replace(tmp, real)
        renamed = True
        fsutil.fsync_dir(os.path.dirname(real))
        if _read(real)[0] != new:
            raise EditError(f"{real} does not read back as written: put back")
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if renamed:
            _restore(real, backup, data, st, attrs)
        raise
    return backup


def _restore(
    real: str, backup: str, data: bytes, st: os.stat_result, attrs: dict[str, bytes]
) -> None:
    """The original content (*data*, which the backup holds too) back at *real*."""
    back = sibling(real, f"restore-{stamp()}")
    try:
        _write(back, data, st, attrs)
        os.replace(back, real)
        fsutil.fsync_dir(os.path.dirname(real))
    except OSError as e:
        with contextlib.suppress(OSError):
            os.unlink(back)
        raise EditError(
            f"{real} could not be put back ({fsutil.os_error_reason(e)}): the original is {backup}"
        ) from e


def plan_edit(
    path: str, line: int, old_minor: str, new_minor: str, venv: Optional[str] = None
) -> LineEdit:
    """The edit that turns the hard-coded ``lib/python{old_minor}`` of the directive at
    *line* of *path* (or of its continuation lines) into ``lib/python{new_minor}``. *venv*
    is the venv's path as the file names it: of two hard-codes on one line, the one under
    it is changed. Raises :class:`EditError` when there is none, or no telling which."""
    data, _ = _read(os.path.realpath(path))
    lines = split_lines(data)
    rx = re.compile(r"lib/python" + re.escape(old_minor) + r"(?![0-9])")
    i = line - 1
    while 0 <= i < len(lines):
        text = text_of(lines[i])
        spots = list(rx.finditer(text))
        if venv and len(spots) > 1:
            mine = f"{venv.rstrip('/')}/"
            spots = [m for m in spots if text[: m.start()].endswith(mine)] or spots
        if len(spots) == 1:
            m = spots[0]
            new = f"{text[: m.start()]}lib/python{new_minor}{text[m.end() :]}"
            return LineEdit(path, i + 1, text, new)
        if spots:
            raise EditError(
                f"{path}:{i + 1} names lib/python{old_minor} {len(spots)} times: change the"
                " right one by hand"
            )
        if not text.rstrip().endswith("\\"):
            break
        i += 1
    raise EditError(f"{path}:{line}: no lib/python{old_minor} found there: change it by hand")
