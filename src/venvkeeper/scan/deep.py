"""``--deep``: run a venv's own interpreter to confirm its packages import.

This is the only place venvkeeper executes code from a scanned tree, and only when the
user asked for it. It runs as the venv's owner (privileges dropped when root), with a
minimal environment (no PYTHONPATH, no PYTHONHOME, nothing inherited), ``-E -s`` (ignore
PYTHON* variables and the user site), in ``/`` as working directory, under a timeout;
and only when nobody but that user and root can change anything it would run
(:func:`venv_distrust`, the one trust rule of :mod:`venvkeeper.host.trust` applied to
everything the interpreter reads code from). The repair's verification asks the same.
"""

from __future__ import annotations

import json
import os
import pwd
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Optional

from venvkeeper.checks import BOOTSTRAP
from venvkeeper.errors import CommandError
from venvkeeper.host import command, fsutil
from venvkeeper.host.trust import Distrust, TrustCache, distrust, tree_distrust, user_name
from venvkeeper.model.venv import DeepResult, Distribution, VenvFacts
from venvkeeper.textutil import canonical_name

MAX_MODULES = 500


# Runs inside the scanned venv: must work on Python 2.7 to 3.13. Module names come on stdin.
_PROBE = r"""
import sys, json, os
mods = json.loads(sys.stdin.read())
failed = []
for m in mods:
    try:
        __import__(m)
    except BaseException as e:
        failed.append([m, (type(e).__name__ + ": " + str(e))[:200]])
sys.stdout.write("\n@@venvkeeper@@" + json.dumps({
    "version": "%d.%d.%d" % tuple(sys.version_info[:3]),
    "prefix": sys.prefix,
    "uid": os.getuid(),
    "failed": failed,
}))
"""


def importable_names(
    dists: Iterable[Distribution], leave_out: Iterable[str] = (), limit: int = MAX_MODULES
) -> list[str]:
    """The public top-level module names of *dists*, in order, without duplicates. pip,
    setuptools and wheel are left out: they patch distutils on import and trip over each
    other in one process, and they are not what a venv is for."""
    skip = {canonical_name(n) for n in leave_out} | set(BOOTSTRAP)
    names: dict[str, None] = {}
    for d in dists:
        if canonical_name(d.name) in skip:
            continue
        for t in d.top_level:
            if t.isidentifier() and not t.startswith("_"):
                names[t] = None
    return list(names)[:limit]


def _modules(facts: VenvFacts) -> tuple[list[str], dict[str, str]]:
    """The modules to probe: those of every site-packages directory of the venv, the ones
    its interpreter does not see too (a venv made on 3.11 and now run by 3.12 keeps its
    packages in ``lib/python3.11``: that they fail to import is what ``--deep`` must
    confirm). Also: the modules found only in another minor's directory, with that minor,
    to say why their import fails."""
    version = facts.base.version if facts.base is not None else None
    seen = set(
        importable_names(
            d
            for s in facts.site_dirs
            if version is None or s.python_version == version
            for d in s.distributions
        )
    )
    elsewhere: dict[str, str] = {}
    for s in facts.site_dirs:
        if version is not None and s.python_version != version:
            for m in importable_names(s.distributions):
                if m not in seen:
                    elsewhere.setdefault(m, s.python_version or "?")
    names = importable_names(d for s in facts.site_dirs for d in s.distributions)
    return names, elsewhere


# --- what running a venv's interpreter reads code from, and who can change it ------------

#: The probe's PATH: a script's ``#!/usr/bin/env NAME`` finds NAME here.
PROBE_PATH = ("/usr/bin", "/bin")
#: Largest .pth file read for the directories it adds (site.py reads any; these are tiny).
PTH_LIMIT = 1 << 20
_MINOR = re.compile(r"python(\d+\.\d+t?)")


@dataclass(frozen=True)
class Untrusted:
    """Running the venv would run or import *what*, and someone other than the user it
    runs as (and root) can change it: *distrust* says which object and who."""

    what: str
    distrust: Distrust

    def __str__(self) -> str:
        if self.what == self.distrust.path:
            return str(self.distrust)
        return f"{self.what}: {self.distrust}"


def _interpreter_of(tree: str) -> str:
    python = f"{tree}/bin/python"
    return python if fsutil.lexists(python) else f"{tree}/bin/python3"


def _stdlibs(prefix: str, minor: Optional[str]) -> Iterator[str]:
    names = [f"python{minor}"] if minor else None
    for lib in ("lib", "lib64"):
        base = f"{prefix}/{lib}"
        for e in fsutil.listdir(base):
            wanted = _MINOR.fullmatch(e.name) if names is None else e.name in names
            if wanted and e.is_dir():
                yield e.path


def interpreter_distrust(
    python: str, uid: int, cache: TrustCache, *, prefixes: Iterable[str] = (), depth: int = 0
) -> Optional[Untrusted]:
    """Why running *python* as *uid* could run what someone else can change: the path
    and every link to the real file, a script's own interpreter, and the prefix it
    reads its standard library and shared library from (with *prefixes*: a venv's
    ``home``), each under the one trust rule; None when nobody else can."""
    problem = distrust(python, uid, cache=cache)
    if problem is not None:
        return Untrusted(f"the interpreter {python}", problem)
    real = os.path.realpath(python)
    head = fsutil.read_head(real, 256) or b""
    if head.startswith(b"#!"):
        words = head[2:].split(b"\n", 1)[0].split()
        if not words or depth >= 4:
            return None
        interp = os.fsdecode(words[0])
        if os.path.basename(interp) == "env" and len(words) > 1:
            name = os.fsdecode(words[1])
            found = [f"{d}/{name}" for d in PROBE_PATH if fsutil.is_file(f"{d}/{name}")]
            if not found:
                return None
            interp = found[0]
        return interpreter_distrust(interp, uid, cache, depth=depth + 1)
    m = _MINOR.search(os.path.basename(real))
    minor = m.group(1) if m else None
    seen: set[str] = set()
    for prefix in (os.path.dirname(os.path.dirname(real)), *prefixes):
        if prefix in seen or not m:
            continue  # not a Python: nothing more it is known to read
        seen.add(prefix)
        for part in (prefix, f"{prefix}/lib"):
            if fsutil.lexists(part):
                problem = distrust(part, uid, cache=cache)
                if problem is not None:
                    return Untrusted(f"the prefix {prefix} of {real}", problem)
        for stdlib in _stdlibs(prefix, minor):
            problem = tree_distrust(stdlib, uid, cache=cache)
            if problem is not None:
                return Untrusted(f"the standard library {stdlib} of {real}", problem)
    return None


def _site_dirs(tree: str) -> list[str]:
    out = []
    for lib in ("lib", "lib64", "local/lib"):
        for e in fsutil.listdir(f"{tree}/{lib}"):
            site = f"{e.path}/site-packages"
            if _MINOR.fullmatch(e.name) and fsutil.is_dir(site):
                out.append(site)
    return out


def _pth_dirs(site: str) -> Iterator[tuple[str, str]]:
    """(directory, .pth file) for each directory a .pth file of *site* adds to
    ``sys.path``, as site.py reads them (comments, ``import`` lines and missing
    directories left out). A .pth that cannot be read is said as such."""
    for e in fsutil.listdir(site):
        if not e.name.endswith(".pth"):
            continue
        try:
            data, truncated = fsutil.read_listed(e, PTH_LIMIT)
        except OSError:
            continue  # site.py cannot read it either
        if truncated:
            yield e.path, e.path  # judged as a directory of its own: refused below
            continue
        for raw in data.decode("utf-8", "surrogateescape").splitlines():
            line = raw.rstrip()
            if not line.strip() or line.startswith("#") or line.startswith(("import ", "import\t")):
                continue
            path = os.path.abspath(os.path.join(site, line))
            if fsutil.lexists(path):
                yield path, e.path


_MAPPING = re.compile(r"^MAPPING\s*(?::[^=\n]*)?=\s*(\{.*?\})\s*$", re.M | re.S)


def _editable_sources(site: str) -> Iterator[tuple[str, str]]:
    """(source directory, finder module) of each editable install in *site* that a
    setuptools finder maps (``__editable___NAME_finder.py``: its ``MAPPING`` of package
    names to source directories; the editables that add a directory through a .pth are
    :func:`_pth_dirs`'). A finder that cannot be read maps nothing site.py would load
    either."""
    import ast

    for e in fsutil.listdir(site):
        if not (e.name.startswith("__editable__") and e.name.endswith("_finder.py")):
            continue
        try:
            text = fsutil.read_listed(e, PTH_LIMIT)[0].decode("utf-8", "replace")
            m = _MAPPING.search(text)
            mapping = ast.literal_eval(m.group(1)) if m else {}
        except (OSError, ValueError, SyntaxError, RecursionError):
            continue
        if isinstance(mapping, dict):
            for path in mapping.values():
                if isinstance(path, str) and path.startswith("/") and fsutil.lexists(path):
                    yield path, e.path


def _system_sites(prefix: str, minor: str) -> list[str]:
    """The site directories of the base interpreter that a venv with
    ``include-system-site-packages`` imports from (Debian's and upstream's layouts)."""
    cands = [
        f"{prefix}/lib/python{minor}/site-packages",
        f"{prefix}/lib/python3/dist-packages",
        f"{prefix}/lib/python{minor}/dist-packages",
        f"{prefix}/local/lib/python{minor}/dist-packages",
    ]
    return [c for c in cands if fsutil.is_dir(c)]


def venv_distrust(tree: str, uid: int, cache: Optional[TrustCache] = None) -> Optional[Untrusted]:
    """Why running the venv at *tree* as *uid* could run what someone other than *uid*
    and root can change; None when nobody else can. Checked under the one trust rule:
    the venv itself and everything in it (its site directories, every .pth, every
    ``sitecustomize``), its interpreter to the real file and that interpreter's prefix and
    standard library, every directory a .pth adds to ``sys.path``, every source directory
    an editable install's finder maps, and with ``include-system-site-packages`` the base's site
    directories and what their .pth files add."""
    c = cache if cache is not None else TrustCache()
    problem = tree_distrust(tree, uid, cache=c)
    if problem is not None:
        return Untrusted(f"the venv {tree}", problem)
    cfg: dict[str, str] = {}
    head = fsutil.read_head(f"{tree}/pyvenv.cfg", 1 << 16, follow_links=False) or b""
    for line in head.decode("utf-8", "surrogateescape").splitlines():
        key, sep, value = line.partition("=")
        if sep:
            cfg[key.strip().lower()] = value.strip()
    home = cfg.get("home")
    homes = [os.path.dirname(home.rstrip("/"))] if home and home.startswith("/") else []
    python = _interpreter_of(tree)
    found = interpreter_distrust(python, uid, c, prefixes=homes)
    if found is not None:
        return found
    sites = _site_dirs(tree)
    if cfg.get("include-system-site-packages", "").lower() == "true":
        real = os.path.realpath(python)
        m = _MINOR.search(os.path.basename(real))
        if m:
            for prefix in dict.fromkeys([os.path.dirname(os.path.dirname(real)), *homes]):
                for site in _system_sites(prefix, m.group(1)):
                    problem = tree_distrust(site, uid, cache=c)
                    if problem is not None:
                        return Untrusted(f"the system site directory {site}", problem)
                    sites.append(site)
    inside = os.path.realpath(tree) + "/"
    for site in sites:
        found = _reached_from(site, uid, c, inside)
        if found is not None:
            return found
    return None


def _reached_from(
    site: str, uid: int, cache: TrustCache, inside: Optional[str] = None
) -> Optional[Untrusted]:
    """What the site directory *site* makes the interpreter import from elsewhere: the
    directories its .pth files add, the sources its editable finders map (those *inside*
    a tree already checked are left out)."""
    for path, pth in _pth_dirs(site):
        if path == pth:
            return Untrusted(pth, Distrust(pth, uid, f"is larger than {PTH_LIMIT} bytes"))
        if inside and (os.path.realpath(path) + "/").startswith(inside):
            continue  # checked with the venv
        problem = tree_distrust(path, uid, cache=cache)
        if problem is not None:
            return Untrusted(f"{path} (added to sys.path by {pth})", problem)
    for path, finder in _editable_sources(site):
        problem = tree_distrust(path, uid, cache=cache)
        if problem is not None:
            return Untrusted(f"{path} (an editable source {finder} maps)", problem)
    return None


def installation_distrust(
    python: str, uid: int, cache: Optional[TrustCache] = None
) -> Optional[Untrusted]:
    """Why a program that *python* runs (a console script's interpreter, the one running
    venvkeeper) could import what someone other than *uid* and root can change: the
    interpreter and its standard library; then the venv it belongs to, when *python* is
    a venv's ``bin/python`` (everything in it), else its own site directories and what
    their .pth files add."""
    c = cache if cache is not None else TrustCache()
    bad = interpreter_distrust(python, uid, c)
    if bad is not None:
        return bad
    venv = os.path.dirname(os.path.dirname(os.path.abspath(python)))
    if fsutil.lexists(f"{venv}/pyvenv.cfg"):
        return venv_distrust(venv, uid, c)
    real = os.path.realpath(python)
    m = _MINOR.search(os.path.basename(real))
    if m is None:
        return None
    prefix = os.path.dirname(os.path.dirname(real))
    sites = _system_sites(prefix, m.group(1))
    if prefix == "/usr":  # Debian's site.py adds /usr/local's too
        sites += _system_sites("/usr/local", m.group(1))
    for site in dict.fromkeys(sites):
        problem = tree_distrust(site, uid, cache=c)
        if problem is not None:
            return Untrusted(f"the site directory {site} of {real}", problem)
        found = _reached_from(site, uid, c)
        if found is not None:
            return found
    return None


#: What a dynamically linked interpreter reads in its root before any Python: the loader's
#: preload list and cache, and the library directories (each with every directory above).
_ROOT_LOADER = ("etc/ld.so.preload", "etc/ld.so.cache", "etc/ld.so.conf", "etc/ld.so.conf.d")
_ROOT_LIBS = (
    "usr",
    "usr/lib",
    "usr/lib64",
    "lib",
    "lib64",
    "usr/lib/x86_64-linux-gnu",
    "usr/lib/aarch64-linux-gnu",
)


def root_distrust(
    root: str, python: str, uid: int, cache: Optional[TrustCache] = None
) -> Optional[Untrusted]:
    """Why running *python* (a path inside the OS root *root*) there through ``chroot`` as
    *uid* could run what someone other than *uid* and root can change: the root directory,
    its loader's configuration and library directories, and the interpreter as the root
    resolves it (its links read inside the root), with its prefix and standard library;
    None when nobody else can."""
    from venvkeeper.host.hostfs import RootFS

    c = cache if cache is not None else TrustCache()
    problem = distrust(root, uid, cache=c)
    if problem is not None:
        return Untrusted(f"the OS root {root}", problem)
    for rel in (*_ROOT_LOADER, *_ROOT_LIBS):
        path = f"{root.rstrip('/')}/{rel}"
        if fsutil.lexists(path):
            problem = distrust(path, uid, cache=c)
            if problem is not None:
                return Untrusted(f"{path} of the OS root {root}", problem)
    return interpreter_distrust(RootFS(root).host_path(python), uid, c)


def run_deep(
    facts: VenvFacts, timeout: float = 30.0, trust: Optional[TrustCache] = None
) -> DeepResult:
    """Start ``bin/python`` of the venv and import every top-level module of its packages,
    when nobody but the user it runs as (the venv's owner) and root can change what it
    would run (:func:`venv_distrust`; *trust* is the scan's cache)."""
    python = f"{facts.path}/bin/python"
    if not os.path.lexists(python):
        python = f"{facts.path}/bin/python3"
    if not os.path.lexists(python):
        return DeepResult(ran=False, error="no bin/python to run")
    owner = facts.owner_uid
    me = os.geteuid()
    user: Optional[int] = None
    group: Optional[int] = None
    home = "/"
    try:
        pw = pwd.getpwuid(owner)
        home = pw.pw_dir
        group = pw.pw_gid
    except KeyError:
        group = owner
    if me == 0 and owner != 0:
        user = owner
    elif me != owner and me != 0:
        return DeepResult(ran=False, error=f"not run: the venv belongs to uid {owner}, not to you")
    run_as = me if user is None else user
    untrusted = venv_distrust(facts.path, run_as, trust)
    if untrusted is not None:
        who = "root" if run_as == 0 else user_name(run_as)
        return DeepResult(
            ran=False,
            error=f"not run as {who}: {untrusted}: another user could change what it would run",
        )
    env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": home}
    modules, elsewhere = _modules(facts)
    argv = [python, "-E", "-s", "-c", _PROBE]
    if facts.root is not None:
        # Another OS root: its interpreter runs there (chroot), as the venv's owner.
        if me != 0:
            return DeepResult(
                ran=False,
                error=f"inside the OS root {facts.root}: its interpreter runs there through"
                " chroot, which needs root",
            )
        from venvkeeper.host.osroots import chroot_argv

        inner = facts.path_in_root + python[len(facts.path) :]
        untrusted = root_distrust(facts.root, inner, run_as, trust)
        if untrusted is not None:
            who = "root" if run_as == 0 else user_name(run_as)
            return DeepResult(
                ran=False,
                error=f"not run as {who}: {untrusted}: another user could change what it would run",
            )
        try:
            argv = chroot_argv(facts.root, [inner, *argv[1:]], owner, group)
        except OSError as e:
            return DeepResult(ran=False, error=str(e))
        user = group = None  # chroot changes the user, after it changed the root
        env["HOME"] = "/"
    try:
        done = command.run(
            argv,
            timeout=timeout,
            env=env,
            cwd="/",
            user=user,
            group=group if user is not None else None,
            input=json.dumps(modules),
        )
    except CommandError as e:
        return DeepResult(ran=True, error=str(e))
    marker = done.stdout.rfind("@@venvkeeper@@")
    if done.returncode != 0 or marker < 0:
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return DeepResult(ran=True, error=f"exit {done.returncode}: {tail[:300]}")
    try:
        data = fsutil.load_json(done.stdout[marker + len("@@venvkeeper@@") :])
        if not isinstance(data, dict):
            raise TypeError("not an object")
        failed = tuple(
            f"{m} ({why}"
            + (f"; installed for Python {elsewhere[m]} only" if m in elsewhere else "")
            + ")"
            for m, why in data.get("failed", [])
        )
        uid = data.get("uid")
        return DeepResult(
            ran=True,
            version=str(data.get("version")),
            failed_imports=failed,
            uid=uid if isinstance(uid, int) else None,
        )
    except (ValueError, TypeError) as e:
        return DeepResult(ran=True, error=f"unreadable probe output: {e}")
