"""predict with consumers: which units, jobs and web servers a planned change breaks, and
how each fails.

One OS root (tests/consumer_world.py) with a distro prefix of its own (factory.FakeDistro:
``usr/bin/python3`` -> ``python3.11``), real venvs made with its ``python3`` and its
``python3.11``, units, a cron job, uWSGI and mod_wsgi configs whose modules say Python
3.11. The change repoints that root's ``python3`` to 3.13, as a release upgrade does. The
venvs' effects come from predict's own judgement (tests/test_predict.py holds it against
the ground truth); here, what each consumer does with them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from conftest import require_python, run_cli, validate_json
from consumer_world import World
from factory import FakeDistro, install, make_project, make_venv


def _site(w: World, name: str, venv: str, module: str = "mod_wsgi.so-3.11") -> None:
    w.write(
        f"/etc/apache2/sites-available/{name}.conf",
        f"<VirtualHost 127.0.0.1:8081>\n  WSGIDaemonProcess {name} python-home={venv}\n"
        f"  WSGIScriptAlias / /srv/{name}/app.wsgi process-group={name}\n</VirtualHost>\n",
    )
    w.link(f"/etc/apache2/sites-enabled/{name}.conf", f"../sites-available/{name}.conf")


def build(root: Path) -> World:
    """The world: see the module's docstring."""
    require_python("3.11")
    w = World(root)
    distro = FakeDistro(root / "usr")
    distro.install("3.11")
    py3 = distro.set_default("3.11")
    py311 = root / "usr/bin/python3.11"
    app = make_project(root.parent, "vkapp")
    made = (("svc", py3), ("pinned", py311), ("web", py3), ("wsgi", py311), ("idle", py3))
    for name, python in made:
        install(make_venv(python, root / "srv" / name / "venv"), app)
    units = "/etc/systemd/system"
    w.write(
        f"{units}/svc.service",
        "[Service]\nExecStart=/srv/svc/venv/bin/python -m app\n"
        "[Install]\nWantedBy=multi-user.target\n",
    )
    w.write(
        f"{units}/svc.service.d/path.conf",
        "[Service]\nEnvironment=PYTHONPATH=/srv/svc/venv/lib/python3.11/site-packages\n",
    )
    w.write(
        f"{units}/pinned.service",
        "[Service]\nExecStart=/srv/pinned/venv/bin/python -m app\n"
        "Environment=PYTHONPATH=/srv/pinned/venv/lib/python3.11/site-packages\n"
        "[Install]\nWantedBy=multi-user.target\n",
    )
    # the system's Python with the packages of svc's venv through a hard-coded path
    w.write(
        f"{units}/report.service",
        "[Service]\nExecStart=/usr/bin/python3 -m app.report\n"
        "Environment=PYTHONPATH=/srv/svc/venv/lib/python3.11/site-packages\n"
        "[Install]\nWantedBy=multi-user.target\n",
    )
    for u in ("svc", "pinned", "report"):
        w.link(f"{units}/multi-user.target.wants/{u}.service", f"{units}/{u}.service")
    w.write("/etc/cron.d/job", "0 3 * * * root /srv/svc/venv/bin/python -m job\n")
    # uWSGI (Debian's layout) with the python3 plugin of 3.11, through the alternatives
    w.write("/etc/init.d/uwsgi", "#!/bin/sh\n", 0o755)
    w.write(
        "/etc/uwsgi/apps-available/web.ini",
        "[uwsgi]\nplugins = python3\nhome = /srv/web/venv\nmodule = app:application\n",
    )
    w.link("/etc/uwsgi/apps-enabled/web.ini", "../apps-available/web.ini")
    w.write("/usr/lib/uwsgi/plugins/python311_plugin.so", "")
    w.link("/etc/alternatives/uwsgi-plugin-python3", "/usr/lib/uwsgi/plugins/python311_plugin.so")
    w.link("/usr/lib/uwsgi/plugins/python3_plugin.so", "/etc/alternatives/uwsgi-plugin-python3")
    # Apache with mod_wsgi for 3.11, serving a venv made with python3.11
    w.write(
        "/etc/apache2/apache2.conf",
        "IncludeOptional mods-enabled/*.load\nIncludeOptional sites-enabled/*.conf\n",
    )
    w.write(
        "/etc/apache2/mods-available/wsgi.load",
        "LoadModule wsgi_module /usr/lib/apache2/modules/mod_wsgi.so\n",
    )
    w.link("/etc/apache2/mods-enabled/wsgi.load", "../mods-available/wsgi.load")
    w.write("/usr/lib/apache2/modules/mod_wsgi.so-3.11", "")
    w.link("/usr/lib/apache2/modules/mod_wsgi.so", "mod_wsgi.so-3.11")
    _site(w, "wsgi", "/srv/wsgi/venv")
    return w


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    return build(tmp_path_factory.mktemp("predict-consumers") / "root")


def predict(w: World, *extra: str) -> dict[str, Any]:
    res = run_cli(
        "predict",
        "--json",
        "--system-root",
        str(w.root),
        "--no-processes",
        f"--python-becomes={w.root}/usr/bin/python3=3.13",
        *extra,
        str(w.root / "srv"),
    )
    assert res.code in (0, 1, 2), res.err
    return validate_json("predict", res.out)


def consumers(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Consumer name -> its prediction (with its venv's path and effect)."""
    out = {}
    for v in doc["venvs"]:
        for c in v["consumers"]:
            out[c["name"]] = {**c, "venv": v["path"], "effect": v["effect"]}
    return out


@pytest.mark.slow
def test_each_consumer_named_with_how_it_fails(world: World) -> None:
    w = world
    doc = predict(w)
    cs = consumers(doc)
    host = w.host
    svc = cs["svc.service"]
    assert svc["effect"] == "breaks-silently" and svc["breaks"] is True
    assert (
        svc["fails_how"] == "import-error" and svc["restart"] == "systemctl try-restart svc.service"
    )
    job = cs[host("/etc/cron.d/job") + ":1"]
    assert job["breaks"] and job["fails_how"] == "next-run"
    # the venv made with python3.11 survives: so does its unit
    pinned = cs["pinned.service"]
    assert pinned["effect"] == "survives" and not pinned["breaks"] and pinned["fails_how"] is None
    # uWSGI's plugin follows python3 to 3.13, its venv's packages stay 3.11: HTTP 500
    web = cs[host("/etc/uwsgi/apps-enabled/web.ini")]
    assert web["breaks"] and web["fails_how"] == "http-500"
    assert web["embedded_python"] == "3.11" and web["embedded_python_then"] == "3.13"
    # mod_wsgi: the venv itself survives (python3.11 stays), the server breaks it
    wsgi = cs["WSGIDaemonProcess wsgi"]
    assert wsgi["effect"] == "survives" and wsgi["breaks"] and wsgi["fails_how"] == "http-500"
    assert "uwsgi-plugin-python3" in web["why"] and "libapache2-mod-wsgi-py3" in wsgi["why"]
    assert doc["summary"]["consumers_breaking"] == 4
    # the idle venv has no consumers; every venv carries the list
    idle = next(v for v in doc["venvs"] if v["path"] == host("/srv/idle/venv"))
    assert idle["consumers"] == []


@pytest.mark.slow
def test_hard_coded_minor_breaks_even_after_the_repair(world: World) -> None:
    """report.service runs the system's python3 with svc's packages through a hard-coded
    lib/python3.11: the upgrade leaves that directory (pure packages import on 3.13), the
    repair of svc's venv onto 3.13 removes it. svc.service's own stale PYTHONPATH beside
    its venv's python is skipped by Python: no break after the repair."""
    cs = consumers(predict(world))
    report = cs["report.service"]
    assert report["venv"] == world.host("/srv/svc/venv") and report["ref"] == "sitepkgs-hardcode"
    assert not report["breaks"] and report["fails_how"] is None
    unit = world.host("/etc/systemd/system/report.service")
    assert report["after_repair"].startswith(f"{unit}:3 hard-codes lib/python3.11")
    assert "it must say lib/python3.13" in report["after_repair"]
    assert cs["svc.service"]["after_repair"] is None
    assert cs["pinned.service"]["after_repair"] is None  # the survivor is not repaired


@pytest.mark.slow
def test_table_names_units_and_jobs_and_how_they_fail(world: World) -> None:
    w = world
    res = run_cli(
        "predict",
        "--system-root",
        str(w.root),
        "--no-processes",
        f"--python-becomes={w.root}/usr/bin/python3=3.13",
        "--only-problems",
        str(w.root / "srv"),
    )
    assert res.code == 2, res.err
    text = res.out
    row = next(ln for ln in text.splitlines() if ln.startswith("breaks-silently") and "svc" in ln)
    assert "svc.service" in row  # USED BY names the unit, not only processes
    assert "consumers that would break:" in text
    assert "  svc.service starts and fails at import: its venv breaks-silently" in text
    assert "answers HTTP 500 while its server looks healthy" in text
    assert "broken even after the repair, until changed:" in text
    assert "4 consumers would break" in text
    # the mod_wsgi venv survives but is shown: its consumer breaks
    assert any(ln.startswith("survives") and "wsgi" in ln for ln in text.splitlines())


@pytest.mark.slow
def test_no_consumers_leaves_them_out(world: World) -> None:
    doc = predict(world, "--no-consumers")
    assert all("consumers" not in v for v in doc["venvs"])
    assert "consumers_breaking" not in doc["summary"]


@pytest.mark.slow
def test_apt_run_upgrading_only_the_module(world: World) -> None:
    """Through the library: an apt run that upgrades the mod_wsgi package while python3
    moves, and leaves uWSGI's plugin alone: only mod_wsgi's consumers follow. The uWSGI app
    keeps working on its plugin's 3.11 although its venv's own python3 breaks, and the
    venv's repair onto 3.13 would break it: predict says so. Without python3 moving,
    nothing breaks."""
    from venvkeeper.consumers import read_consumers
    from venvkeeper.predict.changes import Change, predict
    from venvkeeper.predict.consumers import judge_consumers
    from venvkeeper.scan.pipeline import ScanOptions, scan

    w = world
    report = scan(options=ScanOptions(roots=(str(w.root / "srv"),)))
    found = read_consumers(str(w.root), None)
    link = f"{w.root}/usr/bin/python3"
    change = Change(
        python_becomes=((link, "3.13"),), embedders=(("libapache2-mod-wsgi-py3", None),)
    )
    pred = judge_consumers(predict(report, change), found, change, root=str(w.root))
    by = {c.consumer.name: c for v in pred.venvs for c in v.consumers}
    assert by["WSGIDaemonProcess wsgi"].breaks
    web = by[w.host("/etc/uwsgi/apps-enabled/web.ini")]
    assert not web.breaks and web.fails_how is None and web.embedded_then == "3.11"
    assert web.after_repair is not None and "embeds Python 3.11" in web.after_repair
    quiet = Change(embedders=(("libapache2-mod-wsgi-py3", "3.11"),))
    pred = judge_consumers(predict(report, quiet), found, quiet, root=str(w.root))
    assert not any(c.breaks for v in pred.venvs for c in v.consumers)


def test_apt_run_packages_of_embedding_modules() -> None:
    """The interpreter packages of an apt run include the embedding modules' packages:
    upgraded with python3's minor, they are the change's embedders; upgraded alone, they
    are named and change no minor."""
    from venvkeeper.apt.hook import parse_input, python_change

    def hook(*lines: str) -> str:
        return "VERSION 3\nAPT::Architecture=amd64\n\n" + "\n".join(lines) + "\n"

    release = parse_input(
        hook(
            "python3 3.11.2-1+b1 amd64 allowed < 3.13.5-1 amd64 allowed **CONFIGURE**",
            "libapache2-mod-wsgi-py3 4.9.4-1+b2 amd64 same < 5.0.2-1 amd64 same **CONFIGURE**",
            "uwsgi-plugin-python3 2.0.21-5.1 amd64 same < 2.0.28-2 amd64 same **CONFIGURE**",
            "apache2 2.4.62-1 amd64 foreign < 2.4.65-2 amd64 foreign **CONFIGURE**",
        )
    )
    pc = python_change(release.actions)
    assert pc is not None and not pc.patch_only
    assert pc.change.python_becomes == ((None, "3.13"),)
    assert pc.change.embedders == (
        ("libapache2-mod-wsgi-py3", None),
        ("uwsgi-plugin-python3", None),
    )
    assert any(n.startswith("libapache2-mod-wsgi-py3 4.9.4-1+b2 -> 5.0.2-1") for n in pc.notes)
    from venvkeeper.predict.consumers import embedders

    assert embedders(pc.change) == {
        "libapache2-mod-wsgi-py3": "3.13",
        "uwsgi-plugin-python3": "3.13",
    }
    alone = python_change(
        parse_input(
            hook("uwsgi-plugin-python3 2.0.21-5 amd64 same < 2.0.21-5.1 amd64 same x.deb")
        ).actions
    )
    assert alone is not None and alone.patch_only and embedders(alone.change) == {}


@pytest.mark.parametrize("relative", [True, False])
def test_the_hosts_own_root_reads_a_config_through_its_link(tmp_path: Path, relative: bool) -> None:
    """With the root ``/`` (this host: what predict and repair read by default), a config
    that is a link (Debian's sites-enabled, apps-enabled, mods-enabled) is read through
    it, as in another root; a link loop is still an error."""
    from venvkeeper.consumers.rootfs import RootFS

    (tmp_path / "available").mkdir()
    (tmp_path / "enabled").mkdir()
    (tmp_path / "available/site.conf").write_text("WSGIDaemonProcess x python-home=/v\n")
    link = tmp_path / "enabled/site.conf"
    link.symlink_to("../available/site.conf" if relative else tmp_path / "available/site.conf")
    fs = RootFS("/")
    assert fs.read(str(link)).startswith(b"WSGIDaemonProcess x")
    loop = tmp_path / "enabled/loop.conf"
    loop.symlink_to("loop.conf")
    with pytest.raises(OSError):
        fs.read(str(loop))
