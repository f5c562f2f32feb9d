"""The champion pointer and its audit trail: which version serves, who chose it, when and why.

Every change (a promotion, a forced promotion, a rollback) is first written as a numbered,
write-once entry under ``history/``; then ``champion.json`` is replaced by that same entry, on
the condition that it is still the pointer that was read (S3 conditional writes), so two
promoters at once can never both win. The pointer is the newest applied entry.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Callable

from .store import Conflict, Missing, RegistryError, Store

POINTER = "champion.json"
HISTORY = "history"
READ_NOW = object()  # promote(pointer=READ_NOW): no gate compared against a champion first
RACE = "another promotion or rollback changed the champion meanwhile; run the command again"


@dataclass(frozen=True)
class Pointer:
    """The champion entry as read, with the ETag a conditional replace needs."""

    entry: dict
    etag: str

    @property
    def version(self) -> str:
        """The champion's version."""
        return self.entry["version"]


def current(store: Store) -> Pointer | None:
    """The champion pointer, or None before the first promotion."""
    try:
        entry, etag = store.get_json(store.location.key(POINTER))
    except Missing:
        return None
    if not isinstance(entry, dict) or not isinstance(entry.get("version"), str):
        raise RegistryError(f"{store.location.uri(POINTER)} is not a champion pointer (edited "
                            "by hand?); restore it from the newest entry under history/")
    return Pointer(entry, etag)


def history(store: Store) -> list[dict]:
    """Every entry ever written, oldest first."""
    entries = []
    for key in store.keys(HISTORY):
        entries.append(store.get_json(key)[0])
    return sorted(entries, key=lambda entry: entry["sequence"])


def entry_at(store: Store, sequence: int) -> dict:
    """The history entry with this sequence number."""
    try:
        return store.get_json(store.location.key(HISTORY, f"{sequence:06d}.json"))[0]
    except Missing:
        raise RegistryError(f"history entry {sequence} is missing from "
                            f"{store.location.uri(HISTORY)}; the audit trail was changed by "
                            "hand") from None


def move(store: Store, pointer: Pointer | None, version: str, *, action: str, by: str,
         rollback_to: int | None, gate: dict | None = None, forced: bool = False,
         reason: str | None = None) -> dict:
    """Record a change of champion to ``version`` and move the pointer; the new entry."""
    entry = {
        "sequence": (pointer.entry["sequence"] + 1) if pointer else 1,
        "version": version,
        "action": action,
        "at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "by": by,
        "previous": pointer.version if pointer else None,
        # the entry a rollback from here restores (None: nothing earlier to go back to)
        "rollback_to": rollback_to,
        "forced": forced,
        "reason": reason,
        "gate": gate,
    }
    try:
        store.put_json(store.location.key(HISTORY, f"{entry['sequence']:06d}.json"), entry)
        store.put_json(store.location.key(POINTER), entry,
                       replacing=pointer.etag if pointer else None)
    except Conflict:
        raise Conflict(RACE) from None
    return entry


def promote(store: Store, version: str, *, by: str, gate: dict | None, forced: bool,
            reason: str | None, pointer: Pointer | None | object = READ_NOW) -> dict:
    """Make ``version`` the champion; a rollback from it restores the champion before it.

    ``pointer`` is the champion the gate compared against (read now if not given): if it has
    changed since, the move is refused rather than replacing a champion nobody compared with.
    """
    pointer = current(store) if pointer is READ_NOW else pointer
    return move(store, pointer, version, action="force-promote" if forced else "promote",
                by=by, rollback_to=pointer.entry["sequence"] if pointer else None, gate=gate,
                forced=forced, reason=reason)


def rollback(store: Store, *, by: str, reason: str | None,
             check: Callable[[str], object]) -> dict:
    """Restore the champion that preceded the current one's promotion, once ``check(version)``
    has proven it is still intact in the store."""
    pointer = current(store)
    if pointer is None or pointer.entry.get("rollback_to") is None:
        raise RegistryError("there is no earlier champion to roll back to (`list --history` "
                            "shows the trail); promote a version instead")
    restored = entry_at(store, pointer.entry["rollback_to"])
    check(restored["version"])
    return move(store, pointer, restored["version"], action="rollback", by=by,
                rollback_to=restored["rollback_to"], reason=reason)
