"""Checking an engine against the source framework: run both, compare every output."""
