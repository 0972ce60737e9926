"""Reading the shards back for training: the recipe the README documents, kept here so it is tested.

    import torch, webdataset as wds
    from curator_core.training.reading import decode_sample
    dataset = wds.WebDataset(urls, shardshuffle=100).shuffle(1000).map(decode_sample)
    loader = torch.utils.data.DataLoader(dataset, batch_size=None, num_workers=2)

`urls` are the shard URIs of a batch's index.json, or of the dataset manifest (local paths, or
`pipe:aws s3 cp s3://... -` style URLs that webdataset opens).
"""

from __future__ import annotations

import io
import json

import av
import numpy as np


def decode_frames(media: bytes, max_frames: int | None = None) -> np.ndarray:
    """The clip's frames as uint8 RGB, shape (frames, height, width, 3), decoded with PyAV."""
    frames = []
    with av.open(io.BytesIO(media)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        for frame in container.decode(stream):
            frames.append(frame.to_ndarray(format="rgb24"))
            if max_frames and len(frames) >= max_frames:
                break
    if not frames:
        raise ValueError("the clip decodes to no frame")
    return np.stack(frames)


def decode_sample(sample: dict) -> dict:
    """A raw webdataset sample (bytes per part) -> frames, metadata dict, caption text, embedding."""
    out = {"__key__": sample["__key__"], "frames": decode_frames(sample["mp4"])}
    out["json"] = json.loads(sample["json"])
    if "txt" in sample:
        out["txt"] = sample["txt"].decode("utf-8")
    if "npy" in sample:
        out["npy"] = np.load(io.BytesIO(sample["npy"]))
    return out
