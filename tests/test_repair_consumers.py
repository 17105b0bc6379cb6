"""repair and the consumers of the venvs it repairs: the exact restarts and edits printed,
``--fix-consumers`` changing a hard-coded lib/pythonX.Y as a transaction, ``--restart``
through systemctl, and root acting on nothing another user can change.

One OS root (tests/consumer_world.py) with a distro prefix of its own (factory.FakeDistro)
whose python3 moves from 3.11 to 3.12, as a release upgrade does; a venv made with that
python3 with a wheel installed, units that run it, a unit that reaches its packages with
the system's python3 through ``PYTHONPATH=.../lib/python3.11/site-packages``. The repairs
are real (offline, from a wheelhouse). This host's PID 1 is not systemd: restarts run a
stand-in ``systemctl`` that records its arguments (the booted end-to-end test,
tests/test_consumers_e2e.py, restarts real units); edits are real files.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

import pytest

from conftest import User, require_python, run_cli, validate_json
from consumer_world import World
from factory import FakeDistro, build_wheel, install_from, make_project, make_venv

pytestmark = pytest.mark.slow

UNITS = "/etc/systemd/system"
HARD = "Environment=PYTHONPATH=/srv/svc/venv/lib/python3.11/site-packages"


class Setup:
    def __init__(self, root: Path) -> None:
        require_python("3.11")
        require_python("3.12")
        self.w = w = World(root)
        self.distro = FakeDistro(root / "usr")
        self.distro.install("3.11")
        py3 = self.distro.set_default("3.11")
        self.wheels = root.parent / "wheels"
        build_wheel(make_project(root.parent, "vkapp"), self.wheels)
        self.venv = make_venv(py3, root / "srv/svc/venv")
        install_from(self.venv, self.wheels, "vkapp==1.0")
        w.write(
            f"{UNITS}/svc.service",
            "[Service]\nExecStart=/srv/svc/venv/bin/python -m vkapp\n"
            "[Install]\nWantedBy=multi-user.target\n",
        )
        self.report = w.write(
            f"{UNITS}/report.service",
            f"[Service]\nExecStart=/usr/bin/python3 -m vkapp\n{HARD}\n"
            "[Install]\nWantedBy=multi-user.target\n",
        )
        for u in ("svc", "report"):
            w.link(f"{UNITS}/multi-user.target.wants/{u}.service", f"{UNITS}/{u}.service")
        # the upgrade: python3 becomes 3.12; 3.11 stays installed
        self.distro.install("3.12")
        self.distro.set_default("3.12")

    def repair(self, *extra: str, code: int = 0) -> dict[str, Any]:
        res = run_cli(
            "repair",
            "--json",
            "--offline",
            "--find-links",
            str(self.wheels),
            "--system-root",
            str(self.w.root),
            *extra,
            str(self.venv),
        )
        assert res.code == code, (res.out, res.err)
        return validate_json("repair", res.out)


def actions(doc: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    """(kind, unit or edited file) -> the action."""
    out = {}
    for a in doc["consumers"]:
        key = a["unit"] if a["kind"] == "restart" else a["edit"]["path"]
        out[(a["kind"], key)] = a
    return out


@pytest.fixture
def setup(tmp_path: Path) -> Setup:
    return Setup(tmp_path / "root")


def test_without_options_the_exact_commands_and_lines_are_printed(setup: Setup) -> None:
    s = setup
    before = s.report.read_text()
    res = run_cli(
        "repair",
        "--offline",
        "--find-links",
        str(s.wheels),
        "--system-root",
        str(s.w.root),
        str(s.venv),
    )
    assert res.code == 1, res.err  # repaired; a consumer is held until its line changes
    text = " ".join(res.out.split())  # the block wraps at the terminal's width
    assert "consumers of the repaired venvs:" in text
    edit = f"printed edit {s.report}:3 (report.service): repair --fix-consumers changes it"
    assert f"{edit} - {HARD} + {HARD.replace('3.11', '3.12')} " in text
    assert "printed systemctl try-restart svc.service (svc.service)" in text
    assert (
        "held systemctl try-restart report.service (report.service):"
        f" {s.report}:3 still hard-codes lib/python3.11" in text
    )
    assert s.report.read_text() == before  # printed, not changed


def test_fix_consumers_changes_the_line_as_a_transaction(setup: Setup) -> None:
    s = setup
    os.chmod(s.report, 0o640)
    doc = s.repair("--fix-consumers")
    assert doc["results"][0]["outcome"] == "repaired"
    edit = actions(doc)[("edit", str(s.report))]
    assert edit["outcome"] == "done" and edit["edit"]["line"] == 3
    assert edit["edit"]["old"] == HARD and edit["edit"]["new"] == HARD.replace("3.11", "3.12")
    text = s.report.read_text()
    assert HARD.replace("3.11", "3.12") in text and "3.11" not in text
    assert stat.S_IMODE(s.report.stat().st_mode) == 0o640  # the file's mode kept
    backups = sorted(s.report.parent.glob(".report.service.venvkeeper-backup-*"))
    assert len(backups) == 1 and HARD in backups[0].read_text()
    assert str(backups[0]) in edit["detail"]
    assert not list(s.report.parent.glob(".report.service.venvkeeper-new-*"))
    assert not list(s.report.parent.glob(".report.service.venvkeeper-lock"))
    # the repaired venv really has the package where the line now points
    assert (s.venv / "lib/python3.12/site-packages/vkapp").is_dir()
    # the units of another system's root are printed, never restarted from this host
    restart = actions(doc)[("restart", "report.service")]
    assert restart["outcome"] == "printed" and "run it there" in restart["detail"]


def test_dry_run_plans_and_changes_nothing(setup: Setup) -> None:
    s = setup
    before = s.report.read_text()
    doc = s.repair("--dry-run", "--fix-consumers", "--restart")
    assert doc["results"][0]["outcome"] == "planned"
    assert actions(doc)[("edit", str(s.report))]["outcome"] == "planned"
    assert s.report.read_text() == before


def _systemctl(tmp: Path, failed: tuple[str, ...] = ()) -> tuple[str, Path]:
    """A stand-in systemctl that appends its arguments to a log; ``is-failed`` answers
    yes (0) for the units of *failed* only, as systemd does (its queries are not logged)."""
    log = tmp / "systemctl.log"
    exe = tmp / "systemctl"
    units = " ".join(failed)
    exe.write_text(
        "#!/bin/sh\n"
        'if [ "$1" = is-failed ]; then\n'
        f'  for u in {units}; do [ "$3" = "$u" ] && exit 0; done; exit 1\n'
        "fi\n"
        f'echo "$*" >> {log}\n'
    )
    exe.chmod(0o755)
    return str(exe), log


def _act(
    s: Setup,
    tmp: Path,
    results: list[Any],
    running: dict[int, str],
    failed: tuple[str, ...] = (),
    **kw: Any,
) -> tuple[tuple[Any, ...], Path]:
    from venvkeeper.repair.consumers import ActOptions, consumer_actions
    from venvkeeper.scan.pipeline import ScanOptions, inspect_path

    exe, log = _systemctl(tmp, failed)
    proc = s.w.fake_proc(running)
    scan = s.w.read(proc)
    opts = ActOptions(systemctl=exe, **kw)
    return consumer_actions(results, opts, lambda p: inspect_path(p, ScanOptions()), scan), log


def _repaired(s: Setup) -> list[Any]:
    """A real repair of the venv, through the library, offline."""
    from venvkeeper.repair import RepairOptions, Sources, repair_all

    opts = RepairOptions(sources=Sources(None, (str(s.wheels),), True))
    results = repair_all([str(s.venv)], opts)
    assert results[0].outcome.value == "repaired", results[0].message
    return results


def test_restart_after_the_edit_with_a_daemon_reload(setup: Setup, tmp_path: Path) -> None:
    s = setup
    results = _repaired(s)
    running = {10: "/system.slice/svc.service", 11: "/system.slice/report.service"}
    done, log = _act(s, tmp_path, results, running, restart=True, fix=True)
    outcomes = {(a.kind.value, a.unit or (a.edit.path if a.edit else "")): a for a in done}
    assert outcomes[("edit", str(s.report))].outcome.value == "done"
    assert outcomes[("restart", "svc.service")].outcome.value == "done"
    assert outcomes[("restart", "report.service")].command == "systemctl try-restart report.service"
    # a unit's file changed: systemd reads it again first
    calls = log.read_text().splitlines()
    assert calls[0] == "daemon-reload"
    assert sorted(calls[1:]) == ["try-restart report.service", "try-restart svc.service"]


def test_never_restarted_into_a_venv_that_still_fails(setup: Setup, tmp_path: Path) -> None:
    """A repair that failed (no wheelhouse, offline): nothing is restarted into it."""
    from venvkeeper.repair import RepairOptions, Sources, repair_all

    s = setup
    results = repair_all([str(s.venv)], RepairOptions(sources=Sources(None, (), True)))
    assert results[0].outcome.value == "failed"
    done, log = _act(s, tmp_path, results, {10: "/system.slice/svc.service"}, restart=True)
    svc = next(a for a in done if a.unit == "svc.service")
    assert svc.outcome.value == "held" and "was not repaired" in svc.detail
    assert not log.exists()


def test_not_running_units_are_not_restarted(setup: Setup, tmp_path: Path) -> None:
    s = setup
    done, log = _act(s, tmp_path, _repaired(s), {}, restart=True, fix=True)
    svc = next(a for a in done if a.unit == "svc.service")
    assert svc.outcome.value == "not-running"
    assert "systemctl restart svc.service" in svc.detail  # enabled: how to start it
    assert not log.exists()


def test_a_unit_that_failed_on_its_broken_venv_is_restarted_once_it_works(
    setup: Setup, tmp_path: Path
) -> None:
    """An enabled unit that systemd says failed (it died on the broken venv: it is not
    running, so ``try-restart`` would leave it down) is restarted once its venv works; one
    that is merely stopped (an admin's choice) is left alone (the test above)."""
    s = setup
    done, log = _act(s, tmp_path, _repaired(s), {}, ("svc.service",), restart=True, fix=True)
    svc = next(a for a in done if a.unit == "svc.service")
    assert svc.outcome.value == "done", svc
    assert svc.command == "systemctl restart svc.service" and "had failed" in svc.detail
    assert "restart svc.service" in log.read_text().splitlines()


# --- root trusts nothing another user can change ----------------------------------------


def _give(path: Path, user: User) -> None:
    os.chown(path, user.uid, user.gid)


def test_a_drop_in_another_user_controls_makes_root_restart_nothing(
    setup: Setup, tmp_path: Path, unprivileged_user: User
) -> None:
    s = setup
    drop = s.w.write(f"{UNITS}/svc.service.d/override.conf", "[Service]\nNice=5\n")
    _give(drop, unprivileged_user)
    running = {10: "/system.slice/svc.service"}
    done, log = _act(s, tmp_path, _repaired(s), running, restart=True, fix=True)
    svc = next(a for a in done if a.unit == "svc.service")
    assert svc.outcome.value == "refused", svc
    assert str(drop) in svc.detail and unprivileged_user.name in svc.detail
    assert "try-restart svc.service" not in (log.read_text() if log.exists() else "")


def test_a_unit_file_another_user_can_write_is_not_edited(
    setup: Setup, tmp_path: Path, unprivileged_user: User
) -> None:
    s = setup
    before = s.report.read_text()
    os.chmod(s.report, 0o666)  # writable by every user
    done, log = _act(
        s, tmp_path, _repaired(s), {11: "/system.slice/report.service"}, fix=True, restart=True
    )
    edit = next(a for a in done if a.kind.value == "edit")
    assert edit.outcome.value == "refused" and "writable by every user" in edit.detail
    assert s.report.read_text() == before
    assert not list(s.report.parent.glob(".report.service.venvkeeper-*"))
    report = next(a for a in done if a.unit == "report.service")
    assert report.outcome.value == "refused" and "writable by every user" in report.detail
    assert "report.service" not in (log.read_text() if log.exists() else "")


def test_a_crontab_of_another_user_naming_roots_venv_is_not_edited(
    setup: Setup, tmp_path: Path, unprivileged_user: User
) -> None:
    """A user's crontab hard-codes root's venv: root changes no line of it."""
    s = setup
    line = "0 3 * * * PYTHONPATH=/srv/svc/venv/lib/python3.11/site-packages python3 -m vkapp\n"
    tab = s.w.write(f"/var/spool/cron/crontabs/{unprivileged_user.name}", line, 0o600)
    _give(tab, unprivileged_user)
    s.w.write("/etc/passwd", (s.w.p("/etc/passwd").read_text()
                              + f"{unprivileged_user.name}:x:{unprivileged_user.uid}:"
                              f"{unprivileged_user.gid}::/nonexistent:/bin/sh\n"))  # fmt: skip
    done, _ = _act(s, tmp_path, _repaired(s), {}, fix=True)
    edits = [a for a in done if a.kind.value == "edit" and a.edit and a.edit.path == str(tab)]
    assert edits and edits[0].outcome.value == "refused", done
    assert tab.read_text() == line


def test_hostile_consumer_files_never_make_root_act(setup: Setup, tmp_path: Path) -> None:
    """A FIFO drop-in, a drop-in that is a link out of the root, a huge environment
    file: each is a finding on its consumer or a refusal, never a hang or an edit."""
    s = setup
    d = s.w.p(f"{UNITS}/svc.service.d")
    d.mkdir(parents=True, exist_ok=True)
    os.mkfifo(d / "fifo.conf")
    (d / "out.conf").symlink_to("/etc/hostname")
    big = s.w.write("/etc/default/svc", "A=" + "x" * (9 << 20) + "\n")
    s.w.write(f"{UNITS}/svc.service.d/env.conf", "[Service]\nEnvironmentFile=/etc/default/svc\n")
    done, log = _act(s, tmp_path, _repaired(s), {10: "/system.slice/svc.service"}, restart=True)
    svc = next(a for a in done if a.unit == "svc.service")
    # root's own files, unreadable or not: systemd reads them, not us; the problems are
    # findings on the consumer, and the restart is systemd's to refuse
    assert svc.outcome.value == "done", svc
    problems = " ".join(
        f.message for c in s.w.read().consumers if c.name == "svc.service" for f in c.problems
    )
    assert "fifo.conf" in problems and "/etc/default/svc" in problems, problems
    assert log.read_text().splitlines() == ["try-restart svc.service"]
    assert big.stat().st_size > 9 << 20


def test_no_consumers_reads_none(setup: Setup) -> None:
    doc = setup.repair("--no-consumers", code=0)
    assert doc["results"][0]["outcome"] == "repaired" and "consumers" not in doc


# --- a server that embeds the venv: the venv follows the server's Python ----------------


def _embedded_world(tmp_path: Path) -> tuple[World, Path, Path, Path]:
    """A venv made with ``python3.11``, embedded by uWSGI (``home=``); then python3 and
    the uWSGI plugin move to 3.12 while python3.11 stays installed. (world, venv, wheels,
    the app's config)"""
    require_python("3.11")
    require_python("3.12")
    root = tmp_path / "root"
    w = World(root)
    distro = FakeDistro(root / "usr")
    distro.install("3.11")
    distro.set_default("3.11")
    wheels = tmp_path / "wheels"
    build_wheel(make_project(tmp_path, "vkapp"), wheels)
    venv = make_venv(root / "usr/bin/python3.11", root / "srv/web/venv")
    install_from(venv, wheels, "vkapp==1.0")
    w.write(
        "/etc/uwsgi/apps-available/web.ini",
        "[uwsgi]\nplugins = python3\nhome = /srv/web/venv\nmodule = vkapp\n",
    )
    w.link("/etc/uwsgi/apps-enabled/web.ini", "../apps-available/web.ini")
    w.write("/etc/init.d/uwsgi", "#!/bin/sh\n", 0o755)
    # the upgrade: python3 and the uWSGI plugin move to 3.12; python3.11 stays installed
    distro.install("3.12")
    distro.set_default("3.12")
    w.write("/usr/lib/uwsgi/plugins/python312_plugin.so", "")
    w.link("/etc/alternatives/uwsgi-plugin-python3", "/usr/lib/uwsgi/plugins/python312_plugin.so")
    w.link("/usr/lib/uwsgi/plugins/python3_plugin.so", "/etc/alternatives/uwsgi-plugin-python3")
    return w, venv, wheels, root / "etc/uwsgi/apps-available/web.ini"


def test_a_venv_a_server_embeds_is_rebuilt_for_the_servers_python(tmp_path: Path) -> None:
    """The venv itself works, but uWSGI's python3 plugin is now built for 3.12 and loads
    the venv's packages with its own libpython (a 500 for every request). ``repair --all``
    takes the venv although it is ok, and rebuilds it for 3.12 (its server's Python) with
    the same packages; then the server is reloaded, not held."""
    w, venv, wheels, _ = _embedded_world(tmp_path)
    root = w.root
    scan = run_cli("scan", "--json", "--no-record", str(venv))
    assert validate_json("scan", scan.out)["venvs"][0]["status"] == "ok"  # the venv alone
    res = run_cli(
        "repair", "--all", "--json", "--offline", "--find-links", str(wheels),
        "--system-root", str(root), str(root / "srv"),
    )  # fmt: skip
    doc = validate_json("repair", res.out)
    (r,) = doc["results"]
    assert r["path"] == str(venv) and r["outcome"] == "repaired", (r, res.err)
    assert r["target"]["version"] == "3.12", r
    assert (venv / "lib/python3.12/site-packages/vkapp").is_dir()
    cfg = (venv / "pyvenv.cfg").read_text()
    assert "3.12" in cfg, cfg
    reload = next(a for a in doc["consumers"] if a["kind"] == "restart")
    assert reload["outcome"] != "held", reload  # its server's Python now: not held
    # and what the repair says is so: the venv runs its package on 3.12
    import subprocess

    out = subprocess.run(
        [str(venv / "bin/python"), "-c", "import sys, vkapp; print(sys.version_info[:2])"],
        capture_output=True, text=True, timeout=60, check=True,
    ).stdout  # fmt: skip
    assert out.strip() == "(3, 12)"


def test_a_server_config_another_user_controls_makes_root_rebuild_nothing(
    tmp_path: Path, unprivileged_user: User
) -> None:
    """The same world, with the uWSGI app's config the user's: its word (``home=`` this
    venv) would have root rebuild root's venv on another Python; root takes nothing of it,
    and the venv (ok by itself) is left as it is."""
    w, venv, wheels, config = _embedded_world(tmp_path)
    _give(config, unprivileged_user)
    before = (venv / "pyvenv.cfg").read_text()
    res = run_cli(
        "repair", "--all", "--json", "--offline", "--find-links", str(wheels),
        "--system-root", str(w.root), str(w.root / "srv"),
    )  # fmt: skip
    doc = validate_json("repair", res.out)
    assert doc["results"] == [], doc
    assert (venv / "pyvenv.cfg").read_text() == before
