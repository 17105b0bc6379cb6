"""Reading consumers on a busy host: 500 units, 200 cron lines, 2,000 files in PATH dirs.

    python bench/consumers.py [--root DIR] [--runs 7]

Builds once (a stamp records it) an OS root at DIR (default /tmp/vk-bench-consumers):
20 venvs (one real ``python -m venv``, copied), 500 units (300 distro-like units in
``/lib/systemd/system`` that name no venv, 150 in ``/etc/systemd/system`` that do, with
drop-ins, ``Environment=`` and ``WorkingDirectory=``, 25 timers with their services,
25 enabled template instances), 200 cron lines (``/etc/crontab``, ``/etc/cron.d``, two
users' spools) and 2,000 files in PATH dirs (``/usr/local/bin``, ``/usr/local/sbin``,
``/opt/*/bin``, two users' ``~/.local/bin``: links into venvs, scripts with a venv's
shebang, other scripts and binaries). Then, warm cache, medians of ``--runs`` runs:

- ``read_consumers(DIR)`` in one process (the stage alone);
- ``venvkeeper scan --no-record --no-consumers --json DIR`` (a full scan of that root);
- ``venvkeeper consumers --system-root DIR --json`` (the same scan, plus reading and
  judging every consumer);
- with ``--predict``, ``venvkeeper predict --python-becomes 3.13 --no-processes --json
  --system-root DIR DIR`` with and without ``--no-consumers`` (what judging every
  consumer under the change adds to a prediction);
- with ``--host``, a full scan of this machine (``venvkeeper scan --no-record --json``,
  every local filesystem from /) with and without ``--no-consumers``, and the stage's
  time on DIR as a share of that full scan (a host with DIR's consumers).

Wall times on a shared machine vary with its load: the stage's CPU time is reported too.

Writes bench/out/consumers.json.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SRC = HERE.parent / "src"
sys.path.insert(0, str(SRC))

VENVS = 20
STAMP = "vk-bench-consumers-1"
ENV = {**os.environ, "PYTHONPATH": str(SRC)}


def w(root: Path, path: str, text: str, mode: int = 0o644) -> None:
    f = root / path.lstrip("/")
    f.parent.mkdir(parents=True, exist_ok=True)
    f.write_text(text)
    f.chmod(mode)


def ln(root: Path, path: str, target: str) -> None:
    f = root / path.lstrip("/")
    f.parent.mkdir(parents=True, exist_ok=True)
    f.symlink_to(target)


def build(root: Path) -> dict[str, int]:
    if (root / STAMP).exists():
        return json.loads((root / STAMP).read_text())
    if root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True)
    counts = {"units": 0, "cron_lines": 0, "path_files": 0, "venvs": VENVS}
    w(
        root,
        "/etc/passwd",
        "root:x:0:0:root:/root:/bin/bash\n"
        "alice:x:1000:1000::/home/alice:/bin/sh\nbob:x:1001:1001::/home/bob:/bin/sh\n",
    )
    first = root / "srv/app0/venv"
    first.parent.mkdir(parents=True)
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(first)], check=True)
    for i in range(1, VENVS):
        (root / f"srv/app{i}").mkdir(parents=True)
        subprocess.run(["cp", "-a", str(first), str(root / f"srv/app{i}/venv")], check=True)
    for i in range(VENVS):
        w(root, f"/srv/app{i}/venv/bin/app", f"#!/srv/app{i}/venv/bin/python\nimport app\n", 0o755)
    # units
    for i in range(300):
        w(
            root,
            f"/lib/systemd/system/distro{i}.service",
            f"[Unit]\nDescription=distro daemon {i}\n[Service]\nExecStart=/usr/sbin/daemon{i} -f\n"
            "ExecReload=/bin/kill -HUP $MAINPID\n[Install]\nWantedBy=multi-user.target\n",
        )
        counts["units"] += 1
    for i in range(150):
        v = i % VENVS
        w(
            root,
            f"/etc/systemd/system/app{i}.service",
            f"[Unit]\nDescription=app {i}\n[Service]\nUser=www-data\nWorkingDirectory=/srv/app{v}\n"
            f"Environment=APP_ENV=prod APP_ID={i}\nExecStartPre=/bin/mkdir -p /run/app{i}\n"
            f"ExecStart=/srv/app{v}/venv/bin/python -m app --port {8000 + i}\n"
            "[Install]\nWantedBy=multi-user.target\n",
        )
        if i % 3 == 0:
            w(
                root,
                f"/etc/systemd/system/app{i}.service.d/override.conf",
                f"[Service]\nExecStart=\nExecStart=/srv/app{v}/venv/bin/app serve\n",
            )
        ln(
            root,
            f"/etc/systemd/system/multi-user.target.wants/app{i}.service",
            f"/etc/systemd/system/app{i}.service",
        )
        counts["units"] += 1
    for i in range(25):
        v = i % VENVS
        w(
            root,
            f"/etc/systemd/system/job{i}.timer",
            "[Timer]\nOnCalendar=hourly\n[Install]\nWantedBy=timers.target\n",
        )
        w(
            root,
            f"/etc/systemd/system/job{i}.service",
            f"[Service]\nType=oneshot\nExecStart=/srv/app{v}/venv/bin/app job {i}\n",
        )
        ln(
            root,
            f"/etc/systemd/system/timers.target.wants/job{i}.timer",
            f"/etc/systemd/system/job{i}.timer",
        )
        counts["units"] += 1
    w(
        root,
        "/etc/systemd/system/worker@.service",
        "[Service]\nExecStart=/srv/%i/venv/bin/python -m worker\n",
    )
    for i in range(25):
        ln(
            root,
            f"/etc/systemd/system/multi-user.target.wants/worker@app{i % VENVS}-{i}.service",
            "/etc/systemd/system/worker@.service",
        )
    counts["units"] += 25
    # cron
    lines = [
        f"{i % 60} * * * * root /srv/app{i % VENVS}/venv/bin/python -m cron{i}" for i in range(20)
    ]
    w(
        root,
        "/etc/crontab",
        "SHELL=/bin/sh\nPATH=/usr/local/sbin:/usr/local/bin:/sbin:/bin:/usr/sbin:/usr/bin\n"
        + "\n".join(lines)
        + "\n",
    )
    counts["cron_lines"] += 20
    for f in range(20):
        body = "\n".join(
            f"*/{1 + j} * * * * root cd /srv/app{(f + j) % VENVS} && venv/bin/python -m job{j}"
            f" >/dev/null 2>&1"
            for j in range(5)
        )
        w(root, f"/etc/cron.d/app{f}", body + "\n")
        counts["cron_lines"] += 5
    for user in ("alice", "bob"):
        body = "\n".join(
            f"{j % 60} {j % 24} * * * . /srv/app{j % VENVS}/venv/bin/activate && python r{j}.py"
            for j in range(40)
        )
        w(root, f"/var/spool/cron/crontabs/{user}", "PATH=/usr/bin:/bin\n" + body + "\n", 0o600)
        counts["cron_lines"] += 40

    # PATH dirs
    def fill(d: str, n: int) -> None:
        for k in range(n):
            v = k % VENVS
            kind = k % 5
            p = f"{d}/cmd{k}"
            if kind == 0:
                ln(root, p, f"/srv/app{v}/venv/bin/app")
            elif kind == 1:
                w(root, p, f"#!/srv/app{v}/venv/bin/python\nimport sys\n", 0o755)
            elif kind == 2:
                w(root, p, '#!/bin/sh\nexec /usr/bin/true "$@"\n', 0o755)
            elif kind == 3:
                w(root, p, "#!/usr/bin/env python3\nprint(1)\n", 0o755)
            else:
                (root / p.lstrip("/")).parent.mkdir(parents=True, exist_ok=True)
                (root / p.lstrip("/")).write_bytes(b"\x7fELF" + b"\0" * 2000)
            counts["path_files"] += 1

    fill("/usr/local/bin", 800)
    fill("/usr/local/sbin", 200)
    for j in range(4):
        fill(f"/opt/tool{j}/bin", 100)
    fill("/home/alice/.local/bin", 300)
    fill("/home/bob/.local/bin", 300)
    (root / STAMP).write_text(json.dumps(counts))
    return counts


def median_of(runs: int, fn) -> float:  # type: ignore[no-untyped-def]
    fn()  # warm-up
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


#: The CPU time (user + system) of each child command run so far, by its arguments.
CPU: dict[tuple[str, ...], list[float]] = {}


def cli(*args: str) -> None:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(
        [sys.executable, "-m", "venvkeeper", *args],
        env=ENV,
        check=False,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    used = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    CPU.setdefault(args, []).append(used)


def cpu_of(*args: str) -> float:
    return round(statistics.median(CPU[args]), 3)


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--root", default="/tmp/vk-bench-consumers")
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--host", action="store_true", help="also time full scans of this host")
    ap.add_argument("--predict", action="store_true", help="also time predict with consumers")
    args = ap.parse_args(argv)
    root = Path(args.root)
    counts = build(root)
    from venvkeeper.consumers import read_consumers

    found = read_consumers(str(root), None)
    stage = median_of(args.runs, lambda: read_consumers(str(root), None))
    cpu = []
    for _ in range(args.runs):
        t0 = time.process_time()
        read_consumers(str(root), None)
        cpu.append(time.process_time() - t0)
    scan = median_of(
        args.runs, lambda: cli("scan", "--no-record", "--no-consumers", "--json", str(root))
    )
    both = median_of(args.runs, lambda: cli("consumers", "--system-root", str(root), "--json"))
    res = {
        "root": str(root),
        **counts,
        "consumers_found": len(found.consumers),
        "files_read": found.files,
        "read_consumers_s": round(stage, 4),
        "read_consumers_cpu_s": round(statistics.median(cpu), 4),
        "load_average": os.getloadavg()[0],
        "scan_s": round(scan, 4),
        "scan_plus_consumers_s": round(both, 4),
        "added_percent": round(100 * (both - scan) / scan, 1),
        "scan_cpu_s": cpu_of("scan", "--no-record", "--no-consumers", "--json", str(root)),
        "scan_plus_consumers_cpu_s": cpu_of("consumers", "--system-root", str(root), "--json"),
        "python": sys.version.split()[0],
        "runs": args.runs,
    }
    if args.predict:
        pred = ("predict", "--python-becomes", "3.13", "--no-processes", "--json")
        pred += ("--system-root", str(root), str(root))
        with_c = median_of(args.runs, lambda: cli(*pred))
        without = median_of(args.runs, lambda: cli(*pred, "--no-consumers"))
        res.update(
            predict_s=round(with_c, 3),
            predict_no_consumers_s=round(without, 3),
            predict_cpu_s=cpu_of(*pred),
            predict_no_consumers_cpu_s=cpu_of(*pred, "--no-consumers"),
        )
    if args.host:
        full = median_of(3, lambda: cli("scan", "--no-record", "--no-consumers", "--json"))
        full_with = median_of(3, lambda: cli("scan", "--no-record", "--json"))
        full_cpu = cpu_of("scan", "--no-record", "--no-consumers", "--json")
        res.update(
            host_scan_s=round(full, 3),
            host_scan_with_consumers_s=round(full_with, 3),
            host_scan_cpu_s=full_cpu,
            host_scan_with_consumers_cpu_s=cpu_of("scan", "--no-record", "--json"),
            stage_cpu_share_of_host_scan_percent=round(100 * statistics.median(cpu) / full_cpu, 1),
        )
    out = HERE / "out"
    out.mkdir(exist_ok=True)
    (out / "consumers.json").write_text(json.dumps(res, indent=1) + "\n")
    print(json.dumps(res, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
