"""The documentation: the site builds with no warning, and the generated blocks of README.md
and docs/ are what tools/update_docs.py makes now (real output of a real run for the tour)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
try:
    import update_docs
finally:
    sys.path.pop(0)


def test_the_site_builds_strict(tmp_path: Path) -> None:
    """What CI runs too (./dev.sh lint): a broken link, a missing anchor or a page left out
    of the nav is a warning, and --strict makes it fail."""
    mkdocs = Path(sys.executable).parent / "mkdocs"
    if not mkdocs.exists():
        mkdocs_cmd = shutil.which("mkdocs")
        if mkdocs_cmd is None:
            pytest.skip("mkdocs is not installed (pip install -e '.[docs]')")
        mkdocs = Path(mkdocs_cmd)
    res = subprocess.run(
        [str(mkdocs), "build", "--strict", "-d", str(tmp_path / "site")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )
    assert res.returncode == 0, res.stderr[-4000:]
    site = tmp_path / "site"
    # ARCHITECTURE.md is made a page at build time (tools/mkdocs_hooks.py)
    assert "The stages" in (site / "architecture" / "index.html").read_text()
    for page in ("scan", "predict", "repair", "restarts", "inventory", "install", "fleet"):
        assert (site / page / "index.html").is_file(), page
    for page in ("cli", "codes", "configuration", "json", "exit-codes"):
        assert (site / "reference" / page / "index.html").is_file(), page


def test_every_block_has_a_generator_and_stands_where_it_belongs() -> None:
    assert update_docs.unknown_blocks() == []
    names = {
        p.relative_to(ROOT).as_posix(): update_docs.block_names(p.read_text())
        for p in update_docs.doc_files()
    }
    assert names["docs/reference/cli.md"] == ["usage"]
    assert names["docs/reference/codes.md"] == ["codes"]
    assert names["docs/reference/configuration.md"] == ["config-keys"]
    assert names["docs/reference/json.md"] == ["json-schemas"]
    assert names["docs/scan.md"] == ["tour-scan", "tour-show"]
    assert set(names["README.md"]) == {
        "tour-predict",
        "tour-scan",
        "tour-show-short",
        "tour-repair",
        "tour-restarts",
    }
    # every tour command has its block somewhere
    everywhere = {n for found in names.values() for n in found}
    assert set(update_docs.TOUR) <= everywhere


def test_the_readme_stays_short_and_keeps_the_quick_start() -> None:
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) < 250
    assert "./dev.sh scan " in readme and "./dev.sh test " in readme
    # each link into docs/ names a page that exists
    for target in re.findall(r"\]\((docs/[^)#]+)", readme):
        assert (ROOT / target).is_file(), target


def test_the_performance_block_lives_in_the_performance_page() -> None:
    text = (ROOT / "docs" / "performance.md").read_text()
    assert text.index("<!-- perf:start -->") < text.index("<!-- perf:end -->")


def test_render_replaces_only_known_blocks() -> None:
    text = (
        "a\n<!-- generated:codes -->\nold\n<!-- /generated:codes -->\n"
        "<!-- generated:usage -->\nkept\n<!-- /generated:usage -->\n"
    )
    out = update_docs.render(text, {"codes": "new\n"})
    assert "new\n<!-- /generated:codes -->" in out and "kept\n" in out and "old" not in out


def test_shape_ignores_numbers_and_padding_only() -> None:
    a = "PID  USER\n129  root  interpreter-replaced (0.06s)\n"
    b = "PID   USER\n1234  root  interpreter-replaced (1.20s)\n"
    assert update_docs.shape(a) == update_docs.shape(b)
    assert update_docs.shape(a) != update_docs.shape(a.replace("replaced", "changed"))


def test_json_schemas_block_with_no_schema(tmp_path: Path) -> None:
    assert "No JSON Schema ships" in update_docs.schemas_block(tmp_path / "none")
    assert "No JSON Schema ships" in update_docs.schemas_block(tmp_path)


def test_json_schemas_block_renders_each_schema(tmp_path: Path) -> None:
    schemas = tmp_path / "src" / "venvkeeper" / "schemas"
    schemas.mkdir(parents=True)
    (schemas / "scan.schema.json").write_text(
        json.dumps(
            {
                "$schema": "https://json-schema.org/draft/2020-12/schema",
                "$id": "https://venvkeeper.invalid/scan.schema.json",
                "title": "scan --json",
                "description": "The document of a scan.",
                "type": "object",
                "required": ["schema_version", "venvs"],
                "properties": {
                    "schema_version": {"const": 1, "description": "the format's version"},
                    "venvs": {"type": "array", "items": {"$ref": "#/$defs/venv"}},
                    "note": {"type": ["string", "null"], "description": "a | pipe"},
                },
                "$defs": {
                    "venv": {
                        "type": "object",
                        "required": ["path"],
                        "properties": {
                            "path": {"type": "string", "description": "where it is"},
                            "status": {"enum": ["ok", "critical"]},
                            "alias": {"$ref": "#/$defs/venv"},  # recursion stops
                        },
                    }
                },
            }
        )
    )
    (schemas / "restarts.schema.json").write_text(json.dumps({"type": "object"}))
    (schemas / "not-a-schema.json").write_text("{}")
    out = update_docs.schemas_block(schemas)
    assert out.index("### restarts") < out.index("### scan --json")  # sorted by file name
    assert "not-a-schema" not in out
    assert "`src/venvkeeper/schemas/scan.schema.json`" in out
    assert "The document of a scan." in out
    rows = {m.group(1): m.group(0) for m in re.finditer(r"^\| `([^`]+)` \|.*$", out, re.M)}
    assert set(rows) == {
        "schema_version",
        "venvs",
        "note",
        "venvs[].path",
        "venvs[].status",
        "venvs[].alias",
    }
    assert "| `1` | yes | the format's version |" in rows["schema_version"]
    assert "array of object" in rows["venvs"]
    assert "string or null" in rows["note"] and "a \\| pipe" in rows["note"]
    assert '`"ok"`, `"critical"`' in rows["venvs[].status"]
    assert "| yes |" in rows["venvs[].path"]


@pytest.mark.slow
def test_the_tour_is_real_output_of_this_version() -> None:
    """The tour's blocks have the shape of a fresh run on the demo world (PIDs and times
    aside): python tools/update_docs.py regenerates them."""
    why = update_docs.tour_unavailable()
    if why:
        pytest.skip(f"the demo world cannot be built here: {why}")
    existed = Path("/srv/demo").exists()
    tour = update_docs.tour_blocks()
    assert set(tour) == {*update_docs.TOUR, "tour-show-short"}
    assert "critical  /srv/demo/worker" in tour["tour-scan"]
    assert "REPAIR FIRST" in tour["tour-restarts"]
    assert update_docs.stale(tour, update_docs.shape) == [], "run: python tools/update_docs.py"
    assert Path("/srv/demo").exists() == existed  # built in a private namespace only


def test_the_architecture_names_every_module_and_every_error_class() -> None:
    """ARCHITECTURE.md stays the map: every module of the package is named in it (the
    checks through their registry), and so is every error class with where it lives."""
    import importlib
    import pkgutil

    import venvkeeper
    from venvkeeper.checks import registry
    from venvkeeper.errors import VenvkeeperError

    doc = (ROOT / "ARCHITECTURE.md").read_text()
    src = ROOT / "src" / "venvkeeper"
    families = (getattr(registry, "CHECKS", ()), getattr(registry, "CONSUMER_CHECKS", ()))
    checks = {c.run.__module__ for family in families for c in family}
    unnamed = []
    for p in sorted(src.rglob("*.py")):
        rel = p.relative_to(src)
        module = "venvkeeper." + ".".join(rel.with_suffix("").parts)
        if p.name in ("__init__.py", "__main__.py") or module in checks:
            continue
        if f"`{p.stem}`" not in doc and str(rel) not in doc:
            unnamed.append(str(rel))
    assert not unnamed, f"ARCHITECTURE.md does not name: {unnamed}"
    for info in pkgutil.walk_packages(venvkeeper.__path__, "venvkeeper."):
        if not info.name.endswith("__main__"):
            importlib.import_module(info.name)
    classes, todo = [], [VenvkeeperError]
    while todo:
        cls = todo.pop()
        classes.append(cls)
        todo += cls.__subclasses__()
    for cls in classes:
        where = cls.__module__.removeprefix("venvkeeper.").replace(".", "/") + ".py"
        assert f"`{cls.__name__}`" in doc, f"ARCHITECTURE.md does not name {cls.__name__}"
        assert where == "errors.py" or f"`{where}`" in doc, (cls.__name__, where)
