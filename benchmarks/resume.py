"""Resuming the clips step (issue #14): wall time of a re-run after a kill at about half way, against a full
run of the same batch. Prints figures; not a test.

The batch is 4 generated 60 s 720p30 videos (benchmarks/split_transcode.py's inputs: a keyframe every 2 s),
cut into 10 s clips by the `curator run` defaults otherwise (shot detection off: fixed splitting, so every
run makes the same segments). Every run is `batches.run_step("clips")` in a fresh process with its own
private 2-CPU Ray cluster, timed from the process start to its exit, as a user's re-run would be:

1. full: the step on a fresh store;
2. killed: the step on another fresh store, SIGKILLed (the driver and its cluster) once half the
   segments are recorded as stored (store.task_records);
3. resumed: the step again on the killed run's store;
4. again: the step once more, now finished (nothing to make).

Target: resumed <= 0.60 x full. Run: .venv/bin/python benchmarks/resume.py [--repeats 1]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.split_transcode import CACHE, make_input  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
VIDEOS, SECONDS = 4, 60
CHILD = """
import json, sys
from curator_core.batches import BatchSettings, run_step
from curator_core.executors.ray import RayExecutor
from curator_core.video.options import CurationOptions
root = sys.argv[1]
settings = BatchSettings(f"{root}/landing", f"{root}/out", f"{root}/store",
                         options=CurationOptions(splitting="fixed", clip_len_s=10.0))
summary = run_step("clips", "b", settings, RayExecutor(num_cpus=2))
print(json.dumps({"work": summary.details["work"], "tables": summary.tables}))
"""


def _records(root: Path) -> int:
    import lancedb

    db = lancedb.connect(str(root / "store"))
    return db.open_table("step_tasks").count_rows() if "step_tasks" in db.list_tables().tables else 0


def _start(root: Path) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    env.update(PYTHONPATH=str(ROOT), CURATOR_RAY_TMPDIR=f"/tmp/cc-bench-resume-{os.getpid()}")
    return subprocess.Popen(
        [sys.executable, "-c", CHILD, str(root)], cwd=ROOT, env=env, stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL, text=True, start_new_session=True,
    )  # fmt: skip


def _run(root: Path) -> tuple[float, dict]:
    t0 = time.perf_counter()
    child = _start(root)
    out, _ = child.communicate()
    if child.returncode:
        raise SystemExit(f"the clips step failed in {root} (exit {child.returncode})")
    return time.perf_counter() - t0, json.loads(out.strip().splitlines()[-1])


def _kill_at(root: Path, records: int) -> tuple[float, int]:
    t0 = time.perf_counter()
    child = _start(root)
    while _records(root) < records:
        if child.poll() is not None:
            raise SystemExit("the run to kill ended before half way")
        time.sleep(0.1)
    os.killpg(child.pid, signal.SIGKILL)
    child.wait()
    time.sleep(1.0)
    return time.perf_counter() - t0, _records(root)


def _fresh(work: Path, name: str, inputs: list[Path]) -> Path:
    root = work / name
    (root / "landing" / "b").mkdir(parents=True)
    for path in inputs:
        (root / "landing" / "b" / path.name).symlink_to(path)
    return root


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args()
    inputs = [make_input(CACHE / f"resume_720p_{i}.mp4", SECONDS, 1280, 720, seed=i) for i in range(VIDEOS)]
    work = Path(tempfile.mkdtemp(prefix="bench-resume-"))
    rows = []
    try:
        for repeat in range(args.repeats):
            full_s, full = _run(_fresh(work, f"full{repeat}", inputs))
            segments = full["work"]["tasks_stored"]
            killed_root = _fresh(work, f"killed{repeat}", inputs)
            killed_s, stored = _kill_at(killed_root, segments // 2)
            resumed_s, resumed = _run(killed_root)
            again_s, again = _run(killed_root)
            assert resumed["tables"] == full["tables"] == again["tables"], (resumed, full, again)
            rows.append((full_s, killed_s, stored, resumed_s, resumed["work"], again_s, again["work"]))
            print(f"repeat {repeat}: full {full_s:.1f} s ({segments} segments); killed after {killed_s:.1f} s "
                  f"with {stored} stored; resumed {resumed_s:.1f} s {resumed['work']}; "
                  f"again {again_s:.1f} s {again['work']}")  # fmt: skip
    finally:
        shutil.rmtree(work, ignore_errors=True)
    full_m = statistics.median(r[0] for r in rows)
    resumed_m = statistics.median(r[3] for r in rows)
    again_m = statistics.median(r[5] for r in rows)
    print(f"\nmedians over {len(rows)} repeat(s): full {full_m:.1f} s, resumed {resumed_m:.1f} s "
          f"({resumed_m / full_m:.2f}x full; target <= 0.60x), finished step again {again_m:.1f} s "
          f"({again_m / full_m:.2f}x full)")  # fmt: skip


if __name__ == "__main__":
    main()
