"""A synthetic shot-transition set made from real footage (issue: shot detection that generalizes).

Single shots are cut from the annotated shared videos at their annotated boundaries (so the content and
camera motion are real) and recombined, deterministically from a seed, into short videos with known
transitions: hard cuts, fades through black and through white, dissolves of 4-60 frames, shots of 4-12
frames, dark shots (brightness scaled down), low-contrast pairs (the next shot is the one with the most
similar histogram, both squashed towards grey), a fade-out that ends in a hard cut into the next shot, and
a hard cut a few frames after a fade. Nothing here is tuned on: the detectors never saw these files.

Each video is written as H.264 (crf 16, 30 fps CFR, 192x108) with a `<name>.cuts.json` beside it in the
shared annotations' format (0-based decoded frames; a hard cut is the first frame of the new shot; a
gradual transition runs from the first frame that differs from shot A to the first frame of shot B alone).
Media are written under the output folder, never committed.

Run: .venv/bin/python benchmarks/synthetic_transitions.py [--seed 1] [--videos 20] [--out DIR]
"""

from __future__ import annotations

import argparse
import functools
import json
from pathlib import Path

import numpy as np

from curator_core.video.heap import deterministic_heap
from curator_core.video.samples import encode_frames
from curator_core.video.shots import decode_rgb

ROOT = Path(__file__).resolve().parents[1]
VIDEOS = ROOT.parent / "shared" / "data" / "videos"
SIZE = (192, 108)  # width, height: above both detectors' working sizes (96x54 and 48x27), cheap to decode
FPS = 30
ENCODE = {"crf": "16", "preset": "veryfast"}
MARGIN = 3  # frames left out on each side of an annotated transition, so no source shot holds part of one
TRANSITIONS_PER_VIDEO = 26
# Transition kinds and how often each is drawn.
KINDS = {
    "hard": 0.22,
    "dissolve": 0.2,
    "fade_black": 0.1,
    "fade_white": 0.08,
    "fade_out_cut": 0.08,  # shot A fades to black, then a hard cut straight into shot B: one transition
    "fade_then_cut": 0.08,  # a fade through black into B, then B for 4-10 frames, then a hard cut: two
    # (drawn as "fade_black" then "cut_after_fade"; each transition records what it was `made_as`)
    "dark_hard": 0.12,  # both shots dark (brightness x0.15-0.35), a hard cut between them
    "low_contrast_hard": 0.12,  # B has the histogram nearest A's; both squashed towards grey
}


def source_shots() -> list[np.ndarray]:
    """Every annotated video's shots: the frames between its transitions, less MARGIN on each side, as
    (N, H, W, 3) uint8 RGB at SIZE."""
    shots = []
    for annotation in sorted((VIDEOS / "annotations").glob("*.cuts.json")):
        gt = json.loads(annotation.read_text())
        frames = decode_rgb(str(VIDEOS / gt["video"]), *SIZE)[0]
        bounds = sorted((t["start"], t["end"]) for t in gt["transitions"])
        edges = [(-MARGIN - 1, -MARGIN - 1), *bounds, (len(frames) + MARGIN, len(frames) + MARGIN)]
        for (_, end), (start, _) in zip(edges, edges[1:], strict=False):
            a, b = end + MARGIN + 1, start - MARGIN
            if b - a >= 12 and not _mostly_flat(frames[a:b]):
                shots.append(frames[a:b])
    return shots


def _mostly_flat(frames: np.ndarray) -> bool:
    """Black or white frames between two transitions (a leader, the hold of a cut to black) are no shot:
    the annotation convention (MANIFEST.md) counts a cut to black and a cut back as one transition, so a
    set that cut into and out of such a "shot" would record two where the convention has one."""
    return float((frames.std(axis=(1, 2, 3)) < 4.0).mean()) > 0.5


class Playing:
    """A shot being shown: frames come in order from a random start, and a shot that runs out plays on
    backwards (ping-pong), so no jump inside a shot ever looks like a cut."""

    def __init__(self, rng: np.random.Generator, frames: np.ndarray, look):
        self.frames, self.look = frames, look
        self.at, self.step = int(rng.integers(0, len(frames))), 1

    def take(self, n: int) -> np.ndarray:
        out = []
        for _ in range(n):
            out.append(self.frames[self.at])
            if not 0 <= self.at + self.step < len(self.frames):
                self.step = -self.step
            self.at += self.step
        return self.look(np.stack(out).astype(np.float32)) if out else np.zeros((0, SIZE[1], SIZE[0], 3))


def _histogram(frame: np.ndarray) -> np.ndarray:
    codes = (frame[..., 0] // 64) * 16 + (frame[..., 1] // 64) * 4 + frame[..., 2] // 64
    return np.bincount(codes.ravel(), minlength=64) / codes.size


def plan(rng: np.random.Generator) -> tuple[list[str], set[int]]:
    """The transition kinds in order, and which shots (shot i follows transition i-1) are 4-10 frames
    because a hard cut follows the fade into them."""
    kinds, weights = list(KINDS), np.array(list(KINDS.values()))
    out: list[str] = []
    short: set[int] = set()
    while len(out) < TRANSITIONS_PER_VIDEO:
        kind = kinds[int(rng.choice(len(kinds), p=weights / weights.sum()))]
        if kind == "fade_then_cut":
            out += ["fade_black", "cut_after_fade"]
            short.add(len(out) - 1)
        else:
            out.append(kind)
    return out, short


def build_video(rng: np.random.Generator, shots: list[np.ndarray]) -> tuple[list[np.ndarray], list[dict]]:
    kinds, short = plan(rng)
    histograms = np.stack([_histogram(s[len(s) // 2]) for s in shots])
    frames: list[np.ndarray] = []
    transitions: list[dict] = []

    def put(more: np.ndarray) -> None:
        frames.extend(np.clip(more, 0, 255).round().astype(np.uint8))

    def look(i: int):
        """Shot i is dark / squashed when a transition next to it pairs two such shots."""
        near = kinds[max(0, i - 1) : i + 1]
        steps = []
        if "dark_hard" in near:
            steps.append(_dark(rng))
        if "low_contrast_hard" in near:
            steps.append(_squashed(rng))
        return lambda f: functools.reduce(lambda x, step: step(x), steps, f)

    def length(i: int) -> int:
        if i in short:
            return int(rng.integers(4, 11))
        return int(rng.integers(4, 13)) if rng.random() < 0.25 else int(rng.integers(15, 61))

    shot_id = int(rng.integers(len(shots)))
    current = Playing(rng, shots[shot_id], look(0))
    put(current.take(int(rng.integers(30, 61))))
    for i, kind in enumerate(kinds):
        others = [j for j in range(len(shots)) if j != shot_id]
        if kind == "low_contrast_hard":
            shot_id = others[int(np.argmin(np.abs(histograms[others] - histograms[shot_id]).sum(1)))]
        else:
            shot_id = int(rng.choice(others))
        nxt = Playing(rng, shots[shot_id], look(i + 1))
        here = len(frames)
        if kind in ("hard", "dark_hard", "low_contrast_hard", "cut_after_fade"):
            transitions.append({"type": "hard_cut", "start": here, "end": here, "made_as": kind})
        elif kind == "dissolve":
            n = int(rng.integers(4, 61))
            alpha = (np.arange(1, n + 1, dtype=np.float32) / (n + 1))[:, None, None, None]
            put((1 - alpha) * current.take(n) + alpha * nxt.take(n))
            transitions.append({"type": "dissolve", "start": here, "end": here + n, "made_as": kind})
        elif kind in ("fade_black", "fade_white"):
            level = 255.0 if kind == "fade_white" else 0.0
            put(_towards(current.take(int(rng.integers(4, 21))), level, rising=True))
            put(np.full((int(rng.integers(0, 9)), SIZE[1], SIZE[0], 3), level, np.float32))
            put(_towards(nxt.take(int(rng.integers(4, 21))), level, rising=False))
            transitions.append({"type": kind, "start": here, "end": len(frames), "made_as": kind})
        elif kind == "fade_out_cut":
            put(_towards(current.take(int(rng.integers(4, 21))), 0.0, rising=True))
            put(np.zeros((int(rng.integers(0, 4)), SIZE[1], SIZE[0], 3), np.float32))
            transitions.append({"type": kind, "start": here, "end": len(frames), "made_as": kind})
        put(nxt.take(length(i + 1)))
        current = nxt
    put(current.take(int(rng.integers(20, 41))))  # no transition ends the video
    return frames, transitions


def _dark(rng: np.random.Generator):
    gain = float(rng.uniform(0.15, 0.35))
    return lambda frames: frames * gain


def _squashed(rng: np.random.Generator):
    gain = float(rng.uniform(0.3, 0.5))
    return lambda frames: 128 + (frames - 128) * gain


def _towards(frames: np.ndarray, level: float, rising: bool) -> np.ndarray:
    """A fade: `rising` goes from the frames towards `level`, otherwise from `level` into the frames."""
    n = len(frames)
    w = np.arange(1, n + 1, dtype=np.float32) / (n + 1)
    w = (w if rising else 1 - w)[:, None, None, None]
    return (1 - w) * frames + w * level


def _one_thread(stream) -> None:
    stream.codec_context.thread_count = 1  # the same bytes on any machine


def generate(out: Path, seed: int, videos: int) -> Path:
    """Writes the set under `out` (skipped when its stamp says it is already there) and returns
    the folder holding the `*.cuts.json` files."""
    stamp = out / f".done-seed{seed}-videos{videos}-{TRANSITIONS_PER_VIDEO}"
    if stamp.exists():
        return out
    out.mkdir(parents=True, exist_ok=True)
    shots = source_shots()
    rng = np.random.default_rng(seed)
    for v in range(videos):
        frames, transitions = build_video(rng, shots)
        name = f"synthetic_{seed}_{v:02d}.mp4"
        with deterministic_heap():  # 108 rows is no multiple of 16: libx264 would read unwritten memory
            encode_frames(out / name, frames, *SIZE, FPS, options=ENCODE, setup=_one_thread)
        record = {"video": name, "num_decoded_frames": len(frames), "transitions": transitions}
        (out / f"synthetic_{seed}_{v:02d}.cuts.json").write_text(json.dumps(record, indent=1))
    stamp.touch()
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--videos", type=int, default=20)
    parser.add_argument("--out", type=Path, default=None, help="default: state/bench/synthetic-<seed>")
    args = parser.parse_args()
    out = generate(args.out or ROOT / "state" / "bench" / f"synthetic-{args.seed}", args.seed, args.videos)
    files = sorted(out.glob("*.cuts.json"))
    count: dict[str, int] = {}
    for f in files:
        for t in json.loads(f.read_text())["transitions"]:
            count[t["type"]] = count.get(t["type"], 0) + 1
    print(f"{out}: {len(files)} videos, {sum(count.values())} transitions {count}")


if __name__ == "__main__":
    main()
