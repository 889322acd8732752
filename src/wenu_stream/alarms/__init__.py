"""Alarm rules and their pure evaluation engine."""
