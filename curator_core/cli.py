"""The `curator` command. Library code logs; this module owns the console."""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import sys
import typing
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

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


@command("demo", "the main job: a sample batch -> all four Dagster assets on local Ray (embedded defaults)")
def _demo_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--batch", default="demo-batch-0001", help="the batch (partition) name")
    parser.add_argument("--json", action="store_true", help="print the run summary as JSON")


@_demo_args.run
def _demo(args: argparse.Namespace) -> int:
    from curator_assets.demo import run_demo

    summary = run_demo(args.batch)
    if args.json:
        print_json(summary)
        return 0 if summary["success"] else 1
    print(f"\nbatch {summary['batch']}: sample videos {', '.join(Path(v).name for v in summary['inputs'])}")
    print(
        f"Dagster run {summary['run_id']}: {'success' if summary['success'] else 'FAILED'} in {summary['wall_time_s']} s"
    )
    for clip in sorted(summary["clips"], key=lambda c: (c["source_uri"], c["span_start_s"])):
        state = "kept    " if clip["kept"] else f"filtered ({clip['filtered_by']})"
        caption = summary["captions"].get(clip["uuid"], "")
        print(
            f"  {clip['uuid'][:8]} {Path(clip['source_uri']).name} {clip['span_start_s']:.2f}-{clip['span_end_s']:.2f}s "
            f"{state} {clip['media_uri'] or ''}"
            + (f"\n           caption: {caption[:60]!r}" if caption else "")
        )
    for failure in summary["failures"]:
        print(f"  failed: {failure['stage']} {failure['input']}: {failure['message']}")
    print(
        "asset checks: "
        + ", ".join(f"{name} {'passed' if ok else 'FAILED'}" for name, ok in summary["checks"])
    )
    shards = summary["shards"]
    if shards:
        print(
            f"\ntraining shards (WebDataset): {shards['samples']} samples in {len(shards['shards'])} shards, "
            f"index {summary['shards_index']}"
        )
        print(f"dataset manifest and card: {summary['manifest']} (DATASET_CARD.md beside it)")
    print(f"clip media and previews: {summary['output_root']}")
    if summary.get("gallery"):
        print(f"gallery of the batch:    {summary['gallery']}")
    print(f"clip store (LanceDB): {summary['store_uri']}")
    print(f'search it:  .venv/bin/curator search "a moving square" --k 3 --store {summary["store_uri"]}')
    print(
        f"export it:  .venv/bin/curator export clips --to parquet clips.parquet --store {summary['store_uri']}"
    )
    print(f"open the UI: make ui   (DAGSTER_HOME={summary['dagster_home']}, then http://127.0.0.1:3000)")
    print("new batches: drop a folder of videos (+ an empty _READY file) into state/landing/ and turn on the "
          "new_upload_batches sensor in the UI")  # fmt: skip
    for note in summary["notes"]:
        print(f"NOTE: {note}")
    return 0 if summary["success"] else 1


@command("run", "split, transcode, filter and write clips of INPUT videos (local Ray)")
def _run_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("inputs", nargs="+", metavar="INPUT", help="video files, folders or fsspec URLs")
    parser.add_argument("--out", required=True, help="output root (folder or fsspec URL)")
    from curator_core.video.options import SECTIONS, CurationOptions

    for section in SECTIONS:
        add_model_arguments(parser.add_argument_group(section.__doc__.rstrip(".")), section)
    parser.add_argument(
        "--model-dir",
        dest="model_dir",
        default=None,
        help=CurationOptions.model_fields["model_dir"].description,
    )
    parser.add_argument("--mode", choices=["streaming", "batch"], default="streaming")
    parser.add_argument(
        "--ray-address",
        default=None,
        help="a running cluster (head:port); default: $RAY_ADDRESS or local Ray",
    )
    parser.add_argument(
        "--runtime-env",
        default=None,
        metavar="FILE",
        help="Ray runtime environment of the workers, as JSON (env_vars, working_dir, py_modules, pip); "
        "the storage configuration and its credentials are added to its env_vars",
    )
    parser.add_argument("--store", default=None, help="also record the run in this clip store (LanceDB URI)")
    parser.add_argument("--batch", default="cli", help="batch key of the rows written to --store")
    parser.add_argument("--json", action="store_true", help="print a JSON summary (the only thing on stdout)")
    parser.add_argument(
        "--allow-failures",
        action="store_true",
        help="exit 0 even when some inputs failed (not when none worked)",
    )


@_run_args.run
def _run(args: argparse.Namespace) -> int:
    from curator_core.executors.ray import RayExecutor
    from curator_core.video.io import VideoInputError
    from curator_core.video.options import CurationOptions
    from curator_core.video.pipelines import split_pipeline
    from curator_core.video.report import run_summary

    options = model_from_args(args, CurationOptions)  # the flags given; the core's defaults for the rest
    pipeline = split_pipeline(args.inputs, _absolute(args.out), options)
    try:
        pipeline.build()  # resolves and checks the inputs here, before Ray starts
    except VideoInputError as exc:
        print(f"curator run: {exc}", file=sys.stderr)
        return 2
    if not args.json:
        print(pipeline.describe(), file=sys.stderr)
    runtime_env = json.loads(Path(args.runtime_env).read_text()) if args.runtime_env else None
    executor = RayExecutor(
        execution_mode=args.mode,
        show_progress=not args.json,
        address=args.ray_address,
        runtime_env=runtime_env,
    )
    result = pipeline.execute(executor)
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
        print_json(summary)
    else:
        print(result.summary())
        print(
            f"videos read: {summary['videos_read']}, clips written: {len(summary['clips_written'])}, "
            f"filtered: {len(summary['filtered'])}, failed: {len(summary['failed'])}"
        )
        for item in summary["failed"]:
            print(f"  failed: {item['source']}: {item['reason']}")
        print(f"outputs under {args.out}")
    return _run_exit_code(summary, args.allow_failures)


def _absolute(uri: str) -> str:
    """A local path made absolute (the workers write there from their own directories); URIs as given."""
    return uri if "://" in uri else os.path.abspath(uri)


def _run_exit_code(summary: dict, allow_failures: bool) -> int:
    """1 when nothing was written, or when an input failed (unless failures are allowed); else 0."""
    if not summary["clips_written"]:
        print("curator run: no clip was written", file=sys.stderr)
        return 1
    if summary["failed"] and not allow_failures:
        print(
            f"curator run: {len(summary['failed'])} inputs failed (--allow-failures accepts that)",
            file=sys.stderr,
        )
        return 1
    return 0


@command(
    "export",
    "export a clip-store table to Parquet, a batch as WebDataset training shards, or the dataset manifest",
)
def _export_args(parser: argparse.ArgumentParser) -> None:
    from curator_core.training.options import ShardOptions

    parser.add_argument(
        "what",
        help="shards (a batch's training shards), manifest (every batch's shards), or a table: videos, "
        "clips, clip_captions, failures, training_shards, clip_embeddings__<model>",
    )
    parser.add_argument("path", nargs="?", help="table: the output file (local path or fsspec URL)")
    parser.add_argument(
        "--to",
        default=None,
        help="table: the format (parquet); shards and manifest: the shards root (folder or fsspec URL)",
    )
    parser.add_argument("--store", default="state/store", help="clip store URI")
    parser.add_argument("--batch", default=None, help="shards: the batch key")
    parser.add_argument(
        "--storage-options",
        type=json.loads,
        default={},
        metavar="JSON",
        help='shards and manifest: fsspec options of the destination, e.g. {"endpoint_url": "http://..."}',
    )
    add_model_arguments(parser.add_argument_group("shards: selection and packing"), ShardOptions)


@_export_args.run
def _export(args: argparse.Namespace) -> int:
    from curator_core.store import ClipStore

    if args.what in ("shards", "manifest"):
        return _export_training(args)
    store = ClipStore(args.store)
    if args.to not in (None, "parquet") or not args.path:
        print("curator export: a table export is `curator export TABLE --to parquet PATH`", file=sys.stderr)
        return 2
    if args.what not in store.table_names():
        print(
            f"curator export: no table {args.what!r} in {args.store} (tables: {', '.join(store.table_names()) or 'none'})",
            file=sys.stderr,
        )
        return 2
    print(f"{store.export(args.what, args.path)} rows -> {args.path}")
    return 0


def _export_training(args: argparse.Namespace) -> int:
    from curator_core.training.manifest import write_manifest
    from curator_core.training.options import ShardOptions
    from curator_core.training.shards import ShardExportError, export_shards

    if not args.to or (args.what == "shards" and not args.batch):
        print(f"curator export {args.what}: give --to ROOT" + (" and --batch KEY" if args.what == "shards" else ""),
              file=sys.stderr)  # fmt: skip
        return 2
    if args.what == "manifest":
        manifest = write_manifest(args.store, args.to, args.storage_options)
        print_json({"root": args.to, **manifest.totals})
        return 0
    try:
        export = export_shards(
            args.store, args.batch, args.to, model_from_args(args, ShardOptions), None, args.storage_options
        )
    except ShardExportError as exc:
        print(f"curator export shards: {exc}", file=sys.stderr)
        return 1
    print_json(
        {
            "batch": export.batch_key,
            "index": export.index_uri,
            "shards": [s.uri for s in export.shards],
            "samples": export.samples,
            "bytes": export.bytes,
            "candidates": export.candidates,
            "dropped": export.dropped,
            "failed": export.failures,
        }
    )
    for failure in export.failures:
        print(f"failed: {failure['input']}: {failure['reason']}", file=sys.stderr)
    return 1 if export.failures else 0


def add_model_arguments(parser, model, prefix: str = "") -> None:
    """One flag per field of a pydantic options model, with its default and description (declared once).
    `prefix` goes before each flag and its destination (`storage_` -> `--storage-region`)."""
    for field_name, field in model.model_fields.items():
        name = prefix + field_name
        extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
        flag = extra.get("flag") or "--" + name.replace("_", "-")
        annotation = field.annotation
        kinds = set(typing.get_args(annotation)) - {type(None)} or {annotation}
        help_text = f"{field.description} (default: {field.default})"
        if kinds == {bool}:
            parser.add_argument(
                flag, dest=name, action=argparse.BooleanOptionalAction, default=None, help=help_text
            )
        elif typing.get_origin(annotation) is typing.Literal:
            parser.add_argument(flag, dest=name, choices=sorted(kinds), default=None, help=help_text)
        else:
            parser.add_argument(flag, dest=name, type=next(iter(kinds)), default=None, help=help_text)


def model_from_args(args: argparse.Namespace, model, prefix: str = "", base: dict | None = None):
    """The options model from the flags that were given (`base`, then the model's defaults, for the rest)."""
    given = {
        name: getattr(args, prefix + name)
        for name in model.model_fields
        if getattr(args, prefix + name, None) is not None
    }
    return model(**{**(base or {}), **given})


def _add_storage_arguments(parser: argparse.ArgumentParser) -> None:
    from curator_core.storage import StorageConfig

    group = parser.add_argument_group(
        "object storage (every input, output and store of the command; credentials stay in the "
        "variables the *_env flags name)"
    )
    group.add_argument("--storage", default=None, metavar="FILE", help="a StorageConfig as a JSON file")
    add_model_arguments(group, StorageConfig, prefix="storage_")


def _configure_storage(args: argparse.Namespace) -> None:
    """Apply the command's storage configuration (file, then flags) to this process and its workers."""
    from curator_core import storage

    base = storage.StorageConfig.load(args.storage).model_dump() if args.storage else None
    storage.configure(model_from_args(args, storage.StorageConfig, prefix="storage_", base=base))


@command("models", "provide model weights in the model directory (CURATOR_MODEL_DIR, default ./models)")
def _models_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=["demo", "download", "list"])
    parser.add_argument("--arch", default="ViT-B-32", help="download: open_clip architecture")
    parser.add_argument("--tag", default="laion2b_s34b_b79k", help="download: open_clip pretrained tag")
    parser.add_argument(
        "--hf",
        default=None,
        metavar="REPO",
        help="download: a Hugging Face VLM or LM repository instead (e.g. Qwen/Qwen2.5-VL-3B-Instruct)",
    )
    parser.add_argument(
        "--role",
        choices=["captioning", "caption_enhancement"],
        default="captioning",
        help="download --hf: the role it is configured for",
    )
    parser.add_argument(
        "--dir", default=None, help="model directory (default: $CURATOR_MODEL_DIR or ./models)"
    )


@_models_args.run
def _models(args: argparse.Namespace) -> int:
    from curator_core.models import registry
    from curator_core.models.aesthetic import write_demo_aesthetic
    from curator_core.models.open_clip_model import DEMO_EMBED_DIM, download_model, write_demo_model
    from curator_core.models.transformers_models import (
        download_hf_model,
        write_demo_text_model,
        write_demo_vlm,
    )

    if args.action == "demo":
        model_id = write_demo_model(args.dir)
        print(f"{model_id}: tiny RANDOM-weight open_clip model in {registry.model_path(model_id, args.dir)}")
        aesthetic = write_demo_aesthetic(DEMO_EMBED_DIM, model_id, args.dir)
        print(f"{aesthetic}: RANDOM-weight aesthetic MLP in {registry.model_path(aesthetic, args.dir)}")
        for model_id in (write_demo_vlm(args.dir), write_demo_text_model(args.dir)):
            print(
                f"{model_id}: tiny RANDOM-weight transformers model in {registry.model_path(model_id, args.dir)}"
            )
        print("it makes the pipeline run anywhere; its embeddings mean nothing")
    elif args.action == "download" and args.hf:
        model_id = download_hf_model(args.hf, args.role, args.dir)
        print(f"{model_id}: downloaded to {registry.model_path(model_id, args.dir)} as the {args.role} model")
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
    print_json({"query": args.query, "model": model.model_id, "results": hits})
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
    print_json([vars(d) for d in found])
    return 0


@command("shots", "detect shot transitions in a video")
def _shots_args(parser: argparse.ArgumentParser) -> None:
    from curator_core.video.options import SplittingOptions

    field = SplittingOptions.model_fields["shot_detector"]
    parser.add_argument("video")
    parser.add_argument("--detector", default=field.default, help=field.description)
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
        print(f"curator shots: {args.video}: {exc}", file=sys.stderr)
        return 1
    out = {"video": args.video, "transitions": [t.to_dict() for t in result.transitions]}
    if args.json:
        print_json(out)
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
        command_parser = sub.add_parser(name, help=help_text, description=help_text)
        add_arguments(command_parser)
        _add_storage_arguments(command_parser)
    return parser


def _prints_a_document(args: argparse.Namespace) -> bool:
    """Whether the command's output is one JSON document (always for search, dedup and the shard and
    manifest exports; with --json for the others)."""
    if args.command in ("search", "dedup"):
        return True
    if args.command == "export":
        return args.what in ("shards", "manifest")
    return bool(getattr(args, "json", False))


_JSON_OUT: IO[str] | None = None  # the real standard output while such a command runs


def print_json(document: Any) -> None:
    """Print the command's one JSON document on the real standard output."""
    out = _JSON_OUT or sys.stdout
    out.write(json.dumps(document, indent=2, default=str) + "\n")
    out.flush()


@contextlib.contextmanager
def _stdout_for_the_document_only() -> Iterator[None]:
    """Point file descriptor 1 at stderr while the command runs, so that whatever else writes there (Ray's
    forwarded worker lines, native libraries) cannot break the JSON document `print_json` writes. Ray's
    driver threads go on forwarding lines (a worker's late output, the raylet's warnings) after the
    command returns, so in a process of its own the command's Ray connection ends before stdout is back
    (measured: a raylet warning on worker start-up landed after the document)."""
    global _JSON_OUT
    sys.stdout.flush()
    try:
        on_fd_1 = sys.stdout.fileno() == 1
    except (AttributeError, OSError, ValueError):  # a stream in memory (an embedding program, pytest)
        on_fd_1 = False
    real = os.dup(1)
    os.dup2(2, 1)
    _JSON_OUT = os.fdopen(os.dup(real), "w") if on_fd_1 else sys.stdout
    try:
        yield
    finally:
        if on_fd_1:
            _end_ray_connection()
            _JSON_OUT.close()
        sys.stdout.flush()  # what anything wrote meanwhile, to stderr still
        os.dup2(real, 1)
        os.close(real)
        _JSON_OUT = None


def _end_ray_connection() -> None:
    """Disconnect this driver from Ray (stopping a private cluster it started), if it connected."""
    ray = sys.modules.get("ray")
    if ray is not None and ray.is_initialized():
        ray.shutdown()


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    level = logging.INFO if args.verbose else logging.WARNING
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    logging.getLogger("ray").setLevel(level)
    _configure_storage(args)
    run = COMMANDS[args.command][2]
    if _prints_a_document(args):
        with _stdout_for_the_document_only():
            return run(args)
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
