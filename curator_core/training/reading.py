"""Reading the shards back for training: the recipe the README documents, kept here so it is tested.

    import torch, webdataset as wds
    from curator_core.training.reading import decode_sample
    dataset = wds.WebDataset(urls, shardshuffle=100).shuffle(1000).map(decode_sample)
    loader = torch.utils.data.DataLoader(dataset, batch_size=None, num_workers=2)

`frame_decoder(max_frames=16, every=2)` decodes a sampled subset instead of every frame.
`urls` are the shard URIs of a batch's index.json, or of the dataset manifest (local paths, or
`pipe:aws s3 cp s3://... -` style URLs that webdataset opens).
"""

from __future__ import annotations

import io
import json

import av
import numpy as np


def decode_frames(media: bytes, max_frames: int | None = None, every: int = 1) -> np.ndarray:
    """The clip's frames as uint8 RGB, shape (frames, height, width, 3), decoded with PyAV: every
    `every`-th frame, at most `max_frames` (a long clip at full resolution is gigabytes decoded)."""
    frames = []
    with av.open(io.BytesIO(media)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        for index, frame in enumerate(container.decode(stream)):
            if index % every:
                continue
            frames.append(frame.to_ndarray(format="rgb24"))
            if max_frames and len(frames) >= max_frames:
                break
    if not frames:
        raise ValueError("the clip decodes to no frame")
    return np.stack(frames)


def frame_decoder(max_frames: int | None = None, every: int = 1):
    """A `decode_sample` that keeps every `every`-th frame, at most `max_frames` (for webdataset's .map)."""

    def decode(sample: dict) -> dict:
        out = {"__key__": sample["__key__"], "frames": decode_frames(sample["mp4"], max_frames, every)}
        out["json"] = json.loads(sample["json"])
        if "txt" in sample:
            out["txt"] = sample["txt"].decode("utf-8")
        if "npy" in sample:
            out["npy"] = np.load(io.BytesIO(sample["npy"]))
        return out

    return decode


decode_sample = frame_decoder()  # a raw sample (bytes per part) -> all frames, metadata, caption, embedding
