"""No module of venvkeeper uses another module's private names (issue 23, item 4).

A name that starts with one underscore is its module's own: another module that imports
it (``from venvkeeper.x import _y``) or reaches for it (``x._y``) depends on what its
author may change at will, and the two drift apart unseen. A private module
(``checks/_base.py``, ``cli/_common.py``) is its package's own: only modules of that
package import it. The rule is read from the source (``ast``), so it holds for every
module, new ones too.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

SRC = Path(__file__).resolve().parent.parent / "src"
PACKAGE = SRC / "venvkeeper"


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def _module_of(path: Path, src: Path) -> str:
    parts = list(path.relative_to(src).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _resolve(node: ast.ImportFrom, module: str, is_package: bool) -> str:
    """The absolute module an ``ImportFrom`` names (relative imports resolved)."""
    if not node.level:
        return node.module or ""
    base = module.split(".")
    if not is_package:
        base = base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _is_module(name: str, src: Path) -> bool:
    rel = src / Path(*name.split("."))
    return rel.with_suffix(".py").is_file() or (rel / "__init__.py").is_file()


def _private_module_outside(imported: str, module: str) -> bool:
    """*imported* has a private part (``venvkeeper.checks._base``) and *module* is not
    in the package that holds it."""
    parts = imported.split(".")
    for i, part in enumerate(parts):
        if _private(part):
            owner = ".".join(parts[:i])
            return not (module == owner or module.startswith(owner + "."))
    return False


def violations(path: Path, src: Path = SRC) -> Iterator[str]:
    """Each use in the file *path* (below *src*) of a private name of another venvkeeper
    module."""
    module = _module_of(path, src)
    is_package = path.name == "__init__.py"
    tree = ast.parse(path.read_bytes(), str(path))
    where = path.relative_to(src)
    aliases: dict[str, str] = {}  # a local name bound to a venvkeeper module
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                if not a.name.startswith("venvkeeper"):
                    continue
                if _private_module_outside(a.name, module):
                    yield f"{where}:{node.lineno}: import {a.name}"
                if a.asname:
                    aliases[a.asname] = a.name
        elif isinstance(node, ast.ImportFrom):
            source = _resolve(node, module, is_package)
            if not source.startswith("venvkeeper"):
                continue
            if _private_module_outside(source, module):
                yield f"{where}:{node.lineno}: from {source} import ..."
            for a in node.names:
                full = f"{source}.{a.name}"
                if _is_module(full, src):
                    if _private_module_outside(full, module):
                        yield f"{where}:{node.lineno}: from {source} import {a.name}"
                    aliases[a.asname or a.name] = full
                elif _private(a.name) and source != module:
                    yield f"{where}:{node.lineno}: from {source} import {a.name}"
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and _private(node.attr)
            and isinstance(node.value, ast.Name)
            and node.value.id in aliases
            and aliases[node.value.id] != module
        ):
            yield f"{where}:{node.lineno}: {aliases[node.value.id]}.{node.attr}"


FILES = sorted(PACKAGE.rglob("*.py"))


def test_the_rule_sees_every_kind_of_use(tmp_path: Path) -> None:
    """The checker finds each way in (so a clean tree means something): a private name
    imported, a private module imported from outside its package, one reached through a
    module, a relative import; and lets a module's own names and its package's private
    module be."""
    src = tmp_path / "src"
    pkg = src / "venvkeeper"
    for d in ("a", "b"):
        (pkg / d).mkdir(parents=True)
        (pkg / d / "__init__.py").write_text("")
    (pkg / "__init__.py").write_text("")
    (pkg / "a" / "_base.py").write_text("X = 1\n")
    (pkg / "a" / "one.py").write_text("_x = 1\n")
    (pkg / "a" / "two.py").write_text(
        "from venvkeeper.a._base import X\nfrom venvkeeper.a.two import _y\n_y = 2\n"
    )
    bad = pkg / "b" / "bad.py"
    bad.write_text(
        "from venvkeeper.a.one import _x\n"
        "from venvkeeper.a._base import X\n"
        "from ..a import one\n"
        "import venvkeeper.a.one as o\n"
        "print(one._x, o._x)\n"
    )
    assert list(violations(pkg / "a" / "two.py", src)) == []
    found = list(violations(bad, src))
    assert [f.split(": ", 1)[1] for f in found] == [
        "from venvkeeper.a.one import _x",
        "from venvkeeper.a._base import ...",
        "venvkeeper.a.one._x",
        "venvkeeper.a.one._x",
    ], found


def test_no_module_uses_another_modules_private_names() -> None:
    assert FILES, PACKAGE
    found = [v for f in FILES for v in violations(f)]
    assert not found, "private names used across modules:\n" + "\n".join(found)
