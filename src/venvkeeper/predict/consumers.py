"""The consumers of each venv under a planned change: which break, and how each fails.

A consumer (:mod:`venvkeeper.consumers`) fails with its venv, but not always as its venv
does:

- one that **runs** the venv (a unit's ``ExecStart=``, a cron line, a command, a
  supervisor program: ``exec-*``, ``path-entry``, ``activate``) fails when the venv breaks:
  it will not start (203/EXEC) when the venv's interpreter goes away (``breaks-loudly``,
  ``removed``), else it starts and fails at import; a scheduled job fails at its next run,
  a command when someone runs it;
- one that **embeds** Python (uWSGI ``home=``, mod_wsgi ``python-home=``) imports the venv's
  ``lib/pythonX.Y`` with the server's own libpython: it answers HTTP 500 while the server
  looks healthy as soon as the module's Python differs from the minor the venv's packages
  are installed for, whatever the venv's own interpreter does. The module's Python after
  the change: a module whose package the change upgrades (:attr:`Change.embedders`, from
  the apt run) gets the new minor; without that list, the distro's modules follow
  ``python3`` when the change repoints it, as a release upgrade rebuilds them;
- one that reaches the venv only through a **hard-coded** ``VENV/lib/pythonX.Y``
  (``PYTHONPATH=`` of a unit that runs ``/usr/bin/python3``, mod_wsgi's ``python-path=``
  without ``python-home=``) runs a Python of its own: the change does not break it (pure
  Python packages import across minors; a compiled one is the venv's ``abi-mismatch``),
  but the venv's planned repair onto another minor removes that directory, and it breaks
  although the repair worked: :attr:`ConsumerPrediction.after_repair` names the line to
  change. A stale hard-code beside a venv the consumer runs or embeds is skipped by
  Python (a missing directory on ``sys.path``) and breaks nothing.

Pure but for one static read: which package owns an embedding module (dpkg's lists of
the system root, else the distros' known module paths).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import replace
from typing import Optional

from venvkeeper.checks.consumers import site_minor
from venvkeeper.consumers.judge import by_venv, real
from venvkeeper.host import aptdb
from venvkeeper.model.consumers import (
    Consumer,
    ConsumerPrediction,
    ConsumerScan,
    FailsHow,
    Reference,
    RefKind,
)
from venvkeeper.model.plan import Effect, Prediction, Strategy, VenvPrediction
from venvkeeper.predict.changes import DEFAULT_LINKS, EMBEDDER_PACKAGES, Change

#: Where those packages put their modules (a path inside the system root), for a root
#: without dpkg's lists.
_MODULE_PACKAGES = (
    (re.compile(r"^/usr/lib/apache2/modules/mod_wsgi\.so(-\d+\.\d+)?$"), EMBEDDER_PACKAGES[0]),
    (re.compile(r"^/usr/lib/uwsgi/plugins/python3\d*_plugin\.so$"), EMBEDDER_PACKAGES[1]),
    (re.compile(r"^/usr/lib(64)?/httpd/modules/mod_wsgi_python3\.so$"), EMBEDDER_PACKAGES[2]),
    (re.compile(r"^/usr/lib(64)?/uwsgi/python3\d*_plugin\.so$"), EMBEDDER_PACKAGES[1]),
)
#: Effects that take the venv's interpreter away: its consumers will not even start.
_LOUD = frozenset({Effect.BREAKS_LOUDLY, Effect.REMOVED})
#: References that run the venv (all but what an embedding server or a path names).
_NOT_RUNNING = frozenset({RefKind.EMBEDDED_HOME, RefKind.SITEPKGS_HARDCODE})

PackageOf = Callable[[str], Optional[str]]


def module_package(root: str = "/") -> PackageOf:
    """A function giving the package that owns an embedding module (a host path under
    *root*): dpkg's own lists when the root has them, else the distros' module paths."""
    state = aptdb.state(root)
    prefix = "" if root.rstrip("/") == "" else root.rstrip("/")
    cache: dict[str, Optional[str]] = {}

    def package_of(module: str) -> Optional[str]:
        if module not in cache:
            inside = module[len(prefix) :] if prefix and module.startswith(prefix + "/") else module
            found: Optional[str] = None
            if state.is_debian:
                pkg = state.owner(inside)
                found = pkg.name if pkg is not None else None
            if found is None:
                found = next((n for rx, n in _MODULE_PACKAGES if rx.search(inside)), None)
            cache[module] = found
        return cache[module]

    return package_of


def default_minor(change: Change, root: str = "/") -> Optional[str]:
    """The minor the change makes the system's ``python3`` (its default link repointed),
    else None."""
    prefix = root.rstrip("/")
    defaults = {prefix + link for link in DEFAULT_LINKS}
    for link, minor in change.python_becomes:
        if link is None or link in defaults:
            return minor
    return None


def embedders(change: Change, root: str = "/") -> dict[str, str]:
    """Package -> the Python minor its modules embed after *change*."""
    new = default_minor(change, root)
    if change.embedders is None:
        return {p: new for p in EMBEDDER_PACKAGES} if new else {}
    if new is None and change.python_becomes:  # a distro prefix's python3 (apt's --prefix)
        new = change.python_becomes[0][1]
    out: dict[str, str] = {}
    for pkg, minor in change.embedders:
        if minor or new:
            out[pkg] = minor or new or ""
    return out


def judge_consumers(
    pred: Prediction,
    scan: ConsumerScan,
    change: Change,
    *,
    root: str = "/",
    package_of: Optional[PackageOf] = None,
) -> Prediction:
    """*pred* with each venv's consumers (of *scan*, read in the system *root*) judged
    under *change*."""
    found = by_venv(scan.consumers)
    moved = embedders(change, root)
    owner = package_of
    if owner is None and moved:
        owner = module_package(root)
    out: list[VenvPrediction] = []
    for v in pred.venvs:
        consumers = found.get(real(v.path), ())
        judged = tuple(_judge(c, v, moved, owner) for c in consumers)
        out.append(replace(v, consumers=judged) if judged else v)
    return replace(pred, venvs=tuple(out), consumers_read=True)


def _judge(
    c: Consumer, v: VenvPrediction, moved: dict[str, str], owner: Optional[PackageOf]
) -> ConsumerPrediction:
    key = real(v.path)
    refs = [r for r in c.refs if r.venv is not None and real(r.venv) == key]
    kinds = {r.kind for r in refs}
    site = site_minor(v.now.facts)
    runs = bool(kinds - _NOT_RUNNING)
    embeds = RefKind.EMBEDDED_HOME in kinds
    embedded = embeds and c.embedded_python is not None
    # it reaches the venv only through a hard-coded lib/pythonX.Y, with a Python of its own
    path_only = not runs and not embeds
    then_minor = c.embedded_python
    package = None
    if embedded and c.embedded_module and owner is not None:
        package = owner(c.embedded_module)
        then_minor = moved.get(package or "", c.embedded_python)

    broken_now = (
        (embedded and bool(site) and c.embedded_python != site)
        or (runs and not embedded and v.effect is Effect.ALREADY_BROKEN)
        # the directory it names is not the venv's site-packages
        or (path_only and bool(site) and any(r.minor and r.minor != site for r in refs))
    )

    fails: Optional[FailsHow] = None
    why = ""
    if v.then is None:
        fails = c.fails_how(loud=True)
        why = "the change removes its venv"
    elif embedded:
        if site and then_minor != site:
            fails = FailsHow.HTTP_500
            module = os.path.basename(c.embedded_module or "") or "its module"
            moves = package is not None and then_minor != c.embedded_python
            what = f"{package} rebuilt for" if moves else f"{module} embeds"
            why = f"{what} Python {then_minor}, its venv's packages are for Python {site}"
    elif runs and (v.effect.breaks or v.effect is Effect.ALREADY_BROKEN):
        fails = c.fails_how(loud=v.effect in _LOUD)
        main = (v.then or v.now).main_finding
        why = f"its venv {v.effect.value}" + (f" ({main.code})" if main else "")
    return ConsumerPrediction(
        consumer=c,
        venv=v.path,
        breaks=fails is not None and not broken_now,
        fails_how=fails,
        why=why,
        broken_now=broken_now,
        embedded_then=then_minor if embedded else None,
        after_repair=_after_repair(v, refs if path_only else [], then_minor if embedded else None),
    )


def _repaired_minor(v: VenvPrediction) -> Optional[str]:
    """The minor the venv's plan puts it on (None: the plan keeps it where it is)."""
    plan = v.plan
    if plan is None or plan.target is None:
        return None
    if plan.strategy in (Strategy.REBUILD, Strategy.RELINK):
        return plan.target.version.rstrip("t")
    return None


def _after_repair(
    v: VenvPrediction, hard_codes: list[Reference], embedded_then: Optional[str]
) -> Optional[str]:
    """What still breaks a consumer after its venv's planned repair: a hard-coded
    ``lib/pythonX.Y`` of the old minor that is its only way to the venv's packages (one
    that runs or embeds the venv finds them anyway: its stale path is skipped), or a
    server that embeds another Python than the repair's."""
    minor = _repaired_minor(v)
    if minor is None:
        return None
    for r in hard_codes:
        if r.kind is RefKind.SITEPKGS_HARDCODE and r.minor and r.minor != minor:
            where = f"{r.source}:{r.line}" if r.line else r.source
            return (
                f"{where} hard-codes lib/python{r.minor}: after the repair on Python {minor}"
                f" it must say lib/python{minor} (repair --fix-consumers changes it)"
            )
    if embedded_then and embedded_then != minor:
        return (
            f"the repair puts its venv on Python {minor}, but it embeds Python"
            f" {embedded_then}: repair --python /usr/bin/python{embedded_then} instead"
        )
    return None
