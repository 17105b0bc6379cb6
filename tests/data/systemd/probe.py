#!/usr/bin/python3
"""Runs inside the booted root (tests/systemd_golden.py installs it as the report): asks
the real systemd, over the bus, how it loaded each fixture unit, and prints one JSON
document. Never edit the output by hand: regenerate it."""

import json
import os
import subprocess
import time

SYSTEM = [
    "app.service",
    "app-web.service",
    "worker@site-a.service",
    "worker@srv-x\\x2dy.service",
    "probe.service",
    "probe.timer",
    "sockapp.service",
    "search.service",
    "bare.service",
    "badvar.service",
    "shell.service",
    "spec.service",
    "masked.service",
    "alias-of-app.service",
    "linked.service",
    "envdump.service",
]
USER = ["uapp.service"]
SERVICE_PROPS = [
    "ExecStartPre",
    "ExecStart",
    "ExecStartPost",
    "ExecStop",
    "ExecStopPost",
    "Environment",
    "EnvironmentFiles",
    "WorkingDirectory",
    "User",
    "ExecSearchPath",
    "ExecMainStatus",
    "Result",
]
UNIT_PROPS = [
    "Id",
    "LoadState",
    "ActiveState",
    "FragmentPath",
    "DropInPaths",
    "TriggeredBy",
    "UnitFileState",
    "Names",
]


def busctl(args, user=None):
    argv = ["busctl", "--json=short"]
    env = None
    if user:
        uid = int(subprocess.check_output(["id", "-u", user]).decode())
        run = f"/run/user/{uid}"
        argv = [
            "runuser",
            "-u",
            user,
            "--",
            "env",
            f"XDG_RUNTIME_DIR={run}",
            f"DBUS_SESSION_BUS_ADDRESS=unix:path={run}/bus",
            "busctl",
            "--user",
            "--json=short",
        ]
    res = subprocess.run(argv + args, capture_output=True, text=True, env=env)
    if res.returncode != 0:
        return {"error": res.stderr.strip()}
    return json.loads(res.stdout)


def unit(name, user=None):
    got = busctl(
        [
            "call",
            "org.freedesktop.systemd1",
            "/org/freedesktop/systemd1",
            "org.freedesktop.systemd1.Manager",
            "LoadUnit",
            "s",
            name,
        ],
        user,
    )
    if "error" in got:
        return got
    path = got["data"][0]
    out = {}
    for iface, props in (("Unit", UNIT_PROPS), ("Service", SERVICE_PROPS)):
        for p in props:
            v = busctl(
                [
                    "get-property",
                    "org.freedesktop.systemd1",
                    path,
                    f"org.freedesktop.systemd1.{iface}",
                    p,
                ],
                user,
            )
            if "error" not in v:
                out[p] = v["data"]
    return out


def journal(name, user=None):
    argv = ["journalctl", "-o", "cat", "--no-pager"]
    argv += ["_SYSTEMD_USER_UNIT=" + name] if user else ["-u", name]
    return subprocess.run(argv, capture_output=True, text=True).stdout.splitlines()


def main():
    for _ in range(60):  # alice's manager (linger) and its bus
        if os.path.exists("/run/user/1000/bus"):
            break
        time.sleep(1)
    time.sleep(2)
    doc = {
        "systemd": subprocess.run(
            ["systemctl", "--version"], capture_output=True, text=True
        ).stdout.splitlines()[0],
        "system": {n: unit(n) for n in SYSTEM},
        "user": {"alice": {n: unit(n, "alice") for n in USER}},
        "journal": {
            n: journal(n)
            for n in ("app.service", "search.service", "bare.service", "shell.service")
        },
        "user_journal": {"alice": {"uapp.service": journal("uapp.service", "alice")}},
    }
    try:
        with open("/run/envdump", "rb") as f:
            raw = f.read()
        doc["envdump"] = sorted(x.decode() for x in raw.split(b"\0") if x)
    except OSError as e:
        doc["envdump"] = str(e)
    print(json.dumps(doc, indent=1, sort_keys=True))


main()
