"""The native asyncio driver: leases in the KCL schema, fast GetRecords, one consumer task per held shard.

Entry point: ``wenu_stream.drivers.native.worker.run_worker``.
"""
