"""Adapters with durable effects (AWS) and their in-memory fakes."""
