"""One plan carried out inside its transaction: the build its strategy calls for, then
the verification.

:class:`Job` hands the transaction (:func:`~.transaction.transact`) its two steps:
:meth:`Job.build` (:func:`.clone.build_copy` for a relink or a path rewrite,
:func:`.rebuild.rebuild` for a rebuild) and :meth:`Job.verify`
(:func:`.verify.verify_built`). Each step reads the job's :class:`~.work.Work` and
reports to its :class:`~.work.Log`.
"""

from __future__ import annotations

from venvkeeper.model.plan import Strategy
from venvkeeper.model.repair import PackageChange
from venvkeeper.repair.clone import build_copy
from venvkeeper.repair.rebuild import rebuild
from venvkeeper.repair.verify import verify_built
from venvkeeper.repair.work import Log, Work


class Job:
    """The build and the verification of *work*, and what they reported."""

    def __init__(self, work: Work) -> None:
        self.work = work
        self.log = Log()

    def build(self, new: str) -> None:
        """Build the new tree in *new* (the transaction's empty directory)."""
        if self.work.plan.strategy is Strategy.REBUILD:
            rebuild(self.work, self.log, new)
        else:
            build_copy(self.work, new)

    def verify(self, new: str) -> None:
        """Raise unless the tree built in *new* works."""
        verify_built(self.work, self.log, new)

    @property
    def notes(self) -> list[str]:
        return self.log.notes

    @property
    def changes(self) -> tuple[PackageChange, ...]:
        return self.log.changes
