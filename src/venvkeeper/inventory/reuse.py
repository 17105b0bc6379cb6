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
import dataclasses
import functools
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
from venvkeeper.model.report import Report, VenvReport
from venvkeeper.scan.incremental import Kept as KeptVenv
from venvkeeper.scan.incremental import KeptReport, Listing, Reuse, depends_of, identity
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
    #: path -> (its group, what its verdict read of the group's view, that verdict):
    #: the apt hook's judging by groups (:mod:`venvkeeper.scan.grouping`)
    verdicts: dict[str, Verdict] = field(default_factory=dict)
    groups: dict[str, str] = field(default_factory=dict)  # key -> its view (JSON)
    #: path -> what its verdict asked of the host besides its base view (JSON), for those
    #: whose verdict may be kept on their answers (:mod:`venvkeeper.scan.incremental`)
    asks: dict[str, str] = field(default_factory=dict)
    policy: str = ""  # the digest of the policy the verdicts were made under
    listings: dict[str, Listing] = field(default_factory=dict)
    listings_valid: bool = False
    roots: tuple[str, ...] = ()  # of the last scan that saved its facts
    excludes: tuple[str, ...] = ()  # and its --exclude globs
    saved_at: float = 0.0


class Verdict(NamedTuple):
    """A venv's verdict as the inventory keeps it for its group."""

    group: Optional[str]  # None: judged without noting what it read (no group)
    reads: int
    verdict: Optional[str]  # VenvSnapshot, as :func:`verdict_json` wrote it


def verdict_json(s: VenvSnapshot) -> str:
    """A venv's snapshot (without its path) as the inventory keeps it for its group."""
    return json.dumps(
        [
            s.status.value,
            s.kind.value,
            s.creator.value,
            s.python_recorded,
            s.python,
            s.python_patch,
            s.base_executable,
            s.packages,
            [[f.code, f.severity.value, f.message] for f in s.findings],
        ],
        separators=(",", ":"),
    )


def verdict_of(path: str, text: str) -> VenvSnapshot:
    """The snapshot :func:`verdict_json` wrote (ValueError for anything else)."""
    return _snapshot(path, json.loads(text))


@functools.lru_cache(maxsize=1)
def _enums() -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    from venvkeeper.model.findings import Severity
    from venvkeeper.model.venv import Creator, VenvKind

    return (
        {m.value: m for m in Severity},
        {m.value: m for m in VenvKind},
        {m.value: m for m in Creator},
    )


def _snapshot(path: str, raw: Any) -> VenvSnapshot:
    """A snapshot from the list :func:`verdict_json` wrote, loaded."""
    from venvkeeper.model.findings import Finding

    severity, kinds, creators = _enums()
    try:
        st, kind, creator, recorded, python, patch, exe, packages, findings = raw
        return VenvSnapshot(
            path,
            severity[st],
            kinds[kind],
            creators[creator],
            recorded,
            python,
            patch,
            exe,
            int(packages),
            tuple(Finding(c, severity[sev], m) for c, sev, m in findings),
        )
    except (TypeError, KeyError, IndexError, ValueError) as e:
        raise ValueError(f"a kept verdict of another shape: {e}") from None


def _meta(store: Store) -> dict[str, Any]:
    return {k: v for k, v in store.query("SELECT key, value FROM reuse_meta")}


def load(store: Store, *, listings: bool = True, own: bool = True) -> Kept:
    """Everything kept for reuse by *store*, under this venvkeeper's signature (nothing,
    else). Listings made by another user are left out; without *own*, the venvs' own facts
    are not loaded either (:func:`own_facts` reads those of a few)."""
    from venvkeeper.scan.codec import SIGNATURE

    meta = _meta(store)
    kept = Kept()
    if meta.get("signature") != SIGNATURE:
        return kept
    try:
        kept.roots = tuple(json.loads(meta.get("roots") or "[]"))
        kept.excludes = tuple(json.loads(meta.get("excludes") or "[]"))
        kept.saved_at = float(meta.get("saved_at") or 0.0)
        kept.policy = str(meta.get("policy") or "")
    except (ValueError, TypeError):
        return Kept()
    columns = "path, fingerprint, checks, own, depends, grp, reads, verdict, asks"
    if not own:
        columns = columns.replace(" own,", " '',")
    query = f"SELECT {columns} FROM reuse_facts"  # noqa: S608 - no input in it
    for path, fp, checks, text, depends, grp, reads, verdict, asks in store.query(query):
        p = from_db(path)
        kept.facts[p] = KeptVenv(bytes(fp) if fp is not None else b"", text, checks)
        kept.depends[p] = depends
        kept.verdicts[p] = Verdict(grp, reads or 0, verdict)
        if asks is not None:
            kept.asks[p] = asks
    kept.groups = {k: v for k, v in store.query("SELECT key, view FROM reuse_groups")}
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


def reuse_from(kept: Kept, *, full: bool, collect: bool, policy: Optional[Policy] = None) -> Reuse:
    """A :class:`Reuse` for the next scan from what *store* kept: nothing to reuse with
    *full* (a cold scan), but with *collect* it still gathers what the scan after needs.
    The kept verdicts are offered (:class:`~venvkeeper.scan.incremental.KeptReport`) only
    to a scan that collects under the *policy* they were made under."""
    from venvkeeper.scan.codec import decode
    from venvkeeper.scan.grouping import policy_digest

    facts = {} if full else {p: k for p, k in kept.facts.items() if k.digest}
    same_policy = bool(kept.policy) and kept.policy == policy_digest(policy or _no_policy())
    verdicts = {}
    if collect and not full and same_policy:
        for p, asks in kept.asks.items():
            v = kept.verdicts.get(p)
            if v is not None and v.group and v.verdict:
                verdicts[p] = (v.group, v.reads, v.verdict, asks)
    return Reuse(
        facts=facts,
        decode=decode,
        listings={} if full else kept.listings,
        collect=collect,
        listings_roots=kept.roots,
        verdicts=verdicts,
        verdict_of=verdict_of,
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


def _row(
    v: VenvReport,
    snap: VenvSnapshot,
    reads: Optional[int],
    groups: dict[str, Optional[str]],
) -> tuple[str, Optional[str], Optional[int], str]:
    """(what *v* depends on, its group, what its verdict read, that verdict) as kept;
    *groups* gathers each new group (its view made when first met)."""
    from venvkeeper.scan.grouping import group_of

    grp: Optional[str] = None
    if reads is not None:
        grp, values = group_of(v.facts)
        if grp not in groups:
            from venvkeeper.scan.grouping import view

            groups[grp] = json.dumps(view(v.facts, values), sort_keys=True)
    return json.dumps(depends_of(v.facts)), grp, reads, verdict_json(snap)


def save(
    store: Store,
    reuse: Reuse,
    report: Report,
    kept: Optional[Kept] = None,
    excludes: Sequence[str] = (),
    policy: Optional[Policy] = None,
    snapshots: Optional[dict[str, VenvSnapshot]] = None,
) -> None:
    """Keep what the scan of *report* leaves for the next one (its *reuse*, collected): the
    own facts of every venv it read, the host paths each venv depends on, its verdict
    with its group and what it read of the group's view (under *policy*), and the
    listings. What the scan covered but did not judge any more is dropped."""
    from venvkeeper.inventory.snapshot import snapshot_of_venv
    from venvkeeper.scan.codec import SIGNATURE, encode
    from venvkeeper.scan.grouping import policy_digest

    kept = kept if kept is not None else load(store)
    snapshots = snapshots or {}
    roots = report.roots
    judged = {v.path: v for v in report.venvs if v.alias_of is None}
    for v in report.venvs:  # a .venv alias' target outside the roots
        judged.setdefault(v.path, v)
    rows: list[tuple[Any, ...]] = []
    updates: list[tuple[Any, ...]] = []
    groups: dict[str, Optional[str]] = {}
    for path, v in judged.items():
        if path in reuse.verdicts_kept and isinstance(v, KeptReport):
            continue  # the same facts, the same verdict: the row stands as it is
        snap = snapshots.get(path) or snapshot_of_venv(v)
        was = kept.verdicts.get(path)
        asks = reuse.asks.get(path)
        if (
            path in reuse.reused
            and was is not None
            and was.group is not None
            and asks == kept.asks.get(path)
        ):
            # unchanged own facts, the same verdict, the same dependencies: the row stands
            # as it is (its group's view may be older than now: what changed since is what
            # the apt hook's judging by groups compares, so it judges more, never less)
            verdict = verdict_json(snap)
            if verdict == was.verdict and reuse.reads.get(path) == was.reads:
                depends = json.dumps(depends_of(v.facts))
                if depends == kept.depends.get(path):
                    continue
        depends, grp, reads, verdict = _row(v, snap, reuse.reads.get(path), groups)
        if path in reuse.kept:
            fp, own = reuse.kept[path]
            checks = "\0".join(fp.checks)
            rows.append(
                (to_db(path), fp.digest, checks, encode(own), depends, grp, reads, verdict, asks)
            )
        elif path in reuse.reused:
            if (
                kept.depends.get(path) != depends
                or was != Verdict(grp, reads or 0, verdict)
                or kept.asks.get(path) != asks
            ):
                updates.append((depends, grp, reads, verdict, asks, to_db(path)))
        elif path in reuse.racy:
            own_text = encode(reuse.racy[path])
            rows.append((to_db(path), None, "", own_text, depends, grp, reads, verdict, asks))
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
            "INSERT OR REPLACE INTO reuse_facts (path, fingerprint, checks, own, depends,"
            " grp, reads, verdict, asks) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            rows,
        )
        conn.executemany(
            "UPDATE reuse_facts SET depends = ?, grp = ?, reads = ?, verdict = ?, asks = ?"
            " WHERE path = ?",
            updates,
        )
        _keep_groups(conn, groups, bool(rows or updates or gone))
        if blob is not None:
            conn.execute("INSERT OR REPLACE INTO reuse_listings (id, data) VALUES (1, ?)", (blob,))
        conn.executemany(
            "INSERT OR REPLACE INTO reuse_meta (key, value) VALUES (?, ?)",
            [
                ("signature", SIGNATURE),
                ("identity", identity()),
                ("roots", json.dumps(list(roots))),
                ("excludes", json.dumps(list(excludes))),
                ("policy", policy_digest(policy or _no_policy())),
                ("saved_at", repr(time.time())),
            ],
        )


def _no_policy() -> Policy:
    from venvkeeper.model.policy import Policy

    return Policy()


def _keep_groups(conn: Any, groups: dict[str, Optional[str]], changed: bool) -> None:
    """The views of the groups met (*groups*: key -> view JSON) kept; when venvs' rows
    *changed*, the groups no venv is in any more dropped."""
    conn.executemany(
        "INSERT OR IGNORE INTO reuse_groups (key, view) VALUES (?, ?)",
        [(k, v) for k, v in groups.items() if v is not None],
    )
    if changed:
        conn.execute(
            "DELETE FROM reuse_groups WHERE key NOT IN"
            " (SELECT grp FROM reuse_facts WHERE grp IS NOT NULL)"
        )


@dataclass
class Incremental:
    """A scan's link to the inventory: what it may reuse, and what it will keep."""

    path: str
    kept: Kept
    reuse: Reuse
    trusted: bool = True


def prepare(
    path: str, *, full: bool, collect: bool, policy: Optional[Policy] = None
) -> tuple[Optional[Incremental], str]:
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
    return Incremental(path, kept, reuse_from(kept, full=full, collect=collect, policy=policy)), ""


def record_and_keep(
    path: str,
    report: Report,
    excludes: Sequence[str],
    inc: Optional[Incremental],
    *,
    make_parents: bool = False,
    policy: Optional[Policy] = None,
) -> int:
    """Record *report* (judged under *policy*) in the inventory at *path* and keep what its
    scan collected for the next one (when the inventory may be trusted): the scan's id."""
    from venvkeeper.inventory.record import record
    from venvkeeper.inventory.snapshot import snapshot_of

    if inc is not None and inc.path != path:
        inc = None
    snap = snapshot_of(report, excludes, time.time())
    with open_store(path, make_parents=make_parents) as store:
        scan_id = record(store, snap)
        if inc is not None and inc.reuse.collect and untrusted(store.path) is None:
            by_path = {v.path: v for v in snap.venvs}
            save(store, inc.reuse, report, inc.kept, excludes, policy, by_path)
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
    #: path -> (its group, reads, verdict) now, for the inventory
    verdicts: dict[str, Verdict]
    groups: dict[str, str]  # the views of the groups met: key -> view JSON
    judged_in_full: int  # venvs judged one by one (the others kept their group's verdict)
    #: the venvs whose verdict may have changed (judged in full, or what changed in their
    #: group's view is what consumer checks read): whose consumers to judge again
    changed: tuple[str, ...]


class Hosts(dict[Optional[str], "HostCache"]):
    """The facts cache of each OS root (None: this host's), made when first asked: a venv
    inside another OS root is judged as that root sees it."""

    def __missing__(self, root: Optional[str]) -> HostCache:
        from venvkeeper.host.bases import HostCache
        from venvkeeper.host.hostfs import RootFS

        found = self[root] = HostCache() if root is None else HostCache(RootFS(root), root)
        return found


class _Full(NamedTuple):
    """One venv judged in full: its snapshot, depends, group, reads, and its group's
    view (JSON)."""

    snap: VenvSnapshot
    depends: str
    group: str
    reads: int
    view: str


OwnOf = Callable[[Sequence[str]], dict[str, str]]


def _judge_full(
    kept: Kept,
    paths: Sequence[str],
    again: frozenset[str],
    options: ScanOptions,
    policy: Policy,
    hosts: Hosts,
    own_of: Optional[OwnOf] = None,
) -> list[_Full]:
    """Each of *paths* judged in full from its kept own facts (*again*, and those without
    usable kept facts, read now); a venv gone since is left out."""
    from venvkeeper.checks.policy import apply_to_venv, ignored
    from venvkeeper.inventory.snapshot import snapshot_of_venv
    from venvkeeper.model.venv import VenvKind
    from venvkeeper.scan.codec import CodecError, decode
    from venvkeeper.scan.grouping import group_of, view
    from venvkeeper.scan.inspect import VenvVanished, complete, read_own
    from venvkeeper.scan.pipeline import judge_noting

    texts = own_of([p for p in paths if p not in again]) if own_of is not None else {}
    out = []
    for path in paths:
        if ignored(path, policy):
            continue
        try:
            own = None
            found = kept.facts.get(path)
            text = texts.get(path) or (found.own if found is not None else "")
            if text:
                with contextlib.suppress(CodecError):
                    own = decode(text)
            if own is None or path in again:
                root = own.root if own is not None else _root_of(path, options)
                own = read_own(path, own.kind if own is not None else VenvKind.VENV, root=root)
                facts = complete(own, hosts[own.root])
            else:  # kept: gone since the last scan?
                facts = complete(own, hosts[own.root], check_gone=True)
            rep, reads = judge_noting(facts, options)
            rep = apply_to_venv(rep, policy)
        except VenvVanished:
            continue
        grp, values = group_of(facts)
        out.append(
            _Full(
                snapshot_of_venv(rep),
                json.dumps(depends_of(facts)),
                grp,
                reads,
                json.dumps(view(facts, values), sort_keys=True),
            )
        )
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
    *,
    grouped: bool = True,
    own_of: Optional[OwnOf] = None,
) -> Rejudged:
    """The venvs *paths* judged again on the host as it is now (the site's *policy*
    applied), from what the inventory kept: no walk, and no read of a venv but *reread*
    and those without usable kept facts.

    *grouped* (:mod:`venvkeeper.scan.grouping`): the venvs that share a group (the same
    base view, from the same inputs) are judged through one of them; each other member
    keeps its verdict when it read nothing of what changed in the group's view, and is
    judged in full otherwise. Many venvs judged in full are shared with a forked process.
    *own_of* reads the kept own facts of the venvs judged in full (when *kept* was loaded
    without them)."""
    import gc

    from venvkeeper.model.policy import Policy
    from venvkeeper.scan.grouping import policy_digest

    policy = policy or Policy()
    started, t0 = time.time(), time.perf_counter()
    todo = sorted(set(paths) | set(reread))
    again = frozenset(reread)
    if kept.policy != policy_digest(policy):
        grouped = False  # the kept verdicts were made under another policy
    collecting = gc.isenabled()
    gc.disable()  # nothing judged here is in a reference cycle
    try:
        result = _rejudge(kept, todo, again, options, policy, grouped, own_of)
    finally:
        if collecting:
            gc.enable()
    snaps, verdicts, depends, views, full, changed = result
    snaps.sort(key=lambda x: (-x.status.rank, x.path))
    return Rejudged(
        tuple(snaps),
        depends,
        tuple(todo),
        started,
        time.perf_counter() - t0,
        verdicts,
        views,
        full,
        tuple(sorted(changed)),
    )


def _rejudge(
    kept: Kept,
    todo: list[str],
    again: frozenset[str],
    options: ScanOptions,
    policy: Policy,
    grouped: bool,
    own_of: Optional[OwnOf],
) -> tuple[list[VenvSnapshot], dict[str, Verdict], dict[str, str], dict[str, str], int, set[str]]:
    from venvkeeper.checks.policy import ignored
    from venvkeeper.scan.grouping import CONSUMER_READS, delta

    hosts = Hosts()
    dumps = json.JSONEncoder(separators=(",", ":")).encode
    snaps: list[VenvSnapshot] = []
    verdicts: dict[str, Verdict] = {}
    depends: dict[str, str] = {}
    views: dict[str, str] = {}
    changed: set[str] = set()

    def take(f: _Full, verdict: Optional[str] = None) -> None:
        snaps.append(f.snap)
        verdicts[f.snap.path] = Verdict(f.group, f.reads, verdict or verdict_json(f.snap))
        depends[f.snap.path] = f.depends
        views.setdefault(f.group, f.view)

    members: dict[str, list[str]] = {}
    singles: list[str] = []
    for path in todo:
        kv = kept.verdicts.get(path)
        if grouped and path not in again and kv is not None and kv.group and kv.verdict:
            members.setdefault(kv.group, []).append(path)
        else:
            singles.append(path)
    old_views = _group_views(kept, list(members)) if members else {}
    # one member of each group first: the group's view now
    firsts: list[str] = []
    rest: dict[str, list[str]] = {}
    for key, paths in members.items():
        if len(paths) == 1 or key not in old_views:
            singles += paths
        else:
            firsts.append(paths[0])
            rest[key] = paths[1:]
    full = 0
    now: dict[str, _Full] = {}
    for f in _in_two(kept, firsts, again, options, policy, hosts, own_of):
        now[f.snap.path] = f
        take(f)
    full += len(firsts)
    for key, paths in rest.items():
        first = members[key][0]
        got = now.get(first)
        if got is None:  # the first is gone (or ignored): the others one by one
            singles += paths
            continue
        f = got
        try:
            changes = delta(json.loads(old_views[key]), json.loads(f.view))
        except ValueError:
            singles += paths
            continue
        was_first = _kept_snap(kept, first)
        if (
            changes & CONSUMER_READS
            or was_first is None
            or (f.snap.status, f.snap.findings) != (was_first.status, was_first.findings)
        ):
            changed.add(first)  # its consumers' verdicts may change
        summary = [f.snap.python, f.snap.python_patch, f.snap.base_executable]
        for path in paths:
            kv = kept.verdicts[path]
            if kv.reads & changes or ignored(path, policy):
                singles.append(path)
                continue
            if not os.path.lexists(path):
                continue  # gone: found vanished when recorded
            # its verdict as it was, with the new base's version, patch and executable
            try:
                raw = json.loads(kv.verdict or "")
                same = raw[4:7] == summary
                raw[4:7] = summary
                snap = _snapshot(path, raw)
            except (ValueError, TypeError):
                singles.append(path)
                continue
            if changes & CONSUMER_READS:
                changed.add(path)
            take(
                _Full(snap, f.depends, f.group, kv.reads, f.view),
                kv.verdict if same else dumps(raw),
            )
    for f in _in_two(kept, sorted(singles), again, options, policy, hosts, own_of):
        take(f)
        changed.add(f.snap.path)
    full += len(singles)
    return snaps, verdicts, depends, views, full, changed


def own_reader(store: Store) -> OwnOf:
    """The kept own facts of some venvs (a venv's own facts are some KiB: only those
    judged in full are read)."""

    def own_of(paths: Sequence[str]) -> dict[str, str]:
        out: dict[str, str] = {}
        for i in range(0, len(paths), 500):
            chunk = [to_db(p) for p in paths[i : i + 500]]
            marks = ",".join("?" * len(chunk))
            query = f"SELECT path, own FROM reuse_facts WHERE path IN ({marks})"  # noqa: S608
            for path, text in store.query(query, chunk):
                out[from_db(path)] = text
        return out

    return own_of


def _kept_snap(kept: Kept, path: str) -> Optional[VenvSnapshot]:
    kv = kept.verdicts.get(path)
    try:
        return verdict_of(path, kv.verdict) if kv is not None and kv.verdict else None
    except ValueError:
        return None


def _group_views(kept: Kept, keys: list[str]) -> dict[str, str]:
    """The kept views of the groups *keys* (kept.groups: loaded with them)."""
    return {k: kept.groups[k] for k in keys if k in kept.groups}


def _in_two(
    kept: Kept,
    todo: list[str],
    again: frozenset[str],
    options: ScanOptions,
    policy: Policy,
    hosts: Hosts,
    own_of: Optional[OwnOf],
) -> list[_Full]:
    """:func:`_judge_full` of *todo*, the second half in a forked child when that is
    worth it and safe (no other thread: a child would inherit their locks)."""
    import pickle
    import signal
    import threading

    def judge(paths: Sequence[str]) -> list[_Full]:
        return _judge_full(kept, paths, again, options, policy, hosts, own_of)

    if not todo:
        return []

    if (
        len(todo) < PARALLEL_AT
        or (os.cpu_count() or 1) < 2
        or not hasattr(os, "fork")
        or threading.active_count() > 1
    ):
        return judge(todo)
    # a few first, here: what the bases are (and the package state) is then known to both;
    # the kept own facts of all of them too (read here: the child uses no database)
    if own_of is not None:
        facts = dict(kept.facts)
        for p, text in own_of(todo).items():
            if p in facts:
                facts[p] = facts[p]._replace(own=text)
        kept = dataclasses.replace(kept, facts=facts)
        own_of = None
    warm = min(8, len(todo) // 4)
    first = judge(todo[:warm])
    todo = todo[warm:]
    half = len(todo) // 2
    try:
        rfd, wfd = os.pipe()
        pid = os.fork()
    except OSError:
        return first + judge(todo)
    if pid == 0:  # the child: judge, send, leave without running any exit handler
        code = 0
        try:
            os.close(rfd)
            with os.fdopen(wfd, "wb") as out:
                pickle.dump(judge(todo[half:]), out, protocol=pickle.HIGHEST_PROTOCOL)
        except BaseException:
            code = 1
        finally:
            os._exit(code)
    os.close(wfd)
    theirs: Optional[list[_Full]] = None
    try:
        mine = judge(todo[:half])
        with os.fdopen(rfd, "rb") as pipe, contextlib.suppress(EOFError, pickle.UnpicklingError):
            theirs = pickle.load(pipe)  # noqa: S301 - our own child, through a pipe
    finally:
        if theirs is None:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    if theirs is None:  # the child failed: its half here
        theirs = judge(todo[half:])
    return first + mine + theirs


def record_rejudged(store: Store, judged: Rejudged, kept: Kept) -> int:
    """Record the venvs judged again in *store* (a scan whose roots are those venvs: a
    venv gone is found vanished) and keep what each now depends on, its group and its
    verdict."""
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
    scan_id = record(store, snap)
    updates = [
        (judged.depends[p], v.group, v.reads, v.verdict, to_db(p))
        for p, v in judged.verdicts.items()
        if kept.depends.get(p) != judged.depends[p] or kept.verdicts.get(p) != v
    ]
    gone = [(to_db(p),) for p in judged.roots if p not in judged.depends and p in kept.facts]
    with store.transaction("keeping what the venvs depend on") as conn:
        # (what else each asked of the host was not asked again: unknown until a scan)
        conn.executemany(
            "UPDATE reuse_facts SET depends = ?, grp = ?, reads = ?, verdict = ?, asks = NULL"
            " WHERE path = ?",
            updates,
        )
        conn.executemany("DELETE FROM reuse_facts WHERE path = ?", gone)
        _keep_groups(conn, dict(judged.groups), bool(updates or gone))
    return scan_id
