"""systemd's unit file syntax, read as systemd 252 reads it (systemd.syntax(7),
systemd.service(5) "COMMAND LINES", systemd.unit(5) "SPECIFIERS", systemd.exec(5)).

- :func:`parse_unit`: sections and ``key=value`` assignments, comments, continuation lines.
- :func:`split_words`: systemd's word splitting (quotes, C escapes).
- :func:`parse_exec`: an ``Exec*=`` value: its prefixes, ``;``-separated commands, argv.
- :class:`Specifiers`: ``%i``, ``%h`` ... expanded as the manager would at load time.
- :func:`parse_environment` (``Environment=``) and :func:`parse_env_file`
  (``EnvironmentFile=``), and :func:`substitute` (``$X``/``${X}`` at exec time).

Golden data captured from a real systemd (tests/data/systemd/) checks these.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Optional

WHITESPACE = " \t\n\r"
_PLAIN_WORD = re.compile(r"[^\s'\"\\]+")
_UNSAFE_PATH = re.compile(r"[\x00-\x1f\x7f\\\"']")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass(frozen=True)
class Assignment:
    section: str
    key: str
    value: str
    source: str
    line: int


@dataclass(frozen=True)
class UnitProblem:
    line: int
    message: str


def parse_unit(text: str, source: str) -> tuple[list[Assignment], list[UnitProblem]]:
    """Every assignment of a unit file or drop-in, in order. Comments are lines whose first
    character is ``#`` or ``;``; a trailing ``\\`` joins the next line with a space
    (comment lines inside a continuation are skipped); no inline comments."""
    out: list[Assignment] = []
    problems: list[UnitProblem] = []
    section = ""
    cont: Optional[str] = None
    cont_line = 0
    for n, raw in enumerate(text.split("\n"), 1):
        line = raw.strip()
        if cont is not None and line[:1] in ("#", ";"):
            continue
        if cont is None and (not line or line[0] in "#;"):
            continue
        if line.endswith("\\") and not line.endswith("\\\\"):
            if cont is None:
                cont, cont_line = line[:-1] + " ", n
            else:
                cont += line[:-1] + " "
            continue
        if cont is not None:
            line, start = cont + line, cont_line
            cont = None
        else:
            start = n
        if line.startswith("["):
            if not line.endswith("]"):
                problems.append(UnitProblem(start, f"invalid section header {line[:60]!r}"))
                section = ""
                continue
            section = line[1:-1]
            continue
        if "=" not in line:
            problems.append(UnitProblem(start, f"missing '=', ignored: {line[:60]!r}"))
            continue
        if not section:
            problems.append(UnitProblem(start, "assignment outside of any section, ignored"))
            continue
        key, value = line.split("=", 1)
        out.append(Assignment(section, key.strip(), value.strip(), source, start))
    if cont is not None:
        line = cont.rstrip()
        if "=" in line and section:
            key, value = line.split("=", 1)
            out.append(Assignment(section, key.strip(), value.strip(), source, cont_line))
    return out, problems


class SyntaxProblem(ValueError):
    """A value systemd would reject (and ignore): an open quote, a bad escape."""


_SIMPLE_ESCAPES = {
    "a": "\a",
    "b": "\b",
    "f": "\f",
    "n": "\n",
    "r": "\r",
    "t": "\t",
    "v": "\v",
    "\\": "\\",
    '"': '"',
    "'": "'",
    "s": " ",
}


def _cunescape_one(s: str, i: int) -> tuple[str, int]:
    """One C escape at *s[i]* (after the backslash): (text, characters consumed)."""
    if i >= len(s):
        raise SyntaxProblem("a backslash at the end")
    c = s[i]
    if c in _SIMPLE_ESCAPES:
        return _SIMPLE_ESCAPES[c], 1
    if c == "x":
        digits = s[i + 1 : i + 3]
        if len(digits) == 2 and all(d in "0123456789abcdefABCDEF" for d in digits):
            v = int(digits, 16)
            if v == 0:
                raise SyntaxProblem("\\x00 is not allowed")
            return chr(v), 3
        raise SyntaxProblem(f"invalid escape \\x{digits}")
    if c in ("u", "U"):
        n = 4 if c == "u" else 8
        digits = s[i + 1 : i + 1 + n]
        if len(digits) == n and all(d in "0123456789abcdefABCDEF" for d in digits):
            v = int(digits, 16)
            if v == 0 or v > 0x10FFFF:
                raise SyntaxProblem(f"invalid escape \\{c}{digits}")
            return chr(v), 1 + n
        raise SyntaxProblem(f"invalid escape \\{c}{digits}")
    if c in "01234567":
        digits = s[i : i + 3]
        if len(digits) == 3 and all(d in "01234567" for d in digits):
            v = int(digits, 8)
            if v == 0 or v > 255:
                raise SyntaxProblem(f"invalid escape \\{digits}")
            return chr(v), 3
        raise SyntaxProblem(f"invalid escape \\{digits}")
    raise SyntaxProblem(f"invalid escape \\{c}")


def _escape(s: str, i: int, buf: list[str], relax: bool) -> int:
    """The C escape at *s[i]* (a backslash) appended to *buf*; the index after it. With
    *relax*, an unknown escape is kept as it is."""
    try:
        text, used = _cunescape_one(s, i + 1)
    except SyntaxProblem:
        if not relax:
            raise
        text, used = "\\" + s[i + 1 : i + 2], 1
    buf.append(text)
    return i + 1 + used


def next_word(s: str, i: int, *, relax: bool = False) -> tuple[Optional[str], int]:
    """systemd's ``extract_first_word(EXTRACT_UNQUOTE|EXTRACT_CUNESCAPE)``: the word that
    starts at or after *s[i]* and the index after it; (None, len) at the end. Quotes open
    anywhere in a word; C escapes apply inside and outside them. *relax* keeps an unknown
    escape as it is instead of refusing it."""
    n = len(s)
    while i < n and s[i] in WHITESPACE:
        i += 1
    if i >= n:
        return None, n
    plain = _PLAIN_WORD.match(s, i)
    if plain is not None and (plain.end() == n or s[plain.end()] in WHITESPACE):
        return plain.group(0), plain.end()  # the common case: no quote, no escape
    buf: list[str] = []
    quote: Optional[str] = None
    while i < n:
        c = s[i]
        if quote is not None:
            if c == quote:
                quote = None
                i += 1
            elif c == "\\":
                i = _escape(s, i, buf, relax)
            else:
                buf.append(c)
                i += 1
            continue
        if c in WHITESPACE:
            break
        if c in ("'", '"'):
            quote = c
            i += 1
        elif c == "\\":
            i = _escape(s, i, buf, relax)
        else:
            buf.append(c)
            i += 1
    if quote is not None:
        raise SyntaxProblem("unbalanced quoting")
    return "".join(buf), i


def split_words(s: str, *, relax: bool = False) -> list[str]:
    out: list[str] = []
    i = 0
    while True:
        w, i = next_word(s, i, relax=relax)
        if w is None:
            return out
        out.append(w)


# --- specifiers ----------------------------------------------------------------------------


class UnknownSpecifier(ValueError):
    pass


@dataclass
class Specifiers:
    """The values of ``%X`` for one unit: a missing one makes the expansion *unresolved*
    (a machine fact that files do not tell, such as ``%b`` the boot id)."""

    values: dict[str, str] = field(default_factory=dict)
    used: set[str] = field(default_factory=set)  # the specifiers expanded so far
    unknown: set[str] = field(default_factory=set)  # used but not known statically

    def expand(self, s: str) -> str:
        if "%" not in s:
            return s
        out: list[str] = []
        i = 0
        while i < len(s):
            c = s[i]
            if c != "%":
                out.append(c)
                i += 1
                continue
            if i + 1 >= len(s):
                raise UnknownSpecifier("a lone % at the end")
            k = s[i + 1]
            i += 2
            if k == "%":
                out.append("%")
                continue
            if k not in _KNOWN_SPECIFIERS:
                raise UnknownSpecifier(f"unknown specifier %{k}")
            self.used.add(k)
            value = self.values.get(k)
            if value is None:
                self.unknown.add(k)
                out.append(f"%{k}")
            else:
                out.append(value)
        return "".join(out)


_KNOWN_SPECIFIERS = frozenset("aAbBCdEfgGhHiIjJlLmMnNopPqsStTuUvVwWyY")


def unescape_unit(s: str) -> str:
    """``systemd-escape --unescape``: ``-`` is ``/``, ``\\xNN`` a byte."""
    out = bytearray()
    i = 0
    while i < len(s):
        c = s[i]
        if c == "-":
            out += b"/"
        elif c == "\\" and s[i + 1 : i + 2] == "x" and len(s) >= i + 4:
            try:
                out.append(int(s[i + 2 : i + 4], 16))
                i += 4
                continue
            except ValueError:
                out += c.encode()
        else:
            out += c.encode("utf-8", "surrogateescape")
        i += 1
    return out.decode("utf-8", "surrogateescape")


def unit_path(s: str) -> str:
    """``%f``: the unescaped name as a path, with a leading ``/``."""
    p = unescape_unit(s)
    return p if p.startswith("/") else "/" + p


# --- Exec lines ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ExecCommand:
    """One command of an ``Exec*=`` line, as systemd holds it (``busctl`` shows the same:
    ``path`` and ``argv``; specifiers expanded, ``$VARS`` not yet)."""

    path: str
    argv: tuple[str, ...]
    ignore_errors: bool = False  # -
    no_env_expand: bool = False  # :
    privileged: str = ""  # + ! !!
    argv0_separate: bool = False  # @


_PREFIX = "@-:+!|"


def parse_exec(value: str, spec: Specifiers) -> list[ExecCommand]:
    """The commands of one ``Exec*=`` value. Raises :class:`SyntaxProblem` or
    :class:`UnknownSpecifier` where systemd would ignore the whole line."""
    out: list[ExecCommand] = []
    i = 0
    n = len(value)
    while True:
        first, i = next_word(value, i)
        if first is None:
            break
        at = ignore = noexp = False
        priv = ""
        j = 0
        while j < len(first) and first[j] in _PREFIX:
            c = first[j]
            if c == "@":
                at = True
            elif c == "-":
                ignore = True
            elif c == ":":
                noexp = True
            elif c == "+":
                priv = "+"
            elif c == "!":
                priv = "!!" if priv == "!" else "!"
            j += 1
        path = spec.expand(first[j:])
        if not path:
            raise SyntaxProblem("empty executable path")
        if "$" in path and not noexp and re.search(r"\$\{?[A-Za-z_]", path):
            raise SyntaxProblem(
                f"{path!r}: variables are not expanded in the executable path (systemd"
                " says: Neither a valid executable name nor an absolute path)"
            )
        if _UNSAFE_PATH.search(path):
            raise SyntaxProblem(
                f"{path!r}: the executable path holds a quote, a backslash or a control character"
            )
        if not path.startswith("/") and "/" in path:
            raise SyntaxProblem(f"{path!r} is neither a valid executable name nor an absolute path")
        argv: list[str] = [] if at else [path]
        semicolon = False
        while i < n:
            while i < n and value[i] in WHITESPACE:
                i += 1
            if i >= n:
                break
            if value[i] == ";" and (i + 1 >= n or value[i + 1] in WHITESPACE):
                i += 1
                semicolon = True
                break
            if value.startswith("\\;", i) and (i + 2 >= n or value[i + 2] in WHITESPACE):
                argv.append(";")
                i += 2
                continue
            w, i = next_word(value, i)
            if w is None:
                break
            argv.append(spec.expand(w))
        if at and not argv:
            raise SyntaxProblem("@ given without an argv[0]")
        out.append(ExecCommand(_simplify(path), tuple(argv), ignore, noexp, priv, at))
        if not semicolon:
            break
    return out


def _simplify(path: str) -> str:
    """systemd's ``path_simplify``: duplicate slashes and ``/./`` removed (not ``..``)."""
    parts = [p for p in path.split("/") if p not in ("", ".")]
    return ("/" if path.startswith("/") else "") + "/".join(parts)


# --- environment -----------------------------------------------------------------------------


def parse_environment(value: str, spec: Specifiers) -> list[tuple[str, str]]:
    """``Environment=``: quoted words of ``K=V``, specifiers expanded (never ``$``).
    Invalid words are dropped as systemd drops them."""
    out: list[tuple[str, str]] = []
    for w in split_words(value, relax=True):
        w = spec.expand(w)
        k, eq, v = w.partition("=")
        if eq and _ENV_NAME.fullmatch(k):
            out.append((k, v))
    return out


def parse_env_file(text: str) -> tuple[list[tuple[str, str, int]], list[UnitProblem]]:
    """``EnvironmentFile=``: shell-like ``KEY=value`` lines with single, double or
    backslash quoting and comment lines; ``export KEY=`` is rejected, as systemd does.
    Returns (key, value, line) in order, and the problems."""
    out: list[tuple[str, str, int]] = []
    problems: list[UnitProblem] = []
    i, n, line = 0, len(text), 1
    while i < n:
        # pre-key
        while i < n and text[i] in " \t\r":
            i += 1
        if i >= n:
            break
        if text[i] == "\n":
            i += 1
            line += 1
            continue
        if text[i] in "#;":
            while i < n and text[i] != "\n":
                i += 1
            continue
        start_line = line
        k0 = i
        while i < n and text[i] not in "=\n":
            i += 1
        key = text[k0:i].strip()
        if i >= n or text[i] == "\n":
            problems.append(UnitProblem(start_line, f"no '=' in {key[:40]!r}: ignored"))
            continue
        i += 1  # '='
        while i < n and text[i] in " \t":
            i += 1
        buf: list[str] = []
        trailing = 0
        while i < n and text[i] != "\n":
            c = text[i]
            if c == "'":
                j = text.find("'", i + 1)
                if j < 0:
                    j = n
                chunk = text[i + 1 : j]
                line += chunk.count("\n")
                buf.append(chunk)
                i = j + 1
                trailing = 0
            elif c == '"':
                i += 1
                while i < n and text[i] != '"':
                    if text[i] == "\\" and i + 1 < n:
                        nx = text[i + 1]
                        if nx == "\n":
                            line += 1
                        elif nx in '"\\`$':
                            buf.append(nx)
                        else:
                            buf.append("\\" + nx)
                        i += 2
                        continue
                    if text[i] == "\n":
                        line += 1
                    buf.append(text[i])
                    i += 1
                i += 1
                trailing = 0
            elif c == "\\" and i + 1 < n:
                if text[i + 1] == "\n":
                    line += 1
                else:
                    buf.append(text[i + 1])
                i += 2
                trailing = 0
            else:
                buf.append(c)
                trailing = trailing + 1 if c in " \t\r" else 0
                i += 1
        value = "".join(buf)
        if trailing:
            value = value[:-trailing]
        if _ENV_NAME.fullmatch(key):
            out.append((key, value, start_line))
        else:
            problems.append(
                UnitProblem(start_line, f"invalid environment assignment {key[:40]!r}: ignored")
            )
    return out, problems


_SUBST = re.compile(r"\$(?:\{([A-Za-z_][A-Za-z0-9_]*)\}|(\$))")


def substitute(argv: tuple[str, ...], env: Mapping[str, str]) -> tuple[tuple[str, ...], bool]:
    """Exec-time ``$X``/``${X}`` (argv[1:] only): ``${X}`` inside a word gives one
    argument, ``$X`` as a whole word splits at whitespace, ``$$`` is ``$``, unknown ones
    are empty (``$X`` inside a word stays as it is). Returns (argv, whether anything was
    expanded)."""
    out: list[str] = list(argv[:1])
    changed = False
    for w in argv[1:]:
        if "$" not in w:
            out.append(w)
            continue
        changed = True
        m = re.fullmatch(r"\$([A-Za-z_][A-Za-z0-9_]*)", w)
        if m:
            out.extend(env.get(m.group(1), "").split())
            continue

        def sub(x: re.Match[str]) -> str:
            if x.group(2):
                return "$"
            return env.get(x.group(1) or "", "")

        out.append(_SUBST.sub(sub, w))
    return tuple(out), changed
