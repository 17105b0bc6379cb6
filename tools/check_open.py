"""Lint: every file venvkeeper reads in ``src/`` goes through ``venvkeeper.host.fsutil``.

A bare ``open()`` (or ``io.open``, ``Path.open``, ``.read_text()``, ``.read_bytes()``,
``gzip.open`` ...) of a path in a tree another user controls can block on a FIFO, follow a
link planted there or read without bound (docs/safety.md, "Files in trees others
control"). ``fsutil.open_regular``, ``read_bytes``, ``read_file``, ``read_head`` and, for the
kernel's files, ``read_open`` are the ways in. The few reads that are neither (venvkeeper's
own files) are listed in :data:`ALLOWED` with the reason; an entry that no longer matches
is reported too, so the list stays exact.

    python tools/check_open.py [--src DIR]   # exit 1 and one line per finding

``./dev.sh lint`` runs it; tests/test_hygiene.py plants a bare ``open()`` and checks that
it fails.
"""

from __future__ import annotations

import argparse
import ast
import sys
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SRC = ROOT / "src" / "venvkeeper"

#: (file relative to the package, the function holding the call) -> why it may read so.
ALLOWED: dict[tuple[str, str], str] = {
    ("formats/envelope.py", "schema"): "venvkeeper's own JSON Schemas, inside its package",
}

#: Attribute calls that open or read a path whatever the object (Path.open, gzip.open...).
_READERS = {"open", "read_text", "read_bytes"}
#: Objects whose such attributes are the careful ways in (os.open: a descriptor, the
#: flags are the caller's own and read with fsutil; fsutil: the reads this lint asks for).
_CAREFUL = {"os", "fsutil"}


class _Finder(ast.NodeVisitor):
    def __init__(self) -> None:
        self.scope: list[str] = []
        self.found: list[tuple[int, str, str]] = []  # (line, function, call)

    def _scoped(self, node: ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) -> None:
        self.scope.append(node.name)
        self.generic_visit(node)
        self.scope.pop()

    visit_FunctionDef = visit_AsyncFunctionDef = visit_ClassDef = _scoped

    def visit_Call(self, node: ast.Call) -> None:
        f = node.func
        call = None
        if isinstance(f, ast.Name) and f.id == "open":
            call = "open()"
        elif isinstance(f, ast.Attribute) and f.attr in _READERS:
            owner = f.value.id if isinstance(f.value, ast.Name) else None
            if owner not in _CAREFUL:
                call = f"{owner or '...'}.{f.attr}()"
        if call is not None:
            self.found.append((node.lineno, ".".join(self.scope) or "<module>", call))
        self.generic_visit(node)


def findings(src: Path) -> Iterator[tuple[str, int, str, str]]:
    """(file, line, function, call) of each bare read under *src*."""
    for path in sorted(src.rglob("*.py")):
        rel = path.relative_to(src).as_posix()
        finder = _Finder()
        finder.visit(ast.parse(path.read_bytes(), str(path)))
        for line, function, call in finder.found:
            yield rel, line, function, call


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--src", type=Path, default=SRC, help="the package to check")
    args = parser.parse_args(argv)
    problems: list[str] = []
    used: set[tuple[str, str]] = set()
    for rel, line, function, call in findings(args.src):
        key = (rel, function.split(".")[-1])
        if key in ALLOWED:
            used.add(key)
            continue
        problems.append(
            f"{args.src / rel}:{line}: {call} in {function}: a bare read of a path; use"
            " venvkeeper.host.fsutil (open_regular, read_bytes, read_file, read_head;"
            " read_open for /proc), or allow it in tools/check_open.py with the reason"
        )
    if args.src.resolve() == SRC.resolve():
        for key in sorted(set(ALLOWED) - used):
            problems.append(f"tools/check_open.py: ALLOWED {key} matches nothing: remove it")
    for p in problems:
        print(p)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
