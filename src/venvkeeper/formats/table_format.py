"""The ``table`` format (the default): text for people, laid out for the terminal's width
and in colour when it allows (:mod:`venvkeeper.formats.layout`). One renderer per kind of
document; each imports its module when it runs."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Optional

from venvkeeper.formats import Renderer
from venvkeeper.formats.envelope import Kind

if TYPE_CHECKING:
    from venvkeeper.checks import CodeDoc
    from venvkeeper.formats.table import UsedBy
    from venvkeeper.formats.terminal import Terminal
    from venvkeeper.model.consumers import Consumer, ConsumerAction, ConsumerReport
    from venvkeeper.model.inventory import Changes, Inventory, VenvHistory
    from venvkeeper.model.matrix import Matrix
    from venvkeeper.model.plan import Prediction
    from venvkeeper.model.repair import Backup, RepairResult, WheelhouseReport
    from venvkeeper.model.report import Report, VenvReport
    from venvkeeper.model.restarts import RestartReport


def _scan(
    report: Report,
    term: Terminal,
    *,
    only_problems: bool = False,
    quiet: bool = False,
    used_by: Optional[UsedBy] = None,
) -> str:
    from venvkeeper.formats import table
    from venvkeeper.formats.terminal import Terminal

    if quiet:
        return table.summary(report) + "\n"
    return table.render_for(report, Terminal(term.width, term.color), only_problems, used_by)


def _show(
    rep: VenvReport, term: Terminal, *, consumers: Optional[Sequence[Consumer]] = None
) -> str:
    from venvkeeper.formats import table

    return table.render_show(rep, consumers)


def _consumers(report: ConsumerReport, term: Terminal, *, unused: bool = False) -> str:
    from venvkeeper.formats import consumers

    return consumers.render_table(report, term, unused=unused)


def _codes(codes: Mapping[str, CodeDoc], term: Terminal) -> str:
    from venvkeeper.formats import table

    return table.render_codes(codes)


def _predict(pred: Prediction, term: Terminal, *, only_problems: bool = False) -> str:
    from venvkeeper.formats import predict

    return predict.render_predict(pred, only_problems, term.width or 0)


def _plan(pred: Prediction, term: Terminal, *, only_needed: bool = True) -> str:
    from venvkeeper.formats import predict

    return predict.render_plan(pred, only_needed)


def _wheelhouse(report: WheelhouseReport, term: Terminal) -> str:
    from venvkeeper.formats import repair

    return repair.render_wheelhouse(report)


def _repair(
    results: Sequence[RepairResult],
    term: Terminal,
    *,
    consumers: Optional[Sequence[ConsumerAction]] = None,
) -> str:
    from venvkeeper.formats import repair

    return repair.render_table(results, term.width or 0, consumers or ())


def _rollback(result: RepairResult, term: Terminal) -> str:
    return _repair([result], term)


def _rollback_list(listing: tuple[str, Sequence[Backup]], term: Terminal) -> str:
    from venvkeeper.formats import repair

    return repair.render_backups(*listing)


def _prune_backups(
    pruned: Sequence[tuple[str, Sequence[str], Optional[str]]], term: Terminal
) -> str:
    from venvkeeper.formats import repair

    return repair.render_pruned(pruned)


def _restarts(report: RestartReport, term: Terminal, *, unit_commands: bool = False) -> str:
    from venvkeeper.formats import restarts

    if unit_commands:
        return restarts.unit_commands(report)
    return restarts.render_table(report, term.width or 0)


def _inventory(listing: tuple[Inventory, str], term: Terminal) -> str:
    from venvkeeper.formats import inventory

    return inventory.inventory_table(listing[0], term.width or 0)


def _changes(ch: Changes, term: Terminal) -> str:
    from venvkeeper.formats import inventory

    return inventory.changes_table(ch, term.width or 0)


def _history(h: VenvHistory, term: Terminal) -> str:
    from venvkeeper.formats import inventory

    return inventory.history_table(h, term.width or 0)


def _matrix(m: Matrix, term: Terminal) -> str:
    from venvkeeper.formats import matrix

    return matrix.render_table(m, term.width or 0)


RENDERERS: Mapping[Kind, Renderer] = {
    Kind.SCAN: _scan,
    Kind.SHOW: _show,
    Kind.CODES: _codes,
    Kind.PREDICT: _predict,
    Kind.PLAN: _plan,
    Kind.WHEELHOUSE: _wheelhouse,
    Kind.REPAIR: _repair,
    Kind.ROLLBACK: _rollback,
    Kind.ROLLBACK_LIST: _rollback_list,
    Kind.PRUNE_BACKUPS: _prune_backups,
    Kind.RESTARTS: _restarts,
    Kind.INVENTORY: _inventory,
    Kind.CHANGES: _changes,
    Kind.HISTORY: _history,
    Kind.MATRIX: _matrix,
    Kind.CONSUMERS: _consumers,
}
