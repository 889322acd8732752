"""Alarm rules and their pure evaluation engine.

``rules`` holds the rule model, ``engine`` the per-instance state machines,
``shard`` the :class:`AlarmEngine` of one shard, ``windows`` consumption windows.
"""
