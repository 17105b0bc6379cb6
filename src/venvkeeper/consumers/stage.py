"""All the readers in order: units first (they name the configs they hand to servers),
then cron, at jobs, SysV init scripts and rc.local, commands, and the servers' own layouts
that no unit named (Debian's uWSGI apps run by ``/etc/init.d/uwsgi``, Apache's and
supervisor's default configs). Each config is
read once, through the first chain that reaches it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Optional

from venvkeeper.consumers import (
    apache,
    atjobs,
    commands,
    cron,
    gunicorn,
    supervisor,
    systemd,
    sysv,
    uwsgi,
)
from venvkeeper.consumers.chains import APACHE, GUNICORN, SUPERVISOR, UWSGI, Chain, packaged
from venvkeeper.consumers.refs import Classifier
from venvkeeper.consumers.rootfs import RootFS, syntax
from venvkeeper.consumers.users import Users
from venvkeeper.host.cgroups import RunningUnits, running_units
from venvkeeper.model.consumers import Consumer, Reference, RestartVerb
from venvkeeper.model.findings import Finding

Reader = Callable[[RootFS, Classifier, Chain], list[Consumer]]
READERS: dict[str, Reader] = {
    UWSGI: uwsgi.read_chain,
    SUPERVISOR: supervisor.read_chain,
    GUNICORN: gunicorn.read_chain,
    APACHE: apache.read_chain,
}
#: Units of the servers' packaged layouts (Debian, then RHEL), for configs no unit named.
APACHE_UNITS = ("apache2.service", "httpd.service")
SUPERVISOR_UNITS = ("supervisor.service", "supervisord.service")


def read_all(root: str, proc: Optional[str]) -> tuple[list[Consumer], list[Finding], int]:
    fs = RootFS(root)
    cls = Classifier(fs)
    users = Users.read(fs)
    running = running_units(proc) if proc else RunningUnits()
    units = systemd.read_units(fs, cls, users, running)
    out: list[Consumer] = list(units.consumers)
    problems: list[Finding] = list(units.problems)
    done: set[tuple[str, str]] = set()

    def follow(chain: Chain) -> None:
        key = (chain.reader, chain.config)
        if key in done:
            return
        done.add(key)
        try:
            out.extend(READERS[chain.reader](fs, cls, chain))
        except RecursionError:
            problems.append(syntax(fs.host(chain.config), 0, "nested too deeply to read"))

    for chain in units.chains:
        follow(chain)
    out += cron.read_cron(fs, cls, users)
    jobs, spool_problems = atjobs.read_atjobs(fs, cls, users)
    out += jobs
    problems += spool_problems
    out += sysv.read_sysv(fs, cls, users, running)
    out += commands.read_commands(fs, cls, users)
    # the servers' own layouts, when no unit named them
    if fs.is_dir(uwsgi.APPS_ENABLED):
        out += uwsgi.read_debian(
            fs, cls, running.runs("uwsgi.service"), fs.exists("/etc/init.d/uwsgi") or None
        )
    if fs.exists(uwsgi.EMPEROR_INI) and (UWSGI, uwsgi.EMPEROR_INI) not in done:
        unit = "uwsgi-emperor.service"
        source = fs.host(uwsgi.EMPEROR_INI)
        verb = RestartVerb.RELOAD
        follow(packaged(UWSGI, uwsgi.EMPEROR_INI, source, unit, verb, running=running.runs(unit)))
    main = apache.DEBIAN if fs.exists(apache.DEBIAN) else apache.RHEL
    if fs.exists(main) and (APACHE, main) not in done and (APACHE, "") not in done:
        unit = APACHE_UNITS[0] if main == apache.DEBIAN else APACHE_UNITS[1]
        follow(apache.default_chain(fs, unit, running.runs(unit)))
    sup = next((p for p in supervisor.DEFAULTS if fs.exists(p)), None)
    if sup and (SUPERVISOR, sup) not in done and (SUPERVISOR, "") not in done:
        unit = SUPERVISOR_UNITS[0] if sup == supervisor.DEFAULTS[0] else SUPERVISOR_UNITS[1]
        follow(supervisor.default_chain(fs, unit, running.runs(unit)))
    return _merge(out), problems, fs.files_read


def _merge(consumers: list[Consumer]) -> list[Consumer]:
    """One consumer per (kind, name, source): the same file reached twice is listed once;
    references deduplicated."""
    seen: dict[tuple[str, str, str, int], Consumer] = {}
    for c in consumers:
        key = (c.kind.value, c.name, c.source, c.line)
        seen.setdefault(key, c)
    return [_with_unique(c) for c in seen.values()]


def _unique(refs: tuple[Reference, ...]) -> tuple[Reference, ...]:
    out: dict[tuple[object, ...], Reference] = {}
    for r in refs:
        out.setdefault((r.kind, r.path, r.venv, r.source, r.line), r)
    return tuple(out.values())


def _with_unique(c: Consumer) -> Consumer:
    refs = _unique(c.refs)
    files = [*c.files, c.source]
    for r in refs:
        files += [r.source, *(v for v in r.via if v.startswith("/"))]
    files += [v for v in c.via if v.startswith("/")]
    return replace(c, refs=refs, files=tuple(dict.fromkeys(f for f in files if f)))
