"""The shared backend: detection, the import pipeline, building and saving engines."""
