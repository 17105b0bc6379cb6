"""One escaping rule for every output: a real venv under a hostile name, with a hostile
``pyvenv.cfg`` and a hostile distribution, through every command and format. Each output
must be valid UTF-8, hold no character that can drive a terminal or reorder text (C0 but
the newline, DEL, C1, bidi controls, lone surrogates), and JSON must still parse."""

from __future__ import annotations

import io
import json
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from venvkeeper.formats import table
from venvkeeper.scan.pipeline import scan
from venvkeeper.textutil import escape, escape_value, json_safe, to_json

from conftest import Result, json_kind, require_python, run_cli, validate_json
from factory import make_venv
from test_procs_synthetic import FakeProc, maps_line

#: Every character an output must never hold raw: C0 controls, DEL, C1 controls (0x9b is
#: an 8-bit CSI), the bidi embeddings, overrides, isolates and marks.
HOSTILE = (
    [chr(c) for c in range(0x20)]
    + ["\x7f"]
    + [chr(c) for c in range(0x80, 0xA0)]
    + [chr(c) for c in range(0x202A, 0x202F)]
    + [chr(c) for c in range(0x2066, 0x206A)]
    + ["\u200e", "\u200f", "\u061c"]
)

#: A name with a terminal colour sequence, CR, DEL, an 8-bit CSI and bidi controls; UTF-8.
NAME = "e\x1b[31mc\rd\x7fe\x9bf\u202eg\u2066h\u200fi\u061cj"
#: A name with a byte that is not UTF-8 (and ESC): it reaches Python as a lone surrogate.
RAW_NAME = b"n\xff\x1bo"
#: pyvenv.cfg: a prompt with a byte that is not UTF-8, a version with BEL, garbage keys.
CFG_TAIL = b"prompt = p\x80q\n" + "k\x1bey\x9b\u202e = v\x07a\x7fl\n\x1b]0;title\x07 = x\n".encode()


def assert_safe(text: str, *, multiline: bool = True) -> None:
    """Valid UTF-8 (no lone surrogate) and no hostile character (the newline of
    multi-line text aside)."""
    text.encode("utf-8")  # strict: a lone surrogate would raise
    allowed = {"\n"} if multiline else set()
    bad = {ch for ch in text if not ch.isprintable() and ch not in allowed}
    assert not bad, f"raw {sorted(bad)!r} in {text[:2000]!r}"


def assert_safe_strings(value: object) -> None:
    """Every string (keys too) of a parsed JSON document is safe to print on one line."""
    if isinstance(value, str):
        assert_safe(value, multiline=False)
    elif isinstance(value, dict):
        for k, v in value.items():
            assert_safe(k, multiline=False)
            assert_safe_strings(v)
    elif isinstance(value, list):
        for v in value:
            assert_safe_strings(v)


@dataclass(frozen=True)
class World:
    root: Path
    utf8_venv: str  # the venv under NAME
    raw_venv: str  # the venv under RAW_NAME (not UTF-8)


def _hostile_venv(python: Path, tmp: Path, dest: bytes) -> str:
    v = make_venv(python, tmp)
    cfg = (v / "pyvenv.cfg").read_bytes()
    cfg = re.sub(rb"version = 3\.11\.(\d+)", lambda m: b"version = 3.11\x07." + m[1], cfg)
    (v / "pyvenv.cfg").write_bytes(cfg + CFG_TAIL)
    dist = v / "lib" / "python3.11" / "site-packages" / "ev_il-1.0.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_bytes(
        b"Metadata-Version: 2.1\nName: ev\x1b[2Jil\x9b\nVersion: 1.0\x07\xff\n"
    )
    (dist / "INSTALLER").write_bytes(b"pip\x1b]0;x\x07\n")
    os.rename(v, dest)
    return os.fsdecode(dest)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    python = require_python("3.11")
    tmp = tmp_path_factory.mktemp("escaping")
    root = tmp / "root"
    root.mkdir()
    base = os.fsencode(str(root))
    utf8 = _hostile_venv(python, tmp / "a", base + b"/" + NAME.encode())
    raw = _hostile_venv(python, tmp / "b", base + b"/" + RAW_NAME)
    return World(root, utf8, raw)


def check(res: Result) -> None:
    assert "Traceback" not in res.err and "internal error" not in res.err, res.err
    assert_safe(res.out)
    assert_safe(res.err)


# --- every command, every format -----------------------------------------------------------

CHANGE = ("--python-becomes", "3.99", "--no-processes")

#: (arguments after the command, is the output JSON)
COMMANDS: list[tuple[tuple[str, ...], bool]] = [
    (("scan", "--no-record", "{root}"), False),
    (("scan", "--no-record", "--only-problems", "{root}"), False),
    (("scan", "--no-record", "--quiet", "{root}"), False),
    (("scan", "--no-record", "--json", "{root}"), True),
    (("show", "{venv}"), False),
    (("show", "--json", "{venv}"), True),
    (("predict", *CHANGE, "{root}"), False),
    (("predict", "--json", *CHANGE, "{root}"), True),
    (("plan", "--all", *CHANGE, "{root}"), False),
    (("plan", "--json", *CHANGE, "{root}"), True),
    (("check", "--no-record", "{root}"), False),
    (("repair", "--dry-run", "{venv}"), False),
    (("repair", "--dry-run", "--json", "{venv}"), True),
    (("inventory",), False),
    (("inventory", "--json"), True),
    (("changes",), False),
    (("changes", "--json"), True),
    (("history", "{venv}"), False),
    (("history", "--json", "{venv}"), True),
    (("rollback", "--list", "{venv}"), False),
    (("rollback", "--list", "--json", "{venv}"), True),
    (("prune-backups", "--json", "{venv}"), True),  # (it has no backups: nothing is deleted)
]


@pytest.mark.parametrize("which", ["utf8_venv", "raw_venv"])
@pytest.mark.parametrize(("argv", "is_json"), COMMANDS, ids=[" ".join(a[0]) for a in COMMANDS])
def test_every_command_prints_safely(
    world: World, argv: tuple[str, ...], is_json: bool, which: str
) -> None:
    venv = getattr(world, which)
    assert run_cli("scan", str(world.root)).code in (0, 1, 2)  # into this test's inventory
    words = [a.format(root=world.root, venv=venv) for a in argv]
    res = run_cli(*words)
    check(res)
    assert res.out
    if is_json:
        assert_safe_strings(validate_json(json_kind(words), res.out))


def test_the_hostile_text_is_there_escaped(world: World) -> None:
    """Not dropped: escaped, where each defect was seen."""
    res = run_cli("scan", "--no-record", str(world.root))
    assert "\\x1b[31mc\\x0dd\\x7fe\\x9bf\\u202eg\\u2066h\\u200fi\\u061cj" in res.out
    assert "3.11\\x07 -> " in res.out  # the PYTHON column
    show = run_cli("show", world.utf8_venv).out
    assert "  k\\x1bey\\x9b\\u202e: v\\x07a\\x7fl\n" in show  # a garbage key
    assert "  \\x1b]0;title\\x07: x\n" in show
    assert "  prompt: p\\x80q\n" in show
    assert "ev\\x1b[2Jil\\x9b 1.0\\x07\\xff (pip\\x1b]0;x\\x07)" in show
    plan = validate_json("plan", run_cli("plan", "--json", *CHANGE, str(world.root)).out)
    assert {v["plan"]["options"]["prompt"] for v in plan["venvs"]} == {"p\\x80q"}
    assert any(v["path"].endswith("/" + escape(NAME)) for v in plan["venvs"])
    doc = validate_json("show", run_cli("show", "--json", world.utf8_venv).out)["venv"]
    assert doc["path"].endswith("/" + escape(NAME))
    assert doc["pyvenv_cfg"]["values"]["k\\x1bey\\x9b\\u202e"] == "v\\x07a\\x7fl"
    assert doc["python"]["recorded"].startswith("3.11\\x07.")


def test_json_is_one_rule_across_commands(world: World) -> None:
    """The same venv has the same path string in every JSON document."""
    scan_doc = validate_json("scan", run_cli("scan", "--json", str(world.root)).out)
    pred = validate_json("predict", run_cli("predict", "--json", *CHANGE, str(world.root)).out)
    inv = validate_json("inventory", run_cli("inventory", "--json").out)
    repair = validate_json("repair", run_cli("repair", "--dry-run", "--json", world.raw_venv).out)
    paths = {v["path"] for v in scan_doc["venvs"]}
    assert paths == {v["path"] for v in pred["venvs"]} == {v["path"] for v in inv["venvs"]}
    assert {r["path"] for r in repair["results"]} <= paths
    assert f"{world.root}/n\\xff\\x1bo" in paths


def test_colour_table(world: World) -> None:
    report = scan([str(world.root)])
    text = table.render(report, color=True, width=400)
    own = re.sub(r"\x1b\[[0-9;]*m", "", text)  # the table's own colours are the only escapes
    assert_safe(own)
    assert "\\x1b[31m" in own


def test_prometheus_labels(world: World, tmp_path: Path) -> None:
    prom = tmp_path / "m.prom"
    res = run_cli("export", "--no-record", "--prometheus", str(prom), str(world.root))
    check(res)
    text = prom.read_bytes().decode("utf-8")  # strict
    assert_safe(text)
    assert escape(NAME) in text.replace("\\\\", "\\")


def test_restarts(world: World, tmp_path: Path) -> None:
    proc = FakeProc(tmp_path / "proc")
    for i, venv in enumerate((world.utf8_venv, world.raw_venv)):
        d = proc.add(
            10 + i,
            comm="py\x1bthon\u202e",
            exe="/usr/bin/python3.11 (deleted)",
            argv=(f"{venv}/bin/python", "-c", "\x1b]0;pwned\x07\x9b\u202e"),
            cgroup="0::/system.slice/a\x1bpp.service\n",
        )
        lib = f"{venv}/lib/python3.11/site-packages/x.so"
        (d / "maps").write_bytes(os.fsencode(maps_line(lib, deleted=True)))
    for args in ((), ("--json",), ("--unit-commands",), ("--no-judge",)):
        res = run_cli("restarts", "--proc-root", str(proc.root), *args)
        check(res)
        if "--json" in args:
            assert_safe_strings(validate_json("restarts", res.out))


def _hook(monkeypatch: pytest.MonkeyPatch, data: bytes, *args: str) -> Result:
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data)))
    monkeypatch.delenv("APT_HOOK_INFO_FD", raising=False)
    return run_cli("apt-hook", *args)


@pytest.mark.parametrize("json_out", [False, True])
def test_apt_hook(world: World, monkeypatch: pytest.MonkeyPatch, json_out: bool) -> None:
    line = "python3.11 3.11.2-6 amd64 same > - - none **REMOVE**\n"
    evil = "python3.12 3.12.1\x1b[2J amd64 same < 3.12.2\u202e\x9b amd64 same /x/\x1b.deb\n"
    data = ("VERSION 3\nAPT::Ar\x1bch=amd64\n\n" + line + evil).encode()
    extra = ("--json",) if json_out else ()
    res = _hook(monkeypatch, data, "pre-install", *extra, "--no-processes", str(world.root))
    check(res)
    if not json_out:  # the notes line names the versions, escaped
        assert "python3.12 3.12.1\\x1b[2J -> 3.12.2\\u202e\\x9b" in res.out
    garbage = _hook(monkeypatch, b"\x1b]0;x\x07\x9b\xff\n", "pre-install", str(world.root))
    check(garbage)
    assert "apt goes on" in garbage.err


def test_host_profile(tmp_path: Path) -> None:
    bindir = tmp_path / NAME
    bindir.mkdir()
    (bindir / "python3.11").symlink_to("/usr/bin/python3.11")
    res = run_cli("host-profile", "--search", str(bindir), "--no-run", "--no-packages")
    check(res)
    doc = validate_json("host-profile", res.out)
    # exact (\\uNNNN escapes of an ASCII document): the profile is data that predict reads back
    assert any(NAME in n["path"] for i in doc["interpreters"] for n in i["names"])


# --- the rule itself -----------------------------------------------------------------------

_TEXT = st.text(st.characters(blacklist_categories=())) | st.binary().map(os.fsdecode)


@given(_TEXT)
def test_escape_value_is_printable_and_keeps_printable_text(text: str) -> None:
    out = escape_value(text)
    assert out.isprintable()
    out.encode("utf-8")
    if text.isprintable():
        assert out == text
    else:
        assert out == escape(text)
    assert escape_value(out) == out  # idempotent: escaping twice changes nothing


@given(
    st.recursive(
        _TEXT | st.integers() | st.none(), lambda c: st.lists(c) | st.dictionaries(_TEXT, c)
    )
)
def test_to_json_is_valid_utf8_and_prints_safely(doc: object) -> None:
    for indent in (None, 2):
        text = to_json(doc, indent=indent)
        assert_safe(text)
        assert json.loads(text) == json_safe(doc)
        # the fast path (no string needs escaping) gives what the walk gives
        assert text == json.dumps(json_safe(doc), indent=indent, ensure_ascii=False)
        assert_safe_strings(json.loads(text))


@given(st.text(st.sampled_from('ab\\"/nrtu01\x00\x1f\x7f\x80\u202e\udcff')))
def test_to_json_fast_path_near_escapes(text: str) -> None:
    """Backslashes next to the letters of JSON's own escapes: never mistaken for safe."""
    got = json.loads(to_json({text: [text]}))
    assert got == {escape_value(text): [escape_value(text)]}


def test_escape_covers_every_hostile_character() -> None:
    for ch in [*HOSTILE, "\udc80", "\udcff", "\ud800"]:
        out = escape(f"a{ch}b")
        assert out.isprintable() and ch not in out and out.startswith("a\\") and out.endswith("b")
        assert escape_value(f"a{ch}b") == out
    assert escape_value("a\\b") == "a\\b"  # as found: nothing else needed escaping
    assert escape_value("a\\b\x1b") == "a\\\\b\\x1b"  # escaped: the backslash doubled
    assert escape_value("/srv/café/日本") == "/srv/café/日本"


# --- error messages: escaped once ----------------------------------------------------------


def test_error_messages_are_escaped_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A message names its paths through escape(); where it is printed it is not escaped
    again (it was: ``\\\\x1b`` for an ESC, and three times over in the apt hook)."""
    missing = str(tmp_path / "no\x1b[2Jdir\u202e")
    shown = escape(missing)
    res = run_cli("scan", "--no-record", missing)
    check(res)
    assert res.code == 3 and f"venvkeeper: error: {shown}: does not exist\n" in res.err
    res = run_cli("check", "--no-record", missing)
    check(res)
    assert res.out == f"VENVKEEPER UNKNOWN - {shown}: does not exist\n"
    res = _hook(monkeypatch, b"\x1b]0;x\x07\x9b\xff\n", "pre-install", missing)
    check(res)
    assert "(first line: '\\x1b]0;x\\x07\\x9b\\xff')" in res.err
    res = run_cli("codes", "un\x1bknown\u202e")  # argparse does not quote all it names
    check(res)
    assert "unrecognized arguments: un\\x1bknown\\u202e" in res.err
