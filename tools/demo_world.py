"""Build the demo world of the README and the docs: a distro-like prefix upgraded from
3.10 to 3.12, with venvs made before the upgrade (the same builders as the test suite).

    .dev/venv/bin/python tools/demo_world.py /srv/demo-repair           # built and upgraded
    .dev/venv/bin/python tools/demo_world.py --before-upgrade /srv/demo  # 3.10 still there

The venvs: ``app`` (``python3 -m venv`` with pip: a local package with a console script and
a compiled one), ``worker`` (virtualenv on ``python3.10``: a versioned link), ``batch`` (uv,
with an editable install) and ``site`` (on this host's ``/usr/bin/python3``: it survives).
tools/update_docs.py builds it before the upgrade, predicts, upgrades it with
:func:`upgrade`, then shows the other commands on it.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from factory import FakeDistro, install, make_project, make_venv


def build(root: Path) -> FakeDistro:
    """The world before the upgrade: ``usr/bin/python3`` is 3.10."""
    if root.exists():
        shutil.rmtree(root)
    distro = FakeDistro(root / "usr")
    distro.install("3.10")
    py3 = distro.set_default("3.10")
    alpha = make_project(root / "src", "alpha", script="alpha-cli")
    beta = make_project(root / "src", "beta", ext=True)
    gamma = make_project(root / "src", "gamma")
    app = make_venv(py3, root / "app", pip=True)
    install(app, alpha, beta, installer="pip")
    worker = make_venv(root / "usr" / "bin" / "python3.10", root / "worker", creator="virtualenv")
    install(worker, alpha, beta)
    batch = make_venv(py3, root / "batch", creator="uv")
    install(batch, alpha)
    install(batch, gamma, editable=True)
    site = make_venv(Path("/usr/bin/python3"), root / "site")
    install(site, alpha)
    return distro


def upgrade(distro: FakeDistro) -> None:
    """The distro's upgrade: 3.12 installed, ``python3`` repointed, 3.10 removed."""
    distro.install("3.12")
    distro.set_default("3.12")
    distro.remove("3.10")


def main(argv: list[str]) -> int:
    before = "--before-upgrade" in argv
    args = [a for a in argv if a != "--before-upgrade"]
    root = Path(args[0] if args else "/srv/demo-repair")
    distro = build(root)
    if not before:
        upgrade(distro)
    print(f"built {root}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
