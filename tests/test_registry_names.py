"""A version's files are the names its signature covers, and nothing is written outside the
directory asked for: a manifest naming any other file (a path out of the directory, a .pth in
site-packages, a name the signature does not cover) refuses the version in one line before a
byte is downloaded or written, in fetch, promote, rollback and serving alike."""

import hashlib
import json
from pathlib import Path

import boto3
import pytest

from insurance_charges.core.model_card import path_for
from insurance_charges.core.model_signing import TRUSTED_KEYS, read_public_keys
from insurance_charges.registry import artifacts, champion
from insurance_charges.registry.artifacts import Release
from insurance_charges.registry.documents import covered
from insurance_charges.registry.loading import load_from_store
from insurance_charges.registry.store import RegistryError, Store
from insurance_charges.registry.uri import parse_store
from insurance_charges.settings import DEFAULT_MODEL_PATH

pytest.register_assert_rewrite("tests.registry_fixtures")
pytest_plugins = ("tests.registry_fixtures",)  # moto_endpoint, aws, store, committed_dir
from .registry_fixtures import BUCKET, run, run_module  # noqa: E402

VERSION = json.loads(path_for(DEFAULT_MODEL_PATH).read_text())["model_version"]
SIGNED = ("insurance-charges.card.json", "insurance-charges.pkl", "insurance-charges.sig.json")
KEYS = read_public_keys(TRUSTED_KEYS.read_bytes())
# Names a hostile manifest lists beside the signed three ({tmp}: the test's own directory, so an
# absolute path that got written would land where the test can see it).
EXTRA_NAMES = [
    "./../../../escaped",
    "../escaped",
    "{tmp}/abs/escaped",
    "a/../../escaped",
    "..\\escaped",
    "evil.pth",
    "sitecustomize.py",
    ".hidden",
    "",
    "..",
    "x" * 300,
    "nul\x00byte",
]
# Pipeline names a hostile manifest gives, with the card and signature names that follow
# from them: every file the signature covers would be written at a path of the manifest's.
PIPELINE_NAMES = [
    "../escaped.pkl",
    "./../../../escaped.pkl",
    "{tmp}/abs/escaped.pkl",
    "a/../../escaped.pkl",
    "..\\escaped.pkl",
    ".hidden.pkl",
    "escaped.pth",
    "x" * 300 + ".pkl",
    "nul\x00byte.pkl",
    ".pkl",
]


def s3_key(store_uri: str, *parts: str) -> str:
    return parse_store(store_uri).key(*parts)


def files_under(root: Path) -> set[Path]:
    return {path for path in root.rglob("*")}


@pytest.fixture
def published(capsys, store, committed_dir, data_path):
    """A store holding the committed model, the shared data set as its reference set."""
    assert run(capsys, store, "publish", committed_dir, "--reference-data", data_path)[0] == 0
    return store


def rewrite_manifest(store_uri: str, change) -> dict:
    """Replace the version's manifest (as anyone with s3:PutObject can) with ``change(it)``."""
    s3 = boto3.client("s3")
    key = s3_key(store_uri, VERSION, "manifest.json")
    manifest = json.loads(s3.get_object(Bucket=BUCKET, Key=key)["Body"].read())
    change(manifest)
    s3.put_object(Bucket=BUCKET, Key=key, Body=json.dumps(manifest).encode())
    return manifest


def list_extra(store_uri: str, name: str) -> None:
    """The manifest lists ``name`` too, with its object in the store and a matching SHA-256:
    everything the old code needed to write it beside the model."""
    body = b"import os; os.system('touch pwned')\n"
    boto3.client("s3").put_object(Bucket=BUCKET, Key=s3_key(store_uri, VERSION, name), Body=body)
    rewrite_manifest(
        store_uri,
        lambda m: m["files"].__setitem__(
            name, {"sha256": hashlib.sha256(body).hexdigest(), "bytes": len(body)}
        ),
    )


def rename_pipeline(store_uri: str, pipeline: str) -> None:
    """The manifest names the signed bytes under ``pipeline`` and the names that follow from it,
    each object copied there: the signature still verifies."""
    s3 = boto3.client("s3")
    stem = pipeline[: -len(".pkl")] if pipeline.endswith(".pkl") else pipeline
    renamed = dict(zip(SIGNED, (stem + ".card.json", pipeline, stem + ".sig.json"), strict=True))

    def change(manifest):
        manifest["pipeline"] = pipeline
        manifest["files"] = {renamed[name]: item for name, item in manifest["files"].items()}

    for name, new in renamed.items():
        body = s3.get_object(Bucket=BUCKET, Key=s3_key(store_uri, VERSION, name))["Body"].read()
        s3.put_object(Bucket=BUCKET, Key=s3_key(store_uri, VERSION, new), Body=body)
    rewrite_manifest(store_uri, change)


HOSTILE = [pytest.param(list_extra, name, id=f"extra {name[:20]!r}") for name in EXTRA_NAMES] + [
    pytest.param(rename_pipeline, name, id=f"pipeline {name[:20]!r}") for name in PIPELINE_NAMES
]


def reason(tamper, name: str) -> str:
    """What the one error line says is wrong with the manifest."""
    if tamper is list_extra:
        return f"files lists {name!r}"[:60]
    return f"pipeline {name!r}"[:60]


@pytest.mark.parametrize("tamper, name", HOSTILE)
def test_a_manifest_naming_another_file_is_refused_by_fetch_before_anything_is_written(
    capsys, published, tmp_path, tamper, name
):
    name = name.format(tmp=tmp_path)
    tamper(published, name)
    before = files_under(tmp_path)
    status, out, err = run(capsys, published, "fetch", VERSION, tmp_path / "a" / "b" / "out")
    manifest_uri = parse_store(published).uri(VERSION, "manifest.json")
    assert status == 1 and out == "" and err.count("\n") == 1, err
    assert err.startswith(f"Error: {manifest_uri} is not a usable manifest of {VERSION}: ")
    assert reason(tamper, name) in err
    assert files_under(tmp_path) == before  # nothing written, inside or outside


@pytest.mark.parametrize("tamper, name", HOSTILE[::3])
def test_a_manifest_naming_another_file_is_refused_before_a_byte_is_downloaded(
    published, tmp_path, tamper, name
):
    tamper(published, name.format(tmp=tmp_path))
    s3, asked = boto3.client("s3"), []
    s3.meta.events.register(
        "before-parameter-build.s3.GetObject", lambda params, **_: asked.append(params["Key"])
    )
    with pytest.raises(RegistryError, match="is not a usable manifest"):
        artifacts.fetch(Store(parse_store(published), s3=s3), VERSION, KEYS)
    assert asked == [s3_key(published, VERSION, "manifest.json")]


@pytest.mark.parametrize("tamper, name", HOSTILE[1::4])
def test_promote_refuses_a_version_whose_manifest_names_another_file(
    capsys, published, tmp_path, tamper, name
):
    tamper(published, name.format(tmp=tmp_path))
    before = files_under(tmp_path)
    status, out, err = run(capsys, published, "promote", VERSION, "--force", "--reason", "test")
    assert status == 1 and out == "" and err.count("\n") == 1, err
    assert "is not a usable manifest" in err and reason(tamper, name.format(tmp=tmp_path)) in err
    assert files_under(tmp_path) == before
    assert champion.current(Store(parse_store(published))) is None


@pytest.mark.parametrize("tamper, name", HOSTILE[2::4])
def test_rollback_refuses_to_restore_a_version_whose_manifest_names_another_file(
    capsys, published, tmp_path, tamper, name
):
    registry = Store(parse_store(published))
    champion.promote(registry, VERSION, by="test", gate=None, forced=True, reason="first")
    champion.promote(
        registry, "2026.01.01-gbr-bbbbbbbb", by="test", gate=None, forced=True, reason="second"
    )
    tamper(published, name.format(tmp=tmp_path))
    before = files_under(tmp_path)
    status, out, err = run(capsys, published, "rollback")
    assert status == 1 and out == "" and err.count("\n") == 1, err
    assert "is not a usable manifest" in err
    assert files_under(tmp_path) == before
    assert champion.current(registry).version == "2026.01.01-gbr-bbbbbbbb"


@pytest.mark.parametrize("tamper, name", HOSTILE[3::4])
def test_serving_refuses_a_version_whose_manifest_names_another_file(
    published, tmp_path, tamper, name
):
    tamper(published, name.format(tmp=tmp_path))
    before = files_under(tmp_path)
    uri = f"{published}/{VERSION}"
    with pytest.raises(RegistryError, match=f"^MODEL_URI {uri}: .* is not a usable manifest"):
        load_from_store(uri, KEYS)
    assert files_under(tmp_path) == before


def release_named(pipeline: str, extra: tuple[str, ...] = ()) -> Release:
    """A release whose names were never checked (as if every check before the write failed)."""
    return Release(
        files={name: b"bytes" for name in (*covered(pipeline), *extra)},
        pipeline=pipeline,
        card={},
        signer="test",
    )


@pytest.mark.parametrize(
    "pipeline",
    [
        "../escaped.pkl",
        "./../../../escaped.pkl",
        "{tmp}/abs/escaped.pkl",
        "a/../../escaped.pkl",
        "a/../escaped.pkl",
        "./escaped.pkl",
        "nul\x00byte.pkl",
    ],
)
def test_the_one_place_files_are_written_refuses_a_name_that_resolves_elsewhere(tmp_path, pipeline):
    (tmp_path / "abs").mkdir()
    before = files_under(tmp_path)
    with pytest.raises(
        RegistryError, match="^refusing to write .*: it resolves to .*, not a file directly inside"
    ):
        artifacts.write_directory(
            release_named(pipeline.format(tmp=tmp_path)), tmp_path / "a" / "b" / "out"
        )
    assert files_under(tmp_path) == before


@pytest.mark.parametrize("extra", ["evil.pth", "sitecustomize.py", "insurance-charges.pkl.bak"])
def test_the_one_place_files_are_written_refuses_a_name_the_signature_does_not_cover(
    tmp_path, extra
):
    with pytest.raises(
        RegistryError,
        match=f"^refusing to write '{extra}' into .*: not one of the files its signature covers",
    ):
        artifacts.write_directory(
            release_named("insurance-charges.pkl", (extra,)), tmp_path / "out"
        )
    assert files_under(tmp_path) == set()


def test_a_model_directory_whose_pipeline_name_is_not_plain_is_refused_before_publishing(
    capsys, store, committed_dir, data_path
):
    for name in SIGNED:
        (committed_dir / name).rename(
            committed_dir / name.replace("insurance-charges", "insurance charges")
        )
    status, _, err = run(capsys, store, "publish", committed_dir, "--reference-data", data_path)
    assert status == 1 and err.count("\n") == 1
    assert "its pipeline 'insurance charges.pkl' is not a plain file name" in err


@pytest.mark.parametrize("command", ["show", "promote", "fetch"])
@pytest.mark.parametrize(
    "version", ["../other-store/v1", "/abs", "a/b", "..", "", "history", "v1\nError: spoofed"]
)
def test_a_version_argument_that_is_not_a_version_name_is_a_usage_error(
    aws, command, version, tmp_path
):
    argv = [command, version] + ([str(tmp_path / "out")] if command == "fetch" else [])
    done = run_module(aws, "--store", f"s3://{BUCKET}/x", *argv)
    assert done.returncode == 2 and "is not a model version" in done.stderr.splitlines()[-1]
    assert not (tmp_path / "out").exists()
