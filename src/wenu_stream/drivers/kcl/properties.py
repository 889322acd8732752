"""The KCL MultiLangDaemon properties files: check them before the daemon starts, render local variants.

The daemon sets every key on its configuration bean with commons-beanutils,
which silently ignores a key it does not know, and it only reports a missing
executable once a shard's child process fails to start. ``check_properties``
catches both at start-up and names the setting. The key set below is what
KCL 3.1.3's ``MultiLangDaemonConfiguration`` (and the beans it delegates to)
and ``MultiLangDaemonConfig`` accept (read from the v3.1.3 sources; 3.1.3 is
the KCL that amazon-kclpy 3.1.3 pins).
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Mapping
from pathlib import Path

# Keys of MultiLangDaemonConfig itself.
_DAEMON_KEYS = {"executableName", "processingLanguage", "maxActiveThreads"}
# Bean properties of KCL 3.1.3's MultiLangDaemonConfiguration (fields and setters).
_CONFIG_KEYS = {
    "applicationName",
    "streamName",
    "streamArn",
    "tableName",
    "workerId",
    "workerIdentifier",
    "regionName",
    "kinesisEndpoint",
    "dynamoDBEndpoint",
    "awsCredentialsProvider",
    "awsCredentialsProviderDynamoDB",
    "awsCredentialsProviderCloudWatch",
    "failoverTimeMillis",
    "leaseAssignmentIntervalMillis",
    "enablePriorityLeaseAssignment",
    "leaseTableDeletionProtectionEnabled",
    "leaseTablePitrEnabled",
    "shardSyncIntervalMillis",
    "cleanupLeasesUponShardCompletion",
    "ignoreUnexpectedChildShards",
    "maxLeasesForWorker",
    "maxLeasesToStealAtOneTime",
    "initialLeaseTableReadCapacity",
    "initialLeaseTableWriteCapacity",
    "initialPositionInStream",
    "initialPositionInStreamExtended",
    "maxLeaseRenewalThreads",
    "listShardsBackoffTimeInMillis",
    "maxListShardsRetryAttempts",
    "callProcessRecordsEvenForEmptyRecordList",
    "parentShardPollIntervalMillis",
    "shardPrioritization",
    "skipShardSyncAtWorkerInitializationIfLeasesExist",
    "schedulerInitializationBackoffTimeMillis",
    "clientVersionConfig",
    "taskBackoffTimeMillis",
    "metricsBufferTimeMillis",
    "metricsMaxQueueSize",
    "metricsLevel",
    "logWarningForTaskAfterMillis",
    "metricsEnabledDimensions",
    "retrievalMode",
    "validateSequenceNumberBeforeCheckpointing",
    "shutdownGraceMillis",
    "timeoutInSeconds",
}
# Delegated beans: PollingConfigBean, GracefulLeaseHandoffConfigBean, WorkerUtilizationAwareAssignmentConfigBean,
# WorkerMetricStatsTableConfigBean and CoordinatorStateTableConfigBean (KCL 3.1.3).
_DELEGATED_KEYS = {
    "retryGetRecordsInSeconds",
    "maxGetRecordsThreadPool",
    "idleTimeBetweenReadsInMillis",
    "millisBehindLatestThresholdForReducedTps",
    "maxRecords",
    "gracefulLeaseHandoffTimeoutMillis",
    "isGracefulLeaseHandoffEnabled",
    "inMemoryWorkerMetricsCaptureFrequencyMillis",
    "workerMetricsReporterFreqInMillis",
    "noOfPersistedMetricsPerWorkerMetrics",
    "disableWorkerMetrics",
    "maxThroughputPerHostKBps",
    "dampeningPercentage",
    "reBalanceThresholdPercentage",
    "allowThroughputOvershoot",
    "varianceBalancingFrequency",
    "workerMetricsEMAAlpha",
    "staleWorkerMetricsEntryCleanupDuration",
    "workerMetricsTableName",
    "workerMetricsBillingMode",
    "workerMetricsReadCapacity",
    "workerMetricsWriteCapacity",
    "workerMetricsPointInTimeRecoveryEnabled",
    "workerMetricsDeletionProtectionEnabled",
    "workerMetricsTags",
    "coordinatorStateTableName",
    "coordinatorStateBillingMode",
    "coordinatorStateReadCapacity",
    "coordinatorStateWriteCapacity",
    "coordinatorStatePointInTimeRecoveryEnabled",
    "coordinatorStateDeletionProtectionEnabled",
    "coordinatorStateTags",
}
KNOWN_KEYS = frozenset(_DAEMON_KEYS | _CONFIG_KEYS | _DELEGATED_KEYS)
REQUIRED = (
    "executableName",
    "applicationName",
    "streamName",
    "regionName",
    "awsCredentialsProvider",
    "retrievalMode",
    "timeoutInSeconds",
)
_INTEGERS = {  # key: (minimum, maximum)
    "failoverTimeMillis": (1_000, 600_000),
    "idleTimeBetweenReadsInMillis": (200, 60_000),  # KCL 3.x raises anything lower to 200
    "maxRecords": (1, 10_000),
    "timeoutInSeconds": (1, 3_600),
    "shutdownGraceMillis": (0, 600_000),
    "maxLeasesForWorker": (1, 2_147_483_647),
}
_CHOICES = {
    "retrievalMode": {"POLLING"},  # FANOUT needs EFO consumers (cost; no emulator); DEFAULT may pick FANOUT
    "initialPositionInStream": {"TRIM_HORIZON", "LATEST"},
    "metricsLevel": {"NONE", "SUMMARY", "DETAILED"},
}
_LINE = re.compile(r"^\s*([^=:\s]+)\s*[=:]?\s*(.*?)\s*$")


def parse_properties(text: str) -> dict[str, str]:
    """Parse Java ``.properties`` text (``key = value``/``key: value``, ``#``/``!`` comments, ``\\`` continuations)."""
    result: dict[str, str] = {}
    pending = ""
    for raw in text.splitlines():
        line = pending + raw.lstrip() if pending else raw
        if not pending and line.lstrip()[:1] in ("#", "!", ""):
            continue
        if line.endswith("\\") and not line.endswith("\\\\"):
            pending = line[:-1]
            continue
        pending = ""
        match = _LINE.match(line)
        if match:
            result[_normal_key(match.group(1))] = match.group(2)
    return result


def _normal_key(key: str) -> str:
    # The daemon matches AwsCredentialsProvider* keys case-insensitively (KinesisClientLibConfigurator.processKey).
    lowered = key.lower()
    if lowered.startswith("awscredentialsprovider"):
        return "awsCredentialsProvider" + key[len("awscredentialsprovider") :]
    return key


def check_properties(path: str | os.PathLike[str], cwd: str | os.PathLike[str] | None = None) -> list[str]:
    """Return every problem of a properties file, each naming the setting and the fix (empty: fine).

    Args:
        path: the properties file.
        cwd: the directory the daemon runs in (relative executables resolve there); default: the current one.
    """
    file = Path(path)
    if not file.is_file():
        return [f"{file}: no such properties file (fix: pass the path of properties/<app>.properties)"]
    props = parse_properties(file.read_text(encoding="utf-8"))
    problems = [
        f"{file}: {key}: unknown setting, the daemon would silently ignore it (fix: remove or rename it)"
        for key in props
        if key not in KNOWN_KEYS
    ]
    problems += [f"{file}: {key}: missing (fix: add `{key} = ...`)" for key in REQUIRED if not props.get(key)]
    problems += [f"{file}: {p}" for p in _value_problems(props)]
    if props.get("executableName"):
        problems += [
            f"{file}: executableName: {p}" for p in _executable_problems(props["executableName"], cwd)
        ]
    return problems


def _value_problems(props: Mapping[str, str]) -> list[str]:
    problems = []
    for key, (low, high) in _INTEGERS.items():
        value = props.get(key)
        if value is not None and not (value.isdigit() and low <= int(value) <= high):
            problems.append(f"{key}: {value!r} is not an integer in [{low}, {high}] (fix: set one)")
    for key, allowed in _CHOICES.items():
        value = props.get(key)
        if value is not None and value not in allowed:
            problems.append(f"{key}: {value!r} is not one of {sorted(allowed)} (fix: set one of them)")
    for key in ("kinesisEndpoint", "dynamoDBEndpoint"):
        value = props.get(key)
        if value is not None and not re.match(r"^https?://[^\s/]+", value):
            problems.append(f"{key}: {value!r} is not an http(s) URL (fix: e.g. http://127.0.0.1:4567)")
    return problems


def _executable_problems(command: str, cwd: str | os.PathLike[str] | None) -> list[str]:
    """The daemon splits ``executableName`` on whitespace and starts it from its working directory."""
    base = Path(cwd) if cwd is not None else Path.cwd()
    program, *args = command.split()
    problems = []
    located = (base / program) if "/" in program else shutil.which(program)
    if located is None or not Path(located).is_file() or not os.access(located, os.X_OK):
        problems.append(
            f"{program!r} is not an executable file (fix: a path relative to the daemon's "
            "working directory, or a program on PATH; scripts need chmod +x)"
        )
    for arg in args:
        if arg.endswith(".py") and not (base / arg).is_file():
            problems.append(
                f"script {arg!r} not found from {base} (fix: run the daemon from the repository root)"
            )
    return problems


def render_properties(app: str, overrides: Mapping[str, str], root: str | os.PathLike[str] = ".") -> str:
    """Return ``<root>/properties/<app>.properties`` with each key of ``overrides`` set, comments kept.

    Used for the local stack: endpoints (``kinesisEndpoint``, ``dynamoDBEndpoint``),
    the region and an ``executableName`` with this virtualenv's interpreter
    (see ``local_overrides``). Write the result to a file and pass it to the daemon.
    """
    return apply_overrides(
        Path(root, "properties", f"{app}.properties").read_text(encoding="utf-8"), overrides
    )


def apply_overrides(template: str, overrides: Mapping[str, str]) -> str:
    """Set each key of ``overrides`` in properties text: replaced in place if present, appended if not."""
    remaining = dict(overrides)
    lines = []
    for line in template.splitlines():
        match = _LINE.match(line)
        key = _normal_key(match.group(1)) if match and line.lstrip()[:1] not in ("#", "!") else None
        lines.append(f"{key} = {remaining.pop(key)}" if key in remaining else line)
    if remaining:
        lines.append(
            "# Overrides for this environment (wenu_stream.drivers.kcl.properties.render_properties)"
        )
        lines.extend(f"{key} = {value}" for key, value in remaining.items())
    return "\n".join(lines) + "\n"


def local_overrides(
    app: str, *, kinesis_url: str, dynamodb_url: str, region: str, root: str | os.PathLike[str], python: str
) -> dict[str, str]:
    """Overrides for running ``app`` against the local emulators from ``root`` with interpreter ``python``."""
    script = str(Path(root, "consumers", f"{app}.py").resolve())
    if any(c.isspace() for c in python + script):
        # The daemon splits executableName on whitespace, without shell quoting.
        raise ValueError(f"paths with whitespace cannot be used in executableName: {python!r} {script!r}")
    return {
        "kinesisEndpoint": kinesis_url,
        "dynamoDBEndpoint": dynamodb_url,
        "regionName": region,
        "executableName": f"{python} {script}",
    }
