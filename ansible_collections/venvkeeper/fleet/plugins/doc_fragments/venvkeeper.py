# Copyright (c) 2026 The venvkeeper authors
# MIT License (see LICENSE in the venvkeeper repository)

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):
    DOCUMENTATION = r"""
options:
  executable:
    description:
      - The venvkeeper command on the target.
      - Default is C(venvkeeper) found on E(PATH) (and the usual sbin directories), then
        C(/usr/bin/venvkeeper). When neither exists the task fails, naming what was tried.
    type: path
notes:
  - The module runs the C(venvkeeper) command on the target with C(--json) and reads its
    output; it never imports venvkeeper, so the Python an upgrade replaces can still run it.
  - venvkeeper's exit codes 0, 1 and 2 are verdicts (ok, warning, critical), returned as
    C(exit_code) and C(verdict), never a failure; exit 3 (a usage or internal error) fails the task with venvkeeper's message.
requirements:
  - venvkeeper 0.1 or later on the target (the Debian package, pip or the zipapp)
"""

    SCAN = r"""
options:
  roots:
    description:
      - Directories to search for venvs. Empty means venvkeeper's default (the C([scan]
        roots) of its configuration, else every local filesystem from C(/)).
    type: list
    elements: path
    default: []
  exclude:
    description:
      - Skip directories whose name (or path, when the glob has a C(/)) matches.
    type: list
    elements: str
    default: []
  include_network:
    description:
      - Also walk network filesystems (NFS, CIFS, sshfs). Off by default, as in venvkeeper.
    type: bool
    default: false
"""

    CHANGE = r"""
options:
  python_becomes:
    description:
      - C(X.Y) or C(LINK=X.Y), C(--python-becomes). C(3.13) means C(/usr/bin/python3) will
        lead to C(python3.13), as a release upgrade to Debian trixie does.
    type: list
    elements: str
    default: []
  remove:
    description:
      - An interpreter, link or prefix that will disappear, with everything below it.
    type: list
    elements: path
    default: []
  remove_package:
    description:
      - A system package (dpkg, rpm) whose files will disappear, e.g. C(python3.11-minimal).
    type: list
    elements: str
    default: []
  host_profile:
    description:
      - Judge the venvs as another host would see them, for trees shared over NFS.
      - Either a path on the target to a file written by C(venvkeeper host-profile), or the
        profile itself as a dict, for example
        C(hostvars['web2'].ansible_facts.venvkeeper.host_profile) from M(venvkeeper.fleet.venv_facts).
    type: raw
"""
