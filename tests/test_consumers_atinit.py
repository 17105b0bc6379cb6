"""at jobs, SysV init scripts and /etc/rc.local as consumers: read from small roots with
real venvs (job files as Debian's and RHEL's ``at`` write them, init scripts in the style
of Debian's skeleton), bad input, and (slow) a real bookworm root where ``at`` wrote the
job and the job and the init script are run before and after the venv's base goes."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from test_consumers_hostile import SRC, codes, read_in_child
from venvkeeper.checks.consumers import SYNTAX, UNREADABLE
from venvkeeper.consumers import atjobs, shell, sysv
from venvkeeper.model.consumers import (
    Activation,
    ConsumerKind,
    FailsHow,
    RefKind,
)

from conftest import User, host_tmpdir, remove_tree, run_cli, validate_json
from consumer_world import World
from factory import runner_for_others

SPOOL = "/var/spool/cron/atjobs"
JOB = f"{SPOOL}/a0000101c8e6c1"


def debian_job(uid: int, commands: str, path: str = "/srv/app/venv/bin:/usr/bin:/bin") -> str:
    """A job as Debian's at 3.2.5 writes it (captured from ``at`` in a bookworm root):
    the commands follow the ``cd`` as they are, for /bin/sh."""
    return (
        "#!/bin/sh\n"
        f"# atrun uid={uid} gid=0\n"
        "# mail root 0\n"
        "umask 22\n"
        "HOME=/root; export HOME\n"
        "PS1=\\(venv\\)\\ #\\ ; export PS1\n"
        f"PATH={path}; export PATH\n"
        "VIRTUAL_ENV=/srv/app/venv; export VIRTUAL_ENV\n"
        "LS_COLORS=rs=0:di=01\\;34:ln=01\\;36; export LS_COLORS\n"
        "PWD=/srv/app; export PWD\n"
        "cd /srv/app || {\n"
        "\t echo 'Execution directory inaccessible' >&2\n"
        "\t exit 1\n"
        "}\n"
        f"{commands}\n"
    )


def rhel_job(uid: int, commands: str) -> str:
    """A job as RHEL's at writes it: the commands in a here-document for the submitter's
    ``$SHELL``."""
    return (
        "#!/bin/sh\n"
        f"# atrun uid={uid} gid=0\n"
        "# mail alice 0\n"
        "umask 22\n"
        "SHELL=/bin/bash; export SHELL\n"
        "PATH=/usr/local/bin:/usr/bin:/bin; export PATH\n"
        "HOME=/home/alice; export HOME\n"
        "cd /opt/app || {\n"
        "\t echo 'Execution directory inaccessible' >&2\n"
        "\t exit 1\n"
        "}\n"
        "${SHELL:-/bin/sh} << 'marcinDELIMITER0a1b2c3d'\n"
        f"{commands}\n"
        "marcinDELIMITER0a1b2c3d\n"
    )


#: An init script in the style of Debian's /etc/init.d/skeleton (sysvinit), naming a
#: venv's console script; its settings file may name another DAEMON_ARGS.
INIT_SCRIPT = """\
#!/bin/sh
### BEGIN INIT INFO
# Provides:          appd
# Required-Start:    $remote_fs $syslog
# Required-Stop:     $remote_fs $syslog
# Default-Start:     2 3 4 5
# Default-Stop:      0 1 6
# Short-Description: the app's daemon
### END INIT INFO

# Author: Ops <ops@example.org>

PATH=/sbin:/usr/sbin:/bin:/usr/bin
DESC="the app's daemon"
NAME=appd
DAEMON=/srv/app/venv/bin/$NAME
DAEMON_ARGS="--out /tmp/appd-out"
PIDFILE=/run/$NAME.pid
SCRIPTNAME=/etc/init.d/$NAME

# Exit if the package is not installed
[ -x "$DAEMON" ] || exit 0

# Read configuration variable file if it is present
[ -r /etc/default/$NAME ] && . /etc/default/$NAME

# Define LSB log_* functions.
. /lib/lsb/init-functions

do_start()
{
	# Return
	#   0 if daemon has been started
	#   1 if daemon was already running
	#   2 if daemon could not be started
	start-stop-daemon --start --quiet --pidfile $PIDFILE --exec $DAEMON --test > /dev/null \\
		|| return 1
	start-stop-daemon --start --quiet --pidfile $PIDFILE --chuid $RUN_AS --exec $DAEMON -- \\
		$DAEMON_ARGS \\
		|| return 2
}

do_stop()
{
	start-stop-daemon --stop --quiet --retry=TERM/30/KILL/5 --pidfile $PIDFILE --name $NAME
	RETVAL="$?"
	[ "$RETVAL" = 2 ] && return 2
	rm -f $PIDFILE
	return "$RETVAL"
}

case "$1" in
  start)
	[ "$VERBOSE" != no ] && log_daemon_msg "Starting $DESC" "$NAME"
	do_start
	case "$?" in
		0|1) [ "$VERBOSE" != no ] && log_end_msg 0 ;;
		2) [ "$VERBOSE" != no ] && log_end_msg 1 ;;
	esac
	;;
  stop)
	do_stop
	;;
  *)
	echo "Usage: $SCRIPTNAME {start|stop}" >&2
	exit 3
	;;
esac

:
"""
#: The venv's console script (pip's shape): writes its interpreter's prefix where asked.
APPD = """\
import sys
out = sys.argv[sys.argv.index("--out") + 1] if "--out" in sys.argv else "/tmp/appd-out"
with open(out, "w") as f:
    f.write(sys.prefix)
"""


@pytest.fixture
def w(tmp_path: Path) -> World:
    world = World(tmp_path / "root")
    world.venv("/srv/app/venv")
    return world


def by_kind(w: World, kind: ConsumerKind, proc: Any = None) -> dict[str, Any]:
    return {c.name: c for c in w.read(proc).consumers if c.kind is kind}


# --- at jobs ----------------------------------------------------------------------------


def test_debian_job_runs_the_venvs_python_through_its_path(w: World) -> None:
    w.write(JOB, debian_job(os.getuid(), "python -c 'import sys; print(sys.prefix)' > /tmp/o"))
    w.p(JOB).chmod(0o700)
    job = by_kind(w, ConsumerKind.AT_JOB)[w.host(JOB)]
    (ref,) = job.refs
    assert ref.kind is RefKind.PATH_ENTRY and ref.venv == w.host("/srv/app/venv")
    assert ref.line == 15 and job.line == 15
    assert job.user == ("root" if os.getuid() == 0 else str(os.getuid()))
    assert job.activation is Activation.SCHEDULE and job.enabled is True
    assert job.fails_how() is FailsHow.NEXT_RUN and job.restart.command is None
    assert job.trigger is not None and job.trigger.endswith("UTC (queue a)")
    assert dict(job.launch.env)["VIRTUAL_ENV"] == "/srv/app/venv"
    assert "LS_COLORS" not in dict(job.launch.env)  # the submitter's environment is not kept
    assert job.launch.cwd == "/srv/app" and not job.problems


def test_debian_job_relative_and_absolute_paths_from_its_directory(w: World) -> None:
    w.write(JOB, debian_job(os.getuid(), "venv/bin/python x.py\n/srv/app/venv/bin/python3 -V"))
    w.p(JOB).chmod(0o700)
    job = by_kind(w, ConsumerKind.AT_JOB)[w.host(JOB)]
    assert {(r.kind, r.line) for r in job.refs} == {
        (RefKind.EXEC_INTERP, 15),
        (RefKind.EXEC_INTERP, 16),
    }
    assert {r.venv for r in job.refs} == {w.host("/srv/app/venv")}


def test_rhel_job_reads_the_here_document_under_the_submitters_shell(w: World) -> None:
    w.venv("/opt/app/.venv")
    w.write("/var/spool/at/b0000201c8e6c2", rhel_job(os.getuid(), "source .venv/bin/activate\n"
            "python -m app"), 0o700)  # fmt: skip
    job = by_kind(w, ConsumerKind.AT_JOB)[w.host("/var/spool/at/b0000201c8e6c2")]
    kinds = {r.kind for r in job.refs}
    assert kinds == {RefKind.ACTIVATE, RefKind.PATH_ENTRY}
    assert {r.venv for r in job.refs} == {w.host("/opt/app/.venv")}
    # bash runs the here-document: `source` is fine there
    assert not job.problems
    assert job.trigger is not None and job.trigger.endswith("(queue b)")


def test_a_job_naming_no_venv_is_not_a_consumer_and_lock_files_are_skipped(w: World) -> None:
    w.write(JOB, debian_job(os.getuid(), "/usr/bin/true", path="/usr/bin:/bin"), 0o700)
    w.write(f"{SPOOL}/=0000301c8e6c3", debian_job(os.getuid(), "python x"), 0o700)
    w.write(f"{SPOOL}/.SEQ", "3\n", 0o600)
    w.write(f"{SPOOL}/a0000401c8e6c4", debian_job(os.getuid(), "python x"), 0o700)
    assert set(by_kind(w, ConsumerKind.AT_JOB)) == {w.host(f"{SPOOL}/a0000401c8e6c4")}


def test_bad_jobs_are_findings(w: World) -> None:
    uid = os.getuid()
    good = debian_job(uid, "python x.py")
    w.write(f"{SPOOL}/a0000101c8e6c1", "garbage\x00\n" + good, 0o700)
    w.write(f"{SPOOL}/a0000201c8e6c1", debian_job(uid + 4242, "python x.py"), 0o700)
    w.write(f"{SPOOL}/a0000301c8e6c1", good, 0o600)  # at still writing it
    os.mkfifo(w.p(f"{SPOOL}/a0000401c8e6c1"))
    w.p(f"{SPOOL}/a0000501c8e6c1").write_bytes(good.encode() + b"# \xff\xfe\n")
    w.p(f"{SPOOL}/a0000601c8e6c1").write_bytes(good.encode() + b"#" * (2 << 20))
    w.link(f"{SPOOL}/a0000701c8e6c1", "a0000101c8e6c1")
    jobs = by_kind(w, ConsumerKind.AT_JOB)
    one = jobs[w.host(f"{SPOOL}/a0000101c8e6c1")]
    assert [f.code for f in one.problems] == [SYNTAX] and not one.enabled
    assert "atd will not run it" in one.problems[0].message
    two = jobs[w.host(f"{SPOOL}/a0000201c8e6c1")]
    assert "atd will not run it" in two.problems[0].message
    assert f"uid {uid}" in two.problems[0].message and two.venv == w.host("/srv/app/venv")
    three = jobs[w.host(f"{SPOOL}/a0000301c8e6c1")]
    assert three.enabled is False and not three.problems
    assert [f.code for f in jobs[w.host(f"{SPOOL}/a0000401c8e6c1")].problems] == [UNREADABLE]
    five = jobs[w.host(f"{SPOOL}/a0000501c8e6c1")]
    assert "not UTF-8" in five.problems[0].message and five.venv == w.host("/srv/app/venv")
    six = jobs[w.host(f"{SPOOL}/a0000601c8e6c1")]
    assert [f.code for f in six.problems] == [UNREADABLE] and "too large" in six.problems[0].message
    seven = jobs[w.host(f"{SPOOL}/a0000701c8e6c1")]
    assert "symlink" in seven.problems[0].message and not seven.refs


def test_spool_and_script_root_may_not_read_as_its_user_are_findings(
    unprivileged_user: User,
) -> None:
    """As an unprivileged user, over a root whose at spool is closed to others (Debian's is
    ``daemon``'s, mode 1770) and whose init script is 0700 root's: findings, no traceback."""
    top = host_tmpdir("consumers-atinit-perm")
    try:
        w = World(top / "root")
        w.venv("/srv/app/venv")
        w.write(JOB, debian_job(0, "python x.py"), 0o700)
        w.write("/etc/init.d/appd", INIT_SCRIPT, 0o700)
        for dirpath, dirs, _files in os.walk(top):
            for x in dirs:
                os.chmod(os.path.join(dirpath, x), 0o755)
        os.chmod(top, 0o755)
        w.p(SPOOL).chmod(0o770)
        python, path = runner_for_others()
        runuser = shutil.which("runuser") or "/usr/sbin/runuser"
        got = read_in_child(
            w.root, (runuser, "-u", unprivileged_user.name, "--"), python, f"{SRC}:{path}"
        )
        spool = got["(reader)"]
        assert codes(spool) == {UNREADABLE}
        assert any(w.host(SPOOL) in m and "permission denied" in m for _, m in spool["findings"])
        assert codes(got["appd.service"]) == {UNREADABLE}
    finally:
        remove_tree(top)


def test_run_time_of_a_job_name() -> None:
    assert atjobs.when("a0000101c8e6c1") == "2026-12-07 02:09 UTC (queue a)"
    assert atjobs.when("nonsense") == ""


# --- init scripts and rc.local -------------------------------------------------------------


def appd_world(w: World) -> None:
    # the shebang a pip install inside the root writes: the root's own path
    w.write("/srv/app/venv/bin/appd", f"#!/srv/app/venv/bin/python\n{APPD}", 0o755)
    w.write("/etc/init.d/appd", INIT_SCRIPT, 0o755)
    w.write("/etc/default/appd", 'RUN_AS=alice\nDAEMON_ARGS="--out /tmp/x"\n')
    w.link("/etc/rc2.d/S01appd", "../init.d/appd")


def test_init_script_is_its_service_run_from_the_venv(w: World) -> None:
    appd_world(w)
    proc = w.fake_proc({10: "/system.slice/appd.service"})
    c = by_kind(w, ConsumerKind.SYSV_INIT, proc)["appd.service"]
    assert c.source == w.host("/etc/init.d/appd") and c.venv == w.host("/srv/app/venv")
    (ref,) = [r for r in c.refs if r.kind is RefKind.EXEC_SCRIPT]
    assert ref.path == w.host("/srv/app/venv/bin/appd")
    # the start line, with the user of --chuid from the settings file it sources
    start = "\tstart-stop-daemon --start --quiet --pidfile $PIDFILE --chuid $RUN_AS --exec"
    assert ref.line == next(
        n for n, line in enumerate(INIT_SCRIPT.split("\n"), 1) if line.startswith(start)
    )
    assert c.user == "alice" and w.host("/etc/default/appd") in c.files
    assert c.enabled is True and c.running is True
    assert c.activation is Activation.SERVICE
    assert c.fails_how() is FailsHow.WONT_START
    # no 203/EXEC: the script runs, the daemon does not (see the real test below)
    assert "may still look active" in c.fails_phrase(FailsHow.WONT_START)
    assert c.restart.command == "systemctl try-restart appd.service"


def test_init_script_not_enabled_and_not_running(w: World) -> None:
    appd_world(w)
    w.p("/etc/rc2.d/S01appd").unlink()
    w.link("/etc/rc0.d/K01appd", "../init.d/appd")
    c = by_kind(w, ConsumerKind.SYSV_INIT, w.fake_proc({}))["appd.service"]
    assert c.enabled is False and c.running is False


@pytest.mark.parametrize(
    "native",
    ["/etc/systemd/system/appd.service", "/lib/systemd/system/appd.service", "/dev/null"],
)
def test_a_native_unit_of_the_name_wins(w: World, native: str) -> None:
    appd_world(w)
    if native == "/dev/null":
        w.link("/etc/systemd/system/appd.service", "/dev/null")  # masked
    else:
        w.write(native, "[Service]\nExecStart=/srv/app/venv/bin/appd\n")
    w.write("/etc/init.d/other", INIT_SCRIPT, 0o755)
    assert set(by_kind(w, ConsumerKind.SYSV_INIT)) == {"other.service"}
    native_units = by_kind(w, ConsumerKind.SYSTEMD)
    assert set(native_units) == (set() if native == "/dev/null" else {"appd.service"})


def test_generator_output_is_no_native_unit(w: World) -> None:
    appd_world(w)
    w.write(
        "/run/systemd/generator.late/appd.service",
        "[Service]\nSourcePath=/etc/init.d/appd\nExecStart=/etc/init.d/appd start\n",
    )
    assert set(by_kind(w, ConsumerKind.SYSV_INIT)) == {"appd.service"}


def test_scripts_the_generator_skips(w: World) -> None:
    appd_world(w)
    text = INIT_SCRIPT
    w.p("/etc/init.d/appd").chmod(0o644)  # not executable
    w.write("/etc/init.d/appd.dpkg-old", text, 0o755)
    w.write("/etc/init.d/.appd", text, 0o755)
    w.write("/etc/init.d/other.sh", text, 0o755)  # NAME.sh -> NAME.service
    w.write("/etc/init.d/pyinit", "#!/usr/bin/python3\nimport os\n", 0o755)
    assert set(by_kind(w, ConsumerKind.SYSV_INIT)) == {"other.service"}
    assert sysv.unit_of("x.sh") == "x.service" and sysv.unit_of("x~") is None


def test_bad_init_scripts_are_findings_not_hangs(w: World) -> None:
    os.makedirs(w.p("/etc/init.d"))
    os.mkfifo(w.p("/etc/init.d/fifo"))
    os.chmod(w.p("/etc/init.d/fifo"), 0o755)
    w.p("/etc/init.d/big").write_bytes(b"#!/bin/sh\n" + b"#" * (2 << 20))
    w.p("/etc/init.d/big").chmod(0o755)
    w.p("/etc/init.d/latin").write_bytes(
        b"#!/bin/sh\n# caf\xe9\n/srv/app/venv/bin/python -m app &\necho 'open\n"
    )
    w.p("/etc/init.d/latin").chmod(0o755)
    cs = by_kind(w, ConsumerKind.SYSV_INIT)
    assert [f.code for f in cs["fifo.service"].problems] == [UNREADABLE]
    assert [f.code for f in cs["big.service"].problems] == [UNREADABLE]
    latin = cs["latin.service"]
    assert latin.venv == w.host("/srv/app/venv") and "not UTF-8" in latin.problems[0].message


def test_rc_local_when_executable(w: World) -> None:
    w.write(
        "/etc/rc.local",
        "#!/bin/sh -e\nsu - alice -c '/srv/app/venv/bin/python /srv/app/boot.py' &\nexit 0\n",
        0o755,
    )
    c = by_kind(w, ConsumerKind.RC_LOCAL, w.fake_proc({7: "/system.slice/rc-local.service"}))[
        "rc-local.service"
    ]
    assert c.venv == w.host("/srv/app/venv") and c.user == "alice" and c.line == 2
    assert c.running is True and c.enabled is True
    assert c.restart.command == "systemctl try-restart rc-local.service"
    assert c.fails_how() is FailsHow.WONT_START
    w.p("/etc/rc.local").chmod(0o644)  # rc-local.service's condition: not run
    assert by_kind(w, ConsumerKind.RC_LOCAL) == {}


def test_start_stop_daemon_runs_only_with_start() -> None:
    def argv(text: str) -> list[tuple[str, ...]]:
        p = shell.parse(text, env={"PATH": "/usr/bin"}, home="/root")
        return [i.argv for i in p.invocations]

    assert argv("start-stop-daemon --start -x /v/bin/a -- -b 1") == [("/v/bin/a", "-b", "1")]
    assert argv("start-stop-daemon -S --startas=/v/bin/b --exec /v/bin/python") == [("/v/bin/b",)]
    assert argv("start-stop-daemon --start --test --exec /v/bin/a") == []
    assert argv("start-stop-daemon --stop --exec /v/bin/a") == []
    p = shell.parse(
        "start-stop-daemon -S -c app:app -d /srv -x bin/a", env={}, home="/root", user="root"
    )
    (inv,) = p.invocations
    assert inv.user == "app" and inv.argv == ("bin/a",)


# --- real: at wrote the job, the job and the init script run before and after -------------


def _predict(root: Path) -> dict[str, dict[str, Any]]:
    """``predict`` of the root's python3.11 going away, as venvkeeper runs on the host:
    consumer name -> its prediction."""
    res = run_cli(
        "predict",
        "--json",
        "--system-root",
        str(root),
        "--no-processes",
        "--in-root",
        str(root),
        "--remove",
        "/usr/bin/python3.11",
        str(root / "srv"),
    )
    assert res.code in (0, 1, 2), res.err
    doc = validate_json("predict", res.out)
    return {c["name"]: {**c, "venv": v["path"]} for v in doc["venvs"] for c in v["consumers"]}


def at_init_root(root: Path) -> Path:
    """A bookworm root with Debian's ``at`` at *root*: a venv with a console script, an
    init script in the skeleton's style that starts it (enabled, ``--chuid nobody``), and
    a job that the real ``at`` wrote from the venv activated in ``/srv/app``; the job's
    file (a host path)."""
    import debroot

    debroot.bookworm_root(root, (*debroot.PACKAGES, "at"))

    def run(argv: list[str], **kw: Any) -> subprocess.CompletedProcess[str]:
        return debroot.chroot_run(root, argv, check=False, **kw)

    assert run(["python3", "-m", "venv", "--without-pip", "/srv/app/venv"]).returncode == 0
    appd = root / "srv/app/venv/bin/appd"
    appd.write_text(f"#!/srv/app/venv/bin/python3\n{APPD}")
    appd.chmod(0o755)
    init = root / "etc/init.d/appd"
    init.write_text(INIT_SCRIPT)
    init.chmod(0o755)
    (root / "etc/default/appd").write_text('RUN_AS=nobody\nDAEMON_ARGS="--out /tmp/appd"\n')
    (root / "etc/rc2.d").mkdir(exist_ok=True)
    (root / "etc/rc2.d/S01appd").symlink_to("../init.d/appd")
    (root / "srv/app/job.sh").write_text(
        'python -c \'import sys; open("/tmp/at", "w").write(sys.prefix)\'\n'
    )
    # the real at, from the venv activated in /srv/app: the job lands in the root's spool
    sub = run(
        ["sh", "-c", ". venv/bin/activate && at -f /srv/app/job.sh now + 1 hour"],
        cwd="/srv/app",
    )
    assert "job 1 at" in sub.stderr, sub.stderr
    spool = root / "var/spool/cron/atjobs"
    (job,) = [p for p in spool.iterdir() if atjobs.JOB_NAME.match(p.name)]
    assert "VIRTUAL_ENV=/srv/app/venv" in job.read_text()
    return job


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_real_at_job_and_init_script_fail_as_predicted(tmp_path: Path) -> None:
    """In a bookworm root with Debian's ``at``: a job submitted from an activated venv and
    an init script starting the venv's console script through start-stop-daemon. Both run
    the venv before; venvkeeper predicts both break when python3.11 goes (the job at its
    run, the service will not start; only the service is restarted); with python3.11 gone
    both really fail."""
    import debroot

    debroot.require_root_tools()
    root = tmp_path / "root"
    try:
        job = at_init_root(root)
        init = root / "etc/init.d/appd"

        def run(argv: list[str], **kw: Any) -> subprocess.CompletedProcess[str]:
            return debroot.chroot_run(root, argv, check=False, **kw)

        def run_job() -> subprocess.CompletedProcess[str]:
            # as atd does: /bin/sh reads the job on stdin, an empty environment, from /
            return run(["env", "-i", "/bin/sh"], input=job.read_text())

        def start() -> subprocess.CompletedProcess[str]:
            return run(["/etc/init.d/appd", "start"])

        def outputs() -> tuple[str, str]:
            out = [root / "tmp/at", root / "tmp/appd"]
            got = tuple(p.read_text() if p.exists() else "" for p in out)
            for p in out:
                p.unlink(missing_ok=True)
            return got  # type: ignore[return-value]

        # before: both run the venv's interpreter
        assert run_job().returncode == 0
        assert start().returncode == 0
        assert outputs() == ("/srv/app/venv", "/srv/app/venv")
        # what venvkeeper reads and predicts
        predicted = _predict(root)
        at_job = predicted[str(job)]
        assert at_job["kind"] == "at-job" and at_job["venv"] == str(root / "srv/app/venv")
        assert at_job["breaks"] is True and at_job["fails_how"] == "next-run"
        assert at_job.get("restart") is None
        svc = predicted["appd.service"]
        assert svc["kind"] == "sysv-init" and svc["source"] == str(init)
        assert svc["breaks"] is True and svc["fails_how"] == "will-not-start"
        assert svc["restart"] == "systemctl try-restart appd.service"
        # reality: the venv's base goes; neither runs the venv any more
        base = root / "usr/bin/python3.11"
        base.rename(base.with_name("python3.11.gone"))
        try:
            job_run = run_job()
            started = start()
        finally:
            base.with_name("python3.11.gone").rename(base)
        assert job_run.returncode != 0 and "not found" in job_run.stderr, job_run
        assert "unable to start /srv/app/venv/bin/appd" in started.stderr, started
        # the skeleton's closing `:` exits 0 all the same: the unit the generator makes
        # (RemainAfterExit=yes) looks started while its daemon never ran
        assert started.returncode == 0
        assert outputs() == ("", "")
    finally:
        debroot.remove_root(root)


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_real_generators_make_the_units_the_reader_names(tmp_path: Path) -> None:
    """In a bookworm root with systemd 252, systemd-sysv-generator and
    systemd-rc-local-generator run (as at boot, into ``/run/systemd/generator*``) over init
    scripts the generator takes or skips; the reader names the same units, enabled the
    same, and still names them with the generators' output present."""
    import debroot

    import nspawn

    nspawn.require_nspawn()
    root = tmp_path / "root"
    try:
        debroot.bookworm_root(root, nspawn.SYSTEMD)

        def run(argv: list[str]) -> subprocess.CompletedProcess[str]:
            return debroot.chroot_run(root, argv, check=False)

        assert run(["python3", "-m", "venv", "--without-pip", "/srv/app/venv"]).returncode == 0
        w = World.__new__(World)  # the root's own passwd and group stay
        w.root = root
        w.write("/srv/app/venv/bin/appd", f"#!/srv/app/venv/bin/python3\n{APPD}", 0o755)
        for name, mode in {
            "appd": 0o755,  # enabled below
            "other.sh": 0o755,  # other.service, not enabled
            "native": 0o755,  # a native unit of the name wins
            "masked": 0o755,  # so does a mask
            "appd.dpkg-old": 0o755,  # a backup
            ".hidden": 0o755,
            "plain": 0o644,  # not executable
        }.items():
            w.write(f"/etc/init.d/{name}", INIT_SCRIPT, mode)
        w.write("/etc/systemd/system/native.service", "[Service]\nExecStart=/bin/true\n")
        w.link("/etc/systemd/system/masked.service", "/dev/null")
        w.link("/etc/rc2.d/S01appd", "../init.d/appd")
        w.link("/etc/rc0.d/K01other.sh", "../init.d/other.sh")
        w.write("/etc/rc.local", "#!/bin/sh\n/srv/app/venv/bin/appd --out /tmp/rc &\n", 0o755)
        gen = "/run/systemd/generator"
        for d in (gen, f"{gen}.early", f"{gen}.late"):
            (root / d.lstrip("/")).mkdir(parents=True, exist_ok=True)  # as systemd makes them
        for g in ("systemd-sysv-generator", "systemd-rc-local-generator"):
            res = run([f"/lib/systemd/system-generators/{g}", gen, f"{gen}.early", f"{gen}.late"])
            assert res.returncode == 0, res
        made: dict[str, bool] = {}
        wants = ("multi-user.target.wants", "graphical.target.wants")
        for d in (gen, f"{gen}.early", f"{gen}.late"):
            base = root / d.lstrip("/")
            for f in base.glob("*.service"):
                made[f.name] = any((base / t / f.name).is_symlink() for t in wants)
            for t in wants:
                for link in (base / t).glob("rc-local.service"):
                    made[link.name] = True
        assert made == {"appd.service": True, "other.service": False, "rc-local.service": True}
        read = {
            c.name: bool(c.enabled)
            for c in w.read().consumers
            if c.kind in (ConsumerKind.SYSV_INIT, ConsumerKind.RC_LOCAL)
        }
        assert read == made
    finally:
        debroot.remove_root(root)
