"""Captions for clips: windows of frames -> a vision-language model -> text, optionally rewritten by a
text LM. Captions are stored per window under the model id (`CaptionWindow.captions[model_id]`)."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np

from curator_core.models.transformers_models import TextModel, VisionLanguageModel
from curator_core.resources import Resources
from curator_core.stage import ProcessingStage
from curator_core.tasks import CaptionWindow, Clip, FrameKey, VideoTask
from curator_core.video.model_stage import ClipModelStage

logger = logging.getLogger(__name__)

PROMPTS = {
    "default": "Describe this video in detail: the setting, the objects and people, what moves and how, "
    "and how the camera moves.",
    "short": "Describe this video in one sentence.",
    "motion": "Describe the motion in this video: what moves, in which direction, and how fast.",
}
ENHANCE_PROMPT = (
    "Rewrite this video caption as one fluent, detailed paragraph. Keep every fact and add nothing that "
    "is not in it.\n\nCaption: {caption}"
)
# 2 fps at 252 px high: Qwen-VL's 28-px patch grid, about 9x16 visual tokens per frame pair.
CAPTION_FRAME_KEY = FrameKey(fps=2.0, height=252)


@dataclass
class CaptionPreparationStage(ProcessingStage[VideoTask, VideoTask]):
    """Cuts each clip's frames (under `frame_key`, from ClipFrameExtractionStage) into caption windows of
    `window_size` frames, one per prompt variant. A tail shorter than `min_window_frames` joins the
    window before it.

    prompt_variants: keys of PROMPTS; `prompt` (a custom text) replaces them as prompt id "custom".
    """

    frame_key: FrameKey = CAPTION_FRAME_KEY
    window_size: int = 64
    min_window_frames: int = 4
    prompt_variants: list[str] = field(default_factory=lambda: ["default"])
    prompt: str | None = None
    name: str = "caption_preparation"
    resources: Resources = Resources(cpus=0.25)

    def __post_init__(self) -> None:
        if self.window_size < 1:
            raise ValueError(f"window_size must be >= 1 frame, got {self.window_size}")
        unknown = [p for p in self.prompt_variants if p not in PROMPTS]
        if unknown and not self.prompt:
            raise ValueError(f"unknown prompt variants {unknown}; known: {sorted(PROMPTS)}")

    def inputs(self) -> tuple[list[str], list[str]]:
        return [], ["clips"]

    def outputs(self) -> tuple[list[str], list[str]]:
        return [], ["clips"]

    @property
    def prompts(self) -> dict[str, str]:
        return {"custom": self.prompt} if self.prompt else {p: PROMPTS[p] for p in self.prompt_variants}

    def process(self, task: VideoTask) -> VideoTask:
        for clip in task.data.clips:
            frames = clip.extracted_frames.get(self.frame_key)
            if frames is None or not len(frames):
                clip.errors["caption_preparation"] = (
                    f"no frames under {self.frame_key} (add ClipFrameExtractionStage with that key)"
                )
                continue
            clip.caption_windows = [
                CaptionWindow(start, end, prompt_id, prompt)
                for start, end in window_bounds(len(frames), self.window_size, self.min_window_frames)
                for prompt_id, prompt in self.prompts.items()
            ]
        return task


def window_bounds(num_frames: int, window_size: int, min_window_frames: int) -> list[tuple[int, int]]:
    """[start, end) frame ranges covering all frames; a short tail merges into the previous window."""
    bounds = [(s, min(s + window_size, num_frames)) for s in range(0, num_frames, window_size)]
    if len(bounds) > 1 and bounds[-1][1] - bounds[-1][0] < min_window_frames:
        last = bounds.pop()
        bounds[-1] = (bounds[-1][0], last[1])
    return bounds


@dataclass
class CaptionGenerationStage(ClipModelStage):
    """Captions every prepared window with a vision-language model (transformers AutoProcessor +
    AutoModelForImageTextToText) from the model directory; windows of all clips in a `process_batch`
    call go through `generate` together, `windows_per_generate` at a time. Greedy unless `sample`.

    model: a model id ("transformers/<name>"); None uses the "captioning" model of models.json.
    """

    model: str | None = None
    model_dir: str | None = None
    frame_key: FrameKey = CAPTION_FRAME_KEY
    max_new_tokens: int = 256
    windows_per_generate: int = 8
    sample: bool = False
    device: str | None = None
    name: str = "caption_generation"
    batch_size: int = 4
    resources: Resources = Resources(cpus=1.0)
    error_key: ClassVar[str] = "captioning"
    role: ClassVar[str] = "captioning"
    model_class: ClassVar[type] = VisionLanguageModel

    def run_model(self, tasks: list[VideoTask]) -> None:
        work: list[tuple[Clip, CaptionWindow, np.ndarray]] = []
        for task in tasks:
            for clip in task.data.clips:
                frames = clip.extracted_frames.get(self.frame_key)
                if frames is None:
                    if clip.caption_windows:
                        clip.errors[self.error_key] = f"no frames under {self.frame_key}"
                    continue
                for window in clip.caption_windows:
                    work.append((clip, window, frames[window.start_frame : window.end_frame]))
        for start in range(0, len(work), self.windows_per_generate):
            chunk = work[start : start + self.windows_per_generate]
            texts = self._model.caption(
                [frames for _, _, frames in chunk],
                [window.prompt for _, window, _ in chunk],
                max_new_tokens=self.max_new_tokens,
                fps=self.frame_key.fps,
                sample=self.sample,
            )
            for (clip, window, _), text in zip(chunk, texts, strict=True):
                window.captions[self.model_id] = text
                clip.metadata["caption_random_weights"] = self._model.random_weights


@dataclass
class CaptionEnhancementStage(ClipModelStage):
    """Rewrites each window's caption (from `caption_model`, or the window's first caption) with a text LM
    (AutoModelForCausalLM) into `CaptionWindow.enhanced_captions[model_id]`.

    model: a model id; None uses the "caption_enhancement" model of models.json.
    """

    model: str | None = None
    model_dir: str | None = None
    caption_model: str | None = None
    prompt: str = ENHANCE_PROMPT
    max_new_tokens: int = 256
    prompts_per_generate: int = 16
    sample: bool = False
    device: str | None = None
    name: str = "caption_enhancement"
    batch_size: int = 4
    resources: Resources = Resources(cpus=1.0)
    role: ClassVar[str] = "caption_enhancement"
    model_class: ClassVar[type] = TextModel

    def run_model(self, tasks: list[VideoTask]) -> None:
        work: list[tuple[CaptionWindow, str]] = []
        for task in tasks:
            for clip in task.data.clips:
                for window in clip.caption_windows:
                    caption = (
                        window.captions.get(self.caption_model)
                        if self.caption_model
                        else next(iter(window.captions.values()), None)
                    )
                    if caption is not None:
                        work.append((window, self.prompt.format(caption=caption)))
        for start in range(0, len(work), self.prompts_per_generate):
            chunk = work[start : start + self.prompts_per_generate]
            texts = self._model.generate(
                [p for _, p in chunk], max_new_tokens=self.max_new_tokens, sample=self.sample
            )
            for (window, _), text in zip(chunk, texts, strict=True):
                window.enhanced_captions[self.model_id] = text
