"""Motion scores per clip, from the codec's motion vectors (free with the decode) or frame differences.

Units: motion is the mean displacement per frame as a fraction of the frame diagonal (0.01 = 1% of the
diagonal per frame). `motion_global_mean` averages over the whole frame and clip; `motion_patch_min` is the
smallest per-patch mean over an 8x8 grid (low when part of the frame never moves, e.g. a static overlay or a
slide). The frame-difference fallback (intra-only codecs, or clips whose encoder wrote no vectors) uses the
mean absolute luma change per frame in [0, 1] in the same two score names, marked by `motion_method`.
"""

from __future__ import annotations

import gc
import io
import math
from contextlib import contextmanager
from dataclasses import dataclass
from typing import ClassVar

import av
import numpy as np

from curator_core.resources import Resources
from curator_core.tasks import Clip, VideoTask
from curator_core.video.clip_stage import ClipStage, filter_clips

GLOBAL = "motion_global_mean"
PATCH_MIN = "motion_patch_min"
GRID = 8
# PyAV's side data holds its frame and the frame holds its side data, so every frame whose motion vectors
# were read stays alive (with its decoded picture, 3 MB at 1080p) until a full collection: PyAV allocates
# each frame before the decoder has one for it, so the frame is old by the time the cycle forms, and young
# collections never free it. A busy worker seldom runs a full collection (one reached 1 GiB on 30 clips),
# and one costs 0.3 s in a worker with torch imported (430,000 objects; every 30 frames, 1.9 s of a 10 s
# clip's scoring). So scoring freezes what the process held before it, and collects fully after each
# packet: only what scoring allocated is scanned, and no frame outlives its packet.


@contextmanager
def _only_new_objects_collected():
    """Collections inside scan only the objects allocated inside (the rest of the heap is frozen)."""
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def motion_scores(data: bytes) -> tuple[float, float, str]:
    """(global mean, per-patch minimum, method) for one encoded clip."""
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.video[0]
        stream.codec_context.options = {"flags2": "+export_mvs"}
        # One decoder thread: with frame threads, which frames carry exported vectors varies from run to
        # run (scores moved by up to 1.7 %); the same clip must always score the same.
        stream.thread_count = 1
        width, height = stream.codec_context.width, stream.codec_context.height
        diag = math.hypot(width, height)
        grid_sum = np.zeros((GRID, GRID))
        grid_count = np.zeros((GRID, GRID))
        total, frames_with_mvs = 0.0, 0
        diffs: list[np.ndarray] = []
        prev = None
        with _only_new_objects_collected():
            for packet in container.demux(stream):
                for frame in packet.decode():
                    mvs = frame.side_data.get("MOTION_VECTORS")
                    if mvs is not None:
                        a = mvs.to_ndarray()
                        if len(a):
                            scale = np.maximum(a["motion_scale"], 1).astype(np.float64)
                            mag = np.hypot(a["motion_x"] / scale, a["motion_y"] / scale) / diag
                            gx = np.clip(a["dst_x"].astype(int) * GRID // max(1, width), 0, GRID - 1)
                            gy = np.clip(a["dst_y"].astype(int) * GRID // max(1, height), 0, GRID - 1)
                            np.add.at(grid_sum, (gy, gx), mag)
                            np.add.at(grid_count, (gy, gx), 1)
                            total += float(mag.mean())
                            frames_with_mvs += 1
                            continue
                    if frame.key_frame and frames_with_mvs:
                        continue  # keyframes carry no vectors; they do not mean "no motion"
                    luma = frame.to_ndarray(width=64, height=36, format="gray").astype(np.float32) / 255.0
                    if prev is not None:
                        diffs.append(np.abs(luma - prev))
                    prev = luma
                frame = mvs = a = None  # noqa: F841 -- nothing may hold a frame while it is collected
                gc.collect()
    if frames_with_mvs:
        patch = np.where(grid_count > 0, grid_sum / np.maximum(grid_count, 1), 0.0)
        return total / frames_with_mvs, float(patch.min()), "motion_vectors"
    if not diffs:
        return 0.0, 0.0, "frame_difference"
    stack = np.stack(diffs)
    h, w = stack.shape[1:]
    patches = stack[:, : h // GRID * GRID, : w // GRID * GRID].reshape(
        len(stack), GRID, h // GRID, GRID, w // GRID
    )
    return float(stack.mean()), float(patches.mean(axis=(0, 2, 4)).min()), "frame_difference"


def score(clip: Clip) -> None:
    """Adds the motion scores to a clip once (re-scoring a scored clip is a no-op)."""
    if GLOBAL in clip.scores:
        return
    global_mean, patch_min, method = motion_scores(clip.encoded_data)
    clip.scores[GLOBAL] = global_mean
    clip.scores[PATCH_MIN] = patch_min
    clip.metadata["motion_method"] = method


@dataclass
class MotionScoringStage(ClipStage):
    """Adds `motion_global_mean` and `motion_patch_min` to every clip's scores."""

    name: str = "motion_scoring"
    resources: Resources = Resources(cpus=1.0)
    error_key: ClassVar[str] = "motion"

    def process_clip(self, clip: Clip) -> None:
        score(clip)


@dataclass
class MotionFilterStage(MotionScoringStage):
    """Moves clips with too little motion to `filtered_clips` (scores them first if needed).

    global_threshold: minimum `motion_global_mean` (fraction of the diagonal per frame; 0.0001 is about a
    fifth of a pixel per frame at 1080p, i.e. all but still). patch_threshold: minimum `motion_patch_min`
    (same unit; 0 disables). score_only: keep every clip and only record the decision in
    `clip.metadata["motion_pass"]`. Clips that could not be scored are kept, with the reason in their errors.
    """

    global_threshold: float = 0.0001
    patch_threshold: float = 0.0
    score_only: bool = False
    name: str = "motion_filter"

    def outputs(self) -> tuple[list[str], list[str]]:
        return [], ["clips", "filtered_clips"]

    def process(self, task: VideoTask) -> VideoTask:
        super().process(task)  # scores every clip
        for clip in task.data.clips:
            if GLOBAL in clip.scores:
                clip.metadata["motion_pass"] = (
                    clip.scores[GLOBAL] >= self.global_threshold
                    and clip.scores[PATCH_MIN] >= self.patch_threshold
                )
        # Clips that could not be scored stay, with the reason in their errors.
        filter_clips(task.data, lambda c: self.score_only or c.metadata.get("motion_pass", True), self.name)
        return task
