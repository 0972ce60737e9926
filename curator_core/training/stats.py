"""Histograms of clip durations and scores that merge by addition, so each shard's worker computes its
own and the manifest sums them (no per-clip data reaches the driver).

Durations use fixed edges in seconds. Scores have unknown scales (motion ~1e-4, aesthetic ~1-10), so they
use half-decade bins of |value| from 1e-6 to 1e4, with the sign kept: bin labels are the lower edges.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

DURATION_EDGES_S = (0, 1, 2, 3, 4, 5, 6, 8, 10, 15, 20, 30, 45, 60, 120)
SCORE_LOG10_MIN, SCORE_LOG10_MAX, SCORE_BINS_PER_DECADE = -6, 4, 2


def duration_bin(seconds: float) -> str:
    """Label of the duration bin holding `seconds`: "a-b" or ">=120"."""
    for low, high in zip(DURATION_EDGES_S, DURATION_EDGES_S[1:], strict=False):
        if seconds < high:
            return f"{low}-{high}"
    return f">={DURATION_EDGES_S[-1]}"


def duration_labels() -> list[str]:
    pairs = zip(DURATION_EDGES_S, DURATION_EDGES_S[1:], strict=False)
    return [f"{a}-{b}" for a, b in pairs] + [f">={DURATION_EDGES_S[-1]}"]


def score_bin(value: float) -> str:
    """Label of the score bin holding `value`: its lower edge as a power of ten ("0" for |v| < 1e-6)."""
    if not math.isfinite(value):
        return "nan"
    magnitude = abs(value)
    if magnitude < 10.0**SCORE_LOG10_MIN:
        return "0"
    step = math.floor(math.log10(magnitude) * SCORE_BINS_PER_DECADE) / SCORE_BINS_PER_DECADE
    step = min(max(step, SCORE_LOG10_MIN), SCORE_LOG10_MAX)
    return f"{'-' if value < 0 else ''}1e{step:g}"


def score_bin_value(label: str) -> float:
    """The lower edge a score bin label stands for (for sorting and plotting)."""
    if label in ("0", "nan"):
        return 0.0
    sign = -1.0 if label.startswith("-") else 1.0
    return sign * 10.0 ** float(label.lstrip("-")[2:])


def clip_stats(rows: Iterable[dict]) -> dict:
    """Counts, total seconds, and histograms of the clip rows' durations and scores."""
    out: dict = {"samples": 0, "seconds": 0.0, "durations": {}, "scores": {}}
    for row in rows:
        duration = float(row.get("duration_s") or 0.0)
        out["samples"] += 1
        out["seconds"] += duration
        label = duration_bin(duration)
        out["durations"][label] = out["durations"].get(label, 0) + 1
        for name, value in sorted(dict(row.get("scores") or []).items()):
            bins = out["scores"].setdefault(name, {})
            label = score_bin(float(value))
            bins[label] = bins.get(label, 0) + 1
    return out


def merge_stats(parts: Iterable[dict]) -> dict:
    total: dict = {"samples": 0, "seconds": 0.0, "durations": {}, "scores": {}}
    for part in parts:
        total["samples"] += part.get("samples", 0)
        total["seconds"] += part.get("seconds", 0.0)
        for label, n in part.get("durations", {}).items():
            total["durations"][label] = total["durations"].get(label, 0) + n
        for name, bins in part.get("scores", {}).items():
            into = total["scores"].setdefault(name, {})
            for label, n in bins.items():
                into[label] = into.get(label, 0) + n
    return total
