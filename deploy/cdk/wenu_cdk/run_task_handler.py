"""Lambda handlers (inline code of the deploy-time task runner): run a one-off ECS task and wait for it.

A CloudFormation custom resource (``custom_resources.Provider``) calls ``on_event`` on Create and
Update: it starts the task (``ecs:RunTask``) and returns its ARN; the provider then calls
``is_complete`` every few seconds until the task has stopped. The deploy goes on only when the
task's essential container exited 0; any other end fails the resource, so CloudFormation rolls the
deploy back before a service moves to the new image. Delete does nothing (a migration is not undone).

The resource's properties name the task definition *revision*, so a new image (a new revision) runs
the task again and a deploy that changes nothing else does not.
Standard library + boto3 (in the Lambda runtime) only, so it ships inline.
"""

import functools

import boto3


@functools.cache
def _ecs():
    return boto3.client("ecs")  # once per Lambda container, on first use


def on_event(event, context):  # Lambda's signature
    if event["RequestType"] == "Delete":
        return {"PhysicalResourceId": event["PhysicalResourceId"]}
    props = event["ResourceProperties"]
    started = _ecs().run_task(
        cluster=props["Cluster"],
        taskDefinition=props["TaskDefinition"],
        launchType="FARGATE",
        count=1,
        startedBy="cfn-deploy",
        networkConfiguration={
            "awsvpcConfiguration": {
                "subnets": props["Subnets"],
                "securityGroups": props["SecurityGroups"],
                "assignPublicIp": "DISABLED",
            }
        },
    )
    if not started["tasks"]:
        raise RuntimeError(f"the task did not start: {started.get('failures')}")
    task = started["tasks"][0]["taskArn"]
    print(f"started {task}")
    return {"PhysicalResourceId": props.get("Name", "deploy-task"), "Data": {"TaskArn": task}}


def is_complete(event, context):  # Lambda's signature
    if event["RequestType"] == "Delete":
        return {"IsComplete": True}
    props = event["ResourceProperties"]
    task_arn = event["Data"]["TaskArn"]
    tasks = _ecs().describe_tasks(cluster=props["Cluster"], tasks=[task_arn])["tasks"]
    return {"IsComplete": outcome(tasks[0] if tasks else None, task_arn)}


def outcome(task, task_arn):
    """True when the task stopped with every essential container at exit code 0; False while it runs.

    Raises:
        RuntimeError: the task stopped otherwise (its reason and exit codes), or is unknown.
    """
    if task is None:
        raise RuntimeError(f"task {task_arn} is unknown to ECS")
    if task.get("lastStatus") != "STOPPED":
        return False
    codes = {c.get("name"): c.get("exitCode") for c in task.get("containers", [])}
    if codes and all(code == 0 for code in codes.values()):
        print(f"{task_arn} exited 0")
        return True
    raise RuntimeError(
        f"task {task_arn} failed: {task.get('stoppedReason', 'no reason given')}; exit codes {codes}; "
        "its log group has the details"
    )
