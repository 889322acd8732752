"""Subcommands of the wenu-stream CLI, one module each, each with ``register(subparsers)``."""
