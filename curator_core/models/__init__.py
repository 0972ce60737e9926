"""Thin wrappers that load real model architectures from a local model directory (no network at run time)."""
