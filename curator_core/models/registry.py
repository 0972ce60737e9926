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


def location(path: str | os.PathLike | None = None) -> str:
    """Where the model directory is, as every process can find it: a URI as given, a local path made
    absolute (resolve it on the driver: the workers run in other directories)."""
    where = str(path or os.environ.get(MODEL_DIR_ENV) or "models")
    return where if "://" in where else str(Path(where).resolve())


def model_dir(path: str | os.PathLike | None = None) -> Path:
    """The model directory on this machine: a URI's local copy (made once per machine, see `cache`)."""
    where = location(path)
    if "://" not in where:
        return Path(where)
    from curator_core.models.cache import local_copy

    try:
        return local_copy(where)
    except FileNotFoundError as exc:
        raise MissingModelError(f"{exc}; {HOW_TO_PROVIDE}") from exc


def model_path(model_id: str, directory: str | os.PathLike | None = None) -> Path:
    """`open_clip/<name>` -> <model dir>/open_clip/<name>."""
    family, _, name = model_id.partition("/")
    if not family or not name:
        raise ValueError(f"model ids look like '<family>/<name>', got {model_id!r}")
    return model_dir(directory) / family / name


def _small_file(directory: str | os.PathLike | None, *parts: str) -> tuple[str, str | None]:
    """(where, text or None when absent) of a small file of the model directory, read where it is (a
    URI's file is read directly: the driver needs models.json, not a copy of every weight)."""
    where = location(directory)
    if "://" not in where:
        path = Path(where, *parts)
        return str(path), path.read_text() if path.exists() else None
    import fsspec

    uri = "/".join([where.rstrip("/"), *parts])
    try:
        with fsspec.open(uri, "r") as handle:
            return uri, handle.read()
    except FileNotFoundError:
        return uri, None


def read_card(model_id: str, directory: str | os.PathLike | None = None) -> dict:
    family, _, name = model_id.partition("/")
    card, text = _small_file(directory, family, name, "curator.json")
    if text is None:
        raise MissingModelError(f"model {model_id!r} not found: {card} does not exist; {HOW_TO_PROVIDE}")
    return json.loads(text)


def configured(role: str, directory: str | os.PathLike | None = None) -> str:
    """The model id configured for a role (e.g. "embedding") in models.json."""
    config, text = _small_file(directory, "models.json")
    if text is None:
        raise MissingModelError(f"no model configuration at {config}; {HOW_TO_PROVIDE}")
    roles = json.loads(text)
    if role not in roles:
        raise MissingModelError(f"{config} names no {role!r} model (has {sorted(roles)}); {HOW_TO_PROVIDE}")
    return roles[role]


def set_configured(role: str, model_id: str, directory: str | os.PathLike | None = None) -> None:
    config = model_dir(directory) / "models.json"
    config.parent.mkdir(parents=True, exist_ok=True)
    roles = json.loads(config.read_text()) if config.exists() else {}
    roles[role] = model_id
    config.write_text(json.dumps(roles, indent=2) + "\n")
