"""`nemo_curator.models.base`."""

from curator_core.models.interface import ModelInterface

__all__ = ["ModelInterface"]
