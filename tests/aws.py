"""moto's server for the tests of everything that calls AWS through boto3 (no test-only switch
in the code: boto3 finds the server through AWS_ENDPOINT_URL, as it would any endpoint)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from unittest import mock

from devtools.gunicorn_server import free_port


@contextmanager
def moto_server() -> Iterator[dict[str, str]]:
    """moto's server on a free 127.0.0.1 port; yields the environment that points boto3 at it."""
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield {
            "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}",
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
        }
    finally:
        server.stop()


@contextmanager
def this_process_on_moto() -> Iterator[dict[str, str]]:
    """moto's server, with this process's environment pointed at it until the block ends."""
    with moto_server() as env, mock.patch.dict(os.environ, env):
        yield env


@contextmanager
def scoring_s3_on_moto(bucket: str):
    """moto's server with this process pointed at it and ``bucket`` made; yields a client.

    Each scoring run or fetch makes its own client (aws.clients), so nothing is reset here.
    """
    from insurance_charges.aws.clients import client

    with this_process_on_moto():
        s3 = client("s3")
        s3.create_bucket(Bucket=bucket)
        yield s3


def clients_on(env: dict[str, str], *services: str) -> list:
    """boto3 clients of ``services`` on the moto server whose environment ``env`` is."""
    import boto3

    return [
        boto3.client(
            service,
            endpoint_url=env["AWS_ENDPOINT_URL"],
            region_name=env["AWS_DEFAULT_REGION"],
            aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
        )
        for service in services
    ]
