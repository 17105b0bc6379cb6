"""The Debian package: what ``./dev.sh deb`` builds from debian/ with the build machine's own
Debian tools and Python, lintian's verdict on it, and the package at work in a real bookworm
root: installed with apt (its dependencies from Debian's archive), scanning, its apt hooks
seen by apt, then a real ``apt-get full-upgrade`` to trixie (Python 3.11 -> 3.13) during
which the hooks tell what breaks, and after which venvkeeper still runs.

The generated pieces (man page, bash completion, the apt hooks' conffile) and the package's
copy of the systemd service are checked without a build, fast.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from debroot import (
    apt_update,
    archive_reachable,
    bookworm_root,
    chroot_run,
    full_upgrade,
    remove_root,
    require_root_tools,
)
from test_systemd import parse_unit
from venvkeeper import __version__
from venvkeeper.apt.hook import render_conf
from venvkeeper.cli import build_parser
from venvkeeper.formats.envelope import Kind

from conftest import validate_json
from factory import build_wheel, make_project

#: Every subpackage of the layout: each must be in the package.
STAGES = (
    "model", "host", "scan", "checks", "predict", "repair", "restarts", "inventory",
    "formats", "apt", "cli",
)  # fmt: skip
REPO = Path(__file__).resolve().parent.parent
DEBIAN = REPO / "debian"
TOOLS = REPO / "tools"
DEB = f"venvkeeper_{__version__}_all.deb"
EXE = "/usr/bin/venvkeeper"
VENVS = "/srv/venvs"


def tool(name: str, *args: str) -> str:
    """The output of tools/NAME.py, run as debian/rules runs it (this tree's src)."""
    res = subprocess.run(
        [sys.executable, str(TOOLS / name), *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(REPO / "src"), "PYTHONDONTWRITEBYTECODE": "1"},
    )
    assert res.returncode == 0, res.stderr
    assert res.stderr == "", res.stderr
    return res.stdout


def hook_lines(text: str) -> list[str]:
    return [ln for ln in text.splitlines() if not ln.startswith("//")]


# --- the pieces, without a build ----------------------------------------------------------


def test_the_changelog_carries_the_code_version() -> None:
    """debian/changelog is kept in step with venvkeeper.__version__ by this test (and
    ./dev.sh deb refuses to build when they differ)."""
    first = (DEBIAN / "changelog").read_text().split("\n", 1)[0]
    m = re.fullmatch(r"venvkeeper \(([^)]+)\) [a-z-]+; urgency=\w+", first)
    assert m, first
    assert m.group(1) == __version__, "add a debian/changelog entry for the new version"


def test_the_package_service_is_contrib_s_with_the_package_path() -> None:
    """debian/venvkeeper.service is contrib/systemd's with /usr/bin/venvkeeper and the host's
    /tmp visible (no PrivateTmp; a private runtime directory for temporary files instead);
    the timer is contrib's own (a link)."""
    contrib = parse_unit((REPO / "contrib/systemd/venvkeeper.service").read_text())
    ours = parse_unit((DEBIAN / "venvkeeper.service").read_text())
    service = ours["Service"]
    assert "PrivateTmp" not in service and "PrivateTmp" not in contrib["Service"]
    assert service["RuntimeDirectory"] == ["venvkeeper"]
    assert service["Environment"] == ["TMPDIR=/run/venvkeeper"]
    assert all(x.startswith(f"{EXE} ") for x in service["ExecStart"])
    contrib["Service"]["ExecStart"] = [
        x.replace("/usr/local/bin/venvkeeper ", f"{EXE} ") for x in contrib["Service"]["ExecStart"]
    ]
    assert ours["Unit"].pop("Documentation") == [
        "man:venvkeeper(1) https://github.com/venvkeeper/venvkeeper/blob/main/docs/install.md#systemd"
    ]
    contrib["Unit"].pop("Documentation")
    assert ours == contrib
    assert "Install" not in ours  # started by the timer only
    timer = DEBIAN / "venvkeeper.timer"
    assert timer.is_symlink() and timer.resolve() == REPO / "contrib/systemd/venvkeeper.timer"
    text = (DEBIAN / "venvkeeper.service").read_text()
    assert "ProtectHome=read-only still" in text.replace("\n# ", " ")  # what it can see


def test_the_apt_conffile_is_install_apt_hooks_own() -> None:
    text = tool("apt_conf.py", EXE)
    assert hook_lines(text) == hook_lines(render_conf(EXE))
    assert "install-apt-hooks --uninstall" not in text  # the package's file goes with purge
    assert text.startswith("// Installed by the venvkeeper package")


def _commands() -> list[str]:
    import argparse

    found = []

    def walk(p: argparse.ArgumentParser, path: str) -> None:
        for a in p._actions:
            if isinstance(a, argparse._SubParsersAction):
                for name, sub in a.choices.items():
                    found.append(f"{path} {name}".strip())
                    walk(sub, f"{path} {name}")

    walk(build_parser(), "")
    return found


def test_the_man_page_has_every_command_and_option_and_no_roff_warning(tmp_path: Path) -> None:
    page = tool("manpage.py")
    assert page.startswith('.\\" Generated') and f'"venvkeeper {__version__}"' in page
    commands = _commands()
    assert "apt-hook pre-install" in commands and "scan" in commands
    for c in commands:
        assert f'.SS "venvkeeper {c.replace("-", chr(92) + "-")}"' in page, c
    for option in ("--only-problems", "--host-prefix", "--apt-conf-dir", "--config"):
        assert option.replace("-", "\\-") in page
    if shutil.which("groff") is None:
        pytest.skip("groff is not installed: the page was not typeset")
    (tmp_path / "venvkeeper.1").write_text(page)
    res = subprocess.run(
        ["groff", "-man", "-ww", "-Tutf8", "-z", str(tmp_path / "venvkeeper.1")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert res.returncode == 0 and res.stderr == "", res.stderr


def complete(script: Path, *words: str) -> list[str]:
    """What bash offers for the last of *words* (the command line typed so far)."""
    line = " ".join(f"'{w}'" for w in words)
    program = (
        f". {script}\nCOMP_WORDS=({line})\nCOMP_CWORD=$(( ${{#COMP_WORDS[@]}} - 1 ))\n"
        "_venvkeeper\nprintf '%s\\n' \"${COMPREPLY[@]}\"\n"
    )
    res = subprocess.run(
        ["bash", "--norc", "--noprofile", "-c", program],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=script.parent,
    )
    assert res.returncode == 0 and res.stderr == "", res.stderr
    return [w for w in res.stdout.splitlines() if w]


def test_the_bash_completion_follows_the_parser(tmp_path: Path) -> None:
    if shutil.which("bash") is None:
        pytest.skip("bash is not installed")
    script = tmp_path / "venvkeeper"
    script.write_text(tool("completion.py"))
    top = [c for c in _commands() if " " not in c]
    assert complete(script, "venvkeeper", "") == top
    assert complete(script, "venvkeeper", "pr") == ["predict", "prune-backups"]
    # a global option's value is skipped on the way to the command
    assert complete(script, "venvkeeper", "--config", "x.toml", "apt-hook", "") == [
        "pre-install",
        "post-invoke",
    ]
    got = complete(script, "venvkeeper", "apt-hook", "pre-install", "--h")
    assert got == ["--help", "--host-prefix"]
    assert complete(script, "venvkeeper", "repair", "--backend", "") == ["auto", "uv", "pip"]
    (tmp_path / "roots").mkdir()
    (tmp_path / "rootfile").touch()
    assert complete(script, "venvkeeper", "scan", "--json", "roo") == ["roots"]  # directories
    assert sorted(complete(script, "venvkeeper", "scan", "--db", "roo")) == ["rootfile", "roots"]


# --- the package, built -------------------------------------------------------------------


@pytest.fixture(scope="module")
def deb(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``./dev.sh deb`` once for this module, into a temporary directory."""
    for exe in ("dpkg-buildpackage", "dh", "dpkg-checkbuilddeps"):
        if shutil.which(exe) is None and os.geteuid() != 0:
            pytest.skip(f"{exe} is not installed (./dev.sh test installs the build tools as root)")
    if shutil.which("dpkg-query") is None:
        pytest.skip("not a Debian system: no dpkg")
    out = tmp_path_factory.mktemp("deb")
    res = subprocess.run(
        [str(REPO / "dev.sh"), "deb", str(out)], capture_output=True, text=True, timeout=900
    )
    if "missing build tools" in res.stderr:
        pytest.skip(f"the Debian build tools are missing: {res.stderr.strip()}")
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == str(out / DEB)
    assert [p.name for p in out.iterdir()] == [DEB]
    return out / DEB


def _dpkg_deb(*args: str) -> str:
    return subprocess.run(
        ["dpkg-deb", *args], capture_output=True, text=True, check=True, timeout=120
    ).stdout


@pytest.mark.slow
def test_lintian_finds_no_error(deb: Path) -> None:
    if shutil.which("lintian") is None:
        pytest.skip("lintian is not installed (./dev.sh test installs it as root)")
    argv = ["lintian", "--info", "--display-info", "--pedantic"]
    argv += ["--allow-root"] if os.geteuid() == 0 else []
    res = subprocess.run([*argv, str(deb)], capture_output=True, text=True, timeout=900)
    print(res.stdout)
    tags = [ln for ln in res.stdout.splitlines() if re.match(r"[EWIPXO]: ", ln)]
    assert [t for t in tags if t.startswith("E: ")] == [], res.stdout
    assert res.returncode == 0, res.stdout + res.stderr


@pytest.mark.slow
def test_the_package_holds_what_it_must(deb: Path) -> None:
    fields = _dpkg_deb("-f", str(deb))
    assert f"Version: {__version__}\n" in fields and "Architecture: all\n" in fields
    depends = re.search(r"^Depends: (.*)$", fields, re.M)
    assert depends, fields
    names = {d.strip().split()[0] for d in depends.group(1).split(",")}
    assert {"python3-packaging", "python3-prometheus-client"} <= names
    assert "python3-rich" not in names  # colour is three SGR codes (formats/layout.py)
    listing = {ln.split()[-1].lstrip(".") for ln in _dpkg_deb("-c", str(deb)).splitlines()}
    for path in (
        EXE,
        *(f"/usr/lib/python3/dist-packages/venvkeeper/{pkg}/__init__.py" for pkg in STAGES),
        "/etc/apt/apt.conf.d/80venvkeeper",
        "/lib/systemd/system/venvkeeper.service",
        "/lib/systemd/system/venvkeeper.timer",
        "/usr/share/man/man1/venvkeeper.1.gz",
        "/usr/share/bash-completion/completions/venvkeeper",
        # the JSON Schemas, for venvkeeper.formats.envelope.schema()
        *(f"/usr/lib/python3/dist-packages/venvkeeper/schemas/{k.value}.schema.json" for k in Kind),
    ):
        assert path in listing, path
    assert not [p for p in listing if "/usr/local/" in p or "python3.11" in p]
    ctrl = subprocess.run(
        ["dpkg-deb", "--ctrl-tarfile", str(deb)], capture_output=True, check=True, timeout=60
    ).stdout
    tar = subprocess.run(
        ["tar", "-xOf", "-", "./conffiles", "./postinst"],
        input=ctrl,
        capture_output=True,
        check=True,
        timeout=60,
    ).stdout.decode()
    assert "/etc/apt/apt.conf.d/80venvkeeper\n" in tar
    # the timer is enabled and started; the service never started by the package
    assert "deb-systemd-helper enable 'venvkeeper.timer'" in tar
    assert "deb-systemd-invoke $_dh_action 'venvkeeper.timer'" in tar
    assert "'venvkeeper.service'" not in tar


# --- the package at work in a real Debian root: install, upgrade to trixie ---------------


@dataclass(frozen=True)
class Upgraded:
    root: Path
    installed: str  # apt's output installing the package
    dump: str  # apt-config dump, in bookworm
    scan_before: subprocess.CompletedProcess[str]
    upgrade: subprocess.CompletedProcess[str]  # apt-get full-upgrade's
    broken: subprocess.CompletedProcess[str]  # an apt run with venvkeeper unable to start


@pytest.fixture(scope="module")
def upgraded(deb: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Upgraded]:
    """One bookworm root: the package installed by apt, a venv made, then a real
    ``apt-get full-upgrade`` to trixie with the package's hooks in place (never a cached
    upgraded root: the hooks must run)."""
    require_root_tools()
    why = archive_reachable()
    if why is not None:
        pytest.skip(why)
    root = tmp_path_factory.mktemp("debroot") / "root"
    try:
        bookworm_root(root)
        apt_update(root)
        shutil.copy(deb, root / "opt" / DEB)
        res = chroot_run(root, ["apt-get", "install", "-y", f"./{DEB}"], cwd="/opt", timeout=900)
        installed = res.stdout + res.stderr
        (root / "opt" / DEB).unlink()
        # plain breaks silently with the upgrade (its package left in lib/python3.11);
        # pinned keeps working, on a python3.11 no trixie archive offers
        build_wheel(make_project(root.parent, "vkpure", "1.0"), root / "opt" / "wheels")
        chroot_run(root, ["python3", "-m", "venv", f"{VENVS}/plain"])
        pip = [f"{VENVS}/plain/bin/python", "-m", "pip", "install", "-q", "--no-index"]
        chroot_run(root, [*pip, "--find-links", "/opt/wheels", "vkpure"])
        chroot_run(root, ["python3.11", "-m", "venv", f"{VENVS}/pinned"])
        dump = chroot_run(root, ["apt-config", "dump"]).stdout
        scan = chroot_run(root, [EXE, "scan", "--no-record", VENVS], check=False)
        upgrade = full_upgrade(root)
        # systemd itself (minbase has none), for systemd-analyze verify in the root; by an
        # apt run whose hooks find a venvkeeper that cannot start (its code hidden, as a
        # half-done upgrade or a removed module leaves it)
        code = root / "usr/lib/python3/dist-packages/venvkeeper"
        code.rename(code.with_name("venvkeeper.hidden"))
        try:
            argv = ["apt-get", "install", "-y", "--no-install-recommends", "systemd"]
            broken = chroot_run(root, argv, timeout=900)
        finally:
            code.with_name("venvkeeper.hidden").rename(code)
        yield Upgraded(root, installed, dump, scan, upgrade, broken)
    finally:
        remove_root(root)


@pytest.mark.slow
def test_installed_with_apt_it_scans_and_apt_sees_its_hooks(upgraded: Upgraded) -> None:
    assert "Setting up venvkeeper" in upgraded.installed, upgraded.installed
    assert upgraded.scan_before.returncode == 0, upgraded.scan_before.stderr
    assert f"{VENVS}/plain" in upgraded.scan_before.stdout
    assert f"{VENVS}/pinned" in upgraded.scan_before.stdout
    ours = [ln for ln in upgraded.dump.splitlines() if "VENVKEEPER_APT_HOOK" in ln]
    assert any(ln.startswith("DPkg::Pre-Install-Pkgs::") for ln in ours), ours
    assert any(ln.startswith("DPkg::Post-Invoke::") for ln in ours), ours
    assert f'DPkg::Tools::Options::VENVKEEPER_APT_HOOK%3d{EXE}::Version "3";' in ours
    conf = upgraded.root / "etc/apt/apt.conf.d/80venvkeeper"
    assert hook_lines(conf.read_text()) == hook_lines(render_conf(EXE))


@pytest.mark.slow
def test_the_hooks_speak_during_the_real_upgrade(upgraded: Upgraded) -> None:
    upgrade = upgraded.upgrade
    out = upgrade.stdout + upgrade.stderr
    lines = upgrade.stdout.splitlines()  # apt's, dpkg's and the hooks' reports, in order
    mine = [ln for ln in out.splitlines() if ln.startswith("venvkeeper:")]
    print("\n".join(mine))
    assert "Traceback" not in out
    # before dpkg: the Python change and what it breaks
    assert any("python3 becomes python3.13" in ln for ln in mine), mine
    told = [n for n, ln in enumerate(lines) if ln.startswith("venvkeeper: 1 venv will break")]
    unpacked = [n for n, ln in enumerate(lines) if ln.startswith("Unpacking python3-minimal ")]
    assert told and unpacked and told[0] < unpacked[0], mine  # told before dpkg acts
    assert any(re.match(rf"breaks-silently +{VENVS}/plain ", ln) for ln in lines[: told[0]])
    # after dpkg: the scan's report of what is broken now (the last one: apt may run dpkg,
    # and the hook, more than once)
    reports = [ln for ln in mine if re.match(r"venvkeeper: \d+ venvs: ", ln)]
    assert reports and reports[-1].startswith("venvkeeper: 2 venvs: 1 critical, 1 warning"), mine
    assert re.search(rf"^  critical +{VENVS}/plain ", out, re.M), out[-3000:]


@pytest.mark.slow
def test_after_the_upgrade_it_runs_with_no_reinstall(upgraded: Upgraded) -> None:
    root = upgraded.root
    py = chroot_run(root, ["python3", "-c", "import sys; print(sys.version)"]).stdout
    assert py.startswith("3.13"), py
    version = chroot_run(root, [EXE, "--version"])
    assert version.stdout == f"venvkeeper {__version__}\n" and version.stderr == ""
    res = chroot_run(root, [EXE, "scan", "--no-record", "--json", VENVS], check=False)
    assert res.returncode == 2, res.stderr  # the plain venv lost its packages' minor
    report = validate_json("scan", res.stdout)
    assert {Path(v["path"]).name for v in report["venvs"]} == {"plain", "pinned"}
    listed = chroot_run(root, ["dpkg-query", "-W", "-f", "${Version}", "venvkeeper"]).stdout
    assert listed == __version__  # the same package: nothing reinstalled


@pytest.mark.slow
def test_a_venvkeeper_that_cannot_start_leaves_apt_alone(upgraded: Upgraded) -> None:
    """Each hook says so in one line, and apt goes on (chroot_run checked its exit 0)."""
    res = upgraded.broken
    out = res.stdout + res.stderr
    assert "Traceback" not in out and "Setting up systemd " in out
    mine = [ln for ln in out.splitlines() if "venvkeeper" in ln]
    skipped = (
        "venvkeeper: apt hook skipped: venvkeeper cannot start (exit status 1):"
        " ModuleNotFoundError: No module named 'venvkeeper'"
    )
    assert mine == [skipped, skipped], mine  # Pre-Install-Pkgs, then Post-Invoke


@pytest.mark.slow
def test_the_units_are_valid_in_the_root(upgraded: Upgraded) -> None:
    root = upgraded.root
    units = root / "lib/systemd/system"
    service = parse_unit((units / "venvkeeper.service").read_text())["Service"]
    for line in service["ExecStart"]:
        exe = root / line.split()[0].lstrip("/")
        assert exe.is_file() and os.access(exe, os.X_OK), line
    assert "PrivateTmp" not in service
    wants = root / "etc/systemd/system/timers.target.wants/venvkeeper.timer"
    assert wants.is_symlink(), "the timer is not enabled"
    analyze = "/usr/bin/systemd-analyze"
    assert (root / analyze.lstrip("/")).exists(), "systemd is not installed in the root"
    # no man-db in the root: the man page's presence is checked by file
    assert (root / "usr/share/man/man1/venvkeeper.1.gz").is_file()
    argv = [analyze, "verify", "--man=no", "/lib/systemd/system/venvkeeper.timer"]
    res = chroot_run(root, [*argv, "/lib/systemd/system/venvkeeper.service"], check=False)
    ours = [ln for ln in res.stderr.splitlines() if "venvkeeper" in ln]
    assert res.returncode == 0 and ours == [], res.stderr
