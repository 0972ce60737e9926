"""Files that appear under their final name only when complete, on local disk and on object storage.

Local (and other POSIX-like) filesystems: written to a hidden temporary name in the same folder, then
renamed over the final name (atomic on one filesystem). Object stores: an object becomes visible only
when its upload completes, so the final key is written directly and the upload is discarded on error.
"""

from __future__ import annotations

import contextlib
import hashlib
import posixpath
import uuid
from collections.abc import Iterator
from typing import Any

import fsspec

RENAMING_PROTOCOLS = {"file", "local", "memory"}


def _protocols(fs) -> set[str]:
    protocol = fs.protocol
    return set(protocol) if isinstance(protocol, tuple | list) else {protocol}


class HashingWriter:
    """A write-only file wrapper that counts and hashes (sha256) the bytes, and hands small writes on in
    large chunks (a Python call per small write to the underlying file adds up over a GiB shard)."""

    CHUNK = 1 << 20  # small writes are gathered up to this size
    DIRECT = 64 << 10  # writes at least this large are handed on as they are

    def __init__(self, handle):
        self._handle = handle
        self._pending = bytearray()
        self.digest = hashlib.sha256()
        self.bytes = 0

    def write(self, data) -> int:
        self.bytes += len(data)
        if len(data) >= self.DIRECT:  # large writes go straight through (copying them cost more)
            self.flush()
            self.digest.update(data)
            self._handle.write(data)
        else:
            self._pending += data
            if len(self._pending) >= self.CHUNK:
                self.flush()
        return len(data)

    def tell(self) -> int:
        return self.bytes

    def flush(self) -> None:
        if self._pending:
            self.digest.update(self._pending)
            self._handle.write(self._pending)
            self._pending = bytearray()


@contextlib.contextmanager
def atomic_open(uri: str, storage_options: dict[str, Any] | None = None) -> Iterator[HashingWriter]:
    """Open `uri` for writing; it appears only if the block completes without error."""
    fs, path = fsspec.core.url_to_fs(uri, **(storage_options or {}))
    parent = posixpath.dirname(path)
    if parent:
        fs.makedirs(parent, exist_ok=True)
    if _protocols(fs) & RENAMING_PROTOCOLS:
        temp = posixpath.join(parent, f".{posixpath.basename(path)}.tmp-{uuid.uuid4().hex[:12]}")
        try:
            with fs.open(temp, "wb") as handle:
                writer = HashingWriter(handle)
                yield writer
                writer.flush()
            fs.mv(temp, path)
        finally:
            if fs.exists(temp):
                fs.rm(temp)
        return
    handle = fs.open(path, "wb")
    try:
        writer = HashingWriter(handle)
        yield writer
        writer.flush()
    except BaseException:
        if hasattr(handle, "discard"):
            handle.discard()  # s3fs: abort the multipart upload
        with contextlib.suppress(AttributeError):
            handle.closed = True  # so that garbage collection does not close (= commit) it
        raise
    handle.close()


def write_atomic(uri: str, data: bytes, storage_options: dict[str, Any] | None = None) -> None:
    with atomic_open(uri, storage_options) as handle:
        handle.write(data)
