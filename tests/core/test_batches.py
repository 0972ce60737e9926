"""Pure pieces of the batch steps."""

from curator_core.batches import _short


def test_a_caption_preview_breaks_long_tokens_so_the_cell_wraps():
    cell = _short("a " + "x" * 70 + " b")
    assert max(len(part) for part in cell.replace("\u200b", " ").split()) <= 30
    assert cell.replace("\u200b", "") == "a " + "x" * 70 + " b"  # the same text, with break points
