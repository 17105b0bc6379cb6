"""Static inspection: read one venv directory into :class:`VenvFacts`. Never runs anything.

Every read goes through :mod:`venvkeeper.host.fsutil` (regular files only, capped); every I/O
problem becomes an entry of ``VenvFacts.errors`` or a field saying "unknown", never an
exception. Facts about base interpreters are shared between venvs through a
:class:`HostCache`, since hundreds of venvs usually share a handful of bases.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import os
import re
import stat
from collections.abc import Sequence
from typing import Any, Optional

from venvkeeper.errors import VenvkeeperError
from venvkeeper.host import fsutil
from venvkeeper.host.bases import HostCache, classify_origin, evolve, resolve_chain
from venvkeeper.host.hostfs import REAL, HostFS, RootFS
from venvkeeper.host.shebang import parse_shebang as _parse_shebang
from venvkeeper.model.venv import (
    BaseInterpreter,
    BaseOrigin,
    Creator,
    LinkChain,
    PyvenvCfg,
    RecordedLocation,
    Script,
    SiteDir,
    VenvFacts,
    VenvKind,
)
from venvkeeper.scan.cfg import parse_pyvenv_cfg
from venvkeeper.scan.creators import conda_python, detect_owner
from venvkeeper.scan.dists import (
    PY_DIR,
    SMALL_LIMIT,
    read_egg_link,
    read_site_dirs,
    writable_by_others,
)
from venvkeeper.textutil import canonical_name

CFG_LIMIT = 64 << 10


MAX_SCRIPTS = 2000


_PY_NAME = re.compile(r"python(\d+)\.(\d+)(t?)$")


_ACTIVATE = re.compile(
    r"""^[ \t]*(?:export[ \t]+)?VIRTUAL_ENV=(?:"([^"$`]*)"|'([^'$`]*)'|([^\s"'$`;]+))[ \t]*$""",
    re.MULTILINE,
)


_VERSIONED = re.compile(r"^python\d+(\.\d+t?)?$")

#: CPython 3.14's venv adds ``bin/𝜋thon`` (a link to its python3.14) when the filesystem
#: encoding is UTF-8: one more interpreter name, judged like the others.
PI_THON = "\U0001d70bthon"


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


def _chain_names(bin_entries: list[os.DirEntry[str]]) -> list[str]:
    names = [
        e.name for e in bin_entries if _VERSIONED.match(e.name) or e.name in ("python", PI_THON)
    ]

    def order(n: str) -> tuple[int, str]:
        return ({"python": 0, "python3": 1, PI_THON: 3}.get(n, 2), n)

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
            if (m := PY_DIR.match(n)) and host.fs.is_file(f"{prefix_guess}/lib/{n}/os.py")
        ]
        if len(found) == 1:
            version = found[0]
    try:
        venv_real = host.realpath(venv)
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


def _scripts(venv: str, bin_entries: list[os.DirEntry[str]]) -> tuple[Script, ...]:
    """The scripts of ``bin/`` and the interpreters their shebangs name (whether those
    exist is the host's: :func:`complete` asks)."""
    out: list[Script] = []
    for e in bin_entries[:MAX_SCRIPTS]:
        name = e.name
        if name in ("python", PI_THON) or _VERSIONED.match(name) or name.startswith("activate"):
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
        out.append(Script(name, interp, None, relative))
    out.sort(key=lambda s: s.name)
    return tuple(out)


def _same_dir(a: str, b: str, fs: HostFS = REAL) -> bool:
    if os.path.normpath(a) == os.path.normpath(b):
        return True
    try:
        sa, sb = fs.stat(a), fs.stat(b)
    except (OSError, ValueError):
        return False
    return (sa.st_dev, sa.st_ino) == (sb.st_dev, sb.st_ino)


def _locations(
    venv: str,
    activate: Optional[str],
    recorded: Optional[str],
    scripts: tuple[Script, ...],
    fs: HostFS = REAL,
) -> tuple[RecordedLocation, ...]:
    """Every place the venv recorded as its own. Whether such a place exists, is a venv or
    is this very directory is a fact of the host, outside the venv: asked of *fs*. *venv*
    is the venv's path as the paths it recorded are read (inside its root)."""
    found: list[tuple[str, str]] = []
    if activate:
        found.append(("activate", activate))
    if recorded:
        found.append(("pyvenv.cfg command", recorded))
    venvish: dict[str, bool] = {}
    prefixes: dict[str, Optional[str]] = {}  # interpreter -> its prefix, if in a bin/
    for sc in scripts:
        interp = sc.interpreter
        if not interp:
            continue
        if interp in prefixes:
            prefix = prefixes[interp]
        else:
            bin_dir = os.path.dirname(interp)
            prefix = os.path.dirname(bin_dir) if os.path.basename(bin_dir) == "bin" else None
            prefixes[interp] = prefix
        if prefix is None:
            continue
        # A script run by /usr/bin/python3 (a copied-in tool) says nothing of where this
        # venv was: only a prefix that is gone, or is a venv, is a recorded location.
        if prefix not in venvish:
            venvish[prefix] = (
                prefix in (activate, recorded)
                or fs.path_state(prefix) is False
                or fs.path_state(prefix + "/pyvenv.cfg") is True
            )
        if venvish[prefix]:
            found.append((f"script {sc.name}", prefix))
    verdict: dict[str, bool] = {}
    out = []
    for source, where in found:
        if where not in verdict:
            verdict[where] = _same_dir(where, venv, fs)
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
            import shlex

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


def _legacy(venv: str) -> tuple[Optional[str], Optional[str]]:
    for e in fsutil.listdir(f"{venv}/lib"):
        m = PY_DIR.match(e.name)
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


def host_errors(chains: tuple[LinkChain, ...], base: Optional[BaseInterpreter]) -> list[str]:
    """The read errors met outside the venv: they depend on the host, not the venv."""
    out = [f"bin/{c.name}: cannot follow {c.broken_at}: {c.error}" for c in chains if c.unreadable]
    if base is not None and base.stdlib_present is None:
        out.append(f"the stdlib of {base.executable} is hidden from this user (permission)")
    return out


def rejudge(facts: VenvFacts, host: HostCache) -> VenvFacts:
    """*facts* as they would be on the host *host* describes (a planned change, another
    host): everything that depends on files outside the venv is asked again, the venv's own
    contents (packages, scripts, records) are kept. Reads only the venv's ``bin/`` links
    (and its ``.egg-link`` files). A scan's own facts are completed the same way
    (:func:`complete`)."""
    if facts.kind is VenvKind.CONDA:
        return facts
    if host.fs.path_state(facts.path_in_root) is False:
        raise VenvVanished(facts.path)
    return _outside(facts, host, None)


def complete(
    own: VenvFacts,
    host: HostCache,
    *,
    top_level: bool = False,
    check_gone: bool = False,
    asks: Optional[Asking] = None,
) -> VenvFacts:
    """*own* (what :func:`read_own` read, now or in an earlier scan) with every fact that
    depends on the host asked of *host* now, exactly as :func:`rejudge` asks them: the
    interpreter chains and the base, whether scripts' interpreters and editable sources
    exist, egg-link targets and their metadata, ``.pth`` directories, the recorded
    locations, the creator and the host's read errors. *host* is the venv's OS root's
    (``own.root``). The venv's own files are not read again but its ``bin/`` links and
    ``.egg-link`` files. *top_level*: read the importable names of legacy editables too
    (``--deep``). *check_gone*: *own* was kept from an earlier scan: a venv gone since is
    :class:`VenvVanished`. *asks* (an :class:`Asking` of ``host.fs``) notes every question
    asked of the host besides the venv's base view."""
    if check_gone and host.fs.path_state(own.path_in_root) is False:
        raise VenvVanished(own.path)
    return _outside(own, host, top_level, asks)


_UNASKED: Any = object()


def _outside(
    facts: VenvFacts, host: HostCache, want_top: Optional[bool], asks: Optional[Asking] = None
) -> VenvFacts:
    """*facts* with every outside fact asked of *host* (the one reading of both
    :func:`complete` and :func:`rejudge`); *want_top*: None keeps each legacy editable's
    reading of importable names as it was. The base view is asked of *host*; everything
    else of *asks* when given (an incremental scan asks those questions again to keep a
    venv's verdict: :func:`replay`)."""
    fs = host.fs
    other: HostFS = asks if asks is not None else fs
    seen = facts.path_in_root
    chains = tuple(resolve_chain(seen, c.name, fs, host.links) for c in facts.chains)
    legacy_version = None
    if facts.kind is VenvKind.LEGACY_VIRTUALENV:
        legacy_version = next((s.python_version for s in facts.site_dirs), None)
    base = _judge_base(
        seen, chains, facts.cfg, host, facts.orig_prefix, legacy_version, facts.recorded_python
    )
    states: dict[str, Optional[bool]] = {}  # interpreter -> exists (a venv's scripts share)
    scripts = []
    for sc in facts.scripts:
        interp = sc.interpreter
        if interp is not None:
            exists = states.get(interp, _UNASKED)
            if exists is _UNASKED:
                exists = states[interp] = fs.file_state(interp)
            if exists != sc.interpreter_exists:
                sc = evolve(sc, interpreter_exists=exists)
        scripts.append(sc)
    site_dirs = tuple(_rejudge_site(s, other, want_top) for s in facts.site_dirs)
    old = set(host_errors(facts.chains, facts.base))
    errors = [e for e in facts.errors if e not in old] + host_errors(chains, base)
    locations = _locations(
        seen, facts.activate_virtual_env, facts.recorded_path, tuple(scripts), other
    )
    creator, tool = detect_owner(facts.path, facts.kind, facts.cfg, other)
    return evolve(
        facts,
        chains=chains,
        base=base,
        scripts=tuple(scripts),
        site_dirs=site_dirs,
        locations=locations,
        creator=creator,
        tool=tool,
        errors=tuple(errors),
    )


def _rejudge_site(site: SiteDir, fs: HostFS, want_top: Optional[bool]) -> SiteDir:
    """A site directory's facts about paths outside the venv, asked of *fs* again: the
    sources of editable and local installs, the targets of egg-links (with the metadata of
    the legacy editable each one is), and the directories ``.pth`` files add."""
    if not (site.egg_links or site.pth_paths or any(d.editable_path for d in site.distributions)):
        return site  # nothing outside: most site directories
    egg_links = tuple(
        (name, target, target.startswith("/") and fs.dir_state(target) is not False)
        for name, target, _ in site.egg_links
    )
    dists = []
    reread = False
    for d in site.distributions:
        if d.egg_info is not None or d.dist_info.endswith(".egg-link"):
            # The same reading as a scan's: what the source said is gone with it.
            top = bool(d.top_level) if want_top is None else want_top
            _, again = read_egg_link(site.path, d.dist_info, top, fs)
            dists.append(again)
            reread = True
        elif d.editable_path:
            dists.append(dataclasses.replace(d, editable_path_exists=fs.dir_state(d.editable_path)))
        else:
            dists.append(d)
    if reread:  # a legacy editable's name is its metadata's: in the scan's order again
        dists.sort(key=lambda x: canonical_name(x.name))
    pth_paths = tuple((name, d, fs.path_state(d) is not False) for name, d, _ in site.pth_paths)
    return dataclasses.replace(
        site, distributions=tuple(dists), egg_links=egg_links, pth_paths=pth_paths
    )


class _Unreplayable(Exception):
    """An answer of the host that :class:`Asking` cannot keep to compare later."""


def _answer(got: Any) -> Any:
    """What is kept of one answer of the host (JSON): enough to tell whether the same
    question gets the same answer (a file's head by its digest, a stat but its access
    time)."""
    if got is None or isinstance(got, (bool, int, str)):
        return got
    if isinstance(got, bytes):
        return ["b", hashlib.blake2b(got, digest_size=16).hexdigest()]
    if isinstance(got, os.stat_result):
        return [
            "s", got.st_mode, got.st_ino, got.st_dev, got.st_nlink, got.st_uid, got.st_gid,
            got.st_size, got.st_mtime_ns, got.st_ctime_ns,
        ]  # fmt: skip
    if isinstance(got, (list, tuple)) and all(isinstance(x, str) for x in got):
        return ["l", list(got)]
    raise _Unreplayable(type(got).__name__)


def _failed(e: Exception) -> list[Any]:
    return ["e", type(e).__name__, getattr(e, "errno", None)]


class Asking(HostFS):
    """A :class:`HostFS` that asks *fs* and notes each question with what was kept of its
    answer (:func:`_answer`) in *asked*: what :func:`complete` asked the host of one venv
    besides its base view (:func:`replay` asks them again). *ok* turns False when an
    answer could not be kept."""

    def __init__(self, fs: HostFS, asked: list[Any]) -> None:
        self.fs = fs
        self.asked = asked
        self.ok = True

    def _ask(self, name: str, *args: Any) -> Any:
        try:
            got = getattr(self.fs, name)(*args)
        except (OSError, ValueError) as e:
            self.asked.append([name, list(args), _failed(e)])
            raise
        try:
            self.asked.append([name, list(args), _answer(got)])
        except _Unreplayable:
            self.ok = False
        return got

    def lstat(self, path: str) -> os.stat_result:
        return self._ask("lstat", path)  # type: ignore[no-any-return]

    def stat(self, path: str) -> os.stat_result:
        return self._ask("stat", path)  # type: ignore[no-any-return]

    def readlink(self, path: str) -> str:
        return self._ask("readlink", path)  # type: ignore[no-any-return]

    def realpath(self, path: str) -> str:
        return self._ask("realpath", path)  # type: ignore[no-any-return]

    def listdir(self, path: str) -> list[str]:
        return self._ask("listdir", path)  # type: ignore[no-any-return]

    def read_head(self, path: str, limit: int) -> Optional[bytes]:
        return self._ask("read_head", path, limit)  # type: ignore[no-any-return]

    def same_bytes(self, a: str, b: str, limit: int = 256 << 20) -> Optional[bool]:
        return self._ask("same_bytes", a, b, limit)  # type: ignore[no-any-return]

    def path_state(self, path: str) -> Optional[bool]:
        return self._ask("path_state", path)  # type: ignore[no-any-return]

    def file_state(self, path: str) -> Optional[bool]:
        return self._ask("file_state", path)  # type: ignore[no-any-return]

    def dir_state(self, path: str) -> Optional[bool]:
        return self._ask("dir_state", path)  # type: ignore[no-any-return]

    def is_file(self, path: str) -> bool:
        return self._ask("is_file", path)  # type: ignore[no-any-return]


def replay(asked: Sequence[Any], fs: HostFS) -> bool:
    """Whether every question :class:`Asking` noted gets the same answer from *fs* now
    (asked in the same order: each one was asked because of the answers before it)."""
    try:
        for name, args, was in asked:
            try:
                now = _answer(getattr(fs, name)(*args))
            except (OSError, ValueError) as e:
                now = _failed(e)
            if now != was:
                return False
    except (_Unreplayable, TypeError, ValueError, AttributeError):
        return False
    return True


#: Files inside a venv whose content :func:`complete` reads again in every scan (an
#: owner's marks) but its fingerprint does not cover (their presence it does).
UNCOVERED_MARKS = ("pipx_metadata.json", ".project")


def self_contained(facts: VenvFacts) -> bool:
    """Whether :func:`complete` makes the facts of this venv from its own facts, its base
    view (:mod:`venvkeeper.scan.grouping`: its link chains past the venv, its base, the
    host's read errors about those, its scripts' interpreters) and the questions it asked
    through :class:`Asking` (editable sources, egg-link targets, ``.pth`` directories,
    recorded locations, an owner's files beside the venv) alone: a venv or a legacy
    virtualenv of this host (not of another OS root), none of whose
    :data:`UNCOVERED_MARKS` is there."""
    if facts.kind not in (VenvKind.VENV, VenvKind.LEGACY_VIRTUALENV) or facts.root is not None:
        return False
    return not any(os.path.lexists(f"{facts.path}/{mark}") for mark in UNCOVERED_MARKS)


def _placeholder_chain(name: str) -> LinkChain:
    return LinkChain(name, (), None)


def read_own(
    path: str,
    kind: VenvKind = VenvKind.VENV,
    *,
    size: bool = False,
    top_level: bool = False,
    root: Optional[str] = None,
) -> VenvFacts:
    """What the venv at *path* holds itself, read statically: everything of
    :class:`VenvFacts` that depends only on files inside the venv (what
    :func:`venvkeeper.scan.incremental.fingerprint` covers; ``tests/test_seam.py`` lists
    the fields). The facts about paths outside it are left as placeholders for
    :func:`complete`: the chains hold only their names, no base, scripts' and editables'
    existence unknown, legacy editables named after their egg-link, no recorded
    locations, the creator unknown, and only the venv's own read errors.

    *root*: the OS root the venv belongs to (:mod:`venvkeeper.host.osroots`), when not
    this host's (kept in ``VenvFacts.root``: :func:`complete` asks that root)."""
    path = path.rstrip("/") or "/"
    if root is not None and root.rstrip("/") in ("", path):
        root = None  # the host's own /, or the venv itself: not another root
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
    orig_prefix = known_patch = None
    if kind is VenvKind.LEGACY_VIRTUALENV:
        orig_prefix = _legacy(path)[0]
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
    writable = [
        rel for rel in ("", "bin", "pyvenv.cfg") if writable_by_others(f"{path}/{rel}".rstrip("/"))
    ]
    site_dirs = read_site_dirs(path, errors, top_level, None)
    writable += [os.path.relpath(s.path, path) for s in site_dirs if s.writable_by_others]
    return VenvFacts(
        path=path,
        kind=kind,
        creator=Creator.UNKNOWN,
        cfg=cfg,
        cfg_error=cfg_error,
        chains=tuple(_placeholder_chain(n) for n in _chain_names(bin_entries)),
        base=None,
        site_dirs=site_dirs,
        scripts=_scripts(path, bin_entries),
        activate_virtual_env=_activate_virtual_env(path),
        recorded_path=recorded_destination(cfg),
        locations=(),
        owner_uid=owner,
        mode=mode,
        writable_by_others=tuple(w or "." for w in writable),
        orig_prefix=orig_prefix,
        size_bytes=tree_size(path) if size else None,
        errors=tuple(errors),
        root=root,
        recorded_python=known_patch,
    )


def inspect_venv(
    path: str,
    kind: VenvKind = VenvKind.VENV,
    *,
    host: Optional[HostCache] = None,
    size: bool = False,
    top_level: bool = False,
    root: Optional[str] = None,
) -> VenvFacts:
    """Read everything venvkeeper judges about the venv at *path*, statically:
    :func:`complete` of :func:`read_own`.

    *top_level* also collects each distribution's importable top-level names (what
    ``--deep`` imports); *size* sums the venv's file sizes. Both cost extra reads.
    *root*: the OS root the venv belongs to (:mod:`venvkeeper.host.osroots`), when not
    this host's: what the venv names outside itself is looked up inside that root, through
    *host* (by default a :class:`HostCache` of that root).
    """
    own = read_own(path, kind, size=size, top_level=top_level, root=root)
    if host is None:
        host = HostCache(RootFS(own.root), own.root) if own.root is not None else HostCache()
    return complete(own, host, top_level=top_level)
