"""`nemo_curator.backends.ray_data`."""

from curator_core.compat.nemo.backends._executors import RayDataExecutor

__all__ = ["RayDataExecutor"]
