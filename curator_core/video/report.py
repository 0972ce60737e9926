"""A JSON-able summary of a split-and-transcode run, for the CLI and the demo job."""

from __future__ import annotations

from curator_core.executors.base import RunResult


def run_summary(result: RunResult) -> dict:
    videos: dict[str, dict] = {}
    clips, filtered, failed = [], [], []
    for task in result.outputs:
        video = task.data
        entry = videos.setdefault(video.input_path, {"source": video.input_path, "errors": {}, "clips": 0})
        entry["errors"].update(video.errors)
        entry["clips"] += len(video.clips)
        for clip in video.clips:
            clips.append(
                {
                    "uuid": clip.uuid,
                    "source": clip.source,
                    "span": list(clip.span),
                    "path": clip.metadata.get("media_uri"),
                    "preview": clip.metadata.get("preview_uri"),
                    "scores": clip.scores,
                    "errors": clip.errors,
                    "captions": [
                        {
                            "window": i,
                            "prompt_id": w.prompt_id,
                            **w.captions,
                            **{f"{m} (enhanced)": t for m, t in w.enhanced_captions.items()},
                        }
                        for i, w in enumerate(clip.caption_windows)
                    ],
                }
            )
        for clip in video.filtered_clips:
            reason = clip.metadata.get("filtered_by") or "; ".join(
                f"{k}: {v}" for k, v in clip.errors.items()
            )
            filtered.append(
                {"uuid": clip.uuid, "source": clip.source, "span": list(clip.span), "reason": reason}
            )
    for video in videos.values():
        if video["errors"]:
            failed.append(
                {
                    "source": video["source"],
                    "reason": "; ".join(f"{k}: {v}" for k, v in video["errors"].items()),
                }
            )
    for failure in result.failures:
        failed.append(
            {
                "source": failure.source or failure.task_id,
                "stage": failure.stage,
                "reason": f"{failure.error_type}: {failure.message}",
            }
        )
    return {
        "videos_read": len(videos),
        "clips_written": clips,
        "filtered": filtered,
        "failed": failed,
        "stages": {name: vars(stats) for name, stats in result.stage_stats.items()},
        "faults": result.faults,
        "wall_time_s": round(result.wall_time_s, 3),
    }
