"""uWSGI apps: Debian's ``/etc/uwsgi/apps-enabled`` (run by ``uwsgi.service``),
``uwsgi-app@NAME`` instances and Emperor vassals (``emperor = DIR|GLOB``), and any
``uwsgi --ini F`` a unit runs.

Formats (uwsgi-docs ``Configuration.rst``): INI ``[uwsgi]`` (``file.ini:section`` picks
another; a bare key is true), uWSGI's own line-based YAML (``uwsgi:`` then ``key: value``;
repeated keys are valid), XML ``<uwsgi>`` (read with a pattern, never an XML parser: no
entities), JSON ``{"uwsgi": {...}}`` (lists are repeated options). Includes (``ini =``,
``include =``, ``yaml =`` ...) are followed where they are met, with loop detection.
Values expand ``$(VAR)`` (the parent's environment), ``%(option)`` (earlier keys) and the
static magic variables (``%d %p %s %n %e %c %0``-``%9``, ``%v``); anything else
(``%h`` the host name, ``@(file)``, ``$(VAR)`` unknown) makes the reference unresolved.

The venv: ``home`` = ``virtualenv`` = ``venv`` = ``pyhome`` (``embedded-home``);
``pythonpath`` (``python-path``, ``pp``) under a ``lib/pythonX.Y`` is a hard-code; the
Python the plugin was built for (``plugins = python3`` -> ``python3_plugin.so`` ->
``python311_plugin.so``, or its libpython) is the embedded Python.
"""

from __future__ import annotations

import fnmatch
import glob
import posixpath
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Optional

from venvkeeper.consumers import elf
from venvkeeper.consumers.chains import UWSGI, Chain, packaged
from venvkeeper.consumers.refs import Classifier, Where
from venvkeeper.consumers.rootfs import RootFS, read_text, syntax
from venvkeeper.host.fsutil import JSONError, load_json
from venvkeeper.model.consumers import (
    Activation,
    Confidence,
    Consumer,
    ConsumerKind,
    Reference,
    RefKind,
    RestartVerb,
    VenvState,
)
from venvkeeper.model.findings import Finding

HOME_KEYS = frozenset({"home", "virtualenv", "venv", "pyhome", "h", "H"})
PATH_KEYS = frozenset({"pythonpath", "python-path", "pp"})
PLUGIN_KEYS = frozenset({"plugins", "plugin", "need-plugin", "need-plugins"})
INCLUDE_KEYS = {
    "ini": "ini",
    "include": "",
    "yaml": "yaml",
    "yml": "yaml",
    "xml": "xml",
    "json": "json",
    "js": "json",
    "inherit": "",
}
EXTENSIONS = ("ini", "yaml", "yml", "xml", "json", "js")
PLUGIN_DIR = "/usr/lib/uwsgi/plugins"
APPS_ENABLED = "/etc/uwsgi/apps-enabled"
EMPEROR_INI = "/etc/uwsgi-emperor/emperor.ini"
MAX_INCLUDES = 64
_ENV = re.compile(r"\$\(([A-Za-z_][A-Za-z0-9_]*)(?::?-([^)]*))?\)")
_OPT = re.compile(r"%\(([A-Za-z0-9_-]+)\)")
_MAGIC = re.compile(r"%([a-zA-Z0-9])")


@dataclass(frozen=True)
class Option:
    key: str
    value: str
    source: str  # inside the root
    line: int
    unresolved: bool = False
    expanded: bool = False


class Config:
    """Every option of one config and its includes, in order, and the problems met."""

    def __init__(self, fs: RootFS, env: Mapping[str, str], vassals_dir: str = "") -> None:
        self.fs = fs
        self.env = dict(env)
        self.options: list[Option] = []
        self.problems: list[Finding] = []
        self.files: list[str] = []
        self.vassals_dir = vassals_dir
        self._stack: list[str] = []

    def get(self, keys: frozenset[str]) -> list[Option]:
        return [o for o in self.options if o.key in keys]

    def read(self, path: str, fmt: str = "", section: str = "uwsgi") -> None:
        if ":" in posixpath.basename(path) and fmt in ("", "ini", "yaml", "xml", "json"):
            path, _, section = path.rpartition(":")
        path = posixpath.normpath(path)
        if path in self._stack:
            self.problems.append(
                syntax(
                    self.fs.host(self._stack[-1]),
                    0,
                    f"include loop: {' -> '.join([*self._stack, path])}",
                )
            )
            return
        if len(self.files) >= MAX_INCLUDES:
            self.problems.append(
                syntax(self.fs.host(path), 0, f"more than {MAX_INCLUDES} includes")
            )
            return
        text, problems = read_text(self.fs, path, self.fs.host(path))
        self.problems += problems
        if text is None:
            return
        self.files.append(path)
        self._stack.append(path)
        try:
            fmt = fmt or _fmt_of(path)
            if fmt == "yaml":
                self._yaml(text, path, section)
            elif fmt == "xml":
                self._xml(text, path, section)
            elif fmt == "json":
                self._json(text, path, section)
            else:
                self._ini(text, path, section)
        finally:
            self._stack.pop()

    def _add(self, key: str, value: str, path: str, line: int) -> None:
        key = key.strip().lower().replace("_", "-")
        value, expanded, unresolved = self._expand(value.strip(), path)
        if key in INCLUDE_KEYS and value:
            for inc in value.split():
                target = (
                    inc if inc.startswith("/") else posixpath.join(posixpath.dirname(path), inc)
                )
                if inc.startswith(":"):  # a section of this very file
                    self._reread_section(path, inc[1:])
                    continue
                self.read(target, INCLUDE_KEYS[key])
            return
        self.options.append(Option(key, value, path, line, unresolved, expanded))

    def _reread_section(self, path: str, section: str) -> None:
        text, _ = read_text(self.fs, path, self.fs.host(path))
        if text is not None and len(self._stack) < MAX_INCLUDES:
            self._stack.append(path + ":" + section)
            try:
                self._ini(text, path, section)
            finally:
                self._stack.pop()

    def _expand(self, value: str, path: str) -> tuple[str, bool, bool]:
        expanded = unresolved = False

        def env(m: re.Match[str]) -> str:
            nonlocal expanded, unresolved
            v = self.env.get(m.group(1))
            if v is None:
                if m.group(2) is not None:
                    expanded = True
                    return m.group(2)
                unresolved = True
                return m.group(0)
            expanded = True
            return v

        def opt(m: re.Match[str]) -> str:
            nonlocal expanded, unresolved
            for o in reversed(self.options):
                if o.key == m.group(1):
                    expanded = True
                    return o.value
            unresolved = True
            return m.group(0)

        d = posixpath.dirname(path)
        base = posixpath.basename(path)
        stem, dot, ext = base.rpartition(".")
        if not dot:
            stem, ext = base, ""
        comps = [c for c in d.split("/") if c]
        magic = {
            "d": d + "/",
            "p": path,
            "s": base,
            "n": stem,
            "e": ext,
            "c": posixpath.basename(d),
            "v": self.vassals_dir,
        }
        for i in range(10):
            magic[str(i)] = comps[i] if i < len(comps) else ""

        def mag(m: re.Match[str]) -> str:
            nonlocal expanded, unresolved
            k = m.group(1)
            if k in magic and (k != "v" or self.vassals_dir):
                expanded = True
                return magic[k]
            unresolved = True
            return m.group(0)

        if "$(" in value:
            value = _ENV.sub(env, value)
        if "%(" in value:
            value = _OPT.sub(opt, value)
        if "%" in value:
            value = _MAGIC.sub(mag, value)
        if "@(" in value:
            unresolved = True
        return value, expanded, unresolved

    def _ini(self, text: str, path: str, section: str) -> None:
        current: Optional[str] = None
        for n, raw in enumerate(text.split("\n"), 1):
            line = raw.strip()
            if not line or line[0] in ";#":
                continue
            if line.startswith("[") and line.endswith("]"):
                current = line[1:-1].strip()
                continue
            if current != section:
                continue
            key, eq, value = line.partition("=")
            self._add(key, value if eq else "true", path, n)

    def _yaml(self, text: str, path: str, section: str) -> None:
        inside = False
        for n, raw in enumerate(text.split("\n"), 1):
            if not raw.strip() or raw.lstrip().startswith("#"):
                continue
            if not raw[0].isspace():
                inside = raw.strip().rstrip(":").strip() == section
                continue
            if not inside:
                continue
            line = raw.strip()
            if line.startswith("- "):
                continue
            key, colon, value = line.partition(":")
            if not colon:
                self.problems.append(syntax(self.fs.host(path), n, "yaml: no ':' in an option"))
                continue
            value = value.strip()
            if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
                value = value[1:-1]
            self._add(key, value or "true", path, n)

    def _xml(self, text: str, path: str, section: str) -> None:
        for m in re.finditer(r"<uwsgi(\s[^>]*)?>(.*?)</uwsgi>", text, re.S):
            attrs = m.group(1) or ""
            ident = re.search(r"""id\s*=\s*["']([^"']*)["']""", attrs)
            if (ident.group(1) if ident else "uwsgi") != section and not (
                ident is None and section == "uwsgi"
            ):
                continue
            start = text[: m.start(2)].count("\n") + 1
            body = m.group(2)
            for o in re.finditer(r"<([A-Za-z][\w.-]*)(?:\s[^>]*)?(?:/>|>([^<]*)</\1\s*>)", body):
                line = start + body[: o.start()].count("\n")
                value = o.group(2)
                self._add(
                    o.group(1), _xml_unescape(value) if value is not None else "true", path, line
                )
            return
        if "<uwsgi" not in text:
            self.problems.append(syntax(self.fs.host(path), 0, "xml: no <uwsgi> element"))

    def _json(self, text: str, path: str, section: str) -> None:
        try:
            doc = load_json(text)
        except JSONError as e:
            self.problems.append(syntax(self.fs.host(path), 0, f"json: {e}"))
            return
        block = doc.get(section) if isinstance(doc, dict) else None
        if not isinstance(block, dict):
            self.problems.append(syntax(self.fs.host(path), 0, f"json: no {section!r} object"))
            return
        for k, v in block.items():
            for item in v if isinstance(v, list) else [v]:
                value = "true" if item is True else "false" if item is False else str(item)
                self._add(str(k), value, path, _json_line(text, str(k)))


def _json_line(text: str, key: str) -> int:
    i = text.find(f'"{key}"')
    return text[:i].count("\n") + 1 if i >= 0 else 0


def _xml_unescape(s: str) -> str:
    return (
        s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", '"')
        .replace("&apos;", "'")
        .replace("&amp;", "&")
    )


def _fmt_of(path: str) -> str:
    ext = path.rsplit(".", 1)[-1].lower()
    return {"yml": "yaml", "js": "json"}.get(ext, ext if ext in ("yaml", "xml", "json") else "ini")


def plugin_minor(
    fs: RootFS, cfg: Config, binary: Optional[str]
) -> tuple[Optional[str], Optional[str]]:
    """The embedded Python of an app: its python plugin, else the uwsgi binary itself."""
    dirs = [o.value for o in cfg.options if o.key in ("plugins-dir", "plugin-dir")] + [PLUGIN_DIR]
    for o in cfg.get(PLUGIN_KEYS):
        for name in re.split(r"[\s,]+", o.value):
            if not name.startswith("python") and "python" not in name:
                continue
            if name.startswith("/"):
                return elf.embedded_minor(fs, name)
            for d in dirs:
                p = f"{d}/{name}_plugin.so"
                if fs.lstat(p) is not None:
                    return elf.embedded_minor(fs, p)
    if binary:
        return elf.embedded_minor(fs, binary)
    return None, None


def app_consumer(
    fs: RootFS,
    cls: Classifier,
    path: str,
    chain: Chain,
    fmt: str = "",
    vassals_dir: str = "",
) -> tuple[Optional[Consumer], Config]:
    """The consumer of one uWSGI config (an app, a vassal), and the config read."""
    env = dict(chain.env)
    cfg = Config(fs, env, vassals_dir)
    cfg.read(path, fmt)
    source = fs.host(path)
    refs: list[Reference] = []
    for o in cfg.get(HOME_KEYS):
        conf = _conf(o)
        where = Where(fs.host(o.source), o.line, o.key)
        text = f"{o.key} = {o.value}"
        if o.value.startswith("/"):
            refs.append(cls.home(o.value, text=text, confidence=conf, where=where))
        elif o.unresolved:  # $(VAR) unknown here: the venv is named, but not known
            refs.append(
                cls.make(RefKind.EMBEDDED_HOME, conf, text, None, None, VenvState.UNKNOWN, where)
            )
    for o in cfg.get(PATH_KEYS):
        where = Where(fs.host(o.source), o.line, o.key)
        for entry in (
            o.value.split(":") if ":" in o.value and not o.value.startswith("glob:") else [o.value]
        ):
            ref = cls.sitepkgs(entry, text=f"{o.key} = {o.value}", confidence=_conf(o), where=where)
            if ref is not None:
                refs.append(ref)
    binary = next((o.value for o in cfg.options if o.key == "binary-path"), None)
    if binary is None and chain.argv:
        binary = chain.argv[0]
    if binary and binary.startswith("/") and chain.argv:
        bref = cls.executable(
            binary, text=" ".join(chain.argv), confidence=Confidence.EXACT, where=chain.where
        )
        if bref is not None:
            refs.append(bref)
    minor, module = plugin_minor(fs, cfg, binary)
    if not refs and not cfg.problems:
        return None, cfg
    user = next((o.value for o in cfg.options if o.key in ("uid", "setuid")), None) or chain.user
    first_line = refs[0].line if refs else 0
    return (
        chain.consumer(
            kind=ConsumerKind.UWSGI,
            name=source,
            source=source,
            line=first_line,
            user=user,
            refs=tuple(refs),
            activation=Activation.WEB,
            embedded_python=minor,
            embedded_module=module,
            problems=tuple(cfg.problems),
        ),
        cfg,
    )


def _conf(o: Option) -> Confidence:
    if o.unresolved:
        return Confidence.UNRESOLVED
    return Confidence.EXPANDED if o.expanded else Confidence.EXACT


def read_chain(fs: RootFS, cls: Classifier, chain: Chain) -> list[Consumer]:
    """A unit's ``uwsgi --ini F`` (or ``--emperor DIR``): the app, or the vassals."""
    if chain.fmt == "emperor":
        return read_emperor_dirs(fs, cls, [chain.config], chain)
    c, cfg = app_consumer(fs, cls, chain.config, chain, chain.fmt)
    out = [c] if c is not None else []
    emperors = [o.value for o in cfg.options if o.key == "emperor"]
    if emperors:
        out += read_emperor_dirs(fs, cls, emperors, chain)
    return out


def read_emperor_dirs(
    fs: RootFS, cls: Classifier, specs: list[str], chain: Chain
) -> list[Consumer]:
    out: list[Consumer] = []
    for spec in specs:
        if "://" in spec:
            scheme, _, spec = spec.partition("://")
            if scheme not in ("dir", "glob"):
                continue
        for path in _vassals(fs, spec):
            c, _ = app_consumer(
                fs, cls, path, _child(chain, path), vassals_dir=posixpath.dirname(path)
            )
            if c is not None:
                out.append(c)
    return out


def _vassals(fs: RootFS, spec: str) -> list[str]:
    if glob.has_magic(spec):
        d, pattern = posixpath.split(spec)
        return [f"{d}/{e.name}" for e in fs.listdir(d) if fnmatch.fnmatch(e.name, pattern)]
    return [
        f"{spec}/{e.name}"
        for e in fs.listdir(spec)
        if e.name.rsplit(".", 1)[-1] in EXTENSIONS and not e.name.startswith(".")
    ]


def _child(chain: Chain, path: str) -> Chain:
    return Chain(
        chain.reader,
        path,
        chain.where,
        chain.unit,
        chain.restart,
        chain.enabled,
        chain.running,
        chain.user,
        chain.env,
        chain.cwd,
        (*chain.via, chain.config),
        chain.argv,
    )


def read_debian(
    fs: RootFS, cls: Classifier, running: Optional[bool], enabled: Optional[bool]
) -> list[Consumer]:
    """Debian's ``/etc/uwsgi/apps-enabled`` (recursive; for equal base names the
    alphabetically first extension wins), run by ``/etc/init.d/uwsgi`` (``uwsgi.service``)."""
    chain = packaged(
        UWSGI,
        APPS_ENABLED,
        fs.host("/etc/init.d/uwsgi"),
        "uwsgi.service",
        RestartVerb.RELOAD,
        running=running,
        enabled=enabled,
        user="www-data",
        argv=("/usr/bin/uwsgi",),
    )
    out: list[Consumer] = []
    for path in _apps(fs, APPS_ENABLED, 0):
        c, _ = app_consumer(fs, cls, path, _child(chain, path))
        if c is not None:
            out.append(c)
    return out


def _apps(fs: RootFS, d: str, depth: int) -> list[str]:
    if depth > 8:
        return []
    found: dict[str, str] = {}
    out: list[str] = []
    for e in fs.listdir(d):
        p = f"{d}/{e.name}"
        if fs.is_dir(p):
            out += _apps(fs, p, depth + 1)
            continue
        stem, dot, ext = e.name.rpartition(".")
        if dot and ext in EXTENSIONS and stem not in found:
            found[stem] = p
    return sorted(found.values()) + out
