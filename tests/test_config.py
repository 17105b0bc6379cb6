"""The configuration file: every kind of error names its file and line; a valid file
changes a real scan (roots, exclude, severity, ignore, policy); options override it."""

from __future__ import annotations

from pathlib import Path

import pytest

from venvkeeper.config import KEYS, Config, _toml, load_config, parse_text
from venvkeeper.errors import ConfigError
from venvkeeper.model.findings import Severity

from conftest import json_kind, require_unmanaged_python, run_cli, validate_json
from factory import make_venv


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def _error(tmp_path: Path, text: str) -> str:
    path = _write(tmp_path / "config.toml", text)
    with pytest.raises(ConfigError) as e:
        load_config(str(path))
    return str(e.value)


# --- errors: each names the file and the line ------------------------------------------

ERRORS = {
    "syntax": ('[scan]\nroots = ["/srv"\n', ":3: invalid TOML"),
    "unknown-key": (
        '# comment\n\n[scan]\nroots = ["/srv"]\nrots = ["/x"]\n',
        ':5: unknown key "rots" in [scan] (did you mean "roots"?)',
    ),
    "unknown-table": (
        '[scna]\nroots = ["/srv"]\n',
        ':1: unknown key "scna" (did you mean "scan"?)',
    ),
    "wrong-type": (
        "[scan]\n\nnetwork_filesystems = 1\n",
        ":3: network_filesystems in [scan] must be true or false, not 1",
    ),
    "not-a-list": (
        '[scan]\nroots = "/srv"\n',
        ':2: roots in [scan] must be a list of strings, not "/srv"',
    ),
    "relative-root": (
        '[scan]\nroots = ["srv"]\n',
        ':2: roots in [scan]: "srv" must be an absolute path',
    ),
    "unknown-code": (
        '[severity]\n"pth-imports" = "info"\n',
        ':2: unknown finding code "pth-imports" (did you mean "pth-import"?)',
    ),
    "bad-severity": (
        '[severity]\n"pth-import" = "low"\n',
        ':2: "pth-import" must be one of info, warning, unknown, critical, not "low"',
    ),
    "ok-severity": ('[severity]\n"pth-import" = "ok"\n', 'use "info"'),
    "bad-threshold": ("[check]\nwarning = -1\n", ":2: warning in [check] must be a whole number"),
    "bool-threshold": (
        "[check]\ncritical = true\n",
        ":2: critical in [check] must be a whole number",
    ),
    "ignore-in-a-table": (
        '[policy]\nallowed_bases = ["/usr/bin/*"]\nignore = ["/tmp/*"]\n',
        ':3: unknown key "ignore" in [policy] (ignore is a top-level key',
    ),
    "key-of-another-table": (
        'roots = ["/srv"]\n',
        ':1: unknown key "roots" (it belongs in [scan])',
    ),
    "deep-nesting": ("ignore = " + "[" * 100_000 + "\n", ": invalid TOML: nested too deeply"),
    "check-code": ('[check]\nignore_codes = ["nope"]\n', ':2: unknown finding code "nope"'),
    "relative-base": (
        '[policy]\nallowed_bases = ["usr/bin/python3"]\n',
        ":2: allowed_bases in [policy]",
    ),
}


@pytest.mark.parametrize("kind", sorted(ERRORS))
def test_each_error_names_the_file_and_line(tmp_path: Path, kind: str) -> None:
    text, expected = ERRORS[kind]
    msg = _error(tmp_path, text)
    assert msg.startswith(str(tmp_path / "config.toml") + ":"), msg
    assert expected in msg, msg


def test_every_problem_is_collected(tmp_path: Path) -> None:
    msg = _error(
        tmp_path,
        '[scan]\nrots = []\none_file_system = "yes"\n[severity]\n"nope" = "info"\n',
    )
    lines = msg.splitlines()
    assert [ln.split(": ", 1)[0].rsplit(":", 1)[1] for ln in lines] == ["2", "3", "5"], msg


def test_dotted_and_quoted_keys_are_located() -> None:
    with pytest.raises(ConfigError, match=r"^c.toml:2: unknown key \"rots\" in \[scan\]"):
        parse_text('ignore = []\nscan.rots = ["/x"]\n', "c.toml")
    with pytest.raises(ConfigError, match=r"^c.toml:3: unknown key"):
        parse_text('[ "scan" ]\n"roots" = ["/x"]\n\'rots\' = 1\n', "c.toml")


def test_the_cli_reports_config_errors_with_exit_3_and_no_traceback(tmp_path: Path) -> None:
    cfg = _write(tmp_path / "bad.toml", '[scan]\nrots = ["/srv"]\n')
    for argv in (
        ["--config", str(cfg), "scan", str(tmp_path)],
        ["--config", str(cfg), "predict", str(tmp_path), "--no-processes"],
        ["--config", str(cfg), "restarts"],
        ["--config", str(tmp_path / "missing.toml"), "scan", str(tmp_path)],
    ):
        res = run_cli(*argv)
        assert res.code == 3, (argv, res.err)
        assert res.err.startswith("venvkeeper: error: " + str(tmp_path)), res.err
        assert "Traceback" not in res.err
    assert f"{cfg}:2: unknown key" in run_cli("--config", str(cfg), "scan").err


def test_environment_variable_names_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = _write(tmp_path / "env.toml", "[scan]\none_file_system = true\n")
    monkeypatch.setenv("VENVKEEPER_CONFIG", str(cfg))
    assert load_config() == Config(one_file_system=True, sources=(str(cfg),))


def test_user_file_overrides_the_system_file_key_by_key(tmp_path: Path) -> None:
    system = _write(
        tmp_path / "etc.toml",
        '[scan]\nroots = ["/srv"]\nexclude = ["node_modules"]\n'
        '[severity]\n"pth-import" = "info"\n"unmanaged-base" = "critical"\n',
    )
    user = _write(
        tmp_path / "user.toml",
        '[scan]\nroots = ["/home"]\n[severity]\n"unmanaged-base" = "info"\n'
        "[check]\nwarning = 1\ncritical = 3\nignore_codes = []\n",
    )
    cfg = load_config(system=str(system), user=str(user))
    assert cfg.roots == ("/home",)
    assert cfg.exclude == ("node_modules",)
    assert dict(cfg.severity) == {"pth-import": Severity.INFO, "unmanaged-base": Severity.INFO}
    assert (cfg.check_warning, cfg.check_critical, cfg.check_ignore_codes) == (1, 3, ())
    assert cfg.sources == (str(system), str(user))
    # absent files are fine, and an empty file sets nothing
    assert load_config(system=str(tmp_path / "none"), user=str(tmp_path / "none2")) == Config()
    assert load_config(str(_write(tmp_path / "empty.toml", ""))).roots == ()


def test_the_docs_example_is_a_valid_config_that_sets_every_key() -> None:
    page = Path(__file__).parent.parent / "docs" / "reference" / "configuration.md"
    text = page.read_text()
    start = text.index("<!-- config-example:start -->")
    block = text[start:].split("```toml\n", 1)[1].split("```", 1)[0]
    cfg = Config(**parse_text(block, "configuration.md"))
    assert cfg.roots and cfg.exclude and cfg.severity and cfg.allowed_bases and cfg.ignore
    assert cfg.check_warning is not None and cfg.check_critical is not None
    # every key of the schema (the reference's table) is set in the example, so each has
    # a validator (an entry of KEYS without one would fail the parse above)
    doc = _toml().loads(block)
    for key in KEYS:
        if key.table is None:
            assert key.name in doc, key
        elif key.table == "severity":
            assert doc["severity"], key
        else:
            assert key.name in doc[key.table], key


def test_a_key_outside_the_schema_is_refused() -> None:
    """KEYS is the one schema: what it does not name, the validator refuses."""
    for table in sorted({k.table for k in KEYS if k.table not in (None, "severity")}):
        with pytest.raises(ConfigError, match="unknown key"):
            parse_text(f"[{table}]\nnot_a_key = 1\n")
    with pytest.raises(ConfigError, match="unknown key"):
        parse_text("not_a_key = 1\n")


# --- a valid file changes a real scan ---------------------------------------------------


def _scan(*args: str) -> tuple[int, dict[str, dict]]:
    res = run_cli(*args)
    assert res.code in (0, 1, 2), res.err
    doc = validate_json(json_kind(args), res.out)
    return res.code, {v["path"]: v for v in doc["venvs"]}


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """srv/app (a 3.11 no package manager patches, such as pyenv's: unmanaged-base),
    srv/cache/tmpenv, srv/system (the system python3), other/elsewhere."""
    root = tmp_path_factory.mktemp("cfgtree")
    py = require_unmanaged_python("3.11")
    make_venv(py, root / "srv" / "app")
    make_venv(py, root / "srv" / "cache" / "tmpenv")
    make_venv(py, root / "other" / "elsewhere")
    system = Path("/usr/bin/python3")
    if not system.exists():
        pytest.skip("no /usr/bin/python3")
    make_venv(system, root / "srv" / "system")
    return root


def test_roots_and_exclude_from_the_config(tree: Path, tmp_path: Path) -> None:
    cfg = _write(
        tmp_path / "c.toml",
        f'[scan]\nroots = ["{tree}/srv"]\nexclude = ["cache"]\n',
    )
    _, venvs = _scan("--config", str(cfg), "scan", "--json")
    assert set(venvs) == {f"{tree}/srv/app", f"{tree}/srv/system"}
    # a root on the command line replaces the configured ones; excludes add up
    _, venvs = _scan("--config", str(cfg), "scan", "--json", str(tree), "--exclude", "other")
    assert set(venvs) == {f"{tree}/srv/app", f"{tree}/srv/system"}
    _, venvs = _scan("--config", str(cfg), "scan", "--json", str(tree))
    assert f"{tree}/other/elsewhere" in venvs


def test_severity_override_changes_status_and_exit_code(tree: Path, tmp_path: Path) -> None:
    code, venvs = _scan("scan", "--json", f"{tree}/srv/app")
    assert code == 1 and venvs[f"{tree}/srv/app"]["status"] == "warning"
    cfg = _write(tmp_path / "c.toml", '[severity]\n"unmanaged-base" = "info"\n')
    code, venvs = _scan("--config", str(cfg), "scan", "--json", f"{tree}/srv/app")
    v = venvs[f"{tree}/srv/app"]
    assert code == 0 and v["status"] == "ok"
    assert [(f["code"], f["severity"]) for f in v["findings"]] == [("unmanaged-base", "info")]
    cfg = _write(tmp_path / "c2.toml", '[severity]\n"unmanaged-base" = "critical"\n')
    assert run_cli("--config", str(cfg), "scan", f"{tree}/srv/app").code == 2
    assert run_cli("--config", str(cfg), "show", f"{tree}/srv/app").code == 2


def test_ignore_leaves_venvs_out(tree: Path, tmp_path: Path) -> None:
    cfg = _write(
        tmp_path / "c.toml",
        f'ignore = ["{tree}/srv/cache/*", "{tree}/other"]\n\n[scan]\nroots = ["{tree}"]\n',
    )
    _, venvs = _scan("--config", str(cfg), "scan", "--json")
    assert set(venvs) == {f"{tree}/srv/app", f"{tree}/srv/system"}
    res = run_cli("--config", str(cfg), "predict", "--json", "--no-processes")
    assert {v["path"] for v in validate_json("predict", res.out)["venvs"]} == set(venvs)


def test_policy_allowed_bases(tree: Path, tmp_path: Path) -> None:
    cfg = _write(
        tmp_path / "c.toml",
        f'[scan]\nroots = ["{tree}/srv"]\n\n[policy]\nallowed_bases = ["/usr/bin/python3*"]\n',
    )
    _, venvs = _scan("--config", str(cfg), "scan", "--json")
    codes = {p: [f["code"] for f in v["findings"]] for p, v in venvs.items()}
    assert "base-not-allowed" in codes[f"{tree}/srv/app"]
    assert "base-not-allowed" not in codes[f"{tree}/srv/system"]
    # predict judges the venvs after the change under the same policy
    res = run_cli("--config", str(cfg), "predict", "--json", "--no-processes")
    pred = {v["path"]: v for v in validate_json("predict", res.out)["venvs"]}
    then = [f["code"] for f in pred[f"{tree}/srv/app"]["findings_then"]]
    assert "base-not-allowed" in then
    assert pred[f"{tree}/srv/app"]["effect"] == "survives"
    # and the code is listed like every other
    assert "base-not-allowed" in run_cli("codes").out


def test_command_line_booleans_override_the_config(tree: Path, tmp_path: Path) -> None:
    from venvkeeper.cli import build_parser
    from venvkeeper.cli._common import scan_request
    from venvkeeper.config import load_config
    from venvkeeper.configured import options_for

    cfg = _write(
        tmp_path / "c.toml", "[scan]\none_file_system = true\nnetwork_filesystems = true\n"
    )
    parser = build_parser()
    args = parser.parse_args(["--config", str(cfg), "scan", str(tree)])
    opts = options_for(load_config(args.config), scan_request(args))
    assert opts.one_file_system and opts.include_network
    args = parser.parse_args(
        ["--config", str(cfg), "scan", str(tree), "--no-one-file-system", "--no-include-network"]
    )
    opts = options_for(load_config(args.config), scan_request(args))
    assert not opts.one_file_system and not opts.include_network
