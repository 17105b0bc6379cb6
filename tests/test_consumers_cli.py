"""``venvkeeper consumers``, and USED BY in ``scan`` and ``show``: the table, the JSON
against its published schema, the exit code, the venvs nothing uses."""

from __future__ import annotations

from pathlib import Path

from conftest import run_cli, validate_json
from consumer_world import World


def _world(tmp_path: Path) -> World:
    w = World(tmp_path / "root")
    w.venv("/opt/app/venv")
    w.venv("/opt/idle/venv")
    w.write(
        "/etc/systemd/system/app.service",
        "[Service]\nExecStart=/opt/app/venv/bin/python -m app\n"
        "[Install]\nWantedBy=multi-user.target\n",
    )
    w.link(
        "/etc/systemd/system/multi-user.target.wants/app.service", "/etc/systemd/system/app.service"
    )
    w.write("/etc/cron.d/gone", "0 3 * * * root /opt/gone/venv/bin/python -m nightly\n")
    w.write("/etc/cron.d/report", "0 4 * * * root cd /opt/app && venv/bin/python -m report\n")
    return w


def test_consumers_table_and_exit_code(tmp_path: Path) -> None:
    w = _world(tmp_path)
    res = run_cli("consumers", "--system-root", str(w.root))
    assert res.code == 2, res.err  # the dangling cron job is critical
    assert "app.service" in res.out and "consumer-dangling" in res.out
    assert w.host("/opt/idle/venv") not in res.out  # counted, not listed
    assert "1 venv nothing uses (--unused lists them)" in res.out
    assert "3 consumers: 1 critical" in res.out
    res = run_cli("consumers", "--system-root", str(w.root), "--unused")
    assert f"venvs nothing uses:\n  {w.host('/opt/idle/venv')}\n" in res.out
    assert "1 venv nothing uses (" in res.out and "--unused lists" not in res.out


def test_consumers_json_matches_its_schema(tmp_path: Path) -> None:
    w = _world(tmp_path)
    res = run_cli("consumers", "--system-root", str(w.root), "--json")
    doc = validate_json("consumers", res.out)
    by = {c["name"]: c for c in doc["consumers"]}
    app = by["app.service"]
    assert app["venv"] == w.host("/opt/app/venv") and app["ref"] == "exec-interp"
    assert app["confidence"] == "exact" and app["enabled"] is True and app["running"] is None
    assert app["restart"]["command"] == "systemctl try-restart app.service"
    assert app["fails_how"] == {"loud": "will-not-start", "silent": "import-error"}
    gone = by[w.host("/etc/cron.d/gone") + ":1"]
    assert gone["status"] == "critical" and gone["findings"][0]["code"] == "consumer-dangling"
    assert gone["fails_how"]["loud"] == "next-run"
    assert doc["unused"] == [w.host("/opt/idle/venv")]
    assert doc["summary"]["consumers"] == 3 and doc["summary"]["worst"] == "critical"


def test_no_scan_lists_no_unused_venvs(tmp_path: Path) -> None:
    w = _world(tmp_path)
    res = run_cli("consumers", "--system-root", str(w.root), "--no-scan", "--json")
    doc = validate_json("consumers", res.out)
    assert doc["unused"] == [] and len(doc["consumers"]) == 3


def test_scan_and_show_say_what_uses_a_venv(tmp_path: Path) -> None:
    """scan and show read this host's consumers: on this test host none use the test's
    venvs, so USED BY is empty; the column, the block and the JSON field are there."""
    w = _world(tmp_path)
    res = run_cli("scan", "--no-record", str(w.root))
    assert "USED BY" in res.out
    res = run_cli("scan", "--no-record", "--json", str(w.root))
    doc = validate_json("scan", res.out)
    assert all(v["consumers"] == [] for v in doc["venvs"])
    res = run_cli("show", w.host("/opt/app/venv"))
    assert "used by:\n  nothing found" in res.out
    res = run_cli("show", "--json", w.host("/opt/app/venv"))
    assert validate_json("show", res.out)["venv"]["consumers"] == []
    res = run_cli("scan", "--no-record", "--no-consumers", "--json", str(w.root))
    assert "consumers" not in validate_json("scan", res.out)["venvs"][0]


def test_used_by_names_units_and_jobs(tmp_path: Path) -> None:
    """The renderers of scan and show, given the consumers read from a root."""
    from venvkeeper.consumers.judge import by_venv, real
    from venvkeeper.formats import json as json_format
    from venvkeeper.formats import table
    from venvkeeper.scan.pipeline import ScanOptions, scan

    w = _world(tmp_path)
    report = scan(options=ScanOptions(roots=(str(w.root),)))
    found = by_venv(w.read().consumers)
    used = {v.path: found.get(real(v.path), ()) for v in report.venvs}
    text = table.render(report, width=0, used_by=used)
    app_line = next(ln for ln in text.splitlines() if ln.split()[1:2] == [w.host("/opt/app/venv")])
    assert "app.service" in app_line and "cron " + w.host("/etc/cron.d/report") + ":1" in app_line
    rep = next(v for v in report.venvs if v.path == w.host("/opt/app/venv"))
    show = table.render_show(rep, used[rep.path])
    assert "  app.service: exec-interp (exact), enabled" in show
    doc = validate_json("scan", "".join(json_format.render_chunks(report, used)))
    names = {c["name"] for v in doc["venvs"] for c in v["consumers"]}
    assert "app.service" in names
