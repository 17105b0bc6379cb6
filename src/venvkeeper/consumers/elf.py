"""The Python minor an embedding module (``mod_wsgi.so``, uWSGI's ``python3_plugin.so``, a
pip-built ``uwsgi``) was built for, without loading it.

First from names: ``mod_wsgi.so-3.11``, ``python311_plugin.so``, the link chain of
``/etc/alternatives`` (followed hop by hop inside the root); else from the ELF file's
``DT_NEEDED`` entries (``libpython3.11.so.1.0``), read by a small bounded reader of the
dynamic section: the ELF header, the program headers, the ``PT_DYNAMIC`` segment and the
string table it points to. Nothing else of the file is read and nothing is mapped.
"""

from __future__ import annotations

import os
import re
import stat
import struct
from typing import Optional

from venvkeeper.consumers.rootfs import MAX_HOPS, RootFS

_NAME_MINOR = (
    re.compile(r"mod_wsgi\.so-(\d+\.\d+)"),
    re.compile(r"python(\d)(\d+)_plugin\.so$"),
    re.compile(r"mod_wsgi-py(\d)(\d+)"),
    re.compile(r"libpython(\d+\.\d+)"),
)
_LIBPYTHON = re.compile(r"^libpython(\d+\.\d+)t?(?:d|m|dm)?\.so")
#: Bounds: a program header table, a dynamic segment or a string table larger than these
#: is not an honest shared object.
MAX_PHDRS = 256
MAX_DYNAMIC = 64 << 10
MAX_STRTAB = 4 << 20

PT_LOAD, PT_DYNAMIC = 1, 2
DT_NULL, DT_NEEDED, DT_STRTAB, DT_STRSZ = 0, 1, 5, 10


def minor_from_name(name: str) -> Optional[str]:
    for rx in _NAME_MINOR:
        m = rx.search(name)
        if m:
            return m.group(1) if m.lastindex == 1 else f"{m.group(1)}.{m.group(2)}"
    return None


def needed(path: str) -> list[str]:
    """The ``DT_NEEDED`` names of the ELF file *path* (a host path); [] when it is not an
    ELF shared object or executable, or cannot be read. Never blocks on a FIFO."""
    flags = os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except (OSError, ValueError):
        return []
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            return []
        return _needed(fd, st.st_size)
    except (OSError, struct.error, ValueError):
        return []
    finally:
        os.close(fd)


def _needed(fd: int, size: int) -> list[str]:
    ident = os.pread(fd, 64, 0)
    if len(ident) < 52 or ident[:4] != b"\x7fELF":
        return []
    is64 = ident[4] == 2
    end = "<" if ident[5] == 1 else ">"
    if is64:
        phoff, phentsize, phnum = (
            struct.unpack_from(end + "Q", ident, 32)[0],
            struct.unpack_from(end + "H", ident, 54)[0],
            struct.unpack_from(end + "H", ident, 56)[0],
        )
    else:
        phoff, phentsize, phnum = (
            struct.unpack_from(end + "I", ident, 28)[0],
            struct.unpack_from(end + "H", ident, 42)[0],
            struct.unpack_from(end + "H", ident, 44)[0],
        )
    if phnum > MAX_PHDRS or phentsize < (56 if is64 else 32) or phoff + phnum * phentsize > size:
        return []
    table = os.pread(fd, phnum * phentsize, phoff)
    loads: list[tuple[int, int, int]] = []  # (vaddr, offset, filesz)
    dyn: Optional[tuple[int, int]] = None
    for i in range(phnum):
        base = i * phentsize
        if is64:
            p_type, _flags, p_offset, p_vaddr, _paddr, p_filesz = struct.unpack_from(
                end + "IIQQQQ", table, base
            )
        else:
            p_type, p_offset, p_vaddr, _paddr, p_filesz = struct.unpack_from(
                end + "IIIII", table, base
            )
        if p_type == PT_LOAD:
            loads.append((p_vaddr, p_offset, p_filesz))
        elif p_type == PT_DYNAMIC:
            dyn = (p_offset, min(p_filesz, MAX_DYNAMIC))
    if dyn is None or dyn[0] + dyn[1] > size:
        return []
    data = os.pread(fd, dyn[1], dyn[0])
    entsize = 16 if is64 else 8
    fmt = end + ("qQ" if is64 else "iI")
    needs: list[int] = []
    strtab = strsz = None
    for off in range(0, len(data) - entsize + 1, entsize):
        tag, val = struct.unpack_from(fmt, data, off)
        if tag == DT_NULL:
            break
        if tag == DT_NEEDED:
            needs.append(val)
        elif tag == DT_STRTAB:
            strtab = val
        elif tag == DT_STRSZ:
            strsz = val
    if strtab is None or not needs:
        return []
    file_off = None
    for vaddr, offset, filesz in loads:
        if vaddr <= strtab < vaddr + filesz:
            file_off = offset + (strtab - vaddr)
            break
    if file_off is None:
        file_off = strtab  # prelinked at 0, or a file offset already
    length = min(strsz or MAX_STRTAB, MAX_STRTAB, max(0, size - file_off))
    strs = os.pread(fd, length, file_off)
    out = []
    for n in needs:
        if n < len(strs):
            out.append(
                strs[n : strs.find(b"\0", n) if b"\0" in strs[n:] else None].decode(
                    "utf-8", "replace"
                )
            )
    return out


def minor_from_elf(path: str) -> Optional[str]:
    for name in needed(path):
        m = _LIBPYTHON.match(name)
        if m:
            return m.group(1)
    return None


def embedded_minor(fs: RootFS, path: str) -> tuple[Optional[str], Optional[str]]:
    """(minor, the file it was read from) of the module *path* (inside the root): the
    names along its link chain first, then the file's ``DT_NEEDED``."""
    cur = path
    for _ in range(MAX_HOPS):
        minor = minor_from_name(os.path.basename(cur))
        if minor:
            return minor, fs.host(cur)
        target = fs.readlink(cur)
        if target is None:
            break
        cur = os.path.normpath(
            target if target.startswith("/") else os.path.join(os.path.dirname(cur), target)
        )
    real = fs.real(cur)
    if real is None or not fs.exists(cur):
        return None, None
    return minor_from_elf(real), fs.host(cur)
