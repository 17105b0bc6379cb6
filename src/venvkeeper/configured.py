"""A scan as the site configured it: the one road of every command that scans.

``scan``, ``predict``, ``plan``, ``wheelhouse``, ``matrix``, ``repair --all``, ``check``,
``export`` and both apt hooks scan through :func:`scan_as_configured`. It takes the
configuration (``[scan] roots``, ``exclude``, ``network_filesystems``, ``one_file_system``,
and the policy: ``ignore``, ``allowed_bases``, ``[severity]``) and what the command line
says (:class:`ScanRequest`: ROOTs replace ``roots``, ``--exclude`` adds to ``exclude``, the
two booleans override the file's), walks, applies the policy, and records the scan in the
inventory when the command records (:class:`Recording`). A command cannot forget a part
of the configuration: it has no other way to scan.

A recorded scan is incremental (:mod:`venvkeeper.scan.incremental`): it reuses what the
inventory kept of the venvs and directories unchanged since the last scan, and keeps
what it read for the next one; ``--full`` (``Recording.full``) reads everything again.
After a package run, :func:`judge_changed` (the apt post-invoke hook) judges only the
venvs whose verdict depends on the files it changed, from the facts the inventory kept,
and falls back to a scan, saying why in one line, when the inventory cannot stand for the
host. ``restarts`` judges the venvs of
running processes one by one, with :func:`venvkeeper.scan.pipeline.judge_venv` under the
same policy.

It sits below :mod:`venvkeeper.apt` (the hooks call it) and above the stages it joins
(scan, checks' policy, inventory); the configuration file itself is read by
:mod:`venvkeeper.config`, whose ``Config`` is a :class:`ScanConfig`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Optional, Protocol, Union

if TYPE_CHECKING:
    from venvkeeper.inventory.reuse import Incremental, Rejudged
    from venvkeeper.model.policy import Policy
    from venvkeeper.model.report import Report
    from venvkeeper.scan.pipeline import Progress, ScanOptions


class ScanConfig(Protocol):
    """What a scan takes from the configuration (:class:`venvkeeper.config.Config` is
    one). Empty or None: not set, the built-in default applies."""

    @property
    def roots(self) -> tuple[str, ...]: ...

    @property
    def exclude(self) -> tuple[str, ...]: ...

    @property
    def network_filesystems(self) -> Optional[bool]: ...

    @property
    def one_file_system(self) -> Optional[bool]: ...

    @property
    def policy(self) -> Policy: ...


@dataclass(frozen=True)
class Recording:
    """Where a scan is recorded. *named*: the inventory was named (``--db``,
    ``$VENVKEEPER_DB``) and must work; the default place may be created, and one that
    cannot be (no writable home, a read-only filesystem) costs a warning, not the scan.
    *lenient* (the apt hooks): no failure to record is ever more than a warning.
    *full* (``--full``): read every venv and list every directory again, instead of
    reusing what this inventory kept of those unchanged since its last scan."""

    db: str
    named: bool = False
    lenient: bool = False
    full: bool = False


@dataclass(frozen=True)
class ScanRequest:
    """What the command line says about a scan; None and empty: as configured."""

    roots: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()  # added to the configuration's
    all_dirs: bool = False
    one_file_system: Optional[bool] = None
    include_network: Optional[bool] = None
    size: bool = False
    deep: bool = False
    deep_timeout: float = 30.0
    workers: Optional[int] = None
    other_roots: bool = True  # judge a venv inside another OS root as that root sees it
    record: Optional[Recording] = None


@dataclass(frozen=True)
class Scanned:
    """A scan as configured: its report (the policy applied) and the options it ran with."""

    report: Report
    options: ScanOptions


def _either(option: Optional[bool], configured: Optional[bool]) -> bool:
    return option if option is not None else bool(configured)


def options_for(config: ScanConfig, request: ScanRequest) -> ScanOptions:
    """The scan's options: the configuration under the command line's. Each root must be a
    directory this process may list: a root that cannot be is an error (exit 3), since an
    empty scan would say "OK, no venvs"."""
    from venvkeeper.host.fsutil import check_directory
    from venvkeeper.scan.pipeline import ScanOptions

    opts = ScanOptions(
        roots=request.roots or config.roots,
        exclude=config.exclude + request.exclude,
        all_dirs=request.all_dirs,
        one_file_system=_either(request.one_file_system, config.one_file_system),
        include_network=_either(request.include_network, config.network_filesystems),
        size=request.size,
        deep=request.deep,
        deep_timeout=request.deep_timeout,
        other_roots=request.other_roots,
    )
    if request.workers:
        opts = dataclasses.replace(opts, walk_workers=request.workers)
    for r in opts.roots:
        check_directory(r)
    return opts


def _ignore(message: str) -> None:
    pass


def scan_as_configured(
    config: ScanConfig,
    request: ScanRequest,
    *,
    progress: Optional[Progress] = None,
    warn: Callable[[str], None] = _ignore,
) -> Scanned:
    """Scan as *config* and *request* say, with the site policy applied, recorded in
    ``request.record`` when given. An inventory that cannot take the scan is found out
    before the walk (not after minutes of it); what the :class:`Recording` allows to fail
    is told to *warn* and the scan goes on unrecorded."""
    options = options_for(config, request)
    record = _writable(request.record, warn)
    inc = _incremental(record, options, warn, config.policy)
    return _scan(config, options, record, inc, progress, warn)


def _scan(
    config: ScanConfig,
    options: ScanOptions,
    record: Optional[Recording],
    inc: Optional[Incremental],
    progress: Optional[Progress],
    warn: Callable[[str], None],
) -> Scanned:
    from venvkeeper.checks.policy import apply
    from venvkeeper.scan import pipeline

    reuse = inc.reuse if inc is not None else None
    report = apply(pipeline.scan(options=options, progress=progress, reuse=reuse), config.policy)
    if record is not None:
        _record(config, record, report, options, warn, inc)
    return Scanned(report, options)


def _incremental(
    record: Optional[Recording],
    options: ScanOptions,
    warn: Callable[[str], None],
    policy: Optional[Policy] = None,
) -> Optional[Incremental]:
    """What a recorded scan may take from its inventory, and gathers for the next scan;
    None when it does not record, with ``--deep`` or ``--size`` (they read more than is
    kept), or when the inventory may not be used (told to *warn*: then every venv is read,
    and nothing is kept)."""
    if record is None or options.size or options.deep:
        return None
    from venvkeeper.inventory.reuse import prepare

    inc, why = prepare(record.db, full=record.full, collect=True, policy=policy)
    if why:
        warn(f"reading every venv again: {why}")
    return inc


def judge_changed(
    config: ScanConfig,
    request: ScanRequest,
    paths: frozenset[str],
    shipped: Sequence[str] = (),
    *,
    warn: Callable[[str], None] = _ignore,
) -> Union[Scanned, Rejudged]:
    """After a package run that changed the host files *paths* (interpreters, stdlibs,
    headers, embedding modules) and the venvs *shipped* in packages: only the venvs under
    the configured roots whose verdict depends on one of *paths*, and *shipped*, judged
    again from the facts ``request.record``'s inventory kept (no walk), the policy
    applied, and recorded there (:class:`~venvkeeper.inventory.reuse.Rejudged`). When
    that inventory cannot stand for the host (none, not trusted, of other roots, stale),
    one line to *warn* says why and every venv is scanned (:class:`Scanned`)."""

    options = options_for(config, request)
    roots = options.roots or ("/",)
    record = request.record
    why = "this check records in no inventory"
    if record is not None:
        judged, why = _judge_kept(config, options, record, roots, paths, shipped, warn)
        if judged is not None:
            return judged
    warn(f"{why}: judging every venv")
    record = _writable(record, warn)
    inc = _incremental(record, options, _ignore, config.policy)  # (why not: told)
    return _scan(config, options, record, inc, None, warn)


def _judge_kept(
    config: ScanConfig,
    options: ScanOptions,
    record: Recording,
    roots: Sequence[str],
    paths: frozenset[str],
    shipped: Sequence[str],
    warn: Callable[[str], None],
) -> tuple[Optional[Rejudged], str]:
    """:func:`judge_changed` from what *record*'s inventory kept, recorded there; or
    (None, why it cannot stand for the host)."""
    from venvkeeper.errors import VenvkeeperError
    from venvkeeper.inventory import reuse

    store, why = reuse.open_for_reuse(record.db)
    if store is None:
        return None, why or f"no inventory at {record.db} yet"
    with store:
        try:
            kept = reuse.load(store, listings=False, own=False)
        except VenvkeeperError as e:
            return None, str(e)
        why = reuse.covered_by(kept, roots, options.exclude) or ""
        if why:
            return None, why
        venvs = reuse.depending_on(kept, paths, roots, options.exclude)
        again = reuse.within(shipped, roots, options.exclude)
        judged = reuse.rejudge(
            kept, venvs, again, options, config.policy, own_of=reuse.own_reader(store)
        )
        try:
            reuse.record_rejudged(store, judged, kept)
        except VenvkeeperError as e:
            if not record.lenient:
                raise
            warn(f"this check is not recorded: {e}")
    return judged, ""


def _writable(record: Optional[Recording], warn: Callable[[str], None]) -> Optional[Recording]:
    """*record* when its inventory can take a scan now, else None (warned) or an error."""
    if record is None:
        return None
    from venvkeeper.errors import InventoryUnavailable, VenvkeeperError
    from venvkeeper.inventory.store import check_writable

    try:
        check_writable(record.db, make_parents=not record.named)
    except VenvkeeperError as e:
        if not (record.lenient or (isinstance(e, InventoryUnavailable) and not record.named)):
            raise
        warn(f"this scan is not recorded: {e}")
        return None
    return record


def _record(
    config: ScanConfig,
    record: Recording,
    report: Report,
    options: ScanOptions,
    warn: Callable[[str], None],
    inc: Optional[Incremental] = None,
) -> None:
    from venvkeeper.errors import VenvkeeperError
    from venvkeeper.inventory.reuse import record_and_keep

    try:
        record_and_keep(
            record.db,
            report,
            options.exclude,
            inc,
            make_parents=not record.named,
            policy=config.policy,
        )
    except VenvkeeperError as e:
        if not record.lenient:
            raise
        warn(f"this scan is not recorded: {e}")
