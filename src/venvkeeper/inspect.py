"""Static inspection: read one venv directory into :class:`VenvFacts`. Never runs anything.

Every read goes through :mod:`venvkeeper.fsutil` (regular files only, capped); every I/O
problem becomes an entry of ``VenvFacts.errors`` or a field saying "unknown", never an
exception. Facts about base interpreters are shared between venvs through a
:class:`HostCache`, since hundreds of venvs usually share a handful of bases.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import os
import re
import shlex
import stat
import threading
from typing import NamedTuple, Optional
from urllib.parse import unquote, urlsplit

from venvkeeper import aptdb, fsutil
from venvkeeper.aptdb import AptState
from venvkeeper.cfg import parse_pyvenv_cfg
from venvkeeper.errors import VenvkeeperError
from venvkeeper.hostfs import REAL, HostFS
from venvkeeper.model import (
    BaseInterpreter,
    BaseOrigin,
    Creator,
    DirectUrlKind,
    Distribution,
    Extension,
    LinkChain,
    OsPackage,
    PyvenvCfg,
    RecordedLocation,
    Script,
    SiteDir,
    ToolMarks,
    VenvFacts,
    VenvKind,
)
from venvkeeper.textutil import decode

CFG_LIMIT = 64 << 10
METADATA_LIMIT = 8 << 10  # Name and Version open the header; descriptions follow it
SMALL_LIMIT = 64 << 10
RECORD_LIMIT = 4 << 20
MAX_HOPS = 40
MAX_SCRIPTS = 2000
MAX_DISTS = 20000

_PY_NAME = re.compile(r"python(\d+)\.(\d+)(t?)$")
_PY_DIR = re.compile(r"python(\d+\.\d+t?)$")
_EXT_TAG = re.compile(r"\.(cpython-(\d)(\d+)(t?)-[^.]+|abi3)\.so$")
_ACTIVATE = re.compile(
    r"""^[ \t]*(?:export[ \t]+)?VIRTUAL_ENV=(?:"([^"$`]*)"|'([^'$`]*)'|([^\s"'$`;]+))[ \t]*$""",
    re.MULTILINE,
)
_PATCHLEVEL = re.compile(rb'#define\s+PY_VERSION\s+"(\d+\.\d+\.\d+)[^"]*"')
_PATH_VERSION = re.compile(
    r"/(?:versions/|cpython-|Cellar/python@\d+\.\d+/|python-)(\d+\.\d+\.\d+)(?:[-_/+]|$)"
)
_VERSIONED = re.compile(r"^python\d+(\.\d+t?)?$")
_NAME_NORMALIZE = re.compile(r"[-_.]+")


def canonical_name(name: str) -> str:
    return _NAME_NORMALIZE.sub("-", name).lower()


class VenvVanished(VenvkeeperError):
    """The venv directory disappeared between discovery and inspection."""


def empty_facts(path: str, kind: VenvKind, error: str) -> VenvFacts:
    """Facts for a venv that could not be read at all: judged ``unknown`` by read-errors."""
    return VenvFacts(
        path=path,
        kind=kind,
        creator=Creator.UNKNOWN,
        cfg=None,
        cfg_error=None,
        chains=(),
        base=None,
        site_dirs=(),
        scripts=(),
        activate_virtual_env=None,
        recorded_path=None,
        locations=(),
        owner_uid=-1,
        mode=0,
        writable_by_others=(),
        errors=(error,),
    )


class HostCache:
    """Facts about files outside the venvs (base interpreters, their stdlib), cached per
    scan, asked of *fs*: the real host, or a changed one when predicting. Thread-safe: the
    worst a race does is compute one value twice."""

    def __init__(self, fs: HostFS = REAL, packages_root: Optional[str] = "/") -> None:
        """*packages_root* is the Debian root whose dpkg status and apt lists tell whether a
        base's package is still offered (:mod:`venvkeeper.aptdb`); None: do not ask (the
        host judged is another one, as a profile describes it)."""
        self.fs = fs
        self.packages_root = packages_root
        self._apt: Optional[AptState] = None
        self._lock = threading.Lock()
        self._stdlib: dict[tuple[str, str], tuple[Optional[str], bool]] = {}
        self._patch: dict[tuple[str, str], Optional[str]] = {}
        self._head: dict[str, Optional[bytes]] = {}

    def stdlib_prefix(self, start_dir: str, version: str) -> tuple[Optional[str], bool]:
        """Search upwards from *start_dir* for the stdlib landmark, as getpath does:
        ``lib/pythonX.Y/os.py`` (``lib/python3.13t`` for free-threaded builds) or the
        zipped ``lib/pythonXY.zip``. Returns (prefix found, whether a permission error hid
        a candidate): not found *and* hidden means "cannot tell", not "gone"."""
        key = (start_dir, version)
        if key in self._stdlib:
            return self._stdlib[key]
        found: Optional[str] = None
        denied = False
        zipped = "python" + version.rstrip("t").replace(".", "") + ".zip"
        d = start_dir
        for _ in range(64):
            for lib in ("lib", "lib64"):
                root = f"{d.rstrip('/')}/{lib}"
                for landmark in (f"{root}/python{version}/os.py", f"{root}/{zipped}"):
                    state = self.fs.file_state(landmark)
                    if state:
                        found = d
                        break
                    denied = denied or state is None
                if found is not None:
                    break
            if found is not None:
                break
            parent = os.path.dirname(d)
            if parent == d:
                break
            d = parent
        with self._lock:
            self._stdlib[key] = (found, denied)
        return found, denied

    def patch_version(self, prefix: Optional[str], version: str, executable: str) -> Optional[str]:
        key = (prefix or "", executable)
        if key in self._patch:
            return self._patch[key]
        found: Optional[str] = None
        if prefix:
            head = self.fs.read_head(f"{prefix}/include/python{version}/patchlevel.h", 64 << 10)
            if head:
                m = _PATCHLEVEL.search(head)
                if m:
                    found = m.group(1).decode()
        if found is None:
            m2 = _PATH_VERSION.search(executable)
            if m2 and m2.group(1).startswith(version.rstrip("t") + "."):
                found = m2.group(1)
        with self._lock:
            self._patch[key] = found
        return found

    def obsolete_package(self, path: str) -> Optional[OsPackage]:
        """The OS package owning *path* when no configured archive offers it any more."""
        if self.packages_root is None:
            return None
        if self._apt is None:
            self._apt = aptdb.state(self.packages_root)
        return self._apt.obsolete(path)

    def same_bytes(self, a: str, b: str, limit: int = 256 << 20) -> Optional[bool]:
        """Whether two regular files hold the same bytes (None when unreadable or huge)."""
        return self.fs.same_bytes(a, b, limit)

    def is_script(self, path: str) -> bool:
        """True when *path* starts with ``#!``: a shell wrapper (a pyenv shim), not a binary."""
        if path not in self._head:
            self._head[path] = self.fs.read_head(path, 4)
        head = self._head[path]
        return bool(head and head.startswith(b"#!"))


def classify_origin(executable: str, venv_path: str) -> BaseOrigin:
    p = executable
    if p.startswith(venv_path.rstrip("/") + "/"):
        return BaseOrigin.VENV_COPY
    if "/.pyenv/versions/" in p or "/pyenv/versions/" in p:
        return BaseOrigin.PYENV
    if "/uv/python/" in p:
        return BaseOrigin.UV
    if "/Cellar/" in p or "/homebrew/" in p or "/linuxbrew/" in p:
        return BaseOrigin.HOMEBREW
    if any(s in p for s in ("/conda", "/miniconda", "/anaconda", "/miniforge", "/mambaforge")):
        return BaseOrigin.CONDA
    if p.startswith(("/usr/local/", "/opt/")):
        return BaseOrigin.LOCAL
    if p.startswith(("/usr/bin/", "/bin/", "/usr/libexec/", "/usr/lib/", "/usr/lib64/")):
        return BaseOrigin.SYSTEM
    return BaseOrigin.OTHER


@functools.lru_cache(maxsize=4096)
def _realdir(path: str) -> str:
    """``realpath`` of a directory, cached: the bases of many venvs share a few directories."""
    try:
        return os.path.realpath(path).rstrip("/") or ""
    except (OSError, RuntimeError, ValueError):
        return path


def _realdir_in(fs: HostFS, path: str) -> str:
    if fs is REAL:
        return _realdir(path)
    try:
        return fs.realpath(path).rstrip("/") or ""
    except (OSError, RuntimeError, ValueError):
        return path


def resolve_chain(venv: str, name: str, fs: HostFS = REAL) -> LinkChain:
    """Follow ``bin/NAME`` hop by hop without resolving anything the OS would not."""
    return follow_links(f"{venv}/bin/{name}", name, fs)


def follow_links(path: str, name: str, fs: HostFS = REAL) -> LinkChain:
    """Follow the absolute *path* hop by hop, as the kernel would when executing it."""
    hops = [path]
    for _ in range(MAX_HOPS):
        try:
            st = fs.lstat(path)
        except FileNotFoundError:
            return LinkChain(name, tuple(hops), None, broken_at=path)
        except PermissionError as e:
            return LinkChain(
                name, tuple(hops), None, broken_at=path, error=str(e.strerror), unreadable=True
            )
        except OSError as e:
            return LinkChain(name, tuple(hops), None, broken_at=path, error=str(e.strerror))
        if not stat.S_ISLNK(st.st_mode):
            real = _realdir_in(fs, os.path.dirname(path)) + "/" + os.path.basename(path)
            if not stat.S_ISREG(st.st_mode):
                what = fsutil.describe_mode(st.st_mode)
                return LinkChain(name, tuple(hops), None, broken_at=path, error=f"is {what}")
            unrunnable = None
            if st.st_size == 0:
                unrunnable = "an empty file"
            elif not st.st_mode & 0o111:
                unrunnable = "a file without execute permission"
            return LinkChain(name, tuple(hops), real, unrunnable=unrunnable)
        try:
            target = fs.readlink(path)
        except OSError as e:
            return LinkChain(name, tuple(hops), None, broken_at=path, error=str(e.strerror))
        joined = os.path.join(os.path.dirname(path), target)
        path = os.path.normpath(joined)
        if ".." in joined.split("/"):
            # The kernel resolves ".." against the real directory it reached, not the
            # path it came by, so the lexical normpath may be wrong.
            try:
                real_dir = fs.realpath(os.path.dirname(joined))
                path = os.path.join(real_dir, os.path.basename(joined))
            except (OSError, ValueError):
                pass
        hops.append(path)
    return LinkChain(name, tuple(hops), None, error="too many symlinks (a loop?)")


def _chain_names(bin_entries: list[os.DirEntry[str]]) -> list[str]:
    names = [e.name for e in bin_entries if _VERSIONED.match(e.name) or e.name == "python"]

    def order(n: str) -> tuple[int, str]:
        return ({"python": 0, "python3": 1}.get(n, 2), n)

    return sorted(names, key=order)


def _version_from_name(path: str) -> Optional[str]:
    m = _PY_NAME.search(os.path.basename(path))
    return f"{m.group(1)}.{m.group(2)}{m.group(3)}" if m else None


def _judge_base(
    venv: str,
    chains: tuple[LinkChain, ...],
    cfg: Optional[PyvenvCfg],
    host: HostCache,
    orig_prefix: Optional[str] = None,
    legacy_version: Optional[str] = None,
    known_patch: Optional[str] = None,
) -> Optional[BaseInterpreter]:
    """*known_patch*: the X.Y.Z a package manager recorded (conda): it beats file names."""
    primary = next((c for c in chains if c.name in ("python", "python3")), None)
    if primary is None and chains:
        primary = chains[0]
    if primary is None or primary.resolved is None or primary.unrunnable:
        return None  # nothing that runs: no base interpreter to judge
    exe = primary.resolved
    version = _version_from_name(exe)
    if known_patch:
        major, minor, rest = known_patch.split(".", 2)
        version = f"{major}.{minor}" + ("t" if rest.endswith("t") else "")
    if version is None:
        # A copy named python/python3, or a base binary named python3: use a versioned
        # sibling that reaches the same file, else the lib/pythonX.Y landmark beside it.
        for c in chains:
            v = _version_from_name(c.hops[0])
            if v and (c.resolved == exe or (primary.is_copy and c.is_copy)):
                version = v
                break
    if version is None and legacy_version:
        version = legacy_version
    if version is None:
        prefix_guess = os.path.dirname(os.path.dirname(exe))
        found = [
            m.group(1)
            for n in host.fs.listdir(prefix_guess + "/lib")
            if (m := _PY_DIR.match(n)) and host.fs.is_file(f"{prefix_guess}/lib/{n}/os.py")
        ]
        if len(found) == 1:
            version = found[0]
    try:
        venv_real = host.fs.realpath(venv)
    except (OSError, ValueError):
        venv_real = venv
    origin = classify_origin(exe, venv_real)
    # A copy: bin/python is a regular file, or links to one inside the venv (legacy
    # virtualenv: python -> python2.7, a copied binary).
    is_copy = primary.is_copy or exe.startswith(venv_real.rstrip("/") + "/")
    # Where the interpreter will look for its stdlib: from pyvenv.cfg `home` (what getpath
    # uses), from orig-prefix.txt for legacy virtualenvs, else beside the binary.
    home = cfg.get("home") if cfg is not None else None
    if orig_prefix:
        start = orig_prefix
    elif home:
        start = home
    else:
        start = os.path.dirname(exe)
    prefix: Optional[str] = None
    denied = False
    if version:
        prefix, denied = host.stdlib_prefix(start, version)
        if prefix is None and start != os.path.dirname(exe) and not is_copy:
            prefix, denied2 = host.stdlib_prefix(os.path.dirname(exe), version)
            denied = denied or denied2
    patch = host.patch_version(prefix, version, exe) if version else None
    if known_patch:
        patch = known_patch.rstrip("t")
    copy_source: Optional[str] = None
    copy_identical: Optional[bool] = None
    if is_copy and home:
        origin = BaseOrigin.VENV_COPY
        if version:  # only the same minor can be the source of this copy
            cand = f"{home.rstrip('/')}/python{version}"
            if host.fs.is_file(cand):
                copy_source = host.fs.realpath(cand)
                copy_identical = host.same_bytes(exe, copy_source)
    source = copy_source if is_copy else exe
    obsolete = None
    if source is not None and classify_origin(source, venv_real) is BaseOrigin.SYSTEM:
        obsolete = host.obsolete_package(source)
    return BaseInterpreter(
        executable=exe,
        version=version,
        patch_version=patch,
        prefix=prefix,
        stdlib_present=True if prefix is not None else (None if denied else False),
        origin=origin,
        is_copy=is_copy,
        is_script=host.is_script(exe),
        copy_source=copy_source,
        copy_identical=copy_identical,
        obsolete_package=obsolete,
    )


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


def _read_dist(site: str, entry: str, want_top: bool) -> tuple[Distribution, Optional[list[str]]]:
    """One distribution, and the top-level ``.pth`` files its RECORD says it installed
    (None when the RECORD was not read).

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
        if du_kind in (DirectUrlKind.EDITABLE, DirectUrlKind.DIRECTORY) and local:
            editable_exists = fsutil.dir_state(local)
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
    )
    return dist, (pths if record_read else None)


def _record_lists(site: str, dist_info: str, name: str) -> bool:
    """Whether the RECORD of *dist_info* lists the top-level file *name*."""
    try:
        rec, _ = fsutil.read_text(f"{site}/{dist_info}/RECORD", RECORD_LIMIT)
    except OSError:
        return False
    return name in _parse_record(rec, False)[1]


_KNOWN_PTH = ("_virtualenv.pth", "distutils-precedence.pth")


def _read_site_dir(
    site: str, version: Optional[str], errors: list[str], top_level: bool
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
            dist, pths = _read_dist(site, name, top_level)
            dists.append(dist)
            if pths is None:
                unread.append(dist.dist_info)
            else:
                owned_pth.update(pths)
        elif name.endswith(".pth"):
            pth_files.append(name)
        elif name.endswith(".egg-link"):
            head = fsutil.read_head(f"{site}/{name}", 4096)
            target = head.decode("utf-8", "surrogateescape").splitlines()[0].strip() if head else ""
            exists = fsutil.dir_state(target) if target else False
            egg_links.append((name, target, exists is not False))
    # .pth files owned by a distribution (listed in its RECORD) are accounted for.
    pth_imports: list[str] = []
    for name in pth_files:
        if name in owned_pth or name in _KNOWN_PTH:
            continue
        try:
            text, _ = fsutil.read_text(f"{site}/{name}", SMALL_LIMIT)
        except OSError:
            continue
        lines = [ln for ln in text.splitlines() if ln.startswith(("import ", "import\t"))]
        if not lines or any(_record_lists(site, d, name) for d in unread):
            continue
        pth_imports += [f"{name}: {ln[:120]}" for ln in lines]
    dists.sort(key=lambda x: canonical_name(x.name))
    return SiteDir(
        path=site,
        python_version=version,
        distributions=tuple(dists),
        pth_imports=tuple(pth_imports),
        egg_links=tuple(egg_links),
        writable_by_others=_writable_by_others(site),
    )


def _writable_by_others(path: str, st: Optional[os.stat_result] = None) -> bool:
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


def _site_dirs(venv: str, errors: list[str], top_level: bool) -> tuple[SiteDir, ...]:
    seen: set[tuple[int, int]] = set()
    out: list[SiteDir] = []
    for lib in ("lib", "lib64", "local/lib"):
        for e in fsutil.listdir(f"{venv}/{lib}"):
            m = _PY_DIR.match(e.name)
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
            out.append(_read_site_dir(site, m.group(1), errors, top_level))
    out.sort(key=lambda s: s.path)
    return tuple(out)


_EXEC_TRICK = re.compile(r"""^'''exec' (?:"([^"]*)"|'([^']*)'|(\S+))""")


def _parse_shebang(head: bytes) -> tuple[Optional[str], bool]:
    """(interpreter path, relative) from the start of a script.

    Like the kernel: the interpreter is the first word after ``#!``, no quoting. Also the
    ``#!/bin/sh`` + ``'''exec' "PATH"`` trick that pip and uv use for paths too long for a
    shebang, where ``"$(dirname ...)"`` marks uv's relocatable scripts.
    """
    if not head.startswith(b"#!"):
        return None, False
    text = head.decode("utf-8", "surrogateescape")
    lines = text.split("\n", 2)
    words = lines[0][2:].split(None, 1)
    if not words:
        return None, False
    interp = words[0]
    if interp in ("/bin/sh", "/bin/bash", "/usr/bin/sh") and len(lines) > 1:
        m = _EXEC_TRICK.match(lines[1])
        if m is None:
            return None, False
        found = m.group(1) or m.group(2) or m.group(3)
        if found is None:
            return None, False
        if found.startswith("$("):
            return None, True  # uv relocatable: the interpreter beside the script
        return found, False
    if os.path.basename(interp) == "env":
        return None, False  # resolved through PATH at run time
    return interp, False


def _scripts(
    venv: str, bin_entries: list[os.DirEntry[str]], fs: HostFS = REAL
) -> tuple[Script, ...]:
    out: list[Script] = []
    for e in bin_entries[:MAX_SCRIPTS]:
        name = e.name
        if name == "python" or _VERSIONED.match(name) or name.startswith("activate"):
            continue
        try:
            if not e.is_file(follow_symlinks=False):
                continue
        except OSError:
            continue
        head = fsutil.read_head(e.path, 512)
        if not head:
            continue
        interp, relative = _parse_shebang(head)
        if interp is None and not relative:
            continue
        if interp is not None and "python" not in os.path.basename(interp):
            continue
        exists = None if interp is None else fs.file_state(interp)
        out.append(Script(name, interp, exists, relative))
    out.sort(key=lambda s: s.name)
    return tuple(out)


def _same_dir(a: str, b: str) -> bool:
    if os.path.normpath(a) == os.path.normpath(b):
        return True
    try:
        return os.path.samefile(a, b)
    except (OSError, ValueError):
        return False


def _locations(
    venv: str,
    activate: Optional[str],
    recorded: Optional[str],
    scripts: tuple[Script, ...],
) -> tuple[RecordedLocation, ...]:
    found: list[tuple[str, str]] = []
    if activate:
        found.append(("activate", activate))
    if recorded:
        found.append(("pyvenv.cfg command", recorded))
    venvish: dict[str, bool] = {}
    for sc in scripts:
        interp = sc.interpreter
        if not interp or os.path.basename(os.path.dirname(interp)) != "bin":
            continue
        prefix = os.path.dirname(os.path.dirname(interp))
        # A script run by /usr/bin/python3 (a copied-in tool) says nothing of where this
        # venv was: only a prefix that is gone, or is a venv, is a recorded location.
        if prefix not in venvish:
            venvish[prefix] = (
                prefix in (activate, recorded)
                or fsutil.path_state(prefix) is False
                or fsutil.lexists(prefix + "/pyvenv.cfg")
            )
        if venvish[prefix]:
            found.append((f"script {sc.name}", prefix))
    verdict: dict[str, bool] = {}
    out = []
    for source, where in found:
        if where not in verdict:
            verdict[where] = _same_dir(where, venv)
        out.append(RecordedLocation(source, where, verdict[where]))
    return tuple(out)


def _activate_virtual_env(venv: str) -> Optional[str]:
    head = fsutil.read_head(f"{venv}/bin/activate", SMALL_LIMIT)
    if not head:
        return None
    for m in _ACTIVATE.finditer(head.decode("utf-8", "surrogateescape")):
        value = m.group(1) or m.group(2) or m.group(3)
        if value and value.startswith("/"):
            return value
    return None


def recorded_destination(cfg: Optional[PyvenvCfg]) -> Optional[str]:
    """The destination directory named by ``command`` in pyvenv.cfg (venv 3.11+, virtualenv)."""
    command = cfg.get("command") if cfg else None
    if not command:
        return None
    words = command.split()
    if '"' in command or "'" in command:
        with contextlib.suppress(ValueError):
            words = shlex.split(command)
    positional = [w for w in words[1:] if not w.startswith("-")]
    # "python -m venv DEST": skip the module name after -m.
    if "-m" in words:
        i = words.index("-m")
        if i + 1 < len(words) and words[i + 1] in positional:
            positional.remove(words[i + 1])
    dest = positional[-1] if positional else None
    if dest and dest.startswith("/"):
        return os.path.normpath(dest)
    return None


#: A distribution name as PEP 508 allows it: what may stand in a tool's command line.
_DIST_NAME = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9._-]{0,198}[A-Za-z0-9])?$")
_PIPX_SUFFIX = re.compile(r"^[A-Za-z0-9@._+-]{0,64}$")
PIPX_METADATA = "pipx_metadata.json"
_PIPX_METADATA_LIMIT = 1 << 20
_MAX_PIPX_SIBLINGS = 64


def pipx_app(venv: str) -> Optional[str]:
    """The name pipx knows the venv by (its app's package, plus the ``--suffix`` it was
    installed with), from ``pipx_metadata.json`` in the venv root; None when the file is
    absent or is not pipx metadata (unreadable, not JSON, another shape, a name that is not
    a distribution name)."""
    try:
        doc = fsutil.load_json_file(f"{venv}/{PIPX_METADATA}", limit_bytes=_PIPX_METADATA_LIMIT)
    except (OSError, ValueError):
        return None
    main = doc.get("main_package") if isinstance(doc, dict) else None
    package = main.get("package") if isinstance(main, dict) else None
    if not isinstance(package, str) or not _DIST_NAME.match(package):
        return None
    suffix = main.get("suffix", "") if isinstance(main, dict) else ""
    if not isinstance(suffix, str) or not _PIPX_SUFFIX.match(suffix):
        suffix = ""
    return package + suffix


def _is_pipx_shared(venv: str) -> bool:
    """pipx's shared libraries venv: PIPX_HOME/shared, beside PIPX_HOME/venvs holding pipx
    venvs (a few of them are looked at)."""
    if os.path.basename(venv) != "shared":
        return False
    venvs = os.path.join(os.path.dirname(venv), "venvs")
    for i, e in enumerate(fsutil.listdir(venvs)):
        if i >= _MAX_PIPX_SIBLINGS:
            break
        if fsutil.read_head(f"{e.path}/{PIPX_METADATA}", 1) is not None:
            return True
    return False


def detect_creator(path: str, kind: VenvKind, cfg: Optional[PyvenvCfg]) -> Creator:
    """The creator of the venv at *path* (see :func:`detect_owner`)."""
    return detect_owner(path, kind, cfg)[0]


def detect_owner(path: str, kind: VenvKind, cfg: Optional[PyvenvCfg]) -> tuple[Creator, ToolMarks]:
    """Who made the venv at *path*, and what its owning tool recorded there: first the
    marker files a tool writes into the venv (pipx's ``pipx_metadata.json``), wherever the
    venv lives; then the tools' own directories; then ``pyvenv.cfg``."""
    if kind is VenvKind.LEGACY_VIRTUALENV:
        return Creator.LEGACY_VIRTUALENV, ToolMarks()
    if kind is VenvKind.CONDA:
        return Creator.CONDA, ToolMarks()
    app = pipx_app(path)
    if app is not None:
        return Creator.PIPX, ToolMarks(package=app)
    project = pipenv_project(path)
    if project is not None:
        return Creator.PIPENV, ToolMarks(project=project)
    p = path + "/"
    if "/pipx/shared/" in p or _is_pipx_shared(path):
        return Creator.PIPX, ToolMarks(shared_libs=True)
    creator = _creator_by_place(p, cfg)
    if creator in (Creator.VENV, Creator.VIRTUALENV, Creator.UNKNOWN) and is_poetry_in_project(
        path
    ):
        # uv records itself in pyvenv.cfg: a .venv that uv made is uv's project venv
        return Creator.POETRY, ToolMarks(project=os.path.dirname(path))
    return creator, ToolMarks()


#: pipenv names its venvs NAME-HASH: eight characters of urlsafe base64 of a sha256.
_PIPENV_NAME = re.compile(r"^.+-[A-Za-z0-9_-]{8}$")
_POETRY_TABLE = re.compile(r"^[ \t]*\[tool\.poetry[\].]", re.MULTILINE)


def pipenv_project(venv: str) -> Optional[str]:
    """The project directory of a pipenv venv, named by the ``.project`` file pipenv
    writes into the venv root; None when there is none, or it names no absolute path, or
    nothing else says pipenv (virtualenvwrapper writes ``.project`` files too): a
    ``Pipfile`` in that directory, or pipenv's NAME-HASH name for the venv."""
    head = fsutil.read_head(f"{venv}/.project", 4096)
    if not head:
        return None
    text = head.decode("utf-8", "surrogateescape").strip()
    if not text.startswith("/") or any(c in text for c in "\n\r\0"):
        return None
    project = os.path.normpath(text)
    if fsutil.read_head(f"{project}/Pipfile", 1) is None and not _PIPENV_NAME.match(
        os.path.basename(venv)
    ):
        return None
    return project


def is_poetry_in_project(venv: str) -> bool:
    """Whether *venv* is a poetry project's in-project ``.venv``: beside a ``poetry.toml``
    or a ``pyproject.toml`` with a ``[tool.poetry]`` table."""
    if os.path.basename(venv) != ".venv":
        return False
    project = os.path.dirname(venv)
    if fsutil.read_head(f"{project}/poetry.toml", 1) is not None:
        return True
    head = fsutil.read_head(f"{project}/pyproject.toml", 1 << 20)
    return bool(head and _POETRY_TABLE.search(head.decode("utf-8", "surrogateescape")))


def _creator_by_place(p: str, cfg: Optional[PyvenvCfg]) -> Creator:
    if "/pipx/venvs/" in p:
        return Creator.PIPX
    if "/pypoetry/virtualenvs/" in p or "/poetry/virtualenvs/" in p:
        return Creator.POETRY
    if "/.tox/" in p:
        return Creator.TOX
    if "/.nox/" in p:
        return Creator.NOX
    if "/hatch/env/" in p:
        return Creator.HATCH
    if "/pdm/venvs/" in p or "/.pdm-build/" in p:
        return Creator.PDM
    if re.search(r"/\.pyenv/versions/[^/]+/envs/", p) or (
        re.search(r"/\.pyenv/versions/[^/]+/$", p)
    ):
        return Creator.PYENV_VIRTUALENV
    if cfg is None:
        return Creator.UNKNOWN
    if cfg.get("uv"):
        return Creator.UV
    if cfg.get("virtualenv"):
        return Creator.VIRTUALENV
    command = cfg.get("command") or ""
    if "-m venv" in command or (
        cfg.get("home") and cfg.get("version") and not cfg.get("implementation")
    ):
        return Creator.VENV
    return Creator.UNKNOWN


_CONDA_PYTHON = re.compile(r"^python-(\d+)\.(\d+)\.(\d+)-([^-]+)\.json$")


def conda_python(prefix: str) -> Optional[str]:
    """The Python of a conda prefix, X.Y.Z (X.Y.Zt for a free-threaded build), from the
    name of its ``conda-meta/python-X.Y.Z-BUILD.json`` record: what conda installed, read
    without running anything."""
    for e in fsutil.listdir(f"{prefix}/conda-meta"):
        m = _CONDA_PYTHON.match(e.name)
        if m:
            free = "t" if re.search(r"_cp\d+t$", m.group(4)) else ""
            return f"{m.group(1)}.{m.group(2)}.{m.group(3)}{free}"
    return None


def _legacy(venv: str) -> tuple[Optional[str], Optional[str]]:
    for e in fsutil.listdir(f"{venv}/lib"):
        m = _PY_DIR.match(e.name)
        if m:
            head = fsutil.read_head(e.path + "/orig-prefix.txt", 4096)
            if head is not None:
                return head.decode("utf-8", "surrogateescape").strip() or None, m.group(1)
    return None, None


def tree_size(path: str) -> int:
    total = 0
    stack = [path]
    while stack:
        d = stack.pop()
        for e in fsutil.listdir(d):
            try:
                st = e.stat(follow_symlinks=False)
            except OSError:
                continue
            total += st.st_size
            if stat.S_ISDIR(st.st_mode):
                stack.append(e.path)
    return total


def _host_errors(chains: tuple[LinkChain, ...], base: Optional[BaseInterpreter]) -> list[str]:
    """The read errors met outside the venv: they depend on the host, not the venv."""
    out = [f"bin/{c.name}: cannot follow {c.broken_at}: {c.error}" for c in chains if c.unreadable]
    if base is not None and base.stdlib_present is None:
        out.append(f"the stdlib of {base.executable} is hidden from this user (permission)")
    return out


def rejudge(facts: VenvFacts, host: HostCache) -> VenvFacts:
    """*facts* as they would be on the host *host* describes (a planned change, another
    host): everything that depends on files outside the venv is asked again, the venv's own
    contents (packages, scripts, records) are kept. Reads only the venv's ``bin/`` links."""
    if facts.kind is VenvKind.CONDA:
        return facts
    fs = host.fs
    if fs.path_state(facts.path) is False:
        raise VenvVanished(facts.path)
    chains = tuple(resolve_chain(facts.path, c.name, fs) for c in facts.chains)
    legacy_version = None
    if facts.kind is VenvKind.LEGACY_VIRTUALENV:
        legacy_version = next((s.python_version for s in facts.site_dirs), None)
    base = _judge_base(facts.path, chains, facts.cfg, host, facts.orig_prefix, legacy_version)
    scripts = tuple(
        dataclasses.replace(s, interpreter_exists=fs.file_state(s.interpreter))
        if s.interpreter
        else s
        for s in facts.scripts
    )
    site_dirs = tuple(
        dataclasses.replace(
            s,
            distributions=tuple(
                dataclasses.replace(d, editable_path_exists=fs.dir_state(d.editable_path))
                if d.editable_path
                else d
                for d in s.distributions
            ),
        )
        for s in facts.site_dirs
    )
    old = set(_host_errors(facts.chains, facts.base))
    errors = [e for e in facts.errors if e not in old] + _host_errors(chains, base)
    return dataclasses.replace(
        facts, chains=chains, base=base, scripts=scripts, site_dirs=site_dirs, errors=tuple(errors)
    )


def inspect_venv(
    path: str,
    kind: VenvKind = VenvKind.VENV,
    *,
    host: Optional[HostCache] = None,
    size: bool = False,
    top_level: bool = False,
) -> VenvFacts:
    """Read everything venvkeeper judges about the venv at *path*, statically.

    *top_level* also collects each distribution's importable top-level names (what
    ``--deep`` imports); *size* sums the venv's file sizes. Both cost extra reads.
    """
    host = host if host is not None else HostCache()
    path = path.rstrip("/") or "/"
    errors: list[str] = []
    try:
        st = os.lstat(path)
        owner, mode = st.st_uid, st.st_mode
    except (FileNotFoundError, NotADirectoryError) as e:
        raise VenvVanished(path) from e
    except OSError as e:
        errors.append(f"{path}: {e.strerror}")
        owner, mode = -1, 0
    cfg: Optional[PyvenvCfg] = None
    cfg_error: Optional[str] = None
    orig_prefix = legacy_version = known_patch = None
    if kind is VenvKind.LEGACY_VIRTUALENV:
        orig_prefix, legacy_version = _legacy(path)
    elif kind is VenvKind.CONDA:
        known_patch = conda_python(path)
    else:
        try:
            text, truncated = fsutil.read_text(f"{path}/pyvenv.cfg", CFG_LIMIT)
            cfg = parse_pyvenv_cfg(text, truncated)
        except fsutil.NotRegularFile as e:
            cfg_error = f"pyvenv.cfg is {e.strerror}, not a regular file"
        except FileNotFoundError:
            cfg_error = "pyvenv.cfg is missing"
        except OSError as e:
            cfg_error = f"pyvenv.cfg cannot be read: {e.strerror}"
    try:
        with os.scandir(f"{path}/bin") as it:
            bin_entries = list(it)
    except OSError as e:
        errors.append(f"bin/: {e.strerror}")
        bin_entries = []
    chains = tuple(resolve_chain(path, n, host.fs) for n in _chain_names(bin_entries))
    base = _judge_base(path, chains, cfg, host, orig_prefix, legacy_version, known_patch)
    errors += _host_errors(chains, base)
    writable = [
        rel for rel in ("", "bin", "pyvenv.cfg") if _writable_by_others(f"{path}/{rel}".rstrip("/"))
    ]
    site_dirs = _site_dirs(path, errors, top_level)
    writable += [os.path.relpath(s.path, path) for s in site_dirs if s.writable_by_others]
    scripts = _scripts(path, bin_entries, host.fs)
    activate = _activate_virtual_env(path)
    recorded = recorded_destination(cfg)
    creator, tool = detect_owner(path, kind, cfg)
    return VenvFacts(
        path=path,
        kind=kind,
        creator=creator,
        cfg=cfg,
        cfg_error=cfg_error,
        chains=chains,
        base=base,
        site_dirs=site_dirs,
        scripts=scripts,
        activate_virtual_env=activate,
        recorded_path=recorded,
        locations=_locations(path, activate, recorded, scripts),
        owner_uid=owner,
        mode=mode,
        writable_by_others=tuple(w or "." for w in writable),
        orig_prefix=orig_prefix,
        size_bytes=tree_size(path) if size else None,
        errors=tuple(errors),
        tool=tool,
    )
