"""The repair's building blocks on real directories: path rewriting, cfg edits, the lock,
the journal's recovery from each state a crash can leave, backups."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from venvkeeper.formats import repair as fmt
from venvkeeper.model.plan import Strategy
from venvkeeper.model.repair import Outcome, RepairResult
from venvkeeper.repair import edit, transaction
from venvkeeper.repair.backends import BackendChoice, choose
from venvkeeper.repair.safety import Unsafe
from venvkeeper.repair.transaction import Busy, Journal, RecoveryError, locked, recover, transact

from conftest import run_cli, validate_json
from factory import tree_hash


def _tree(root: Path, text: str = "one") -> Path:
    (root / "bin").mkdir(parents=True)
    (root / "pyvenv.cfg").write_text("home = /usr/bin\n")
    (root / "bin" / "tool").write_text(f"#!{root}/bin/python\nprint('{text}')\n")
    (root / "bin" / "tool").chmod(0o755)
    (root / "data").write_text(text)
    return root


def test_rewrite_paths_replaces_whole_paths_only(tmp_path: Path) -> None:
    old, new = "/srv/app", str(tmp_path / "v")
    v = tmp_path / "v"
    (v / "bin").mkdir(parents=True)
    site = v / "lib" / "python3.11" / "site-packages"
    site.mkdir(parents=True)
    (v / "bin" / "tool").write_text(
        f"#!{old}/bin/python\n# {old}/bin/python stays: not line 1-3?\n"
    )
    (v / "bin" / "other").write_text("#!/srv/app2/bin/python\n")
    (v / "bin" / "long").write_text(
        f"#!/bin/sh\n'''exec' '{old}/bin/python' \"$0\" \"$@\"\n' '''\n"
    )
    (v / "bin" / "activate").write_text(f'VIRTUAL_ENV="{old}"\nexport VIRTUAL_ENV\n')
    (v / "bin" / "binary").write_bytes(b"\x7fELF\0\0" + old.encode())
    (v / "pyvenv.cfg").write_text(f"home = /usr/bin\ncommand = /usr/bin/python3 -m venv {old}\n")
    (site / "x.pth").write_text(f"{old}/src\n")
    (v / "bin" / "tool").chmod(0o751)
    changed = edit.rewrite_paths(str(v), old, new)
    assert sorted(changed) == sorted(
        ["pyvenv.cfg", "bin/activate", "bin/long", "bin/tool", "lib/python3.11/site-packages/x.pth"]
    )
    assert (v / "bin" / "tool").read_text().startswith(f"#!{new}/bin/python\n")
    assert (v / "bin" / "other").read_text() == "#!/srv/app2/bin/python\n"
    assert f"'{new}/bin/python'" in (v / "bin" / "long").read_text()
    assert (v / "bin" / "activate").read_text().startswith(f'VIRTUAL_ENV="{new}"')
    assert old.encode() in (v / "bin" / "binary").read_bytes()  # binaries are left alone
    assert (v / "bin" / "tool").stat().st_mode & 0o777 == 0o751  # mode kept


def test_rewrite_never_writes_through_a_hard_link(tmp_path: Path) -> None:
    v = tmp_path / "v"
    (v / "bin").mkdir(parents=True)
    (v / "bin" / "tool").write_text("#!/old/bin/python\n")
    os.link(v / "bin" / "tool", tmp_path / "original")
    edit.rewrite_paths(str(v), "/old", "/new")
    assert (tmp_path / "original").read_text() == "#!/old/bin/python\n"
    assert (v / "bin" / "tool").read_text() == "#!/new/bin/python\n"


def test_set_cfg_keeps_other_lines() -> None:
    text = "home = /a\ninclude-system-site-packages = false\nprompt = 'x'\nversion = 3.11.2\n"
    out = edit.set_cfg(text, {"home": "/b", "version": "3.11.9", "prompt": None, "new": "1"})
    assert out == "home = /b\ninclude-system-site-packages = false\nversion = 3.11.9\nnew = 1\n"


def test_transact_success_keeps_the_original_as_the_backup(tmp_path: Path) -> None:
    v = _tree(tmp_path / "v")
    original = tree_hash(v)

    def build(new: str) -> None:
        _tree(Path(new), "two")

    backup = transact(str(v), "test", build, lambda new: None)
    assert (v / "data").read_text() == "two"
    assert tree_hash(Path(backup)) == original
    assert json.loads(Path(backup + ".json").read_text())["reason"] == "test"
    assert not Path(transaction.sibling(str(v), "journal")).exists()


@pytest.mark.parametrize("step", ["journal", "built", "verified", "exchanged", "backed-up"])
def test_transact_failure_at_each_step_puts_the_original_back(tmp_path: Path, step: str) -> None:
    v = _tree(tmp_path / "v")
    original = tree_hash(v)

    def hook(s: str) -> None:
        if s == step:
            raise OSError(5, "injected")

    with pytest.raises(OSError):
        transact(str(v), "test", lambda new: _tree(Path(new), "two"), lambda n: None, hook=hook)
    assert tree_hash(v) == original
    assert sorted(p.name for p in tmp_path.iterdir()) == ["v"]


_KILLER = r"""
import os, signal, sys
from pathlib import Path
from venvkeeper.repair.transaction import transact
path, step = sys.argv[1:3]
def build(new):
    os.makedirs(new + "/bin")
    Path(new, "data").write_text("two")
def hook(s):
    if s == step:
        os.kill(os.getpid(), signal.SIGKILL)
transact(path, "test", build, lambda n: None, hook=hook)
"""


@pytest.mark.parametrize("step", ["journal", "built", "verified", "exchanged", "backed-up"])
def test_recover_after_sigkill_at_each_step(tmp_path: Path, step: str) -> None:
    v = _tree(tmp_path / "v")
    original = tree_hash(v)
    done = subprocess.run([sys.executable, "-c", _KILLER, str(v), step], timeout=60)
    assert done.returncode == -9
    with locked(str(v)):
        what = recover(str(v))
    assert what is not None
    others = [p for p in tmp_path.iterdir() if p.name != "v" and p.is_dir()]
    if step in ("journal", "built"):
        assert "undid" in what
        assert tree_hash(v) == original and others == []
    else:  # verified: the swap is finished
        assert "finished" in what
        assert (v / "data").read_text() == "two"
        assert [tree_hash(p) for p in others] == [original]
    assert recover(str(v)) is None  # settled once and for all
    assert not [p for p in tmp_path.iterdir() if "journal" in p.name or "-new-" in p.name]


def test_an_unreadable_journal_is_reported_and_nothing_is_touched(tmp_path: Path) -> None:
    v = _tree(tmp_path / "v")
    journal = Path(transaction.sibling(str(v), "journal"))
    journal.write_text("{not json")
    with pytest.raises(RecoveryError, match="unreadable"):
        recover(str(v))
    assert journal.read_text() == "{not json"
    res = run_cli("repair", str(v))
    assert res.code == 2 and "unreadable" in res.out


def test_a_journal_pointing_elsewhere_is_refused(tmp_path: Path) -> None:
    v = _tree(tmp_path / "v")
    st = v.stat()
    j = Journal(str(v), "/etc/evil", str(tmp_path / ".v.b"), "test", (st.st_dev, st.st_ino))
    j.save()
    with pytest.raises(Unsafe, match="'/etc/evil', which is not a venvkeeper new directory"):
        recover(str(v))
    assert Path("/etc").exists()


def test_a_second_repair_of_a_locked_venv_fails_at_once(tmp_path: Path) -> None:
    v = _tree(tmp_path / "v")
    with locked(str(v)):
        with pytest.raises(Busy, match=str(os.getpid())), locked(str(v)):
            pass
        res = run_cli("repair", "--json", str(v))
    (r,) = validate_json("repair", res.out)["results"]
    assert res.code == 2 and r["outcome"] == "failed" and "another venvkeeper" in r["message"]
    assert not Path(transaction.sibling(str(v), "lock")).exists()  # released and removed


def test_rollback_without_a_backup_is_a_clear_failure(tmp_path: Path) -> None:
    v = _tree(tmp_path / "v")
    res = run_cli("rollback", str(v))
    assert res.code == 2 and "no backup" in res.out


def test_repair_of_a_path_that_is_not_a_venv(tmp_path: Path) -> None:
    # A path that does not exist is a usage error, as with --all (nothing to repair).
    for argv in (["repair"], ["repair", "--all"]):
        res = run_cli(*argv, str(tmp_path / "missing"))
        assert res.code == 3 and res.out == ""
        assert res.err == f"venvkeeper: error: {tmp_path / 'missing'}: does not exist\n"
    res = run_cli("repair", str(tmp_path))
    assert res.code == 2 and "not a virtual environment" in res.out


def test_repair_needs_paths_or_all() -> None:
    res = run_cli("repair")
    assert res.code == 3 and "--all" in res.err


@pytest.mark.parametrize("outcome", list(Outcome))
def test_every_outcome_renders(outcome: Outcome) -> None:
    r = RepairResult("/srv/a\x1b[31m", Strategy.REBUILD, outcome, "why", backup="/srv/.a.b")
    table = fmt.render_table([r])
    assert outcome.value in table and "\x1b" not in table  # control characters escaped
    doc = validate_json("repair", fmt.render_json([r]))
    assert doc["results"][0]["outcome"] == outcome.value
    assert f"1 {outcome.value}" in fmt.summary([r])


@pytest.mark.parametrize("choice", list(BackendChoice))
def test_every_backend_choice_gives_a_backend(choice: BackendChoice) -> None:
    backend = choose(choice, os.geteuid(), os.getegid())
    assert backend.name in ("uv", "pip")
    if choice is not BackendChoice.AUTO:
        assert backend.name == choice.value
