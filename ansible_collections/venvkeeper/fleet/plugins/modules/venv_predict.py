#!/usr/bin/python
# Copyright (c) 2026 The venvkeeper authors
# MIT License (see LICENSE in the venvkeeper repository)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: venv_predict
short_description: Which venvs a planned Python change would break, before it happens
description:
  - Runs C(venvkeeper predict --json) on the target with the planned change (O(python_becomes),
    O(remove), O(remove_package)) or another host's O(host_profile), and returns each venv's
    effect and repair plan.
  - Reads files only; nothing is written or run. With no change, judges the host as it is.
  - Each venv comes with its consumers (systemd units, cron jobs, commands, uWSGI and
    mod_wsgi apps, supervisor programs, read from their files) and whether and how each
    breaks; RV(breaking_consumers) lists those the change breaks, also where the venv
    itself survives (a web server that will embed another Python).
  - With O(fail_on_break=true) the task fails when any venv or consumer would break. This is
    a pre-flight check that stops a release upgrade (or takes the host out of a C(serial)
    batch) before it starts.
version_added: "0.1.0"
author:
  - venvkeeper authors (@venvkeeper)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - venvkeeper.fleet.venvkeeper
  - venvkeeper.fleet.venvkeeper.scan
  - venvkeeper.fleet.venvkeeper.change
options:
  fail_on_break:
    description:
      - Fail the task when at least one venv or consumer would break (RV(breaking) or
        RV(breaking_consumers) is not empty).
    type: bool
    default: false
  consumers:
    description:
      - Read each venv's consumers and judge them under the change (RV(venvs[].consumers),
        RV(breaking_consumers)).
    type: bool
    default: true
  processes:
    description:
      - Also list the running processes (services) of each venv in RV(venvs[].used_by).
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
- name: Pre-flight before bookworm -> trixie (3.11 -> 3.13)
  venvkeeper.fleet.venv_predict:
    roots: [/srv, /opt]
    python_becomes: ["3.13"]
    remove_package: [python3.11-minimal, libpython3.11-minimal]
    fail_on_break: true

- name: Judge the shared tree as web2 sees it
  venvkeeper.fleet.venv_predict:
    roots: [/nfs/venvs]
    include_network: true
    host_profile: "{{ hostvars['web2'].ansible_facts.venvkeeper.host_profile }}"
"""

RETURN = r"""
breaking:
  description: Paths of the venvs that the change would break (effect other than C(survives),
    C(degrades), C(already-broken)).
  returned: always
  type: list
  elements: str
  sample: [/srv/app/venv]
venvs:
  description: One entry per venv.
  returned: always
  type: list
  elements: dict
  contains:
    path:
      description: The venv.
      type: str
    effect:
      description: C(breaks-loudly), C(breaks-silently), C(loses-stdlib), C(abi-mismatch), C(breaks),
        C(removed), C(unknown), C(degrades), C(already-broken) or C(survives).
      type: str
    breaks:
      description: Whether the change breaks it.
      type: bool
    status_now:
      description: Its status today.
      type: str
    status_then:
      description: Its status after the change.
      type: str
    python_now:
      description: Its Python today.
      type: str
    python_then:
      description: Its Python after the change.
      type: str
    strategy:
      description: The repair its plan needs (C(none), C(relink), C(rewrite-paths), C(rebuild), C(use-tool), C(manual)).
      type: str
    reason:
      description: Why (the deciding finding).
      type: str
    used_by:
      description: Its running processes (C(pid), C(user), C(comm), C(unit)).
      type: list
      elements: dict
    consumers:
      description: What uses it (C(kind), C(name), C(source), C(breaks), C(fails_how), C(why),
        C(after_repair), C(restart)), as C(venvkeeper predict --json) judges it; empty with
        O(consumers=false).
      type: list
      elements: dict
breaking_consumers:
  description: The consumers the change breaks, each with C(kind), C(name), C(venv), C(fails_how)
    (C(will-not-start), C(import-error), C(http-500), C(next-run), C(next-use)) and C(why).
  returned: always
  type: list
  elements: dict
  sample: [{"kind": "mod-wsgi", "name": "WSGIDaemonProcess blog", "venv": "/srv/blog/venv",
            "fails_how": "http-500",
            "why": "libapache2-mod-wsgi-py3 rebuilt for Python 3.13, its venv's packages are for Python 3.11"}]
summary:
  description: Counts per effect, and C(worst) (the worst status after the change).
  returned: always
  type: dict
  sample: {"venvs": 2, "worst": "critical", "breaks-silently": 1, "survives": 1}
change:
  description: The change as venvkeeper understood it.
  returned: always
  type: dict
prediction:
  description: The whole C(venvkeeper predict --json) document (plans in full).
  returned: always
  type: dict
exit_code:
  description: venvkeeper predict's exit code for the venvs after the change (2 means something would break).
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
    CHANGE_ARGS,
    COMMON_ARGS,
    SCAN_ARGS,
    VERDICT_NAMES,
    Venvkeeper,
    change_args,
    roots,
    scan_args,
    spec,
)


def summarize(venv):
    plan = venv.get("plan") or {}
    return dict(
        path=venv.get("path"),
        effect=venv.get("effect"),
        breaks=bool(venv.get("breaks")),
        status_now=venv.get("status_now"),
        status_then=venv.get("status_then"),
        python_now=venv.get("python_now"),
        python_then=venv.get("python_then"),
        strategy=plan.get("strategy"),
        reason=plan.get("reason"),
        used_by=venv.get("used_by") or [],
        consumers=venv.get("consumers") or [],
    )


def breaking_consumers(venvs):
    out = []
    for v in venvs:
        for c in v["consumers"]:
            if c.get("breaks"):
                out.append(
                    dict(
                        kind=c.get("kind"),
                        name=c.get("name"),
                        venv=v["path"],
                        fails_how=c.get("fails_how"),
                        why=c.get("why"),
                    )
                )
    return out


def main():
    module = AnsibleModule(
        argument_spec=spec(
            COMMON_ARGS,
            SCAN_ARGS,
            CHANGE_ARGS,
            dict(
                fail_on_break=dict(type="bool", default=False),
                processes=dict(type="bool", default=True),
                consumers=dict(type="bool", default=True),
            ),
        ),
        supports_check_mode=True,
    )
    params = module.params
    vk = Venvkeeper(module)
    args = ["predict"] + scan_args(params) + change_args(vk, params)
    if not params["processes"]:
        args.append("--no-processes")
    if not params["consumers"]:
        args.append("--no-consumers")
    rc, doc = vk.run_json(args + roots(params), kind=("predict", "prediction"))
    venvs = [summarize(v) for v in doc.get("venvs") or []]
    breaking = [v["path"] for v in venvs if v["breaks"]]
    consumers = breaking_consumers(venvs)
    result = dict(
        changed=False,
        exit_code=rc,
        verdict=VERDICT_NAMES.get(rc),
        breaking=breaking,
        breaking_consumers=consumers,
        venvs=venvs,
        summary=doc.get("summary") or {},
        change=doc.get("change") or {},
        prediction=doc,
    )
    if params["fail_on_break"] and (breaking or consumers):
        lines = ["%s (%s)" % (v["path"], v["effect"]) for v in venvs if v["breaks"]]
        msg = "the change would break %d venv(s): %s" % (len(breaking), ", ".join(lines))
        if consumers:
            msg += "; and %d consumer(s): %s" % (
                len(consumers),
                ", ".join("%s (%s)" % (c["name"], c["fails_how"]) for c in consumers),
            )
        module.fail_json(msg=msg, **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
