"""Judging again by groups: what an apt run's replaced files can change, judged once per base.

After a Python patch upgrade every venv on that Python depends on the files dpkg replaced,
so the apt post-invoke hook would judge them all again, one by one. Most verdicts cannot
change: the files a package run replaces (interpreters, stdlibs, headers, embedding
modules) reach a venv's facts only through its *base view*: its link chains past the venv,
its base interpreter, the host's read errors about those, and whether its scripts'
interpreters exist. Venvs that share the inputs of that view and saw the same view last
time form a *group*; one member is judged again and tells the group's new view.

What each venv's verdict *read* of that view was recorded when it was judged (:func:`judge`
runs the checks on a base that notes each field a check reads: the copies check reads the
patch version only of a copy, for one). A venv whose verdict read none of what changed in
its group's view keeps its verdict (its summary takes the new base's version, patch and
executable); any other member is judged again in full. Checks are pure functions of the
facts, so a verdict that read the same values is the same verdict:
``tests/test_incremental.py`` compares grouped and one-by-one judging over generated
worlds.

An incremental scan (:mod:`venvkeeper.scan.incremental`) uses the groups too: the first
venv of a group it meets is judged in full and tells whether the group's view is what it
was (its key is the kept one); every other venv of the group whose own files and other
answers of the host are unchanged keeps its verdict.

The view's inputs (:func:`group_key`): the venv's OS root; each link chain's names and
hops inside the venv (relative) and its first hop outside; pyvenv.cfg's ``home``; a legacy
virtualenv's ``orig-prefix.txt`` and version; the Python a conda prefix recorded; the
interpreters its scripts name (inside the venv: relative). A venv whose interpreter is a
copy inside it depends on its own path too: it is a group of its own. What the grouping
assumes: a package run changes no venv's own files and none of the other paths a verdict
asks of the host (recorded locations, the owner's files beside a venv, editable sources):
those are the next scan's, as for the kept facts themselves.
"""

from __future__ import annotations

import dataclasses
import hashlib
from typing import Any, Optional

from venvkeeper.model.policy import Policy
from venvkeeper.model.venv import BaseInterpreter, VenvFacts, VenvKind
from venvkeeper.scan.inspect import host_errors

#: The base's fields, each a bit of a venv's read mask; then the parts of the view that
#: every verdict is taken to read (any change to them judges the whole group again).
BASE_FIELDS = tuple(f.name for f in dataclasses.fields(BaseInterpreter))
WHOLE = ("base", "chains", "errors", "scripts")
COMPONENTS = BASE_FIELDS + WHOLE
BIT = {name: 1 << i for i, name in enumerate(COMPONENTS)}
_BASE_BIT = {name: BIT[name] for name in BASE_FIELDS}
#: What every verdict reads: the base's presence, the chains, the host's errors, the
#: scripts; and what the site policy may read (allowed bases: the executable, a copy's
#: source).
ALWAYS = (
    BIT["base"] | BIT["chains"] | BIT["errors"] | BIT["scripts"]
    | BIT["executable"] | BIT["copy_source"]
)  # fmt: skip
#: What consumer checks read of a venv's view (its minor).
CONSUMER_READS = BIT["base"] | BIT["version"] | BIT["chains"]


def _noting_property(name: str, bit: int) -> property:
    def get(self: Any) -> Any:
        self._cell[0] |= bit
        return self._values[name]

    return property(get)


class _ReadBase(BaseInterpreter):
    """A :class:`BaseInterpreter` that notes which of its fields are read (into the
    one-element list ``_cell``): each field is a property that notes its bit. Anything
    that reads every field (equality, ``repr``, :func:`dataclasses.replace`) notes them
    all."""


for _name in BASE_FIELDS:
    setattr(_ReadBase, _name, _noting_property(_name, BIT[_name]))


def noting_reads(facts: VenvFacts) -> tuple[VenvFacts, list[int]]:
    """*facts* with a base that notes the fields read of it, and the cell the reads go to
    (with :data:`ALWAYS` in it)."""
    cell = [ALWAYS]
    base = facts.base
    if base is None:
        return facts, cell
    noting: Any = object.__new__(_ReadBase)
    noting.__dict__["_values"] = vars(base)
    noting.__dict__["_cell"] = cell
    copy: Any = object.__new__(type(facts))
    vars(copy).update(vars(facts), base=noting)
    return copy, cell


def _inputs(facts: VenvFacts) -> tuple[Any, ...]:
    """What the base view is made from, besides the host (paths inside the venv are made
    relative by :func:`group_of`)."""
    inside = facts.path_in_root.rstrip("/") + "/"
    chains = []
    for c in facts.chains:
        first = next((h for h in c.hops if not h.startswith(inside)), None)
        own = c.hops if first is None else c.hops[: c.hops.index(first)]
        chains.append((c.name, own, first))
    base = facts.base
    legacy = next((s.python_version for s in facts.site_dirs), None)
    # a copy inside the venv is judged against its own path: a group of its own
    alone = facts.path.replace("/", "|") if base is not None and base.is_copy else None
    return (
        facts.root,
        facts.kind.value,
        chains,
        facts.cfg.get("home") if facts.cfg is not None else None,
        facts.orig_prefix,
        legacy if facts.kind is VenvKind.LEGACY_VIRTUALENV else None,
        facts.recorded_python,
        alone,
    )


def _digest(text: str) -> str:
    return hashlib.blake2b(text.encode("utf-8", "surrogateescape"), digest_size=8).hexdigest()


def _view_values(facts: VenvFacts) -> tuple[Any, ...]:
    """The components of the venv's base view (:data:`COMPONENTS`, in order)."""
    base = facts.base
    fields: tuple[Any, ...] = (
        (None,) * len(BASE_FIELDS)
        if base is None
        else tuple(getattr(base, name) for name in BASE_FIELDS)
    )
    # the read errors met outside the venv: derived from the chains and the base, but read
    # by checks as errors (a verdict may read them without reading the base's fields)
    errors = host_errors(facts.chains, base)
    states: dict[str, Optional[bool]] = {}
    for sc in facts.scripts:
        if sc.interpreter is not None and sc.interpreter not in states:
            states[sc.interpreter] = sc.interpreter_exists
    scripts = sorted(states.items(), key=lambda kv: kv[0])
    return (*fields, base is None, facts.chains, errors, scripts)


def group_of(facts: VenvFacts) -> tuple[str, tuple[Any, ...]]:
    """(the key of the venv's group: the inputs of its base view and the view itself,
    paths inside the venv relative; the view, for :func:`view`)."""
    values = _view_values(facts)
    inside = facts.path_in_root.rstrip("/") + "/"
    text = repr((_inputs(facts), values)).replace(inside, "./")
    return _digest(text), values


def view(facts: VenvFacts, values: tuple[Any, ...]) -> dict[str, str]:
    """The view of *facts* (*values*, from :func:`group_of`) as a digest of each of its
    components, by name, paths inside the venv relative: what the inventory keeps of
    each group, to tell what changed (:func:`delta`)."""
    inside = facts.path_in_root.rstrip("/") + "/"
    return {name: _digest(repr(v).replace(inside, "./")) for name, v in zip(COMPONENTS, values)}


def policy_digest(policy: Policy) -> str:
    """What a verdict kept under *policy* depends on of it (another policy: judge anew)."""
    severity = sorted((k, v.value) for k, v in policy.severity.items())
    return _digest(repr((policy.ignore, policy.allowed_bases, severity)))


def delta(old: dict[str, str], new: dict[str, str]) -> int:
    """The components that differ between two views, as a mask of :data:`BIT`."""
    mask = 0
    for name, bit in BIT.items():
        if old.get(name) != new.get(name):
            mask |= bit
    return mask
