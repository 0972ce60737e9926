"""Training-shard export against a plain tar of the same clip files, and reading the shards back.

Builds a clip store of N kept clips whose media are real H.264 clips (cut from the shared videos, copied to
one file per clip; synthetic ones where the folder is absent), each with a caption and a 512-d embedding.
Then, alternating which side runs first in each repeat:
- ours: `export_shards` through RayExecutor on 2 CPUs (rows read from LanceDB with the media sizes the
  clip writer records, media read ahead by the workers, tar hashed as it is written under a temporary
  name, moved into place, its stored size checked);
- plain: Python's tarfile adding the same clip files into one tar on the same disk (one process).
Prints clips/s and MB/s per run, the ratio ours/plain of the medians (target >= 0.8), and the DataLoader
read throughput of the shards: webdataset + PyAV decoding through torch DataLoader with 2 workers.

    .venv/bin/python benchmarks/shard_writing.py [--clips 300] [--repeats 3] [--target-mib 64] [--read-samples 300] [--cold]

Clip media: the first 4 s of each shared video, re-encoded at its own size (real footage, clip length).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tarfile
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np

from curator_core.executors.ray import RayExecutor
from curator_core.store import ClipStore, schemas
from curator_core.training.options import ShardOptions
from curator_core.training.reading import decode_sample
from curator_core.training.shards import export_shards

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "videos"
BATCH = "bench"
CPUS = 2


def source_clips(workdir: Path, seconds: float = 4.0) -> list[Path]:
    """Real H.264 clips: the first `seconds` of each shared video, re-encoded at its own size with
    libx264 veryfast (synthetic videos where the shared folder is absent)."""
    import av

    real = [p for p in sorted(SHARED.glob("*.mp4")) if "corrupt" not in p.name] if SHARED.is_dir() else []
    if not real:
        from curator_core.video.samples import Shot, write_video

        return [
            write_video(workdir / f"synthetic{i}.mp4", [Shot(96, (40 * i, 90, 160), motion=True)], 640, 360)
            for i in range(4)
        ]
    from curator_core.video.samples import encode_frames

    clips = []
    for source in real:
        with av.open(str(source)) as src:
            stream = src.streams.video[0]
            fps = round(float(stream.average_rate or 24))
            width, height = stream.codec_context.width // 2 * 2, stream.codec_context.height // 2 * 2
            frames = [
                f.reformat(width, height, "rgb24").to_ndarray()
                for f, _ in zip(src.decode(stream), range(int(seconds * fps)), strict=False)
            ]
        options = {"preset": "veryfast", "crf": "23"}
        clips.append(
            encode_frames(workdir / f"clip_{source.stem}.mp4", frames, width, height, fps, "libx264", options)
        )
    return clips


def build_store(workdir: Path, clips: int) -> tuple[str, list[Path]]:
    sources = source_clips(workdir)
    media_dir = workdir / "media"
    media_dir.mkdir()
    rng = np.random.default_rng(0)
    clip_rows, captions, vectors, media = [], [], [], []
    for i in range(clips):
        clip_id = str(uuid.UUID(int=int(rng.integers(0, 2**63)) << 64 | i))
        path = media_dir / f"{clip_id}.mp4"
        shutil.copyfile(sources[i % len(sources)], path)
        media.append(path)
        common = {
            "row_id": clip_id,
            "uuid": clip_id,
            "batch_key": BATCH,
            "source_uri": str(sources[i % len(sources)]),
        }
        clip_rows.append(
            {**common, "video_id": "v", "span_start_s": 0.0, "span_end_s": 5.0, "duration_s": 5.0,
             "media_uri": str(path), "media_bytes": path.stat().st_size, "preview_uri": None, "kept": True, "filtered_by": None,
             "scores": [("motion_global_mean", float(rng.uniform(1e-4, 1e-2)))], "pipeline": "clips"}
        )  # fmt: skip
        captions.append(
            {**common, "row_id": f"{clip_id}/0/caption", "window": 0, "start_frame": 0, "end_frame": 10,
             "prompt_id": "default", "kind": "caption", "text": f"a video clip number {i}"}
        )  # fmt: skip
        vector = rng.normal(size=512).astype(np.float32)
        vectors.append(
            {**common, "vector": (vector / np.linalg.norm(vector)).tolist(), "model_id": "bench/model"}
        )
    store_uri = str(workdir / "store")
    store = ClipStore(store_uri)
    store.replace_batch("clips", BATCH, clip_rows, schemas.CLIPS)
    store.replace_batch("clip_captions", BATCH, captions, schemas.CLIP_CAPTIONS)
    store.write_embeddings(BATCH, "bench/model", vectors)
    return store_uri, media


def ours(store_uri: str, out: Path, options: ShardOptions, executor) -> tuple[float, int]:
    t0 = time.perf_counter()
    export = export_shards(store_uri, BATCH, str(out), options, executor)
    return time.perf_counter() - t0, export.bytes


def plain(media: list[Path], out: Path) -> tuple[float, int]:
    out.mkdir(parents=True)
    t0 = time.perf_counter()
    with tarfile.open(out / "plain.tar", "w") as tar:
        for path in media:
            tar.add(path, arcname=path.name)
    return time.perf_counter() - t0, (out / "plain.tar").stat().st_size


def read_back(shards: list[str], limit: int) -> tuple[float, int, int]:
    """Seconds, samples and decoded frames for the first `limit` samples through the DataLoader."""
    import itertools

    import torch
    import webdataset as wds

    dataset = wds.WebDataset(shards, shardshuffle=False, empty_check=False).map(decode_sample)
    loader = torch.utils.data.DataLoader(dataset, batch_size=None, num_workers=2)
    t0 = time.perf_counter()
    samples = frames = 0
    for sample in itertools.islice(loader, limit):
        samples += 1
        frames += int(sample["frames"].shape[0])
    return time.perf_counter() - t0, samples, frames


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--target-mib", type=float, default=64.0, help="target shard size, MiB")
    parser.add_argument("--cold", action="store_true", help="drop the page cache before each run (root)")
    parser.add_argument(
        "--read-samples", type=int, default=300, help="samples read back per DataLoader pass (every frame)"
    )
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="shard-bench-"))
    try:
        store_uri, media = build_store(workdir, args.clips)
        total_mb = sum(p.stat().st_size for p in media) / 1e6
        options = ShardOptions(target_shard_bytes=int(args.target_mib * 2**20))
        executor = RayExecutor(num_cpus=CPUS)
        warm_s, _ = ours(store_uri, workdir / "warm", options, executor)  # Ray start, worker imports
        print(f"{args.clips} clips, {total_mb:.1f} MB of media; first (cold) export {warm_s:.2f} s")
        runs: dict[str, list[float]] = {"ours": [], "plain": []}
        for r in range(args.repeats):
            order = ("ours", "plain") if r % 2 == 0 else ("plain", "ours")
            for side in order:
                out = workdir / f"{side}{r}"
                os.sync()  # neither side pays for the other's write-back
                if args.cold:  # both sides read the clips from disk, as a batch of 1M clips would
                    Path("/proc/sys/vm/drop_caches").write_text("3\n")
                seconds, size = (
                    ours(store_uri, out, options, executor) if side == "ours" else plain(media, out)
                )
                runs[side].append(seconds)
                print(f"run {r} {side:5}: {seconds:6.2f} s  {args.clips / seconds:7.1f} clips/s  "
                      f"{size / 1e6 / seconds:7.1f} MB/s written")  # fmt: skip
                if (side, r) != ("ours", 0):  # the first export's shards are read back below
                    shutil.rmtree(out)
        ours_s, plain_s = statistics.median(runs["ours"]), statistics.median(runs["plain"])
        print(
            f"median ours {ours_s:.2f} s ({args.clips / ours_s:.1f} clips/s, {total_mb / ours_s:.1f} MB/s), "
            f"plain tar {plain_s:.2f} s ({args.clips / plain_s:.1f} clips/s, {total_mb / plain_s:.1f} MB/s): "
            f"throughput ratio ours/plain = {plain_s / ours_s:.2f} (target >= 0.8)"
        )
        shards = sorted(str(p) for p in (workdir / "ours0" / BATCH).glob("*.tar"))
        reads = [read_back(shards, args.read_samples) for _ in range(2)]
        seconds = statistics.median(r[0] for r in reads)
        _, samples, frames = reads[-1]
        print(
            f"DataLoader (2 workers, webdataset + PyAV decode) over {len(shards)} shards: "
            f"{samples / seconds:.1f} samples/s, {frames / seconds:.0f} decoded frames/s "
            f"(median of 2 passes, {samples} samples, {frames} frames a pass)"
        )
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
