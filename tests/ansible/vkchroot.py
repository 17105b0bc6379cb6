"""A minimal chroot connection for tests/test_ansible.py: each task runs in a real Debian root.

Ansible's own chroot connection is community.general's, which ansible-core does not ship;
the registry has it only inside the full ``ansible`` package (some 100 collections, tens of
thousands of files), too much to install for one plugin. This one does what it does for our
case: a command is ``chroot ROOT /bin/sh -c CMD`` in a clean environment, files are copied
into and out of the root. ``ansible_host`` names the root.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from typing import Any, Optional

from ansible.errors import AnsibleConnectionFailure, AnsibleError
from ansible.plugins.connection import ConnectionBase

DOCUMENTATION = """
name: vkchroot
short_description: Run tasks in a chroot (venvkeeper's tests)
description:
  - Runs each command with C(chroot ROOT /bin/sh -c), copies files in and out of the root.
author: venvkeeper authors (@venvkeeper)
options:
  remote_addr:
    description: The root directory.
    default: inventory_hostname
    vars:
      - name: inventory_hostname
      - name: ansible_host
"""

ENV = {
    "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "HOME": "/root",
    "LC_ALL": "C.UTF-8",
}


class Connection(ConnectionBase):  # type: ignore[misc]
    transport = "vkchroot"
    has_pipelining = True
    default_user = "root"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.root = ""

    def _connect(self) -> Connection:
        root = str(self.get_option("remote_addr"))
        if not os.path.isfile(os.path.join(root, "bin/sh")):
            raise AnsibleConnectionFailure(f"{root} is not a root directory (no bin/sh)")
        self.root = root
        self._connected = True
        return self

    def exec_command(
        self, cmd: str, in_data: Optional[bytes] = None, sudoable: bool = False
    ) -> tuple[int, bytes, bytes]:
        super().exec_command(cmd, in_data=in_data, sudoable=sudoable)
        self._connect()
        res = subprocess.run(
            ["chroot", self.root, "/bin/sh", "-c", cmd],
            input=in_data or b"",
            capture_output=True,
            env=ENV,
            cwd="/",
            timeout=1800,
        )
        return res.returncode, res.stdout, res.stderr

    def _inside(self, path: str) -> str:
        if not path.startswith("/"):
            raise AnsibleError(f"{path}: not an absolute path in the root")
        return os.path.join(self.root, path.lstrip("/"))

    def put_file(self, in_path: str, out_path: str) -> None:
        super().put_file(in_path, out_path)
        self._connect()
        shutil.copyfile(in_path, self._inside(out_path))

    def fetch_file(self, in_path: str, out_path: str) -> None:
        super().fetch_file(in_path, out_path)
        self._connect()
        shutil.copyfile(self._inside(in_path), out_path)

    def close(self) -> None:
        self._connected = False
