"""Selection rules applied to a batch's clip rows: which clips become samples and why the others do not.

Pure: rows and id sets in, the selected rows (sorted by clip uuid, a hash, so shards mix videos) and a
count of drops per rule out. A clip is counted once, under the first rule that drops it, in RULES order.
"""

from __future__ import annotations

from collections import Counter

from curator_core.training.options import ShardOptions
from curator_core.video.filtering import SCORE as AESTHETIC
from curator_core.video.motion import GLOBAL as MOTION

RULES = (
    "filtered_in_clips",  # not kept by the clips step (motion/aesthetic filter there)
    "duplicate",
    "min_duration_s",
    "max_duration_s",
    "min_motion",
    "min_aesthetic",
    "require_caption",
    "require_embedding",
)


def drop_reason(
    row: dict, options: ShardOptions, duplicates: set[str], captioned: set[str], embedded: set[str]
) -> str | None:
    """The first rule that drops this clip row, or None when it is exported."""
    scores = dict(row.get("scores") or [])
    duration = row.get("duration_s") or 0.0
    checks = (
        ("filtered_in_clips", not row.get("kept")),
        ("duplicate", options.drop_duplicates and row["uuid"] in duplicates),
        ("min_duration_s", duration < options.min_duration_s),
        ("max_duration_s", options.max_duration_s is not None and duration > options.max_duration_s),
        ("min_motion", options.min_motion is not None and scores.get(MOTION, -1.0) < options.min_motion),
        (
            "min_aesthetic",
            options.min_aesthetic is not None
            and scores.get(AESTHETIC, float("-inf")) < options.min_aesthetic,
        ),
        ("require_caption", options.require_caption and row["uuid"] not in captioned),
        ("require_embedding", options.require_embedding and row["uuid"] not in embedded),
    )
    return next((rule for rule, dropped in checks if dropped), None)


def select_clips(
    rows: list[dict],
    options: ShardOptions,
    duplicates: set[str],
    captioned: set[str],
    embedded: set[str],
) -> tuple[list[dict], dict[str, int]]:
    """(exported rows sorted by uuid, drops per rule with every rule present)."""
    selected, dropped = [], Counter()
    for row in rows:
        reason = drop_reason(row, options, duplicates, captioned, embedded)
        if reason is None:
            selected.append(row)
        else:
            dropped[reason] += 1
    selected.sort(key=lambda r: r["uuid"])
    return selected, {rule: dropped.get(rule, 0) for rule in RULES}
