"""``venvkeeper repair``, ``rollback`` and ``prune-backups``: plans executed as
transactions.

:mod:`.engine` is the entry (in place, a sibling, many at once); :mod:`.execute` is the one
path from a plan and a destination to a result (refusals from :mod:`.refusals`, blockers,
dry run, locks, the transaction, backups, one mapping of failures); :mod:`.planning`
chooses each plan. :mod:`.job` is what the transaction runs: the build of its strategy,
:mod:`.clone` (relink, rewrite paths: with :mod:`.edit`) or :mod:`.rebuild` (create,
install with :mod:`.backends`, then :mod:`.seeding`, :mod:`.audit`, :mod:`.carry`), and
:mod:`.verify`; each step reads a :class:`~.work.Work` and reports to a
:class:`~.work.Log`, and runs programs as :mod:`.owner` says. :mod:`.transaction` is the
lock, journal, rename swap, backup and recovery, checked by :mod:`.safety` (what root may
trust); :mod:`.backups` rolls back and prunes; :mod:`.wheelhouse` prefetches the wheels a
repair after an upgrade needs. :mod:`.options` holds :class:`RepairOptions`. May use:
predict, scan, checks, host, model.
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
