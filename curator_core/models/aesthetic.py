"""The LAION improved-aesthetic-predictor: an MLP over unit CLIP image embeddings, from the model directory.

Layer layout matches LAION's released state dicts (`layers.0` ... `layers.7`), so their weights load as
they are (for the CLIP model they were trained on: ViT-L/14, 768-d).
"""

from __future__ import annotations

import json
import os

import numpy as np

from curator_core.models.interface import LoadedModel
from curator_core.models.registry import (
    HOW_TO_PROVIDE,
    MissingModelError,
    model_path,
    read_card,
    set_configured,
)

CHECKPOINT = "model.safetensors"


def build_mlp(input_dim: int):
    import torch.nn as nn

    class AestheticMLP(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.layers = nn.Sequential(
                nn.Linear(input_dim, 1024),
                nn.Dropout(0.2),
                nn.Linear(1024, 128),
                nn.Dropout(0.2),
                nn.Linear(128, 64),
                nn.Dropout(0.1),
                nn.Linear(64, 16),
                nn.Linear(16, 1),
            )

        def forward(self, x):
            return self.layers(x)

    return AestheticMLP()


class AestheticModel(LoadedModel):
    """Scores (N, D) unit CLIP embeddings; higher is more aesthetic (LAION's scale is about 1-10)."""

    def __init__(self, model_id: str, directory: str | os.PathLike | None = None, device: str = "cpu"):
        import torch
        from safetensors.torch import load_file

        card = read_card(model_id, directory)
        checkpoint = model_path(model_id, directory) / CHECKPOINT
        if not checkpoint.exists():
            raise MissingModelError(f"model {model_id!r}: no checkpoint at {checkpoint}; {HOW_TO_PROVIDE}")
        self.model_id = model_id
        self.weights_path = str(checkpoint)
        self.input_dim = int(card["input_dim"])
        self.clip_model = card.get("clip_model")
        self.random_weights = bool(card.get("random"))
        self.device = device
        self.mlp = build_mlp(self.input_dim)
        self.mlp.load_state_dict(load_file(str(checkpoint)))
        self.mlp.eval().to(device)
        self._torch = torch

    def score(self, embeddings: np.ndarray) -> np.ndarray:
        if embeddings.shape[-1] != self.input_dim:
            raise ValueError(
                f"{self.model_id} takes {self.input_dim}-d CLIP embeddings"
                f"{f' (from {self.clip_model})' if self.clip_model else ''}, got {embeddings.shape[-1]}-d"
            )
        with self._torch.inference_mode():
            x = self._torch.from_numpy(np.ascontiguousarray(embeddings, np.float32)).to(self.device)
            return self.mlp(x).squeeze(-1).float().cpu().numpy()


def write_demo_aesthetic(
    input_dim: int, clip_model: str, directory: str | os.PathLike | None = None, name: str = "demo-aesthetic"
) -> str:
    """A random-weight aesthetic MLP for `clip_model`'s embeddings, configured for the "aesthetic" role."""
    import torch
    from safetensors.torch import save_file

    model_id = f"aesthetic/{name}"
    path = model_path(model_id, directory)
    path.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(1)
    save_file(
        {k: v.contiguous() for k, v in build_mlp(input_dim).state_dict().items()}, str(path / CHECKPOINT)
    )
    card = {"family": "aesthetic", "input_dim": input_dim, "clip_model": clip_model, "random": True}
    (path / "curator.json").write_text(json.dumps(card, indent=2))
    set_configured("aesthetic", model_id, directory)
    return model_id
