"""The Dagster instance the command line uses: $DAGSTER_HOME when set, else the project's dagster.yaml in
the working directory (the same rule `dagster dev` follows), so runs show up in the UI afterwards."""

import os
from pathlib import Path

import dagster as dg
from dagster._core.instance.ref import InstanceRef

from curator_assets.resources import state_dir


def project_instance() -> dg.DagsterInstance:
    if os.environ.get("DAGSTER_HOME"):
        return dg.DagsterInstance.get()
    if (Path.cwd() / "dagster.yaml").exists():
        base = Path(state_dir()) / "dagster"
        base.mkdir(parents=True, exist_ok=True)
        return dg.DagsterInstance.from_ref(InstanceRef.from_dir(str(base), config_dir=str(Path.cwd())))
    raise RuntimeError(
        "no Dagster instance: set DAGSTER_HOME to a folder (it may hold a dagster.yaml), or run from the "
        "project root, where dagster.yaml is"
    )
