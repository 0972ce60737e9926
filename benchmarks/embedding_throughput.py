"""Embedding throughput (issue: model stages). Prints figures; not a test.

ViT-B-32 architecture with random weights (speed does not depend on the weights), 224 px frames:
frames/s of ClipEmbeddingStage through RayExecutor vs the raw model forward pass in one process at the
same batch size, in the same run; and the time to set the stage up (model load).
Raw and stage runs alternate, medians of --repeats are compared.
Run: .venv/bin/python benchmarks/embedding_throughput.py [--frames 256] [--batch 32] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from curator_core import Pipeline, RayExecutor, Resources
from curator_core.executors.ray import ensure_ray
from curator_core.models.open_clip_model import CHECKPOINT, OpenClipModel
from curator_core.models.registry import model_path
from curator_core.tasks import Clip, FrameKey, Video, VideoTask
from curator_core.video.embedding import ClipEmbeddingStage

KEY = FrameKey(fps=1.0, height=224, width=224)


def write_vit_b_32(directory: Path) -> str:
    import open_clip
    from safetensors.torch import save_file

    model_id = "open_clip/ViT-B-32-random"
    path = model_path(model_id, directory)
    path.mkdir(parents=True)
    model = open_clip.create_model("ViT-B-32")
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path / CHECKPOINT))
    (path / "curator.json").write_text(
        json.dumps({"family": "open_clip", "arch": "ViT-B-32", "random": True})
    )
    return model_id


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--frames", type=int, default=256)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--cpus", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 255, size=(args.frames, 224, 224, 3), dtype=np.uint8)
    with tempfile.TemporaryDirectory() as tmp:
        model_id = write_vit_b_32(Path(tmp))
        torch.set_num_threads(args.cpus)
        t0 = time.perf_counter()
        model = OpenClipModel.load(model_id, tmp)
        load_s = time.perf_counter() - t0
        model.encode_images(frames[: args.batch], args.batch)  # warm-up

        def raw() -> float:
            t0 = time.perf_counter()
            model.encode_images(frames, args.batch)
            return args.frames / (time.perf_counter() - t0)

        raw_alone = raw()
        print(f"ray start-up: {ensure_ray(num_cpus=args.cpus):.2f} s")
        per_clip = args.batch  # one clip holds one forward batch of frames
        tasks = []
        for i in range(args.frames // per_clip):
            clip = Clip(source="bench", span=(i, i + 1.0))
            clip.extracted_frames[KEY] = frames[i * per_clip : (i + 1) * per_clip]
            tasks.append(VideoTask(dataset_name="bench", data=Video(input_path="bench", clips=[clip])))
        stage = ClipEmbeddingStage(
            model=model_id, model_dir=tmp, frame_key=KEY, frames_per_forward=args.batch, batch_size=1,
            resources=Resources(cpus=float(args.cpus)),
        )  # fmt: skip
        raw_fps, stage_fps, run_fps = [], [], []
        for _ in range(args.repeats):  # alternate, so that the machine's drift hits both alike
            raw_fps.append(raw())
            t0 = time.perf_counter()
            result = Pipeline("embed", [stage]).execute(RayExecutor(), tasks)
            run_fps.append(args.frames / (time.perf_counter() - t0))
            assert len(result.outputs) == len(tasks) and not result.failures
            stage_fps.append(args.frames / result.stage_stats["clip_embedding"].process_time_s)
        raw_m, stage_m, run_m = (statistics.median(v) for v in (raw_fps, stage_fps, run_fps))
        print(f"model load (stage setup), ViT-B-32: {load_s:.2f} s")
        print(
            f"{args.frames} frames of 224 px, batch {args.batch}, {args.cpus} CPUs, medians of {args.repeats}:"
        )
        print(f"  raw forward, one process, before Ray started: {raw_alone:.1f} frames/s (one run)")
        print(f"  raw forward, one process, local Ray cluster up: {raw_m:.1f} frames/s")
        print(f"  ClipEmbeddingStage via RayExecutor, in-stage:  {stage_m:.1f} frames/s -> {stage_m / raw_m:.2f}x raw "
              f"(target >= 0.9; {stage_m / raw_alone:.2f}x the raw run before Ray started)")  # fmt: skip
        print(
            f"  ClipEmbeddingStage via RayExecutor, whole run: {run_m:.1f} frames/s -> {run_m / raw_m:.2f}x raw "
            "(includes the actor's start and model load)"
        )


if __name__ == "__main__":
    main()
