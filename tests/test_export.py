"""``venvkeeper export --prometheus``: metrics of a real scan, read back with the
Prometheus client's own parser and compared with the scan; written atomically."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from venvkeeper.formats.prometheus import STATUSES
from venvkeeper.model.findings import Severity

from conftest import require_unmanaged_python, run_cli, validate_json
from factory import break_venv, make_venv, system_venv


def samples(text: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    out: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(text):
        assert family.type == "gauge"
        for s in family.samples:
            out.setdefault(s.name, []).append((dict(s.labels), s.value))
    return out


@pytest.fixture()
def tree(tmp_path: Path) -> Iterator[Path]:
    root = tmp_path / "tree"
    system_venv(root / "ok")
    make_venv(require_unmanaged_python("3.11"), root / "warn")  # unmanaged-base
    break_venv(system_venv(root / "crit"))
    yield root


def _metrics_match_scan(text: str, scan: dict[str, Any], started: float) -> None:
    got = samples(text)
    venvs = {v["path"]: v for v in scan["venvs"]}
    # One-hot status: exactly one 1 per venv, on its status; labels from the scan.
    status = got["venvkeeper_venv_status"]
    assert len(status) == len(venvs) * len(STATUSES)
    for labels, value in status:
        v = venvs[labels["path"]]
        assert value == (1.0 if labels["status"] == v["status"] else 0.0)
        assert labels["creator"] == v["creator"]
        assert labels["python"] == (v["python"]["patch"] or v["python"]["now"] or "")
    assert {lab["path"]: lab["status"] for lab, val in status if val == 1.0} == {
        p: v["status"] for p, v in venvs.items()
    }
    # Findings: every finding of the scan, and nothing else.
    findings = sorted(
        (lab["path"], lab["code"], lab["severity"], val)
        for lab, val in got["venvkeeper_venv_finding"]
    )
    assert findings == sorted(
        (p, f["code"], f["severity"], 1.0) for p, v in venvs.items() for f in v["findings"]
    )
    assert got["venvkeeper_venvs"] == [({}, float(len(venvs)))]
    by_status = {lab["status"]: val for lab, val in got["venvkeeper_venvs_by_status"]}
    assert by_status == {s.value: float(scan["summary"][s.value]) for s in STATUSES}
    by_sev = {lab["severity"]: val for lab, val in got["venvkeeper_findings_by_severity"]}
    assert by_sev == {
        s.value: float(sum(f["severity"] == s.value for v in venvs.values() for f in v["findings"]))
        for s in Severity
        if s is not Severity.OK
    }
    ((_, ts),) = got["venvkeeper_scan_timestamp_seconds"]
    assert ts == pytest.approx(started, abs=1e-3)
    ((_, duration),) = got["venvkeeper_scan_duration_seconds"]
    assert duration == pytest.approx(scan["duration_seconds"], abs=1e-3)


def test_metrics_are_the_scan(tmp_path: Path, tree: Path) -> None:
    prom = tmp_path / "out" / "venvkeeper.prom"
    prom.parent.mkdir()
    db = tmp_path / "inv.db"
    res = run_cli("export", "--prometheus", str(prom), "--db", str(db), str(tree))
    assert res.code == 0, res.err
    assert res.out == ""
    text = prom.read_text()
    # The scan it made was recorded: the same verdicts, the same start.
    inv = validate_json("inventory", run_cli("inventory", "--json", "--db", str(db)).out)
    latest = inv["latest_scan"]
    scan = {
        "venvs": [v["last"] for v in inv["venvs"]],
        "summary": latest["summary"],
        "duration_seconds": latest["duration_seconds"],
    }
    assert {v["path"]: v["status"] for v in scan["venvs"]} == {
        str(tree / "ok"): "ok",
        str(tree / "warn"): "warning",
        str(tree / "crit"): "critical",
    }
    _metrics_match_scan(text, scan, latest["started_at_epoch"])
    assert sorted(os.listdir(prom.parent)) == ["venvkeeper.prom"]  # no temporary left
    assert (prom.stat().st_mode & 0o777) == 0o644


def test_from_inventory_exports_the_latest_recorded_scan(tmp_path: Path, tree: Path) -> None:
    db = tmp_path / "inv.db"
    res = run_cli("scan", "--json", "--db", str(db), str(tree))
    scan = validate_json("scan", res.out)
    started = validate_json("inventory", run_cli("inventory", "--json", "--db", str(db)).out)[
        "latest_scan"
    ]["started_at_epoch"]
    # The tree changes after the scan: the export tells the recorded scan, not the tree.
    break_venv(tree / "ok")
    prom = tmp_path / "m.prom"
    res = run_cli("export", "--from-inventory", "--db", str(db), "--prometheus", str(prom))
    assert res.code == 0, res.err
    _metrics_match_scan(prom.read_text(), scan, started)
    # It recorded nothing new.
    assert (
        validate_json("inventory", run_cli("inventory", "--json", "--db", str(db)).out)["scans"]
        == 1
    )


def test_the_file_is_replaced_atomically_with_mode_0644(tmp_path: Path, tree: Path) -> None:
    prom = tmp_path / "m.prom"
    prom.write_text("old\n")
    prom.chmod(0o600)
    inode = prom.stat().st_ino
    old_umask = os.umask(0o077)
    try:
        assert run_cli("export", "--no-record", "--prometheus", str(prom), str(tree)).code == 0
    finally:
        os.umask(old_umask)
    st = prom.stat()
    assert st.st_ino != inode  # a new file renamed over the old one, not rewritten in place
    assert st.st_mode & 0o777 == 0o644  # node_exporter, another user, must read it
    assert "venvkeeper_venvs 3.0" in prom.read_text()
    assert sorted(os.listdir(tmp_path)) == ["m.prom", "tree"]  # no temporary left


def test_export_errors(tmp_path: Path) -> None:
    res = run_cli(
        "export", "--no-record", "--prometheus", str(tmp_path / "no" / "m.prom"), str(tmp_path)
    )
    assert res.code == 3 and "directory does not exist" in res.err
    res = run_cli(
        "export",
        "--from-inventory",
        "--db",
        str(tmp_path / "none.db"),
        "--prometheus",
        str(tmp_path / "m.prom"),
    )
    assert res.code == 3 and "no inventory" in res.err
    res = run_cli(
        "export", "--from-inventory", "--prometheus", str(tmp_path / "m.prom"), str(tmp_path)
    )
    assert res.code == 3 and "give no ROOT" in res.err
    assert run_cli("export", str(tmp_path)).code == 3  # --prometheus is required
    assert not (tmp_path / "m.prom").exists()


def test_odd_paths_make_valid_metrics(tmp_path: Path) -> None:
    """Quotes, backslashes, newlines and bytes that are not UTF-8 in a venv's path."""
    root = tmp_path / "tree"
    odd = os.fsencode(str(root)) + b'/q"b\\s\nn\xff'
    system_venv(root / "plain" / "venv")
    os.rename(os.fsencode(str(root / "plain")), odd)  # venv itself refuses such a name
    prom = tmp_path / "m.prom"
    assert run_cli("export", "--no-record", "--prometheus", str(prom), str(root)).code == 0
    got = samples(prom.read_text())
    paths = {lab["path"] for lab, _ in got["venvkeeper_venv_status"]}
    # Not UTF-8: escaped as the scan's JSON does (\\xNN, backslash doubled, newline \\x0a).
    assert paths == {f'{root}/q"b\\\\s\\x0an\\xff/venv'}
