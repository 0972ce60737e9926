"""Resources: where batches land and results go (CuratorSettings), and how pipelines reach Ray (RayRunner).

Defaults are the embedded ones (folders under ./state, local Ray); every field can come from the
environment in Dagster's usual way (e.g. `dg.EnvVar("CURATOR_STORE_URI")`) or from run config.
"""

import dataclasses
import os
import shlex
import threading
import uuid
from typing import Any

import dagster as dg
from pydantic import Field, create_model

from curator_core.batches import BatchSettings, StepSummary, run_step
from curator_core.storage import StorageConfig
from curator_core.training.options import ShardOptions
from curator_core.video.options import CurationOptions

STATE_DIR_ENV = "CURATOR_STATE_DIR"


def state_dir() -> str:
    return os.path.abspath(os.environ.get(STATE_DIR_ENV, "state"))


# The object-store knobs are StorageConfig's own (declared once in curator_core); dg.EnvVar works for each.
StorageSettings = create_model(
    "StorageSettings",
    __base__=dg.Config,
    __doc__="How every step, check and sensor reaches the object store (see curator_core.storage).",
    **{name: (f.annotation, f) for name, f in StorageConfig.model_fields.items()},
)


class CuratorSettings(dg.ConfigurableResource):
    """Locations shared by the sensor and the assets. Empty values mean <state dir>/landing, /outputs,
    /store, /shards and ./models (the state dir is $CURATOR_STATE_DIR, default ./state)."""

    landing: str = Field(default="", description="folder or fsspec URI whose subfolders are upload batches")
    output_root: str = Field(default="", description="clip media go under <output_root>/<batch>/")
    store_uri: str = Field(default="", description="clip store (LanceDB URI: folder, s3://, gs://)")
    model_dir: str = Field(default="", description="model directory (default $CURATOR_MODEL_DIR or ./models)")
    shards_root: str = Field(
        default="", description="WebDataset shards go under <shards_root>/<batch>/, the manifest at its top"
    )

    storage: StorageSettings = Field(
        default_factory=StorageSettings,
        description="object storage of the landing area, outputs, store and shards (endpoint, region, "
        "credential variable names)",
    )

    def storage_config(self) -> StorageConfig:
        return StorageConfig(**self.storage.model_dump())

    def landing_uri(self) -> str:
        return self.landing or os.path.join(state_dir(), "landing")

    def batch_settings(
        self, options: CurationOptions, shard_options: ShardOptions | None = None
    ) -> BatchSettings:
        options = options.model_copy(update={"model_dir": self.model_dir or options.model_dir})
        return BatchSettings(
            landing=self.landing_uri(),
            output_root=self.output_root or os.path.join(state_dir(), "outputs"),
            store_uri=self.store_uri or os.path.join(state_dir(), "store"),
            shards_root=self.shards_root or os.path.join(state_dir(), "shards"),
            options=options,
            shard_options=shard_options or ShardOptions(),
            storage=self.storage_config().model_dump(exclude_defaults=True),
        )


class RayRunner(dg.ConfigurableResource):
    """Runs a step's pipeline on Ray.

    address empty: an in-process driver on local Ray (started once per run process, private to this
    project). address set (the cluster's dashboard, e.g. http://head:8265): the step is submitted as a Ray
    job through dagster-ray's PipesRayJobClient, and Dagster Pipes carries its logs and summary back. A
    `ray://` client address is refused: Ray Data cannot run over a client connection.
    """

    address: str = Field(default="", description="Ray dashboard address for job submission; empty: local")
    num_cpus: int | None = Field(default=None, description="local Ray: CPUs to use (default: all)")
    runtime_env: dict[str, Any] = Field(
        default_factory=dict, description="Ray job runtime_env (the cluster needs curator installed)"
    )
    python: str = Field(default="python", description="the cluster's Python that runs the job entrypoint")
    job_timeout_s: float = Field(
        default=6 * 3600, description="stop a submitted Ray job after this long, seconds (the run fails)"
    )
    dashboard: bool = Field(
        default=True,
        description="local Ray: serve its dashboard on 127.0.0.1 (a free port, linked from runs)",
    )

    def run_step(
        self, context: dg.AssetExecutionContext, step: str, batch_key: str, settings: BatchSettings
    ) -> StepSummary:
        if self.address.startswith("ray://"):
            raise dg.Failure(
                f"RayRunner.address={self.address!r} is a Ray Client address; Ray Data cannot run over a "
                "ray:// connection. Give the dashboard address (http://<head>:8265) to submit jobs."
            )
        settings.apply_storage()  # before Ray starts: its workers inherit it
        if not self.address:
            from curator_core.executors.ray import RayExecutor, dashboard_url, ensure_ray

            startup = ensure_ray(num_cpus=self.num_cpus, dashboard=self.dashboard)
            if startup:
                context.log.info(f"started local Ray in {startup:.1f} s; dashboard: {dashboard_url()}")
            summary = run_step(
                step, batch_key, settings, RayExecutor(num_cpus=self.num_cpus), report=context.log.info
            )
            return dataclasses.replace(summary, ray_dashboard=dashboard_url())
        return self._submit(context, step, batch_key, settings)

    def _submit(
        self, context: dg.AssetExecutionContext, step: str, batch_key: str, settings: BatchSettings
    ) -> StepSummary:
        from dagster_ray import PipesRayJobClient
        from ray.job_submission import JobSubmissionClient

        from curator_core.executors.ray import worker_runtime_env

        client = PipesRayJobClient(address=self.address)
        jobs = JobSubmissionClient(self.address)
        submission_id = f"pipes-{step}-{batch_key}-{uuid.uuid4().hex[:12]}"
        timed_out = threading.Event()

        def stop() -> None:  # dagster-ray's client has no timeout of its own: the job is stopped here
            timed_out.set()
            jobs.stop_job(submission_id)

        timer = threading.Timer(self.job_timeout_s, stop)
        timer.daemon = True
        timer.start()
        try:
            invocation = client.run(
                context=context,
                submit_job_params={
                    "entrypoint": f"{shlex.quote(self.python)} -m curator_assets.remote_step",
                    "runtime_env": worker_runtime_env(self.runtime_env) or {},
                    "submission_id": submission_id,
                },
                extras={"step": step, "batch_key": batch_key, "settings": settings.to_json()},
            )
        except RuntimeError as exc:
            if timed_out.is_set():
                raise dg.Failure(
                    f"the Ray job {submission_id} ({step} of batch {batch_key}) ran past "
                    f"RayRunner.job_timeout_s={self.job_timeout_s:g} s and was stopped"
                ) from exc
            log = jobs.get_job_logs(submission_id)
            raise dg.Failure(
                f"the Ray job {submission_id} ({step} of batch {batch_key}) failed: {first_error(log)}",
                metadata={"job_log_tail": dg.MetadataValue.md(_tail(log))},
            ) from exc
        finally:
            timer.cancel()
        summaries = [m for m in invocation.get_custom_messages() if isinstance(m, dict) and "step" in m]
        if not summaries:
            raise dg.Failure(f"the Ray job for {step} of {batch_key} reported no summary")
        dashboard = f"{self.address.rstrip('/')}/#/jobs/{submission_id}"
        return StepSummary(**{**summaries[-1], "ray_job_id": submission_id, "ray_dashboard": dashboard})


def first_error(log: str) -> str:
    """The first real error of a job's log: the exception line that ends its first traceback (the cause;
    later ones are often consequences), else the first line that names an error, else the log's end."""
    lines = log.splitlines()
    for i, line in enumerate(lines):
        if line.startswith("Traceback (most recent call last)"):
            for later in lines[i + 1 :]:
                if later and not later.startswith((" ", "\t", "Traceback")):
                    return later.strip()
    for line in lines:
        if "Error" in line or "error:" in line:
            return line.strip()
    return lines[-1].strip() if lines else "(the job wrote no log)"


def _tail(log: str, lines: int = 40) -> str:
    return "```\n" + "\n".join(log.splitlines()[-lines:]) + "\n```"
