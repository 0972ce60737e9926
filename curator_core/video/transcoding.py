"""Cutting and encoding clips in-process with PyAV: frame-accurate, decode once per segment.

A long video is first cut into segments of consecutive clips (`VideoSegmentingStage`), so that its clips
spread over every worker; each segment is decoded once, from the keyframe before its first clip, and every
decoded frame goes to the encoder of each clip whose span holds it (overlapping clips work too).
Rotation and sample aspect ratio are carried into the output (display matrix and SAR), so clips display
the right way up without re-rotating pixels.
"""

from __future__ import annotations

import io
import logging
import math
from dataclasses import dataclass, replace
from fractions import Fraction
from typing import ClassVar

import av
from av.video.frame import PictureType

from curator_core.resources import Resources
from curator_core.stage import CompositeStage, ProcessingStage
from curator_core.tasks import Clip, VideoTask
from curator_core.video.heap import deterministic_heap
from curator_core.video.io import Damage, VideoInputError, open_container, video_stream
from curator_core.video.reader import BATCH_CPUS, BATCH_VIDEOS
from curator_core.video.smart_cut import DECODED_WHOLE, REENCODE, SMART_CUT, smart_cut_segment

logger = logging.getLogger(__name__)

AUDIO_SLACK_S = 2.0  # how far past the segment end demuxing goes to collect audio interleaved late
ENCODERS_WITH_CRF = {"libx264", "libx265", "libvpx-vp9", "libsvtav1"}


REUSED_SEGMENTS = "reused_segments"  # task.metadata: {"count", "done"} segments stored already (store.reuse)


@dataclass
class VideoSegmentingStage(ProcessingStage[VideoTask, VideoTask]):
    """Fans one video's clips out into tasks of consecutive clips spanning at most `segment_s` seconds,
    leaving out the segments an earlier run of the step stored (`task.metadata[REUSED_SEGMENTS]`).

    A small batch gets shorter segments: enough that the batch makes `segments_per_cpu` segments per CPU
    of the cluster, so the last wave of encodes does not leave CPUs idle (2 videos of 60 s on 2 CPUs: 3
    segments of 20 s each rather than 2 of 30 s), but none shorter than `min_segment_s`, below which a
    segment's own costs (a task, opening and seeking the file) outweigh what it balances. A large batch
    keeps `segment_s`."""

    segment_s: float = 30.0
    segments_per_cpu: float = 3.0
    min_segment_s: float = 10.0
    name: str = "video_segmenting"
    fans_out: ClassVar[bool] = True
    resources: Resources = Resources(cpus=0.1)

    def inputs(self) -> tuple[list[str], list[str]]:
        return [], ["clips"]

    def process(self, task: VideoTask) -> list[VideoTask]:
        video = task.data
        clips = sorted(video.clips, key=lambda c: c.span)
        if len(clips) <= 1:
            return [task]
        segment_s = self._segment_s(task, clips)
        groups: list[list[Clip]] = [[]]
        for clip in clips:
            group = groups[-1]
            if group and clip.span[1] - group[0].span[0] > segment_s + 1e-6:
                groups.append([clip])
            else:
                group.append(clip)
        if len(groups) == 1:
            return [task]
        reused = task.metadata.pop(REUSED_SEGMENTS, None) or {"count": len(groups), "done": []}
        if reused["count"] != len(groups):
            logger.warning("%s: %d segments now, %d when its stored part was made; making them all",
                           video.input_path, len(groups), reused["count"])  # fmt: skip
            reused = {"done": []}
        out = []
        for index, group in enumerate(groups):
            if index in reused["done"]:
                continue
            seg_video = replace(
                video, clips=group, filtered_clips=[], errors=dict(video.errors), segment=(index, len(groups))
            )
            out.append(
                type(task)(dataset_name=task.dataset_name, data=seg_video, metadata=dict(task.metadata))
            )
        return out

    def _segment_s(self, task: VideoTask, clips: list[Clip]) -> float:
        """`segment_s`, or down to `min_segment_s` where the batch is too small for `segments_per_cpu`."""
        videos, cpus = task.metadata.get(BATCH_VIDEOS), task.metadata.get(BATCH_CPUS)
        if not videos or not cpus:
            return self.segment_s
        span = clips[-1].span[1] - clips[0].span[0]
        wanted = min(math.ceil(self.segments_per_cpu * cpus / videos), int(span // self.min_segment_s))
        return min(self.segment_s, span / wanted) if wanted > 1 else self.segment_s


@dataclass
class ClipEncodeStage(ProcessingStage[VideoTask, VideoTask]):
    """Decodes a segment once and encodes each of its clips to an MP4 held in `clip.encoded_data`. With
    `smart_cut`, a clip whose source already has the output's format copies the source's packets between
    keyframes and re-encodes only the frames around its cuts (video.smart_cut); every clip records which
    path made it, and why it was re-encoded (`clip.metadata["encoding"]`, `["encoding_reason"]`)."""

    encoder: str = "libx264"
    crf: int = 23
    preset: str = "veryfast"
    target_height: int | None = None
    target_fps: float | None = None
    bitrate: str | None = None  # for encoders without CRF (e.g. mpeg4, nvenc): "4M"
    include_audio: bool = False  # re-encode the first audio stream's span to AAC alongside the video
    smart_cut: bool = True
    name: str = "clip_encode"
    resources: Resources = Resources(cpus=1.0)

    def inputs(self) -> tuple[list[str], list[str]]:
        return [], ["clips"]

    def outputs(self) -> tuple[list[str], list[str]]:
        return [], ["clips"]

    @property
    def threads(self) -> int:
        """Decoder and encoder threads: one per CPU the stage asked for."""
        return max(1, round(self.resources.cpus))

    def __post_init__(self) -> None:
        # Checked where the pipeline is built, not in a worker's `setup`: without per-worker state the
        # stage runs on Ray's warm pooled workers instead of actors that each take seconds to start.
        if self.encoder not in av.codecs_available:
            raise ValueError(f"encoder {self.encoder!r} is not in this FFmpeg build (PyAV {av.__version__})")

    def process(self, task: VideoTask) -> VideoTask:
        video = task.data
        if video.errors.get("read") or not video.clips:
            return task
        rotation = video.metadata.rotation_deg if video.metadata else 0
        with deterministic_heap():  # libx264 reads memory it never wrote (video.heap)
            to_encode = self._smart_cut(video, rotation, verify=not task.metadata.get(DECODED_WHOLE))
            try:
                if to_encode:
                    self._encode_segment(video.input_path, to_encode, rotation, video)
            except VideoInputError as exc:
                video.errors["transcode"] = exc.reason
        kept, dropped = [], []
        for clip in video.clips:
            (kept if clip.encoded_data else dropped).append(clip)
        for clip in dropped:
            clip.errors.setdefault("transcode", "no frames decoded in this span")
        video.clips = kept
        video.filtered_clips.extend(dropped)
        return task

    def _smart_cut(self, video, rotation: int, verify: bool) -> list[Clip]:
        """Smart-cut what fits; returns the clips left to encode in full, each with the reason. `verify`:
        decode what is copied first (no earlier stage decoded the stream whole)."""
        if not self.smart_cut:
            reasons = dict.fromkeys((c.uuid for c in video.clips), "smart cut is off")
        elif video.errors.get("decode"):
            reasons = dict.fromkeys((c.uuid for c in video.clips), "the source is damaged")
        else:
            settings = {"encoder": self.encoder, "preset": self.preset, "crf": self.crf,
                        "target_height": self.target_height, "target_fps": self.target_fps,
                        "bitrate": self.bitrate, "include_audio": self.include_audio}  # fmt: skip
            try:
                reasons = smart_cut_segment(
                    video.input_path, video.clips, settings, self.threads, rotation, verify
                )
            except (av.error.FFmpegError, VideoInputError, ValueError) as exc:
                reasons = dict.fromkeys((c.uuid for c in video.clips), f"smart cut failed: {exc}")
        to_encode = []
        for clip in video.clips:
            made = reasons[clip.uuid]
            if isinstance(made, bytes):
                clip.encoded_data = made
                clip.metadata["encoding"] = SMART_CUT
            else:
                clip.metadata.update(encoding=REENCODE, encoding_reason=made)
                to_encode.append(clip)
        return to_encode

    def _encode_segment(self, uri: str, clips: list[Clip], rotation: int, video) -> None:
        clips = sorted(clips, key=lambda c: c.span)
        seg_start = clips[0].span[0]
        seg_end = max(c.span[1] for c in clips)
        encoders: dict[str, _ClipEncoder] = {}
        finished: set[str] = set()
        with open_container(uri) as container:
            stream = video_stream(container, uri)
            # As many decoder threads as the stage has CPUs: one single-threaded worker per core wastes
            # nothing on thread hand-offs (2 x 1 thread: 59.5 s where 1 x 2 threads took 77 s, 4 x 60 s 720p).
            stream.thread_type = "AUTO"
            stream.thread_count = self.threads
            tb = stream.time_base
            sar = stream.sample_aspect_ratio or stream.codec_context.sample_aspect_ratio
            rate = stream.average_rate or stream.guessed_rate or Fraction(25)
            audio = container.streams.audio[0] if self.include_audio and container.streams.audio else None
            if seg_start > 0:
                container.seek(int(seg_start / tb), stream=stream, backward=True, any_frame=False)
            video_t = audio_t = -math.inf
            damage, audio_damage = Damage(), Damage()  # audio damage costs that audio only
            decoded = 0

            def finish_passed() -> None:
                """Close the clips that both the video and the audio have moved past."""
                for clip in clips:
                    passed = min(video_t, audio_t) if audio is not None else video_t
                    if clip.uuid not in finished and passed >= clip.span[1] - 1e-6:
                        finished.add(clip.uuid)
                        if clip.uuid in encoders:
                            clip.encoded_data = encoders.pop(clip.uuid).close()

            def cut_at_gap(gap: tuple[float, float]) -> None:
                """Frames were lost: a clip open across the gap ends where the damage began (a clip never
                spans lost frames); clips starting inside the gap start at the first frame after it."""
                for clip in clips:
                    enc = encoders.pop(clip.uuid, None)
                    if enc is not None:
                        finished.add(clip.uuid)
                        if clip.span[1] <= gap[0] + 1e-3:  # the clip ends where the damage begins
                            clip.encoded_data = enc.close()
                            continue
                        clip.encoded_data = enc.close(cut_short=True)
                        clip.errors["decode"] = (
                            f"clip cut short at {gap[0]:.2f} s: frames to {gap[1]:.2f} s lost to damage"
                        )

            try:
                for packet in container.demux(*(s for s in (stream, audio) if s is not None)):
                    if packet.stream is audio:
                        for frame in audio_damage.decode(packet):
                            if frame.pts is None:
                                continue
                            audio_t = float(frame.pts * audio.time_base)
                            for clip in clips:
                                if (
                                    clip.uuid not in finished
                                    and clip.span[0] - 1e-6 <= audio_t < clip.span[1]
                                ):
                                    enc = encoders.get(clip.uuid)
                                    if enc is None:
                                        enc = encoders[clip.uuid] = _ClipEncoder(
                                            self, clip, tb, rate, rotation, sar, audio
                                        )
                                    enc.add_audio(frame, audio_t)
                    else:
                        for frame in damage.decode(packet):
                            if frame.pts is None:
                                continue
                            video_t = float(frame.pts * tb)
                            decoded += 1
                            gap = damage.frame_at(video_t)
                            if gap is not None:
                                cut_at_gap(gap)
                            for clip in clips:
                                start, end = clip.span
                                if clip.uuid in finished or not (start - 1e-6 <= video_t < end - 1e-6):
                                    continue
                                enc = encoders.get(clip.uuid)
                                if enc is None:
                                    enc = encoders[clip.uuid] = _ClipEncoder(
                                        self, clip, tb, rate, rotation, sar, audio
                                    )
                                enc.add(frame, video_t)
                    finish_passed()
                    # Audio may run short of the video; never read on for it past the interleave slack.
                    if len(finished) == len(clips) or video_t >= seg_end + AUDIO_SLACK_S:
                        break
            except av.error.FFmpegError as exc:  # the container cannot be read on: the rest is lost
                damage.stopped = f"reading stopped at {video_t:.2f} s ({type(exc).__name__}: {exc})"
                for enc in encoders.values():
                    enc.clip.errors["decode"] = (
                        f"clip cut short: the file cannot be read past {video_t:.2f} s"
                    )
            for enc in encoders.values():
                enc.clip.encoded_data = enc.close(cut_short=True)  # the stream ended inside the clip
            report = damage.summary(decoded)
            if report and "decode" not in video.errors:  # (shot detection reported it for the whole file)
                where = f" (segment {seg_start:.2f}-{seg_end:.2f} s)" if video.segment else ""
                video.errors["decode"] = report + where
                logger.warning("%s: %s", uri, video.errors["decode"])


class _ClipEncoder:
    """One output MP4 in memory. Frames arrive with source PTS; output PTS count from the clip start."""

    def __init__(
        self,
        stage: ClipEncodeStage,
        clip: Clip,
        tb: Fraction,
        rate: Fraction,
        rotation: int,
        sar,
        audio_source: av.audio.stream.AudioStream | None = None,
    ):
        self.clip = clip
        self.buffer = io.BytesIO()
        self.container = av.open(self.buffer, mode="w", format="mp4")
        fps = Fraction(stage.target_fps).limit_denominator(1001) if stage.target_fps else rate
        self.stream = self.container.add_stream(stage.encoder, rate=fps)
        self.stream.time_base = tb
        self.stream.codec_context.time_base = tb
        # One codec thread per CPU the stage asked for (x264's own default, 1.5 per core of the machine,
        # oversubscribes a machine running one worker per core).
        self.stream.thread_count = stage.threads
        self.stream.thread_type = "AUTO"
        self.tb = tb
        self.start_pts = round(clip.span[0] / tb)
        self.target_height = stage.target_height
        self.min_step = 1.0 / stage.target_fps if stage.target_fps else 0.0
        self.next_t = -math.inf
        self.opened = False
        self.frames = 0
        self.last_pts = -1
        self.last_t = -math.inf  # source PTS of the last frame added
        self.frame_s = float(1 / rate)
        options = {}
        if stage.encoder in ENCODERS_WITH_CRF:
            options["crf"] = str(stage.crf)
        if stage.encoder == "libx264":
            options["preset"] = stage.preset
        elif stage.encoder == "libsvtav1":
            options["preset"] = "10"
        elif stage.encoder == "libvpx-vp9":
            options.update({"deadline": "realtime", "cpu-used": "8", "b": "0"})
        if stage.bitrate:
            self.stream.bit_rate = _parse_bitrate(stage.bitrate)
        self.stream.options = options
        self.rotation = rotation
        self.sar = sar
        # Every stream must exist before the first packet is muxed; audio waits for the video to open.
        self.audio = None
        self.pending_audio: list[av.AudioFrame] = []
        if audio_source is not None:
            rate_hz = audio_source.codec_context.sample_rate or 48000
            layout = audio_source.codec_context.layout.name if audio_source.codec_context.layout else "stereo"
            self.audio = self.container.add_stream("aac", rate=rate_hz, layout=layout)
            self.resampler = av.AudioResampler(format="fltp", layout=layout, rate=rate_hz)
            self.audio_samples = 0

    def _open(self, frame: av.VideoFrame) -> None:
        self.stream.width = frame.width
        self.stream.height = frame.height
        self.stream.pix_fmt = "yuv420p"
        if self.sar and self.sar.numerator and self.sar != 1:
            self.stream.codec_context.sample_aspect_ratio = self.sar
        if self.rotation:
            self.stream.set_display_rotation(self.rotation)
        self.opened = True

    def add_audio(self, frame: av.AudioFrame, t: float) -> None:
        self.pending_audio.append(frame)
        if self.opened:
            self._flush_audio()

    def _flush_audio(self) -> None:
        for frame in self.pending_audio:
            for out in self.resampler.resample(frame):
                out.pts = self.audio_samples  # sample-exact, from the clip start
                out.time_base = Fraction(1, out.sample_rate)
                self.audio_samples += out.samples
                for packet in self.audio.encode(out):
                    self.container.mux(packet)
        self.pending_audio = []

    def add(self, frame: av.VideoFrame, t: float) -> None:
        if t < self.next_t - 1e-6:
            return
        if self.min_step:
            self.next_t = (
                max(self.next_t + self.min_step, t) if self.next_t > -math.inf else t + self.min_step
            )
        width, height = _even_size(frame.width, frame.height, self.target_height)
        if (width, height) != (frame.width, frame.height):
            out = frame.reformat(width=width, height=height, format="yuv420p")
        elif frame.format.name != "yuv420p":
            out = frame.reformat(format="yuv420p")
        else:
            out = frame
        if not self.opened:
            self._open(out)
            if self.audio is not None:
                self._flush_audio()
        pts = max(0, round(t / self.tb) - self.start_pts)
        if pts <= self.last_pts:
            pts = self.last_pts + 1
        self.last_pts = pts
        out.pts = pts
        out.time_base = self.tb
        out.pict_type = PictureType.I if self.frames == 0 else PictureType.NONE
        for packet in self.stream.encode(out):
            self.container.mux(packet)
        self.frames += 1
        self.last_t = max(self.last_t, t)

    def close(self, cut_short: bool = False) -> bytes | None:
        """The finished MP4. `cut_short`: the clip ends early (damage); its span becomes what the media
        holds, so the row states the real duration."""
        if cut_short and self.frames:
            start, end = self.clip.span
            media_end = self.last_t + self.frame_s
            if media_end < end - self.frame_s / 2:
                self.clip.span = (start, round(media_end, 6))
        if not self.opened:
            self.container.close()
            return None
        for packet in self.stream.encode(None):
            self.container.mux(packet)
        if self.audio is not None:
            self._flush_audio()
            for packet in self.audio.encode(None):
                self.container.mux(packet)
        self.container.close()
        self.clip.metadata["num_frames"] = self.frames
        return self.buffer.getvalue()


def _even_size(width: int, height: int, target_height: int | None) -> tuple[int, int]:
    """The output size: `target_height` (aspect kept) or the source's, each side even (yuv420p needs it;
    641x361 becomes 640x360: one pixel less, by scaling)."""
    if target_height and height != target_height:
        width = round(width * target_height / height)
        height = target_height
    return max(2, width // 2 * 2), max(2, height // 2 * 2)


def _parse_bitrate(text: str) -> int:
    units = {"k": 1_000, "m": 1_000_000}
    text = text.strip().lower()
    return int(float(text[:-1]) * units[text[-1]]) if text[-1] in units else int(text)


@dataclass
class ClipTranscodingStage(CompositeStage[VideoTask, VideoTask]):
    """Cut and encode every clip (H.264 MP4 by default). `encoder`: libx264, mpeg4, libvpx-vp9, libsvtav1 or
    a hardware encoder present in the FFmpeg build; `crf`/`preset` for x264; optional `target_height`
    (pixels) and `target_fps`. A video's clips are grouped into segments of `segment_s` seconds so one long
    video uses every worker."""

    encoder: str = "libx264"
    crf: int = 23
    preset: str = "veryfast"
    target_height: int | None = None
    target_fps: float | None = None
    bitrate: str | None = None
    segment_s: float = 30.0
    cpus_per_worker: float = 1.0  # also the codec threads per worker; 1 (a worker per core) wastes least
    include_audio: bool = False
    smart_cut: bool = True  # copy the source's GOPs where it has the output's format (video.smart_cut)

    def decompose(self) -> list[ProcessingStage]:
        return [
            VideoSegmentingStage(segment_s=self.segment_s),
            ClipEncodeStage(
                encoder=self.encoder,
                crf=self.crf,
                preset=self.preset,
                target_height=self.target_height,
                target_fps=self.target_fps,
                bitrate=self.bitrate,
                include_audio=self.include_audio,
                smart_cut=self.smart_cut,
                resources=Resources(cpus=self.cpus_per_worker),
            ),
        ]
