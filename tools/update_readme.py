"""The old name of the fast half of tools/update_docs.py, kept for muscle memory.

    python tools/update_readme.py          # regenerate the blocks made from the code
    python tools/update_readme.py --check  # exit 1 when one is out of date

The usage and codes blocks moved from README.md to docs/reference/cli.md and
docs/reference/codes.md; this runs ``update_docs.py --static`` (the usage, the codes, the
configuration keys and the JSON Schemas). ``python tools/update_docs.py`` also regenerates
the tour's real output.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import update_docs

if __name__ == "__main__":
    sys.exit(update_docs.main(["--static", *sys.argv[1:]]))
