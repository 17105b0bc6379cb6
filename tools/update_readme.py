"""Regenerate the README blocks that mirror the code: the finding codes and the usage.

    python tools/update_readme.py          # rewrite README.md in place
    python tools/update_readme.py --check  # exit 1 when README.md is out of date

tests/test_cli.py runs the check, so a change to --help or to a check's codes that forgets
the README fails the suite.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"


def codes_block() -> str:
    from venvkeeper.checks.registry import all_codes

    rows = ["| code | severity | meaning |", "|---|---|---|"]
    for code, doc in sorted(all_codes().items()):
        rows.append(f"| `{code}` | {doc.severity.value} | {doc.summary} |")
    return "\n".join(rows) + "\n"


def usage_block() -> str:
    from venvkeeper.cli import build_parser

    # argparse wraps to COLUMNS; set only while the help is formatted (tests import this
    # module, and venvkeeper's own tables follow COLUMNS too)
    before = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = "100"
    try:
        parser = build_parser()
        sub = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
        parts = [parser.format_help()]
        for name, choice in sub.choices.items():  # type: ignore[attr-defined]
            if name != "codes":
                parts.append(choice.format_help())
    finally:
        if before is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = before
    return "\n".join(f"```\n{p}```\n" for p in parts)


def render(text: str) -> str:
    for name, block in (("codes", codes_block()), ("usage", usage_block())):
        text = re.sub(
            rf"(<!-- {name}:start -->\n)(.*?)(<!-- {name}:end -->)",
            lambda m, b=block: m.group(1) + b + m.group(3),  # type: ignore[misc]
            text,
            flags=re.S,
        )
    return text


def main(argv: list[str]) -> int:
    old = README.read_text()
    new = render(old)
    if "--check" in argv:
        return 0 if new == old else 1
    README.write_text(new)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
