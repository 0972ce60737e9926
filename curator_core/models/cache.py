"""A model directory given as a URI (s3://bucket/models): each machine copies it once into a local cache
and loads from there. Every process that needs the weights (the driver for models.json, each worker for
its model) asks `local_copy`; the first one on a machine copies, under a lock, and the others find the
copy. A file is taken from the cache only while its size matches the remote file's and its sha256 the one
recorded when it was copied; otherwise it is copied again."""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import posixpath
from pathlib import Path

import fsspec

CACHE_ENV = "CURATOR_MODEL_CACHE"
MANIFEST = ".curator-cache.json"


def cache_root() -> Path:
    return Path(os.environ.get(CACHE_ENV) or "~/.cache/curator/models").expanduser()


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 22), b""):
            digest.update(chunk)
    return digest.hexdigest()


def local_copy(uri: str) -> Path:
    """The local copy of the model directory at `uri` (FileNotFoundError naming it when unreadable)."""
    fs, root = fsspec.core.url_to_fs(uri)
    try:
        listing = fs.find(root, detail=True)
    except (FileNotFoundError, PermissionError, OSError) as exc:
        raise FileNotFoundError(
            f"model directory {uri} cannot be read ({type(exc).__name__}: {exc})"
        ) from exc
    if not listing:
        raise FileNotFoundError(f"model directory {uri} is empty or does not exist")
    cache = cache_root() / hashlib.sha1(uri.rstrip("/").encode()).hexdigest()[:16]
    cache.mkdir(parents=True, exist_ok=True)
    with open(cache / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        manifest_path = cache / MANIFEST
        manifest = json.loads(manifest_path.read_text()) if manifest_path.exists() else {}
        for path, info in sorted(listing.items()):
            relative = posixpath.relpath(path, root.rstrip("/"))
            local = cache / relative
            size = int(info.get("size") or 0)
            known = manifest.get(relative)
            fresh = known and local.exists() and local.stat().st_size == size == known["size"]
            if fresh and _sha256(local) == known["sha256"]:
                continue
            local.parent.mkdir(parents=True, exist_ok=True)
            partial = local.with_name(local.name + ".partial")
            fs.get_file(path, str(partial))
            if partial.stat().st_size != size:
                raise OSError(
                    f"copying {fs.unstrip_protocol(path)}: got {partial.stat().st_size} of {size} bytes"
                )
            manifest[relative] = {"size": size, "sha256": _sha256(partial)}
            partial.replace(local)
        manifest_path.write_text(json.dumps(manifest, indent=2, sort_keys=True))
    return cache
