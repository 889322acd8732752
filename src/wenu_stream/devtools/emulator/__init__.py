"""The local AWS stack: moto's server (DynamoDB, S3, SNS, SQS, KMS, Firehose, CloudWatch) and a Node Kinesis emulator.

Everything listens on 127.0.0.1 only. kinesalite is the embedded default
(fast, durable with ``--path``); kinesis-local is the faithful one used by
tests of what kinesalite lacks (ChildShards, ShardFilter, shard end).
moto's own Kinesis is never used: it loses acknowledged records under
concurrent writers and never ends a closed shard.
"""

from wenu_stream.devtools.emulator.stack import Stack, StackSpec, start_stack, stop_stack

__all__ = ["Stack", "StackSpec", "start_stack", "stop_stack"]
