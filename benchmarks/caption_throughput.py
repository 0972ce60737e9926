"""Caption throughput (issue: model stages). Prints figures; not a test.

The demo VLM (a tiny random-weight Qwen2.5-VL: the real processor and generate path, a tiny network) on
windows of frames at the captioning key (2 fps, 252 px high): captions/s of CaptionGenerationStage through
RayExecutor vs the raw `generate` in one process with the same windows per call, in the same run; and the
time to set the stage up (model load). Speeds of real 3B-7B VLMs are set by their size: run this with
--model and --model-dir pointing at one to measure it.
Run: .venv/bin/python benchmarks/caption_throughput.py [--clips 16] [--frames 16] [--tokens 32]
"""

from __future__ import annotations

import argparse
import tempfile
import time

import numpy as np
import torch

from curator_core import Pipeline, RayExecutor, Resources
from curator_core.executors.ray import ensure_ray
from curator_core.models.transformers_models import VisionLanguageModel, write_demo_vlm
from curator_core.tasks import CaptionWindow, Clip, Video, VideoTask
from curator_core.video.captioning import CAPTION_FRAME_KEY, PROMPTS, CaptionGenerationStage


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--clips", type=int, default=16)
    parser.add_argument("--frames", type=int, default=16, help="frames per caption window")
    parser.add_argument("--tokens", type=int, default=32, help="max_new_tokens")
    parser.add_argument("--per-generate", type=int, default=8, help="windows per generate call")
    parser.add_argument("--cpus", type=int, default=2)
    parser.add_argument("--model", default=None, help="a model id in --model-dir (default: the demo VLM)")
    parser.add_argument("--model-dir", default=None)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    windows = rng.integers(0, 255, size=(args.clips, args.frames, 252, 448, 3), dtype=np.uint8)
    prompt = PROMPTS["default"]
    with tempfile.TemporaryDirectory() as tmp:
        directory = args.model_dir or tmp
        model_id = args.model or write_demo_vlm(directory)
        torch.set_num_threads(args.cpus)
        t0 = time.perf_counter()
        model = VisionLanguageModel.load(model_id, directory)
        load_s = time.perf_counter() - t0
        n = args.per_generate
        model.caption(list(windows[:n]), [prompt] * n, args.tokens, CAPTION_FRAME_KEY.fps)  # warm-up
        t0 = time.perf_counter()
        for start in range(0, args.clips, n):
            chunk = list(windows[start : start + n])
            model.caption(chunk, [prompt] * len(chunk), args.tokens, CAPTION_FRAME_KEY.fps)
        raw_cps = args.clips / (time.perf_counter() - t0)

        print(f"ray start-up: {ensure_ray(num_cpus=args.cpus):.2f} s")
        tasks = []
        for i, frames in enumerate(windows):
            clip = Clip(source="bench", span=(i, i + 1.0))
            clip.extracted_frames[CAPTION_FRAME_KEY] = frames
            clip.caption_windows = [CaptionWindow(0, len(frames), "default", prompt)]
            tasks.append(VideoTask(dataset_name="bench", data=Video(input_path="bench", clips=[clip])))
        stage = CaptionGenerationStage(
            model=model_id, model_dir=directory, max_new_tokens=args.tokens, windows_per_generate=n,
            batch_size=n, resources=Resources(cpus=float(args.cpus)),
        )  # fmt: skip
        t0 = time.perf_counter()
        result = Pipeline("caption", [stage]).execute(RayExecutor(), tasks)
        ray_s = time.perf_counter() - t0
        assert len(result.outputs) == len(tasks) and not result.failures
        stage_s = result.stage_stats["caption_generation"].process_time_s
        print(f"model load (stage setup), {model_id}: {load_s:.2f} s")
        print(
            f"windows: {args.clips} x {args.frames} frames of 448x252, {args.tokens} new tokens, {n} per generate"
        )
        print(f"raw generate, one process: {raw_cps:.2f} captions/s")
        print(f"CaptionGenerationStage via RayExecutor, whole run: {args.clips / ray_s:.2f} captions/s "
              f"({args.clips / ray_s / raw_cps:.2f}x raw; includes actor start and model load)")  # fmt: skip
        print(f"CaptionGenerationStage via RayExecutor, in-stage: {args.clips / stage_s:.2f} captions/s "
              f"({args.clips / stage_s / raw_cps:.2f}x raw)")  # fmt: skip


if __name__ == "__main__":
    main()
