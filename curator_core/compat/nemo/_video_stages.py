"""NeMo Curator's video stages, with NeMo's parameters and units, mapped onto ours.

Each class here is a `CompositeStage` named and parameterised as NeMo's stage of the same name; it
decomposes into our stages when the pipeline is built. Where a parameter has another unit here it is
converted (motion thresholds); where it asks for hardware or software this machine lacks (NVDEC/NVENC,
PyNvVideoCodec, libopenh264) our CPU path runs instead and one note says so (`substitution`); where it
has no counterpart (vLLM knobs, Xenna worker counts) it is accepted and noted when set. Models we cannot
run (Cosmos-Embed1, InternVideo2) fail when the pipeline is built, naming the supported alternative.
The module paths users import from (`curator_core.compat.nemo.stages.video...`) re-export these.
"""

from __future__ import annotations

import enum
import json
import logging
import math
import posixpath
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import fsspec
import pyarrow as pa
import pyarrow.parquet as pq

from curator_core.models import registry
from curator_core.resources import Resources
from curator_core.stage import CompositeStage, ProcessingStage
from curator_core.tasks import FrameKey, VideoTask
from curator_core.video import (
    captioning,
    embedding,
    filtering,
    frames,
    motion,
    preview,
    reader,
    shots,
    splitting,
    transcoding,
    writer,
)
from curator_core.video.io import source_id

logger = logging.getLogger("curator_core.compat.nemo")
_NOTED: set[str] = set()

# NeMo's motion score divides a vector's length by (width + height); ours by the diagonal. For 16:9
# frames (W + H) / diagonal = 25 / sqrt(16^2 + 9^2) = 1.362, so ours = NeMo's x 1.362 (4:3: 1.4).
NEMO_TO_OUR_MOTION = 25 / math.hypot(16, 9)
CPU_ENCODERS = {"libopenh264": "libx264", "h264_nvenc": "libx264", "hevc_nvenc": "libx265"}
UNSUPPORTED_EMBEDDINGS = {
    "cosmos-embed1": "Cosmos-Embed1",
    "internvideo2": "InternVideo2",
}
EMBEDDING_DIRS = {"cosmos-embed1": "ce1", "internvideo2": "iv2"}  # NeMo's output folder prefixes


def substitution(stage: str, message: str) -> None:
    """Log once per process what a NeMo parameter became here."""
    key = f"{stage}: {message}"
    if key not in _NOTED:
        _NOTED.add(key)
        logger.warning("NeMo compat: %s", key)


def _model_dir(stage: str, model_dir: str | None) -> str:
    """NeMo's model_dir when it is one of our model directories (a models.json), else ours."""
    if model_dir and (Path(model_dir) / "models.json").exists():
        return str(Path(model_dir).resolve())
    ours = registry.location(None)
    if model_dir:
        substitution(stage, f"model_dir={model_dir!r} is not a curator model directory; using {ours}")
    return ours


def _gpu_knob(stage: str, **knobs: Any) -> None:
    """Note NeMo's GPU-only knobs that this stage's CPU path replaces."""
    for knob, value in knobs.items():
        if value:
            substitution(stage, f"{knob}={value!r} asks for a GPU path; running the CPU path")


def _gpu_share(stage: str, knob: str, gpu_memory_gb: float) -> Resources | None:
    """NeMo's per-worker GPU request: honoured (as a share of one GPU) where CUDA is present, else noted."""
    if not gpu_memory_gb:
        return None
    try:
        import torch

        cuda = torch.cuda.is_available()
    except ImportError:
        cuda = False
    if cuda:
        return Resources(cpus=1.0, gpu_memory_gb=float(gpu_memory_gb))
    substitution(stage, f"{knob}={gpu_memory_gb!r}: no CUDA device here; running on CPU")
    return None


class FrameExtractionPolicy(enum.Enum):
    first = 0
    middle = 1
    last = 2
    sequence = 3


class FramePurpose(enum.Enum):
    AESTHETICS = 1  # its value is the frame rate NeMo extracts for it
    EMBEDDINGS = 2


class _Mapped(CompositeStage[VideoTask, VideoTask]):
    """A NeMo stage: decomposes into ours, named `<nemo name>` (one stage) or `<nemo name>.<ours>`, or
    keeping our stages' own names (`keeps_our_names`: where ours is itself a composite of several)."""

    keeps_our_names: ClassVar[bool] = False

    def _ours(self) -> list[ProcessingStage]:
        raise NotImplementedError

    def decompose(self) -> list[ProcessingStage]:
        stages = self._ours()
        if self.keeps_our_names:
            return stages
        if len(stages) == 1:
            return [stages[0].with_(name=self.name)]
        return [s.with_(name=f"{self.name}.{s.name}") for s in stages]


@dataclass
class VideoReader(_Mapped):
    input_video_path: str = ""
    video_limit: int | None = None
    verbose: bool = False
    keeps_our_names: ClassVar[bool] = True  # file_listing, video_reader

    def __post_init__(self) -> None:
        self.name = "video_reader"
        if "://" not in self.input_video_path and not Path(self.input_video_path).exists():
            raise FileNotFoundError(f"Video directory does not exist: {self.input_video_path}")

    def _ours(self) -> list[ProcessingStage]:
        path = self.input_video_path
        path = path if "://" in path else str(Path(path).resolve())  # resolved here, not on a worker
        limit = self.video_limit if self.video_limit and self.video_limit > 0 else 0
        return reader.VideoReader(path, limit=limit).decompose()


@dataclass
class FixedStrideExtractorStage(_Mapped):
    clip_len_s: float = 10.0
    clip_stride_s: float = 10.0
    min_clip_length_s: float = 2.0
    limit_clips: int = 0
    verbose: bool = False
    name: str = "fixed_stride_extractor"

    def _ours(self) -> list[ProcessingStage]:
        return [
            splitting.FixedStrideSplittingStage(
                clip_len_s=self.clip_len_s,
                clip_stride_s=self.clip_stride_s,
                min_clip_length_s=self.min_clip_length_s,
                limit_clips=max(0, self.limit_clips),
            )
        ]


@dataclass
class VideoFrameExtractionStage(_Mapped):
    """NeMo decodes every frame at 27x48 for TransNetV2 here; our shot splitting decodes what its
    detector needs itself, so this stage passes videos through."""

    output_hw: tuple[int, int] = (27, 48)
    pyncv_batch_size: int = 64
    decoder_mode: str = "pynvc"
    verbose: bool = False
    name: str = "video_frame_extraction"

    def _ours(self) -> list[ProcessingStage]:
        _gpu_knob(self.name, decoder_mode=self.decoder_mode if self.decoder_mode != "ffmpeg_cpu" else "")
        substitution(self.name, "frames are decoded by the shot splitter itself; this stage passes videos on")
        return [_PassThrough()]


class _PassThrough(ProcessingStage[VideoTask, VideoTask]):
    name = "pass_through"
    resources = Resources(cpus=0.1)

    def process(self, task: VideoTask) -> VideoTask:
        return task


@dataclass
class TransNetV2ClipExtractionStage(_Mapped):
    model_dir: str | None = None
    threshold: float = 0.4
    min_length_s: float | None = 2.0
    max_length_s: float | None = 10.0
    max_length_mode: str = "stride"
    crop_s: float | None = 0.5
    entire_scene_as_clip: bool = True
    gpu_memory_gb: int = 10
    limit_clips: int = -1
    verbose: bool = False
    name: str = "transnetv2_clip_extraction"

    def _ours(self) -> list[ProcessingStage]:
        weights = None
        if self.model_dir and Path(self.model_dir).is_file():
            weights = str(Path(self.model_dir).resolve())
        elif self.model_dir:
            substitution(
                self.name, f"model_dir={self.model_dir!r}: using the TransNetV2 weights of the transnet extra"
            )
        if not self.entire_scene_as_clip:
            substitution(
                self.name, "entire_scene_as_clip=False: scenes are cut by min/max length as with True"
            )
        stage = splitting.ShotSplittingStage(
            min_length_s=self.min_length_s or 0.0,
            max_length_s=self.max_length_s,
            max_length_mode=self.max_length_mode,
            crop_s=self.crop_s or 0.0,
            detector=shots.TransNetV2Detector(threshold=self.threshold, weights=weights),
        )
        gpu = _gpu_share(self.name, "gpu_memory_gb", self.gpu_memory_gb)
        return [stage.with_(resources=gpu) if gpu else stage]


@dataclass
class ClipTranscodingStage(_Mapped):
    num_cpus_per_worker: float = 6.0
    encoder: str = "h264_nvenc"
    encoder_threads: int = 1
    encode_batch_size: int = 16
    nb_streams_per_gpu: int = 3
    use_hwaccel: bool = False
    use_input_bit_rate: bool = False
    num_clips_per_chunk: int = 32
    ffmpeg_verbose: bool = False
    verbose: bool = False
    name: str = "clip_transcoding"
    keeps_our_names: ClassVar[bool] = True  # video_segmenting, clip_encode

    def _ours(self) -> list[ProcessingStage]:
        encoder = CPU_ENCODERS.get(self.encoder, self.encoder)
        if encoder != self.encoder:
            substitution(
                self.name, f"encoder={self.encoder!r} is not in this FFmpeg build / machine; using {encoder}"
            )
        _gpu_knob(self.name, use_hwaccel=self.use_hwaccel)
        if self.use_input_bit_rate:
            substitution(self.name, "use_input_bit_rate=True: clips are encoded at crf 23 instead")
        return transcoding.ClipTranscodingStage(
            encoder=encoder, cpus_per_worker=self.num_cpus_per_worker
        ).decompose()


@dataclass
class ClipFrameExtractionStage(_Mapped):
    extraction_policies: tuple[FrameExtractionPolicy, ...] = (FrameExtractionPolicy.sequence,)
    extract_purposes: list[FramePurpose] | None = None
    target_res: tuple[int, int] | None = None
    verbose: bool = False
    num_cpus: int = 3
    target_fps: list[float | int] | None = None
    name: str = "clip_frame_extraction"

    def _ours(self) -> list[ProcessingStage]:
        rates = self.target_fps or [p.value for p in self.extract_purposes or []] or [2]
        height, width = self.target_res if self.target_res and min(self.target_res) > 0 else (None, None)
        if tuple(self.extraction_policies) != (FrameExtractionPolicy.sequence,):
            substitution(self.name, "only FrameExtractionPolicy.sequence is supported; extracting sequences")
        keys = [FrameKey(fps=float(r), height=height, width=width) for r in rates]
        return [frames.ClipFrameExtractionStage(keys=keys)]


@dataclass
class MotionVectorDecodeStage(_Mapped):
    """NeMo decodes motion vectors in one stage and filters in the next; ours scores both in one pass
    over the codec's vectors, so this stage scores and the filter decides."""

    num_cpus_per_worker: float = 6.0
    verbose: bool = False
    target_fps: float = 2.0
    target_duration_ratio: float = 0.5
    name: str = "motion_vector_decoding"

    def _ours(self) -> list[ProcessingStage]:
        return [motion.MotionScoringStage()]


@dataclass
class MotionFilterStage(_Mapped):
    score_only: bool = False
    global_mean_threshold: float = 0.00098
    per_patch_min_256_threshold: float = 0.000001
    num_gpus_per_worker: float = 0
    motion_filter_batch_size: int = 256
    verbose: bool = False
    name: str = "motion_filter"

    def _ours(self) -> list[ProcessingStage]:
        _gpu_knob(self.name, num_gpus_per_worker=self.num_gpus_per_worker)
        return [
            motion.MotionFilterStage(
                global_threshold=self.global_mean_threshold * NEMO_TO_OUR_MOTION,
                patch_threshold=self.per_patch_min_256_threshold * NEMO_TO_OUR_MOTION,
                score_only=self.score_only,
            )
        ]


@dataclass
class ClipAestheticFilterStage(_Mapped):
    """Frames at `target_fps`, their CLIP embeddings (the model the aesthetic model's card names), then
    the LAION aesthetic score (same scale as NeMo's) reduced over frames by `reduction`."""

    model_dir: str | None = "models/clip_aesthetic"
    score_threshold: float = 0.5
    reduction: str = "min"
    target_fps: float = 1.0
    num_gpus_per_worker: float = 0.25
    verbose: bool = False
    name: str = "clip_aesthetic_filter"

    def _ours(self) -> list[ProcessingStage]:
        directory = _model_dir(self.name, self.model_dir)
        aesthetic = registry.configured("aesthetic", directory)
        clip_model = registry.read_card(aesthetic, directory).get("clip_model") or registry.configured(
            "embedding", directory
        )
        key = FrameKey(fps=self.target_fps, height=224, width=224)
        embedder = embedding.ClipEmbeddingStage(model=clip_model, model_dir=directory, frame_key=key)
        if (
            self.num_gpus_per_worker
        ):  # NeMo asks for a fraction of a GPU; ours counts GPU memory or whole GPUs
            substitution(
                self.name,
                f"num_gpus_per_worker={self.num_gpus_per_worker}: embeddings use cuda when the worker sees one",
            )
        return [
            frames.ClipFrameExtractionStage(keys=[key]),
            embedder,
            filtering.AestheticFilterStage(
                threshold=self.score_threshold, reduction=self.reduction, model=aesthetic, model_dir=directory
            ),
        ]


@dataclass
class CaptionPreparationStage(_Mapped):
    model_variant: str = "qwen2.5"
    prompt_variant: str = "default"
    prompt_text: str | None = None
    verbose: bool = False
    sampling_fps: float = 2.0
    window_size: int = 256
    remainder_threshold: int = 128
    preprocess_dtype: str = "float32"
    generate_previews: bool = True
    name: str = "caption_preparation"

    def _ours(self) -> list[ProcessingStage]:
        if self.prompt_variant not in captioning.PROMPTS and not self.prompt_text:
            substitution(
                self.name, f"prompt_variant={self.prompt_variant!r} is not one of ours; using 'default'"
            )
        key = FrameKey(fps=self.sampling_fps, height=captioning.CAPTION_FRAME_KEY.height)
        return [
            frames.ClipFrameExtractionStage(keys=[key]),
            captioning.CaptionPreparationStage(
                frame_key=key,
                window_size=self.window_size,
                min_window_frames=min(self.remainder_threshold, self.window_size),
                prompt_variants=[
                    self.prompt_variant if self.prompt_variant in captioning.PROMPTS else "default"
                ],
                prompt=self.prompt_text,
            ),
        ]


@dataclass
class CaptionGenerationStage(_Mapped):
    model_dir: str | None = "models/qwen"
    model_variant: str = "qwen2.5"
    caption_batch_size: int = 16
    fp8: bool = False
    max_output_tokens: int = 512
    model_does_preprocess: bool = False
    disable_mmcache: bool = False
    generate_stage2_caption: bool = False
    stage2_prompt_text: str | None = None
    vllm_kwargs: dict[str, Any] = field(default_factory=dict)
    verbose: bool = False
    sampling_fps: float = 2.0  # ours: the frames CaptionPreparationStage extracted (its sampling_fps)
    name: str = "caption_generation"

    def _ours(self) -> list[ProcessingStage]:
        directory = _model_dir(self.name, self.model_dir)
        if self.vllm_kwargs or self.fp8:
            substitution(
                self.name, "vLLM options do not apply: captions come from transformers on this worker"
            )
        return [
            captioning.CaptionGenerationStage(
                model=registry.configured("captioning", directory),
                model_dir=directory,
                frame_key=FrameKey(fps=self.sampling_fps, height=captioning.CAPTION_FRAME_KEY.height),
                max_new_tokens=self.max_output_tokens,
                windows_per_generate=self.caption_batch_size,
            )
        ]


@dataclass
class CaptionEnhancementStage(_Mapped):
    model_dir: str | None = "models/qwen"
    model_variant: str = "qwen2.5"
    captioning_model_variant: str = "qwen2.5"
    prompt_variant: str = "default"
    prompt_text: str | None = None
    model_batch_size: int = 128
    fp8: bool = False
    max_output_tokens: int = 512
    vllm_kwargs: dict[str, Any] = field(default_factory=dict)
    verbose: bool = False
    name: str = "caption_enhancement"

    def _ours(self) -> list[ProcessingStage]:
        directory = _model_dir(self.name, self.model_dir)
        prompt = self.prompt_text if self.prompt_text and "{caption}" in self.prompt_text else None
        if self.prompt_text and prompt is None:
            prompt = self.prompt_text + "\n\nCaption: {caption}"
        return [
            captioning.CaptionEnhancementStage(
                model=registry.configured("caption_enhancement", directory),
                model_dir=directory,
                max_new_tokens=self.max_output_tokens,
                prompts_per_generate=self.model_batch_size,
                **({"prompt": prompt} if prompt else {}),
            )
        ]


@dataclass
class PreviewStage(_Mapped):
    target_fps: float = 1.0
    target_height: int = 240
    verbose: bool = False
    num_cpus_per_worker: float = 4.0
    compression_level: int = 6
    quality: int = 50
    name: str = "preview"

    def _ours(self) -> list[ProcessingStage]:
        if (self.compression_level, self.quality) != (6, 50):
            substitution(self.name, "compression_level/quality: previews use our WebP settings")
        return [preview.PreviewStage(fps=self.target_fps, height=self.target_height)]


@dataclass
class _UnsupportedEmbedding(_Mapped):
    model_dir: str | None = None
    algorithm: str = ""

    def _ours(self) -> list[ProcessingStage]:
        raise ValueError(
            f"{UNSUPPORTED_EMBEDDINGS[self.algorithm]} ({type(self).__name__}) cannot run here: its weights and "
            "code are not part of this framework. Use curator_core.video.embedding.ClipEmbeddingStage "
            "(open_clip, any model in the model directory; `curator models demo` or `curator models "
            "download`) and ClipWriterStage(embedding_algorithm=...) for NeMo's output layout"
        )


def unsupported_embedding(class_name: str, algorithm: str) -> type:
    """NeMo's Cosmos-Embed1 / InternVideo2 stage classes: accept NeMo's arguments, fail at build."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        _UnsupportedEmbedding.__init__(self, model_dir=kwargs.get("model_dir"), algorithm=algorithm)
        self.name = kwargs.get("name", class_name)

    return type(class_name, (_UnsupportedEmbedding,), {"__init__": __init__, "__module__": __name__})


@dataclass
class ClipWriterStage(_Mapped):
    """Our writer (media under `clips/<uuid>.mp4`, as NeMo's) and NeMo's layout beside it: per-clip
    `metas/v0/<uuid>.json`, previews `previews/<uuid>/<start>_<end>.webp`, embeddings
    `<ce1|iv2>_embd_parquet/<video>.parquet` (columns id, embedding), which NeMo's tools read."""

    output_path: str = ""
    input_path: str = ""
    upload_clips: bool = True
    dry_run: bool = False
    generate_embeddings: bool = True
    generate_previews: bool = True
    generate_captions: bool = True
    embedding_algorithm: str = "cosmos-embed1"
    caption_models: list[str] | None = None
    enhanced_caption_models: list[str] | None = None
    verbose: bool = False
    max_workers: int = 6
    log_stats: bool = False
    name: str = "clip_writer"

    def decompose(self) -> list[ProcessingStage]:
        if self.dry_run:
            substitution(self.name, "dry_run=True: nothing is written")
            return [_PassThrough().with_(name=self.name)]
        root = self.output_path if "://" in self.output_path else str(Path(self.output_path).resolve())
        layout = NemoLayoutWriterStage(
            output_path=root,
            embeddings_dir=EMBEDDING_DIRS.get(self.embedding_algorithm, self.embedding_algorithm)
            if self.generate_embeddings
            else None,
            previews=self.generate_previews,
            captions=self.generate_captions,
            name=f"{self.name}.nemo_layout",
        )
        return [layout, writer.ClipWriterStage(output_root=root).with_(name=self.name)]


@dataclass
class NemoLayoutWriterStage(ProcessingStage[VideoTask, VideoTask]):
    output_path: str = ""
    embeddings_dir: str | None = "ce1"
    previews: bool = True
    captions: bool = True
    name: str = "nemo_layout_writer"
    resources: Resources = Resources(cpus=0.25)

    def process(self, task: VideoTask) -> VideoTask:
        video = task.data
        fs, root = fsspec.core.url_to_fs(self.output_path)
        embeddings: list[dict] = []
        for clip in video.clips:
            self._put(fs, posixpath.join(root, "metas", "v0", f"{clip.uuid}.json"), self._meta(clip))
            webp = clip.metadata.get("preview_webp")
            if self.previews and webp:
                for window in clip.caption_windows or [None]:
                    span = f"{window.start_frame}_{window.end_frame}" if window else "0_0"
                    self._put(fs, posixpath.join(root, "previews", clip.uuid, f"{span}.webp"), webp)
            if self.embeddings_dir and clip.embeddings:
                vector = next(iter(sorted(clip.embeddings.items())))[1]
                embeddings.append({"id": clip.uuid, "embedding": [float(x) for x in vector]})
        if embeddings:
            name = f"{source_id(video.input_path)}{f'_{video.segment[0]}' if video.segment else ''}.parquet"
            path = posixpath.join(root, f"{self.embeddings_dir}_embd_parquet", name)
            fs.makedirs(posixpath.dirname(path), exist_ok=True)
            with fs.open(path, "wb") as handle:
                pq.write_table(pa.Table.from_pylist(embeddings), handle)
        return task

    def _meta(self, clip) -> bytes:
        data: dict[str, Any] = {
            "span_uuid": clip.uuid,
            "source_video": clip.source,
            "duration_span": list(clip.span),
            "clip_location": f"clips/{clip.uuid}.mp4",
        }
        if clip.motion_score_global_mean is not None:
            data["motion_score"] = {
                "global_mean": clip.motion_score_global_mean / NEMO_TO_OUR_MOTION,
                "per_patch_min_256": clip.scores.get("motion_patch_min", 0.0) / NEMO_TO_OUR_MOTION,
            }
        if clip.aesthetic_score is not None:
            data["aesthetic_score"] = clip.aesthetic_score
        if clip.errors:
            data["errors"] = list(clip.errors)
        data["windows"] = []
        for window in clip.caption_windows if self.captions else []:
            entry: dict[str, Any] = {"start_frame": window.start_frame, "end_frame": window.end_frame}
            for model, text in window.captions.items():
                entry[f"{model}_caption"] = text
            for model, text in window.enhanced_captions.items():
                entry[f"{model}_enhanced_caption"] = text
            data["windows"].append(entry)
        data["valid"] = bool(clip.encoded_data and data["windows"])
        return json.dumps(data, indent=2).encode()

    @staticmethod
    def _put(fs, path: str, data: bytes) -> None:
        fs.makedirs(posixpath.dirname(path), exist_ok=True)
        fs.pipe_file(path, data)
