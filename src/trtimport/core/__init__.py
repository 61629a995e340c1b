"""The contracts every layer shares: the importer interface, options, the backend, files."""
