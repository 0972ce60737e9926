"""A batch's rows in several tables become visible at one commit point, whatever kills the writer (real
LanceDB, writers SIGKILLed in child processes)."""

from __future__ import annotations

import multiprocessing as mp
import os
import signal

import pytest

from curator_core.store import ClipStore, schemas
from curator_core.store.commits import COMPACT_FROM, CommitLog, append_rows

from .test_store import clip_row


def failure_row(batch: str, i: int, run: str) -> dict:
    return {
        "row_id": f"{batch}-failure-{i}",
        "stage": "clips",
        "input": f"/in/{i}.mp4",
        "message": f"run {run}",
        "batch_key": batch,
        "pipeline": "clips",
    }


def _write_run(store: ClipStore, batch: str, clips: int, run: str, die_at: str | None = None) -> None:
    """The clips step's write: clips and failures of one run. `die_at`: SIGKILL this process right after
    staging both tables ("staged") or right after the commit point ("committed")."""
    if die_at == "committed":
        finish = CommitLog.finish

        def finish_then_die(self, entry, tables):
            if entry["state"] == "cleaning":
                os.kill(os.getpid(), signal.SIGKILL)
            finish(self, entry, tables)

        CommitLog.finish = finish_then_die
    with store.commit(batch, "clips") as commit:
        commit.write_clips([clip_row(batch, i) for i in range(clips)])
        commit.replace("failures", [failure_row(batch, 0, run)], schemas.FAILURES, "pipeline = 'clips'")
        if die_at == "staged":
            os.kill(os.getpid(), signal.SIGKILL)


def _killed_run(uri: str, batch: str, clips: int, run: str, die_at: str) -> None:
    _write_run(ClipStore(uri), batch, clips, run, die_at)


def _run_killed(uri: str, clips: int, run: str, die_at: str) -> None:
    child = mp.get_context("spawn").Process(target=_killed_run, args=(uri, "a", clips, run, die_at))
    child.start()
    child.join(120)
    assert child.exitcode == -signal.SIGKILL


def _state(store: ClipStore, batch: str = "a") -> tuple[int, list[str]]:
    where = f"batch_key = '{batch}'"
    return store.count("clips", where), store.rows("failures", where).column("message").to_pylist()


@pytest.fixture
def uri(tmp_path) -> str:
    uri = str(tmp_path / "db")
    store = ClipStore(uri)
    _write_run(store, "a", 5, "old")
    _write_run(store, "b", 2, "other")
    return uri


def test_a_writer_killed_before_its_commit_point_leaves_every_table_at_the_old_run(uri):
    _run_killed(uri, 8, "new", "staged")
    store = ClipStore(uri)
    assert _state(store) == (5, ["run old"])  # neither the new clips nor the new failures show
    assert store.db.open_table("clips").count_rows("batch_key = 'a'") == 13  # though they are on disk
    _write_run(store, "a", 3, "next")  # the next write of the batch discards them
    assert _state(store) == (3, ["run next"]) and _state(store, "b") == (2, ["run other"])
    assert store.db.open_table("clips").count_rows("batch_key = 'a'") == 3
    assert CommitLog(store).entries()[1] == []


def test_a_writer_killed_after_its_commit_point_shows_the_new_run_in_every_table(uri):
    _run_killed(uri, 8, "new", "committed")
    store = ClipStore(uri)
    assert _state(store) == (8, ["run new"])  # the replaced rows are still on disk, and hidden
    assert store.db.open_table("clips").count_rows("batch_key = 'a'") == 13
    assert [(e["state"], e["batch_key"]) for e in CommitLog(store).entries()[1]] == [("cleaning", "a")]
    store.write_clips("a", [clip_row("a", i) for i in range(8)])  # any later write of the batch finishes it
    assert CommitLog(store).entries()[1] == []
    assert store.db.open_table("clips").count_rows("batch_key = 'a'") == 8
    assert _state(store) == (8, ["run new"]) and _state(store, "b") == (2, ["run other"])


def test_a_write_that_raises_leaves_no_rows_behind(uri):
    store = ClipStore(uri)
    with pytest.raises(FileNotFoundError), store.commit("a", "clips") as commit:
        commit.replace("failures", [failure_row("a", 0, "bad")], schemas.FAILURES, "pipeline = 'clips'")
        commit.write_clips([clip_row("a", 0, media="/nowhere/0.mp4")])
    assert _state(store) == (5, ["run old"])
    assert store.db.open_table("failures").count_rows() == 2 and CommitLog(store).entries()[1] == []


def _alternate(uri: str, rounds: int) -> None:
    store = ClipStore(uri)
    for r in range(rounds):
        _write_run(store, "a", 5 if r % 2 else 8, f"r{r}")


def test_readers_see_one_whole_run_while_another_process_commits(uri):
    writer = mp.get_context("spawn").Process(target=_alternate, args=(uri, 12))
    writer.start()
    store, seen = ClipStore(uri), set()
    while writer.is_alive():
        seen.add(store.count("clips", "batch_key = 'a'"))
    writer.join()
    assert writer.exitcode == 0
    assert seen <= {5, 8}, seen  # never both runs' rows, never none


def test_rows_that_workers_append_task_by_task_show_at_the_commit_and_are_compacted(tmp_path):
    store = ClipStore(str(tmp_path / "db"))
    tasks = COMPACT_FROM + 6
    with store.commit("a", "clips") as commit:
        commit.expect("clips", schemas.CLIPS)
        for i in range(tasks):  # what RowWriterStage does on the workers, one append per task
            append_rows(store, "clips", [clip_row("a", i)], schemas.CLIPS, "a", commit.commit_id)
        assert store.count("clips") == 0 and commit.staged_count("clips") == tasks
    assert store.count("clips", "batch_key = 'a'") == tasks
    assert store.db.open_table("clips").stats()["fragment_stats"]["num_fragments"] == 1
