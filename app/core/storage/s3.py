"""Files in an S3-protocol object store: AWS S3, Aliyun OSS, Tencent COS, MinIO.

boto3, called in worker threads: its clients are thread-safe and need no event-loop-bound
life cycle, so one client per configuration serves every request and the worker's sweeps;
signing a URL is local computation. (aiobotocore would be natively async, but pins botocore
to a narrow range that fights boto3 and moto, and its client must be opened and closed
inside one event loop.) Every call runs in the store's own thread pool, as wide as the
client's connection pool, so the event loop never waits on the store and photo traffic does
not queue behind the default executor's few threads (file and image work use those).

The bucket stays private: clients get the bytes through the API (`S3_DELIVERY=proxy`) or
through a URL signed for `S3_URL_TTL_SECONDS` (`redirect`) after the API's access check.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import threading
from collections.abc import AsyncGenerator, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

from app.core.config import Settings
from app.core.storage import CHUNK_SIZE, StorageError, StorageUnavailable, check_key

logger = logging.getLogger("app.storage")

_NOT_FOUND = {"404", "NoSuchKey", "NotFound"}
CONNECTIONS = 32
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class S3Options:
    bucket: str
    endpoint_url: str
    region: str
    access_key_id: str
    secret_access_key: str
    addressing_style: str
    signature_version: str
    key_prefix: str
    delivery: str
    public_endpoint_url: str
    url_ttl_seconds: int

    @classmethod
    def of(cls, settings: Settings) -> S3Options:
        return cls(
            bucket=settings.s3_bucket,
            endpoint_url=settings.s3_endpoint_url,
            region=settings.s3_region,
            access_key_id=settings.s3_access_key_id,
            secret_access_key=settings.s3_secret_access_key.get_secret_value(),
            addressing_style=settings.s3_addressing_style,
            signature_version=settings.s3_signature_version,
            key_prefix=settings.s3_key_prefix,
            delivery=settings.s3_delivery,
            public_endpoint_url=settings.s3_public_endpoint_url,
            url_ttl_seconds=settings.s3_url_ttl_seconds,
        )

    def __repr__(self) -> str:  # never the secret
        return f"S3Options(bucket={self.bucket!r}, endpoint_url={self.endpoint_url!r})"


def _error_code(exc: Exception) -> str:
    response = getattr(exc, "response", None) or {}
    return str(response.get("Error", {}).get("Code", ""))


class S3Storage:
    def __init__(self, options: S3Options) -> None:
        self.options = options
        self._clients: dict[str, Any] = {}
        self._lock = threading.Lock()
        self._threads = ThreadPoolExecutor(max_workers=CONNECTIONS, thread_name_prefix="s3")

    async def _in_thread(self, fn: Callable[..., T], *args: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._threads, functools.partial(fn, *args))

    def _client(self, endpoint_url: str) -> Any:
        """The boto3 client for `endpoint_url`, made on first use (in a thread: building one
        reads botocore's service model, tens of milliseconds)."""
        with self._lock:
            client = self._clients.get(endpoint_url)
            if client is None:
                import boto3
                from botocore.config import Config

                o = self.options
                client = boto3.session.Session().client(
                    "s3",
                    endpoint_url=endpoint_url or None,
                    region_name=o.region,
                    aws_access_key_id=o.access_key_id or None,
                    aws_secret_access_key=o.secret_access_key or None,
                    config=Config(
                        signature_version=o.signature_version,
                        s3={"addressing_style": o.addressing_style},
                        connect_timeout=5,
                        read_timeout=30,
                        retries={"max_attempts": 3, "mode": "standard"},
                        max_pool_connections=CONNECTIONS,
                        # Checksums only where the protocol requires them: several S3-compatible
                        # stores refuse the CRC headers newer botocore adds by default.
                        request_checksum_calculation="when_required",
                        response_checksum_validation="when_required",
                    ),
                )
                self._clients[endpoint_url] = client
            return client

    def _object_key(self, key: str) -> str:
        return self.options.key_prefix + check_key(key)

    async def _call(self, operation: str, **params: Any) -> Any:
        def call() -> Any:
            client = self._client(self.options.endpoint_url)
            return getattr(client, operation)(Bucket=self.options.bucket, **params)

        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return await self._in_thread(call)
        except ClientError as exc:
            if _error_code(exc) in _NOT_FOUND:
                raise StorageError("file missing") from exc
            logger.warning("object store refused %s: %s", operation, _error_code(exc))
            raise StorageUnavailable() from exc
        except BotoCoreError as exc:
            logger.warning("object store unreachable for %s: %s", operation, type(exc).__name__)
            raise StorageUnavailable() from exc

    async def save(self, key: str, data: bytes, content_type: str) -> None:
        await self._call(
            "put_object", Key=self._object_key(key), Body=data, ContentType=content_type
        )

    async def stream(self, key: str) -> AsyncGenerator[bytes, None]:
        answer = await self._call("get_object", Key=self._object_key(key))
        body = answer["Body"]
        try:
            while chunk := await self._in_thread(body.read, CHUNK_SIZE):
                yield chunk
        finally:
            await self._in_thread(body.close)

    async def delete(self, key: str) -> None:
        await self._call("delete_object", Key=self._object_key(key))

    async def exists(self, key: str) -> bool:
        try:
            await self._call("head_object", Key=self._object_key(key))
        except StorageError:
            return False
        return True

    async def signed_url(self, key: str) -> str | None:
        if self.options.delivery != "redirect":
            return None
        o = self.options
        object_key = self._object_key(key)

        def sign() -> str:
            client = self._client(o.public_endpoint_url or o.endpoint_url)
            url: str = client.generate_presigned_url(
                "get_object",
                Params={"Bucket": o.bucket, "Key": object_key},
                ExpiresIn=o.url_ttl_seconds,
            )
            return url

        return await self._in_thread(sign)


_stores: dict[S3Options, S3Storage] = {}


def s3_storage(options: S3Options) -> S3Storage:
    """One store (and so one client and connection pool) per configuration in the process."""
    store = _stores.get(options)
    if store is None:
        store = _stores.setdefault(options, S3Storage(options))
    return store
