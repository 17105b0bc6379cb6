"""The venv x host matrix on a real shared tree, every cell checked against running the
venv on that host; ``repair --sibling`` building the venv of this host's minor beside a
shared one.

Two hosts share one tree: the same prefix ``ROOT/usr`` is host A (``python3`` -> 3.11) or
host B (``python3`` -> 3.12, 3.11 gone), switched as a distro upgrade does (FakeDistro;
the removed minor's pyenv stdlib is hidden from ground-truth runs in a mount namespace).
Each host's profile is written by ``venvkeeper host-profile`` in its state. A third
profile lacks what a verdict needs (its python3's version): its cells are unknown."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

from venvkeeper.formats.envelope import SCHEMA_VERSION

from conftest import pyenv_root, require_python, run_cli, validate_json
from factory import (
    FakeDistro,
    build_wheel,
    can_hide,
    freeze,
    imports_ok,
    install,
    install_from,
    make_project,
    make_venv,
    tree_hash,
)

pytestmark = pytest.mark.slow

A, B = "3.10", "3.12"  # the python3 minor of host A and of host B

#: What each venv must import: its packages (beta has a compiled extension).
MODULES = {
    "a-py3": ("alpha", "beta._speed", "delta"),
    "a-versioned": ("alpha", "beta._speed"),
    "a-copies": ("alpha",),
    "b-py3": ("alpha", "delta"),
    "shared": ("alpha",),
}

#: How each venv breaks on the host it was not made on (None: works on both).
EXPECTED = {
    ("a-py3", "B"): "breaks-silently",
    ("a-versioned", "B"): "breaks-loudly",
    ("a-copies", "B"): "loses-stdlib",
    ("b-py3", "A"): "breaks-silently",
}


class Hosts:
    """The one prefix as host A or host B."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.distro = FakeDistro(root / "usr")
        self.state = ""

    def become(self, which: str) -> None:
        if which == self.state:
            return
        minor, other = (A, B) if which == "A" else (B, A)
        self.distro.install(minor)
        self.distro.set_default(minor)
        self.distro.hidden = []
        if (self.root / "usr" / "bin" / f"python{other}").exists():
            self.distro.remove(other)
        else:  # never installed here: still hidden from runs, as on a host without it
            r = pyenv_root()
            assert r is not None
            src = sorted((r / "versions").glob(f"{other}.*"))[-1]
            self.distro.hidden.append(src / "lib" / f"python{other}")
        self.state = which

    def profile(self, dest: Path, hostname: str) -> Path:
        res = run_cli("host-profile", "--search", str(self.root / "usr" / "bin"), "-o", str(dest))
        assert res.code == 0, res.err
        doc = json.loads(dest.read_text())
        doc["hostname"] = hostname
        dest.write_text(json.dumps(doc))
        return dest

    def works(self, venv: Path, *modules: str) -> bool:
        return imports_ok(venv, *modules, hide=self.distro.hidden)


@dataclass
class Shared:
    root: Path
    hosts: Hosts
    envs: Path
    made: dict[str, Path]
    profiles: dict[str, Path]  # "A", "B", "C" (C: unknown python3)
    wheelhouse: Path
    frozen: dict[str, list[str]]  # each venv's packages, as its own host sees them


def _unknown_profile(b: Path, dest: Path) -> Path:
    """Host C: B's release, profiled by a user who could not read the stdlib of its
    python3 (``stdlib_present`` null, as host-profile writes it then)."""
    doc = json.loads(b.read_text())
    doc["hostname"] = "old1"
    for i in doc["interpreters"]:
        i.update(stdlib_present=None, prefix=None, patch_version=None)
    dest.write_text(json.dumps(doc))
    return dest


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Shared:
    for minor in (A, B, "3.13"):
        require_python(minor)
        if minor != "3.13" and not FakeDistro.available(minor):
            pytest.skip(f"pyenv CPython {minor} is needed to simulate the hosts")
    if not can_hide():
        pytest.skip("needs root and unshare to hide a removed stdlib in a mount namespace")
    root = tmp_path_factory.mktemp("matrix")
    hosts = Hosts(root)
    alpha = make_project(root, "alpha", script="alpha-cli")
    beta = make_project(root, "beta", ext=True)
    delta = make_project(root, "delta", "2.5")
    wheelhouse = build_wheel(delta, root / "wheelhouse")
    envs = root / "envs"
    usr = root / "usr" / "bin"
    made: dict[str, Path] = {}
    frozen: dict[str, list[str]] = {}
    hosts.become("A")
    made["a-py3"] = make_venv(usr / "python3", envs / "a-py3")
    install(made["a-py3"], alpha, beta)
    install_from(made["a-py3"], wheelhouse, "delta==2.5")
    made["a-versioned"] = make_venv(usr / f"python{A}", envs / "a-versioned")
    install(made["a-versioned"], alpha, beta)
    made["a-copies"] = make_venv(usr / f"python{A}", envs / "a-copies", copies=True)
    install(made["a-copies"], alpha)
    made["shared"] = make_venv(require_python("3.13"), envs / "shared")  # outside the prefix
    install(made["shared"], alpha)
    for name in ("a-py3", "a-versioned", "a-copies", "shared"):
        frozen[name] = freeze(made[name])
    profiles = {"A": hosts.profile(root / "web1.json", "web1")}
    hosts.become("B")
    made["b-py3"] = make_venv(usr / "python3", envs / "b-py3", creator="uv")
    install(made["b-py3"], alpha)
    install_from(made["b-py3"], wheelhouse, "delta==2.5")
    frozen["b-py3"] = freeze(made["b-py3"])
    profiles["B"] = hosts.profile(root / "web2.json", "web2")
    profiles["C"] = _unknown_profile(profiles["B"], root / "old1.json")
    return Shared(root, hosts, envs, made, profiles, wheelhouse, frozen)


def _matrix(s: Shared, *extra: str, hosts: tuple[str, ...] = ("A", "B", "C")) -> dict:
    args = [a for h in hosts for a in ("--host-profile", str(s.profiles[h]))]
    res = run_cli("matrix", "--json", str(s.envs), *args, *extra)
    assert res.code in (0, 1, 2), res.err
    return validate_json("matrix", res.out)


def _cells(doc: dict) -> dict[tuple[str, str], dict]:
    """(venv name, host) -> cell, the host named A, B or C by its group's hostname."""
    name_of = {
        g["id"]: {"web1": "A", "web2": "B", "old1": "C"}[g["hosts"][0]] for g in doc["hosts"]
    }
    return {
        (Path(v["path"]).name, name_of[gid]): c
        for v in doc["venvs"]
        for gid, c in v["cells"].items()
    }


def test_every_cell_is_what_running_the_venv_on_that_host_does(shared: Shared) -> None:
    doc = _matrix(shared)
    cells = _cells(doc)
    for which in ("A", "B"):
        shared.hosts.become(which)
        for name, venv in shared.made.items():
            cell = cells[(name, which)]
            truth = shared.hosts.works(venv, *MODULES[name])
            assert (cell["state"] == "works") == truth, (name, which, cell)
            expected = EXPECTED.get((name, which))
            if expected is None:  # works; a copied interpreter works with a warning
                assert cell["effect"] in ("survives", "degrades"), (name, which, cell)
            else:
                assert cell["effect"] == expected, (name, which, cell)
    # what the scanning host is at the time does not change a cell: only the profiles do
    shared.hosts.become("A")
    assert _cells(_matrix(shared)) == cells


def test_a_profile_that_cannot_tell_gives_unknown_cells_and_exit_1(shared: Shared) -> None:
    cells = _cells(_matrix(shared))
    c = cells[("b-py3", "C")]  # on C's python3, whose stdlib C's profile could not see
    assert c["state"] == "unknown" and c["effect"] == "unknown", c
    for name in ("a-py3", "a-versioned", "a-copies", "shared"):  # decided without it
        assert cells[(name, "C")]["state"] == cells[(name, "B")]["state"], name
    only_c = run_cli(
        "matrix", str(shared.envs / "b-py3"), "--host-profile", str(shared.profiles["C"])
    )
    assert only_c.code == 1, only_c.out
    only_a = run_cli(
        "matrix", str(shared.envs / "shared"), "--host-profile", str(shared.profiles["A"])
    )
    assert only_a.code == 0, only_a.out
    both = run_cli(
        "matrix",
        str(shared.envs),
        "--host-profile",
        str(shared.profiles["A"]),
        "--host-profile",
        str(shared.profiles["B"]),
    )
    assert both.code == 2


def test_the_venvs_serve_their_hosts_and_get_the_layout_that_serves_all(shared: Shared) -> None:
    doc = _matrix(shared, hosts=("A", "B"))
    assert doc["kind"] == "matrix" and doc["schema_version"] == SCHEMA_VERSION
    assert doc["tool"]["name"] == "venvkeeper" and doc["tool"]["version"]
    groups = {g["hosts"][0]: g for g in doc["hosts"]}
    assert groups["web1"]["python3"] == A and groups["web2"]["python3"] == B
    venvs = {Path(v["path"]).name: v for v in doc["venvs"]}
    assert venvs["shared"]["layout"] is None
    assert venvs["shared"]["serves"] == [groups["web1"]["id"], groups["web2"]["id"]]
    a = venvs["a-py3"]
    assert a["serves"] == [groups["web1"]["id"]]
    sib = {s["minor"]: s for s in a["layout"]["siblings"]}
    path = str(shared.envs / "a-py3")
    assert sib[A]["path"] == f"{path}-py{A}" and sib[A]["build_on"] == "web1"
    assert sib[B]["path"] == f"{path}-py{B}" and sib[B]["build_on"] == "web2"
    assert sib[B]["interpreter"] == str(shared.root / "usr" / "bin" / "python3")
    assert not sib[B]["exists"] and a["layout"]["in_place"] is False
    text = run_cli(
        "matrix",
        str(shared.envs),
        *(a for h in ("A", "B") for a in ("--host-profile", str(shared.profiles[h]))),
    ).out
    lines = text.splitlines()
    table = lines[lines.index(next(x for x in lines if x.startswith("VENV"))) :]
    table = [*table[: table.index("")], lines[-1]]  # the table and the summary
    assert all(len(line) <= 80 for line in table), text
    assert "legend:" in text and "  silent " in text and "  loudly " in text
    assert f"venvkeeper repair --sibling {path}" in text


def test_identical_hosts_are_judged_once_and_counted(shared: Shared, tmp_path: Path) -> None:
    """40 profiles like web1 and 60 like web2 (hostnames differ): 2 judgements."""
    d = tmp_path / "profiles"
    d.mkdir()
    for n in range(100):
        src = shared.profiles["A" if n < 40 else "B"]
        doc = json.loads(src.read_text())
        doc["hostname"] = f"web{n + 1:03d}"
        doc["created_at"] = 1000.0 + n
        (d / f"web{n + 1:03d}.json").write_text(json.dumps(doc))
    doc = _matrix(shared, "--profiles-dir", str(d), hosts=())
    assert doc["profiles"] == 100 and doc["judgements"] == 2
    assert [len(g["hosts"]) for g in doc["hosts"]] == [40, 60]
    venvs = {Path(v["path"]).name: v for v in doc["venvs"]}
    assert venvs["a-py3"]["served_hosts"] == 40 and venvs["shared"]["served_hosts"] == 100
    res = run_cli("matrix", str(shared.envs), "--profiles-dir", str(d))
    assert "served by h1: 40 hosts like web001" in res.out
    header = next(line for line in res.out.splitlines() if line.startswith("VENV"))
    assert "web001 +39" in header and "web041 +59" in header and len(header) <= 80


def test_sibling_repair_builds_this_hosts_minor_and_leaves_the_original(shared: Shared) -> None:
    """On host B, ``repair --sibling a-py3`` builds a-py3-py3.12 with the same packages
    (alpha and beta from their sources, beta's extension compiled again; delta from the
    wheelhouse); a-py3 is not touched. On host A it builds a-py3-py3.11: the layout is
    then in place, each sibling works on its hosts."""
    original = shared.made["a-py3"]
    before = tree_hash(original)
    sources = ("--offline", "--find-links", str(shared.wheelhouse))
    built: dict[str, Path] = {}
    for which, minor in (("B", B), ("A", A)):
        shared.hosts.become(which)
        res = run_cli("repair", "--sibling", "--json", *sources, str(original))
        assert res.code == 0, res.out + res.err
        (result,) = validate_json("repair", res.out)["results"]
        sibling = Path(f"{original}-py{minor}")
        assert result["path"] == str(sibling) and result["outcome"] == "repaired", result
        assert result["backup"] is None  # nothing was there before: no backup to keep
        assert shared.hosts.works(sibling, *MODULES["a-py3"])
        assert freeze(sibling) == shared.frozen["a-py3"]
        cfg = (sibling / "pyvenv.cfg").read_text()
        assert f"version = {minor}." in cfg or f"version_info = {minor}." in cfg, cfg
        assert str(original) + "/" not in (sibling / "bin" / "alpha-cli").read_text()
        assert tree_hash(original) == before
        assert not list(shared.envs.glob(".a-py3-py*"))  # no placeholder, lock or backup left
        built[minor] = sibling
    doc = _matrix(shared, hosts=("A", "B"))
    venvs = {Path(v["path"]).name: v for v in doc["venvs"]}
    assert venvs["a-py3"]["layout"]["in_place"] is True
    words = {n: [c["word"] for c in venvs[n]["cells"].values()] for n in venvs}
    assert words[f"a-py3-py{A}"] == ["ok", "-"] and words[f"a-py3-py{B}"] == ["-", "ok"]
    assert venvs[f"a-py3-py{A}"]["sibling_for"] == A
    # run again: the sibling is rebuilt through the transaction, the old one kept as backup
    res = run_cli("repair", "--sibling", "--json", *sources, str(original))
    (result,) = validate_json("repair", res.out)["results"]
    assert result["outcome"] == "repaired" and result["backup"], result
    assert shared.hosts.works(built[A], *MODULES["a-py3"])
    shutil.rmtree(result["backup"])
    Path(result["backup"] + ".json").unlink(missing_ok=True)
    assert tree_hash(original) == before


def test_sibling_dry_run_and_refusals(shared: Shared, tmp_path: Path) -> None:
    shared.hosts.become("B")
    original = shared.made["b-py3"]
    before = tree_hash(shared.envs)
    res = run_cli("repair", "--sibling", "--dry-run", str(original))
    assert res.code == 0 and "planned" in res.out and f"b-py3-py{B}" in res.out
    assert tree_hash(shared.envs) == before
    (tmp_path / "x").write_text("")
    res = run_cli("repair", "--sibling", "--all", str(tmp_path))
    assert res.code == 3 and "not --all" in res.err
    res = run_cli("repair", "--sibling", "-q", str(tmp_path))
    assert res.code == 3 and "not a virtual environment" in res.err
    assert len(res.err.strip().splitlines()) == 1, res.err


def test_bad_profiles_are_one_line_errors(shared: Shared, tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    for text, what in (
        ("{", "not valid JSON"),
        ('{"kind": "other"}', "not a venvkeeper host profile"),
        ("[" * 100 + "]" * 100, "nested deeper"),
    ):
        bad.write_text(text)
        res = run_cli(
            "matrix",
            str(shared.envs),
            "--host-profile",
            str(shared.profiles["A"]),
            "--host-profile",
            str(bad),
        )
        assert res.code == 3 and what in res.err and str(bad) in res.err, res.err
        assert len(res.err.strip().splitlines()) == 1 and not res.out, res.err
    res = run_cli("matrix", str(shared.envs))
    assert res.code == 3 and "--host-profile" in res.err
    empty = tmp_path / "empty"
    empty.mkdir()
    res = run_cli("matrix", str(shared.envs), "--profiles-dir", str(empty))
    assert res.code == 3 and "no *.json" in res.err
    res = run_cli("matrix", str(shared.envs), "--profiles-dir", str(tmp_path / "none"))
    assert res.code == 3 and len(res.err.strip().splitlines()) == 1


def test_the_table_follows_the_terminal_rules(
    shared: Shared, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Like every command: no progress escapes into a stderr that is no terminal, and the
    width is COLUMNS when set, else no limit off a terminal (paths whole)."""
    args = ["matrix", str(shared.envs), "--host-profile", str(shared.profiles["A"])]
    monkeypatch.delenv("COLUMNS", raising=False)
    wide = run_cli(*args)
    assert wide.code in (0, 1, 2), wide.err
    assert "\x1b" not in wide.err and "\r" not in wide.err, repr(wide.err)
    paths = [str(p) for p in shared.made.values()]
    assert all(p in wide.out for p in paths), wide.out
    monkeypatch.setenv("COLUMNS", "50")
    narrow = run_cli(*args)
    table = narrow.out.split("\n\n")[1].splitlines()
    assert all(len(line) <= 50 for line in table), table
    assert not all(p in narrow.out for p in paths)
