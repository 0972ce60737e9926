"""The model directory: where checkpoints live and which model each stage uses.

Layout (CURATOR_MODEL_DIR, default ./models):
  models.json                       {"embedding": "open_clip/<name>", ...}: each role's model id
  open_clip/<name>/curator.json     {"arch": ..., "random": bool, "source": ...}
  open_clip/<name>/config.json      open_clip model config (for architectures open_clip does not ship)
  open_clip/<name>/model.safetensors
"""

from __future__ import annotations

import json
import os
from pathlib import Path

MODEL_DIR_ENV = "CURATOR_MODEL_DIR"
HOW_TO_PROVIDE = (
    "run `curator models demo` (tiny random-weight models, to try the pipeline anywhere) or "
    "`curator models download` (real weights; needs network), or point CURATOR_MODEL_DIR at a model directory"
)


class MissingModelError(FileNotFoundError):
    """A configured model's files are not there; the message names the path and how to provide them."""


def model_dir(path: str | os.PathLike | None = None) -> Path:
    return Path(path or os.environ.get(MODEL_DIR_ENV) or "models").resolve()


def model_path(model_id: str, directory: str | os.PathLike | None = None) -> Path:
    """`open_clip/<name>` -> <model dir>/open_clip/<name>."""
    family, _, name = model_id.partition("/")
    if not family or not name:
        raise ValueError(f"model ids look like '<family>/<name>', got {model_id!r}")
    return model_dir(directory) / family / name


def read_card(model_id: str, directory: str | os.PathLike | None = None) -> dict:
    path = model_path(model_id, directory)
    card = path / "curator.json"
    if not card.exists():
        raise MissingModelError(f"model {model_id!r} not found: {card} does not exist; {HOW_TO_PROVIDE}")
    return json.loads(card.read_text())


def configured(role: str, directory: str | os.PathLike | None = None) -> str:
    """The model id configured for a role (e.g. "embedding") in models.json."""
    config = model_dir(directory) / "models.json"
    if not config.exists():
        raise MissingModelError(f"no model configuration at {config}; {HOW_TO_PROVIDE}")
    roles = json.loads(config.read_text())
    if role not in roles:
        raise MissingModelError(f"{config} names no {role!r} model (has {sorted(roles)}); {HOW_TO_PROVIDE}")
    return roles[role]


def set_configured(role: str, model_id: str, directory: str | os.PathLike | None = None) -> None:
    config = model_dir(directory) / "models.json"
    config.parent.mkdir(parents=True, exist_ok=True)
    roles = json.loads(config.read_text()) if config.exists() else {}
    roles[role] = model_id
    config.write_text(json.dumps(roles, indent=2) + "\n")
