"""Configuration: one frozen struct tree, the only reader of ``os.environ``.

Precedence: CLI flag > ``WENU_*`` environment variable > default. A leaf
``kinesis.stream`` is read from ``WENU_KINESIS_STREAM`` and, where a command
offers it, the flag ``--stream``. Unknown ``WENU_*`` variables and values out
of range fail at start-up with a message that names the variable and the fix.
AWS endpoints and credentials are not ours: the SDK reads ``AWS_ENDPOINT_URL*``,
``AWS_REGION`` and friends itself.
"""

from __future__ import annotations

import difflib
import os
import re
import socket
from collections.abc import Iterable, Mapping
from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta

from wenu_stream.errors import ConfigError

ENV_PREFIX = "WENU_"
App = Literal["processing", "alarms"]
Name = Annotated[str, Meta(min_length=1, max_length=255)]
Millis = Annotated[int, Meta(ge=0, le=3_600_000)]


class Base(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """Strict: a typo in a key is an error, not a silently ignored setting."""


class KinesisConfig(Base, frozen=True):
    """The readings stream and how it is polled."""

    stream: Name = "readings"
    poll_interval_ms: Annotated[int, Meta(ge=0, le=60_000)] = (
        200  # KCL 3.x minimum default; 5 GetRecords/s/shard max
    )
    max_records: Annotated[int, Meta(ge=1, le=10_000)] = 10_000
    initial_position: Literal["TRIM_HORIZON", "LATEST"] = "TRIM_HORIZON"
    # A stop (SIGTERM) waits this long for the batches in flight to become durable and be checkpointed, then
    # abandons them (they replay on the next owner): under ECS's stopTimeout (30 s by default, 120 s at most).
    stop_grace_s: Annotated[float, Meta(gt=0, le=110)] = 20.0
    idle_exit_s: Annotated[float, Meta(ge=0)] = (
        0.0  # 0: run forever; else stop after this long with no records (and nothing waiting on a claim)
    )
    checkpoint_interval_s: Annotated[float, Meta(ge=0, le=600)] = (
        5.0  # sinks coalesce writes between checkpoints
    )


class LeaseConfig(Base, frozen=True):
    """Leases in the KCL lease-table schema."""

    table: str = ""  # default: "wenu-<app>", the KCL application name
    worker_id: str = ""  # default: "<hostname>:<pid>"
    failover_ms: Annotated[int, Meta(ge=1_000, le=600_000)] = 10_000
    max_leases: Annotated[int, Meta(ge=0, le=10_000)] = 0  # 0: no cap
    discovery_interval_ms: Millis = 10_000


class AwsConfig(Base, frozen=True):
    """Deadlines of every AWS call of the workers (``aws.common.client_config``, ``aws.deadlines``)."""

    connect_timeout_s: Annotated[float, Meta(gt=0, le=300)] = 5.0  # per attempt
    read_timeout_s: Annotated[float, Meta(gt=0, le=900)] = 30.0  # per attempt, between two reads
    call_deadline_s: Annotated[float, Meta(gt=0, le=3_600)] = (
        60.0  # a whole call, botocore's retries included
    )
    stall_s: Annotated[float, Meta(gt=0, le=3_600)] = 10.0  # a call in flight longer: logged, not ready


class SinksConfig(Base, frozen=True):
    """Where durable effects go."""

    bucket: Name = "wenu-data"
    dead_letter_prefix: str = "dead-letter/"
    state_table: Name = "wenu-state"
    dedup_window: Annotated[int, Meta(ge=1, le=1_000_000)] = 4096
    # 0 (off): a sink that keeps failing is retried for as long as it takes. Else: records older than this
    # while a sink keeps failing are parked in the dead-letter store (max_record_age) and the shard goes on.
    max_record_age_s: Annotated[float, Meta(ge=0, le=7 * 86_400)] = 0.0


class KeyRingConfig(Base, frozen=True):
    """The key ring: a local JSON file of base64 keys, or a KMS-wrapped file."""

    file: str = ""
    kms_file: str = ""
    reload_s: Annotated[float, Meta(ge=0, le=86_400)] = (
        60.0  # read the ring again this often (0: only on SIGHUP)
    )


class CatalogConfig(Base, frozen=True):
    """The catalog store (``sqlite:///PATH`` or ``postgresql://...``) and how often consumers re-read it."""

    url: Annotated[str, Meta(min_length=1)] = "sqlite:///.run/catalog.db"
    refresh_s: Annotated[float, Meta(gt=0, le=86_400)] = 30.0


class WarehouseConfig(Base, frozen=True):
    """Warehouse staging (S3 files + manifests) and the loader (PostgreSQL locally, Redshift in production)."""

    target: Literal["postgres", "redshift"] = "postgres"
    staging_prefix: str = "staging/"
    manifest_prefix: str = "manifests/"
    schema: Annotated[str, Meta(pattern=r"^[a-z_][a-z0-9_]{0,62}$")] = "wenu"
    dsn: str = ""  # PostgreSQL target, e.g. postgresql://user:password@host:5432/db
    max_manifest_bytes: Annotated[int, Meta(ge=1, le=64 << 30)] = 1 << 30  # compressed bytes per COPY
    max_manifest_files: Annotated[int, Meta(ge=1, le=100_000)] = 1000
    redshift_cluster: str = ""  # provisioned cluster id, or:
    redshift_workgroup: str = ""  # serverless workgroup name
    redshift_database: str = "dev"
    redshift_db_user: str = ""  # temporary credentials for a cluster (or redshift_secret_arn)
    redshift_secret_arn: str = ""
    redshift_iam_role: str = ""  # role Redshift assumes to read the staging bucket in COPY
    redshift_region: str = ""  # bucket region, when it differs from the cluster's
    redshift_timeout_s: Annotated[float, Meta(gt=0, le=86_400)] = 900.0  # per Data API statement
    redshift_poll_s: Annotated[float, Meta(gt=0, le=60)] = 1.0
    pushgateway: Annotated[str, Meta(pattern=r"^(https?://[^\s/]+.*)?$")] = ""  # push load-run metrics here


class AlarmsConfig(Base, frozen=True):
    """Alarm state and transition history (DynamoDB) and the alarms topic (SNS)."""

    state_table: Name = (
        "wenu-alarm-state"  # one item per (rule, series) instance, plus one clock item per shard
    )
    transitions_table: Name = "wenu-alarm-transitions"  # history of transitions = the notification ledger
    topic_arn: str = ""  # set: publish to this ARN; empty: look the topic up by topic_name
    topic_name: Name = "wenu-alarms"
    idle_tick_s: Annotated[float, Meta(gt=0, le=3_600)] = (
        5.0  # a shard this long without readings ticks on wall time
    )


class StatsConfig(Base, frozen=True):
    """Company Stats windows in DynamoDB (one item per series and window, plus one state item per series)."""

    table: Name = "wenu-stats"
    lateness_s: Annotated[int, Meta(ge=0, le=7 * 86_400)] = (
        3600  # older than the series' newest minus this: late
    )
    ttl_months: Annotated[int, Meta(ge=1, le=1200)] = (
        13  # stats items expire this long after their window ends
    )
    # A window still open is written to its own item at most this often (0: at every commit, about five
    # writes per reading live); meanwhile it is in its series' state item, written at every commit, which the
    # API and CLI read too. A closed window is written once when it closes. Larger: fewer DynamoDB writes
    # (one a reading live at a day); only a reader of the raw window items sees open windows that far behind.
    publish_s: Annotated[float, Meta(ge=0, le=31 * 86_400)] = 86_400.0


class ApiConfig(Base, frozen=True):
    """The API service (``wenu-stream serve api``) and how it authenticates.

    Staff and customers present a bearer JWT. With ``oidc_issuer`` set
    (Cognito in production) tokens are RS256, verified against the issuer's
    JWKS; otherwise (the embedded default) they are development tokens signed
    with the secret in ``dev_secret_file`` (created on first use, mode 0600)
    and minted by ``wenu-stream api token``. Machines present an API key
    (``wenu-stream api key create``), kept hashed in the catalog store.
    """

    host: str = "127.0.0.1"  # the ECS task definition sets 0.0.0.0 behind the load balancer
    port: Annotated[int, Meta(ge=0, le=65_535)] = 8080  # 0: a free port (tests)
    oidc_issuer: str = ""  # e.g. https://cognito-idp.<region>.amazonaws.com/<pool id>
    oidc_audience: str = ""  # the app client id (checked against "aud", or "client_id" of access tokens)
    jwks_url: str = ""  # default: <oidc_issuer>/.well-known/jwks.json
    roles_claim: str = "cognito:groups"  # groups named viewer, operator, admin
    company_claim: str = "custom:company"  # set: the token sees only that company
    dev_secret_file: str = ".run/api-dev-secret"  # noqa: S105 - a path, not a secret
    catalog_refresh_s: Annotated[float, Meta(gt=0, le=3_600)] = 2.0  # tenancy lookups: catalog cache interval
    # The backoffice (/ui): its address as browsers reach it (the OIDC redirect; default: the request's own), and
    # the key of its session cookies (any length; empty: derived from the dev secret, or random per process with
    # OIDC: set it from a secret when several tasks serve behind one load balancer). Redacted by check-config.
    public_url: str = ""
    session_secret: str = ""


class Config(Base, frozen=True):
    """Everything a worker needs, resolved once at start-up."""

    app: App = "processing"
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    metrics_port: Annotated[int, Meta(ge=0, le=65_535)] = 0  # 0: no HTTP endpoint
    metrics_host: str = "127.0.0.1"  # the ECS task definitions set 0.0.0.0 so Prometheus can scrape the task
    kinesis: KinesisConfig = KinesisConfig()
    lease: LeaseConfig = LeaseConfig()
    aws: AwsConfig = AwsConfig()
    sinks: SinksConfig = SinksConfig()
    keyring: KeyRingConfig = KeyRingConfig()
    catalog: CatalogConfig = CatalogConfig()
    warehouse: WarehouseConfig = WarehouseConfig()
    alarms: AlarmsConfig = AlarmsConfig()
    stats: StatsConfig = StatsConfig()
    api: ApiConfig = ApiConfig()

    @property
    def lease_table(self) -> str:
        return self.lease.table or f"wenu-{self.app}"

    @property
    def worker_id(self) -> str:
        return self.lease.worker_id or f"{socket.gethostname()}:{os.getpid()}"


def env_name(path: str) -> str:
    """``kinesis.stream`` -> ``WENU_KINESIS_STREAM``."""
    return ENV_PREFIX + path.replace(".", "_").upper()


def _leaf_paths(struct: type[msgspec.Struct], prefix: str = "") -> dict[str, type[msgspec.Struct] | None]:
    paths: dict[str, type[msgspec.Struct] | None] = {}
    for field in msgspec.structs.fields(struct):
        path = prefix + field.name
        default = field.default
        if isinstance(default, msgspec.Struct):
            paths.update(_leaf_paths(type(default), path + "."))
        else:
            paths[path] = None
    return paths


LEAVES = tuple(_leaf_paths(Config))


def load_config(
    environ: Mapping[str, str] | None = None, overrides: Mapping[str, Any] | None = None
) -> Config:
    """Resolve the configuration from flags (``overrides``, dotted keys) over ``WENU_*`` over defaults.

    Raises:
        ConfigError: naming the variable or flag, the problem and the fix.
    """
    environ = os.environ if environ is None else environ
    by_env = {env_name(p): p for p in LEAVES}
    raw: dict[str, Any] = {}
    for key, value in environ.items():
        if not key.startswith(ENV_PREFIX) or key in _IGNORED_ENV:
            continue
        if key not in by_env:
            raise ConfigError(key, "unknown setting", f"remove it or rename it ({did_you_mean(key, by_env)})")
        _put(raw, by_env[key], value)
    for path, value in (overrides or {}).items():
        if value is not None:
            _put(raw, path, value)
    try:
        return msgspec.convert(raw, Config, strict=False)
    except msgspec.ValidationError as exc:
        raise _explain(exc) from None


def did_you_mean(name: str, known: Iterable[str]) -> str:
    """``did you mean X?`` for the known name closest to ``name`` as a whole, else the list of names."""
    names = sorted(known)
    close = difflib.get_close_matches(name, names, n=1, cutoff=0.6)
    return f"did you mean {close[0]}?" if close else f"known names: {', '.join(names)}"


def setting_path(name: str) -> str:
    """The dotted path of a setting named by its path (``kinesis.stream``) or its variable (``WENU_KINESIS_STREAM``).

    Raises:
        ConfigError: no such setting (with the closest whole name).
    """
    if name in LEAVES:
        return name
    by_env = {env_name(p): p for p in LEAVES}
    if name.upper() in by_env:
        return by_env[name.upper()]
    raise ConfigError(
        f"--set {name}",
        "unknown setting",
        f"use a name of `wenu-stream check-config` ({did_you_mean(name, LEAVES)})",
    )


# Variables read by other parts (tests, the demo), not configuration of a worker.
# WENU_API_URL and WENU_TOKEN are what `demo --keep` exports for curl and the API's clients.
_IGNORED_ENV = frozenset({"WENU_HOME", "WENU_RUN_DIR", "WENU_TEST_KEEP", "WENU_API_URL", "WENU_TOKEN"})


def _put(raw: dict[str, Any], path: str, value: Any) -> None:
    *parents, leaf = path.split(".")
    node = raw
    for part in parents:
        node = node.setdefault(part, {})
    node[leaf] = value


_FIXES = {  # fields whose documented range is a format: say which
    "warehouse.pushgateway": "give the Pushgateway's http(s) URL, e.g. http://pushgateway:9091, or leave it empty",
    "warehouse.schema": "use a lower-case SQL identifier: letters, digits and _, not starting with a digit",
}


def _explain(exc: msgspec.ValidationError) -> ConfigError:
    message = str(exc)
    match = re.search(r"at `\$\.([\w.]+)`", message)
    path = match.group(1) if match else "configuration"
    problem = message.split(" - at ", maxsplit=1)[0]
    field = f"{path} (env {env_name(path)} or its command-line flag)" if match else path
    fix = _FIXES.get(path, "set a value within the documented range (see `wenu-stream check-config`)")
    return ConfigError(field, problem, fix)


def redacted(config: Config) -> dict[str, Any]:
    """The resolved configuration as plain data, for ``check-config``. No secrets are held in it."""
    data: dict[str, Any] = msgspec.to_builtins(config)
    data["lease"]["table"] = config.lease_table
    data["lease"]["worker_id"] = config.worker_id
    if data.get("api", {}).get("session_secret"):
        data["api"]["session_secret"] = "***"  # noqa: S105 - the mask, not a secret
    if "catalog" in data and "url" in data["catalog"]:
        data["catalog"]["url"] = re.sub(r"(://[^:/@]+:)[^@]*@", r"\1***@", data["catalog"]["url"])
    for section in data.values():  # any DSN-like setting: mask a password in user:password@host
        if isinstance(section, dict):
            for key, value in section.items():
                if isinstance(value, str) and "://" in value and "@" in value:
                    section[key] = re.sub(r"(://[^:/@]+:)[^@]*@", r"\1***@", value)
    return data
