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
import os
import sqlite3
import stat
import time
from collections.abc import Iterator, Sequence
from typing import Any, Optional, Union
from urllib.parse import quote

from venvkeeper import __version__
from venvkeeper.errors import InventoryError, InventoryUnavailable, os_reason
from venvkeeper.inventory.paths import default_path as default_path  # re-exported
from venvkeeper.textutil import escape

#: ``PRAGMA application_id`` of a venvkeeper inventory ("vkin").
APPLICATION_ID = 0x766B696E


#: The schema this venvkeeper writes. ``MIGRATIONS[n]`` brings version n to n + 1.
SCHEMA_VERSION = 3


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
    # 1 -> 2: what a scan keeps for the next one (venvkeeper.inventory.reuse): incremental
    # scans, and the apt hooks' judging of only the venvs an apt run can change.
    (
        """CREATE TABLE reuse_facts (
            path NOT NULL PRIMARY KEY,         -- TEXT, or BLOB when the name is not UTF-8
            fingerprint BLOB,                  -- NULL: changed too recently to trust it
            checks TEXT NOT NULL,              -- what to look at to fingerprint it again
            own TEXT NOT NULL,                 -- the venv's own facts (scan.codec, JSON)
            depends TEXT NOT NULL,             -- JSON list of host paths its verdict reads
            grp TEXT,                          -- its group (scan.grouping), NULL: none
            reads INTEGER,                     -- what its verdict read of its base view
            verdict TEXT                       -- its last verdict (JSON), for its group
        )""",
        """CREATE TABLE reuse_groups (
            key TEXT PRIMARY KEY,              -- a group of venvs that share a base view
            view TEXT NOT NULL                 -- that view: JSON of each part's digest
        )""",
        """CREATE TABLE reuse_listings (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            data BLOB NOT NULL                 -- zlib of a JSON object: path -> listing
        )""",
        """CREATE TABLE reuse_meta (
            key TEXT PRIMARY KEY,              -- signature identity roots excludes policy saved_at
            value TEXT NOT NULL
        )""",
    ),
    # 2 -> 3: what a venv's verdict asked of the host besides its base view (JSON of each
    # question and its answer; NULL: unknown, or not to be kept on them): an incremental
    # scan keeps the verdict of a venv whose every input is unchanged.
    ("ALTER TABLE reuse_facts ADD COLUMN asks TEXT",),
)


assert len(MIGRATIONS) == SCHEMA_VERSION


DbText = Union[str, bytes]


def to_db(text: str) -> DbText:
    """Names from scanned trees may hold bytes that are not UTF-8 (kept as surrogate
    escapes), which SQLite's TEXT cannot hold: those go in as exact bytes."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogateescape")
    return text


def opt_to_db(text: Optional[str]) -> Optional[DbText]:
    return None if text is None else to_db(text)


def from_db(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "surrogateescape")
    return str(value)


def opt_from_db(value: Any) -> Optional[str]:
    return None if value is None else from_db(value)


def enum_or(enum_type: Any, value: Any, default: Any) -> Any:
    """Read an enum leniently: a value a newer venvkeeper wrote reads as *default*."""
    try:
        return enum_type(value)
    except ValueError:
        return default


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
    from venvkeeper.host.fsutil import describe_mode

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
            f"no inventory at {path} yet: run `venvkeeper scan` to record one (or pass --db PATH)"
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
    """Refuse what is not ours, or newer than us; reads only.

    The application id, the schema version and the tables are read in one read
    transaction, one snapshot of the file: read one by one, another process's first
    migration could commit between them (an id of 0 read before it, its tables after:
    "another application"). A migration waits for the snapshot to end."""
    conn = store.conn
    with store._errors("reading its header"):
        conn.execute("BEGIN")
        try:
            app_id = conn.execute("PRAGMA application_id").fetchone()[0]
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            tables = [
                r[0]
                for r in conn.execute(
                    "SELECT name FROM sqlite_master WHERE name NOT LIKE 'sqlite_%'"
                )
            ]
        finally:
            conn.execute("ROLLBACK")  # read only: nothing to keep
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


#: path -> the state of the database and its WAL when this process last found it whole
_WHOLE: dict[str, tuple[Any, ...]] = {}


def _file_state(path: str) -> tuple[Any, ...]:
    """What changes when a byte of the database (or of its write-ahead log) does."""
    out: list[Any] = []
    for p in (path, path + "-wal"):
        try:
            st = os.stat(p)
        except OSError:
            out.append(None)
            continue
        if st.st_size or p == path:  # (an empty log comes and goes with each connection)
            out += (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
        else:
            out.append(None)
    return tuple(out)


def _check_integrity(store: Store) -> None:
    """Refuse a database with corrupt pages, whichever command opens it: a reader would
    otherwise print what the readable pages hold as if it were all. ``quick_check``
    reads every page (linear in the size; no index cross-checks): a scan opens its
    inventory up to three times, so a database this process found whole, and no byte of
    which (nor of its log) was written since, is not read again."""
    state = _file_state(store.path)
    if _WHOLE.get(store.path) == state:
        return
    with store._errors("checking its integrity"):
        rows = store.conn.execute("PRAGMA quick_check(3)").fetchall()
    problems = [line for r in rows for line in str(r[0]).splitlines() if line.strip()]
    if problems != ["ok"]:
        problems = [p for p in problems if not p.startswith("***")] or problems
        shown = "; ".join(escape(p) for p in problems[:3])
        raise _refuse(store.path, f"is corrupt (SQLite quick_check: {shown})")
    _WHOLE[store.path] = state


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
