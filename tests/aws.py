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
        yield {"AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}", "AWS_ACCESS_KEY_ID": "testing",
               "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}
    finally:
        server.stop()


@contextmanager
def this_process_on_moto() -> Iterator[dict[str, str]]:
    """moto's server, with this process's environment pointed at it until the block ends."""
    with moto_server() as env, mock.patch.dict(os.environ, env):
        yield env


@contextmanager
def scoring_s3_on_moto(bucket: str):
    """The scoring package's S3 client on moto's server, with ``bucket`` made; yields the client.

    The package keeps one client per process: it is dropped before and after, so the client
    is made for moto's endpoint and no later test gets it.
    """
    from insurance_charges.scoring import storage

    with this_process_on_moto():
        storage._CLIENT = None
        try:
            client = storage.s3_client()
            client.create_bucket(Bucket=bucket)
            yield client
        finally:
            storage._CLIENT = None
