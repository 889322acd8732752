"""Shared fixtures. Server fixtures live in tests/fixtures/ as plugins, one module per server family."""

pytest_plugins = [
    "tests.fixtures.aws",
    "tests.fixtures.kcl",
    "tests.fixtures.postgres",
    "tests.fixtures.prometheus",
]
