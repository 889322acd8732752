"""The local AWS stack: moto's server (S3, SNS, SQS, KMS, Firehose, CloudWatch), dynalite (DynamoDB) and a
Node Kinesis emulator.

Everything listens on 127.0.0.1 only. dynalite (LevelDB, Node) serves DynamoDB
several times faster than moto's (7-8 ms of moto's own CPU per write); what it
lacks (UpdateTimeToLive, adding an index to an on-demand table, the old item on a
failed condition) the adapters and provisioning do without. ``StackSpec(dynamodb="moto")``
keeps DynamoDB on moto. kinesalite is the embedded default
(fast, durable with ``--path``); kinesis-local is the faithful one used by
tests of what kinesalite lacks (ChildShards, ShardFilter, shard end).
moto's own Kinesis is never used: it loses acknowledged records under
concurrent writers and never ends a closed shard.
"""

from wenu_stream.devtools.emulator.stack import Stack, StackSpec, start_stack, stop_stack

__all__ = ["Stack", "StackSpec", "start_stack", "stop_stack"]
