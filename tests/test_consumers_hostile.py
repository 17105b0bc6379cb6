"""Bad consumer files: every syntax error, include loop, unreadable, huge, non-UTF-8 or
non-regular (FIFO) file is a finding on its consumer, never a traceback or a hang. The
reads run in a child process under a timeout, so a hang fails the test instead of the run."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from conftest import User, host_tmpdir, remove_tree
from consumer_world import World
from factory import runner_for_others

READ = (
    "import json, sys\n"
    "from venvkeeper.consumers import read_consumers\n"
    "s = read_consumers(sys.argv[1], None)\n"
    "print(json.dumps([{'name': c.name, 'venv': c.venv,"
    " 'findings': [[f.code, f.message] for f in c.problems]} for c in s.consumers]"
    " + [{'name': '(reader)', 'venv': None, 'findings': [[f.code, f.message]"
    " for f in s.problems]}]))\n"
)
SRC = str(Path(__file__).resolve().parent.parent / "src")


def read_in_child(root: Path, argv_prefix: tuple[str, ...] = (), python: str = "",
                  pythonpath: str = SRC) -> dict[str, Any]:  # fmt: skip
    res = subprocess.run(
        [*argv_prefix, python or sys.executable, "-c", READ, str(root)],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": pythonpath, "LC_ALL": "C.UTF-8"},
    )
    assert res.returncode == 0, res.stderr[-3000:]
    assert "Traceback" not in res.stderr
    return {c["name"]: c for c in json.loads(res.stdout)}


def codes(c: dict[str, Any]) -> set[str]:
    return {code for code, _ in c["findings"]}


@pytest.fixture
def w(tmp_path: Path) -> World:
    world = World(tmp_path / "root")
    world.venv("/opt/app/venv")
    return world


def test_fifos_everywhere_are_findings_not_hangs(w: World) -> None:
    fifos = [
        "/etc/systemd/system/fifo.service",
        "/etc/cron.d/fifo",
        "/var/spool/cron/crontabs/alice",
        "/etc/uwsgi/apps-enabled/fifo.ini",
        "/etc/supervisor/supervisord.conf",
        "/etc/apache2/apache2.conf",
        "/etc/default/fifo",
        "/etc/anacrontab",
    ]
    for f in fifos:
        w.p(f).parent.mkdir(parents=True, exist_ok=True)
        os.mkfifo(w.p(f))
    w.write("/etc/init.d/uwsgi", "#!/bin/sh\n", 0o755)
    w.write(
        "/etc/systemd/system/envfifo.service",
        "[Service]\nEnvironmentFile=/etc/default/fifo\nExecStart=/opt/app/venv/bin/python\n",
    )
    got = read_in_child(w.root)
    for f in (
        "/etc/systemd/system/fifo.service",
        "/etc/cron.d/fifo",
        "/var/spool/cron/crontabs/alice",
        "/etc/uwsgi/apps-enabled/fifo.ini",
        "/etc/supervisor/supervisord.conf",
        "/etc/apache2/apache2.conf",
        "/etc/anacrontab",
    ):
        c = (
            got[w.host(f)]
            if w.host(f) in got
            else next(
                (x for x in got.values() if any(w.host(f) in m for _, m in x["findings"])), None
            )
        )
        assert c is not None, f
        assert "consumer-unreadable" in codes(c), (f, c)
        assert any("FIFO" in m for _, m in c["findings"])
    env = got["envfifo.service"]
    assert env["venv"] == w.host("/opt/app/venv") and "consumer-unreadable" in codes(env)


def test_huge_and_non_utf8_files(w: World) -> None:
    w.write("/etc/cron.d/huge", "# x\n" * (600 << 10))
    w.p("/etc/systemd/system").mkdir(parents=True)
    w.p("/etc/systemd/system/latin.service").write_bytes(
        b"[Unit]\nDescription=caf\xe9\n[Service]\nExecStart=/opt/app/venv/bin/python -m x\n"
    )
    got = read_in_child(w.root)
    huge = got[w.host("/etc/cron.d/huge")]
    assert "consumer-unreadable" in codes(huge) and "too large" in huge["findings"][0][1]
    latin = got["latin.service"]
    assert latin["venv"] == w.host("/opt/app/venv")
    assert any("not UTF-8" in m for _, m in latin["findings"])


def test_syntax_errors_and_loops(w: World) -> None:
    w.write(
        "/etc/systemd/system/esc.service",
        "[Service]\nExecStart=/opt/app/venv/bin/python 'open\n"
        "ExecStartPre=/opt/app/venv/bin/python \\d\n",
    )
    w.write(
        "/etc/systemd/system/quoted.service",
        "[Service]\nnot an assignment\nExecStart=/opt/app/venv/bin/python %Z\n[Broken\n",
    )
    w.link("/etc/systemd/system/loop.service", "/etc/systemd/system/loop2.service")
    w.link("/etc/systemd/system/loop2.service", "/etc/systemd/system/loop.service")
    w.write(
        "/etc/cron.d/short",
        "* * * root\nPATH=/opt/app/venv/bin\n@sometimes root x\n"
        "* * * * * root python 'unterminated\n",
    )
    w.write("/etc/supervisor/supervisord.conf", "[include]\nfiles = a.conf\n")
    w.write(
        "/etc/supervisor/a.conf",
        "[include]\nfiles = supervisord.conf\n[program:x]\ncommand=/opt/app/venv/bin/python\n",
    )
    w.write("/etc/supervisor/bad.conf", "no section header\n")
    w.write(
        "/etc/systemd/system/g.service",
        "[Service]\nExecStart=/opt/app/venv/bin/gunicorn -c /etc/g.py app\n",
    )
    w.write("/etc/g.py", "def (:\n")
    w.write("/etc/uwsgi/apps-enabled/j.json", "[" * 100000)
    w.write("/etc/uwsgi/apps-enabled/x.xml", "<nothing/>")
    w.write("/etc/init.d/uwsgi", "#!/bin/sh\n", 0o755)
    w.write("/etc/cron.d/words", "* * * * * root " + "a " * 5000 + "\n")
    got = read_in_child(w.root)
    esc = got["esc.service"]
    assert any("unbalanced quoting" in m for _, m in esc["findings"])
    assert any("invalid escape" in m for _, m in esc["findings"])
    quoted = got["quoted.service"]
    assert any("unknown specifier" in m for _, m in quoted["findings"])
    assert "loop.service" not in got  # a link loop: no unit, and no hang
    short = [c for n, c in got.items() if n.startswith(w.host("/etc/cron.d/short"))]
    msgs = " ".join(m for c in short for _, m in c["findings"])
    assert "too few fields" in msgs and "unknown schedule" in msgs and "cannot split" in msgs
    sup = got["program:x"]
    assert any("include loop" in m for _, m in sup["findings"])
    assert "consumer-syntax" in codes(got[w.host("/etc/g.py")])
    assert "nested deeper" in " ".join(
        m for _, m in got[w.host("/etc/uwsgi/apps-enabled/j.json")]["findings"]
    )
    assert "no <uwsgi>" in got[w.host("/etc/uwsgi/apps-enabled/x.xml")]["findings"][0][1]
    words = [c for n, c in got.items() if n.startswith(w.host("/etc/cron.d/words"))]
    assert "more than" in words[0]["findings"][0][1]


def test_odd_names_and_dangling_links_in_path_dirs(w: World) -> None:
    d = w.p("/usr/local/bin")
    d.mkdir(parents=True)
    os.symlink("/opt/app/venv/bin/python", os.fsencode(d) + b"/bad\xffname")
    os.symlink("nowhere", d / "dangling")
    os.symlink("loopy", d / "loopy")
    os.mkfifo(d / "fifo")
    os.mkdir(d / "subdir")
    got = read_in_child(w.root)
    named = [n for n in got if "bad" in n]
    assert len(named) == 1 and got[named[0]]["venv"] == w.host("/opt/app/venv")


def test_a_file_root_may_not_read_as_its_user_is_a_finding(
    tmp_path: Path, unprivileged_user: User
) -> None:
    """Run the reader as an unprivileged user over a root where a crontab is 0600 root's."""
    top = host_tmpdir("consumers-perm")
    try:
        w = World(top / "root")
        w.write("/var/spool/cron/crontabs/root", "* * * * * /opt/app/venv/bin/python\n", 0o600)
        w.write("/etc/crontab", "* * * * * root /opt/app/venv/bin/python\n")
        for dirpath, dirs, _files in os.walk(top):
            for x in dirs:
                os.chmod(os.path.join(dirpath, x), 0o755)
        os.chmod(top, 0o755)
        python, path = runner_for_others()
        got = read_in_child(
            w.root,
            (shutil.which("runuser") or "/usr/sbin/runuser", "-u", unprivileged_user.name, "--"),
            python,
            f"{SRC}:{path}",
        )
        root_tab = got[w.host("/var/spool/cron/crontabs/root")]
        assert "consumer-unreadable" in codes(root_tab)
        assert "permission denied" in root_tab["findings"][0][1]
    finally:
        remove_tree(top)
