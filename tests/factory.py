"""Builders for real test worlds: projects, wheels, venvs, a fake distro prefix.

Everything here is real: real interpreters from pyenv or PATH, real ``venv``,
``virtualenv`` and ``uv`` runs, real installs by pip and uv (offline, through the
dependency-free build backend in ``tests/data/vkbackend.py``). Ground truth comes from
running the venvs (:func:`run_in_venv`), which only the tests do, never venvkeeper.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from conftest import pyenv_root, require_python

DATA = Path(__file__).parent / "data"
DEV_BIN = Path(sys.executable).parent
#: What the suite keeps between runs (uv's cache, virtualenv's app data, the runtime
#: dependencies of other Pythons): in the checkout's .dev, beside the dev venv and the
#: test wheels, never in the host's /tmp.
CACHE = Path(__file__).resolve().parent.parent / ".dev" / "cache"


def cache_dir(name: str) -> Path:
    """A directory of :data:`CACHE`, created (searchable by other users) when missing."""
    d = CACHE / name
    d.mkdir(parents=True, exist_ok=True)
    for p in (CACHE, d):
        if p.stat().st_mode & 0o755 != 0o755:
            with contextlib.suppress(OSError):
                p.chmod(p.stat().st_mode | 0o755)
    return d


_C_SOURCE = r"""
#include <Python.h>
static PyObject *add(PyObject *self, PyObject *args) {
    long a, b;
    if (!PyArg_ParseTuple(args, "ll", &a, &b)) return NULL;
    return PyLong_FromLong(a + b);
}
static PyMethodDef methods[] = {{"add", add, METH_VARARGS, "add"}, {NULL, NULL, 0, NULL}};
static struct PyModuleDef mod = {PyModuleDef_HEAD_INIT, "_speed", NULL, -1, methods};
PyMODINIT_FUNC PyInit__speed(void) { return PyModule_Create(&mod); }
"""


def tool(name: str) -> str:
    """A tool installed in the test environment (uv, virtualenv)."""
    cand = DEV_BIN / name
    if cand.exists():
        return str(cand)
    found = shutil.which(name)
    if not found:
        raise RuntimeError(f"{name} is not installed: run ./dev.sh setup")
    return found


def clean_env(**extra: str) -> dict[str, str]:
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": os.environ.get("HOME", "/root"),
        "LANG": "C.UTF-8",
        "UV_PYTHON_DOWNLOADS": "never",
        "UV_NO_CONFIG": "1",
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
        "PIP_NO_INPUT": "1",
        "PIP_CONFIG_FILE": os.devnull,
        "VIRTUALENV_OVERRIDE_APP_DATA": os.environ.get("VK_TEST_APP_DATA")
        or str(cache_dir("virtualenv-app-data")),
        "UV_CACHE_DIR": uv_cache(),
    }
    if os.environ.get("TMPDIR"):  # the test session's own (conftest)
        env["TMPDIR"] = os.environ["TMPDIR"]
    env.update(extra)
    return env


def uv_cache() -> str:
    return os.environ.get("VK_TEST_UV_CACHE") or str(cache_dir("uv"))


def sh(
    *argv: object,
    timeout: float = 300,
    env: Optional[dict[str, str]] = None,
    cwd: Optional[Path] = None,
) -> subprocess.CompletedProcess[str]:
    res = subprocess.run(
        [str(a) for a in argv],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env or clean_env(),
        cwd=cwd,
    )
    if res.returncode != 0:
        raise RuntimeError(f"{argv} failed ({res.returncode}):\n{res.stdout}\n{res.stderr}")
    return res


@dataclass(frozen=True)
class Project:
    path: Path
    name: str
    module: str
    script: Optional[str]
    ext: bool


def make_project(
    root: Path,
    name: str,
    version: str = "1.0",
    *,
    ext: bool = False,
    script: Optional[str] = None,
    requires_python: Optional[str] = None,
    requires: Sequence[str] = (),
) -> Project:
    module = name.replace("-", "_")
    proj = root / f"src-{name}-{version}"
    pkg = proj / module
    pkg.mkdir(parents=True)
    init = f'VALUE = "{name}-{version}"\n\ndef main():\n    print("{name} OK")\n'
    if ext:
        init = "from . import _speed\n" + init
        (pkg / "_speed.c").write_text(_C_SOURCE)
    (pkg / "__init__.py").write_text(init)
    cfg: dict[str, object] = {"name": name, "version": version, "packages": [module]}
    if ext:
        cfg["ext"] = {f"{module}._speed": f"{module}/_speed.c"}
    if script:
        cfg["scripts"] = {script: f"{module}:main"}
    if requires_python:
        cfg["requires_python"] = requires_python
    if requires:
        cfg["requires"] = list(requires)
    (proj / "vkproject.json").write_text(json.dumps(cfg))
    (proj / "pyproject.toml").write_text(
        '[build-system]\nrequires = []\nbuild-backend = "vkbackend"\nbackend-path = ["."]\n'
    )
    shutil.copy(DATA / "vkbackend.py", proj / "vkbackend.py")
    return Project(proj, name, module, script, ext)


def make_setuppy_project(
    root: Path, name: str, version: str = "1.0", *, script: Optional[str] = None
) -> Project:
    """A project of the setup.py era: no pyproject.toml, only ``setup.py`` (setuptools).
    ``pip install -e`` of it by a pip before PEP 660 (bullseye's 20.3) runs ``setup.py
    develop``: an ``.egg-link`` and an ``easy-install.pth`` line, no dist-info, and a console
    script that loads its entry point through ``pkg_resources``."""
    module = name.replace("-", "_")
    proj = root / f"setuppy-{name}-{version}"
    pkg = proj / module
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text(
        f'VALUE = "{name}-{version}"\n\ndef main():\n    print("{name} OK")\n'
    )
    entry = f"entry_points={{'console_scripts': ['{script}={module}:main']}}, " if script else ""
    (proj / "setup.py").write_text(
        "from setuptools import setup\n\n"
        f"setup(name={name!r}, version={version!r}, packages=[{module!r}], {entry})\n"
    )
    return Project(proj, name, module, script, False)


def make_venv(
    python: Path,
    dest: Path,
    *,
    creator: str = "venv",
    copies: bool = False,
    system_site: bool = False,
    pip: bool = False,
) -> Path:
    if creator == "venv":
        args: list[object] = [python, "-m", "venv"]
        if copies:
            args.append("--copies")
        if system_site:
            args.append("--system-site-packages")
        if not pip:
            args.append("--without-pip")
        sh(*args, dest)
    elif creator == "virtualenv":
        args = [tool("virtualenv"), "-p", python, "--no-download", "--no-periodic-update"]
        if copies:
            args.append("--copies")
        if system_site:
            args.append("--system-site-packages")
        if not pip:
            args += ["--no-pip", "--no-setuptools", "--no-wheel"]
        sh(*args, dest)
    elif creator == "uv":
        args = [tool("uv"), "venv", "-q", "-p", python, "--no-python-downloads"]
        if system_site:
            args.append("--system-site-packages")
        if pip:
            args.append("--seed")
        sh(*args, dest)
    else:
        raise ValueError(creator)
    return dest


def _uv_install(venv: Path, *args: object) -> None:
    sh(tool("uv"), "pip", "install", "-q", "--python", venv / "bin" / "python", "--offline", *args)


def install(venv: Path, *projects: Project, editable: bool = False, installer: str = "uv") -> None:
    targets: list[object] = []
    for p in projects:
        targets += ["-e", p.path] if editable else [p.path]
    if installer == "uv":
        _uv_install(venv, "--no-index", *targets)
    else:
        sh(venv / "bin" / "python", "-m", "pip", "install", "-q", "--no-index", *targets)


# Directories that a simulated upgrade removed from the host (FakeDistro.hidden). The real
# ones (pyenv's stdlib of a removed minor) must stay for the rest of the machine, so
# ground-truth runs happen in a private mount namespace with an empty directory over each.
_HIDE_SCRIPT = (
    'e=$1; shift; n=$1; shift; i=0; while [ "$i" -lt "$n" ]; do'
    ' mount --bind "$e" "$1" || exit 99; shift; i=$((i+1)); done; exec "$@"'
)


def can_hide() -> bool:
    if os.geteuid() != 0 or not shutil.which("unshare"):
        return False
    res = subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "true"], capture_output=True, timeout=30
    )
    return res.returncode == 0


def _hidden(argv: list[str], hide: Sequence[Path]) -> list[str]:
    if not hide:
        return argv
    empty = cache_dir("empty")  # mounted over what is hidden: stays empty
    return [
        "unshare",
        "--mount",
        "--propagation",
        "private",
        "sh",
        "-c",
        _HIDE_SCRIPT,
        "sh",
        str(empty),
        str(len(hide)),
        *map(str, hide),
        *argv,
    ]


def run_in_venv(
    venv: Path,
    code: str,
    *,
    user: Optional[int] = None,
    timeout: float = 60,
    hide: Sequence[Path] = (),
) -> subprocess.CompletedProcess[str]:
    """Ground truth: what really happens when the venv's interpreter runs *code*."""
    kwargs: dict[str, object] = {}
    if user is not None:
        kwargs = {"user": user, "group": user, "extra_groups": []}
    argv = [str(venv / "bin" / "python"), "-c", code]
    if not (venv / "bin" / "python").exists():
        return subprocess.CompletedProcess(argv, 127, "", "No such file or directory")
    argv = _hidden(argv, hide)
    try:
        return subprocess.run(
            argv,
            capture_output=True,
            text=True,
            timeout=timeout,
            env=clean_env(),
            cwd="/",
            **kwargs,  # type: ignore[arg-type]
        )
    except OSError as e:  # the interpreter itself is missing: what a shell would say
        return subprocess.CompletedProcess(argv, 127, "", str(e))


def imports_ok(venv: Path, *modules: str, hide: Sequence[Path] = ()) -> bool:
    code = "".join(f"import {m}\n" for m in modules)
    res = run_in_venv(venv, code, hide=hide)
    # A Python that cannot find its stdlib from its own prefix warns and falls back to the
    # prefix it was compiled with; on a real host that is the same removed directory.
    lost = "Could not find platform independent libraries" in res.stderr
    return res.returncode == 0 and not lost


def script_runs(
    venv: Path, script: str, hide: Sequence[Path] = ()
) -> subprocess.CompletedProcess[str]:
    argv = _hidden([str(venv / "bin" / script)], hide)
    try:
        return subprocess.run(
            argv, capture_output=True, text=True, timeout=60, env=clean_env(), cwd="/"
        )
    except OSError as e:  # the shebang's interpreter is missing
        return subprocess.CompletedProcess(argv, 127, "", str(e))


class FakeDistro:
    """A prefix that behaves like a distro's ``/usr``: ``bin/python3`` links to a
    versioned binary, ``lib/pythonX.Y`` holds its stdlib. Upgrades repoint ``python3``
    and remove the old minor, exactly as a distro upgrade does.

    Binaries are copies of pyenv's (they load their libpython through an absolute rpath);
    ``lib`` and ``include`` entries link to pyenv's stdlib and headers.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self.hidden: list[Path] = []
        (root / "bin").mkdir(parents=True, exist_ok=True)
        (root / "lib").mkdir(exist_ok=True)
        (root / "include").mkdir(exist_ok=True)

    @staticmethod
    def available(minor: str) -> bool:
        r = pyenv_root()
        return r is not None and any((r / "versions").glob(f"{minor}.*/bin/python{minor}"))

    def install(self, minor: str) -> Path:
        r = pyenv_root()
        assert r is not None
        src = sorted((r / "versions").glob(f"{minor}.*/bin/python{minor}"))[-1]
        prefix = src.parent.parent
        exe = self.root / "bin" / f"python{minor}"
        shutil.copy2(src, exe)
        for sub in ("lib", "include"):
            link = self.root / sub / f"python{minor}"
            if not link.exists():
                link.symlink_to(prefix / sub / f"python{minor}")
        return exe

    def set_default(self, minor: str) -> Path:
        link = self.root / "bin" / "python3"
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(f"python{minor}")
        return link

    def remove(self, minor: str) -> None:
        """Remove a minor as its distro package would; its pyenv original (which the
        copied binary would fall back to) is hidden from ground-truth runs."""
        r = pyenv_root()
        assert r is not None
        src = sorted((r / "versions").glob(f"{minor}.*/bin/python{minor}"))[-1]
        self.hidden.append(src.parent.parent / "lib" / f"python{minor}")
        for p in (
            self.root / "bin" / f"python{minor}",
            self.root / "lib" / f"python{minor}",
            self.root / "include" / f"python{minor}",
        ):
            if p.is_symlink() or p.is_file():
                p.unlink()


def in_mount_namespace(setup: str, python_code: str) -> subprocess.CompletedProcess[str]:
    """Run shell *setup* (mounts) then *python_code* with this interpreter, inside a
    private mount namespace, so the mounts vanish with it. Skips when that is not allowed."""
    import pytest

    if os.geteuid() != 0 or not shutil.which("unshare"):
        pytest.skip("needs root and unshare for mounts in a private namespace")
    script = f'{setup} && exec {sys.executable} -c "$0"'
    res = subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "sh", "-c", script, python_code],
        capture_output=True,
        text=True,
        timeout=120,
    )
    if res.returncode != 0 and "mount" in res.stderr:
        pytest.skip(f"mounts are not allowed here: {res.stderr.strip()}")
    return res


#: Every kind of venv the simulated upgrade judges, and the modules each must import.
UPGRADE_KINDS = (
    "py3-venv",
    "versioned-venv",
    "copies",
    "virtualenv",
    "uv-py3",
    "pip-venv",
    "editable",
)


@dataclass
class UpgradeWorld:
    """A fake distro prefix at 3.10 with a venv of every kind, packages installed: the
    world the ground-truth and predict tests upgrade to 3.12."""

    root: Path
    distro: FakeDistro
    made: dict[str, Path]
    editable_source: Path

    @classmethod
    def build(cls, root: Path) -> UpgradeWorld:
        import pytest

        for minor in ("3.10", "3.12"):
            if not FakeDistro.available(minor):
                pytest.skip(f"pyenv CPython {minor} is needed for the simulated upgrade")
        if not can_hide():
            pytest.skip("needs root and unshare to hide the removed stdlib in a mount namespace")
        distro = FakeDistro(root / "usr")
        distro.install("3.10")
        py3 = distro.set_default("3.10")
        py310 = root / "usr" / "bin" / "python3.10"
        alpha = make_project(root, "alpha", script="alpha-cli")
        beta = make_project(root, "beta", ext=True)
        gamma = make_project(root / "work", "gamma")
        envs = root / "envs"
        made = {
            "py3-venv": make_venv(py3, envs / "py3-venv"),
            "versioned-venv": make_venv(py310, envs / "versioned-venv"),
            "copies": make_venv(py310, envs / "copies", copies=True),
            "virtualenv": make_venv(py310, envs / "virtualenv", creator="virtualenv"),
            "uv-py3": make_venv(py3, envs / "uv-py3", creator="uv"),
            "pip-venv": make_venv(py3, envs / "pip-venv", pip=True),
            "editable": make_venv(py3, envs / "editable"),
        }
        for name, v in made.items():
            if name == "editable":
                install(v, gamma, editable=True)
            elif name == "pip-venv":
                install(v, alpha, beta, installer="pip")
            else:
                install(v, alpha, beta)
        return cls(root, distro, made, gamma.path)

    @property
    def envs(self) -> Path:
        return self.root / "envs"

    def truth(self) -> dict[str, bool]:
        """Whether each venv really imports its packages now (the removed stdlib hidden)."""
        return {
            name: imports_ok(
                v,
                *(("gamma",) if name == "editable" else ("alpha", "beta._speed")),
                hide=self.distro.hidden,
            )
            for name, v in self.made.items()
        }

    def upgrade(self) -> None:
        """3.12 installed, python3 repointed, 3.10 removed: a distro upgrade."""
        self.distro.install("3.12")
        self.distro.set_default("3.12")
        self.distro.remove("3.10")


def runner_for_others() -> tuple[str, str]:
    """A Python and PYTHONPATH that an unprivileged user can run venvkeeper with: the dev
    venv's interpreter lives under /root, so use the system's with a world-readable copy
    of venvkeeper's one runtime dependency needed here (packaging)."""
    import pytest

    system = "/usr/bin/python3"
    if not os.path.exists(system):
        pytest.skip("no /usr/bin/python3 for running venvkeeper as another user")
    import packaging

    libs = cache_dir("libs-for-others")
    if not (libs / "packaging").exists():
        shutil.copytree(Path(packaging.__file__).parent, libs / "packaging", dirs_exist_ok=True)
    for dirpath, _dirs, files in os.walk(libs):
        os.chmod(dirpath, 0o755)
        for f in files:
            os.chmod(os.path.join(dirpath, f), 0o644)
    src = Path(__file__).resolve().parent.parent / "src"
    return system, f"{src}:{libs}"


def tree_hash(root: Path) -> dict[str, tuple[object, ...]]:
    """Every entry below *root* (root itself included) with its type, mode, owner, and
    content or link target: equal dicts mean byte-for-byte equal trees."""
    import hashlib
    import stat

    out: dict[str, tuple[object, ...]] = {}
    for dirpath, dirs, files in os.walk(root):
        for name in [".", *dirs, *files]:
            p = os.path.join(dirpath, name) if name != "." else dirpath
            rel = os.path.relpath(p, root)
            if name == "." and rel != ".":
                continue
            st = os.lstat(p)
            if stat.S_ISLNK(st.st_mode):
                what: object = os.readlink(p)
            elif stat.S_ISREG(st.st_mode):
                what = hashlib.sha256(Path(p).read_bytes()).hexdigest()
            else:
                what = None
            out[rel] = (stat.S_IFMT(st.st_mode), st.st_mode & 0o7777, st.st_uid, st.st_gid, what)
    return out


def freeze(venv: Path) -> list[str]:
    """What the venv holds, as ``uv pip freeze`` says by running its interpreter."""
    res = sh(tool("uv"), "pip", "freeze", "--python", venv / "bin" / "python")
    return sorted(res.stdout.splitlines())


def without_seeds(frozen: list[str]) -> list[str]:
    """A freeze without pip, setuptools and wheel: a rebuild for a newer minor may move
    them to versions that run there."""
    return [line for line in frozen if not line.startswith(("pip==", "setuptools==", "wheel=="))]


def pip_freeze(venv: Path) -> list[str]:
    """``pip freeze`` run by the venv's own pip (pip, setuptools, wheel left out)."""
    res = sh(venv / "bin" / "python", "-m", "pip", "freeze", "--disable-pip-version-check")
    return sorted(res.stdout.splitlines())


def build_wheel(project: Project, wheelhouse: Path, python: Optional[Path] = None) -> Path:
    """A real wheel of *project* (built by *python*, so an extension gets its ABI tag)."""
    wheelhouse.mkdir(parents=True, exist_ok=True)
    py = python or Path(sys.executable)
    sh(py, "-m", "pip", "wheel", "-q", "--no-deps", "--no-index", "-w", wheelhouse, project.path)
    return wheelhouse


def install_from(venv: Path, wheelhouse: Path, *specs: str) -> None:
    """Install *specs* by name (``name==1.0``) from a wheelhouse, as from an index."""
    _uv_install(venv, "--find-links", wheelhouse, *specs)


#: The venv creators of the repair tests, and the modules their venvs must import.
CREATORS = ("venv", "virtualenv", "uv")
MODULES = ("alpha", "beta._speed", "gamma", "delta")


@dataclass
class World:
    """A fake distro prefix upgraded across minors, with a venv per creator made before
    the upgrade (local, compiled, editable and wheelhouse packages): what repair fixes."""

    root: Path
    distro: FakeDistro
    venvs: dict[str, Path]
    wheelhouse: Path
    bundled: Path  # the old Python's ensurepip wheels (pip, setuptools)
    before: dict[str, list[str]]
    projects: dict[str, Project]

    def sources(self) -> list[str]:
        return [
            "--offline",
            "--find-links",
            str(self.wheelhouse),
            "--find-links",
            str(self.bundled),
        ]


def build_world(root: Path, old: str, new: str, creators: tuple[str, ...] = CREATORS) -> World:
    import pytest

    for minor in (old, new):
        require_python(minor)
        if not FakeDistro.available(minor):
            pytest.skip(f"pyenv CPython {minor} is needed for the simulated upgrade")
    if not can_hide():
        pytest.skip("needs root and unshare to hide the removed stdlib in a mount namespace")
    distro = FakeDistro(root / "usr")
    distro.install(old)
    py3 = distro.set_default(old)
    alpha = make_project(root, "alpha", script="alpha-cli")
    beta = make_project(root, "beta", ext=True)
    gamma = make_project(root / "work", "gamma")
    delta = make_project(root, "delta", "2.5")
    wheelhouse = build_wheel(delta, root / "wheelhouse")
    if "venv" in creators:  # seeded by ensurepip: its setuptools dies on 3.12+
        current = sorted((DEV_BIN.parent.parent / "wheels").glob("setuptools-*.whl"))
        if not current:
            pytest.skip("no current setuptools wheel in .dev/wheels (./dev.sh test fetches it)")
        for wheel in current:
            shutil.copy2(wheel, wheelhouse)
    venvs: dict[str, Path] = {}
    before: dict[str, list[str]] = {}
    for creator in creators:
        v = make_venv(py3, root / "envs" / creator, creator=creator, pip=creator == "venv")
        install(v, alpha, beta, installer="pip" if creator == "venv" else "uv")
        install(v, gamma, editable=True)
        install_from(v, wheelhouse, "delta==2.5")
        assert imports_ok(v, *MODULES)
        before[creator] = freeze(v)
        if (v / "bin" / "pip").exists():  # and what pip itself says, where the venv has pip
            before[f"{creator}:pip"] = pip_freeze(v)
        venvs[creator] = v
    r = pyenv_root()
    assert r is not None
    bundled = sorted((r / "versions").glob(f"{old}.*"))[-1] / "lib" / f"python{old}" / "ensurepip"
    distro.install(new)
    distro.set_default(new)
    distro.remove(old)
    projects = {"alpha": alpha, "beta": beta, "gamma": gamma, "delta": delta}
    return World(root, distro, venvs, wheelhouse, bundled / "_bundled", before, projects)


SYSTEM_PYTHON = Path("/usr/bin/python3")


def system_venv(dest: Path) -> Path:
    """A venv on the OS's Python: judged ok."""
    import pytest

    if not SYSTEM_PYTHON.exists():
        pytest.skip("no /usr/bin/python3")
    res = subprocess.run(
        [str(SYSTEM_PYTHON), "-m", "venv", "--without-pip", str(dest)],
        capture_output=True,
        timeout=120,
    )
    if res.returncode != 0:
        pytest.skip("the system python3 cannot make venvs")
    return dest


def break_venv(v: Path) -> str:
    """Point bin/python at nothing (interpreter-dangling, critical); returns the old target."""
    link = v / "bin" / "python"
    old = os.readlink(link)
    link.unlink()
    link.symlink_to("/nonexistent/python3")
    return old


def repair_venv(v: Path, target: str) -> None:
    link = v / "bin" / "python"
    link.unlink()
    link.symlink_to(target)
