"""Split + transcode throughput vs the ffmpeg CLI (issue: video stages). Prints figures; not a test.

Input: 4 synthetic 60 s 1280x720 30 fps H.264 videos (made here, cached) -> fixed-stride 10 s clips ->
libx264 (same preset/crf on both sides), written to files.
Ours: read -> split -> transcode -> write through RayExecutor (CPUS = 2).
Reference: the same cuts done by `ffmpeg` itself, one process per clip (-ss before -i: frame-accurate
with re-encoding), 2 at a time. Needs the Debian ffmpeg package: `apt-get install ffmpeg` (benchmark only).
Memory through the whole pipeline (every worker, 1- and 10-minute 1080p inputs): benchmarks/worker_memory.py.

`--smart-cut`: inputs that already have the output's format (libx264 veryfast, High profile, a keyframe
every 2 s), so clips copy the source's GOPs (video.smart_cut), against the ffmpeg CLI re-encoding the same
clips. Two cuttings: clips on keyframes (0-10 s, ...), and clips 1 s off them (1-11 s, ...: every clip
re-encodes its first and last second). Every clip is checked against a full re-encode's frame times.

`--startup`: cold runs (a fresh process, and so a fresh private Ray cluster, per run: what a one-shot
`curator run` sees; its timeline too: imports, Ray start, when the first segment's encode began) and warm
runs (one driver and cluster, after a warm-up run), for `--inputs` 2 and 4 and each of `--presets`, each
against the ffmpeg CLI on the same clips with the sides alternating.

Run: .venv/bin/python benchmarks/split_transcode.py [--repeats 3] [--smart-cut | --startup]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, fields
from pathlib import Path

import av
import numpy as np

from curator_core import Pipeline, RayExecutor
from curator_core.executors.ray import ensure_ray
from curator_core.stage import ProcessingStage
from curator_core.tasks import Clip, VideoTask
from curator_core.video.reader import VideoReader
from curator_core.video.samples import encode_frames
from curator_core.video.splitting import FixedStrideSplittingStage, fixed_stride_spans
from curator_core.video.transcoding import ClipEncodeStage, ClipTranscodingStage
from curator_core.video.writer import ClipWriterStage

CACHE = Path(tempfile.gettempdir()) / "curator-bench-inputs"
PRESET, CRF, CLIP_S = "veryfast", 23, 10.0
CPUS = 2  # the local Ray cluster, and the ffmpeg processes run at a time


def _fast_x264(fps: int) -> dict[str, str]:
    """How benchmark inputs are made: quickly, with a keyframe every 2 s."""
    return {"preset": "ultrafast", "crf": "23", "g": str(fps * 2)}


def _fitting_x264(fps: int) -> dict[str, str]:
    """Inputs in the output's own format (smart cut copies them): the output's preset and crf, a keyframe
    every 2 s and no extra keyframes at scene changes."""
    return {"preset": PRESET, "crf": str(CRF), "g": str(fps * 2), "sc_threshold": "0"}


def make_input(path: Path, seconds: int, width: int, height: int, fps: int = 30, seed: int = 0,
               options: dict[str, str] | None = None) -> Path:  # fmt: skip
    """A moving gradient with a few moving blocks, changing every 4 s: typical camera-like bit rates."""
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width]

    def frames():
        colors = rng.integers(0, 255, size=(8, 3))
        for i in range(seconds * fps):
            if i % (fps * 4) == 0:
                colors = rng.integers(0, 255, size=(8, 3))
            img = np.empty((height, width, 3), np.uint8)
            img[..., 0] = (xx + i * 2) % 256
            img[..., 1] = (yy + i) % 256
            img[..., 2] = ((xx + yy) // 4) % 256
            for k, color in enumerate(colors):
                x = (k * 150 + i * (k + 1) * 2) % (width - 96)
                y = (k * 80 + i * 3) % (height - 96)
                img[y : y + 96, x : x + 96] = color
            yield img

    tmp = encode_frames(path.with_suffix(".part.mp4"), frames(), width, height, fps,
                        options=options or _fast_x264(fps))  # fmt: skip
    tmp.rename(path)
    return path


def _spans(offset_s: float) -> list[tuple[float, float]]:
    return [(start + offset_s, min(60.0, end + offset_s)) for start, end in fixed_stride_spans(60.0, CLIP_S, CLIP_S, 2.0)
            if start + offset_s < 60.0 - 2.0]  # fmt: skip


def ours(inputs: list[Path], out: Path, smart_cut: bool = True, offset_s: float = 0.0, preset: str = PRESET):
    """(wall seconds, share of the CPUs' time that stage code ran: the rest is Ray's scheduling, start-up
    and tail, {encoding path: clips}, the clips). Each clip's `encode_started` is when (time.time()) its
    segment's encode began."""  # fmt: skip
    split = FixedStrideSplittingStage(clip_len_s=CLIP_S, clip_stride_s=CLIP_S)
    if offset_s:
        split = _OffsetSplit(offset_s)
    pipeline = Pipeline(
        "bench",
        [
            VideoReader([str(p) for p in inputs]),
            split,
            *_timed(ClipTranscodingStage(encoder="libx264", preset=preset, crf=CRF, smart_cut=smart_cut)),
            ClipWriterStage(output_root=str(out)),
        ],
    )
    t0 = time.perf_counter()
    result = pipeline.execute(RayExecutor())
    elapsed = time.perf_counter() - t0
    clips = [c for t in result.outputs for c in t.data.clips]
    assert len(clips) == len(_spans(offset_s)) * len(inputs) and not result.failures, (
        len(clips),
        result.failures,
    )
    busy = sum(stats.process_time_s for stats in result.stage_stats.values()) / (CPUS * elapsed)
    return elapsed, busy, Counter(c.metadata.get("encoding") for c in clips), clips


@dataclass
class _TimedEncode(ClipEncodeStage):
    """The encode stage, noting in each clip when its segment's encode began."""

    def process(self, task: VideoTask) -> VideoTask:
        started = time.time()
        for clip in task.data.clips:
            clip.metadata["encode_started"] = started
        return super().process(task)


def _timed(stage: ClipTranscodingStage) -> list[ProcessingStage]:
    """The transcoding stage's own parts, its encoder timed."""
    parts = stage.decompose()
    encode = parts[-1]
    return [*parts[:-1], _TimedEncode(**{f.name: getattr(encode, f.name) for f in fields(encode)})]


@dataclass
class _OffsetSplit(ProcessingStage[VideoTask, VideoTask]):
    """Fixed 10 s clips starting `offset_s` into the video: cuts off the keyframes."""

    offset_s: float = 1.0
    name: str = "offset_split"

    def outputs(self) -> tuple[list[str], list[str]]:
        return [], ["clips"]

    def process(self, task: VideoTask) -> VideoTask:
        task.data.clips = [Clip(source=task.data.input_path, span=span) for span in _spans(self.offset_s)]
        return task


def reference(inputs: list[Path], out: Path, parallel: int = CPUS, offset_s: float = 0.0,
              preset: str = PRESET) -> float:  # fmt: skip
    out.mkdir(parents=True, exist_ok=True)
    jobs = []
    for n, path in enumerate(inputs):
        for i, (start, end) in enumerate(_spans(offset_s)):
            jobs.append(
                ["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-ss", f"{start}", "-i", str(path), "-t", f"{end - start}",
                 "-c:v", "libx264", "-preset", preset, "-crf", str(CRF), "-an", str(out / f"{n}-{i}.mp4")]
            )  # fmt: skip
    t0 = time.perf_counter()
    with ThreadPoolExecutor(parallel) as pool:
        for proc in pool.map(lambda cmd: subprocess.run(cmd, check=True), jobs):
            assert proc.returncode == 0
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--smart-cut", action="store_true", help="inputs in the output's format (see above)")
    parser.add_argument(
        "--offsets", type=float, nargs="+", default=[0.0, 1.0], help="--smart-cut: clip starts, s"
    )
    parser.add_argument("--startup", action="store_true", help="cold and warm runs (see above)")
    parser.add_argument("--presets", nargs="+", default=[PRESET], help="--startup: x264 presets")
    parser.add_argument("--inputs", type=int, nargs="+", default=[2, 4], help="--startup: input counts")
    parser.add_argument("--child", nargs=3, metavar=("N", "PRESET", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return _cold_child(int(args.child[0]), args.child[1], Path(args.child[2]))
    if not shutil.which("ffmpeg"):
        raise SystemExit("the reference needs the ffmpeg CLI: apt-get install ffmpeg (benchmark only)")
    if args.smart_cut:
        return smart_cut_figures(args.repeats, args.offsets)
    if args.startup:
        return startup_figures(args.repeats, args.presets, args.inputs)
    inputs = _inputs()
    print(f"ray start-up: {ensure_ray(num_cpus=CPUS):.2f} s")
    ours_s, ref_s, busy = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        ours(inputs[:1], Path(tmp) / "warm")  # warm-up: worker processes, imports
        for r in range(args.repeats):
            # Alternate which side goes first, so that a machine slowing down or speeding up (measured:
            # up to 15 % within an hour) favours neither.
            if r % 2:
                ref_s.append(reference(inputs, Path(tmp) / f"ref{r}"))
            wall, share, _, _ = ours(inputs, Path(tmp) / f"ours{r}")
            ours_s.append(wall)
            busy.append(share)
            if not r % 2:
                ref_s.append(reference(inputs, Path(tmp) / f"ref{r}"))
            print(
                f"  run {r}: ours {wall:.2f} s (stages busy {share:.1%} of {CPUS} CPUs), ffmpeg CLI {ref_s[-1]:.2f} s,"
                f" ratio {wall / ref_s[-1]:.2f}"
            )
    o, f = statistics.median(ours_s), statistics.median(ref_s)
    print(f"4 x 60 s 720p30 -> 24 clips of 10 s, libx264 {PRESET} crf {CRF}, median of {args.repeats}:")
    print(f"  ours (RayExecutor, {CPUS} CPUs)        {o:7.2f} s (stages busy {statistics.median(busy):.1%})")
    print(f"  ffmpeg CLI, 1 process/clip, {CPUS} at a time {f:7.2f} s")
    print(f"  ratio ours/ffmpeg                 {o / f:7.2f} (target <= 1.0)")
    ratios = sorted(o_ / f_ for o_, f_ in zip(ours_s, ref_s, strict=True))
    print(f"  per-run ratios                    {' '.join(f'{x:.2f}' for x in ratios)}")
    print(f"  runs at or under 1.0              {sum(x <= 1.0 for x in ratios)} of {len(ratios)}")


def _inputs() -> list[Path]:
    return [make_input(CACHE / f"in_{i}_720p_60s.mp4", 60, 1280, 720, seed=i) for i in range(4)]


def _cold_child(n: int, preset: str, out: Path) -> None:
    """One cold run, in a process of its own: prints its timeline (s since the parent started it)."""
    t0 = float(os.environ["CURATOR_BENCH_T0"])
    imported = time.time() - t0
    ray_s = ensure_ray(num_cpus=CPUS)
    started = time.time()
    wall, busy, _, clips = ours(_inputs()[:n], out, preset=preset)
    first = min(c.metadata["encode_started"] for c in clips)
    print(json.dumps({"imported_s": imported, "ray_s": ray_s, "first_encode_s": first - t0,
                      "first_encode_after_execute_s": first - started, "busy": busy}))  # fmt: skip


def _cold_run(n: int, preset: str, out: Path) -> tuple[float, dict]:
    """(seconds from starting a fresh process to its exit, the timeline it printed)."""
    env = {**os.environ, "CURATOR_BENCH_T0": repr(time.time())}
    t0 = time.perf_counter()
    done = subprocess.run([sys.executable, __file__, "--child", str(n), preset, str(out)], env=env,
                          capture_output=True, text=True, check=True)  # fmt: skip
    wall = time.perf_counter() - t0
    return wall, json.loads(done.stdout.strip().splitlines()[-1])


def startup_figures(repeats: int, presets: list[str], counts: list[int]) -> None:
    """Cold (a fresh process and private cluster per run, as a one-shot `curator run`) and warm (one
    driver and cluster, after a warm-up run) against the ffmpeg CLI on the same clips, in one script."""
    inputs = _inputs()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for preset in presets:  # cold first: no cluster of this process may run beside the children's
            for n in counts:
                cold, ref, lines = [], [], []
                for r in range(repeats):
                    if r % 2:
                        ref.append(reference(inputs[:n], Path(tmp) / f"ref-c{preset}{n}-{r}", preset=preset))
                    wall, line = _cold_run(n, preset, Path(tmp) / f"cold{preset}{n}-{r}")
                    cold.append(wall)
                    lines.append(line)
                    if not r % 2:
                        ref.append(reference(inputs[:n], Path(tmp) / f"ref-c{preset}{n}-{r}", preset=preset))
                    print(f"  cold {n} inputs {preset} run {r}: ours {wall:.2f} s (imports {line['imported_s']:.2f} s,"
                          f" ray {line['ray_s']:.2f} s, first encode at {line['first_encode_s']:.2f} s,"
                          f" {line['first_encode_after_execute_s']:.2f} s after execute), ffmpeg CLI {ref[-1]:.2f} s")  # fmt: skip
                first = statistics.median(x["first_encode_s"] for x in lines)
                rows.append(("cold", n, preset, cold, ref, first))
        print(f"ray start-up (warm side): {ensure_ray(num_cpus=CPUS):.2f} s")
        ours(inputs[:1], Path(tmp) / "warm-up")
        for preset in presets:
            for n in counts:
                warm, ref = [], []
                for r in range(repeats):
                    if r % 2:
                        ref.append(reference(inputs[:n], Path(tmp) / f"ref-w{preset}{n}-{r}", preset=preset))
                    warm.append(ours(inputs[:n], Path(tmp) / f"warm{preset}{n}-{r}", preset=preset)[0])
                    if not r % 2:
                        ref.append(reference(inputs[:n], Path(tmp) / f"ref-w{preset}{n}-{r}", preset=preset))
                    print(
                        f"  warm {n} inputs {preset} run {r}: ours {warm[-1]:.2f} s, ffmpeg CLI {ref[-1]:.2f} s"
                    )
                rows.append(("warm", n, preset, warm, ref, None))
    print(f"x 60 s 720p30 inputs -> 6 clips of 10 s each, libx264 crf {CRF}, {CPUS} CPUs, median of {repeats}"
          " (targets: cold 2 inputs <= 1.0, warm <= 0.9):")  # fmt: skip
    for kind, n, preset, o, f, first in rows:
        mo, mf = statistics.median(o), statistics.median(f)
        runs = " ".join(f"{a / b:.2f}" for a, b in zip(o, f, strict=True))
        when = f", first encode {first:.2f} s after the process started" if first is not None else ""
        print(f"  {kind} {n} inputs {preset:9s} ours {mo:7.2f} s  ffmpeg CLI {mf:7.2f} s  ratio {mo / mf:.2f}"
              f" (per run {runs}){when}")  # fmt: skip


def smart_cut_figures(repeats: int, offsets: list[float]) -> None:
    inputs = [make_input(CACHE / f"fit_{i}_720p_60s.mp4", 60, 1280, 720, seed=i, options=_fitting_x264(30))
              for i in range(4)]  # fmt: skip
    print(f"ray start-up: {ensure_ray(num_cpus=CPUS):.2f} s")
    with tempfile.TemporaryDirectory() as tmp:
        ours(inputs[:1], Path(tmp) / "warm")
        for offset in offsets:
            ours_s, ref_s, paths = [], [], Counter()
            for r in range(repeats):
                if r % 2:
                    ref_s.append(reference(inputs, Path(tmp) / f"ref{offset}-{r}", offset_s=offset))
                wall, _, paths, clips = ours(inputs, Path(tmp) / f"ours{offset}-{r}", offset_s=offset)
                ours_s.append(wall)
                if not r % 2:
                    ref_s.append(reference(inputs, Path(tmp) / f"ref{offset}-{r}", offset_s=offset))
                print(f"  clips {offset:.0f} s off keyframes, run {r}: ours {wall:.2f} s, ffmpeg CLI {ref_s[-1]:.2f} s,"
                      f" ratio {wall / ref_s[-1]:.2f}")  # fmt: skip
            _, _, _, full = ours(inputs, Path(tmp) / f"full{offset}", smart_cut=False, offset_s=offset)
            exact = sum(_frame_times(a) == _frame_times(b)
                        for a, b in zip(sorted(clips, key=_key), sorted(full, key=_key), strict=True))  # fmt: skip
            o, f = statistics.median(ours_s), statistics.median(ref_s)
            ratios = " ".join(f"{a / b:.2f}" for a, b in zip(ours_s, ref_s, strict=True))
            print(f"4 x 60 s 720p30 (High, keyframe every 2 s), clips {offset:.0f} s off keyframes, median of {repeats}:"
                  f" ours {o:.2f} s, ffmpeg CLI re-encoding {f:.2f} s, ratio {o / f:.2f} (target <= 0.35;"
                  f" per run {ratios}); paths {dict(paths)}; frame times equal to a full re-encode's in"
                  f" {exact} of {len(clips)} clips")  # fmt: skip


def _key(clip: Clip) -> tuple:
    return clip.source, clip.span


def _frame_times(clip: Clip) -> list[float]:
    """The clip's frame times as its media holds them (one packet a frame), in display order."""
    with av.open(clip.metadata["media_uri"]) as container:
        return sorted(round(float(p.pts * p.time_base), 4) for p in container.demux(video=0) if p.size)


if __name__ == "__main__":
    main()
