"""The champion and its audit trail: which version serves, who chose it, when and why.

The history is the truth. Every change (a promotion, a forced promotion, a rollback) is one
numbered entry ``history/NNNNNN.json`` written once (``If-None-Match: *``): writing it makes
the change, and of two promoters only one can write the next number. The champion is the
newest entry. ``champion.json`` is that entry published for readers (servers of older releases
read only it); it is replaced only if it is still what was read (``If-Match``), and it lags one
entry behind when a writer stopped between its two writes. Every promote or rollback first
brings a lagging champion.json up to the newest entry (rolling the interrupted change forward),
then writes its own entry and champion.json: a change interrupted at any point is completed by
the next one, with no right to delete anything.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from . import documents
from .documents import Entry
from .store import RESTORE, Conflict, Damaged, Missing, RegistryError, Store

log = logging.getLogger(__name__)

POINTER = "champion.json"
HISTORY = "history"
# history/000001.json ...: six digits written, and more once there are a million changes
_ENTRY_NAME = re.compile(r"([0-9]{6,})\.json")
READ_NOW = object()  # promote(pointer=READ_NOW): no gate compared against a champion first
RACE = "another promotion or rollback changed the champion meanwhile; run the command again"


@dataclass(frozen=True)
class Pointer:
    """The champion (the newest history entry) and champion.json as read."""

    entry: Entry
    published: Entry | None  # what champion.json holds (None: there is none yet)
    etag: str | None  # champion.json's ETag, for the conditional replace

    @property
    def version(self) -> str:
        """The champion's version."""
        return self.entry["version"]

    @property
    def pending(self) -> bool:
        """champion.json does not hold the newest entry yet (its writer stopped before)."""
        return self.published != self.entry


def entry_key(store: Store, sequence: int) -> str:
    """The key of history entry ``sequence``."""
    return store.location.key(HISTORY, f"{sequence:06d}.json")


def listed(store: Store) -> tuple[dict[int, str], list[str]]:
    """The history's entry keys by number, and the keys under it that name no entry."""
    base = store.location.key(HISTORY) + "/"
    numbered, strays = {}, []
    for key in store.keys(HISTORY):
        match = _ENTRY_NAME.fullmatch(key[len(base) :])
        if match:
            numbered[int(match.group(1))] = key
        else:
            strays.append(key)
    return numbered, strays


def read_entry(store: Store, sequence: int) -> Entry:
    """History entry ``sequence``, checked; Damaged if it is missing or unusable."""
    key = entry_key(store, sequence)
    uri = f"s3://{store.location.bucket}/{key}"
    try:
        document = store.get_json(key)[0]
    except Missing:
        raise Damaged(f"history entry {sequence} is missing ({uri}); {RESTORE}") from None
    entry = documents.entry(document, uri, RESTORE)
    if entry["sequence"] != sequence:
        raise Damaged(f"{uri} says it is entry {entry['sequence']}; {RESTORE}")
    return entry


def current(store: Store) -> Pointer | None:
    """The champion, or None before the first promotion: the newest history entry, with
    champion.json as read (one behind it if a promote or rollback stopped midway)."""
    try:
        document, etag = store.get_json(store.location.key(POINTER))
    except Missing:
        published, etag = None, None
    else:
        published = documents.entry(
            document,
            store.location.uri(POINTER),
            f"{RESTORE}, or write it again as a copy of the newest entry under "
            f"{store.location.uri(HISTORY)}/",
        )
    newest = max(listed(store)[0], default=0)
    if published is not None and published["sequence"] > newest:
        raise Damaged(
            f"{store.location.uri(POINTER)} names history entry "
            f"{published['sequence']}, but the newest under "
            f"{store.location.uri(HISTORY)}/ is {newest or 'none'}; {RESTORE}"
        )
    if published is not None and published["sequence"] == newest:
        return Pointer(published, published, etag)
    if newest == 0:
        return None
    return Pointer(read_entry(store, newest), published, etag)


def settle(store: Store, pointer: Pointer) -> Pointer:
    """``pointer`` with champion.json brought up to its entry (rolled forward if it lagged)."""
    if not pointer.pending:
        return pointer
    try:
        etag = store.put_json(store.location.key(POINTER), pointer.entry, replacing=pointer.etag)
    except Conflict:
        now = current(store)  # another writer may have published this very entry meanwhile
        if now is None or now.entry != pointer.entry or now.pending:
            raise Conflict(RACE) from None
        return now
    log.info(
        "champion.json rolled forward to history entry %d (%s): its writer had stopped "
        "before writing it",
        pointer.entry["sequence"],
        pointer.version,
    )
    return Pointer(pointer.entry, pointer.entry, etag)


def move(
    store: Store,
    pointer: Pointer | None,
    version: str,
    *,
    action: str,
    by: str,
    rollback_to: int | None,
    gate: dict | None = None,
    forced: bool = False,
    reason: str | None = None,
) -> Entry:
    """Record a change of champion to ``version`` and publish it; the new entry.

    Up to three writes, any of which may be the last this process makes: a lagging
    champion.json brought up to ``pointer``; the new history entry (the change itself); then
    champion.json. ``pointer`` is the champion compared against: if another change was made
    since, the move is refused rather than replacing a champion nobody compared with.
    """
    if pointer is not None:
        pointer = settle(store, pointer)
    entry: Entry = {
        "sequence": (pointer.entry["sequence"] + 1) if pointer else 1,
        "version": version,
        "action": action,
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "by": by,
        "previous": pointer.version if pointer else None,
        # the entry a rollback from here restores (None: nothing earlier to go back to)
        "rollback_to": rollback_to,
        "forced": forced,
        "reason": reason,
        "gate": gate,
    }
    try:
        store.put_json(entry_key(store, entry["sequence"]), entry)
    except Conflict:
        raise Conflict(RACE) from None
    try:
        store.put_json(
            store.location.key(POINTER), entry, replacing=pointer.etag if pointer else None
        )
    except Conflict:  # the change is made: another writer published this entry, or a newer one
        log.info(
            "champion.json was written by another writer after history entry %d", entry["sequence"]
        )
    return entry


def history(store: Store) -> list[Entry]:
    """Every entry ever written, oldest first; Damaged if one is unusable."""
    return [read_entry(store, sequence) for sequence in sorted(listed(store)[0])]


def promote(
    store: Store,
    version: str,
    *,
    by: str,
    gate: dict | None,
    forced: bool,
    reason: str | None,
    pointer: Pointer | None | object = READ_NOW,
) -> Entry:
    """Make ``version`` the champion; a rollback from it restores the champion before it.

    ``pointer`` is the champion the gate compared against (read now if not given): if it has
    changed since, the move is refused rather than replacing a champion nobody compared with.
    """
    compared = current(store) if pointer is READ_NOW else pointer
    assert compared is None or isinstance(compared, Pointer)  # READ_NOW is replaced above
    return move(
        store,
        compared,
        version,
        action="force-promote" if forced else "promote",
        by=by,
        rollback_to=compared.entry["sequence"] if compared else None,
        gate=gate,
        forced=forced,
        reason=reason,
    )


def rollback(store: Store, *, by: str, reason: str | None, check: Callable[[str], object]) -> Entry:
    """Restore the champion that preceded the current one's promotion, once ``check(version)``
    has proven it is still intact in the store (an interrupted change is completed first)."""
    pointer = current(store)
    pointer = settle(store, pointer) if pointer is not None else None
    if pointer is None or pointer.entry["rollback_to"] is None:
        raise RegistryError(
            "there is no earlier champion to roll back to (`list --history` "
            "shows the trail); promote a version instead"
        )
    restored = read_entry(store, pointer.entry["rollback_to"])
    check(restored["version"])
    return move(
        store,
        pointer,
        restored["version"],
        action="rollback",
        by=by,
        rollback_to=restored["rollback_to"],
        reason=reason,
    )
