"""What the inventory keeps for the next scan: each venv's fingerprint and own facts, the
host paths its verdict depends on, and the walk's directory listings
(:mod:`venvkeeper.scan.incremental`).

The inventory lists every venv of the host with its facts: root trusts it only when root
owns it and its directory and nobody else may write either (:func:`untrusted`); anything
else is read again, with one line saying why. Kept facts are tied to the model's shape and
venvkeeper's version (:data:`venvkeeper.scan.codec.SIGNATURE`) and listings to the user
that listed (:func:`venvkeeper.scan.incremental.identity`): another version or another
user starts cold.
"""

from __future__ import annotations

import json
import os
import stat
import time
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Optional

from venvkeeper.errors import VenvkeeperError
from venvkeeper.inventory.store import Store, _from_db, _to_db, open_store
from venvkeeper.model.report import Report
from venvkeeper.scan.incremental import Listing, Reuse, depends_of, identity
from venvkeeper.textutil import escape

#: The most a listings blob may weigh once inflated (some hundred bytes per directory).
LISTINGS_LIMIT = 1 << 30


def untrusted(path: str, euid: Optional[int] = None) -> Optional[str]:
    """Why the state file *path* (the inventory, the apt hooks' record) may not be trusted
    by this process: None when it may. Root trusts only what root owns, in a directory
    root owns, neither writable by anyone else (a group other than root's, or others);
    another user also trusts what it owns itself."""
    euid = os.geteuid() if euid is None else euid
    trusted_owners = (0,) if euid == 0 else (0, euid)
    for p, want_dir in ((os.path.dirname(path) or "/", True), (path, False)):
        try:
            st = os.lstat(p)
        except OSError as e:
            return f"{p}: {e.strerror or e}"
        if want_dir != stat.S_ISDIR(st.st_mode) or (not want_dir and not stat.S_ISREG(st.st_mode)):
            return f"{p} is not a {'directory' if want_dir else 'regular file'}"
        if st.st_uid not in trusted_owners:
            who = "root" if euid == 0 else "root or this user"
            return f"{p} is owned by uid {st.st_uid}, not {who}"
        if st.st_mode & stat.S_IWOTH or (st.st_mode & stat.S_IWGRP and st.st_gid != 0):
            return f"{p} may be written by other users (mode {stat.S_IMODE(st.st_mode):o})"
    return None


@dataclass
class Kept:
    """What the inventory holds for reuse, as loaded: the venvs' rows and the listings."""

    facts: dict[str, tuple[Optional[bytes], str]] = field(default_factory=dict)
    depends: dict[str, str] = field(default_factory=dict)  # path -> JSON list
    listings: dict[str, Listing] = field(default_factory=dict)
    listings_valid: bool = False
    roots: tuple[str, ...] = ()  # of the last scan that saved its facts
    saved_at: float = 0.0


def _meta(store: Store) -> dict[str, Any]:
    return {k: v for k, v in store.query("SELECT key, value FROM reuse_meta")}


def load(store: Store, *, listings: bool = True) -> Kept:
    """Everything kept for reuse by *store*, under this venvkeeper's signature (nothing,
    else). Listings made by another user are left out."""
    from venvkeeper.scan.codec import SIGNATURE

    meta = _meta(store)
    kept = Kept()
    if meta.get("signature") != SIGNATURE:
        return kept
    try:
        kept.roots = tuple(json.loads(meta.get("roots") or "[]"))
        kept.saved_at = float(meta.get("saved_at") or 0.0)
    except (ValueError, TypeError):
        return Kept()
    for path, fp, own, depends in store.query(
        "SELECT path, fingerprint, own, depends FROM reuse_facts"
    ):
        p = _from_db(path)
        kept.facts[p] = (bytes(fp) if fp is not None else None, own)
        kept.depends[p] = depends
    if listings and meta.get("identity") == identity():
        kept.listings = _load_listings(store)
        kept.listings_valid = True
    return kept


def _load_listings(store: Store) -> dict[str, Listing]:
    rows = store.query("SELECT data FROM reuse_listings WHERE id = 1")
    if not rows or rows[0][0] is None:
        return {}
    try:
        d = zlib.decompressobj()
        text = d.decompress(bytes(rows[0][0]), LISTINGS_LIMIT)
        doc = json.loads(text)
    except (zlib.error, ValueError):
        return {}
    if not isinstance(doc, dict) or not all(type(v) is list and len(v) == 8 for v in doc.values()):
        return {}
    return doc


def reuse_from(kept: Kept, *, full: bool, collect: bool) -> Reuse:
    """A :class:`Reuse` for the next scan from what *store* kept: nothing to reuse with
    *full* (a cold scan), but with *collect* it still gathers what the scan after needs."""
    from venvkeeper.scan.codec import decode

    facts = {} if full else {p: (fp, own) for p, (fp, own) in kept.facts.items() if fp}
    return Reuse(
        facts=facts,
        decode=decode,
        listings={} if full else kept.listings,
        collect=collect,
        listings_roots=kept.roots,
    )


def open_for_reuse(path: str) -> tuple[Optional[Store], Optional[str]]:
    """The inventory at *path*, when it exists and may be trusted; else (None, why not)."""
    if not os.path.lexists(path):
        return None, None
    why = untrusted(path)
    if why is not None:
        return None, f"the inventory is not trusted ({why})"
    try:
        return open_store(path, create=False), None
    except VenvkeeperError as e:
        return None, str(e)


def _covered(path: str, roots: Sequence[str]) -> bool:
    for r in roots:
        r = r.rstrip("/")
        if path == r or path.startswith(r + "/") or not r:
            return True
    return False


def save(
    store: Store,
    reuse: Reuse,
    report: Report,
    kept: Optional[Kept] = None,
    excludes: Sequence[str] = (),
) -> None:
    """Keep what the scan of *report* leaves for the next one (its *reuse*, collected): the
    own facts of every venv it read, the host paths each venv depends on, and its listings.
    What the scan covered but did not judge any more is dropped."""
    from venvkeeper.scan.codec import SIGNATURE, encode

    kept = kept if kept is not None else load(store)
    roots = report.roots
    judged = {v.path: v for v in report.venvs if v.alias_of is None}
    for v in report.venvs:  # a .venv alias' target outside the roots
        judged.setdefault(v.path, v)
    rows: list[tuple[Any, ...]] = []
    updates: list[tuple[Any, ...]] = []
    for path, v in judged.items():
        depends = json.dumps(depends_of(v.facts))
        if path in reuse.kept:
            digest, own = reuse.kept[path]
            rows.append((_to_db(path), digest, encode(own), depends))
        elif path in reuse.reused:
            if kept.depends.get(path) != depends:
                updates.append((depends, _to_db(path)))
        elif path in reuse.racy:
            rows.append((_to_db(path), None, encode(reuse.racy[path]), depends))
    gone = [_to_db(p) for p in kept.facts if p not in judged and _covered(p, roots)]
    blob = None
    if not reuse.listings_unchanged:  # else every listing was reused as it was: kept as is
        listings = {p: v for p, v in kept.listings.items() if not _covered(p, roots)}
        listings.update((p, kept.listings[p]) for p in reuse.reused_listings)
        listings.update(reuse.new_listings)
        blob = zlib.compress(json.dumps(listings, separators=(",", ":")).encode(), 1)
    with store.transaction("keeping facts for the next scan") as conn:
        if _meta(store).get("signature") != SIGNATURE:
            conn.execute("DELETE FROM reuse_facts")
        conn.executemany("DELETE FROM reuse_facts WHERE path = ?", [(p,) for p in gone])
        conn.executemany(
            "INSERT OR REPLACE INTO reuse_facts (path, fingerprint, own, depends)"
            " VALUES (?, ?, ?, ?)",
            rows,
        )
        conn.executemany("UPDATE reuse_facts SET depends = ? WHERE path = ?", updates)
        if blob is not None:
            conn.execute("INSERT OR REPLACE INTO reuse_listings (id, data) VALUES (1, ?)", (blob,))
        conn.executemany(
            "INSERT OR REPLACE INTO reuse_meta (key, value) VALUES (?, ?)",
            [
                ("signature", SIGNATURE),
                ("identity", identity()),
                ("roots", json.dumps(list(roots))),
                ("excludes", json.dumps(list(excludes))),
                ("saved_at", repr(time.time())),
            ],
        )


@dataclass
class Incremental:
    """A scan's link to the inventory: what it may reuse, and what it will keep."""

    path: str
    kept: Kept
    reuse: Reuse
    trusted: bool = True


def prepare(path: str, *, full: bool, collect: bool) -> tuple[Optional[Incremental], str]:
    """What a scan may reuse from the inventory at *path* (nothing with *full*), and with
    *collect* what it gathers to keep there after it is recorded. ``(None, why)`` when the
    inventory exists but may not be used (why is "" when there is simply none yet and
    nothing is to be collected)."""
    store, why = open_for_reuse(path)
    if store is None:
        if why is None:  # no inventory yet: the first recorded scan starts it
            fresh = Kept()
            return (
                (Incremental(path, fresh, reuse_from(fresh, full=True, collect=True)), "")
                if (collect)
                else (None, "")
            )
        return None, why
    try:
        with store:
            kept = load(store)
    except VenvkeeperError as e:
        return None, str(e)
    return Incremental(path, kept, reuse_from(kept, full=full, collect=collect)), ""


def record_and_keep(
    path: str, report: Report, excludes: Sequence[str], inc: Optional[Incremental]
) -> int:
    """Record *report* in the inventory at *path* and keep what its scan collected for the
    next one (when the inventory may be trusted): the scan's id."""
    from venvkeeper.inventory.record import record
    from venvkeeper.inventory.snapshot import snapshot_of

    snap = snapshot_of(report, excludes, time.time())
    with open_store(path, make_parents=False) as store:
        scan_id = record(store, snap)
        if inc is not None and inc.reuse.collect and untrusted(store.path) is None:
            save(store, inc.reuse, report, inc.kept, excludes)
    return scan_id


def unusable_line(why: str) -> str:
    """The one line told when the inventory cannot be used for reuse."""
    return f"venvkeeper: reading every venv again: {escape(why)}\n"
