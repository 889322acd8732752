"""The wenu-stream stack as AWS CDK constructs: storage, ingest, services (see stack.WenuStack)."""
