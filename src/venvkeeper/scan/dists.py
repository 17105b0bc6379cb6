"""A venv's site directories and installed distributions, read statically: dist-info and
egg-info headers, RECORD, ``direct_url.json``, ``top_level.txt``, ``.pth`` files.
"""

from __future__ import annotations

import os
import re
import stat
from typing import NamedTuple, Optional

from venvkeeper.host import fsutil
from venvkeeper.host.hostfs import REAL, HostFS
from venvkeeper.model.venv import (
    DirectUrlKind,
    Distribution,
    Extension,
    SiteDir,
)
from venvkeeper.textutil import canonical_name, decode

METADATA_LIMIT = 8 << 10  # Name and Version open the header; descriptions follow it


SMALL_LIMIT = 64 << 10


RECORD_LIMIT = 4 << 20


MAX_DISTS = 20000


PY_DIR = re.compile(r"python(\d+\.\d+t?)$")


_EXT_TAG = re.compile(r"\.(cpython-(\d)(\d+)(t?)-[^.]+|abi3)\.so$")


_RECORD_TOP = re.compile(r'^"?([A-Za-z_][A-Za-z0-9_]*)(?:/[^,\n]|\.py"?,|\.[^,/\n]*\.so"?,)', re.M)


def _record_paths(text: str, suffix: str) -> list[str]:
    """Paths in a RECORD that end with *suffix*: found with ``str.find`` (C speed), not a
    regular expression that would try every line, since most RECORDs hold a few or none."""
    out: list[str] = []
    for needle in (suffix + ",", suffix + '",'):
        i = text.find(needle)
        while i >= 0:
            start = text.rfind("\n", 0, i) + 1
            path = text[start : i + len(suffix)]
            if path.startswith('"'):
                path = path[1:]
            if (path and "," not in path) or needle.endswith('",'):
                out.append(path)
            i = text.find(needle, i + len(needle))
    return out


def _parse_record(text: str, top_level: bool = True) -> tuple[list[str], list[str], list[str]]:
    """Extension files, top-level ``.pth`` files and (when asked) top-level importable names
    listed in a RECORD. This runs for every distribution of every venv: the hot spot."""
    exts = _record_paths(text, ".so")
    pths = [p for p in _record_paths(text, ".pth") if "/" not in p]
    top: list[str] = []
    if top_level:
        top = [t for t in dict.fromkeys(_RECORD_TOP.findall(text)) if not t.startswith("__")]
    return exts, pths, top


def _extension(path: str) -> Extension:
    m = _EXT_TAG.search(path)
    if not m:
        return Extension(path, None, None)
    if m.group(1) == "abi3":
        return Extension(path, "abi3", None)
    return Extension(path, m.group(1), f"{m.group(2)}.{m.group(3)}{m.group(4)}")


_HEADER_FIELD = re.compile(
    r"^(name|version|requires-python)[ \t]*:[ \t]*(.*?)[ \t\r]*$", re.M | re.I
)


def _header_fields(text: str) -> dict[str, str]:
    """Name, Version and Requires-Python from a METADATA/PKG-INFO header (the part before
    the first blank line: the long description follows it). The first of each wins."""
    wanted = {"name": "", "version": "", "requires-python": ""}
    end = text.find("\n\n")
    if end < 0 and "\r" in text:
        end = text.find("\r\n\r\n")
    header = text if end < 0 else text[:end]
    for key, value in _HEADER_FIELD.findall(header):
        k = key.lower()
        if not wanted[k]:
            wanted[k] = value
    return wanted


#: The most direct_url.json may weigh, and nest (PEP 610 nests three levels).
DIRECT_URL_LIMIT = SMALL_LIMIT


DIRECT_URL_DEPTH = 16


class _DirectUrl(NamedTuple):
    """What a PEP 610 ``direct_url.json`` says; *problem* tells why it says nothing."""

    kind: DirectUrlKind
    url: Optional[str] = None
    vcs: Optional[str] = None
    commit: Optional[str] = None
    local: Optional[str] = None
    problem: Optional[str] = None


def _direct_url(data: bytes | str, truncated: bool = False) -> _DirectUrl:
    """(kind, url, vcs, commit, local path, problem) from a PEP 610 ``direct_url.json``.

    Never raises: a file too large, too deep, not UTF-8 or not JSON is
    :attr:`DirectUrlKind.INVALID` with the reason, and costs only this fact."""
    if truncated:
        return _DirectUrl(DirectUrlKind.INVALID, problem=f"is larger than {DIRECT_URL_LIMIT} bytes")
    try:
        doc = fsutil.load_json(data, limit_bytes=DIRECT_URL_LIMIT, max_depth=DIRECT_URL_DEPTH)
    except fsutil.JSONError as e:
        return _DirectUrl(DirectUrlKind.INVALID, problem=f"is unreadable: {e}")
    if not isinstance(doc, dict) or not isinstance(doc.get("url"), str):
        return _DirectUrl(DirectUrlKind.INVALID, problem="is not valid PEP 610 JSON")
    url: str = doc["url"]
    local: Optional[str] = None
    if url.startswith("file:"):
        from urllib.parse import unquote, urlsplit

        local = unquote(urlsplit(url).path)
    vcs_info = doc.get("vcs_info")
    if isinstance(vcs_info, dict):
        vcs = vcs_info.get("vcs")
        commit = vcs_info.get("commit_id")
        return _DirectUrl(
            DirectUrlKind.VCS,
            url,
            vcs if isinstance(vcs, str) else None,
            commit if isinstance(commit, str) else None,
        )
    dir_info = doc.get("dir_info")
    if isinstance(dir_info, dict):
        kind = (
            DirectUrlKind.EDITABLE if dir_info.get("editable") is True else DirectUrlKind.DIRECTORY
        )
        return _DirectUrl(kind, url, local=local)
    if isinstance(doc.get("archive_info"), dict):
        return _DirectUrl(DirectUrlKind.ARCHIVE, url, local=local)
    return _DirectUrl(DirectUrlKind.INVALID, url, local=local, problem="is not valid PEP 610 JSON")


#: A version that a distro's packaging wrote (``1.2-3+deb11u1``, ``2.0+ubuntu0.20.04.1``,
#: ``1.1build1``): no package index serves it.
_DISTRO_VERSION = re.compile(r"[+~](?:deb\d|ubuntu)|\dbuild\d+$|[+~]dfsg", re.I)


def placeholder_reason(
    name: str, version: str, installer: Optional[str], has_record: bool
) -> Optional[str]:
    """Why no package index can provide the distribution *name* *version*, on the evidence
    of its metadata (None: an index may have it).

    - ``pkg_resources 0.0.0``: Debian's and Ubuntu's pip wheel (``python-pip-whl``, up to
      bullseye and focal) carried pkg_resources as a wheel of its own, which their
      ``python3 -m venv`` installed into every venv: the ``pkg-resources==0.0.0`` line of
      ``pip freeze``. No index has it; setuptools provides the module.
    - version ``0.0.0`` with no RECORD and no INSTALLER: nothing installed it through an
      installer, and no release is numbered 0.0.0.
    - a distro build's version (``+deb11u1``, ``ubuntu``, ``build1``, ``+dfsg``) that no
      installer recorded: the distro's packaging made it.
    """
    key = canonical_name(name)
    if key == "pkg-resources" and version == "0.0.0":
        return (
            "the placeholder that Debian's and Ubuntu's pip wheel put into every venv their"
            " python3 -m venv made (pkg_resources split out of setuptools): no index has it,"
            " setuptools provides the module"
        )
    if installer is None and not has_record:
        if version == "0.0.0":
            return "version 0.0.0 and no installer's record: a placeholder no index has"
        if _DISTRO_VERSION.search(version):
            return (
                f"version {version} is a distro build's, recorded by no installer: no index has it"
            )
    return None


def _read_dist(
    site: str, entry: str, want_top: bool, fs: Optional[HostFS] = REAL
) -> tuple[Distribution, Optional[list[str]]]:
    """One distribution, and the top-level ``.pth`` files its RECORD says it installed
    (None when the RECORD was not read). Whether an editable or local source exists is
    asked of *fs* (None: not asked, left for :func:`venvkeeper.scan.inspect.complete`).

    The dist-info directory is listed once; then only the files that exist and are regular
    are opened (no probing of absent files, no ``stat`` per file)."""
    d = f"{site}/{entry}"
    egg = entry.endswith(".egg-info")
    problems: list[str] = []
    try:
        with os.scandir(d) as it:
            listing = {e.name: e for e in it}
    except OSError as e:
        listing = {}
        problems.append(f"{entry} unreadable: {e.strerror}")

    def read(name: str, limit: int) -> Optional[str]:
        """The text of a listed file; None when absent; a problem noted when unreadable."""
        e = listing.get(name)
        if e is None:
            return None
        try:
            return decode(fsutil.read_listed(e, limit)[0])
        except OSError as err:
            problems.append(f"{name} unreadable: {err.strerror}")
            return None

    meta_name = "PKG-INFO" if egg else "METADATA"
    fields = {"name": "", "version": "", "requires-python": ""}
    meta = read(meta_name, METADATA_LIMIT)
    if meta is not None:
        fields = _header_fields(meta)
    elif meta_name not in listing:
        problems.append(f"no {meta_name}")
    stem = entry.rsplit(".", 1)[0]
    fallback_name, _, fallback_version = stem.partition("-")
    name = fields["name"] or fallback_name
    version = fields["version"] or fallback_version.split("-")[0]
    if not fields["name"] or not fields["version"]:
        problems.append("metadata lacks Name or Version")
    installer_text = read("INSTALLER", 256)
    installer = (installer_text.strip() or None) if installer_text is not None else None
    requested = "REQUESTED" in listing
    du_kind = du_url = vcs = commit = local = None
    editable_exists: Optional[bool] = None
    du_entry = listing.get("direct_url.json")
    du: Optional[_DirectUrl] = None
    if du_entry is not None:
        try:
            du = _direct_url(*fsutil.read_listed(du_entry, DIRECT_URL_LIMIT))
        except OSError as err:
            problems.append(f"direct_url.json unreadable: {err.strerror}")
    if du is not None:
        du_kind, du_url, vcs, commit, local = du.kind, du.url, du.vcs, du.commit, du.local
        if du.problem:
            problems.append(f"direct_url.json {du.problem}")
        if du_kind in (DirectUrlKind.EDITABLE, DirectUrlKind.DIRECTORY) and local and fs:
            editable_exists = fs.dir_state(local)  # outside the venv: through the seam
    exts: list[Extension] = []
    pths: list[str] = []
    record_top: list[str] = []
    record_read = False
    wheel = read("WHEEL", SMALL_LIMIT) if not egg else None
    # A purelib wheel holds no compiled code, and RECORDs can be huge (botocore's lists
    # thousands of files): read it only for platlib wheels, or when --deep needs names.
    pure = wheel is not None and "root-is-purelib: true" in wheel.lower()
    if not egg and (not pure or want_top):
        rec = read("RECORD", RECORD_LIMIT)
        if rec is not None:
            record_read = True
            ext_paths, pths, record_top = _parse_record(rec, want_top)
            exts = [_extension(p) for p in ext_paths]
        elif "RECORD" not in listing:
            problems.append("no RECORD")
    wheel_tags: tuple[str, ...] = ()
    if wheel and any(x.abi_tag is None for x in exts):
        wheel_tags = tuple(
            ln.split(":", 1)[1].strip()
            for ln in wheel.splitlines()
            if ln.lower().startswith("tag:")
        )
    top = read("top_level.txt", SMALL_LIMIT) if want_top else None
    if top:
        top_level = tuple(t.strip() for t in top.splitlines() if t.strip().isidentifier())
    else:
        top_level = tuple(record_top)
    dist = Distribution(
        name=name,
        version=version,
        site_dir=site,
        dist_info=entry,
        installer=installer,
        requested=requested,
        requires_python=fields["requires-python"] or None,
        direct_url_kind=du_kind,
        direct_url=du_url,
        vcs=vcs,
        commit_id=commit,
        editable_path=local
        if du_kind in (DirectUrlKind.EDITABLE, DirectUrlKind.DIRECTORY)
        else None,
        editable_path_exists=editable_exists,
        extensions=tuple(exts),
        wheel_tags=wheel_tags,
        top_level=top_level,
        problems=tuple(problems),
        placeholder=placeholder_reason(name, version, installer, "RECORD" in listing),
    )
    return dist, (pths if record_read else None)


MAX_PTH_DIRS = 64


def _pth_dirs(text: str) -> list[str]:
    """The absolute directories a ``.pth`` file names, one a line, as ``site`` reads it
    (comments and ``import`` lines are not directories; relative ones are inside the venv)."""
    out: list[str] = []
    for ln in text.splitlines():
        ln = ln.rstrip()
        if ln.startswith("/") and "\0" not in ln and len(out) < MAX_PTH_DIRS:
            out.append(os.path.normpath(ln))
    return out


def _record_lists(site: str, dist_info: str, name: str) -> bool:
    """Whether the RECORD of *dist_info* lists the top-level file *name*."""
    try:
        rec, _ = fsutil.read_text(f"{site}/{dist_info}/RECORD", RECORD_LIMIT)
    except OSError:
        return False
    return name in _parse_record(rec, False)[1]


_KNOWN_PTH = ("_virtualenv.pth", "distutils-precedence.pth")


def _egg_info_of(target: str, stem: str, fs: HostFS) -> Optional[str]:
    """The ``.egg-info`` directory in *target* that the egg-link *stem* names: setuptools
    names both after the project (``my_proj.egg-link``, ``my_proj.egg-info``); else the one
    whose name is the same project spelt otherwise (``My-Proj.egg-info``)."""
    exact = f"{target.rstrip('/')}/{stem}.egg-info"
    if fs.dir_state(exact):
        return exact
    want = canonical_name(stem)
    for n in fs.listdir(target)[:MAX_DISTS]:
        if not n.endswith(".egg-info"):
            continue
        path = f"{target.rstrip('/')}/{n}"
        if canonical_name(n[: -len(".egg-info")].split("-")[0]) == want and fs.dir_state(path):
            return path
    return None


def read_egg_link(
    site: str, name: str, want_top: bool, fs: Optional[HostFS] = REAL
) -> tuple[tuple[str, str, bool], Distribution]:
    """A legacy editable install (``setup.py develop``, or ``pip install -e`` of a setup.py
    project with pip before 21.3): ``NAME.egg-link`` in the site directory names the
    directory holding the project's ``.egg-info`` (first line) and the way back to the
    project's root (second line, ``.`` or ``../`` for a ``src/`` layout); an
    ``easy-install.pth`` line puts it on ``sys.path``. The distribution is read from that
    ``.egg-info``, outside the venv: through *fs*, the host seam.

    Returns the ``(egg-link, target, target exists)`` triple and the distribution. With no
    *fs*, nothing outside the venv is read: the distribution is a placeholder named after
    the egg-link (no version, its source's existence unknown) that
    :func:`venvkeeper.scan.inspect.complete` reads again through the seam."""
    head = fsutil.read_head(f"{site}/{name}", 4096)
    lines = head.decode("utf-8", "surrogateescape").splitlines() if head else []
    target = lines[0].strip() if lines else ""
    back = lines[1].strip() if len(lines) > 1 else "."
    stem = name[: -len(".egg-link")]
    problems: list[str] = []
    exists: Optional[bool] = False
    root: Optional[str] = None
    egg_info: Optional[str] = None
    fields = {"name": "", "version": "", "requires-python": ""}
    top_level: tuple[str, ...] = ()
    if not target.startswith("/"):
        problems.append(f"{name} names no absolute directory")
    else:
        target = os.path.normpath(target)
        root = os.path.normpath(os.path.join(target, back or "."))
    if fs is not None and root is not None:
        exists = fs.dir_state(target)
        egg_info = _egg_info_of(target, stem, fs) if exists else None
        if egg_info is not None:
            meta = fs.read_head(f"{egg_info}/PKG-INFO", METADATA_LIMIT)
            if meta:
                fields = _header_fields(decode(meta))
            if want_top:
                top = fs.read_head(f"{egg_info}/top_level.txt", SMALL_LIMIT)
                if top:
                    top_level = tuple(
                        t.strip() for t in decode(top).splitlines() if t.strip().isidentifier()
                    )
        if exists and (not fields["name"] or not fields["version"]):
            problems.append("metadata lacks Name or Version")
    root_exists: Optional[bool] = None
    if fs is not None:
        root_exists = fs.dir_state(root) if root is not None and root != target else exists
    dist = Distribution(
        name=fields["name"] or stem,
        version=fields["version"],
        site_dir=site,
        dist_info=name,
        requires_python=fields["requires-python"] or None,
        direct_url_kind=DirectUrlKind.EDITABLE,
        editable_path=root,
        editable_path_exists=root_exists,
        top_level=top_level,
        problems=tuple(problems),
        egg_info=egg_info,
    )
    return (name, target, exists is not False), dist


def _read_site_dir(
    site: str,
    version: Optional[str],
    errors: list[str],
    top_level: bool,
    fs: Optional[HostFS] = REAL,
) -> SiteDir:
    try:
        with os.scandir(site) as it:
            entries = [(e.name, e) for e in it]
    except OSError as e:
        errors.append(f"{site}: {e.strerror or e}")
        return SiteDir(site, version, ())
    dists: list[Distribution] = []
    owned_pth: set[str] = set()
    unread: list[str] = []  # dist-infos whose RECORD was not needed so far
    pth_files: list[str] = []
    egg_links: list[tuple[str, str, bool]] = []
    for name, _e in entries:
        if name.endswith((".dist-info", ".egg-info")) and len(dists) < MAX_DISTS:
            try:
                if not _e.is_dir():
                    continue
            except OSError:
                continue
            dist, pths = _read_dist(site, name, top_level, fs)
            dists.append(dist)
            if pths is None:
                unread.append(dist.dist_info)
            else:
                owned_pth.update(pths)
        elif name.endswith(".pth"):
            pth_files.append(name)
        elif name.endswith(".egg-link"):
            link, dist = read_egg_link(site, name, top_level, fs)
            egg_links.append(link)
            if len(dists) < MAX_DISTS:
                dists.append(dist)
    # .pth files owned by a distribution (listed in its RECORD) are accounted for.
    pth_imports: list[str] = []
    pth_paths: list[tuple[str, str, bool]] = []
    for name in pth_files:
        if name in owned_pth or name in _KNOWN_PTH:
            continue
        try:
            text, _ = fsutil.read_text(f"{site}/{name}", SMALL_LIMIT)
        except OSError:
            continue
        lines = [ln for ln in text.splitlines() if ln.startswith(("import ", "import\t"))]
        # Absolute directories a hand-made .pth puts on sys.path (easy-install.pth's are the
        # egg-links' own): outside the venv, so asked of the host seam.
        dirs = [] if name == "easy-install.pth" else _pth_dirs(text)
        if (lines or dirs) and any(_record_lists(site, d, name) for d in unread):
            continue
        pth_imports += [f"{name}: {ln[:120]}" for ln in lines]
        pth_paths += [(name, d, fs is not None and fs.path_state(d) is not False) for d in dirs]
    dists.sort(key=lambda x: canonical_name(x.name))
    return SiteDir(
        path=site,
        python_version=version,
        distributions=tuple(dists),
        pth_imports=tuple(pth_imports),
        egg_links=tuple(egg_links),
        pth_paths=tuple(pth_paths),
        writable_by_others=writable_by_others(site),
    )


def writable_by_others(path: str, st: Optional[os.stat_result] = None) -> bool:
    """World-writable (without sticky bit), or group-writable by a non-root group while
    owned by root: a way for other users to change what the owner runs."""
    if st is None:
        try:
            st = os.lstat(path)
        except OSError:
            return False
    if stat.S_ISLNK(st.st_mode):
        return False
    mode = st.st_mode
    if mode & stat.S_IWOTH and not (stat.S_ISDIR(mode) and mode & stat.S_ISVTX):
        return True
    return bool(mode & stat.S_IWGRP and st.st_uid == 0 and st.st_gid != 0)


def read_site_dirs(
    venv: str, errors: list[str], top_level: bool, fs: Optional[HostFS] = REAL
) -> tuple[SiteDir, ...]:
    """The venv's site directories, read. Facts about paths outside the venv (editable
    sources, egg-link targets and their metadata, ``.pth`` directories) are asked of *fs*;
    with None they are left as placeholders (:func:`venvkeeper.scan.inspect.read_own`)."""
    seen: set[tuple[int, int]] = set()
    out: list[SiteDir] = []
    for lib in ("lib", "lib64", "local/lib"):
        for e in fsutil.listdir(f"{venv}/{lib}"):
            m = PY_DIR.match(e.name)
            if not m:
                continue
            site = f"{e.path}/site-packages"
            try:  # lib64 is often a link to lib: one directory, judged once
                st = os.stat(site)
            except (OSError, ValueError):
                continue
            key = (st.st_dev, st.st_ino)
            if key in seen or not stat.S_ISDIR(st.st_mode):
                continue
            seen.add(key)
            out.append(_read_site_dir(site, m.group(1), errors, top_level, fs))
    out.sort(key=lambda s: s.path)
    return tuple(out)
