"""A batch's training samples as WebDataset tar shards, written by the workers.

Per sample (key = clip uuid): `<key>.mp4` (the clip media), `<key>.json` (source, span, fps, size, scores,
captions, lineage), `<key>.txt` (the chosen caption) and `<key>.npy` (float32 embedding of one model).

How a batch is exported, and where each part runs:
1. driver: the batch's clip rows (small columns only) go through the selection rules (`selection.py`);
2. sizes: the ones the clip writer recorded (`clips.media_bytes`); workers size the rest (one `info` per
   file, in parallel; stores written before the column existed);
3. driver: clips, sorted by uuid, are packed into shards under `target_shard_bytes` (pure, deterministic);
4. workers: each shard's worker reads its clips' rows, captions and embeddings from the store and their
   media (read ahead in threads), writes the tar (hashing it as it goes) under a temporary name, moves
   it into place (`atomic.py`) and checks the stored size; a clip whose media cannot be read is left out
   and reported (`media_unreadable`); only small records return;
5. driver: `index.json` of the batch is written and the `training_shards` rows replaced in one commit
   (the commit point readers use); shard files the new index no longer lists are removed.

Shard names are `<batch>-<generation>-<index>.tar`, the generation a hash of the rules and the selected
clips: the same batch and rules give the same names and bytes, and a failed export with other rules never
overwrites a shard that the committed index lists.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import posixpath
import tarfile
import time
from collections import deque
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import av
import fsspec
import numpy as np

from curator_core import __version__
from curator_core.atomic import atomic_open, write_atomic
from curator_core.executors.base import RunResult
from curator_core.pipeline import Pipeline
from curator_core.resources import Resources
from curator_core.stage import ProcessingStage
from curator_core.store import ClipStore, schemas
from curator_core.store.records import Lineage, params_hash
from curator_core.store.store import embeddings_table_name, sql_literal
from curator_core.tasks import Task
from curator_core.training.options import ShardOptions
from curator_core.training.selection import select_clips
from curator_core.training.stats import clip_stats
from curator_core.video.mp4_header import video_track_info

logger = logging.getLogger(__name__)

TAR_MTIME = 0  # fixed member times and owner make the tar bytes depend on the samples only
TAR_OWNER = "curator"
COPY_CHUNK = 4 << 20  # bytes tarfile copies per write
SAMPLE_OVERHEAD_BYTES = 8192  # tar headers and the json/txt/npy parts of one sample, for packing
SIZE_CHUNK = 256  # media files sized per worker task
INDEX_NAME = "index.json"
MEDIA_UNREADABLE = "media_unreadable"


class ShardExportError(RuntimeError):
    """Shards could not all be written and verified; the batch's committed shards are unchanged."""


@dataclass
class MediaFile:
    uuid: str
    uri: str
    size: int | None = None
    error: str = ""


@dataclass
class ShardSpec:
    """One shard to write: its clips in order, and (once written) what the worker measured."""

    index: int
    uri: str
    members: list[str]  # clip uuids, in sample order
    samples: int = 0
    bytes: int = 0
    sha256: str = ""
    parts: list[str] = field(default_factory=list)
    caption_model: str | None = None
    stats: dict = field(default_factory=dict)
    unreadable: list[dict[str, str]] = field(default_factory=list)  # media that could not be read: skipped


def required_parts(options: ShardOptions) -> list[str]:
    """The extensions every sample of an export carries."""
    return (
        ["json", "mp4"]
        + (["npy"] if options.require_embedding else [])
        + (["txt"] if options.require_caption else [])
    )


def pack(files: list[MediaFile], options: ShardOptions) -> list[list[MediaFile]]:
    """Consecutive groups whose estimated size stays under the target (a larger single sample gets its
    own shard), at most `max_samples_per_shard` each."""
    shards: list[list[MediaFile]] = []
    current: list[MediaFile] = []
    size = 0
    for item in files:
        estimate = (item.size or 0) + SAMPLE_OVERHEAD_BYTES
        if current and (
            size + estimate > options.target_shard_bytes or len(current) >= options.max_samples_per_shard
        ):
            shards.append(current)
            current, size = [], 0
        current.append(item)
        size += estimate
    if current:
        shards.append(current)
    return shards


def shard_name(batch_key: str, generation: str, index: int) -> str:
    return f"{batch_key}-{generation}-{index:06d}.tar"


@dataclass
class MediaSizeStage(ProcessingStage[Task, Task]):
    """Sizes a chunk of clip media files (in parallel threads: one request each on object storage)."""

    name: str = "media_size"
    resources: Resources = Resources(cpus=0.25)
    threads: int = 16

    def process(self, task: Task) -> Task:
        def size(item: MediaFile) -> MediaFile:
            try:
                fs, path = fsspec.core.url_to_fs(item.uri)
                item.size = int(fs.info(path)["size"])
            except (OSError, ValueError, KeyError) as exc:
                item.error = unreadable_media(item.uri, exc)
            return item

        with ThreadPoolExecutor(self.threads) as pool:
            task.data = list(pool.map(size, task.data))
        return task


@dataclass
class ShardWriteStage(ProcessingStage[Task, Task]):
    """Writes one shard from the store and the clip media, moves it into place and checks the stored
    size. Reading shards back in full (sha256, samples, parts) is `verify_shards`, which the
    `training_shards` asset check runs: a second full pass here measured ~20 % of the export's time."""

    store_uri: str = ""
    batch_key: str = ""
    options: ShardOptions = field(default_factory=ShardOptions)
    embedding_model: str | None = None
    storage_options: dict[str, Any] = field(default_factory=dict)
    read_ahead: int = 8  # media files read in parallel ahead of the one being written (cold disk: 0.72x a
    # plain tar copy without it, 0.79-0.84x with it; on object storage it hides each request's latency)
    name: str = "shard_writer"
    resources: Resources = Resources(cpus=1.0)

    def process(self, task: Task) -> Task:
        spec: ShardSpec = task.data
        rows, captions, vectors = self._read_store(spec.members)
        parts = required_parts(self.options)
        media_uris = [rows[uuid]["media_uri"] for uuid in spec.members]
        written: list[str] = []
        with (
            ThreadPoolExecutor(self.read_ahead) as pool,
            atomic_open(spec.uri, self.storage_options) as out,
            tarfile.open(fileobj=out, mode="w", format=tarfile.USTAR_FORMAT, copybufsize=COPY_CHUNK) as tar,
        ):
            media_files = read_ahead(pool, read_media, media_uris, self.read_ahead)
            for uuid, uri, media in zip(spec.members, media_uris, media_files, strict=True):
                if isinstance(media, str):  # the file went missing or cannot be read: the sample is dropped
                    spec.unreadable.append({"stage": self.name, "input": uri, "reason": media})
                    continue
                sample = self._sample(rows[uuid], media, captions.get(uuid, []), vectors.get(uuid))
                missing = [p for p in parts if p not in sample]
                if missing:
                    raise ValueError(f"clip {uuid}: no {', '.join(missing)} for its sample")
                add_sample(tar, uuid, sample)
                written.append(uuid)
        spec.samples, spec.bytes, spec.sha256 = len(written), out.bytes, out.digest.hexdigest()
        spec.parts = parts
        models = sorted({c["model_id"] for u in written for c in captions.get(u, []) if c.get("model_id")})
        spec.caption_model = ",".join(models) or None
        spec.stats = clip_stats(rows[u] for u in written)
        fs, path = fsspec.core.url_to_fs(spec.uri, **self.storage_options)
        stored = int(fs.info(path)["size"])
        if stored != spec.bytes:
            raise ValueError(f"shard {spec.uri} holds {stored} bytes after writing {spec.bytes}")
        return task

    def _read_store(self, uuids: list[str]) -> tuple[dict, dict, dict]:
        store = ClipStore(self.store_uri)
        where = (
            f"batch_key = {sql_literal(self.batch_key)} AND uuid IN ("
            + ", ".join(sql_literal(u) for u in uuids)
            + ")"
        )
        rows = {r["uuid"]: r for r in store.rows("clips", where).to_pylist()}
        captions: dict[str, list[dict]] = {}
        caption_rows = store.rows("clip_captions", where).to_pylist()
        for r in sorted(caption_rows, key=lambda r: (r["uuid"], r["window"], r["kind"])):
            captions.setdefault(r["uuid"], []).append(r)
        vectors: dict[str, list[float]] = {}
        if self.embedding_model:
            table = embeddings_table_name(self.embedding_model)
            for r in store.rows(table, where, columns=["uuid", "vector"]).to_pylist():
                vectors[r["uuid"]] = r["vector"]
        return rows, captions, vectors

    def _sample(
        self, row: dict, media: bytes, captions: list[dict], vector: list[float] | None
    ) -> dict[str, bytes]:
        text = chosen_caption(captions, self.options.prefer_enhanced_caption)
        info = {
            "uuid": row["uuid"],
            "batch_key": row["batch_key"],
            "source_uri": row["source_uri"],
            "video_id": row["video_id"],
            "span_s": [row["span_start_s"], row["span_end_s"]],
            "duration_s": row["duration_s"],
            "media": {**probe_media(media), "bytes": len(media)},
            "scores": dict(sorted(dict(row["scores"] or []).items())),
            "captions": [
                {"window": c["window"], "kind": c["kind"], "model_id": c["model_id"], "text": c["text"]}
                for c in captions
            ],
            "embedding_model": self.embedding_model if vector is not None else None,
            "lineage": {
                k: row[k] for k in ("content_hash", "pipeline", "code_version", "params_hash", "model_id")
            },
        }
        sample = {"mp4": media, "json": json.dumps(info, sort_keys=True).encode()}
        if text:
            sample["txt"] = text.encode()
        if vector is not None:
            buffer = io.BytesIO()
            np.save(buffer, np.asarray(vector, dtype=np.float32))
            sample["npy"] = buffer.getvalue()
        return sample


def unreadable_media(uri: str, exc: BaseException) -> str:
    """The `media_unreadable` reason, naming the file, wherever the media is found unreadable."""
    return f"cannot read clip media {uri}: {type(exc).__name__}: {exc}"


def read_media(uri: str) -> bytes | str:
    """A clip's media bytes, or why they cannot be read (naming the file)."""
    try:
        with fsspec.open(uri, "rb") as handle:
            return handle.read()
    except (OSError, ValueError) as exc:
        return unreadable_media(uri, exc)


def read_ahead(pool: ThreadPoolExecutor, fn, items: list, window: int) -> Iterator:
    """`fn(item)` for each item, in order, with up to `window` calls running ahead in `pool`: a cold disk
    or an object store's per-request latency overlaps with writing, and memory holds `window` results."""
    pending: deque = deque()
    for item in items:
        pending.append(pool.submit(fn, item))
        if len(pending) > window:
            yield pending.popleft().result()
    while pending:
        yield pending.popleft().result()


def add_sample(tar: tarfile.TarFile, key: str, parts: dict[str, bytes]) -> None:
    """One WebDataset sample: members `<key>.<ext>` in extension order, with a fixed mtime, owner and mode
    (what webdataset's TarWriter writes). Not TarWriter itself: it always opens the archive in stream mode
    ("w|"), which passes every member through 10 KiB Python-level writes; measured 2.6 s of a 2.9 s
    export of 1 GB, about 190 MB/s per worker."""
    for ext in sorted(parts):
        info = tarfile.TarInfo(f"{key}.{ext}")
        info.size, info.mtime, info.mode = len(parts[ext]), TAR_MTIME, 0o444
        info.uname = info.gname = TAR_OWNER
        tar.addfile(info, io.BytesIO(parts[ext]))


def chosen_caption(captions: list[dict], prefer_enhanced: bool) -> str:
    """One text per caption window (the enhanced one where preferred and present), windows in order."""
    by_window: dict[int, dict[str, str]] = {}
    for c in captions:
        by_window.setdefault(c["window"], {})[c["kind"]] = c["text"]
    order = ("enhanced", "caption") if prefer_enhanced else ("caption", "enhanced")
    texts = []
    for window in sorted(by_window):
        kinds = by_window[window]
        texts.append(next(kinds[k] for k in order if k in kinds))
    return "\n".join(t.strip() for t in texts if t and t.strip())


def probe_media(media: bytes) -> dict:
    """fps, coded size, frame count and codec of an encoded clip: from the MP4 header boxes (no decoding),
    else from PyAV (which decodes frames to analyse the stream)."""
    info = video_track_info(media)
    if info is not None:
        return info
    with av.open(io.BytesIO(media)) as container:
        stream = container.streams.video[0]
        rate = stream.average_rate or stream.guessed_rate
        return {
            "fps": round(float(rate), 6) if rate else None,
            "width": stream.codec_context.width,
            "height": stream.codec_context.height,
            "num_frames": stream.frames or None,
            "codec": stream.codec_context.name,
        }


@dataclass
class ShardContents:
    """What reading a shard back found: sample keys in order, each key's parts, the bytes' sha256."""

    keys: list[str]
    parts: dict[str, set[str]]
    sha256: str
    error: str = ""


def read_shard(uri: str, storage_options: dict[str, Any] | None = None) -> ShardContents:
    """Stream a shard once: its members grouped into samples, and the sha256 of every byte."""
    digest = hashlib.sha256()
    keys: list[str] = []
    parts: dict[str, set[str]] = {}
    try:
        fs, path = fsspec.core.url_to_fs(uri, **(storage_options or {}))
        with fs.open(path, "rb") as raw:
            stream = io.BufferedReader(_HashingReader(raw, digest), buffer_size=4 << 20)
            with tarfile.open(fileobj=stream, mode="r|") as tar:
                for member in tar:
                    key, _, ext = posixpath.basename(member.name).partition(".")
                    if key not in parts:
                        keys.append(key)
                    parts.setdefault(key, set()).add(ext)
            while stream.read(1 << 20):  # the end-of-archive padding counts for the hash too
                pass
    except (OSError, tarfile.TarError, ValueError) as exc:
        return ShardContents(keys, parts, "", f"cannot read {uri}: {type(exc).__name__}: {exc}")
    return ShardContents(keys, parts, digest.hexdigest())


def shard_problems(
    contents: ShardContents,
    parts: list[str],
    sha256: str,
    samples: int | None = None,
) -> list[str]:
    """Why a shard read back is not what was written (empty when it is): it opened, has `sha256`, holds
    `samples` samples, and every sample has every one of `parts`."""
    if contents.error:
        return [contents.error]
    problems = []
    if samples is not None and len(contents.keys) != samples:
        problems.append(f"{len(contents.keys)} samples in the shard, the index lists {samples}")
    for key in contents.keys:
        missing = sorted(set(parts) - contents.parts[key])
        if missing:
            problems.append(f"sample {key} lacks {', '.join(missing)}")
    if contents.sha256 != sha256:
        problems.append(f"sha256 {contents.sha256} != {sha256}")
    return problems


def read_index(index_uri: str, storage_options: dict[str, Any] | None = None) -> dict:
    with fsspec.open(index_uri, "rb", **(storage_options or {})) as handle:
        return json.load(handle)


def verify_shards(
    index: dict, storage_options: dict[str, Any] | None = None, read_back: int | None = None
) -> dict[str, list[str]]:
    """Every shard a batch's index lists -> its problems (empty when sound): it exists with the listed
    size; the first `read_back` shards (all when None) are also read in full (`shard_problems`)."""
    out: dict[str, list[str]] = {}
    for i, shard in enumerate(index["shards"]):
        fs, path = fsspec.core.url_to_fs(shard["uri"], **(storage_options or {}))
        if not fs.exists(path):
            out[shard["uri"]] = [f"{shard['uri']} does not exist"]
            continue
        size = int(fs.info(path)["size"])
        problems = [f"{size} bytes, the index lists {shard['bytes']}"] if size != shard["bytes"] else []
        if read_back is None or i < read_back:
            contents = read_shard(shard["uri"], storage_options)
            problems += shard_problems(contents, index["parts"], shard["sha256"], samples=shard["samples"])
        out[shard["uri"]] = problems
    return out


class _HashingReader(io.RawIOBase):
    """Hashes what is read through it; wrapped in a large io.BufferedReader so that tarfile's 10 KiB
    reads are served from memory and the file is read (and hashed) in big chunks."""

    def __init__(self, raw, digest):
        self._raw, self._digest = raw, digest

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        data = self._raw.read(len(buffer))
        buffer[: len(data)] = data
        self._digest.update(data)
        return len(data)


@dataclass
class ShardExport:
    """What an export wrote: the shards, counts, drops per rule, and inputs that could not be used."""

    batch_key: str
    root: str  # <to>/<batch_key>
    index_uri: str
    generation: str
    shards: list[ShardSpec]
    candidates: int  # clip rows of the batch
    dropped: dict[str, int]  # rule -> clips it dropped
    failures: list[dict[str, str]]  # stage, input, reason
    embedding_model: str | None
    removed: list[str]  # stale shard files removed
    pipeline_s: float = 0.0

    @property
    def samples(self) -> int:
        return sum(s.samples for s in self.shards)

    @property
    def bytes(self) -> int:
        return sum(s.bytes for s in self.shards)


def batch_embedding_model(store: ClipStore, batch_key: str, requested: str | None) -> str | None:
    """The embedding model of the .npy part: the requested one, else the first with rows for the batch."""
    if requested:
        return requested
    where = f"batch_key = {sql_literal(batch_key)}"
    for model_id in sorted(store.embedding_models()):
        if store.rows(embeddings_table_name(model_id), where, columns=["uuid"]).num_rows:
            return model_id
    return None


def export_shards(
    store_uri: str,
    batch_key: str,
    to: str,
    options: ShardOptions | None = None,
    executor=None,
    storage_options: dict[str, Any] | None = None,
) -> ShardExport:
    """Write the batch's samples as shards under `<to>/<batch_key>/` and record them (module docstring)."""
    options = options or ShardOptions()
    storage_options = dict(storage_options or {})
    store = ClipStore(store_uri)
    where = f"batch_key = {sql_literal(batch_key)}"
    columns = ["uuid", "media_uri", "duration_s", "kept", "scores"]
    if "media_bytes" in store.open("clips").schema.names:  # stores written before it was recorded lack it
        columns.append("media_bytes")
    clips = store.rows("clips", where, columns=columns).to_pylist()
    model_id = batch_embedding_model(store, batch_key, options.embedding_model)
    duplicates = _ids(store, "clip_duplicates", where)
    captioned = _ids(store, "clip_captions", f"{where} AND kind = 'caption'")
    embedded = _ids(store, embeddings_table_name(model_id), where) if model_id else set()
    selected, dropped = select_clips(clips, options, duplicates, captioned, embedded)

    t0 = time.perf_counter()
    files = _size_media(selected, executor)
    unreadable = [f for f in files if f.error]
    dropped[MEDIA_UNREADABLE] = len(unreadable)
    failures = [{"stage": "media_size", "input": f.uri, "reason": f.error} for f in unreadable]
    files = [f for f in files if not f.error]

    root = posixpath.join(to.rstrip("/"), batch_key)
    generation = params_hash(options.model_dump(), [(f.uuid, f.size) for f in files], model_id)[:10]
    specs = [
        ShardSpec(i, posixpath.join(root, shard_name(batch_key, generation, i)), [f.uuid for f in group])
        for i, group in enumerate(pack(files, options))
    ]
    written = _write(specs, store_uri, batch_key, options, model_id, storage_options, executor)
    for task in written.outputs:
        failures += task.data.unreadable
        dropped[MEDIA_UNREADABLE] += len(task.data.unreadable)
    if written.failures:
        reasons = "; ".join(f"{f.stage}: {f.message}" for f in written.failures[:5])
        raise ShardExportError(
            f"{len(written.failures)} of {len(specs)} shards of batch {batch_key!r} failed ({reasons}); "
            f"the committed shards under {root} are unchanged"
        )
    shards = sorted((t.data for t in written.outputs), key=lambda s: s.index)
    export = ShardExport(
        batch_key, root, posixpath.join(root, INDEX_NAME), generation, shards, len(clips), dropped,
        failures, model_id, [], time.perf_counter() - t0,
    )  # fmt: skip
    _commit(store, export, options, storage_options)
    return export


def _ids(store: ClipStore, table: str, where: str) -> set[str]:
    return set(store.rows(table, where, columns=["uuid"]).column("uuid").to_pylist())


def _run(name: str, stage: ProcessingStage, data: list[Any], executor) -> RunResult:
    tasks = [Task(dataset_name=name, data=item) for item in data]
    return Pipeline(name, [stage]).execute(executor, initial_tasks=tasks)


def _size_media(selected: list[dict], executor) -> list[MediaFile]:
    """The selected clips' media files with their sizes (or why they cannot be read), in order. Sizes the
    clip writer recorded are used as they are; only the others are asked of the storage, by the workers."""
    files = [MediaFile(r["uuid"], r["media_uri"] or "", r.get("media_bytes")) for r in selected]
    unknown = [f for f in files if f.size is None]
    if not unknown:
        return files
    chunks = [unknown[i : i + SIZE_CHUNK] for i in range(0, len(unknown), SIZE_CHUNK)]
    result = _run("media_size", MediaSizeStage(), chunks, executor)
    if result.failures:
        raise ShardExportError("; ".join(str(f) for f in result.failures[:5]))
    sized = {f.uuid: f for t in result.outputs for f in t.data}
    return [sized.get(f.uuid, f) for f in files]


def _write(specs, store_uri, batch_key, options, model_id, storage_options, executor) -> RunResult:
    if not specs:
        return RunResult(outputs=[])
    stage = ShardWriteStage(store_uri, batch_key, options, model_id, storage_options)
    return _run("training_shards", stage, specs, executor)


def _commit(store: ClipStore, export: ShardExport, options: ShardOptions, storage_options: dict) -> None:
    """Index, then the store rows (one commit), then removal of shards no longer listed."""
    lineage = Lineage(
        export.batch_key, "training_shards", f"{__version__}/training_shards", params_hash(options.model_dump()),
        export.embedding_model,
    )  # fmt: skip
    rules = options.model_dump_json()
    index = {
        "batch_key": export.batch_key,
        "generation": export.generation,
        "rules": options.model_dump(),
        "parts": required_parts(options),
        "embedding_model": export.embedding_model,
        "samples": export.samples,
        "bytes": export.bytes,
        "candidates": export.candidates,
        "dropped": export.dropped,
        "failures": export.failures,
        "shards": [
            {"uri": s.uri, "samples": s.samples, "bytes": s.bytes, "sha256": s.sha256} for s in export.shards
        ],
    }
    write_atomic(export.index_uri, json.dumps(index, indent=2, sort_keys=True).encode(), storage_options)
    rows = [
        {
            "row_id": s.uri,
            "shard_index": s.index,
            "shard_uri": s.uri,
            "generation": export.generation,
            "samples": s.samples,
            "bytes": s.bytes,
            "parts": ",".join(s.parts),
            "caption_model": s.caption_model,
            "rules_json": rules,
            "stats_json": json.dumps(s.stats, sort_keys=True),
            **lineage.columns(None, s.sha256),
        }
        for s in export.shards
    ]
    store.replace_batch("training_shards", export.batch_key, rows, schemas.TRAINING_SHARDS)
    fs, root = fsspec.core.url_to_fs(export.root, **storage_options)
    keep = {fsspec.core.url_to_fs(s.uri, **storage_options)[1] for s in export.shards}
    for path in fs.glob(posixpath.join(root, "*.tar")):
        if path not in keep:
            fs.rm(path)
            export.removed.append(path)
