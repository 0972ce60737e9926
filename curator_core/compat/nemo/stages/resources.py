"""`nemo_curator.stages.resources`: the same fields and meaning as ours."""

from curator_core.resources import Resources

__all__ = ["Resources"]
