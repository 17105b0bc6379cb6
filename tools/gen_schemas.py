"""Write the JSON Schema (draft 2020-12) of every kind of venvkeeper JSON document.

    python tools/gen_schemas.py          # rewrite src/venvkeeper/schemas/*.schema.json
    python tools/gen_schemas.py --check  # exit 1 when a schema file is out of date
    python tools/gen_schemas.py --reference  # every kind's fields, as Markdown tables

The schemas are written here, by hand, as Python values rather than generated from the
model's dataclasses: the documents are not the dataclasses (the renderers in
``venvkeeper/formats/`` rename, flatten, drop and derive fields), so a generator would
describe the wrong thing. Writing them in Python gives one definition of each shared piece
(a finding, a venv, a plan, a scan of the inventory) and takes every enum's values from
its enum in ``venvkeeper.model``, so an added member cannot be forgotten. The files are
shipped in the package (``venvkeeper.formats.envelope.schema(kind)`` reads them) and
tests/test_json_schemas.py checks that they are what this writes, that they are valid
draft 2020-12, and that every command's real output validates against its kind's schema.

The schemas leave every object open (unknown fields are allowed: adding a field does not
raise the schema version); the suite validates with a closed copy, so a field the
renderers add without describing it here fails it.
"""

from __future__ import annotations

import enum
import json
import sys
from pathlib import Path
from typing import Any

DIR = Path(__file__).resolve().parent.parent / "src" / "venvkeeper" / "schemas"

Schema = dict[str, Any]

STR: Schema = {"type": "string"}
INT: Schema = {"type": "integer"}
NUM: Schema = {"type": "number"}
BOOL: Schema = {"type": "boolean"}
PATH: Schema = {"type": "string", "description": "a path (escaped: see docs/reference/json.md)"}
#: A host profile's paths are exact (data read back), not escaped for printing.
EXACT_PATH: Schema = {"type": "string", "description": "a path, exact (\\uXXXX beyond ASCII)"}
TIME: Schema = {"type": "string", "format": "date-time", "description": "ISO 8601, UTC"}


def null(s: Schema) -> Schema:
    """*s* or null."""
    if "$ref" in s:
        return {"anyOf": [s, {"type": "null"}]}
    out = dict(s)
    if "enum" in out:
        out["enum"] = [*out["enum"], None]
    t = out["type"]
    out["type"] = [*(t if isinstance(t, list) else [t]), "null"]
    return out


OS_ROOT: Schema = {
    **null(PATH),
    "description": "the other OS root the venv is in (a chroot, a container's root"
    " filesystem), as this host names it; null: this host's own. The venv's paths outside"
    " itself are that root's",
}


def arr(items: Schema, **extra: Any) -> Schema:
    return {"type": "array", "items": items, **extra}


def obj(props: dict[str, Schema], optional: tuple[str, ...] = (), **extra: Any) -> Schema:
    """An object with *props*, every one required but the *optional* ones."""
    return {
        "type": "object",
        "required": [k for k in props if k not in optional],
        "properties": props,
        **extra,
    }


def mapping(values: Schema, what: str) -> Schema:
    """A free-form object: keys are data (*what*), not fields."""
    return {"type": "object", "description": what, "additionalProperties": values}


def ref(name: str) -> Schema:
    return {"$ref": f"#/$defs/{name}"}


def enum_of(e: type[enum.Enum], description: str = "") -> Schema:
    s: Schema = {"type": "string", "enum": [m.value for m in e]}
    if description:
        s["description"] = description
    return s


def defs() -> dict[str, Schema]:
    """Every shared definition (a schema file holds those it uses)."""
    from venvkeeper.model.findings import Severity
    from venvkeeper.model.inventory import Presence
    from venvkeeper.model.venv import BaseOrigin, Creator, DirectUrlKind, VenvKind

    code = {
        "type": "string",
        "pattern": "^[a-z0-9][a-z0-9-]*$",
        "description": "a finding code: venvkeeper codes --json lists them",
    }
    d: dict[str, Schema] = {
        "severity": enum_of(Severity, "ok < info < warning < unknown < critical"),
        "status": enum_of(Severity, "a venv's verdict: its worst finding's severity"),
        "creator": enum_of(Creator, "the tool that made or manages the venv"),
        "venv_kind": enum_of(VenvKind),
        "origin": enum_of(BaseOrigin, "where a base interpreter comes from"),
        "presence": enum_of(Presence, "as of the inventory's latest scan"),
        "code": code,
        "finding": obj({"code": ref("code"), "severity": ref("severity"), "message": STR}),
        "point": obj({"scan": INT, "at": TIME}, description="a scan id and when it started"),
    }
    d["venv"] = obj(
        {
            "path": PATH,
            "root": OS_ROOT,
            "path_in_root": {**PATH, "description": "the venv's path as its root sees it"},
            "status": ref("status"),
            "kind": ref("venv_kind"),
            "creator": ref("creator"),
            "alias_of": null(PATH),
            "python": obj(
                {
                    "recorded": null(STR),
                    "now": null(STR),
                    "patch": null(STR),
                    "executable": null(PATH),
                    "origin": null(ref("origin")),
                    "copy": null(BOOL),
                    "stdlib_present": null(BOOL),
                    "prefix": null(PATH),
                }
            ),
            "packages": INT,
            "findings": arr(ref("finding"), description="worst first"),
            "pyvenv_cfg": null(
                obj(
                    {
                        "values": mapping(STR, "every key of pyvenv.cfg and its value"),
                        "problems": arr(obj({"line": INT, "message": STR})),
                    }
                )
            ),
            "pyvenv_cfg_error": null(STR),
            "interpreter_links": arr(
                obj(
                    {
                        "name": STR,
                        "hops": arr(PATH),
                        "resolved": null(PATH),
                        "broken_at": null(PATH),
                        "error": null(STR),
                    }
                )
            ),
            "site_packages": arr(
                obj(
                    {
                        "path": PATH,
                        "python_version": null(STR),
                        "active": BOOL,
                        "pth_imports": arr(STR),
                        "pth_paths": arr(obj({"pth": STR, "path": PATH, "exists": BOOL})),
                        "distributions": arr(
                            obj(
                                {
                                    "name": STR,
                                    "version": STR,
                                    "installer": null(STR),
                                    "requested": BOOL,
                                    "requires_python": null(STR),
                                    "direct_url": null(
                                        obj(
                                            {
                                                "kind": enum_of(DirectUrlKind),
                                                "url": null(STR),
                                                "vcs": null(STR),
                                                "commit_id": null(STR),
                                                "path": null(PATH),
                                                "path_exists": null(BOOL),
                                            }
                                        )
                                    ),
                                    "extensions": arr(obj({"path": STR, "abi_tag": null(STR)})),
                                    "problems": arr(STR),
                                    "placeholder": null(STR),
                                    "egg_info": null(PATH),
                                }
                            )
                        ),
                    }
                )
            ),
            "scripts": arr(
                obj(
                    {
                        "name": STR,
                        "interpreter": null(PATH),
                        "interpreter_exists": null(BOOL),
                        "relative": BOOL,
                    }
                )
            ),
            "activate_virtual_env": null(PATH),
            "recorded_path": null(PATH),
            "owner": obj({"uid": INT, "user": null(STR)}),
            "mode": {"type": "string", "pattern": "^[0-7]{4}$"},
            "writable_by_others": arr(STR),
            "size_bytes": null(INT),
            "read_errors": arr(STR),
            "deep": null(
                obj(
                    {
                        "ran": BOOL,
                        "version": null(STR),
                        "failed_imports": arr(STR),
                        "error": null(STR),
                        "uid": null(INT),
                    }
                )
            ),
            "consumers": arr(
                ref("used_by"),
                description="what uses it: units, cron jobs, commands, web servers"
                " (venvkeeper consumers tells more); absent when not read",
            ),
        },
        optional=("consumers",),
        description="one venv, everything inspection read and every finding",
    )
    d.update(consumer_defs())
    d["predicted_consumer"] = predicted_consumer()
    d["snapshot"] = obj(
        {
            "path": PATH,
            "status": ref("status"),
            "kind": ref("venv_kind"),
            "creator": ref("creator"),
            "python": obj(
                {
                    "recorded": null(STR),
                    "now": null(STR),
                    "patch": null(STR),
                    "executable": null(PATH),
                }
            ),
            "packages": INT,
            "findings": arr(ref("finding")),
        },
        description="a venv as a recorded scan saw it",
    )
    d["scan_info"] = obj(
        {
            "id": INT,
            "started_at": TIME,
            "finished_at": TIME,
            "started_at_epoch": NUM,
            "host": STR,
            "roots": arr(PATH),
            "excludes": arr(STR),
            "duration_seconds": NUM,
            "summary": mapping(INT, "venvs, and the count of each status"),
            "tool_version": STR,
        },
        description="a recorded scan",
    )
    return d


def consumer_defs() -> dict[str, Schema]:
    """A consumer (venvkeeper consumers) and its brief form in a venv's ``consumers``."""
    from venvkeeper.model.consumers import (
        Activation,
        Confidence,
        ConsumerKind,
        FailsHow,
        Manager,
        RefKind,
        RestartVerb,
        VenvState,
    )

    d: dict[str, Schema] = {
        "consumer_kind": enum_of(ConsumerKind, "what the consumer is (its reader)"),
        "ref_kind": enum_of(RefKind, "how a consumer names a venv"),
        "confidence": enum_of(Confidence, "how surely the reference names that venv"),
        "fails_how": enum_of(FailsHow, "how the consumer fails when its venv breaks"),
    }
    brief = {
        "kind": ref("consumer_kind"),
        "name": STR,
        "source": PATH,
        "line": INT,
        "user": null(STR),
        "ref": null(ref("ref_kind")),
        "confidence": null(ref("confidence")),
        "enabled": null(BOOL),
        "running": null(BOOL),
        "trigger": null(STR),
    }
    d["used_by"] = obj(brief, description="a consumer of the venv, briefly")
    d["consumer"] = obj(
        {
            **brief,
            "venv": null(PATH),
            "venvs": arr(PATH),
            "activation": enum_of(Activation),
            "embedded_python": null(STR),
            "embedded_module": null(PATH),
            "status": ref("status"),
            "findings": arr(ref("finding")),
            "fails_how": obj({"loud": ref("fails_how"), "silent": ref("fails_how")}),
            "restart": obj(
                {
                    "manager": enum_of(Manager),
                    "unit": null(STR),
                    "verb": enum_of(RestartVerb),
                    "user": null(STR),
                    "command": null(STR),
                }
            ),
            "via": arr(STR),
            "files": arr(
                PATH,
                description="every file whose word the consumer is taken on: its source,"
                " drop-ins, environment files, included configs, a command's links",
            ),
            "references": arr(
                obj(
                    {
                        "kind": ref("ref_kind"),
                        "confidence": ref("confidence"),
                        "text": STR,
                        "path": null(PATH),
                        "venv": null(PATH),
                        "venv_state": enum_of(VenvState),
                        "source": PATH,
                        "line": INT,
                        "key": STR,
                        "minor": null(STR),
                        "via": arr(PATH),
                    }
                )
            ),
        },
        description="one consumer with its references, verdict and what to restart",
    )
    return d


def consumers() -> Schema:
    from venvkeeper.model.findings import Severity

    counts = {s.value: INT for s in Severity if s is not Severity.INFO}
    return obj(
        {
            "duration_seconds": NUM,
            "summary": obj({"consumers": INT, **counts, "worst": ref("status"), "unused": INT}),
            "consumers": arr(ref("consumer")),
            "unused": arr(PATH, description="venvs found under the roots that nothing uses"),
            "problems": arr(ref("finding")),
        }
    )


def plan_defs() -> dict[str, Schema]:
    from venvkeeper.model.plan import RequirementKind, Strategy

    return {
        "strategy": enum_of(Strategy),
        "plan": obj(
            {
                "strategy": ref("strategy"),
                "reason": STR,
                "blocked": BOOL,
                "target": null(
                    obj({"path": PATH, "executable": PATH, "version": STR, "patch": null(STR)})
                ),
                "options": obj({"system_site_packages": BOOL, "prompt": null(STR), "copies": BOOL}),
                "packages": arr(
                    obj(
                        {
                            "name": STR,
                            "version": STR,
                            "kind": enum_of(RequirementKind),
                            "spec": STR,
                            "source": null(STR),
                        }
                    )
                ),
                "seed_skipped": arr(STR),
                "blockers": arr(obj({"code": STR, "package": STR, "fatal": BOOL, "message": STR})),
                "old_location": null(PATH),
                "tool_command": null(STR),
                "tool_note": null(STR),
                "notes": arr(STR),
            },
            description="a venv's repair plan",
        ),
        "result": obj(
            {
                "path": PATH,
                "outcome": outcome(),
                "strategy": ref("strategy"),
                "message": STR,
                "target": null(obj({"path": PATH, "executable": PATH, "version": STR})),
                "backend": null(STR),
                "backup": null(PATH),
                "recovered": null(STR),
                "changes": arr(obj({"name": STR, "old": null(STR), "new": null(STR)})),
                "failed_pins": arr(obj({"spec": STR, "reason": STR})),
                "seconds": NUM,
            },
            description="one venv's repair (or rollback)",
        ),
    }


def outcome() -> Schema:
    from venvkeeper.model.repair import Outcome

    return enum_of(Outcome)


# --- the payload of each kind -------------------------------------------------------------


def scan() -> Schema:
    from venvkeeper.model.findings import Severity

    counts = {s.value: INT for s in Severity if s is not Severity.INFO}
    return obj(
        {
            "host": STR,
            "started_at": TIME,
            "duration_seconds": NUM,
            "roots": arr(PATH),
            "summary": obj(
                {"venvs": INT, **counts, "worst": ref("status"), "aliases": INT, "conda_envs": INT}
            ),
            "stats": obj(
                {
                    "directories": INT,
                    "entries": INT,
                    "skipped": mapping(INT, "reason -> directories not walked"),
                    "skipped_examples": arr(obj({"path": PATH, "reason": STR})),
                }
            ),
            "aliases": arr(obj({"path": PATH, "target": PATH})),
            "conda_envs": arr(obj({"path": PATH, "python": null(STR)})),
            "venvs": arr(ref("venv"), description="worst first"),
        }
    )


def show() -> Schema:
    return obj({"venv": ref("venv")})


def codes() -> Schema:
    return obj(
        {"codes": arr(obj({"code": ref("code"), "severity": ref("severity"), "summary": STR}))}
    )


def prediction() -> Schema:
    from venvkeeper.model.plan import Effect

    return obj(
        {
            "change": obj(
                {
                    "python_becomes": arr(obj({"link": PATH, "version": STR})),
                    "removed": arr(PATH),
                    "removed_packages": arr(STR),
                    "host_profile": null(STR),
                    "root": {
                        **null(PATH),
                        "description": "the OS root the change happens in (null: this host)",
                    },
                }
            ),
            "summary": obj(
                {
                    "venvs": INT,
                    "worst": ref("status"),
                    **{e.value: INT for e in Effect},
                    "consumers_breaking": {
                        **INT,
                        "description": "consumers the change breaks; absent when the"
                        " consumers were not read (--no-consumers)",
                    },
                },
                optional=("consumers_breaking",),
            ),
            "venvs": arr(
                obj(
                    {
                        "path": PATH,
                        "root": OS_ROOT,
                        "effect": enum_of(Effect, "what the change does to the venv"),
                        "breaks": BOOL,
                        "status_now": ref("status"),
                        "status_then": ref("status"),
                        "python_now": STR,
                        "python_then": null(STR),
                        "findings_now": arr(ref("finding")),
                        "findings_then": arr(ref("finding")),
                        "plan": null(ref("plan")),
                        "used_by": arr(
                            obj(
                                {
                                    "pid": INT,
                                    "user": STR,
                                    "comm": STR,
                                    "unit": null(STR),
                                    "user_unit": BOOL,
                                    "session": null(STR),
                                }
                            )
                        ),
                        "consumers": arr(
                            ref("predicted_consumer"),
                            description="what the venv serves, under the change; absent when"
                            " the consumers were not read (--no-consumers)",
                        ),
                    },
                    optional=("consumers",),
                )
            ),
        }
    )


def predicted_consumer() -> Schema:
    from venvkeeper.model.consumers import FailsHow

    return obj(
        {
            "kind": ref("consumer_kind"),
            "name": STR,
            "source": PATH,
            "line": INT,
            "user": null(STR),
            "ref": null(ref("ref_kind")),
            "enabled": null(BOOL),
            "running": null(BOOL),
            "trigger": null(STR),
            "breaks": {**BOOL, "description": "it works now and fails after the change"},
            "fails_how": null(
                enum_of(FailsHow, "how it fails after the change (null: it does not)")
            ),
            "why": STR,
            "broken_now": {**BOOL, "description": "it fails already, before the change"},
            "embedded_python": null(STR),
            "embedded_python_then": null(
                {**STR, "description": "the Python its server embeds after the change"}
            ),
            "after_repair": null(
                {
                    **STR,
                    "description": "what still breaks it after its venv's planned repair"
                    " (a hard-coded lib/pythonX.Y to change), and what to do",
                }
            ),
            "restart": null({**STR, "description": "the command that restarts it"}),
        },
        description="a consumer of the venv under the change",
    )


def host_profile() -> Schema:
    return obj(
        {
            "hostname": STR,
            "created_at": NUM,
            "os_release": STR,
            "searched": obj({"bin_dirs": arr(EXACT_PATH), "trees": arr(EXACT_PATH)}),
            "dir_links": mapping(
                STR, "a directory link met on the way to an interpreter -> its target"
            ),
            "interpreters": arr(
                obj(
                    {
                        "executable": EXACT_PATH,
                        "version": null({"type": "string", "pattern": r"^\d+\.\d+t?$"}),
                        "patch_version": null(STR),
                        "prefix": null(EXACT_PATH),
                        "stdlib_present": null(BOOL),
                        "origin": ref("origin"),
                        "is_script": BOOL,
                        "package": null(STR),
                        "version_source": STR,
                        "obsolete": null(BOOL),
                        "names": arr(
                            obj({"path": EXACT_PATH, "hops": arr(EXACT_PATH, minItems=1)})
                        ),
                    }
                )
            ),
        }
    )


def wheelhouse() -> Schema:
    from venvkeeper.model.repair import FetchOutcome

    return obj(
        {
            "directory": PATH,
            "fetches": arr(
                obj({"venv": PATH, "spec": STR, "outcome": enum_of(FetchOutcome), "detail": STR})
            ),
            "skipped": arr(obj({"venv": PATH, "why": STR})),
        }
    )


def results() -> Schema:
    return obj({"results": arr(ref("result"))})


def repair_results() -> Schema:
    """``repair --json``: the results, and what was done for the venvs' consumers."""
    from venvkeeper.model.consumers import ActionKind, ActionOutcome

    action = obj(
        {
            "kind": enum_of(ActionKind, "a unit's restart or reload, or a line's edit"),
            "outcome": enum_of(ActionOutcome),
            "venv": PATH,
            "consumers": arr(STR, description="the consumers that asked for it"),
            "unit": null(STR),
            "user": null({**STR, "description": "whose manager runs the unit (a user's unit)"}),
            "command": null({**STR, "description": "the exact command (run, or to run)"}),
            "edit": null(obj({"path": PATH, "line": INT, "old": STR, "new": STR})),
            "detail": STR,
        },
        description="one restart or edit for the consumers of a repaired venv",
    )
    return obj(
        {
            "results": arr(ref("result")),
            "consumers": arr(
                action,
                description="restarts and edits for the repaired venvs' consumers; absent"
                " with --no-consumers",
            ),
        },
        optional=("consumers",),
    )


def rollback_list() -> Schema:
    return obj(
        {
            "venv": PATH,
            "backups": arr(
                obj({"path": PATH, "created": NUM, "reason": STR}), description="newest first"
            ),
        }
    )


def prune_backups() -> Schema:
    return obj(
        {
            "venvs": arr(
                obj(
                    {
                        "venv": PATH,
                        "deleted": arr(PATH),
                        "refused": null({"type": "string", "description": "why; null: not"}),
                    }
                )
            ),
            "deleted": INT,
        }
    )


def restarts() -> Schema:
    from venvkeeper.model.restarts import Elsewhere

    return obj(
        {
            "scanned": INT,
            "duration_seconds": NUM,
            "skipped": mapping(INT, "reason -> processes not judged"),
            "units": obj(
                {
                    "restart": arr(STR),
                    "restart_user": arr(
                        {
                            "type": "array",
                            "prefixItems": [STR, STR],
                            "items": False,
                            "minItems": 2,
                            "description": "[user, user unit]",
                        }
                    ),
                    "repair_first": arr(STR),
                }
            ),
            "processes": arr(
                obj(
                    {
                        "pid": INT,
                        "ppid": INT,
                        "uid": INT,
                        "user": STR,
                        "comm": STR,
                        "argv": arr(STR),
                        "exe": null(PATH),
                        "started_at": NUM,
                        "unit": null(STR),
                        "user_unit": BOOL,
                        "session": null(STR),
                        "venv": null(PATH),
                        "root": {
                            **null(PATH),
                            "description": "the chroot it runs in (null: ours); its venv is"
                            " judged as that root sees it",
                        },
                        "venv_evidence": null(STR),
                        "needs_restart": BOOL,
                        "reasons": arr(obj({"code": STR, "message": STR, "path": STR})),
                        "venv_status": null(ref("status")),
                        "restart_fails": BOOL,
                        "venv_finding": null(obj({"code": STR, "message": STR})),
                    }
                )
            ),
            "foreign": arr(
                obj(
                    {
                        "pid": INT,
                        "comm": STR,
                        "exe": STR,
                        "exe_deleted": BOOL,
                        "where": enum_of(Elsewhere),
                        "root": null(PATH),
                    }
                )
            ),
        }
    )


def inventory() -> Schema:
    return obj(
        {
            "db": PATH,
            "scans": INT,
            "latest_scan": null(ref("scan_info")),
            "venvs": arr(
                obj(
                    {
                        "path": PATH,
                        "presence": ref("presence"),
                        "status": ref("status"),
                        "first_seen": null(ref("point")),
                        "last_seen": null(ref("point")),
                        "vanished": null(ref("point")),
                        "last": ref("snapshot"),
                    }
                )
            ),
        }
    )


def changes() -> Schema:
    from venvkeeper.model.findings import Severity
    from venvkeeper.model.inventory import ChangeKind

    change = obj(
        {
            "path": PATH,
            "before": null(enum_of(Severity)),
            "after": null(enum_of(Severity)),
            "reappeared": BOOL,
            "venv": ref("snapshot"),
        }
    )
    return obj(
        {
            "since": null(ref("scan_info")),
            "until": ref("scan_info"),
            **{k.value: arr(change) for k in ChangeKind},
        }
    )


def history() -> Schema:
    seen = ("status", "python", "python_recorded", "creator", "codes")
    entry = obj(
        {
            "scan": INT,
            "at": TIME,
            "event": {"type": "string", "enum": ["seen", "vanished"]},
            "status": ref("status"),
            "python": null(STR),
            "python_recorded": null(STR),
            "creator": ref("creator"),
            "codes": arr(STR),
        },
        optional=seen,
    )
    entry["if"] = {"properties": {"event": {"const": "seen"}}}
    entry["then"] = {"required": list(seen)}
    return obj(
        {
            "path": PATH,
            "presence": ref("presence"),
            "vanished": null(ref("point")),
            "entries": arr(entry, description="oldest first"),
        }
    )


def matrix() -> Schema:
    from venvkeeper.model.matrix import CellState
    from venvkeeper.model.plan import Effect

    cell = obj(
        {
            "state": enum_of(CellState),
            "word": {"type": "string", "description": "the table's short word"},
            "effect": enum_of(Effect, "what predict says on that host"),
            "status": {"type": "string", "description": "the venv's status on that host"},
            "code": null({"type": "string", "description": "the finding that decides it"}),
            "why": STR,
            "minor": null({"type": "string", "description": "the minor a venv for it needs"}),
        }
    )
    sibling = obj(
        {
            "minor": STR,
            "path": PATH,
            "hosts": arr(STR, description="host group ids"),
            "build_on": {"type": "string", "description": "a host of that minor"},
            "interpreter": null(PATH),
            "exists": BOOL,
            "works": BOOL,
        }
    )
    return obj(
        {
            "roots": arr(PATH),
            "profiles": INT,
            "judgements": {"type": "integer", "description": "one per group of like hosts"},
            "hosts": arr(
                obj(
                    {
                        "id": STR,
                        "label": STR,
                        "hosts": arr(STR),
                        "sources": arr(PATH),
                        "os_releases": arr(STR),
                        "python3": null(STR),
                    }
                )
            ),
            "summary": obj(
                {"venvs": INT, **{s.value: INT for s in CellState}, "worst": enum_of(CellState)}
            ),
            "venvs": arr(
                obj(
                    {
                        "path": PATH,
                        "minor": null(STR),
                        "sibling_for": null(STR),
                        "serves": arr(STR, description="host group ids"),
                        "served_hosts": INT,
                        "cells": mapping(cell, "host group id"),
                        "layout": null(
                            obj(
                                {
                                    "in_place": BOOL,
                                    "unplaced": arr(STR),
                                    "siblings": arr(sibling),
                                }
                            )
                        ),
                    }
                )
            ),
        }
    )


def payloads() -> dict[str, tuple[str, Schema]]:
    """Each kind's title and payload."""
    return {
        "scan": ("every venv under the roots (venvkeeper scan --json)", scan()),
        "show": ("one venv (venvkeeper show --json)", show()),
        "codes": ("every finding code (venvkeeper codes --json)", codes()),
        "predict": ("what a planned change does (venvkeeper predict --json)", prediction()),
        "plan": ("the repair plans (venvkeeper plan --json)", prediction()),
        "host-profile": ("a host's Pythons (venvkeeper host-profile)", host_profile()),
        "wheelhouse": ("the wheels fetched (venvkeeper wheelhouse --json)", wheelhouse()),
        "repair": ("the repairs (venvkeeper repair --json)", repair_results()),
        "rollback": ("a rollback (venvkeeper rollback --json)", results()),
        "rollback-list": ("a venv's backups (venvkeeper rollback --list --json)", rollback_list()),
        "prune-backups": ("the backups deleted (venvkeeper prune-backups --json)", prune_backups()),
        "restarts": ("the processes to restart (venvkeeper restarts --json)", restarts()),
        "inventory": ("every venv recorded (venvkeeper inventory --json)", inventory()),
        "changes": ("the changes between two scans (venvkeeper changes --json)", changes()),
        "history": ("one venv over the scans (venvkeeper history --json)", history()),
        "matrix": ("venvs x hosts of a shared tree (venvkeeper matrix --json)", matrix()),
        "consumers": ("what each venv serves (venvkeeper consumers --json)", consumers()),
    }


def _refs(node: Any) -> set[str]:
    if isinstance(node, dict):
        out = set()
        r = node.get("$ref")
        if isinstance(r, str) and r.startswith("#/$defs/"):
            out.add(r.rsplit("/", 1)[1])
        for v in node.values():
            out |= _refs(v)
        return out
    if isinstance(node, list):
        return set().union(*map(_refs, node)) if node else set()
    return set()


def schema_of(kind: str) -> Schema:
    from venvkeeper.formats.envelope import SCHEMA_VERSION, Kind, schema_id

    title, payload = payloads()[kind]
    props = {
        "schema_version": {"const": SCHEMA_VERSION},
        "kind": {"const": kind},
        "tool": obj(
            {"name": {"const": "venvkeeper"}, "version": STR},
            description="the venvkeeper that wrote it",
        ),
        **payload["properties"],
    }
    doc: Schema = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": schema_id(Kind(kind)),
        "title": f"venvkeeper {kind}: {title}",
        "description": f"schema_version {SCHEMA_VERSION}. Unknown fields may appear (adding a"
        " field does not raise schema_version): ignore them.",
        "type": "object",
        "required": ["schema_version", "kind", "tool", *payload["required"]],
        "properties": props,
    }
    available = {**defs(), **plan_defs()}
    used: set[str] = set()
    todo = _refs(doc)
    while todo:
        name = todo.pop()
        if name not in used:
            used.add(name)
            todo |= _refs(available[name])
    if used:
        doc["$defs"] = {name: available[name] for name in sorted(used)}
    return doc


def render(kind: str) -> str:
    return json.dumps(schema_of(kind), indent=2, ensure_ascii=False) + "\n"


# --- the reference, for the documentation --------------------------------------------------


def _type_of(s: Schema, root: Schema) -> tuple[str, Schema]:
    """A short type label of *s*, and the schema to descend into (refs resolved)."""
    if "$ref" in s:
        name = s["$ref"].rsplit("/", 1)[1]
        label, inner = _type_of(root["$defs"][name], root)
        return label, inner
    if "anyOf" in s:
        parts = [_type_of(x, root) for x in s["anyOf"]]
        inner = next((x for lbl, x in parts if lbl != "null"), s)
        return " or ".join(lbl for lbl, _ in parts), inner
    if "const" in s:
        return json.dumps(s["const"]), s
    t = s.get("type", "any")
    label = " or ".join(t) if isinstance(t, list) else t
    if "enum" in s:
        label += ": " + ", ".join(json.dumps(v) for v in s["enum"] if v is not None)
    if "items" in s and isinstance(s["items"], dict):
        item, inner = _type_of(s["items"], root)
        return label.replace("array", f"array of {item}"), inner
    return label, s


def _rows(s: Schema, root: Schema, prefix: str) -> list[str]:
    rows = []
    required = set(s.get("required", ()))
    for name, sub in s.get("properties", {}).items():
        label, inner = _type_of(sub, root)
        what = sub.get("description") or inner.get("description", "")
        opt = "" if name in required else " (optional)"
        rows.append(f"| `{prefix}{name}` | {label}{opt} | {what} |")
        sep = "[]." if "array" in label.split(" or ")[0] else "."
        rows += _rows(inner, root, f"{prefix}{name}{sep}")
    extra = s.get("additionalProperties")
    if isinstance(extra, dict):
        label, inner = _type_of(extra, root)
        rows.append(f"| `{prefix}*` | {label} | {s.get('description', '')} |")
    return rows


def reference() -> str:
    """Every kind's fields as Markdown tables (a field of an array's items is ``a[].b``)."""
    from venvkeeper.formats.envelope import Kind

    out = []
    for kind in Kind:
        root = schema_of(kind.value)
        out.append(f"### `{kind.value}`\n\n{root['title']}; schema: `{root['$id']}`\n")
        out.append("| field | type | meaning |\n|---|---|---|")
        out += _rows(root, root, "")
        out.append("")
    return "\n".join(out) + "\n"


def main(argv: list[str]) -> int:
    from venvkeeper.formats.envelope import Kind

    if argv == ["--reference"]:
        sys.stdout.write(reference())
        return 0
    check = argv == ["--check"]
    stale = []
    for kind in Kind:
        path = DIR / f"{kind.value}.schema.json"
        text = render(kind.value)
        if path.exists() and path.read_text(encoding="utf-8") == text:
            continue
        stale.append(path.name)
        if not check:
            DIR.mkdir(exist_ok=True)
            path.write_text(text, encoding="utf-8")
    known = {f"{k.value}.schema.json" for k in Kind}
    extra = sorted(p.name for p in DIR.glob("*.schema.json") if p.name not in known)
    if check and (stale or extra):
        print(f"out of date: {', '.join(stale + extra)}: run tools/gen_schemas.py", file=sys.stderr)
        return 1
    for name in extra:
        (DIR / name).unlink()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
