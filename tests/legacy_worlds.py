"""Venvs as old releases left them, made for real: Debian bullseye's ``python3 -m venv``
(its ensurepip and pip wheel), and legacy editable installs by pip 20.3.

- :func:`bullseye_distro`: a prefix laid out like bullseye's ``/usr`` for venvs: pyenv's
  CPython 3.9 (as :class:`factory.FakeDistro` installs it), with bullseye's own
  ``ensurepip`` (package python3.9-venv) and ``distutils`` (python3-distutils: Debian's
  setuptools needs its ``install_layout``) in its stdlib and bullseye's
  ``/usr/share/python-wheels`` (package python-pip-whl: pip 20.3.4 debundled, setuptools
  44.1.1 and the ``pkg_resources-0.0.0`` wheel). Both come from Debian's archive.
- :func:`bullseye_venv`: ``python3 -m venv`` there. Debian's ensurepip reads the wheels from
  ``/usr/share/python-wheels`` by that absolute path: the venv is made in a private mount
  namespace where the prefix's wheels are bound over the host's directory (the host's is
  not touched). Everything else is Debian's code, run as it ran on bullseye.
- :func:`legacy_project`: a ``setup.py`` project (no ``pyproject.toml``): pip before 21.3
  installs it editable with ``setup.py develop``, leaving an ``.egg-link``, an
  ``easy-install.pth`` line and an ``.egg-info`` in the source.
- :func:`pip20_venv`: a venv of an older pyenv Python whose pip is pip 20.3.4 from PyPI
  (downloaded once into the suite's cache).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from debfiles import debian_files

from conftest import pyenv_root
from factory import FakeDistro, cache_dir, can_hide, clean_env, sh

BULLSEYE_PACKAGES = ("python-pip-whl", "python3.9-venv", "python3-distutils")
PIP20 = "pip==20.3.4"


def bullseye_distro(root: Path) -> FakeDistro:
    """A :class:`FakeDistro` at *root* with CPython 3.9 laid out as bullseye has it for
    venvs (see the module's docstring); ``python3`` is 3.9."""
    if not FakeDistro.available("3.9"):
        pytest.skip("pyenv CPython 3.9 is needed for a bullseye-like Python")
    if not can_hide():
        pytest.skip("needs root and unshare for a private mount namespace")
    debs = debian_files("bullseye", BULLSEYE_PACKAGES)
    distro = FakeDistro(root)
    distro.install("3.9")
    distro.set_default("3.9")
    lib = root / "lib" / "python3.9"
    stdlib = Path(os.readlink(lib))
    lib.unlink()  # entry by entry, with Debian's ensurepip in place of CPython's
    lib.mkdir()
    for entry in sorted(stdlib.iterdir()):
        if entry.name in ("ensurepip", "distutils", "site-packages"):
            continue
        (lib / entry.name).symlink_to(entry)
    (lib / "site-packages").mkdir()
    shutil.copytree(debs / "usr/lib/python3.9/ensurepip", lib / "ensurepip")
    # Debian's distutils (its setuptools needs its install_layout), over CPython's: Debian
    # ships distutils/__init__.py in another package (libpython3.9-stdlib).
    shutil.copytree(stdlib / "distutils", lib / "distutils", ignore=shutil.ignore_patterns("tests"))
    shutil.copytree(debs / "usr/lib/python3.9/distutils", lib / "distutils", dirs_exist_ok=True)
    # ... which asks for the build's data by Debian's name for it (no platform part).
    for data in stdlib.glob("_sysconfigdata_*linux*.py"):
        debian_name = data.name.replace("__linux_", "__", 1)
        if not (lib / debian_name).exists():
            (lib / debian_name).symlink_to(data)
    (root / "share").mkdir(exist_ok=True)
    shutil.copytree(debs / "usr/share/python-wheels", root / "share" / "python-wheels")
    return distro


def remove_bullseye_python(distro: FakeDistro) -> None:
    """3.9 removed from a :func:`bullseye_distro` as its packages would be."""
    distro.remove("3.9")
    shutil.rmtree(distro.root / "lib" / "python3.9", ignore_errors=True)


def bullseye_venv(distro: FakeDistro, dest: Path) -> Path:
    """``python3 -m venv DEST`` with the bullseye Python of *distro*: pip, setuptools and
    the pkg_resources placeholder seeded by Debian's ensurepip from Debian's wheels."""
    host_wheels = Path("/usr/share/python-wheels")
    if not host_wheels.is_dir():
        pytest.skip("no /usr/share/python-wheels on this host to bind bullseye's over")
    script = 'mount --bind "$1" "$2" && shift 2 && exec "$@"'
    argv = ["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh"]
    argv += [str(distro.root / "share" / "python-wheels"), str(host_wheels)]
    argv += [str(distro.root / "bin" / "python3"), "-m", "venv", str(dest)]
    res = subprocess.run(argv, capture_output=True, text=True, timeout=300, env=clean_env())
    if res.returncode != 0:
        raise RuntimeError(f"bullseye venv failed:\n{res.stdout}\n{res.stderr}")
    return dest


def legacy_project(root: Path, name: str, version: str = "1.0") -> Path:
    """A setup.py project with a package and a console script ``NAME-cli``."""
    module = name.replace("-", "_")
    proj = root / f"src-{name}"
    (proj / module).mkdir(parents=True)
    (proj / module / "__init__.py").write_text(
        f'VALUE = "{name}-{version}"\n\ndef main():\n    print("{name} OK")\n'
    )
    (proj / "setup.py").write_text(
        "from setuptools import setup\n"
        f"setup(name={name!r}, version={version!r}, packages=[{module!r}],\n"
        f"      entry_points={{'console_scripts': ['{name}-cli={module}:main']}})\n"
    )
    return proj


def pip_install_editable(venv: Path, project: Path) -> None:
    """``pip install -e PROJECT`` with the venv's own (old) pip, offline."""
    sh(
        venv / "bin" / "python",
        "-m",
        "pip",
        "install",
        "-q",
        "--no-index",
        "--no-build-isolation",
        "-e",
        project,
        timeout=300,
    )


def pip_install(venv: Path, wheels: Path, *specs: str) -> None:
    """*specs* installed by the venv's own (old) pip from a wheelhouse, offline."""
    py = venv / "bin" / "python"
    sh(py, "-m", "pip", "install", "-q", "--no-index", "--find-links", wheels, *specs, timeout=300)


def pip20_wheels() -> Path:
    """pip 20.3.4's wheel from PyPI, downloaded once into the suite's cache."""
    d = cache_dir("pip-20.3.4")
    if not list(d.glob("pip-20.3.4-*.whl")):
        import sys

        res = subprocess.run(
            [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "-d", str(d), PIP20],
            capture_output=True,
            text=True,
            timeout=300,
        )
        if res.returncode != 0:
            pytest.skip(f"{PIP20} could not be downloaded from PyPI: {res.stderr.strip()[-300:]}")
    return d


def pip20_venv(minor: str, dest: Path) -> Path:
    """A venv of pyenv's CPython *minor* (its ensurepip's pip and setuptools), its pip
    then replaced by pip 20.3.4 from PyPI."""
    r = pyenv_root()
    found = sorted((r / "versions").glob(f"{minor}.*/bin/python{minor}")) if r else []
    if not found:
        pytest.skip(f"pyenv CPython {minor} is needed")
    wheels = pip20_wheels()
    sh(found[-1], "-m", "venv", dest)
    pip_install(dest, wheels, PIP20)
    return dest
