"""wenu-stream: the streaming data platform of IoT meter readings."""

__version__ = "0.1.0"
