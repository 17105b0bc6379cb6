"""The CLI contract: exit codes, formats, the docs' generated blocks, and choices mapped
exhaustively."""

from __future__ import annotations

import argparse
import io
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from venvkeeper.checks.registry import CHECKS, all_codes
from venvkeeper.cli import ExitCode, exit_code_for
from venvkeeper.formats import OutputFormat, render
from venvkeeper.formats.envelope import Kind
from venvkeeper.formats.terminal import PLAIN
from venvkeeper.model.findings import Severity
from venvkeeper.model.plan import _BREAKING
from venvkeeper.scan.pipeline import scan

from conftest import base_codes, base_status, require_python, run_cli, validate_json
from factory import cache_dir, make_venv

ROOT = Path(__file__).parent.parent


def _block(page: str, name: str) -> str:
    text = (ROOT / "docs" / page).read_text()
    m = re.search(rf"<!-- generated:{name} -->\n(.*?)<!-- /generated:{name} -->", text, re.S)
    assert m, f"docs/{page} lacks the {name} block"
    return m.group(1)


def test_every_severity_maps_to_an_exit_code() -> None:
    expected = {
        Severity.OK: 0,
        Severity.INFO: 0,
        Severity.WARNING: 1,
        Severity.UNKNOWN: 1,
        Severity.CRITICAL: 2,
    }
    for sev in Severity:
        assert exit_code_for(sev) == expected[sev]


def test_every_output_format_renders(tmp_path: Path) -> None:
    report = scan([str(tmp_path)])
    for fmt in OutputFormat:
        assert render(fmt, Kind.SCAN, report, PLAIN).strip()


def test_docs_list_every_finding_code_with_its_severity() -> None:
    codes_table = _block("reference/codes.md", "codes")
    rows = dict(re.findall(r"^\| `([a-z0-9-]+)` \| (\w+) \|", codes_table, re.M))
    codes = all_codes()
    assert rows == {c: d.severity.value for c, d in codes.items()}


def test_check_registry_codes_are_unique_and_named() -> None:
    seen: set[str] = set()
    for check in CHECKS:
        for code in check.codes:
            assert re.fullmatch(r"[a-z][a-z0-9-]+", code)
            assert code not in seen
            seen.add(code)


def test_docs_blocks_match_the_code() -> None:
    """The usage, codes, configuration keys and JSON Schemas blocks of README.md and docs/
    are generated: python tools/update_docs.py --static."""
    if sys.version_info < (3, 10):
        pytest.skip("argparse says 'optional arguments' before 3.10")
    sys.path.insert(0, str(ROOT / "tools"))
    try:
        import update_docs
    finally:
        sys.path.pop(0)
    assert not update_docs.unknown_blocks()
    static = {name: make() for name, make in update_docs.STATIC.items()}
    assert update_docs.stale(static) == [], "run: python tools/update_docs.py --static"
    cli = (ROOT / "docs" / "reference" / "cli.md").read_text()
    assert update_docs.block_names(cli) == ["usage"]
    assert "usage: venvkeeper show" in _block("reference/cli.md", "usage")


def test_exit_code_0_for_ok(tmp_path: Path) -> None:
    system = Path("/usr/bin/python3")
    res = subprocess.run(
        [str(system), "-m", "venv", "--without-pip", str(tmp_path / "v")],
        capture_output=True,
        timeout=120,
    )
    if res.returncode != 0:
        pytest.skip("the system python3 cannot make venvs")
    assert run_cli("scan", str(tmp_path)).code == ExitCode.OK


def test_exit_code_0_when_nothing_is_found(tmp_path: Path) -> None:
    res = run_cli("scan", str(tmp_path))
    assert res.code == 0
    assert "0 venvs" in res.out


def test_exit_code_1_for_warning(tmp_path: Path) -> None:
    py = require_python("3.11")
    v = make_venv(py, tmp_path / "v")
    # sound: a warning only when no package manager patches its base (unmanaged-base)
    expected = ExitCode.WARNING if base_codes(py) else ExitCode.OK
    assert run_cli("scan", str(tmp_path)).code == expected
    (v / "bin" / "python3.99").symlink_to("/nonexistent/python3.99")  # whatever the base
    res = run_cli("scan", str(tmp_path))
    assert res.code == ExitCode.WARNING and "stale-link" in res.out


def test_exit_code_2_for_critical(tmp_path: Path) -> None:
    v = make_venv(require_python("3.11"), tmp_path / "v")
    (v / "bin" / "python").unlink()
    (v / "bin" / "python").symlink_to("/nonexistent/python3.11")
    res = run_cli("scan", str(tmp_path))
    assert res.code == ExitCode.CRITICAL
    assert "interpreter-dangling" in res.out


def test_exit_code_3_for_usage_errors(tmp_path: Path) -> None:
    assert run_cli("scan", str(tmp_path / "missing")).code == ExitCode.ERROR
    assert run_cli("scan", "--no-such-option").code == ExitCode.ERROR
    assert run_cli("scan", "--workers", "0", str(tmp_path)).code == ExitCode.ERROR
    assert run_cli("scan", "--deep-timeout", "-1", str(tmp_path)).code == ExitCode.ERROR
    assert run_cli().code == ExitCode.ERROR
    res = run_cli("show", str(tmp_path))
    assert res.code == ExitCode.ERROR and "not a virtual environment" in res.err


def test_only_problems_quiet_and_json(tmp_path: Path) -> None:
    py = require_python("3.11")
    make_venv(py, tmp_path / "a")
    b = make_venv(py, tmp_path / "b")
    (b / "bin" / "python").unlink()  # python3 still works, but scripts name bin/python
    a_status = base_status(py)  # a is sound: ok, or a warning on an unmanaged base
    full = run_cli("scan", str(tmp_path))
    assert str(tmp_path / "a") in full.out and str(tmp_path / "b") in full.out
    quiet = run_cli("scan", "-q", str(tmp_path))
    w = int(a_status == "warning")
    assert quiet.out.count("\n") == 1
    assert quiet.out.startswith(f"2 venvs: 1 critical, {w} warning, 0 unknown, {1 - w} ok (")
    doc = validate_json("scan", run_cli("scan", "--json", str(tmp_path)).out)
    assert doc["schema_version"] == 2 and doc["kind"] == "scan"
    assert doc["summary"]["venvs"] == 2 and doc["summary"]["worst"] == "critical"
    assert [v["status"] for v in doc["venvs"]] == ["critical", a_status]  # worst first
    for key in ("path", "status", "creator", "python", "findings", "packages"):
        assert key in doc["venvs"][0]


def test_show_prints_every_fact(tmp_path: Path) -> None:
    py = require_python("3.11")
    v = make_venv(py, tmp_path / "v")
    res = run_cli("show", str(v))
    assert res.code == (ExitCode.WARNING if base_codes(py) else ExitCode.OK)
    for label in ("findings:", "interpreter links:", "pyvenv.cfg:", "site-packages:", "python:"):
        assert label in res.out
    doc = validate_json("show", run_cli("show", "--json", str(v)).out)
    assert doc["venv"]["path"] == str(v) and (doc["schema_version"], doc["kind"]) == (2, "show")


def test_module_entry_point(tmp_path: Path) -> None:
    res = subprocess.run(
        [sys.executable, "-m", "venvkeeper", "scan", "-q", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert res.returncode == 0 and "0 venvs" in res.stdout


def test_size_on_request(tmp_path: Path) -> None:
    v = make_venv(require_python("3.11"), tmp_path / "v")
    doc = validate_json("scan", run_cli("scan", "--json", str(tmp_path)).out)
    assert doc["venvs"][0]["size_bytes"] is None
    doc = validate_json("scan", run_cli("scan", "--json", "--size", str(tmp_path)).out)
    assert doc["venvs"][0]["size_bytes"] > 0
    assert os.path.exists(v)


def test_hostile_names_are_escaped_in_every_format(tmp_path: Path) -> None:
    from venvkeeper.formats import table

    name = "evil\x1b[31m[bold]x\nnext\udcff"
    v = make_venv(require_python("3.11"), tmp_path / "v")
    target = os.fsencode(str(tmp_path)) + b"/" + os.fsencode(name)
    os.rename(v, target)
    report = scan([str(tmp_path)])
    assert len(report.venvs) == 1
    for text in (
        table.render(report, color=False),
        table.render(report, color=True, width=1000),
        table.render_show(report.venvs[0]),
    ):
        assert "\x1b[31m" not in text and "\nnext" not in text
        assert "\\x1b[31m[bold]x\\x0anext\\xff" in text
    doc = validate_json("scan", render(OutputFormat.JSON, Kind.SCAN, report, PLAIN))
    assert doc["venvs"][0]["path"].endswith("evil\\x1b[31m[bold]x\\x0anext\\xff")


def test_streamed_json_equals_the_whole_document(tmp_path: Path) -> None:
    from venvkeeper.formats import json as json_format

    py = require_python("3.11")
    make_venv(py, tmp_path / "a")
    make_venv(py, tmp_path / "b")
    report = scan([str(tmp_path)])
    streamed = validate_json("scan", "".join(json_format.render_chunks(report)))
    assert streamed == json_format.report_to_dict(report)
    assert len(streamed["venvs"]) == 2
    empty = scan([str(tmp_path / "a" / "bin")])
    assert validate_json("scan", json_format.render(empty))["venvs"] == []


def runtime_deps(py: Path, minor: str) -> Path:
    """venvkeeper's runtime dependencies installed for *minor* by its own pip (once)."""
    import hashlib

    try:
        import tomllib
    except ImportError:  # CPython 3.10 and older
        import tomli as tomllib  # type: ignore[no-redef]

    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    key = hashlib.sha256("\n".join(deps).encode()).hexdigest()[:12]
    target = cache_dir(f"deps-{minor}-{key}")
    if not (target / ".done").exists():
        res = subprocess.run(
            [
                str(py),
                "-m",
                "pip",
                "install",
                "-q",
                "--disable-pip-version-check",
                "--target",
                str(target),
                *deps,
            ],
            capture_output=True,
            text=True,
            timeout=600,
        )
        if res.returncode != 0:
            pytest.skip(
                f"cannot install venvkeeper's dependencies for {minor}: {res.stderr[-300:]}"
            )
        (target / ".done").touch()
    return target


@pytest.mark.slow
@pytest.mark.parametrize("minor", ["3.9", "3.10", "3.12", "3.13"])
def test_venvkeeper_itself_runs_on_every_supported_python(tmp_path: Path, minor: str) -> None:
    """The tool (not only the venvs it judges) runs on CPython 3.9 to 3.13, with the
    runtime dependencies that minor's own pip picks (packaging 26 left 3.9 behind)."""
    py = require_python(minor)
    base = require_python("3.11")
    make_venv(base, tmp_path / "tree" / "v")
    path = os.pathsep.join([str(ROOT / "src"), str(runtime_deps(py, minor))])
    res = subprocess.run(
        [str(py), "-m", "venvkeeper", "scan", "--json", "--no-record", str(tmp_path / "tree")],
        capture_output=True,
        text=True,
        timeout=120,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": path, "LANG": "C.UTF-8"},
    )
    assert res.returncode == (1 if base_codes(base) else 0), res.stderr
    theirs = validate_json("scan", res.stdout)["venvs"]
    ours = validate_json("scan", run_cli("scan", "--json", str(tmp_path / "tree")).out)["venvs"]
    assert [(v["path"], v["findings"]) for v in theirs] == [
        (v["path"], v["findings"]) for v in ours
    ]
    change = ["--python-becomes", "3.99", "--remove", str(require_python("3.11")), "--no-processes"]
    res = subprocess.run(
        [str(py), "-m", "venvkeeper", "predict", "--json", str(tmp_path / "tree"), *change],
        capture_output=True,
        text=True,
        timeout=120,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": path, "LANG": "C.UTF-8"},
    )
    assert res.returncode == 2, res.stderr
    theirs = validate_json("predict", res.stdout)["venvs"]
    ours = validate_json(
        "predict", run_cli("predict", "--json", str(tmp_path / "tree"), *change).out
    )["venvs"]
    assert [(v["path"], v["effect"], v["plan"]) for v in theirs] == [
        (v["path"], v["effect"], v["plan"]) for v in ours
    ]
    res = subprocess.run(
        [str(py), "-m", "venvkeeper", "restarts", "--json", "--no-judge"],
        capture_output=True,
        text=True,
        timeout=120,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": path, "LANG": "C.UTF-8"},
    )
    assert res.returncode in (0, 1), res.stderr
    assert validate_json("restarts", res.stdout)["kind"] == "restarts"


def test_every_effect_is_told_by_the_predict_outputs() -> None:
    from venvkeeper.formats.predict import predict_summary, prediction_to_dict, render_predict
    from venvkeeper.model.plan import ChangeDescription, Effect, Prediction, VenvPrediction
    from venvkeeper.model.report import Report, ScanStats, VenvReport
    from venvkeeper.model.venv import VenvKind
    from venvkeeper.scan.inspect import empty_facts

    venvs = []
    for e in Effect:
        rep = VenvReport(empty_facts(f"/v/{e.value}", VenvKind.VENV, "x"), ())
        venvs.append(VenvPrediction(rep, None if e is Effect.REMOVED else rep, e))
    scan = Report((), tuple(v.now for v in venvs), (), (), ScanStats())
    pred = Prediction(ChangeDescription(), scan, tuple(venvs))
    summary = predict_summary(pred)
    table = render_predict(pred)
    doc = prediction_to_dict(pred)
    for e in Effect:
        assert f"1 {e.value}" in summary
        assert any(ln.split()[:2] == [e.value, f"/v/{e.value}"] for ln in table.splitlines() if ln)
        assert doc["summary"][e.value] == 1
    assert f"{len(_BREAKING)} would break" in summary


def test_every_strategy_and_requirement_kind_renders() -> None:
    from venvkeeper.formats.predict import plan_summary, plan_to_dict
    from venvkeeper.model.plan import RepairPlan, Requirement, RequirementKind, Strategy, Target

    for strategy in Strategy:
        for kind in RequirementKind:
            plan = RepairPlan(
                "/v",
                strategy,
                "why",
                target=Target("/usr/bin/python3", "/usr/bin/python3.12", "3.12"),
                packages=(Requirement("a", "1", kind, "a==1"),),
                tool_command="pipx reinstall a",
            )
            doc = plan_to_dict(plan)
            assert doc is not None and doc["strategy"] == strategy.value
            assert doc["packages"][0]["kind"] == kind.value
            assert plan_summary(plan) == "-" or plan_summary(plan).startswith(strategy.value)


def test_the_parser_spells_the_repair_backends_as_the_library_does() -> None:
    """The parser names the backends without importing the repair machinery."""
    from venvkeeper.cli._common import BACKENDS
    from venvkeeper.repair import BackendChoice

    assert tuple(c.value for c in BackendChoice) == BACKENDS


def test_a_command_line_parses_the_same_with_only_its_command_built() -> None:
    """main() builds only the options of the command it runs (start-up): every command
    line must parse to the same values as with the whole parser."""
    from venvkeeper.cli.main import build_parser, command_of

    lines = [
        ["scan", "--json", "--no-record", "/srv", "--exclude", "x"],
        ["--config", "/etc/x.toml", "restarts", "--json", "--proc-root", "/p"],
        ["show", "/srv/v"],
        ["predict", "--python-becomes", "3.12", "/srv"],
        ["repair", "--all", "--dry-run", "--backend", "pip", "/srv"],
        ["rollback", "--list", "/srv/v"],
        ["check", "--warning", "2", "--critical", "3", "/srv"],
        ["apt-hook", "post-invoke", "--proc-root", "/p", "/srv"],
        ["matrix", "--host-profile", "a.json", "/srv"],
        ["codes"],
    ]
    for argv in lines:
        only = command_of(argv)
        assert only == next(w for w in argv if not w.startswith("-") and not w.endswith(".toml"))
        whole = vars(build_parser().parse_args(argv))
        lean = vars(build_parser(only=only).parse_args(argv))
        assert {k: v for k, v in lean.items() if k != "func"} == {
            k: v for k, v in whole.items() if k != "func"
        }, argv
        assert lean["func"].__qualname__ == whole["func"].__qualname__


# --- the structure of the command line (issue 23) ----------------------------------------


def _commands() -> dict[str, argparse.ArgumentParser]:
    """Every (sub)command's parser, by its words (``apt-hook pre-install``)."""
    from venvkeeper.cli.main import build_parser

    found: dict[str, argparse.ArgumentParser] = {}

    def walk(p: argparse.ArgumentParser, prefix: str) -> None:
        for a in p._actions:
            if isinstance(a, argparse._SubParsersAction):
                for name, sub in a.choices.items():
                    words = f"{prefix} {name}".strip()
                    found[words] = sub
                    walk(sub, words)

    walk(build_parser(), "")
    return found


def test_no_cli_module_is_over_400_lines() -> None:
    for path in sorted((ROOT / "src" / "venvkeeper" / "cli").glob("*.py")):
        n = len(path.read_text().splitlines())
        assert n <= 400, f"{path.name}: {n} lines"


def test_every_command_takes_the_frozen_context() -> None:
    """Each command is ``func(args, ctx)``: the configuration, the streams and what the
    terminal allows come in the context main built once, never through the Namespace."""
    import inspect

    from venvkeeper.cli.context import Context

    funcs = {w: p.get_default("func") for w, p in _commands().items()}
    funcs = {w: f for w, f in funcs.items() if f is not None}
    assert {"scan", "matrix", "apt-hook pre-install", "rollback", "codes"} <= set(funcs)
    for words, func in funcs.items():
        assert list(inspect.signature(func).parameters) == ["args", "ctx"], words
    ctx = Context(io.StringIO(), io.StringIO())
    with pytest.raises(AttributeError, match="frozen"):
        ctx.debug = True  # type: ignore[misc]
    with pytest.raises(AttributeError):
        ctx.loaded_config = None  # type: ignore[attr-defined]


def test_every_format_renders_every_kind_a_command_prints() -> None:
    """--format picks an OutputFormat; each is one module whose RENDERERS cover every kind
    a command prints (host-profile writes only its profile), and --format offers each."""
    for fmt in OutputFormat:
        assert set(fmt.renderers) == set(Kind) - {Kind.HOST_PROFILE}, fmt
    with_format = {w for w, p in _commands().items() if "--format" in p._option_string_actions}
    assert {w for w, p in _commands().items() if "--json" in p._option_string_actions} == (
        with_format
    )
    assert "check" not in with_format and "export" not in with_format
    choices = _commands()["scan"]._option_string_actions["--format"].choices
    assert list(choices or ()) == [f.value for f in OutputFormat]


def test_json_is_format_json(tmp_path: Path) -> None:
    assert run_cli("codes", "--json").out == run_cli("codes", "--format", "json").out
    assert run_cli("codes").out == run_cli("codes", "--format", "table").out
    assert validate_json("codes", run_cli("codes", "--format=json").out)["codes"]
    for argv in (["rollback", "--list"], ["prune-backups"]):
        table = run_cli(*argv, str(tmp_path))
        doc = run_cli(*argv, "--format", "json", str(tmp_path))
        assert table.code == doc.code == 0, table.err + doc.err
        kind = "rollback-list" if argv[0] == "rollback" else argv[0]
        validate_json(kind, doc.out)
        assert table.out in (
            f"no backups of {tmp_path}\n",
            "0 backups deleted, 0 venvs with backups\n",
        )
    res = run_cli("codes", "--format", "yaml")
    assert res.code == 3 and "invalid choice: 'yaml'" in res.err
