"""A batch's gallery: one static HTML page written beside its clip media (<output_root>/<batch>/gallery.html)
that a person opens to see what the batch became: animated previews, spans, scores and captions of the kept
clips, the filtered clips with the rule that dropped them, and the inputs that failed with their reasons.

It is rebuilt from the clip store after the `clips` and `clip_captions` steps. The counts cover the whole
batch; the page shows at most `SHOWN_KEPT` kept and `SHOWN_FILTERED` filtered clips and `SHOWN_FAILURES`
failures, read with a limit, so a batch of a million clips costs the same page and the same read as a small
one. Previews are linked relative to the page, so the folder can be moved or served as it is.
"""

from __future__ import annotations

import html
import posixpath
from collections import Counter
from dataclasses import dataclass

from curator_core.atomic import write_atomic
from curator_core.store import ClipStore
from curator_core.store.store import sql_literal

PAGE = "gallery.html"
SHOWN_KEPT = 500
SHOWN_FILTERED = 200
SHOWN_FAILURES = 200
CLIP_COLUMNS = ["uuid", "source_uri", "span_start_s", "span_end_s", "preview_uri", "filtered_by", "scores"]


@dataclass(frozen=True)
class Gallery:
    uri: str
    kept: int
    filtered: int
    failures: int
    shown: int  # clips on the page


def gallery_uri(output_root: str, batch_key: str) -> str:
    return posixpath.join(output_root.rstrip("/"), batch_key, PAGE)


def write_gallery(store: ClipStore, batch_key: str, output_root: str) -> Gallery:
    """Write the batch's gallery page from the store and return where it is and what it counts."""
    batch = f"batch_key = {sql_literal(batch_key)}"
    folder = posixpath.join(output_root.rstrip("/"), batch_key)
    kept_total = store.count("clips", f"{batch} AND kept")
    filtered_total = store.count("clips", f"{batch} AND NOT kept")
    kept = store.rows("clips", f"{batch} AND kept", CLIP_COLUMNS, limit=SHOWN_KEPT).to_pylist()
    filtered = store.rows("clips", f"{batch} AND NOT kept", CLIP_COLUMNS, limit=SHOWN_FILTERED).to_pylist()
    reasons = Counter(
        r["filtered_by"] or "unknown"
        for r in store.rows("clips", f"{batch} AND NOT kept", ["filtered_by"]).to_pylist()
    )
    failures_total = store.count("failures", batch)
    failures = store.rows("failures", batch, ["stage", "input", "message"], limit=SHOWN_FAILURES).to_pylist()
    captions = _captions(store, batch, [r["uuid"] for r in kept])
    order = lambda r: (r["source_uri"] or "", r["span_start_s"])  # noqa: E731 - a sort key
    body = [
        f"<h1>Batch {_e(batch_key)}</h1>",
        _summary(kept_total, filtered_total, reasons, failures_total),
        _section("Failed inputs", failures_total, len(failures), _failure_table(failures)),
        _section(
            "Kept clips",
            kept_total,
            len(kept),
            _cards(sorted(kept, key=order), folder, captions),
        ),
        _section(
            "Filtered clips",
            filtered_total,
            len(filtered),
            _cards(sorted(filtered, key=order), folder, {}),
        ),
    ]
    uri = gallery_uri(output_root, batch_key)
    write_atomic(uri, _page(f"{batch_key}: clips", "\n".join(body)).encode())
    return Gallery(uri, kept_total, filtered_total, failures_total, len(kept) + len(filtered))


def _captions(store: ClipStore, batch: str, uuids: list[str]) -> dict[str, list[str]]:
    """Caption texts of the shown clips, enhanced ones first, in window order."""
    if not uuids or "clip_captions" not in store.table_names():
        return {}
    listed = ", ".join(sql_literal(u) for u in uuids)
    rows = store.rows(
        "clip_captions", f"{batch} AND uuid IN ({listed})", ["uuid", "window", "kind", "text"]
    ).to_pylist()
    rows.sort(key=lambda r: (r["uuid"], r["kind"] != "enhanced", r["window"]))
    out: dict[str, list[str]] = {}
    for row in rows:
        out.setdefault(row["uuid"], []).append(f"[{row['kind']} {row['window']}] {row['text']}")
    return out


def _summary(kept: int, filtered: int, reasons: Counter, failures: int) -> str:
    why = ", ".join(f"{_e(rule)}: {n}" for rule, n in sorted(reasons.items())) or "none"
    return (
        f'<p class="summary"><b>{kept}</b> clips kept, <b>{filtered}</b> filtered ({why}), '
        f"<b>{failures}</b> failed inputs.</p>"
    )


def _section(title: str, total: int, shown: int, content: str) -> str:
    more = f" (showing {shown} of {total})" if shown < total else ""
    return f'<h2 id="{title.lower().replace(" ", "-")}">{title}: {total}{more}</h2>\n{content}'


def _failure_table(rows: list[dict]) -> str:
    if not rows:
        return "<p>none</p>"
    lines = "".join(
        f"<tr><td>{_e(r['stage'])}</td><td>{_e(r['input'])}</td><td>{_e(r['message'])}</td></tr>"
        for r in rows
    )
    return f'<table class="failures"><tr><th>stage</th><th>input</th><th>reason</th></tr>{lines}</table>'


def _cards(rows: list[dict], folder: str, captions: dict[str, list[str]]) -> str:
    if not rows:
        return "<p>none</p>"
    return (
        '<div class="grid">' + "".join(_card(r, folder, captions.get(r["uuid"], [])) for r in rows) + "</div>"
    )


def _card(row: dict, folder: str, captions: list[str]) -> str:
    preview = row["preview_uri"]
    image = (
        f'<img loading="lazy" src="{_e(_relative(preview, folder))}" alt="preview of {_e(row["uuid"])}">'
        if preview
        else '<div class="nopreview">no preview</div>'
    )
    scores = ", ".join(f"{k} {v:.4g}" for k, v in sorted(dict(row["scores"] or {}).items()))
    lines = [
        f'<div class="id">{_e(row["uuid"])}</div>',
        f"<div>{_e(posixpath.basename(row['source_uri'] or ''))} "
        f"{row['span_start_s']:.2f}-{row['span_end_s']:.2f} s</div>",
        f'<div class="scores">{_e(scores)}</div>',
    ]
    if row["filtered_by"]:
        lines.append(f'<div class="reason">filtered by {_e(row["filtered_by"])}</div>')
    lines += [f'<div class="caption">{_e(_clipped(text))}</div>' for text in captions]
    return f'<figure class="clip">{image}<figcaption>{"".join(lines)}</figcaption></figure>'


def _clipped(text: str, limit: int = 600) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _relative(uri: str, folder: str) -> str:
    """The preview's path relative to the page when it lies under the batch folder, else its URI."""
    prefix = folder.rstrip("/") + "/"
    for candidate in (uri, uri.removeprefix("file://")):
        if candidate.startswith(prefix):
            return candidate[len(prefix) :]
    return uri


def _e(text) -> str:
    return html.escape(str(text), quote=True)


STYLE = """
body { font-family: sans-serif; margin: 1.5em; color: #222; }
.grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(260px, 1fr)); gap: 12px; }
.clip { margin: 0; border: 1px solid #ddd; border-radius: 6px; padding: 6px; overflow-wrap: anywhere; }
.clip img, .nopreview { width: 100%; aspect-ratio: 16 / 9; object-fit: contain; background: #111; }
.nopreview { color: #aaa; display: flex; align-items: center; justify-content: center; }
.id { font-family: monospace; font-size: 11px; color: #555; }
.scores { font-size: 12px; color: #444; } .reason { color: #a40; } .caption { font-size: 13px; }
table.failures { border-collapse: collapse; } .failures td, .failures th { border: 1px solid #ccc;
  padding: 4px 8px; text-align: left; overflow-wrap: anywhere; }
"""


def _page(title: str, body: str) -> str:
    return (
        f'<!doctype html>\n<html lang="en"><head><meta charset="utf-8"><title>{_e(title)}</title>'
        f"<style>{STYLE}</style></head>\n<body>\n{body}\n</body></html>\n"
    )
