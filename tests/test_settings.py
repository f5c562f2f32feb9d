"""Settings: every environment variable checked in one place; a bad one is one line, exit 1."""

import dataclasses
import json
import os
import subprocess

import pytest

from devtools.gunicorn_server import free_port
from insurance_charges.core.model_signing import TRUSTED_KEYS, signature_path
from insurance_charges.settings import (
    DEFAULT_MODEL_PATH,
    ENVIRONMENT,
    Settings,
    SettingsError,
    from_environ,
)

from .conftest import ROOT

# An RSA public key: a valid PEM, but not the kind of key models are signed with.
RSA_PUBLIC = b"""-----BEGIN PUBLIC KEY-----
MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQDzweTk0uhnTn1JMbCWol6WaiFR
fVUMk2xZOVuHN94XSzSei77d+n0HC7kZOjH9faEDbnRAM23ThNxMre2K2qhMPt8o
gdHnpJ2dlwvd/habBgPufW2PWEDfjT5T1IClgOPKgu2nEmjt0jc73Knd6VH0XgLI
uaQdze+h2Fn3LEjKfwIDAQAB
-----END PUBLIC KEY-----
"""


def test_without_environment_the_defaults_serve_the_committed_model_on_8000():
    got = from_environ({}, cpus=2)
    assert dataclasses.replace(got, trusted_keys=()) == Settings(
        port=8000,
        workers=2,
        model_path=DEFAULT_MODEL_PATH,
        log_level="info",
        max_batch=10_000,
        api_keys=(),
    )
    signed = json.loads(signature_path(DEFAULT_MODEL_PATH).read_text())
    assert [k.key_id for k in got.trusted_keys] == [signed["key_id"]]  # the committed key


def test_good_values_are_parsed_into_their_types(tmp_path):
    model = tmp_path / "m.pkl"
    model.write_bytes(b"")
    got = from_environ(
        {
            "PORT": "8080",
            "WEB_CONCURRENCY": " 3 ",
            "MODEL_PATH": str(model),
            "LOG_LEVEL": "WARNING",
            "MAX_BATCH": "500",
            "API_KEYS": "a, b",
        },
        cpus=2,
    )
    assert dataclasses.replace(got, trusted_keys=()) == Settings(
        port=8080,
        workers=3,
        model_path=model,
        log_level="warning",
        max_batch=500,
        api_keys=("a", "b"),
    )


def test_every_variable_the_service_reads_is_listed():
    assert ENVIRONMENT == (
        "PORT",
        "HOST",
        "WEB_CONCURRENCY",
        "MODEL_PATH",
        "LOG_LEVEL",
        "MAX_BATCH",
        "API_KEYS",
        "MODEL_PUBLIC_KEY",
        "SAGEMAKER_BIND_TO_PORT",
        "SAGEMAKER_MAX_PAYLOAD_IN_MB",
        "MODEL_URI",
        "MODEL_STORE",
        "METRICS_PORT",
        "METRICS_HOST",
        "PROMETHEUS_MULTIPROC_DIR",
        "WORKER_RESULTS",
        "WORKER_SCORED_URI",
        "WORKER_MAX_FILE_MB",
        "CAPTURE_URI",
        "CAPTURE_PERCENT",
        "OUTCOMES_REPORT_URI",
    )


def test_sagemakers_port_and_payload_limit_default_to_8080_and_6_mb():
    got = from_environ({}, cpus=1)
    assert (got.sagemaker_port, got.max_payload_mb) == (8080, 6)
    got = from_environ(
        {"SAGEMAKER_BIND_TO_PORT": "9001", "SAGEMAKER_MAX_PAYLOAD_IN_MB": "100"}, cpus=1
    )
    assert (got.sagemaker_port, got.max_payload_mb) == (9001, 100)


def test_model_public_key_names_a_pem_file_of_one_or_more_keys(public_key_file, tmp_path):
    both = tmp_path / "keys.pem"
    both.write_bytes(public_key_file.read_bytes() + TRUSTED_KEYS.read_bytes())  # a rotation
    got = from_environ({"MODEL_PUBLIC_KEY": str(both)}, cpus=1).trusted_keys
    assert len(got) == 2 and got[1].key_id == from_environ({}, cpus=1).trusted_keys[0].key_id


@pytest.mark.parametrize(
    "content, message",
    [
        (None, "cannot be read (No such file or directory); set MODEL_PUBLIC_KEY to the PEM file"),
        (
            b"",
            "holds no PEM public key; set MODEL_PUBLIC_KEY to a PEM file with one or more "
            "Ed25519 public keys",
        ),
        (RSA_PUBLIC, "holds a public key that is not Ed25519"),
    ],
)
def test_an_unusable_model_public_key_is_refused(tmp_path, content, message):
    path = tmp_path / "key.pem"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(SettingsError) as raised:
        from_environ({"MODEL_PUBLIC_KEY": str(path)}, cpus=1)
    assert str(raised.value).startswith(f"MODEL_PUBLIC_KEY={str(path)!r}: {message}")


@pytest.mark.parametrize(
    "name, value, message",
    [
        ("PORT", "0", "PORT='0': outside 1 to 65535; set PORT to a TCP port from 1 to 65535"),
        ("PORT", "65536", "PORT='65536': outside 1 to 65535"),
        ("PORT", "http", "PORT='http': not a whole number; set PORT"),
        (
            "WEB_CONCURRENCY",
            "0",
            "WEB_CONCURRENCY='0': outside 1 to 8; set WEB_CONCURRENCY from 1 to 8",
        ),
        ("WEB_CONCURRENCY", "9", "WEB_CONCURRENCY='9': outside 1 to 8"),
        ("WEB_CONCURRENCY", "2.5", "WEB_CONCURRENCY='2.5': not a whole number"),
        ("MAX_BATCH", "0", "MAX_BATCH='0': outside 1 to 10000"),
        ("MAX_BATCH", "10001", "MAX_BATCH='10001': outside 1 to 10000"),
        ("MAX_BATCH", "many", "MAX_BATCH='many': not a whole number"),
        (
            "LOG_LEVEL",
            "verbose",
            "LOG_LEVEL='verbose': not a log level; set one of debug, info, "
            "warning, error, critical",
        ),
        ("MODEL_PATH", "/", "MODEL_PATH='/': not a regular file (a directory); set MODEL_PATH to"),
        (
            "MODEL_PATH",
            "/dev/null",
            "MODEL_PATH='/dev/null': not a regular file (a device or special file)",
        ),
        ("API_KEYS", ",", "API_KEYS=',': holds no key, which would leave the API open"),
        ("API_KEYS", " , ", "API_KEYS=' , ': holds no key"),
        ("API_KEYS", "", "API_KEYS='': holds no key"),
        (
            "SAGEMAKER_BIND_TO_PORT",
            "0",
            "SAGEMAKER_BIND_TO_PORT='0': outside 1 to 65535; set "
            "SAGEMAKER_BIND_TO_PORT to a TCP port from 1 to 65535, or "
            "unset it for 8080",
        ),
        ("SAGEMAKER_BIND_TO_PORT", "http", "SAGEMAKER_BIND_TO_PORT='http': not a whole number"),
        (
            "SAGEMAKER_MAX_PAYLOAD_IN_MB",
            "0",
            "SAGEMAKER_MAX_PAYLOAD_IN_MB='0': outside 1 to 100; set the job's MaxPayloadInMB",
        ),
        (
            "SAGEMAKER_MAX_PAYLOAD_IN_MB",
            "101",
            "SAGEMAKER_MAX_PAYLOAD_IN_MB='101': outside 1 to 100",
        ),
        (
            "SAGEMAKER_MAX_PAYLOAD_IN_MB",
            "6.5",
            "SAGEMAKER_MAX_PAYLOAD_IN_MB='6.5': not a whole number",
        ),
        (
            "HOST",
            "127.1",
            "HOST='127.1': neither an IP address nor a hostname; set HOST to an "
            "address of this machine (127.0.0.1: this machine only; 0.0.0.0: every "
            "interface) or its hostname",
        ),
        ("HOST", "999.0.0.1", "HOST='999.0.0.1': neither an IP address nor a hostname"),
        ("HOST", "0x7f000001", "HOST='0x7f000001': an IPv4 address in an abbreviated form"),
        ("HOST", "host name", "HOST='host name': neither an IP address nor a hostname"),
        ("HOST", "-lead.example", "HOST='-lead.example': neither"),
        ("HOST", "a..b", "HOST='a..b': neither"),
        ("HOST", "x" * 64, "HOST='xxxx"),
        ("HOST", "h" * 250 + ".com", "HOST='hhhh"),
        ("HOST", "host:8000", "HOST='host:8000': neither"),
        ("HOST", "http://host", "HOST='http://host': neither"),
        ("HOST", "10.0.0.0/8", "HOST='10.0.0.0/8': neither"),
        ("HOST", "caf\u00e9.example", "HOST='caf\u00e9.example': neither"),
        ("HOST", "a;touch F", "HOST='a;touch F': neither"),
        (
            "CAPTURE_PERCENT",
            "101",
            "CAPTURE_PERCENT='101': over 100; set CAPTURE_PERCENT from 0 to "
            "100, in hundredths at most",
        ),
        ("CAPTURE_PERCENT", "-1", "CAPTURE_PERCENT='-1': not a percentage; set CAPTURE_PERCENT"),
        ("CAPTURE_PERCENT", "12.345", "CAPTURE_PERCENT='12.345': not a percentage"),
        ("CAPTURE_PERCENT", "half", "CAPTURE_PERCENT='half': not a percentage"),
        ("CAPTURE_PERCENT", "nan", "CAPTURE_PERCENT='nan': not a percentage"),
        ("CAPTURE_PERCENT", "1e2", "CAPTURE_PERCENT='1e2': not a percentage"),
        (
            "CAPTURE_URI",
            "s3://No_Such/x",
            "CAPTURE_URI='s3://No_Such/x': 'No_Such' is not an S3 bucket name",
        ),
        ("CAPTURE_URI", "s3://", "CAPTURE_URI='s3://': '' is not an S3 bucket name"),
        (
            "CAPTURE_URI",
            "s3://bucket/a/../b",
            "CAPTURE_URI='s3://bucket/a/../b': the prefix must be path segments",
        ),
        ("CAPTURE_URI", "s3://bucket/a b", "CAPTURE_URI='s3://bucket/a b': the prefix must be"),
        (
            "OUTCOMES_REPORT_URI",
            "s3://reports",
            "OUTCOMES_REPORT_URI='s3://reports': s3://reports is not an S3 object URI",
        ),
        (
            "OUTCOMES_REPORT_URI",
            "s3://Reports/latest.json",
            "OUTCOMES_REPORT_URI='s3://Reports/latest.json': 'Reports' is not an S3 bucket",
        ),
        (
            "OUTCOMES_REPORT_URI",
            "/tmp",
            "OUTCOMES_REPORT_URI='/tmp': not a regular file (a directory); set "
            "OUTCOMES_REPORT_URI to the JSON file `python -m insurance_charges.outcomes report "
            "--format json` writes",
        ),
    ],
)
def test_an_unusable_value_is_refused_naming_it_and_what_to_set(name, value, message):
    with pytest.raises(SettingsError) as raised:
        from_environ({name: value}, cpus=2)
    assert str(raised.value).startswith(message)


@pytest.mark.parametrize(
    "text, host",
    [
        ("127.0.0.1", "127.0.0.1"),
        (" 0.0.0.0 ", "0.0.0.0"),
        ("::", "::"),
        ("[::1]", "::1"),
        ("2001:DB8::1", "2001:db8::1"),
        ("localhost", "localhost"),
        ("api-1.internal.example.com.", "api-1.internal.example.com."),
        ("h" * 63, "h" * 63),
    ],
)
def test_host_is_an_ip_address_or_a_hostname(text, host):
    assert from_environ({"HOST": text}, cpus=1).host == host


def test_without_host_the_service_listens_on_this_machine_only():
    assert from_environ({}, cpus=1).host == "127.0.0.1" == from_environ({"HOST": ""}).host


@pytest.mark.parametrize(
    "text, percent", [("0", 0.0), ("100", 100.0), (" 12.5 ", 12.5), ("0.01", 0.01), ("7", 7.0)]
)
def test_capture_percent_is_0_to_100_in_hundredths(text, percent):
    assert from_environ({"CAPTURE_PERCENT": text}, cpus=1).capture_percent == percent


def test_capture_is_off_unless_a_uri_is_set_and_takes_a_directory_or_an_s3_prefix(tmp_path):
    assert from_environ({}, cpus=1).capture is None
    assert from_environ({"CAPTURE_URI": str(tmp_path)}, cpus=1).capture.root == tmp_path
    s3 = from_environ({"CAPTURE_URI": "s3://claims-bucket/captures/"}, cpus=1).capture
    assert (s3.bucket, s3.prefix, str(s3)) == (
        "claims-bucket",
        "captures",
        "s3://claims-bucket/captures",
    )


def test_an_outcome_report_is_a_path_not_written_yet_or_an_s3_object(tmp_path):
    assert from_environ({}, cpus=1).outcomes_report is None
    later = tmp_path / "reports" / "latest.json"  # the page says "not written yet" until it is
    assert from_environ({"OUTCOMES_REPORT_URI": str(later)}, cpus=1).outcomes_report == later
    uri = from_environ({"OUTCOMES_REPORT_URI": "s3://claims/reports/latest.json"}, cpus=1)
    assert (uri.outcomes_report.bucket, uri.outcomes_report.key) == (
        "claims",
        "reports/latest.json",
    )


@pytest.mark.parametrize(
    "name",
    [
        "PORT",
        "WEB_CONCURRENCY",
        "MAX_BATCH",
        "LOG_LEVEL",
        "CAPTURE_URI",
        "CAPTURE_PERCENT",
        "OUTCOMES_REPORT_URI",
    ],
)
def test_an_empty_value_counts_as_unset(name):
    assert from_environ({name: ""}, cpus=2) == from_environ({}, cpus=2)


def test_an_error_about_another_setting_never_shows_the_api_keys():
    with pytest.raises(SettingsError) as raised:
        from_environ({"API_KEYS": "k-secret-0123", "MAX_BATCH": "x"}, cpus=1)
    assert "MAX_BATCH" in str(raised.value) and "k-secret" not in str(raised.value)


@pytest.mark.slow
@pytest.mark.parametrize(
    "name, value",
    [
        ("WEB_CONCURRENCY", "0"),
        ("PORT", "99999"),
        ("API_KEYS", ","),
        ("MODEL_PATH", "/tmp"),
        ("LOG_LEVEL", "loud"),
        ("MAX_BATCH", "-1"),
    ],
)
def test_make_run_with_a_bad_setting_exits_1_with_one_line_and_no_traceback(name, value):
    env = {**os.environ, "PORT": str(free_port()), name: value}
    run = subprocess.run(
        ["make", "--no-print-directory", "run"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    errors = [line for line in run.stderr.splitlines() if line.startswith("Error: ")]
    assert run.returncode != 0 and len(errors) == 1 and errors[0].startswith(f"Error: {name}=")
    assert "Traceback" not in run.stderr + run.stdout
