"""gunicorn configs (``-c FILE``, ``GUNICORN_CMD_ARGS``, the default
``./gunicorn.conf.py`` in the working directory), read with :mod:`ast`: only literal
assignments at the top level (``chdir``, ``pythonpath``, ``raw_env``, ``wsgi_app``), never
run. ``pythonpath`` under a ``lib/pythonX.Y`` is a hard-code; the venv itself is the
launcher's (``VENV/bin/gunicorn``, ``VENV/bin/python -m gunicorn``), which the unit (or
supervisor program) that runs it already names."""

from __future__ import annotations

import ast
from typing import Optional

from venvkeeper.consumers.chains import Chain
from venvkeeper.consumers.refs import Classifier, Where
from venvkeeper.consumers.rootfs import RootFS, read_text, syntax
from venvkeeper.model.consumers import Activation, Confidence, Consumer, ConsumerKind, Reference
from venvkeeper.model.findings import Finding

KEYS = ("chdir", "pythonpath", "raw_env", "wsgi_app", "bind", "user")


def literals(text: str, source: str) -> tuple[dict[str, tuple[object, int]], list[Finding]]:
    """``NAME = literal`` at the top level of a Python config: {name: (value, line)}."""
    try:
        tree = ast.parse(text, filename=source)
    except (SyntaxError, ValueError, RecursionError, MemoryError) as e:
        line = getattr(e, "lineno", 0) or 0
        return {}, [syntax(source, line, f"not valid Python: {getattr(e, 'msg', e)}")]
    out: dict[str, tuple[object, int]] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target, value = node.targets[0], node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            target, value = node.target, node.value
        else:
            continue
        if not isinstance(target, ast.Name):
            continue
        try:
            out[target.id] = (ast.literal_eval(value), node.lineno)
        except (ValueError, TypeError, SyntaxError, RecursionError, MemoryError):
            out[target.id] = (None, node.lineno)  # computed: unknown
    return out, []


def read_chain(fs: RootFS, cls: Classifier, chain: Chain) -> list[Consumer]:
    """The config's references, as a consumer of its own (the gunicorn config of the unit
    or program that runs it: restarting that unit restarts it)."""
    path = chain.config
    if chain.fmt == "default" and not fs.exists(path):
        return []
    source = fs.host(path)
    text, problems = read_text(fs, path, source)
    if text is None:
        return [_consumer(source, 0, chain, [], problems)]
    values, probs = literals(text, source)
    problems += probs
    refs: list[Reference] = []
    pp = values.get("pythonpath")
    if pp is not None:
        value, line = pp
        entries = value.split(",") if isinstance(value, str) else []
        where = Where(source, line, "pythonpath")
        for entry in entries:
            r = cls.sitepkgs(
                entry.strip(),
                text=f"pythonpath = {value!r}",
                confidence=Confidence.SHELL_HEURISTIC,
                where=where,
            )
            if r is not None:
                refs.append(r)
    raw = values.get("raw_env")
    if raw is not None and isinstance(raw[0], (list, tuple)):
        env = dict(str(x).split("=", 1) for x in raw[0] if "=" in str(x))
        refs += cls.environment(
            env, where=Where(source, raw[1], "raw_env"), confidence=Confidence.SHELL_HEURISTIC
        )
    if not refs and not problems:
        return []
    return [_consumer(source, refs[0].line if refs else 0, chain, refs, problems)]


def _consumer(
    source: str, line: int, chain: Chain, refs: list[Reference], problems: list[Finding]
) -> Consumer:
    return chain.consumer(
        kind=ConsumerKind.GUNICORN,
        name=source,
        source=source,
        line=line,
        user=chain.user,
        refs=tuple(refs),
        activation=Activation.PROCESS,
        problems=tuple(problems),
    )


def config_value(text: str, key: str) -> Optional[object]:
    values, _ = literals(text, "<config>")
    got = values.get(key)
    return got[0] if got else None
