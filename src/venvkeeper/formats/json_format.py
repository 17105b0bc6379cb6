"""The ``json`` format (``--json``): one document in the envelope of
:mod:`venvkeeper.formats.envelope`, valid against its kind's shipped JSON Schema. The
terminal and the display options change nothing in it."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Optional

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
    report: Report, term: Terminal, *, used_by: Optional[UsedBy] = None, **_: Any
) -> Iterator[str]:
    from venvkeeper.formats import json

    return json.render_chunks(report, used_by)  # a venv at a time: a host's scan is large


def _show(
    rep: VenvReport, term: Terminal, *, consumers: Optional[Sequence[Consumer]] = None, **_: Any
) -> str:
    from venvkeeper.formats import json

    return json.render_venv(rep, consumers)


def _consumers(report: ConsumerReport, term: Terminal, **_: Any) -> str:
    from venvkeeper.formats import consumers

    return consumers.render_json(report)


def _codes(codes: Mapping[str, CodeDoc], term: Terminal, **_: Any) -> str:
    from venvkeeper.formats import json

    return json.render_codes(codes)


def _predict(pred: Prediction, term: Terminal, **_: Any) -> str:
    from venvkeeper.formats import predict

    return predict.render_json(pred)


def _plan(pred: Prediction, term: Terminal, **_: Any) -> str:
    from venvkeeper.formats import predict

    return predict.render_json(pred, Kind.PLAN)


def _wheelhouse(report: WheelhouseReport, term: Terminal, **_: Any) -> str:
    from venvkeeper.formats import repair

    return repair.render_wheelhouse_json(report)


def _repair(
    results: Sequence[RepairResult],
    term: Terminal,
    *,
    consumers: Optional[Sequence[ConsumerAction]] = None,
    **_: Any,
) -> str:
    from venvkeeper.formats import repair

    return repair.render_json(results, consumers=consumers)


def _rollback(result: RepairResult, term: Terminal, **_: Any) -> str:
    from venvkeeper.formats import repair

    return repair.render_json([result], Kind.ROLLBACK)


def _rollback_list(listing: tuple[str, Sequence[Backup]], term: Terminal, **_: Any) -> str:
    from venvkeeper.formats import repair

    return repair.render_backups_json(*listing)


def _prune_backups(
    pruned: Sequence[tuple[str, Sequence[str], Optional[str]]], term: Terminal, **_: Any
) -> str:
    from venvkeeper.formats import repair

    return repair.render_pruned_json(pruned)


def _restarts(report: RestartReport, term: Terminal, **_: Any) -> str:
    from venvkeeper.formats import restarts

    return restarts.render_json(report)


def _inventory(listing: tuple[Inventory, str], term: Terminal, **_: Any) -> str:
    from venvkeeper.formats import inventory

    return inventory.inventory_json(*listing)


def _changes(ch: Changes, term: Terminal, **_: Any) -> str:
    from venvkeeper.formats import inventory

    return inventory.changes_json(ch)


def _history(h: VenvHistory, term: Terminal, **_: Any) -> str:
    from venvkeeper.formats import inventory

    return inventory.history_json(h)


def _matrix(m: Matrix, term: Terminal, **_: Any) -> str:
    from venvkeeper.formats import matrix

    return matrix.render_json(m)


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
