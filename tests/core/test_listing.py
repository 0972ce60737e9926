"""Listing large prefixes (issue #14, item 6): the same files as `fs.find`, on a local disk and on a real
S3-compatible server, with the sub-folders listed side by side."""

from __future__ import annotations

import threading
import time
import uuid

import fsspec
import pytest
from fsspec.implementations.local import LocalFileSystem

from curator_core import storage
from curator_core.listing import find_files
from curator_core.storage import StorageConfig
from curator_core.video.io import list_videos

TREE = ["top.mp4", "a/one.mp4", "a/deep/two.mp4", "b/three.mov", "b/notes.txt", "c/d/e/four.mp4"]


def _local_tree(root) -> None:
    for rel in TREE:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(rel.encode())


def test_local_listing_matches_find_and_never_follows_a_folder_link(tmp_path):
    _local_tree(tmp_path)
    fs = LocalFileSystem()
    for link in (tmp_path / "a" / "loop", tmp_path / "loop"):  # links to a parent
        link.symlink_to(tmp_path, target_is_directory=True)
    expected = fs.find(str(tmp_path), detail=True, withdirs=False)
    found = find_files(fs, str(tmp_path))
    assert sorted(found) == sorted(expected)
    assert {k: v["size"] for k, v in found.items()} == {k: v["size"] for k, v in expected.items()}
    assert list(find_files(fs, str(tmp_path), recursive=False)) == [
        str(tmp_path / n) for n in ("loop", "top.mp4")
    ]
    only = find_files(fs, str(tmp_path), only=("b", "missing"))
    assert sorted(only) == [str(tmp_path / "b" / "notes.txt"), str(tmp_path / "b" / "three.mov")]
    videos = list_videos(str(tmp_path))
    assert [v.removeprefix(f"{tmp_path}/") for v in videos] == sorted(r for r in TREE if r != "b/notes.txt")


def test_s3_listing_matches_find_with_folder_markers(s3_server, monkeypatch):
    import s3fs

    fs = s3fs.S3FileSystem(**s3_server)
    root = f"curator/listing-{uuid.uuid4().hex[:8]}"
    for rel in TREE:
        fs.pipe(f"{root}/{rel}", rel.encode())
    fs.pipe(f"{root}/a/", b"")  # the zero-byte "folder" object some upload tools create
    fs.invalidate_cache()
    expected = fs.find(root, detail=True, withdirs=False)
    fs.invalidate_cache()
    found = find_files(fs, root)
    assert sorted(found) == sorted(k for k in expected if not k.endswith("/a"))
    assert all(found[k]["size"] == expected[k]["size"] for k in found)
    assert sorted(find_files(fs, root, only=("c",))) == [f"{root}/c/d/e/four.mp4"]
    storage.configure(StorageConfig(endpoint_url=s3_server["endpoint_url"]))
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", s3_server["key"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", s3_server["secret"])
    try:
        videos = list_videos(f"s3://{root}")
    finally:
        storage.reset()
    assert [v.removeprefix(f"s3://{root}/") for v in videos] == sorted(r for r in TREE if r != "b/notes.txt")


class SlowListing(LocalFileSystem):
    """A local disk whose recursive listings take as long as an object store's chains of requests, and
    which records how many ran at once."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.running, self.most, self.lock = 0, 0, threading.Lock()

    def find(self, path, *args, **kwargs):
        with self.lock:
            self.running += 1
            self.most = max(self.most, self.running)
        time.sleep(0.3)
        try:
            return super().find(path, *args, **kwargs)
        finally:
            with self.lock:
                self.running -= 1


@pytest.mark.parametrize("folders", [1, 6])
def test_sub_folders_are_listed_side_by_side(tmp_path, folders):
    for i in range(folders):
        (tmp_path / f"batch-{i}").mkdir()
        (tmp_path / f"batch-{i}" / "v.mp4").write_bytes(b"x")
    fs = SlowListing(skip_instance_cache=True)
    assert len(find_files(fs, str(tmp_path), concurrency=4)) == folders
    assert fs.most == min(folders, 4)


def test_an_fsspec_url_lists_like_a_path(tmp_path):
    _local_tree(tmp_path)
    fs, path = fsspec.core.url_to_fs(f"file://{tmp_path}")
    assert sorted(find_files(fs, path)) == sorted(fs.find(path))
