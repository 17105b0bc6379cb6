"""The remaining checks, each on a real venv, against what running it really does."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

import factory
from conftest import (
    User,
    host_tmpdir,
    remove_tree,
    require_python,
    require_unmanaged_python,
    run_cli,
    validate_json,
)
from factory import FakeDistro, imports_ok, install, make_project, make_venv, run_in_venv

pytestmark = pytest.mark.slow


def judge(v: Path, *extra: str) -> dict:
    res = run_cli("scan", "--json", *extra, str(v))
    assert res.code in (0, 1, 2), res.err
    venvs = {x["path"]: x for x in validate_json("scan", res.out)["venvs"]}
    return venvs[str(v)]


def codes(v: dict) -> list[str]:
    return [f["code"] for f in v["findings"]]


@pytest.fixture
def py311() -> Path:
    return require_python("3.11")


def test_missing_home_key_still_starts_and_is_only_a_warning(tmp_path: Path, py311: Path) -> None:
    v = make_venv(py311, tmp_path / "v")
    cfg = v / "pyvenv.cfg"
    cfg.write_text("".join(x for x in cfg.read_text().splitlines(True) if not x.startswith("home")))
    assert run_in_venv(v, "import sys; assert sys.prefix != sys.base_prefix").returncode == 0
    rep = judge(v)
    assert "cfg-no-home" in codes(rep) and rep["status"] == "warning"


def test_bom_and_crlf_in_pyvenv_cfg_are_harmless(tmp_path: Path, py311: Path) -> None:
    v = make_venv(py311, tmp_path / "v")
    cfg = v / "pyvenv.cfg"
    cfg.write_bytes(b"\xef\xbb\xbf" + cfg.read_bytes().replace(b"\n", b"\r\n"))
    assert run_in_venv(v, "import sys; assert sys.prefix != sys.base_prefix").returncode == 0
    rep = judge(v)
    assert rep["pyvenv_cfg"]["values"]["home"].endswith("/bin")
    assert rep["status"] != "critical"
    assert not {"cfg-malformed", "cfg-no-home"} & set(codes(rep))


def test_junk_lines_are_a_warning(tmp_path: Path, py311: Path) -> None:
    v = make_venv(py311, tmp_path / "v")
    with (v / "pyvenv.cfg").open("a") as f:
        f.write("this is not a key value line\n")
    assert run_in_venv(v, "pass").returncode == 0
    rep = judge(v)
    assert "cfg-malformed" in codes(rep) and rep["status"] == "warning"


def test_stale_versioned_link(tmp_path: Path, py311: Path) -> None:
    v = make_venv(py311, tmp_path / "v")
    (v / "bin" / "python3.10").symlink_to("/nonexistent/python3.10")
    assert run_in_venv(v, "pass").returncode == 0
    with pytest.raises(FileNotFoundError):
        subprocess.run([str(v / "bin" / "python3.10"), "-c", "pass"], timeout=30)
    rep = judge(v)
    assert "stale-link" in codes(rep) and rep["status"] == "warning"


def test_no_interpreter_at_all(tmp_path: Path, py311: Path) -> None:
    v = make_venv(py311, tmp_path / "v")
    for p in (v / "bin").glob("python*"):
        p.unlink()
    assert run_in_venv(v, "pass").returncode != 0
    rep = judge(v)
    assert rep["status"] == "critical" and codes(rep)[0] == "interpreter-missing"


def test_pyenv_shim_is_not_an_interpreter(tmp_path: Path, py311: Path) -> None:
    root = factory.pyenv_root()
    shim = root / "shims" / "python3" if root else None
    if shim is None or not shim.exists():
        pytest.skip("pyenv shims are not installed")
    v = make_venv(py311, tmp_path / "v")
    link = v / "bin" / "python"
    link.unlink()
    link.symlink_to(shim)
    assert shim.read_bytes().startswith(b"#!")
    rep = judge(v)
    assert "interpreter-not-binary" in codes(rep)


def test_copy_behind_its_patched_base(tmp_path: Path) -> None:
    if not FakeDistro.available("3.11"):
        pytest.skip("pyenv CPython 3.11 is needed")
    distro = FakeDistro(tmp_path / "usr")
    exe = distro.install("3.11")
    v = make_venv(exe, tmp_path / "v", copies=True)
    rep = judge(v)
    assert "copied-interpreter" in codes(rep) and "copy-behind-base" not in codes(rep)
    # A security update replaces the base binary; the venv's private copy stays as it was.
    new = tmp_path / "new-build"
    shutil.copy2(exe, new)
    with new.open("ab") as f:
        f.write(b"\0patched")
    os.replace(new, exe)
    assert (v / "bin" / "python3.11").read_bytes() != exe.read_bytes()
    assert run_in_venv(v, "pass").returncode == 0  # still runs: nobody notices
    rep = judge(v)
    assert "copy-behind-base" in codes(rep) and rep["status"] == "warning"


def test_system_python_venv_is_ok_and_pyenv_venv_is_unmanaged(tmp_path: Path) -> None:
    system = Path("/usr/bin/python3")
    if not system.exists():
        pytest.skip("no /usr/bin/python3")
    res = subprocess.run(
        [str(system), "-m", "venv", "--without-pip", str(tmp_path / "sys")],
        capture_output=True,
        timeout=120,
    )
    if res.returncode != 0:
        pytest.skip(f"the system python3 cannot make venvs: {res.stderr[-200:]!r}")
    rep = judge(tmp_path / "sys")
    assert rep["status"] == "ok", rep["findings"]
    assert rep["python"]["origin"] == "system"
    assert run_cli("scan", "-q", str(tmp_path / "sys")).code == 0
    py = require_unmanaged_python("3.11")
    root = factory.pyenv_root()
    origin = "pyenv" if root and py.is_relative_to(root / "versions") else "local"
    v = make_venv(py, tmp_path / "unmanaged")
    rep = judge(v)
    assert codes(rep) == ["unmanaged-base"] and rep["python"]["origin"] == origin


def test_deep_confirms_imports_as_the_owner(tmp_path: Path, unprivileged_user: User) -> None:
    # The owner must be able to run the base: pyenv's live under /root, so use the system's.
    py311 = Path("/usr/bin/python3")
    if not py311.exists():
        pytest.skip("no /usr/bin/python3 that an unprivileged user can run")
    top = host_tmpdir("deep")
    try:
        alpha = make_project(top, "alpha")
        good = make_venv(py311, top / "good")
        install(good, alpha)
        broken = make_venv(py311, top / "broken")
        install(broken, alpha)
        shutil.rmtree(broken / "lib" / "python3.11" / "site-packages" / "alpha")
        for v in (good, broken):
            subprocess.run(
                ["chown", "-R", f"{unprivileged_user.uid}:{unprivileged_user.gid}", str(v)],
                check=True,
                timeout=60,
            )
        assert imports_ok(good, "alpha") and not imports_ok(broken, "alpha")
        # Without --deep nothing runs and the damage is invisible to a static read...
        assert judge(broken)["deep"] is None
        # ...with --deep the probe runs as the owner, never as root.
        rg = judge(good, "--deep")
        assert rg["deep"]["ran"] and rg["deep"]["uid"] == unprivileged_user.uid
        assert "deep-import-failed" not in codes(rg)
        rb = judge(broken, "--deep")
        assert rb["deep"]["uid"] == unprivileged_user.uid
        assert codes(rb)[0] == "deep-import-failed" and rb["status"] == "critical"
    finally:
        remove_tree(top)


def test_deep_never_inherits_the_callers_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, py311: Path
) -> None:
    """needrestart's CVE-2024-48990: a PYTHONPATH from elsewhere must never reach the probe."""
    evil = tmp_path / "evil"
    evil.mkdir()
    marker = tmp_path / "pwned"
    (evil / "sitecustomize.py").write_text(f"open({str(marker)!r}, 'w').write('x')\n")
    (evil / "alpha.py").write_text(f"open({str(marker)!r}, 'w').write('x')\n")
    v = make_venv(py311, tmp_path / "v")
    monkeypatch.setenv("PYTHONPATH", str(evil))
    monkeypatch.setenv("PYTHONSTARTUP", str(evil / "alpha.py"))
    monkeypatch.chdir(evil)
    rep = judge(v, "--deep")
    assert rep["deep"]["ran"] is True
    assert not marker.exists()
    # And without --deep nothing at all is executed: the venv's python is never started.
    (v / "bin" / "python").unlink()
    (v / "bin" / "python").write_text(f"#!/bin/sh\ntouch {marker}\n")
    (v / "bin" / "python").chmod(0o755)
    judge(v)
    assert not marker.exists()


def test_deep_times_out_on_a_hanging_interpreter(tmp_path: Path, py311: Path) -> None:
    v = make_venv(py311, tmp_path / "v")
    (v / "bin" / "python").unlink()
    (v / "bin" / "python").write_text("#!/bin/sh\nexec sleep 60\n")
    (v / "bin" / "python").chmod(0o755)
    rep = judge(v, "--deep", "--deep-timeout", "1")
    assert rep["deep"]["ran"] is True
    assert "did not finish" in rep["deep"]["error"]
    assert "deep-start-failed" in codes(rep) and rep["status"] == "critical"


def test_a_script_run_by_the_system_python_is_not_a_move(tmp_path: Path, py311: Path) -> None:
    v = make_venv(py311, tmp_path / "v")
    tool = v / "bin" / "sys-tool"
    tool.write_text("#!/usr/bin/python3\nprint('hi')\n")
    tool.chmod(0o755)
    rep = judge(v)
    assert not {"moved", "scripts-foreign-interpreter"} & set(codes(rep))


def test_deep_reports_the_imports_a_minor_switch_broke(tmp_path: Path) -> None:
    """A venv made on 3.11 whose python3 link now leads to 3.12: its packages sit unseen in
    lib/python3.11, and --deep must say that they fail to import, as they do."""
    for minor in ("3.11", "3.12"):
        if not FakeDistro.available(minor):
            pytest.skip(f"pyenv CPython {minor} is needed for the simulated minor switch")
    distro = FakeDistro(tmp_path / "usr")
    distro.install("3.11")
    py3 = distro.set_default("3.11")
    six = make_project(tmp_path, "six")
    v = make_venv(py3, tmp_path / "app")
    install(v, six)
    assert imports_ok(v, "six")
    distro.install("3.12")
    distro.set_default("3.12")
    assert not imports_ok(v, "six")  # ground truth: the import really fails
    rep = judge(v, "--deep")
    assert rep["deep"]["ran"] and rep["deep"]["version"].startswith("3.12.")
    failed = rep["deep"]["failed_imports"]
    assert len(failed) == 1 and failed[0].startswith("six (ModuleNotFoundError"), failed
    assert "installed for Python 3.11 only" in failed[0]
    assert "deep-import-failed" in codes(rep)
