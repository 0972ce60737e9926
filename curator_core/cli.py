"""The `curator` command. Library code logs; this module owns the console."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable
from pathlib import Path

COMMANDS: dict[
    str, tuple[str, Callable[[argparse.ArgumentParser], None], Callable[[argparse.Namespace], int]]
] = {}


def command(name: str, help_text: str):
    """Register a subcommand: the decorated function adds its arguments; `run` is attached as `.run`."""

    def decorator(add_arguments: Callable[[argparse.ArgumentParser], None]):
        def attach(run: Callable[[argparse.Namespace], int]):
            COMMANDS[name] = (help_text, add_arguments, run)
            return run

        add_arguments.run = attach  # type: ignore[attr-defined]
        return add_arguments

    return decorator


@command("demo", "the main job on embedded defaults: sample videos -> clips on local Ray")
def _demo_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--root", default="outputs/demo", help="where sample inputs and outputs go")
    parser.add_argument("--json", action="store_true", help="print the run summary as JSON")


@_demo_args.run
def _demo(args: argparse.Namespace) -> int:
    from curator_core.demo import run_demo

    summary = run_demo(args.root)
    if args.json:
        print(json.dumps({k: v for k, v in summary.items() if k not in ("pipeline", "report")}, indent=2))
        return 0 if not summary["failed"] else 1
    print(summary["pipeline"], "\n")
    print(summary["report"], "\n")
    print(f"sample videos: {', '.join(summary['inputs'])}")
    print(
        f"clips written: {len(summary['clips_written'])}, filtered: {len(summary['filtered'])}, "
        f"failed: {len(summary['failed'])}"
    )
    for clip in summary["clips_written"]:
        print(
            f"  {clip['uuid']}  {Path(clip['source']).name} {clip['span'][0]:.2f}-{clip['span'][1]:.2f}s  {clip['path']}"
        )
    for item in summary["filtered"]:
        print(
            f"  filtered {Path(item['source']).name} {item['span'][0]:.2f}-{item['span'][1]:.2f}s: {item['reason']}"
        )
    print(f"\noutputs under {summary['output_root']} (clips/, previews/, metadata/)")
    store = summary["store"]
    print(f"clip store: {store['uri']} (batch {store['batch']}: {store['rows']})")
    print(f"export it: .venv/bin/curator export clips --to parquet clips.parquet --store {store['uri']}")
    print(f'search it: .venv/bin/curator search "a moving square" --k 3 --store {store["uri"]}')
    for note in summary["notes"]:
        print(f"NOTE: {note}")
    print("run your own videos: .venv/bin/curator run VIDEO_OR_FOLDER --out OUT_DIR")
    return 0 if not summary["failed"] else 1


@command("run", "split, transcode, filter and write clips of INPUT videos (local Ray)")
def _run_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("inputs", nargs="+", metavar="INPUT", help="video files, folders or fsspec URLs")
    parser.add_argument("--out", required=True, help="output root (folder or fsspec URL)")
    parser.add_argument("--splitting", choices=["fixed", "shots"], default="shots")
    parser.add_argument("--clip-len", type=float, default=10.0, help="fixed splitting: clip length, seconds")
    parser.add_argument("--clip-stride", type=float, default=None, help="fixed splitting: stride, seconds")
    parser.add_argument("--min-clip-len", type=float, default=2.0, help="shortest clip kept, seconds")
    parser.add_argument("--max-clip-len", type=float, default=60.0, help="shots: longest clip, seconds")
    parser.add_argument(
        "--limit-clips", type=int, default=0, help="fixed splitting: clips per video (0: all)"
    )
    parser.add_argument("--limit-videos", type=int, default=0)
    parser.add_argument(
        "--encoder", default="libx264", help="libx264, mpeg4, libvpx-vp9, libsvtav1, h264_nvenc..."
    )
    parser.add_argument("--crf", type=int, default=23)
    parser.add_argument("--preset", default="veryfast")
    parser.add_argument("--height", type=int, default=None, help="output height in pixels")
    parser.add_argument("--fps", type=float, default=None, help="output frame rate")
    parser.add_argument("--audio", action="store_true", help="keep the audio of each clip (AAC)")
    parser.add_argument(
        "--motion-threshold", type=float, default=0.0001, help="fraction of diagonal per frame"
    )
    parser.add_argument("--motion-score-only", action="store_true", help="score motion, filter nothing")
    parser.add_argument("--no-previews", action="store_true")
    parser.add_argument("--mode", choices=["streaming", "batch"], default="streaming")
    parser.add_argument(
        "--embed", action="store_true", help="add open_clip clip embeddings (see `curator models`)"
    )
    parser.add_argument("--embedding-model", default=None, help="model id (default: models.json's embedding)")
    parser.add_argument(
        "--model-dir", default=None, help="model directory (default: $CURATOR_MODEL_DIR or ./models)"
    )
    parser.add_argument(
        "--aesthetic", choices=["off", "score", "filter"], default="off", help="needs --embed"
    )
    parser.add_argument("--aesthetic-threshold", type=float, default=3.5, help="LAION scale, about 1-10")
    parser.add_argument("--store", default=None, help="also record the run in this clip store (LanceDB URI)")
    parser.add_argument("--batch", default="cli", help="batch key of the rows written to --store")
    parser.add_argument("--json", action="store_true", help="print a JSON summary")


@_run_args.run
def _run(args: argparse.Namespace) -> int:
    from curator_core.executors.ray import RayExecutor
    from curator_core.video.pipelines import SplitOptions, split_pipeline
    from curator_core.video.report import run_summary

    options = SplitOptions(
        splitting=args.splitting,
        clip_len_s=args.clip_len,
        clip_stride_s=args.clip_stride,
        min_clip_len_s=args.min_clip_len,
        max_clip_len_s=args.max_clip_len,
        limit_clips=args.limit_clips,
        encoder=args.encoder,
        crf=args.crf,
        preset=args.preset,
        target_height=args.height,
        target_fps=args.fps,
        include_audio=args.audio,
        motion_threshold=args.motion_threshold,
        motion_score_only=args.motion_score_only,
        previews=not args.no_previews,
        limit_videos=args.limit_videos,
        embed=args.embed,
        embedding_model=args.embedding_model,
        model_dir=args.model_dir,
        aesthetic=args.aesthetic,
        aesthetic_threshold=args.aesthetic_threshold,
    )
    pipeline = split_pipeline(args.inputs, args.out, options)
    if not args.json:
        print(pipeline.describe(), file=sys.stderr)
    result = pipeline.execute(RayExecutor(execution_mode=args.mode, show_progress=not args.json))
    summary = run_summary(result)
    if args.store:
        from curator_core import __version__
        from curator_core.store import ClipStore
        from curator_core.store.records import Lineage, params_hash, write_run

        lineage = Lineage(args.batch, pipeline.name, __version__, params_hash(options))
        summary["store"] = {
            "uri": args.store,
            "batch": args.batch,
            "rows": write_run(ClipStore(args.store), result, lineage),
        }
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print(result.summary())
        print(
            f"videos read: {summary['videos_read']}, clips written: {len(summary['clips_written'])}, "
            f"filtered: {len(summary['filtered'])}, failed: {len(summary['failed'])}"
        )
        for item in summary["failed"]:
            print(f"  failed: {item['source']}: {item['reason']}")
        print(f"outputs under {args.out}")
    return 0


@command("export", "export a clip-store table to Parquet")
def _export_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("table", help="videos, clips, clip_captions, failures or clip_embeddings__<model>")
    parser.add_argument("--to", choices=["parquet"], default="parquet")
    parser.add_argument("path", help="output file (local path or fsspec URL)")
    parser.add_argument("--store", default="state/store", help="clip store URI")


@_export_args.run
def _export(args: argparse.Namespace) -> int:
    from curator_core.store import ClipStore

    store = ClipStore(args.store)
    if args.table not in store.table_names():
        print(
            f"curator export: no table {args.table!r} in {args.store} (tables: {', '.join(store.table_names()) or 'none'})",
            file=sys.stderr,
        )
        return 2
    print(f"{store.export(args.table, args.path)} rows -> {args.path}")
    return 0


@command("models", "provide model weights in the model directory (CURATOR_MODEL_DIR, default ./models)")
def _models_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=["demo", "download", "list"])
    parser.add_argument("--arch", default="ViT-B-32", help="download: open_clip architecture")
    parser.add_argument("--tag", default="laion2b_s34b_b79k", help="download: open_clip pretrained tag")
    parser.add_argument(
        "--dir", default=None, help="model directory (default: $CURATOR_MODEL_DIR or ./models)"
    )


@_models_args.run
def _models(args: argparse.Namespace) -> int:
    from curator_core.models import registry
    from curator_core.models.aesthetic import write_demo_aesthetic
    from curator_core.models.open_clip_model import DEMO_EMBED_DIM, download_model, write_demo_model

    if args.action == "demo":
        model_id = write_demo_model(args.dir)
        print(f"{model_id}: tiny RANDOM-weight open_clip model in {registry.model_path(model_id, args.dir)}")
        aesthetic = write_demo_aesthetic(DEMO_EMBED_DIM, model_id, args.dir)
        print(f"{aesthetic}: RANDOM-weight aesthetic MLP in {registry.model_path(aesthetic, args.dir)}")
        print("it makes the pipeline run anywhere; its embeddings mean nothing")
    elif args.action == "download":
        model_id = download_model(args.arch, args.tag, args.dir)
        print(f"{model_id}: downloaded to {registry.model_path(model_id, args.dir)}")
    else:
        config = registry.model_dir(args.dir) / "models.json"
        print(config.read_text() if config.exists() else f"no models configured ({config} missing)")
    return 0


@command("search", "find clips by text in a clip store")
def _search_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("query")
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--where", default=None, help='SQL filter on clip columns, e.g. "duration_s > 3"')
    parser.add_argument("--store", default="state/store", help="clip store URI")
    parser.add_argument("--model-dir", default=None)


@_search_args.run
def _search(args: argparse.Namespace) -> int:
    from curator_core.models.open_clip_model import OpenClipModel
    from curator_core.store import ClipStore

    store = ClipStore(args.store)
    models = store.embedding_models()
    if not models:
        print(f"curator search: no clip embeddings in {args.store} (run with --embed first)", file=sys.stderr)
        return 2
    model = OpenClipModel.load(models[0], args.model_dir)
    if model.random_weights:
        print(
            f"note: {model.model_id} has random weights (demo model): these results mean nothing",
            file=sys.stderr,
        )
    hits = store.search_vector(model.model_id, model.encode_text([args.query])[0], k=args.k, where=args.where)
    print(json.dumps({"query": args.query, "model": model.model_id, "results": hits}, indent=2))
    return 0


@command("dedup", "record semantic near-duplicates of a batch's clips (within it and against the store)")
def _dedup_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--store", default="state/store", help="clip store URI")
    parser.add_argument("--batch", required=True, help="batch key")
    parser.add_argument("--model", default=None, help="embedding model id (default: the store's first)")
    parser.add_argument(
        "--eps", type=float, default=0.01, help="duplicates have cosine similarity >= 1 - eps"
    )


@_dedup_args.run
def _dedup(args: argparse.Namespace) -> int:
    from curator_core import __version__
    from curator_core.store import ClipStore
    from curator_core.store.records import Lineage, params_hash
    from curator_core.video.dedup import dedup_batch

    store = ClipStore(args.store)
    model_id = args.model or next(iter(store.embedding_models()), None)
    if model_id is None:
        print(f"curator dedup: no clip embeddings in {args.store} (run with --embed first)", file=sys.stderr)
        return 2
    lineage = Lineage(args.batch, "semantic_dedup", __version__, params_hash({"eps": args.eps}), model_id)
    found = dedup_batch(store, args.batch, model_id, args.eps, lineage)
    print(json.dumps([vars(d) for d in found], indent=2))
    return 0


@command("shots", "detect shot transitions in a video")
def _shots_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("video")
    parser.add_argument("--detector", default="content")
    parser.add_argument("--json", action="store_true")


@_shots_args.run
def _shots(args: argparse.Namespace) -> int:
    from curator_core.video.shots import DETECTORS, VideoDecodeError

    if args.detector not in DETECTORS:
        print(
            f"curator shots: unknown detector {args.detector!r} (choose from {', '.join(DETECTORS)})",
            file=sys.stderr,
        )
        return 2
    try:
        result = DETECTORS[args.detector]().detect_path(args.video)
    except VideoDecodeError as exc:
        print(f"curator shots: {exc}", file=sys.stderr)
        return 1
    out = {"video": args.video, "transitions": [t.to_dict() for t in result.transitions]}
    if args.json:
        print(json.dumps(out, indent=2))
    else:
        for t in result.transitions:
            print(
                f"{t.kind:8} frames {t.start_frame}-{t.end_frame}  {t.start_pts_s:.3f}-{t.end_pts_s:.3f}s  conf {t.confidence}"
            )
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="curator", description="Video data curation on Ray and Dagster.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log at INFO level")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (help_text, add_arguments, _) in COMMANDS.items():
        add_arguments(sub.add_parser(name, help=help_text, description=help_text))
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    level = logging.INFO if args.verbose else logging.WARNING
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("ray").setLevel(level)
    return COMMANDS[args.command][2](args)


if __name__ == "__main__":
    sys.exit(main())
