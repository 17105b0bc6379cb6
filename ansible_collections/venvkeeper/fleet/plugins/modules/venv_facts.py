#!/usr/bin/python
# Copyright (c) 2026 The venvkeeper authors
# MIT License (see LICENSE in the venvkeeper repository)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: venv_facts
short_description: Every Python venv on the host, judged, and the host's Pythons
description:
  - Runs C(venvkeeper scan --json --no-record) over O(roots) and C(venvkeeper host-profile)
    on the target and sets C(ansible_facts.venvkeeper).
  - Read-only; nothing in a scanned venv is executed. The inventory database is not written.
version_added: "0.1.0"
author:
  - venvkeeper authors (@venvkeeper)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.facts
  - venvkeeper.fleet.venvkeeper
  - venvkeeper.fleet.venvkeeper.scan
options:
  host_profile:
    description:
      - Also gather the host profile (the host's Python interpreters) into
        C(ansible_facts.venvkeeper.host_profile), for M(venvkeeper.fleet.venv_predict)'s
        O(venvkeeper.fleet.venv_predict#module:host_profile) on the other hosts of a shared tree.
    type: bool
    default: true
  consumers:
    description:
      - Also read what uses each venv (systemd units, cron jobs, commands, uWSGI and
        mod_wsgi apps, supervisor programs) into C(ansible_facts.venvkeeper.consumers), each
        judged (C(venvkeeper consumers --json --no-scan)); each venv's own C(consumers) (in
        C(venvs)) names them briefly either way.
    type: bool
    default: true
attributes:
  check_mode:
    support: full
  platform:
    platforms: posix
  diff_mode:
    support: none
  facts:
    support: full
"""

EXAMPLES = r"""
- name: Judge the venvs under /srv and /opt
  venvkeeper.fleet.venv_facts:
    roots: [/srv, /opt]

- name: List the broken ones
  ansible.builtin.debug:
    msg: "{{ ansible_facts.venvkeeper.venvs | selectattr('status', 'eq', 'critical') | map(attribute='path') }}"
"""

RETURN = r"""
ansible_facts:
  description: The facts set.
  returned: always
  type: complex
  contains:
    venvkeeper:
      description: What venvkeeper found on this host.
      returned: always
      type: complex
      contains:
        version:
          description: The venvkeeper version that judged.
          type: str
          sample: 0.1.0
        roots:
          description: The roots walked.
          type: list
          elements: str
        duration_seconds:
          description: How long venvkeeper's scan took on the host.
          type: float
          sample: 0.04
        summary:
          description: Counts per status and the worst one (C(ok), C(warning), C(unknown), C(critical)).
          type: dict
          sample: {"venvs": 2, "ok": 1, "warning": 0, "unknown": 0, "critical": 1, "worst": "critical"}
        venvs:
          description: One entry per venv, as C(venvkeeper scan --json) prints it (see venvkeeper's README, JSON).
          type: list
          elements: dict
          sample: [{"path": "/srv/app/venv", "status": "critical", "python": {"recorded": "3.11.2", "now": "3.13"},
                    "findings": [{"code": "version-mismatch", "severity": "critical", "message": "..."}]}]
        host_profile:
          description: The host's interpreters (C(venvkeeper host-profile)); null when O(host_profile=false).
          type: dict
        broken:
          description: Paths of the venvs whose status is C(critical).
          type: list
          elements: str
        consumers:
          description: Every consumer of a venv, as C(venvkeeper consumers --json) prints it
            (C(kind), C(name), C(source), C(venv), C(status), C(findings), C(restart) ...);
            empty with O(consumers=false).
          type: list
          elements: dict
          sample: [{"kind": "systemd", "name": "app.service", "venv": "/srv/app/venv", "status": "ok",
                    "running": true, "restart": {"command": "systemctl try-restart app.service"}}]
        restart_units:
          description: The system units that run from the venvs under the roots, from their
            consumers (what a repair's handler restarts).
          type: list
          elements: str
exit_code:
  description: venvkeeper scan's exit code (0 ok, 1 warning, 2 critical).
  returned: always
  type: int
  sample: 2
verdict:
  description: The exit code's meaning (C(ok), C(warning), C(critical)). A verdict, never a failure of the task;
    venvkeeper's usage or internal errors (exit 3) fail the task with its message.
  returned: always
  type: str
  sample: critical
"""

import json

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.venvkeeper.fleet.plugins.module_utils.venvkeeper import (
    COMMON_ARGS,
    SCAN_ARGS,
    VERDICT_NAMES,
    Venvkeeper,
    roots,
    scan_args,
    spec,
)


def main():
    module = AnsibleModule(
        argument_spec=spec(
            COMMON_ARGS,
            SCAN_ARGS,
            dict(host_profile=dict(type="bool", default=True), consumers=dict(type="bool", default=True)),
        ),
        supports_check_mode=True,
    )
    vk = Venvkeeper(module)
    params = module.params
    rc, report = vk.run_json(["scan", "--no-record"] + scan_args(params) + roots(params))
    profile = None
    if params["host_profile"]:
        _rc, out, err = vk.run(["host-profile"])
        try:
            profile = json.loads(out)
        except ValueError as e:
            module.fail_json(msg="venvkeeper host-profile printed no JSON document (%s)" % e, stderr=err)
    venvs = report.get("venvs") or []
    consumers = []
    if params["consumers"]:
        _rc, doc = vk.run_json(["consumers", "--no-scan"], kind="consumers")
        consumers = doc.get("consumers") or []
    paths = set(v.get("path") for v in venvs)
    units = []
    for c in consumers:
        restart = c.get("restart") or {}
        unit = restart.get("unit")
        if restart.get("manager") == "system" and c.get("venv") in paths and unit not in units:
            units.append(unit)
    facts = dict(
        version=(report.get("tool") or {}).get("version"),
        roots=report.get("roots") or [],
        duration_seconds=report.get("duration_seconds"),
        summary=report.get("summary") or {},
        venvs=venvs,
        broken=[v.get("path") for v in venvs if v.get("status") == "critical"],
        host_profile=profile,
        consumers=consumers,
        restart_units=units,
    )
    module.exit_json(changed=False, exit_code=rc, verdict=VERDICT_NAMES.get(rc), ansible_facts=dict(venvkeeper=facts))


if __name__ == "__main__":
    main()
