"""The one JSON envelope and the published schemas: one per kind, valid draft 2020-12, what
tools/gen_schemas.py writes, and met by every command's real output (each test that reads
a command's JSON validates it with :func:`conftest.validate_json`; the commands no other
test reads are run here)."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError

from venvkeeper import __version__
from venvkeeper.cli import build_parser
from venvkeeper.formats import envelope
from venvkeeper.formats.envelope import SCHEMA_VERSION, Kind
from venvkeeper.host import interpreters

from conftest import closed, require_python, run_cli, validate_json
from factory import make_venv

ROOT = Path(__file__).resolve().parent.parent

#: Each command that prints JSON, and the kind of its document.
COMMAND_KINDS = {
    ("scan",): Kind.SCAN,
    ("show",): Kind.SHOW,
    ("codes",): Kind.CODES,
    ("predict",): Kind.PREDICT,
    ("plan",): Kind.PLAN,
    ("host-profile",): Kind.HOST_PROFILE,
    ("wheelhouse",): Kind.WHEELHOUSE,
    ("repair",): Kind.REPAIR,
    ("rollback",): Kind.ROLLBACK,
    ("rollback", "--list"): Kind.ROLLBACK_LIST,
    ("prune-backups",): Kind.PRUNE_BACKUPS,
    ("restarts",): Kind.RESTARTS,
    ("inventory",): Kind.INVENTORY,
    ("changes",): Kind.CHANGES,
    ("history",): Kind.HISTORY,
    ("matrix",): Kind.MATRIX,
    ("consumers",): Kind.CONSUMERS,
    ("apt-hook", "pre-install"): Kind.PREDICT,
}


def _json_commands() -> set[tuple[str, ...]]:
    """Every (sub)command whose parser has --json."""

    def walk(p: argparse.ArgumentParser, prefix: tuple[str, ...]) -> set[tuple[str, ...]]:
        found: set[tuple[str, ...]] = set()
        for a in p._actions:
            if "--json" in a.option_strings:
                found.add(prefix)
            if isinstance(a, argparse._SubParsersAction):
                for name, sub in a.choices.items():
                    found |= walk(sub, (*prefix, name))
        return found

    return walk(build_parser(), ())


def test_every_json_command_has_a_kind() -> None:
    # rollback --list is an option of rollback; host-profile prints only JSON
    plain = {c for c in COMMAND_KINDS if c not in (("rollback", "--list"), ("host-profile",))}
    assert _json_commands() == plain
    assert {k for c, k in COMMAND_KINDS.items()} == set(Kind)  # and every kind a command


@pytest.mark.parametrize("kind", list(Kind), ids=lambda k: k.value)
def test_every_kind_has_a_valid_schema(kind: Kind) -> None:
    schema = envelope.schema(kind)
    Draft202012Validator.check_schema(schema)
    Draft202012Validator.check_schema(closed(schema))
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"] == f"{envelope.SCHEMA_BASE}/{kind.value}-{SCHEMA_VERSION}.json"
    assert schema["properties"]["kind"] == {"const": kind.value}
    assert schema["properties"]["schema_version"] == {"const": SCHEMA_VERSION}
    assert schema["required"][:3] == ["schema_version", "kind", "tool"]
    assert "additionalProperties" not in schema  # open at the top: new fields may come
    # the schema checks types: a wrong envelope fails it
    with pytest.raises(ValidationError):
        Draft202012Validator(schema).validate({"schema_version": SCHEMA_VERSION})
    with pytest.raises(ValidationError):
        bad = {"schema_version": 1, "kind": kind.value, "tool": {"name": "x", "version": "1"}}
        Draft202012Validator(schema).validate(bad)


def test_the_schema_files_are_what_the_tool_writes() -> None:
    res = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "gen_schemas.py"), "--check"],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PYTHONPATH": str(ROOT / "src"), "PATH": "/usr/bin:/bin"},
    )
    assert res.returncode == 0, res.stderr
    res = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "gen_schemas.py"), "--reference"],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PYTHONPATH": str(ROOT / "src"), "PATH": "/usr/bin:/bin"},
    )
    assert res.returncode == 0 and all(f"### `{k.value}`" in res.stdout for k in Kind)
    assert "| `venvs[].findings[].severity` |" in res.stdout
    shipped = {p.name for p in (ROOT / "src" / "venvkeeper" / "schemas").iterdir()}
    assert shipped == {f"{k.value}.schema.json" for k in Kind}


def test_the_envelope() -> None:
    doc = envelope.envelope(Kind.SCAN, {"roots": ["/"]})
    assert list(doc) == ["schema_version", "kind", "tool", "roots"]
    assert doc["tool"] == {"name": "venvkeeper", "version": __version__}
    for field in envelope.ENVELOPE_FIELDS:
        with pytest.raises(ValueError, match=field):
            envelope.envelope(Kind.SCAN, {field: 1})
    assert envelope.schema("scan") == envelope.schema(Kind.SCAN)
    with pytest.raises(ValueError):
        envelope.schema("no-such-kind")


def test_closed_schemas_refuse_fields_they_do_not_describe(tmp_path: Path) -> None:
    schema = closed(envelope.schema(Kind.ROLLBACK_LIST))
    doc = json.loads(run_cli("rollback", "--list", "--json", str(tmp_path)).out)
    Draft202012Validator(schema).validate(doc)
    doc["backups"] = [{"path": "/a", "created": 1.0, "reason": "r", "new": 1}]
    with pytest.raises(ValidationError, match="new"):
        Draft202012Validator(schema).validate(doc)


def test_codes_json() -> None:
    doc = validate_json("codes", run_cli("codes", "--json").out)
    text = run_cli("codes").out
    assert [c["code"] for c in doc["codes"]] == [ln.split()[0] for ln in text.splitlines()]


def test_prune_backups_json_of_nothing(tmp_path: Path) -> None:
    """(test_repair.py prunes real backups, with --json.)"""
    res = run_cli("prune-backups", "--json", str(tmp_path))
    assert res.code == 0
    assert validate_json("prune-backups", res.out)["deleted"] == 0


def test_host_profile_old_and_new(tmp_path: Path) -> None:
    """A profile written now has the envelope; one of schema version 1 (kind
    venvkeeper-host-profile) still loads, to the same profile."""
    assert interpreters.PROFILE_SCHEMA == SCHEMA_VERSION  # raising it: decide for profiles
    py = require_python("3.11")
    res = run_cli("host-profile", "--search", str(py.parent), "--no-run", "--no-packages")
    new = validate_json("host-profile", res.out)
    old = {k: v for k, v in new.items() if k != "tool"}
    old.update(kind="venvkeeper-host-profile", schema_version=1)
    assert interpreters.profile_from_dict(old) == interpreters.profile_from_dict(new)
    newer = {**new, "schema_version": SCHEMA_VERSION + 1}
    with pytest.raises(ValueError, match="newer"):
        interpreters.profile_from_dict(newer)
    # and predict reads both
    venv = make_venv(py, tmp_path / "v")
    for n, doc in enumerate((old, new)):
        path = tmp_path / f"p{n}.json"
        path.write_text(json.dumps(doc))
        res = run_cli("predict", "--json", "--no-processes", "--host-profile", str(path), str(venv))
        validate_json("predict", res.out)
