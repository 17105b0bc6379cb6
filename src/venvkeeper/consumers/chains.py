"""Config chains: a command line that hands a config file to a server (``uwsgi --ini F``,
``supervisord -c F``, ``gunicorn -c F``, ``apache2``/``httpd``) names the file that
server's reader reads next. The chain carries what the parent knows: the unit to restart,
whether it is enabled and running, the user, the environment, the working directory."""

from __future__ import annotations

import posixpath
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Optional

from venvkeeper.consumers.refs import PY_NAME, Where
from venvkeeper.model.consumers import NO_RESTART, Consumer, Manager, Restart, RestartVerb

UWSGI = "uwsgi"
SUPERVISOR = "supervisor"
GUNICORN = "gunicorn"
APACHE = "apache"

_UWSGI_CONF = {
    "--ini": "ini",
    "--yaml": "yaml",
    "--yml": "yaml",
    "-y": "yaml",
    "--xml": "xml",
    "-x": "xml",
    "--json": "json",
    "-j": "json",
    "--emperor": "emperor",
}
_UWSGI_EXT = (".ini", ".yaml", ".yml", ".xml", ".json", ".js")
APACHE_NAMES = frozenset({"apache2", "httpd", "apache2ctl", "apachectl", "httpd.worker"})


@dataclass(frozen=True)
class Chain:
    """*config* handed to *reader* (``uwsgi``, ``supervisor``, ``gunicorn``, ``apache``)."""

    reader: str
    config: str  # a path inside the root ("" for a server's default)
    where: Where
    unit: Optional[str] = None
    restart: Restart = NO_RESTART
    enabled: Optional[bool] = None
    running: Optional[bool] = None
    user: Optional[str] = None
    env: Mapping[str, str] = field(default_factory=dict)
    cwd: Optional[str] = None
    via: tuple[str, ...] = ()
    argv: tuple[str, ...] = ()
    fmt: str = ""  # uwsgi: ini, yaml, xml, json, emperor

    def consumer(self, **fields: Any) -> Consumer:
        """A consumer reached through this chain: enabled, running, what to restart and
        the chain itself come from the parent; *fields* give the rest."""
        fields.setdefault("user", self.user)
        return Consumer(
            enabled=self.enabled,
            running=self.running,
            restart=self.restart,
            via=self.via,
            **fields,
        )


def _abs(path: str, cwd: Optional[str]) -> str:
    return posixpath.normpath(path if path.startswith("/") else posixpath.join(cwd or "/", path))


def _opt(argv: Sequence[str], names: Sequence[str]) -> Optional[str]:
    for i, a in enumerate(argv):
        for n in names:
            if a == n and i + 1 < len(argv):
                return argv[i + 1]
            if n.startswith("--") and a.startswith(n + "="):
                return a[len(n) + 1 :]
            if not n.startswith("--") and a.startswith(n) and len(a) > len(n):
                return a[len(n) :]
    return None


def chains_of(
    argv: Sequence[str],
    *,
    cwd: Optional[str],
    env: Mapping[str, str],
    where: Where,
) -> list[Chain]:
    """The config chains of one command line."""
    if not argv:
        return []
    name = posixpath.basename(argv[0])
    args = list(argv[1:])
    if len(args) >= 2 and PY_NAME.fullmatch(name) and args[0] == "-m":
        name, args = args[1], args[2:]
    out: list[Chain] = []
    base = {"where": where, "env": dict(env), "cwd": cwd, "argv": tuple(argv)}
    if name.startswith("uwsgi"):
        for i, a in enumerate(args):
            key, eq, val = a.partition("=")
            fmt = _UWSGI_CONF.get(key)
            if fmt is None:
                if (
                    not a.startswith("-")
                    and a.endswith(_UWSGI_EXT)
                    and (i == 0 or not args[i - 1].startswith("-"))
                ):
                    ext = a.rsplit(".", 1)[1]
                    fmt = {"yml": "yaml", "js": "json"}.get(ext, ext)
                    out.append(Chain(UWSGI, _abs(a, cwd), fmt=fmt, **base))  # type: ignore[arg-type]
                continue
            value = val if eq else (args[i + 1] if i + 1 < len(args) else "")
            if value and "://" not in value:
                value = value.split(":", 1)[0] if fmt != "emperor" else value
                out.append(Chain(UWSGI, _abs(value, cwd), fmt=fmt, **base))  # type: ignore[arg-type]
    elif name in ("supervisord",):
        conf = _opt(args, ("-c", "--configuration"))
        out.append(Chain(SUPERVISOR, _abs(conf, cwd) if conf else "", **base))  # type: ignore[arg-type]
    elif name == "gunicorn" or name.startswith("gunicorn"):
        conf = _opt(args, ("-c", "--config"))
        if conf is None and env.get("GUNICORN_CMD_ARGS"):
            try:
                conf = _opt(shlex.split(env["GUNICORN_CMD_ARGS"]), ("-c", "--config"))
            except ValueError:
                conf = None
        if conf is not None and conf.startswith("python:"):
            conf = None
        elif conf is not None and conf.startswith("file:"):
            conf = conf[5:]
        path = _abs(conf, cwd) if conf else _abs("gunicorn.conf.py", cwd)
        out.append(Chain(GUNICORN, path, fmt="explicit" if conf else "default", **base))  # type: ignore[arg-type]
    elif name in APACHE_NAMES:
        conf = _opt(args, ("-f",))
        server_root = _opt(args, ("-d",))
        if conf and server_root and not conf.startswith("/"):
            conf = posixpath.join(server_root, conf)
        out.append(Chain(APACHE, _abs(conf, cwd) if conf else "", **base))  # type: ignore[arg-type]
    return out


def packaged(
    reader: str,
    config: str,
    source: str,
    unit: str,
    verb: RestartVerb,
    *,
    running: Optional[bool],
    enabled: Optional[bool] = None,
    user: Optional[str] = None,
    env: Optional[Mapping[str, str]] = None,
    argv: tuple[str, ...] = (),
    fmt: str = "",
) -> Chain:
    """The chain of a server's packaged layout (Debian's uWSGI apps, Apache's and
    supervisor's default configs) run by the system unit *unit*; *source* is the host path
    that names it (the config itself, or the init script)."""
    return Chain(
        reader,
        config,
        Where(source, 0),
        unit,
        Restart(Manager.SYSTEM, unit, verb),
        enabled,
        running,
        user,
        dict(env or {}),
        None,
        (unit,),
        argv,
        fmt,
    )
