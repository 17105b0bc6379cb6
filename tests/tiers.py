"""The suite's tiers and its skips: which tests are ``slow``, need ``root`` or a real
``debian`` root, told from what each test uses; how they share the machine's cores
(pytest-xdist); and the count of what was skipped, checked against the list of skips
expected on CI's machine.

conftest.py registers :class:`Tiers` as a plugin. Nothing here is specific to one test: a
new test gets its markers from what it uses (docs/development.md, "Tiers"):

- ``root`` when its fixtures include ``unprivileged_user``, or when its code, its
  fixtures' code or any helper of tests/ they call skips on ``os.geteuid()`` (the
  ``if os.geteuid() != 0: pytest.skip(...)`` pattern, in one function), or calls
  ``conftest.require_root``, or when a ``skipif`` mark's reason names root;
- ``debian`` (with ``root`` and ``slow``) when any of that code uses tests/debroot.py;
- ``slow`` by hand (``@pytest.mark.slow``) for the rest that builds much or waits long.

Under xdist (``--dist loadgroup``), tests that share a module-, class- or session-scoped
fixture of their own run on one worker (the fixture is built once), and every ``debian``
test runs on one worker: two real roots at once would only fight over two cores.
"""

from __future__ import annotations

import fnmatch
import importlib
import re
import sys
import types
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, Callable, Optional

import pytest

TESTS = Path(__file__).resolve().parent
#: A per-test timeout for ``debian`` tests that set none: a first run debootstraps a root
#: and upgrades it from Debian's archive (pyproject.toml sets the default for the rest).
DEBIAN_TIMEOUT = 3600
#: The xdist group of every ``debian`` test.
DEBIAN_GROUP = "debian-roots"
#: Where the skips expected on CI's machine are listed (``--expected-skips``), between
#: these two lines, one ``- `GLOB`: why`` item each.
EXPECTED_BEGIN = "<!-- expected-skips -->"
EXPECTED_END = "<!-- /expected-skips -->"


# --- what a test uses -------------------------------------------------------------------


def _code_objects(code: types.CodeType) -> Iterator[types.CodeType]:
    yield code
    for c in code.co_consts:
        if isinstance(c, types.CodeType):
            yield from _code_objects(c)


def _ours(obj: object, tests: Path) -> bool:
    """A function or class defined in *tests* (not pytest's, not venvkeeper's)."""
    code = getattr(obj, "__code__", None)
    if code is not None:
        return Path(code.co_filename).resolve().parent == tests
    if isinstance(obj, type):
        f = getattr(sys.modules.get(getattr(obj, "__module__", "")), "__file__", None)
        return f is not None and Path(f).resolve().parent == tests
    return False


def _functions(obj: object) -> list[Callable[..., Any]]:
    """The plain functions behind *obj*: itself, a fixture's, or a class's methods."""
    wrapped = getattr(obj, "_get_wrapped_function", None)  # pytest's fixture definition
    if callable(wrapped):
        obj = wrapped()
    obj = getattr(obj, "__func__", obj)
    obj = getattr(obj, "__wrapped__", obj)
    if isinstance(obj, types.FunctionType):
        return [obj]
    if isinstance(obj, type):
        out: list[Callable[..., Any]] = []
        for v in vars(obj).values():
            if isinstance(v, property):
                v = v.fget
            v = getattr(v, "__func__", v)
            if isinstance(v, types.FunctionType):
                out.append(v)
        return out
    return []


class Uses:
    """What a function reaches through the helpers of *tests* it calls (memoized)."""

    def __init__(self, tests: Path) -> None:
        self.tests = tests
        self._memo: dict[types.CodeType, frozenset[str]] = {}

    def of(self, fn: Callable[..., Any]) -> frozenset[str]:
        code = getattr(fn, "__code__", None)
        if code is None:
            return frozenset()
        if code in self._memo:
            return self._memo[code]
        self._memo[code] = frozenset()  # a cycle adds nothing
        found: set[str] = set()
        glb: dict[str, Any] = getattr(fn, "__globals__", {})
        for co in _code_objects(code):
            names = set(co.co_names)
            if "debroot" in names:
                found.add("debian")
            if "require_root" in names or {"geteuid", "skip"} <= names:
                found.add("root")
            helpers: list[types.ModuleType] = []  # modules of tests/: M.name is followed
            for name in names:
                obj = glb.get(name)
                if obj is None:
                    obj = self._module(name)  # imported inside the function
                if obj is None or obj is fn:
                    continue
                if isinstance(obj, types.ModuleType):
                    if obj.__name__ == "debroot":
                        found.add("debian")
                    elif self._module(obj.__name__) is obj:
                        helpers.append(obj)
                    continue
                found |= self._reach(obj)
            for mod in helpers:
                for name in names:
                    attr = getattr(mod, name, None)
                    if attr is not None and not isinstance(attr, types.ModuleType):
                        found |= self._reach(attr)
        self._memo[code] = frozenset(found)
        return self._memo[code]

    def _reach(self, obj: object) -> set[str]:
        """What *obj* (a global or a helper module's attribute) brings in."""
        if getattr(obj, "__module__", None) == "debroot":
            return {"debian"}
        found: set[str] = set()
        if _ours(obj, self.tests) or _ours(
            getattr(obj, "_get_wrapped_function", lambda: None)(), self.tests
        ):
            for f in _functions(obj):
                found |= self.of(f)
        return found

    def _module(self, name: str) -> Optional[types.ModuleType]:
        """The module *name* when it is one of tests/ (imported now if need be)."""
        if "." in name or not (self.tests / f"{name}.py").is_file():
            return None
        mod = sys.modules.get(name)
        if mod is None:
            try:
                mod = importlib.import_module(name)
            except Exception:  # a helper that cannot import here marks nothing
                return None
        f = getattr(mod, "__file__", None)
        return mod if f and Path(f).resolve().parent == self.tests else None


def _fixturedefs(item: pytest.Item) -> Iterable[Any]:
    info = getattr(item, "_fixtureinfo", None)
    if info is None:
        return []
    return [defs[-1] for defs in info.name2fixturedefs.values() if defs]


def tiers_of(item: pytest.Item, uses: Uses) -> set[str]:
    """The markers *item* earns by what it uses (see the module's docstring)."""
    found: set[str] = set()
    if "unprivileged_user" in getattr(item, "fixturenames", ()):
        found.add("root")
    for mark in item.iter_markers("skipif"):  # skipif(os.geteuid() != 0, reason="... root")
        if re.search(r"\broot\b", str(mark.kwargs.get("reason", ""))):
            found.add("root")
    fns: list[Callable[..., Any]] = []
    fn = getattr(item, "function", None)
    if fn is not None:
        fns += _functions(fn)
    for fd in _fixturedefs(item):
        if _ours(fd.func, uses.tests):
            fns += _functions(fd.func)
    for f in fns:
        found |= uses.of(f)
    if "debian" in found:
        found |= {"root", "slow"}
    return found


def shared_fixtures(item: pytest.Item, tests: Path) -> list[str]:
    """The session-, package-, module- or class-scoped fixtures of *tests* (conftest's
    aside) that *item* uses, widest scope first, as ``file::name``."""
    rank = {"session": 0, "package": 1, "module": 2, "class": 3}
    found = []
    for fd in _fixturedefs(item):
        scope = getattr(fd, "scope", "function")
        if scope not in rank or not _ours(fd.func, tests):
            continue
        where = Path(fd.func.__code__.co_filename).name
        if where != "conftest.py":
            found.append((rank[scope], f"{where}::{fd.argname}"))
    return [key for _, key in sorted(found)]


# --- skips --------------------------------------------------------------------------------


def skip_reason(report: pytest.TestReport) -> str:
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        reason = str(longrepr[2])
    else:
        reason = str(longrepr)
    return reason.removeprefix("Skipped: ")


def expected_skips(path: Path) -> list[str]:
    """The globs of the expected skips listed in *path* (see :data:`EXPECTED_BEGIN`)."""
    text = path.read_text(encoding="utf-8")
    start, end = text.find(EXPECTED_BEGIN), text.find(EXPECTED_END)
    if start < 0 or end < start:
        raise pytest.UsageError(f"{path} has no {EXPECTED_BEGIN} ... {EXPECTED_END} list")
    return re.findall(r"^- `([^`]+)`", text[start:end], re.M)


def addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--expected-skips",
        metavar="FILE",
        help="fail when a test is skipped for a reason that FILE's expected-skips list does"
        " not match (./dev.sh test passes docs/development.md: CI's machine)",
    )


class Tiers:
    """The plugin: markers at collection, the skips counted at the end."""

    def __init__(self, config: pytest.Config, tests: Path = TESTS) -> None:
        self.config = config
        self.tests = tests
        self.skips: Counter[str] = Counter()
        path = config.getoption("expected_skips", None)
        self.expected_path = Path(path) if path else None
        self.expected = expected_skips(self.expected_path) if self.expected_path else None
        self.unexpected: list[str] = []

    @pytest.hookimpl(tryfirst=True)  # before xdist reads the xdist_group marks
    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        uses = Uses(self.tests)
        plugins = self.config.pluginmanager
        found = {item: tiers_of(item, uses) for item in items}
        shared = {item: shared_fixtures(item, self.tests) for item in items}
        # what a debian test shares (a built package, a root) stays with the debian tests
        with_debian = {f for item in items if "debian" in found[item] for f in shared[item]}
        for item in items:
            for name in sorted(found[item] - {m.name for m in item.iter_markers()}):
                item.add_marker(name)
            if (
                "debian" in found[item]
                and item.get_closest_marker("timeout") is None
                and plugins.hasplugin("timeout")
            ):
                item.add_marker(pytest.mark.timeout(DEBIAN_TIMEOUT))
            if item.get_closest_marker("xdist_group") is None and plugins.hasplugin("xdist"):
                if "debian" in found[item] or with_debian.intersection(shared[item]):
                    item.add_marker(pytest.mark.xdist_group(DEBIAN_GROUP))
                elif shared[item]:
                    item.add_marker(pytest.mark.xdist_group(shared[item][0]))

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.skipped and not hasattr(report, "wasxfail"):
            self.skips[skip_reason(report)] += 1

    @pytest.hookimpl(tryfirst=True)  # before the terminal summary (its reporter's wrapper)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        if self.expected is None:
            return
        self.unexpected = sorted(
            r for r in self.skips if not any(fnmatch.fnmatchcase(r, g) for g in self.expected)
        )
        if self.unexpected and session.exitstatus == pytest.ExitCode.OK:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if not self.skips and self.expected is None:
            return
        tr = terminalreporter
        tr.write_sep("-", f"{sum(self.skips.values())} skipped, by reason")
        for reason, n in sorted(self.skips.items(), key=lambda x: (-x[1], x[0])):
            tr.write_line(f"{n:4d}  {reason}")
        if self.unexpected:
            tr.write_sep("!", f"skipped, and not expected on CI's machine ({self.expected_path})")
            for r in self.unexpected:
                tr.write_line(f"{self.skips[r]:4d}  {r}")
