"""open_clip models (any architecture by name) loaded from the local model directory."""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from curator_core.models.interface import LoadedModel
from curator_core.models.registry import (
    HOW_TO_PROVIDE,
    MissingModelError,
    model_path,
    read_card,
    set_configured,
)

logger = logging.getLogger(__name__)

CHECKPOINT = "model.safetensors"
# A tiny model of the CLIP family (ViT image tower, transformer text tower, CLIP BPE tokenizer): same code
# paths as ViT-B-32, random weights, about 3.6M parameters.
DEMO_EMBED_DIM = 64
DEMO_CONFIG = {
    "embed_dim": DEMO_EMBED_DIM,
    "vision_cfg": {"image_size": 224, "layers": 2, "width": 64, "patch_size": 32, "head_width": 32},
    "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 64, "heads": 2, "layers": 2},
}


def pick_device(preferred: str | None = None) -> str:
    import torch

    if preferred:
        return preferred
    return "cuda" if torch.cuda.is_available() else "cpu"


@dataclass
class OpenClipModel(LoadedModel):
    """An open_clip model ready for inference: image and text towers, unit-norm float32 embeddings."""

    model_id: str
    arch: str
    random_weights: bool
    model: object
    tokenizer: object
    mean: np.ndarray
    std: np.ndarray
    device: str
    image_size: int
    weights_path: str | None = None

    @classmethod
    def load(
        cls, model_id: str, directory: str | os.PathLike | None = None, device: str | None = None
    ) -> OpenClipModel:
        import open_clip
        import torch

        card = read_card(model_id, directory)
        path = model_path(model_id, directory)
        checkpoint = path / CHECKPOINT
        if not checkpoint.exists():
            raise MissingModelError(f"model {model_id!r}: no checkpoint at {checkpoint}; {HOW_TO_PROVIDE}")
        arch = card["arch"]
        if (path / "config.json").exists():
            _register_config(arch, path / "config.json")
        device = pick_device(device)
        precision = "fp16" if device.startswith("cuda") else "fp32"
        model, _, preprocess = open_clip.create_model_and_transforms(
            arch, pretrained=str(checkpoint), device=device, precision=precision
        )
        model.eval()
        normalize = preprocess.transforms[-1]
        image_size = model.visual.image_size
        image_size = image_size[0] if isinstance(image_size, tuple | list) else int(image_size)
        if card.get("random"):
            logger.warning(
                "model %s has RANDOM weights (a demo model): its embeddings mean nothing", model_id
            )
        torch.set_grad_enabled(False)
        return cls(
            model_id=model_id,
            arch=arch,
            random_weights=bool(card.get("random")),
            model=model,
            tokenizer=open_clip.get_tokenizer(arch),
            mean=np.asarray(normalize.mean, np.float32).reshape(1, 3, 1, 1),
            std=np.asarray(normalize.std, np.float32).reshape(1, 3, 1, 1),
            device=device,
            image_size=image_size,
            weights_path=str(checkpoint),
        )

    def encode_images(self, frames: np.ndarray, batch_size: int = 32) -> np.ndarray:
        """(N, H, W, 3) uint8 RGB frames at the model's input size -> (N, D) unit-norm float32."""
        import torch

        if frames.shape[1:3] != (self.image_size, self.image_size):
            raise ValueError(
                f"{self.model_id} takes {self.image_size}x{self.image_size} frames, got {frames.shape[2]}x{frames.shape[1]}"
            )
        dtype = next(self.model.parameters()).dtype
        out = []
        with torch.inference_mode():
            for start in range(0, len(frames), batch_size):
                chunk = frames[start : start + batch_size].transpose(0, 3, 1, 2).astype(np.float32) / 255.0
                chunk = (chunk - self.mean) / self.std
                tensor = torch.from_numpy(chunk).to(self.device, dtype)
                emb = self.model.encode_image(tensor).float()
                out.append(torch.nn.functional.normalize(emb, dim=-1).cpu().numpy())
        return np.concatenate(out) if out else np.zeros((0, self.embed_dim), np.float32)

    def encode_text(self, texts: list[str]) -> np.ndarray:
        import torch

        with torch.inference_mode():
            tokens = self.tokenizer(texts).to(self.device)
            emb = self.model.encode_text(tokens).float()
            return torch.nn.functional.normalize(emb, dim=-1).cpu().numpy()

    @property
    def embed_dim(self) -> int:
        return int(self.model.text_projection.shape[1])


def _register_config(arch: str, config_path: Path) -> None:
    from open_clip.factory import _MODEL_CONFIGS

    if arch not in _MODEL_CONFIGS:
        _MODEL_CONFIGS[arch] = json.loads(config_path.read_text())


def write_demo_model(
    directory: str | os.PathLike | None = None, name: str = "demo-clip", seed: int = 0
) -> str:
    """Build a tiny random-weight open_clip model into the model directory and configure it for the
    "embedding" role. Returns its model id."""
    import open_clip
    import torch
    from safetensors.torch import save_file

    model_id = f"open_clip/{name}"
    path = model_path(model_id, directory)
    path.mkdir(parents=True, exist_ok=True)
    arch = f"curator-{name}"
    (path / "config.json").write_text(json.dumps(DEMO_CONFIG, indent=2))
    _register_config(arch, path / "config.json")
    torch.manual_seed(seed)
    model = open_clip.create_model(arch)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path / CHECKPOINT))
    card = {
        "family": "open_clip",
        "arch": arch,
        "random": True,
        "source": "curator models demo (random weights)",
    }
    (path / "curator.json").write_text(json.dumps(card, indent=2))
    set_configured("embedding", model_id, directory)
    return model_id


def download_model(arch: str, tag: str, directory: str | os.PathLike | None = None) -> str:
    """Fetch real open_clip weights (needs network) into the model directory; configure them for "embedding"."""
    import open_clip
    from safetensors.torch import save_file

    model_id = f"open_clip/{arch}-{tag}"
    path = model_path(model_id, directory)
    path.mkdir(parents=True, exist_ok=True)
    model = open_clip.create_model(arch, pretrained=tag, cache_dir=str(path / "cache"))
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path / CHECKPOINT))
    card = {
        "family": "open_clip",
        "arch": arch,
        "random": False,
        "source": f"open_clip pretrained tag {tag!r}",
    }
    (path / "curator.json").write_text(json.dumps(card, indent=2))
    set_configured("embedding", model_id, directory)
    return model_id
