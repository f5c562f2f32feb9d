"""A Parquet object read from moto's S3: the aws module's ranged reader against pyarrow's
S3FileSystem (why the scorer reads S3 through boto3: docs/architecture.md#aws).

Usage: ``python -m bench.s3_reads [ROWS]`` (default 1,000,000). moto's server runs in this
process on a free 127.0.0.1 port; each reader reads the file in 50,000-row batches, three times,
alternating. Prints one line per read; no network beyond 127.0.0.1.
"""

from __future__ import annotations

import io
import logging
import os
import sys
import time

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from pyarrow import fs

from devtools.gunicorn_server import free_port
from insurance_charges.aws.clients import client
from insurance_charges.aws.objects import open_seekable
from insurance_charges.aws.uri import parse_s3_object

BATCH = 50_000  # rows per batch, as a scorer's chunk
ROW_GROUP = 100_000  # rows per row group: a file of many groups, as pyarrow writes large ones
REPEATS = 3
URI = "s3://bench-reads/in.parquet"


def table(rows: int) -> pa.Table:
    """``rows`` records of the schema's six fields, seeded."""
    rng = np.random.default_rng(0)
    return pa.table(
        {
            "age": rng.integers(18, 65, rows),
            "sex": rng.choice(["male", "female"], rows),
            "bmi": rng.uniform(16, 53, rows),
            "children": rng.integers(0, 6, rows),
            "smoker": rng.choice(["yes", "no"], rows),
            "region": rng.choice(["northeast", "northwest", "southeast", "southwest"], rows),
        }
    )


def rows_read(file) -> int:
    return sum(batch.num_rows for batch in pq.ParquetFile(file).iter_batches(batch_size=BATCH))


def main(rows: int) -> None:
    """Upload the file to moto, then time each reader."""
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"127.0.0.1:{port}"
    os.environ.update(
        {
            "AWS_ENDPOINT_URL": f"http://{endpoint}",
            "AWS_ACCESS_KEY_ID": "bench",
            "AWS_SECRET_ACCESS_KEY": "bench",
            "AWS_DEFAULT_REGION": "us-east-1",
        }
    )
    try:
        body = io.BytesIO()
        pq.write_table(table(rows), body, row_group_size=ROW_GROUP)
        uri, s3 = parse_s3_object(URI), client("s3")
        s3.create_bucket(Bucket=uri.bucket)
        s3.put_object(Bucket=uri.bucket, Key=uri.key, Body=body.getvalue())
        print(f"{len(body.getvalue()) / 1e6:.1f} MB, {rows:,} rows")
        arrow = fs.S3FileSystem(endpoint_override=endpoint, scheme="http", region="us-east-1")
        readers = {
            "boto3 ranged reader (aws.objects)": lambda: rows_read(open_seekable(s3, uri)[0]),
            "pyarrow S3FileSystem": lambda: rows_read(
                arrow.open_input_file(f"{uri.bucket}/{uri.key}")
            ),
        }
        for _ in range(REPEATS):
            for name, read in readers.items():
                start = time.perf_counter()
                assert read() == rows
                print(f"{name}: {time.perf_counter() - start:.3f} s")
    finally:
        server.stop()


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000)
