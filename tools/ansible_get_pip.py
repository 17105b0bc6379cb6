"""A stand-in for the get-pip.py bootstrap script that ansible-test downloads.

ansible-test creates each sanity test's virtual environment without pip, then runs
``~/.ansible/test/cache/get_pip_X_Y.py`` (fetched from a host outside the package registries
this project may reach) with pip's install options and the packages it wants
(``pip==24.2 setuptools==... wheel==...``, ``--no-setuptools``, ``--no-wheel``). This does the
same from what is at hand: the interpreter's own ``ensurepip``, then pip installs the
requested packages from the registry. ``./dev.sh`` (ansible_tools) copies it into that cache.
"""

from __future__ import annotations

import subprocess
import sys

DROPPED = ("--no-setuptools", "--no-wheel")


def main(argv: list[str]) -> int:
    subprocess.run(
        [sys.executable, "-m", "ensurepip", "--default-pip"], check=True, stdout=subprocess.DEVNULL
    )
    args = [a for a in argv if a not in DROPPED]
    return subprocess.run([sys.executable, "-m", "pip", "install", *args]).returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
