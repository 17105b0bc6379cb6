"""The suite's own machinery (tests/tiers.py, conftest.py): the markers a test earns by what
it uses, the xdist groups, the skip count and its check, and the session-end host check
of xdist workers. Each runs pytest for real on a small project of its own."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent

INI = """[pytest]
addopts = --strict-markers -p no:cacheprovider
markers =
    slow: slow
    root: root
    debian: debian
"""

CONFTEST = """
from pathlib import Path

import pytest

import tiers


def pytest_addoption(parser):
    tiers.addoption(parser)


def pytest_configure(config):
    config.pluginmanager.register(tiers.Tiers(config, Path(__file__).parent), "tiers")


@pytest.fixture(scope="session")
def unprivileged_user():
    return "someone"


def pytest_collection_finish(session):
    for item in session.items:  # the tier markers each test has, as -m sees them
        tiers = sorted({m.name for m in item.iter_markers()} & {"slow", "root", "debian"})
        print("TIERS", item.name, *tiers)
"""

HELPERS = """
import os

import pytest


def needs_root():
    if os.geteuid() != 0:
        pytest.skip("needs root")


def owner():
    return os.geteuid()  # asks, but needs nothing
"""

TESTS = """
import os

import pytest

import debroot
import helpers as h
from helpers import needs_root, owner


@pytest.fixture(scope="module")
def a_root():
    return debroot.build()


@pytest.fixture(scope="module")
def world():
    return 1


def test_plain():
    pass


def test_user(unprivileged_user):
    pass


def test_euid():
    if os.geteuid() != 0:
        pytest.skip("needs root")


def test_helper():
    needs_root()


def test_owner():
    assert owner() >= 0


def test_in_a_root(a_root):
    pass


def test_world_a(world):
    pass


def test_world_b(world):
    pass


@pytest.mark.slow
def test_marked_slow():
    pass


def test_through_a_helper_module():
    h.needs_root()


def test_a_helper_imported_inside():
    import roots

    roots.unpack()


@pytest.mark.skipif(os.geteuid() != 0, reason="a bind mount needs root")
def test_skipif_root():
    pass
"""

SKIPS = """
import pytest


def test_ok():
    pass


def test_no_frobnicator():
    pytest.skip("no frobnicator on this machine")


@pytest.mark.parametrize("n", [1, 2])
def test_no_widget(n):
    pytest.skip(f"widget {n} is missing")
"""


#: A tests/ of its own: debroot stands in for tests/debroot.py.
WORLD = {
    "debroot.py": "def build():\n    return 1\n",
    "helpers.py": HELPERS,
    "roots.py": "import debroot\n\n\ndef unpack():\n    return debroot.build()\n",
    "test_a.py": TESTS,
}


def project(tmp_path: Path, files: dict[str, str]) -> Path:
    top = tmp_path / "proj"
    top.mkdir()
    (top / "pytest.ini").write_text(INI)
    (top / "conftest.py").write_text(CONFTEST)
    shutil.copy(HERE / "tiers.py", top / "tiers.py")
    for name, text in files.items():
        (top / name).write_text(text)
    return top


def pytest_run(top: Path, *args: str) -> subprocess.CompletedProcess[str]:
    args = (f"--basetemp={top.parent / 'basetemp'}", *args)
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:hypothesispytest", *args],
        capture_output=True,
        text=True,
        timeout=240,
        cwd=top,
        env={k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")},
    )


def tiers(top: Path) -> dict[str, set[str]]:
    """Each test's tier markers, from one collection."""
    res = pytest_run(top, "--collect-only", "-q")
    assert res.returncode == 0, res.stdout + res.stderr
    words = [line.split()[1:] for line in res.stdout.splitlines() if line.startswith("TIERS ")]
    return {w[0]: set(w[1:]) for w in words}


def test_markers_follow_what_a_test_uses(tmp_path: Path) -> None:
    got = tiers(project(tmp_path, WORLD))
    debian = {"debian", "root", "slow"}
    assert got == {
        "test_plain": set(),
        "test_user": {"root"},  # the unprivileged_user fixture
        "test_euid": {"root"},  # a skip on os.geteuid()
        "test_helper": {"root"},  # ... in a helper it calls
        "test_owner": set(),  # a helper that asks os.geteuid() but needs nothing
        "test_in_a_root": debian,  # a module fixture that uses debroot
        "test_world_a": set(),
        "test_world_b": set(),
        "test_marked_slow": {"slow"},
        "test_through_a_helper_module": {"root"},  # helpers.needs_root() as h.needs_root()
        "test_a_helper_imported_inside": debian,  # import roots; roots.unpack() -> debroot
        "test_skipif_root": {"root"},  # a skipif whose reason names root
    }


@pytest.mark.slow
def test_groups_keep_a_shared_fixture_and_the_debian_roots_on_one_worker(
    tmp_path: Path,
) -> None:
    top = project(tmp_path, WORLD)
    res = pytest_run(top, "-n", "2", "--dist", "loadgroup", "-v")
    assert res.returncode == 0, res.stdout + res.stderr
    assert re.search(r"PASSED test_a\.py::test_world_a@test_a\.py::world\b", res.stdout)
    assert re.search(r"PASSED test_a\.py::test_world_b@test_a\.py::world\b", res.stdout)
    assert re.search(r"PASSED test_a\.py::test_in_a_root@debian-roots\b", res.stdout)
    assert re.search(r"PASSED test_a\.py::test_plain\s", res.stdout)  # no group


EXPECTED = """# Skips

<!-- expected-skips -->
- `no frobnicator on *`: this machine has none
{more}<!-- /expected-skips -->
"""


@pytest.mark.parametrize(
    "workers", [[], pytest.param(["-n", "2"], marks=pytest.mark.slow)], ids=["serial", "xdist"]
)
def test_skips_are_counted_and_checked(tmp_path: Path, workers: list[str]) -> None:
    """Every run prints its skips by reason; with --expected-skips, one whose reason the
    list does not match fails the run (pytest's exit 1), under xdist too."""
    top = project(tmp_path, {"test_skips.py": SKIPS})
    partial = top / "partial.md"
    partial.write_text(EXPECTED.format(more=""))
    full = top / "full.md"
    full.write_text(EXPECTED.format(more="- `widget ? is missing`: no widgets here\n"))

    res = pytest_run(top, *workers, "--expected-skips", str(full))
    assert res.returncode == 0, res.stdout + res.stderr
    assert "not expected" not in res.stdout

    res = pytest_run(top, *workers, "--expected-skips", str(partial))
    assert res.returncode == 1, res.stdout + res.stderr
    counted, tail = res.stdout.split("not expected on CI's machine", 1)
    assert "3 skipped, by reason" in counted
    assert re.search(r"^ +1  widget 1 is missing$", counted, re.M)
    assert re.search(r"^ +1  widget 2 is missing$", counted, re.M)
    assert re.search(r"^ +1  no frobnicator on this machine$", counted, re.M)
    assert "widget 1 is missing" in tail and "widget 2 is missing" in tail
    assert "frobnicator" not in tail


@pytest.mark.slow
def test_the_host_check_of_each_xdist_worker_fails_the_run(tmp_path: Path) -> None:
    """The suite's own conftest, two workers, one test that leaves a directory of its
    session in the host's temporary directory: the worker that ran it finds and removes
    it at its end, and the run fails saying so."""
    top = tmp_path / "proj"
    top.mkdir()
    (top / "pytest.ini").write_text(INI)
    for name in ("conftest.py", "tiers.py"):
        shutil.copy(HERE / name, top / name)
    (top / "test_litter.py").write_text(
        "from conftest import host_tmpdir\n\n\n"
        "def test_leaves_a_directory():\n    host_tmpdir('forgotten')\n\n\n"
        "def test_plain():\n    pass\n"
    )
    host_tmp = Path(os.environ.get("TMPDIR") or tempfile.gettempdir())  # the inner run's
    res = pytest_run(top, "-n", "2")
    assert res.returncode == 1, res.stdout + res.stderr
    assert "2 passed" in res.stdout
    out = res.stdout.split("this run did not leave the host as it found it", 1)[1]
    assert re.search(r"^gw[01]: left \S+/vk-test-\d+-forgotten-", out, re.M), out
    assert f"left {host_tmp}/vk-test-" in out
    assert not [p for p in os.listdir(host_tmp) if "-forgotten-" in p]
