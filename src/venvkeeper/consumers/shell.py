"""A small reader of shell command strings (cron lines, ``sh -c '...'``, supervisor's
``bash -c``, run-parts scripts): what they will run, never running them.

The string is split as POSIX ``sh`` would (``shlex``), cut into simple commands at ``&&``,
``||``, ``;``, ``|``, ``&`` and newlines, and walked with a state: the working directory
(``cd``/``pushd``), the environment (``export K=V``, ``K=V cmd``, ``env ...``), ``PATH``
after ``. venv/bin/activate``, the user (``sudo -u``, ``runuser -u``, ``su U -c``).
Wrappers (``nice``, ``timeout``, ``flock``, ``sudo`` ...) are followed to the command they
run, and ``sh -c 'CMD'`` is read again as a string. Variables known in the state
(``$HOME``, ``~``, values set earlier) expand; any other makes the command *unresolved*.
"""

from __future__ import annotations

import posixpath
import re
import shlex
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Optional

OPERATORS = frozenset({"&&", "||", ";", "|", "&", ";;", "|&", "(", ")", "\n"})
REDIRECTS = re.compile(r"^\d*(?:>>?|<<?-?|<>|>&|<&|&>>?|>\|)$")
_VAR = re.compile(r"\$(?:\{([A-Za-z_][A-Za-z0-9_]*)\}|([A-Za-z_][A-Za-z0-9_]*))")
_ASSIGN = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)=(.*)$", re.S)
_KEYWORDS = frozenset(
    {
        "if",
        "then",
        "else",
        "elif",
        "fi",
        "do",
        "done",
        "while",
        "until",
        "for",
        "in",
        "case",
        "esac",
        "{",
        "}",
        "!",
        "time",
    }
)
#: Most words a string may have: a hostile crontab line is not walked forever.
MAX_WORDS = 4096
MAX_DEPTH = 8

# wrapper -> (options that take a value, positional words before the command)
_WRAPPERS: dict[str, tuple[frozenset[str], int]] = {
    "exec": (frozenset({"-a"}), 0),
    "nice": (frozenset({"-n", "--adjustment"}), 0),
    "ionice": (frozenset({"-c", "-n", "-p", "-P", "-u", "--class", "--classdata"}), 0),
    "nohup": (frozenset(), 0),
    "timeout": (frozenset({"-s", "-k", "--signal", "--kill-after"}), 1),
    "flock": (frozenset({"-w", "-E", "--timeout", "--conflict-exit-code"}), 1),
    "chronic": (frozenset(), 0),
    "setsid": (frozenset(), 0),
    "stdbuf": (frozenset({"-i", "-o", "-e"}), 0),
    "taskset": (frozenset(), 1),
    "chpst": (
        frozenset(
            {"-u", "-U", "-b", "-e", "-/", "-n", "-l", "-L", "-m", "-d", "-o", "-p", "-f", "-c"}
        ),
        0,
    ),
    "setpriv": (
        frozenset(
            {
                "--reuid",
                "--regid",
                "--groups",
                "--inh-caps",
                "--ambient-caps",
                "--bounding-set",
                "--securebits",
                "--selinux-label",
                "--apparmor-profile",
            }
        ),
        0,
    ),
    "sudo": (
        frozenset(
            {
                "-u",
                "-g",
                "-C",
                "-D",
                "-h",
                "-p",
                "-r",
                "-t",
                "-T",
                "-U",
                "--user",
                "--group",
                "--chdir",
            }
        ),
        0,
    ),
    "runuser": (frozenset({"-u", "-g", "-G", "-s", "--user", "--group", "--shell"}), 0),
    "command": (frozenset(), 0),
    "builtin": (frozenset(), 0),
    "xargs": (frozenset({"-n", "-I", "-P", "-d", "-L", "-s", "-E", "-a"}), 0),
    "ssh-agent": (frozenset(), 0),
}


@dataclass
class State:
    """What the shell knows when it reaches a command."""

    env: dict[str, str]
    cwd: Optional[str]
    home: Optional[str]
    user: Optional[str]
    shell: str = "/bin/sh"
    activated: list[tuple[str, str]] = field(default_factory=list)  # (path, text)

    def copy(self) -> State:
        return State(
            dict(self.env), self.cwd, self.home, self.user, self.shell, list(self.activated)
        )


@dataclass(frozen=True)
class Invocation:
    """One command the string runs, after its wrappers."""

    argv: tuple[str, ...]
    env: Mapping[str, str]
    cwd: Optional[str]
    user: Optional[str]
    expanded: bool  # a variable or ~ was expanded in argv
    unresolved: bool  # a variable could not be known
    text: str  # the simple command as written


@dataclass(frozen=True)
class Sourced:
    """A file the string sources (``. FILE``, ``source FILE``)."""

    path: str
    text: str
    bashism: bool  # ``source`` (not in dash: a Debian cron job with it is already broken)
    shell: str


@dataclass(frozen=True)
class Parsed:
    invocations: tuple[Invocation, ...]
    sourced: tuple[Sourced, ...]
    error: Optional[str] = None  # why the string could not be split
    env: Mapping[str, str] = field(default_factory=dict)  # the shell's at the end
    cwd: Optional[str] = None


def _split(text: str) -> list[str]:
    """Words and operators; newlines are operators. Raises ValueError (open quote)."""
    lex = shlex.shlex(text, posix=True, punctuation_chars=";&|()<>")
    lex.whitespace = " \t\r"
    lex.whitespace_split = True
    lex.commenters = "#"
    words: list[str] = []
    for w in lex:
        words.append(w)
        if len(words) > MAX_WORDS:
            raise ValueError(f"more than {MAX_WORDS} words")
    return words


def _commands(words: list[str]) -> Iterator[list[str]]:
    cur: list[str] = []
    for w in words:
        if w in OPERATORS or w == "\n" or set(w) <= set(";&|()\n"):
            if cur:
                yield cur
            cur = []
        else:
            cur.append(w)
    if cur:
        yield cur


def _expand(word: str, st: State) -> tuple[str, bool, bool]:
    """(word with known variables and ~ expanded, expanded, unresolved)."""
    expanded = unresolved = False
    if word == "~" or word.startswith("~/"):
        if st.home:
            word = st.home + word[1:]
            expanded = True
        else:
            unresolved = True

    def sub(m: re.Match[str]) -> str:
        nonlocal expanded, unresolved
        name = m.group(1) or m.group(2)
        value = st.env.get(name)
        if value is None and name == "HOME":
            value = st.home
        if value is None:
            unresolved = True
            return m.group(0)
        expanded = True
        return value

    if "$" in word:
        word = _VAR.sub(sub, word)
        if "$(" in word or "`" in word:
            unresolved = True
    return word, expanded, unresolved


def _abs(path: str, st: State) -> str:
    if path.startswith("/"):
        return posixpath.normpath(path)
    return posixpath.normpath(posixpath.join(st.cwd or "/", path))


def parse(
    text: str,
    *,
    env: Mapping[str, str],
    cwd: Optional[str] = None,
    home: Optional[str] = None,
    user: Optional[str] = None,
    shell: str = "/bin/sh",
) -> Parsed:
    """Every command *text* runs (``$SHELL -c TEXT``) and the files it sources."""
    st = State(dict(env), cwd, home, user, shell)
    inv: list[Invocation] = []
    src: list[Sourced] = []
    try:
        _walk(text, st, inv, src, 0)
    except ValueError as e:
        return Parsed(tuple(inv), tuple(src), str(e), st.env, st.cwd)
    return Parsed(tuple(inv), tuple(src), None, st.env, st.cwd)


def _walk(text: str, st: State, inv: list[Invocation], src: list[Sourced], depth: int) -> None:
    if depth > MAX_DEPTH:
        raise ValueError("sh -c nested too deeply")
    for words in _commands(_split(text)):
        _simple(words, st, inv, src, depth)


def _strip_redirects(words: list[str]) -> list[str]:
    out: list[str] = []
    skip = False
    for i, w in enumerate(words):
        if skip:
            skip = False
            continue
        if w.isdigit() and i + 1 < len(words) and words[i + 1][:1] in "<>":
            continue  # the fd of 2>&1, split off by the lexer
        if REDIRECTS.match(w) or w in ("<", ">"):
            skip = True
            continue
        if w[:1] in "<>" or re.match(r"^\d+>", w):
            continue
        out.append(w)
    return out


def _simple(
    words: list[str], st: State, inv: list[Invocation], src: list[Sourced], depth: int
) -> None:
    words = _strip_redirects(words)
    while words and words[0] in _KEYWORDS:
        words = words[1:]
    if not words:
        return
    local: dict[str, str] = {}
    expanded = unresolved = False
    # leading assignments: for this command only, or for the shell when nothing follows
    while words and _ASSIGN.match(words[0]):
        m = _ASSIGN.match(words[0])
        assert m is not None
        value, e, u = _expand(m.group(2), st)
        local[m.group(1)] = value
        expanded |= e
        unresolved |= u
        words = words[1:]
    if not words:
        st.env.update(local)
        return
    env = {**st.env, **local}
    cur = State(env, st.cwd, st.home, st.user, st.shell, st.activated)
    argv: list[str] = []
    for w in words:
        x, e, u = _expand(w, cur)
        argv.append(x)
        expanded |= e
        unresolved |= u
    _command(argv, st, cur, inv, src, depth, expanded, unresolved, " ".join(words))


def _command(
    argv: list[str],
    st: State,
    cur: State,
    inv: list[Invocation],
    src: list[Sourced],
    depth: int,
    expanded: bool,
    unresolved: bool,
    text: str,
) -> None:
    while argv:
        name = posixpath.basename(argv[0])
        if name in ("cd", "pushd"):
            dirs = [a for a in argv[1:] if a != "--" and not a.startswith("-")]
            dest: Optional[str] = dirs[0] if dirs else None
            if dest is None:
                st.cwd = st.home
            elif dest != "-":
                st.cwd = _abs(dest, st)
            return
        if name == "export":
            for w in argv[1:]:
                m = _ASSIGN.match(w)
                if m:
                    st.env[m.group(1)] = m.group(2)
            return
        if name in (".", "source"):
            if len(argv) > 1:
                path = _abs(argv[1], cur)
                src.append(Sourced(path, text, name == "source", st.shell))
                if path.endswith("/bin/activate"):
                    venv_bin = posixpath.dirname(path)
                    st.env["PATH"] = venv_bin + ":" + st.env.get("PATH", "")
                    st.env["VIRTUAL_ENV"] = posixpath.dirname(venv_bin)
            return
        if name == "env":
            argv = _env(argv[1:], cur)
            continue
        if name in SH_NAMES:
            script = dash_c(argv[1:])
            if script is not None:
                inner = cur.copy()
                _walk(script, inner, inv, src, depth + 1)
                return
            break
        if name == "su":
            user, script = _su(argv[1:])
            if script is not None:
                inner = cur.copy()
                inner.user = user or "root"
                inner.home = None if user not in (None, cur.user) else cur.home
                _walk(script, inner, inv, src, depth + 1)
                return
            return
        if name == "start-stop-daemon":
            started = _start_stop_daemon(argv[1:], cur)
            if started is None:
                return
            argv = started
            continue
        if name in _WRAPPERS:
            unwrapped = _unwrap(name, argv[1:], cur)
            if unwrapped is None:
                return
            argv = unwrapped
            continue
        break
    if argv:
        inv.append(
            Invocation(
                tuple(argv), dict(cur.env), cur.cwd or st.cwd, cur.user, expanded, unresolved, text
            )
        )


SH_NAMES = frozenset({"sh", "bash", "dash", "zsh", "ksh"})


def dash_c(args: list[str]) -> Optional[str]:
    """The script of ``sh [-opts] -c SCRIPT`` (``-lc``, ``-ec`` ...), or None."""
    for i, a in enumerate(args):
        if a.startswith("-") and not a.startswith("--") and "c" in a[1:]:
            return args[i + 1] if i + 1 < len(args) else None
        if not a.startswith("-"):
            return None
    return None


def _su(args: list[str]) -> tuple[Optional[str], Optional[str]]:
    user: Optional[str] = None
    script: Optional[str] = None
    i = 0
    while i < len(args):
        a = args[i]
        if a in ("-c", "--command") and i + 1 < len(args):
            script = args[i + 1]
            i += 2
            continue
        if a in ("-s", "--shell", "-g", "--group", "-G"):
            i += 2
            continue
        if a.startswith("-"):
            i += 1
            continue
        if user is None:
            user = a
        i += 1
    return user, script


def _env(args: list[str], cur: State) -> list[str]:
    """``env [-i] [-u K] [-C DIR] [-S STR] [K=V]... CMD``: CMD, the state changed."""
    i = 0
    while i < len(args):
        a = args[i]
        if a in ("-i", "--ignore-environment", "-"):
            cur.env = {}
        elif a in ("-u", "--unset") and i + 1 < len(args):
            cur.env.pop(args[i + 1], None)
            i += 1
        elif a in ("-C", "--chdir") and i + 1 < len(args):
            cur.cwd = _abs(args[i + 1], cur)
            i += 1
        elif a in ("-S", "--split-string") and i + 1 < len(args):
            try:
                return [*shlex.split(args[i + 1]), *args[i + 2 :]]
            except ValueError:
                return args[i + 1].split() + args[i + 2 :]
        elif a.startswith("-S") and len(a) > 2:
            return a[2:].split() + args[i + 1 :]
        elif a == "--":
            i += 1
            break
        elif a.startswith("-"):
            pass
        elif _ASSIGN.match(a):
            m = _ASSIGN.match(a)
            assert m is not None
            cur.env[m.group(1)] = m.group(2)
        else:
            break
        i += 1
    return args[i:]


#: start-stop-daemon's options that take a value (dpkg 1.21), short and long.
_SSD_VALUE = frozenset(
    {
        "-p", "--pidfile", "-n", "--name", "-u", "--user", "-g", "--group", "-s", "--signal",
        "-R", "--retry", "-r", "--chroot", "-N", "--nicelevel", "-P", "--procsched",
        "-I", "--iosched", "-k", "--umask", "--ppid", "--notify-timeout", "--output",
        "-x", "--exec", "-a", "--startas", "-c", "--chuid", "-d", "--chdir",
    }
)  # fmt: skip


def _start_stop_daemon(args: list[str], cur: State) -> Optional[list[str]]:
    """What ``start-stop-daemon --start`` runs: ``--startas`` (else ``--exec``) with the
    arguments after ``--``, as ``--chuid`` USER in ``--chdir`` DIR; None for ``--stop``,
    ``--status`` or ``--test`` (nothing is run)."""
    start = test = False
    values: dict[str, str] = {}
    i = 0
    while i < len(args):
        a = args[i]
        if a == "--":
            i += 1
            break
        opt, eq, val = a.partition("=")
        if opt in _SSD_VALUE and a.startswith("-"):
            if not eq:
                if i + 1 >= len(args):
                    break
                val = args[i + 1]
                i += 1
            values[opt.lstrip("-")[:1] if not opt.startswith("--") else opt[2:]] = val
        elif a in ("-S", "--start"):
            start = True
        elif a in ("-t", "--test"):
            test = True
        i += 1
    prog = values.get("startas") or values.get("a") or values.get("exec") or values.get("x")
    if not start or test or not prog:
        return None
    user = values.get("chuid") or values.get("c")
    if user:
        cur.user = user.split(":")[0]
        cur.home = None
    cwd = values.get("chdir") or values.get("d")
    if cwd:
        cur.cwd = _abs(cwd, cur)
    return [prog, *args[i:]]


def _unwrap(name: str, args: list[str], cur: State) -> Optional[list[str]]:
    """The command a wrapper runs (its own options and positional words skipped), the
    user changed for ``sudo -u``/``runuser -u``/``chpst -u``/``setpriv --reuid``."""
    takes, positional = _WRAPPERS[name]
    i = 0
    while i < len(args):
        a = args[i]
        if a == "--":
            i += 1
            break
        if name == "nice" and re.fullmatch(r"-\d+", a):
            i += 1
            continue
        if name == "flock" and a in ("-c", "--command"):
            if i + 1 < len(args):
                return ["sh", "-c", args[i + 1]]
            return None
        if a.startswith("-") and len(a) > 1:
            opt, eq, val = a.partition("=")
            if opt in takes:
                value = val if eq else (args[i + 1] if i + 1 < len(args) else "")
                if opt in ("-u", "--user", "--reuid", "-U") and name in (
                    "sudo",
                    "runuser",
                    "chpst",
                    "setpriv",
                ):
                    cur.user = value.split(":")[0]
                    cur.home = None
                if opt in ("-D", "--chdir") and name == "sudo":
                    cur.cwd = _abs(value, cur)
                i += 1 if eq else 2
                continue
            if name == "sudo" and opt in ("-i", "--login"):
                cur.home = None
            i += 1
            continue
        break
    rest = args[i:]
    if name == "runuser" and rest and not cur.user:
        # runuser [-l] USER -c CMD
        user, script = _su(rest)
        if script is not None:
            cur.user = user
            return ["sh", "-c", script]
    rest = rest[positional:]
    if name == "xargs":
        return rest or None
    return rest or None
