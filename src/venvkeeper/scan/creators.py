"""Which tool made a venv and which tool manages it (venv, virtualenv, uv, pipx, pipenv,
poetry, conda, tox, nox...), from marks the tools leave, never by running them.
"""

from __future__ import annotations

import os
import re
from typing import Optional

from venvkeeper.host import fsutil
from venvkeeper.host.hostfs import REAL, HostFS
from venvkeeper.model.venv import (
    Creator,
    PyvenvCfg,
    ToolMarks,
    VenvKind,
)

#: A distribution name as PEP 508 allows it: what may stand in a tool's command line.
_DIST_NAME = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9._-]{0,198}[A-Za-z0-9])?$")


_PIPX_SUFFIX = re.compile(r"^[A-Za-z0-9@._+-]{0,64}$")


PIPX_METADATA = "pipx_metadata.json"


_PIPX_METADATA_LIMIT = 1 << 20


_MAX_PIPX_SIBLINGS = 64


def pipx_app(venv: str) -> Optional[str]:
    """The name pipx knows the venv by (its app's package, plus the ``--suffix`` it was
    installed with), from ``pipx_metadata.json`` in the venv root; None when the file is
    absent or is not pipx metadata (unreadable, not JSON, another shape, a name that is not
    a distribution name)."""
    try:
        doc = fsutil.load_json_file(f"{venv}/{PIPX_METADATA}", limit_bytes=_PIPX_METADATA_LIMIT)
    except (OSError, ValueError):
        return None
    main = doc.get("main_package") if isinstance(doc, dict) else None
    package = main.get("package") if isinstance(main, dict) else None
    if not isinstance(package, str) or not _DIST_NAME.match(package):
        return None
    suffix = main.get("suffix", "") if isinstance(main, dict) else ""
    if not isinstance(suffix, str) or not _PIPX_SUFFIX.match(suffix):
        suffix = ""
    return package + suffix


def _is_pipx_shared(venv: str, fs: HostFS = REAL) -> bool:
    """pipx's shared libraries venv: PIPX_HOME/shared, beside PIPX_HOME/venvs holding pipx
    venvs (a few of them are looked at, outside the venv: through *fs*)."""
    if os.path.basename(venv) != "shared":
        return False
    venvs = os.path.join(os.path.dirname(venv), "venvs")
    for i, name in enumerate(sorted(fs.listdir(venvs))):
        if i >= _MAX_PIPX_SIBLINGS:
            break
        if fs.read_head(f"{venvs}/{name}/{PIPX_METADATA}", 1) is not None:
            return True
    return False


def detect_creator(path: str, kind: VenvKind, cfg: Optional[PyvenvCfg]) -> Creator:
    """The creator of the venv at *path* (see :func:`detect_owner`)."""
    return detect_owner(path, kind, cfg)[0]


def detect_owner(
    path: str, kind: VenvKind, cfg: Optional[PyvenvCfg], fs: HostFS = REAL
) -> tuple[Creator, ToolMarks]:
    """Who made the venv at *path*, and what its owning tool recorded there: first the
    marker files a tool writes into the venv (pipx's ``pipx_metadata.json``), wherever the
    venv lives; then the tools' own directories; then ``pyvenv.cfg``. What lies outside
    the venv (a project's ``Pipfile`` or ``pyproject.toml``, pipx's other venvs) is asked
    of *fs*, the host seam."""
    if kind is VenvKind.LEGACY_VIRTUALENV:
        return Creator.LEGACY_VIRTUALENV, ToolMarks()
    if kind is VenvKind.CONDA:
        return Creator.CONDA, ToolMarks()
    app = pipx_app(path)
    if app is not None:
        return Creator.PIPX, ToolMarks(package=app)
    project = pipenv_project(path, fs)
    if project is not None:
        return Creator.PIPENV, ToolMarks(project=project)
    p = path + "/"
    if "/pipx/shared/" in p or _is_pipx_shared(path, fs):
        return Creator.PIPX, ToolMarks(shared_libs=True)
    creator = _creator_by_place(p, cfg)
    if creator in (Creator.VENV, Creator.VIRTUALENV, Creator.UNKNOWN) and is_poetry_in_project(
        path, fs
    ):
        # uv records itself in pyvenv.cfg: a .venv that uv made is uv's project venv
        return Creator.POETRY, ToolMarks(project=os.path.dirname(path))
    return creator, ToolMarks()


#: pipenv names its venvs NAME-HASH: eight characters of urlsafe base64 of a sha256.
_PIPENV_NAME = re.compile(r"^.+-[A-Za-z0-9_-]{8}$")


_POETRY_TABLE = re.compile(r"^[ \t]*\[tool\.poetry[\].]", re.MULTILINE)


def pipenv_project(venv: str, fs: HostFS = REAL) -> Optional[str]:
    """The project directory of a pipenv venv, named by the ``.project`` file pipenv
    writes into the venv root; None when there is none, or it names no absolute path, or
    nothing else says pipenv (virtualenvwrapper writes ``.project`` files too): a
    ``Pipfile`` in that directory, or pipenv's NAME-HASH name for the venv."""
    head = fsutil.read_head(f"{venv}/.project", 4096)
    if not head:
        return None
    text = head.decode("utf-8", "surrogateescape").strip()
    if not text.startswith("/") or any(c in text for c in "\n\r\0"):
        return None
    project = os.path.normpath(text)
    if fs.read_head(f"{project}/Pipfile", 1) is None and not _PIPENV_NAME.match(
        os.path.basename(venv)
    ):
        return None
    return project


def is_poetry_in_project(venv: str, fs: HostFS = REAL) -> bool:
    """Whether *venv* is a poetry project's in-project ``.venv``: beside a ``poetry.toml``
    or a ``pyproject.toml`` with a ``[tool.poetry]`` table."""
    if os.path.basename(venv) != ".venv":
        return False
    project = os.path.dirname(venv)
    if fs.read_head(f"{project}/poetry.toml", 1) is not None:
        return True
    head = fs.read_head(f"{project}/pyproject.toml", 1 << 20)
    return bool(head and _POETRY_TABLE.search(head.decode("utf-8", "surrogateescape")))


def _creator_by_place(p: str, cfg: Optional[PyvenvCfg]) -> Creator:
    if "/pipx/venvs/" in p:
        return Creator.PIPX
    if "/pypoetry/virtualenvs/" in p or "/poetry/virtualenvs/" in p:
        return Creator.POETRY
    if "/.tox/" in p:
        return Creator.TOX
    if "/.nox/" in p:
        return Creator.NOX
    if "/hatch/env/" in p:
        return Creator.HATCH
    if "/pdm/venvs/" in p or "/.pdm-build/" in p:
        return Creator.PDM
    if re.search(r"/\.pyenv/versions/[^/]+/envs/", p) or (
        re.search(r"/\.pyenv/versions/[^/]+/$", p)
    ):
        return Creator.PYENV_VIRTUALENV
    if cfg is None:
        return Creator.UNKNOWN
    if cfg.get("uv"):
        return Creator.UV
    if cfg.get("virtualenv"):
        return Creator.VIRTUALENV
    command = cfg.get("command") or ""
    if "-m venv" in command or (
        cfg.get("home") and cfg.get("version") and not cfg.get("implementation")
    ):
        return Creator.VENV
    return Creator.UNKNOWN


#: ``conda-meta/python-X.Y.Z-BUILD.json``: conda's record of its Python package. The
#: version may carry a pre-release (``3.13.0rc2``); a free-threaded build's string ends in
#: ``_cp313t``. Not ``python_abi-3.12-4_cp312.json`` nor ``python-dateutil-...``.
_CONDA_PYTHON = re.compile(r"^python-(\d+)\.(\d+)\.(\d+)((?:a|b|rc)\d+)?-([^-]+)\.json$")


def conda_python(prefix: str) -> Optional[str]:
    """The Python of a conda prefix, X.Y.Z (X.Y.Zt for a free-threaded build), from the
    name of its ``conda-meta/python-X.Y.Z-BUILD.json`` record: what conda installed, read
    without running anything. Never from the names in ``bin/``: conda's 3.10 prefixes carry
    a ``python3.1`` link. When several records are there (a half-done update), the newest
    version wins. None: no Python in that prefix."""
    found: list[tuple[tuple[int, int, int], str]] = []
    for e in fsutil.listdir(f"{prefix}/conda-meta"):
        m = _CONDA_PYTHON.match(e.name)
        if m:
            free = "t" if re.search(r"_cp\d+t$", m.group(5)) else ""
            key = (int(m.group(1)), int(m.group(2)), int(m.group(3)))
            found.append((key, f"{m.group(1)}.{m.group(2)}.{m.group(3)}{free}"))
    return max(found)[1] if found else None
