"""``venvkeeper repair``: execute repair plans, one transaction per venv.

The plan (``plan.py``) says what to do; this module does it: relink, rewrite paths or
rebuild in a sibling directory, verify, swap (``transaction.py``). A venv that cannot be
repaired is left exactly as it was, with a result that says why.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import tempfile
import threading
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field, replace
from typing import Callable, Optional

from venvkeeper.errors import (
    CommandError,
    UsageError,
    VenvkeeperError,
    describe_os_error,
    os_reason_in_output,
)
from venvkeeper.host import command, fsutil, pkgdb
from venvkeeper.host.command import Completed
from venvkeeper.host.fsutil import path_state
from venvkeeper.host.interpreters import find_interpreters, places_for
from venvkeeper.model.host import Interpreter
from venvkeeper.model.plan import RepairPlan, RequirementKind, Strategy, Target
from venvkeeper.model.repair import Backup, Outcome, PackageChange, PinFailure, RepairResult
from venvkeeper.model.report import VenvReport
from venvkeeper.model.venv import Creator, VenvFacts
from venvkeeper.predict.plan import make_plan, package_set, packages_minor, version_blockers
from venvkeeper.predict.seeds import KEEP_ALL, SeedNeeds, is_seed, seed_needs
from venvkeeper.repair import edit
from venvkeeper.repair.backends import (
    Backend,
    BackendChoice,
    Sources,
    Uv,
    choose,
    nearest_first,
)
from venvkeeper.repair.safety import Actor, Unsafe, actor_for
from venvkeeper.repair.transaction import (
    Busy,
    Hook,
    Journal,
    RepairError,
    backups,
    delete_backup,
    foreign_backups,
    locked,
    recover,
    transact,
)
from venvkeeper.repair.verify import modules, verify
from venvkeeper.textutil import canonical_name

#: Environment variables passed to installers (the invoking admin's settings: proxies,
#: certificates, pip and uv configuration). Nothing comes from the venv or a process.
_PASS_PREFIXES = ("PIP_", "UV_")
_PASS = frozenset(
    {
        "http_proxy",
        "https_proxy",
        "no_proxy",
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "NO_PROXY",
        "SSL_CERT_FILE",
        "SSL_CERT_DIR",
        "REQUESTS_CA_BUNDLE",
        "TMPDIR",
    }
)


@dataclass(frozen=True)
class RepairOptions:
    python: Optional[str] = None  # --python: the new base interpreter
    backend: BackendChoice = BackendChoice.AUTO
    sources: Sources = field(default_factory=Sources)
    allow_upgrades: bool = False
    force: bool = False
    dry_run: bool = False
    keep_backups: int = 2
    copies: bool = False  # policy: copy the interpreter instead of linking it
    jobs: int = 2
    package_tools: Optional[str] = None  # where dpkg-query/rpm are (None: the system's dirs)


class PinsFailed(RepairError):
    def __init__(self, message: str, pins: Sequence[PinFailure]) -> None:
        super().__init__(message)
        self.pins = tuple(pins)


# --- running as the owner ------------------------------------------------------------


@dataclass(frozen=True)
class Owner:
    uid: int
    gid: int
    home: str


def owner_of(actor: Actor) -> Owner:
    try:
        home = pwd.getpwuid(actor.owner_uid).pw_dir
    except KeyError:
        home = "/nonexistent"
    return Owner(actor.owner_uid, actor.owner_gid, home)


class OwnerRunner:
    """Runs commands as the venv's owner (privileges dropped when we are root) with a
    minimal environment, in ``/``, under a timeout, stoppable through *cancel*."""

    def __init__(self, owner: Owner, cancel: Optional[threading.Event]) -> None:
        self.owner = owner
        self.cancel = cancel
        me = os.geteuid()
        if me != 0 and me != owner.uid:
            raise RepairError(
                f"the venv belongs to uid {owner.uid}: run the repair as that user or as root"
            )
        self.user = owner.uid if me == 0 and owner.uid != 0 else None
        env = {k: v for k, v in os.environ.items() if k in _PASS or k.startswith(_PASS_PREFIXES)}
        env.update(
            PATH="/usr/local/bin:/usr/bin:/bin",
            HOME=owner.home,
            LANG="C.UTF-8",
            UV_PYTHON_DOWNLOADS="never",
            PIP_DISABLE_PIP_VERSION_CHECK="1",
            PIP_NO_INPUT="1",
        )
        self.tmp: Optional[str] = None
        #: Told the process group of each program started (the journal records them).
        self.on_start: Optional[Callable[[int], None]] = None
        if self.user is not None and not _writable_home(owner):
            # A system account without a home: caches in a private directory of its own.
            self.tmp = tempfile.mkdtemp(prefix="venvkeeper-cache-")
            os.chown(self.tmp, owner.uid, owner.gid)
            env["UV_CACHE_DIR"] = self.tmp
            env["PIP_NO_CACHE_DIR"] = "1"
            env["HOME"] = self.tmp
        if self.user is not None and not _shared_tmp(env.get("TMPDIR")):
            env.pop("TMPDIR", None)  # the admin's own: the owner could not use it
        self.env = env

    def __call__(
        self, argv: Sequence[str], timeout: float, input: Optional[str] = None
    ) -> Completed:
        try:
            return command.run(
                argv,
                timeout=timeout,
                env=self.env,
                cwd="/",
                user=self.user,
                group=self.owner.gid if self.user is not None else None,
                input=input,
                cancel=self.cancel,
                on_start=self.on_start,
                die_with_parent=True,
            )
        except CommandError as e:
            raise RepairError(str(e)) from e

    def record_in(self, journal: Journal, actor: Actor) -> None:
        """From now on, each program's process group goes into *journal* (written as
        the acting user, whichever identity the calling thread has)."""

        def note(pgid: int) -> None:
            with actor.beside():
                journal.add_group(pgid)

        self.on_start = note

    def close(self) -> None:
        if self.tmp:
            shutil.rmtree(self.tmp, ignore_errors=True)


def _shared_tmp(path: Optional[str]) -> bool:
    """*path* is a temporary directory every user may use (sticky, world-writable)."""
    try:
        return path is not None and os.stat(path).st_mode & 0o1777 == 0o1777
    except OSError:
        return False


def _writable_home(owner: Owner) -> bool:
    try:
        st = os.stat(owner.home)
    except OSError:
        return False
    return st.st_uid == owner.uid and bool(st.st_mode & 0o200)


# --- planning ------------------------------------------------------------------------


def interpreters_for(venvs: Iterable[VenvReport]) -> tuple[Interpreter, ...]:
    """The host's interpreters, found statically, plus those beside the venvs' old ones
    (their homes and sibling installations: where a relink target is)."""
    from venvkeeper.predict.changes import homes_of

    return find_interpreters(places_for(None, homes_of(venvs)))


def _target_for(python: str, known: Sequence[Interpreter]) -> Target:
    path = os.path.abspath(python)
    real = os.path.realpath(path)
    pool = list(known)
    if not any(i.executable == real for i in pool):
        from venvkeeper.host.interpreters import Places

        pool = list(find_interpreters(Places((os.path.dirname(path),), ()), run=True))
    for i in pool:
        if i.executable == real or any(n.path == path for n in i.names):
            if not i.usable or i.version is None:
                raise UsageError(
                    f"--python {python}: not a usable interpreter (a script, an unknown"
                    " version, or its standard library is missing)"
                )
            return Target(path, i.executable, i.version, i.patch_version)
    raise UsageError(f"--python {python}: no Python interpreter there")


def _with_python(
    plan: RepairPlan, facts: VenvFacts, target: Target, force: bool, seeds: SeedNeeds
) -> RepairPlan:
    """The plan when the admin chose the interpreter (also for a venv that works: a
    deliberate move to another Python)."""
    base = facts.base
    if (
        plan.strategy is Strategy.NONE
        and base is not None
        and not base.is_copy
        and base.executable == target.executable
    ):
        return plan
    if plan.strategy is Strategy.USE_TOOL and not force:
        return replace(plan, target=target)
    minor = packages_minor(facts)
    strategy = Strategy.RELINK if minor == target.version else Strategy.REBUILD
    reqs, skipped, blockers = package_set(facts, minor, path_state, seeds)
    if strategy is Strategy.REBUILD:
        blockers += tuple(version_blockers(facts, reqs, minor, target))
    reason = plan.reason if plan.strategy is not Strategy.NONE else f"--python {target.path}"
    return replace(
        plan,
        strategy=strategy,
        target=target,
        packages=reqs,
        skipped=skipped,
        blockers=blockers,
        reason=reason,
    )


def plan_for(
    rep: VenvReport,
    interps: Sequence[Interpreter],
    options: RepairOptions,
    seeds: Optional[SeedNeeds] = None,
) -> RepairPlan:
    """*seeds*: what the venv's code needs of its seed packages (read when not given)."""
    seeds = seeds if seeds is not None else seed_needs(rep.facts)
    plan = make_plan(rep.facts, rep.findings, interps, path_state, seeds)
    if options.python:
        target = _target_for(options.python, interps)
        plan = _with_python(plan, rep.facts, target, options.force, seeds)
    if plan.strategy is Strategy.USE_TOOL and options.force and plan.target is not None:
        minor = packages_minor(rep.facts)
        plan = replace(
            plan,
            strategy=Strategy.RELINK if minor == plan.target.version else Strategy.REBUILD,
            blockers=plan.blockers
            + tuple(version_blockers(rep.facts, plan.packages, minor, plan.target)),
        )
    return plan


def _relaxed(spec: str, name: str, version: str) -> str:
    return f"{name}>={version}" if spec == f"{name}=={version}" else spec


# --- one venv ------------------------------------------------------------------------


def _copy_tree(src: str, dst: str, run: Callable[[Sequence[str], float], Completed]) -> None:
    """``cp -a`` of *src*'s contents into the empty directory *dst*: owners, modes, links,
    timestamps, xattrs (SELinux labels) and hard links kept; reflinks where the
    filesystem has them. *run* runs it as the venv's owner."""
    done = run(["cp", "-a", "--reflink=auto", "--", src + "/.", dst], 1800)
    if done.returncode != 0:
        raise RepairError(f"copying {src} failed: {done.stderr.strip()[-300:]}")


def _root_run(argv: Sequence[str], timeout: float) -> Completed:
    try:
        return command.run(argv, timeout=timeout, env={"PATH": "/usr/bin:/bin"}, cwd="/")
    except CommandError as e:
        raise RepairError(str(e)) from e


def _copy_extra(src: str, dst: str) -> None:
    if os.path.lexists(dst):
        return
    if os.path.islink(src):
        os.symlink(os.readlink(src), dst)
    elif os.path.isdir(src):
        shutil.copytree(src, dst, symlinks=True)
    else:
        shutil.copy2(src, dst)
    st = os.lstat(src)
    with contextlib.suppress(OSError):
        os.lchown(dst, st.st_uid, st.st_gid)


def _match_root(tree: str, like: str) -> None:
    """The new venv's top directory gets the old one's owner, mode and security label."""
    st = os.lstat(like)
    with contextlib.suppress(PermissionError):
        os.lchown(tree, st.st_uid, st.st_gid)
    os.chmod(tree, st.st_mode & 0o7777)
    with contextlib.suppress(OSError):
        label = os.getxattr(like, "security.selinux", follow_symlinks=False)
        os.setxattr(tree, "security.selinux", label, follow_symlinks=False)
        if shutil.which("restorecon", path="/usr/sbin:/sbin:/usr/bin:/bin"):
            _root_run(["restorecon", "-R", "-F", tree], 600)


def _installed(tree: str) -> dict[str, tuple[str, str]]:
    from venvkeeper.scan.inspect import inspect_venv

    facts = inspect_venv(tree)
    return {canonical_name(d.name): (d.name, d.version) for d in facts.distributions}


class _Job:
    """One venv's repair: the plan, the owner, the backend; builds and verifies."""

    def __init__(
        self,
        path: str,
        rep: VenvReport,
        plan: RepairPlan,
        options: RepairOptions,
        run: OwnerRunner,
        hook: Hook,
        seeds: Optional[SeedNeeds] = None,
    ) -> None:
        self.hook = hook
        self.seeds = seeds or KEEP_ALL
        self.path = path
        self.rep = rep
        self.plan = plan
        self.options = options
        self.run = run
        self.changes: tuple[PackageChange, ...] = ()
        self.notes: list[str] = []
        self.seeded: frozenset[str] = frozenset()  # what the new venv's creator installed

    # relink and rewrite-paths: a copy of the venv, edited
    def build_copy(self, new: str) -> None:
        _copy_tree(self.path, new, self.run)
        old = self.plan.old_location
        if self.plan.strategy is Strategy.RELINK:
            assert self.plan.target is not None
            edit.relink(new, self.plan.target)
        if old:
            edit.rewrite_paths(new, old, self.path)
        _match_root(new, self.path)

    # rebuild: a new venv, the same packages
    def build_new(self, new: str) -> None:
        plan, options = self.plan, self.options
        assert plan.target is not None
        owner = self.run.owner
        backend = choose(options.backend, owner.uid, owner.gid)
        self._create(new, backend)
        self.seeded = frozenset(_installed(new))
        self.hook("created")
        python = os.path.join(new, "bin", "python")
        reqs = [spec for r, spec in zip(plan.packages, self._requirements()) if not is_seed(r.name)]
        done = Completed((), 0, "", "")
        if reqs:
            done = backend.install(python, reqs, options.sources, self.run, upgrade=False)
        if done.returncode != 0:
            host = os_reason_in_output(done.stderr)
            if host is not None:  # a full disk is not a pin that fails
                raise RepairError(f"installing the packages failed: {host}")
            failures = self._diagnose(python, backend)
            relaxable = all(self._is_index(f.spec) for f in failures)
            if options.allow_upgrades and failures and relaxable:
                bad = {f.spec for f in failures}
                kept = [r for r in plan.packages if not is_seed(r.name)]
                reqs = [
                    _relaxed(spec, r.name, r.version) if r.spec in bad else spec
                    for r, spec in zip(kept, reqs)
                ]
                done = backend.install(python, reqs, options.sources, self.run, upgrade=True)
            if done.returncode != 0:
                tail = " / ".join(done.stderr.strip().splitlines()[-3:])[:600]
                host = os_reason_in_output(done.stderr)
                if host is not None:  # not the packages' fault: say what it is
                    raise RepairError(f"installing the packages failed: {host}")
                raise PinsFailed(
                    f"the package set does not install on Python {plan.target.version}"
                    + (f": {len(failures)} pin(s) fail" if failures else f": {tail}"),
                    failures or [PinFailure("(the whole set)", tail or "installer failed")],
                )
        self._seed_pip(python, backend)
        self._install_seeds(python, backend)
        self.hook("installed")
        self._check_versions(new, python)
        old_extras = edit.extras(self.path, edit.owned_files(self.path))
        for rel in old_extras:
            _copy_extra(os.path.join(self.path, rel), os.path.join(new, rel))
        if old_extras:
            self.notes.append(f"carried over: {', '.join(old_extras[:6])}")
        edit.rewrite_paths(new, new, self.path)
        if not self.plan.prompt:
            # the prompt was given only so that it is not the sibling's name
            edit.drop_cfg_key(new, "prompt")
        _match_root(new, self.path)

    def _create(self, new: str, backend: Backend) -> None:
        plan = self.plan
        assert plan.target is not None
        opts: list[str] = []
        if plan.system_site_packages:
            opts.append("--system-site-packages")
        # Without it the activate scripts would call the venv by the sibling's name.
        opts += ["--prompt", plan.prompt or os.path.basename(self.path)]
        if isinstance(backend, Uv) and self.rep.facts.creator is Creator.UV:
            argv = [backend.exe, "venv", "-q", "--allow-existing", "--python", plan.target.path]
            argv += ["--python-preference", "only-system", *opts, new]
        else:
            argv = [plan.target.path, "-m", "venv", *backend.venv_args(), *opts]
            if self.options.copies:
                argv.append("--copies")
            argv.append(new)
        done = self.run(argv, 600)
        if done.returncode != 0:
            tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
            host = os_reason_in_output(done.stderr)
            if host is not None:
                tail = host
            hint = ""
            if "ensurepip" in done.stderr:
                hint = f" (on Debian: apt install python{plan.target.version}-venv, or install uv)"
            raise RepairError(f"creating the venv with {plan.target.path} failed: {tail}{hint}")

    def _requirements(self) -> list[str]:
        plan = self.plan
        relax = set()
        if self.options.allow_upgrades:
            relax = {
                canonical_name(b.package) for b in plan.blockers if b.code == "requires-python"
            }
        return [
            _relaxed(r.spec, r.name, r.version) if canonical_name(r.name) in relax else r.spec
            for r in plan.packages
        ]

    def _is_index(self, spec: str) -> bool:
        return any(r.spec == spec and r.kind is RequirementKind.INDEX for r in self.plan.packages)

    def _diagnose(self, python: str, backend: Backend) -> list[PinFailure]:
        out: list[PinFailure] = []
        for r in [r for r in self.plan.packages if not is_seed(r.name)][:200]:
            why = backend.check_pin(python, r.spec, self.options.sources, self.run)
            if why is not None:
                out.append(PinFailure(r.spec, why))
        return out

    def _cross_minor(self) -> bool:
        target = self.plan.target
        return target is not None and packages_minor(self.rep.facts) != target.version

    def _seed_pip(self, python: str, backend: Backend) -> None:
        """The old venv had pip: so does the new one. For the same minor, at its old
        version; for another minor, the new Python's own (ensurepip's): an old pip may not
        run on a newer Python at all (pip 23.0 on 3.12: no ``pkgutil.ImpImporter``)."""
        old = next(
            (s for s in self.plan.skipped if canonical_name(s.split("==")[0]) == "pip"), None
        )
        if old is None:
            return
        have = _installed(os.path.dirname(os.path.dirname(python))).get("pip")
        if self._cross_minor():
            if have is None:
                done = self.run([python, "-m", "ensurepip", "--default-pip"], 600)
                if done.returncode != 0:
                    self.notes.append("pip could not be installed in the new venv")
                    return
                have = _installed(os.path.dirname(os.path.dirname(python))).get("pip")
            if have is not None and f"pip=={have[1]}" != old:
                self.notes.append(f"pip: {old.split('==')[1]} -> {have[1]} (the new Python's own)")
            return
        if have is not None and f"pip=={have[1]}" == old:
            return
        done = backend.install(python, [old], self.options.sources, self.run, upgrade=False)
        if done.returncode == 0:
            return
        if have is None:
            done = self.run([python, "-m", "ensurepip", "--default-pip"], 600)
            if done.returncode != 0:
                self.notes.append("pip could not be installed in the new venv")
                return
        self.notes.append(f"{old} did not install: the new venv has its Python's own pip")

    def _install_seeds(self, python: str, backend: Backend) -> None:
        """The seeds something in the venv needs (:mod:`venvkeeper.predict.seeds`; the others
        are left to the new venv's creator, reported): the old version when it installs
        and imports on the new Python, else the nearest that does and provides what was
        used (``pkg_resources`` only when something used it). A seed never blocks the
        repair: when no version works it is left out, said, and verification decides."""
        venv = os.path.dirname(os.path.dirname(python))
        for spec in self.plan.skipped:
            name, _, version = spec.partition("==")
            if is_seed(name):
                self.notes.append(
                    f"{name} {version}: seeded by the old venv's creator and needed by nothing"
                    " in it: left to the new venv's own seed"
                )
        for r in self.plan.packages:
            if not is_seed(r.name):
                continue
            name = canonical_name(r.name)
            code = f"import {name.replace('-', '_')}"
            if name == "setuptools" and self.seeds.pkg_resources:
                code += ", pkg_resources"
            why = self.seeds.why(name)
            done = backend.install(python, [r.spec], self.options.sources, self.run, upgrade=False)
            problem = None if done.returncode == 0 else "not available from the sources"
            if problem is None:
                problem = self._probe(python, code)
                if problem is None:
                    continue
            got = self._nearest_working(python, backend, r.name, r.version, code, venv)
            if got is None:
                self.notes.append(
                    f"{r.name} {r.version} ({problem}) left out: no version from the sources"
                    f" installs and works on Python {self.plan.target.version}"  # type: ignore[union-attr]
                    f" (needed: {why})"
                )
                continue
            self._changed(PackageChange(r.name, r.version, got))
            self.notes.append(f"{r.name}: {r.version} -> {got} ({problem}; needed: {why})")

    def _probe(self, python: str, code: str) -> Optional[str]:
        done = self.run([python, "-I", "-B", "-c", code], 120)
        if done.returncode == 0:
            return None
        return (done.stderr.strip().splitlines() or ["?"])[-1][:200]

    def _nearest_working(
        self,
        python: str,
        backend: Backend,
        name: str,
        old: str,
        code: str,
        venv: str,
        tries: int = 8,
    ) -> Optional[str]:
        """Install the version nearest to *old* that makes *code* run: the candidates the
        sources offer above it, nearest first, then those below it, nearest first."""
        versions = backend.versions(python, name, self.options.sources, self.run)
        if versions is None:  # the backend cannot list them: each try raises the floor
            return self._lowest_working(python, backend, name, old, code, venv, tries)
        for v in nearest_first(versions, old)[:tries]:
            if self._works(python, backend, f"{name}=={v}", code):
                return v
        return None

    def _works(self, python: str, backend: Backend, spec: str, code: str) -> bool:
        """*spec* installs (over what is there) and then *code* runs."""
        done = backend.install(python, [spec], self.options.sources, self.run, upgrade=True)
        return done.returncode == 0 and self._probe(python, code) is None

    def _lowest_working(
        self,
        python: str,
        backend: Backend,
        name: str,
        old: str,
        code: str,
        venv: str,
        tries: int,
    ) -> Optional[str]:
        floor = old
        for _ in range(tries):
            done = backend.install(
                python, [f"{name}>{floor}"], self.options.sources, self.run, upgrade=True
            )
            if done.returncode != 0:
                break
            got = _installed(venv).get(canonical_name(name))
            if got is None or got[1] == floor:
                break
            if self._probe(python, code) is None:
                return got[1]
            floor = got[1]
        if self._works(python, backend, f"{name}<{old}", code):
            got = _installed(venv).get(canonical_name(name))
            return got[1] if got else None
        return None

    def _changed(self, change: PackageChange) -> None:
        """Record *change*, replacing an earlier one of the same distribution."""
        key = canonical_name(change.name)
        self.changes = tuple(c for c in self.changes if canonical_name(c.name) != key)
        self.changes += (change,)

    def _check_versions(self, new: str, python: str) -> None:
        """What the new venv has against the old set: the same versions (seeds may differ:
        :meth:`_install_seeds` reported why), and every new distribution that an upgrade
        pulled in listed as a change. With ``include-system-site-packages`` what the
        system's site provides counts as present, as the venv sees it."""
        now = _installed(new)
        visible = dict(now)
        if self.plan.system_site_packages:
            for k, v in self._visible(python).items():
                visible.setdefault(k, v)
        old = {canonical_name(r.name) for r in self.plan.packages}
        old |= {canonical_name(s.split("==")[0]) for s in self.plan.skipped}
        seen = {canonical_name(c.name) for c in self.changes}
        changes = list(self.changes)
        for r in self.plan.packages:
            key = canonical_name(r.name)
            got = visible.get(key)
            if key in seen or (is_seed(r.name) and got is not None):
                continue
            if got is None or got[1] != r.version:
                changes.append(PackageChange(r.name, r.version, got[1] if got else None))
        strict = [c for c in changes if c not in self.changes and not is_seed(c.name)]
        for key, (name, version) in sorted(now.items()):
            pulled = key not in old and key not in seen and key not in self.seeded
            if pulled and not is_seed(name) and key != "pip":
                changes.append(PackageChange(name, None, version))  # pulled in by an upgrade
        self.changes = tuple(changes)
        if strict and not self.options.allow_upgrades:
            shown = ", ".join(f"{c.name} {c.old} -> {c.new or 'missing'}" for c in strict[:5])
            raise RepairError(f"installed versions differ from the old venv's: {shown}")
        missing = [c.name for c in strict if c.new is None]
        if missing:
            raise RepairError(f"not installed: {', '.join(missing[:8])}")

    def _visible(self, python: str) -> dict[str, tuple[str, str]]:
        """The distributions the new venv's interpreter sees (its own and the system's)."""
        code = (
            "import json, sys\nfrom importlib import metadata\n"
            "print(json.dumps([[d.metadata['Name'], d.version] for d in"
            " metadata.distributions() if d.metadata['Name']]))"
        )
        done = self.run([python, "-I", "-B", "-c", code], 120)
        if done.returncode != 0:
            return {}
        try:
            pairs = fsutil.load_json(done.stdout.strip().splitlines()[-1])
        except (ValueError, IndexError):
            return {}
        out: dict[str, tuple[str, str]] = {}
        for pair in pairs if isinstance(pairs, list) else []:
            if isinstance(pair, list) and len(pair) == 2 and all(isinstance(x, str) for x in pair):
                out.setdefault(canonical_name(pair[0]), (pair[0], pair[1]))
        return out

    def verify(self, new: str) -> None:
        facts = self.rep.facts
        dists = [canonical_name(r.name) for r in self.plan.packages]
        untrusted = (
            os.geteuid() == 0
            and self.run.user is None
            and any(s.writable_by_others for s in facts.site_dirs)
        )
        if untrusted and self.plan.strategy is not Strategy.REBUILD:
            self.notes.append("imports not verified: site-packages writable by others")
        target = self.plan.target
        verify(
            new,
            self.path,
            modules(facts, self.plan.skipped, seeds=self.seeds),
            dists,
            self.run,
            minor=target.version if target else None,
            imports=not (untrusted and self.plan.strategy is not Strategy.REBUILD),
        )


#: Places no system package installs files into (the FHS leaves them to the admin and users).
_NEVER_PACKAGED = ("/home/", "/root/", "/srv/", "/tmp/", "/var/tmp/", "/usr/local/", "/mnt/")  # noqa: S108


def _refusal(
    plan: RepairPlan, facts: VenvFacts, force: bool, package_tools: Optional[str] = None
) -> Optional[str]:
    if force:
        return None
    if plan.strategy is Strategy.USE_TOOL:
        return (
            f"managed by {facts.creator.value}: run `{plan.tool_command}` instead"
            " (repair --force rebuilds it anyway)"
        )
    if facts.path.startswith(_NEVER_PACKAGED):
        return None  # no distro package installs there (FHS): spare the dpkg/rpm query
    owners = pkgdb.owners([os.path.join(facts.path, "pyvenv.cfg")], package_tools)
    if owners:
        pkg = next(iter(owners.values()))
        return (
            f"installed by the system package {pkg}: upgrade or reinstall that package"
            " (repair --force rebuilds it anyway)"
        )
    return None


def _describe(plan: RepairPlan, backend: str) -> str:
    t = plan.target
    if plan.strategy is Strategy.REBUILD and t is not None:
        return f"rebuild on {t.path} ({t.version}) with {backend}, {len(plan.packages)} package(s)"
    if plan.strategy is Strategy.RELINK and t is not None:
        return f"relink to {t.path} ({t.patch_version or t.version})"
    if plan.strategy is Strategy.REWRITE_PATHS:
        return f"rewrite paths from {plan.old_location} to {plan.path}"
    return plan.reason


def repair_venv(
    path: str,
    options: RepairOptions,
    *,
    interpreters: Optional[Sequence[Interpreter]] = None,
    hook: Optional[Hook] = None,
    cancel: Optional[threading.Event] = None,
) -> RepairResult:
    """Repair the venv at *path* as its plan says; never raises for a problem of the venv
    (the result says it), only for usage errors."""
    from venvkeeper.scan.pipeline import inspect_path

    started = time.monotonic()
    path = os.path.realpath(os.path.abspath(path))

    def result(strategy: Strategy, outcome: Outcome, msg: str, **kw: object) -> RepairResult:
        return RepairResult(
            path,
            strategy,
            outcome,
            msg,
            seconds=time.monotonic() - started,
            **kw,  # type: ignore[arg-type]
        )

    if not os.path.isdir(path):
        return result(Strategy.MANUAL, Outcome.FAILED, "not a directory")
    recovered: Optional[str] = None
    try:
        actor = actor_for(path)
    except Unsafe as e:
        return result(Strategy.MANUAL, Outcome.REFUSED, str(e))
    try:
        with locked(path, actor) if not options.dry_run else contextlib.nullcontext():
            if not options.dry_run:
                recovered = recover(path, actor)
            rep = inspect_path(path, top_level=True)
            interps = interpreters if interpreters is not None else interpreters_for([rep])
            seeds = seed_needs(rep.facts)
            plan = plan_for(rep, interps, options, seeds)
            kw: dict[str, object] = {"target": plan.target, "recovered": recovered}
            if plan.strategy is Strategy.NONE:
                return result(plan.strategy, Outcome.NOTHING, plan.reason, **kw)
            if plan.strategy is Strategy.MANUAL:
                return result(plan.strategy, Outcome.FAILED, plan.reason, **kw)
            refusal = _refusal(plan, rep.facts, options.force, options.package_tools)
            if refusal:
                return result(plan.strategy, Outcome.REFUSED, refusal, **kw)
            fatal = [b for b in plan.blockers if b.fatal]
            if fatal and not (
                options.allow_upgrades and all(b.code == "requires-python" for b in fatal)
            ):
                return result(
                    plan.strategy,
                    Outcome.FAILED,
                    f"{len(fatal)} package(s) cannot be reinstalled as they are",
                    failed_pins=tuple(PinFailure(b.package, b.message) for b in fatal),
                    **kw,
                )
            owner = owner_of(actor)
            backend_name = "copy"
            if plan.strategy is Strategy.REBUILD:
                backend_name = choose(options.backend, owner.uid, owner.gid).name
            if options.dry_run:
                return result(
                    plan.strategy,
                    Outcome.PLANNED,
                    _describe(plan, backend_name),
                    backend=backend_name,
                    **kw,
                )
            runner = OwnerRunner(owner, cancel)
            step = hook or (lambda s: None)
            job = _Job(path, rep, plan, options, runner, step, seeds)
            build = job.build_new if plan.strategy is Strategy.REBUILD else job.build_copy
            try:
                _preload()
                backup = transact(
                    path,
                    f"repair ({plan.strategy.value})",
                    build,
                    job.verify,
                    hook=step,
                    cancel=cancel,
                    actor=actor,
                    on_journal=lambda j: runner.record_in(j, actor),
                )
            except PinsFailed as e:
                return result(
                    plan.strategy,
                    Outcome.FAILED,
                    str(e),
                    failed_pins=e.pins,
                    backend=backend_name,
                    **kw,
                )
            except (RepairError, OSError) as e:
                why = str(e) if isinstance(e, RepairError) else describe_os_error(e, path)
                return result(plan.strategy, Outcome.FAILED, why, backend=backend_name, **kw)
            finally:
                runner.close()
            for old in backups(path, actor)[options.keep_backups :]:
                with contextlib.suppress(OSError, VenvkeeperError):
                    delete_backup(old, actor)
            msg = _describe(plan, backend_name)
            if job.notes:
                msg += "; " + "; ".join(job.notes)
            return result(
                plan.strategy,
                Outcome.REPAIRED,
                msg,
                backup=backup,
                changes=job.changes,
                backend=backend_name,
                **kw,
            )
    except Unsafe as e:
        return result(Strategy.MANUAL, Outcome.REFUSED, str(e), recovered=recovered)
    except (Busy, RepairError) as e:
        return result(Strategy.MANUAL, Outcome.FAILED, str(e), recovered=recovered)
    except VenvkeeperError as e:  # also "not a virtual environment": this path fails alone
        return result(Strategy.MANUAL, Outcome.FAILED, str(e), recovered=recovered)
    except OSError as e:
        return result(Strategy.MANUAL, Outcome.FAILED, describe_os_error(e, path))


Progress = Callable[[str, Optional[RepairResult]], None]


def repair_all(
    paths: Sequence[str],
    options: RepairOptions,
    *,
    progress: Optional[Progress] = None,
    cancel: Optional[threading.Event] = None,
) -> list[RepairResult]:
    """Repair every venv of *paths* with at most ``options.jobs`` at once. The work runs in
    worker threads: the calling (main) thread only waits, so a signal there sets *cancel*
    and every transaction in flight restores its original before this returns."""
    from venvkeeper.scan.pipeline import inspect_path

    cancel = cancel or threading.Event()
    reps = []
    for p in paths:
        with contextlib.suppress(VenvkeeperError, OSError):
            reps.append(inspect_path(p))
    interps = interpreters_for(reps)
    if options.python:
        _target_for(options.python, interps)  # a usage error now, not once per venv
    results: dict[str, RepairResult] = {}

    def one(p: str) -> RepairResult:
        if progress:
            progress(p, None)
        if cancel.is_set():
            r = RepairResult(p, Strategy.MANUAL, Outcome.FAILED, "interrupted before it started")
        else:
            r = repair_venv(p, options, interpreters=interps, cancel=cancel)
        if progress:
            progress(p, r)
        return r

    with ThreadPoolExecutor(max_workers=max(1, options.jobs)) as pool:
        futures = {pool.submit(one, p): p for p in paths}
        try:
            for f, p in futures.items():
                while True:
                    try:
                        results[p] = f.result(timeout=0.2)
                        break
                    except FutureTimeout:
                        continue
        except BaseException:
            cancel.set()
            for f in futures:
                with contextlib.suppress(BaseException):
                    f.result()
            raise
    return [results[p] for p in paths]


# --- rollback and backups ------------------------------------------------------------


def rollback(path: str, hook: Optional[Hook] = None) -> RepairResult:
    """Put the newest backup of *path* back in place, by the same transaction: the venv
    that was there becomes a backup in turn (a rollback can be rolled back)."""
    started = time.monotonic()
    path = os.path.realpath(os.path.abspath(path))

    def result(outcome: Outcome, msg: str, **kw: object) -> RepairResult:
        return RepairResult(
            path,
            Strategy.MANUAL,
            outcome,
            msg,
            seconds=time.monotonic() - started,
            **kw,  # type: ignore[arg-type]
        )

    try:
        actor = actor_for(path)
        with locked(path, actor):
            recovered = recover(path, actor)
            kept = backups(path, actor)
            if not kept:
                foreign = foreign_backups(path, actor)
                why = "no backup to roll back to"
                if foreign:
                    why += f" (not venvkeeper's, left alone: {', '.join(foreign[:3])})"
                return result(Outcome.FAILED, why, recovered=recovered)
            b = kept[0]
            if not os.path.lexists(path):
                with actor.beside():
                    os.rename(b.path, path)
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(b.path + ".json")
                return result(Outcome.REPAIRED, f"restored {b.path}", recovered=recovered)

            def check(new: str) -> None:
                if not os.path.isfile(os.path.join(new, "pyvenv.cfg")) and not os.path.isdir(
                    os.path.join(new, "bin")
                ):
                    raise RepairError(f"{new} does not look like a venv: not restored")

            backup = transact(
                path,
                "rollback",
                check,
                lambda new: None,
                hook=hook or (lambda s: None),
                new=b.path,
                actor=actor,
            )
            with actor.beside(), contextlib.suppress(FileNotFoundError):
                os.unlink(b.path + ".json")
            return result(
                Outcome.REPAIRED,
                f"restored the backup of {_when(b.created)}"
                f" ({b.reason}); the venv it replaced is kept at {backup}",
                backup=backup,
                recovered=recovered,
            )
    except Unsafe as e:
        return result(Outcome.REFUSED, str(e))
    except (VenvkeeperError, OSError) as e:
        return result(Outcome.FAILED, str(e))


def _when(t: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t))


def list_backups(path: str) -> list[Backup]:
    """The backups of *path* that venvkeeper made (as :func:`backups` accepts them, for
    whoever acts on that venv)."""
    path = os.path.realpath(os.path.abspath(path))
    return backups(path, actor_for(path))


def prune_backups(paths: Sequence[str], keep: int) -> list[tuple[str, list[str], Optional[str]]]:
    """Delete all but the *keep* newest backups of each venv in *paths* (a path may also
    be a directory holding venvs: every venv with backups directly in it). Returns
    (venv, deleted backups, why refused or None) triples."""
    venvs: dict[str, None] = {}
    for p in paths:
        p = os.path.realpath(os.path.abspath(p))
        venvs[p] = None
        with contextlib.suppress(OSError):
            for e in os.scandir(p):
                if e.name.startswith(".") and ".venvkeeper-backup-" in e.name:
                    name = e.name[1:].split(".venvkeeper-backup-")[0]
                    venvs[os.path.join(p, name)] = None
    out: list[tuple[str, list[str], Optional[str]]] = []
    for v in venvs:
        try:
            actor = actor_for(v)
        except Unsafe as e:
            out.append((v, [], str(e)))
            continue
        except OSError:
            continue
        kept = backups(v, actor)
        if not kept:
            continue
        gone: list[str] = []
        try:
            with locked(v, actor):
                recover(v, actor)
                for b in backups(v, actor)[keep:]:
                    delete_backup(b, actor)
                    gone.append(b.path)
        except Busy:
            continue
        except (Unsafe, RepairError) as e:
            out.append((v, gone, str(e)))
            continue
        out.append((v, gone, None))
    return out


def _preload() -> None:
    """Import now what the build and the verification import later: they run with the
    venv owner's filesystem identity, which may not read the directories our own code
    comes from (``/root/...``)."""
