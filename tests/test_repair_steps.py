"""Each piece of a repair alone (issue 23, item 4): the version audit and the requirement
lines as rules on values; the one mapping of failures; the execution path's contract
(plans under the lock, after recovery; refusals before any build; a sibling's
destination); the carry-over, the copy build, the creation of a venv and the trust
checks on real trees.

The trees here are venvs as inspection reads them (``pyvenv.cfg``, ``bin/python`` linked
to this Python, a site directory): nothing in them runs but what a step runs itself.
"""

from __future__ import annotations

import errno
import os
import re
import stat
import sys
import time
from pathlib import Path
from typing import Callable, Optional

import pytest

from venvkeeper.errors import describe_os_error
from venvkeeper.model.plan import (
    Blocker,
    BlockerCode,
    RepairPlan,
    Requirement,
    RequirementKind,
    Strategy,
    Target,
)
from venvkeeper.model.repair import Outcome, PackageChange, PinFailure
from venvkeeper.predict.seeds import KEEP_ALL
from venvkeeper.repair import transaction
from venvkeeper.repair.audit import audit
from venvkeeper.repair.backends import Pip
from venvkeeper.repair.carry import carry_over, copy_extra
from venvkeeper.repair.execute import Destination, Planned, describe, execute, failure_of
from venvkeeper.repair.job import Job
from venvkeeper.repair.options import RepairOptions
from venvkeeper.repair.owner import OwnerRunner, owner_of
from venvkeeper.repair.rebuild import (
    PinsFailed,
    check_target,
    create_venv,
    relaxed,
    requirements,
)
from venvkeeper.repair.safety import Actor, Unsafe
from venvkeeper.repair.transaction import Busy, Journal, RepairError
from venvkeeper.repair.verify import verify_built
from venvkeeper.repair.work import Log, Work
from venvkeeper.scan.pipeline import inspect_path

from factory import tree_hash

MINOR = "{}.{}".format(*sys.version_info[:2])
EXE = Path(sys.executable).resolve()


def _req(name: str, version: str, kind: RequirementKind = RequirementKind.INDEX) -> Requirement:
    return Requirement(name, version, kind, f"{name}=={version}")


def _plan(path: str = "/v", strategy: Strategy = Strategy.REBUILD, **kw: object) -> RepairPlan:
    return RepairPlan(path, strategy, "the reason", **kw)  # type: ignore[arg-type]


# --- the version audit: a rule on values ---------------------------------------------

PLAN = _plan(
    packages=(_req("alpha", "1.0"), _req("Beta_Two", "2.0"), _req("setuptools", "65.0")),
    skipped=("pip==23.0",),
)
SAME = {
    "alpha": ("alpha", "1.0"),
    "beta-two": ("beta-two", "2.0"),
    "setuptools": ("setuptools", "70.0"),  # a seed: its step said why it differs
    "pip": ("pip", "24.0"),
}


def test_the_same_versions_are_no_change() -> None:
    assert audit(PLAN, SAME, SAME, (), frozenset(), allow_upgrades=False) == ()


def test_a_pin_that_moved_stops_the_repair_unless_upgrades_are_allowed() -> None:
    now = {**SAME, "alpha": ("alpha", "1.1")}
    with pytest.raises(RepairError, match=r"differ from the old venv's: alpha 1\.0 -> 1\.1"):
        audit(PLAN, now, now, (), frozenset(), allow_upgrades=False)
    changes = audit(PLAN, now, now, (), frozenset(), allow_upgrades=True)
    assert changes == (PackageChange("alpha", "1.0", "1.1"),)


def test_what_an_upgrade_pulled_in_is_listed_but_not_the_seeds_nor_the_creators() -> None:
    now = {**SAME, "idna": ("idna", "3.7"), "wheel": ("wheel", "0.43"), "made": ("made", "1")}
    changes = audit(PLAN, now, now, (), frozenset({"made"}), allow_upgrades=True)
    assert changes == (PackageChange("idna", None, "3.7"),)


def test_a_missing_distribution_fails_even_with_upgrades() -> None:
    now = {k: v for k, v in SAME.items() if k != "beta-two"}
    with pytest.raises(RepairError, match="not installed: Beta_Two"):
        audit(PLAN, now, now, (), frozenset(), allow_upgrades=True)


def test_what_the_system_site_provides_counts_as_present() -> None:
    now = {k: v for k, v in SAME.items() if k != "alpha"}
    seen = {**now, "alpha": ("alpha", "1.0")}
    assert audit(PLAN, now, seen, (), frozenset(), allow_upgrades=False) == ()


def test_the_seed_steps_changes_come_first_and_once() -> None:
    earlier = (PackageChange("setuptools", "65.0", "70.0"),)
    now = {**SAME, "alpha": ("alpha", "1.1")}
    changes = audit(PLAN, now, now, earlier, frozenset(), allow_upgrades=True)
    assert changes == (*earlier, PackageChange("alpha", "1.0", "1.1"))


# --- requirement lines ---------------------------------------------------------------


def test_only_the_pins_an_upgrade_answers_are_relaxed() -> None:
    plan = _plan(
        packages=(
            _req("alpha", "1.0"),
            _req("beta", "2.0"),
            Requirement("gamma", "0.1", RequirementKind.EDITABLE, "-e /src/gamma", "/src/gamma"),
        ),
        blockers=(
            Blocker(BlockerCode.REQUIRES_PYTHON, "Alpha", "needs <3.12"),
            Blocker(BlockerCode.NEEDS_NEW_WHEEL, "beta", "built for 3.9", fatal=False),
            Blocker(BlockerCode.REQUIRES_PYTHON, "gamma", "needs <3.12"),
        ),
    )
    assert requirements(plan, allow_upgrades=False) == ["alpha==1.0", "beta==2.0", "-e /src/gamma"]
    assert requirements(plan, allow_upgrades=True) == ["alpha>=1.0", "beta==2.0", "-e /src/gamma"]
    assert relaxed("x @ file:///w/x.whl", "x", "1.0") == "x @ file:///w/x.whl"


def test_the_log_keeps_one_change_per_distribution() -> None:
    log = Log()
    log.changed(PackageChange("Foo_Bar", "1", "2"))
    log.changed(PackageChange("other", "1", "2"))
    log.changed(PackageChange("foo-bar", "1", "3"))
    assert log.changes == (PackageChange("other", "1", "2"), PackageChange("foo-bar", "1", "3"))


# --- the one mapping of failures -----------------------------------------------------


def test_every_failure_maps_to_one_outcome_and_message() -> None:
    pin = PinFailure("alpha==1.0", "no matching distribution")
    full = OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    assert failure_of(Unsafe("not yours"), "/v") == (Outcome.REFUSED, "not yours", ())
    assert failure_of(PinsFailed("1 pin fails", [pin]), "/v") == (
        Outcome.FAILED,
        "1 pin fails",
        (pin,),
    )
    assert failure_of(full, "/v") == (Outcome.FAILED, describe_os_error(full, "/v"), ())
    assert failure_of(full, "/v")[1].startswith("/v: ")
    assert failure_of(RepairError("boom"), "/v") == (Outcome.FAILED, "boom", ())
    assert failure_of(Busy("held"), "/v") == (Outcome.FAILED, "held", ())


def test_a_destination_names_the_sibling_in_its_words() -> None:
    t = Target("/usr/bin/python3.12", "/usr/bin/python3.12", "3.12", "3.12.4")
    plan = _plan("/srv/app", target=t, packages=(_req("alpha", "1.0"),))
    here = Destination.in_place("/srv/app")
    there = Destination.sibling("/srv/app", "/srv/app-py3.12", t)
    assert not here.is_sibling and there.is_sibling
    assert (here.strategy, here.target) == (Strategy.MANUAL, None)
    assert (there.strategy, there.target) == (Strategy.REBUILD, t)
    assert here.action(plan) == "repair (rebuild)" and there.action(plan) == "repair (sibling)"
    words = describe(plan, "uv")
    assert words == "rebuild on /usr/bin/python3.12 (3.12) with uv, 1 package"
    assert here.describe(plan, "uv") == words
    assert there.describe(plan, "uv") == f"sibling of /srv/app: {words}"


# --- the execution path --------------------------------------------------------------


def static_venv(path: Path) -> Path:
    """A venv as inspection reads it, on this Python, made without running anything."""
    (path / "bin").mkdir(parents=True)
    (path / "lib" / f"python{MINOR}" / "site-packages").mkdir(parents=True)
    (path / "bin" / "python").symlink_to(EXE)
    version = ".".join(map(str, sys.version_info[:3]))
    (path / "pyvenv.cfg").write_text(f"home = {EXE.parent}\nversion = {version}\n")
    return path


def _planner(
    venv: Path,
    plan: RepairPlan,
    seen: Optional[dict[str, object]] = None,
    at: Optional[Path] = None,
) -> Callable[[], Planned]:
    """A planner that gives *plan* for *venv*, and notes in *seen* whether the lock and
    the journal of *at* (default: *venv*) were there when it was called."""
    at = at or venv

    def planner() -> Planned:
        if seen is not None:
            seen["lock"] = Path(transaction.sibling(str(at), "lock")).exists()
            seen["journal"] = Path(transaction.sibling(str(at), "journal")).exists()
        return Planned(inspect_path(str(venv)), plan, KEEP_ALL)

    return planner


def _never() -> Planned:
    raise AssertionError("planned although the destination was refused first")


def _leftover(path: Path) -> str:
    """What a repair killed right after its journal leaves: the journal and an empty build."""
    new = transaction.sibling(str(path), "new-" + transaction.stamp())
    os.mkdir(new, 0o700)
    st = os.lstat(path)
    Journal(
        path=str(path),
        new=new,
        backup=transaction.sibling(str(path), "backup-" + transaction.stamp()),
        action="repair (rebuild)",
        old_id=(st.st_dev, st.st_ino),
        new_id=transaction.tree_id(new),
        pid=1,
        started=time.time(),
    ).save()
    return new


def test_the_plan_is_made_under_the_lock_after_recovery(tmp_path: Path) -> None:
    v = static_venv(tmp_path / "app")
    left = _leftover(v)
    seen: dict[str, object] = {}
    plan = _plan(str(v), Strategy.NONE, packages=())
    r = execute(Destination.in_place(str(v)), RepairOptions(), _planner(v, plan, seen))
    assert (r.outcome, r.message, r.strategy) == (Outcome.NOTHING, "the reason", Strategy.NONE)
    assert seen == {"lock": True, "journal": False}
    assert r.recovered is not None and r.recovered.startswith("undid an interrupted")
    assert not os.path.exists(left)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["app"]  # no lock left behind


def test_a_dry_run_takes_no_lock_and_settles_nothing(tmp_path: Path) -> None:
    v = static_venv(tmp_path / "app")
    left = _leftover(v)
    seen: dict[str, object] = {}
    plan = _plan(str(v), Strategy.MANUAL)
    r = execute(Destination.in_place(str(v)), RepairOptions(dry_run=True), _planner(v, plan, seen))
    assert (r.outcome, r.message, r.recovered) == (Outcome.FAILED, "the reason", None)
    assert seen == {"lock": False, "journal": True}
    assert os.path.isdir(left)


def test_a_sibling_recovers_its_own_destination(tmp_path: Path) -> None:
    v = static_venv(tmp_path / "app")
    dest = tmp_path / f"app-py{MINOR}"
    dest.mkdir()
    left = _leftover(dest)
    t = Target(str(EXE), str(EXE), MINOR, None)
    seen: dict[str, object] = {}
    plan = _plan(str(dest), Strategy.NONE)
    planner = _planner(v, plan, seen, at=dest)
    r = execute(Destination.sibling(str(v), str(dest), t), RepairOptions(), planner)
    assert r.outcome is Outcome.NOTHING and r.path == str(dest), r
    assert seen == {"lock": True, "journal": False}
    assert r.recovered is not None and not os.path.exists(left)


def test_destinations_that_are_not_directories_are_refused_before_planning(
    tmp_path: Path,
) -> None:
    v = static_venv(tmp_path / "app")
    t = Target(str(EXE), str(EXE), MINOR, None)
    (tmp_path / "file").write_text("")
    (tmp_path / "link").symlink_to(v)
    for name in ("file", "link"):
        dest = tmp_path / name
        r = execute(Destination.sibling(str(v), str(dest), t), RepairOptions(), _never)
        assert r.outcome is Outcome.REFUSED, r
        assert r.message == f"{dest} exists and is not a directory: refused"
        assert (r.strategy, r.target) == (Strategy.REBUILD, t)
    r = execute(Destination.in_place(str(tmp_path / "file")), RepairOptions(), _never)
    assert (r.outcome, r.message, r.strategy) == (
        Outcome.FAILED,
        "not a directory",
        Strategy.MANUAL,
    )


@pytest.mark.parametrize(
    ("error", "outcome", "message"),
    [
        (Unsafe("the lock is another user's"), Outcome.REFUSED, "the lock is another user's"),
        (RepairError("not a virtual environment"), Outcome.FAILED, "not a virtual environment"),
        (OSError(errno.EACCES, "Permission denied"), Outcome.FAILED, "permission denied"),
    ],
)
def test_what_the_planner_raises_is_mapped_like_everything_else(
    tmp_path: Path, error: Exception, outcome: Outcome, message: str
) -> None:
    v = static_venv(tmp_path / "app")

    def planner() -> Planned:
        raise error

    r = execute(Destination.in_place(str(v)), RepairOptions(), planner)
    assert r.outcome is outcome and message in r.message, r
    assert r.message == failure_of(error, str(v))[1]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["app"]


def test_fatal_blockers_stop_both_destinations_before_anything_is_made(tmp_path: Path) -> None:
    v = static_venv(tmp_path / "app")
    before = tree_hash(tmp_path)
    t = Target(str(EXE), str(EXE), MINOR, None)
    blockers = (
        Blocker(BlockerCode.SOURCE_MISSING, "gamma", "the editable source is gone"),
        Blocker(BlockerCode.VCS_SOURCE, "delta", "needs a repository"),
    )
    dest = tmp_path / f"app-py{MINOR}"
    results = []
    for d in (Destination.in_place(str(v)), Destination.sibling(str(v), str(dest), t)):
        plan = _plan(d.path, target=t, packages=(_req("alpha", "1.0"),), blockers=blockers)
        results.append(execute(d, RepairOptions(), _planner(v, plan)))
    for r in results:
        assert (r.outcome, r.message) == (
            Outcome.FAILED,
            "2 packages cannot be reinstalled as they are",
        )
        assert [p.spec for p in r.failed_pins] == ["gamma", "delta"]
    assert tree_hash(tmp_path) == before  # no placeholder, no lock left


# --- the steps on real trees ---------------------------------------------------------


def _work(source: Path, plan: RepairPlan, dest: Optional[Path] = None, **options: object) -> Work:
    run = OwnerRunner(owner_of(Actor.me()), None)
    rep = inspect_path(str(source))
    return Work(str(source), str(dest or source), rep, plan, RepairOptions(**options), run)  # type: ignore[arg-type]


def test_copy_extra_keeps_links_as_links_and_names_what_it_leaves(tmp_path: Path) -> None:
    src = tmp_path / "old"
    (src / "conf" / "deep").mkdir(parents=True)
    (src / "conf" / "deep" / "a.ini").write_text("a")
    (src / "conf" / "deep").chmod(0o750)
    (src / "conf" / "elsewhere").symlink_to("/etc/passwd")
    os.mkfifo(src / "conf" / "pipe")
    left = copy_extra(str(src / "conf"), str(tmp_path / "new"))
    new = tmp_path / "new"
    assert (new / "deep" / "a.ini").read_text() == "a"
    assert stat.S_IMODE((new / "deep").stat().st_mode) == 0o750
    assert os.readlink(new / "elsewhere") == "/etc/passwd"
    assert not (new / "pipe").exists()
    assert len(left) == 1 and left[0].startswith(str(src / "conf" / "pipe")), left


def test_carry_over_brings_the_extras_to_the_siblings_paths(tmp_path: Path) -> None:
    """A sibling's new tree: the old venv's own files come over, and every path that
    names the build or the original names the sibling; the prompt given only so that
    the activate scripts do not say the build's name is dropped."""
    v = static_venv(tmp_path / "app")
    (v / "bin" / "tool").write_text(f"#!{v}/bin/python\nprint('tool')\n")
    (v / "bin" / "tool").chmod(0o755)
    (v / "notes.txt").write_text("keep me")
    os.mkfifo(v / "pipe")
    new = tmp_path / ".build"
    (new / "bin").mkdir(parents=True)
    (new / "bin" / "activate").write_text(f'VIRTUAL_ENV="{new}"\n')
    (new / "pyvenv.cfg").write_text(f"home = {EXE.parent}\nprompt = app-py{MINOR}\n")
    dest = tmp_path / f"app-py{MINOR}"
    log = Log()
    carry_over(_work(v, _plan(str(dest), prompt=None), dest), log, str(new))
    assert (new / "notes.txt").read_text() == "keep me"
    assert (new / "bin" / "tool").read_text() == f"#!{dest}/bin/python\nprint('tool')\n"
    assert (new / "bin" / "activate").read_text() == f'VIRTUAL_ENV="{dest}"\n'
    assert "prompt" not in (new / "pyvenv.cfg").read_text()
    assert log.notes[0] == "carried over: bin/tool, notes.txt, pipe", log.notes
    assert log.notes[1].startswith(f"not carried over: {v / 'pipe'}"), log.notes
    assert not (new / "pipe").exists()


def test_the_copy_build_rewrites_a_moved_venvs_paths(tmp_path: Path) -> None:
    v = static_venv(tmp_path / "app")
    (v / "bin" / "activate").write_text('VIRTUAL_ENV="/old/place/app"\n')
    v.chmod(0o751)
    plan = _plan(str(v), Strategy.REWRITE_PATHS, old_location="/old/place/app")
    job = Job(_work(v, plan))
    new = tmp_path / ".build"
    new.mkdir()
    job.build(str(new))
    assert (new / "bin" / "activate").read_text() == f'VIRTUAL_ENV="{v}"\n'
    assert os.readlink(new / "bin" / "python") == str(EXE)
    assert stat.S_IMODE(new.stat().st_mode) == 0o751
    assert (v / "bin" / "activate").read_text() == 'VIRTUAL_ENV="/old/place/app"\n'


def test_a_failed_creation_says_why_and_what_to_install(tmp_path: Path) -> None:
    fake = tmp_path / "python3.99"
    fake.write_text(
        "#!/bin/sh\necho 'The virtual environment was not created successfully because"
        " ensurepip is not available.' >&2\nexit 1\n"
    )
    fake.chmod(0o755)
    v = static_venv(tmp_path / "app")
    t = Target(str(fake), str(fake), "3.99", None)
    work = _work(v, _plan(str(v), target=t))
    with pytest.raises(RepairError) as e:
        create_venv(work, str(tmp_path / ".build"), Pip())
    assert str(e.value) == (
        f"creating the venv with {fake} failed: The virtual environment was not created"
        " successfully because ensurepip is not available. (on Debian:"
        " `apt install python3.99-venv`; or install uv)"
    )


def _open_dir(tmp_path: Path) -> Path:
    d = tmp_path / "open"
    d.mkdir()
    d.chmod(0o777)  # anybody may replace what is in it
    return d


def test_a_target_another_user_could_change_is_not_built_with(tmp_path: Path) -> None:
    link = _open_dir(tmp_path) / "python3"
    link.symlink_to(EXE)
    v = static_venv(tmp_path / "app")
    work = _work(v, _plan(str(v), target=Target(str(link), str(EXE), MINOR, None)))
    with pytest.raises(RepairError, match=rf"not rebuilt with {re.escape(str(link))}: .*another"):
        check_target(work)


def test_a_build_another_user_could_change_is_not_run(tmp_path: Path) -> None:
    v = static_venv(tmp_path / "app")
    new = static_venv(_open_dir(tmp_path) / "build")
    work = _work(v, _plan(str(v), target=Target(str(EXE), str(EXE), MINOR, None)))
    log = Log()
    with pytest.raises(RepairError, match=r"verification not run: .*another user could change"):
        verify_built(work, log, str(new))
    assert log.notes == []
