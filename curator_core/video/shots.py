"""Shot-boundary detection: one interface (frames or a path in, transitions out), a CPU content detector,
TransNetV2, and the hybrid of the two (the content rules, TransNetV2 judging their near misses).

Frame indices are 0-based indices of decoded frames in PTS order; every transition also carries PTS
seconds, which is what clip spans use.
"""

from __future__ import annotations

import functools
import heapq
import logging
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field, replace
from typing import Any, ClassVar

import av
import numpy as np

from curator_core.video.io import Damage, VideoInputError, open_container, video_stream

logger = logging.getLogger(__name__)


class VideoDecodeError(Exception):
    """The video could not be decoded at all."""


@dataclass
class Transition:
    kind: str  # "hard" | "gradual" | "gap" (frames lost to damage; splitting keeps clips off it)
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
    decode_error: str | None = None  # what damage cost, in words (None: the stream decoded whole)
    gaps: list[tuple[float, float]] = field(default_factory=list)  # frames lost: (from, to) PTS s
    damage: Damage | None = field(default=None, repr=False)


@dataclass
class SmallFrames:
    """Decoded frames shrunk for detection: luma (N, h, w) and chroma (N, h/2, w/2) as float32 0-255,
    their PTS seconds in PTS order, the end time of the last frame, and why decoding stopped early."""

    y: np.ndarray
    u: np.ndarray
    v: np.ndarray
    pts_s: np.ndarray
    end_s: float
    error: str | None = None

    @functools.cached_property
    def luma_mean(self) -> np.ndarray:
        """Each frame's mean luma (several rules read it: computed once)."""
        return self.y.mean(axis=(1, 2))

    @functools.cached_property
    def luma_spread(self) -> np.ndarray:
        """Each frame's luma standard deviation."""
        return self.y.std(axis=(1, 2))

    def half_rgb(self, start: int = 0, stop: int | None = None) -> np.ndarray:
        """Frames [start, stop) as (N, h/2, w/2, 3) uint8 RGB: luma averaged 2x2 to the chroma's size,
        limited-range BT.601 as swscale converts (96x54 planes give TransNetV2's 48x27 input)."""
        y = self.y[start:stop]
        n, h, w = len(y), self.u.shape[1], self.u.shape[2]
        luma = 1.164 * (y[:, : 2 * h, : 2 * w].reshape(n, h, 2, w, 2).mean(axis=(2, 4)) - 16.0)
        u, v = self.u[start:stop] - 128.0, self.v[start:stop] - 128.0
        rgb = np.stack([luma + 1.596 * v, luma - 0.392 * u - 0.813 * v, luma + 2.017 * u], axis=-1)
        return np.clip(rgb + 0.5, 0, 255).astype(np.uint8)

    @classmethod
    def from_rgb(cls, frames: np.ndarray, pts_s: np.ndarray) -> SmallFrames:
        """From (N, H, W, 3) uint8 RGB frames (BT.601 to YUV; chroma averaged 2x2)."""
        rgb = frames.astype(np.float32)
        r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
        y = 0.299 * r + 0.587 * g + 0.114 * b
        u = 128 + (b - y) * 0.564
        v = 128 + (r - y) * 0.713
        h, w = y.shape[1] // 2 * 2, y.shape[2] // 2 * 2
        half = lambda p: p[:, :h, :w].reshape(len(p), h // 2, 2, w // 2, 2).mean(axis=(2, 4))  # noqa: E731
        pts = np.asarray(pts_s, np.float64)
        return cls(y, half(u), half(v), pts, _end_time(pts))


def _shrink(plane: np.ndarray, h: int, w: int) -> np.ndarray:
    """Average a plane down to (h, w): sample a 2h x 2w grid spread over the whole plane, then 2x2 means."""
    rows, cols = _grid(plane.shape[0], 2 * h), _grid(plane.shape[1], 2 * w)
    return plane[rows][:, cols].reshape(h, 2, w, 2).mean(axis=(1, 3), dtype=np.float32)


@functools.lru_cache(maxsize=64)
def _grid(size: int, points: int) -> np.ndarray:
    return ((np.arange(points) + 0.5) * size / points).astype(np.intp)


def _plane(frame: av.VideoFrame, index: int, rows: int, cols: int) -> np.ndarray:
    plane = frame.planes[index]
    return np.frombuffer(plane, np.uint8).reshape(plane.height, plane.line_size)[:rows, :cols]


def _end_time(pts: np.ndarray) -> float:
    """The end of the last frame: its PTS plus the median frame duration."""
    if not len(pts):
        return 0.0
    return float(pts[-1] + (np.median(np.diff(pts)) if len(pts) > 1 else 0.0))


REORDER_FRAMES = 8  # frames held back to emit PTS order when a decoder hands them out slightly out of order


def iter_frames(
    uri: str,
    convert: Callable[[av.VideoFrame], Any],
    damage: Damage,
    threads: int = 0,
    options: dict | None = None,
) -> Iterator[tuple[Any, float]]:
    """`(convert(frame), PTS seconds)` of every decodable frame, in PTS order, streaming. Packets the
    decoder refuses are skipped and counted in `damage` (decoding resumes at the next decodable frame);
    a container that cannot be read any further ends the stream there (`damage.first_error` says why)."""
    try:
        with open_container(uri) as container:
            stream = video_stream(container, uri)
            if threads != 1:
                stream.thread_type = "AUTO"
            stream.codec_context.thread_count = threads
            if options:
                stream.codec_context.options = options
            tb = float(stream.time_base)
            held: list[tuple[float, int, Any]] = []
            order = 0
            try:
                for packet in container.demux(stream):
                    for frame in damage.decode(packet):
                        if frame.pts is None:
                            continue
                        order += 1
                        damage.frame_at(frame.pts * tb)  # in decode order: right after any damage
                        heapq.heappush(held, (frame.pts * tb, order, convert(frame)))
                        if len(held) > REORDER_FRAMES:
                            t, _, item = heapq.heappop(held)
                            yield item, t
            except av.error.FFmpegError as exc:  # the demuxer itself gave up: nothing more can be read
                damage.stopped = f"reading stopped ({type(exc).__name__}: {exc})"
            while held:
                t, _, item = heapq.heappop(held)
                yield item, t
    except VideoInputError as exc:
        raise VideoDecodeError(exc.reason) from exc


def _decode(
    uri: str, convert: Callable[[av.VideoFrame], Any], threads: int = 0, options: dict | None = None
) -> tuple[list, np.ndarray, float, Damage]:
    """Every decodable frame at once (for detectors that need the whole video): converted frames,
    their PTS seconds, the end time and what was skipped."""
    damage = Damage()
    out, pts = [], []
    for item, t in iter_frames(uri, convert, damage, threads, options):
        out.append(item)
        pts.append(t)
    if not out:
        raise VideoDecodeError(damage.summary(0) or "no decodable video frames")
    pts_arr = np.asarray(pts)
    return out, pts_arr, _end_time(pts_arr), damage


def _small_planes(width: int, height: int) -> Callable[[av.VideoFrame], tuple]:
    """A frame's YUV planes averaged down to (height, width) luma and half that chroma, float32."""

    def planes(frame: av.VideoFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if frame.format.name not in ("yuv420p", "yuvj420p"):
            frame = frame.reformat(format="yuv420p")
        rows, cols = frame.height, frame.width
        chroma = ((rows + 1) // 2, (cols + 1) // 2)
        return (
            _shrink(_plane(frame, 0, rows, cols), height, width),
            _shrink(_plane(frame, 1, *chroma), height // 2, width // 2),
            _shrink(_plane(frame, 2, *chroma), height // 2, width // 2),
        )

    return planes


SMALL_DECODE_OPTIONS = {"skip_loop_filter": "all"}  # cuts do not need the in-loop deblocking filter


def decode_small(uri: str, width: int = 96, height: int = 54, threads: int = 1) -> SmallFrames:
    """Decode every frame, cheaply: the in-loop deblocking filter is skipped and the YUV planes are
    averaged down with numpy (no RGB conversion, no swscale at full size). One decoder thread by default:
    the least CPU per frame (measured 5.0 vs 6.5 CPU s on 1080p H.264); a pipeline runs many videos side
    by side. `threads=0` lets FFmpeg pick. Holds the whole video: detectors stream with `iter_frames`."""
    frames, pts, end, damage = _decode(uri, _small_planes(width, height), threads, SMALL_DECODE_OPTIONS)
    y, u, v = (np.stack(p) for p in zip(*frames, strict=True))
    return SmallFrames(y, u, v, pts, end, damage.summary(len(pts)))


def decode_rgb(uri: str, width: int, height: int) -> tuple[np.ndarray, np.ndarray, float, Damage]:
    """Every frame as (N, height, width, 3) uint8 RGB (scaled by swscale), PTS seconds, end time, damage."""
    frames, pts, end, damage = _decode(
        uri, lambda frame: frame.to_ndarray(width=width, height=height, format="rgb24")
    )
    return np.stack(frames), pts, end, damage


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """[first, last] index of every run of True values."""
    padded = np.concatenate([[False], np.asarray(mask, bool), [False]])
    edges = np.flatnonzero(padded[1:] != padded[:-1])
    return [(int(a), int(b) - 1) for a, b in zip(edges[::2], edges[1::2], strict=True)]


class ShotDetector(ABC):
    """Feed decoded frames (or a path), get transitions. A path is decoded by PyAV to RGB frames of
    `decode_size` (width, height) unless the detector has a cheaper way."""

    decode_size: ClassVar[tuple[int, int]] = (96, 54)

    @abstractmethod
    def detect_frames(self, frames: np.ndarray, pts_s: np.ndarray) -> list[Transition]:
        """(N, H, W, 3) uint8 RGB frames and their PTS seconds."""

    def use_cpus(self, cpus: float) -> None:
        """Called once per worker with the CPUs it was given (a detector with a thread pool sizes it)."""
        return None

    def detect_path(self, uri: str) -> DetectionResult:
        frames, pts, end, damage = decode_rgb(uri, *self.decode_size)
        return DetectionResult(
            self.detect_frames(frames, pts),
            len(frames),
            end,
            pts,
            damage.summary(len(pts)),
            damage.gaps,
            damage,
        )


@dataclass
class ContentShotDetector(ShotDetector):
    """A CPU detector for hard cuts, fades and dissolves on real footage. Units: frame differences are
    mean absolute differences on a 0-1 scale; histogram distances are L1/2 (0-1).

    Hard cuts: score = max(4 x mean |dYUV|, YUV histogram distance) between consecutive frames. A cut is a
    local maximum over +-`window` frames that stands `ratio` times above the busier side's median (so
    motion does not fire) plus a margin: `strong` in moving content, `floor` where the neighbourhood is
    static (below `static_level`: slides, screen recordings), which finds low-contrast cuts. It must
    also persist: `k` frames later the new shot still differs from the old one `contrast` times more than
    from itself (a passing object or a flash does not). Shots shorter than `min_shot_frames` are merged.

    Gradual transitions: runs of flat black/white frames between content, widened over the luminance
    ramps on both sides (fades, cut to black); and dissolves, where a frame is a linear mix of the frames
    L before and after it (L in `dissolve_lengths`): residual below `mix_residual` of their difference,
    each changed pixel part-way between them, over at least `dissolve_coverage` of the frame.
    """

    window: int = 12
    ratio: float = 3.0
    strong: float = 0.25
    floor: float = 0.025
    static_level: float = 0.002
    k: int = 4
    contrast: float = 2.0
    sure_persistence: float = 6.0  # a change this persistent needs only the `floor` margin, even in motion
    normal_spread: float = 40.0  # luma standard deviation of ordinary footage (0-255)
    max_gain: float = 4.0
    min_shot_frames: int = 6
    dark_luma: float = 20.0
    bright_luma: float = 232.0  # limited-range white is 235
    flat_std: float = 12.0
    dissolve_lengths: tuple[int, ...] = (6, 10, 15)
    dissolve_min_change: float = 0.06
    mix_residual: float = 0.2
    mixed_fraction: float = 0.85
    dissolve_coverage: float = 0.4
    # Frames decided per window when streaming a file (memory, not results): a window of 1024 + 2 x 192
    # frames at 96x54 holds 44 MB of planes and the detection pass a few times that, the same for any video
    # longer than 47 s at 30 fps (benchmarks/worker_memory.py, 10-minute 1080p input: the detecting worker
    # peaked at 0.49 GiB with 2048, 0.33 GiB with 1024).
    chunk_frames: int = 1024
    context_frames: int = 192  # frames seen on each side of a window: more than any rule looks across

    def scores(self, f: SmallFrames) -> np.ndarray:
        """score[i]: change between frame i-1 and frame i (score[0] = 0)."""
        n = len(f.y)
        out = np.zeros(n, np.float32)
        if n < 2:
            return out
        diff = (
            np.abs(np.diff(f.y, axis=0)).mean(axis=(1, 2))
            + 0.5 * np.abs(np.diff(f.u, axis=0)).mean(axis=(1, 2))
            + 0.5 * np.abs(np.diff(f.v, axis=0)).mean(axis=(1, 2))
        ) / 255.0
        luma = np.clip(f.y // 32, 0, 7).astype(np.int64).reshape(n, -1)
        chroma = (np.clip(f.u // 64, 0, 3) * 4 + np.clip(f.v // 64, 0, 3)).astype(np.int64).reshape(n, -1)
        hist_y = _histograms(luma, 8)
        hist_c = _histograms(chroma, 16)
        hist = 0.25 * (np.abs(np.diff(hist_y, axis=0)).sum(1) + np.abs(np.diff(hist_c, axis=0)).sum(1))
        # Dark and low-contrast shots change by few grey levels at a cut: the pixel term is scaled up by
        # how far the pair's luma spread falls below that of ordinary footage (at most `max_gain` times).
        spread = f.luma_spread
        pair = np.maximum(0.5 * (spread[1:] + spread[:-1]), 1.0)
        gain = np.clip(self.normal_spread / pair, 1.0, self.max_gain)
        out[1:] = np.maximum(4 * diff * gain, hist)
        return out

    def detect_frames(self, frames: np.ndarray, pts_s: np.ndarray) -> list[Transition]:
        """Any frame size works; about 96x54 is plenty."""
        return self.detect_small(SmallFrames.from_rgb(frames, pts_s))

    def detect_path(self, uri: str) -> DetectionResult:
        """Streams: frames are decoded into a window of `chunk_frames` plus `context_frames` on each side,
        and each window decides the transitions that start in its middle part, so memory does not grow
        with the video's length and the result equals a pass over the whole video (a flat black run
        longer than the context is the one thing a window cannot see whole)."""
        damage = Damage()
        convert = _small_planes(*self.decode_size)
        frames = iter_frames(uri, convert, damage, 1, SMALL_DECODE_OPTIONS)
        window: list[tuple] = []  # (y, u, v) of frames [offset, offset + len(window))
        pts: list[float] = []  # every frame's PTS: 8 bytes a frame
        offset = decided = 0  # transitions starting before `decided` are final
        found: list[Transition] = []

        def decide(final: bool) -> None:
            nonlocal offset, decided, window
            if len(window) < 2:
                return
            ys, us, vs = (np.stack(p) for p in zip(*window, strict=True))
            times = np.asarray(pts[offset:], np.float64)
            small = SmallFrames(ys, us, vs, times, _end_time(times))
            upto = offset + len(window) - (0 if final else self.context_frames)
            for t in self.detect_small(small, at_start=offset == 0, at_end=final):
                if decided <= t.start_frame + offset < upto:
                    found.append(
                        replace(t, start_frame=t.start_frame + offset, end_frame=t.end_frame + offset)
                    )
            decided = upto
            keep_from = max(0, decided - self.context_frames - offset)
            window = window[keep_from:]
            offset += keep_from

        for planes, t in frames:
            window.append(planes)
            pts.append(t)
            if len(window) >= self.chunk_frames + 2 * self.context_frames:
                decide(final=False)
        decide(final=True)
        if not pts:
            raise VideoDecodeError(damage.summary(0) or "no decodable video frames")
        times = np.asarray(pts)
        transitions = _min_spacing(sorted(found, key=lambda t: t.start_frame), self.min_shot_frames)
        return DetectionResult(
            transitions, len(times), _end_time(times), times, damage.summary(len(times)), damage.gaps, damage
        )

    def detect_small(self, f: SmallFrames, at_start: bool = True, at_end: bool = True) -> list[Transition]:
        """Transitions in these frames. `at_start` / `at_end`: whether they begin / end the video (a
        flat run touching the edge of a window inside the video is no leader or tail fade)."""
        if len(f.y) < 2:
            return []
        score, extreme = self.scores(f), self._extreme(f)
        gradual = self._gradual(f, score, extreme, at_start, at_end)
        return self._transitions(f, score, extreme, gradual)

    def _gradual(
        self, f: SmallFrames, score: np.ndarray, extreme: np.ndarray, at_start: bool, at_end: bool
    ) -> list[list]:
        """[first, last, confidence] of each fade and dissolve, before hard cuts split them."""
        gradual = self._fades(f, extreme, at_start, at_end)
        for a, b, conf in self._dissolves(f, score, extreme, at_start, at_end):
            a, b = _widen_over_ramps(f.luma_mean, a, b)
            if not any(a <= g[1] and b >= g[0] for g in gradual):
                gradual.append([a, b, conf])
        return _merge_touching(gradual, f.luma_spread < self.flat_std)

    def _transitions(
        self, f: SmallFrames, score: np.ndarray, extreme: np.ndarray, gradual: list[list]
    ) -> list[Transition]:
        """Hard cuts found among the gradual spans, which they end or start; the spans left over."""
        n = len(score)
        busy = np.zeros(n, bool)  # frames of gradual transitions: no measure of a cut's neighbourhood
        for a, b, _ in gradual:
            busy[max(0, a - 1) : b + 2] = True
        mean = f.luma_mean  # a fade cut short reaches nearly black/white, flat or not quite
        dim = extreme | (
            ((mean < 2 * self.dark_luma) | (mean > self.bright_luma - 16)) & (f.luma_spread < self.flat_std)
        )
        hard: list[tuple[int, float]] = []
        last = -self.min_shot_frames
        for i in range(1, n):
            strength = self._cut_strength(f, score, i, busy)
            if strength is None:
                continue
            into = [g for g in gradual if g[0] - 2 <= i <= g[1] + 2]
            if into and (dim[i] or dim[i - 1]):  # a cut to or from (nearly) black/white: part of the fade
                into[0][0], into[0][1] = min(into[0][0], i), max(into[0][1], i)
                continue
            if i - last < self.min_shot_frames:
                continue
            last = i
            hard.append((i, strength))
            for g in into:  # a cut between content shots is its own transition: the span ends or starts there
                if i - g[0] <= g[1] - i:
                    g[0] = max(g[0], i + 1)
                else:
                    g[1] = min(g[1], i - 1)
        gradual = [g for g in gradual if g[1] - g[0] >= 2]
        pts = f.pts_s
        out = [Transition("hard", i, i, float(pts[i]), float(pts[i]), round(c, 3)) for i, c in hard]
        out += [Transition("gradual", a, b, float(pts[a]), float(pts[b]), round(c, 3)) for a, b, c in gradual]
        return sorted(out, key=lambda t: t.start_frame)

    def _cut_strength(self, f: SmallFrames, score: np.ndarray, i: int, busy: np.ndarray) -> float | None:
        """Confidence of a hard cut at frame i, or None. `busy` marks frames of gradual transitions,
        left out of the neighbourhood's level so that a cut just before or after one still stands out."""
        n = len(score)
        s = float(score[i])
        near = max(1, self.min_shot_frames - 1)  # the strongest change among close neighbours only:
        if s <= 0 or s < score[max(1, i - near) : i + near + 1].max():  # short shots keep their cuts
            return None
        lo, hi = max(1, i - self.window), min(n, i + self.window + 1)
        side_before, side_after = score[lo:i][~busy[lo:i]], score[i + 1 : hi][~busy[i + 1 : hi]]
        before = float(np.median(side_before)) if len(side_before) else 0.0
        after = float(np.median(side_after)) if len(side_after) else 0.0
        level = max(before, after)
        ahead, back = min(n - 1, i + self.k), max(0, i - 1 - self.k)
        old_to_new, new_to_old = _distance(f, i - 1, ahead), _distance(f, back, i)  # across the cut, k apart
        forward = old_to_new / (_distance(f, i, ahead) + 1e-4)
        backward = new_to_old / (_distance(f, back, i - 1) + 1e-4)
        persistence = min(forward, backward)
        if level > 4 * min(before, after) + 0.02:
            # One side moves far more than the other: its motion over k frames hides how the shots differ,
            # so the quiet side's ratio decides, and neither side may come back to the other shot (a flash).
            back_again = min(old_to_new, new_to_old) / (_distance(f, i - 1, i) + 1e-4)
            persistence = (forward if after < before else backward) if back_again >= 0.5 else 0.0
        if persistence < self.contrast:
            return None
        sure = level <= self.static_level or persistence >= self.sure_persistence
        margin = self.floor if sure else self.strong
        if s < self.ratio * level + margin:
            return None
        return min(1.0, 0.5 * s / (self.ratio * level + margin) + 0.1 * min(persistence, 5.0))

    def _extreme(self, f: SmallFrames) -> np.ndarray:
        mean = f.luma_mean
        return ((mean < self.dark_luma) | (mean > self.bright_luma)) & (f.luma_spread < self.flat_std)

    def _fades(self, f: SmallFrames, extreme: np.ndarray, at_start: bool, at_end: bool) -> list[list]:
        """Flat black/white runs with content on both sides, widened over the luminance ramps."""
        mean = f.luma_mean
        n = len(extreme)
        out: list[list] = []
        for i, j in _runs(extreme):
            if (i == 0 and at_start) or (j == n - 1 and at_end):  # a leader or tail fade: no transition
                continue
            sign = 1.0 if mean[i] < 128 else -1.0  # towards black: luma falls; towards white: rises
            a = i
            while a > 1 and sign * (mean[a - 2] - mean[a - 1]) > 0.5:
                a -= 1
            b = j
            while b < n - 2 and sign * (mean[b + 2] - mean[b + 1]) > 0.5:
                b += 1
            out.append([a - 1 if a < i else i, b + 1 if b > j else j, 0.9])
        return out

    def _dissolves(
        self, f: SmallFrames, score: np.ndarray, extreme: np.ndarray, at_start: bool, at_end: bool
    ) -> list[tuple[int, int, float]]:
        n = len(f.y)
        y = f.y / 255.0
        hit = np.zeros(n, bool)
        for length in self.dissolve_lengths:
            for c in range(length, n - length):
                a, b, mid = y[c - length], y[c + length], y[c]
                change = float(np.abs(a - b).mean())
                if change < self.dissolve_min_change or extreme[c - length] or extreme[c + length]:
                    continue
                if float(np.abs(mid - 0.5 * (a + b)).mean()) > self.mix_residual * change:
                    continue
                if score[c - length + 1 : c + length + 1].max() > 2 * change:  # one frame carries it: a cut
                    continue
                changed = np.abs(b - a) > 20 / 255
                if changed.mean() < self.dissolve_coverage:
                    continue
                alpha = (mid[changed] - a[changed]) / (b[changed] - a[changed])
                if ((alpha > 0.2) & (alpha < 0.8)).mean() < self.mixed_fraction:
                    continue
                hit[c - length // 2 : c + length // 2 + 1] = True
        # A mix into black/white that runs to the end (or comes out of it at the start) is a tail or
        # leader fade, not a transition between two shots.
        reach = max(self.dissolve_lengths)
        tail = n - np.argmin(extreme[::-1]) if extreme[-1] and at_end else n + reach + 1
        lead = np.argmin(extreme) if extreme[0] and at_start else -reach - 1
        return [(i, j, 0.8) for i, j in _runs(hit) if j + reach < tail and i - reach > lead]


def _widen_over_ramps(mean: np.ndarray, a: int, b: int) -> tuple[int, int]:
    """A dissolve's span [a, b] grown over the luma ramp that goes on into near black or white at either
    end: a fade out cut short by a cut is found as a mix, but ends where the ramp does."""
    n = len(mean)
    while b + 1 < n and (
        (mean[b + 1] < mean[b] - 0.5 and mean[b + 1] < 64)
        or (mean[b + 1] > mean[b] + 0.5 and mean[b + 1] > 192)
    ):
        b += 1
    while a > 0 and (
        (mean[a - 1] < mean[a] - 0.5 and mean[a - 1] < 64)
        or (mean[a - 1] > mean[a] + 0.5 and mean[a - 1] > 192)
    ):
        a -= 1
    return a, b


def _merge_touching(spans: list[list], flat: np.ndarray) -> list[list]:
    """Gradual spans that overlap, are at most 2 frames apart, or have at most 6 flat frames between them
    are one transition: a mix into white found as a dissolve and its flat run found as a fade, or a dip
    to white that never holds, found as a dissolve into it and another out of it."""
    out: list[list] = []
    for a, b, conf in sorted(spans):
        if out and (a <= out[-1][1] + 3 or (a <= out[-1][1] + 7 and bool(flat[out[-1][1] + 1 : a].all()))):
            out[-1][1], out[-1][2] = max(out[-1][1], b), max(out[-1][2], conf)
        else:
            out.append([a, b, conf])
    return out


def _min_spacing(transitions: list[Transition], min_frames: int) -> list[Transition]:
    """Hard cuts closer than `min_frames` to the one before are dropped (windows decide each alone)."""
    out: list[Transition] = []
    last = -min_frames
    for t in transitions:
        if t.kind == "hard":
            if t.start_frame - last < min_frames:
                continue
            last = t.start_frame
        out.append(t)
    return out


def _histograms(codes: np.ndarray, bins: int) -> np.ndarray:
    n = len(codes)
    offsets = (np.arange(n) * bins)[:, None]
    counts = np.bincount((codes + offsets).ravel(), minlength=n * bins).reshape(n, bins)
    return counts / codes.shape[1]


def _distance(f: SmallFrames, a: int, b: int) -> float:
    """Mean absolute YUV difference of two frames, 0-1."""
    return (
        float(
            np.abs(f.y[a] - f.y[b]).mean()
            + 0.5 * (np.abs(f.u[a] - f.u[b]).mean() + np.abs(f.v[a] - f.v[b]).mean())
        )
        / 255.0
    )


@dataclass
class TransNetV2Detector(ShotDetector):
    """TransNetV2 (optional extra `transnet`) on 48x27 frames decoded by PyAV, CPU or GPU. Runs of frames
    whose transition probability passes `threshold` become transitions: one frame long, a hard cut at the
    next frame; longer, a gradual transition over the run."""

    threshold: float = 0.5
    weights: str | None = None
    device: str | None = None
    decode_size: ClassVar[tuple[int, int]] = (48, 27)

    def _model(self):
        return _transnetv2(self.weights, self.device)

    def use_cpus(self, cpus: float) -> None:
        import torch

        torch.set_num_threads(max(1, round(cpus)))

    def detect_frames(self, frames: np.ndarray, pts_s: np.ndarray) -> list[Transition]:
        return self.from_probabilities(self.probabilities(frames), pts_s)

    def probabilities(self, frames: np.ndarray) -> np.ndarray:
        """Each frame's transition probability, for (N, H, W, 3) uint8 RGB frames of any size."""
        width, height = self.decode_size
        if frames.shape[1:3] != (height, width):
            frames = np.stack([_resize_rgb(f, width, height) for f in frames])
        return self._model().predict(frames)

    def from_probabilities(self, probs: np.ndarray, pts_s: np.ndarray) -> list[Transition]:
        pts = np.asarray(pts_s)
        n = len(probs)
        out = []
        for i, j in _runs(probs >= self.threshold):
            conf = round(float(probs[i : j + 1].max()), 3)
            if j == i and i + 1 < n:  # the last frame of the old shot: the cut is at the next frame
                out.append(Transition("hard", i + 1, i + 1, float(pts[i + 1]), float(pts[i + 1]), conf))
            elif j > i:
                end = min(j + 1, n - 1)
                out.append(Transition("gradual", i, end, float(pts[i]), float(pts[end]), conf))
        return out


@dataclass
class HybridShotDetector(ContentShotDetector):
    """The content detector, with TransNetV2 (optional extra `transnet`) judging its near misses.

    Hard cuts that looser rules find (`near_ratio`, `near_strong`, `near_contrast` in place of `ratio`,
    `strong`, `contrast`) and the content rules do not, away from any transition they report, are the
    cuts those rules miss most (dark, low-contrast and similar-looking shots). Each is kept where
    TransNetV2, on one `model_window`-frame window centred on it, gives a frame next to it a transition
    probability of at least `threshold`. Slides, fades and dissolves stay the content rules' (TransNetV2
    misses them), and the model sees only the frames around candidates, made from the planes the content
    rules decoded: nothing is decoded twice."""

    threshold: float = 0.5
    near_ratio: float = 2.0
    near_strong: float = 0.1
    near_contrast: float = 1.5
    model_window: int = 100  # frames TransNetV2 sees per candidate: its training-time window
    weights: str | None = None
    device: str | None = None

    def _model(self):
        return _transnetv2(self.weights, self.device)

    use_cpus = TransNetV2Detector.use_cpus

    def _transitions(
        self, f: SmallFrames, score: np.ndarray, extreme: np.ndarray, gradual: list[list]
    ) -> list[Transition]:
        found = super()._transitions(f, score, extreme, [list(g) for g in gradual])
        loose = replace(self, ratio=self.near_ratio, strong=self.near_strong, contrast=self.near_contrast)
        spacing = self.min_shot_frames
        candidates = [
            t.start_frame
            for t in ContentShotDetector._transitions(loose, f, score, extreme, gradual)
            if t.kind == "hard"
            and not any(u.start_frame - spacing < t.start_frame < u.end_frame + spacing for u in found)
        ]
        for i, probability in zip(candidates, self._probabilities_at(f, candidates), strict=True):
            if probability >= self.threshold:
                pts = float(f.pts_s[i])
                found.append(Transition("hard", i, i, pts, pts, round(probability, 3)))
        return _min_spacing(sorted(found, key=lambda t: t.start_frame), spacing)

    def _probabilities_at(self, f: SmallFrames, cuts: list[int]) -> list[float]:
        """TransNetV2's highest probability on the two frames either side of each cut (it marks the old
        shot's last frame), each from a window centred on the cut; the video's edge frames repeat."""
        if not cuts:
            return []
        n, half = len(f.y), self.model_window // 2
        out = []
        for i in cuts:  # one window a forward: the least CPU per frame
            index = np.clip(np.arange(i - half, i - half + self.model_window), 0, n - 1)
            lo, hi = int(index[0]), int(index[-1]) + 1
            probabilities = self._model().forward(f.half_rgb(lo, hi)[index - lo][None])[0]
            out.append(float(probabilities[half - 2 : half + 2].max()))
        return out


@functools.lru_cache(maxsize=2)
def _transnetv2(weights: str | None, device: str | None):
    """One loaded TransNetV2 per process and weights: detectors made per video or per setting share it."""
    from curator_core.models.transnetv2 import TransNetV2Model

    return TransNetV2Model(weights, device)


def _resize_rgb(frame: np.ndarray, width: int, height: int) -> np.ndarray:
    return av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24").to_ndarray(
        width=width, height=height, format="rgb24"
    )


DETECTORS = {
    "content": ContentShotDetector,
    "transnetv2": TransNetV2Detector,
    "hybrid": HybridShotDetector,
}
