"""The rebuild: a new venv on the plan's target with the old venv's very packages.

In order, each step a function with its own contract: the target checked by the trust
rule (:func:`check_target`), the venv created by the installer's tool
(:func:`create_venv`), the package set installed at its pins (:func:`install_set`: a pin
that fails is named, or with ``--allow-upgrades`` moved to the nearest version that
installs), the seeds (:mod:`.seeding`), the version audit (:mod:`.audit`), then what the
old venv had beside its packages (:mod:`.carry`).
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from venvkeeper.errors import os_reason_in_output
from venvkeeper.host.command import Completed
from venvkeeper.host.trust import TrustCache, user_name
from venvkeeper.model.plan import RepairPlan, RequirementKind
from venvkeeper.model.repair import PinFailure
from venvkeeper.model.venv import Creator
from venvkeeper.predict.seeds import is_seed
from venvkeeper.repair.audit import check_versions, installed
from venvkeeper.repair.backends import Backend, Uv
from venvkeeper.repair.carry import carry_over, match_root
from venvkeeper.repair.options import backend_for
from venvkeeper.repair.seeding import Seeder
from venvkeeper.repair.transaction import RepairError
from venvkeeper.repair.work import Log, Work
from venvkeeper.scan.deep import interpreter_distrust
from venvkeeper.textutil import canonical_name, plural


class PinsFailed(RepairError):
    """The package set does not install on the target; *pins* says which pin, and why."""

    def __init__(self, message: str, pins: Sequence[PinFailure]) -> None:
        super().__init__(message)
        self.pins = tuple(pins)


def relaxed(spec: str, name: str, version: str) -> str:
    """``name==version`` as ``name>=version`` (the nearest that installs); any other
    requirement line as it is."""
    return f"{name}>={version}" if spec == f"{name}=={version}" else spec


def ensurepip_hint(version: str) -> str:
    """What to do when a Python cannot seed a venv (Debian splits ensurepip out): the
    command in backticks, runnable as printed."""
    return f" (on Debian: `apt install python{version.rstrip('t')}-venv`; or install uv)"


def check_target(work: Work) -> None:
    """:class:`RepairError` unless the target interpreter passes the trust rule for the
    user the build runs as. Inside another OS root the :class:`~.owner.ChrootRunner`'s
    refusal checked the root's Python already (:func:`.refusals.root_refusal`)."""
    if work.root is not None:
        return
    target = work.target
    refused = interpreter_distrust(target.path, work.uid, TrustCache())
    if refused is not None:
        raise RepairError(
            f"not rebuilt with {target.path}: {refused}: another user could change"
            f" what it would run as {user_name(work.uid)}"
        )


def create_venv(work: Work, new: str, backend: Backend) -> None:
    """An empty venv at *new* on the target: ``uv venv`` for a venv uv made (when uv
    installs), else the target's ``-m venv`` (without pip when uv installs); the old
    venv's ``--system-site-packages`` and the destination's prompt (the old one, else
    its name: the activate scripts would otherwise call it by the build's name)."""
    plan, target = work.plan, work.target
    opts: list[str] = []
    if plan.system_site_packages:
        opts.append("--system-site-packages")
    opts += ["--prompt", plan.prompt or os.path.basename(work.dest)]
    if isinstance(backend, Uv) and work.rep.facts.creator is Creator.UV:
        argv = [backend.exe, "venv", "-q", "--allow-existing", "--python", target.path]
        argv += ["--python-preference", "only-system", *opts, new]
    else:
        argv = [target.path, "-m", "venv", *backend.venv_args(), *opts]
        if work.options.copies:
            argv.append("--copies")
        argv.append(new)
    done = work.run(argv, 600)
    if done.returncode != 0:
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        host = os_reason_in_output(done.stderr)
        if host is not None:
            tail = host
        hint = ensurepip_hint(target.version) if "ensurepip" in done.stderr else ""
        raise RepairError(f"creating the venv with {target.path} failed: {tail}{hint}")


def requirements(plan: RepairPlan, allow_upgrades: bool) -> list[str]:
    """The requirement line of each package of *plan*, in order; with *allow_upgrades*
    the pins an upgrade answers (``requires-python`` blockers) relaxed."""
    relax = set()
    if allow_upgrades:
        relax = {canonical_name(b.package) for b in plan.blockers if b.upgradable}
    return [
        relaxed(r.spec, r.name, r.version) if canonical_name(r.name) in relax else r.spec
        for r in plan.packages
    ]


def _diagnose(work: Work, python: str, backend: Backend) -> list[PinFailure]:
    """Each pin of the set (seeds aside) that would not install alone, and why."""
    out: list[PinFailure] = []
    for r in [r for r in work.plan.packages if not is_seed(r.name)][:200]:
        why = backend.check_pin(python, r.spec, work.options.sources, work.run)
        if why is not None:
            out.append(PinFailure(r.spec, why))
    return out


def install_set(work: Work, python: str, backend: Backend) -> None:
    """Install the plan's packages (seeds aside: :mod:`.seeding`) into the venv of
    *python* in one installer run. When it fails: a host problem (a full disk) is said as
    such; else each failing pin is found, and with ``--allow-upgrades``, when every one is
    a pin from an index, the set is installed again with those pins relaxed; else
    :class:`PinsFailed` names them."""
    plan, options = work.plan, work.options
    kept = [r for r in plan.packages if not is_seed(r.name)]
    lines = zip(plan.packages, requirements(plan, options.allow_upgrades))
    reqs = [spec for r, spec in lines if not is_seed(r.name)]
    done = Completed((), 0, "", "")
    if reqs:
        done = backend.install(python, reqs, options.sources, work.run, upgrade=False)
    if done.returncode == 0:
        return
    host = os_reason_in_output(done.stderr)
    if host is not None:  # a full disk is not a pin that fails
        raise RepairError(f"installing the packages failed: {host}")
    failures = _diagnose(work, python, backend)
    index = {r.spec for r in plan.packages if r.kind is RequirementKind.INDEX}
    relaxable = all(f.spec in index for f in failures)
    if options.allow_upgrades and failures and relaxable:
        bad = {f.spec for f in failures}
        reqs = [
            relaxed(spec, r.name, r.version) if r.spec in bad else spec
            for r, spec in zip(kept, reqs)
        ]
        done = backend.install(python, reqs, options.sources, work.run, upgrade=True)
    if done.returncode == 0:
        return
    tail = " / ".join(done.stderr.strip().splitlines()[-3:])[:600]
    host = os_reason_in_output(done.stderr)
    if host is not None:  # not the packages' fault: say what it is
        raise RepairError(f"installing the packages failed: {host}")
    raise PinsFailed(
        f"the package set does not install on Python {work.target.version}"
        + (f": {plural(len(failures), 'pin')} fail" if failures else f": {tail}"),
        failures or [PinFailure("(the whole set)", tail or "installer failed")],
    )


def rebuild(work: Work, log: Log, new: str) -> None:
    """Build in *new* the venv *work*'s plan asks for: a new venv on the target with the
    same packages, its seeds, checked against the old set, with the old venv's extras,
    its paths rewritten to the destination, and the old top directory's owner and mode.
    Tells *work*'s hook ``created`` and ``installed``."""
    check_target(work)
    run = work.run
    backend = backend_for(work.options, work.root, run.owner.uid, run.owner.gid)
    log.notes += work.plan.notes  # what the package set leaves out, and why
    create_venv(work, new, backend)
    seeded = frozenset(installed(new))  # what the new venv's creator installed
    work.hook("created")
    python = os.path.join(new, "bin", "python")
    install_set(work, python, backend)
    Seeder(work, log, python, backend).seed_all()
    work.hook("installed")
    check_versions(work, log, new, seeded)
    carry_over(work, log, new)
    match_root(new, work.source)
