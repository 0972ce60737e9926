"""Progress lines: every tenth of a known total, or every few seconds, and a last line without repeats."""

from curator_core.progress import Progress
from curator_core.tasks import Video, VideoTask


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _task(name: str) -> VideoTask:
    return VideoTask(task_id=name, dataset_name="d", data=Video(input_path=f"/in/{name}.mp4"))


def test_reports_each_tenth_of_a_known_total_and_ends_once():
    lines, clock = [], Clock()
    progress = Progress("clips", lines.append, total=20, every_s=1e9, clock=clock)
    for i in range(20):
        clock.now += 1
        progress.update(_task(f"v{i}"))
    progress.finish()
    assert len(lines) == 10  # 10%, 20%, ... 100%, and no repeat at the end
    assert lines[0].startswith("clips: 2 of 20 videos done (10%)")
    assert lines[-1] == "clips: 20 of 20 videos done (100%), 0 clips, 20 s"


def test_reports_by_time_when_the_total_is_unknown_and_counts_each_source_once():
    lines, clock = [], Clock()
    progress = Progress("raw_videos", lines.append, every_s=30, clock=clock)
    for i in range(10):
        clock.now += 10
        progress.update(_task(f"v{i % 5}"))  # segments of the same video count as one
    progress.finish()
    assert lines == [
        "raw_videos: 3 videos done, 0 clips, 30 s",
        "raw_videos: 5 videos done, 0 clips, 60 s",
        "raw_videos: 5 videos done, 0 clips, 90 s",
    ]  # finish() adds nothing: the last line already says 5
