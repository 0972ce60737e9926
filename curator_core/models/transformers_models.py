"""transformers models from the model directory: a vision-language model that captions windows of frames
(AutoProcessor + AutoModelForImageTextToText: Qwen2-VL, Qwen2.5-VL, SmolVLM, Idefics3, ...) and a text
LM that rewrites captions (AutoTokenizer + AutoModelForCausalLM).

Layout: <model dir>/transformers/<name>/ holds what `save_pretrained` writes, plus `curator.json`
({"family": "transformers", "random": bool, "source": ...}). A user's real checkpoint is a copy of a hub
snapshot (or `curator models download --hf REPO --role ROLE`, with network) with such a card.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from curator_core.models.interface import LoadedModel
from curator_core.models.open_clip_model import pick_device
from curator_core.models.registry import (
    HOW_TO_PROVIDE,
    MissingModelError,
    model_path,
    read_card,
    set_configured,
)

logger = logging.getLogger(__name__)

# Qwen2-family chat markup; the demo tokenizer is trained offline on a few sentences and carries these.
SPECIAL_TOKENS = [
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|image_pad|>",
    "<|video_pad|>",
]
CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}{% else %}"
    "{% for part in message['content'] %}"
    "{% if part['type'] == 'image' %}<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif part['type'] == 'video' %}<|vision_start|><|video_pad|><|vision_end|>"
    "{% elif part['type'] == 'text' %}{{ part['text'] }}{% endif %}{% endfor %}{% endif %}"
    "<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
DEMO_CORPUS = [
    "a video of a dog running on the beach at sunset",
    "a red square moves quickly from the left to the right of the frame",
    "the camera pans slowly over a city street at night with cars and lights",
    "a person talks to the camera in a bright room",
    "static shot of a grey wall with no motion",
]


def _no_loading_bars() -> None:
    """transformers draws a progress bar per worker per load, which ends up in every run's log."""
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()


def _checked_path(model_id: str, directory: str | os.PathLike | None) -> tuple[dict, Path]:
    card = read_card(model_id, directory)
    path = model_path(model_id, directory)
    if not (path / "config.json").exists():
        raise MissingModelError(f"model {model_id!r}: no config.json in {path}; {HOW_TO_PROVIDE}")
    if card.get("random"):
        logger.warning("model %s has RANDOM weights (a demo model): its text means nothing", model_id)
    return card, path


def _torch_dtype(device: str):
    import torch

    return torch.float16 if device.startswith("cuda") else torch.float32


@dataclass
class VisionLanguageModel(LoadedModel):
    """A VLM that captions windows of RGB frames; batched, greedy by default."""

    model_id: str
    random_weights: bool
    model: object
    processor: object
    device: str
    takes_video: bool  # the processor has a video path (Qwen-VL); otherwise frames go in as images
    weights_path: str | None = None

    @classmethod
    def load(
        cls, model_id: str, directory: str | os.PathLike | None = None, device: str | None = None
    ) -> VisionLanguageModel:
        import torch
        from transformers import AutoModelForImageTextToText, AutoProcessor

        _no_loading_bars()
        card, path = _checked_path(model_id, directory)
        device = pick_device(device)
        processor = AutoProcessor.from_pretrained(path, local_files_only=True)
        processor.tokenizer.padding_side = "left"  # decoder-only generation pads on the left
        model = AutoModelForImageTextToText.from_pretrained(
            path, local_files_only=True, dtype=_torch_dtype(device)
        )
        model.to(device).eval()
        torch.set_grad_enabled(False)
        takes_video = getattr(processor, "video_processor", None) is not None and hasattr(
            model.config, "video_token_id"
        )
        return cls(model_id, bool(card.get("random")), model, processor, device, takes_video, str(path))

    def caption(
        self,
        windows: list[np.ndarray],
        prompts: list[str],
        max_new_tokens: int = 256,
        fps: float | None = None,
        sample: bool = False,
    ) -> list[str]:
        """One caption per window ((T, H, W, 3) uint8 RGB frames) with its prompt, in one `generate`."""
        import torch

        if len(windows) != len(prompts):
            raise ValueError(f"{len(windows)} windows but {len(prompts)} prompts")
        if not windows:
            return []
        texts, media = [], []
        for frames, prompt in zip(windows, prompts, strict=True):
            if self.takes_video:
                parts = [{"type": "video"}]
                media.append(_even_frames(frames))
            else:
                parts = [{"type": "image"} for _ in frames]
                media.append(list(frames))
            message = [{"role": "user", "content": [*parts, {"type": "text", "text": prompt}]}]
            texts.append(self.processor.apply_chat_template(message, add_generation_prompt=True))
        kwargs: dict = {"text": texts, "return_tensors": "pt", "padding": True}
        if self.takes_video:
            kwargs["videos"] = media
            kwargs["do_sample_frames"] = False  # the frames are already sampled at the window's rate
            if hasattr(self.processor.video_processor, "cap_pixels_per_frame"):
                # Qwen-VL: bound each frame's pixels by its share of the video token budget, as the
                # reference implementation does (transformers' coming default; it warns until asked).
                kwargs["cap_pixels_per_frame"] = True
            if fps:
                kwargs["fps"] = fps
        else:
            kwargs["images"] = media
        inputs = self.processor(**kwargs).to(self.device)
        dtype = _torch_dtype(self.device)
        for key in ("pixel_values", "pixel_values_videos"):
            if key in inputs:
                inputs[key] = inputs[key].to(dtype)
        with torch.inference_mode():
            out = self.model.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=sample)
        new_tokens = out[:, inputs["input_ids"].shape[1] :]
        return [t.strip() for t in self.processor.batch_decode(new_tokens, skip_special_tokens=True)]


def _even_frames(frames: np.ndarray) -> np.ndarray:
    """Qwen-VL groups frames in temporal pairs: repeat the last frame of an odd-length window."""
    return frames if len(frames) % 2 == 0 else np.concatenate([frames, frames[-1:]])


@dataclass
class TextModel(LoadedModel):
    """A causal LM that rewrites text (caption enhancement); batched, greedy by default."""

    model_id: str
    random_weights: bool
    model: object
    tokenizer: object
    device: str
    weights_path: str | None = None

    @classmethod
    def load(
        cls, model_id: str, directory: str | os.PathLike | None = None, device: str | None = None
    ) -> TextModel:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        _no_loading_bars()
        card, path = _checked_path(model_id, directory)
        device = pick_device(device)
        tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
        tokenizer.padding_side = "left"
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        model = AutoModelForCausalLM.from_pretrained(path, local_files_only=True, dtype=_torch_dtype(device))
        model.to(device).eval()
        torch.set_grad_enabled(False)
        return cls(model_id, bool(card.get("random")), model, tokenizer, device, str(path))

    def generate(self, prompts: list[str], max_new_tokens: int = 256, sample: bool = False) -> list[str]:
        import torch

        if not prompts:
            return []
        if self.tokenizer.chat_template:
            texts = [
                self.tokenizer.apply_chat_template(
                    [{"role": "user", "content": p}], add_generation_prompt=True, tokenize=False
                )
                for p in prompts
            ]
        else:
            texts = prompts
        inputs = self.tokenizer(texts, return_tensors="pt", padding=True).to(self.device)
        with torch.inference_mode():
            out = self.model.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=sample)
        new_tokens = out[:, inputs["input_ids"].shape[1] :]
        return [t.strip() for t in self.tokenizer.batch_decode(new_tokens, skip_special_tokens=True)]


# --- demo checkpoints -----------------------------------------------------------------------------------
def _demo_tokenizer():
    """A byte-level BPE tokenizer trained offline on a few sentences, with the Qwen2 chat markup."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=512, special_tokens=SPECIAL_TOKENS, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    bpe.train_from_iterator(DEMO_CORPUS * 4, trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=bpe, eos_token="<|im_end|>", pad_token="<|endoftext|>", padding_side="left"
    )
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


def _tiny_text_config(tokenizer) -> dict:
    return {
        "vocab_size": len(tokenizer),
        "hidden_size": 64,
        "intermediate_size": 128,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "max_position_embeddings": 4096,
        "bos_token_id": None,
        "eos_token_id": tokenizer.convert_tokens_to_ids("<|im_end|>"),
        "pad_token_id": tokenizer.convert_tokens_to_ids("<|endoftext|>"),
    }


def _write_card(path: Path, arch: str) -> None:
    card = {
        "family": "transformers",
        "arch": arch,
        "random": True,
        "source": "curator models demo (random weights)",
    }
    (path / "curator.json").write_text(json.dumps(card, indent=2))


def write_demo_vlm(
    directory: str | os.PathLike | None = None, name: str = "demo-qwen2.5-vl", seed: int = 0
) -> str:
    """A tiny random-weight Qwen2.5-VL (vision tower, M-RoPE text model, processor with image and video
    paths) saved with `save_pretrained`, configured for the "captioning" role. Returns its model id."""
    import torch
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration, Qwen2_5_VLProcessor
    from transformers.models.qwen2_vl.image_processing_qwen2_vl import Qwen2VLImageProcessor
    from transformers.models.qwen2_vl.video_processing_qwen2_vl import Qwen2VLVideoProcessor

    model_id = f"transformers/{name}"
    path = model_path(model_id, directory)
    path.mkdir(parents=True, exist_ok=True)
    tokenizer = _demo_tokenizer()
    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in SPECIAL_TOKENS}
    text = _tiny_text_config(tokenizer) | {"rope_scaling": {"type": "mrope", "mrope_section": [2, 3, 3]}}
    config = Qwen2_5_VLConfig(
        text_config=text,
        vision_config={
            "depth": 2,
            "hidden_size": 64,
            "intermediate_size": 128,
            "num_heads": 2,
            "out_hidden_size": 64,
            "patch_size": 14,
            "spatial_merge_size": 2,
            "temporal_patch_size": 2,
            "window_size": 56,
            "fullatt_block_indexes": [1],
        },
        image_token_id=ids["<|image_pad|>"],
        video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"],
        vision_end_token_id=ids["<|vision_end|>"],
    )
    torch.manual_seed(seed)
    Qwen2_5_VLForConditionalGeneration(config).save_pretrained(path)
    processor = Qwen2_5_VLProcessor(
        image_processor=Qwen2VLImageProcessor(),
        tokenizer=tokenizer,
        video_processor=Qwen2VLVideoProcessor(),
        chat_template=CHAT_TEMPLATE,
    )
    processor.save_pretrained(path)
    _write_card(path, "Qwen2_5_VLForConditionalGeneration")
    set_configured("captioning", model_id, directory)
    return model_id


def write_demo_text_model(
    directory: str | os.PathLike | None = None, name: str = "demo-qwen2-lm", seed: int = 0
) -> str:
    """A tiny random-weight Qwen2 causal LM with the demo tokenizer, configured for "caption_enhancement"."""
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    model_id = f"transformers/{name}"
    path = model_path(model_id, directory)
    path.mkdir(parents=True, exist_ok=True)
    tokenizer = _demo_tokenizer()
    torch.manual_seed(seed)
    Qwen2ForCausalLM(Qwen2Config(**_tiny_text_config(tokenizer))).save_pretrained(path)
    tokenizer.save_pretrained(path)
    _write_card(path, "Qwen2ForCausalLM")
    set_configured("caption_enhancement", model_id, directory)
    return model_id


def download_hf_model(repo_id: str, role: str, directory: str | os.PathLike | None = None) -> str:
    """Snapshot a hub repository (needs network) into the model directory and configure it for `role`
    ("captioning" or "caption_enhancement")."""
    from huggingface_hub import snapshot_download

    model_id = "transformers/" + repo_id.replace("/", "--")
    path = model_path(model_id, directory)
    snapshot_download(repo_id, local_dir=path)
    card = {"family": "transformers", "random": False, "source": f"huggingface {repo_id}"}
    (path / "curator.json").write_text(json.dumps(card, indent=2))
    set_configured(role, model_id, directory)
    return model_id
