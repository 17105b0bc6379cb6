"""Terminal output that reads: plurals, the width and colour rule, the table layout at 80
columns, ``show`` in words, the progress line, and the table in a real terminal (tmux)."""

from __future__ import annotations

import io
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from venvkeeper.cli.progress import progress_line
from venvkeeper.formats.layout import (
    ELLIPSIS,
    Column,
    Row,
    Terminal,
    cells,
    decide,
    human_size,
    lay_out,
    shorten_path,
    table,
    wrap,
)
from venvkeeper.textutil import noun, plural

from conftest import require_python, run_cli
from factory import make_venv

SRC = Path(__file__).parent.parent / "src"


def test_plural_is_one_rule() -> None:
    assert plural(1, "venv") == "1 venv"
    assert plural(0, "venv") == "0 venvs"
    assert plural(2, "venv") == "2 venvs"
    assert plural(1, "process", "processes") == "1 process"
    assert plural(3, "process", "processes") == "3 processes"
    assert noun(1, "needs", "need") == "needs" and noun(2, "needs", "need") == "need"


@pytest.mark.parametrize(
    ("isatty", "env", "size", "expected"),
    [
        # a terminal: its size, colour, live progress
        (True, {"TERM": "xterm"}, 120, Terminal(120, True, True)),
        (True, {"TERM": "xterm"}, None, Terminal(80, True, True)),
        # COLUMNS wins, on a terminal or not
        (True, {"TERM": "xterm", "COLUMNS": "200"}, 80, Terminal(200, True, True)),
        (False, {"COLUMNS": "100"}, None, Terminal(100, False, False)),
        # not a terminal, no COLUMNS: no limit, plain
        (False, {"TERM": "xterm"}, None, Terminal(None, False, False)),
        # a dumb terminal: plain text at its own width (or COLUMNS), never forced to 80
        (True, {"TERM": "dumb"}, 132, Terminal(132, False, False)),
        (True, {"TERM": "dumb", "COLUMNS": "200"}, 80, Terminal(200, False, False)),
        (True, {}, 90, Terminal(90, False, False)),  # TERM unset
        # NO_COLOR (set, not empty): no colour, the progress line stays
        (True, {"TERM": "xterm", "NO_COLOR": "1"}, 80, Terminal(80, False, True)),
        (True, {"TERM": "xterm", "NO_COLOR": ""}, 80, Terminal(80, True, True)),
        # a COLUMNS that is not a positive number is ignored
        (True, {"TERM": "xterm", "COLUMNS": "wide"}, 100, Terminal(100, True, True)),
        (False, {"COLUMNS": "0"}, None, Terminal(None, False, False)),
    ],
)
def test_width_colour_and_progress_rule(
    isatty: bool, env: dict[str, str], size: int, expected: Terminal
) -> None:
    assert decide(isatty, env, size) == expected


def test_paths_are_shortened_in_the_middle_keeping_their_last_components() -> None:
    p = "/srv/customers/acme/portal/app/venv"
    assert shorten_path(p, len(p)) == p
    assert shorten_path(p, 20) == "/srv/…/app/venv"
    assert shorten_path(p, 10) == "…/app/venv"
    assert shorten_path(p, 7) == "…/venv"
    assert shorten_path("/tmp/nc-cmp/ok-pip-3", 16) == "/tmp/…/ok-pip-3"
    long_name = "/x/" + "a" * 40
    short = shorten_path(long_name, 12)
    assert cells(short) <= 12 and ELLIPSIS in short
    for n in range(1, 40):
        assert cells(shorten_path(p, n)) <= n
    assert cells("日本語") == 6 and cells(shorten_path("/日本/語語語語/venv", 12)) <= 12


def test_wrap_breaks_between_words_and_never_splits_a_path() -> None:
    text = "moved from /very/long/old/location/of/the/venv/bin/python3 to here and more words"
    lines = wrap(text, 30)
    assert all(cells(x) <= 30 for x in lines)
    assert not any(x.endswith("/") for x in lines)
    assert any("…" in x and x.endswith("bin/python3") for x in lines)
    assert " ".join(lines).startswith("moved from")


def _rows() -> list[Row]:
    return [
        Row(
            (
                "critical",
                f"/srv/projects/customer-{i}/releases/2024-11-05/app/venv",
                "3.11 -> 3.12.1",
            ),
            f"version-mismatch: {i} packages live in lib/python3.11, invisible to it [+2 more]",
            "bold red",
        )
        for i in range(3)
    ]


COLS = (Column("STATUS", shrink=False), Column("PATH", path=True), Column("PYTHON"))


def test_a_narrow_table_puts_the_detail_on_its_own_lines() -> None:
    text = table(COLS, _rows(), Terminal(80), "FINDING")
    lines = text.splitlines()
    assert all(cells(x) <= 80 for x in lines), text
    assert lines[0].split() == ["STATUS", "PATH", "PYTHON"] and lines[1].strip() == "FINDING"
    rows = [x for x in lines if x.startswith("critical")]
    assert len(rows) == 3
    for x in rows:
        path = x.split()[1]
        assert path.endswith("/app/venv") and (
            path.startswith("/srv/projects/customer-") or ELLIPSIS in path
        )
    assert "[+2 more]" in text
    assert all(x.startswith("    ") for x in lines if "version-mismatch" in x)


def test_a_wide_table_is_one_line_per_row_and_never_cut() -> None:
    for term in (Terminal(None), Terminal(300)):
        lines = table(COLS, _rows(), term, "FINDING").splitlines()
        assert len(lines) == 4 and lines[0].split() == ["STATUS", "PATH", "PYTHON", "FINDING"]
        assert all(ELLIPSIS not in x for x in lines)


def test_a_very_narrow_terminal_still_gets_lines_that_fit() -> None:
    cols = (*COLS, Column("CREATOR", drop=True), Column("PKGS", shrink=False))
    rows = [Row((*r.cells, "virtualenv", "12"), r.detail) for r in _rows()]
    for width in (40, 50, 60):
        lines = lay_out(cols, rows, width, "FINDING")
        assert all(sum(cells(t) for t, _ in x) <= width for x in lines), width
    assert "CREATOR" not in "".join(t for t, _ in lay_out(cols, rows, 40, "FINDING")[0])


def test_colour_is_only_the_status_and_the_header() -> None:
    text = table(COLS, _rows(), Terminal(80, color=True), "FINDING")
    assert "\x1b[1;31mcritical\x1b[0m" in text
    plain = re.sub(r"\x1b\[[0-9;]*m", "", text)
    assert plain == table(COLS, _rows(), Terminal(80), "FINDING")


def test_colour_is_plain_sgr_codes_that_load_no_terminal_library() -> None:
    """Every style a table uses is its ECMA-48 SGR code, reset after the cell; painting
    loads nothing beyond venvkeeper (rich, which did this, is no longer a dependency)."""
    code = (
        "import sys\n"
        "from venvkeeper.formats.layout import paint\n"
        "from venvkeeper.formats.table import STYLE\n"
        "print(repr([paint('x', s) for s in [*STYLE.values(), 'bold']]))\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('rich', 'pygments')))\n"
    )
    res = subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, "PYTHONPATH": str(SRC)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert res.returncode == 0, res.stderr
    painted, loaded = res.stdout.splitlines()
    assert painted == repr(
        [
            "\x1b[32mx\x1b[0m",  # ok
            "\x1b[32mx\x1b[0m",  # info
            "\x1b[33mx\x1b[0m",  # warning
            "\x1b[35mx\x1b[0m",  # unknown
            "\x1b[1;31mx\x1b[0m",  # critical
            "\x1b[1mx\x1b[0m",  # the header
        ]
    )
    assert loaded == "[]"


def test_human_size() -> None:
    assert human_size(512) == "512 B"
    assert human_size(48_600_000) == "46.3 MiB"
    assert human_size(3 * 1024**4) == "3.0 TiB"


def _busy_venv(root: Path, release: str = "2024-11-05") -> Path:
    """A real venv at a long path with several findings: moved, and a pyvenv.cfg with a
    wrong version and a junk line."""
    made = make_venv(require_python("3.11"), root / f"made-{release}" / "venv")
    v = root / "srv" / "customer-portal-backend-production" / "releases" / release / "venv"
    v.parent.mkdir(parents=True)
    made.rename(v)
    with (v / "pyvenv.cfg").open("a") as f:
        f.write("version = 3.10.4\nnot a key = value line\n")
    return v


def test_scan_table_shows_more_findings_and_the_size(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    v = _busy_venv(tmp_path)
    monkeypatch.setenv("COLUMNS", "80")
    res = run_cli("scan", "--no-record", str(tmp_path))
    lines = res.out.splitlines()
    assert all(cells(x) <= 80 for x in lines), res.out
    assert re.search(r"\[\+\d+ more\]", res.out), res.out
    assert "SIZE" not in lines[0]
    res = run_cli("scan", "--no-record", "--size", str(tmp_path))
    assert lines and "SIZE" in res.out.splitlines()[0]
    assert re.search(r"\d+\.\d KiB", res.out), res.out
    monkeypatch.delenv("COLUMNS")
    wide = run_cli("scan", "--no-record", str(tmp_path)).out  # not a terminal: no limit
    assert str(v) in wide.splitlines()[1]


def test_show_speaks_words_not_python_values(tmp_path: Path) -> None:
    v = make_venv(require_python("3.11"), tmp_path / "v")
    text = run_cli("show", str(v)).out
    for python_value in ("True", "False", "None", "ran=", "error="):
        assert python_value not in text, text
    assert "  copy: no (a link to its base)\n" in text
    assert "deep: not run" in text and "size: not measured" in text
    text = run_cli("show", "--deep", "--size", str(v)).out
    assert re.search(r"^deep: ran: Python 3\.11\.\d+", text, re.M), text
    assert "  imports: every module imported\n" in text
    assert re.search(r"^size: \d+\.\d KiB \([\d,]+ bytes\)$", text, re.M), text


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_the_progress_line_is_cleared_however_the_scan_ends(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TERM", "xterm")
    err = _Tty()
    with pytest.raises(KeyboardInterrupt), progress_line(err) as progress:
        assert progress is not None
        progress(10, 1)
        assert "scanning: 10 directories, 1 venv judged" in err.getvalue()
        raise KeyboardInterrupt
    assert err.getvalue().endswith("\r\x1b[K")
    # a dumb terminal: no \r, no escape, at most one plain line
    monkeypatch.setenv("TERM", "dumb")
    err = _Tty()
    with progress_line(err) as progress:
        assert progress is not None
        progress(10, 1)
    assert "\x1b" not in err.getvalue() and "\r" not in err.getvalue()
    # not a terminal, or not wanted: nothing
    with progress_line(io.StringIO()) as progress:
        assert progress is None
    with progress_line(_Tty(), enabled=False) as progress:
        assert progress is None


# --- a real terminal -----------------------------------------------------------------------


class Tmux:
    """A private tmux server (its own socket in tmp_path) with one pane of a given size."""

    def __init__(self, tmp: Path, width: int) -> None:
        self.sock = str(tmp / "tmux.sock")
        self.raw = tmp / f"raw-{width}"
        env = {"PATH": os.environ["PATH"], "HOME": str(tmp), "TERM": "xterm"}
        self.tmux("new-session", "-d", "-x", str(width), "-y", "50", "sh", env=env)
        self.tmux("pipe-pane", "-o", f"cat >> {self.raw}")

    def tmux(self, *args: str, env: dict[str, str] | None = None) -> str:
        cmd = ["tmux", "-S", self.sock, "-f", "/dev/null", *args]
        return subprocess.run(
            cmd, check=True, capture_output=True, text=True, timeout=30, env=env
        ).stdout

    def run(self, command: str, done: Path, timeout: float = 120) -> str:
        self.tmux("send-keys", "-l", f"{command}; touch {done}")
        self.tmux("send-keys", "Enter")
        deadline = time.monotonic() + timeout
        while not done.exists():
            assert time.monotonic() < deadline, self.screen()
            time.sleep(0.1)
        time.sleep(0.2)
        return self.screen()

    def screen(self) -> str:
        return self.tmux("capture-pane", "-p")

    def close(self) -> None:
        subprocess.run(["tmux", "-S", self.sock, "kill-server"], timeout=30, check=False)


@pytest.fixture
def tmux() -> str:
    found = shutil.which("tmux")
    if found is None:
        pytest.skip("tmux is not installed (./dev.sh test installs it as root on Debian)")
    return found


@pytest.mark.slow
@pytest.mark.parametrize("width", [80, 200])
@pytest.mark.parametrize("term", ["xterm", "dumb"])
def test_the_scan_table_in_a_real_terminal(
    tmp_path: Path, tmux: str, width: int, term: str
) -> None:
    tree = tmp_path / "tree"
    venvs = [_busy_venv(tree, release) for release in ("2024-11-05", "2025-02-17-hotfix")]
    config = tmp_path / "config.toml"
    config.write_text("")
    t = Tmux(tmp_path, width)
    try:
        command = (
            f"env -u COLUMNS TERM={term} PYTHONPATH={SRC} {sys.executable} -m venvkeeper"
            f" --config {config} scan --no-record {tree}"
        )
        screen = t.run(command, tmp_path / f"done-{width}-{term}")
    finally:
        t.close()
    lines = screen.rstrip("\n").splitlines()
    start = next(i for i, x in enumerate(lines) if x.startswith("STATUS"))
    table = lines[start:]
    assert all(cells(x) <= width for x in table), screen
    assert len(re.findall(r"\[\+\d+ more\]", screen)) == 2, screen
    rows = [x for x in table if x.startswith("warning")]
    assert len(rows) == 2, screen
    shown = [x.split()[1] for x in rows]
    for v in venvs:
        release = v.parent.name
        # the whole path, or its shortened form that keeps its last components whole
        assert any(
            p == str(v) or (ELLIPSIS in p and p.endswith(f"/{release}/venv")) for p in shown
        ), (v, screen)
    if width >= 200:
        assert sorted(shown) == sorted(map(str, venvs)), screen  # room enough: whole
    # no path is split across lines: every line that is not a row nor a finding is the
    # header or the summary, and no line starts with the rest of a path
    for x in table:
        assert not x.startswith(("/", "…")), screen
    raw = t.raw.read_bytes().decode("utf-8", "replace")
    ours = raw[raw.index("STATUS") :]
    if term == "dumb":
        assert "\x1b" not in ours, repr(ours)
    else:
        assert "\x1b[" in ours  # colour
