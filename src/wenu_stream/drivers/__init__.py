"""The drivers that run a ``ShardProcessor``: ``native`` (asyncio, the embedded default) and ``kcl`` (the MultiLangDaemon)."""
