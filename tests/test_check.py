"""``venvkeeper check``: the monitoring plugin contract, on real venvs.

One status line first (``VENVKEEPER STATE - text | perfdata``), exit 0/1/2/3, performance
data as the plugin guidelines define it, and UNKNOWN (never a traceback) for the plugin's
own failures."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from venvkeeper.checks.registry import all_codes
from venvkeeper.errors import UsageError
from venvkeeper.inventory.monitor import PluginState, Thresholds

from conftest import require_unmanaged_python, run_cli, validate_json
from factory import break_venv, make_venv, system_venv

SRC = Path(__file__).resolve().parent.parent / "src"

# label=value[UOM];[warn];[crit];[min];[max] (Nagios plugin guidelines, section 2.6)
_NUM = r"-?\d+(?:\.\d+)?"
_RANGE = rf"(?:@?(?:~|{_NUM})?(?::(?:{_NUM})?)?)?"
_PERF = re.compile(
    rf"(?P<label>[^=' ]+|'[^=']+')=(?P<value>{_NUM})(?P<uom>s|us|ms|%|B|KB|MB|TB|c)?"
    rf"(?:;(?P<warn>{_RANGE})(?:;(?P<crit>{_RANGE})(?:;(?P<min>{_NUM})?(?:;(?P<max>{_NUM})?)?)?)?)?"
)
_STATUS_LINE = re.compile(r"VENVKEEPER (OK|WARNING|CRITICAL|UNKNOWN) - ([^|\n]*?)(?: \| (.*))?")


def parse(out: str) -> tuple[str, str, dict[str, re.Match[str]], list[str]]:
    """(state, text, perfdata by label, long output lines); asserts the format."""
    first, *rest = out.rstrip("\n").split("\n")
    m = _STATUS_LINE.fullmatch(first)
    assert m, f"not a plugin status line: {first!r}"
    perf: dict[str, re.Match[str]] = {}
    for item in (m.group(3) or "").split():
        pm = _PERF.fullmatch(item)
        assert pm, f"invalid performance data {item!r}"
        perf[pm.group("label")] = pm
    for line in rest:
        assert "|" not in line
    return m.group(1), m.group(2), perf, rest


def values(perf: dict[str, re.Match[str]]) -> dict[str, float]:
    return {k: float(m.group("value")) for k, m in perf.items()}


@pytest.fixture()
def world(tmp_path: Path) -> dict[str, Path]:
    """Two ok venvs (system Python), a warning (a base no package manager patches, such
    as pyenv's: unmanaged-base) and a critical one (its interpreter link dangles)."""
    tree = tmp_path / "tree"
    ok = system_venv(tree / "ok" / "venv")
    spare = system_venv(tree / "spare")
    warn = make_venv(require_unmanaged_python("3.11"), tree / "warn" / "venv")
    crit = system_venv(tree / "crit" / "venv")
    break_venv(crit)
    return {"tree": tree, "ok": ok, "warn": warn, "crit": crit, "spare": spare}


def test_critical(world: dict[str, Path]) -> None:
    res = run_cli("check", str(world["tree"]))
    assert res.code == 2 == PluginState.CRITICAL.exit_code
    state, text, perf, rest = parse(res.out)
    assert state == "CRITICAL"
    assert text == f"1 of 4 venvs broken: {world['crit']} (interpreter-dangling); 1 more not ok"
    assert values(perf) == {
        "venvs": 4,
        "ok": 2,
        "warning": 1,
        "unknown": 0,
        "critical": 1,
        "not_ok": 2,
        "ignored": 0,
        "scan_seconds": pytest.approx(values(perf)["scan_seconds"]),
    }
    assert perf["scan_seconds"].group("uom") == "s"
    # Thresholds as Nagios ranges: "0" alerts above 0, i.e. at least 1.
    assert perf["critical"].group("crit") == "0" and perf["not_ok"].group("warn") == "0"
    assert rest == [
        f"critical {world['crit']}: interpreter-dangling: bin/python is broken ("
        + rest[0].split(": bin/python is broken (", 1)[1],
        rest[1],
    ]
    assert rest[1].startswith(f"warning {world['warn']}: unmanaged-base: ")
    # The verdicts are the scan's.
    scan = validate_json("scan", run_cli("scan", "--json", "--no-record", str(world["tree"])).out)
    assert scan["summary"]["critical"] == 1 and scan["summary"]["warning"] == 1


def test_warning(world: dict[str, Path]) -> None:
    res = run_cli("check", "--ignore", str(world["crit"]), str(world["tree"]))
    assert res.code == 1
    state, text, perf, rest = parse(res.out)
    assert state == "WARNING"
    assert text == f"1 of 3 venvs not ok: {world['warn']} (unmanaged-base) (1 ignored)"
    assert values(perf)["ignored"] == 1 and values(perf)["venvs"] == 3
    assert len(rest) == 1


def test_ok(world: dict[str, Path]) -> None:
    res = run_cli("check", str(world["ok"]), str(world["spare"]))
    assert res.code == 0
    state, text, perf, rest = parse(res.out)
    assert (state, text, rest) == ("OK", "2 venvs ok", [])
    assert values(perf)["ok"] == 2 and values(perf)["not_ok"] == 0


def test_ok_with_nothing_found(tmp_path: Path) -> None:
    res = run_cli("check", str(tmp_path))
    assert res.code == 0
    assert parse(res.out)[:2] == ("OK", "no venvs found")


def test_thresholds(world: dict[str, Path]) -> None:
    tree = str(world["tree"])
    # One critical venv under --critical 2: below; it still counts as not ok (WARNING).
    res = run_cli("check", "--critical", "2", tree)
    state, text, perf, _ = parse(res.out)
    assert (res.code, state) == (1, "WARNING")
    assert text.startswith("2 of 4 venvs not ok: ")
    assert perf["critical"].group("crit") == "1"
    # And under --warning 3 as well: OK, naming what is below the thresholds.
    res = run_cli("check", "--critical", "2", "--warning", "3", tree)
    state, text, perf, rest = parse(res.out)
    assert (res.code, state) == (0, "OK")
    assert text.startswith("4 venvs, 2 not ok (below the thresholds): ")
    assert perf["not_ok"].group("warn") == "2" and len(rest) == 2
    # --warning 2 is reached by the two that are not ok.
    assert run_cli("check", "--critical", "2", "--warning", "2", tree).code == 1
    # Findings left out by code: the venv is judged again from what is left.
    res = run_cli(
        "check", "--ignore-code", "interpreter-dangling", "--ignore-code", "unmanaged-base", tree
    )
    assert res.code == 0, res.out
    assert parse(res.out)[1] == "4 venvs ok"
    # Globs: * matches across /.
    res = run_cli("check", "--ignore", f"{world['tree']}/c*", "--ignore", "*/warn/*", tree)
    assert res.code == 0 and parse(res.out)[1] == "2 venvs ok (2 ignored)"


@pytest.mark.parametrize(
    "argv",
    [
        ["--warning", "0"],
        ["--critical", "x"],
        ["--no-such-option"],
        ["--ignore-code", "no-such-code"],
        ["/nonexistent/root"],
    ],
)
def test_unknown_for_usage_errors(tmp_path: Path, argv: list[str]) -> None:
    res = run_cli("check", *argv, *([] if argv[0].startswith("/") else [str(tmp_path)]))
    assert res.code == 3
    assert res.out.startswith("VENVKEEPER UNKNOWN - ") and res.out.count("\n") == 1
    assert "Traceback" not in res.err


def test_unknown_in_a_real_process(tmp_path: Path) -> None:
    """As a monitoring system runs it: a child process, stdout and the exit status."""
    env = dict(os.environ, PYTHONPATH=str(SRC))
    for argv, code in ((["--warning", "-1"], 3), ([str(tmp_path / "missing")], 3), ([], 0)):
        res = subprocess.run(
            [sys.executable, "-m", "venvkeeper", "check", *argv, str(tmp_path)],
            capture_output=True,
            text=True,
            timeout=120,
            env=env,
        )
        assert res.returncode == code, res.stderr
        assert res.stdout.startswith("VENVKEEPER ")
        assert "Traceback" not in res.stderr


def test_unknown_for_an_internal_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A bug inside the check is UNKNOWN with its reason, never a traceback."""
    import venvkeeper.scan.pipeline

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("simulated bug\nsecond line")

    monkeypatch.setattr(venvkeeper.scan.pipeline, "scan", broken)
    state = tmp_path / "state"
    monkeypatch.setenv("VENVKEEPER_STATE_DIR", str(state))
    (tmp_path / "root").mkdir()
    res = run_cli("check", str(tmp_path / "root"))
    assert res.code == 3
    (saved,) = state.glob("crash-*.txt")  # the traceback, named in the one line
    assert res.out == (
        "VENVKEEPER UNKNOWN - internal error: RuntimeError: simulated bug\\x0asecond line"
        f" (traceback in {saved})\n"
    )
    assert "Traceback" not in res.out + res.err
    assert "RuntimeError: simulated bug" in saved.read_text()


def test_the_check_is_recorded_unless_told(world: dict[str, Path], tmp_path: Path) -> None:
    db = tmp_path / "inv.db"
    run_cli("check", "--db", str(db), str(world["tree"]))
    run_cli("check", "--db", str(db), "--no-record", str(world["tree"]))
    doc = validate_json("inventory", run_cli("inventory", "--json", "--db", str(db)).out)
    assert doc["scans"] == 1
    assert {v["path"]: v["status"] for v in doc["venvs"]}[str(world["crit"])] == "critical"


def test_paths_cannot_break_the_status_line(tmp_path: Path) -> None:
    """A '|' would start the performance data; a newline a second line: both escaped."""
    v = system_venv(tmp_path / "a|b\nc" / "venv")
    break_venv(v)
    res = run_cli("check", str(tmp_path))
    assert res.code == 2
    _, text, perf, rest = parse(res.out)
    assert "a\\x7cb\\x0ac/venv (interpreter-dangling)" in text
    assert values(perf)["critical"] == 1 and len(rest) == 1


def test_thresholds_validate() -> None:
    Thresholds().validate()
    Thresholds(warning=3, critical=5, ignore_codes=tuple(all_codes())).validate()
    with pytest.raises(UsageError, match=r"--warning must be 1 or more.*unknown finding code x"):
        Thresholds(warning=0, ignore_codes=("x",)).validate()


def test_every_plugin_state_has_its_exit_code() -> None:
    assert {s.name: s.exit_code for s in PluginState} == {
        "OK": 0,
        "WARNING": 1,
        "CRITICAL": 2,
        "UNKNOWN": 3,
    }


def test_a_venv_that_cannot_be_judged_is_a_warning_not_unknown(tmp_path: Path) -> None:
    """UNKNOWN is the plugin's own failure; a venv of unknown status is worth a look."""
    base = tmp_path / "base" / "bin"
    base.mkdir(parents=True)
    shutil.copy("/bin/true", base / "interp")  # no name, no stdlib: no version to read
    v = tmp_path / "tree" / "v"
    (v / "bin").mkdir(parents=True)
    (v / "pyvenv.cfg").write_text(f"home = {base}\nversion = 3.11.2\n")
    (v / "bin" / "python").symlink_to(base / "interp")
    res = run_cli("check", str(tmp_path / "tree"))
    state, text, perf, _ = parse(res.out)
    assert (res.code, state) == (1, "WARNING")
    assert text == f"1 of 1 venv not ok: {v} (version-unknown)"
    assert values(perf)["unknown"] == 1
