"""Units of predict: the overlay filesystem, repair plans, profile files, the CLI contract;
and a real relink scenario (a patch release replaced under a pyenv-style tree)."""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from venvkeeper.errors import UsageError
from venvkeeper.host.fsutil import normpath
from venvkeeper.host.hostfs import Overlay
from venvkeeper.host.interpreters import load_profile, profile_from_dict
from venvkeeper.model.host import Interpreter, InterpreterName
from venvkeeper.model.plan import RequirementKind, Strategy
from venvkeeper.model.venv import BaseOrigin, DirectUrlKind, Distribution, Extension
from venvkeeper.predict.changes import parse_python_becomes
from venvkeeper.predict.plan import requirement, version_blockers
from venvkeeper.scan.pipeline import inspect_path

from conftest import (
    SESSION_PREFIX,
    base_codes,
    base_status,
    find_python,
    require_python,
    run_cli,
    validate_json,
)
from factory import imports_ok, install, make_project, make_venv

# --- the overlay ------------------------------------------------------------------------


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    (tmp_path / "usr" / "bin").mkdir(parents=True)
    (tmp_path / "usr" / "lib" / "python3.10").mkdir(parents=True)
    (tmp_path / "usr" / "lib" / "python3.10" / "os.py").write_text("")
    (tmp_path / "usr" / "bin" / "python3.10").write_bytes(b"\x7fELF")
    (tmp_path / "usr" / "bin" / "python3").symlink_to("python3.10")
    (tmp_path / "bin").symlink_to("usr/bin")  # a merged /usr
    return tmp_path


def test_overlay_passes_untouched_paths_through(tree: Path) -> None:
    o = Overlay()
    p = str(tree / "usr" / "bin" / "python3")
    assert o.readlink(p) == "python3.10"
    assert o.file_state(p) is True
    assert sorted(o.listdir(str(tree / "usr" / "bin"))) == ["python3", "python3.10"]
    assert o.realpath(str(tree / "bin" / "python3")) == str(tree / "usr" / "bin" / "python3.10")


def test_overlay_repoints_a_link_and_adds_files(tree: Path) -> None:
    b = tree / "usr" / "bin"
    o = Overlay(
        links={str(b / "python3"): "python3.12"},
        files={str(b / "python3.12"): b"\x7fELF", str(tree / "usr/lib/python3.12/os.py"): b""},
    )
    # through the directory link too: /bin/python3 is /usr/bin/python3
    assert o.readlink(str(tree / "bin" / "python3")) == "python3.12"
    assert o.realpath(str(tree / "bin" / "python3")) == str(b / "python3.12")
    assert o.file_state(str(tree / "usr/lib/python3.12/os.py")) is True
    assert o.dir_state(str(tree / "usr/lib/python3.12")) is True
    assert "python3.12" in o.listdir(str(b))
    assert o.read_head(str(b / "python3"), 4) == b"\x7fELF"
    assert (b / "python3").resolve().name == "python3.10"  # the real host is untouched


def test_overlay_removes_trees_and_hides_patterns(tree: Path) -> None:
    o = Overlay(removed=[str(tree / "usr" / "lib" / "python3.10")])
    assert o.file_state(str(tree / "usr/lib/python3.10/os.py")) is False
    assert o.path_state(str(tree / "usr/lib/python3.10")) is False
    assert o.listdir(str(tree / "usr" / "lib")) == []
    hidden = Overlay(hidden=[(str(tree / "bin"), r"python.*")])  # named via the link
    assert hidden.path_state(str(tree / "usr" / "bin" / "python3.10")) is False
    with pytest.raises(FileNotFoundError):
        hidden.lstat(str(tree / "usr" / "bin" / "python3"))


def test_overlay_removing_a_link_does_not_remove_its_target(tree: Path) -> None:
    o = Overlay(removed=[str(tree / "bin" / "python3")])
    assert o.path_state(str(tree / "usr" / "bin" / "python3")) is False
    assert o.file_state(str(tree / "usr" / "bin" / "python3.10")) is True


def test_overlay_link_loops_are_eloop(tree: Path) -> None:
    a, b = str(tree / "a"), str(tree / "b")
    o = Overlay(links={a: "b", b: "a"})
    assert o.file_state(a) is False
    with pytest.raises(OSError):
        o.stat(a)


def test_normpath_collapses_a_leading_double_slash() -> None:
    assert os.path.normpath("//lib") == "//lib"  # what POSIX allows, and Linux ignores
    for raw, want in [
        ("//lib", "/lib"),
        ("//", "/"),
        ("///lib//x/", "/lib/x"),
        ("/usr/../bin", "/bin"),
        ("//usr/./lib/..", "/usr"),
        ("/", "/"),
        ("a//b", "a/b"),
    ]:
        assert normpath(raw) == want, raw


def test_overlay_answers_paths_joined_onto_the_root(tree: Path) -> None:
    """The prefix of /bin is /, and / + /lib is //lib: a profile of a Debian host hides
    //lib/python3.X. Before, resolving //lib recursed forever."""
    o = Overlay(hidden=[("//lib", r"python\d.*"), ("//" + str(tree)[1:] + "/usr/lib", "py.*")])
    assert o.path_state("//lib") == o.path_state("/lib")
    assert o.dir_state("//" + str(tree)[1:] + "/usr/lib") is True
    assert o.path_state(str(tree / "usr" / "lib" / "python3.10")) is False  # hidden
    assert o.realpath("//" + str(tree)[1:] + "/bin/python3") == str(tree / "usr/bin/python3.10")


def test_overlay_directory_link_loops_are_eloop(tree: Path) -> None:
    """A loop of directory links (real ones, and the overlay's own) gives ELOOP as the
    kernel does, and a long chain of them is bounded too: never a RecursionError."""
    (tree / "da").symlink_to("db")
    (tree / "db").symlink_to("da")
    cases = [
        (Overlay(), str(tree / "da" / "x")),
        (Overlay(dir_links={"/vk-loop/a": "b", "/vk-loop/b": "../vk-loop/a"}), "/vk-loop/a/x"),
        (Overlay(dir_links={"/vk-loop/a": "b/c", "/vk-loop/b": "a"}), "/vk-loop/b/x/y"),
        (
            Overlay(dir_links={f"/vk-chain/{i}": f"/vk-chain/{i + 1}" for i in range(300)}),
            "/vk-chain/0/x",
        ),
    ]
    for o, p in cases:
        for q in (o.lstat, o.stat):
            with pytest.raises(OSError) as e:
                q(p)
            assert e.value.errno == errno.ELOOP, p
        assert o.file_state(p) is False
        assert o.realpath(p)
    # 30 hops are within the kernel's 40: resolved, to a directory that does not exist
    short = Overlay(dir_links={f"/vk-chain/{i}": f"{i + 1}" for i in range(30)})
    with pytest.raises(FileNotFoundError) as e2:
        short.lstat("/vk-chain/0/x")
    assert e2.value.filename == "/vk-chain/30"


@given(st.lists(st.sampled_from(["a", "b", "..", ".", "c", "x/y", "/abs"]), max_size=6))
def test_overlay_never_raises_unexpectedly_on_odd_links(parts: list[str]) -> None:
    o = Overlay(links={"/vk-nowhere/l": "/".join(parts) or "."})
    for q in (o.file_state, o.path_state, o.dir_state):
        assert q("/vk-nowhere/l") in (True, False, None)
    o.realpath("/vk-nowhere/l")
    o.listdir("/vk-nowhere")


# --- plans -------------------------------------------------------------------------------


def dist(**kw: object) -> Distribution:
    base: dict[str, object] = {
        "name": "pkg",
        "version": "1.0",
        "site_dir": "/v/lib/python3.10/site-packages",
        "dist_info": "pkg-1.0.dist-info",
    }
    base.update(kw)
    return Distribution(**base)  # type: ignore[arg-type]


def test_requirement_specs() -> None:
    assert requirement(dist()).spec == "pkg==1.0"
    vcs = requirement(
        dist(
            direct_url_kind=DirectUrlKind.VCS,
            direct_url="https://git.example/pkg.git",
            vcs="git",
            commit_id="abc123",
        )
    )
    assert vcs.kind is RequirementKind.VCS
    assert vcs.spec == "pkg @ git+https://git.example/pkg.git@abc123"
    ed = requirement(
        dist(
            direct_url_kind=DirectUrlKind.EDITABLE,
            direct_url="file:///src/pkg",
            editable_path="/src/pkg",
        )
    )
    assert (ed.kind, ed.spec) == (RequirementKind.EDITABLE, "-e /src/pkg")
    arch = requirement(
        dist(direct_url_kind=DirectUrlKind.ARCHIVE, direct_url="https://h/pkg-1.0.tar.gz")
    )
    assert (arch.kind, arch.spec) == (RequirementKind.ARCHIVE, "pkg @ https://h/pkg-1.0.tar.gz")


def test_version_blockers(tmp_path: Path) -> None:
    from venvkeeper.model.plan import Target

    py = require_python("3.11")
    v = make_venv(py, tmp_path / "v")
    facts = inspect_path(str(v)).facts
    old = dist(requires_python="<3.12", name="oldpin")
    ext = dist(
        name="fast",
        extensions=(
            Extension(
                "fast/_c.cpython-310-x86_64-linux-gnu.so", "cpython-310-x86_64-linux-gnu", "3.10"
            ),
        ),
    )
    abi3 = dist(name="stable", extensions=(Extension("s/_c.abi3.so", "abi3", None),))
    site = facts.site_dirs[0]
    from dataclasses import replace

    facts = replace(facts, site_dirs=(replace(site, distributions=(old, ext, abi3)),))
    reqs = [requirement(d) for d in (old, ext, abi3)]
    found = version_blockers(
        facts, reqs, "3.10", Target("/usr/bin/python3", "/usr/bin/python3.12", "3.12", "3.12.1")
    )
    by = {(b.code, b.package): b for b in found}
    assert by[("requires-python", "oldpin")].fatal
    assert (
        not by[("needs-new-wheel", "fast")].fatal
        and "cp312" in by[("needs-new-wheel", "fast")].message
    )
    assert not any(b.package == "stable" for b in found)
    assert version_blockers(facts, reqs, "3.12", Target("/x", "/x", "3.12")) == []


def _interp(path: str, version: str, origin: BaseOrigin) -> Interpreter:
    return Interpreter(
        executable=path,
        names=(InterpreterName(path, (path,)),),
        version=version,
        patch_version=version + ".9",
        prefix=os.path.dirname(os.path.dirname(path)),
        stdlib_present=True,
        origin=origin,
    )


def test_plan_for_pipx_venvs_names_the_tool(tmp_path: Path) -> None:
    from venvkeeper.predict.plan import make_plan

    py = require_python("3.11")
    v = make_venv(py, tmp_path / "pipx" / "venvs" / "black")
    rep = inspect_path(str(v))
    (v / "bin" / "python").unlink()
    (v / "bin" / "python").symlink_to("/nonexistent/python3.11")
    (v / "bin" / "python3").unlink()
    (v / "bin" / "python3").symlink_to("python")
    rep = inspect_path(str(v))
    assert rep.status.value == "critical"
    plan = make_plan(rep.facts, rep.findings, [_interp(str(py), "3.11", BaseOrigin.PYENV)])
    assert plan.strategy is Strategy.USE_TOOL
    assert plan.tool_command is not None and plan.tool_command.startswith("pipx reinstall")
    assert "black" in plan.tool_command


def test_plan_for_a_moved_venv_rewrites_paths(tmp_path: Path) -> None:
    py = require_python("3.11")
    proj = make_project(tmp_path, "alpha", script="alpha-cli")
    v = make_venv(py, tmp_path / "old")
    install(v, proj)
    v.rename(tmp_path / "new")
    res = run_cli("plan", "--json", str(tmp_path / "new"))
    doc = validate_json("plan", res.out)
    plan = doc["venvs"][0]["plan"]
    assert plan["strategy"] == "rewrite-paths"
    assert plan["old_location"] == str(tmp_path / "old")
    assert res.code == 2


def test_healthy_venvs_need_no_plan(tmp_path: Path) -> None:
    py = require_python("3.11")
    make_venv(py, tmp_path / "ok")
    res = run_cli("plan", str(tmp_path))
    assert res.code == (1 if base_codes(py) else 0)  # a warning, not a repair, when unmanaged
    assert "0 of 1 venv need a repair" in res.out


# --- a real relink: a patch release replaced in a pyenv-style tree ----------------------


def test_relink_to_the_same_minor_of_the_same_origin(tmp_path: Path) -> None:
    """versions/3.11.7 is replaced by versions/3.11.99 (a patch upgrade): the venv's link
    dangles; the plan relinks it to the new patch release, and doing what the plan says
    really brings the venv back."""
    src = find_python("3.11")
    if src is None or "/versions/" not in str(src):
        pytest.skip("needs a pyenv CPython 3.11")
    prefix = src.parent.parent
    tree = tmp_path / "pyenv" / "versions"
    old = tree / "3.11.7"
    (old / "bin").mkdir(parents=True)
    shutil.copy2(src, old / "bin" / "python3.11")
    (old / "lib").mkdir()
    (old / "lib" / "python3.11").symlink_to(prefix / "lib" / "python3.11")
    proj = make_project(tmp_path, "alpha")
    v = make_venv(old / "bin" / "python3.11", tmp_path / "app")
    install(v, proj)
    assert imports_ok(v, "alpha")
    pred = validate_json("predict", run_cli("predict", "--json", str(v), "--remove", str(old)).out)
    assert pred["venvs"][0]["effect"] == "breaks-loudly"
    # the patch upgrade happens: a new release directory, the old one goes
    new = tree / "3.11.99"
    shutil.copytree(old, new, symlinks=True)
    shutil.rmtree(old)
    assert not imports_ok(v, "alpha")
    res = run_cli("plan", "--json", str(v))
    plan = validate_json("plan", res.out)["venvs"][0]["plan"]
    assert plan["strategy"] == "relink", plan
    target = plan["target"]["path"]
    assert target == str(new / "bin" / "python3.11")
    # do what the plan says, by hand: point the links and `home` at the target
    for name in ("python", "python3", "python3.11"):
        link = v / "bin" / name
        if link.is_symlink():
            link.unlink()
            link.symlink_to(target)
    cfg = (v / "pyvenv.cfg").read_text().replace(str(old / "bin"), str(new / "bin"))
    (v / "pyvenv.cfg").write_text(cfg)
    assert imports_ok(v, "alpha")
    # sound again: a warning only for its base, which no package manager patches
    assert inspect_path(str(v)).status.value == base_status(Path(target)) == "warning"


# --- profiles and the CLI contract --------------------------------------------------------


def test_profile_errors_are_clear(tmp_path: Path) -> None:
    bad = tmp_path / "p.json"
    for text, needle in [
        ("{", "Expecting"),
        ('{"kind": "other"}', "not a venvkeeper host profile"),
        ('{"kind": "venvkeeper-host-profile", "schema_version": 99}', "newer"),
        (
            '{"kind": "venvkeeper-host-profile", "schema_version": 1, "searched":'
            ' {"bin_dirs": ["rel"], "trees": []}, "dir_links": {}, "interpreters": []}',
            "absolute",
        ),
    ]:
        bad.write_text(text)
        res = run_cli("predict", str(tmp_path), "--host-profile", str(bad))
        assert res.code == 3 and needle in res.err, (text, res.err)
        assert "Traceback" not in res.err
    res = run_cli("predict", str(tmp_path), "--host-profile", str(tmp_path / "none.json"))
    assert res.code == 3 and "cannot read" in res.err
    with pytest.raises(UsageError):
        load_profile("/dev/null")


def test_hostile_profile_files_are_one_line_errors(tmp_path: Path) -> None:
    """A profile nested 100k deep (before: RecursionError), 50 MB, not UTF-8, a FIFO, a
    directory, a link loop: exit 3, one line naming the file, no traceback, no hang."""
    root = tmp_path / "root"
    root.mkdir()
    cases: dict[str, tuple[bytes | None, str]] = {
        "deep.json": (b"[" * 100_000 + b"]" * 100_000, "nested deeper than"),
        "deep-object.json": (b'{"kind": ' * 100_000, "nested deeper than"),
        "huge.json": (b" " * (50 << 20) + b"{}", "larger than"),
        "latin1.json": (b'{"kind": "h\xf4te"}', "not UTF-8"),
        "fifo.json": (None, "not a file"),
        "dir.json": (None, "not a file"),
        "loop.json": (None, "cannot read it"),
    }
    for name, (data, needle) in cases.items():
        f = tmp_path / name
        if name == "fifo.json":
            os.mkfifo(f)
        elif name == "dir.json":
            f.mkdir()
        elif name == "loop.json":
            f.symlink_to(name)
        else:
            assert data is not None
            f.write_bytes(data)
        res = run_cli("predict", str(root), "--host-profile", str(f))
        assert res.code == 3, (name, res.err)
        assert res.err.count("\n") == 1 and str(f) in res.err and needle in res.err, res.err
        assert "Traceback" not in res.err and "internal error" not in res.err, res.err


def test_package_tools_are_never_taken_from_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As root, a dpkg-query or rpm planted early on PATH would run as root: host-profile
    and predict --remove-package look in the system directories only. A caller may still
    name a stand-in directory (and then it runs: the plant works)."""
    from venvkeeper.host import pkgdb

    tools = tmp_path / "planted"
    tools.mkdir()
    marker = tmp_path / "ran"
    for name in ("dpkg-query", "rpm"):
        (tools / name).write_text(f'#!/bin/sh\necho "$0" >> {marker}\nexit 1\n')
        (tools / name).chmod(0o755)
    monkeypatch.setenv("PATH", f"{tools}:/usr/bin:/bin:/usr/sbin:/sbin")
    assert run_cli("host-profile", "-o", str(tmp_path / "p.json")).code == 0
    (tmp_path / "root").mkdir()
    res = run_cli("predict", str(tmp_path / "root"), "--remove-package", "vk-no-such-pkg")
    assert res.code == 3 and "Traceback" not in res.err
    assert "no installed package" in res.err or "neither dpkg nor rpm" in res.err, res.err
    assert pkgdb.manager() in (None, "dpkg", "rpm")
    pkgdb.owners(["/usr/bin/python3"])
    assert not marker.exists(), marker.read_text()
    assert pkgdb.owners(["/usr/bin/python3"], str(tools)) == {}  # named: it is used
    assert marker.read_text().startswith(str(tools))


def test_profile_round_trips(tmp_path: Path) -> None:
    out = tmp_path / "me.json"
    assert run_cli("host-profile", "-o", str(out)).code == 0
    doc = validate_json("host-profile", out.read_text())
    assert profile_from_dict(doc).interpreters
    if os.path.exists("/usr/bin/python3") and shutil.which("dpkg-query"):
        mine = [
            i
            for i in doc["interpreters"]
            if any(n["path"] == "/usr/bin/python3" for n in i["names"])
        ]
        assert mine and mine[0]["package"] and mine[0]["origin"] == "system"


def test_this_hosts_own_profile_judges_a_real_venv(tmp_path: Path) -> None:
    """The profile this host writes searches /bin, whose prefix is /: its stdlib
    directories were //lib/..., and predict died of a RecursionError (exit 3)."""
    prof = tmp_path / "me.json"
    res = run_cli("host-profile", "-o", str(prof))
    assert res.code == 0, res.err
    doc = validate_json("host-profile", prof.read_text())
    if "/bin" not in doc["searched"]["bin_dirs"]:
        pytest.skip("this host has no /bin")
    make_venv(
        Path("/usr/bin/python3") if os.path.exists("/usr/bin/python3") else require_python("3.11"),
        tmp_path / "root" / "v",
    )
    res = run_cli("predict", "--json", "--host-profile", str(prof), str(tmp_path / "root"))
    assert res.code in (0, 1, 2), res.err
    assert "Traceback" not in res.err and "internal error" not in res.err
    (v,) = validate_json("predict", res.out)["venvs"]
    assert v["status_then"] == v["status_now"]  # the same host: nothing changes


def test_profile_never_runs_anything_it_need_not(tmp_path: Path) -> None:
    """A binary a user could write is never run to learn its version."""
    d = tmp_path / "bin"
    d.mkdir()
    marker = tmp_path / "ran"
    evil = d / "python3"
    evil.write_text(f"#!/bin/sh\ntouch {marker}\n")
    evil.chmod(0o755)
    os.chmod(tmp_path, 0o777)
    res = run_cli("host-profile", "--search", str(d))
    assert res.code == 0
    assert not marker.exists()
    assert validate_json("host-profile", res.out)["interpreters"][0]["is_script"] is True


def test_python_becomes_parsing() -> None:
    assert parse_python_becomes("3.12") == (None, "3.12")
    assert parse_python_becomes("/opt/py/bin/python3=3.13t") == ("/opt/py/bin/python3", "3.13t")
    for bad in ("3", "three", "rel/python3=3.12", "/x=3.12.1"):
        with pytest.raises(UsageError):
            parse_python_becomes(bad)
    res = run_cli("predict", "/tmp", "--python-becomes", "latest")
    assert res.code == 3 and "X.Y" in res.err


def test_predict_without_a_change_equals_scan(tmp_path: Path) -> None:
    py = require_python("3.11")
    make_venv(py, tmp_path / "a")
    b = make_venv(py, tmp_path / "b")
    (b / "bin" / "python3.11").unlink()
    (b / "bin" / "python3.11").symlink_to("/nonexistent/python3.11")
    (b / "bin" / "python").unlink()
    (b / "bin" / "python").symlink_to("python3.11")
    scan = validate_json("scan", run_cli("scan", "--json", str(tmp_path)).out)
    pred = validate_json("predict", run_cli("predict", "--json", str(tmp_path)).out)
    assert {v["path"]: v["status"] for v in scan["venvs"]} == {
        v["path"]: v["status_then"] for v in pred["venvs"]
    }
    effects = {v["path"]: v["effect"] for v in pred["venvs"]}
    assert effects == {str(tmp_path / "a"): "survives", str(b): "already-broken"}
    assert run_cli("predict", str(tmp_path)).code == 2


def test_predict_marks_venvs_the_change_deletes(tmp_path: Path) -> None:
    v = make_venv(require_python("3.11"), tmp_path / "inside" / "v")
    pred = validate_json(
        "predict",
        run_cli("predict", "--json", str(tmp_path), "--remove", str(tmp_path / "inside")).out,
    )
    assert pred["venvs"][0]["path"] == str(v)
    assert pred["venvs"][0]["effect"] == "removed"


def test_predict_table_escapes_and_summarises(tmp_path: Path) -> None:
    make_venv(require_python("3.11"), tmp_path / "odd\x1bname")
    res = run_cli("predict", str(tmp_path), "--python-becomes", "3.99")
    assert "\x1b" not in res.out and "\\x1b" in res.out
    assert "change: /usr/bin/python3 (and /usr/bin/python) -> python3.99" in res.out
    assert "1 venv," in res.out


def test_nothing_is_executed_by_predict(tmp_path: Path) -> None:
    """predict and plan read files only: a venv whose interpreter would leave a mark."""
    v = make_venv(require_python("3.11"), tmp_path / "v")
    marker = tmp_path / "ran"
    for name in ("python", "python3", "python3.11"):
        p = v / "bin" / name
        p.unlink()
        p.write_text(f"#!/bin/sh\ntouch {marker}\n")
        p.chmod(0o755)
    for cmd in ("predict", "plan"):
        res = run_cli(cmd, str(tmp_path), "--python-becomes", "3.12")
        assert res.code == 1 and str(v) in res.out, res.out + res.err
        res = run_cli(cmd, "--json", str(tmp_path), "--python-becomes", "3.12")
        assert res.code == 1, res.err
        (doc,) = validate_json(cmd, res.out)["venvs"]
        # judged, from its files: the scripts are seen for what they are, never run
        assert doc["path"] == str(v) and doc["effect"] == "survives"
        assert "interpreter-not-binary" in [f["code"] for f in doc["findings_now"]]
        assert doc["plan"]["strategy"] == "rebuild"
    assert not marker.exists()


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=12), c, max_size=5),
    max_leaves=20,
)


@given(_json)
def test_garbage_profiles_are_refused_cleanly(data: object) -> None:
    with contextlib.suppress(ValueError):
        profile_from_dict(data)


@given(
    st.fixed_dictionaries(
        {
            "kind": st.just("venvkeeper-host-profile"),
            "schema_version": st.just(1),
            "searched": st.fixed_dictionaries(
                {"bin_dirs": st.lists(st.just("/x/bin")), "trees": st.just([])}
            ),
            "dir_links": st.dictionaries(st.sampled_from(["/bin", "/x"]), st.text(max_size=5)),
            "interpreters": st.lists(
                st.fixed_dictionaries(
                    {
                        "executable": st.sampled_from(["/x/bin/python3.1", "/a"]),
                        "version": st.sampled_from([None, "3.1", "x"]),
                        "origin": st.sampled_from(["system", "nope"]),
                        "names": st.lists(
                            st.fixed_dictionaries(
                                {"hops": st.lists(st.sampled_from(["/x/bin/p", "/a", "rel"]))}
                            ),
                            max_size=2,
                        ),
                    }
                ),
                max_size=3,
            ),
        }
    )
)
def test_near_valid_profiles_load_or_are_refused(data: dict[str, object]) -> None:
    from venvkeeper.host.interpreters import profile_overlay

    try:
        p = profile_from_dict(data)
    except ValueError:
        return
    o = profile_overlay(p)
    for q in ("/x/bin/python3.1", "/x/bin/p", "/bin/python3"):
        assert o.file_state(q) in (True, False, None)


def test_a_very_deep_link_is_an_error_not_a_crash(tmp_path: Path) -> None:
    v = make_venv(require_python("3.11"), tmp_path / "v")
    deep = "/" + "/".join(["d"] * 1500) + "/python3"
    for name in ("python", "python3", "python3.11"):
        (v / "bin" / name).unlink()
        (v / "bin" / name).symlink_to(deep)
    res = run_cli("predict", "--json", str(tmp_path), "--python-becomes", "3.12")
    assert res.code == 2, res.err
    (pred,) = validate_json("predict", res.out)["venvs"]
    assert pred["status_then"] == "critical" == pred["status_now"]
    assert pred["findings_then"][0]["code"] == "interpreter-dangling"


def test_profile_runs_only_a_root_owned_system_interpreter_to_learn_its_version() -> None:
    """An unversioned binary with no stdlib beside it: its files do not tell its version.
    In directories only root can write, the profile asks it (isolated); elsewhere never."""
    src = find_python("3.11")
    if src is None or os.geteuid() != 0:
        pytest.skip("needs root and a CPython 3.11 binary")
    top = Path("/srv") / f"{SESSION_PREFIX}ran"
    try:
        (top / "bin").mkdir(parents=True)
        os.chmod(top, 0o755)
        shutil.copy2(src, top / "bin" / "python3")
        res = run_cli("host-profile", "--search", str(top / "bin"), "--no-packages")
        (interp,) = validate_json("host-profile", res.out)["interpreters"]
        assert (interp["version"], interp["version_source"]) == ("3.11", "ran")
        assert interp["patch_version"].startswith("3.11.")
        res = run_cli("host-profile", "--search", str(top / "bin"), "--no-run")
        (interp,) = validate_json("host-profile", res.out)["interpreters"]
        assert (interp["version"], interp["version_source"]) == (None, "unknown")
        os.chmod(top / "bin", 0o777)  # now any user could have planted it: never run
        res = run_cli("host-profile", "--search", str(top / "bin"))
        (interp,) = validate_json("host-profile", res.out)["interpreters"]
        assert interp["version_source"] == "unknown"
    finally:
        shutil.rmtree(top, ignore_errors=True)


# --- the package manager -------------------------------------------------------------------


def test_dpkg_and_rpm_output_parsers() -> None:
    from venvkeeper.host.pkgdb import _parse_dpkg_search, _parse_rpm_owners

    text = (
        "python3.11-minimal: /usr/bin/python3.11\n"
        "diversion by foo from: /usr/bin/python3\n"
        "libpython3.11-minimal:amd64, other: /usr/lib/python3.11/os.py\n"
    )
    assert _parse_dpkg_search(text, {"/usr/bin/python3.11", "/usr/lib/python3.11/os.py"}) == {
        "/usr/bin/python3.11": "python3.11-minimal",
        "/usr/lib/python3.11/os.py": "libpython3.11-minimal",
    }
    paths = ["/usr/bin/python3.12", "/opt/x"]
    assert _parse_rpm_owners(
        "python3-3.12.1\nfile /opt/x is not owned by any package\n", paths
    ) == {"/usr/bin/python3.12": "python3-3.12.1"}
    assert _parse_rpm_owners("only one line\n", paths) == {}


def test_remove_package_through_rpm(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No rpm-based system here: a stand-in ``rpm`` answers ``-ql`` as rpm does (the real
    dpkg is tested in test_predict.py)."""
    v = make_venv(require_python("3.11"), tmp_path / "envs" / "v")
    target = os.path.realpath(v / "bin" / "python")
    fake = tmp_path / "bin"
    fake.mkdir()
    rpm = fake / "rpm"
    rpm.write_text(
        "#!/bin/sh\n"
        f'[ "$1" = -ql ] && [ "$2" = python3.11 ] && {{ echo {target}; echo /usr; exit 0; }}\n'
        'echo "package $2 is not installed"; exit 1\n'
    )
    rpm.chmod(0o755)
    from venvkeeper.host import pkgdb

    # the system's tool directories, as this test's world has them: no dpkg-query, an rpm
    monkeypatch.setattr(pkgdb, "SYSTEM_PATH", str(fake))
    pred = validate_json(
        "predict",
        run_cli("predict", "--json", str(tmp_path / "envs"), "--remove-package", "python3.11").out,
    )
    assert pred["venvs"][0]["effect"] == "breaks-loudly"
    res = run_cli("predict", str(tmp_path / "envs"), "--remove-package", "nope")
    assert res.code == 3 and "rpm knows no installed package" in res.err


def test_a_profile_describes_installation_trees_without_removing_them(tmp_path: Path) -> None:
    """A pyenv-style tree: versions the profile lists exist (as it describes them), the
    others do not, and a venv living inside the tree stays."""
    tree = tmp_path / "versions"
    for v in ("3.10.1", "3.11.2"):
        (tree / v / "bin").mkdir(parents=True)
        (tree / v / "bin" / f"python{v[:4]}").write_bytes(b"\x7fELF")
        (tree / v / "lib" / f"python{v[:4]}").mkdir(parents=True)
        (tree / v / "lib" / f"python{v[:4]}" / "os.py").write_text("")
    (tree / "3.11.2" / "envs" / "proj").mkdir(parents=True)
    exe = str(tree / "3.11.2" / "bin" / "python3.11")
    doc = {
        "kind": "venvkeeper-host-profile",
        "schema_version": 1,
        "searched": {"bin_dirs": [], "trees": [str(tree)]},
        "dir_links": {},
        "interpreters": [
            {
                "executable": exe,
                "version": "3.11",
                "prefix": str(tree / "3.11.2"),
                "stdlib_present": True,
                "origin": "pyenv",
                "names": [{"hops": [exe]}],
            }
        ],
    }
    from venvkeeper.host.interpreters import profile_overlay

    o = profile_overlay(profile_from_dict(doc))
    assert o.file_state(exe) is True
    assert o.file_state(str(tree / "3.11.2" / "lib" / "python3.11" / "os.py")) is True
    assert o.path_state(str(tree / "3.10.1")) is False  # not on that host
    assert o.file_state(str(tree / "3.10.1" / "bin" / "python3.10")) is False
    assert o.dir_state(str(tree / "3.11.2" / "envs" / "proj")) is True  # a venv stays


# --- the matrix: its naming rule, its words, host groups ---------------------------------


def test_sibling_names_follow_one_rule() -> None:
    from venvkeeper.model.matrix import sibling_minor, sibling_path

    assert sibling_path("/srv/shared/app", "3.11") == "/srv/shared/app-py3.11"
    assert sibling_path("/srv/shared/app/", "3.13t") == "/srv/shared/app-py3.13t"
    assert sibling_path("/srv/shared/app-py3.11", "3.12") == "/srv/shared/app-py3.12"
    assert sibling_minor("/srv/shared/app-py3.11") == "3.11"
    assert sibling_minor("/srv/shared/app-py3") is None and sibling_minor("/srv/app") is None


def test_every_cell_has_a_word_and_a_legend() -> None:
    from venvkeeper.formats.matrix import BREAK_WORDS, LEGEND, STATE_WORDS, word
    from venvkeeper.model.matrix import Cell, CellState
    from venvkeeper.model.plan import Effect

    legend = {w for w, _ in LEGEND}
    for effect in Effect:
        if effect.breaks:
            assert effect in BREAK_WORDS and BREAK_WORDS[effect] in legend
            assert word(Cell(CellState.BREAKS, effect, "critical")) == BREAK_WORDS[effect]
    for state in CellState:
        if state is not CellState.BREAKS:
            assert STATE_WORDS[state] in legend


def test_hosts_with_the_same_interpreters_are_one_group() -> None:
    from dataclasses import replace

    from venvkeeper.model.host import HostProfile, Interpreter, InterpreterName
    from venvkeeper.predict.matrix import group_hosts

    def host(name: str, minor: str, release: str = "Debian") -> HostProfile:
        exe = f"/usr/bin/python{minor}"
        i = Interpreter(
            exe, (InterpreterName("/usr/bin/python3", ("/usr/bin/python3", exe)),), minor
        )
        return HostProfile(name, 1.0, release, ("/usr/bin",), (), (), (i,))

    profiles = [
        (f"{n}.json", host(n, m, r))
        for n, m, r in [("web1", "3.11", "Debian 12"), ("web2", "3.13", "Debian 13"),
                        ("web3", "3.11", "Debian 12.5"), ("web4", "3.13", "Debian 13")]
    ]  # fmt: skip
    profiles.append(("odd.json", replace(host("web5", "3.11"), bin_dirs=("/usr/bin", "/opt/bin"))))
    groups = [g for g, _ in group_hosts(profiles)]
    assert [g.hosts for g in groups] == [("web1", "web3"), ("web2", "web4"), ("web5",)]
    assert [g.python3 for g in groups] == ["3.11", "3.13", "3.11"]
    assert groups[0].label == "web1 +1" and groups[0].sources == ("web1.json", "web3.json")
    assert groups[0].os_releases == ("Debian 12", "Debian 12.5")
