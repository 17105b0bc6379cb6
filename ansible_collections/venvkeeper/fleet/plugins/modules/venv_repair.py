#!/usr/bin/python
# Copyright (c) 2026 The venvkeeper authors
# MIT License (see LICENSE in the venvkeeper repository)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: venv_repair
short_description: Repair broken venvs atomically (relink, rewrite paths, rebuild), keeping a backup
description:
  - Runs C(venvkeeper repair --json) on the target for O(paths), or for every venv under
    O(roots) that needs work (with O(all=true)). Each venv is repaired as a transaction (built
    beside, verified, swapped in by rename, the original kept as a backup); a failure leaves
    it as it was.
  - Unlike M(ansible.builtin.pip), which calls a venv present whenever C(bin/activate)
    exists, this rebuilds a venv whose Python changed under it, with the same packages read
    from its old site-packages.
  - In check mode it runs C(venvkeeper repair --dry-run --json), which gives the plan and changes nothing.
  - The units to restart come from the repaired venvs' consumers (units, web servers that
    embed the venv, supervisor), as C(venvkeeper repair) reads them from their files, and,
    after a real run, from C(venvkeeper restarts --json) (processes still on a replaced
    interpreter). They are returned in RV(restart_units), for a handler, unless
    O(restart=true) had venvkeeper restart them (RV(restarted_units)). A unit whose venv is
    still broken (its repair failed or was refused, or venvkeeper judges it broken), or
    whose files another user can change, is never listed there but in
    RV(units_held_back).
version_added: "0.1.0"
author:
  - venvkeeper authors (@venvkeeper)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - venvkeeper.fleet.venvkeeper
options:
  paths:
    description:
      - The venvs to repair. A venv that needs nothing is reported as C(nothing-to-do).
    type: list
    elements: path
  all:
    description:
      - Repair every venv under O(roots) whose plan needs work.
    type: bool
    default: false
  roots:
    description:
      - With O(all=true), the directories to search (default C(/)).
    type: list
    elements: path
    default: []
  python:
    description:
      - The new base interpreter (default is each plan's target). Also moves a working venv
        to another Python.
    type: path
  backend:
    description:
      - The installer for rebuilds; C(auto) is uv when found, else pip of the new venv.
    type: str
    choices: [auto, uv, pip]
    default: auto
  index_url:
    description:
      - The package index for rebuilds.
    type: str
  find_links:
    description:
      - Wheelhouses (or find-links URLs) for rebuilds, e.g. the one
        M(venvkeeper.fleet.venv_wheelhouse) filled before the upgrade.
    type: list
    elements: str
    default: []
  offline:
    description:
      - No network; only O(find_links) and caches.
    type: bool
    default: false
  allow_upgrades:
    description:
      - When an exact pin cannot install on the new Python, take the nearest version that
        does (every change is reported in RV(results[].changes)).
    type: bool
    default: false
  keep_backups:
    description:
      - Backups kept per venv after a repair (venvkeeper's default is 2).
    type: int
  restarts:
    description:
      - After a real repair, ask C(venvkeeper restarts) which units to restart.
    type: bool
    default: true
  restart:
    description:
      - Let venvkeeper itself C(try-restart) the running system units that use each
        repaired venv and reload the web servers that embed it (C(venvkeeper repair
        --restart)), once the venv is repaired and judged working. Without it the units
        come back in RV(restart_units) for a handler. Never on the word of a file another
        user can change; never into a venv that still fails.
    type: bool
    default: false
  fix_consumers:
    description:
      - Change the lines of consumers (units, server configs) that hard-code another
        C(lib/pythonX.Y) than the repaired venv's, each as a transaction with a backup
        beside the file, only in files root alone can change (C(venvkeeper repair
        --fix-consumers)). Without it the lines come back in RV(consumers).
    type: bool
    default: false
attributes:
  check_mode:
    support: full
  platform:
    platforms: posix
  diff_mode:
    support: full
"""

EXAMPLES = r"""
- name: Repair every broken venv under /srv, offline, from the prefetched wheels
  venvkeeper.fleet.venv_repair:
    all: true
    roots: [/srv]
    offline: true
    find_links: [/var/cache/venvkeeper/wheels]
  register: repair
  notify: venvkeeper restart units

- name: Restart what runs from the repaired venvs (a handler)
  ansible.builtin.systemd_service:
    name: "{{ item }}"
    state: restarted
  loop: "{{ repair.restart_units }}"
"""

RETURN = r"""
results:
  description: One result per venv, as C(venvkeeper repair --json) prints it.
  returned: always
  type: list
  elements: dict
  contains:
    path:
      description: The venv.
      type: str
    outcome:
      description: C(repaired), C(nothing-to-do), C(planned) (check mode), C(refused) or C(failed).
      type: str
    strategy:
      description: C(none), C(relink), C(rewrite-paths), C(rebuild), C(use-tool) or C(manual).
      type: str
    message:
      description: What was (or would be) done, or why not.
      type: str
    backup:
      description: Where the original is kept.
      type: str
    changes:
      description: Package versions that moved (C(name), C(old), C(new)).
      type: list
      elements: dict
  sample: [{"path": "/srv/app", "outcome": "repaired", "strategy": "rebuild",
            "message": "rebuild on /usr/bin/python3 (3.13) with pip, 2 package(s)",
            "backup": "/srv/.app.venvkeeper-backup-20261201T222850-14691-1"}]
repaired:
  description: Paths repaired (check mode, that would be).
  returned: always
  type: list
  elements: str
failed_paths:
  description: Paths whose repair failed (each left as it was) or was refused.
  returned: always
  type: list
  elements: str
restart_units:
  description: System units to restart now (after a real repair; in check mode, the units
    running from the venvs that would be repaired). Never a unit whose venv is broken.
  returned: always
  type: list
  elements: str
  sample: [web.service]
restarted_units:
  description: System units venvkeeper restarted or reloaded itself (O(restart=true)).
  returned: always
  type: list
  elements: str
consumers:
  description: What C(venvkeeper repair) did (or would do, or printed) for the repaired
    venvs' consumers, one item per restart or edit (C(kind), C(outcome), C(venv),
    C(consumers), C(unit), C(user), C(command), C(edit) with C(path), C(line), C(old),
    C(new), and C(detail)).
  returned: always
  type: list
  elements: dict
  sample: [{"kind": "edit", "outcome": "done", "venv": "/srv/app", "consumers": ["report.service"],
            "edit": {"path": "/etc/systemd/system/report.service", "line": 3,
                     "old": "Environment=PYTHONPATH=/srv/app/lib/python3.11/site-packages",
                     "new": "Environment=PYTHONPATH=/srv/app/lib/python3.13/site-packages"},
            "detail": "changed; original kept"}]
restart_user_units:
  description: User units to restart, as C([user, unit]) pairs (C(systemctl --user --machine=USER@)).
  returned: always
  type: list
  elements: list
units_held_back:
  description: Units not to restart, because a process of theirs would start in a broken venv.
  returned: always
  type: list
  elements: str
restarts:
  description: The C(venvkeeper restarts --json) document after the repair (null in check mode
    or with O(restarts=false)).
  returned: always
  type: dict
exit_code:
  description: venvkeeper repair's exit code (0 all repaired or fine, 1 some refused, 2 some failed).
  returned: always
  type: int
verdict:
  description: The exit code's meaning (C(ok), C(warning), C(critical)). A verdict, never a failure of the task;
    venvkeeper's usage or internal errors (exit 3) fail the task with its message.
  returned: always
  type: str
  sample: critical
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.venvkeeper.fleet.plugins.module_utils.venvkeeper import (
    COMMON_ARGS,
    VERDICT_NAMES,
    Venvkeeper,
    consumer_units,
    restart_units,
    spec,
)

DONE = ("repaired",)
PLANNED = ("planned",)
NOT_DONE = ("failed", "refused")


def repair_args(params):
    args = []
    if params["python"]:
        args += ["--python", params["python"]]
    if params["backend"] != "auto":
        args += ["--backend", params["backend"]]
    if params["index_url"]:
        args += ["--index-url", params["index_url"]]
    for link in params["find_links"]:
        args += ["--find-links", link]
    if params["offline"]:
        args.append("--offline")
    if params["allow_upgrades"]:
        args.append("--allow-upgrades")
    if params["keep_backups"] is not None:
        args += ["--keep-backups", str(params["keep_backups"])]
    return args


def diff_of(results):
    diffs = []
    for r in results:
        if r.get("outcome") not in DONE + PLANNED:
            continue
        path = r.get("path")
        diffs.append(
            dict(
                before_header=path,
                after_header=path,
                before="%s: needs %s\n" % (path, r.get("strategy")),
                after="%s: %s\n" % (path, r.get("message")),
            )
        )
    return diffs


def main():
    module = AnsibleModule(
        argument_spec=spec(
            COMMON_ARGS,
            dict(
                paths=dict(type="list", elements="path"),
                all=dict(type="bool", default=False),
                roots=dict(type="list", elements="path", default=[]),
                python=dict(type="path"),
                backend=dict(type="str", choices=["auto", "uv", "pip"], default="auto"),
                index_url=dict(type="str"),
                find_links=dict(type="list", elements="str", default=[]),
                offline=dict(type="bool", default=False),
                allow_upgrades=dict(type="bool", default=False),
                keep_backups=dict(type="int"),
                restarts=dict(type="bool", default=True),
                restart=dict(type="bool", default=False),
                fix_consumers=dict(type="bool", default=False),
            ),
        ),
        mutually_exclusive=[("paths", "all"), ("paths", "roots")],
        supports_check_mode=True,
    )
    params = module.params
    if params["paths"] is not None and not params["paths"]:
        module.fail_json(msg="paths is empty: name the venvs to repair, or use all=true with roots")
    if params["paths"] is None and not params["all"]:
        module.fail_json(msg="name the venvs to repair (paths), or use all=true with roots")
    if params["roots"] and not params["all"]:
        module.fail_json(msg="roots is used only with all=true")
    if params["keep_backups"] is not None and params["keep_backups"] < 0:
        module.fail_json(msg="keep_backups must be 0 or more, not %d" % params["keep_backups"])
    vk = Venvkeeper(module)
    args = ["repair", "--quiet"] + repair_args(params)
    if params["all"]:
        args.append("--all")
    if params["restart"]:
        args.append("--restart")
    if params["fix_consumers"]:
        args.append("--fix-consumers")
    if module.check_mode:
        args.append("--dry-run")
    targets = params["paths"] or params["roots"]
    rc, doc = vk.run_json(args + (["--"] + targets if targets else []))
    results = doc.get("results") or []
    repaired = [r.get("path") for r in results if r.get("outcome") in DONE + PLANNED]
    not_done = [r.get("path") for r in results if r.get("outcome") in NOT_DONE]
    restarts = None
    units, user_units, held = [], [], []
    # after a real run, always: the upgrade itself may have left services on a replaced
    # interpreter even where no venv needed work
    if params["restarts"] and (repaired or not module.check_mode):
        _rc, restarts = vk.run_json(["restarts"], kind="restarts")
        if module.check_mode:
            # nothing was repaired: the units that run from a venv that would be
            units, user_units, held = _would_restart(restarts, repaired, not_done)
            restarts = None
        else:
            units, user_units, held = restart_units(restarts, not_done)
    actions = doc.get("consumers") or []
    c_units, c_users, c_held, restarted = consumer_units(actions)
    held = _merged(held, c_held)
    units = [u for u in _merged(units, c_units) if u not in held and u not in restarted]
    user_units = _merged(user_units, c_users)
    acted = any(a.get("outcome") == "done" for a in actions)
    result = dict(
        changed=bool(repaired) or acted,
        exit_code=rc,
        verdict=VERDICT_NAMES.get(rc),
        results=results,
        repaired=repaired,
        failed_paths=not_done,
        restart_units=units,
        restart_user_units=user_units,
        units_held_back=held,
        restarted_units=restarted,
        consumers=actions,
        restarts=restarts,
    )
    if module._diff:
        result["diff"] = diff_of(results)
    module.exit_json(**result)


def _merged(first, second):
    out = list(first)
    for item in second:
        if item not in out:
            out.append(item)
    return out


def _would_restart(restarts, planned, not_done):
    planned = set(planned)
    system, users, held = [], [], []
    for proc in restarts.get("processes") or []:
        unit = proc.get("unit")
        if not unit:
            continue
        if proc.get("venv") in not_done:
            if unit not in held:
                held.append(unit)
        elif proc.get("venv") not in planned:
            continue
        elif proc.get("user_unit"):
            pair = [proc.get("user"), unit]
            if pair not in users:
                users.append(pair)
        elif unit not in system:
            system.append(unit)
    return system, users, held


if __name__ == "__main__":
    main()
