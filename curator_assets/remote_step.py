"""The entrypoint of a step submitted as a Ray job (RayRunner with an address): runs the step on the
cluster it was submitted to, with Dagster Pipes carrying its logs and summary back to the run.

    python -m curator_assets.remote_step      (the extras name the step, batch and settings)
"""

from __future__ import annotations

from dagster_pipes import open_dagster_pipes

from curator_core.batches import BatchSettings, run_step


def main() -> None:
    with open_dagster_pipes() as pipes:
        step = pipes.get_extra("step")
        batch_key = pipes.get_extra("batch_key")
        settings = BatchSettings.from_json(pipes.get_extra("settings"))
        pipes.log.info(f"running {step} for batch {batch_key} on the Ray cluster")
        summary = run_step(step, batch_key, settings, report=pipes.log.info)
        pipes.report_custom_message(summary.to_dict())
        pipes.log.info(f"{step}: {summary.tables} in {summary.pipeline_s:.1f} s")


if __name__ == "__main__":
    main()
