"""The distributions (``./dev.sh dist``): the wheel's metadata and contents, and an sdist
whose own tests run, installed from the registry into a fresh venv, from its unpacked tree.

Built from a copy of the checkout (the build writes egg-info beside the sources, and other
runs use this checkout at the same time), into which the test plants what must never be
shipped: the dev venv, old builds, bytecode, caches, a .git."""

from __future__ import annotations

import email.message
import email.parser
import email.policy
import os
import re
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

import venvkeeper
from venvkeeper.formats.envelope import Kind

from conftest import find_python
from factory import clean_env

# builds in isolated environments from the registry, then pip and the sdist's own suite
pytestmark = [pytest.mark.slow, pytest.mark.timeout(1200)]

ROOT = Path(__file__).resolve().parent.parent
#: A fast, representative part of the suite that the sdist runs from its unpacked tree: the
#: CLI contract (exit codes, formats, the docs' generated blocks), the configuration, the
#: static reading of venvs, escaping and the checks on real venvs. Its slow tests (and the
#: other files, minutes of real venvs, chroots and upgrades) are left to the checkout's own
#: runs.
SDIST_TESTS = (
    "tests/test_cli.py",
    "tests/test_config.py",
    "tests/test_inspect_units.py",
    "tests/test_escaping.py",
    "tests/test_check.py",
)
#: Planted in the copy: none may reach the sdist.
JUNK = (
    ".dev/venv/bin/python",
    ".git/HEAD",
    "dist/venvkeeper-0.0.1.tar.gz",
    "build/lib/venvkeeper/__init__.py",
    "tests/__pycache__/conftest.cpython-311.pyc",
    "src/venvkeeper/__pycache__/cli.cpython-311.pyc",
    "tests/.hypothesis/examples/x",
    "tests/.pytest_cache/v/x",
    "bench/out/tree/x",
    ".mypy_cache/x",
)


def registry_env() -> dict[str, str]:
    """This session's environment (the machine's pip configuration: its index, proxy,
    certificates) less every PYTHON* variable (the runner's PYTHONPATH above all)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    return {**env, "PIP_DISABLE_PIP_VERSION_CHECK": "1"}


def pip(python: Path, *args: str, timeout: float = 900) -> None:
    res = subprocess.run(
        [str(python), "-m", "pip", "-q", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=registry_env(),
    )
    if res.returncode != 0:
        if "Could not find a version" in res.stderr or "NewConnectionError" in res.stderr:
            pytest.skip(f"the registry is not reachable: {res.stderr.strip()[-300:]}")
        raise AssertionError(f"pip {args} failed:\n{res.stderr[-3000:]}")


def fresh_venv(dest: Path) -> Path:
    """A venv with pip on this machine's CPython 3.11 (the dev venv's base otherwise)."""
    base = find_python("3.11") or Path(sys.executable)
    subprocess.run([str(base), "-m", "venv", str(dest)], check=True, timeout=300)
    return dest / "bin" / "python"


def checkout_copy(dest: Path) -> Path:
    skip = shutil.ignore_patterns("__pycache__", "*.egg-info", "*.pyc")

    def ignore(d: str, names: list[str]) -> set[str]:
        top = {n for n in names if n.startswith(".") or n in ("dist", "build")}
        return set(skip(d, names)) | (top if Path(d) == ROOT else set())

    shutil.copytree(ROOT, dest, ignore=ignore, symlinks=True)
    for j in JUNK:
        (dest / j).parent.mkdir(parents=True, exist_ok=True)
        (dest / j).write_text("junk\n")
    return dest


@pytest.fixture(scope="module")
def dists(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(sdist, wheel) built by ``python -m build`` (the dev venv's, else a throwaway one)."""
    tmp = tmp_path_factory.mktemp("dist")
    src = checkout_copy(tmp / "checkout")
    try:
        import build  # noqa: F401

        builder = Path(sys.executable)
    except ImportError:  # a dev venv made before build joined the dev extras
        builder = fresh_venv(tmp / "builder")
        pip(builder, "install", "build")
    res = subprocess.run(
        [str(builder), "-m", "build", "--outdir", str(tmp / "out"), str(src)],
        capture_output=True,
        text=True,
        timeout=900,
        env=registry_env(),
    )
    if res.returncode != 0 and "Could not find a version" in res.stdout + res.stderr:
        pytest.skip("the registry is not reachable: the isolated build needs setuptools")
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    v = venvkeeper.__version__
    sdist, wheel = (
        tmp / "out" / f"venvkeeper-{v}.tar.gz",
        tmp / "out" / f"venvkeeper-{v}-py3-none-any.whl",
    )
    assert sdist.is_file() and wheel.is_file(), sorted(os.listdir(tmp / "out"))
    return sdist, wheel


def metadata(wheel: Path) -> email.message.Message:
    with zipfile.ZipFile(wheel) as z:
        text = z.read(f"venvkeeper-{venvkeeper.__version__}.dist-info/METADATA").decode()
    return email.parser.Parser(policy=email.policy.compat32).parsestr(text)


def test_wheel_metadata(dists: tuple[Path, Path]) -> None:
    meta = metadata(dists[1])
    assert meta["Name"] == "venvkeeper"
    assert meta["Version"] == venvkeeper.__version__
    assert meta["Requires-Python"] == ">=3.9"
    assert meta["License"] == "MIT"
    classifiers = meta.get_all("Classifier")
    for c in (
        "License :: OSI Approved :: MIT License",
        "Operating System :: POSIX :: Linux",
        "Typing :: Typed",
        "Intended Audience :: System Administrators",
        *(f"Programming Language :: Python :: 3.{m}" for m in range(9, 14)),
    ):
        assert c in classifiers, c
    requires = meta.get_all("Requires-Dist")
    for r in ("packaging>=22", "prometheus_client>=0.16"):
        assert r in requires, requires
    assert 'tomli>=1.1; python_version < "3.11"' in requires, requires
    urls = dict(u.split(", ", 1) for u in meta.get_all("Project-URL"))
    assert set(urls) == {"Homepage", "Documentation", "Issues", "Changelog"}
    assert all(u.startswith("https://github.com/venvkeeper/venvkeeper") for u in urls.values())
    assert meta["Description-Content-Type"] == "text/markdown"


def test_wheel_contents(dists: tuple[Path, Path]) -> None:
    names = zipfile.ZipFile(dists[1]).namelist()
    assert "venvkeeper/py.typed" in names
    for kind in Kind:  # the published JSON Schemas, for venvkeeper.formats.envelope.schema
        assert f"venvkeeper/schemas/{kind.value}.schema.json" in names, kind
    stages = ("model", "host", "scan", "checks", "predict", "repair", "restarts", "inventory")
    for pkg in (*stages, "formats", "apt", "cli"):  # every subpackage of the layout
        assert f"venvkeeper/{pkg}/__init__.py" in names, pkg
    assert any(n.endswith(".dist-info/entry_points.txt") for n in names)
    assert any("dist-info/" in n and n.endswith("LICENSE") for n in names)
    tops = {n.split("/")[0] for n in names}
    assert tops == {"venvkeeper", f"venvkeeper-{venvkeeper.__version__}.dist-info"}, tops
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]


def test_sdist_contents(dists: tuple[Path, Path]) -> None:
    with tarfile.open(dists[0]) as t:
        names = [n.split("/", 1)[1] for n in t.getnames() if "/" in n]
    for want in (
        "tests/conftest.py",
        "tests/factory.py",
        "tests/debroot.py",
        "tests/data/vkbackend.py",
        *SDIST_TESTS,
        "CHANGELOG.md",
        "LICENSE",
        "README.md",
        "contrib/systemd/venvkeeper.service",
        "bench/run.py",
        "tools/update_readme.py",
        "tools/update_docs.py",
        "docs/reference/cli.md",
        "docs/reference/codes.md",
        "docs/reference/configuration.md",
        "mkdocs.yml",
        "tools/build_pyz.py",
        "dev.sh",
        "pyproject.toml",
        "src/venvkeeper/py.typed",
    ):
        assert want in names, want
    ours = {p.relative_to(ROOT).as_posix() for p in (ROOT / "tests").rglob("*") if p.is_file()}
    assert {n for n in ours if "__pycache__" not in n and "/." not in n} <= set(names)
    for n in names:
        parts = n.split("/")
        assert parts[0] not in (".dev", ".git", "dist", "build", ".mypy_cache"), n
        assert "__pycache__" not in parts and not n.endswith(".pyc"), n
        assert not n.startswith(("bench/out", "tests/.hypothesis", "tests/.pytest_cache")), n


def test_sdist_installs_and_its_tests_pass(dists: tuple[Path, Path], tmp_path: Path) -> None:
    """pip installs the sdist with its test extras (from the registry) into a fresh venv;
    then :data:`SDIST_TESTS` run from the unpacked tree against the installed venvkeeper
    (the tree's src/ is removed first, so nothing else could be imported)."""
    sdist = dists[0]
    py = fresh_venv(tmp_path / "venv")
    pip(py, "install", f"{sdist}[test]")
    with tarfile.open(sdist) as t:
        t.extractall(tmp_path / "unpacked")
    tree = tmp_path / "unpacked" / f"venvkeeper-{venvkeeper.__version__}"
    shutil.rmtree(tree / "src")
    inner_tmp = tmp_path / "tmp"  # the inner session's temporary files stay in ours
    inner_tmp.mkdir()
    env = clean_env(TMPDIR=str(inner_tmp))
    env.pop("UV_CACHE_DIR")  # the tree's own .dev/cache, as on a fresh machine
    env.pop("VIRTUALENV_OVERRIDE_APP_DATA")
    where = subprocess.run(
        [str(py), "-c", "import venvkeeper; print(venvkeeper.__file__)"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tree,
        env=env,
    )
    assert where.stdout.startswith(str(tmp_path / "venv" / "lib")), where
    res = subprocess.run(
        [str(py), "-m", "pytest", "-q", "-p", "no:cacheprovider", "-m", "not slow", *SDIST_TESTS],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tree,
        env=env,
    )
    assert res.returncode == 0, res.stdout[-5000:] + res.stderr[-2000:]
    passed = re.search(r"(\d+) passed", res.stdout)
    assert passed and int(passed.group(1)) >= 100, res.stdout[-2000:]  # collected, really ran
    assert "failed" not in res.stdout and "error" not in res.stdout, res.stdout[-2000:]


def test_the_build_floor_builds(tmp_path: Path) -> None:
    """``requires = ["setuptools>=N"]`` is true: setuptools N itself (from the registry)
    builds a wheel with the whole metadata, py.typed included."""
    from packaging.requirements import Requirement

    try:
        import tomllib
    except ImportError:  # CPython 3.10 and older
        import tomli as tomllib  # type: ignore[no-redef]

    with open(ROOT / "pyproject.toml", "rb") as f:
        requires = tomllib.load(f)["build-system"]["requires"]
    (req,) = (Requirement(r) for r in requires if Requirement(r).name == "setuptools")
    (spec,) = req.specifier
    assert spec.operator == ">="
    py = fresh_venv(tmp_path / "venv")
    pip(py, "install", f"setuptools=={spec.version}", "wheel")
    src = checkout_copy(tmp_path / "checkout")
    pip(py, "wheel", "--no-build-isolation", "--no-deps", "-w", str(tmp_path / "out"), str(src))
    (wheel,) = (tmp_path / "out").glob("venvkeeper-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "venvkeeper/py.typed" in names and "venvkeeper/schemas/scan.schema.json" in names
    meta = metadata(wheel)
    assert meta["Version"] == venvkeeper.__version__ and meta["License"] == "MIT"
    assert "Typing :: Typed" in meta.get_all("Classifier")
    assert len(meta.get_all("Project-URL")) == 4
