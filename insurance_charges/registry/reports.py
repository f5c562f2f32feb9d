"""What ``list``, ``list --history`` and ``show`` print: plain tables a person can read.

A listing never stops at one unusable object: a broken version, history entry or pointer is a
line saying so (with the reason) among the others.
"""

from __future__ import annotations

from . import artifacts, champion, documents
from .documents import CardFigures, Entry, Manifest
from .store import RESTORE, Damaged, Missing, RegistryError, Store, sha256
from .uri import RESERVED, check_version

BROKEN = "BROKEN: "


def card_of(store: Store, version: str, manifest: Manifest) -> CardFigures:
    """A published version's card figures, checked against the SHA-256 its manifest records."""
    name = manifest.pipeline[: -len(".pkl")] + artifacts.CARD
    listed, uri = manifest.files[name], store.location.uri(version, name)
    data = store.get(
        store.location.key(version, name), limit=listed.size, bound="the size its manifest records"
    )
    if sha256(data) != listed.sha256:
        raise Damaged(
            f"{uri} does not match the SHA-256 its manifest records (changed in the "
            f"store?); {documents.VERSION_FIX}"
        )
    return documents.card_figures(data, uri)


def _pointer(store: Store) -> tuple[champion.Pointer | None, str | None]:
    """The champion, or (None, why it cannot be read) when champion.json or the history is
    unusable: the listing goes on without it."""
    try:
        return champion.current(store), None
    except Damaged as exc:
        return None, f"champion: {BROKEN}{exc}"


def _version_line(
    store: Store, version: str, pointer: champion.Pointer | None
) -> tuple[str, str] | None:
    """When the version was trained, and its line (None: no manifest, a publish that never
    finished)."""
    check_version(version)
    manifest = artifacts.published(store, version)
    if manifest is None:
        return None
    card = card_of(store, version, manifest)
    return card.trained_at, (
        f"{version:<28} {card.trained_at[:19]:<19}  {card.estimator[:26]:<26} "
        f"{card.mae:>11,.2f} {float('nan') if card.r2 is None else card.r2:>10.4f} "
        f"{'-' if card.coverage is None else f'{card.coverage:.1%}':>9}  "
        f"{card.data_sha256[:12]}  "
        f"{'champion' if pointer and pointer.version == version else ''}"
    ).rstrip()


def versions(store: Store) -> str:
    """One line per published version, newest training first, the champion marked; then the
    versions that cannot be used, each with why."""
    pointer, pointer_fault = _pointer(store)
    rows, broken = [], []
    for folder in store.folders(""):
        if folder in RESERVED:
            continue
        try:
            line = _version_line(store, folder, pointer)
        except ValueError as exc:  # a folder named outside the version rules
            broken.append(f"{documents.shown(folder):<28} {BROKEN}not a version: {exc}")
        except (Damaged, Missing) as exc:
            broken.append(f"{folder:<28} {BROKEN}{exc}")
        else:
            if line is not None:
                rows.append(line)
    header = (
        f"{'version':<28} {'trained at (UTC)':<19}  {'estimator':<26} {'holdout MAE':>11} "
        f"{'holdout R²':>10} {'coverage':>9}  {'data SHA-256':<12}"
    )
    lines = [header, *(line for _, line in sorted(rows, reverse=True)), *broken]
    if not rows and not broken:
        lines.append("(no published versions)")
    return "\n".join(lines + ([pointer_fault] if pointer_fault else []))


def _gate_summary(entry: Entry) -> str:
    gate = entry["gate"]
    if gate is None:
        return "no gate (rollback)" if entry["action"] == "rollback" else "-"
    failed = [c["name"] for c in gate["checks"] if not c["passed"]]
    return "gate passed" if not failed else "gate failed: " + ", ".join(failed)


def _entry_line(entry: Entry, pointer: champion.Pointer | None) -> str:
    reason = f"; reason: {entry['reason']}" if entry["reason"] else ""
    pending = pointer is not None and pointer.pending and pointer.entry == entry
    note = (
        (
            " (champion.json not written yet: its writer stopped; the next promote or rollback "
            "writes it)"
        )
        if pending
        else ""
    )
    return (
        f"{entry['sequence']:>3}  {entry['at'][:19]:<19}  {entry['action']:<13}  "
        f"{entry['version']:<28} {entry['previous'] or '-':<28} "
        f"{entry['by']}; {_gate_summary(entry)}{reason}{note}"
    )


def history(store: Store) -> str:
    """Every change of champion, oldest first, as the audit trail records it."""
    pointer, pointer_fault = _pointer(store)
    numbered, strays = champion.listed(store)
    lines = [
        f"{'#':>3}  {'at (UTC)':<19}  {'action':<13}  {'version':<28} {'previous':<28} "
        f"by; gate; reason"
    ]
    expected = 1
    for sequence in sorted(numbered):
        if sequence > expected:  # one line per gap, however wide: the trail's own size bounds it
            lines.append(
                f"{expected:>3}  {BROKEN}entries {expected} to {sequence - 1} are "
                f"missing from {store.location.uri(champion.HISTORY)}/; {RESTORE}"
            )
        try:
            lines.append(_entry_line(champion.read_entry(store, sequence), pointer))
        except Damaged as exc:
            lines.append(f"{sequence:>3}  {BROKEN}{exc}")
        expected = sequence + 1
    lines += [
        f"  ?  {BROKEN}{documents.shown(key)} is not a history entry's name (NNNNNN.json)"
        for key in strays
    ]
    if len(lines) == 1:
        lines.append("(no promotions yet)")
    return "\n".join(lines + ([pointer_fault] if pointer_fault else []))


def show(store: Store, version: str) -> str:
    """A version's manifest and card figures, and whether it is the champion."""
    manifest = artifacts.published(store, version)
    if manifest is None:
        raise RegistryError(
            f"version {version} is not in the store {store.location.uri()}; "
            "`list` shows the published ones"
        )
    card = card_of(store, version, manifest)
    pointer = champion.current(store)
    r2 = float("nan") if card.r2 is None else card.r2
    lines = [
        f"version         {version}",
        f"location        {store.location.model_uri(version)}",
        f"champion        {'yes' if pointer and pointer.version == version else 'no'}",
        f"published       {manifest.published_at} by {manifest.published_by}",
        f"signed by key   {manifest.signed_by}",
        f"trained at      {card.trained_at}",
        f"estimator       {card.estimator}",
        f"holdout         MAE {card.mae:,.2f}, R² {r2:.4f}",
        f"data            SHA-256 {card.data_sha256}, {card.data_rows} rows",
        "versions        " + ", ".join(f"{k} {v}" for k, v in card.versions.items()),
    ]
    lines += [
        f"file            {name}  {item.size:>9,} bytes  sha256 {item.sha256}"
        for name, item in manifest.files.items()
    ]
    return "\n".join(lines)
