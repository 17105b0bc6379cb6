"""``pyvenv.cfg``: parsed leniently, the way the interpreter itself reads it, problems collected."""

from __future__ import annotations

from venvkeeper.model.venv import CfgProblem, PyvenvCfg

#: Keys whose first occurrence wins: getpath stops at the first ``home``.
_FIRST_WINS = frozenset({"home"})


def parse_pyvenv_cfg(text: str, truncated: bool = False) -> PyvenvCfg:
    """Parse the text of a ``pyvenv.cfg``.

    Like CPython's ``site.venv()`` and ``getpath``: a line is ``key = value`` split at the
    first ``=``, keys are case-insensitive, spaces around both are dropped, lines without
    ``=`` are ignored. Unknown keys are kept. Problems (junk lines, duplicate keys, a NUL
    byte, truncation) are collected, never raised.
    """
    values: dict[str, str] = {}
    duplicates: list[str] = []
    problems: list[CfgProblem] = []
    # A byte-order mark is harmless in practice (tested: the venv still finds its base
    # through bin/python), so it is dropped without a problem.
    if text.startswith("\ufeff"):
        text = text[1:]
    if "\x00" in text:
        problems.append(CfgProblem(0, "contains NUL bytes: not a text file"))
    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        key, eq, value = line.partition("=")
        key = key.strip().lower()
        if not eq or not key:
            problems.append(CfgProblem(lineno, f"not a 'key = value' line: {raw[:80]!r}"))
            continue
        value = value.strip()
        if key in values:
            if key not in duplicates:
                duplicates.append(key)
            if key in _FIRST_WINS:
                continue
        values[key] = value
    for key in duplicates:
        problems.append(CfgProblem(0, f"key {key!r} appears more than once"))
    if truncated:  # the most telling problem of a huge file goes first
        problems.insert(0, CfgProblem(0, "file is too large: only its beginning was read"))
    return PyvenvCfg(values, tuple(duplicates), tuple(problems), truncated)
