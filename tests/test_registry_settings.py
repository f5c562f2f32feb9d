"""MODEL_URI and MODEL_STORE: checked with the other settings, one line naming what to write."""

import pytest

from insurance_charges.settings import SettingsError, from_environ, registry_environ


@pytest.mark.parametrize(
    "value, expected",
    [
        (
            "s3://releases/insurance/2026.11.21-gbr-586c9afb",
            "s3://releases/insurance/2026.11.21-gbr-586c9afb",
        ),
        ("s3://releases/insurance/champion", "s3://releases/insurance/champion"),
        ("s3://releases/a/b/champion/", "s3://releases/a/b/champion"),
        (" s3://releases/2026.11.21-gbr-586c9afb ", "s3://releases/2026.11.21-gbr-586c9afb"),
    ],
)
def test_an_s3_model_uri_is_kept_for_the_store_and_the_local_path_stays_the_default(
    value, expected
):
    got = from_environ({"MODEL_URI": value}, cpus=1)
    assert got.model_uri == expected
    assert got.model_path == from_environ({}, cpus=1).model_path


def test_a_local_model_uri_is_a_model_path(tmp_path):
    model = tmp_path / "m.pkl"
    model.write_bytes(b"")
    got = from_environ({"MODEL_URI": str(model)}, cpus=1)
    assert got.model_path == model and got.model_uri is None


@pytest.mark.parametrize(
    "name, value, message",
    [
        (
            "MODEL_URI",
            "s3://releases",
            "MODEL_URI='s3://releases': names no version; set MODEL_URI "
            "to s3://bucket/prefix/VERSION or s3://bucket/prefix/champion",
        ),
        (
            "MODEL_URI",
            "s3://Releases/x/v1",
            "MODEL_URI='s3://Releases/x/v1': 'Releases' is not an S3 "
            "bucket name (3-63 lower-case letters, digits, dots, "
            "hyphens; a letter or digit at each end); set MODEL_URI",
        ),
        (
            "MODEL_URI",
            "s3://releases//v1",
            "MODEL_URI='s3://releases//v1': '' is not a usable key prefix segment",
        ),
        (
            "MODEL_URI",
            "s3://releases/p/..",
            "MODEL_URI='s3://releases/p/..': '..' is not a usable key prefix segment",
        ),
        (
            "MODEL_URI",
            "s3://releases/p/history",
            "MODEL_URI='s3://releases/p/history': 'history' is not a model version",
        ),
        (
            "MODEL_URI",
            "s3://releases/p/v 1",
            "MODEL_URI='s3://releases/p/v 1': 'v 1' is not a usable key prefix segment",
        ),
        (
            "MODEL_URI",
            "/",
            "MODEL_URI='/': not a regular file (a directory); set MODEL_URI to the "
            "trained pipeline's .pkl file",
        ),
        (
            "MODEL_STORE",
            "releases/insurance",
            "MODEL_STORE='releases/insurance': is not an s3:// URI; "
            "set the store as s3://bucket/prefix",
        ),
        (
            "MODEL_STORE",
            "s3://x/insurance",
            "MODEL_STORE='s3://x/insurance': 'x' is not an S3 bucket name",
        ),
    ],
)
def test_an_unusable_model_uri_or_store_is_refused_saying_what_to_write(name, value, message):
    with pytest.raises(SettingsError) as raised:
        from_environ({name: value}, cpus=1)
    assert str(raised.value).startswith(message)
    assert "\n" not in str(raised.value)


def test_model_uri_and_model_path_together_are_refused_as_ambiguous(tmp_path):
    model = tmp_path / "m.pkl"
    model.write_bytes(b"")
    with pytest.raises(SettingsError) as raised:
        from_environ({"MODEL_URI": "s3://releases/p/champion", "MODEL_PATH": str(model)}, cpus=1)
    assert str(raised.value).startswith(
        "MODEL_URI='s3://releases/p/champion': MODEL_PATH is set too"
    )


def test_the_registry_reads_its_store_and_trusted_keys_without_the_servers_settings(
    public_key_file,
):
    store, keys = registry_environ(
        {
            "MODEL_STORE": "s3://releases/insurance/",
            "MODEL_PUBLIC_KEY": str(public_key_file),
            "PORT": "not a port",
        }
    )
    assert store == "s3://releases/insurance" and len(keys) == 1


def test_without_model_store_the_registry_trusts_the_shipped_key():
    store, keys = registry_environ({})
    assert store is None and keys == from_environ({}, cpus=1).trusted_keys
