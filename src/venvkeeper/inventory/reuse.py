"""What the inventory keeps for the next scan: each venv's fingerprint and own facts, the
host paths its verdict depends on, and the walk's directory listings
(:mod:`venvkeeper.scan.incremental`).

The inventory lists every venv of the host with its facts: it is trusted only by the one
trust rule (:func:`venvkeeper.host.state.untrusted`: only this user or root can change it
and every directory above it); anything else is read again, with one line saying why.
Kept facts are tied to the model's shape and venvkeeper's version
(:data:`venvkeeper.scan.codec.SIGNATURE`) and listings to the user that listed
(:func:`venvkeeper.scan.incremental.identity`): another version or another user starts
cold.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, NamedTuple, Optional

from venvkeeper.errors import VenvkeeperError
from venvkeeper.host.state import untrusted
from venvkeeper.inventory.store import Store, from_db, open_store, to_db
from venvkeeper.model.inventory import VenvSnapshot
from venvkeeper.model.report import Report
from venvkeeper.scan.incremental import Kept as KeptVenv
from venvkeeper.scan.incremental import Listing, Reuse, depends_of, identity
from venvkeeper.textutil import escape

if TYPE_CHECKING:
    from venvkeeper.host.bases import HostCache
    from venvkeeper.model.policy import Policy
    from venvkeeper.scan.pipeline import ScanOptions

#: The most a listings blob may weigh once inflated (some hundred bytes per directory).
LISTINGS_LIMIT = 1 << 30


@dataclass
class Kept:
    """What the inventory holds for reuse, as loaded: the venvs' rows and the listings."""

    facts: dict[str, KeptVenv] = field(default_factory=dict)  # fingerprint may be b""
    depends: dict[str, str] = field(default_factory=dict)  # path -> JSON list
    listings: dict[str, Listing] = field(default_factory=dict)
    listings_valid: bool = False
    roots: tuple[str, ...] = ()  # of the last scan that saved its facts
    excludes: tuple[str, ...] = ()  # and its --exclude globs
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
        kept.excludes = tuple(json.loads(meta.get("excludes") or "[]"))
        kept.saved_at = float(meta.get("saved_at") or 0.0)
    except (ValueError, TypeError):
        return Kept()
    for path, fp, checks, own, depends in store.query(
        "SELECT path, fingerprint, checks, own, depends FROM reuse_facts"
    ):
        p = from_db(path)
        kept.facts[p] = KeptVenv(bytes(fp) if fp is not None else b"", own, checks)
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

    facts = {} if full else {p: k for p, k in kept.facts.items() if k.digest}
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


def _walked(roots: Sequence[str], excludes: Sequence[str]) -> Callable[[str], bool]:
    """Whether a scan of *roots* with *excludes* walks to a path (``record.covers``)."""
    abs_roots = [os.path.abspath(r) for r in roots]
    if not excludes:
        return lambda path: _covered(path, abs_roots)
    from venvkeeper.inventory.record import covers

    return lambda path: covers(path, abs_roots, excludes)


def within(paths: Sequence[str], roots: Sequence[str], excludes: Sequence[str] = ()) -> list[str]:
    """Those of *paths* that a scan of *roots* with *excludes* walks to, sorted."""
    walked = _walked(roots, excludes)
    return sorted(p for p in paths if walked(p))


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
            fp, own = reuse.kept[path]
            rows.append((to_db(path), fp.digest, "\0".join(fp.checks), encode(own), depends))
        elif path in reuse.reused:
            if kept.depends.get(path) != depends:
                updates.append((depends, to_db(path)))
        elif path in reuse.racy:
            rows.append((to_db(path), None, "", encode(reuse.racy[path]), depends))
    gone = [to_db(p) for p in kept.facts if p not in judged and _covered(p, roots)]
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
            "INSERT OR REPLACE INTO reuse_facts (path, fingerprint, checks, own, depends)"
            " VALUES (?, ?, ?, ?, ?)",
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
    path: str,
    report: Report,
    excludes: Sequence[str],
    inc: Optional[Incremental],
    *,
    make_parents: bool = False,
) -> int:
    """Record *report* in the inventory at *path* and keep what its scan collected for the
    next one (when the inventory may be trusted): the scan's id."""
    from venvkeeper.inventory.record import record
    from venvkeeper.inventory.snapshot import snapshot_of

    if inc is not None and inc.path != path:
        inc = None
    snap = snapshot_of(report, excludes, time.time())
    with open_store(path, make_parents=make_parents) as store:
        scan_id = record(store, snap)
        if inc is not None and inc.reuse.collect and untrusted(store.path) is None:
            save(store, inc.reuse, report, inc.kept, excludes)
    return scan_id


def unusable_line(why: str) -> str:
    """The one line told when the inventory cannot be used for reuse."""
    return f"venvkeeper: reading every venv again: {escape(why)}\n"


# --- judging again only the venvs an apt run can change ---------------------------------------

#: The inventory's last full scan is too old to stand for the host after this long: the
#: apt hook judges every venv instead (the timer scans daily).
STALE_SECONDS = 8 * 86400


def load_kept(path: str) -> tuple[Optional[Kept], str]:
    """What the inventory at *path* keeps of each venv (not the walk's listings), or
    ``(None, why not)``."""
    store, why = open_for_reuse(path)
    if store is None:
        return None, why or f"no inventory at {path} yet"
    try:
        with store:
            return load(store, listings=False), ""
    except VenvkeeperError as e:
        return None, str(e)


def covered_by(kept: Kept, roots: Sequence[str], excludes: Sequence[str] = ()) -> Optional[str]:
    """Why the kept facts do not stand for a scan of *roots* with *excludes* now (None
    when they do)."""
    if not kept.facts and not kept.saved_at:
        return "the inventory keeps no facts yet (the next venvkeeper scan keeps them)"
    from venvkeeper.inventory.record import covers

    missing = [r for r in roots if not covers(os.path.abspath(r), kept.roots, kept.excludes)]
    if missing:
        return (
            f"the inventory's last scan covered {', '.join(kept.roots) or 'nothing'},"
            f" not {', '.join(missing)}"
        )
    lifted = [e for e in kept.excludes if e not in excludes]
    if lifted:
        return f"the inventory's last scan excluded {', '.join(lifted)}"
    age = time.time() - kept.saved_at
    if age > STALE_SECONDS:
        return f"the inventory's last scan is {age / 86400:.0f} days old"
    return None


def depending_on(
    kept: Kept, paths: frozenset[str], roots: Sequence[str], excludes: Sequence[str] = ()
) -> list[str]:
    """The venvs a scan of *roots* with *excludes* walks to whose verdict depends on any
    of *paths* (merged-/usr spelling: see :func:`venvkeeper.apt.record.canonical`)."""
    usr = ("/bin/", "/sbin/", "/lib/", "/lib32/", "/lib64/", "/libx32/")
    walked = _walked(roots, excludes)
    found = []
    for venv, depends in kept.depends.items():
        if not walked(venv):
            continue
        try:
            deps = json.loads(depends)
        except ValueError:
            found.append(venv)  # cannot tell: judge it
            continue
        if any(("/usr" + d if d.startswith(usr) else d) in paths for d in deps):
            found.append(venv)
    return found


#: Judging again this many venvs or more is shared with a forked process (two cores).
PARALLEL_AT = 400


class Rejudged(NamedTuple):
    """The venvs judged again, as the inventory keeps them, and what each depends on."""

    venvs: tuple[VenvSnapshot, ...]  # worst first
    depends: dict[str, str]  # path -> JSON list (depends_of)
    roots: tuple[str, ...]  # every venv asked for (one gone is found vanished)
    started_at: float
    duration: float


class Hosts(dict[Optional[str], "HostCache"]):
    """The facts cache of each OS root (None: this host's), made when first asked: a venv
    inside another OS root is judged as that root sees it."""

    def __missing__(self, root: Optional[str]) -> HostCache:
        from venvkeeper.host.bases import HostCache
        from venvkeeper.host.hostfs import RootFS

        found = self[root] = HostCache() if root is None else HostCache(RootFS(root), root)
        return found


def _judge_snapshots(
    kept: Kept,
    paths: Sequence[str],
    again: frozenset[str],
    options: ScanOptions,
    policy: Policy,
    hosts: Optional[Hosts] = None,
) -> list[tuple[VenvSnapshot, str]]:
    from venvkeeper.checks.policy import apply_to_venv, ignored
    from venvkeeper.inventory.snapshot import snapshot_of_venv
    from venvkeeper.model.venv import VenvKind
    from venvkeeper.scan.codec import CodecError, decode
    from venvkeeper.scan.inspect import VenvVanished, complete, read_own
    from venvkeeper.scan.pipeline import judge

    hosts = hosts if hosts is not None else Hosts()
    out = []
    for path in paths:
        if ignored(path, policy):
            continue
        try:
            own = None
            found = kept.facts.get(path)
            if found is not None:
                with contextlib.suppress(CodecError):
                    own = decode(found.own)
            if own is None or path in again:
                root = own.root if own is not None else _root_of(path, options)
                own = read_own(path, own.kind if own is not None else VenvKind.VENV, root=root)
                facts = complete(own, hosts[own.root])
            else:  # kept: gone since the last scan?
                facts = complete(own, hosts[own.root], check_gone=True)
            rep = apply_to_venv(judge(facts, options), policy)
        except VenvVanished:
            continue
        out.append((snapshot_of_venv(rep), json.dumps(depends_of(rep.facts))))
    return out


def _root_of(path: str, options: ScanOptions) -> Optional[str]:
    if not options.other_roots:
        return None
    from venvkeeper.host.osroots import root_of

    return root_of(path)


def rejudge(
    kept: Kept,
    paths: Sequence[str],
    reread: Sequence[str],
    options: ScanOptions,
    policy: Optional[Policy] = None,
) -> Rejudged:
    """The venvs *paths* judged again on the host as it is now (the site's *policy*
    applied), from their kept own facts: no walk, and no read of a venv but *reread* and
    those without usable kept facts. Many venvs are shared with a forked process."""
    import gc

    from venvkeeper.model.policy import Policy

    policy = policy or Policy()
    started, t0 = time.time(), time.perf_counter()
    todo = sorted(set(paths) | set(reread))
    again = frozenset(reread)
    collecting = gc.isenabled()
    gc.disable()  # nothing judged here is in a reference cycle
    try:
        results = _in_two(kept, todo, again, options, policy)
    finally:
        if collecting:
            gc.enable()
    results.sort(key=lambda r: (-r[0].status.rank, r[0].path))
    return Rejudged(
        tuple(r[0] for r in results),
        {r[0].path: r[1] for r in results},
        tuple(todo),
        started,
        time.perf_counter() - t0,
    )


def _in_two(
    kept: Kept, todo: list[str], again: frozenset[str], options: ScanOptions, policy: Policy
) -> list[tuple[VenvSnapshot, str]]:
    """:func:`_judge_snapshots` of *todo*, the second half in a forked child when that is
    worth it and safe (no other thread: a child would inherit their locks)."""
    import pickle
    import signal
    import threading

    host = Hosts()
    if (
        len(todo) < PARALLEL_AT
        or (os.cpu_count() or 1) < 2
        or not hasattr(os, "fork")
        or threading.active_count() > 1
    ):
        return _judge_snapshots(kept, todo, again, options, policy, host)
    # a few first, here: what the bases are (and the package state) is then known to both
    warm = min(8, len(todo) // 4)
    first = _judge_snapshots(kept, todo[:warm], again, options, policy, host)
    todo = todo[warm:]
    half = len(todo) // 2
    try:
        rfd, wfd = os.pipe()
        pid = os.fork()
    except OSError:
        return first + _judge_snapshots(kept, todo, again, options, policy, host)
    if pid == 0:  # the child: judge, send, leave without running any exit handler
        code = 0
        try:
            os.close(rfd)
            with os.fdopen(wfd, "wb") as pipe:
                found = _judge_snapshots(kept, todo[half:], again, options, policy, host)
                pickle.dump(found, pipe, protocol=pickle.HIGHEST_PROTOCOL)
        except BaseException:
            code = 1
        finally:
            os._exit(code)
    os.close(wfd)
    theirs: Optional[list[tuple[VenvSnapshot, str]]] = None
    try:
        mine = _judge_snapshots(kept, todo[:half], again, options, policy, host)
        with os.fdopen(rfd, "rb") as pipe, contextlib.suppress(EOFError, pickle.UnpicklingError):
            theirs = pickle.load(pipe)  # noqa: S301 - our own child, through a pipe
    finally:
        if theirs is None:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    if theirs is None:  # the child failed: its half here
        theirs = _judge_snapshots(kept, todo[half:], again, options, policy, host)
    return first + mine + theirs


def record_rejudged(path: str, judged: Rejudged, kept: Kept) -> int:
    """Record the venvs judged again (a scan whose roots are those venvs: a venv gone is
    found vanished) and keep the host paths each now depends on."""
    from venvkeeper.inventory.record import record
    from venvkeeper.inventory.snapshot import hostname
    from venvkeeper.model.inventory import ScanSnapshot

    now = time.time()
    snap = ScanSnapshot(
        scan_id=None,
        started_at=judged.started_at,
        finished_at=now,
        host=hostname(),
        roots=judged.roots,
        excludes=(),
        duration_seconds=judged.duration,
        venvs=judged.venvs,
    )
    with open_store(path, make_parents=False) as store:
        scan_id = record(store, snap)
        updates = [
            (depends, to_db(p))
            for p, depends in judged.depends.items()
            if kept.depends.get(p) != depends
        ]
        gone = [(to_db(p),) for p in judged.roots if p not in judged.depends and p in kept.facts]
        with store.transaction("keeping what the venvs depend on") as conn:
            conn.executemany("UPDATE reuse_facts SET depends = ? WHERE path = ?", updates)
            conn.executemany("DELETE FROM reuse_facts WHERE path = ?", gone)
    return scan_id
