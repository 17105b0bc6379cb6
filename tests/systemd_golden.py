"""Regenerate tests/data/systemd/golden.json from a real systemd.

    sudo .dev/venv/bin/python tests/systemd_golden.py [--check]

Builds (or reuses, cached by tests/debroot.py) a bookworm root with systemd, copies the
fixture tree tests/data/systemd/root/ into it, makes the venvs the units run
(/opt/app/venv, alice's ~/venv), boots it with systemd-nspawn (tests/nspawn.py) and runs
tests/data/systemd/probe.py as the report: the real systemd's own view of each unit
(``busctl --json=short`` get-property: ExecStart argv, Environment, EnvironmentFiles,
WorkingDirectory, User, FragmentPath, DropInPaths, TriggeredBy, LoadState ...), the
environment a service really got from its EnvironmentFile, and what the units printed.
tests/test_consumers_golden.py reads the fixture tree with venvkeeper's reader and compares.
With --check, the new output is compared with the stored one instead of replacing it.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import debroot  # noqa: E402

import nspawn  # noqa: E402

DATA = HERE / "data" / "systemd"
GOLDEN = DATA / "golden.json"


def links() -> list[tuple[str, str]]:
    """The fixture tree's links, (path inside the root, target), from links.txt."""
    out = []
    for line in (DATA / "links.txt").read_text().splitlines():
        if line and not line.startswith("#"):
            path, _, target = line.partition(" -> ")
            out.append((path, target))
    return out


def copy_tree(root: Path) -> None:
    """The fixture tree (files, then links) into *root*."""
    shutil.copytree(DATA / "root", root, symlinks=True, dirs_exist_ok=True)
    for path, target in links():
        link = root / path.lstrip("/")
        link.parent.mkdir(parents=True, exist_ok=True)
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(target)


def install(root: Path) -> None:
    """The fixture tree and the venvs into a fresh root."""
    nspawn.add_user(root, "alice", linger=False)
    copy_tree(root)
    subprocess.run(["chroot", str(root), "chown", "-R", "alice:alice", "/home/alice"], check=True)
    debroot.chroot_run(root, ["python3", "-m", "venv", "--without-pip", "/opt/app/venv"])
    debroot.chroot_run(
        root,
        [
            "runuser",
            "-u",
            "alice",
            "--",
            "python3",
            "-m",
            "venv",
            "--without-pip",
            "/home/alice/venv",
        ],
    )


def generate(workdir: Path) -> dict[str, object]:
    root = nspawn.systemd_root(workdir / "root")
    try:
        install(root)
        boot = nspawn.boot(root, (DATA / "probe.py").read_text(), timeout=300)
        try:
            doc: dict[str, object] = json.loads(boot.output)
        except ValueError as e:
            raise RuntimeError(f"the probe printed no JSON:\n{boot.output[-3000:]}") from e
        return doc
    finally:
        debroot.remove_root(root)


def main(argv: list[str]) -> int:
    with tempfile.TemporaryDirectory(prefix="vk-golden-") as d:
        doc = generate(Path(d))
    text = json.dumps(doc, indent=1, sort_keys=True) + "\n"
    if "--check" in argv:
        old = json.loads(GOLDEN.read_text())
        same = old.get("system") == doc.get("system") and old.get("user") == doc.get("user")
        print("same" if same else "differs")
        return 0 if same else 1
    GOLDEN.write_text(text)
    print(f"wrote {GOLDEN}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
