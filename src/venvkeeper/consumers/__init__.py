"""The consumers stage: what will start each venv's interpreter or scripts, read from files.

One module per reader: :mod:`.systemd` (system and users' units), :mod:`.cron`,
:mod:`.atjobs` (atd's spool), :mod:`.sysv` (``/etc/init.d`` scripts run as units, and
``/etc/rc.local``), :mod:`.commands` (PATH directories, pipx), :mod:`.uwsgi`,
:mod:`.apache` (mod_wsgi), :mod:`.supervisor` and :mod:`.gunicorn`, reached directly or
through a config chain (:mod:`.chains`: a unit running ``uwsgi --ini F`` hands F to the
uWSGI reader); the shared pieces are :mod:`.rootfs` (one OS root's files), :mod:`.refs` (a
path to a reference), :mod:`.shell` and :mod:`.launch` (command lines and scripts),
:mod:`.unitfile` (systemd's syntax) and :mod:`.elf` (an embedding module's Python).
:mod:`.judge` runs the consumer checks.

Nothing here runs a consumer, asks systemctl, a shell or the bus, or executes a config
(gunicorn's Python configs are read with :mod:`ast`, literals only). The OS root and the
``/proc`` root are parameters. It imports ``host/``, ``model/`` and ``checks/`` only:
``scan`` and ``predict`` use it.

Public functions:

- :func:`read_consumers` (root, proc) -> :class:`~venvkeeper.model.consumers.ConsumerScan`
- :func:`venvkeeper.consumers.judge.judge` (scan, facts_of, scanned) ->
  :class:`~venvkeeper.model.consumers.ConsumerReport`
"""

from __future__ import annotations

import time
from typing import Optional

from venvkeeper.model.consumers import ConsumerScan


def read_consumers(root: str = "/", proc: Optional[str] = "/proc") -> ConsumerScan:
    """Every consumer of the OS root *root*, and whether its units run now (from *proc*;
    None: not looked at). Never raises for what it reads: a file it cannot read or parse
    is a finding on its consumer."""
    from venvkeeper.consumers.stage import read_all

    t0 = time.monotonic()
    consumers, problems, files = read_all(root, proc)
    return ConsumerScan(tuple(consumers), tuple(problems), time.monotonic() - t0, files)


__all__ = ["read_consumers"]
