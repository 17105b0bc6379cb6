"""apt hooks: the pre-install hook fed apt's real protocol-3 input judges a simulated distro
upgrade exactly as ``venvkeeper predict`` does; nothing makes it fail apt; the installed
configuration is accepted by apt itself, and apt really sends protocol 3 to the hook."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from venvkeeper import cli
from venvkeeper.apt import hook as apthook
from venvkeeper.apt.hook import parse_input, python_change, render_conf

import factory
from conftest import Result, require_python, run_cli, validate_json
from factory import make_venv

DATA = Path(__file__).parent / "data"
#: What apt 2.6 (Debian 12) wrote to a Pre-Install-Pkgs hook with Version "3": captured
#: by a hook that saved its stdin, for `apt-get install vk-tiny.deb ed-`.
CAPTURED = DATA / "apt-hook-v3-debian12.txt"


def _config_block() -> str:
    """The real VERSION line and configuration dump, up to and with the blank line."""
    text = CAPTURED.read_text()
    head, sep, _actions = text.partition("\n\n")
    assert sep and head.startswith("VERSION 3\n")
    return head + "\n\n"


def hook(
    monkeypatch: pytest.MonkeyPatch, stdin: str | bytes, *args: str, stage: str = "pre-install"
) -> Result:
    data = stdin.encode() if isinstance(stdin, str) else stdin
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data)))
    monkeypatch.delenv("APT_HOOK_INFO_FD", raising=False)
    return run_cli("apt-hook", stage, *args)


# --- the protocol --------------------------------------------------------------------------


def test_parses_the_real_capture() -> None:
    got = parse_input(CAPTURED.read_text())
    assert got.version == 3
    assert got.config_value("Dir::Bin::dpkg") == "/bin/true"
    assert got.config_value("APT::Architecture") == "amd64"
    # %-encoded values are decoded; list entries (Key::=value) keep their key
    assert "dpkg-preconfigure --apt" in " ".join(
        v for k, v in got.config if k == "DPkg::Pre-Install-Pkgs"
    )
    ed = got.actions[0]
    assert (ed.name, ed.old_version, ed.old_arch, ed.compare, ed.new_version) == (
        "ed",
        "1.19-1",
        "amd64",
        ">",
        None,
    )
    assert ed.action == "**REMOVE**" and ed.removes
    assert [a.action for a in got.actions[1:]] == ["**ERROR**", "**CONFIGURE**"]
    assert python_change(got.actions) is None  # no Python package: the hook stays silent


def test_version_2_lines_have_five_fields() -> None:
    got = parse_input("VERSION 2\nquiet=1\n\npython3.11-minimal 3.11.2-6 > - **REMOVE**\n")
    (a,) = got.actions
    assert a.name == "python3.11-minimal" and a.removes and a.old_arch is None


@pytest.mark.parametrize(
    "text",
    [
        "",
        "/var/cache/apt/archives/python3_3.12.1-1_amd64.deb\n",  # version 1: paths only
        "VERSION 9\n\n",
        "VERSION 3\nquiet=1\n",  # no blank line after the configuration
        "VERSION 3\nnot a key value\n\n",
        "VERSION 3\n\npython3 3.11 amd64 none < 3.12\n",
        "VERSION 3\n\npython3 3.11 amd64 none ? 3.12 amd64 none x.deb\n",
    ],
)
def test_malformed_input_is_a_clear_error(text: str) -> None:
    with pytest.raises(apthook.AptHookError):
        parse_input(text)


def _line(name: str, old: str, new: str, action: str) -> str:
    oa = "-" if old == "-" else "amd64"
    na = "-" if new == "-" else "amd64"
    cmp = ">" if new == "-" else "<"
    return f"{name} {old} {oa} none {cmp} {new} {na} none {action}"


def _actions(*lines: str) -> list[apthook.PackageAction]:
    return list(parse_input(_config_block() + "\n".join(lines) + "\n").actions)


def test_a_minor_upgrade_of_python3_repoints_it() -> None:
    deb = "/var/cache/apt/archives/python3_3.12.6-1_amd64.deb"
    pc = python_change(
        _actions(
            _line("python3", "3.11.2-1+b1", "3.12.6-1", deb),
            _line("python3-minimal", "3.11.2-1+b1", "3.12.6-1", deb),
            _line("python3", "3.11.2-1+b1", "3.12.6-1", "**CONFIGURE**"),
            _line("python3.11-minimal", "3.11.2-6", "-", "**REMOVE**"),
            _line("libpython3.11-stdlib", "3.11.2-6", "-", "**REMOVE**"),
            _line("vim", "2:9.0.1378-2", "2:9.0.1378-3", "/x/vim.deb"),
        )
    )
    assert pc is not None and not pc.patch_only
    assert pc.change.python_becomes == ((None, "3.12"),)
    assert pc.change.remove_packages == ("libpython3.11-stdlib", "python3.11-minimal")
    assert pc.change.remove == ()
    assert any("python3 becomes python3.12" in n for n in pc.notes)
    with_prefix = python_change(
        _actions(
            _line("python3-minimal", "3.11.2-1", "3.12.6-1", "/x.deb"),
            _line("python3.11-minimal", "3.11.2-6", "-", "**REMOVE**"),
            _line("libpython3.11-minimal", "3.11.2-6", "-", "**REMOVE**"),
            _line("libpython3.11-dev", "3.11.2-6", "-", "**REMOVE**"),
        ),
        prefix="/chroot/usr",
    )
    assert with_prefix is not None
    assert with_prefix.change.python_becomes == (("/chroot/usr/bin/python3", "3.12"),)
    assert set(with_prefix.change.remove) == {
        "/chroot/usr/bin/python3.11",
        "/chroot/usr/lib/python3.11",
        "/chroot/usr/include/python3.11",
    }


def test_patch_upgrades_and_other_packages() -> None:
    pc = python_change(
        _actions(
            _line("python3.11-minimal", "3.11.2-6", "3.11.2-6+deb12u5", "/x.deb"),
            _line("python3", "3.11.2-1+b1", "3.11.2-1+b2", "/y.deb"),
        )
    )
    assert pc is not None and pc.patch_only and pc.change.describe().empty
    again = python_change(_actions(_line("python3.11-minimal", "3.11.2-6", "3.11.2-6", "/x.deb")))
    assert again is not None and again.notes == ("python3.11-minimal 3.11.2-6 reinstalled",)
    assert python_change(_actions(_line("python3-requests", "2.28", "2.31", "/z.deb"))) is None
    assert python_change(_actions(_line("libpython3-dev", "3.11", "3.12", "/z.deb"))) is None


# --- the hook never fails apt -------------------------------------------------------------


def _assert_survived(res: Result, words: str) -> None:
    assert res.code == 0, res.err
    assert words in res.err, res.err
    assert res.err.count("\n") == 1 and "Traceback" not in res.err


def test_garbage_on_stdin_exits_0_with_a_message(monkeypatch: pytest.MonkeyPatch) -> None:
    _assert_survived(hook(monkeypatch, "garbage\n"), "apt hook failed (apt sent no protocol")
    _assert_survived(hook(monkeypatch, b"\xff\x00\x1b[31m"), "apt hook failed")
    _assert_survived(hook(monkeypatch, ""), "no input from apt")
    _assert_survived(hook(monkeypatch, "VERSION 3\nx=1\n\nbroken\n"), "not a version 3")


def _upgrade_input() -> str:
    return _config_block() + _line("python3.11-minimal", "3.11.2-6", "-", "**REMOVE**") + "\n"


def test_a_crash_inside_exits_0_with_a_message(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    def boom(*a: object, **k: object) -> None:
        raise RuntimeError("simulated bug")

    monkeypatch.setattr(apthook, "python_change", boom)
    res = hook(monkeypatch, _upgrade_input(), str(tmp_path))
    _assert_survived(res, "apt hook failed (RuntimeError: simulated bug)")


def test_missing_files_exit_0_with_a_message(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    res = hook(monkeypatch, _upgrade_input(), str(tmp_path / "no-such-root"))
    _assert_survived(res, "no-such-root: does not exist")
    res = hook(monkeypatch, _upgrade_input(), str(tmp_path), "--no-processes")
    # the real host's dpkg: python3.11-minimal is installed here, or the error says so
    assert res.code == 0
    res = run_cli("--config", str(tmp_path / "missing.toml"), "apt-hook", "post-invoke")
    _assert_survived(res, "no such configuration file")
    bad = tmp_path / "bad.toml"
    bad.write_text("[scan\n")
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(_upgrade_input().encode())))
    res = run_cli("--config", str(bad), "apt-hook", "pre-install", str(tmp_path))
    _assert_survived(res, f"{bad}:1: invalid TOML")


def test_a_slow_scan_is_cut_off(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import time

    import venvkeeper.scan.pipeline

    def slow(*a: object, **k: object) -> None:
        time.sleep(30)

    monkeypatch.setattr(venvkeeper.scan.pipeline, "scan", slow)
    t0 = time.monotonic()
    res = hook(monkeypatch, _upgrade_input(), str(tmp_path), "--timeout", "0.5")
    assert time.monotonic() - t0 < 10
    _assert_survived(res, "apt hook gave up after 0.5s; apt goes on")


def test_post_invoke_summarises_and_exits_0(tmp_path: Path) -> None:
    v = make_venv(require_python("3.11"), tmp_path / "v")
    (v / "bin" / "python").unlink()
    (v / "bin" / "python").symlink_to("/nonexistent/python3.11")
    res = run_cli("apt-hook", "post-invoke", str(tmp_path))
    assert res.code == 0, res.err
    lines = res.out.splitlines()
    assert lines[0].startswith("venvkeeper: 1 venv: 1 critical")
    assert f"critical  {v}  interpreter-dangling" in lines[1]
    assert "venvkeeper repair --all --dry-run" in lines[2]
    assert "need" in lines[3] and "a restart" in lines[3]


# --- the simulated distro upgrade, judged by the hook and by predict --------------------


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> factory.UpgradeWorld:
    return factory.UpgradeWorld.build(tmp_path_factory.mktemp("apthook"))


def _distro_upgrade_input() -> str:
    """An apt run that moves the distro from 3.10 to 3.12, as apt 2.6 writes it."""
    arch = "/var/cache/apt/archives"
    lines = [
        _line("libpython3.12-minimal", "-", "3.12.1-1", f"{arch}/libpython3.12-minimal.deb"),
        _line("python3.12-minimal", "-", "3.12.1-1", f"{arch}/python3.12-minimal.deb"),
        _line("python3-minimal", "3.10.6-1", "3.12.1-1", f"{arch}/python3-minimal.deb"),
        _line("python3", "3.10.6-1", "3.12.1-1", f"{arch}/python3_3.12.1-1_amd64.deb"),
        _line("python3.10-minimal", "3.10.13-1", "-", "**REMOVE**"),
        _line("libpython3.10-minimal", "3.10.13-1", "-", "**REMOVE**"),
        _line("libpython3.10-stdlib", "3.10.13-1", "-", "**REMOVE**"),
        _line("libpython3.10-dev", "3.10.13-1", "-", "**REMOVE**"),
        _line("python3-minimal", "3.10.6-1", "3.12.1-1", "**CONFIGURE**"),
        _line("python3", "3.10.6-1", "3.12.1-1", "**CONFIGURE**"),
    ]
    return _config_block() + "\n".join(lines) + "\n"


@pytest.mark.slow
def test_hook_verdicts_equal_predict(
    world: factory.UpgradeWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    usr, envs = world.root / "usr", str(world.envs)
    res = hook(
        monkeypatch,
        _distro_upgrade_input(),
        envs,
        "--host-prefix",
        str(usr),
        "--no-processes",
        "--json",
    )
    assert res.code == 0 and res.err == "", res.err
    header, _, body = res.out.partition("\n")
    assert "python3 becomes python3.12" in header
    by_hook = {v["path"]: v for v in validate_json("predict", body)["venvs"]}
    pred = run_cli(
        "predict",
        "--json",
        envs,
        "--no-processes",
        f"--python-becomes={usr}/bin/python3=3.12",
        f"--remove={usr}/bin/python3.10",
        f"--remove={usr}/lib/python3.10",
        f"--remove={usr}/include/python3.10",
    )
    assert pred.code == 2, pred.err
    by_predict = {v["path"]: v for v in validate_json("predict", pred.out)["venvs"]}
    assert set(by_hook) == set(by_predict) == {str(p) for p in world.made.values()}
    for path, v in by_predict.items():
        h = by_hook[path]
        assert (h["effect"], h["status_then"], h["findings_then"]) == (
            v["effect"],
            v["status_then"],
            v["findings_then"],
        ), path
        assert h["effect"] in ("breaks-loudly", "breaks-silently", "loses-stdlib")


@pytest.mark.slow
def test_hook_text_tells_what_breaks_before_it_happens(
    world: factory.UpgradeWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    usr, envs = world.root / "usr", str(world.envs)
    res = hook(monkeypatch, _distro_upgrade_input(), envs, "--host-prefix", str(usr))
    assert res.code == 0, res.err
    table = run_cli(
        "predict",
        envs,
        "--only-problems",
        f"--python-becomes={usr}/bin/python3=3.12",
        f"--remove={usr}/bin/python3.10",
        f"--remove={usr}/lib/python3.10",
        f"--remove={usr}/include/python3.10",
    ).out
    # the same table predict prints (its change line lists the removals in another order),
    # then the count and the plan command
    change, body = table.split("\n", 1)
    assert change.startswith("change: ") and body.count("\n") > len(world.made)
    assert body in res.out
    n = len(world.made)
    assert f"venvkeeper: {n} venvs will break when dpkg goes on" in res.out
    assert f"venvkeeper plan --python-becomes={usr}/bin/python3=3.12" in res.out
    # nothing changed: the world is still on 3.10
    assert (usr / "bin" / "python3.10").exists()


# --- install-apt-hooks --------------------------------------------------------------------


def _venvkeeper_exe() -> str:
    exe = Path(sys.executable).parent / "venvkeeper"
    if not exe.exists():
        pytest.skip("the venvkeeper console script is not installed beside this Python")
    return str(exe)


def _apt_dump(conf: Path) -> str:
    if not shutil.which("apt-config"):
        pytest.skip("apt-config is not installed")
    res = subprocess.run(
        ["apt-config", "-c", str(conf), "dump"], capture_output=True, text=True, timeout=60
    )
    assert res.returncode == 0, res.stderr
    return res.stdout


def test_install_writes_a_file_apt_accepts(tmp_path: Path) -> None:
    exe = _venvkeeper_exe()
    res = run_cli("install-apt-hooks", "--apt-conf-dir", str(tmp_path), "--venvkeeper", exe)
    assert res.code == 0, res.err
    conf = tmp_path / "60venvkeeper"
    assert oct(conf.stat().st_mode & 0o777) == "0o644"
    dump = _apt_dump(conf)
    ours = [ln for ln in dump.splitlines() if "VENVKEEPER_APT_HOOK" in ln]  # apt's own too
    pre = [ln for ln in ours if ln.startswith("DPkg::Pre-Install-Pkgs::")]
    post = [ln for ln in ours if ln.startswith("DPkg::Post-Invoke::")]
    guard = f"VENVKEEPER_APT_HOOK={exe} ; if [ -x $VENVKEEPER_APT_HOOK ]; then"
    assert len(pre) == 1 and guard in pre[0]
    assert "$VENVKEEPER_APT_HOOK apt-hook pre-install 2>&1 >&3" in pre[0]
    assert len(post) == 1 and guard in post[0]
    assert "$VENVKEEPER_APT_HOOK apt-hook post-invoke 2>&1 >&3" in post[0]
    assert all(c.endswith(' || true; fi";') for c in (pre[0], post[0]))
    version = f'DPkg::Tools::Options::VENVKEEPER_APT_HOOK%3d{exe}::Version "3";'
    assert version in dump.splitlines()
    # the Version key is named by the command's first word, as apt looks it up
    command = pre[0].split('"')[1]
    assert command.split(" ", 1)[0] == f"VENVKEEPER_APT_HOOK={exe}"
    assert run_cli("install-apt-hooks", "--apt-conf-dir", str(tmp_path), "--uninstall").code == 0
    assert not conf.exists()
    res = run_cli("install-apt-hooks", "--apt-conf-dir", str(tmp_path), "--uninstall")
    assert res.code == 0 and "was not installed" in res.out


def test_install_refuses_bad_paths(tmp_path: Path) -> None:
    res = run_cli("install-apt-hooks", "--apt-conf-dir", str(tmp_path / "none"))
    assert res.code == 3 and "is not a directory" in res.err
    odd = tmp_path / "dir with space"
    odd.mkdir()
    exe = odd / "venvkeeper"
    exe.write_text("#!/bin/sh\n")
    exe.chmod(0o755)
    res = run_cli("install-apt-hooks", "--apt-conf-dir", str(tmp_path), "--venvkeeper", str(exe))
    assert res.code == 3 and "must be absolute and hold only" in res.err
    res = run_cli(
        "install-apt-hooks", "--apt-conf-dir", str(tmp_path), "--venvkeeper", str(tmp_path)
    )
    assert res.code == 3 and "not an executable file" in res.err
    assert not (tmp_path / "60venvkeeper").exists()
    from venvkeeper.cli import apt as cli_apt

    assert cli_apt._APT_CONF_DIR == apthook.DEFAULT_APT_CONF_DIR


def _hook_commands(exe: Path) -> list[str]:
    """The two hook command lines for *exe*, as apt reads them from render_conf's file."""
    conf = exe.parent / "60venvkeeper"
    conf.write_text(render_conf(str(exe)))
    dump = _apt_dump(conf)
    commands = [
        ln.split('"')[1]
        for ln in dump.splitlines()
        if ln.startswith(("DPkg::Pre-Install-Pkgs::", "DPkg::Post-Invoke::"))
        and "VENVKEEPER_APT_HOOK" in ln
    ]
    assert len(commands) == 2
    return commands


def _run_hook(command: str, cwd: Path) -> subprocess.CompletedProcess[bytes]:
    # apt runs each with /bin/sh -c (a file named like a glob in its cwd changes nothing)
    (cwd / "q=x").touch()
    return subprocess.run(
        ["/bin/sh", "-c", command],
        input=_config_block().encode(),
        capture_output=True,
        timeout=60,
        cwd=cwd,
    )


SKIPPED = b"venvkeeper: apt hook skipped: venvkeeper cannot start"


@pytest.mark.parametrize("binary", ["missing", "failing", "talking"])
def test_each_hook_command_line_is_failure_proof(tmp_path: Path, binary: str) -> None:
    """Gone: silent. Ran (exit 0): its stdout and stderr as they were (controls escaped).
    Anything else: one line on stderr, with the exit status and the last line it wrote."""
    exe = tmp_path / "venvkeeper"
    if binary == "failing":
        exe.write_text("#!/bin/sh\necho first >&2\nprintf 'fail\\033[31m' >&2\nexit 3\n")
    elif binary == "talking":
        exe.write_text("#!/bin/sh\necho report\necho note >&2\nprintf 'x\\033' >&2\n")
    if binary != "missing":
        exe.chmod(0o755)
    want = {
        "missing": (b"", b""),
        "failing": (b"", SKIPPED + b" (exit status 3): fail?[31m\n"),
        "talking": (b"report\n", b"note\nx?\n"),
    }[binary]
    for command in _hook_commands(exe):
        res = _run_hook(command, tmp_path)
        assert res.returncode == 0, res.stderr
        assert (res.stdout, res.stderr) == want


def test_a_venvkeeper_that_cannot_start_is_one_line(tmp_path: Path) -> None:
    """The real console script, run by a Python that cannot import venvkeeper (as after a
    release upgrade, with venvkeeper left in the old minor's dist-packages): each hook line
    says so in one line, no traceback, and apt goes on."""
    script = Path(_venvkeeper_exe()).read_text()
    shebang, body = script.split("\n", 1)
    assert shebang.startswith("#!") and "from venvkeeper" in body
    exe = tmp_path / "venvkeeper"
    exe.write_text(f"#!{sys.executable} -IS\n{body}")  # no site-packages: no venvkeeper
    exe.chmod(0o755)
    alone = subprocess.run([str(exe), "--version"], capture_output=True, text=True, timeout=60)
    assert alone.returncode == 1 and "Traceback" in alone.stderr  # what apt used to show
    for command in _hook_commands(exe):
        res = _run_hook(command, tmp_path)
        assert res.returncode == 0, res.stderr
        lines = (res.stdout + res.stderr).decode().splitlines()
        assert len(lines) == 1 and "Traceback" not in lines[0], lines
        assert lines[0] == (
            SKIPPED.decode() + " (exit status 1): ModuleNotFoundError: No module named 'venvkeeper'"
        )


@pytest.mark.slow
def test_apt_itself_sends_protocol_3_to_the_installed_hook(tmp_path: Path) -> None:
    """A real apt-get run with the hooks' file (-c) and dpkg replaced by /bin/true (nothing
    is installed; apt's state and logs go to tmp_path): the hook command gets VERSION 3."""
    if os.geteuid() != 0 or not shutil.which("apt-get") or not shutil.which("dpkg-deb"):
        pytest.skip("needs root, apt-get and dpkg-deb")
    pkg = tmp_path / "pkg"
    (pkg / "DEBIAN").mkdir(parents=True)
    (pkg / "DEBIAN" / "control").write_text(
        "Package: vk-hook-probe\nVersion: 1.0-1\nArchitecture: all\n"
        "Maintainer: venvkeeper tests <root@localhost>\nDescription: empty\n"
    )
    deb = tmp_path / "vk-hook-probe_1.0-1_all.deb"
    subprocess.run(["dpkg-deb", "--build", str(pkg), str(deb)], check=True, capture_output=True)
    capture = tmp_path / "venvkeeper"  # stands in for venvkeeper: saves what it is given
    capture.write_text(f'#!/bin/sh\ncat > {tmp_path}/got-"$2"\n')
    capture.chmod(0o755)
    conf = tmp_path / "60venvkeeper"
    conf.write_text(render_conf(str(capture)))
    (tmp_path / "log").mkdir()
    res = subprocess.run(
        [
            "apt-get",
            "-c",
            str(conf),
            "install",
            "-y",
            "--no-download",
            str(deb),
            "-o",
            "Dir::Bin::dpkg=/bin/true",
            "-o",
            f"Dir::State::extended_states={tmp_path}/extended_states",
            "-o",
            f"Dir::Log={tmp_path}/log",
            "-o",
            "DPkg::Lock::Timeout=240",  # another apt on this machine: wait for it, not skip
        ],
        capture_output=True,
        text=True,
        timeout=270,
        env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
    )
    got = tmp_path / "got-pre-install"
    assert got.exists(), res.stdout + res.stderr
    parsed = parse_input(got.read_text())
    assert parsed.version == 3
    assert any(a.name == "vk-hook-probe" and a.new_version == "1.0-1" for a in parsed.actions)


def test_roots_may_follow_the_options() -> None:
    args = cli.build_parser().parse_args(
        ["apt-hook", "pre-install", "--host-prefix", "/x/usr", "--timeout", "5", "/srv", "/opt"]
    )
    assert (args.stage, args.roots, args.host_prefix, args.timeout) == (
        "pre-install",
        ["/srv", "/opt"],
        "/x/usr",
        5.0,
    )
    args = cli.build_parser().parse_args(["apt-hook", "post-invoke", "--proc-root", "/p", "/srv"])
    assert (args.stage, args.roots) == ("post-invoke", ["/srv"])
    assert run_cli("apt-hook").code == 3  # a stage is required
