"""systemd units, system and users', read from files as the managers would load them.

- Load paths in priority order (systemd.unit(5)); the first file of a name wins; a link
  to ``/dev/null`` or an empty file masks; a link to another name in the load path is an
  alias (listed under the name it points to); a link out of the load path is a linked unit.
- Templates: ``foo@bar.service`` falls back to ``foo@.service`` with ``%i`` = ``bar``;
  instances are the names of ``*.wants``/``*.requires``/``*.upholds`` links and
  ``DefaultInstance=``; a template without a known instance is read with ``%i`` unknown.
- Drop-ins: ``NAME.d/*.conf`` in every load dir, ``foo@.service.d`` for instances, the
  dashed prefixes (``foo-.service.d``) and the type-wide ``service.d``; merged in the order
  of their file names (for equal names the higher load dir wins); an empty ``ExecStart=``
  (or any list setting) resets what came before.
- ``.timer``/``.path`` (``Unit=``) and ``.socket`` (``Service=``, ``Accept=yes``: the
  template) name the service they start: the consumer names its trigger.
- Enabled: the ``.wants``/``.requires``/``.upholds`` links (of the unit or its trigger).
  Running: a process in its cgroup (``/proc/*/cgroup``).
- User units: for users with linger (``/var/lib/systemd/linger/USER``) or with enabled
  links in ``~/.config/systemd/user``; homes from the root's ``/etc/passwd``.

Nothing asks systemctl or the bus: the same reading works offline, in a chroot, for stopped
units. Generators run only at boot, so their units (``/run/systemd/generator*``) exist only
on a booted host; they are read when present.
"""

from __future__ import annotations

import platform
import posixpath
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Optional

from venvkeeper.checks.consumers import UNREADABLE
from venvkeeper.consumers.chains import APACHE, UWSGI, Chain, chains_of
from venvkeeper.consumers.launch import argv_refs
from venvkeeper.consumers.refs import Classifier, Where
from venvkeeper.consumers.rootfs import RootFS, read_text, syntax
from venvkeeper.consumers.unitfile import (
    Assignment,
    ExecCommand,
    Specifiers,
    SyntaxProblem,
    UnknownSpecifier,
    parse_env_file,
    parse_environment,
    parse_exec,
    parse_unit,
    split_words,
    substitute,
    unescape_unit,
    unit_path,
)
from venvkeeper.consumers.users import User, Users
from venvkeeper.host.cgroups import RunningUnits
from venvkeeper.model.consumers import (
    Activation,
    Confidence,
    Consumer,
    ConsumerKind,
    Launch,
    Manager,
    Reference,
    Restart,
    RestartVerb,
)
from venvkeeper.model.findings import Finding

SYSTEM_DIRS = (
    "/etc/systemd/system.control",
    "/run/systemd/system.control",
    "/run/systemd/transient",
    "/run/systemd/generator.early",
    "/etc/systemd/system",
    "/etc/systemd/system.attached",
    "/run/systemd/system",
    "/run/systemd/system.attached",
    "/run/systemd/generator",
    "/usr/local/lib/systemd/system",
    "/lib/systemd/system",
    "/usr/lib/systemd/system",
    "/run/systemd/generator.late",
)
UNIT_TYPES = (
    ".service",
    ".socket",
    ".timer",
    ".path",
    ".target",
    ".mount",
    ".automount",
    ".swap",
    ".slice",
    ".scope",
    ".device",
)
SERVICE_EXEC = (
    "ExecCondition",
    "ExecStartPre",
    "ExecStart",
    "ExecStartPost",
    "ExecReload",
    "ExecStop",
    "ExecStopPost",
)
#: Settings that are lists: an empty assignment resets them.
LIST_KEYS = frozenset({*SERVICE_EXEC, "Environment", "EnvironmentFile", "ExecSearchPath"})
#: The PATH of services and the search path of a bare argv0 (Debian 12, systemd 252).
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
ENABLING = (".wants", ".requires", ".upholds")


def user_dirs(u: User) -> tuple[str, ...]:
    home, uid = u.home, u.uid
    cfg, data, run = f"{home}/.config", f"{home}/.local/share", f"/run/user/{uid}"
    return (
        f"{cfg}/systemd/user.control",
        f"{run}/systemd/user.control",
        f"{run}/systemd/transient",
        f"{run}/systemd/generator.early",
        f"{cfg}/systemd/user",
        "/etc/xdg/systemd/user",
        "/etc/systemd/user",
        f"{run}/systemd/user",
        "/run/systemd/user",
        f"{run}/systemd/generator",
        f"{data}/systemd/user",
        "/usr/local/share/systemd/user",
        "/usr/share/systemd/user",
        "/usr/local/lib/systemd/user",
        "/usr/lib/systemd/user",
        f"{run}/systemd/generator.late",
    )


@dataclass
class _Entry:
    dir: str
    name: str
    link: Optional[str]  # the link's target, None for a file


@dataclass
class Loaded:
    """One unit as the manager loads it: its merged assignments."""

    name: str
    fragment: str  # the file read (a linked unit's target)
    template: Optional[str]
    instance: Optional[str]
    assignments: list[Assignment]
    dropins: list[str]
    problems: list[Finding] = field(default_factory=list)

    def get(self, section: str, key: str) -> Optional[Assignment]:
        found = None
        for a in self.assignments:
            if a.section == section and a.key == key:
                found = a
        if found is not None and found.value == "" and key not in LIST_KEYS:
            return None
        return found

    def values(self, section: str, key: str) -> list[Assignment]:
        """A list setting: every assignment since the last empty one."""
        out: list[Assignment] = []
        for a in self.assignments:
            if a.section == section and a.key == key:
                if a.value == "":
                    out = []
                else:
                    out.append(a)
        return out


class UnitSet:
    """The units of one manager: its load dirs listed once."""

    def __init__(self, fs: RootFS, dirs: Sequence[str]) -> None:
        self.fs = fs
        self.dirs = [d for d in dirs if fs.is_dir(d)]
        self.entries: dict[str, _Entry] = {}
        self.dropin_dirs: dict[str, list[str]] = {}
        self.enabling: dict[str, list[str]] = {}  # unit name -> the .wants dirs naming it
        real_dirs = {fs.real(d) for d in self.dirs}
        self._load_dirs = {d for d in self.dirs} | {fs.inside(r) for r in real_dirs if r}
        for d in self.dirs:
            for e in fs.listdir(d):
                name = e.name
                path = f"{d}/{name}"
                if name.endswith(".d") and fs.is_dir(path):
                    self.dropin_dirs.setdefault(name, []).append(path)
                    continue
                if name.endswith(ENABLING) and fs.is_dir(path):
                    for w in fs.listdir(path):
                        self.enabling.setdefault(w.name, []).append(path)
                    continue
                if not name.endswith(UNIT_TYPES) or name in self.entries:
                    continue
                link = fs.readlink(path) if e.is_symlink() else None
                self.entries[name] = _Entry(d, name, link)

    def names(self) -> list[str]:
        return sorted(self.entries)

    def alias_of(self, name: str) -> Optional[str]:
        """The name *name* is an alias of (a link to another name in the load path)."""
        e = self.entries.get(name)
        if e is None or e.link is None:
            return None
        target = e.link if e.link.startswith("/") else posixpath.join(e.dir, e.link)
        target = posixpath.normpath(target)
        tname = posixpath.basename(target)
        if tname != name and posixpath.dirname(target) in self._load_dirs:
            return tname
        return None

    def enabled(self, name: str) -> bool:
        target = self.alias_of(name)
        return name in self.enabling or (target is not None and target in self.enabling)

    def instances(self, template: str) -> list[str]:
        """The instances of *template* (``foo@.service``) named by enabling links."""
        prefix, _, suffix = template.partition("@")
        return sorted(
            n
            for n in self.enabling
            if n.startswith(prefix + "@") and n.endswith(suffix) and n != template
        )

    def load(self, name: str, _hops: int = 0) -> Optional[Loaded]:
        """The unit *name*, or None when it does not exist or is masked. An alias loads
        the unit it names (with that unit's drop-ins)."""
        target = self.alias_of(name)
        if target is not None and _hops < 8:
            return self.load(target, _hops + 1)
        template = instance = None
        entry = self.entries.get(name)
        if "@" in name:
            prefix, _, rest = name.partition("@")
            inst, _, typ = rest.rpartition(".")
            if inst:
                template, instance = f"{prefix}@.{typ}", inst
                if entry is None:
                    entry = self.entries.get(template)
        if entry is None:
            return None
        path = fragment = f"{entry.dir}/{entry.name}"
        if entry.link is not None:
            target = (
                entry.link if entry.link.startswith("/") else posixpath.join(entry.dir, entry.link)
            )
            if posixpath.normpath(target) == "/dev/null":
                return None
            path = posixpath.normpath(target)
        text, problems = read_text(self.fs, path, self.fs.host(path))
        if text is not None and not text.strip():
            return None  # an empty file masks
        assignments: list[Assignment] = []
        found: list[Finding] = list(problems)
        if text is not None:
            got, unit_problems = parse_unit(text, self.fs.host(path))
            assignments += got
            found += [syntax(self.fs.host(path), p.line, p.message) for p in unit_problems]
        dropins = self._dropins(name, template)
        for conf in dropins:
            t, probs = read_text(self.fs, conf, self.fs.host(conf))
            found += probs
            if t is None:
                continue
            got, unit_problems = parse_unit(t, self.fs.host(conf))
            assignments += got
            found += [syntax(self.fs.host(conf), p.line, p.message) for p in unit_problems]
        if self.alias_of(entry.name) is not None:
            fragment = path  # an alias: the unit is the file it points to
        return Loaded(name, fragment, template, instance, assignments, dropins, found)

    def _dropins(self, name: str, template: Optional[str]) -> list[str]:
        typ = name.rpartition(".")[2]
        dirs = [f"{name}.d"]
        if template:
            dirs.append(f"{template}.d")
        base = (template or name).rpartition(".")[0].split("@")[0]
        parts = base.split("-")
        for i in range(len(parts) - 1, 0, -1):
            dirs.append("-".join(parts[:i]) + f"-.{typ}.d")
        dirs.append(f"{typ}.d")
        chosen: dict[str, str] = {}
        for d in self.dirs:  # priority order: the first of a file name wins
            for dname in dirs:
                if f"{d}/{dname}" not in self.dropin_dirs.get(dname, ()):
                    continue
                for e in self.fs.listdir(f"{d}/{dname}"):
                    if e.name.endswith(".conf") and e.name not in chosen:
                        chosen[e.name] = f"{d}/{dname}/{e.name}"
        out = []
        for fname in sorted(chosen):
            p = chosen[fname]
            if self.fs.readlink(p) == "/dev/null":
                continue
            out.append(p)
        return out


@dataclass(frozen=True)
class Manager_:
    """One manager: system (user None) or a user's."""

    user: Optional[User]
    units: UnitSet


def _host_facts(fs: RootFS) -> dict[str, str]:
    facts: dict[str, str] = {}
    for path, key in (("/etc/hostname", "H"), ("/etc/machine-id", "m")):
        try:
            value = fs.read(path, 4096).decode("utf-8", "replace").strip()
        except OSError:
            continue
        if value:
            facts[key] = value
    if "H" in facts:
        facts["l"] = facts["H"].split(".")[0]
    try:
        osrel = fs.read("/etc/os-release", 65536).decode("utf-8", "replace")
    except OSError:
        try:
            osrel = fs.read("/usr/lib/os-release", 65536).decode("utf-8", "replace")
        except OSError:
            osrel = ""
    for line in osrel.splitlines():
        k, _, v = line.partition("=")
        v = v.strip().strip('"').strip("'")
        spec = {
            "ID": "o",
            "VERSION_ID": "w",
            "VARIANT_ID": "W",
            "BUILD_ID": "B",
            "IMAGE_ID": "M",
            "IMAGE_VERSION": "A",
        }.get(k)
        if spec:
            facts[spec] = v
    for k in "owWBMA":
        facts.setdefault(k, "")
    if fs.plain:
        facts["v"] = platform.release()
    arch = {"x86_64": "x86-64", "aarch64": "arm64", "i686": "x86", "armv7l": "arm"}
    facts["a"] = arch.get(platform.machine(), platform.machine())
    return facts


def specifiers(
    name: str,
    fragment: str,
    user: Optional[User],
    host: dict[str, str],
    fs: RootFS,
    root_shell: str = "/bin/sh",
) -> Specifiers:
    """The specifiers of unit *name* in the manager of *user* (None: the system's, whose
    ``%s`` is root's shell in the root's passwd)."""
    stem = name.rpartition(".")[0]
    prefix, at, instance = stem.partition("@")
    v: dict[str, str] = dict(host)
    v.update(
        n=name,
        N=stem,
        p=prefix,
        P=unescape_unit(prefix),
        y=fragment,
        Y=posixpath.dirname(fragment),
        j=prefix.rsplit("-", 1)[-1] if "-" in prefix else prefix,
        d=f"/run/credentials/{name}",
        T="/tmp",  # noqa: S108 (the value of %T, not a file we use)
        V="/var/tmp",  # noqa: S108
    )
    v["J"] = unescape_unit(v["j"])
    if at:
        v["i"] = instance
        v["I"] = unescape_unit(instance)
        v["f"] = unit_path(instance)
    else:
        v["f"] = unit_path(prefix)
    if user is None:
        v.update(
            s=root_shell,
            h="/root",
            u="root",
            U="0",
            g="root",
            G="0",
            E="/etc",
            S="/var/lib",
            C="/var/cache",
            L="/var/log",
            t="/run",
        )
    else:
        h = user.home
        v.update(
            h=h,
            u=user.name,
            U=str(user.uid),
            G=str(user.gid),
            s=user.shell,
            E=f"{h}/.config",
            S=f"{h}/.config",  # systemd 252: $XDG_CONFIG_HOME (verified on Debian 12)
            C=f"{h}/.cache",
            L=f"{h}/.config/log",
            t=f"/run/user/{user.uid}",
        )
        if user.group:
            v["g"] = user.group
    return Specifiers(v)


@dataclass
class UnitsResult:
    consumers: list[Consumer]
    chains: list[Chain]
    problems: list[Finding]


def read_units(
    fs: RootFS,
    cls: Classifier,
    users: Users,
    running: RunningUnits,
) -> UnitsResult:
    """Every unit of the system manager and of the users' managers that names a venv (or
    hands a config to a server: a :class:`Chain` for that server's reader)."""
    res = UnitsResult([], [], [])
    host = _host_facts(fs)
    default_env = _default_environment(fs, "/etc/systemd/system.conf", "system.conf.d")
    managers: list[Manager_] = [Manager_(None, UnitSet(fs, SYSTEM_DIRS))]
    linger = {e.name for e in fs.listdir("/var/lib/systemd/linger")}
    for u in users.all():
        if not u.home or u.home == "/" or not u.home.startswith("/"):
            continue
        own = f"{u.home}/.config/systemd/user"
        if u.name not in linger and not any(e.name.endswith(ENABLING) for e in fs.listdir(own)):
            continue
        managers.append(Manager_(u, UnitSet(fs, user_dirs(u))))
    for m in managers:
        _read_manager(fs, cls, users, m, host, default_env, running, res)
    return res


def _default_environment(fs: RootFS, conf: str, dropdir: str) -> dict[str, str]:
    env: dict[str, str] = {}
    files = [conf] + [
        f"/etc/systemd/{dropdir}/{e.name}"
        for e in fs.listdir(f"/etc/systemd/{dropdir}")
        if e.name.endswith(".conf")
    ]
    for f in files:
        try:
            text = fs.read(f).decode("utf-8", "replace")
        except OSError:
            continue
        got, _ = parse_unit(text, f)
        for a in got:
            if a.section == "Manager" and a.key == "DefaultEnvironment":
                env.update(parse_environment(a.value, Specifiers({})))
    return env


def _read_manager(
    fs: RootFS,
    cls: Classifier,
    users: Users,
    m: Manager_,
    host: dict[str, str],
    default_env: dict[str, str],
    running: RunningUnits,
    res: UnitsResult,
) -> None:
    units = m.units
    triggers: dict[str, list[tuple[str, bool]]] = {}  # service -> [(trigger, enabled)]
    services: list[str] = []
    trigger_names = [
        n
        for n in [*units.names(), *sorted(units.enabling)]
        if n.endswith((".timer", ".path", ".socket"))
        and not n.endswith(("@.timer", "@.path", "@.socket"))
    ]
    for name in dict.fromkeys(trigger_names):
        if units.alias_of(name) is not None:
            continue
        t = units.load(name)
        if t is None:
            continue
        typ = name.rpartition(".")[2]
        section = {"timer": "Timer", "path": "Path", "socket": "Socket"}[typ]
        a = t.get(section, "Service" if section == "Socket" else "Unit")
        target = a.value if a is not None else name.rpartition(".")[0] + ".service"
        accept = t.get("Socket", "Accept")
        if accept is not None and accept.value.lower() in ("yes", "true", "1", "on"):
            target = name.rpartition(".")[0].split("@")[0] + "@.service"
        triggers.setdefault(target, []).append((name, units.enabled(name)))
        if "@" in target and not target.endswith("@.service") and target not in services:
            services.append(target)
    for name in units.names():
        if units.alias_of(name) is not None:
            continue
        if name.endswith((".timer", ".path", ".socket")):
            continue
        if name.endswith(".service"):
            if name.endswith("@.service"):
                inst = units.instances(name)
                loaded = units.load(name)
                default = loaded.get("Install", "DefaultInstance") if loaded else None
                if default is not None:
                    inst.append(name.replace("@.", f"@{default.value}.", 1))
                new = [i for i in sorted(set(inst)) if i not in services]
                services += new or (
                    [] if any(x.startswith(name.split("@")[0] + "@") for x in services) else [name]
                )
            elif name not in services:
                services.append(name)
    for name in services:
        loaded = units.load(name)
        if loaded is None:
            continue
        trig = triggers.get(name) or (triggers.get(loaded.template) if loaded.template else None)
        c = _consumer(fs, cls, users, m, loaded, host, default_env, running, units, trig, res)
        if c is not None:
            res.consumers.append(c)


def _consumer(
    fs: RootFS,
    cls: Classifier,
    users: Users,
    m: Manager_,
    u: Loaded,
    host: dict[str, str],
    default_env: dict[str, str],
    running: RunningUnits,
    units: UnitSet,
    trig: Optional[list[tuple[str, bool]]],
    res: UnitsResult,
) -> Optional[Consumer]:
    root = users.by_name("root")
    spec = specifiers(u.name, u.fragment, m.user, host, fs, root.shell if root else "/bin/sh")
    problems = list(u.problems)
    refs: list[Reference] = []
    template_unknown = u.name.endswith("@.service")

    def expand(a: Assignment, value: str) -> Optional[str]:
        try:
            return spec.expand(value)
        except UnknownSpecifier as e:
            problems.append(syntax(a.source, a.line, f"{a.key}=: {e}: ignored"))
            return None

    # who, where
    user_a = u.get("Service", "User")
    dynamic = u.get("Service", "DynamicUser")
    if m.user is not None:
        who: Optional[str] = m.user.name
    elif user_a is not None:
        who = expand(user_a, user_a.value)
    elif dynamic is not None and dynamic.value.lower() in ("yes", "true", "1", "on"):
        who = "(dynamic)"
    else:
        who = "root"
    runner = m.user if m.user is not None else users.by_name(who or "")
    root_a = u.get("Service", "RootDirectory")
    root_dir = expand(root_a, root_a.value) if root_a is not None else None
    wd_a = u.get("Service", "WorkingDirectory")
    cwd: Optional[str] = None
    if wd_a is not None:
        wd = wd_a.value[1:] if wd_a.value.startswith("-") else wd_a.value
        home = runner.home if runner is not None else None
        cwd = home if wd == "~" else expand(wd_a, wd)
    # environment
    env: dict[str, str] = {"PATH": DEFAULT_PATH, **default_env}
    if m.user is not None:
        env.update(HOME=m.user.home, USER=m.user.name)
    elif runner is not None and who not in ("root", None):
        env.update(HOME=runner.home, USER=runner.name, LOGNAME=runner.name)
    origin: dict[str, tuple[Where, Confidence]] = {}
    env_files: list[str] = []
    for a in u.values("Service", "Environment"):
        try:
            got = parse_environment(a.value, spec)
        except UnknownSpecifier as e:
            problems.append(syntax(a.source, a.line, f"Environment=: {e}: ignored"))
            continue
        env.update(got)
        for k, _ in got:
            origin[k] = (Where(a.source, a.line, "Environment"), Confidence.EXACT)
    for a in u.values("Service", "EnvironmentFile"):
        optional = a.value.startswith("-")
        path = expand(a, a.value[1:] if optional else a.value)
        if path is None:
            continue
        if root_dir is None and not path.startswith("/"):
            continue
        text, probs = read_text(fs, path, fs.host(path))
        if text is None:
            if not (optional and not fs.exists(path)):
                problems += probs
            continue
        problems += probs
        lines, env_problems = parse_env_file(text)
        problems += [syntax(fs.host(path), p.line, p.message) for p in env_problems]
        env_files.append(fs.host(path))
        for k, v, n in lines:
            env[k] = v
            origin[k] = (Where(fs.host(path), n, "EnvironmentFile"), Confidence.EXPANDED)
    for k, (where, conf) in origin.items():
        refs += cls.environment({k: env[k]}, where=where, confidence=conf)
    search_a = u.values("Service", "ExecSearchPath")
    search: tuple[str, ...] = tuple(DEFAULT_PATH.split(":"))
    if search_a:
        search = tuple(
            p
            for a in search_a
            for w in split_words(a.value, relax=True)
            for p in spec.expand(w).split(":")
            if p
        )
    first_argv: tuple[str, ...] = ()
    chains: list[Chain] = []
    for key in SERVICE_EXEC:
        for a in u.values("Service", key):
            spec.used.clear()
            spec.unknown.clear()
            try:
                cmds = parse_exec(a.value, spec)
            except (SyntaxProblem, UnknownSpecifier) as e:
                problems.append(syntax(a.source, a.line, f"{key}=: {e}: the line is ignored"))
                refs += _salvage(cls, a, key, env)
                continue
            conf = Confidence.EXACT
            if spec.used:
                conf = Confidence.EXPANDED
            if spec.unknown:
                conf = Confidence.UNRESOLVED
            for cmd in cmds:
                argv = cmd.argv if cmd.no_env_expand else substitute(cmd.argv, env)[0]
                if not cmd.no_env_expand and argv != cmd.argv and conf is Confidence.EXACT:
                    conf = Confidence.EXPANDED
                if key == "ExecStart" and not first_argv:
                    first_argv = (cmd.path, *argv[1:])
                where = Where(a.source, a.line, key)
                refs += _exec_refs(cls, cmd, argv, env, cwd, root_dir, search, where, conf)
                chains += chains_of((cmd.path, *argv[1:]), cwd=cwd, env=env, where=where)
    if template_unknown and not refs:
        return None
    enabled = units.enabled(u.name) or any(e for _, e in trig or ())
    if u.template and not units.enabled(u.name):
        enabled = enabled or (
            bool(u.get("Install", "DefaultInstance")) and units.enabled(u.template)
        )
    uid = m.user.uid if m.user is not None else None
    is_running = running.runs(u.name, uid)
    activation = Activation.SERVICE
    trigger = None
    if trig:
        trigger = ", ".join(t for t, _ in trig)
        trig_type = trig[0][0].rpartition(".")[2]
        activation = {"timer": Activation.TIMER, "path": Activation.PATH}.get(
            trig_type, Activation.SOCKET
        )
    restart = Restart(
        Manager.USER if m.user is not None else Manager.SYSTEM,
        u.name,
        RestartVerb.NONE if activation is Activation.TIMER else RestartVerb.TRY_RESTART,
        m.user.name if m.user is not None else None,
    )
    kind = ConsumerKind.SYSTEMD_USER if m.user is not None else ConsumerKind.SYSTEMD
    via = (u.name,)
    for ch in chains:
        res.chains.append(
            replace(
                ch,
                unit=u.name,
                # web servers reload gracefully: their daemons restart with the new venv
                restart=replace(restart, verb=RestartVerb.RELOAD)
                if ch.reader in (APACHE, UWSGI) and restart.verb is RestartVerb.TRY_RESTART
                else restart,
                enabled=enabled,
                running=is_running,
                user=who,
                via=via + ch.via,
            )
        )
    if not refs and not problems:
        return None
    if not refs and not chains and all(p.code != UNREADABLE for p in problems):
        # a unit that names no venv: its syntax is systemd's business, not ours
        return None
    if not refs and chains:
        return None
    first = u.get("Service", "ExecStart")
    return Consumer(
        kind=kind,
        name=u.name,
        source=fs.host(u.fragment),
        line=first.line if first is not None and first.source == fs.host(u.fragment) else 0,
        user=who,
        refs=tuple(refs),
        activation=activation,
        enabled=enabled,
        running=is_running,
        trigger=trigger,
        restart=restart,
        launch=Launch(first_argv, tuple(sorted(env.items())), cwd, root_dir),
        via=(),
        problems=tuple(problems),
        files=(fs.host(u.fragment), *(fs.host(d) for d in u.dropins), *env_files),
    )


_PATHLIKE = re.compile(r"(/[^\s'\";]+/bin/[^\s'\";/]+)")


def _salvage(cls: Classifier, a: Assignment, key: str, env: Mapping[str, str]) -> list[Reference]:
    """The venv paths of a line systemd ignores (a bad escape, a variable in argv0), as
    unresolved references: the unit names that venv, and will not start."""
    out = []
    value = re.sub(
        r"\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?", lambda m: env.get(m.group(1), m.group(0)), a.value
    )
    for m in _PATHLIKE.finditer(value):
        ref = cls.executable(
            m.group(1),
            text=a.value,
            confidence=Confidence.UNRESOLVED,
            where=Where(a.source, a.line, key),
        )
        if ref is not None:
            out.append(ref)
    return out


def _exec_refs(
    cls: Classifier,
    cmd: ExecCommand,
    argv: tuple[str, ...],
    env: dict[str, str],
    cwd: Optional[str],
    root_dir: Optional[str],
    search: Sequence[str],
    where: Where,
    conf: Confidence,
) -> list[Reference]:
    """argv0 as systemd finds it (absolute, or bare through ExecSearchPath or its fixed
    path, never Environment=PATH), inside RootDirectory= when set."""
    path = cmd.path
    if root_dir:
        if path.startswith("/"):
            path = posixpath.normpath(root_dir + "/" + path)
        search = [posixpath.normpath(root_dir + "/" + d) for d in search]
    return argv_refs(
        cls,
        (path, *argv[1:]),
        env=env,
        cwd=cwd,
        where=where,
        confidence=conf,
        bare_search=search,
    )


def iter_units(fs: RootFS, dirs: Sequence[str] = SYSTEM_DIRS) -> Iterator[str]:
    """The unit names of a load path (for tests and tools)."""
    yield from UnitSet(fs, dirs).names()
