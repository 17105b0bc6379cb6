"""The configuration file: ``/etc/venvkeeper/config.toml``, then the user's one.

The system file is read first, then ``$XDG_CONFIG_HOME/venvkeeper/config.toml`` (default
``~/.config``): a key the user's file sets replaces the system's (``[severity]`` merges code by
code). ``--config PATH`` or ``VENVKEEPER_CONFIG`` names the one file to read instead of both.
Options given on the command line override the file. The schema (:data:`KEYS`, rendered in
docs/reference/configuration.md)::

    ignore = ["/home/*/scratch/*"]      # venvs left out of every result (top level: before tables)

    [scan]
    roots = ["/srv", "/home", "/opt"]   # default: every local filesystem from /
    exclude = ["node_modules", "/srv/backups"]
    network_filesystems = false         # walk nfs, cifs, sshfs, ...
    one_file_system = false

    [severity]
    "pth-import" = "info"               # a finding code = info | warning | unknown | critical

    [policy]
    allowed_bases = ["/usr/bin/python3*"]

    [check]                             # for `venvkeeper check`
    warning = 1
    critical = 1
    ignore_codes = ["unmanaged-base"]

    [repair]
    uv = "/usr/local/bin/uv"            # this uv (checked by the trust rule), never PATH's

Files are parsed with tomllib (tomli before 3.11), then validated: every problem is collected,
and each names the file and the line (``config.toml:7: unknown key "rots" in [scan] (did you
mean "roots"?)``).
"""

from __future__ import annotations

import errno
import os
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

from venvkeeper.errors import ConfigError, os_reason
from venvkeeper.model.findings import Severity
from venvkeeper.model.policy import Policy
from venvkeeper.textutil import decode, escape


def _toml() -> Any:
    """tomllib (tomli before 3.11), imported only when there is a file to parse."""
    if sys.version_info >= (3, 11):
        import tomllib

        return tomllib
    import tomli  # pragma: no cover - exercised on 3.9 and 3.10

    return tomli  # pragma: no cover


SYSTEM_CONFIG = "/etc/venvkeeper/config.toml"
ENV_VAR = "VENVKEEPER_CONFIG"
MAX_SIZE = 1 << 20

#: The severities a finding may be given (``ok`` is a venv status, not a finding's).
SEVERITIES = tuple(s.value for s in Severity if s is not Severity.OK)


@dataclass(frozen=True)
class Config:
    """The merged configuration. Empty values mean "not set": the built-in defaults apply."""

    roots: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    network_filesystems: Optional[bool] = None
    one_file_system: Optional[bool] = None
    ignore: tuple[str, ...] = ()
    severity: Mapping[str, Severity] = field(default_factory=dict, hash=False)
    allowed_bases: tuple[str, ...] = ()
    check_warning: Optional[int] = None
    check_critical: Optional[int] = None
    check_ignore_codes: tuple[str, ...] = ()
    repair_uv: Optional[str] = None
    sources: tuple[str, ...] = ()  # the files read, in order
    warnings: tuple[str, ...] = ()  # files skipped (a system file this user may not read)

    @property
    def policy(self) -> Policy:
        return Policy(self.ignore, self.allowed_bases, dict(self.severity))


def user_config_path(env: Mapping[str, str] = os.environ) -> str:
    base = env.get("XDG_CONFIG_HOME") or os.path.join(
        env.get("HOME") or os.path.expanduser("~"), ".config"
    )
    return os.path.join(base, "venvkeeper", "config.toml")


def load_config(
    explicit: Optional[str] = None,
    *,
    system: Optional[str] = None,
    user: Optional[str] = None,
    env: Mapping[str, str] = os.environ,
    euid: Optional[int] = None,
) -> Config:
    """The configuration: *explicit* (or ``$VENVKEEPER_CONFIG``) alone when given, which
    must exist and be readable; else *system* (default :data:`SYSTEM_CONFIG`) then *user*
    (default the XDG path), each optional. A system file that a user other than root
    (*euid*, default this process's) may not read is skipped, with a warning in
    :attr:`Config.warnings`: a root-only file must not stop every other user's commands.
    Raises :class:`ConfigError` naming every problem with its file and line.

    As root, a file is read only when root alone can change it (the one trust rule,
    :func:`venvkeeper.host.trust.distrust`): under ``sudo -E``, ``$HOME`` and
    ``$XDG_CONFIG_HOME`` name the user's directory, and a user's file could blind root's
    scans (``ignore = ["/*"]``). A default file that fails is skipped with a warning
    naming it; a file named with ``--config`` or ``$VENVKEEPER_CONFIG`` is an error."""
    explicit = explicit or env.get(ENV_VAR) or None
    if explicit is not None:
        candidates = [(explicit, False)]
    else:
        candidates = [(system or SYSTEM_CONFIG, True), (user or user_config_path(env), False)]
    root = (os.geteuid() if euid is None else euid) == 0
    merged: dict[str, Any] = {}
    read: list[str] = []
    warnings: list[str] = []
    for path, is_system in candidates:
        if root and path != os.devnull:
            refused = _not_roots(path)
            if refused is not None and explicit is None:
                warnings.append(f"{escape(path)}: skipped: {refused}")
                continue
            if refused is not None:
                raise ConfigError(f"{escape(path)}: refused: {refused}")
        try:
            data = b"" if path == os.devnull else _read(path)
        except OSError as e:
            if explicit is None and e.errno in (errno.ENOENT, errno.ENOTDIR):
                continue  # each default file is optional
            if explicit is not None and e.errno == errno.ENOENT:
                raise ConfigError(f"{escape(path)}: no such configuration file") from e
            if is_system and not root and e.errno in (errno.EACCES, errno.EPERM):
                warnings.append(
                    f"{escape(path)}: cannot read: {os_reason(e)}; skipped (ask root to make"
                    " it readable, mode 644)"
                )
                continue
            raise ConfigError(f"{escape(path)}: cannot read: {os_reason(e)}") from e
        read.append(path)
        for key, value in parse_data(data, path).items():
            if key == "severity":
                merged["severity"] = {**merged.get("severity", {}), **value}
            else:
                merged[key] = value
    return Config(**merged, sources=tuple(read), warnings=tuple(warnings))


def _not_roots(path: str) -> Optional[str]:
    """None when *path* does not exist or only root can change it (and every directory
    above it); else why root does not read it."""
    from venvkeeper.host.fsutil import lexists
    from venvkeeper.host.trust import distrust

    if not lexists(path):
        return None  # a default file is optional; a named one is reported as missing
    problem = distrust(path, 0)
    if problem is None:
        return None
    return (
        f"{escape(str(problem))}: root reads only configuration that root alone can change"
        f" (move it to {SYSTEM_CONFIG}, or name a copy of root's with --config)"
    )


def _read(path: str) -> bytes:
    """At most :data:`MAX_SIZE` + 1 bytes of the regular file *path* (a FIFO or a device
    is refused without being opened)."""
    from venvkeeper.host.fsutil import NotRegularFile, read_bytes

    try:
        return read_bytes(path, MAX_SIZE + 1)[0]
    except NotRegularFile as e:
        raise ConfigError(f"{escape(path)}: {e.strerror}: not a configuration file") from e


def parse_file(path: str) -> dict[str, Any]:
    """The settings one file makes (only those it sets), validated."""
    try:
        data = _read(path)
    except OSError as e:
        raise ConfigError(f"{escape(path)}: cannot read: {os_reason(e)}") from e
    return parse_data(data, path)


def parse_data(data: bytes, path: str) -> dict[str, Any]:
    if len(data) > MAX_SIZE:
        raise ConfigError(f"{escape(path)}: larger than {MAX_SIZE} bytes: not a config file")
    return parse_text(decode(data), path)


_AT = re.compile(r"\s*\(at line (\d+), column (\d+)\)|\s*\(at end of document\)")


def parse_text(text: str, path: str = "<config>") -> dict[str, Any]:
    """Validate the TOML *text* of the file *path* (named in error messages)."""
    toml = _toml()
    try:
        doc = toml.loads(text)
    except toml.TOMLDecodeError as e:
        msg = str(e)
        m = _AT.search(msg)
        line = int(m.group(1)) if m and m.group(1) else text.count("\n") + 1
        col = f" (column {m.group(2)})" if m and m.group(2) else ""
        why = _AT.sub("", msg).strip()
        raise ConfigError(f"{escape(path)}:{line}: invalid TOML: {why}{col}") from e
    except RecursionError:  # a = [[[[... thousands deep: tomllib recurses
        raise ConfigError(f"{escape(path)}: invalid TOML: nested too deeply") from None
    except UnicodeError as e:  # pragma: no cover - decode() keeps every byte as text
        raise ConfigError(f"{escape(path)}: not UTF-8 text") from e
    v = _Validator(path, _Locator(text))
    out = v.document(doc)
    if v.problems:
        raise ConfigError("\n".join(v.problems), tuple(v.problems))
    return out


class _Locator:
    """Finds the line of a table or a key in the file text (tomllib keeps no positions)."""

    _HEADER = re.compile(r"""^\s*\[\s*(?:"([^"]*)"|'([^']*)'|([A-Za-z0-9_.-]+))\s*\]""")

    def __init__(self, text: str) -> None:
        self.lines = text.splitlines()

    def _key_re(self, key: str) -> re.Pattern[str]:
        k = re.escape(key)
        return re.compile(rf"""^\s*(?:"{k}"|'{k}'|{k})\s*=""")

    def line(self, table: Optional[str], key: Optional[str] = None) -> int:
        """1-based line of ``[table] key`` (of the header when *key* is None; of a top-level
        key when *table* is None); 0 when not found."""
        current: Optional[str] = None
        key_re = self._key_re(key) if key is not None else None
        dotted = self._key_re(f"{table}.{key}") if table is not None and key is not None else None
        for i, text in enumerate(self.lines, 1):
            m = self._HEADER.match(text)
            if m and not text.lstrip().startswith("[["):
                current = next(g for g in m.groups() if g is not None)
                if key is None and current == table:
                    return i
                continue
            if key_re is None:
                continue
            if current == table and key_re.match(text):
                return i
            if current is None and dotted is not None and dotted.match(text):
                return i
        return 0


def _did_you_mean(word: str, choices: list[str]) -> str:
    import difflib

    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return f' (did you mean "{close[0]}"?)' if close else ""


@dataclass(frozen=True)
class Key:
    """One setting of the file: what the validator accepts, and the configuration
    reference of the docs (tools/update_docs.py renders :data:`KEYS` as its table)."""

    table: Optional[str]  # None for a top-level key
    name: str  # '"CODE"' in [severity]: any finding code
    type: str
    meaning: str


KEYS: tuple[Key, ...] = (
    Key(
        None,
        "ignore",
        "list of paths/globs",
        "venvs (and `.venv` aliases, conda environments) left out of every result",
    ),
    Key(
        "scan",
        "roots",
        "list of absolute paths",
        "directories to search when none is given on the command line",
    ),
    Key(
        "scan",
        "exclude",
        "list of globs",
        "directories not walked (as `--exclude`: a name, or a path when it holds a `/`)",
    ),
    Key(
        "scan",
        "network_filesystems",
        "bool",
        "also walk nfs, cifs, sshfs, ... mounts (`--include-network`)",
    ),
    Key(
        "scan",
        "one_file_system",
        "bool",
        "do not cross into other filesystems below a root (`--one-file-system`)",
    ),
    Key(
        "severity",
        '"CODE"',
        "`info`, `warning`, `unknown`, `critical`",
        "the severity of that finding code; each venv's status follows from its findings",
    ),
    Key(
        "policy",
        "allowed_bases",
        "list of paths/globs",
        "a venv whose base interpreter (any hop of its `bin/python` link outside the venv,"
        " the real binary, or a copy's source) matches none gets `base-not-allowed`",
    ),
    Key(
        "check",
        "warning",
        "whole number, 0 or more",
        "WARNING from this many venvs not ok, for `venvkeeper check` (default 1)",
    ),
    Key(
        "check",
        "critical",
        "whole number, 0 or more",
        "CRITICAL from this many critical venvs, for `venvkeeper check` (default 1; the two"
        " count different things: any pair is valid)",
    ),
    Key("check", "ignore_codes", "list of finding codes", "codes `venvkeeper check` leaves out"),
    Key(
        "repair",
        "uv",
        "absolute path",
        "the uv binary rebuilds use (`--uv`); as root it must pass the trust rule (only root"
        " can change it and the directories above it), else the repair is refused. Default:"
        " /usr/local/bin, the system directories, then beside venvkeeper's interpreter",
    ),
)

_TOP_KEYS = list(dict.fromkeys(k.table or k.name for k in KEYS))
_TABLE_KEYS = {
    t: [k.name for k in KEYS if k.table == t]
    for t in dict.fromkeys(k.table for k in KEYS)
    if t is not None and t != "severity"  # [severity] takes any finding code as a key
}


class _Validator:
    def __init__(self, path: str, where: _Locator) -> None:
        self.path = path
        self.where = where
        self.problems: list[str] = []
        self._codes: Optional[list[str]] = None

    @property
    def codes(self) -> list[str]:
        if self._codes is None:
            from venvkeeper.checks.registry import all_codes

            self._codes = sorted(all_codes())
        return self._codes

    def problem(self, table: Optional[str], key: Optional[str], message: str) -> None:
        line = self.where.line(table, key)
        if line == 0 and key is not None:
            # a table named by a top-level key ([scna]); else an inline table: its header
            line = self.where.line(key) if table is None else self.where.line(table)
        prefix = f"{escape(self.path)}:{line}" if line else escape(self.path)
        self.problems.append(f"{prefix}: {message}")

    def document(self, doc: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in doc.items():
            if key not in _TOP_KEYS:
                self.problem(None, key, f'unknown key "{escape(key)}"' + self._hint_top(key))
                continue
            if key == "ignore":
                got = self.paths(None, key, value, absolute=True)
                if got is not None:
                    out["ignore"] = got
                continue
            if not isinstance(value, dict):
                self.problem(None, key, f'"{key}" must be a table ([{key}]), not {_kind(value)}')
                continue
            if key == "severity":
                out["severity"] = self.severity(value)
                continue
            known = _TABLE_KEYS[key]
            for k, val in value.items():
                if k not in known:
                    hint = _did_you_mean(k, known)
                    if not hint and k == "ignore":
                        hint = " (ignore is a top-level key: put it before the first [table])"
                    self.problem(key, k, f'unknown key "{escape(k)}" in [{key}]{hint}')
                    continue
                got = self.value(key, k, val)
                if got is not None:
                    out[_FIELD.get((key, k)) or str(k)] = got
        return out

    def _hint_top(self, key: str) -> str:
        hint = _did_you_mean(key, _TOP_KEYS)
        if hint:
            return hint
        for table, keys in _TABLE_KEYS.items():
            if key in keys:
                return f" (it belongs in [{table}])"
        return ""

    def value(self, table: str, key: str, value: Any) -> Any:
        check: dict[tuple[str, str], Callable[[str, str, Any], Any]] = {
            ("scan", "roots"): lambda t, k, v: self.paths(t, k, v, absolute=True, globs=False),
            ("scan", "exclude"): lambda t, k, v: self.paths(t, k, v, absolute=False),
            ("scan", "network_filesystems"): self.boolean,
            ("scan", "one_file_system"): self.boolean,
            ("policy", "allowed_bases"): lambda t, k, v: self.paths(t, k, v, absolute=True),
            ("check", "warning"): self.count,
            ("check", "critical"): self.count,
            ("check", "ignore_codes"): self.code_list,
            ("repair", "uv"): self.program,
        }
        return check[(table, key)](table, key, value)

    def paths(
        self,
        table: Optional[str],
        key: str,
        value: Any,
        *,
        absolute: bool,
        globs: bool = True,
    ) -> Optional[tuple[str, ...]]:
        name = f"{key} in [{table}]" if table else key
        if not isinstance(value, list) or not all(isinstance(x, str) for x in value):
            self.problem(table, key, f"{name} must be a list of strings, not {_kind(value)}")
            return None
        out: list[str] = []
        for item in value:
            if not item.strip() or "\x00" in item:
                self.problem(table, key, f"{name}: an empty path (or one with a NUL byte)")
                return None
            if absolute and not (item.startswith("/") or (globs and item.startswith("*"))):
                what = "an absolute path" + (" or a glob starting with / or *" if globs else "")
                self.problem(table, key, f'{name}: "{escape(item)}" must be {what}')
                return None
            if not globs and set("*?[") & set(item):
                self.problem(table, key, f'{name}: "{escape(item)}" must be a path, not a glob')
                return None
            out.append(os.path.normpath(item) if absolute and not globs else item)
        return tuple(out)

    def program(self, table: str, key: str, value: Any) -> Optional[str]:
        if not isinstance(value, str) or not value.startswith("/") or "\x00" in value:
            self.problem(
                table, key, f"{key} in [{table}] must be an absolute path, not {_kind(value)}"
            )
            return None
        return os.path.normpath(value)

    def boolean(self, table: str, key: str, value: Any) -> Optional[bool]:
        if not isinstance(value, bool):
            self.problem(
                table, key, f"{key} in [{table}] must be true or false, not {_kind(value)}"
            )
            return None
        return value

    def count(self, table: str, key: str, value: Any) -> Optional[int]:
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            self.problem(
                table,
                key,
                f"{key} in [{table}] must be a whole number of venvs, 0 or more, not"
                f" {_kind(value)}",
            )
            return None
        return value

    def code(self, table: str, key: str, code: str) -> bool:
        if code in self.codes:
            return True
        self.problem(
            table,
            key,
            f'unknown finding code "{escape(code)}"{_did_you_mean(code, self.codes)}'
            " (venvkeeper codes lists them)",
        )
        return False

    def code_list(self, table: str, key: str, value: Any) -> Optional[tuple[str, ...]]:
        if not isinstance(value, list) or not all(isinstance(x, str) for x in value):
            self.problem(table, key, f"{key} in [{table}] must be a list of finding codes")
            return None
        return tuple(c for c in value if self.code(table, key, c)) if value else ()

    def severity(self, table: dict[str, Any]) -> dict[str, Severity]:
        out: dict[str, Severity] = {}
        for code, value in table.items():
            if not self.code("severity", code, code):
                continue
            if not isinstance(value, str) or value not in SEVERITIES:
                hint = ' (use "info": it keeps the venv ok)' if value == "ok" else ""
                self.problem(
                    "severity",
                    code,
                    f'"{escape(code)}" must be one of {", ".join(SEVERITIES)}, not'
                    f" {_kind(value)}{hint}",
                )
                continue
            out[code] = Severity(value)
        return out


_FIELD = {
    ("check", "warning"): "check_warning",
    ("check", "critical"): "check_critical",
    ("check", "ignore_codes"): "check_ignore_codes",
    ("repair", "uv"): "repair_uv",
}


def _kind(value: Any) -> str:
    if isinstance(value, str):
        return f'"{escape(value)}"'
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a table"
    return type(value).__name__
