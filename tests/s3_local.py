"""The S3 protocol, served locally: moto's S3-compatible HTTP server on 127.0.0.1 (no cloud, no network).

sentiment-ray reaches it exactly as it reaches AWS, MinIO or R2: through the standard variables
`AWS_ENDPOINT_URL`, `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` and `AWS_REGION`, read by pyarrow's S3 filesystem.
What is mocked is the storage service (it keeps objects in this process's memory), not sentiment-ray's code.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

BUCKET = "sentiment-ray-test"


@contextlib.contextmanager
def local_s3(env: dict | None = None) -> Iterator[dict]:
    """Start the server, create `BUCKET`, and yield the AWS variables that reach it (also set in `env`)."""
    import logging

    import boto3
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one log line per S3 request otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    port = server._server.server_address[1]  # port 0: the OS chose one; moto exposes it only here
    variables = {
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}",
        "AWS_ACCESS_KEY_ID": "local",
        "AWS_SECRET_ACCESS_KEY": "local",
        "AWS_REGION": "us-east-1",
        "AWS_EC2_METADATA_DISABLED": "true",  # no instance-profile lookups against a cloud that is not there
    }
    target = os.environ if env is None else env
    saved = {k: target.get(k) for k in variables}
    target.update(variables)
    try:
        boto3.client("s3", endpoint_url=variables["AWS_ENDPOINT_URL"], region_name="us-east-1").create_bucket(
            Bucket=BUCKET
        )
        yield variables
    finally:
        for key, value in saved.items():
            if value is None:
                target.pop(key, None)
            else:
                target[key] = value
        server.stop()


def s3_keys(prefix: str) -> list[str]:
    """Every object key under `prefix` in `BUCKET`."""
    import boto3

    client = boto3.client("s3", endpoint_url=os.environ["AWS_ENDPOINT_URL"], region_name="us-east-1")
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix)
    return [item["Key"] for page in pages for item in page.get("Contents", [])]
