"""Every object read from the store is checked for shape and type before use: a manifest, card,
champion.json, history entry or reference set edited by hand (missing keys, wrong types, not
JSON, nested past the parser, huge) is one `Error:` line naming its s3:// URI and what to do,
never a traceback; `list` shows a broken version or entry as broken and lists the rest; a
reference set with one half missing is named, never skipped by the gate."""

import hashlib
import itertools
import json
import shutil

import boto3
import pytest

from insurance_charges.core.model_card import path_for
from insurance_charges.core.model_signing import TRUSTED_KEYS, read_public_keys
from insurance_charges.registry import artifacts, champion, evaluation
from insurance_charges.registry.loading import load_from_store
from insurance_charges.registry.store import MAX_DOCUMENT, RegistryError, Store
from insurance_charges.registry.uri import parse_store
from insurance_charges.settings import DEFAULT_MODEL_PATH

from .conftest import vouch_for

pytest.register_assert_rewrite("tests.registry_fixtures")
pytest_plugins = ("tests.registry_fixtures",)  # moto_endpoint, aws, store, committed_dir
from .registry_fixtures import BUCKET, run, trust_both  # noqa: E402

CARD = json.loads(path_for(DEFAULT_MODEL_PATH).read_text())
VERSION = CARD["model_version"]
PIPELINE, CARD_NAME = "insurance-charges.pkl", "insurance-charges.card.json"
OTHER = "2026.01.02-gbr-bbbbbbbb"
KEYS = read_public_keys(TRUSTED_KEYS.read_bytes())


def s3_key(store_uri: str, *parts: str) -> str:
    return parse_store(store_uri).key(*parts)


def put(store_uri: str, name: str, body: bytes) -> None:
    boto3.client("s3").put_object(Bucket=BUCKET, Key=s3_key(store_uri, name), Body=body)


def get(store_uri: str, name: str) -> bytes:
    return boto3.client("s3").get_object(Bucket=BUCKET, Key=s3_key(store_uri, name))["Body"].read()


def edited(change):
    """A JSON object's bytes after ``change(document)`` (which may return a replacement)."""

    def edit(document: dict) -> bytes:
        changed = change(document)
        return (
            changed
            if isinstance(changed, bytes)
            else json.dumps(document if changed is None else changed).encode()
        )

    return edit


# Hand edits every JSON object can suffer, and the words the error line uses for each.
ANY_DOCUMENT = {
    "not JSON": (edited(lambda d: b'{"sequence": '), "is not JSON"),
    "nested past the parser": (edited(lambda d: b"[" * 200_000 + b"]" * 200_000), "is not JSON"),
    "huge": (
        edited(lambda d: b" " * MAX_DOCUMENT + json.dumps(d).encode()),
        "is longer than any document the registry writes (1,048,576 bytes)",
    ),
    "a list": (edited(lambda d: [d]), "it is an array, not an object"),
    "null": (edited(lambda d: b"null"), "it is null, not an object"),
}


def drop(key):
    return edited(lambda d: d.pop(key) and None)


def setting(path, value):
    def change(document):
        *outer, last = path.split("/")
        target = document
        for part in outer:
            target = target[part]
        target[last] = value

    return edited(change)


MANIFESTS = {
    **ANY_DOCUMENT,
    "files a string": (setting("files", PIPELINE), "files is a string, not an object"),
    "no files": (drop("files"), "it lacks files"),
    "no pipeline": (drop("pipeline"), "it lacks pipeline"),
    "pipeline a number": (setting("pipeline", 7), "pipeline is a number, not a file name"),
    "a checksum not hex": (
        setting(f"files/{PIPELINE}", {"sha256": "zz", "bytes": 1}),
        f"files['{PIPELINE}'] is not",
    ),
    "a size as text": (
        setting(f"files/{PIPELINE}", {"sha256": "0" * 64, "bytes": "194396"}),
        f"files['{PIPELINE}'] is not",
    ),
    "a size past the bound": (
        setting(f"files/{PIPELINE}", {"sha256": "0" * 64, "bytes": 2**40}),
        f"files['{PIPELINE}'] is not",
    ),
    "another format": (setting("format", "release/0"), "format is 'release/0'"),
    "another version's": (setting("version", OTHER), f"version is '{OTHER}'"),
    "signed_by a number": (setting("signed_by", 1), "signed_by is a number, not a string"),
}


@pytest.fixture
def published(capsys, store, committed_dir, data_path):
    """A store holding the committed model, the shared data set as its reference set."""
    assert run(capsys, store, "publish", committed_dir, "--reference-data", data_path)[0] == 0
    return store


@pytest.fixture
def two_versions(
    capsys, published, committed_dir, signing_key, public_key_file, tmp_path, monkeypatch
):
    """The committed model and a second version (its pipeline one byte longer, signed by the
    tests' key); the second one's name."""
    second = tmp_path / "second"
    shutil.copytree(committed_dir, second)
    with (second / PIPELINE).open("ab") as pipeline:
        pipeline.write(b".")  # after pickle's STOP: unread, but another SHA-256 and version
    vouch_for(second / PIPELINE, signing_key)
    monkeypatch.setenv("MODEL_PUBLIC_KEY", str(trust_both(public_key_file, tmp_path)))
    assert run(capsys, published, "publish", second)[0] == 0
    return json.loads((second / CARD_NAME).read_text())["model_version"]


def one_error(err: str, uri: str, words: str) -> None:
    assert err.count("\n") == 1 and err.startswith(f"Error: {uri} ") and words in err, err
    assert "Traceback" not in err


@pytest.mark.parametrize("command", ["fetch", "show", "promote"])
@pytest.mark.parametrize("case", MANIFESTS)
def test_a_malformed_manifest_is_one_error_line_naming_it(
    capsys, published, tmp_path, case, command
):
    edit, words = MANIFESTS[case]
    put(
        published,
        f"{VERSION}/manifest.json",
        edit(json.loads(get(published, f"{VERSION}/manifest.json"))),
    )
    argv = {
        "fetch": ["fetch", VERSION, tmp_path / "out"],
        "show": ["show", VERSION],
        "promote": ["promote", VERSION, "--force", "--reason", "test"],
    }[command]
    status, out, err = run(capsys, published, *argv)
    assert status == 1 and out == ""
    one_error(err, parse_store(published).uri(VERSION, "manifest.json"), words)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("case", MANIFESTS)
def test_list_shows_a_version_with_a_malformed_manifest_as_broken_and_lists_the_rest(
    capsys, published, two_versions, case
):
    edit, words = MANIFESTS[case]
    put(
        published,
        f"{VERSION}/manifest.json",
        edit(json.loads(get(published, f"{VERSION}/manifest.json"))),
    )
    status, out, err = run(capsys, published, "list")
    assert status == 0 and err == ""
    header, good, broken = out.splitlines()
    assert good.startswith(f"{two_versions} ") and "GradientBoostingRegressor" in good
    manifest_uri = parse_store(published).uri(VERSION, "manifest.json")
    assert broken.startswith(f"{VERSION:<28} BROKEN: {manifest_uri} ") and words in broken


@pytest.mark.parametrize(
    "case",
    ["files a string", "no files", "nested past the parser", "huge", "a size past the bound"],
)
def test_serving_a_version_with_a_malformed_manifest_is_one_line(published, case):
    edit, words = MANIFESTS[case]
    put(
        published,
        f"{VERSION}/manifest.json",
        edit(json.loads(get(published, f"{VERSION}/manifest.json"))),
    )
    uri = f"{published}/{VERSION}"
    with pytest.raises(RegistryError) as refused:
        load_from_store(uri, KEYS)
    message = str(refused.value)
    assert message.startswith(f"MODEL_URI {uri}: {published}/{VERSION}/manifest.json ")
    assert words in message and "\n" not in message


CARDS = {
    "not JSON": ANY_DOCUMENT["not JSON"],
    "a list": (edited(lambda d: [d]), "is not a JSON object"),
    "no metrics": (drop("metrics"), "(lacks metrics)"),
    "trained_at a number": (setting("trained_at", 2026), "trained_at has the wrong type"),
    "no data checksum": (
        edited(lambda d: d["data"].pop("sha256") and None),
        "data.sha256 has the wrong type",
    ),
    "r2 as text": (setting("metrics/holdout/r2", "0.9"), "metrics.holdout.r2 has the wrong type"),
}


def replace_card(store_uri: str, edit) -> None:
    """The card changed, and the manifest changed to match it (a checksum alone proves
    nothing: `list` reads cards without their signatures)."""
    body = edit(json.loads(get(store_uri, f"{VERSION}/{CARD_NAME}")))
    put(store_uri, f"{VERSION}/{CARD_NAME}", body)
    manifest = json.loads(get(store_uri, f"{VERSION}/manifest.json"))
    manifest["files"][CARD_NAME] = {"sha256": hashlib.sha256(body).hexdigest(), "bytes": len(body)}
    put(store_uri, f"{VERSION}/manifest.json", json.dumps(manifest).encode())


@pytest.mark.parametrize("case", CARDS)
def test_a_malformed_card_is_one_line_in_show_and_a_broken_version_in_list(
    capsys, published, two_versions, case
):
    edit, words = CARDS[case]
    replace_card(published, edit)
    card_uri = parse_store(published).uri(VERSION, CARD_NAME)
    status, out, err = run(capsys, published, "show", VERSION)
    assert status == 1 and out == ""
    one_error(err, card_uri, words)
    status, out, err = run(capsys, published, "list")
    assert status == 0 and err == ""
    assert out.splitlines()[1].startswith(f"{two_versions} ")
    assert out.splitlines()[2].startswith(f"{VERSION:<28} BROKEN: {card_uri} ")


POINTERS = {
    **ANY_DOCUMENT,
    "no sequence": (drop("sequence"), "it lacks sequence"),
    "sequence as text": (setting("sequence", "1"), "sequence is '1'"),
    "version a path": (setting("version", "../../x"), "version is '../../x'"),
    "previous a number": (setting("previous", 5), "previous is 5"),
    "rollback_to itself": (setting("rollback_to", 1), "rollback_to is 1"),
    "an unknown action": (setting("action", "delete"), "action is 'delete'"),
    "gate checks as text": (
        setting("gate", {"passed": True, "sets": [], "checks": ["ok"]}),
        "gate.checks holds an item",
    ),
}


@pytest.fixture
def with_champion(published):
    """The committed model promoted (history entry 1, champion.json its copy)."""
    champion.promote(
        Store(parse_store(published)),
        VERSION,
        by="test",
        gate=None,
        forced=True,
        reason="set up by a test",
    )
    return published


@pytest.mark.parametrize(
    "command",
    [
        ["fetch", "champion", "{tmp}/out"],
        ["rollback"],
        ["promote", VERSION, "--force", "--reason", "test"],
    ],
)
@pytest.mark.parametrize("case", POINTERS)
def test_a_malformed_champion_json_is_one_error_line_naming_it(
    capsys, with_champion, tmp_path, case, command
):
    edit, words = POINTERS[case]
    put(with_champion, "champion.json", edit(json.loads(get(with_champion, "champion.json"))))
    before = get(with_champion, "champion.json")
    status, out, err = run(capsys, with_champion, *(part.format(tmp=tmp_path) for part in command))
    assert status == 1 and out == ""
    one_error(err, parse_store(with_champion).uri("champion.json"), words)
    assert get(with_champion, "champion.json") == before  # nothing moved on a broken pointer


@pytest.mark.parametrize("case", POINTERS)
def test_list_names_a_malformed_champion_json_and_still_lists_every_version(
    capsys, with_champion, case
):
    edit, words = POINTERS[case]
    put(with_champion, "champion.json", edit(json.loads(get(with_champion, "champion.json"))))
    for argv in (["list"], ["list", "--history"]):
        status, out, err = run(capsys, with_champion, *argv)
        assert status == 0 and err == ""
        lines = out.splitlines()
        assert lines[1].startswith(VERSION if argv == ["list"] else "  1  ")
        assert lines[-1].startswith(
            f"champion: BROKEN: {parse_store(with_champion).uri('champion.json')} "
        )
        assert words in lines[-1]


@pytest.mark.parametrize("case", ["no sequence", "a list", "not JSON", "version a path", "huge"])
def test_serving_the_champion_with_a_malformed_champion_json_is_one_line(with_champion, case):
    edit, words = POINTERS[case]
    put(with_champion, "champion.json", edit(json.loads(get(with_champion, "champion.json"))))
    with pytest.raises(RegistryError) as refused:
        load_from_store(f"{with_champion}/champion", KEYS)
    assert str(refused.value).startswith(
        f"MODEL_URI {with_champion}/champion: {with_champion}/champion.json "
    )
    assert words in str(refused.value) and "\n" not in str(refused.value)


HISTORY = {**POINTERS, "another number": (setting("sequence", 2), "says it is entry 2")}


@pytest.fixture
def two_champions(with_champion):
    """Then OTHER promoted over it (history entry 2; a rollback restores entry 1)."""
    champion.promote(
        Store(parse_store(with_champion)), OTHER, by="test", gate=None, forced=True, reason="second"
    )
    return with_champion


@pytest.mark.parametrize("case", HISTORY)
def test_a_malformed_history_entry_is_named_by_rollback_and_shown_broken_by_the_history(
    capsys, two_champions, case
):
    edit, words = HISTORY[case]
    put(
        two_champions,
        "history/000001.json",
        edit(json.loads(get(two_champions, "history/000001.json"))),
    )
    entry_uri = parse_store(two_champions).uri("history", "000001.json")
    status, out, err = run(capsys, two_champions, "rollback")
    assert status == 1 and out == ""
    one_error(err, entry_uri, words)
    status, out, err = run(capsys, two_champions, "list", "--history")
    assert status == 0 and err == ""
    _, first, second = out.splitlines()
    assert first.startswith(f"  1  BROKEN: {entry_uri} ") and words in first
    assert second.split()[2:4] == ["force-promote", OTHER]


def test_objects_under_history_that_are_not_entries_are_listed_and_otherwise_ignored(
    capsys, two_champions
):
    put(two_champions, "history/notes.txt", b"who promoted what")
    status, out, _ = run(capsys, two_champions, "list", "--history")
    assert status == 0 and out.splitlines()[-1] == (
        f"  ?  BROKEN: '{s3_key(two_champions, 'history', 'notes.txt')}' is not a history "
        "entry's name (NNNNNN.json)"
    )
    assert champion.current(Store(parse_store(two_champions))).version == OTHER


@pytest.mark.parametrize("far", [4, 60])
def test_a_gap_in_the_history_is_one_line_however_wide(capsys, two_champions, far):
    put(
        two_champions,
        f"history/{far:06d}.json",
        setting("sequence", far)(json.loads(get(two_champions, "history/000002.json"))),
    )
    status, out, _ = run(capsys, two_champions, "list", "--history")
    lines = out.splitlines()
    assert (
        status == 0
        and len(lines) == 5
        and lines[3].startswith(
            f"  3  BROKEN: entries 3 to {far - 1} are missing from {two_champions}/history/; it "
            "was changed outside the registry"
        )
    )
    assert lines[4].split()[0] == str(far)


def test_an_entry_numbered_past_a_million_is_still_read_as_the_newest(two_champions):
    put(
        two_champions,
        "history/1000000000.json",
        setting("sequence", 10**9)(json.loads(get(two_champions, "history/000002.json"))),
    )
    assert champion.current(Store(parse_store(two_champions))).entry["sequence"] == 10**9


def test_a_champion_json_ahead_of_the_history_is_named(capsys, with_champion, tmp_path):
    put(
        with_champion,
        "champion.json",
        setting("sequence", 7)(json.loads(get(with_champion, "champion.json"))),
    )
    status, _, err = run(capsys, with_champion, "fetch", "champion", tmp_path / "out")
    assert status == 1 and err == (
        f"Error: {with_champion}/champion.json names history entry 7, but the newest under "
        f"{with_champion}/history/ is 1; it was changed outside the registry: restore it from "
        "the bucket's object versions (docs/model-releases.md#the-store)\n"
    )


def a_stopped_freeze(store_uri: str, data_path, puts_made: int) -> None:
    """The first publish's freeze, stopped after ``puts_made`` writes (records.csv is first)."""
    s3, puts = boto3.client("s3"), itertools.count(1)

    class Stopped(BaseException):
        pass

    def stop(**_):
        if next(puts) > puts_made:
            raise Stopped

    s3.meta.events.register("before-parameter-build.s3.PutObject", stop)
    with pytest.raises(Stopped):
        evaluation.freeze(Store(parse_store(store_uri), s3=s3), CARD, data_path, by="test")


def publish_version_only(store_uri: str, committed_dir) -> None:
    """The version published, the reference set left as it is."""
    artifacts.publish(Store(parse_store(store_uri)), artifacts.read_directory(committed_dir, KEYS))


def about_only(store_uri: str, data_path) -> None:
    """about.json without records.csv (only a hand edit does this: records.csv is written
    first)."""
    data = data_path.read_bytes()
    put(
        store_uri,
        "reference/about.json",
        json.dumps(
            {
                "sha256": hashlib.sha256(data).hexdigest(),
                "rows": 1338,
                "source": "test",
                "training_data_of": None,
                "written_at": "2026-12-01T00:00:00+00:00",
                "by": "test",
            }
        ).encode(),
    )


HALVES = {
    "records.csv without about.json": ("reference/records.csv", "reference/about.json"),
    "about.json without records.csv": ("reference/about.json", "reference/records.csv"),
}


def leave_half(store_uri: str, data_path, case: str) -> None:
    if case == "records.csv without about.json":
        a_stopped_freeze(store_uri, data_path, 1)
    else:
        about_only(store_uri, data_path)


@pytest.mark.parametrize("case", HALVES)
def test_the_gate_names_an_incomplete_reference_set_instead_of_running_without_it(
    capsys, store, committed_dir, data_path, case
):
    leave_half(store, data_path, case)
    publish_version_only(store, committed_dir)
    status, out, err = run(capsys, store, "promote", VERSION, "--force", "--reason", "test")
    there, missing = HALVES[case]
    assert (
        status == 1
        and out == ""
        and err
        == (
            f"Error: the reference set is incomplete: {store}/{there} is there but "
            f"{store}/{missing} "
            "is not (a publish stopped between them); complete it with `publish DIR "
            "--reference-data CSV` giving the same records\n"
        )
    )
    assert champion.current(Store(parse_store(store))) is None


@pytest.mark.parametrize("case", HALVES)
def test_a_publish_given_the_same_records_completes_an_incomplete_reference_set(
    capsys, store, committed_dir, data_path, case
):
    leave_half(store, data_path, case)
    status, _, err = run(capsys, store, "publish", committed_dir, "--reference-data", data_path)
    assert status == 0, err
    frozen = evaluation.reference(Store(parse_store(store)))
    assert (
        len(frozen.frame) == 1338 and get(store, "reference/records.csv") == data_path.read_bytes()
    )


@pytest.mark.parametrize("case", HALVES)
def test_a_publish_given_other_records_leaves_an_incomplete_reference_set_as_it_was(
    capsys, store, committed_dir, data_path, tmp_path, case
):
    leave_half(store, data_path, case)
    other = tmp_path / "other.csv"
    other.write_text("\n".join(data_path.read_text().splitlines()[:100]) + "\n")
    status, _, err = run(capsys, store, "publish", committed_dir, "--reference-data", other)
    assert status == 1 and err.count("\n") == 1
    assert err.startswith(f"Error: the store's reference set is frozen and differs from {other}")
    objects = boto3.client("s3").list_objects_v2(Bucket=BUCKET, Prefix=s3_key(store) + "/")
    assert [o["Key"][len(s3_key(store)) + 1 :] for o in objects["Contents"]] == [HALVES[case][0]]


ABOUTS = {
    **ANY_DOCUMENT,
    "no sha256": (drop("sha256"), "it lacks sha256"),
    "sha256 not hex": (setting("sha256", "not a digest"), "sha256 is 'not a digest'"),
    "rows as text": (setting("rows", "1338"), "rows is '1338'"),
    "source a number": (setting("source", 1), "source is a number, not a string"),
}


@pytest.mark.parametrize("case", ABOUTS)
def test_a_malformed_about_json_is_one_error_line_from_the_gate(capsys, published, case):
    edit, words = ABOUTS[case]
    put(published, "reference/about.json", edit(json.loads(get(published, "reference/about.json"))))
    status, out, err = run(capsys, published, "promote", VERSION, "--force", "--reason", "test")
    assert status == 1 and out == ""
    one_error(err, parse_store(published).uri("reference", "about.json"), words)


def test_reference_records_changed_in_the_store_are_refused_by_the_gate(capsys, published):
    put(
        published,
        "reference/records.csv",
        get(published, "reference/records.csv").replace(b"female", b"male", 1),
    )
    status, _, err = run(capsys, published, "promote", VERSION, "--force", "--reason", "test")
    assert status == 1 and err.startswith(
        f"Error: {published}/reference/records.csv does not match the SHA-256 in "
        f"{published}/reference/about.json; it was changed outside the registry"
    )


@pytest.mark.parametrize("name", [PIPELINE, CARD_NAME])
def test_a_file_longer_than_its_manifest_records_is_refused_by_its_size(
    capsys, published, tmp_path, name
):
    body = get(published, f"{VERSION}/{name}")
    put(published, f"{VERSION}/{name}", body + b" " * (8 * 1024 * 1024))  # 8 MiB appended
    status, out, err = run(capsys, published, "fetch", VERSION, tmp_path / "out")
    assert status == 1 and out == ""
    one_error(
        err,
        parse_store(published).uri(VERSION, name),
        f"is longer than the size its manifest records ({len(body):,} bytes)",
    )
    assert not (tmp_path / "out").exists()
