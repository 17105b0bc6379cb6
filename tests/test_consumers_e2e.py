"""The real end-to-end test of issue 21: every consumer named before a release upgrade with
how it will fail, exactly those failing after it, and all of them working after one
repair.

A debootstrapped bookworm root (tests/debroot.py, cached) with systemd, cron, Apache with
mod_wsgi, uWSGI with its python3 plugin, supervisor and pipx (tests/nspawn.py
``SERVERS``), booted with systemd-nspawn. Each consumer serves or runs one small app
(``vkapp``: a WSGI app, a server, a command) from a venv of its own, made with the root's
``python3`` or ``python3.11`` (``APPS``); one unit reaches its venv's packages with the
system's python3 through a hard-coded ``lib/python3.11``.

1. Boot 1: every consumer works (HTTP 200 on the container's own loopback, unit state,
   the cron job's output, the commands' output).
2. ``predict --python-becomes 3.13`` and the apt pre-install hook (fed the package
   actions of the release upgrade) name the consumers that break and how; the wheels the
   repairs will need are fetched (``wheelhouse``, from a local wheelhouse: offline).
3. The real ``apt-get full-upgrade`` to trixie (cached: see ``debroot.upgrade_to_trixie``,
   keyed by the package set and this test's configs).
4. Boot 2: the consumers predicted to fail are exactly those that fail. Then, in the same
   boot, ``repair --all --force --restart --fix-consumers --offline --find-links`` (the
   prefetched wheels): what it restarted works at once.
5. Boot 3: every consumer works.

``--force`` is there for the pipx app: repair otherwise leaves a pipx venv to ``pipx
reinstall`` (and says so). The test prints its predicted-vs-observed table and timings.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from pathlib import Path
from typing import Any

import pytest

import debroot

import nspawn
from conftest import validate_json
from factory import build_wheel, make_project

pytestmark = pytest.mark.slow

SRC = Path(__file__).resolve().parent.parent / "src" / "venvkeeper"
PACKAGES = (*nspawn.SYSTEMD, *nspawn.SERVERS)
E2E = "/srv/e2e"
OUT = f"{E2E}/out"
WHEELS = "/opt/e2e-wheels"
PREFETCH = "/opt/prefetch"
VK_ENV = {"PYTHONPATH": "/opt/venvkeeper-src", "VENVKEEPER_DB": "/var/tmp/venvkeeper.db"}
ROOTS = ("/srv", "/home")
#: The test's own top directories: moved into the cached upgraded root.
KEEP = ("srv", "opt", "home")
UNITS = "/etc/systemd/system"

#: app -> (the python its venv is made with, the consumer, how it is observed)
APPS: dict[str, tuple[str, str, str]] = {
    "svc": ("python3", "vk-svc.service", "http 8091"),
    "pinned": ("python3.11", "vk-pinned.service", "http 8092"),
    "hard": ("python3.11", "vk-hard.service", "http 8093"),
    "job": ("python3", "cron /etc/cron.d/vk-job", "cron output"),
    "wsgi": ("python3.11", "mod_wsgi WSGIDaemonProcess vkwsgi", "http 8081"),
    "uwsgi": ("python3", "uWSGI apps-enabled/vk-uwsgi.ini", "http 8082"),
    "sup": ("python3", "supervisor program:vksup", "http 8083"),
    "tool": ("python3.11", "/usr/local/bin/vktool", "run it"),
    "pipx": ("python3 (pipx)", "alice's pipx vkapp-cli", "run it as alice"),
}
PORTS = {"svc": 8091, "pinned": 8092, "hard": 8093, "wsgi": 8081, "uwsgi": 8082, "sup": 8083}
PIPX_VENV = "/home/alice/.local/pipx/venvs/vkapp"

APP_INIT = """\
import sys

VALUE = "vkapp-1.0"


def main():
    print("vkapp OK", sys.prefix, sys.version.split()[0])


def application(environ, start_response):
    body = ("vkapp OK %s %s" % (sys.prefix, sys.version.split()[0])).encode()
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [body]


def serve(port):
    from wsgiref.simple_server import WSGIRequestHandler, make_server

    class Quiet(WSGIRequestHandler):
        def log_message(self, *args):
            pass

    make_server("127.0.0.1", int(port), application, handler_class=Quiet).serve_forever()
"""
APP_MAIN = """\
import sys

from vkapp import main, serve

if sys.argv[1:2] == ["serve"]:
    serve(sys.argv[2])
else:
    main()
"""


def venv_of(app: str) -> str:
    return PIPX_VENV if app == "pipx" else f"{E2E}/{app}/venv"


def fixtures() -> tuple[dict[str, str], dict[str, str]]:
    """The configs (path -> text) and links (path -> target) put in the root before the
    upgrade: what the cached upgraded root is keyed by."""
    files = {
        f"{UNITS}/vk-svc.service": (
            "[Service]\nExecStart=/srv/e2e/svc/venv/bin/python -m vkapp serve 8091\n"
            "[Install]\nWantedBy=multi-user.target\n"
        ),
        f"{UNITS}/vk-pinned.service": (
            "[Service]\nExecStart=/srv/e2e/pinned/venv/bin/python -m vkapp serve 8092\n"
            "[Install]\nWantedBy=multi-user.target\n"
        ),
        f"{UNITS}/vk-hard.service": (
            "[Service]\nExecStart=/usr/bin/python3 -m vkapp serve 8093\n"
            "Environment=PYTHONPATH=/srv/e2e/hard/venv/lib/python3.11/site-packages\n"
            "[Install]\nWantedBy=multi-user.target\n"
        ),
        "/etc/cron.d/vk-job": (
            f"@reboot root /srv/e2e/job/venv/bin/vkapp-cli > {OUT}/job.out 2>&1\n"
        ),
        "/etc/apache2/sites-available/vk-wsgi.conf": (
            "Listen 127.0.0.1:8081\n<VirtualHost 127.0.0.1:8081>\n"
            "    WSGIDaemonProcess vkwsgi python-home=/srv/e2e/wsgi/venv\n"
            "    WSGIProcessGroup vkwsgi\n"
            "    WSGIScriptAlias / /srv/e2e/wsgi/app.wsgi\n"
            "    <Directory /srv/e2e/wsgi>\n        Require all granted\n    </Directory>\n"
            "</VirtualHost>\n"
        ),
        "/etc/uwsgi/apps-available/vk-uwsgi.ini": (
            "[uwsgi]\nplugins = python3\nhttp-socket = 127.0.0.1:8082\n"
            "home = /srv/e2e/uwsgi/venv\nmodule = vkapp:application\nmaster = true\n"
            "processes = 1\n"
        ),
        "/etc/supervisor/conf.d/vk-sup.conf": (
            "[program:vksup]\ncommand=/srv/e2e/sup/venv/bin/python -m vkapp serve 8083\n"
            "autorestart=true\nstartretries=2\n"
        ),
    }
    links = {
        f"{UNITS}/multi-user.target.wants/{u}": f"{UNITS}/{u}"
        for u in ("vk-svc.service", "vk-pinned.service", "vk-hard.service")
    }
    links["/etc/apache2/sites-enabled/vk-wsgi.conf"] = "../sites-available/vk-wsgi.conf"
    links["/etc/uwsgi/apps-enabled/vk-uwsgi.ini"] = "../apps-available/vk-uwsgi.ini"
    links["/usr/local/bin/vktool"] = "/srv/e2e/tool/venv/bin/vkapp-cli"
    return files, links


def fixture_key() -> str:
    files, links = fixtures()
    text = json.dumps({"files": files, "links": links, "users": ["alice"]}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:8]


def put_fixtures(root: Path) -> None:
    nspawn.add_user(root, "alice")
    files, links = fixtures()
    for path, text in files.items():
        f = root / path.lstrip("/")
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text(text)
        f.chmod(0o644)
    for path, target in links.items():
        link = root / path.lstrip("/")
        link.parent.mkdir(parents=True, exist_ok=True)
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(target)


def run(root: Path, *argv: str, env: dict[str, str] | None = None) -> str:
    return debroot.chroot_run(root, list(argv), env).stdout


def make_apps(root: Path, tmp: Path) -> None:
    """venvkeeper's source, the app's wheel, each app's venv with it, the pipx app."""
    dest = root / "opt/venvkeeper-src/venvkeeper"
    shutil.copytree(SRC, dest, ignore=shutil.ignore_patterns("__pycache__"))
    project = make_project(tmp, "vkapp", script="vkapp-cli")
    (project.path / "vkapp" / "__init__.py").write_text(APP_INIT)
    (project.path / "vkapp" / "__main__.py").write_text(APP_MAIN)
    build_wheel(project, root / WHEELS.lstrip("/"))
    (root / OUT.lstrip("/")).mkdir(parents=True)
    for app, (python, _, _) in APPS.items():
        if app == "pipx":
            continue
        venv = venv_of(app)
        run(root, python, "-m", "venv", venv)
        pip = [f"{venv}/bin/python", "-m", "pip", "install", "-q", "--no-cache-dir"]
        run(root, *pip, "--no-index", "--find-links", WHEELS, "vkapp")
    (root / "srv/e2e/wsgi/app.wsgi").write_text("from vkapp import application\n")
    alice = ["runuser", "-u", "alice", "--", "env", "HOME=/home/alice"]
    pip_args = f"--no-index --find-links {WHEELS}"
    run(root, *alice, "pipx", "install", "--pip-args", pip_args, "vkapp")


# --- the probe: what really works, seen from inside the booted root ---------------------

PROBE = r"""#!/usr/bin/python3
import json, os, subprocess, sys, time, urllib.error, urllib.request

PORTS = %(ports)r
OUT = %(out)r
APPS = %(apps)r
PHASES = %(phases)r
VK = ["env", "PYTHONPATH=/opt/venvkeeper-src", "VENVKEEPER_DB=/var/tmp/venvkeeper.db",
      "python3", "-m", "venvkeeper"]


def sh(*argv, timeout=600):
    try:
        r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
        return r.returncode, r.stdout, r.stderr
    except Exception as e:
        return -1, "", str(e)


def http(port, wait):
    end = time.monotonic() + wait
    while True:
        try:
            with urllib.request.urlopen("http://127.0.0.1:%%d/" %% port, timeout=10) as r:
                return r.status, r.read().decode("utf-8", "replace")[:120]
        except urllib.error.HTTPError as e:
            return e.code, ""
        except OSError as e:
            if time.monotonic() > end:
                return None, str(e)[:120]
            time.sleep(1)


def observe(wait, cron):
    seen = {}
    for app in APPS:
        if app in PORTS:
            code, body = http(PORTS[app], wait)
            seen[app] = {"works": code == 200 and body.startswith("vkapp OK"),
                         "detail": "HTTP %%s %%s" %% (code, body)}
        elif app == "job":
            if not cron:
                continue
            path = OUT + "/job.out"
            end = time.monotonic() + 30
            while not os.path.exists(path) and time.monotonic() < end:
                time.sleep(1)
            time.sleep(1)
            text = open(path).read() if os.path.exists(path) else "(no output: did not run)"
            seen[app] = {"works": text.startswith("vkapp OK"), "detail": text[-200:]}
        elif app == "tool":
            rc, out, err = sh("/usr/local/bin/vktool")
            seen[app] = {"works": out.startswith("vkapp OK"), "detail": (out + err)[-200:]}
        elif app == "pipx":
            rc, out, err = sh("runuser", "-u", "alice", "--", "/home/alice/.local/bin/vkapp-cli")
            seen[app] = {"works": out.startswith("vkapp OK"), "detail": (out + err)[-200:]}
    for unit in ("vk-svc", "vk-pinned", "vk-hard", "apache2", "uwsgi", "supervisor"):
        rc, out, err = sh("systemctl", "show", "-p", "ActiveState,SubState,ExecMainStatus",
                          unit + ".service")
        seen.setdefault("units", {})[unit] = " ".join(out.split())
    return seen


# (no "systemctl is-system-running --wait": this report is itself a job of the boot)
print("PHASE boot " + json.dumps(observe(20, True)), flush=True)
if "consumers" in PHASES:
    rc, out, err = sh(*VK, "consumers", "--no-scan", "--json")
    print("PHASE consumers " + json.dumps({"rc": rc, "doc": out, "err": err[-2000:]}), flush=True)
if "repair" in PHASES:
    rc, out, err = sh("env", "COLUMNS=100", *VK, "repair", "--all", "--force", "--restart",
                      "--fix-consumers", "--dry-run", "--offline", "--find-links", %(prefetch)r,
                      *%(roots)r)
    print("PHASE dry-run " + json.dumps({"rc": rc, "text": out, "err": err[-2000:]}), flush=True)
    rc, out, err = sh(*VK, "repair", "--all", "--force", "--restart", "--fix-consumers",
                      "--offline", "--find-links", %(prefetch)r, "--json", *%(roots)r)
    print("PHASE repair " + json.dumps({"rc": rc, "doc": out, "err": err[-3000:]}), flush=True)
    print("PHASE after-repair " + json.dumps(observe(10, False)), flush=True)
"""


def probe(*phases: str) -> str:
    return PROBE % {
        "ports": PORTS,
        "out": OUT,
        "apps": list(APPS),
        "phases": list(phases),
        "prefetch": PREFETCH,
        "roots": list(ROOTS),
    }


def boot(root: Path, label: str, times: dict[str, float], *phases: str) -> dict[str, Any]:
    out = root / OUT.lstrip("/")
    for f in out.glob("*"):
        f.unlink()
    t0 = time.monotonic()
    b = nspawn.boot(root, probe(*phases), timeout=900, private_network=True)
    times[f"boot {label}"] = time.monotonic() - t0
    found: dict[str, Any] = {}
    for line in b.output.splitlines():
        if line.startswith("PHASE "):
            _, name, doc = line.split(" ", 2)
            found[name] = json.loads(doc)
    assert "boot" in found, f"boot {label}: no report:\n{b.output[-3000:]}\n{b.console[-3000:]}"
    return found


def works(seen: dict[str, Any]) -> dict[str, bool]:
    return {app: v["works"] for app, v in seen.items() if app != "units"}


def vk(root: Path, *args: str, stdin: str | None = None) -> tuple[int, str]:
    res = debroot.chroot_run(
        root, ["python3", "-m", "venvkeeper", *args], VK_ENV, check=False, input=stdin
    )
    assert res.returncode in (0, 1, 2), f"venvkeeper {args}: {res.returncode}\n{res.stderr}"
    return res.returncode, res.stdout


def predicted_by_app(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """app -> its consumers' prediction (its venv's consumers, merged)."""
    by_venv = {v["path"]: v for v in doc["venvs"]}
    out = {}
    for app in APPS:
        v = by_venv.get(venv_of(app))
        assert v is not None, f"predict did not judge {venv_of(app)}"
        assert v["consumers"], f"no consumer found for {app} ({venv_of(app)})"
        out[app] = {
            "effect": v["effect"],
            "breaks": any(c["breaks"] for c in v["consumers"]),
            "fails_how": sorted({c["fails_how"] for c in v["consumers"] if c["breaks"]}),
            "names": [c["name"] for c in v["consumers"]],
        }
    return out


#: What apt hands the pre-install hook for the release upgrade's interpreter packages.
RELEASE_ACTIONS = (
    "python3 3.11.2-1+b1 amd64 allowed < 3.13.5-1 amd64 allowed **CONFIGURE**",
    "libapache2-mod-wsgi-py3 4.9.4-1+b2 amd64 same < 5.0.2-1 amd64 same **CONFIGURE**",
    "uwsgi-plugin-python3 2.0.21-5.1 amd64 same < 2.0.28-2 amd64 same **CONFIGURE**",
)


def test_consumers_through_a_release_upgrade(tmp_path: Path) -> None:
    times: dict[str, float] = {}
    table: list[str] = []
    shown: list[str] = []  # real output, for docs/services.md
    t0 = time.monotonic()
    root = tmp_path / "root"
    try:
        nspawn.systemd_root(root, nspawn.SERVERS)
        times["bookworm root"] = time.monotonic() - t0
        put_fixtures(root)
        make_apps(root, tmp_path)
        times["apps made"] = time.monotonic() - t0

        first = boot(root, "1 (bookworm)", times, "consumers")
        assert all(works(first["boot"]).values()), first["boot"]
        listed = validate_json("consumers", first["consumers"]["doc"])
        running = {c["name"]: c["running"] for c in listed["consumers"]}
        assert running.get("vk-svc.service") is True, running  # /proc's cgroups in the root

        _, out = vk(root, "predict", "--json", "--no-processes", "--python-becomes", "3.13",
                       *ROOTS)  # fmt: skip
        doc = validate_json("predict", out)
        argv = ["python3", "-m", "venvkeeper", "predict", "--python-becomes", "3.13", *ROOTS]
        text = debroot.chroot_run(root, argv, {**VK_ENV, "COLUMNS": "100"}, check=False).stdout
        shown.append("$ venvkeeper predict --python-becomes 3.13 /srv /home\n" + text)
        predicted = predicted_by_app(doc)
        times["predicted"] = time.monotonic() - t0
        hook_in = "VERSION 3\nAPT::Architecture=amd64\n\n" + "\n".join(RELEASE_ACTIONS) + "\n"
        res = debroot.chroot_run(
            root,
            ["python3", "-m", "venvkeeper", "apt-hook", "pre-install", "--no-processes", *ROOTS],
            VK_ENV,
            input=hook_in,
        )
        hook = res.stdout + res.stderr
        assert "consumers that would break:" in hook, hook
        assert "WSGIDaemonProcess vkwsgi" in hook and "vk-svc.service" in hook, hook
        (root / PREFETCH.lstrip("/")).mkdir(parents=True)
        vk(root, "wheelhouse", "--dest", PREFETCH, "--python-becomes", "3.13", "--offline",
           "--find-links", WHEELS, *ROOTS)  # fmt: skip
        times["prefetched"] = time.monotonic() - t0

        times.update(debroot.upgrade_to_trixie(root, PACKAGES, key=fixture_key(), keep=KEEP))
        times["upgraded"] = time.monotonic() - t0
        version = run(root, "python3", "-c", "import sys; print(sys.version)")
        assert version.startswith("3.13"), version

        second = boot(root, "2 (trixie) + repair", times, "repair")
        observed = works(second["boot"])
        for app in APPS:
            p = predicted[app]
            how = ",".join(p["fails_how"]) or "-"
            table.append(
                f"{app:7} {APPS[app][0]:15} {APPS[app][1]:36} predicted"
                f" {'breaks' if p['breaks'] else 'works':6} ({how:14}) observed"
                f" {'works' if observed[app] else 'FAILS':5} {second['boot'][app]['detail'][:60]!r}"
            )
        assert {a for a, p in predicted.items() if p["breaks"]} == {
            a for a, ok in observed.items() if not ok
        }, "\n".join(table)
        shown.append(
            "$ venvkeeper repair --all --force --restart --fix-consumers --dry-run --offline"
            f" --find-links {PREFETCH} /srv /home\n" + second["dry-run"]["text"]
        )
        repair = second["repair"]
        rdoc = validate_json("repair", repair["doc"])
        table.append(f"repair rc={repair['rc']}")
        for r in rdoc["results"]:
            table.append(f"  {r['outcome']:9} {r['path']}: {r['message'][:80]}")
        for a in rdoc["consumers"]:
            what = a["command"] or (a["edit"] and f"edit {a['edit']['path']}:{a['edit']['line']}")
            table.append(f"  {a['outcome']:11} {what} {a['consumers']} {a['detail'][:70]}")
        assert {r["outcome"] for r in rdoc["results"]} == {"repaired"}, repair
        after = works(second["after-repair"])
        table.append(f"in the same boot after repair --restart: {after}")
        acted = {a["unit"] for a in rdoc["consumers"] if a["outcome"] == "done" and a["unit"]}
        assert {"apache2.service", "uwsgi.service", "supervisor.service"} <= acted, acted
        assert "vk-hard.service" in acted and "vk-pinned.service" in acted, acted
        assert "vk-svc.service" in acted, acted  # it had failed on its venv: restarted
        for app in ("svc", "wsgi", "uwsgi", "sup", "pinned", "hard", "tool", "pipx"):
            assert after[app], (app, second["after-repair"][app])
        edits = [a for a in rdoc["consumers"] if a["kind"] == "edit"]
        assert [(e["outcome"], e["edit"]["path"]) for e in edits] == [
            ("done", f"{UNITS}/vk-hard.service")
        ], edits
        unit = (root / UNITS.lstrip("/") / "vk-hard.service").read_text()
        assert "lib/python3.13/site-packages" in unit, unit

        third = boot(root, "3 (repaired)", times)
        assert all(works(third["boot"]).values()), third["boot"]
        table.append(f"boot 3: {works(third['boot'])}")
    finally:
        print("\n".join(shown))
        print("\n".join(table))
        print("timings (s):", {k: round(v, 1) for k, v in times.items()})
        debroot.remove_root(root)
        debroot.remove_root(root.with_name(root.name + ".upgraded"))
