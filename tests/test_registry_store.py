"""The registry's store against moto's S3 over HTTP: publish, list, show, fetch; immutability;
checksums and signatures checked on the way in and on the way out; the frozen reference set."""

import hashlib
import json

import boto3
import pytest

from insurance_charges.core.model_card import path_for
from insurance_charges.core.model_signing import TRUSTED_KEYS, read_public_keys, signature_path
from insurance_charges.registry import artifacts, champion, promotion
from insurance_charges.registry.store import Conflict, Store
from insurance_charges.registry.uri import parse_store
from insurance_charges.settings import DEFAULT_MODEL_PATH

from .conftest import sign_with

pytest.register_assert_rewrite("tests.registry_fixtures")
pytest_plugins = ("tests.registry_fixtures",)  # moto_endpoint, aws, store, committed_dir
from .registry_fixtures import BUCKET, run, run_module, trust_both  # noqa: E402

CARD = json.loads(path_for(DEFAULT_MODEL_PATH).read_text())
VERSION = CARD["model_version"]
TRAINED_AT = CARD["trained_at"][:19]  # shown to the second, in UTC
FILES = ("insurance-charges.card.json", "insurance-charges.pkl", "insurance-charges.sig.json")


def key(store_uri: str, *parts: str) -> str:
    return parse_store(store_uri).key(*parts)


def s3_objects(store_uri: str) -> list[str]:
    listed = boto3.client("s3").list_objects_v2(Bucket=BUCKET, Prefix=key(store_uri) + "/")
    return sorted(item["Key"][len(key(store_uri)) + 1 :] for item in listed.get("Contents", []))


def put(store_uri: str, name: str, body: bytes) -> None:
    boto3.client("s3").put_object(Bucket=BUCKET, Key=key(store_uri, name), Body=body)


def get(store_uri: str, name: str) -> bytes:
    return boto3.client("s3").get_object(Bucket=BUCKET, Key=key(store_uri, name))["Body"].read()


@pytest.fixture
def published(capsys, store, committed_dir, data_path):
    """A store holding the committed model, the shared data set as its reference set."""
    status, out, err = run(capsys, store, "publish", committed_dir, "--reference-data", data_path)
    assert status == 0, err
    return store


def test_publish_puts_the_files_training_wrote_under_the_cards_version(capsys, published):
    assert s3_objects(published) == [
        *(f"{VERSION}/{name}" for name in FILES),
        f"{VERSION}/manifest.json",
        "reference/about.json",
        "reference/records.csv",
    ]
    for name in FILES:
        assert (
            get(published, f"{VERSION}/{name}") == (DEFAULT_MODEL_PATH.parent / name).read_bytes()
        )
    manifest = json.loads(get(published, f"{VERSION}/manifest.json"))
    assert (
        manifest["signed_by"]
        == json.loads(signature_path(DEFAULT_MODEL_PATH).read_text())["key_id"]
    )


def test_list_shows_each_version_with_its_figures_and_the_champion(capsys, published):
    status, out, _ = run(capsys, published, "list")
    header, line = out.splitlines()
    assert header.split() == [
        "version",
        "trained",
        "at",
        "(UTC)",
        "estimator",
        "holdout",
        "MAE",
        "holdout",
        "R²",
        "coverage",
        "data",
        "SHA-256",
    ]
    assert line.split() == [
        VERSION,
        TRAINED_AT,
        "GradientBoostingRegressor",
        "2,188.80",
        "0.9056",
        "81.1%",
        "505c1cbc2e63",
    ]
    champion.promote(
        Store(parse_store(published)),
        VERSION,
        by="test",
        gate=None,
        forced=True,
        reason="a test sets the pointer",
    )
    assert run(capsys, published, "list")[1].splitlines()[1].endswith("505c1cbc2e63  champion")


def test_show_prints_the_manifest_and_the_cards_figures(capsys, published):
    status, out, _ = run(capsys, published, "show", VERSION)
    assert status == 0
    assert f"location        s3://{BUCKET}/{key(published, VERSION)}" in out
    assert "holdout         MAE 2,188.80, R² 0.9056" in out
    assert "insurance-charges.pkl    194,396 bytes  sha256 586c9afb" in out


def test_fetch_writes_the_same_bytes_it_verified(capsys, published, tmp_path):
    status, out, _ = run(capsys, published, "fetch", VERSION, tmp_path / "out")
    assert status == 0 and out.startswith(f"wrote {tmp_path / 'out' / 'insurance-charges.pkl'}")
    for name in FILES:
        assert (tmp_path / "out" / name).read_bytes() == (
            DEFAULT_MODEL_PATH.parent / name
        ).read_bytes()


def test_publishing_the_same_bytes_again_changes_nothing(capsys, published, committed_dir):
    before = get(published, f"{VERSION}/manifest.json")
    status, out, _ = run(capsys, published, "publish", committed_dir)
    assert status == 0 and out.startswith(f"already published (identical bytes) {VERSION}")
    assert get(published, f"{VERSION}/manifest.json") == before


def test_publishing_other_bytes_under_a_published_version_is_refused(
    capsys, published, committed_dir, signing_key, public_key_file, tmp_path, monkeypatch
):
    card_path = committed_dir / "insurance-charges.card.json"
    card = json.loads(card_path.read_text())
    card["trained_at"] = "2026-11-21T13:00:00+00:00"  # a second training run, same version name
    card_path.write_text(json.dumps(card))
    sign_with(signing_key, committed_dir / "insurance-charges.pkl")
    monkeypatch.setenv("MODEL_PUBLIC_KEY", str(trust_both(public_key_file, tmp_path)))
    status, out, err = run(capsys, published, "publish", committed_dir)
    assert status == 1 and out == ""
    assert err == (
        f"Error: version {VERSION} is already in s3://{BUCKET}/{key(published)} with "
        "other bytes; versions are immutable: retrain to make a new version\n"
    )
    assert (
        get(published, f"{VERSION}/insurance-charges.card.json")
        == path_for(DEFAULT_MODEL_PATH).read_bytes()
    )


def test_a_model_signed_by_a_key_the_fleet_does_not_trust_never_enters_the_store(
    capsys, store, committed_dir, signing_key, data_path
):
    sign_with(signing_key, committed_dir / "insurance-charges.pkl")
    status, _, err = run(capsys, store, "publish", committed_dir, "--reference-data", data_path)
    assert status == 1 and "is refused: it is signed by key" in err
    assert "which this service does not trust" in err and err.count("\n") == 1
    assert s3_objects(store) == []


@pytest.mark.parametrize(
    "tamper, message",
    [
        (
            lambda d: (d / "insurance-charges.sig.json").unlink(),
            "cannot read {d}/insurance-charges.sig.json (No such file or directory)",
        ),
        (
            lambda d: (d / "insurance-charges.pkl").write_bytes(b"\x80\x04not the pipeline"),
            "its signature does not match the pipeline and card",
        ),
        (
            lambda d: (d / "insurance-charges.card.json").write_text("{}"),
            "its signature does not match the pipeline and card",
        ),
        (lambda d: (d / "extra.card.json").write_text("{}"), "holds 2 model cards, not one"),
    ],
)
def test_a_damaged_model_directory_is_refused_before_anything_is_written(
    capsys, store, committed_dir, data_path, tamper, message
):
    tamper(committed_dir)
    status, _, err = run(capsys, store, "publish", committed_dir, "--reference-data", data_path)
    assert status == 1 and message.format(d=committed_dir) in err and err.count("\n") == 1
    assert s3_objects(store) == []


@pytest.mark.parametrize(
    "replace",
    [
        ["insurance-charges.pkl"],
        ["insurance-charges.pkl", "manifest.json"],
        ["insurance-charges.card.json", "manifest.json"],
    ],
)
def test_an_object_changed_in_the_store_is_refused_on_the_way_out(
    capsys, published, tmp_path, replace
):
    manifest = json.loads(get(published, f"{VERSION}/manifest.json"))
    for name in replace:
        if name != "manifest.json":
            body = get(published, f"{VERSION}/{name}").replace(
                b"GradientBoosting", b"GradientBooster"
            )
            put(published, f"{VERSION}/{name}", body)
            manifest["files"][name]["sha256"] = hashlib.sha256(body).hexdigest()
        else:  # the manifest rewritten to match: then the signature is what refuses it
            put(published, f"{VERSION}/manifest.json", json.dumps(manifest).encode())
    status, _, err = run(capsys, published, "fetch", VERSION, tmp_path / "out")
    expected = (
        "does not match the SHA-256 its manifest records"
        if len(replace) == 1
        else "its signature does not match the pipeline and card (changed after signing?)"
    )
    assert status == 1 and expected in err and err.count("\n") == 1
    assert not (tmp_path / "out").exists()


def test_a_version_that_was_never_published_is_named_in_the_error(capsys, published, tmp_path):
    status, _, err = run(capsys, published, "fetch", "2026.01.01-gbr-00000000", tmp_path)
    assert status == 1
    assert err == (
        f"Error: version 2026.01.01-gbr-00000000 is not in the store "
        f"s3://{BUCKET}/{key(published)}; `python -m insurance_charges.registry list` "
        "shows the published ones\n"
    )


def test_the_reference_set_is_frozen_at_the_first_publish(
    capsys, published, committed_dir, tmp_path, data_path
):
    about = json.loads(get(published, "reference/about.json"))
    assert about["rows"] == 1338 and about["training_data_of"] == VERSION
    assert get(published, "reference/records.csv") == data_path.read_bytes()
    other = tmp_path / "other.csv"
    other.write_text("\n".join(data_path.read_text().splitlines()[:100]) + "\n")
    status, _, err = run(capsys, published, "publish", committed_dir, "--reference-data", other)
    assert status == 1 and "the store's reference set is frozen and differs from" in err
    assert get(published, "reference/records.csv") == data_path.read_bytes()


def test_a_first_publish_without_reference_data_names_what_to_give(
    capsys, store, committed_dir, signing_key, public_key_file, tmp_path, monkeypatch
):
    card_path = committed_dir / "insurance-charges.card.json"
    card = json.loads(card_path.read_text())
    card["data"]["sha256"] = "ab" * 32  # trained on some other file than the canonical one
    card_path.write_text(json.dumps(card))
    sign_with(signing_key, committed_dir / "insurance-charges.pkl")
    monkeypatch.setenv("MODEL_PUBLIC_KEY", str(public_key_file))
    status, _, err = run(capsys, store, "publish", committed_dir)
    assert status == 1 and err == (
        "Error: the store has no reference set yet; give --reference-data CSV (the data "
        f"{VERSION} was trained on has SHA-256 abababababab..., or records kept out of "
        "training)\n"
    )
    assert s3_objects(store) == []


def test_reference_data_that_breaks_the_schema_is_refused_naming_the_row(
    capsys, store, committed_dir, data_path, tmp_path
):
    rows = data_path.read_text().splitlines()
    rows[3] = rows[3].replace("female", "f", 1).replace("male", "m", 1)
    bad = tmp_path / "bad.csv"
    bad.write_text("\n".join(rows) + "\n")
    status, _, err = run(capsys, store, "publish", committed_dir, "--reference-data", bad)
    assert status == 1 and err.startswith(
        f"Error: evaluation records {bad} are unusable: {bad}: row 4: sex must be one of"
    )
    assert s3_objects(store) == []


def test_two_promoters_at_once_cannot_both_move_the_champion(published):
    registry = Store(parse_store(published))
    seen = champion.current(registry)  # both read "no champion yet"
    champion.move(registry, seen, VERSION, action="promote", by="first", rollback_to=None)
    with pytest.raises(Conflict, match="another promotion or rollback changed the champion"):
        champion.move(registry, seen, VERSION, action="promote", by="second", rollback_to=None)
    assert [e["by"] for e in champion.history(registry)] == ["first"]


@pytest.mark.parametrize(
    "argv, message",
    [
        (["list"], "Error: no store given; pass --store s3://bucket/prefix or set MODEL_STORE"),
        (
            ["--store", "s3://R/x", "list"],
            "Error: --store 's3://R/x': 'R' is not an S3 bucket name",
        ),
    ],
)
def test_a_missing_or_malformed_store_is_one_line(capsys, aws, argv, message):
    status, _, err = run(capsys, None, *argv)
    assert status == 1 and err.startswith(message) and err.count("\n") == 1


def test_model_store_in_the_environment_names_the_store(capsys, published, monkeypatch):
    monkeypatch.setenv("MODEL_STORE", published)
    assert VERSION in run(capsys, None, "list")[1]


@pytest.mark.slow
@pytest.mark.parametrize(
    "argv",
    [
        ["promote", VERSION, "--force"],
        ["promote", VERSION, "--force", "--reason", " "],
        ["promote", VERSION, "--deploy-ecs", "just-a-service"],
    ],
)
def test_usage_errors_exit_2_before_anything_runs(argv):
    done = run_module({}, "--store", f"s3://{BUCKET}/x", *argv)
    assert done.returncode == 2
    assert done.stderr.splitlines()[-1].startswith("python -m insurance_charges.registry: error: ")


def test_a_champion_that_changed_while_the_gate_ran_is_not_replaced(published):
    registry = Store(parse_store(published))
    compared = champion.current(registry)  # the gate compares against "no champion yet"...
    champion.promote(registry, VERSION, by="someone else", gate=None, forced=False, reason=None)
    with pytest.raises(Conflict):  # ...but meanwhile someone promoted: refuse, run again
        champion.promote(
            registry, VERSION, by="us", gate=None, forced=False, reason=None, pointer=compared
        )
    assert champion.current(registry).entry["by"] == "someone else"


def test_evaluation_data_equal_to_the_reference_set_is_scored_once(published, data_path):
    registry, keys = Store(parse_store(published)), read_public_keys(TRUSTED_KEYS.read_bytes())
    results, _ = promotion.compare(
        registry, artifacts.fetch(registry, VERSION, keys), None, data_path, keys
    )
    assert [(r.name, r.rows) for r in results] == [("reference (frozen)", 1338)]
