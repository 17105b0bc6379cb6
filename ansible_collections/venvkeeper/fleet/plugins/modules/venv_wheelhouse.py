#!/usr/bin/python
# Copyright (c) 2026 The venvkeeper authors
# MIT License (see LICENSE in the venvkeeper repository)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: venv_wheelhouse
short_description: Before an upgrade, fetch the wheels the rebuilds of the venvs it breaks will need
description:
  - Runs C(venvkeeper wheelhouse --dest DEST --json) on the target. For every venv the
    planned change breaks (or that is broken now) and whose plan is a rebuild, each pin from
    an index is fetched as a wheel for the target Python, so that
    M(venvkeeper.fleet.venv_repair) can rebuild offline after the upgrade.
  - Changed when new files appeared in O(dest).
  - In check mode it runs C(venvkeeper plan --json) with the same change and returns the
    pins a fetch would look for (RV(would_fetch)); a pin whose wheel (name and version) is
    already in O(dest) is not counted.
version_added: "0.1.0"
author:
  - venvkeeper authors (@venvkeeper)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - venvkeeper.fleet.venvkeeper
  - venvkeeper.fleet.venvkeeper.scan
  - venvkeeper.fleet.venvkeeper.change
options:
  dest:
    description:
      - The wheelhouse directory.
    type: path
    required: true
  create:
    description:
      - Create O(dest) (mode 0755) when it does not exist.
    type: bool
    default: true
  index_url:
    description:
      - The package index for the downloads.
    type: str
  find_links:
    description:
      - Wheelhouses (or find-links URLs) for the downloads.
    type: list
    elements: str
    default: []
  offline:
    description:
      - No network; only O(find_links) and caches.
    type: bool
    default: false
attributes:
  check_mode:
    support: full
  platform:
    platforms: posix
  diff_mode:
    support: none
"""

EXAMPLES = r"""
- name: Before bookworm -> trixie, fetch the wheels of the rebuilds for 3.13
  venvkeeper.fleet.venv_wheelhouse:
    dest: /var/cache/venvkeeper/wheels
    roots: [/srv]
    python_becomes: ["3.13"]
    remove_package: [python3.11-minimal]
"""

RETURN = r"""
fetches:
  description: One entry per requirement (C(venv), C(spec), C(outcome), C(detail)); C(outcome) is
    C(fetched), C(nearest), C(from-source) or C(missing).
  returned: success and not check mode
  type: list
  elements: dict
  sample: [{"venv": "/srv/app", "spec": "requests==2.31.0", "outcome": "fetched", "detail": ""}]
missing:
  description: Specs with no wheel at all from the sources (their rebuild needs more than O(dest)).
  returned: always
  type: list
  elements: str
new_files:
  description: Files added to O(dest).
  returned: always
  type: list
  elements: str
would_fetch:
  description: In check mode, the pins a fetch would look for that O(dest) does not hold.
  returned: check mode
  type: list
  elements: str
exit_code:
  description: venvkeeper wheelhouse's exit code (0 every pin is a wheel in O(dest), 1 something
    needs more than the directory, 2 something is missing).
  returned: always
  type: int
verdict:
  description: The exit code's meaning (C(ok), C(warning), C(critical)). A verdict, never a failure of the task;
    venvkeeper's usage or internal errors (exit 3) fail the task with its message.
  returned: always
  type: str
  sample: critical
"""

import os
import re

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


def _listing(dest):
    try:
        return set(os.listdir(dest))
    except OSError:
        return set()


def _norm(name):
    return re.sub(r"[-_.]+", "_", name).lower()


def _held(files, name, version):
    """Whether a wheel of NAME==VERSION is among *files* (wheel names: NAME-VERSION-...)."""
    for f in files:
        parts = f.split("-")
        if f.endswith(".whl") and len(parts) >= 3 and _norm(parts[0]) == _norm(name) and parts[1] == version:
            return True
    return False


def main():
    module = AnsibleModule(
        argument_spec=spec(
            COMMON_ARGS,
            SCAN_ARGS,
            CHANGE_ARGS,
            dict(
                dest=dict(type="path", required=True),
                create=dict(type="bool", default=True),
                index_url=dict(type="str"),
                find_links=dict(type="list", elements="str", default=[]),
                offline=dict(type="bool", default=False),
            ),
        ),
        supports_check_mode=True,
    )
    params = module.params
    dest = params["dest"]
    vk = Venvkeeper(module)
    if os.path.lexists(dest) and not os.path.isdir(dest):
        module.fail_json(msg="dest %s exists and is not a directory" % dest)
    before = _listing(dest)
    change = change_args(vk, params)
    if module.check_mode:
        rc, doc = vk.run_json(["plan"] + scan_args(params) + change + roots(params), kind=("plan", "prediction"))
        want = []
        for venv in doc.get("venvs") or []:
            plan = venv.get("plan") or {}
            if plan.get("strategy") != "rebuild":
                continue
            for pkg in plan.get("packages") or []:
                if pkg.get("kind") == "index" and not _held(before, pkg.get("name", ""), pkg.get("version", "")):
                    spec_ = "%s==%s" % (pkg.get("name"), pkg.get("version"))
                    if spec_ not in want:
                        want.append(spec_)
        module.exit_json(
            changed=bool(want) or not os.path.isdir(dest),
            exit_code=rc,
            verdict=VERDICT_NAMES.get(rc),
            would_fetch=want,
            missing=[],
            new_files=[],
        )
    created = False
    if not os.path.isdir(dest):
        if not params["create"]:
            module.fail_json(msg="dest %s does not exist (create=false)" % dest)
        try:
            os.makedirs(dest, 0o755)
            created = True
        except OSError as e:
            module.fail_json(msg="cannot create dest %s: %s" % (dest, e))
    args = ["wheelhouse", "--dest", dest] + scan_args(params) + change
    if params["index_url"]:
        args += ["--index-url", params["index_url"]]
    for link in params["find_links"]:
        args += ["--find-links", link]
    if params["offline"]:
        args.append("--offline")
    rc, doc = vk.run_json(args + roots(params), kind="wheelhouse")
    fetches = doc.get("fetches") or []
    new = sorted(_listing(dest) - before)
    module.exit_json(
        changed=bool(new) or created,
        exit_code=rc,
        verdict=VERDICT_NAMES.get(rc),
        fetches=fetches,
        missing=[f.get("spec") for f in fetches if f.get("outcome") == "missing"],
        new_files=new,
        directory=doc.get("directory"),
    )


if __name__ == "__main__":
    main()
