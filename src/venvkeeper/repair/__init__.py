"""``venvkeeper repair``, ``rollback`` and ``prune-backups``: plans executed as
transactions (see :mod:`venvkeeper.repair.transaction`)."""

from venvkeeper.repair.backends import BackendChoice, Sources
from venvkeeper.repair.engine import (
    RepairOptions,
    list_backups,
    prune_backups,
    repair_all,
    repair_venv,
    rollback,
)
from venvkeeper.repair.transaction import STEPS, backups, recover

__all__ = [
    "STEPS",
    "BackendChoice",
    "RepairOptions",
    "Sources",
    "backups",
    "list_backups",
    "prune_backups",
    "recover",
    "repair_all",
    "repair_venv",
    "rollback",
]
