"""From a path or a command line to the :class:`Reference` values that name a venv.

One classifier for every reader: an executable path (a venv's interpreter or script, a
link that leads into a venv, a script whose shebang names a venv's interpreter), a bare
name through the launcher's search path, ``activate``, an embedding server's home, a
hard-coded ``lib/pythonX.Y`` and the environment variables that name one.

A venv's interpreter is never resolved to its real file: ``venv/bin/python3`` is a link to
``/usr/bin/python3``, and resolving it would lose the venv. Links of commands are followed
hop by hop, and only up to the first path that lies in a venv's ``bin/``.
"""

from __future__ import annotations

import posixpath
import re
import stat
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Optional

from venvkeeper.consumers.rootfs import MAX_HOPS, RootFS
from venvkeeper.consumers.rootfs import norm as normpath
from venvkeeper.host.shebang import env_target, parse_shebang, relocatable_name
from venvkeeper.model.consumers import Confidence, Reference, RefKind, VenvState

PY_NAME = re.compile(r"python(?:\d+(?:\.\d+)?t?)?")
#: ``PREFIX/lib/pythonX.Y/site-packages``: the prefix and the minor it hard-codes.
SITE = re.compile(r"^(/.*?)/lib(?:64)?/python(\d+\.\d+)t?(?:/(?:site|dist)-packages)?(?=/|$)")
#: Directory names people give venvs: a missing one is still named as a (gone) venv.
VENVISH = re.compile(r"(?:^|[._-])(?:venv|virtualenv|env|pyenv|venvs|virtualenvs)$|^\.?venv")
#: Where a bin/ is the system's, never a venv's.
SYSTEM_PREFIXES = frozenset({"/", "/usr", "/usr/local", "/opt", "/snap", "/home", "/root"})
#: Environment variables that name a uWSGI venv (every uWSGI option is also one).
UWSGI_HOME_VARS = ("UWSGI_HOME", "UWSGI_VIRTUALENV", "UWSGI_VENV", "UWSGI_PYHOME")
#: Interpreters that run their first argument, and launchers that run theirs.
SHELLS = frozenset({"sh", "bash", "dash", "zsh", "ksh"})


@dataclass(frozen=True)
class Where:
    """Where a reference was read: the file, its line, the directive."""

    source: str
    line: int
    key: str = ""


def minor_of(path: str) -> Optional[str]:
    m = SITE.match(path)
    return m.group(2) if m else None


class Classifier:
    """Makes references for one root (its :class:`RootFS`, with its caches)."""

    def __init__(self, fs: RootFS) -> None:
        self.fs = fs
        #: Executables that lead to no venv (``/bin/mkdir``, a distro daemon), by search
        #: path: most of a host's commands, each looked at once.
        self._nothing: set[tuple[str, tuple[str, ...]]] = set()

    # --- the one constructor ----------------------------------------------------------

    def make(
        self,
        kind: RefKind,
        confidence: Confidence,
        text: str,
        path: Optional[str],
        venv: Optional[str],
        state: VenvState,
        where: Where,
        minor: Optional[str] = None,
        via: Sequence[str] = (),
    ) -> Reference:
        fs = self.fs
        return Reference(
            kind,
            confidence,
            text,
            fs.host(path) if path else None,
            fs.host(venv) if venv else None,
            state,
            where.source,
            where.line,
            minor,
            tuple(fs.host(v) if v.startswith("/") else v for v in via),
            where.key,
        )

    # --- venv directories -------------------------------------------------------------

    def venv_of_bin(self, path: str) -> Optional[str]:
        """The venv *path* (``VENV/bin/NAME``) lies in by its shape, or None."""
        d = posixpath.dirname(path)
        if posixpath.basename(d) != "bin":
            return None
        venv = posixpath.dirname(d)
        return None if venv in SYSTEM_PREFIXES else venv

    def _state(self, venv: str) -> VenvState:
        return self.fs.venv_state(venv)

    # --- executables ------------------------------------------------------------------

    def executable(
        self,
        path: str,
        *,
        text: str,
        confidence: Confidence,
        where: Where,
        search: Sequence[str] = (),
        kind: Optional[RefKind] = None,
    ) -> Optional[Reference]:
        """The reference of running *path* (absolute, inside the root), or None when it
        has nothing to do with a venv. *search* is the PATH that a ``#!/usr/bin/env``
        shebang of the file resolves through (none known: not followed)."""
        path = normpath(path)
        key = (path, tuple(search))
        if key in self._nothing:
            return None
        ref = self._executable(
            path, text=text, confidence=confidence, where=where, search=search, kind=kind
        )
        if ref is None:
            self._nothing.add(key)
        return ref

    def _executable(
        self,
        path: str,
        *,
        text: str,
        confidence: Confidence,
        where: Where,
        search: Sequence[str],
        kind: Optional[RefKind],
    ) -> Optional[Reference]:
        venv = self.venv_of_bin(path)
        name = posixpath.basename(path)
        is_py = PY_NAME.fullmatch(name) is not None
        if venv is not None:
            state = self._state(venv)
            if state is VenvState.VENV or (
                state is VenvState.GONE and (is_py or VENVISH.search(posixpath.basename(venv)))
            ):
                k = kind or (RefKind.EXEC_INTERP if is_py else RefKind.EXEC_SCRIPT)
                return self.make(k, confidence, text, path, venv, state, where)
            if state is VenvState.UNKNOWN and is_py:
                return self.make(RefKind.EXEC_INTERP, confidence, text, path, venv, state, where)
        st = self.fs.lstat(path)
        if st is None:
            return None
        if stat.S_ISLNK(st.st_mode):
            return self._via_link(path, text=text, confidence=confidence, where=where)
        if stat.S_ISREG(st.st_mode):
            return self._via_shebang(
                path, text=text, confidence=confidence, where=where, search=search
            )
        return None

    def _via_link(
        self, path: str, *, text: str, confidence: Confidence, where: Where
    ) -> Optional[Reference]:
        """Follow *path*'s links hop by hop, up to the first path inside a venv's bin/."""
        hops = [path]
        cur = path
        for _ in range(MAX_HOPS):
            target = self.fs.readlink(cur)
            if target is None:
                break
            cur = normpath(
                target if target.startswith("/") else posixpath.join(posixpath.dirname(cur), target)
            )
            hops.append(cur)
            venv = self.venv_of_bin(cur)
            if venv is not None:
                state = self._state(venv)
                if state is VenvState.VENV or (
                    state is VenvState.GONE and VENVISH.search(posixpath.basename(venv))
                ):
                    return self.make(
                        RefKind.EXEC_VIA_LINK, confidence, text, cur, venv, state, where, via=hops
                    )
            st = self.fs.lstat(cur)
            if st is None or not stat.S_ISLNK(st.st_mode):
                break
        if self.fs.is_file(cur) and self.fs.lstat(cur) is not None:
            ref = self._via_shebang(cur, text=text, confidence=confidence, where=where)
            if ref is not None:
                return Reference(
                    ref.kind,
                    ref.confidence,
                    ref.text,
                    ref.path,
                    ref.venv,
                    ref.venv_state,
                    ref.source,
                    ref.line,
                    ref.minor,
                    tuple(self.fs.host(h) for h in hops) + ref.via,
                    ref.key,
                )
        return None

    def _via_shebang(
        self,
        path: str,
        *,
        text: str,
        confidence: Confidence,
        where: Where,
        search: Sequence[str] = (),
    ) -> Optional[Reference]:
        head = self.fs.head(path, 1024)
        if not head or not head.startswith(b"#!"):
            return None
        interp, relative = parse_shebang(head)
        if relative:
            name = relocatable_name(head)
            real = self.fs.real(path)
            if name is None or real is None:
                return None
            interp = posixpath.join(posixpath.dirname(self.fs.inside(real)), name)
        if interp is None:
            words = env_target(head)
            if words and search and PY_NAME.fullmatch(words[0]):
                found = self.which(words[0], search)
                if found is not None:
                    return self._path_entry(found, text, where, via=(path,))
            return None
        interp = normpath(interp)
        venv = self.venv_of_bin(interp)
        if venv is None or not PY_NAME.fullmatch(posixpath.basename(interp)):
            return None
        state = self._state(venv)
        if state is VenvState.NOT_VENV:
            return None
        return self.make(
            RefKind.EXEC_VIA_SHEBANG, confidence, text, interp, venv, state, where, via=(path,)
        )

    def which(self, name: str, search: Iterable[str]) -> Optional[str]:
        """The first executable regular file *name* in the directories *search*."""
        for d in search:
            if not d.startswith("/"):
                continue
            cand = normpath(posixpath.join(d, name))
            st = self.fs.stat(cand)
            if st is not None and stat.S_ISREG(st.st_mode) and st.st_mode & 0o111:
                return cand
            if st is None and self.venv_of_bin(cand) and self.fs.lstat(cand) is not None:
                # a venv's interpreter link that leads nowhere: still that venv's (broken)
                venv = self.venv_of_bin(cand)
                if venv is not None and self._state(venv) is VenvState.VENV:
                    return cand
        return None

    def bare(
        self, name: str, *, search: Sequence[str], text: str, where: Where
    ) -> Optional[Reference]:
        """A bare command name resolved through *search* (the PATH the launcher uses)."""
        found = self.which(name, search)
        if found is None:
            return None
        ref = self._path_entry(found, text, where)
        if ref is not None:
            return ref
        return self.executable(
            found, text=text, confidence=Confidence.PATH_INFERRED, where=where, search=search
        )

    def _path_entry(
        self, found: str, text: str, where: Where, via: Sequence[str] = ()
    ) -> Optional[Reference]:
        """*found* (a bare name found through a search path) when it lies in a venv's
        bin/: that venv, named by the search path."""
        venv = self.venv_of_bin(found)
        if venv is None or self._state(venv) is not VenvState.VENV:
            return None
        return self.make(
            RefKind.PATH_ENTRY,
            Confidence.PATH_INFERRED,
            text,
            found,
            venv,
            VenvState.VENV,
            where,
            via=via,
        )

    # --- other kinds --------------------------------------------------------------------

    def activate(self, path: str, *, text: str, confidence: Confidence, where: Where) -> Reference:
        venv = self.venv_of_bin(normpath(path)) or posixpath.dirname(posixpath.dirname(path))
        return self.make(RefKind.ACTIVATE, confidence, text, path, venv, self._state(venv), where)

    def home(self, path: str, *, text: str, confidence: Confidence, where: Where) -> Reference:
        """An embedding server's venv (uwsgi ``home``, mod_wsgi ``python-home``)."""
        venv = normpath(path.rstrip("/") or "/")
        return self.make(
            RefKind.EMBEDDED_HOME, confidence, text, venv, venv, self._state(venv), where
        )

    def sitepkgs(
        self, path: str, *, text: str, confidence: Confidence, where: Where
    ) -> Optional[Reference]:
        """A path under ``PREFIX/lib/pythonX.Y``: a hard-coded minor (PREFIX a venv, or a
        gone directory shaped like one)."""
        m = SITE.match(normpath(path))
        if m is None:
            return None
        prefix, minor = m.group(1), m.group(2)
        if prefix in SYSTEM_PREFIXES:
            return None
        state = self._state(prefix)
        if state is VenvState.NOT_VENV:
            return None
        return self.make(
            RefKind.SITEPKGS_HARDCODE, confidence, text, path, prefix, state, where, minor
        )

    def environment(
        self, env: Mapping[str, str], *, where: Where, confidence: Confidence
    ) -> list[Reference]:
        """The references an environment makes by itself: ``PYTHONPATH`` entries under a
        ``lib/pythonX.Y``, a uWSGI home."""
        out: list[Reference] = []
        for entry in env.get("PYTHONPATH", "").split(":"):
            if entry:
                ref = self.sitepkgs(
                    entry,
                    text=f"PYTHONPATH={env['PYTHONPATH']}",
                    confidence=confidence,
                    where=where,
                )
                if ref is not None:
                    out.append(ref)
        for var in UWSGI_HOME_VARS:
            value = env.get(var)
            if value and value.startswith("/"):
                out.append(
                    self.home(value, text=f"{var}={value}", confidence=confidence, where=where)
                )
        return out

    def command(
        self,
        argv: Sequence[str],
        *,
        where: Where,
        confidence: Confidence,
        search: Sequence[str],
        cwd: Optional[str] = None,
        bare_search: Optional[Sequence[str]] = None,
    ) -> list[Reference]:
        """The references of running *argv*: its argv0 (absolute, relative to *cwd*, or
        bare through *bare_search*, default *search*), and through ``/usr/bin/env`` the
        command it runs (children resolve through *search*, the environment's PATH)."""
        if not argv:
            return []
        argv0 = argv[0]
        text = " ".join(argv)
        if argv0.startswith("/") or "/" in argv0:
            path = argv0 if argv0.startswith("/") else posixpath.join(cwd or "/", argv0)
            ref = self.executable(
                normpath(path), text=text, confidence=confidence, where=where, search=search
            )
        else:
            ref = self.bare(
                argv0,
                search=bare_search if bare_search is not None else search,
                text=text,
                where=where,
            )
        if ref is not None:
            return [ref]
        if posixpath.basename(argv0) == "env":
            rest = list(argv[1:])
            while rest and (rest[0].startswith("-") or "=" in rest[0]):
                rest.pop(0)
            if rest:
                return self.command(
                    rest,
                    where=where,
                    confidence=confidence,
                    search=search,
                    cwd=cwd,
                    bare_search=search,
                )
        return []
