"""The knobs are declared once (curator_core.video.options): the CLI flags, the Launchpad's run config of
each asset and the core agree on every default, and every core knob is reachable from both."""

from __future__ import annotations

from curator_assets.assets import clip_captions, clip_embeddings, clips
from curator_core.cli import build_parser, model_from_args
from curator_core.video.options import CurationOptions

CORE = CurationOptions()


def _launchpad_defaults(asset) -> dict:
    """What the Launchpad shows for the asset's config: each field's default (None where it has none)."""
    fields = asset.op.config_schema.as_field().config_type.fields
    return {name: f.default_value if f.default_provided else None for name, f in fields.items()}


def test_the_launchpad_and_the_core_agree_on_every_default():
    shown = {}
    for asset in (clips, clip_embeddings, clip_captions):
        defaults = _launchpad_defaults(asset)
        assert defaults, asset.key
        for name, value in defaults.items():
            assert value == getattr(CORE, name), (asset.key.to_user_string(), name, value)
        shown.update(defaults)
    # Every knob but the switches each asset sets itself (embed, caption) and the resource's model_dir.
    assert set(shown) == set(CurationOptions.model_fields) - {"embed", "caption", "model_dir"}
    assert clips.op.config_schema.as_field().config_type.fields["min_clip_len_s"].default_value == 2.0


def test_the_cli_and_the_core_agree_on_every_default():
    args = build_parser().parse_args(["run", "in", "--out", "out"])
    assert model_from_args(args, CurationOptions) == CORE  # no flag given: exactly the core's defaults
    given = build_parser().parse_args(
        [
            "run",
            "in",
            "--out",
            "out",
            "--min-clip-len",
            "1",
            "--no-previews",
            "--splitting",
            "fixed",
            "--caption",
        ]
    )
    options = model_from_args(given, CurationOptions)
    assert (options.min_clip_len_s, options.previews, options.splitting, options.caption) == (
        1.0,
        False,
        "fixed",
        True,
    )
