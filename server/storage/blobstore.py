"""Where a photo's bytes live (CONTRACT §11): the database, a directory, or S3-compatible
object storage, chosen by the app's ``BLOB_STORE`` setting (docs/deploy.md, "Photos").

Only the bytes move. What a photo is — its uploader, device, size, the visits that refer to
it, the upload budget — stays in the ``blobs`` and ``blob_refs`` tables in every backend, so
``HEAD``, the budget and the scope check of ``GET`` ask the database alone.

``BLOB_STORE`` is one of:

- ``database`` (the default; a township's one server): the bytes in ``blobs.content``, written
  in the same transaction as the photo's row.
- ``directory:<path>`` (a county's own server): one file per photo, ``<path>/ab/cd/<sha256>``,
  written to a temporary file, synced and renamed, so a crash never leaves half a photo under
  its name.
- ``s3://<bucket>/<prefix>`` (a province): one object per photo, ``<prefix>/<sha256>``, on
  ``S3_ENDPOINT_URL`` (any S3-compatible store) with the credentials boto3 finds (the usual
  ``AWS_*`` variables). ``GET`` answers a redirect to a URL signed for ``BLOB_URL_SECONDS``.

A photo's row still holding bytes is served from them whatever the backend: that is what lets
``zoufang blobs migrate`` move old photos out while the app runs.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

from flask import current_app
from sqlalchemy import select, update
from sqlalchemy.engine import Connection, Engine

from server.storage.models import Blob


class BlobMissing(Exception):
    """The photo's row is there but its bytes are not in the store (deleted by hand, or a
    store switched back without moving the photos)."""


class BlobStoreDown(Exception):
    """The store did not take or give the bytes (a full disk, an unreachable bucket): the
    client tries again later (503), nothing half-stored stays behind."""


class BadBlobStore(ValueError):
    """``BLOB_STORE`` names no backend this server knows."""


class BlobStore(Protocol):
    """The bytes of photos, by SHA-256. Every method is idempotent."""

    #: the origin a browser fetches photos from when ``url`` answers one (the pages' CSP)
    origin: str | None

    def put(self, conn: Connection, sha256: str, content: bytes, content_type: str) -> None:
        """Store the bytes of the photo whose row ``conn``'s transaction has just written: the
        database backend writes them in that transaction, the others before it commits, so a
        row never commits without its bytes."""

    def exists(self, conn: Connection, sha256: str) -> bool: ...

    def get(self, conn: Connection, sha256: str) -> bytes:
        """The bytes, or ``BlobMissing``."""

    def url(self, sha256: str) -> str | None:
        """A short-lived URL the caller may fetch the bytes from itself, or None: the app
        sends them."""

    def delete(self, sha256s: Iterable[str]) -> None:
        """Forget the bytes of photos whose rows are deleted."""


class DatabaseBlobs:
    """The bytes in ``blobs.content``: nothing to set up, and a backup of the database is a
    backup of the photos."""

    origin = None

    def put(self, conn: Connection, sha256: str, content: bytes, content_type: str) -> None:
        conn.execute(update(Blob).where(Blob.sha256 == sha256).values(content=content))

    def exists(self, conn: Connection, sha256: str) -> bool:
        query = select(Blob.sha256).where(Blob.sha256 == sha256, Blob.content.is_not(None))
        return conn.execute(query).first() is not None

    def get(self, conn: Connection, sha256: str) -> bytes:
        content = conn.execute(select(Blob.content).where(Blob.sha256 == sha256)).scalar()
        if content is None:
            raise BlobMissing(sha256)
        return bytes(content)

    def url(self, sha256: str) -> str | None:
        return None

    def delete(self, sha256s: Iterable[str]) -> None:
        """Nothing: the bytes went with their rows."""


class DirectoryBlobs:
    """One file per photo under ``root/ab/cd/``: two levels of 256 folders keep each folder
    small for the millions of photos of a county."""

    origin = None

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def path(self, sha256: str) -> Path:
        return self.root / sha256[:2] / sha256[2:4] / sha256

    def put(self, conn: Connection, sha256: str, content: bytes, content_type: str) -> None:
        """Write a temporary file beside the final one, sync it, rename it over the name and
        sync the folder: the name holds the whole photo or nothing, even across a power cut.
        A crash may leave a ``.part`` file behind, never a short photo."""
        final = self.path(sha256)
        if final.exists():
            return
        try:
            final.parent.mkdir(parents=True, exist_ok=True)
            fd, temporary = tempfile.mkstemp(dir=final.parent, prefix=".", suffix=".part")
        except OSError as error:
            raise BlobStoreDown(f"cannot write to {self.root}: {error}") from error
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(content)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temporary, final)
            _sync_directory(final.parent)
        except OSError as error:
            Path(temporary).unlink(missing_ok=True)
            raise BlobStoreDown(f"cannot write {final}: {error}") from error
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise

    def exists(self, conn: Connection, sha256: str) -> bool:
        return self.path(sha256).is_file()

    def get(self, conn: Connection, sha256: str) -> bytes:
        try:
            return self.path(sha256).read_bytes()
        except FileNotFoundError as missing:
            raise BlobMissing(sha256) from missing
        except OSError as error:
            raise BlobStoreDown(f"cannot read {self.path(sha256)}: {error}") from error

    def url(self, sha256: str) -> str | None:
        return None

    def delete(self, sha256s: Iterable[str]) -> None:
        for sha256 in sha256s:
            self.path(sha256).unlink(missing_ok=True)


def _sync_directory(path: Path) -> None:
    """Make a rename in ``path`` durable (POSIX; Windows has no directory handles to sync)."""
    if os.name != "posix":
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class S3Blobs:
    """One object per photo in an S3-compatible bucket. The app never sends the bytes of a
    ``GET``: the phone or browser fetches them from the bucket with a URL signed for a few
    minutes, issued only after the scope check."""

    def __init__(
        self, bucket: str, prefix: str, endpoint_url: str | None, url_seconds: int
    ) -> None:
        import boto3  # only a deployment on object storage needs it: pip install zoufang[s3]
        from botocore.config import Config

        self.bucket, self.prefix, self.url_seconds = bucket, prefix, url_seconds
        # a bucket out of reach fails an upload in seconds (503, the phone retries), not minutes
        config = Config(
            signature_version="s3v4",
            connect_timeout=5,
            read_timeout=30,
            retries={"max_attempts": 3, "mode": "standard"},
        )
        self.client: Any = boto3.client("s3", endpoint_url=endpoint_url, config=config)
        self.origin = _origin(self.url("0" * 64))

    def key(self, sha256: str) -> str:
        return self.prefix + sha256

    def put(self, conn: Connection, sha256: str, content: bytes, content_type: str) -> None:
        with self._reaching():
            self.client.put_object(
                Bucket=self.bucket, Key=self.key(sha256), Body=content, ContentType=content_type
            )

    def exists(self, conn: Connection, sha256: str) -> bool:
        from botocore.exceptions import ClientError

        try:
            with self._reaching():
                self.client.head_object(Bucket=self.bucket, Key=self.key(sha256))
        except BlobStoreDown as down:
            error = down.__cause__
            if isinstance(error, ClientError) and error.response["Error"]["Code"] in NO_OBJECT:
                return False
            raise
        return True

    def get(self, conn: Connection, sha256: str) -> bytes:
        from botocore.exceptions import ClientError

        try:
            with self._reaching():
                return bytes(
                    self.client.get_object(Bucket=self.bucket, Key=self.key(sha256))["Body"].read()
                )
        except BlobStoreDown as down:
            error = down.__cause__
            if isinstance(error, ClientError) and error.response["Error"]["Code"] in NO_OBJECT:
                raise BlobMissing(sha256) from error
            raise

    @contextmanager
    def _reaching(self) -> Iterator[None]:
        """Any failure to reach the bucket or of the bucket to answer: ``BlobStoreDown``."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            yield
        except (BotoCoreError, ClientError) as error:
            raise BlobStoreDown(f"bucket {self.bucket}: {error}") from error

    def url(self, sha256: str) -> str:
        """Signed for ``url_seconds``; the answer tells the browser not to keep the photo in
        its cache, like every answer of the API (server/http/security.py)."""
        params = {
            "Bucket": self.bucket,
            "Key": self.key(sha256),
            "ResponseCacheControl": "no-store",
        }
        return str(
            self.client.generate_presigned_url(
                "get_object", Params=params, ExpiresIn=self.url_seconds
            )
        )

    def delete(self, sha256s: Iterable[str]) -> None:
        keys = [{"Key": self.key(sha256)} for sha256 in sha256s]
        for start in range(0, len(keys), 1000):  # DeleteObjects takes at most 1000 keys
            with self._reaching():
                self.client.delete_objects(
                    Bucket=self.bucket,
                    Delete={"Objects": keys[start : start + 1000], "Quiet": True},
                )


#: what S3-compatible stores answer for a key that is not there
NO_OBJECT = ("404", "NoSuchKey", "NotFound")


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def open_blob_store(config: dict[str, Any]) -> BlobStore:
    """The backend an app's configuration names (``BLOB_STORE``, ``S3_ENDPOINT_URL``,
    ``BLOB_URL_SECONDS``); ``BadBlobStore`` for a name it does not know."""
    setting = str(config.get("BLOB_STORE") or "database")
    if setting == "database":
        return DatabaseBlobs()
    if setting.startswith("directory:"):
        root = setting.removeprefix("directory:")
        if not root:
            raise BadBlobStore("BLOB_STORE directory:<path> needs a path")
        return DirectoryBlobs(root)
    if setting.startswith("s3://"):
        parts = urlsplit(setting)
        if not parts.netloc:
            raise BadBlobStore("BLOB_STORE s3://<bucket>/<prefix> needs a bucket")
        prefix = parts.path.strip("/")
        return S3Blobs(
            parts.netloc,
            prefix + "/" if prefix else "",
            config.get("S3_ENDPOINT_URL") or None,
            int(config["BLOB_URL_SECONDS"]),
        )
    raise BadBlobStore(
        f"BLOB_STORE={setting!r}: expected database, directory:<path> or s3://<bucket>/<prefix>"
    )


def move_out_of_database(engine: Engine, target: BlobStore, batch: int = 50) -> tuple[int, int]:
    """Move the bytes of every photo still in its row into ``target``; how many photos and
    bytes moved.

    A batch at a time, each in one transaction: the bytes are put into ``target``, then the
    rows let go of theirs. Stopped anywhere, nothing is lost (a row keeps its bytes until
    they are in ``target``) and running it again goes on from there; putting a photo twice
    is harmless. The app serves every photo meanwhile, from its row or from ``target``."""
    if isinstance(target, DatabaseBlobs):
        raise BadBlobStore("BLOB_STORE is database: name the directory or bucket to move to")
    moved = size = 0
    while True:
        with engine.begin() as conn:
            rows = conn.execute(
                select(Blob.sha256, Blob.content, Blob.content_type)
                .where(Blob.content.is_not(None))
                .order_by(Blob.sha256)
                .limit(batch)
            ).all()
            if not rows:
                return moved, size
            for row in rows:
                target.put(conn, row.sha256, bytes(row.content), row.content_type)
            conn.execute(
                update(Blob)
                .where(Blob.sha256.in_([row.sha256 for row in rows]))
                .values(content=None)
            )
        moved += len(rows)
        size += sum(len(row.content) for row in rows)


def blob_store() -> BlobStore:
    """The current app's backend (``create_app`` opens it from the app's configuration)."""
    return current_app.extensions["zoufang_blobs"]  # type: ignore[no-any-return]
