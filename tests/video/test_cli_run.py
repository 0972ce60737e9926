"""`curator run` as a user runs it (a subprocess, real stdout and stderr): honest exit codes, one JSON
document on stdout with --json, inputs resolved and checked on the driver."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from curator_core.cli import _run_exit_code
from curator_core.resources import cluster_cpus
from curator_core.tasks import EmptyTask
from curator_core.video.io import list_videos
from curator_core.video.reader import BATCH_CPUS, BATCH_VIDEOS, FileListingStage

CURATOR = [sys.executable, "-m", "curator_core.cli"]


def _curator(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([*CURATOR, *args], cwd=cwd, capture_output=True, text=True, timeout=300)


def test_a_failed_input_exits_1_and_json_is_the_only_thing_on_stdout(tmp_path, three_shots, bad_inputs):
    batch = tmp_path / "in"
    batch.mkdir()
    shutil.copy(three_shots, batch / "three_shots.mp4")
    shutil.copy(bad_inputs["text"], batch / "notes.mp4")
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    done = _curator("run", "../in", "--out", "../out", "--min-clip-len", "1", "--json", cwd=elsewhere)
    assert done.returncode == 1, done.stderr[-2000:]  # one input failed
    summary = json.loads(done.stdout)  # the whole of stdout is one document (Ray's lines went to stderr)
    assert summary["videos_read"] == 2 and len(summary["clips_written"]) == 3  # relative paths resolved
    assert [f["source"] for f in summary["failed"]] == [str(batch / "notes.mp4")]  # named by its file
    assert all(Path(c["path"]).is_relative_to(tmp_path / "out") for c in summary["clips_written"])
    assert "1 inputs failed (--allow-failures accepts that)" in done.stderr


LATE_LINE_SCRIPT = """
import time
import ray
from curator_core import cli
from curator_core.executors.ray import ensure_ray

@ray.remote(num_cpus=0)
def late():
    time.sleep(2)
    print("a worker line that comes late", flush=True)

with cli._stdout_for_the_document_only():
    ensure_ray(num_cpus=1)
    ref = late.remote()
    cli.print_json({"ok": True})
time.sleep(6)  # what Ray's driver threads still forward would reach stdout now
"""


def test_what_ray_forwards_after_the_command_never_reaches_stdout(tmp_path):
    """A raylet warning landed after the document and broke `--json` (seen on a two-node S3 run)."""
    done = subprocess.run([sys.executable, "-c", LATE_LINE_SCRIPT], cwd=tmp_path, capture_output=True,
                          text=True, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout) == {"ok": True}, done.stdout


def test_a_missing_input_is_a_usage_error_naming_it(tmp_path):
    done = _curator("run", "no/such/folder", "--out", str(tmp_path / "out"), cwd=tmp_path)
    assert done.returncode == 2
    assert f"no such file or folder: {tmp_path / 'no/such/folder'}" in done.stderr
    assert not (tmp_path / "out").exists()


def test_exit_codes_of_a_run():
    written, failed = {"clips_written": [{}], "failed": []}, {"clips_written": [{}], "failed": [{}]}
    assert _run_exit_code(written, allow_failures=False) == 0
    assert _run_exit_code(failed, allow_failures=False) == 1
    assert _run_exit_code(failed, allow_failures=True) == 0
    assert _run_exit_code({"clips_written": [], "failed": []}, allow_failures=True) == 1  # nothing written


def test_folder_names_are_literal_globs_explicit_and_named_files_kept(tmp_path, three_shots):
    for folder in ("globdir [1]", "star*dir", "starXdir"):
        (tmp_path / folder).mkdir()
        shutil.copy(three_shots, tmp_path / folder / "v.mp4")
    shutil.copy(three_shots, tmp_path / "starXdir" / "w.mov")
    assert list_videos(str(tmp_path / "globdir [1]")) == [str(tmp_path / "globdir [1]" / "v.mp4")]
    assert list_videos(str(tmp_path / "star*dir")) == [str(tmp_path / "star*dir" / "v.mp4")]
    assert list_videos(str(tmp_path / "starXdir"), glob="*.mov") == [str(tmp_path / "starXdir" / "w.mov")]
    gif = tmp_path / "loop.gif"
    gif.write_bytes(b"GIF89a")
    assert list_videos(str(gif)) == [str(gif)]  # named by the user: probing decides, not the extension


def test_a_folder_with_no_video_is_recorded_as_a_failed_input(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "readme.txt").write_text("no videos here")
    (task,) = FileListingStage((str(tmp_path / "empty"),)).process(EmptyTask())
    assert task.data.input_path == str(tmp_path / "empty")
    assert task.data.errors["read"].startswith("no video file under this folder")


def test_every_listed_video_knows_the_batch_size(tmp_path):
    for name in ("a.mp4", "b.mkv", "c.mov"):
        (tmp_path / name).write_bytes(b"")
    tasks = FileListingStage((str(tmp_path),)).process(EmptyTask())
    assert [t.metadata[BATCH_VIDEOS] for t in tasks] == [3, 3, 3]  # segment sizes follow it
    assert {t.metadata[BATCH_CPUS] for t in tasks} == {cluster_cpus()}  # and the cluster's CPUs
