"""What every model wrapper tells a stage: which weights it is (ids), where they live, and how it is set up.

NeMo Curator's `ModelInterface`, which its custom-model tutorial subclasses: a stage holds a model
object, calls `setup()` on each worker (after `setup_on_node()` once per node, e.g. to copy weights to
local disk) and reports `model_id_names` in lineage. How inference runs is the model's own business.
Our wrappers are built loaded (`OpenClipModel.load(...)`), so their `setup()` has nothing left to do.
"""

from __future__ import annotations

from abc import ABC, abstractmethod


class ModelInterface(ABC):
    @property
    @abstractmethod
    def model_id_names(self) -> list[str]:
        """The ids of the weights this model uses (e.g. a Hugging Face repo id, or ours in the model dir)."""

    @property
    def weights_location(self) -> str | None:
        """Where the weights are read from (a local path or URI); None when the model has no files."""
        return None

    def setup_on_node(self) -> None:  # noqa: B027 - optional hook, nothing to do by default
        """Once per node before any worker there calls `setup` (e.g. fetch the weights to local disk)."""

    @abstractmethod
    def setup(self) -> None:
        """Load the weights and build what inference needs, on the worker that will use them."""


class LoadedModel(ModelInterface):
    """A wrapper built with its weights loaded: its `model_id`, and the `weights_path` it loaded."""

    model_id: str
    weights_path: str | None

    @property
    def model_id_names(self) -> list[str]:
        return [self.model_id]

    @property
    def weights_location(self) -> str | None:
        return self.weights_path

    def setup(self) -> None:
        """Nothing to do: `load()` already loaded the weights."""
