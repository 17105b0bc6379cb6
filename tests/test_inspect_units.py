"""Pure helpers of static inspection, on hand-written and generated inputs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from venvkeeper.host.bases import classify_origin
from venvkeeper.model.venv import BaseOrigin, Creator, DirectUrlKind, VenvKind
from venvkeeper.scan.cfg import parse_pyvenv_cfg
from venvkeeper.scan.creators import detect_creator
from venvkeeper.scan.dists import _direct_url, _extension, _header_fields, _parse_record
from venvkeeper.scan.inspect import _parse_shebang, recorded_destination


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        (b"#!/srv/v/bin/python\n# -*- coding: utf-8 -*-\n", ("/srv/v/bin/python", False)),
        (b"#!/srv/v/bin/python3 -E\n", ("/srv/v/bin/python3", False)),
        (b"#!/usr/bin/env python3\n", (None, False)),
        (
            b"#!/bin/sh\n'''exec' \"/very/long/path/bin/python\" \"$0\" \"$@\"\n' '''\n",
            ("/very/long/path/bin/python", False),
        ),
        (
            b'#!/bin/sh\n\'\'\'exec\' "$(dirname -- "$(realpath -- "$0")")"/\'python\' "$0" "$@"\n',
            (None, True),
        ),
        (b"#!/bin/sh\necho hi\n", (None, False)),
        (b"\x7fELF\x02\x01", (None, False)),
        (b"#!\n", (None, False)),
    ],
)
def test_shebangs(head: bytes, expected: tuple[object, bool]) -> None:
    assert _parse_shebang(head) == expected


@given(st.binary(max_size=600))
def test_shebang_parser_never_raises(data: bytes) -> None:
    interp, _relative = _parse_shebang(data)
    assert interp is None or isinstance(interp, str)


@pytest.mark.parametrize(
    ("command", "dest"),
    [
        ("/usr/bin/python3 -m venv /srv/app/venv", "/srv/app/venv"),
        ("/usr/bin/python3 -m venv --copies --prompt x /srv/a", "/srv/a"),
        ("/root/.pyenv/versions/3.11.7/bin/python3 -m virtualenv /tmp/vt/ve", "/tmp/vt/ve"),
        ("/usr/bin/python3 -m venv relative/dir", None),
        ("python3 -m venv '/path with spaces/v'", "/path with spaces/v"),
        ("unbalanced 'quote /x", "/x"),
    ],
)
def test_recorded_destination(command: str, dest: str | None) -> None:
    cfg = parse_pyvenv_cfg(f"home = /usr/bin\ncommand = {command}\n")
    assert recorded_destination(cfg) == dest


@pytest.mark.parametrize(
    ("path", "cfg", "creator"),
    [
        ("/home/a/.local/share/pipx/venvs/black", "home = /usr/bin\n", Creator.PIPX),
        ("/home/a/.local/pipx/venvs/black", "home = /usr/bin\nuv = 0.4\n", Creator.PIPX),
        ("/home/a/.cache/pypoetry/virtualenvs/p-x-py3.11", "virtualenv = 20\n", Creator.POETRY),
        ("/srv/p/.tox/py311", "virtualenv = 20\n", Creator.TOX),
        ("/srv/p/.nox/tests", "home = /usr/bin\n", Creator.NOX),
        ("/home/a/.local/share/hatch/env/virtual/p/x", "home = /usr/bin\n", Creator.HATCH),
        ("/home/a/.local/share/pdm/venvs/p-x", "home = /usr/bin\n", Creator.PDM),
        (
            "/home/a/.pyenv/versions/3.11.7/envs/tools",
            "home = /x\nversion = 3.11.7\n",
            Creator.PYENV_VIRTUALENV,
        ),
        ("/srv/v", "home = /usr/bin\nuv = 0.4.1\nversion_info = 3.12\n", Creator.UV),
        ("/srv/v", "home = /usr/bin\nvirtualenv = 20.25.0\n", Creator.VIRTUALENV),
        ("/srv/v", "home = /usr/bin\nversion = 3.10.12\n", Creator.VENV),
        ("/srv/v", "home = /usr/bin\ncommand = /usr/bin/python3 -m venv /srv/v\n", Creator.VENV),
        ("/srv/v", "home = /usr/bin\n", Creator.UNKNOWN),
    ],
)
def test_creators(path: str, cfg: str, creator: Creator) -> None:
    assert detect_creator(path, VenvKind.VENV, parse_pyvenv_cfg(cfg)) is creator


@pytest.mark.parametrize(
    ("exe", "origin"),
    [
        ("/usr/bin/python3.11", BaseOrigin.SYSTEM),
        ("/usr/local/bin/python3.12", BaseOrigin.LOCAL),
        ("/opt/python/3.12/bin/python3.12", BaseOrigin.LOCAL),
        ("/root/.pyenv/versions/3.11.7/bin/python3.11", BaseOrigin.PYENV),
        (
            "/home/a/.local/share/uv/python/cpython-3.12.1-linux-x86_64-gnu/bin/python3.12",
            BaseOrigin.UV,
        ),
        (
            "/home/linuxbrew/.linuxbrew/Cellar/python@3.12/3.12.1_1/bin/python3.12",
            BaseOrigin.HOMEBREW,
        ),
        ("/opt/miniconda3/bin/python3.11", BaseOrigin.CONDA),
        ("/srv/v/bin/python3.11", BaseOrigin.VENV_COPY),
        ("/nix/store/abc-python3-3.11.7/bin/python3.11", BaseOrigin.OTHER),
    ],
)
def test_origins(exe: str, origin: BaseOrigin) -> None:
    assert classify_origin(exe, "/srv/v") is origin


def test_extension_tags() -> None:
    assert _extension("a/_x.cpython-310-x86_64-linux-gnu.so").python_version == "3.10"
    assert _extension("a/_x.cpython-313t-x86_64-linux-gnu.so").python_version == "3.13t"
    assert _extension("a/_x.abi3.so").abi_tag == "abi3"
    untagged = _extension("a/_x.so")
    assert untagged.abi_tag is None and untagged.python_version is None


def test_record_parsing() -> None:
    rec = (
        "pkg/__init__.py,sha256=x,1\n"
        "pkg/_speed.cpython-311-x86_64-linux-gnu.so,sha256=x,2\n"
        "_top.cpython-311-x86_64-linux-gnu.so,,\n"
        "single.py,,\n"
        "hook.pth,,\n"
        "../../../bin/tool,,\n"
        "pkg-1.0.dist-info/RECORD,,\n"
        '"quoted,name.py",,\n'
        '"odd,dir/_q.cpython-311-x86_64-linux-gnu.so",sha256=x,3\n'
    )
    exts, pths, top = _parse_record(rec)
    assert exts == [
        "pkg/_speed.cpython-311-x86_64-linux-gnu.so",
        "_top.cpython-311-x86_64-linux-gnu.so",
        "odd,dir/_q.cpython-311-x86_64-linux-gnu.so",
    ]
    assert pths == ["hook.pth"]
    assert top == ["pkg", "_top", "single"]


@pytest.mark.parametrize(
    ("doc", "kind"),
    [
        ({"url": "file:///src/p", "dir_info": {"editable": True}}, DirectUrlKind.EDITABLE),
        ({"url": "file:///src/p", "dir_info": {}}, DirectUrlKind.DIRECTORY),
        ({"url": "https://x/p.whl", "archive_info": {"hashes": {}}}, DirectUrlKind.ARCHIVE),
        (
            {"url": "https://g/r.git", "vcs_info": {"vcs": "git", "commit_id": "ab"}},
            DirectUrlKind.VCS,
        ),
        ({"url": 3}, DirectUrlKind.INVALID),
        ([], DirectUrlKind.INVALID),
    ],
)
def test_direct_url_kinds(doc: object, kind: DirectUrlKind) -> None:
    assert _direct_url(json.dumps(doc))[0] is kind


def test_direct_url_details() -> None:
    vcs = _direct_url(
        json.dumps({"url": "git+https://g/r.git", "vcs_info": {"vcs": "git", "commit_id": "ab1"}})
    )
    assert (vcs.vcs, vcs.commit, vcs.local, vcs.problem) == ("git", "ab1", None, None)
    local = _direct_url(
        json.dumps({"url": "file:///src/my%20proj", "dir_info": {"editable": True}})
    )
    assert local[4] == "/src/my proj"


@given(st.text(max_size=2000))
def test_direct_url_never_raises(text: str) -> None:
    kind = _direct_url(text)[0]
    assert isinstance(kind, DirectUrlKind)


@given(st.text(max_size=3000))
def test_metadata_header_never_raises(text: str) -> None:
    fields = _header_fields(text)
    assert set(fields) == {"name", "version", "requires-python"}


def test_metadata_header_stops_at_body() -> None:
    text = "Metadata-Version: 2.1\nName: a\nVersion: 1\n\nName: not-this\n"
    assert _header_fields(text) == {"name": "a", "version": "1", "requires-python": ""}


def test_link_chain_resolves_dotdot_against_the_real_parent(tmp_path: Path) -> None:
    import os
    import sys

    from venvkeeper.host.bases import resolve_chain

    real = tmp_path / "real" / "deep"
    real.mkdir(parents=True)
    (tmp_path / "real" / "py").symlink_to(os.path.realpath(sys.executable))
    (tmp_path / "alias").symlink_to(real)  # alias/.. is tmp_path/real, not tmp_path
    v = tmp_path / "v"
    (v / "bin").mkdir(parents=True)
    (v / "bin" / "python").symlink_to(tmp_path / "alias" / ".." / "py")
    assert os.path.exists(v / "bin" / "python")  # the kernel agrees it works
    chain = resolve_chain(str(v), "python")
    assert chain.resolved == os.path.realpath(sys.executable)


def _fake_dist(site: Path, name: str) -> None:
    di = site / f"{name}-1.0.dist-info"
    di.mkdir(parents=True)
    (di / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
    (di / "WHEEL").write_text("Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n")


def test_free_threaded_layout_is_its_own_version(tmp_path: Path) -> None:
    """CPython 3.13t keeps its stdlib and packages in lib/python3.13t: another ABI."""
    from venvkeeper.checks.registry import run_checks
    from venvkeeper.scan.inspect import inspect_venv

    prefix = tmp_path / "opt"
    (prefix / "bin").mkdir(parents=True)
    (prefix / "bin" / "python3.13t").write_bytes(b"\x7fELF")
    (prefix / "bin" / "python3.13t").chmod(0o755)  # an interpreter is executable
    (prefix / "lib" / "python3.13t").mkdir(parents=True)
    (prefix / "lib" / "python3.13t" / "os.py").write_text("")
    v = tmp_path / "v"
    (v / "bin").mkdir(parents=True)
    (v / "bin" / "python").symlink_to(prefix / "bin" / "python3.13t")
    (v / "pyvenv.cfg").write_text(f"home = {prefix}/bin\nversion_info = 3.13.0\n")
    _fake_dist(v / "lib" / "python3.13t" / "site-packages", "ok")
    facts = inspect_venv(str(v))
    assert facts.base is not None and facts.base.version == "3.13t" and facts.base.stdlib_present
    assert [f.code for f in run_checks(facts)] == []
    _fake_dist(v / "lib" / "python3.13" / "site-packages", "stranded")
    codes = [f.code for f in run_checks(inspect_venv(str(v)))]
    assert codes == ["half-upgraded"]
