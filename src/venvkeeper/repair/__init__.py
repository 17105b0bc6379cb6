"""``venvkeeper repair``, ``rollback`` and ``prune-backups``: plans executed as
transactions.

:mod:`.engine` repairs venvs (refusals, one result per venv); :mod:`.planning` chooses
each plan; :mod:`.job` carries one plan out inside a transaction, with :mod:`.owner`
(whose identity it runs under), :mod:`.backends` (uv or pip), :mod:`.edit` (path
rewrites of a relink or a moved venv) and :mod:`.verify`; :mod:`.transaction` is the
lock, journal, rename swap, backup and recovery, checked by :mod:`.safety` (what root
may trust); :mod:`.backups` rolls back and prunes; :mod:`.wheelhouse` prefetches the
wheels a repair after an upgrade needs. May use: predict, scan, checks, host, model.
"""

from venvkeeper.repair.backends import BackendChoice, Sources
from venvkeeper.repair.backups import list_backups, prune_backups, rollback
from venvkeeper.repair.engine import build_sibling, repair_all, repair_venv
from venvkeeper.repair.options import RepairOptions
from venvkeeper.repair.transaction import STEPS, backups, recover

__all__ = [
    "STEPS",
    "BackendChoice",
    "RepairOptions",
    "Sources",
    "backups",
    "build_sibling",
    "list_backups",
    "prune_backups",
    "recover",
    "repair_all",
    "repair_venv",
    "rollback",
]
