"""What ``list``, ``list --history`` and ``show`` print: plain tables a person can read."""
from __future__ import annotations

import json

from . import artifacts, champion
from .store import RegistryError, Store, sha256
from .uri import RESERVED


def card_of(store: Store, version: str, manifest: dict) -> dict:
    """A published version's card, checked against the SHA-256 its manifest records."""
    name = manifest["pipeline"][:-len(".pkl")] + artifacts.CARD
    data = store.get(store.location.key(version, name))
    if sha256(data) != manifest["files"][name]["sha256"]:
        raise RegistryError(f"{store.location.uri(version, name)} does not match the SHA-256 "
                            "its manifest records (changed in the store?)")
    return json.loads(data)


def versions(store: Store) -> str:
    """One line per published version, newest training first; the champion marked."""
    pointer = champion.current(store)
    rows = []
    for version in store.folders(""):
        if version in RESERVED:
            continue
        manifest = artifacts.published(store, version)
        if manifest is None:  # reserved folders, or a publish that never finished
            continue
        card = card_of(store, version, manifest)
        holdout, likely = card["metrics"]["holdout"], card.get("interval") or {}
        coverage = likely.get("holdout", {}).get("coverage")
        rows.append((card["trained_at"], (
            f"{version:<28} {card['trained_at'][:19]:<19}  {card['estimator'][:26]:<26} "
            f"{holdout['mae']:>11,.2f} {holdout.get('r2', float('nan')):>10.4f} "
            f"{'-' if coverage is None else f'{coverage:.1%}':>9}  "
            f"{card['data']['sha256'][:12]}  "
            f"{'champion' if pointer and pointer.version == version else ''}").rstrip()))
    header = (f"{'version':<28} {'trained at (UTC)':<19}  {'estimator':<26} {'holdout MAE':>11} "
              f"{'holdout R²':>10} {'coverage':>9}  {'data SHA-256':<12}")
    if not rows:
        return header + "\n(no published versions)"
    return "\n".join([header] + [line for _, line in sorted(rows, reverse=True)])


def _gate_summary(entry: dict) -> str:
    gate = entry.get("gate")
    if gate is None:
        return "no gate (rollback)" if entry["action"] == "rollback" else "-"
    failed = [c["name"] for c in gate["checks"] if not c["passed"]]
    return "gate passed" if not failed else "gate failed: " + ", ".join(failed)


def history(store: Store) -> str:
    """Every change of champion, oldest first, as the audit trail records it."""
    pointer = champion.current(store)
    applied = pointer.entry["sequence"] if pointer else 0
    lines = [f"{'#':>3}  {'at (UTC)':<19}  {'action':<13}  {'version':<28} {'previous':<28} "
             f"by; gate; reason"]
    for entry in champion.history(store):
        note = "" if entry["sequence"] <= applied else " (not applied: the pointer never moved)"
        reason = f"; reason: {entry['reason']}" if entry.get("reason") else ""
        lines.append(f"{entry['sequence']:>3}  {entry['at'][:19]:<19}  {entry['action']:<13}  "
                     f"{entry['version']:<28} {entry['previous'] or '-':<28} "
                     f"{entry['by']}; {_gate_summary(entry)}{reason}{note}")
    return "\n".join(lines) if len(lines) > 1 else lines[0] + "\n(no promotions yet)"


def show(store: Store, version: str) -> str:
    """A version's manifest and card figures, and whether it is the champion."""
    manifest = artifacts.published(store, version)
    if manifest is None:
        raise RegistryError(f"version {version} is not in the store {store.location.uri()}; "
                            "`list` shows the published ones")
    card = card_of(store, version, manifest)
    pointer = champion.current(store)
    holdout = card["metrics"]["holdout"]
    lines = [f"version         {version}",
             f"location        {store.location.model_uri(version)}",
             f"champion        {'yes' if pointer and pointer.version == version else 'no'}",
             f"published       {manifest['published_at']} by {manifest['published_by']}",
             f"signed by key   {manifest['signed_by']}",
             f"trained at      {card['trained_at']}",
             f"estimator       {card['estimator']}",
             f"holdout         MAE {holdout['mae']:,.2f}, R² {holdout.get('r2', float('nan')):.4f}",
             f"data            SHA-256 {card['data']['sha256']}, {card['data']['rows']} rows",
             "versions        " + ", ".join(f"{k} {v}" for k, v in card["versions"].items())]
    lines += [f"file            {name}  {item['bytes']:>9,} bytes  sha256 {item['sha256']}"
              for name, item in manifest["files"].items()]
    return "\n".join(lines)
