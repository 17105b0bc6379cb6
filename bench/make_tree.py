"""Build the synthetic benchmark tree: hard-linked copies of one real venv among many
ordinary files in nested, project-like directories.

    python bench/make_tree.py ROOT [--venvs 300] [--files 300000] [--seed 1]
                                   [--template service|small|fleet]

10,000 venvs (bench/incremental.py): ``--venvs 10000 --files 1000000 --template fleet``
(about 10 M entries, mostly hard links, 750,000 directories: some 7 GB of disk).

Idempotent: a finished tree with the same parameters (a stamp file) is left as it is.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path

#: What the template venv holds. "service": a typical production web service (Django,
#: Celery, SQLAlchemy, boto3, NumPy, ...). "small": a small tool venv.
TEMPLATES = {
    "service": [
        "django",
        "djangorestframework",
        "celery",
        "redis",
        "sqlalchemy",
        "psycopg2-binary",
        "boto3",
        "numpy",
        "requests",
        "gunicorn",
        "pyyaml",
        "jinja2",
        "click",
        "rich",
    ],
    "small": ["requests", "rich", "click", "packaging", "pyyaml", "markupsafe", "jinja2"],
    # the packages of "small" in a venv made --without-pip: 14 distributions and about
    # 1,000 entries per venv, so that 10,000 of them fit a benchmark machine's disk
    "fleet": ["requests", "rich", "click", "packaging", "pyyaml", "markupsafe", "jinja2"],
}
#: Templates whose venv is made without pip (and so without setuptools).
WITHOUT_PIP = {"fleet"}


def make_template(
    dest: Path, packages: list[str], *, pip: bool = True, python: str = sys.executable
) -> int:
    """A real venv with real packages (from PyPI when reachable). Returns its file count."""
    made = [python, "-m", "venv", *([] if pip else ["--without-pip"]), str(dest)]
    subprocess.run(made, check=True, timeout=600)
    uv = Path(sys.executable).parent / "uv"
    cmd = (
        [str(uv), "pip", "install", "-q", "--python", str(dest / "bin" / "python"), *packages]
        if uv.exists()
        else [sys.executable, "-m", "pip", "--python", str(dest / "bin" / "python"), "install"]
    )
    if not uv.exists():
        cmd += ["-q", *packages]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    if res.returncode != 0:
        print(f"make_tree: package install failed, using a bare venv: {res.stderr[-300:]}")
    return sum(len(files) + len(dirs) for _, dirs, files in os.walk(dest))


_PLANS: dict[Path, list[tuple[str, list[tuple[str, str, str]]]]] = {}


def link_copy(src: Path, dst: Path) -> None:
    """``cp -al``: directories recreated, files hard-linked, symlinks recreated (the
    template is walked once, however many copies are made)."""
    plan = _PLANS.get(src)
    if plan is None:
        plan = []
        for dirpath, dirnames, filenames in os.walk(src):
            rel = os.path.relpath(dirpath, src)
            items = []
            for name in list(dirnames) + filenames:
                s = os.path.join(dirpath, name)
                if os.path.islink(s):
                    items.append((name, "link", os.readlink(s)))
                    if name in dirnames:
                        dirnames.remove(name)
                elif name in filenames:
                    items.append((name, "file", s))
            plan.append((rel, items))
        _PLANS[src] = plan
    for rel, items in plan:
        target = str(dst) if rel == "." else os.path.join(dst, rel)
        os.makedirs(target, exist_ok=True)
        for name, kind, what in items:
            if kind == "link":
                os.symlink(what, os.path.join(target, name))
            else:
                os.link(what, os.path.join(target, name))


def make_ordinary(root: Path, nfiles: int, rng: random.Random) -> list[Path]:
    """Nested project-like directories with *nfiles* small files; returns the project dirs."""
    projects: list[Path] = []
    made = 0
    p = 0
    while made < nfiles:
        proj = root / "home" / f"user{p % 20}" / "projects" / f"proj{p}"
        projects.append(proj)
        p += 1
        layout = {
            "src/pkg": 12, "src/pkg/sub": 8, "tests": 10, "docs": 6,
            ".git/objects/ab": 25, ".git/objects/cd": 25, ".git/refs/heads": 2,
        }  # fmt: skip
        deep = proj / "node_modules"
        for i in range(rng.randint(2, 6)):
            deep = deep / f"dep{i}"
            layout[str(deep.relative_to(proj))] = rng.randint(5, 30)
        for sub, count in layout.items():
            d = proj / sub
            d.mkdir(parents=True, exist_ok=True)
            for i in range(count):
                (d / f"f{i}.txt").write_bytes(b"x" * rng.randint(0, 64))
                made += 1
    return projects


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("root", type=Path)
    ap.add_argument("--venvs", type=int, default=300)
    ap.add_argument("--files", type=int, default=300_000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--template", choices=sorted(TEMPLATES), default="service")
    args = ap.parse_args(argv)
    root: Path = args.root.resolve()
    params = {
        "venvs": args.venvs,
        "files": args.files,
        "seed": args.seed,
        "template": args.template,
        "v": 3,
    }
    stamp = root / ".bench-tree.json"
    if stamp.exists() and json.loads(stamp.read_text()).get("params") == params:
        print(f"make_tree: {root} is ready: {stamp.read_text().strip()}")
        return 0
    if root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True)
    t0 = time.time()
    rng = random.Random(args.seed)
    template = root / "template-venv"
    per_venv = make_template(
        template, TEMPLATES[args.template], pip=args.template not in WITHOUT_PIP
    )
    projects = make_ordinary(root, args.files, rng)
    venvs = []
    for i in range(args.venvs):
        where = rng.choice(projects) / (".venv" if i % 3 else f"envs/env{i}")
        if where.exists():
            where = where.parent / f"venv{i}"
        link_copy(template, where)
        venvs.append(str(where))
    dirs = files = 0
    for _, d, f in os.walk(root):
        dirs += len(d)
        files += len(f)
    info = {
        "params": params,
        "directories": dirs,
        "files": files,
        "venvs": len(venvs) + 1,
        "template": args.template,
        "packages": TEMPLATES[args.template],
        "entries_per_venv": per_venv,
        "seconds": round(time.time() - t0, 1),
    }
    stamp.write_text(json.dumps(info) + "\n")
    print(f"make_tree: built {root}: {json.dumps(info)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
