"""One venv's rebuild or relink, step by step inside its transaction: copy beside,
recreate, install the same packages (uv or pip), verify, and what changed."""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Callable, Optional

from venvkeeper.errors import (
    CommandError,
    os_reason,
    os_reason_in_output,
)
from venvkeeper.host import command, fsutil, programs
from venvkeeper.host.command import Completed
from venvkeeper.host.trust import TrustCache, user_name
from venvkeeper.model.plan import RepairPlan, RequirementKind, Strategy
from venvkeeper.model.repair import PackageChange, PinFailure
from venvkeeper.model.report import VenvReport
from venvkeeper.model.venv import Creator
from venvkeeper.predict.plan import packages_minor
from venvkeeper.predict.seeds import KEEP_ALL, SeedNeeds, is_seed
from venvkeeper.repair import edit
from venvkeeper.repair.backends import (
    Backend,
    BackendChoice,
    Sources,
    Uv,
    choose,
    nearest_first,
)
from venvkeeper.repair.owner import OwnerRunner
from venvkeeper.repair.transaction import (
    Hook,
    RepairError,
)
from venvkeeper.repair.verify import modules, verify
from venvkeeper.scan.deep import interpreter_distrust, venv_distrust
from venvkeeper.textutil import canonical_name, plural


@dataclass(frozen=True)
class RepairOptions:
    """How to repair: the interpreter, the backend, the package sources, the backups kept."""

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
    uv: Optional[str] = None  # --uv / [repair] uv: this uv binary, checked by the trust rule


class PinsFailed(RepairError):
    def __init__(self, message: str, pins: Sequence[PinFailure]) -> None:
        super().__init__(message)
        self.pins = tuple(pins)


def _relaxed(spec: str, name: str, version: str) -> str:
    return f"{name}>={version}" if spec == f"{name}=={version}" else spec


def _copy_tree(src: str, dst: str, run: Callable[[Sequence[str], float], Completed]) -> None:
    """``cp -a`` of *src*'s contents into the empty directory *dst*: owners, modes, links,
    timestamps, xattrs (SELinux labels) and hard links kept; reflinks where the
    filesystem has them. *run* runs it as the venv's owner."""
    cp = programs.require("cp")  # the system's, by its absolute path (never PATH)
    done = run([cp, "-a", "--reflink=auto", "--", src + "/.", dst], 1800)
    if done.returncode != 0:
        raise RepairError(f"copying {src} failed: {done.stderr.strip()[-300:]}")


def _root_run(argv: Sequence[str], timeout: float) -> Completed:
    try:
        return command.run(argv, timeout=timeout, env={"PATH": "/usr/bin:/bin"}, cwd="/")
    except CommandError as e:
        raise RepairError(str(e)) from e


#: Largest file carried over from the old venv into a rebuilt one.
EXTRA_LIMIT = 1 << 30


def _copy_extra(src: str, dst: str) -> list[str]:
    """Carry *src* (a file, link or directory of the old venv that no package made) over
    to *dst*, with owners, modes and times; nothing is followed and nothing but regular
    files is opened (:func:`fsutil.open_regular`: the tree is the owner's, a FIFO there
    never blocks). Returns what was left behind, and why."""
    left: list[str] = []
    stack = [(src, dst)]
    while stack:
        s, d = stack.pop()
        if os.path.lexists(d):
            continue
        try:
            st = os.lstat(s)
            if stat.S_ISLNK(st.st_mode):
                os.symlink(os.readlink(s), d)
            elif stat.S_ISDIR(st.st_mode):
                os.mkdir(d, 0o700)
                names = sorted(os.listdir(s))
                stack.extend((os.path.join(s, n), os.path.join(d, n)) for n in reversed(names))
                os.chmod(d, stat.S_IMODE(st.st_mode))
            elif stat.S_ISREG(st.st_mode):
                fsutil.copy_regular(s, d, EXTRA_LIMIT)
            else:
                left.append(f"{s} ({fsutil.describe_mode(st.st_mode)})")
                continue
        except OSError as e:
            left.append(f"{s} ({os_reason(e)})")
            continue
        with contextlib.suppress(OSError):
            os.lchown(d, st.st_uid, st.st_gid)
    return left


def _match_root(tree: str, like: str) -> None:
    """The new venv's top directory gets the old one's owner, mode and security label."""
    st = os.lstat(like)
    with contextlib.suppress(PermissionError):
        os.lchown(tree, st.st_uid, st.st_gid)
    os.chmod(tree, st.st_mode & 0o7777)
    with contextlib.suppress(OSError):
        label = os.getxattr(like, "security.selinux", follow_symlinks=False)
        os.setxattr(tree, "security.selinux", label, follow_symlinks=False)
        restorecon = programs.find("restorecon")  # /usr/sbin: run by its absolute path
        if restorecon is not None:
            _root_run([restorecon, "-R", "-F", tree], 600)


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
        dest: Optional[str] = None,
    ) -> None:
        self.hook = hook
        self.seeds = seeds or KEEP_ALL
        self.path = path
        #: Where the new tree will live: *path* itself, or (``repair --sibling``) a new
        #: venv beside it, *path* left as it is.
        self.dest = dest or path
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
        uid = self.run.user if self.run.user is not None else os.geteuid()
        refused = interpreter_distrust(plan.target.path, uid, TrustCache())
        if refused is not None:
            raise RepairError(
                f"not rebuilt with {plan.target.path}: {refused}: another user could change"
                f" what it would run as {user_name(uid)}"
            )
        backend = choose(options.backend, owner.uid, owner.gid, uv=options.uv)
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
                    + (f": {plural(len(failures), 'pin')} fail" if failures else f": {tail}"),
                    failures or [PinFailure("(the whole set)", tail or "installer failed")],
                )
        self._seed_pip(python, backend)
        self._install_seeds(python, backend)
        self.hook("installed")
        self._check_versions(new, python)
        old_extras = edit.extras(self.path, edit.owned_files(self.path))
        not_copied: list[str] = []
        for rel in old_extras:
            not_copied += _copy_extra(os.path.join(self.path, rel), os.path.join(new, rel))
        if old_extras:
            self.notes.append(f"carried over: {', '.join(old_extras[:6])}")
        if not_copied:
            self.notes.append(f"not carried over: {', '.join(not_copied[:6])}")
        edit.rewrite_paths(new, new, self.dest)
        if self.dest != self.path:  # what was carried over names the original
            edit.rewrite_paths(new, self.path, self.dest)
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
        opts += ["--prompt", plan.prompt or os.path.basename(self.dest)]
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
        """Run the new tree as the user the job runs as, only as far as the one trust rule
        allows (the same question ``--deep`` asks: :func:`venv_distrust`): its interpreter
        must be trusted, or nothing runs and the repair fails; when something it would
        import is not (a site directory others can write, a .pth adding a directory of
        another user's), the interpreter only starts (``-I -S``) and the imports are not
        verified, said in the notes."""
        facts = self.rep.facts
        dists = [canonical_name(r.name) for r in self.plan.packages]
        uid = self.run.user if self.run.user is not None else os.geteuid()
        cache = TrustCache()
        python = os.path.join(new, "bin", "python")
        if not os.path.lexists(python):
            python = os.path.join(new, "bin", "python3")
        bad = interpreter_distrust(python, uid, cache)
        if bad is not None:
            raise RepairError(
                f"verification not run: {bad}: another user could change what it would run"
                f" as {user_name(uid)}"
            )
        untrusted = venv_distrust(new, uid, cache)
        if untrusted is not None:
            self.notes.append(f"imports not verified: {untrusted}")
        target = self.plan.target
        verify(
            new,
            self.dest,
            modules(facts, self.plan.skipped, seeds=self.seeds),
            dists,
            self.run,
            minor=target.version if target else None,
            imports=untrusted is None,
        )
