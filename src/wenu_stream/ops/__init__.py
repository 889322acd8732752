"""Operator tools (sync, boto3): checkpoint listing and reset, rebuild markers, dead-letter re-drive."""
