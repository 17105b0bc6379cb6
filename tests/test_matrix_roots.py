"""The venv x host matrix on real hosts: the roots of four Debian releases (bullseye 3.9,
bookworm 3.11, trixie 3.13, forky 3.14 with python3.15; tests/debroot.py's ``CHAIN``, each
as the real upgrades left it) share one tree of venvs, bind-mounted at the same path in
each, as an NFS export would be. Each release makes its venvs in the tree and writes its
``venvkeeper host-profile`` there.

``venvkeeper matrix`` with the four profiles must give, for every venv and host, what
running the venv in that root gives; ``repair --sibling`` run in each root must build the
venv of that root's minor beside a shared venv, working there with the same packages.
venvkeeper runs inside the roots (tests/inroot.py), by each root's own python3.
"""

from __future__ import annotations

import contextlib
import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import debroot
import inroot
from debroot import CHAIN, MINORS, bound, chroot_run

from conftest import validate_json
from factory import build_wheel, make_project

pytestmark = pytest.mark.slow

SHARED = "/srv/shared"
PROFILES = f"{SHARED}/.profiles"
WHEELS = "/opt/wheels"
PROJECT, SCRIPT = "vkpure", "vkpure-cli"
#: The venv of this name is the one every root builds its sibling of.
SIBLING_OF = f"{SHARED}/bookworm-plain"


def _makers(release: str) -> dict[str, list[str]]:
    minor = MINORS[release]
    makers = {
        "plain": ["python3", "-m", "venv"],
        "versioned": [f"python{minor}", "-m", "venv"],
        "copies": ["python3", "-m", "venv", "--copies"],
        "virtualenv": ["python3", "-m", "virtualenv", "-q", "--no-periodic-update"],
    }
    if release == "forky":
        makers["py315"] = ["python3.15", "-m", "venv"]
    return makers


@dataclass
class Fleet:
    roots: dict[str, Path]  # release -> its root, the shared tree mounted at SHARED
    venvs: list[str]  # every venv of the tree (paths as the roots see them)
    tree: Path  # the shared tree on this host


def _item(path: str, *, freeze: bool = False) -> dict[str, Any]:
    return {
        "path": path,
        "modules": [PROJECT],
        "scripts": [[SCRIPT, f"{PROJECT} OK"]],
        "freeze": freeze,
    }


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    debroot.require_root_tools()
    base = tmp_path_factory.mktemp("fleet")
    wheels = build_wheel(make_project(base, PROJECT, "1.0", script=SCRIPT), base / "wheels")
    # the roots and the tree on a tmpfs, gone at once after; the binds released first
    with debroot.in_memory(base / "mem") as mem, contextlib.ExitStack() as mounts:
        tree = mem / "shared"
        (tree / ".profiles").mkdir(parents=True)
        roots: dict[str, Path] = {}
        venvs: list[str] = []
        for chain in CHAIN.releases():
            root = roots[chain.release] = mem / chain.release
            debroot.unpack_root(chain, root)
            inroot.install(root)
            shutil.copytree(wheels, root / WHEELS.lstrip("/"))
            mounts.enter_context(bound(tree, root, SHARED))
        for release, root in roots.items():
            pip = ["-m", "pip", "install", "-q", "--no-cache-dir", "--find-links", WHEELS]
            jobs = {
                f"{SHARED}/{release}-{maker}": [
                    [*argv, f"{SHARED}/{release}-{maker}"],
                    [f"{SHARED}/{release}-{maker}/bin/python", *pip, PROJECT],
                ]
                for maker, argv in _makers(release).items()
            }
            inroot.run_jobs(root, jobs, {"PIP_NO_INDEX": "1"})
            venvs += jobs
            argv = ["python3", "-m", "venvkeeper", "host-profile", "-o"]
            chroot_run(root, [*argv, f"{PROFILES}/{release}.json"], inroot.VK_ENV)
            profile = tree / ".profiles" / f"{release}.json"
            doc = validate_json("host-profile", profile.read_text())
            doc["hostname"] = release  # the roots share this machine's name
            profile.write_text(json.dumps(doc))
        yield Fleet(roots, venvs, tree)


def _matrix(fleet: Fleet, release: str) -> tuple[int, dict[tuple[str, str], dict[str, Any]], Any]:
    """``matrix`` of the tree with the four profiles, run in *release*'s root: (exit code,
    (venv, host) -> cell, the document)."""
    code, doc = inroot.vk(fleet.roots[release], "matrix", SHARED, "--profiles-dir", PROFILES)
    host = {g["id"]: g["hosts"][0] for g in doc["hosts"]}
    cells = {(v["path"], host[gid]): c for v in doc["venvs"] for gid, c in v["cells"].items()}
    return code, cells, doc


def _truth(fleet: Fleet, venvs: list[str]) -> dict[tuple[str, str], dict[str, Any]]:
    """(venv, host) -> what running the venv in that host's root gives."""
    out = {}
    for release, root in fleet.roots.items():
        for path, r in inroot.probe(root, [_item(p) for p in venvs]).items():
            out[(path, release)] = r
    return out


def _compare(
    cells: dict[tuple[str, str], dict[str, Any]], truth: dict[tuple[str, str], dict[str, Any]]
) -> list[str]:
    wrong = []
    for (path, host), t in sorted(truth.items()):
        cell = cells.get((path, host))
        if cell is None:
            wrong.append(f"{path} on {host}: no cell")
        elif (cell["state"] == "works") != t["runs"]:
            why = "; ".join(t["why"])[:300]
            wrong.append(
                f"{path} on {host}: matrix says {cell['state']} ({cell['effect']}, "
                f"{cell['code']}), running it: works={t['runs']} {why}"
            )
    return wrong


def test_every_cell_is_what_running_the_venv_in_that_root_gives(fleet: Fleet) -> None:
    code, cells, doc = _matrix(fleet, "forky")
    assert code == 2, doc  # some venv breaks on some host
    assert {g["hosts"][0]: g["python3"] for g in doc["hosts"]} == MINORS, doc["hosts"]
    assert sorted(v["path"] for v in doc["venvs"]) == sorted(fleet.venvs)
    truth = _truth(fleet, fleet.venvs)
    table = [
        f"{path} on {host}: {cells[(path, host)]['word']} / runs={truth[(path, host)]['runs']}"
        for path, host in sorted(truth)
    ]
    print("\n".join(table))
    assert not _compare(cells, truth), "\n".join(_compare(cells, truth))
    # each venv works on the root that made it, on no root of another minor
    for path in fleet.venvs:
        release = path.rsplit("/", 1)[1].split("-")[0]
        works = {h for (p, h), t in truth.items() if p == path and t["runs"]}
        assert release in works, (path, works)
    # the root that runs matrix (its python3, its packaging) does not change a cell
    _, from_bullseye, _ = _matrix(fleet, "bullseye")
    assert from_bullseye == cells


def test_sibling_repair_in_each_root_builds_its_minors_venv(fleet: Fleet) -> None:
    """In each root, ``repair --sibling`` of bookworm's plain venv builds ``-py3.X`` for
    that root's python3, with the same packages, working there; the matrix then finds the
    layout in place, each sibling working on its root and ``-`` on the others (which
    running it there confirms: it does not work there)."""
    original = inroot.probe(fleet.roots["bookworm"], [_item(SIBLING_OF, freeze=True)])
    frozen = original[SIBLING_OF]["freeze"]
    assert original[SIBLING_OF]["runs"] and frozen == [f"{PROJECT}==1.0"], original
    before = (fleet.tree / "bookworm-plain" / "pyvenv.cfg").read_bytes()
    siblings = []
    for release, root in fleet.roots.items():
        sibling = f"{SIBLING_OF}-py{MINORS[release]}"
        code, doc = inroot.vk(
            root, "repair", "--sibling", "--offline", "--find-links", WHEELS, SIBLING_OF
        )
        (result,) = doc["results"]
        assert code == 0 and result["outcome"] == "repaired", (release, result)
        assert result["path"] == sibling, (release, result)
        got = inroot.probe(root, [_item(sibling, freeze=True)])[sibling]
        assert got["runs"] and got["freeze"] == frozen, (release, got)
        siblings.append(sibling)
    assert (fleet.tree / "bookworm-plain" / "pyvenv.cfg").read_bytes() == before
    _, cells, doc = _matrix(fleet, "trixie")
    row = next(v for v in doc["venvs"] if v["path"] == SIBLING_OF)
    assert row["layout"]["in_place"] is True, row["layout"]
    assert sorted(s["path"] for s in row["layout"]["siblings"]) == sorted(siblings)
    truth = _truth(fleet, siblings)
    assert not _compare(cells, truth), "\n".join(_compare(cells, truth))
    for sibling, release in zip(siblings, fleet.roots):
        words = {h: cells[(sibling, h)]["state"] for h in fleet.roots}
        assert words.pop(release) == "works", (sibling, words)
        assert set(words.values()) == {"other-minor"}, (sibling, words)
