"""Physical names of one stage: every name an AWS account holds once carries the stage.

Two stages (``-c stage=dev``, ``-c stage=prod``, or any short name) deploy side by side in one
account and region because no physical name is shared: DynamoDB tables, the stream, the topic,
the KMS alias, Firehose, the IoT rule and topic, ECS services and task families, IAM roles, log
groups, secrets and the KCL lease tables all start with the stage's prefix. Names
CloudFormation generates (buckets, the cluster, the function) are unique anyway.

The prefix is ``wenu-<stage>-`` (``wenu_<stage>_`` where only underscores are allowed, ``wenu/<stage>/``
for secrets, log groups and the IoT topic), so one IAM pattern such as ``table/wenu-prod-*`` covers
a stage and never another. The tasks learn the names through ``WENU_*`` variables
(``environment()``): no task falls back to an application default.
"""

from __future__ import annotations

import re

STAGE_PATTERN = re.compile(r"^[a-z][a-z0-9]{0,11}$")
APPS = ("alarms", "processing")


class SettingError(ValueError):
    """A context setting the stack cannot use; the message names the setting and the fix."""


class Names:
    """The physical names of the stage ``stage``."""

    def __init__(self, stage: str) -> None:
        if not isinstance(stage, str) or not STAGE_PATTERN.match(stage):
            raise SettingError(
                f"stage={stage!r} is not a valid stage name; fix: pass -c stage=<name> with 1-12 lower-case "
                "letters and digits, starting with a letter (e.g. dev, prod, alice)"
            )
        self.stage = stage
        self.prefix = f"wenu-{stage}-"

    def __call__(self, thing: str) -> str:
        """``wenu-<stage>-<thing>``: tables, stream, topic, Firehose, services, families, roles."""
        return self.prefix + thing

    @property
    def stack(self) -> str:
        return f"WenuStream-{self.stage}"

    @property
    def stream(self) -> str:
        return self("readings")

    @property
    def state_table(self) -> str:
        return self("state")

    @property
    def stats_table(self) -> str:
        return self("stats")

    @property
    def alarm_state_table(self) -> str:
        return self("alarm-state")

    @property
    def transitions_table(self) -> str:
        return self("alarm-transitions")

    @property
    def topic(self) -> str:
        return self("alarms")

    @property
    def keyring_alias(self) -> str:
        return f"alias/{self('keyring')}"

    @property
    def firehose(self) -> str:
        return self("raw-archive")

    @property
    def iot_rule(self) -> str:
        return f"wenu_{self.stage}_readings_to_kinesis"  # IoT rule names: letters, digits and _

    @property
    def iot_topic_filter(self) -> str:
        """Meters of this stage publish on ``wenu/<stage>/readings/<device>``."""
        return f"wenu/{self.stage}/readings/+"

    @property
    def iot_device_key(self) -> str:
        """The rule's partition key: the device, the 4th level of the topic."""
        return "${topic(4)}"

    @property
    def dns_namespace(self) -> str:
        """The Cloud Map private DNS namespace of the stage's tasks."""
        return f"wenu-{self.stage}.internal"

    def lease_table(self, app: str) -> str:
        """The KCL application name = its lease table (KCL 3 adds -WorkerMetricStats, -CoordinatorState)."""
        return self(app)

    def service(self, app: str) -> str:
        return self(app)

    def family(self, app: str) -> str:
        return self(app)

    def task_role(self, app: str) -> str:
        return self(f"{app}-task")

    def log_group(self, app: str) -> str:
        return f"/wenu/{self.stage}/{app}"

    def secret(self, thing: str) -> str:
        return f"wenu/{self.stage}/{thing}"

    def environment(self, app: str) -> dict[str, str]:
        """``WENU_*`` names a task of ``app`` needs so that it touches only this stage's resources."""
        return {
            "WENU_KINESIS_STREAM": self.stream,
            "WENU_LEASE_TABLE": self.lease_table(app),
            "WENU_SINKS_STATE_TABLE": self.state_table,
            "WENU_STATS_TABLE": self.stats_table,
            "WENU_ALARMS_STATE_TABLE": self.alarm_state_table,
            "WENU_ALARMS_TRANSITIONS_TABLE": self.transitions_table,
            "WENU_ALARMS_TOPIC_NAME": self.topic,
        }
