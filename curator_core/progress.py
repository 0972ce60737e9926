"""Progress of a long pipeline run, as lines a person reads in the run's log: "clips: 12 of 40 videos
done (30%), 57 clips, 41 s". The executor hands every task that leaves the last stage to `update`; a line
is written when another tenth of the total is done, or every `every_s` seconds, and once at the end."""

from __future__ import annotations

import time
from collections.abc import Callable

from curator_core.tasks import Task


class Progress:
    """Counts finished inputs (by their source file) and clips, and reports them through `report`.

    label: what is running (the step). total: inputs expected, when known (None: counts only).
    unit: what an input is ("videos", "clips"). clips_are_inputs: count clips as the inputs (steps that
    read stored clips, where one task may carry several).
    """

    def __init__(
        self,
        label: str,
        report: Callable[[str], None],
        total: int | None = None,
        unit: str = "videos",
        clips_are_inputs: bool = False,
        every_s: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.label, self.report, self.total, self.unit = label, report, total, unit
        self.clips_are_inputs = clips_are_inputs
        self.every_s, self.clock = every_s, clock
        self.sources: set[str] = set()
        self.clips = 0
        self.started = self.last = clock()
        self._last_tenth = 0
        self._reported: tuple[int, int] | None = None

    @property
    def done(self) -> int:
        return self.clips if self.clips_are_inputs else len(self.sources)

    def update(self, task: Task) -> None:
        data = getattr(task, "data", None)
        source = getattr(data, "input_path", None)
        if source:
            self.sources.add(source)
        stored = getattr(task, "metadata", {}).get("stored")  # the clips went to the store (store.row_writer)
        if stored:
            self.clips += stored["clips"]
        else:
            self.clips += len(getattr(data, "clips", ()) or ()) + len(
                getattr(data, "filtered_clips", ()) or ()
            )
        now = self.clock()
        tenth = int(10 * self.done / self.total) if self.total else 0
        if tenth > self._last_tenth or now - self.last >= self.every_s:
            self._last_tenth = max(tenth, self._last_tenth)
            self._report()

    def line(self) -> str:
        elapsed = self.clock() - self.started
        if self.total:
            head = f"{self.done} of {self.total} {self.unit} done ({100 * self.done / self.total:.0f}%)"
        else:
            head = f"{self.done} {self.unit} done"
        clips = "" if self.clips_are_inputs else f", {self.clips} clips"
        return f"{self.label}: {head}{clips}, {elapsed:.0f} s"

    def finish(self) -> None:
        """The last line, unless the last one reported already says it."""
        if self._reported != (self.done, self.clips):
            self._report()

    def _report(self) -> None:
        self.last = self.clock()
        self._reported = (self.done, self.clips)
        self.report(self.line())
