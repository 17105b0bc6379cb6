"""Edits of a venv tree that stay inside it: rewrite recorded paths, relink interpreters.

These run on a *copy* (the transaction's sibling), never on the venv in place. A file is
rewritten as a new file renamed over the old one, with the old one's mode and owner, so a
tree of hard links to the original cannot change the original.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterable
from typing import Optional

from venvkeeper.host import fsutil
from venvkeeper.model.plan import Target

#: Largest file a path rewrite will read (scripts and activate files are small).
MAX_EDIT = 1 << 20

_ACTIVATE = re.compile(r"^(activate(\..+)?|Activate\.ps1|activate_this\.py)$")


def _replace_file(path: str, data: bytes) -> None:
    st = os.lstat(path)
    tmp = f"{path}.venvkeeper-tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        while data:
            data = data[os.write(fd, data) :]
        os.fchmod(fd, st.st_mode & 0o7777)
        with contextlib.suppress(PermissionError):
            os.fchown(fd, st.st_uid, st.st_gid)
    finally:
        os.close(fd)
    os.utime(tmp, ns=(st.st_atime_ns, st.st_mtime_ns))
    os.replace(tmp, path)


def _pattern(old: str) -> re.Pattern[bytes]:
    # The old prefix as a whole path: followed by "/", a quote, whitespace or the end,
    # never by more name (/srv/app must not match /srv/app2).
    return re.compile(re.escape(os.fsencode(old.rstrip("/"))) + rb"(?=[/\"'\s:]|$)", re.M)


def _read(path: str) -> Optional[bytes]:
    """The whole of the regular file *path* (not a link, at most :data:`MAX_EDIT` bytes),
    or None: opened as :func:`fsutil.open_regular` does (the tree is the owner's: a FIFO
    swapped in never blocks)."""
    try:
        return fsutil.read_file(path, MAX_EDIT)
    except OSError:
        return None


def _read_cfg(cfg: str) -> Optional[str]:
    """``pyvenv.cfg``'s text; None when there is none. Anything else that stops reading
    it whole (a link, a FIFO, a huge file) is an error: rewriting it from nothing would
    lose its other keys."""
    try:
        return fsutil.read_file(cfg, MAX_EDIT).decode("utf-8", "surrogateescape")
    except FileNotFoundError:
        return None
    except OSError as e:
        from venvkeeper.errors import os_reason
        from venvkeeper.repair.transaction import RepairError

        raise RepairError(f"cannot edit {cfg}: {os_reason(e)}") from e


def _edit_head(data: bytes, pat: re.Pattern[bytes], new: bytes, lines: int) -> bytes:
    """Replace in the first *lines* lines only (a shebang, or the /bin/sh exec trick)."""
    parts = data.split(b"\n", lines)
    head = b"\n".join(parts[:lines])
    rest = parts[lines:]
    return b"\n".join([pat.sub(new, head), *rest]) if rest else pat.sub(new, head)


def rewrite_paths(tree: str, old: str, new: str) -> list[str]:
    """Replace the absolute path *old* by *new* where a venv records its own location:
    script shebangs (and the ``/bin/sh`` exec trick), activate scripts, ``pyvenv.cfg``,
    ``.pth`` and ``.egg-link`` files of the site directories. Returns the files changed
    (relative to *tree*)."""
    if old.rstrip("/") == new.rstrip("/"):
        return []
    pat = _pattern(old)
    repl = os.fsencode(new.rstrip("/")).replace(b"\\", b"\\\\")
    changed: list[str] = []

    def edit(rel: str, whole: bool) -> None:
        p = os.path.join(tree, rel)
        data = _read(p)
        if data is None or b"\0" in data[:8192]:
            return
        out = pat.sub(repl, data) if whole else _edit_head(data, pat, repl, 3)
        if out != data:
            _replace_file(p, out)
            changed.append(rel)

    edit("pyvenv.cfg", True)
    for b in _names(os.path.join(tree, "bin")):
        if _ACTIVATE.match(b):
            edit(f"bin/{b}", True)
        else:
            edit(f"bin/{b}", False)
    for site in site_dirs(tree):
        rel = os.path.relpath(site, tree)
        for n in _names(site):
            if n.endswith((".pth", ".egg-link")):
                edit(f"{rel}/{n}", True)
    return changed


def _names(d: str) -> list[str]:
    try:
        return sorted(os.listdir(d))
    except OSError:
        return []


def site_dirs(tree: str) -> list[str]:
    out = []
    for lib in ("lib", "lib64"):
        base = os.path.join(tree, lib)
        if os.path.islink(base):
            continue
        for n in _names(base):
            if n.startswith("python"):
                sp = os.path.join(base, n, "site-packages")
                if os.path.isdir(sp):
                    out.append(sp)
    return out


_INTERP = re.compile(r"^python(\d(\.\d+t?)?)?$")
#: CPython 3.14's venv also names its interpreter ``𝜋thon``: kept by a relink (always
#: within the minor), never carried into a venv of another minor (see :data:`_CREATOR_FILES`).
PI_THON = "\U0001d70bthon"


def set_cfg(text: str, values: dict[str, Optional[str]]) -> str:
    """``pyvenv.cfg`` with *values* set (None: removed), other lines kept as they are."""
    out: list[str] = []
    seen: set[str] = set()
    for line in text.splitlines():
        key = line.split("=", 1)[0].strip().lower() if "=" in line else None
        if key is not None and key in values:
            seen.add(key)
            if values[key] is not None:
                out.append(f"{key} = {values[key]}")
            continue
        out.append(line)
    for k, v in values.items():
        if k not in seen and v is not None:
            out.append(f"{k} = {v}")
    return "\n".join(out) + "\n"


def drop_cfg_key(tree: str, key: str) -> None:
    cfg = os.path.join(tree, "pyvenv.cfg")
    text = _read_cfg(cfg)
    if text is None:
        return
    new_text = set_cfg(text, {key: None})
    if new_text != text:
        _replace_file(cfg, new_text.encode("utf-8", "surrogateescape"))


def relink(tree: str, target: Target, *, on_host: bool = True) -> list[str]:
    """Point the venv's interpreter names at *target* (same minor): ``bin/python`` links to
    the target's stable name, ``python3`` and ``pythonX.Y`` to ``python``; ``home``,
    ``executable`` and ``version`` in ``pyvenv.cfg`` follow. A copied interpreter becomes a
    link (the default policy: links receive the distro's security fixes). *on_host*
    False: *target* names a file of another OS root (the venv's), taken as it is."""
    bindir = os.path.join(tree, "bin")
    minor = target.version
    names = {n for n in _names(bindir) if _INTERP.match(n)}
    names |= {"python", "python3", f"python{minor}"}
    if minor.rstrip("t") == "3.14" and os.path.lexists(os.path.join(bindir, PI_THON)):
        names.add(PI_THON)  # a copy of the old binary (--copies) becomes a link too
    changed: list[str] = []
    for n in sorted(names):
        p = os.path.join(bindir, n)
        m = _INTERP.match(n)
        if m and m.group(2) and m.group(1) != minor:
            continue  # another minor's name: not ours to touch
        dest = target.path if n == "python" else "python"
        if os.path.islink(p) and os.readlink(p) == dest:
            continue
        tmp = p + ".venvkeeper-tmp"
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        os.symlink(dest, tmp)
        with contextlib.suppress(OSError):
            st = os.lstat(bindir)
            os.lchown(tmp, st.st_uid, st.st_gid)
        os.replace(tmp, p)
        changed.append(f"bin/{n}")
    cfg = os.path.join(tree, "pyvenv.cfg")
    text = _read_cfg(cfg) or ""
    values: dict[str, Optional[str]] = {"home": os.path.dirname(target.path)}
    lower = text.lower()
    if "\nexecutable" in "\n" + lower:
        values["executable"] = os.path.realpath(target.executable) if on_host else target.executable
    if target.patch_version:
        key = "version_info" if "\nversion_info" in "\n" + lower else "version"
        values[key] = target.patch_version
    new_text = set_cfg(text, values)
    if new_text != text:
        _replace_file(cfg, new_text.encode("utf-8", "surrogateescape"))
        changed.append("pyvenv.cfg")
    return changed


def owned_files(tree: str) -> set[str]:
    """Files of the venv that some installed distribution's RECORD lists (relative to the
    venv root, normalised)."""
    owned: set[str] = set()
    for site in site_dirs(tree):
        for n in _names(site):
            if not n.endswith(".dist-info"):
                continue
            try:
                data, _ = fsutil.read_bytes(os.path.join(site, n, "RECORD"), 1 << 24)
            except OSError:
                continue
            text = data.decode("utf-8", "replace")
            for line in text.splitlines():
                rel = line.rsplit(",", 2)[0].strip('"') if line.count(",") >= 2 else line
                if not rel:
                    continue
                full = rel if os.path.isabs(rel) else os.path.join(site, rel)
                owned.add(os.path.relpath(os.path.normpath(full), tree))
    return owned


#: Files a venv creator writes itself (never carried over from the old venv).
_CREATOR_FILES = re.compile(
    r"^(python.*|\U0001d70bthon|activate.*|Activate\.ps1|deactivate.*|pip(\d(\.\d+)?)?|pydoc.*)$"
)
_ROOT_OWN = frozenset(
    {"bin", "lib", "lib64", "include", "pyvenv.cfg", "share", "etc", ".lock", ".gitignore"}
    | {"CACHEDIR.TAG"}
)


def extras(tree: str, owned: Iterable[str]) -> list[str]:
    """What the old venv holds that no package and no venv creator made: scripts and files
    in ``bin/`` and files or directories at the root (notes, ``.env``...). Relative paths."""
    own = set(owned)
    out: list[str] = []
    for n in _names(os.path.join(tree, "bin")):
        rel = f"bin/{n}"
        if rel not in own and not _CREATOR_FILES.match(n):
            out.append(rel)
    for n in _names(tree):
        if n not in _ROOT_OWN and not n.startswith(".venvkeeper"):
            out.append(n)
    return out
