"""Peak memory of every Ray worker process on 1- and 10-minute 1080p inputs, through the real pipeline
(issue #19). Prints figures; not a test.

Each input runs in a fresh process with its own private Ray cluster (2 CPUs, like the CI machines):
`curator run`'s pipeline at its defaults (read -> shot detection -> transcode -> motion filter -> preview
-> write) through RayExecutor. While it runs, a thread samples every worker process of that cluster
(every 0.2 s): its anonymous memory (RssAnon: what the process itself allocated) and its shared pages
(RssShmem: object-store pages it has mapped, which belong to Ray's object store and are capped by its
size, not by the worker). When the run is over it also reads VmHWM (the kernel's peak resident set,
both kinds together) of every worker and of the driver.

Input: 1920x1080 30 fps H.264 made here (cached under the temp dir): five scenes of 2 s in a loop, so a
hard cut every 2 s (30 clips a minute, 300 for 10 minutes).
Target: every worker's peak (anonymous memory, as the issue measured it) < 1.0 GiB, growth from 1 to 10 minutes <= 10 %.

Run: .venv/bin/python benchmarks/worker_memory.py [--minutes 1 10]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import av
import numpy as np

from curator_core.video.samples import encode_frames

CACHE = Path(tempfile.gettempdir()) / "curator-bench-inputs"
CPUS = 2
SCENE_FRAMES = 60  # a cut every 2 s at 30 fps


def make_long_input(path: Path, seconds: int, width: int = 1920, height: int = 1080, fps: int = 30) -> Path:
    """A long 1080p input made cheaply: five scenes of 60 moving frames each, played in a loop (x264
    ultrafast), so there is a hard cut every 2 s, as in edited footage."""
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    yy, xx = np.mgrid[0:height, 0:width]
    colors = np.random.default_rng(7).integers(0, 255, size=(5, 3))
    frames = []
    for scene in range(5):  # each scene its own brightness, hue and stripe direction
        base = np.array([(30, 60, 120), (220, 200, 60), (90, 40, 40), (240, 240, 240), (60, 170, 90)][scene])
        direction = (xx, yy, xx + yy, xx - yy, 2 * xx + yy)[scene]
        for i in range(SCENE_FRAMES):
            stripes = ((direction + 6 * i) // (24 + 8 * scene)) % 2 * 50 - 25
            img = np.clip(base[None, None, :] + stripes[..., None], 0, 255).astype(np.uint8)
            y, x = (7 * i + 97 * scene) % (height - 200), (13 * i + 331 * scene) % (width - 200)
            img[y : y + 200, x : x + 200] = colors[scene]  # a square moving through the scene
            frames.append(av.VideoFrame.from_ndarray(img, format="rgb24").reformat(format="yuv420p"))
    looped = (frames[i % len(frames)] for i in range(seconds * fps))
    options = {"preset": "ultrafast", "crf": "23", "g": str(fps * 2)}
    tmp = encode_frames(path.with_suffix(".part.mp4"), looped, width, height, fps, options=options)
    tmp.rename(path)
    return path


def _status_kib(pid: str, field: str) -> int:
    with open(f"/proc/{pid}/status") as handle:
        for line in handle:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def _cluster_workers(session_dir_part: str) -> dict[str, str]:
    """pid -> name of every worker process whose raylet belongs to this run's cluster."""
    procs: dict[str, tuple[str, str]] = {}  # pid -> (ppid, cmdline)
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            ppid = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1]
        except OSError:
            continue
        procs[pid] = (ppid, cmdline)
    raylets = {
        pid for pid, (_, cmd) in procs.items() if "raylet" in cmd.split(" ")[0] and session_dir_part in cmd
    }
    return {pid: cmd.strip()[:60] for pid, (ppid, cmd) in procs.items() if ppid in raylets}


def _vmhwm_kib(pid: str) -> int:
    try:
        return _status_kib(pid, "VmHWM")
    except OSError:
        return 0


class _Sampler(threading.Thread):
    """Peak RssAnon and RssShmem (KiB) of every worker of one cluster, sampled until stopped."""

    def __init__(self, session_dir_part: str, every_s: float = 0.2):
        super().__init__(daemon=True)
        self.session_dir_part, self.every_s = session_dir_part, every_s
        self.anon: dict[str, int] = {}
        self.shmem: dict[str, int] = {}
        self.names: dict[str, str] = {}  # the busiest name seen (an idle worker reads "ray::IDLE")
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.wait(self.every_s):
            for pid, name in _cluster_workers(self.session_dir_part).items():
                if "IDLE" not in name or pid not in self.names:
                    self.names[pid] = name
                try:
                    anon, shmem = _status_kib(pid, "RssAnon"), _status_kib(pid, "RssShmem")
                except OSError:
                    continue
                self.anon[pid] = max(self.anon.get(pid, 0), anon)
                self.shmem[pid] = max(self.shmem.get(pid, 0), shmem)


def child(video: str, out: str, tmpdir: str) -> None:
    """One run of the real pipeline; prints the peaks as JSON on the last line."""
    os.environ["CURATOR_RAY_TMPDIR"] = tmpdir
    import ray

    from curator_core.executors.ray import RayExecutor, ensure_ray
    from curator_core.video.options import CurationOptions
    from curator_core.video.pipelines import split_pipeline

    ensure_ray(num_cpus=CPUS)
    sampler = _Sampler(tmpdir)
    sampler.start()
    result = split_pipeline([video], out, CurationOptions()).execute(RayExecutor())
    sampler.done.set()
    sampler.join()
    clips = sum(len(t.data.clips) + len(t.data.filtered_clips) for t in result.outputs)
    workers = {  # every worker sampled, those that exited during the run too (VmHWM 0: gone by the end)
        pid: (name, sampler.anon.get(pid, 0), sampler.shmem.get(pid, 0), _vmhwm_kib(pid))
        for pid, name in sampler.names.items()
    }
    driver = _status_kib("self", "VmHWM")
    ray.shutdown()
    print(
        json.dumps(
            {"clips": clips, "failures": len(result.failures), "driver_kib": driver, "workers": workers}
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--minutes", type=int, nargs="+", default=[1, 10])
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return
    peaks = {}
    for minutes in args.minutes:
        video = make_long_input(CACHE / f"cuts_1080p_{minutes}min.mp4", minutes * 60)
        with tempfile.TemporaryDirectory(prefix="cwm-") as tmp:
            done = subprocess.run(
                [sys.executable, __file__, "--child", str(video), f"{tmp}/out", f"{tmp}/ray"],
                capture_output=True, text=True, check=False,
            )  # fmt: skip
        if done.returncode:
            raise SystemExit(f"the {minutes}-minute run failed:\n{done.stderr[-3000:]}")
        report = json.loads(done.stdout.strip().splitlines()[-1])
        workers = sorted(report["workers"].values(), key=lambda w: -w[1])
        peaks[minutes] = (workers[0][1] / 2**20, max(w[3] for w in workers) / 2**20)
        print(f"{minutes:>3}-minute 1080p30 input: {report['clips']} clips, {report['failures']} failures")
        print(f"    driver peak RSS {report['driver_kib'] / 2**20:.2f} GiB; workers ({len(workers)}):")
        print("      anon GiB  shmem GiB  VmHWM GiB  worker")
        for name, anon, shmem, hwm in workers:
            print(f"      {anon / 2**20:8.2f}  {shmem / 2**20:9.2f}  {hwm / 2**20:9.2f}  {name}")
    if len(peaks) > 1:
        small, large = min(peaks), max(peaks)
        for index, what in enumerate(("anonymous memory", "VmHWM (with object-store pages)")):
            low, high = peaks[small][index], peaks[large][index]
            print(
                f"largest worker peak, {what}: {low:.2f} GiB at {small} min, {high:.2f} GiB at {large} min,"
                f" growth {high / low - 1:+.1%}"
            )
        print("target: anonymous peak < 1.0 GiB, growth <= +10 %")


if __name__ == "__main__":
    main()
