"""Apache mod_wsgi: the venvs of ``WSGIDaemonProcess`` (``python-home=``, ``python-path=``)
and of embedded mode (``WSGIPythonHome``, ``WSGIPythonPath``), with the Python that
``mod_wsgi.so`` was built for.

The configuration is read from its main file as Apache does: Debian's
``/etc/apache2/apache2.conf`` (``${APACHE_...}`` from ``/etc/apache2/envvars``) or RHEL's
``/etc/httpd/conf/httpd.conf``; ``Include``/``IncludeOptional`` with globs (relative to
``ServerRoot``, matches sorted), with loop detection; ``Define`` and ``${VAR}``; ``\\``
continuation lines; quoted arguments; ``<IfModule>``/``<IfDefine>`` evaluated against the
modules loaded and the names defined so far. Sites only in ``sites-available`` are not
included, so they are not read. Directives are case-insensitive. ``home=`` of a daemon
process is its working directory, not a venv.
"""

from __future__ import annotations

import fnmatch
import glob
import posixpath
import re
from dataclasses import dataclass, field
from typing import Optional

from venvkeeper.consumers import elf
from venvkeeper.consumers.chains import APACHE, Chain, packaged
from venvkeeper.consumers.refs import Classifier, Where
from venvkeeper.consumers.rootfs import RootFS, read_text, syntax, with_problems
from venvkeeper.model.consumers import (
    Activation,
    Confidence,
    Consumer,
    ConsumerKind,
    Reference,
    RestartVerb,
)
from venvkeeper.model.findings import Finding

DEBIAN = "/etc/apache2/apache2.conf"
RHEL = "/etc/httpd/conf/httpd.conf"
MAX_FILES = 2000
MAX_DEPTH = 32
_VAR = re.compile(r"\$\{([A-Za-z0-9_.-]+)\}")
_ADDSITEDIR = re.compile(
    r"""(?:addsitedir|sys\.path\.(?:insert|append))\s*\((?:\s*\d+\s*,)?\s*(?:r?["'])([^"']+)["']"""
)
_ACTIVATE_THIS = re.compile(r"""["']([^"']+/bin/activate_this\.py)["']""")


def split_args(line: str) -> list[str]:
    """Apache's ``ap_getword_conf``: words, ``"..."`` and ``'...'`` quoted (a backslash
    escapes the quote inside)."""
    out: list[str] = []
    i, n = 0, len(line)
    while i < n:
        while i < n and line[i] in " \t":
            i += 1
        if i >= n:
            break
        if line[i] in "\"'":
            q = line[i]
            i += 1
            buf = []
            while i < n and line[i] != q:
                if line[i] == "\\" and i + 1 < n and line[i + 1] in (q, "\\"):
                    i += 1
                buf.append(line[i])
                i += 1
            i += 1
            out.append("".join(buf))
        else:
            j = i
            while j < n and line[j] not in " \t":
                j += 1
            out.append(line[i:j])
            i = j
    return out


@dataclass
class Directive:
    name: str  # lower case
    args: list[str]
    source: str  # inside the root
    line: int
    vhost: Optional[str] = None


@dataclass
class _State:
    server_root: str
    defines: dict[str, str]
    modules: set[str] = field(default_factory=set)
    stack: list[str] = field(default_factory=list)
    files: int = 0
    directives: list[Directive] = field(default_factory=list)
    problems: list[Finding] = field(default_factory=list)
    module_paths: dict[str, str] = field(default_factory=dict)


def read_envvars(fs: RootFS, path: str) -> dict[str, str]:
    """``export NAME=value`` lines of Debian's envvars (no shell run: ``$SUFFIX`` is empty)."""
    out: dict[str, str] = {}
    try:
        text = fs.read(path).decode("utf-8", "replace")
    except OSError:
        return out
    for line in text.splitlines():
        m = re.match(r"^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)=(.*)$", line)
        if not m:
            continue
        value = m.group(2).strip().strip("'\"")
        value = re.sub(
            r"\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?", lambda x: out.get(x.group(1), ""), value
        )
        out[m.group(1)] = value
    return out


def _glob(fs: RootFS, pattern: str) -> list[str]:
    """*pattern* (absolute, inside the root) matched component by component, sorted."""
    parts = [p for p in pattern.split("/") if p]
    paths = ["/"]
    for part in parts:
        nxt: list[str] = []
        for base in paths:
            if glob.has_magic(part):
                nxt += [
                    posixpath.join(base, e.name)
                    for e in fs.listdir(base)
                    if fnmatch.fnmatchcase(e.name, part) and not e.name.startswith(".")
                ]
            else:
                nxt.append(posixpath.join(base, part))
        paths = nxt
    return sorted(paths)


def _read(fs: RootFS, path: str, st: _State, optional: bool, vhost: Optional[str]) -> None:
    if path in st.stack:
        st.problems.append(
            syntax(fs.host(st.stack[-1]), 0, f"include loop: {' -> '.join([*st.stack, path])}")
        )
        return
    if len(st.stack) > MAX_DEPTH or st.files >= MAX_FILES:
        st.problems.append(syntax(fs.host(path), 0, "too many nested or included files"))
        return
    if fs.is_dir(path):
        for e in fs.listdir(path):
            if not e.name.startswith("."):
                _read(fs, f"{path}/{e.name}", st, optional, vhost)
        return
    text, problems = read_text(fs, path, fs.host(path))
    if text is None:
        if not (optional and not fs.exists(path)):
            st.problems += problems
        return
    st.problems += problems
    st.files += 1
    st.stack.append(path)
    try:
        _parse(fs, text, path, st, vhost)
    finally:
        st.stack.pop()


def _parse(fs: RootFS, text: str, path: str, st: _State, vhost: Optional[str]) -> None:
    active: list[bool] = []
    lines = text.split("\n")
    i = 0
    while i < len(lines):
        n = i + 1
        line = lines[i].strip()
        i += 1
        while line.endswith("\\") and i < len(lines):
            line = line[:-1] + " " + lines[i].strip()
            i += 1
        if not line or line.startswith("#"):
            continue
        line = _VAR.sub(lambda m: st.defines.get(m.group(1), m.group(0)), line)
        if line.startswith("</"):
            if active:
                active.pop()
            if line.lower().startswith("</virtualhost"):
                vhost = None
            continue
        if line.startswith("<"):
            inner = line[1:].rstrip(">").strip()
            words = split_args(inner)
            tag = words[0].lower() if words else ""
            arg = words[1] if len(words) > 1 else ""
            ok = all(active) if active else True
            if tag == "ifmodule":
                neg = arg.startswith("!")
                name = arg.lstrip("!")
                have = name in st.modules or name.replace(".c", "_module") in st.modules
                active.append(ok and (have != neg))
            elif tag == "ifdefine":
                neg = arg.startswith("!")
                active.append(ok and ((arg.lstrip("!") in st.defines) != neg))
            else:
                if tag == "virtualhost":
                    vhost = arg
                active.append(ok)
            continue
        if active and not all(active):
            continue
        words = split_args(line)
        if not words:
            continue
        name = words[0].lower()
        args = words[1:]
        if name == "define" and args:
            st.defines[args[0]] = args[1] if len(args) > 1 else ""
        elif name == "undefine" and args:
            st.defines.pop(args[0], None)
        elif name == "serverroot" and args:
            st.server_root = args[0]
        elif name == "loadmodule" and len(args) >= 2:
            st.modules.add(args[0])
            mod = args[1] if args[1].startswith("/") else posixpath.join(st.server_root, args[1])
            st.modules.add(posixpath.basename(mod).split(".so")[0] + ".c")
            st.module_paths[args[0]] = mod
        elif name in ("include", "includeoptional") and args:
            pattern = (
                args[0] if args[0].startswith("/") else posixpath.join(st.server_root, args[0])
            )
            matches = _glob(fs, pattern) if glob.has_magic(pattern) else [pattern]
            if not matches and name == "include" and not glob.has_magic(pattern):
                st.problems.append(syntax(fs.host(path), n, f"Include of a missing {args[0]}"))
            for m in matches:
                _read(fs, m, st, name == "includeoptional" or glob.has_magic(pattern), vhost)
        elif name.startswith("wsgi"):
            st.directives.append(Directive(name, args, path, n, vhost))


def read_chain(fs: RootFS, cls: Classifier, chain: Chain) -> list[Consumer]:
    """Every mod_wsgi consumer of the Apache configuration *chain* names ("" for the
    layout this root has: Debian's, else RHEL's)."""
    main = chain.config or (DEBIAN if fs.exists(DEBIAN) else RHEL)
    debian = main.startswith("/etc/apache2/")
    defines = read_envvars(fs, "/etc/apache2/envvars") if debian else {}
    st = _State(posixpath.dirname(main) if debian else "/etc/httpd", defines)
    _read(fs, main, st, False, None)
    module = st.module_paths.get("wsgi_module")
    minor, module_file = elf.embedded_minor(fs, module) if module else (None, None)
    out: list[Consumer] = []
    groups: dict[tuple[str, Optional[str]], Directive] = {}
    embedded: list[Directive] = []
    scripts: list[Directive] = []
    for d in st.directives:
        if d.name == "wsgidaemonprocess" and d.args:
            groups[(d.args[0], d.vhost)] = d
        elif d.name in ("wsgipythonhome", "wsgipythonpath"):
            embedded.append(d)
        elif d.name in ("wsgiscriptalias", "wsgiscriptaliasmatch", "wsgiimportscript"):
            scripts.append(d)
    for (group, _vhost), d in groups.items():
        opts = {}
        for a in d.args[1:]:
            k, eq, v = a.partition("=")
            if eq:
                opts[k.lower()] = v
        where = Where(fs.host(d.source), d.line, "WSGIDaemonProcess")
        refs: list[Reference] = []
        home = opts.get("python-home")
        if home:
            refs.append(
                cls.home(home, text=f"python-home={home}", confidence=Confidence.EXACT, where=where)
            )
        for entry in opts.get("python-path", "").split(":"):
            if entry:
                r = cls.sitepkgs(
                    entry,
                    text=f"python-path={opts['python-path']}",
                    confidence=Confidence.EXACT,
                    where=where,
                )
                if r is not None:
                    refs.append(r)
        refs += _script_refs(fs, cls, scripts, group, st.server_root)
        if refs:
            out.append(
                _consumer(
                    fs,
                    f"WSGIDaemonProcess {group}",
                    d,
                    refs,
                    opts.get("user"),
                    chain,
                    minor,
                    module_file,
                )
            )
    if embedded:
        refs = []
        for d in embedded:
            where = Where(fs.host(d.source), d.line, d.name)
            for a in d.args:
                for entry in a.split(":") if d.name == "wsgipythonpath" else [a.split(":")[0]]:
                    if d.name == "wsgipythonhome" and entry:
                        refs.append(
                            cls.home(
                                entry,
                                text=f"WSGIPythonHome {a}",
                                confidence=Confidence.EXACT,
                                where=where,
                            )
                        )
                    elif entry:
                        r = cls.sitepkgs(
                            entry,
                            text=f"WSGIPythonPath {a}",
                            confidence=Confidence.EXACT,
                            where=where,
                        )
                        if r is not None:
                            refs.append(r)
        if refs:
            out.append(
                _consumer(fs, "WSGIPythonHome", embedded[0], refs, None, chain, minor, module_file)
            )
    empty = Consumer(
        ConsumerKind.MOD_WSGI,
        fs.host(main),
        fs.host(main),
        0,
        None,
        (),
        Activation.WEB,
        restart=chain.restart,
    )
    return with_problems(out, st.problems, empty)


def _script_refs(
    fs: RootFS, cls: Classifier, scripts: list[Directive], group: str, server_root: str
) -> list[Reference]:
    """A .wsgi script of this process group that activates a venv or adds a
    ``lib/pythonX.Y`` itself (a heuristic: the script is Python, read, never run)."""
    out: list[Reference] = []
    for d in scripts:
        pg = next((a.split("=", 1)[1] for a in d.args if a.startswith("process-group=")), None)
        if pg is not None and pg != group:
            continue
        files = [a for a in d.args[1:] if "=" not in a and a.startswith("/")]
        for f in files[:1]:
            try:
                text = fs.read(f, 256 << 10).decode("utf-8", "replace")
            except OSError:
                continue
            for m in _ACTIVATE_THIS.finditer(text):
                where = Where(fs.host(f), _line(text, m.start()), "activate_this")
                out.append(
                    cls.activate(
                        m.group(1).removesuffix("_this.py"),
                        text=m.group(0),
                        confidence=Confidence.SHELL_HEURISTIC,
                        where=where,
                    )
                )
            for m in _ADDSITEDIR.finditer(text):
                where = Where(fs.host(f), _line(text, m.start()), "sys.path")
                r = cls.sitepkgs(
                    m.group(1), text=m.group(0), confidence=Confidence.SHELL_HEURISTIC, where=where
                )
                if r is not None:
                    out.append(r)
    return out


def _line(text: str, index: int) -> int:
    return text[:index].count("\n") + 1


def _consumer(
    fs: RootFS,
    name: str,
    d: Directive,
    refs: list[Reference],
    user: Optional[str],
    chain: Chain,
    minor: Optional[str],
    module: Optional[str],
) -> Consumer:
    return chain.consumer(
        kind=ConsumerKind.MOD_WSGI,
        name=name,
        source=fs.host(d.source),
        line=d.line,
        user=user or chain.user,
        refs=tuple(refs),
        activation=Activation.WEB,
        embedded_python=minor,
        embedded_module=module,
    )


def default_chain(fs: RootFS, unit: str, running: Optional[bool]) -> Chain:
    main = DEBIAN if fs.exists(DEBIAN) else RHEL
    user = "www-data" if main == DEBIAN else "apache"
    return packaged(
        APACHE, main, fs.host(main), unit, RestartVerb.RELOAD, running=running, user=user
    )
