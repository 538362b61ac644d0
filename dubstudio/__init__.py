"""dubstudio: a local-first AI dubbing studio."""

__version__ = "0.1.0"
