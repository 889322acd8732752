"""`wenu-stream demo`: registered here, built in ``wenu_stream.devtools.demo`` (a developer tool, never imported by a worker)."""

from wenu_stream.devtools.demo import register

__all__ = ["register"]
