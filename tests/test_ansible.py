"""The Ansible collection venvkeeper.fleet (ansible_collections/venvkeeper/fleet).

Fast: the collection builds, and ansible-doc renders every module. Slow: ansible-test's
sanity and unit tests of the collection; the playbooks, for real, against two real Debian
hosts of different releases, a bookworm root and a trixie root (made by a real upgrade,
tests/debroot.py) each with the venvkeeper .deb installed by apt, reached by Ansible through
a chroot connection (tests/ansible/vkchroot.py), with one directory bind-mounted into both
as the "NFS" tree holding venvs made on each. A service of a venv is a real process in a
real systemd-style cgroup (``system.slice/UNIT.service``), as venvkeeper reads its unit.

ansible-core lives in its own venv, .dev/ansible (``./dev.sh ansible``; ``./dev.sh test``
makes it); without it these tests are skipped.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import tarfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import pytest

from debroot import (
    archive_reachable,
    bookworm_root,
    chroot_run,
    remove_root,
    require_root_tools,
    upgraded_tarball,
)
from venvkeeper import __version__

from factory import build_wheel, make_project, tree_hash

REPO = Path(__file__).resolve().parent.parent
COLLECTION = REPO / "ansible_collections" / "venvkeeper" / "fleet"
ANSIBLE = Path(os.environ.get("VENVKEEPER_ANSIBLE") or REPO / ".dev" / "ansible")
MODULES = ("venv_facts", "venv_predict", "venv_repair", "venv_wheelhouse", "venv_restarts")
DEB = f"venvkeeper_{__version__}_all.deb"
SHARED = "/srv/shared"  # the "NFS" tree, the same directory in both roots
CHROOT = shutil.which("chroot") or "/usr/sbin/chroot"


def tool(name: str) -> Path:
    exe = ANSIBLE / "bin" / name
    if not exe.exists():
        pytest.skip(f"ansible-core is not installed in {ANSIBLE} (./dev.sh ansible makes it)")
    return exe


def ansible_env(tmp: Path) -> dict[str, str]:
    """Ansible's settings for a test run: this tree's collection, our chroot connection,
    its state in *tmp* (never the user's ~/.ansible)."""
    (tmp / "ansible-home").mkdir(exist_ok=True)
    return {
        "PATH": f"{ANSIBLE / 'bin'}:/usr/sbin:/usr/bin:/sbin:/bin",
        "HOME": os.environ.get("HOME", "/root"),
        "LC_ALL": "C.UTF-8",
        "ANSIBLE_HOME": str(tmp / "ansible-home"),
        "ANSIBLE_LOCAL_TEMP": str(tmp / "ansible-home" / "tmp"),
        "ANSIBLE_COLLECTIONS_PATH": str(REPO),
        "ANSIBLE_CONNECTION_PLUGINS": str(REPO / "tests" / "ansible"),
        "ANSIBLE_PIPELINING": "1",
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_FORCE_COLOR": "0",
        "ANSIBLE_RETRY_FILES_ENABLED": "0",
        "ANSIBLE_DEPRECATION_WARNINGS": "0",
        "ANSIBLE_PYTHON_INTERPRETER": "/usr/bin/python3",
    }


def ansible_test(*args: str) -> subprocess.CompletedProcess[str]:
    """``ansible-test ARGS`` in the collection, on the ansible venv's own Python."""
    exe = tool("ansible-test")
    if not (COLLECTION / "galaxy.yml").exists():
        pytest.skip(f"no collection at {COLLECTION} (an sdist without it?)")
    ver = subprocess.run(
        [str(exe.parent / "python"), "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout.strip()
    return subprocess.run(
        [str(exe), *args, "--local", "--python", ver, "--color", "no"],
        cwd=COLLECTION,
        capture_output=True,
        text=True,
        timeout=1500,
        env={**os.environ, "PATH": f"{exe.parent}:{os.environ.get('PATH', '')}"},
    )


# --- the collection, by ansible-test and ansible-galaxy -----------------------------------


@pytest.mark.slow
@pytest.mark.timeout(1800)  # ansible-test's own limit is 1500 s
@pytest.mark.xdist_group("ansible-collection")  # ansible-test writes in it
def test_ansible_test_sanity_passes() -> None:
    """Every sanity test (validate-modules, ansible-doc, pylint, pep8, yamllint, import,
    compile, ...). The first run makes a venv per test from the registry (a minute or two)."""
    res = ansible_test("sanity")
    print(res.stdout[-3000:], res.stderr[-3000:])
    assert res.returncode == 0, res.stdout[-5000:] + res.stderr[-5000:]
    assert 'Running sanity test "validate-modules"' in res.stdout


@pytest.mark.slow  # ansible-test runs pytest on the collection in a venv of its own
@pytest.mark.xdist_group("ansible-collection")  # ansible-test writes in it
def test_ansible_test_units_pass() -> None:
    res = ansible_test("units")
    print(res.stdout[-2000:])
    assert res.returncode == 0, res.stdout[-5000:] + res.stderr[-3000:]
    assert " passed" in res.stdout and " failed" not in res.stdout


@pytest.mark.xdist_group("ansible-collection")  # ansible-test writes in it
def test_the_collection_builds(tmp_path: Path) -> None:
    exe = tool("ansible-galaxy")
    res = subprocess.run(
        [str(exe), "collection", "build", "--output-path", str(tmp_path), str(COLLECTION)],
        capture_output=True,
        text=True,
        timeout=300,
        env=ansible_env(tmp_path),
    )
    assert res.returncode == 0, res.stderr
    built = tmp_path / "venvkeeper-fleet-0.1.0.tar.gz"
    with tarfile.open(built) as tar:
        names = set(tar.getnames())
        manifest = json.load(tar.extractfile("MANIFEST.json"))  # type: ignore[arg-type]
    for m in MODULES:
        assert f"plugins/modules/{m}.py" in names, m
    assert "plugins/module_utils/venvkeeper.py" in names
    assert "roles/post_upgrade_repair/handlers/main.yml" in names
    assert "playbooks/upgrade_preflight.yml" in names
    assert not [n for n in names if n.startswith("tests/output")]
    assert manifest["collection_info"]["license"] == ["MIT"]


@pytest.mark.xdist_group("ansible-collection")  # ansible-test writes in it
def test_ansible_doc_renders_every_module(tmp_path: Path) -> None:
    exe = tool("ansible-doc")
    names = [f"venvkeeper.fleet.{m}" for m in MODULES]
    res = subprocess.run(
        [str(exe), "--json", *names],
        capture_output=True,
        text=True,
        timeout=300,
        env=ansible_env(tmp_path),
    )
    assert res.returncode == 0 and res.stderr == "", res.stderr
    docs = json.loads(res.stdout)
    for name in names:
        doc = docs[name]
        assert doc["doc"]["short_description"] and doc["examples"].strip(), name
        assert {"exit_code", "verdict"} <= set(doc["return"]), name
        assert "executable" in doc["doc"]["options"], name
        assert doc["doc"]["attributes"]["check_mode"]["support"] == "full", name
    assert "restart_units" in docs["venvkeeper.fleet.venv_repair"]["return"]
    assert "breaking" in docs["venvkeeper.fleet.venv_predict"]["return"]


# --- two real hosts -----------------------------------------------------------------------


@dataclass
class Service:
    """A long-running process of a venv, in a cgroup named like a systemd unit."""

    unit: str
    proc: subprocess.Popen[bytes]
    cgroup: Optional[Path]
    made: list[Path] = field(default_factory=list)


def _cgroup_roots() -> list[Path]:
    """Hierarchies where venvkeeper reads a unit: cgroup v1's name=systemd, or v2's."""
    found: list[Path] = []
    with open("/proc/self/mountinfo", encoding="utf-8") as f:
        for line in f:
            fields = line.split()
            point, sep = fields[4], fields.index("-")
            fstype, opts = fields[sep + 1], fields[-1]
            if (fstype == "cgroup" and "name=systemd" in opts) or fstype == "cgroup2":
                found.append(Path(point))
    return found


def start_service(root: Path, unit: str, venv: str) -> Service:
    """``VENV/bin/python`` sleeping in *root*, moved into ``system.slice/UNIT``."""
    proc = subprocess.Popen(
        [CHROOT, str(root), f"{venv}/bin/python", "-c", "import time; time.sleep(3600)"],
        env={"PATH": "/usr/bin:/bin", "LC_ALL": "C.UTF-8"},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    for base in _cgroup_roots():
        made: list[Path] = []
        try:
            for part in ("system.slice", unit):
                base = base / part
                if not base.exists():
                    base.mkdir()
                    made.append(base)
            (base / "cgroup.procs").write_text(f"{proc.pid}\n")
        except OSError:
            for d in reversed(made):
                with contextlib.suppress(OSError):
                    d.rmdir()
            continue
        if f"/system.slice/{unit}" in Path(f"/proc/{proc.pid}/cgroup").read_text():
            return Service(unit, proc, base, made)
    return Service(unit, proc, None)


def stop_service(s: Service) -> None:
    with contextlib.suppress(ProcessLookupError):
        s.proc.send_signal(signal.SIGKILL)
    s.proc.wait(timeout=60)
    for d in reversed(s.made):
        for _ in range(50):  # the kernel frees an emptied cgroup a moment later
            try:
                d.rmdir()
                break
            except OSError:
                time.sleep(0.1)


@dataclass
class Fleet:
    tmp: Path
    roots: dict[str, Path]
    shared: Path
    inventory: Path
    services: dict[str, Service]
    runs: dict[str, subprocess.CompletedProcess[str]] = field(default_factory=dict)
    files: dict[str, Any] = field(default_factory=dict)
    hashes: dict[str, dict[str, tuple[object, ...]]] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)

    def play(self, name: str, text: str, *args: str) -> subprocess.CompletedProcess[str]:
        book = self.tmp / f"{name}.yml"
        book.write_text(text)
        res = subprocess.run(
            [str(tool("ansible-playbook")), "-i", str(self.inventory), str(book), *args],
            capture_output=True,
            text=True,
            timeout=1800,
            env=ansible_env(self.tmp),
            cwd=self.tmp,
        )
        print(f"--- {name} (exit {res.returncode})\n{res.stdout[-6000:]}\n{res.stderr[-2000:]}")
        self.runs[name] = res
        return res

    def adhoc(self, host: str, module: str, args: str = "") -> float:
        """Seconds of ``ansible HOST -m MODULE -a ARGS`` (the whole command)."""
        argv = [str(tool("ansible")), host, "-i", str(self.inventory), "-m", module]
        t0 = time.monotonic()
        res = subprocess.run(
            [*argv, *(["-a", args] if args else [])],
            capture_output=True,
            text=True,
            timeout=600,
            env=ansible_env(self.tmp),
            cwd=self.tmp,
        )
        took = time.monotonic() - t0
        assert res.returncode == 0, res.stdout + res.stderr
        return took

    def dumped(self, name: str) -> Any:
        return json.loads((self.tmp / "out" / name).read_text())


def _install_deb(root: Path, deb: Path) -> None:
    (root / "opt").mkdir(exist_ok=True)
    shutil.copy(deb, root / "opt" / DEB)
    chroot_run(root, ["apt-get", "update"], timeout=900)
    chroot_run(root, ["apt-get", "install", "-y", f"./{DEB}"], cwd="/opt", timeout=900)
    (root / "opt" / DEB).unlink()


def _trixie_root(dest: Path) -> Path:
    """The root a real bookworm -> trixie upgrade left (debroot's cached tarball, made by
    tests/test_real_upgrade.py or tests/test_deb.py's upgrade when missing)."""
    tarball = upgraded_tarball()
    if not tarball.exists():
        from debroot import upgrade_to_trixie

        bookworm_root(dest)
        upgrade_to_trixie(dest)
        return dest
    from debroot import _network_files, _unpack

    _unpack(tarball, dest)
    _network_files(dest)
    return dest


def in_root(root: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    """*argv* in *root*, whose mounts (/proc, the shared tree) the fixture holds: not
    debroot's chroot_run, which unmounts everything under the root after each command."""
    res = subprocess.run(
        [CHROOT, str(root), *argv],
        capture_output=True,
        text=True,
        timeout=600,
        env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": "/root", "LC_ALL": "C.UTF-8"},
        stdin=subprocess.DEVNULL,
    )
    return res


def _venv(root: Path, path: str, *wheels: str) -> None:
    res = in_root(root, "python3", "-m", "venv", path)
    assert res.returncode == 0, res.stderr
    pip = [f"{path}/bin/python", "-m", "pip", "install", "-q", "--no-index", "--no-deps"]
    res = in_root(root, *pip, *wheels)
    assert res.returncode == 0, res.stderr


PREFLIGHT = """
- import_playbook: venvkeeper.fleet.upgrade_preflight
"""
REPAIR = """
- import_playbook: venvkeeper.fleet.post_upgrade_repair
"""
FACTS = """
- name: Facts
  hosts: fleet
  gather_facts: false
  tasks:
    - name: Judge the shared tree
      venvkeeper.fleet.venv_facts:
        roots: [/srv/shared]
    - name: Keep them
      ansible.builtin.copy:
        content: "{{ ansible_facts.venvkeeper | to_nice_json }}"
        dest: "{{ out }}/{{ inventory_hostname }}-facts.json"
        mode: "0644"
      delegate_to: localhost
"""
MISSING = """
- name: venvkeeper missing, and exit 3
  hosts: fleet
  gather_facts: false
  tasks:
    - name: Not installed where named
      venvkeeper.fleet.venv_restarts:
        executable: /usr/local/bin/no-venvkeeper
      register: missing
      ignore_errors: true
    - name: A root that does not exist (exit 3)
      venvkeeper.fleet.venv_facts:
        roots: [/no/such/root]
      register: usage
      ignore_errors: true
    - name: Keep them
      ansible.builtin.copy:
        content: "{{ {'missing': missing, 'usage': usage} | to_nice_json }}"
        dest: "{{ out }}/{{ inventory_hostname }}-errors.json"
        mode: "0644"
      delegate_to: localhost
"""


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    """Two hosts, the venvkeeper package on each, one shared tree with venvs made on each,
    and on trixie two services: one of a bookworm-made venv (broken there, repairable) and
    one of a bookworm-made venv whose wheel is gone (its rebuild must fail)."""
    require_root_tools()
    tool("ansible-playbook")
    why = archive_reachable()
    if why is not None:
        pytest.skip(why)
    tmp = tmp_path_factory.mktemp("fleet")
    out = tmp / "deb"
    res = subprocess.run(
        [str(REPO / "dev.sh"), "deb", str(out)], capture_output=True, text=True, timeout=900
    )
    if "missing build tools" in res.stderr or "not a Debian system" in res.stderr:
        pytest.skip(f"the .deb cannot be built here: {res.stderr.strip()}")
    assert res.returncode == 0, res.stderr
    roots = {"bookworm": tmp / "bookworm", "trixie": tmp / "trixie"}
    shared = tmp / "shared"
    services: dict[str, Service] = {}
    (tmp / "out").mkdir()
    try:
        t0 = time.monotonic()
        bookworm_root(roots["bookworm"])
        _trixie_root(roots["trixie"])
        for root in roots.values():
            _install_deb(root, out / DEB)
        timings = {"hosts": time.monotonic() - t0}
        print(f"two hosts with venvkeeper installed in {timings['hosts']:.1f}s")
        # the shared tree: wheels, then a venv made on each host
        build_wheel(make_project(tmp, "vkpure", "1.0"), shared / "wheels")
        build_wheel(make_project(tmp, "vkgone", "1.0"), shared / "gone")
        for root in roots.values():
            (root / SHARED.lstrip("/")).mkdir(parents=True, exist_ok=True)
            (root / "proc").mkdir(exist_ok=True)
            subprocess.run(
                ["mount", "--bind", str(shared), str(root / SHARED.lstrip("/"))], check=True
            )
            subprocess.run(["mount", "-t", "proc", "proc", str(root / "proc")], check=True)
        wheel = f"{SHARED}/wheels/vkpure-1.0-py3-none-any.whl"
        _venv(roots["bookworm"], f"{SHARED}/bw-app", wheel)
        _venv(roots["bookworm"], f"{SHARED}/bw-gone", f"{SHARED}/gone/vkgone-1.0-py3-none-any.whl")
        shutil.rmtree(shared / "gone")
        _venv(roots["trixie"], f"{SHARED}/tx-app", wheel)
        tag = f"vk-ansible-{os.getpid()}"
        services["web"] = start_service(roots["trixie"], f"{tag}-web.service", f"{SHARED}/bw-app")
        services["gone"] = start_service(
            roots["trixie"], f"{tag}-gone.service", f"{SHARED}/bw-gone"
        )
        inventory = tmp / "hosts.yml"
        inventory.write_text(
            json.dumps(
                {
                    "fleet": {
                        "hosts": {name: {"ansible_host": str(r)} for name, r in roots.items()},
                        "vars": {
                            "ansible_connection": "vkchroot",
                            "ansible_python_interpreter": "/usr/bin/python3",
                        },
                    }
                }
            )
        )
        f = Fleet(tmp, roots, shared, inventory, services, timings=timings)
        f.timings.update(_measure(f))
        yield f
    finally:
        for s in reversed(services.values()):  # the first one made system.slice
            stop_service(s)
        for root in roots.values():
            remove_root(root)


def _best(n: int, fn: Callable[[], object]) -> float:
    times = []
    for _ in range(n):
        t0 = time.monotonic()
        fn()
        times.append(time.monotonic() - t0)
    return min(times)


def _measure(f: Fleet) -> dict[str, float]:
    """Facts per host: the best of 3 ``ansible HOST -m venv_facts``, against the best of 3
    ``ansible HOST -m ping`` (Ansible's own cost of a host), and what the module runs on
    the host, timed there (``venvkeeper scan`` and ``venvkeeper host-profile``)."""
    times: dict[str, float] = {}
    for host, root in f.roots.items():
        scan = ("venvkeeper", "scan", "--json", "--no-record", SHARED)
        times[f"{host}-scan-in-host"] = _best(3, lambda r=root, a=scan: in_root(r, *a))
        profile = ("venvkeeper", "host-profile")
        times[f"{host}-host-profile-in-host"] = _best(3, lambda r=root, a=profile: in_root(r, *a))
        ping = min(f.adhoc(host, "ansible.builtin.ping") for _ in range(3))
        facts = min(
            f.adhoc(host, "venvkeeper.fleet.venv_facts", f"roots={SHARED}") for _ in range(3)
        )
        times[f"{host}-ping"] = ping
        times[f"{host}-facts"] = facts
    return times


@pytest.mark.slow
def test_facts_on_both_hosts(fleet: Fleet) -> None:
    res = fleet.play("facts", FACTS, "-e", f"out={fleet.tmp / 'out'}")
    assert res.returncode == 0, res.stdout[-3000:]
    status = {}
    for host in fleet.roots:
        facts = fleet.dumped(f"{host}-facts.json")
        assert facts["version"] == __version__
        assert facts["host_profile"]["kind"] == "host-profile"
        status[host] = {Path(v["path"]).name: v["status"] for v in facts["venvs"]}
        assert facts["summary"]["venvs"] == 3
    # each host sees the other release's venvs broken (their packages in another minor)
    assert status["bookworm"]["bw-app"] != "critical" and status["bookworm"]["tx-app"] == "critical"
    assert status["trixie"]["tx-app"] != "critical" and status["trixie"]["bw-app"] == "critical"
    print("facts timings (s):", json.dumps(fleet.timings, indent=1))


@pytest.mark.slow
def test_failures_are_clear(fleet: Fleet) -> None:
    res = fleet.play("errors", MISSING, "-e", f"out={fleet.tmp / 'out'}")
    assert res.returncode == 0, res.stdout[-3000:]
    for host in fleet.roots:
        got = fleet.dumped(f"{host}-errors.json")
        assert got["missing"]["failed"]
        assert got["missing"]["msg"] == (
            "venvkeeper not found on the target: /usr/local/bin/no-venvkeeper does not exist"
        )
        assert got["usage"]["failed"] and got["usage"]["rc"] == 3
        assert got["usage"]["msg"].endswith("venvkeeper: error: /no/such/root: does not exist")


UPGRADE = [
    "-e",
    json.dumps(
        {
            "venvkeeper_roots": [SHARED],
            "venvkeeper_python_becomes": ["3.13"],
            "venvkeeper_remove_packages": ["python3.11-minimal"],
        }
    ),
]


@pytest.mark.slow
def test_preflight_stops_the_play(fleet: Fleet) -> None:
    """bookworm's venvs would break with 3.13: its pre-flight fails, and with the default
    (stop on break) the play stops for every host; trixie's are already on 3.13."""
    res = fleet.play("preflight", PREFLIGHT, *UPGRADE)
    assert res.returncode != 0
    out = res.stdout
    assert "the change would break 2 venv(s): " in out
    assert f"{SHARED}/bw-app (breaks-silently)" in out
    assert "Pre-flight passed" not in out  # nobody got past it
    # trixie ran its prediction, then the play ended (venvkeeper_stop_on_break)
    assert re.search(r"^trixie +: ok=2 .* failed=0 ", out, re.M), out[-2000:]
    assert re.search(r"^bookworm +: ok=0 .* failed=1 ", out, re.M), out[-2000:]


@pytest.mark.slow
def test_preflight_without_stop_lets_the_other_hosts_on(fleet: Fleet) -> None:
    res = fleet.play(
        "preflight-serial", PREFLIGHT, *UPGRADE, "-e", "venvkeeper_stop_on_break=false"
    )
    assert res.returncode != 0
    assert "no venv on trixie breaks with this upgrade" in res.stdout
    assert "no venv on bookworm" not in res.stdout


def _repair_vars(fleet: Fleet) -> list[str]:
    return [
        "--limit",
        "trixie",
        "-e",
        json.dumps(
            {
                "venvkeeper_roots": [SHARED],
                "venvkeeper_wheelhouse": f"{SHARED}/wheelhouse",
                "venvkeeper_find_links": [f"{SHARED}/wheels"],
                "venvkeeper_offline": True,
                "venvkeeper_restart_command": ["/bin/sh", "-c", 'echo "$1" >>/srv/restarted', "sh"],
                "venvkeeper_report_dir": str(fleet.tmp / "out"),
            }
        ),
    ]


@pytest.mark.slow
def test_check_mode_repair_changes_nothing(fleet: Fleet) -> None:
    before = tree_hash(fleet.shared)
    res = fleet.play("repair-check", REPAIR, "--check", "--diff", *_repair_vars(fleet))
    assert res.returncode != 0  # the assert: bw-gone cannot be repaired
    assert tree_hash(fleet.shared) == before
    assert not (fleet.roots["trixie"] / "srv/restarted").exists()
    got = fleet.dumped("trixie-repair-check.json")
    outcomes = {Path(r["path"]).name: r["outcome"] for r in got["results"]}
    assert outcomes["bw-app"] == "planned", outcomes
    assert "tx-app" not in outcomes or outcomes["tx-app"] == "nothing-to-do"
    assert f"{SHARED}/bw-app: needs rebuild" in res.stdout  # --diff
    web, gone = fleet.services["web"], fleet.services["gone"]
    if web.cgroup is not None:
        assert got["restart_units"] == [web.unit] and got["units_held_back"] == [gone.unit]


@pytest.mark.slow
def test_repair_and_the_handler_restarts_only_repaired_units(fleet: Fleet) -> None:
    res = fleet.play("repair", REPAIR, *_repair_vars(fleet))
    assert res.returncode != 0  # bw-gone is left as it was: the host fails at the end
    got = fleet.dumped("trixie-repair.json")
    outcomes = {Path(r["path"]).name: r["outcome"] for r in got["results"]}
    assert outcomes["bw-app"] == "repaired", got["results"]
    assert outcomes["bw-gone"] == "failed", got["results"]
    assert got["failed_paths"] == [f"{SHARED}/bw-gone"]
    # the repaired venv runs on trixie now
    check = in_root(fleet.roots["trixie"], f"{SHARED}/bw-app/bin/python", "-c", "import vkpure")
    assert check.returncode == 0, check.stderr
    web, gone = fleet.services["web"], fleet.services["gone"]
    if web.cgroup is None:
        pytest.skip("no writable cgroup hierarchy here: no process in a unit to restart")
    assert got["restart_units"] == [web.unit]
    assert gone.unit in got["units_held_back"]  # never restarted into a broken venv
    restarted = (fleet.roots["trixie"] / "srv/restarted").read_text().split()
    assert restarted == [web.unit]
