"""The inventory: every recorded scan in an embedded SQLite database, and what it tells.

One database per host (WAL needs the readers and writers on one machine). Every scan
is written in one transaction; WAL mode and a busy timeout let two scans record at once.
The schema is versioned with ``PRAGMA user_version`` and marked as ours with
``PRAGMA application_id``; :data:`MIGRATIONS` brings an older database up to date. A
file that is not an SQLite database, not ours, corrupt, or written by a newer venvkeeper
is refused with :class:`InventoryError` and never written to.

When is a venv *vanished*? Scans may cover different roots (``scan /srv`` one hour,
``scan /home`` the next), so a venv missing from a scan is not gone. It is marked
vanished by a scan only when that scan *covered* its place (one of its roots is the venv
or an ancestor of it, and no ``--exclude`` of that scan hides it) **and** the venv's
landmark (``pyvenv.cfg``, or a legacy virtualenv's ``orig-prefix.txt``) is gone from the
disk when the scan is recorded. A venv the walk could not reach although it is still there
(another filesystem with ``--one-file-system``, a network filesystem, an unreadable
directory, container storage) is therefore *not seen*, never vanished.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import sqlite3
import stat
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Optional, Union
from urllib.parse import quote

from venvkeeper import __version__, fsutil
from venvkeeper.errors import InventoryError, InventoryUnavailable, UsageError, os_reason
from venvkeeper.model import (
    ChangeKind,
    Changes,
    Creator,
    Finding,
    HistoryEntry,
    Inventory,
    KnownVenv,
    Presence,
    Report,
    ScanInfo,
    ScanSnapshot,
    Severity,
    VenvChange,
    VenvHistory,
    VenvKind,
    VenvReport,
    VenvSnapshot,
)
from venvkeeper.textutil import escape

#: ``PRAGMA application_id`` of a venvkeeper inventory ("vkin").
APPLICATION_ID = 0x766B696E
#: The schema this venvkeeper writes. ``MIGRATIONS[n]`` brings version n to n + 1.
SCHEMA_VERSION = 1
#: How long a writer waits for another one (a concurrent scan) before giving up.
BUSY_TIMEOUT_SECONDS = 60.0
_SQLITE_MAGIC = b"SQLite format 3\x00"

MIGRATIONS: tuple[tuple[str, ...], ...] = (
    # 0 -> 1: the first schema.
    (
        """CREATE TABLE scans (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            started_at REAL NOT NULL,          -- epoch seconds
            finished_at REAL NOT NULL,
            host TEXT NOT NULL,
            roots TEXT NOT NULL,               -- JSON list (ASCII, exact round trip)
            excludes TEXT NOT NULL,            -- JSON list of --exclude globs
            duration_seconds REAL NOT NULL,
            venvs INTEGER NOT NULL,
            ok INTEGER NOT NULL,
            warning INTEGER NOT NULL,
            unknown INTEGER NOT NULL,
            critical INTEGER NOT NULL,
            tool_version TEXT NOT NULL
        )""",
        """CREATE TABLE venvs (
            id INTEGER PRIMARY KEY,
            path NOT NULL UNIQUE,              -- TEXT, or BLOB when the name is not UTF-8
            first_seen_scan INTEGER NOT NULL REFERENCES scans(id),
            last_seen_scan INTEGER NOT NULL REFERENCES scans(id),
            vanished_scan INTEGER REFERENCES scans(id)  -- NULL while it exists
        )""",
        """CREATE TABLE sightings (
            scan_id INTEGER NOT NULL REFERENCES scans(id),
            venv_id INTEGER NOT NULL REFERENCES venvs(id),
            status TEXT NOT NULL,              -- ok | warning | unknown | critical
            kind TEXT NOT NULL,
            creator TEXT NOT NULL,
            python_recorded,
            python TEXT,
            python_patch TEXT,
            base_executable,
            packages INTEGER NOT NULL,
            PRIMARY KEY (scan_id, venv_id)
        ) WITHOUT ROWID""",
        "CREATE INDEX sightings_by_venv ON sightings (venv_id, scan_id)",
        """CREATE TABLE findings (
            scan_id INTEGER NOT NULL,
            venv_id INTEGER NOT NULL,
            code TEXT NOT NULL,
            severity TEXT NOT NULL,
            message NOT NULL,
            FOREIGN KEY (scan_id, venv_id) REFERENCES sightings (scan_id, venv_id)
        )""",
        "CREATE INDEX findings_by_sighting ON findings (scan_id, venv_id)",
        """CREATE TABLE vanishings (
            venv_id INTEGER NOT NULL REFERENCES venvs(id),
            scan_id INTEGER NOT NULL REFERENCES scans(id),
            PRIMARY KEY (venv_id, scan_id)
        ) WITHOUT ROWID""",
    ),
)
assert len(MIGRATIONS) == SCHEMA_VERSION


def default_path(environ: Optional[Mapping[str, str]] = None, euid: Optional[int] = None) -> str:
    """Where the inventory lives: ``$VENVKEEPER_DB``, else ``/var/lib/venvkeeper`` for
    root, else ``$XDG_STATE_HOME/venvkeeper`` (``~/.local/state/venvkeeper``)."""
    env = os.environ if environ is None else environ
    if env.get("VENVKEEPER_DB"):
        return os.path.abspath(env["VENVKEEPER_DB"])
    if (os.geteuid() if euid is None else euid) == 0:
        return "/var/lib/venvkeeper/inventory.db"
    state = env.get("XDG_STATE_HOME") or ""
    if not os.path.isabs(state):  # the XDG spec: relative values are to be ignored
        state = os.path.join(env.get("HOME") or os.path.expanduser("~"), ".local", "state")
    return os.path.join(state, "venvkeeper", "inventory.db")


# --- text that came from scanned trees --------------------------------------------------

DbText = Union[str, bytes]


def _to_db(text: str) -> DbText:
    """Names from scanned trees may hold bytes that are not UTF-8 (kept as surrogate
    escapes), which SQLite's TEXT cannot hold: those go in as exact bytes."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogateescape")
    return text


def _opt_to_db(text: Optional[str]) -> Optional[DbText]:
    return None if text is None else _to_db(text)


def _from_db(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "surrogateescape")
    return str(value)


def _opt_from_db(value: Any) -> Optional[str]:
    return None if value is None else _from_db(value)


def _enum_or(enum_type: Any, value: Any, default: Any) -> Any:
    """Read an enum leniently: a value a newer venvkeeper wrote reads as *default*."""
    try:
        return enum_type(value)
    except ValueError:
        return default


# --- opening ----------------------------------------------------------------------------


def _refuse(path: str, why: str) -> InventoryError:
    return InventoryError(
        f"inventory {path}: {why}; it was left as it is (move it aside, or use --db PATH or"
        " --no-record)"
    )


def _not_regular(path: str, mode: int) -> Optional[InventoryError]:
    if stat.S_ISREG(mode):
        return None
    if stat.S_ISDIR(mode):
        return _refuse(path, "is a directory")
    if stat.S_ISLNK(mode):
        return _refuse(path, "is a symbolic link: name the file it points to")
    from venvkeeper.fsutil import describe_mode

    return _refuse(path, f"is {describe_mode(mode)}, not a regular file")


def _check_header(path: str) -> None:
    """Raise for a file that is not SQLite (an empty file is a new database), and for
    anything that is not a regular file: a FIFO would block SQLite forever, a device,
    socket or symbolic link is not an inventory. Opened without blocking and without
    following a link, so this check can neither hang nor be led elsewhere."""
    try:
        refused = _not_regular(path, os.lstat(path).st_mode)
        if refused is not None:
            raise refused
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC)
        try:
            refused = _not_regular(path, os.fstat(fd).st_mode)  # replaced meanwhile?
            if refused is not None:
                raise refused
            head = os.read(fd, len(_SQLITE_MAGIC))
        finally:
            os.close(fd)
    except OSError as e:
        raise InventoryUnavailable(f"cannot read inventory {path}: {os_reason(e)}") from e
    if head and head != _SQLITE_MAGIC:
        raise _refuse(path, "is not an SQLite database (garbage or a corrupt file)")


def _create_file(path: str, make_parents: bool) -> None:
    """Create an empty database file (0600): the inventory lists every venv of the host,
    other users' too. Its directory (0700) is created only when *make_parents* (the
    default place): a ``--db`` in a directory that does not exist is a typo, not a
    place to make."""
    try:
        if make_parents:
            os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        os.close(fd)
    except FileExistsError:
        pass  # a concurrent scan made it first
    except OSError as e:
        if e.errno == errno.ENOENT and not make_parents:
            raise InventoryUnavailable(
                f"cannot create inventory {path}: its directory {os.path.dirname(path)} does"
                " not exist (create it first, or give another --db PATH, or --no-record)"
            ) from e
        raise InventoryUnavailable(
            f"cannot create inventory {path}: {os_reason(e)} (use --db PATH for another"
            " place, or --no-record)"
        ) from e


class Store:
    """An open inventory. Use :func:`open_store`; close it (or use it as a context manager)."""

    def __init__(self, path: str, conn: sqlite3.Connection) -> None:
        self.path = path
        self.conn = conn

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        with contextlib.suppress(sqlite3.Error):
            self.conn.close()

    @contextlib.contextmanager
    def _errors(self, doing: str) -> Iterator[None]:
        try:
            yield
        except sqlite3.OperationalError as e:
            if "locked" in str(e) or "busy" in str(e):
                raise InventoryError(
                    f"inventory {self.path} stayed locked by another writer for"
                    f" {BUSY_TIMEOUT_SECONDS:.0f}s while {doing}: try again"
                ) from e
            raise _refuse(self.path, f"{doing} failed: {e}") from e
        except sqlite3.DatabaseError as e:  # "database disk image is malformed", ...
            raise _refuse(self.path, f"{doing} failed: {e} (a corrupt database)") from e

    @contextlib.contextmanager
    def transaction(self, doing: str) -> Iterator[sqlite3.Connection]:
        """One write transaction (``BEGIN IMMEDIATE``: writers queue on the busy timeout
        instead of failing half-way); rolled back on any error or interrupt."""
        with self._errors(doing):
            self.conn.execute("BEGIN IMMEDIATE")
            try:
                yield self.conn
            except BaseException:
                with contextlib.suppress(sqlite3.Error):
                    self.conn.execute("ROLLBACK")
                raise
            self.conn.execute("COMMIT")

    def query(self, sql: str, params: Sequence[Any] = (), doing: str = "reading") -> list[Any]:
        with self._errors(doing):
            return self.conn.execute(sql, params).fetchall()


def open_store(path: str, create: bool = True, *, make_parents: bool = False) -> Store:
    """Open (and when *create*, create) the inventory at *path*, migrated to
    :data:`SCHEMA_VERSION`; *make_parents* also creates its directory (only for the
    default place, never for a path the user typed).

    Raises :class:`InventoryError`, without writing a byte, when the file is not an SQLite
    database, is corrupt, belongs to another application, or has a newer schema; and when
    it does not exist and *create* is false.
    """
    path = os.path.abspath(path)
    exists = os.path.lexists(path)
    if not exists and not create:
        raise InventoryError(
            f"no inventory at {path} yet: run venvkeeper scan to record one (or pass --db PATH)"
        )
    if not exists:
        _create_file(path, make_parents)
    _check_header(path)
    try:
        conn = sqlite3.connect(
            f"file:{quote(path)}?mode=rw",
            uri=True,
            timeout=BUSY_TIMEOUT_SECONDS,
            isolation_level=None,  # we say BEGIN and COMMIT ourselves
        )
    except sqlite3.Error as e:
        raise InventoryUnavailable(f"cannot open inventory {path}: {e}") from e
    store = Store(path, conn)
    try:
        _validate(store)
        with store._errors("setting up"):
            # Only now that the file is known to be ours: WAL rewrites the header.
            _set_wal(conn)
            conn.execute("PRAGMA foreign_keys = ON")
        _migrate(store)
    except BaseException:
        store.close()
        raise
    return store


def _set_wal(conn: sqlite3.Connection) -> None:
    # Switching a new database to WAL takes an exclusive lock, which does not always wait
    # on the busy handler: a concurrent first scan retries for a while.
    deadline = time.monotonic() + BUSY_TIMEOUT_SECONDS
    while True:
        try:
            conn.execute("PRAGMA journal_mode = WAL").fetchall()
            return
        except sqlite3.OperationalError as e:
            if "locked" not in str(e) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def _validate(store: Store) -> None:
    """Refuse what is not ours, or newer than us; reads only."""
    with store._errors("reading its header"):
        app_id = store.conn.execute("PRAGMA application_id").fetchone()[0]
        version = store.conn.execute("PRAGMA user_version").fetchone()[0]
        tables = [
            r[0]
            for r in store.conn.execute(
                "SELECT name FROM sqlite_master WHERE name NOT LIKE 'sqlite_%'"
            )
        ]
    if app_id == 0 and version == 0 and not tables:
        return  # a new, empty database (fresh file or an empty SQLite file)
    if app_id != APPLICATION_ID:
        shown = ", ".join(escape(t) for t in tables[:5]) or "none"
        raise _refuse(
            store.path,
            f"is an SQLite database of another application (tables: {shown}), not a"
            " venvkeeper inventory",
        )
    if version > SCHEMA_VERSION:
        raise _refuse(
            store.path,
            f"has schema version {version}, newer than this venvkeeper's {SCHEMA_VERSION}"
            f" (venvkeeper {__version__}): a newer venvkeeper wrote it; upgrade venvkeeper",
        )
    _check_integrity(store)


def _check_integrity(store: Store) -> None:
    """Refuse a database with corrupt pages, whichever command opens it: a reader would
    otherwise print what the readable pages hold as if it were all. ``quick_check``
    reads every page (linear in the size; no index cross-checks)."""
    with store._errors("checking its integrity"):
        rows = store.conn.execute("PRAGMA quick_check(3)").fetchall()
    problems = [line for r in rows for line in str(r[0]).splitlines() if line.strip()]
    if problems != ["ok"]:
        problems = [p for p in problems if not p.startswith("***")] or problems
        shown = "; ".join(escape(p) for p in problems[:3])
        raise _refuse(store.path, f"is corrupt (SQLite quick_check: {shown})")


def _migrate(store: Store) -> None:
    with store._errors("reading its schema version"):
        if store.conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION:
            return  # current: no write lock needed (readers never wait on writers)
    with store.transaction("migrating") as conn:
        # Read again inside the transaction: a concurrent process may have migrated it.
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise _refuse(store.path, f"has schema version {version}, newer than this venvkeeper")
        for step in MIGRATIONS[version:]:
            for sql in step:
                conn.execute(sql)
        if version < SCHEMA_VERSION:
            conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")


def check_writable(path: str, *, make_parents: bool = False) -> None:
    """Open, validate and migrate the inventory at *path* now, so that a scan that could
    not be recorded fails before it starts rather than after minutes of walking."""
    open_store(path, make_parents=make_parents).close()


# --- recording ----------------------------------------------------------------------------


def snapshot_of_venv(rep: VenvReport) -> VenvSnapshot:
    f = rep.facts
    base = f.base
    return VenvSnapshot(
        path=f.path,
        status=rep.status,
        kind=f.kind,
        creator=f.creator,
        python_recorded=f.recorded_version,
        python=base.version if base else None,
        python_patch=base.patch_version if base else None,
        base_executable=base.executable if base else None,
        packages=len(f.distributions),
        findings=rep.findings,
    )


def snapshot_of(
    report: Report, excludes: Sequence[str] = (), finished_at: Optional[float] = None
) -> ScanSnapshot:
    """The inventory's view of a scan (pure)."""
    duration = report.stats.duration_seconds
    return ScanSnapshot(
        scan_id=None,
        started_at=report.started_at,
        finished_at=finished_at if finished_at is not None else report.started_at + duration,
        host=report.hostname,
        roots=report.roots,
        excludes=tuple(excludes),
        duration_seconds=duration,
        venvs=tuple(snapshot_of_venv(v) for v in report.venvs),
    )


def covers(path: str, roots: Iterable[str], excludes: Sequence[str] = ()) -> bool:
    """Whether a scan of *roots* with these ``--exclude`` globs walks to *path*: a root is
    *path* or an ancestor of it, and no directory on the way down is excluded."""
    from venvkeeper.discovery import compile_excludes

    excluded = compile_excludes(excludes) if excludes else None
    for root in roots:
        root = root.rstrip("/") or "/"
        if path == root:
            below = ""
        elif path.startswith(root if root == "/" else root + "/"):
            below = path[len(root) :].lstrip("/")
        else:
            continue
        if excluded is None:
            return True
        here = root
        hidden = False
        for name in below.split("/") if below else ():
            here = os.path.join(here, name)
            if excluded(here, name):
                hidden = True
                break
        if not hidden:
            return True
    return False


def landmark_gone(path: str, kind: VenvKind) -> bool:
    """True only when the venv at *path* is certainly no longer there: its ``pyvenv.cfg``
    (a legacy virtualenv's ``lib/python*/orig-prefix.txt``) is gone. What we may not look
    at counts as still there."""
    from venvkeeper.fsutil import path_state

    if kind is VenvKind.LEGACY_VIRTUALENV:
        lib = os.path.join(path, "lib")
        state = path_state(lib)
        if state is not True:
            return state is False
        try:
            names = os.listdir(lib)
        except OSError as e:
            return e.errno in (errno.ENOENT, errno.ENOTDIR)
        return not any(
            path_state(os.path.join(lib, n, "orig-prefix.txt")) is not False
            for n in names
            if n.startswith("python")
        )
    if kind is VenvKind.CONDA:
        return path_state(os.path.join(path, "conda-meta")) is False
    return path_state(os.path.join(path, "pyvenv.cfg")) is False


def record(store: Store, snap: ScanSnapshot) -> int:
    """Record one scan in one transaction; returns its id. Venvs this scan covered but did
    not find, and whose landmark is gone, are marked vanished (see the module docstring)."""
    with store.transaction("recording the scan") as conn:
        cur = conn.execute(
            "INSERT INTO scans (started_at, finished_at, host, roots, excludes,"
            " duration_seconds, venvs, ok, warning, unknown, critical, tool_version)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                snap.started_at,
                snap.finished_at,
                escape(snap.host),
                json.dumps(list(snap.roots)),
                json.dumps(list(snap.excludes)),
                snap.duration_seconds,
                len(snap.venvs),
                snap.count(Severity.OK),
                snap.count(Severity.WARNING),
                snap.count(Severity.UNKNOWN),
                snap.count(Severity.CRITICAL),
                __version__,
            ),
        )
        scan_id = int(cur.lastrowid or 0)
        known: dict[str, tuple[int, Optional[int]]] = {
            _from_db(p): (i, v)
            for i, p, v in conn.execute("SELECT id, path, vanished_scan FROM venvs")
        }
        seen: set[int] = set()
        for v in snap.venvs:
            entry = known.get(v.path)
            if entry is None:
                cur = conn.execute(
                    "INSERT INTO venvs (path, first_seen_scan, last_seen_scan) VALUES (?, ?, ?)",
                    (_to_db(v.path), scan_id, scan_id),
                )
                venv_id = int(cur.lastrowid or 0)
                known[v.path] = (venv_id, None)
            else:
                venv_id = entry[0]
                conn.execute(
                    "UPDATE venvs SET last_seen_scan = ?, vanished_scan = NULL WHERE id = ?",
                    (scan_id, venv_id),
                )
            if venv_id in seen:  # the same venv twice in one scan (an alias): keep the first
                continue
            seen.add(venv_id)
            conn.execute(
                "INSERT INTO sightings (scan_id, venv_id, status, kind, creator,"
                " python_recorded, python, python_patch, base_executable, packages)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    scan_id,
                    venv_id,
                    v.status.value,
                    v.kind.value,
                    v.creator.value,
                    _opt_to_db(v.python_recorded),
                    _opt_to_db(v.python),
                    _opt_to_db(v.python_patch),
                    _opt_to_db(v.base_executable),
                    v.packages,
                ),
            )
            conn.executemany(
                "INSERT INTO findings (scan_id, venv_id, code, severity, message)"
                " VALUES (?, ?, ?, ?, ?)",
                [
                    (scan_id, venv_id, f.code, f.severity.value, _to_db(f.message))
                    for f in v.findings
                ],
            )
        # Candidates for vanishing: known, not vanished already, not seen now.
        missing = [
            (path, venv_id)
            for path, (venv_id, vanished) in known.items()
            if vanished is None and venv_id not in seen
        ]
        kinds = dict(
            conn.execute(
                "SELECT s.venv_id, s.kind FROM sightings s JOIN venvs v ON v.id = s.venv_id"
                " AND s.scan_id = v.last_seen_scan"
            ).fetchall()
        )
        for path, venv_id in missing:
            if not covers(path, snap.roots, snap.excludes):
                continue
            kind = _enum_or(VenvKind, kinds.get(venv_id), VenvKind.VENV)
            if landmark_gone(path, kind):
                conn.execute("UPDATE venvs SET vanished_scan = ? WHERE id = ?", (scan_id, venv_id))
                conn.execute(
                    "INSERT INTO vanishings (venv_id, scan_id) VALUES (?, ?)", (venv_id, scan_id)
                )
    return scan_id


def record_report(
    path: str,
    report: Report,
    excludes: Sequence[str] = (),
    finished_at: Optional[float] = None,
    *,
    make_parents: bool = False,
) -> int:
    """Open the inventory at *path*, record *report* in it, close it: the scan's id."""
    snap = snapshot_of(report, excludes, time.time() if finished_at is None else finished_at)
    with open_store(path, make_parents=make_parents) as store:
        return record(store, snap)


# --- reading ------------------------------------------------------------------------------

# Constant SQL: only "?" placeholders ever carry values.
_SELECT_SCANS = (
    "SELECT id, started_at, finished_at, host, roots, excludes, duration_seconds,"
    " venvs, ok, warning, unknown, critical, tool_version FROM scans"
)


def _scan_info(row: Sequence[Any]) -> ScanInfo:
    def strings(text: str) -> tuple[str, ...]:
        try:
            value = fsutil.load_json(text)
        except ValueError:
            return ()
        return tuple(str(x) for x in value) if isinstance(value, list) else ()

    return ScanInfo(
        scan_id=int(row[0]),
        started_at=float(row[1]),
        finished_at=float(row[2]),
        host=_from_db(row[3]),
        roots=strings(row[4]),
        excludes=strings(row[5]),
        duration_seconds=float(row[6]),
        counts={
            "venvs": int(row[7]),
            "ok": int(row[8]),
            "warning": int(row[9]),
            "unknown": int(row[10]),
            "critical": int(row[11]),
        },
        tool_version=_from_db(row[12]),
    )


def scans(store: Store) -> list[ScanInfo]:
    """Every recorded scan, oldest first."""
    return [_scan_info(r) for r in store.query(_SELECT_SCANS + " ORDER BY id")]


def _scan(store: Store, scan_id: int) -> Optional[ScanInfo]:
    rows = store.query(_SELECT_SCANS + " WHERE id = ?", (scan_id,))
    return _scan_info(rows[0]) if rows else None


def latest_scan(store: Store) -> Optional[ScanInfo]:
    rows = store.query(_SELECT_SCANS + " ORDER BY id DESC LIMIT 1")
    return _scan_info(rows[0]) if rows else None


def _snapshots(
    store: Store, pairs: Iterable[tuple[int, int]]
) -> dict[tuple[int, int], VenvSnapshot]:
    """The recorded (scan, venv) sightings of *pairs*, with their findings."""
    wanted = set(pairs)
    if not wanted:
        return {}
    scan_ids = sorted({s for s, _ in wanted})
    out: dict[tuple[int, int], VenvSnapshot] = {}
    findings: dict[tuple[int, int], list[Finding]] = {}
    # A few queries per scan, not one per venv.
    for sid in scan_ids:
        for venv_id, code, severity, message in store.query(
            "SELECT venv_id, code, severity, message FROM findings WHERE scan_id = ?"
            " ORDER BY rowid",
            (sid,),
        ):
            if (sid, venv_id) in wanted:
                findings.setdefault((sid, venv_id), []).append(
                    Finding(
                        _from_db(code),
                        _enum_or(Severity, severity, Severity.UNKNOWN),
                        _from_db(message),
                    )
                )
        for row in store.query(
            "SELECT s.venv_id, v.path, s.status, s.kind, s.creator, s.python_recorded,"
            " s.python, s.python_patch, s.base_executable, s.packages"
            " FROM sightings s JOIN venvs v ON v.id = s.venv_id WHERE s.scan_id = ?",
            (sid,),
        ):
            key = (sid, int(row[0]))
            if key not in wanted:
                continue
            out[key] = VenvSnapshot(
                path=_from_db(row[1]),
                status=_enum_or(Severity, row[2], Severity.UNKNOWN),
                kind=_enum_or(VenvKind, row[3], VenvKind.VENV),
                creator=_enum_or(Creator, row[4], Creator.UNKNOWN),
                python_recorded=_opt_from_db(row[5]),
                python=_opt_from_db(row[6]),
                python_patch=_opt_from_db(row[7]),
                base_executable=_opt_from_db(row[8]),
                packages=int(row[9]),
                findings=tuple(findings.get(key, ())),
            )
    return out


def inventory(store: Store) -> Inventory:
    """Every known venv with its presence after the latest scan, worst first."""
    latest = latest_scan(store)
    count = int(store.query("SELECT COUNT(*) FROM scans")[0][0])
    rows = store.query(
        "SELECT v.id, v.first_seen_scan, f.started_at, v.last_seen_scan, l.started_at,"
        " v.vanished_scan, x.started_at"
        " FROM venvs v JOIN scans f ON f.id = v.first_seen_scan"
        " JOIN scans l ON l.id = v.last_seen_scan"
        " LEFT JOIN scans x ON x.id = v.vanished_scan"
    )
    snaps = _snapshots(store, ((int(r[3]), int(r[0])) for r in rows))
    venvs: list[KnownVenv] = []
    for vid, first, first_at, last, last_at, vanished, vanished_at in rows:
        snap = snaps.get((int(last), int(vid)))
        if snap is None:  # only a database edited by hand lacks it
            continue
        if vanished is not None:
            presence = Presence.VANISHED
        elif latest is not None and last == latest.scan_id:
            presence = Presence.SEEN
        else:
            presence = Presence.NOT_SEEN
        venvs.append(
            KnownVenv(
                path=snap.path,
                presence=presence,
                last=snap,
                first_seen_scan=int(first),
                first_seen_at=float(first_at),
                last_seen_scan=int(last),
                last_seen_at=float(last_at),
                vanished_scan=None if vanished is None else int(vanished),
                vanished_at=None if vanished_at is None else float(vanished_at),
            )
        )
    order = {Presence.SEEN: 0, Presence.NOT_SEEN: 1, Presence.VANISHED: 2}
    venvs.sort(key=lambda k: (order[k.presence], -k.last.status.rank, k.path))
    return Inventory(latest=latest, scans=count, venvs=tuple(venvs))


def last_snapshot(store: Store) -> ScanSnapshot:
    """The latest recorded scan with its venvs (``export --from-inventory``)."""
    latest = latest_scan(store)
    if latest is None:
        raise InventoryError(f"inventory {store.path} holds no scan yet: run venvkeeper scan first")
    ids = [
        int(r[0])
        for r in store.query("SELECT venv_id FROM sightings WHERE scan_id = ?", (latest.scan_id,))
    ]
    snaps = _snapshots(store, ((latest.scan_id, i) for i in ids))
    venvs = sorted(snaps.values(), key=lambda v: (-v.status.rank, v.path))
    return ScanSnapshot(
        scan_id=latest.scan_id,
        started_at=latest.started_at,
        finished_at=latest.finished_at,
        host=latest.host,
        roots=latest.roots,
        excludes=latest.excludes,
        duration_seconds=latest.duration_seconds,
        venvs=tuple(venvs),
    )


# --- changes ------------------------------------------------------------------------------

_DURATION = re.compile(r"(\d+)([smhdw])")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


@dataclass(frozen=True)
class Since:
    """A starting point for :func:`changes`: a scan id, or an age in seconds."""

    scan_id: Optional[int] = None
    seconds: Optional[float] = None


def parse_since(text: str) -> Since:
    """``12`` is scan 12; ``30m``, ``12h``, ``1d``, ``2w`` (and ``90s``) are ages."""
    text = text.strip()
    if text.isdigit():
        return Since(scan_id=int(text))
    m = _DURATION.fullmatch(text)
    if not m:
        raise UsageError(
            f"--since {escape(text)}: give a scan id (e.g. 12) or a duration such as 30m,"
            " 12h, 1d or 2w"
        )
    return Since(seconds=float(int(m.group(1)) * _UNIT_SECONDS[m.group(2)]))


def _state_as_of(store: Store, scan_id: int) -> dict[int, tuple[int, bool]]:
    """venv id -> (scan of its latest event at or before *scan_id*, vanished by it)."""
    state: dict[int, tuple[int, bool]] = {}
    for vid, sid in store.query(
        "SELECT venv_id, MAX(scan_id) FROM sightings WHERE scan_id <= ? GROUP BY venv_id",
        (scan_id,),
    ):
        state[int(vid)] = (int(sid), False)
    for vid, sid in store.query(
        "SELECT venv_id, MAX(scan_id) FROM vanishings WHERE scan_id <= ? GROUP BY venv_id",
        (scan_id,),
    ):
        seen = state.get(int(vid))
        if seen is None or int(sid) > seen[0]:
            state[int(vid)] = (int(sid), True)
    return state


def changes(store: Store, since: Optional[Since] = None, now: Optional[float] = None) -> Changes:
    """What changed from a starting point (default: the scan before the latest) to the
    latest scan. Each venv's state at a point is its latest record at or before it, so
    scans of other roots in between neither hide nor invent changes."""
    latest = latest_scan(store)
    if latest is None:
        raise InventoryError(f"inventory {store.path} holds no scan yet: run venvkeeper scan")
    base: Optional[ScanInfo]
    if since is None:
        rows = store.query(
            _SELECT_SCANS + " WHERE id < ? ORDER BY id DESC LIMIT 1",
            (latest.scan_id,),
        )
        base = _scan_info(rows[0]) if rows else None
    elif since.scan_id is not None:
        base = _scan(store, since.scan_id)
        if base is None:
            raise UsageError(
                f"--since {since.scan_id}: no such scan in {store.path}"
                " (venvkeeper inventory --json lists the latest one)"
            )
    else:
        point = (time.time() if now is None else now) - (since.seconds or 0.0)
        rows = store.query(
            _SELECT_SCANS + " WHERE started_at <= ? ORDER BY id DESC LIMIT 1",
            (point,),
        )
        base = _scan_info(rows[0]) if rows else None
    before = _state_as_of(store, base.scan_id) if base is not None else {}
    after = _state_as_of(store, latest.scan_id)
    # The snapshots needed: each venv's latest sighting at both points.
    last_sighting: dict[tuple[int, int], int] = {}
    for point_state, label in ((before, 0), (after, 1)):
        for vid, (sid, vanished) in point_state.items():
            if not vanished:
                last_sighting[(label, vid)] = sid
    last_seen = {
        int(vid): int(sid)
        for vid, sid in store.query(
            "SELECT venv_id, MAX(scan_id) FROM sightings WHERE scan_id <= ? GROUP BY venv_id",
            (latest.scan_id,),
        )
    }
    pairs = {(sid, vid) for (_, vid), sid in last_sighting.items()}
    pairs |= {(sid, vid) for vid, sid in last_seen.items()}
    snaps = _snapshots(store, pairs)
    out: list[VenvChange] = []
    for vid, (_, gone_after) in after.items():
        was = before.get(vid)
        present_before = was is not None and not was[1]
        before_snap = snaps.get((last_sighting[(0, vid)], vid)) if present_before else None
        if gone_after:
            if present_before and before_snap is not None:
                snap = snaps[(last_seen[vid], vid)]
                out.append(
                    VenvChange(snap.path, ChangeKind.VANISHED, before_snap.status, None, snap)
                )
            continue
        snap = snaps[(last_sighting[(1, vid)], vid)]
        if before_snap is None:
            out.append(
                VenvChange(
                    snap.path,
                    ChangeKind.NEW,
                    None,
                    snap.status,
                    snap,
                    reappeared=was is not None,
                )
            )
            continue
        old, new = before_snap.status, snap.status
        if new.rank > old.rank:
            kind = ChangeKind.BROKEN
        elif new.rank < old.rank:
            kind = ChangeKind.FIXED if new is Severity.OK else ChangeKind.IMPROVED
        else:
            continue
        out.append(VenvChange(snap.path, kind, old, new, snap))
    order = list(ChangeKind)
    out.sort(key=lambda c: (order.index(c.kind), -(c.after or Severity.OK).rank, c.path))
    return Changes(since=base, until=latest, changes=tuple(out))


# --- history ------------------------------------------------------------------------------


def history(store: Store, path: str) -> VenvHistory:
    """Every scan that saw the venv at *path*, and each one that found it gone."""
    candidates = [os.path.abspath(path)]
    real = os.path.realpath(path)
    if real not in candidates:
        candidates.append(real)
    row = None
    for cand in candidates:
        rows = store.query(
            "SELECT id, vanished_scan, last_seen_scan FROM venvs WHERE path = ?", (_to_db(cand),)
        )
        if rows:
            row = rows[0]
            break
    if row is None:
        raise UsageError(
            f"{escape(os.path.abspath(path))} is not in the inventory {store.path}: no recorded"
            " scan found a venv there (venvkeeper inventory lists the known ones)"
        )
    venv_id = int(row[0])
    latest = latest_scan(store)
    seen = [
        int(r[0])
        for r in store.query(
            "SELECT scan_id FROM sightings WHERE venv_id = ? ORDER BY scan_id", (venv_id,)
        )
    ]
    gone = [
        int(r[0])
        for r in store.query(
            "SELECT scan_id FROM vanishings WHERE venv_id = ? ORDER BY scan_id", (venv_id,)
        )
    ]
    snaps = _snapshots(store, ((s, venv_id) for s in seen))
    infos = {s.scan_id: s for s in _scans_by_id(store, set(seen) | set(gone))}
    entries = [HistoryEntry(infos[s], False, snaps[(s, venv_id)]) for s in seen] + [
        HistoryEntry(infos[s], True, None) for s in gone
    ]
    entries.sort(key=lambda e: e.scan.scan_id)
    if row[1] is not None:
        presence = Presence.VANISHED
    elif latest is not None and int(row[2]) == latest.scan_id:
        presence = Presence.SEEN
    else:
        presence = Presence.NOT_SEEN
    name = snaps[(seen[-1], venv_id)].path if seen else os.path.abspath(path)
    return VenvHistory(path=name, presence=presence, entries=tuple(entries))


def _scans_by_id(store: Store, ids: set[int]) -> list[ScanInfo]:
    if not ids:
        return []
    # Chunked: SQLite limits the number of bound parameters.
    out: list[ScanInfo] = []
    ordered = sorted(ids)
    for i in range(0, len(ordered), 500):
        chunk = ordered[i : i + 500]
        marks = ",".join("?" * len(chunk))
        sql = _SELECT_SCANS + f" WHERE id IN ({marks})"
        out += [_scan_info(r) for r in store.query(sql, chunk)]
    return out
