"""The consumer readers, each on a small root of its own with real venvs: cron, the shell
command lines, commands and pipx, uWSGI, mod_wsgi, supervisor, gunicorn, config chains,
embedded Pythons, and the judging (checks, verdicts, the venvs nothing uses)."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

from venvkeeper.consumers import elf, shell
from venvkeeper.consumers.judge import judge
from venvkeeper.consumers.rootfs import RootFS
from venvkeeper.model.consumers import (
    Activation,
    Confidence,
    ConsumerKind,
    FailsHow,
    Manager,
    RefKind,
    RestartVerb,
    VenvState,
)
from venvkeeper.model.findings import Severity
from venvkeeper.scan.pipeline import ScanOptions, inspect_path

from consumer_world import World


@pytest.fixture
def w(tmp_path: Path) -> World:
    return World(tmp_path / "root")


# --- the shell reader ------------------------------------------------------------------------


def _argv(text: str, **kw: object) -> list[tuple[str, ...]]:
    env = {"PATH": "/usr/bin:/bin"}
    parsed = shell.parse(text, env=env, home="/home/alice", **kw)  # type: ignore[arg-type]
    assert parsed.error is None, parsed.error
    return [i.argv for i in parsed.invocations]


def test_shell_cd_activate_env_and_wrappers() -> None:
    p = shell.parse(
        "cd /srv/app && . venv/bin/activate && nice -n 5 timeout -s KILL 10m flock -w 3 /run/x"
        " python -m app >/dev/null 2>&1",
        env={"PATH": "/usr/bin"},
        home="/root",
    )
    assert p.sourced[0].path == "/srv/app/venv/bin/activate"
    inv = p.invocations[-1]
    assert inv.argv == ("python", "-m", "app")
    assert inv.env["PATH"].startswith("/srv/app/venv/bin:")
    assert inv.cwd == "/srv/app"
    assert _argv("env -i FOO=1 -C /tmp /opt/v/bin/python x.py") == [("/opt/v/bin/python", "x.py")]
    assert _argv("sudo -u bob -H /opt/v/bin/tool --x") == [("/opt/v/bin/tool", "--x")]
    assert _argv("runuser -u bob -- /opt/v/bin/tool") == [("/opt/v/bin/tool",)]
    assert _argv("su - bob -c '/opt/v/bin/tool a'") == [("/opt/v/bin/tool", "a")]
    assert _argv("bash -lc 'cd /x; ./venv/bin/y'") == [("./venv/bin/y",)]
    assert _argv("ionice -c3 chronic setsid stdbuf -oL taskset 3 /v/bin/z") == [("/v/bin/z",)]
    assert _argv("$HOME/venv/bin/x ~/venv/bin/y") == [
        ("/home/alice/venv/bin/x", "/home/alice/venv/bin/y")
    ]


def test_shell_unknown_variable_is_unresolved_and_open_quote_an_error() -> None:
    p = shell.parse("$APP/bin/python", env={}, home="/root")
    assert p.invocations[0].unresolved
    bad = shell.parse("echo 'open", env={}, home="/root")
    assert bad.error is not None
    deep = shell.parse("sh -c " * 20 + "x", env={}, home="/root")
    assert deep.error is not None or deep.invocations  # never a RecursionError


# --- cron ----------------------------------------------------------------------------------


def test_cron_tables_spools_and_debian_rules(w: World) -> None:
    w.venv("/opt/app/venv")
    w.venv("/home/alice/venv")
    w.write(
        "/etc/crontab",
        "SHELL=/bin/sh\nPATH=/opt/app/venv/bin:/usr/bin:/bin\n"
        "17 * * * * root python -c 'import sys' %stdin\n"
        "@reboot root cd /opt/app && venv/bin/python -m boot\n",
    )
    w.write("/etc/cron.d/certbot", "0 */12 * * * root /opt/app/venv/bin/certbot renew\n")
    w.write("/etc/cron.d/ignored.cron", "* * * * * root /opt/app/venv/bin/x\n")
    w.write("/etc/cron.d/writable", "* * * * * root /opt/app/venv/bin/x\n", 0o666)
    w.write("/var/spool/cron/crontabs/alice", "MAILTO=''\n*/5 * * * * $HOME/venv/bin/python r.py\n")
    w.write("/var/spool/cron/alice", "0 1 * * * . ~/venv/bin/activate && python job.py\n")
    cs = w.consumers()
    crontab = w.host("/etc/crontab")
    bare = cs[f"{crontab}:3"]
    assert bare.refs[0].kind is RefKind.PATH_ENTRY
    assert bare.refs[0].venv == w.host("/opt/app/venv")
    assert bare.trigger == "17 * * * *" and bare.user == "root"
    assert bare.activation is Activation.SCHEDULE
    assert bare.fails_how() is FailsHow.NEXT_RUN
    assert cs[f"{crontab}:4"].trigger == "@reboot"
    assert cs[f"{crontab}:4"].refs[0].kind is RefKind.EXEC_INTERP
    assert cs[w.host("/etc/cron.d/certbot") + ":1"].refs[0].kind is RefKind.EXEC_SCRIPT
    assert not any("ignored.cron" in n or "writable" in n for n in cs)
    spool = cs[w.host("/var/spool/cron/crontabs/alice") + ":2"]
    assert spool.user == "alice"
    assert spool.refs[0].venv == w.host("/home/alice/venv")
    assert spool.refs[0].confidence is Confidence.SHELL_HEURISTIC
    rhel = cs[w.host("/var/spool/cron/alice") + ":1"]
    assert {r.kind for r in rhel.refs} == {RefKind.ACTIVATE, RefKind.PATH_ENTRY}
    assert rhel.restart.manager is Manager.NONE


def test_cron_source_under_dash_is_named(w: World) -> None:
    w.venv("/opt/app/venv")
    w.write("/etc/cron.d/job", "* * * * * root source /opt/app/venv/bin/activate && python x\n")
    c = next(iter(w.consumers().values()))
    assert any(f.code == "consumer-syntax" and "dash" in f.message for f in c.problems)


def test_anacron_and_run_parts_scripts(w: World) -> None:
    w.venv("/opt/app/venv")
    w.write(
        "/etc/anacrontab", "PATH=/usr/bin\n1 5 backup /opt/app/venv/bin/python -m \\\n  backup\n"
    )
    w.link("/etc/cron.daily/report", "/opt/app/venv/bin/report")
    w.script("/opt/app/venv/bin/report", w.host("/opt/app/venv/bin/python"))
    w.write(
        "/etc/cron.weekly/clean",
        "#!/bin/sh\nset -e\nexport PATH=/opt/app/venv/bin:$PATH\npython -m clean\n",
        0o755,
    )
    w.write("/etc/cron.weekly/notexec", "#!/bin/sh\n/opt/app/venv/bin/python\n", 0o644)
    cs = w.consumers()
    ana = cs[w.host("/etc/anacrontab") + ":2"]
    assert ana.kind is ConsumerKind.ANACRON and ana.trigger == "1"
    daily = cs[w.host("/etc/cron.daily/report")]
    assert daily.refs[0].kind is RefKind.EXEC_VIA_LINK and daily.trigger == "daily"
    assert w.host("/etc/cron.weekly/clean") in cs
    assert w.host("/etc/cron.weekly/notexec") not in cs


# --- commands and pipx -------------------------------------------------------------------------


def test_commands_links_shebangs_and_pipx(w: World) -> None:
    w.venv("/opt/tool/venv")
    w.script("/opt/tool/venv/bin/tool", w.host("/opt/tool/venv/bin/python"))
    w.link("/usr/local/bin/tool", "../../../opt/tool/venv/bin/tool")
    w.link("/usr/local/bin/hop", "/usr/local/bin/tool")  # a link to a link, absolute in root
    w.script("/usr/local/sbin/job", "/opt/tool/venv/bin/python")
    w.write(
        "/usr/local/bin/spaced",
        "#!/bin/sh\n'''exec' \"/opt/tool/venv/bin/python3\" \"$0\" \"$@\"\n' '''\nimport x\n",
        0o755,
    )
    w.script("/usr/local/bin/system", "/usr/bin/python3")
    w.venv("/home/alice/.local/share/pipx/venvs/black")
    w.link("/home/alice/.local/bin/black", "/home/alice/.local/share/pipx/venvs/black/bin/black")
    w.script(
        "/home/alice/.local/share/pipx/venvs/black/bin/black",
        "/home/alice/.local/share/pipx/venvs/black/bin/python",
    )
    w.venv("/opt/pipx/venvs/httpie")
    w.link("/usr/local/bin/http", "/opt/pipx/venvs/httpie/bin/http")
    w.script("/opt/pipx/venvs/httpie/bin/http", "/opt/pipx/venvs/httpie/bin/python")
    w.link("/usr/local/bin/gone", "/opt/old/venv/bin/gone")
    cs = w.consumers()
    tool = cs[w.host("/usr/local/bin/tool")]
    assert tool.kind is ConsumerKind.COMMAND and tool.refs[0].kind is RefKind.EXEC_VIA_LINK
    assert tool.venv == w.host("/opt/tool/venv")
    # links are followed only up to the first path inside the venv: never to /usr/bin
    assert tool.refs[0].path == w.host("/opt/tool/venv/bin/tool")
    assert cs[w.host("/usr/local/bin/hop")].venv == w.host("/opt/tool/venv")
    assert cs[w.host("/usr/local/sbin/job")].refs[0].kind is RefKind.EXEC_VIA_SHEBANG
    assert cs[w.host("/usr/local/bin/spaced")].venv == w.host("/opt/tool/venv")
    assert w.host("/usr/local/bin/system") not in cs
    black = cs[w.host("/home/alice/.local/bin/black")]
    assert black.kind is ConsumerKind.PIPX and black.user == "alice"
    assert cs[w.host("/usr/local/bin/http")].kind is ConsumerKind.PIPX
    gone = cs[w.host("/usr/local/bin/gone")]
    assert gone.refs[0].venv_state is VenvState.GONE
    # a venv's own bin/ is not a PATH directory of commands
    assert not any(n.startswith(w.host("/opt/tool/venv/bin")) for n in cs)


# --- uWSGI --------------------------------------------------------------------------------------


def test_uwsgi_apps_enabled_formats_and_includes(w: World) -> None:
    w.venv("/srv/a/venv")
    w.write("/etc/init.d/uwsgi", "#!/bin/sh\n", 0o755)
    w.write(
        "/etc/uwsgi/apps-enabled/a.ini",
        "[uwsgi]\nplugins = python3\nbase = /srv/a\n"
        "home = %(base)/venv\npythonpath = %(base)/venv/lib/python3.9/site-packages\n"
        "ini = common.ini\n",
    )
    w.write("/etc/uwsgi/apps-enabled/common.ini", "[uwsgi]\nchdir = %d\n")
    w.write(
        "/etc/uwsgi/apps-enabled/b.yaml",
        "uwsgi:\n  virtualenv: /srv/a/venv\n  virtualenv: /srv/b/venv\n",
    )
    w.write("/etc/uwsgi/apps-enabled/c.xml", "<uwsgi><venv>/srv/a/venv</venv><master/></uwsgi>")
    w.write(
        "/etc/uwsgi/apps-enabled/d.json",
        '{"uwsgi": {"home": "$(APPS)/venv", "pp": ["/srv/a/venv/lib/python3.11/site-packages"]}}',
    )
    w.write("/etc/uwsgi/apps-enabled/a.json", '{"uwsgi": {"home": "/never/read"}}')
    w.write("/etc/uwsgi/apps-enabled/loop.ini", "[uwsgi]\nhome = /srv/a/venv\ninclude = loop.ini\n")
    cs = w.consumers()
    a = cs[w.host("/etc/uwsgi/apps-enabled/a.ini")]
    assert a.kind is ConsumerKind.UWSGI and a.activation is Activation.WEB
    kinds = {r.kind: r for r in a.refs}
    assert kinds[RefKind.EMBEDDED_HOME].venv == w.host("/srv/a/venv")
    assert kinds[RefKind.EMBEDDED_HOME].confidence is Confidence.EXPANDED
    assert kinds[RefKind.SITEPKGS_HARDCODE].minor == "3.9"
    assert a.restart.unit == "uwsgi.service" and a.restart.verb is RestartVerb.RELOAD
    assert a.fails_how() is FailsHow.HTTP_500
    b = cs[w.host("/etc/uwsgi/apps-enabled/b.yaml")]
    assert [r.venv for r in b.refs] == [w.host("/srv/a/venv"), w.host("/srv/b/venv")]
    assert cs[w.host("/etc/uwsgi/apps-enabled/c.xml")].venv == w.host("/srv/a/venv")
    d = cs[w.host("/etc/uwsgi/apps-enabled/d.json")]
    assert any(r.confidence is Confidence.UNRESOLVED for r in d.refs)
    assert w.host("/etc/uwsgi/apps-enabled/a.json") not in cs  # a.ini wins for base name a
    loop = cs[w.host("/etc/uwsgi/apps-enabled/loop.ini")]
    assert any("include loop" in f.message for f in loop.problems)


def test_uwsgi_emperor_and_a_unit_chain(w: World) -> None:
    w.venv("/srv/v/venv")
    w.write(
        "/etc/systemd/system/uwsgi-emperor.service",
        "[Service]\nExecStart=/usr/bin/uwsgi --ini /etc/uwsgi-emperor/emperor.ini\n",
    )
    w.link(
        "/etc/systemd/system/multi-user.target.wants/uwsgi-emperor.service",
        "/etc/systemd/system/uwsgi-emperor.service",
    )
    w.write("/etc/uwsgi-emperor/emperor.ini", "[uwsgi]\nemperor = /etc/uwsgi-emperor/vassals\n")
    w.write("/etc/uwsgi-emperor/vassals/v.ini", "[uwsgi]\nhome = /srv/v/venv\n")
    w.write("/etc/uwsgi-emperor/vassals/v.ini.skel", "[uwsgi]\nhome = /nope\n")
    proc = w.fake_proc({7: "/system.slice/uwsgi-emperor.service"})
    cs = w.consumers(proc)
    v = cs[w.host("/etc/uwsgi-emperor/vassals/v.ini")]
    assert v.restart.unit == "uwsgi-emperor.service"
    assert v.running is True and v.enabled is True
    assert v.via[0] == "uwsgi-emperor.service"
    assert len([c for c in cs.values() if c.kind is ConsumerKind.UWSGI]) == 1


# --- Apache mod_wsgi ------------------------------------------------------------------------------


def _apache(w: World) -> None:
    w.write(
        "/etc/apache2/envvars",
        "export APACHE_RUN_USER=www-data\nexport APACHE_LOG_DIR=/var/log/apache2$SUFFIX\n",
    )
    w.write(
        "/etc/apache2/apache2.conf",
        "ServerRoot /etc/apache2\nIncludeOptional mods-enabled/*.load\n"
        "Include ports.conf\nIncludeOptional sites-enabled/*.conf\n",
    )
    w.write("/etc/apache2/ports.conf", "Listen 80\n")


def test_mod_wsgi_daemon_process_continuation_and_defines(w: World) -> None:
    w.venv("/srv/site/venv")
    _apache(w)
    w.write(
        "/etc/apache2/mods-available/wsgi.load",
        "LoadModule wsgi_module /usr/lib/apache2/modules/mod_wsgi.so\n",
    )
    w.link("/etc/apache2/mods-enabled/wsgi.load", "../mods-available/wsgi.load")
    w.write("/usr/lib/apache2/modules/mod_wsgi.so-3.13", "")
    w.link("/usr/lib/apache2/modules/mod_wsgi.so", "mod_wsgi.so-3.13")
    w.write(
        "/etc/apache2/sites-available/site.conf",
        "Define SITE /srv/site\n<VirtualHost *:80>\n<IfModule mod_wsgi.c>\n"
        "  WSGIDaemonProcess site user=www-data home=/srv/site \\\n"
        "      python-home=${SITE}/venv"
        ' "python-path=${SITE}/src:${SITE}/venv/lib/python3.11/site-packages"\n'
        "  WSGIScriptAlias / ${SITE}/app.wsgi process-group=site\n</IfModule>\n</VirtualHost>\n",
    )
    w.link("/etc/apache2/sites-enabled/site.conf", "../sites-available/site.conf")
    w.write("/etc/apache2/sites-available/off.conf", "WSGIDaemonProcess off python-home=/srv/off\n")
    w.write(
        "/srv/site/app.wsgi",
        "import site\nsite.addsitedir('/srv/site/venv/lib/python3.11/site-packages')\n",
    )
    cs = w.consumers()
    c = cs["WSGIDaemonProcess site"]
    assert c.kind is ConsumerKind.MOD_WSGI and c.user == "www-data"
    assert c.embedded_python == "3.13"
    assert c.restart.unit == "apache2.service" and c.restart.verb is RestartVerb.RELOAD
    homes = [r for r in c.refs if r.kind is RefKind.EMBEDDED_HOME]
    assert [r.venv for r in homes] == [w.host("/srv/site/venv")]  # home= is a cwd, not a venv
    # the file as Apache includes it (the sites-enabled link), at the directive's first line
    assert c.line == 4 and c.source == w.host("/etc/apache2/sites-enabled/site.conf")
    hard = [r for r in c.refs if r.kind is RefKind.SITEPKGS_HARDCODE]
    assert {r.minor for r in hard} == {"3.11"} and len(hard) == 2  # the conf and the .wsgi
    assert "WSGIDaemonProcess off" not in cs  # only in sites-available
    # the embedded Python differs from the venv's: the check says so
    report = judge(w.read(), lambda p: inspect_path(p, ScanOptions()), [])
    j = next(x for x in report.consumers if x.consumer.name == "WSGIDaemonProcess site")
    codes = {f.code for f in j.findings}
    assert "embedded-python-mismatch" in codes and j.status is Severity.CRITICAL


def test_apache_include_loop_and_rhel_layout(w: World) -> None:
    w.venv("/srv/r/venv")
    w.write("/etc/httpd/conf/httpd.conf", 'ServerRoot "/etc/httpd"\nInclude conf.d/*.conf\n')
    w.write("/etc/httpd/conf.d/a.conf", "WSGIPythonHome /srv/r/venv\nInclude conf.d/b.conf\n")
    w.write("/etc/httpd/conf.d/b.conf", "Include conf.d/a.conf\n")
    cs = w.consumers()
    c = cs["WSGIPythonHome"]
    assert c.venv == w.host("/srv/r/venv") and c.restart.unit == "httpd.service"
    assert any("include loop" in f.message for f in c.problems)


# --- supervisor and gunicorn ---------------------------------------------------------


def test_supervisor_programs_includes_and_expansions(w: World) -> None:
    w.venv("/srv/s/venv")
    w.script("/srv/s/venv/bin/gunicorn", w.host("/srv/s/venv/bin/python"))
    w.write("/etc/supervisor/supervisord.conf", "[supervisord]\n[include]\nfiles = conf.d/*.conf\n")
    w.write(
        "/etc/supervisor/conf.d/app.conf",
        "[program:web]\ncommand=/srv/s/venv/bin/gunicorn app:app ; comment\n"
        "directory=/srv/s\nuser=alice\n"
        '[program:bare]\ncommand=gunicorn x\nenvironment=PATH="/srv/s/venv/bin:/usr/bin",A=1\n'
        "[program:rel]\ncommand=venv/bin/python -m worker\ndirectory=/srv/s\n"
        "[program:here]\ncommand=%(here)s/../../../srv/s/venv/bin/python -m %(program_name)s\n"
        '[program:sh]\ncommand=bash -c "source /srv/s/venv/bin/activate && exec python x"\n',
    )
    cs = w.consumers()
    web = cs["program:web"]
    assert web.kind is ConsumerKind.SUPERVISOR and web.user == "alice"
    assert web.refs[0].kind is RefKind.EXEC_SCRIPT and web.restart.unit == "supervisor.service"
    assert cs["program:bare"].refs[0].kind is RefKind.PATH_ENTRY
    assert cs["program:rel"].venv == w.host("/srv/s/venv")
    assert cs["program:here"].refs[0].confidence is Confidence.EXPANDED
    assert RefKind.ACTIVATE in {r.kind for r in cs["program:sh"].refs}


def test_gunicorn_config_read_with_ast_never_run(w: World, tmp_path: Path) -> None:
    w.venv("/srv/g/venv")
    marker = tmp_path / "ran"
    w.write(
        "/srv/g/gunicorn.conf.py",
        f"import os\nopen({str(marker)!r}, 'w')\nchdir = '/srv/g'\n"
        "pythonpath = '/srv/g/src,/srv/g/venv/lib/python3.9/site-packages'\n"
        "workers = os.cpu_count()\n",
    )
    w.write(
        "/etc/systemd/system/g.service",
        "[Service]\nWorkingDirectory=/srv/g\nExecStart=/srv/g/venv/bin/gunicorn app:app\n",
    )
    cs = w.consumers()
    unit = cs["g.service"]
    assert unit.refs[0].kind is RefKind.EXEC_SCRIPT
    conf = cs[w.host("/srv/g/gunicorn.conf.py")]
    assert conf.kind is ConsumerKind.GUNICORN and conf.restart.unit == "g.service"
    assert conf.refs[0].kind is RefKind.SITEPKGS_HARDCODE and conf.refs[0].minor == "3.9"
    assert not marker.exists()


# --- embedded Pythons ---------------------------------------------------------------


def test_embedded_minor_from_names_and_elf(tmp_path: Path) -> None:
    assert elf.minor_from_name("mod_wsgi.so-3.11") == "3.11"
    assert elf.minor_from_name("python313_plugin.so") == "3.13"
    real = Path("/usr/lib/uwsgi/plugins/python311_plugin.so")
    pyenv = sorted(Path.home().glob(".pyenv/versions/3.1*/bin/python3.1*"))
    shared = [p for p in pyenv if elf.needed(str(p))]
    if not real.exists() and not shared:
        pytest.skip("no ELF linked to libpython here (uwsgi-plugin-python3, a shared pyenv)")
    src = real if real.exists() else shared[0]
    neutral = tmp_path / "plugin.so"
    shutil.copyfile(src, neutral)
    got = elf.minor_from_elf(str(neutral))
    assert got is not None and got.startswith("3.")
    fs = RootFS("/")
    assert elf.embedded_minor(fs, str(neutral)) == (got, str(neutral))
    # not ELF, truncated, a FIFO: nothing, never an error or a hang
    (tmp_path / "text.so").write_text("not elf")
    (tmp_path / "short.so").write_bytes(src.read_bytes()[:100])
    import os

    os.mkfifo(tmp_path / "fifo.so")
    for name in ("text.so", "short.so", "fifo.so", "missing.so"):
        assert elf.needed(str(tmp_path / name)) == []


# --- judging ----------------------------------------------------------------------------------


def test_judge_dangling_hardcode_and_unused(w: World) -> None:
    w.venv("/opt/app/venv")
    w.venv("/opt/idle/venv")
    minor = f"{sys.version_info[0]}.{sys.version_info[1]}"
    w.write(
        "/etc/systemd/system/a.service",
        f"[Service]\nEnvironment=PYTHONPATH=/opt/app/venv/lib/python2.7/site-packages\n"
        f"ExecStart=/opt/app/venv/bin/python -m a\nExecStartPost=/opt/gone/venv/bin/python\n"
        f"ExecStop=/opt/app/venv/bin/python -c 'import sys' /opt/app/venv/lib/python{minor}\n",
    )
    scanned = [w.host("/opt/app/venv"), w.host("/opt/idle/venv")]
    report = judge(w.read(), lambda p: inspect_path(p, ScanOptions()), scanned)
    j = report.consumers[0]
    codes = [(f.code, f.severity) for f in j.findings]
    assert ("consumer-dangling", Severity.CRITICAL) in codes
    assert ("consumer-hardcodes-minor", Severity.WARNING) in codes
    assert report.unused == (w.host("/opt/idle/venv"),)
    assert j.consumer.restart.command == "systemctl try-restart a.service"


def test_unit_chains_instances_root_directory_and_running(w: World) -> None:
    """uwsgi-app@NAME (enabled through its socket), apache2.service (apachectl: Debian's
    layout), RootDirectory=, GUNICORN_CMD_ARGS, and which of them run now."""
    w.venv("/srv/blog/venv")
    w.venv("/srv/jail/venv")
    w.write(
        "/lib/systemd/system/uwsgi-app@.socket", "[Socket]\nListenStream=/run/uwsgi/%i.socket\n"
    )
    w.write(
        "/lib/systemd/system/uwsgi-app@.service",
        "[Service]\nDynamicUser=yes\n"
        "ExecStart=/usr/bin/uwsgi --ini /etc/uwsgi/apps-available/%i.ini\n",
    )
    w.link(
        "/etc/systemd/system/sockets.target.wants/uwsgi-app@blog.socket",
        "/lib/systemd/system/uwsgi-app@.socket",
    )
    w.write("/etc/uwsgi/apps-available/blog.ini", "[uwsgi]\nvenv = /srv/blog/venv\n")
    w.write(
        "/lib/systemd/system/apache2.service", "[Service]\nExecStart=/usr/sbin/apachectl start\n"
    )
    w.write("/etc/apache2/apache2.conf", "WSGIDaemonProcess blog python-home=/srv/blog/venv\n")
    w.write(
        "/etc/systemd/system/jail.service",
        "[Service]\nRootDirectory=/srv/jail\nExecStart=/venv/bin/python -m jailed\n",
    )
    w.write(
        "/etc/systemd/system/g.service",
        '[Service]\nEnvironment="GUNICORN_CMD_ARGS=-c /etc/g2.py --workers 2"\n'
        "ExecStart=/srv/blog/venv/bin/python -m gunicorn app:app\n",
    )
    w.write("/etc/g2.py", "pythonpath = '/srv/blog/venv/lib/python3.8/site-packages'\n")
    proc = w.fake_proc(
        {
            5: "/system.slice/system-uwsgi\\x2dapp.slice/uwsgi-app@blog.service",
            6: "/system.slice/apache2.service",
        }
    )
    cs = w.consumers(proc)
    app = cs[w.host("/etc/uwsgi/apps-available/blog.ini")]
    assert app.restart.unit == "uwsgi-app@blog.service" and app.running is True
    assert app.enabled is True and app.user == "(dynamic)"
    wsgi = cs["WSGIDaemonProcess blog"]
    assert wsgi.restart.unit == "apache2.service" and wsgi.running is True
    assert wsgi.restart.command == "systemctl reload apache2.service"
    jail = cs["jail.service"]
    assert jail.venv == w.host("/srv/jail/venv") and jail.running is False
    conf = cs[w.host("/etc/g2.py")]
    assert conf.refs[0].minor == "3.8" and conf.restart.unit == "g.service"


def test_every_file_a_consumer_is_taken_on(w: World) -> None:
    """What the next step's trust rule must judge before root acts on a consumer."""
    w.venv("/opt/app/venv")
    w.write("/etc/systemd/system/a.service", "[Service]\nExecStart=/opt/app/venv/bin/python\n")
    w.write("/etc/systemd/system/a.service.d/env.conf", "[Service]\nEnvironmentFile=/etc/a.env\n")
    w.write("/etc/a.env", "X=1\n")
    w.link("/usr/local/bin/tool", "/opt/app/venv/bin/python")
    cs = w.consumers()
    assert cs["a.service"].files == (
        w.host("/etc/systemd/system/a.service"),
        w.host("/etc/systemd/system/a.service.d/env.conf"),
        w.host("/etc/a.env"),
    )
    assert w.host("/usr/local/bin/tool") in cs[w.host("/usr/local/bin/tool")].files
