#!/usr/bin/python
# Copyright (c) 2026 The venvkeeper authors
# MIT License (see LICENSE in the venvkeeper repository)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: venv_restarts
short_description: Running processes that still use a replaced interpreter or a changed venv
description:
  - Runs C(venvkeeper restarts --json) on the target. It reads C(/proc) only and runs
    nothing; it never restarts anything itself.
  - Returns the processes that need a restart and the systemd units to restart
    (RV(units.restart)), leaving out those that would restart into a venv that is broken now
    (RV(units.repair_first)).
version_added: "0.1.0"
author:
  - venvkeeper authors (@venvkeeper)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - venvkeeper.fleet.venvkeeper
options:
  judge:
    description:
      - Judge the venvs of the processes (for RV(units.repair_first)). C(false) passes C(--no-judge).
    type: bool
    default: true
attributes:
  check_mode:
    support: full
  platform:
    platforms: posix
  diff_mode:
    support: none
"""

EXAMPLES = r"""
- name: What needs a restart after the upgrade
  venvkeeper.fleet.venv_restarts:
  register: restarts

- name: Restart them (never those whose venv is broken)
  ansible.builtin.systemd_service:
    name: "{{ item }}"
    state: restarted
  loop: "{{ restarts.units.restart }}"
"""

RETURN = r"""
processes:
  description: The processes found, as C(venvkeeper restarts --json) prints them (C(pid), C(user),
    C(comm), C(argv), C(unit), C(venv), C(needs_restart), C(reasons), C(restart_fails), ...).
  returned: always
  type: list
  elements: dict
units:
  description: The systemd units of the processes that need a restart.
  returned: always
  type: dict
  sample: {"restart": ["web.service"], "restart_user": [], "repair_first": ["broken.service"]}
  contains:
    restart:
      description: System units to restart; never one that would start in a broken venv.
      type: list
      elements: str
    restart_user:
      description: User units to restart, as C([user, unit]) pairs (C(systemctl --user --machine=USER@ restart UNIT)).
      type: list
      elements: list
    repair_first:
      description: Units that would restart into a venv that is broken now; repair it first.
      type: list
      elements: str
needs_restart:
  description: Whether any process needs a restart.
  returned: always
  type: bool
foreign:
  description: Processes in another mount namespace or root (containers, chroots), listed, not judged.
  returned: always
  type: list
  elements: dict
exit_code:
  description: venvkeeper restarts' exit code (0 nothing to restart, 1 something, 2 a restart
    would land in a broken venv).
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
    spec,
)


def main():
    module = AnsibleModule(
        argument_spec=spec(COMMON_ARGS, dict(judge=dict(type="bool", default=True))),
        supports_check_mode=True,
    )
    vk = Venvkeeper(module)
    args = ["restarts"]
    if not module.params["judge"]:
        args.append("--no-judge")
    rc, doc = vk.run_json(args, kind="restarts")
    processes = doc.get("processes") or []
    module.exit_json(
        changed=False,
        exit_code=rc,
        verdict=VERDICT_NAMES.get(rc),
        processes=processes,
        units=doc.get("units") or {"restart": [], "restart_user": [], "repair_first": []},
        needs_restart=any(p.get("needs_restart") for p in processes),
        foreign=doc.get("foreign") or [],
    )


if __name__ == "__main__":
    main()
