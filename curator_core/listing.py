"""Listing large prefixes: the sub-folders of a prefix are listed concurrently, not one after another.

On object storage a listing answers 1,000 keys a request, and a recursive `fs.find` of one prefix is a
chain of such requests, each waiting for the one before (its continuation token). An upload area or a
batch's output folder of 1 M files is 1,000 requests in a row. Here the prefix's first level is listed
once, then each sub-folder's own chain runs beside the others, `LISTING_CONCURRENCY` at a time: the
requests are the same (one more for the first level), the wait is the longest chain instead of their
sum. A flat prefix (no sub-folders) costs what `fs.find` costs.

On a local disk a link to a folder is an entry of its own, not followed (as in `fs.find`): a link to a
parent would never end.
"""

from __future__ import annotations

import posixpath
from concurrent.futures import ThreadPoolExecutor
from typing import Any

LISTING_CONCURRENCY = 16  # listing requests in flight at once (s3fs' connection pool holds 10 by default)


def find_files(
    fs: Any,
    root: str,
    recursive: bool = True,
    only: tuple[str, ...] | None = None,
    concurrency: int = LISTING_CONCURRENCY,
) -> dict:
    """Every file under the folder `root` of `fs`, as {path: info} in `fs`'s own path form (what
    `fs.find(root, detail=True, withdirs=False)` gives); only `root`'s own files when not `recursive`.
    With `only`, just the files under those sub-folders of `root` (by name), not `root`'s own."""
    root = root.rstrip("/") or root
    files: dict[str, dict] = {}
    folders: list[str] = []
    for info in fs.ls(root, detail=True):
        name = info["name"].rstrip("/")
        if name == root or posixpath.basename(name) in ("", "."):
            continue  # some stores list the folder itself (a zero-byte "folder/" marker)
        if info.get("type") == "directory":
            wanted = only is None or posixpath.basename(name) in only
            if recursive and wanted:
                folders.append(name)
        elif only is None:
            files[name] = info
    if not folders:
        return dict(sorted(files.items()))
    with ThreadPoolExecutor(max_workers=max(1, min(concurrency, len(folders)))) as pool:
        for found in pool.map(lambda folder: fs.find(folder, detail=True, withdirs=False), folders):
            files.update(found)
    return dict(sorted(files.items()))
