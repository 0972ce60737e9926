"""Peak memory of the driver through the `clips`, `clip_embeddings` and `clip_captions` steps at two batch
sizes (issue #14): what the driver holds must not grow with the clips. Prints figures; not a test.

Each (size, step) runs `batches.run_step` in a fresh process (its own private 2-CPU Ray cluster, demo
models), so the figure is that step's driver peak: VmHWM of the driver process, reset (/proc/self/clear_refs)
once the imports are done and the cluster is up, so that the import peak of torch and Ray, the same at
every size, does not hide what the step itself holds. Ray's own processes are separate. A batch of N clips is N/100 generated videos of 100 s at 96x64 cut into 1 s clips
(fixed splitting, no previews, motion scored but not filtered), so the clips are many and cheap.
Target: growth of the driver peak from 200 to 2,000 clips <= 10 % in every step.

Run: .venv/bin/python benchmarks/driver_memory.py [--clips 200 2000]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

CLIPS_PER_VIDEO = 100
STEPS = ("raw_videos", "clips", "clip_embeddings", "clip_captions")
MEASURED = STEPS[1:]


def _make_batch(root: Path, clips: int) -> None:
    from curator_core.video.samples import Shot, write_video

    folder = root / "landing" / "b"
    folder.mkdir(parents=True)
    for i in range(clips // CLIPS_PER_VIDEO):
        color = ((37 * i) % 255, (91 * i) % 255, (53 * i) % 255)
        write_video(folder / f"v{i:03d}.mp4", [Shot(CLIPS_PER_VIDEO * 24, color)], 96, 64, fps=24)


def child(root: str, step: str) -> None:
    """One step in this process; prints its figures as JSON on the last line."""
    from curator_core.batches import BatchSettings, run_step
    from curator_core.executors.ray import RayExecutor
    from curator_core.video.options import CurationOptions

    settings = BatchSettings(
        landing=f"{root}/landing",
        output_root=f"{root}/out",
        store_uri=f"{root}/store",
        options=CurationOptions(
            model_dir=f"{root}/models",
            splitting="fixed",
            clip_len_s=1.0,
            min_clip_len_s=0.5,
            previews=False,
            motion_score_only=True,
        ),
    )
    import curator_core.models.open_clip_model  # noqa: F401 - the imports a model step makes, done first
    import curator_core.models.transformers_models  # noqa: F401
    from curator_core.executors.ray import ensure_ray

    ensure_ray(2)
    Path("/proc/self/clear_refs").write_text("5")  # VmHWM := the current RSS
    base_kib = _status_kib("VmRSS")
    summary = run_step(step, "b", settings, RayExecutor(num_cpus=2))
    report = {"tables": summary.tables, "failures": len(summary.failures)}
    print(json.dumps({**report, "base_kib": base_kib, "peak_kib": _status_kib("VmHWM")}))


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--clips", type=int, nargs=2, default=[200, 2000])
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return
    from curator_core.models.open_clip_model import write_demo_model
    from curator_core.models.transformers_models import write_demo_vlm

    peaks: dict[int, dict[str, float]] = {}
    for clips in args.clips:
        with tempfile.TemporaryDirectory(prefix="cdm-") as tmp:
            root = Path(tmp)
            _make_batch(root, clips)
            write_demo_model(root / "models")
            write_demo_vlm(root / "models")
            peaks[clips] = {}
            for step in STEPS:
                done = subprocess.run(
                    [sys.executable, __file__, "--child", tmp, step],
                    capture_output=True,
                    text=True,
                    check=False,
                )
                if done.returncode:
                    raise SystemExit(f"{step} at {clips} clips failed:\n{done.stderr[-3000:]}")
                report = json.loads(done.stdout.strip().splitlines()[-1])
                peaks[clips][step] = report["peak_kib"] / 2**10
                print(
                    f"{clips:>5} clips  {step:<16} driver peak {peaks[clips][step]:7.1f} MiB"
                    f" (before the step {report['base_kib'] / 2**10:7.1f} MiB)"
                    f"  rows {report['tables']}  failures {report['failures']}",
                    flush=True,
                )
    small, large = args.clips
    for step in MEASURED:
        low, high = peaks[small][step], peaks[large][step]
        print(
            f"{step:<16} {low:7.1f} MiB at {small} clips, {high:7.1f} MiB at {large}: growth {high / low - 1:+.1%}"
        )
    print("target: growth <= +10 % in every step")


if __name__ == "__main__":
    main()
