"""A promotion or rollback stopped between any two of its writes (the process killed, the network
gone) leaves a store the next promote or rollback completes by itself: the history is the truth,
a change is made once its entry is written, and champion.json is brought up to the newest entry
by whoever comes next. The stop is injected into a real boto3 client talking to moto: the k-th
PutObject raises before it is sent, as if the process had died there."""

import itertools
import json

import boto3
import pytest

from insurance_charges.core.model_card import path_for
from insurance_charges.registry import champion
from insurance_charges.registry.champion import RACE
from insurance_charges.registry.store import Conflict, RegistryError, Store
from insurance_charges.registry.uri import parse_store
from insurance_charges.settings import DEFAULT_MODEL_PATH

pytest.register_assert_rewrite("tests.registry_fixtures")
pytest_plugins = ("tests.registry_fixtures",)  # moto_endpoint, aws, store, committed_dir
from .registry_fixtures import BUCKET, run  # noqa: E402

A, B, C, D, E = (
    f"2026.01.0{day}-gbr-{letter * 8}" for day, letter in zip(range(1, 6), "abcde", strict=True)
)
VERSION = json.loads(path_for(DEFAULT_MODEL_PATH).read_text())["model_version"]


class Stopped(BaseException):
    """The writer dying mid-command: not an Exception, so nothing in the registry handles it."""


def stop(k: int) -> None:
    raise Stopped(f"stopped before put {k}")


def stopping_at(k: int | None, then=stop):
    """A client on moto that calls ``then(k)`` before its k-th PutObject is sent (None: never);
    by default that raises, as if the process died there."""
    s3, puts = boto3.client("s3"), itertools.count(1)

    def before(**_):
        if next(puts) == k:
            then(k)

    s3.meta.events.register("before-parameter-build.s3.PutObject", before)
    return s3


def promote(store_uri: str, version: str, stop: int | None = None) -> None:
    registry = Store(parse_store(store_uri), s3=stopping_at(stop))
    try:
        champion.promote(registry, version, by="test", gate=None, forced=True, reason="test")
    except Stopped:
        pass


def rollback(store_uri: str, stop: int | None = None) -> None:
    registry = Store(parse_store(store_uri), s3=stopping_at(stop))
    try:
        champion.rollback(registry, by="test", reason="test", check=lambda version: None)
    except Stopped:
        pass


def start(store_uri: str, state: str) -> None:
    """No champion; B promoted after A; or C's promotion after them stopped after its entry."""
    if state != "no champion":
        promote(store_uri, A)
        promote(store_uri, B)
    if state == "C pending":
        promote(store_uri, C, stop=2)


def assert_consistent(store_uri: str) -> str:
    """The history numbered 1..n, each entry replacing the one before it, champion.json a copy of
    the newest; that newest's version."""
    registry = Store(parse_store(store_uri))
    entries = champion.history(registry)
    assert [e["sequence"] for e in entries] == list(range(1, len(entries) + 1))
    assert all(
        later["previous"] == earlier["version"] for earlier, later in itertools.pairwise(entries)
    )
    pointer = (
        boto3.client("s3")
        .get_object(Bucket=BUCKET, Key=parse_store(store_uri).key("champion.json"))["Body"]
        .read()
    )
    assert json.loads(pointer) == entries[-1]
    return entries[-1]["version"]


def entries_behind(store_uri: str) -> int:
    """How many history entries champion.json lags behind."""
    registry = Store(parse_store(store_uri))
    newest = max(champion.listed(registry)[0], default=0)
    pointer = champion.current(registry)
    return newest - (pointer.published["sequence"] if pointer and pointer.published else 0)


def champion_now(store_uri: str) -> str | None:
    pointer = champion.current(Store(parse_store(store_uri)))
    return pointer.version if pointer else None


# (starting state, the change stopped, the put it stopped before, the champion it leaves, the
# champion a rollback from there restores; None: there is nothing to roll back to).
# A change is made once its history entry is written: put 1, or put 2 when champion.json
# lagged and was first brought up to date.
CASES = [
    ("no champion", "promote D", 1, None, None),
    ("no champion", "promote D", 2, D, None),
    ("no champion", "promote D", None, D, None),
    ("B after A", "promote D", 1, B, A),
    ("B after A", "promote D", 2, D, B),
    ("B after A", "promote D", None, D, B),
    ("B after A", "rollback", 1, B, A),
    ("B after A", "rollback", 2, A, None),
    ("B after A", "rollback", None, A, None),
    ("C pending", "promote D", 1, C, B),
    ("C pending", "promote D", 2, C, B),
    ("C pending", "promote D", 3, D, C),
    ("C pending", "promote D", None, D, C),
    ("C pending", "rollback", 1, C, B),
    ("C pending", "rollback", 2, C, B),
    ("C pending", "rollback", 3, B, A),
    ("C pending", "rollback", None, B, A),
]
IDS = [
    f"{state}, {change} stopped before put {k}" if k else f"{state}, {change} not stopped"
    for state, change, k, *_ in CASES
]


def interrupt(store_uri: str, state: str, change: str, k: int | None) -> None:
    start(store_uri, state)
    if change == "rollback":
        rollback(store_uri, stop=k)
    else:
        promote(store_uri, D, stop=k)


@pytest.mark.parametrize("state, change, k, left, _", CASES, ids=IDS)
def test_after_a_stopped_change_the_next_promotion_completes_the_store(
    store, state, change, k, left, _
):
    interrupt(store, state, change, k)
    assert champion_now(store) == left  # what servers and `list` see meanwhile
    assert entries_behind(store) <= 1  # servers of older releases read champion.json alone
    promote(store, E)
    assert assert_consistent(store) == E
    previous = champion.history(Store(parse_store(store)))[-1]["previous"]
    assert previous == left


@pytest.mark.parametrize("state, change, k, left, restored", CASES, ids=IDS)
def test_after_a_stopped_change_the_next_rollback_completes_the_store(
    store, state, change, k, left, restored
):
    interrupt(store, state, change, k)
    if restored is None:
        with pytest.raises(RegistryError, match="there is no earlier champion to roll back to"):
            rollback(store)
        if left is not None:  # the refused rollback still wrote the lagging champion.json
            assert assert_consistent(store) == left
    else:
        rollback(store)
        assert assert_consistent(store) == restored


def test_two_writers_who_find_the_same_stopped_change_cannot_both_move_the_champion(store):
    start(store, "C pending")
    registry = Store(parse_store(store))
    seen = champion.current(registry)  # both read "C, champion.json one behind"
    assert seen.pending and seen.version == C
    champion.move(registry, seen, D, action="promote", by="first", rollback_to=3)
    with pytest.raises(Conflict, match=RACE):
        champion.move(registry, seen, E, action="promote", by="second", rollback_to=3)
    assert assert_consistent(store) == D


def test_a_writer_whose_stopped_change_was_completed_by_another_still_moves_once(store):
    start(store, "C pending")
    registry = Store(parse_store(store))
    compared = champion.current(registry)  # the gate compares against C...
    champion.settle(registry, champion.current(registry))  # ...while another writer completes C
    champion.promote(registry, D, by="test", gate=None, forced=False, reason=None, pointer=compared)
    assert assert_consistent(store) == D


def test_a_writer_whose_champion_json_another_wrote_meanwhile_has_made_its_change(store):
    start(store, "B after A")
    other = Store(parse_store(store))
    # between the writer's history entry and its champion.json, another writer completes it
    writer = Store(
        parse_store(store),
        s3=stopping_at(2, then=lambda k: champion.settle(other, champion.current(other))),
    )
    entry = champion.promote(writer, D, by="test", gate=None, forced=True, reason="test")
    assert entry["sequence"] == 3 and assert_consistent(store) == D


@pytest.fixture
def published(capsys, store, committed_dir, data_path):
    """A store holding the committed model."""
    assert run(capsys, store, "publish", committed_dir, "--reference-data", data_path)[0] == 0
    return store


def test_the_registry_no_longer_jams_after_a_promotion_stopped_between_its_two_writes(
    capsys, published
):
    promote(published, VERSION)
    promote(published, B, stop=2)  # the history entry is written, champion.json is not
    status, out, _ = run(capsys, published, "list", "--history")
    assert status == 0 and out.splitlines()[-1].endswith(
        "(champion.json not written yet: its writer stopped; the next promote or rollback "
        "writes it)"
    )
    status, out, err = run(capsys, published, "rollback", "--reason", "after the outage")
    assert status == 0, err
    assert out.startswith(
        f"rolled back: {VERSION} is the champion again (was {B}; history entry 3)"
    )
    assert assert_consistent(published) == VERSION


def test_promoting_again_the_version_whose_promotion_stopped_completes_it(
    capsys, published, tmp_path
):
    promote(published, VERSION, stop=2)  # the first promotion: no champion.json at all
    status, out, _ = run(capsys, published, "fetch", "champion", tmp_path / "serving-now")
    assert status == 0 and f": {VERSION}," in out
    status, out, err = run(capsys, published, "promote", VERSION)
    assert (status, out, err) == (0, f"{VERSION} is already the champion\n", "")
    assert assert_consistent(published) == VERSION
