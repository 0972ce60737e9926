"""Compatibility layers for code written against other curation frameworks."""
