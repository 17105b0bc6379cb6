"""``--deep``: run a venv's own interpreter to confirm its packages import.

This is the only place venvkeeper executes code from a scanned tree, and only when the
user asked for it. It runs as the venv's owner (privileges dropped when root), with a
minimal environment (no PYTHONPATH, no PYTHONHOME, nothing inherited), ``-E -s`` (ignore
PYTHON* variables and the user site), in ``/`` as working directory, under a timeout.
"""

from __future__ import annotations

import json
import os
import pwd
from collections.abc import Iterable
from typing import Optional

from venvkeeper.checks._base import BOOTSTRAP
from venvkeeper.errors import CommandError
from venvkeeper.host import command, fsutil
from venvkeeper.model.venv import DeepResult, Distribution, VenvFacts
from venvkeeper.textutil import canonical_name

MAX_MODULES = 500


# Runs inside the scanned venv: must work on Python 2.7 to 3.13. Module names come on stdin.
_PROBE = r"""
import sys, json, os
mods = json.loads(sys.stdin.read())
failed = []
for m in mods:
    try:
        __import__(m)
    except BaseException as e:
        failed.append([m, (type(e).__name__ + ": " + str(e))[:200]])
sys.stdout.write("\n@@venvkeeper@@" + json.dumps({
    "version": "%d.%d.%d" % tuple(sys.version_info[:3]),
    "prefix": sys.prefix,
    "uid": os.getuid(),
    "failed": failed,
}))
"""


def importable_names(
    dists: Iterable[Distribution], leave_out: Iterable[str] = (), limit: int = MAX_MODULES
) -> list[str]:
    """The public top-level module names of *dists*, in order, without duplicates. pip,
    setuptools and wheel are left out: they patch distutils on import and trip over each
    other in one process, and they are not what a venv is for."""
    skip = {canonical_name(n) for n in leave_out} | set(BOOTSTRAP)
    names: dict[str, None] = {}
    for d in dists:
        if canonical_name(d.name) in skip:
            continue
        for t in d.top_level:
            if t.isidentifier() and not t.startswith("_"):
                names[t] = None
    return list(names)[:limit]


def _modules(facts: VenvFacts) -> tuple[list[str], dict[str, str]]:
    """The modules to probe: those of every site-packages directory of the venv, the ones
    its interpreter does not see too (a venv made on 3.11 and now run by 3.12 keeps its
    packages in ``lib/python3.11``: that they fail to import is what ``--deep`` must
    confirm). Also: the modules found only in another minor's directory, with that minor,
    to say why their import fails."""
    version = facts.base.version if facts.base is not None else None
    seen = set(
        importable_names(
            d
            for s in facts.site_dirs
            if version is None or s.python_version == version
            for d in s.distributions
        )
    )
    elsewhere: dict[str, str] = {}
    for s in facts.site_dirs:
        if version is not None and s.python_version != version:
            for m in importable_names(s.distributions):
                if m not in seen:
                    elsewhere.setdefault(m, s.python_version or "?")
    names = importable_names(d for s in facts.site_dirs for d in s.distributions)
    return names, elsewhere


def run_deep(facts: VenvFacts, timeout: float = 30.0) -> DeepResult:
    """Start ``bin/python`` of the venv and import every top-level module of its packages."""
    python = f"{facts.path}/bin/python"
    if not os.path.lexists(python):
        python = f"{facts.path}/bin/python3"
    if not os.path.lexists(python):
        return DeepResult(ran=False, error="no bin/python to run")
    owner = facts.owner_uid
    me = os.geteuid()
    user: Optional[int] = None
    group: Optional[int] = None
    home = "/"
    try:
        pw = pwd.getpwuid(owner)
        home = pw.pw_dir
        group = pw.pw_gid
    except KeyError:
        group = owner
    if me == 0 and owner != 0:
        user = owner
    elif me != owner and me != 0:
        return DeepResult(ran=False, error=f"not run: the venv belongs to uid {owner}, not to you")
    env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": home}
    modules, elsewhere = _modules(facts)
    argv = [python, "-E", "-s", "-c", _PROBE]
    if facts.root is not None:
        # Another OS root: its interpreter runs there (chroot), as the venv's owner.
        if me != 0:
            return DeepResult(
                ran=False,
                error=f"inside the OS root {facts.root}: its interpreter runs there through"
                " chroot, which needs root",
            )
        from venvkeeper.host.osroots import chroot_argv

        inner = facts.path_in_root + python[len(facts.path) :]
        try:
            argv = chroot_argv(facts.root, [inner, *argv[1:]], owner, group)
        except OSError as e:
            return DeepResult(ran=False, error=str(e))
        user = group = None  # chroot changes the user, after it changed the root
        env["HOME"] = "/"
    try:
        done = command.run(
            argv,
            timeout=timeout,
            env=env,
            cwd="/",
            user=user,
            group=group if user is not None else None,
            input=json.dumps(modules),
        )
    except CommandError as e:
        return DeepResult(ran=True, error=str(e))
    marker = done.stdout.rfind("@@venvkeeper@@")
    if done.returncode != 0 or marker < 0:
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return DeepResult(ran=True, error=f"exit {done.returncode}: {tail[:300]}")
    try:
        data = fsutil.load_json(done.stdout[marker + len("@@venvkeeper@@") :])
        if not isinstance(data, dict):
            raise TypeError("not an object")
        failed = tuple(
            f"{m} ({why}"
            + (f"; installed for Python {elsewhere[m]} only" if m in elsewhere else "")
            + ")"
            for m, why in data.get("failed", [])
        )
        uid = data.get("uid")
        return DeepResult(
            ran=True,
            version=str(data.get("version")),
            failed_imports=failed,
            uid=uid if isinstance(uid, int) else None,
        )
    except (ValueError, TypeError) as e:
        return DeepResult(ran=True, error=f"unreadable probe output: {e}")
