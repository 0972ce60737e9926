"""Shot-boundary detection: one interface (frames or a path in, transitions out) and a CPU content detector.

Frame indices are 0-based indices of decoded frames in PTS order; every transition also carries PTS
seconds, which is what clip spans use.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass, field

import av
import numpy as np

from curator_core.video.io import VideoInputError, open_container, video_stream

logger = logging.getLogger(__name__)


class VideoDecodeError(Exception):
    """The video could not be decoded at all."""


@dataclass
class Transition:
    kind: str  # "hard" | "gradual"
    start_frame: int  # hard cut: the first frame of the new shot
    end_frame: int
    start_pts_s: float
    end_pts_s: float
    confidence: float

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class DetectionResult:
    transitions: list[Transition]
    num_frames: int
    duration_s: float
    pts_s: np.ndarray = field(repr=False)
    decode_error: str | None = None  # set when decoding stopped early (damaged stream)


def decode_small(
    uri: str, width: int = 64, height: int = 36
) -> tuple[np.ndarray, np.ndarray, float, str | None]:
    """All frames scaled down inside swscale to (N, height, width, 3) uint8, their PTS seconds, the end time
    of the last frame, and an error message if decoding stopped early."""
    frames: list[np.ndarray] = []
    pts: list[float] = []
    error = None
    try:
        with open_container(uri) as container:
            stream = video_stream(container, uri)
            stream.thread_type = "AUTO"
            tb = float(stream.time_base)
            try:
                for frame in container.decode(stream):
                    if frame.pts is None:
                        continue
                    frames.append(frame.to_ndarray(width=width, height=height, format="rgb24"))
                    pts.append(frame.pts * tb)
            except av.error.FFmpegError as exc:
                error = f"decoding stopped after {len(frames)} frames ({type(exc).__name__}: {exc})"
    except VideoInputError as exc:
        raise VideoDecodeError(str(exc)) from exc
    if not frames:
        raise VideoDecodeError(error or f"no decodable video frames: {uri}")
    order = np.argsort(np.asarray(pts), kind="stable")
    pts_arr = np.asarray(pts)[order]
    stack = np.stack([frames[i] for i in order])
    step = float(np.median(np.diff(pts_arr))) if len(pts_arr) > 1 else 0.0
    return stack, pts_arr, float(pts_arr[-1] + step), error


class ShotDetector(ABC):
    """Feed decoded frames (or a path), get transitions."""

    decode_width: int = 64
    decode_height: int = 36

    @abstractmethod
    def detect_frames(self, frames: np.ndarray, pts_s: np.ndarray) -> list[Transition]: ...

    def detect_path(self, uri: str) -> DetectionResult:
        frames, pts, end, error = decode_small(uri, self.decode_width, self.decode_height)
        return DetectionResult(self.detect_frames(frames, pts), len(frames), end, pts, error)


@dataclass
class ContentShotDetector(ShotDetector):
    """Hard cuts from a colour-histogram distance and a changed-pixel fraction, each judged against its
    local neighbourhood (so steady motion does not fire); dips to black or white as gradual transitions.

    threshold: minimum combined score (0-1) of a cut. ratio: how far a cut must stand above the median
    score of the `window` frames around it. min_shot_frames: shortest shot kept (frames).
    """

    threshold: float = 0.18
    ratio: float = 3.0
    window: int = 8
    min_shot_frames: int = 6
    dark_luma: float = 18.0
    bright_luma: float = 240.0

    def scores(self, frames: np.ndarray) -> np.ndarray:
        """score[i]: change between frame i-1 and frame i (score[0] = 0)."""
        small = frames.astype(np.int16)
        luma = (small[..., 0] * 77 + small[..., 1] * 150 + small[..., 2] * 29) >> 8
        n = len(frames)
        q = (small // 32).reshape(n, -1, 3)
        codes = q[..., 0] * 64 + q[..., 1] * 8 + q[..., 2]
        hists = np.stack([np.bincount(c, minlength=512) for c in codes]).astype(np.float32)
        hists /= hists.sum(axis=1, keepdims=True)
        out = np.zeros(n, np.float32)
        if n < 2:
            return out
        hist_d = 0.5 * np.abs(np.diff(hists, axis=0)).sum(axis=1)
        pix = np.abs(np.diff(luma, axis=0))
        changed = (pix > 16).mean(axis=(1, 2))
        mad = pix.mean(axis=(1, 2)) / 64.0
        out[1:] = np.maximum(hist_d, 0.5 * changed + 0.5 * np.minimum(mad, 1.0))
        return out

    def detect_frames(self, frames: np.ndarray, pts_s: np.ndarray) -> list[Transition]:
        n = len(frames)
        if n < 2:
            return []
        score = self.scores(frames)
        luma = frames.astype(np.float32).mean(axis=(1, 2, 3))
        extreme = (luma < self.dark_luma) | (luma > self.bright_luma)
        transitions = self._gradual(extreme, pts_s)
        inside = np.zeros(n, bool)
        for t in transitions:
            inside[max(0, t.start_frame - 1) : t.end_frame + 2] = True
        last_cut = -self.min_shot_frames
        for i in range(1, n):
            s = float(score[i])
            if s < self.threshold or inside[i]:
                continue
            lo, hi = max(1, i - self.window), min(n, i + self.window + 1)
            neighbours = np.concatenate([score[lo:i], score[i + 1 : hi]])
            local = float(np.median(neighbours)) if len(neighbours) else 0.0
            if s < self.ratio * local or s < float(score[lo:hi].max()):
                continue
            if i - last_cut < self.min_shot_frames:
                continue
            last_cut = i
            conf = min(1.0, s / (self.threshold * 2))
            transitions.append(Transition("hard", i, i, float(pts_s[i]), float(pts_s[i]), round(conf, 3)))
        return sorted(transitions, key=lambda t: t.start_frame)

    def _gradual(self, extreme: np.ndarray, pts_s: np.ndarray) -> list[Transition]:
        """Runs of black/white frames between content: fade out, (hold), fade in."""
        out: list[Transition] = []
        n = len(extreme)
        i = 0
        while i < n:
            if not extreme[i]:
                i += 1
                continue
            j = i
            while j + 1 < n and extreme[j + 1]:
                j += 1
            if i > 0 and j < n - 1:  # content on both sides: a transition, not a leader or tail
                out.append(Transition("gradual", i, j, float(pts_s[i]), float(pts_s[j]), 0.9))
            i = j + 1
        return out


DETECTORS = {"content": ContentShotDetector}
