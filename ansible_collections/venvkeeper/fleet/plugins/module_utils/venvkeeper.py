# Copyright (c) 2026 The venvkeeper authors
# MIT License (see LICENSE in the venvkeeper repository)
"""Run the ``venvkeeper`` command on the target and read its JSON.

The modules never import venvkeeper: the judgement is the command's, run as a program, so
the interpreter that runs a module may be the very one an upgrade replaces. This file uses
the standard library and Ansible's module API only.

venvkeeper's exit codes are a contract: 0 ok, 1 warning, 2 critical are verdicts (the JSON
tells the rest), 3 is a usage or internal error (its message is on stderr, one line), 130
an interrupt. Anything but a verdict fails the task with venvkeeper's own message.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os

#: Where venvkeeper is looked for after PATH (the Debian package's place).
FALLBACK = "/usr/bin/venvkeeper"
#: The JSON schema this collection reads; a newer one is refused.
SCHEMA_VERSION = 2
VERDICTS = (0, 1, 2)
VERDICT_NAMES = {0: "ok", 1: "warning", 2: "critical"}

#: Options shared by every module (merged into each module's argument_spec).
COMMON_ARGS = dict(
    executable=dict(type="path"),
)
#: Options of the commands that walk roots (scan, predict, plan, wheelhouse).
SCAN_ARGS = dict(
    roots=dict(type="list", elements="path", default=[]),
    exclude=dict(type="list", elements="str", default=[]),
    include_network=dict(type="bool", default=False),
)
#: The planned change (predict, plan, wheelhouse).
CHANGE_ARGS = dict(
    python_becomes=dict(type="list", elements="str", default=[]),
    remove=dict(type="list", elements="path", default=[]),
    remove_package=dict(type="list", elements="str", default=[]),
    host_profile=dict(type="raw"),
)


def spec(*parts):
    """One argument_spec from several dicts (copied: a module may change its own)."""
    out = {}
    for part in parts:
        for key, value in part.items():
            out[key] = dict(value)
    return out


class Venvkeeper(object):
    """The venvkeeper command on this target, for one module run."""

    def __init__(self, module):
        self.module = module
        self.path = self._find(module.params.get("executable"))
        self.commands = []

    def _find(self, wanted):
        module = self.module
        if wanted:
            if os.path.isfile(wanted) and os.access(wanted, os.X_OK):
                return wanted
            why = "does not exist" if not os.path.lexists(wanted) else "is not an executable file"
            module.fail_json(msg="venvkeeper not found on the target: %s %s" % (wanted, why))
        found = module.get_bin_path("venvkeeper")
        if found:
            return found
        if os.path.isfile(FALLBACK) and os.access(FALLBACK, os.X_OK):
            return FALLBACK
        path = os.environ.get("PATH", "")
        module.fail_json(
            msg="venvkeeper not found on the target: not on PATH (%s) nor at %s; install the "
            "venvkeeper package, or name it with the executable option" % (path, FALLBACK)
        )
        return None  # not reached: fail_json exits

    def run(self, args, data=None):
        """(rc, stdout, stderr) of ``venvkeeper ARGS``; fails the task unless rc is a verdict."""
        argv = [self.path] + list(args)
        self.commands.append(argv)
        rc, out, err = self.module.run_command(
            argv,
            check_rc=False,
            data=data,
            environ_update={"LC_ALL": "C.UTF-8", "PYTHONDONTWRITEBYTECODE": "1"},
        )
        if rc not in VERDICTS:
            self.fail(argv, rc, out, err)
        return rc, out, err

    def run_json(self, args, kind=None):
        """(rc, document) of ``venvkeeper ARGS --json``. *kind*: the document's kind, or a
        tuple of the kinds accepted (a kind's older name, from schema_version 1)."""
        args = list(args)
        rc, out, err = self.run(args[:1] + ["--json"] + args[1:])
        try:
            doc = json.loads(out)
        except ValueError as e:
            self.module.fail_json(
                msg="venvkeeper %s printed no JSON document (%s): %s"
                % (args[0], e, _last_line(err) or _last_line(out) or "no output"),
                rc=rc,
                stdout=out,
                stderr=err,
                cmd=self.commands[-1],
            )
        if not isinstance(doc, dict):
            self.module.fail_json(
                msg="venvkeeper %s printed JSON that is not an object" % args[0], rc=rc, stdout=out
            )
        version = doc.get("schema_version")
        if isinstance(version, int) and version > SCHEMA_VERSION:
            self.module.fail_json(
                msg="venvkeeper %s printed schema_version %d; this collection reads %d: "
                "upgrade the venvkeeper.fleet collection" % (args[0], version, SCHEMA_VERSION),
                rc=rc,
            )
        kinds = (kind,) if isinstance(kind, str) else kind
        if kinds is not None and doc.get("kind") not in kinds:
            self.module.fail_json(
                msg="venvkeeper %s printed a %r document, not %r"
                % (args[0], doc.get("kind"), kinds[0]),
                rc=rc,
            )
        return rc, doc

    def fail(self, argv, rc, out, err):
        line = _last_line(err) or _last_line(out) or "no message"
        if rc == 3:
            what = "usage or internal error"
        elif rc == 130:
            what = "interrupted"
        elif rc is not None and rc < 0:
            what = "killed by signal %d" % -rc
        else:
            what = "unexpected exit status"
        self.module.fail_json(
            msg="%s failed (exit %s, %s): %s" % (" ".join(argv[:2]), rc, what, line),
            rc=rc,
            stdout=out,
            stderr=err,
            cmd=argv,
        )

    def profile_file(self, profile):
        """The path of a host profile: a path given as is, a dict written to a private file."""
        if profile is None:
            return None
        if isinstance(profile, dict):
            path = os.path.join(self.module.tmpdir, "host-profile.json")
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as f:
                json.dump(profile, f)
            return path
        if isinstance(profile, str):
            return profile
        self.module.fail_json(
            msg="host_profile must be a path on the target or a profile (a dict, e.g. "
            "hostvars[HOST].ansible_facts.venvkeeper.host_profile), not %s" % type(profile).__name__
        )
        return None


def scan_args(params):
    """The scan options as venvkeeper arguments (roots last)."""
    args = []
    for glob in params.get("exclude") or []:
        args += ["--exclude", glob]
    if params.get("include_network"):
        args.append("--include-network")
    return args


def change_args(vk, params):
    args = []
    for value in params.get("python_becomes") or []:
        args += ["--python-becomes", value]
    for path in params.get("remove") or []:
        args += ["--remove", path]
    for name in params.get("remove_package") or []:
        args += ["--remove-package", name]
    profile = vk.profile_file(params.get("host_profile"))
    if profile is not None:
        args += ["--host-profile", profile]
    return args


def roots(params):
    """The roots as arguments after ``--`` (a root named like an option stays a root)."""
    given = params.get("roots") or []
    return ["--"] + list(given) if given else []


def restart_units(restarts, still_broken=()):
    """(system units, [user, unit] pairs, units held back) to restart after a repair.

    venvkeeper already holds back a unit with a process whose venv is broken now; this
    also holds back a unit with a process in any venv of *still_broken* (a repair that
    failed or was refused), so a handler never restarts a service into a broken venv.
    """
    broken = set(still_broken)
    held = list((restarts.get("units") or {}).get("repair_first") or [])
    for proc in restarts.get("processes") or []:
        unit = proc.get("unit")
        if unit and (proc.get("restart_fails") or proc.get("venv") in broken):
            if unit not in held:
                held.append(unit)
    units = (restarts.get("units") or {}).get("restart") or []
    user = (restarts.get("units") or {}).get("restart_user") or []
    system = [u for u in units if u not in held]
    users = [list(pair) for pair in user if len(pair) == 2 and pair[1] not in held]
    return system, users, held


def consumer_units(actions):
    """(system units to restart, [user, unit] pairs, units held back, units restarted) from
    the ``consumers`` actions of ``venvkeeper repair --json``: what runs from the repaired
    venvs, as venvkeeper judged it (a unit whose venv still fails, or whose files another
    user can change, is held back; a user's unit is named, for its user)."""
    system, users, held, done = [], [], [], []
    for a in actions or []:
        unit = a.get("unit")
        if a.get("kind") != "restart" or not unit:
            continue
        outcome = a.get("outcome")
        if outcome in ("printed", "planned"):
            target = system
        elif outcome == "named":
            pair = [a.get("user"), unit]
            if pair not in users:
                users.append(pair)
            continue
        elif outcome in ("held", "refused", "failed"):
            target = held
        elif outcome == "done":
            target = done
        else:
            continue
        if unit not in target:
            target.append(unit)
    system = [u for u in system if u not in held]
    return system, users, held, done


def _last_line(text):
    lines = [ln for ln in (text or "").splitlines() if ln.strip()]
    return lines[-1].strip() if lines else ""
