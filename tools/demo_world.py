"""Build the world of the README's repair example: a distro-like prefix upgraded from
3.10 to 3.12, with venvs made before the upgrade (the same builders as the test suite).

    .dev/venv/bin/python tools/demo_world.py /srv/demo-repair
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from factory import FakeDistro, install, make_project, make_venv


def main() -> int:
    root = Path(sys.argv[1] if len(sys.argv) > 1 else "/srv/demo-repair")
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
    distro.install("3.12")
    distro.set_default("3.12")
    distro.remove("3.10")
    print(f"built {root}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
