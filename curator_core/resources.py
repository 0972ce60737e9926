"""What one worker of a stage needs, and how that maps onto a Ray scheduling request."""

from __future__ import annotations

import os
from dataclasses import dataclass, fields

NVDEC_RESOURCE = "nvdecs"
NVENC_RESOURCE = "nvencs"


@dataclass(frozen=True)
class Resources:
    """Per-worker needs of a stage.

    cpus: CPU cores (may be fractional).
    gpu_memory_gb: a share of ONE GPU, in GiB of device memory; turned into a fractional GPU from the
        real device memory at scheduling time.
    entire_gpu: a whole GPU regardless of its memory, with its NVDEC/NVENC units.
    gpus: whole GPUs for a multi-GPU-aware stage.
    nvdecs / nvencs: hardware decoder / encoder units (Ray custom resources).
    """

    cpus: float = 1.0
    gpu_memory_gb: float = 0.0
    entire_gpu: bool = False
    gpus: float = 0
    nvdecs: int = 0
    nvencs: int = 0

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if not isinstance(value, bool) and value < 0:
                raise ValueError(f"Resources.{f.name} must be >= 0, got {value}")
        if self.gpu_memory_gb and self.gpus:
            raise ValueError(
                "Resources: set either gpu_memory_gb (a share of one GPU, by memory) or gpus "
                f"(whole GPUs for a multi-GPU stage), not both (got gpu_memory_gb={self.gpu_memory_gb}, "
                f"gpus={self.gpus})"
            )
        if self.entire_gpu and (self.gpu_memory_gb or self.gpus):
            raise ValueError(
                "Resources: entire_gpu=True already asks for one whole GPU; drop gpu_memory_gb/gpus, "
                "or use gpus=N for more than one"
            )
        if self.gpus and self.gpus != int(self.gpus):
            raise ValueError(
                f"Resources.gpus counts whole GPUs; for a share of one use gpu_memory_gb (got {self.gpus})"
            )

    @property
    def requires_gpu(self) -> bool:
        return bool(self.gpu_memory_gb or self.entire_gpu or self.gpus)

    def num_gpus(self, device_memory_gb: float | None) -> float:
        """GPUs to ask Ray for. `device_memory_gb` is the memory of one GPU of the cluster (None: unknown)."""
        if self.entire_gpu:
            return 1.0
        if self.gpus:
            return float(self.gpus)
        if self.gpu_memory_gb:
            if device_memory_gb is None:
                raise RuntimeError(
                    f"Resources(gpu_memory_gb={self.gpu_memory_gb}) needs the GPU's memory size, but no GPU "
                    "memory could be read on this cluster. Use entire_gpu=True or gpus=N instead, or set "
                    "CURATOR_GPU_MEMORY_GB to the memory of one GPU."
                )
            if self.gpu_memory_gb > device_memory_gb:
                raise ValueError(
                    f"Resources(gpu_memory_gb={self.gpu_memory_gb}) is more than one GPU has "
                    f"({device_memory_gb:.1f} GiB); use gpus=N for a multi-GPU stage"
                )
            return self.gpu_memory_gb / device_memory_gb
        return 0.0

    def custom_resources(self) -> dict[str, float]:
        """Ray custom resources for hardware codec units."""
        out: dict[str, float] = {}
        if self.nvdecs:
            out[NVDEC_RESOURCE] = float(self.nvdecs)
        if self.nvencs:
            out[NVENC_RESOURCE] = float(self.nvencs)
        return out

    def describe(self) -> str:
        parts = [f"cpu={self.cpus:g}"]
        if self.entire_gpu:
            parts.append("gpu=entire")
        if self.gpus:
            parts.append(f"gpus={self.gpus:g}")
        if self.gpu_memory_gb:
            parts.append(f"gpu_mem={self.gpu_memory_gb:g}GiB")
        if self.nvdecs:
            parts.append(f"nvdec={self.nvdecs}")
        if self.nvencs:
            parts.append(f"nvenc={self.nvencs}")
        return " ".join(parts)


def cluster_cpus() -> float:
    """The CPUs of the Ray cluster this process belongs to (driver or worker), else of this machine."""
    import ray

    if ray.is_initialized():
        return float(ray.cluster_resources().get("CPU", 1.0))
    return float(os.cpu_count() or 1)
