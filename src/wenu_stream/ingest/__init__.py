"""The backbone both applications share: per-batch decode and dedup (pure), the shard processor, enrichment fan-out."""
