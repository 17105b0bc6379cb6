"""Write the apt hooks' configuration (what ``venvkeeper install-apt-hooks`` writes) for a
given venvkeeper path, without installing it: Debian's package ships it as the conffile
/etc/apt/apt.conf.d/80venvkeeper (debian/rules).

    PYTHONPATH=src python3 tools/apt_conf.py /usr/bin/venvkeeper > 80venvkeeper

The hook lines are ``render_conf``'s own; only its first comment line, which tells how
``install-apt-hooks`` removes its file, is replaced by how the package's file goes.
"""

from __future__ import annotations

import sys

from venvkeeper.apt.hook import render_conf

HEADER = (
    "// Installed by the venvkeeper package (a conffile): removed when the package is purged."
    "\n// Each hook does nothing when {exe} is gone, and lets apt go on whatever happens.\n"
)


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        sys.stderr.write("usage: apt_conf.py /ABSOLUTE/PATH/TO/venvkeeper\n")
        return 2
    text = render_conf(argv[0])
    first, _, rest = text.partition("\n")
    if first.startswith("// Written by `venvkeeper install-apt-hooks`"):
        text = HEADER.format(exe=argv[0]) + rest
    sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
