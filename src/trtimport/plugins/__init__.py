"""Hook specifications and plugin discovery."""
