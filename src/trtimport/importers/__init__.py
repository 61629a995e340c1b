"""Built-in importers; each module is a plugin registered like a third-party one."""
