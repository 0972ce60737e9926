"""The Dagster UI as a user sees it: `make ui` (the real `dagster dev`: webserver and daemon) on a free port
of 127.0.0.1 over a temporary state dir, driven by headless Chromium (Debian's package, through Playwright).

Two batches are materialized beforehand in this process (one with clips, one with nothing readable), two
more are left for a backfill launched from the UI. Screenshots are saved under the test's temp dir."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

import dagster as dg
import pytest
from dagster._core.instance.ref import InstanceRef

from curator_assets.assets import clips, raw_videos
from curator_assets.partitions import upload_batches
from curator_assets.resources import CuratorSettings, RayRunner
from tests.assets.conftest import add_batch
from tests.ports import free_ports

ROOT = Path(__file__).resolve().parents[2]
BATCHES = ("shown", "bf-1", "bf-2", "all_bad")


@pytest.fixture(scope="module")
def ui(tmp_path_factory, model_dir, ray_cluster, three_shots, static_video, moving_video, bad_inputs):
    """A state dir with four batches (two materialized here), and `make ui` serving it."""
    state = tmp_path_factory.mktemp("ui_state")
    landing = state / "landing"
    add_batch(landing, "shown", [three_shots, static_video])
    add_batch(landing, "bf-1", [moving_video])
    add_batch(landing, "bf-2", [moving_video])
    add_batch(landing, "all_bad", [bad_inputs["text"], bad_inputs["empty"]])
    home = state / "dagster"
    home.mkdir()
    curator = CuratorSettings(
        landing=str(landing),
        output_root=str(state / "outputs"),
        store_uri=str(state / "store"),
        shards_root=str(state / "shards"),
        model_dir=model_dir,
    )
    resources = {"curator": curator, "ray_runner": RayRunner(num_cpus=2)}
    with dg.DagsterInstance.from_ref(InstanceRef.from_dir(str(home), config_dir=str(ROOT))) as instance:
        instance.add_dynamic_partitions(upload_batches.name, list(BATCHES))
        shown = dg.materialize(
            [raw_videos, clips], partition_key="shown", resources=resources, instance=instance
        )
        assert shown.success
        bad = dg.materialize(
            [raw_videos],
            partition_key="all_bad",
            resources=resources,
            instance=instance,
            raise_on_error=False,
        )
        assert not bad.success  # nothing readable: the blocking check fails the run
    port = free_ports()[0]
    env = {
        k: v for k, v in os.environ.items() if k not in ("CURATOR_RAY_TMPDIR", "RAY_ADDRESS", "DAGSTER_HOME")
    }
    env.update({"CURATOR_STATE_DIR": str(state), "CURATOR_MODEL_DIR": model_dir})
    root_before = sorted(os.listdir(ROOT))
    log = open(state / "dagster_dev.log", "wb")  # noqa: SIM115 - open for the server's whole life
    process = subprocess.Popen(
        ["make", "--no-print-directory", "ui", f"UI_PORT={port}"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 180
        while True:
            assert process.poll() is None, (state / "dagster_dev.log").read_text()[-3000:]
            assert time.time() < deadline, "dagster dev did not serve in time"
            try:
                with urllib.request.urlopen(f"{base}/server_info", timeout=5) as response:
                    if response.status == 200:
                        break
            except OSError:
                time.sleep(1)
        yield {"base": base, "state": state, "home": home, "process": process, "root_before": root_before}
    finally:
        os.killpg(process.pid, signal.SIGTERM)  # make, dagster dev and its webserver, daemon, code servers
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        log.close()


@pytest.fixture
def page(browser, ui, tmp_path):
    context = browser.new_context(viewport={"width": 1600, "height": 1200})
    tab = context.new_page()
    tab.set_default_timeout(30_000)
    yield tab
    tab.screenshot(path=str(tmp_path / "last.png"), full_page=True)
    context.close()


def _open(page, url: str) -> None:
    page.goto(url, wait_until="networkidle")
    skip = page.get_by_role("button", name="Skip")  # Dagster's first-visit newsletter dialog
    with contextlib.suppress(Exception):  # shown once per instance; absent afterwards
        skip.click(timeout=5_000)


def test_the_asset_graph_shows_every_asset(page, ui, tmp_path):
    _open(page, f"{ui['base']}/asset-groups/video_curation@video_curation/lineage")
    nodes = page.locator("svg foreignObject")  # the graph draws each asset as a node in the SVG
    nodes.filter(has_text="training_shards").first.wait_for()
    for asset in ("raw_videos", "clips", "clip_embeddings", "clip_captions", "training_shards"):
        assert nodes.filter(has=page.get_by_text(asset, exact=True)).count() >= 1, asset
    page.screenshot(path=str(tmp_path / "asset_graph.png"))
    assert sorted(os.listdir(ROOT)) == ui["root_before"]  # `make ui` wrote nothing into the repo root
    assert (ui["home"] / "dagster.yaml").is_symlink()


def test_the_clips_page_of_a_batch_shows_its_thumbnails_and_links_its_gallery(page, ui, tmp_path):
    _open(page, f"{ui['base']}/assets/clips?view=partitions&partition=shown")
    gallery = page.get_by_text("gallery.html")
    gallery.first.wait_for()
    assert (ui["state"] / "outputs" / "shown" / "gallery.html").as_uri() in gallery.first.inner_text()
    page.get_by_text("[Show Markdown]").first.click()  # the preview table
    dialog = page.get_by_role("dialog")
    dialog.get_by_text("three_shots.mp4").first.wait_for()
    page.wait_for_function(
        "() => [...document.querySelectorAll('[role=dialog] img')].filter(i => i.complete).length >= 3"
    )
    sizes = dialog.locator("img").evaluate_all("imgs => imgs.map(i => [i.naturalWidth, i.naturalHeight])")
    page.screenshot(path=str(tmp_path / "clips_preview.png"))
    assert len(sizes) == 3 and all(w > 0 and h > 0 for w, h in sizes)  # the 3 kept clips' thumbnails

    page.goto((ui["state"] / "outputs" / "shown" / "gallery.html").as_uri())
    page.wait_for_function("() => [...document.images].every(i => i.complete)")
    previews = page.locator("img").evaluate_all("imgs => imgs.map(i => i.naturalWidth)")
    page.screenshot(path=str(tmp_path / "gallery.png"), full_page=True)
    assert len(previews) == 3 and all(w > 0 for w in previews)  # animated WebP previews load
    assert page.get_by_text("filtered by motion_filter").count() == 1  # the static clip, with its rule


def test_an_all_bad_batch_shows_why_on_its_page(page, ui, tmp_path):
    _open(page, f"{ui['base']}/assets/raw_videos?view=partitions&partition=all_bad")
    page.get_by_text("not a readable media file").first.wait_for()
    assert page.get_by_text("empty file (0 bytes)").first.is_visible()
    page.screenshot(path=str(tmp_path / "all_bad.png"), full_page=True)
    _open(page, f"{ui['base']}/runs")
    page.get_by_text("Failure").first.wait_for()  # the run stopped at raw_videos: a failed run
    page.screenshot(path=str(tmp_path / "runs.png"))


def test_a_backfill_of_two_batches_launched_from_the_ui_succeeds(page, ui, tmp_path):
    _open(page, f"{ui['base']}/assets/raw_videos")
    page.get_by_role("button", name="Materialize…").first.click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_role("button", name="Missing", exact=True).click()
    dialog.get_by_text("2 partitions").wait_for()  # bf-1 and bf-2
    page.screenshot(path=str(tmp_path / "backfill_dialog.png"))
    dialog.get_by_role("button", name="Launch backfill").click()
    dialog.wait_for(state="hidden")
    with dg.DagsterInstance.from_ref(InstanceRef.from_dir(str(ui["home"]), config_dir=str(ROOT))) as instance:
        (backfill,) = instance.get_backfills()
    deadline = time.time() + 300
    while True:  # the backfill's row in the UI's list, as a user would watch it
        page.goto(f"{ui['base']}/runs?tab=backfills", wait_until="networkidle")
        page.get_by_text(backfill.backfill_id).first.wait_for()
        row = page.evaluate(ROW_TEXT, backfill.backfill_id)
        if "Success" in row or "Fail" in row or time.time() > deadline:
            break
        time.sleep(5)
    page.screenshot(path=str(tmp_path / "backfills.png"))
    assert "Success" in row and "2 partitions" in row, row
    with dg.DagsterInstance.from_ref(InstanceRef.from_dir(str(ui["home"]), config_dir=str(ROOT))) as instance:
        runs = instance.get_runs(dg.RunsFilter(tags={"dagster/backfill": backfill.backfill_id}))
        assert sorted(r.tags["dagster/partition"] for r in runs) == ["bf-1", "bf-2"]  # one run per batch
        assert all(r.is_success for r in runs)


# The text of the list row that holds the link named by the argument (the row: its smallest ancestor that
# also says who launched it).
ROW_TEXT = """(id) => {
  let e = [...document.querySelectorAll('a')].find(a => a.textContent.trim() === id);
  while (e && !e.innerText.includes('launched')) e = e.parentElement;
  return e ? e.innerText : '';
}"""
