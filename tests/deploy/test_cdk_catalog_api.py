"""The catalog database, its migration on deploy, and the API service behind its load balancer (both stages).

``dev`` has the defaults (an internal HTTP load balancer, single-AZ database); ``prod`` has the production
settings of deploy/README.md (region, certificate, OIDC issuer, multi-AZ): see conftest.SETTINGS.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.deploy.conftest import CERTIFICATE, ISSUER, Synthesised
from tests.deploy.test_cdk_stack import allows, only, resources, role_statements, table_id

pytestmark = pytest.mark.cdk


@pytest.fixture(scope="module")
def dev(stages: dict[str, Synthesised]) -> dict[str, Any]:
    return stages["dev"].json


@pytest.fixture(scope="module")
def prod(stages: dict[str, Synthesised]) -> dict[str, Any]:
    return stages["prod"].json


def container(t: dict[str, Any], family: str) -> dict[str, Any]:
    _id, task = only(t, "AWS::ECS::TaskDefinition", Family=family)
    return task["Properties"]["ContainerDefinitions"][0]  # type: ignore[no-any-return]


def secret_id(t: dict[str, Any], name: str) -> str:
    return only(t, "AWS::SecretsManager::Secret", Name=name)[0]


def attachment_of(t: dict[str, Any], secret: str) -> str:
    return next(
        k
        for k, r in resources(t, "AWS::SecretsManager::SecretTargetAttachment").items()
        if r["Properties"]["SecretId"] == {"Ref": secret}
    )


# --- the database ----------------------------------------------------------------------------------


@pytest.mark.slow
def test_catalog_is_a_private_encrypted_postgresql_that_forces_tls(
    dev: dict[str, Any], prod: dict[str, Any]
) -> None:
    _id, db = only(dev, "AWS::RDS::DBInstance", DBInstanceIdentifier="wenu-dev-catalog")
    props = db["Properties"]
    assert (props["Engine"], props["EngineVersion"].split(".")[0]) == ("postgres", "16")
    assert props["StorageEncrypted"] is True and props["PubliclyAccessible"] is False
    assert props["DeletionProtection"] is True and props["BackupRetentionPeriod"] == 7
    assert db["DeletionPolicy"] == "Snapshot"
    assert props["EnableCloudwatchLogsExports"] == ["postgresql"]
    assert props["MultiAZ"] is False
    _id, params = only(dev, "AWS::RDS::DBParameterGroup")
    assert params["Properties"]["Parameters"]["rds.force_ssl"] == "1"
    assert only(prod, "AWS::RDS::DBInstance")[1]["Properties"]["MultiAZ"] is True


def test_owner_and_services_secrets_rotate_every_30_days(dev: dict[str, Any]) -> None:
    owner, app = secret_id(dev, "wenu/dev/catalog-owner"), secret_id(dev, "wenu/dev/catalog-app")
    schedules = resources(dev, "AWS::SecretsManager::RotationSchedule")
    rotated = {s["Properties"]["SecretId"]["Ref"]: s for s in schedules.values()}
    for secret in (owner, app):
        schedule = rotated[attachment_of(dev, secret)]
        assert schedule["Properties"]["RotationRules"]["ScheduleExpression"] == "rate(30 days)"
    apps = resources(dev, "AWS::Serverless::Application")
    kinds = sorted(json.dumps(a["Properties"]["Location"]) for a in apps.values())
    assert len(kinds) == 2
    template = json.dumps(dev["Mappings"])
    assert "SecretsManagerRDSPostgreSQLRotationSingleUser" in template
    assert "SecretsManagerRDSPostgreSQLRotationMultiUser" in template


def test_migration_runs_the_image_as_owner_and_the_services_start_after_it(dev: dict[str, Any]) -> None:
    migration_id, migration = only(dev, "Custom::WenuCatalogMigration")
    task_id, task = only(dev, "AWS::ECS::TaskDefinition", Family="wenu-dev-catalog-migrate")
    assert migration["Properties"]["TaskDefinition"] == {"Ref": task_id}  # a new revision runs it again
    migrate = task["Properties"]["ContainerDefinitions"][0]
    assert migrate["EntryPoint"] == ["python3", "/app/deploy/ecs/catalog_db.py"] and migrate["Command"] == [
        "migrate"
    ]
    owner = attachment_of(dev, secret_id(dev, "wenu/dev/catalog-owner"))
    app = attachment_of(dev, secret_id(dev, "wenu/dev/catalog-app"))
    secrets = {s["Name"]: s["ValueFrom"] for s in migrate["Secrets"]}
    assert secrets == {"CATALOG_OWNER_SECRET_JSON": {"Ref": owner}, "CATALOG_DB_SECRET_JSON": {"Ref": app}}
    for name in ("wenu-dev-alarms", "wenu-dev-processing", "wenu-dev-api"):
        _id, service = only(dev, "AWS::ECS::Service", ServiceName=name)
        assert migration_id in service.get("DependsOn", []), name
    rotation = next(k for k in resources(dev, "AWS::Serverless::Application") if "AppRotation" in k)
    assert migration_id in dev["Resources"][rotation]["DependsOn"]  # the role exists before it rotates


def test_runner_may_only_start_the_migration_task_in_the_stage_cluster(dev: dict[str, Any]) -> None:
    task_id, _ = only(dev, "AWS::ECS::TaskDefinition", Family="wenu-dev-catalog-migrate")
    statements = [
        s
        for k, p in resources(dev, "AWS::IAM::Policy").items()
        if k.startswith(("CatalogRunTask", "CatalogWaitTask"))
        for s in p["Properties"]["PolicyDocument"]["Statement"]
        if "ecs:RunTask" in json.dumps(s["Action"]) or "ecs:DescribeTasks" in json.dumps(s["Action"])
    ]
    run = next(s for s in statements if s["Action"] == "ecs:RunTask")
    assert run["Resource"] == {"Ref": task_id}
    assert all("ecs:cluster" in json.dumps(s["Condition"]) for s in statements)


@pytest.mark.parametrize("family", ["wenu-dev-alarms", "wenu-dev-processing", "wenu-dev-api"])
def test_services_reach_the_catalog_as_the_services_user_never_the_owner(
    dev: dict[str, Any], family: str
) -> None:
    secrets = {s["Name"]: s["ValueFrom"] for s in container(dev, family)["Secrets"]}
    app = attachment_of(dev, secret_id(dev, "wenu/dev/catalog-app"))
    assert secrets["CATALOG_DB_SECRET_JSON"] == {"Ref": app}
    assert "CATALOG_OWNER_SECRET_JSON" not in secrets and "WENU_CATALOG_URL" not in secrets


def test_database_accepts_5432_only_from_the_stage_tasks(dev: dict[str, Any]) -> None:
    db_sg, _ = next(
        (k, r) for k, r in resources(dev, "AWS::EC2::SecurityGroup").items() if k.startswith("CatalogSg")
    )
    rules = [
        r["Properties"]
        for r in resources(dev, "AWS::EC2::SecurityGroupIngress").values()
        if r["Properties"]["GroupId"] == {"Fn::GetAtt": [db_sg, "GroupId"]}
    ]
    db_id, _ = only(dev, "AWS::RDS::DBInstance")
    port = {"Fn::GetAtt": [db_id, "Endpoint.Port"]}  # the rotation functions' rules name the port this way
    assert rules and all(r["FromPort"] == r["ToPort"] and r["FromPort"] in (5432, port) for r in rules)
    assert all("SourceSecurityGroupId" in r and "CidrIp" not in r for r in rules)
    sources = {r["SourceSecurityGroupId"]["Fn::GetAtt"][0] for r in rules}
    for expected in (
        "ServicesAlarmsSg",
        "ServicesProcessingSg",
        "ApiSg",
        "CatalogMigrateSg",
        "CatalogInstanceRotation",
    ):
        assert any(s.startswith(expected) for s in sources), (expected, sources)


# --- the API -----------------------------------------------------------------------------------------


def test_api_serves_from_the_image_behind_the_load_balancer_checked_by_readyz(dev: dict[str, Any]) -> None:
    api = container(dev, "wenu-dev-api")
    assert api["Command"] == ["--", "wenu-stream", "serve", "api"]
    env = {e["Name"]: e["Value"] for e in api["Environment"]}
    assert (env["WENU_API_HOST"], env["WENU_API_PORT"]) == ("0.0.0.0", "8080")
    assert "WENU_API_OIDC_ISSUER" not in env
    assert env["WENU_API_DEV_SECRET_FILE"].startswith("/tmp/")  # the root file system is read-only
    session = secret_id(dev, "wenu/dev/api-session")
    assert {s["Name"]: s["ValueFrom"] for s in api["Secrets"]}["WENU_API_SESSION_SECRET"] == {"Ref": session}
    assert api["HealthCheck"]["Command"] == ["CMD", "/app/deploy/ecs/healthcheck.sh", "8080"]
    assert api["User"] == "10001" and api["ReadonlyRootFilesystem"] is True
    _id, group = only(dev, "AWS::ElasticLoadBalancingV2::TargetGroup")
    props = group["Properties"]
    assert (props["Port"], props["HealthCheckPath"], props["TargetType"]) == (8080, "/readyz", "ip")
    _id, service = only(dev, "AWS::ECS::Service", ServiceName="wenu-dev-api")
    assert service["Properties"]["DesiredCount"] == 2


def test_without_a_certificate_the_load_balancer_is_internal_http_from_the_vpc_only(
    dev: dict[str, Any],
) -> None:
    _id, alb = only(dev, "AWS::ElasticLoadBalancingV2::LoadBalancer")
    assert alb["Properties"]["Scheme"] == "internal"
    _id, listener = only(dev, "AWS::ElasticLoadBalancingV2::Listener")
    assert (listener["Properties"]["Port"], listener["Properties"]["Protocol"]) == (80, "HTTP")
    sg = alb["Properties"]["SecurityGroups"][0]["Fn::GetAtt"][0]
    ingress = dev["Resources"][sg]["Properties"].get("SecurityGroupIngress", [])
    assert ingress and all("0.0.0.0/0" not in json.dumps(rule) for rule in ingress)


def test_with_a_certificate_the_load_balancer_is_public_https_with_logs_and_oidc(
    prod: dict[str, Any],
) -> None:
    _id, alb = only(prod, "AWS::ElasticLoadBalancingV2::LoadBalancer")
    assert alb["Properties"]["Scheme"] == "internet-facing"
    attributes = {a["Key"]: a["Value"] for a in alb["Properties"]["LoadBalancerAttributes"]}
    assert attributes["access_logs.s3.enabled"] == "true"
    assert attributes["routing.http.drop_invalid_header_fields.enabled"] == "true"
    listeners = {
        l["Properties"]["Port"]: l["Properties"]
        for l in resources(prod, "AWS::ElasticLoadBalancingV2::Listener").values()
    }
    assert listeners[443]["Protocol"] == "HTTPS"
    assert listeners[443]["Certificates"] == [{"CertificateArn": CERTIFICATE}]
    assert listeners[443]["SslPolicy"].startswith("ELBSecurityPolicy-TLS13")
    assert listeners[80]["DefaultActions"][0]["Type"] == "redirect"
    env = {e["Name"]: e["Value"] for e in container(prod, "wenu-prod-api")["Environment"]}
    assert (env["WENU_API_OIDC_ISSUER"], env["WENU_API_OIDC_AUDIENCE"]) == (ISSUER, "example-client")


def test_api_role_reads_and_acks_but_cannot_write_data_decrypt_or_publish(dev: dict[str, Any]) -> None:
    role = role_statements(dev, "wenu-dev-api-task")
    for table in ("wenu-dev-stats", "wenu-dev-alarm-state", "wenu-dev-alarm-transitions"):
        assert allows(role, "dynamodb:Query", table_id(dev, table))
    assert allows(role, "dynamodb:UpdateItem", table_id(dev, "wenu-dev-alarm-state"))  # ack, shelve
    for table in ("wenu-dev-stats", "wenu-dev-alarm-transitions", "wenu-dev-state"):
        assert not allows(role, "dynamodb:UpdateItem", table_id(dev, table))
        assert not allows(role, "dynamodb:PutItem", table_id(dev, table))
    assert allows(role, "dynamodb:Scan", 'table/wenu-dev-processing"') and allows(
        role, "dynamodb:Scan", 'table/wenu-dev-alarms"'
    )
    assert allows(role, "s3:GetObject", "/dead-letter/*") and not allows(role, "s3:PutObject", "/")
    assert not any(
        str(a).startswith(("kms:", "sns:"))
        for s in role
        for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])
    )
    assert all(
        r != "*"
        for s in role
        for r in (s["Resource"] if isinstance(s["Resource"], list) else [s["Resource"]])
    )
