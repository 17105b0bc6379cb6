"""Regenerate the blocks of README.md and docs/ that mirror the code or show its real output.

    python tools/update_docs.py            # rewrite every block (the tour needs root: below)
    python tools/update_docs.py --static   # only the blocks made from the code (fast)
    python tools/update_docs.py --check    # exit 1 when a block is out of date (--static too)

A block is the text between ``<!-- generated:NAME -->`` and ``<!-- /generated:NAME -->`` in
README.md or any ``docs/**/*.md``; one NAME may stand in several files. Run it with the
tree's own sources first on the path (``PYTHONPATH=src``) and the dev venv's Python.

Static blocks, made from the code's own registries:
- ``usage``: every command's ``--help`` (docs/reference/cli.md);
- ``codes``: ``venvkeeper.checks.registry.all_codes()`` (docs/reference/codes.md);
- ``config-keys``: ``venvkeeper.config.KEYS`` (docs/reference/configuration.md);
- ``json-schemas``: every ``src/venvkeeper/schemas/*.schema.json`` (docs/reference/json.md).

Tour blocks (``tour-*``): the real output of venvkeeper on the world of tools/demo_world.py,
built at /srv/demo inside private mount, PID and cgroup namespaces (``unshare``, as root,
with CPython 3.10 and 3.12 from pyenv): the world vanishes with them, the host is left as it
was, and ``restarts`` sees only the demo's own processes. What uses the demo's venvs (a
unit with a drop-in, a cron job) is written over empty tmpfs mounts of ``/etc/systemd/system``
and ``/etc/cron.d`` in the same namespace. Their check compares the shape
(numbers such as PIDs and times, and column padding, aside), since those change every run.

tests/test_docs.py runs the checks, so a change to --help, a finding code, a configuration
key, a schema or an output that forgets the docs fails the suite.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable, Optional

ROOT = Path(__file__).resolve().parent.parent
DEMO = "/srv/demo"

_BLOCK = re.compile(r"(<!-- generated:([a-z0-9-]+) -->\n)(.*?)(<!-- /generated:\2 -->)", re.S)


# --- static blocks ---------------------------------------------------------------------


def codes_block() -> str:
    from venvkeeper.checks.registry import all_codes

    rows = ["| code | severity | meaning |", "|---|---|---|"]
    for code, doc in sorted(all_codes().items()):
        rows.append(f"| `{code}` | {doc.severity.value} | {_cell(doc.summary)} |")
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


def config_keys_block() -> str:
    from venvkeeper.config import KEYS

    rows = ["| key | type | meaning |", "|---|---|---|"]
    for k in KEYS:
        name = f"`{k.name}`" if k.table is None else f"`[{k.table}] {k.name}`"
        rows.append(f"| {name} | {k.type} | {_cell(k.meaning)} |")
    return "\n".join(rows) + "\n"


def schemas_block(directory: Optional[Path] = None) -> str:
    """Every ``*.schema.json`` of *directory* (default: those of the venvkeeper that is
    imported, the checkout's or an installed one), each as a heading, its description and a
    table of its fields (nested objects and arrays of objects flattened to dotted paths)."""
    if directory is None:
        import venvkeeper

        directory = Path(venvkeeper.__file__).resolve().parent / "schemas"
    files = sorted(directory.glob("*.schema.json")) if directory.is_dir() else []
    if not files:
        return (
            "No JSON Schema ships with this version yet: the documents are described"
            " above. When `src/venvkeeper/schemas/*.schema.json` exist, `python"
            " tools/update_docs.py` renders each here.\n"
        )
    out: list[str] = []
    for f in files:
        schema = json.loads(f.read_text())
        title = schema.get("title") or f.name.removesuffix(".schema.json")
        out.append(f"### {title}\n")
        out.append(f"`src/venvkeeper/schemas/{f.name}`")
        if "$id" in schema:
            out[-1] += f" (`$id`: `{schema['$id']}`)"
        out[-1] += "\n"
        if schema.get("description"):
            out.append(schema["description"].strip() + "\n")
        rows = list(_fields(schema, schema, "", set()))
        if rows:
            out.append("| field | type | required | meaning |\n|---|---|---|---|")
            out.extend(
                f"| `{path}` | {_cell(kind)} | {'yes' if req else ''} | {_cell(desc)} |"
                for path, kind, req, desc in rows
            )
            out.append("")
    return "\n".join(out)


def _resolve(node: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    ref = node.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/"):
        target: Any = schema
        for part in ref[2:].split("/"):
            target = target.get(part, {}) if isinstance(target, dict) else {}
        if isinstance(target, dict):
            merged = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
            merged["__ref__"] = ref.rsplit("/", 1)[-1]
            return merged
    return node


def _kind(node: dict[str, Any], schema: dict[str, Any]) -> str:
    node = _resolve(node, schema)
    if "const" in node:
        return f"`{json.dumps(node['const'])}`"
    if "enum" in node:
        return "one of " + ", ".join(f"`{json.dumps(v)}`" for v in node["enum"])
    for key in ("oneOf", "anyOf"):
        if key in node:
            return " or ".join(_kind(n, schema) for n in node[key] if isinstance(n, dict))
    t = node.get("type", node.get("__ref__", "any"))
    kind = " or ".join(t) if isinstance(t, list) else str(t)
    items = node.get("items")
    if "array" in kind and isinstance(items, dict):
        kind = kind.replace("array", f"array of {_kind(items, schema)}")
    return kind


def _fields(node: dict[str, Any], schema: dict[str, Any], prefix: str, seen: set[str]) -> Any:
    """(path, type, required, description) of every property under *node*."""
    node = _resolve(node, schema)
    ref = node.get("__ref__")
    if ref in seen:
        return
    seen = seen | {ref} if ref else seen
    required = set(node.get("required", ()))
    for name, child in (node.get("properties") or {}).items():
        if not isinstance(child, dict):
            continue
        child = _resolve(child, schema)
        path = f"{prefix}{name}"
        yield path, _kind(child, schema), name in required, child.get("description", "")
        items = child.get("items")
        if isinstance(items, dict):
            yield from _fields(items, schema, f"{path}[].", seen)
        elif "properties" in child:
            yield from _fields(child, schema, f"{path}.", seen)


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


STATIC: dict[str, Callable[[], str]] = {
    "usage": usage_block,
    "codes": codes_block,
    "config-keys": config_keys_block,
    "json-schemas": schemas_block,
}


# --- the tour on the demo world --------------------------------------------------------

#: Each tour block: the command lines shown (``venvkeeper`` standing for this tree's).
#: ``predict`` runs before the upgrade, the others after it.
TOUR: dict[str, list[list[str]]] = {
    "tour-predict": [
        [
            "predict",
            DEMO,
            "--python-becomes",
            f"{DEMO}/usr/bin/python3=3.12",
            "--remove",
            f"{DEMO}/usr/bin/python3.10",
            "--remove",
            f"{DEMO}/usr/lib/python3.10",
        ]
    ],
    "tour-scan": [["scan", DEMO]],
    "tour-show": [["show", f"{DEMO}/app"]],
    "tour-repair": [["repair", "--dry-run", "--all", DEMO]],
    "tour-restarts": [["restarts"]],
}

#: Private mount, PID (with its own /proc) and cgroup namespaces: what the tour mounts and
#: starts vanishes with it, and restarts sees only its processes, outside any unit.
_UNSHARE = [
    "unshare",
    "--mount",
    "--propagation",
    "private",
    "--pid",
    "--fork",
    "--mount-proc",
    "--cgroup",
]

_SERVER = "import time\nimport alpha\n\nwhile True:\n    time.sleep(60)\n"
#: What uses the demo's venvs (written over empty tmpfs mounts of these directories, in the
#: tour's private mount namespace): a service, its drop-in with a hard-coded minor, a job.
_CONSUMER_DIRS = ("/etc/systemd/system", "/etc/cron.d")
_CONSUMERS = {
    "/etc/systemd/system/demo-app.service": (
        f"[Service]\nExecStart={DEMO}/app/bin/python /srv/serve.py\n"
        "[Install]\nWantedBy=multi-user.target\n"
    ),
    "/etc/systemd/system/demo-app.service.d/path.conf": (
        f"[Service]\nEnvironment=PYTHONPATH={DEMO}/app/lib/python3.10/site-packages\n"
    ),
    "/etc/cron.d/demo-batch": f"15 3 * * * root {DEMO}/batch/bin/python -m gamma\n",
}
_CONSUMER_LINKS = {
    "/etc/systemd/system/multi-user.target.wants/demo-app.service": (
        "/etc/systemd/system/demo-app.service"
    ),
}


def _shown(argv: list[str]) -> str:
    """The command line as the docs show it, wrapped like a shell's at about 90 columns."""
    words = ["venvkeeper", *argv]
    lines, line = [], "$"
    for w in words:
        if len(line) + 1 + len(w) > 88 and line != "$":
            lines.append(line + " \\")
            line = "   "
        line += " " + w
    return "\n".join([*lines, line])


def _run_tour_inside() -> dict[str, str]:
    """In the namespaces: build the world, run the tour, return each block's text."""
    sys.path.insert(0, str(ROOT / "tools"))
    import demo_world

    subprocess.run(["mount", "-t", "tmpfs", "-o", "mode=755", "tmpfs", "/srv"], check=True)
    env = {
        "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin",
        "PYTHONPATH": str(ROOT / "src"),
        "LANG": "C.UTF-8",
        "HOME": "/srv",
        "COLUMNS": "200",
        "VENVKEEPER_CONFIG": os.devnull,
        "VENVKEEPER_DB": "/srv/inventory.db",
    }

    def run(argv: list[str]) -> str:
        res = subprocess.run(
            [sys.executable, "-m", "venvkeeper", *argv],
            capture_output=True,
            text=True,
            env=env,
            cwd="/",
            timeout=300,
        )
        if res.returncode not in (0, 1, 2):
            raise RuntimeError(f"venvkeeper {argv} failed ({res.returncode}): {res.stderr}")
        return f"{_shown(argv)}\n{res.stdout.rstrip()}\n"

    for d in _CONSUMER_DIRS:
        subprocess.run(["mount", "-t", "tmpfs", "-o", "mode=755", "tmpfs", d], check=True)
    for path, text in _CONSUMERS.items():
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(text)
    for path, target in _CONSUMER_LINKS.items():
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).symlink_to(target)
    root = Path(DEMO)
    distro = demo_world.build(root)
    server = Path("/srv/serve.py")
    server.write_text(_SERVER)
    proc = subprocess.Popen([str(root / "app" / "bin" / "python"), str(server)], env=env, cwd="/")
    try:
        out = {"tour-predict": "".join(run(a) for a in TOUR["tour-predict"])}
        demo_world.upgrade(distro)
        for name, commands in TOUR.items():
            if name != "tour-predict":
                out[name] = "".join(run(a) for a in commands)
    finally:
        proc.kill()
        proc.wait()
    # The README's short form: the verdict and the interpreter, the rest cut.
    show = out["tour-show"].splitlines()
    out["tour-show-short"] = "\n".join([*show[: show.index("interpreter links:")], "..."]) + "\n"
    return {name: f"```\n{text}```\n" for name, text in out.items()}


def tour_blocks() -> dict[str, str]:
    """The tour blocks, from a run in private namespaces (see the module's docstring)."""
    why = tour_unavailable()
    if why:
        raise RuntimeError(f"cannot run the tour: {why}")
    res = subprocess.run(
        [*_UNSHARE, sys.executable, __file__, "--tour-inside"],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT / "src")},
        timeout=900,
    )
    if res.returncode != 0:
        raise RuntimeError(f"the tour failed ({res.returncode}):\n{res.stderr[-3000:]}")
    blocks: dict[str, str] = json.loads(res.stdout)
    return blocks


def tour_unavailable() -> Optional[str]:
    """Why the tour cannot run here, or None."""
    if os.geteuid() != 0 or not shutil.which("unshare") or not shutil.which("mount"):
        return "it needs root, unshare and mount (private namespaces)"
    if not Path("/srv").is_dir():
        return "it builds the world at /srv/demo (in a private mount), and /srv does not exist"
    probe = subprocess.run(
        [*_UNSHARE, "sh", "-c", "mount -t tmpfs tmpfs /srv"], capture_output=True, timeout=60
    )
    if probe.returncode != 0:
        return f"private namespaces are not allowed here: {probe.stderr.decode().strip()}"
    sys.path.insert(0, str(ROOT / "tests"))
    try:
        from factory import FakeDistro
    finally:
        sys.path.pop(0)
    missing = [m for m in ("3.10", "3.12") if not FakeDistro.available(m)]
    if missing:
        return f"it needs CPython {' and '.join(missing)} from pyenv"
    return None


# --- the files -------------------------------------------------------------------------


def doc_files() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


def block_names(text: str) -> list[str]:
    return [m.group(2) for m in _BLOCK.finditer(text)]


def render(text: str, blocks: dict[str, str]) -> str:
    """*text* with each block whose NAME is in *blocks* replaced; others are kept."""

    def sub(m: re.Match[str]) -> str:
        body = blocks.get(m.group(2))
        return m.group(0) if body is None else m.group(1) + body + m.group(4)

    return _BLOCK.sub(sub, text)


def shape(text: str) -> str:
    """A block's text without what changes from run to run: numbers and padding."""
    return re.sub(r"[ \t]+", " ", re.sub(r"\d+", "N", text))


def stale(blocks: dict[str, str], compare: Callable[[str], str] = lambda s: s) -> list[str]:
    """``FILE: NAME`` of every block whose text differs from *blocks* (after *compare*)."""
    out = []
    for path in doc_files():
        text = path.read_text()
        for m in _BLOCK.finditer(text):
            name = m.group(2)
            if name in blocks and compare(m.group(3)) != compare(blocks[name]):
                out.append(f"{path.relative_to(ROOT)}: {name}")
    return out


def unknown_blocks() -> list[str]:
    """Blocks that no generator makes (a typo in a marker)."""
    known = set(STATIC) | set(TOUR) | {"tour-show-short"}
    return [
        f"{p.relative_to(ROOT)}: {n}"
        for p in doc_files()
        for n in block_names(p.read_text())
        if n not in known
    ]


def write(
    blocks: dict[str, str], keep: Callable[[str, str], bool] = lambda old, new: False
) -> list[Path]:
    """Write *blocks* into every file; a block for which ``keep(old, new)`` holds stays."""
    changed = []
    for path in doc_files():
        old = path.read_text()
        current = {m.group(2): m.group(3) for m in _BLOCK.finditer(old)}
        new = render(
            old,
            {n: b for n, b in blocks.items() if not (n in current and keep(current[n], b))},
        )
        if new != old:
            path.write_text(new)
            changed.append(path)
    return changed


def main(argv: list[str]) -> int:
    if "--tour-inside" in argv:
        print(json.dumps(_run_tour_inside()))
        return 0
    static_only = "--static" in argv
    problems = unknown_blocks()
    if problems:
        print("unknown generated blocks: " + ", ".join(problems), file=sys.stderr)
        return 1
    static = {name: make() for name, make in STATIC.items()}
    tour: dict[str, str] = {}
    if not static_only:
        why = tour_unavailable()
        if why:
            print(f"update_docs: the tour blocks are left as they are: {why}", file=sys.stderr)
        else:
            tour = tour_blocks()
    if "--check" in argv:
        out = stale(static) + stale(tour, shape)
        for line in out:
            print(f"out of date: {line}", file=sys.stderr)
        if out:
            print("run: python tools/update_docs.py", file=sys.stderr)
        return 1 if out else 0
    # A tour block of the same shape stays: its PIDs and times alone would churn each run.
    changed = write(static) + write(tour, keep=lambda old, new: shape(old) == shape(new))
    for path in dict.fromkeys(changed):
        print(f"updated {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
