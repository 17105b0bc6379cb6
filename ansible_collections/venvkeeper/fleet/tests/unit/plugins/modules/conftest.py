# Copyright (c) 2026 The venvkeeper authors
# MIT License (see LICENSE in the venvkeeper repository)
"""Run a module's main() as Ansible would, against a fake ``venvkeeper``.

The fake is the one thing these tests fake: a shell script that prints, for each command
(its first argument), the files COMMAND.out (stdout), COMMAND.err (stderr) and COMMAND.rc
(exit code) beside it, and appends its arguments to argv.log. The real command, on real
hosts, is exercised by the repository's tests/test_ansible.py.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os

import pytest

from ansible.module_utils import basic
from ansible.module_utils.common.text.converters import to_bytes

SCRIPT = """#!/bin/sh
PATH="$PATH:/usr/bin:/bin"
d=$(dirname "$0")
for a in "$@"; do printf '%s\\n' "$a"; done >>"$d/argv.log"
echo '---' >>"$d/argv.log"
[ -f "$d/$1.out" ] && cat "$d/$1.out"
[ -f "$d/$1.err" ] && cat "$d/$1.err" >&2
exit "$(cat "$d/$1.rc" 2>/dev/null || echo 0)"
"""


class Fake(object):
    def __init__(self, root):
        self.root = root
        self.path = os.path.join(root, "venvkeeper")
        with open(self.path, "w") as f:
            f.write(SCRIPT)
        os.chmod(self.path, 0o755)

    def answer(self, command, out="", rc=0, err=""):
        if not isinstance(out, str):
            out = json.dumps(out)
        for ext, text in (("out", out), ("err", err), ("rc", str(rc))):
            with open(os.path.join(self.root, "%s.%s" % (command, ext)), "w") as f:
                f.write(text)

    def calls(self):
        try:
            with open(os.path.join(self.root, "argv.log")) as f:
                text = f.read()
        except OSError:
            return []
        return [c.strip("\n").split("\n") for c in text.split("---\n") if c.strip("\n")]


@pytest.fixture
def fake(tmp_path):
    d = tmp_path / "bin"
    d.mkdir()
    return Fake(str(d))


@pytest.fixture
def run(tmp_path, capsys):
    """run(module, args, check_mode=False, diff=False) -> the module's result dict."""

    def _run(module, args, check_mode=False, diff=False):
        args = dict(args)
        args.update(_ansible_check_mode=check_mode, _ansible_diff=diff,
                    _ansible_tmpdir=str(tmp_path), _ansible_remote_tmp=str(tmp_path),
                    _ansible_keep_remote_files=False)
        basic._ANSIBLE_ARGS = to_bytes(json.dumps({"ANSIBLE_MODULE_ARGS": args}))
        with pytest.raises(SystemExit):
            module.main()
        out = capsys.readouterr().out
        return json.loads(out)

    return _run
