"""Upload-to-materialized for a 3-video batch, and Dagster's overhead per run (issue: Dagster project).
Prints figures; not a test.

Warm local Ray in this process (the run executes in-process, as `curator demo` does), a persistent SQLite
instance in a temp DAGSTER_HOME, demo models. One warm-up batch, then --runs batches: each is copied into
the landing folder with a _READY marker, picked up by one sensor tick, and materialized (all four assets).
Reported per run (median over runs):
  upload-to-materialized  from the copy into landing to the run's end (the sensor's polling interval,
                          30 s by default, comes on top in a deployment)
  pipelines               sum over the four assets of the Ray pipelines' own wall time
  steps                   sum of the assets' step time (pipelines + store writes)
  overhead                run wall time - pipelines (Dagster, store writes, asset checks, metadata)
Run: .venv/bin/python benchmarks/dagster_overhead.py [--runs 3]
"""

import argparse
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import dagster as dg
from dagster._core.instance.ref import InstanceRef

from curator_assets.definitions import defs
from curator_assets.resources import CuratorSettings, RayRunner
from curator_assets.sensors import READY_MARKER, new_upload_batches
from curator_core.executors.ray import ensure_ray
from curator_core.models.open_clip_model import write_demo_model
from curator_core.models.transformers_models import write_demo_vlm
from curator_core.video.samples import make_sample_batch


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--cpus", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        models = root / "models"
        write_demo_model(models)
        write_demo_vlm(models)
        samples = make_sample_batch(root / "samples")
        curator = CuratorSettings(
            landing=str(root / "landing"),
            output_root=str(root / "outputs"),
            store_uri=str(root / "store"),
            model_dir=str(models),
        )
        (root / "home").mkdir()
        instance = dg.DagsterInstance.from_ref(InstanceRef.from_dir(str(root / "home")))
        print(f"ray start-up: {ensure_ray(num_cpus=args.cpus):.2f} s")
        job = defs.resolve_job_def("curate_batch")
        resources = {"curator": curator, "ray_runner": RayRunner(num_cpus=args.cpus)}
        cursor = None
        rows = []
        quiet = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
        for i in range(args.runs + 1):
            batch = f"bench-{i:03d}"
            t0 = time.perf_counter()
            folder = root / "landing" / batch
            folder.mkdir(parents=True)
            for video in samples:
                shutil.copy(video, folder / video.name)
            (folder / READY_MARKER).touch()
            context = dg.build_sensor_context(
                instance=instance, cursor=cursor, resources={"curator": curator}
            )
            tick = new_upload_batches(context)
            cursor = tick.cursor
            (request,) = tick.run_requests
            for add in tick.dynamic_partitions_requests:
                instance.add_dynamic_partitions(add.partitions_def_name, list(add.partition_keys))
            t_run = time.perf_counter()
            result = job.execute_in_process(
                partition_key=request.partition_key, instance=instance, resources=resources, run_config=quiet
            )
            t_end = time.perf_counter()
            assert result.success
            meta = {
                m.asset_key.to_user_string(): m.materialization.metadata
                for m in result.get_asset_materialization_events()
            }
            pipelines = sum(m["pipeline_seconds"].value for m in meta.values())
            steps = sum(m["step_seconds"].value for m in meta.values())
            run_s = t_end - t_run
            rows.append(
                {
                    "upload_to_materialized": t_end - t0,
                    "run": run_s,
                    "pipelines": pipelines,
                    "steps": steps,
                    "overhead": run_s - pipelines,
                    "video_seconds": meta["clips"]["video_seconds"].value,
                }
            )
            label = "warm-up" if i == 0 else f"run {i}"
            print(f"{label}: " + ", ".join(f"{k} {v:.2f}" for k, v in rows[-1].items()))
        measured = rows[1:]
        print(
            f"\nmedians over {len(measured)} runs (3-video batch, {measured[0]['video_seconds']:.0f} s of video):"
        )
        for key in ("upload_to_materialized", "run", "pipelines", "steps", "overhead"):
            print(f"  {key}: {statistics.median(r[key] for r in measured):.2f} s")
        print("  target: overhead <= 5 s per run")
        instance.dispose()


if __name__ == "__main__":
    main()
