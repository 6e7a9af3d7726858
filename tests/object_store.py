"""A real S3-protocol server for the tests: moto in server mode on 127.0.0.1, started once per
run on first use, with one bucket per test run. The app reaches it over HTTP with boto3, as
it would reach AWS S3, Aliyun OSS, Tencent COS or MinIO."""

from __future__ import annotations

import logging
import socket
import uuid
from typing import Any

import boto3
from moto.server import ThreadedMotoServer

from app.core.config import Settings
from tests.conftest import make_settings

ACCESS_KEY_ID = "test-access-key"
SECRET_ACCESS_KEY = "test-secret-key"


class ObjectStore:
    def __init__(self) -> None:
        self.server: ThreadedMotoServer | None = None
        self.endpoint_url = ""
        self.bucket = f"photos-{uuid.uuid4().hex[:12]}"

    def start(self) -> str:
        if self.server is None:
            logging.getLogger("werkzeug").setLevel(logging.ERROR)
            with socket.socket() as probe:
                probe.bind(("127.0.0.1", 0))
                port = probe.getsockname()[1]
            self.server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
            self.server.start()
            self.endpoint_url = f"http://127.0.0.1:{port}"
            self.client().create_bucket(Bucket=self.bucket)
        return self.endpoint_url

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
            self.server = None

    def client(self) -> Any:
        """A client of our own, to look into the bucket behind the app's back."""
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            region_name="us-east-1",
            aws_access_key_id=ACCESS_KEY_ID,
            aws_secret_access_key=SECRET_ACCESS_KEY,
        )

    def object_keys(self) -> set[str]:
        listed = self.client().list_objects_v2(Bucket=self.bucket)
        return {item["Key"] for item in listed.get("Contents", [])}

    def settings(self, **overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "storage_backend": "s3",
            "s3_endpoint_url": self.start(),
            "s3_bucket": self.bucket,
            "s3_region": "us-east-1",
            "s3_access_key_id": ACCESS_KEY_ID,
            "s3_secret_access_key": SECRET_ACCESS_KEY,
            "s3_addressing_style": "path",
            "s3_key_prefix": "media/",
        }
        values.update(overrides)
        return make_settings(**values)


OBJECT_STORE = ObjectStore()
