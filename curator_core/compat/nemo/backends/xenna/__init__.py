"""`nemo_curator.backends.xenna`."""

from curator_core.compat.nemo.backends._executors import XennaExecutor

__all__ = ["XennaExecutor"]
