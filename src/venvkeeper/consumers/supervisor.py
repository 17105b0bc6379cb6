"""supervisor programs (supervisor 4.2: ``options.py``, ``process.py``).

The main config (``-c``, else Debian's ``/etc/supervisor/supervisord.conf`` or RHEL's
``/etc/supervisord.conf``) and its ``[include] files=`` globs (relative to the including
file, read sorted, loops detected) are read with ``RawConfigParser`` as supervisor does
(inline comments need a blank before ``;``/``#``). Each ``[program:x]``,
``[fcgi-program:x]`` and ``[eventlistener:x]``: ``command=`` (``%(here)s``,
``%(program_name)s``, ``%(ENV_X)s`` ... expanded, then split), ``directory=``,
``environment=``, ``user=``. A bare command resolves through the program's
``environment=PATH=``, else supervisord's own ``PATH``; a relative one with a ``/`` through
``directory=``.
"""

from __future__ import annotations

import configparser
import fnmatch
import glob
import posixpath
import re
import shlex
from collections.abc import Mapping
from typing import Optional

from venvkeeper.consumers.chains import SUPERVISOR, Chain, packaged
from venvkeeper.consumers.launch import argv_refs
from venvkeeper.consumers.refs import Classifier, Where
from venvkeeper.consumers.rootfs import RootFS, read_text, syntax, with_problems
from venvkeeper.model.consumers import (
    Activation,
    Confidence,
    Consumer,
    ConsumerKind,
    Launch,
    Manager,
    Restart,
    RestartVerb,
)
from venvkeeper.model.findings import Finding

DEFAULTS = ("/etc/supervisor/supervisord.conf", "/etc/supervisord.conf")
PROGRAM = re.compile(r"^(program|fcgi-program|eventlistener):(.+)$")
_EXPANSION = re.compile(r"%\(([A-Za-z0-9_]+)\)[-#0 +]*\d*([sd])")
MAX_FILES = 500
SUPERVISOR_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin"


def _expand(value: str, names: Mapping[str, str]) -> tuple[str, bool, bool]:
    expanded = unresolved = False

    def sub(m: re.Match[str]) -> str:
        nonlocal expanded, unresolved
        v = names.get(m.group(1))
        if v is None:
            unresolved = True
            return m.group(0)
        expanded = True
        return v

    return _EXPANSION.sub(sub, value), expanded, unresolved


def _env_pairs(value: str) -> dict[str, str]:
    """``KEY="val",KEY2=val2`` (supervisor's ``dict_of_key_value_pairs``)."""
    out: dict[str, str] = {}
    try:
        lex = shlex.shlex(value, posix=True)
        lex.whitespace = ","
        lex.whitespace_split = True
        for tok in lex:
            k, eq, v = tok.strip().partition("=")
            if eq:
                out[k.strip()] = v.strip()
    except ValueError:
        pass
    return out


def _line_of(text: str, section: str, key: Optional[str] = None) -> int:
    lines = text.split("\n")
    start = next((i for i, ln in enumerate(lines) if ln.strip() == f"[{section}]"), None)
    if start is None:
        return 0
    if key is None:
        return start + 1
    for i in range(start + 1, len(lines)):
        ln = lines[i].strip()
        if ln.startswith("["):
            break
        if re.match(rf"^{re.escape(key)}\s*[=:]", ln):
            return i + 1
    return start + 1


def read_chain(fs: RootFS, cls: Classifier, chain: Chain) -> list[Consumer]:
    main = chain.config or next((p for p in DEFAULTS if fs.exists(p)), DEFAULTS[0])
    out: list[Consumer] = []
    problems: list[Finding] = []
    seen: list[str] = []
    _read(fs, cls, main, chain, out, problems, seen, [])
    empty = Consumer(
        ConsumerKind.SUPERVISOR,
        fs.host(main),
        fs.host(main),
        0,
        None,
        (),
        Activation.PROCESS,
        restart=chain.restart,
    )
    return with_problems(out, problems, empty)


def _read(
    fs: RootFS,
    cls: Classifier,
    path: str,
    chain: Chain,
    out: list[Consumer],
    problems: list[Finding],
    seen: list[str],
    stack: list[str],
) -> None:
    if path in stack:
        problems.append(
            syntax(fs.host(stack[-1]), 0, f"include loop: {' -> '.join([*stack, path])}")
        )
        return
    if path in seen or len(seen) >= MAX_FILES:
        return
    seen.append(path)
    text, probs = read_text(fs, path, fs.host(path))
    problems += probs
    if text is None:
        return
    parser = configparser.RawConfigParser(
        inline_comment_prefixes=(";", "#"), strict=False, interpolation=None
    )
    try:
        parser.read_string(text, source=fs.host(path))
    except configparser.Error as e:
        problems.append(syntax(fs.host(path), getattr(e, "lineno", 0), str(e).split("\n")[0]))
        return
    here = posixpath.dirname(path)
    host_env = {f"ENV_{k}": v for k, v in chain.env.items()}
    for section in parser.sections():
        m = PROGRAM.match(section)
        if m is None:
            continue
        _program(fs, cls, parser, section, m.group(2), path, text, here, host_env, chain, out)
    if parser.has_section("include") and parser.has_option("include", "files"):
        for pattern in parser.get("include", "files").split():
            pattern, _, _ = _expand(pattern, {"here": here, **host_env})
            full = pattern if pattern.startswith("/") else posixpath.join(here, pattern)
            d, pat = posixpath.split(full)
            files = (
                sorted(f"{d}/{e.name}" for e in fs.listdir(d) if fnmatch.fnmatch(e.name, pat))
                if glob.has_magic(pat)
                else [full]
            )
            stack.append(path)
            try:
                for f in files:
                    _read(fs, cls, f, chain, out, problems, seen, stack)
            finally:
                stack.pop()


def _program(
    fs: RootFS,
    cls: Classifier,
    parser: configparser.RawConfigParser,
    section: str,
    name: str,
    path: str,
    text: str,
    here: str,
    host_env: dict[str, str],
    chain: Chain,
    out: list[Consumer],
) -> None:
    def get(key: str) -> Optional[str]:
        return parser.get(section, key) if parser.has_option(section, key) else None

    names = {
        "here": here,
        "program_name": name,
        "group_name": name,
        "process_num": "0",
        "numprocs": get("numprocs") or "1",
        "host_node_name": "localhost",
        **host_env,
    }
    env_text = get("environment")
    env = dict(chain.env)
    env.setdefault("PATH", SUPERVISOR_PATH)
    prog_env: dict[str, str] = {}
    if env_text:
        prog_env = _env_pairs(_expand(env_text, names)[0])
        env.update(prog_env)
    command = get("command")
    if not command:
        return
    command, expanded, unresolved = _expand(command, names)
    directory = get("directory")
    cwd = _expand(directory, names)[0] if directory else None
    user = get("user") or chain.user
    source = fs.host(path)
    line = _line_of(text, section, "command")
    where = Where(source, line, "command")
    try:
        argv = shlex.split(command)
    except ValueError as e:
        out.append(
            Consumer(
                ConsumerKind.SUPERVISOR,
                f"program:{name}",
                source,
                line,
                user,
                (),
                Activation.PROCESS,
                problems=(syntax(source, line, f"command: {e}"),),
            )
        )
        return
    conf = (
        Confidence.UNRESOLVED
        if unresolved
        else Confidence.EXPANDED
        if expanded
        else Confidence.EXACT
    )
    search = tuple((prog_env.get("PATH") or env["PATH"]).split(":"))
    if argv and "/" in argv[0] and not argv[0].startswith("/"):
        argv[0] = posixpath.normpath(posixpath.join(cwd or "/", argv[0]))
    refs = argv_refs(cls, argv, env=env, cwd=cwd, where=where, confidence=conf, bare_search=search)
    refs += cls.environment(
        prog_env,
        where=Where(source, _line_of(text, section, "environment"), "environment"),
        confidence=conf,
    )
    if not refs:
        return
    restart = chain.restart
    if restart.unit is not None:
        restart = Restart(Manager.SYSTEM, restart.unit, RestartVerb.TRY_RESTART)
    out.append(
        Consumer(
            kind=ConsumerKind.SUPERVISOR,
            name=f"program:{name}",
            source=source,
            line=line,
            user=user,
            refs=tuple(refs),
            activation=Activation.PROCESS,
            enabled=(get("autostart") or "true").lower() == "true" and bool(chain.enabled),
            running=chain.running,
            restart=restart,
            launch=Launch(tuple(argv), tuple(sorted(env.items())), cwd),
            via=(*chain.via, fs.host(chain.config or path)),
        )
    )


def default_chain(fs: RootFS, unit: str, running: Optional[bool]) -> Chain:
    main = next((p for p in DEFAULTS if fs.exists(p)), DEFAULTS[0])
    return packaged(
        SUPERVISOR,
        main,
        fs.host(main),
        unit,
        RestartVerb.TRY_RESTART,
        running=running,
        user="root",
        env={"PATH": SUPERVISOR_PATH},
    )
