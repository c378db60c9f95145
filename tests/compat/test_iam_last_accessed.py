"""Service last accessed data: GenerateServiceLastAccessedDetails, GetServiceLastAccessedDetails and
GetServiceLastAccessedDetailsWithEntities, computed from the calls the audit trail recorded."""

import json

import pytest

from support import allow, aws_error, doc, policy, recent, trust, unique, wait_until

IAM_NAME = "AWS Identity and Access Management"


def report(client, job_id, **kw):
    """The job once it is no longer IN_PROGRESS (polled with a deadline, as a client would)."""
    got = wait_until(
        lambda: (r := client.get_service_last_accessed_details(JobId=job_id, **kw))["JobStatus"] != "IN_PROGRESS" and r,
        timeout=10,
    )
    assert got, "the job completes"
    return got


def by_ns(r):
    return {s["ServiceNamespace"]: s for s in r["ServicesLastAccessed"]}


def test_user_report_shows_allowed_services_and_attempts(make_user, iam):
    u = make_user(inline=[policy(allow("iam:List*"), allow("kms:ListKeys"), allow("s3:GetObject"))])
    u.iam.list_users()
    u.iam.list_groups()
    u.client("kms").list_keys()
    job = iam.generate_service_last_accessed_details(Arn=u.arn)["JobId"]
    assert len(job) == 36
    r = report(iam, job)
    assert r["JobStatus"] == "COMPLETED" and r["JobType"] == "SERVICE_LEVEL"
    assert recent(r["JobCreationDate"]) and r["JobCompletionDate"] >= r["JobCreationDate"]
    services = by_ns(r)
    # Exactly the services the user's policies allow, sorted by namespace.
    assert [s["ServiceNamespace"] for s in r["ServicesLastAccessed"]] == ["iam", "kms", "s3"]
    assert services["iam"]["ServiceName"] == IAM_NAME
    assert services["iam"]["LastAuthenticatedEntity"] == u.arn
    assert services["iam"]["TotalAuthenticatedEntities"] == 1
    assert services["iam"]["LastAuthenticatedRegion"] == "us-east-1"
    assert recent(services["iam"]["LastAuthenticated"])
    assert services["kms"]["TotalAuthenticatedEntities"] == 1
    assert services["s3"] == {"ServiceName": "Amazon Simple Storage Service", "ServiceNamespace": "s3",
                              "TotalAuthenticatedEntities": 0}
    assert "TrackedActionsLastAccessed" not in services["iam"]


def test_denied_attempts_count_and_other_principals_do_not(make_user, iam):
    u = make_user(inline=[policy(allow("iam:GetUser"))])
    other = make_user(inline=[policy(allow("iam:*"))])
    other.iam.list_users()
    with aws_error("AccessDenied", 403):
        u.iam.list_roles()  # denied, but an attempt: AWS reports it
    r = report(iam, iam.generate_service_last_accessed_details(Arn=u.arn)["JobId"])
    [svc] = r["ServicesLastAccessed"]
    assert svc["ServiceNamespace"] == "iam" and svc["LastAuthenticatedEntity"] == u.arn
    assert svc["TotalAuthenticatedEntities"] == 1


def test_action_level_lists_tracked_actions(make_user, iam):
    u = make_user(inline=[policy(allow("iam:*"))])
    u.iam.list_users()
    u.iam.get_user(UserName=u.name)
    u.iam.list_users()
    r = report(iam, iam.generate_service_last_accessed_details(Arn=u.arn, Granularity="ACTION_LEVEL")["JobId"])
    assert r["JobType"] == "ACTION_LEVEL"
    actions = {a["ActionName"]: a for a in by_ns(r)["iam"]["TrackedActionsLastAccessed"]}
    assert {"ListUsers", "GetUser"} <= set(actions)
    assert actions["ListUsers"]["LastAccessedEntity"] == u.arn
    assert actions["ListUsers"]["LastAccessedRegion"] == "us-east-1"
    assert actions["GetUser"]["LastAccessedTime"] <= r["JobCreationDate"]


def test_group_report_counts_members_with_entities(make_user, make_group, iam):
    g = make_group(inline={"p": policy(allow("iam:List*"))})
    a = make_user(groups=[g])
    b = make_user(groups=[g])
    make_user(groups=[g])  # never calls anything
    a.iam.list_users()
    b.iam.list_users()
    garn = iam.get_group(GroupName=g)["Group"]["Arn"]
    job = iam.generate_service_last_accessed_details(Arn=garn)["JobId"]
    r = report(iam, job)
    svc = by_ns(r)["iam"]
    assert svc["TotalAuthenticatedEntities"] == 2
    assert svc["LastAuthenticatedEntity"] == b.arn
    ents = iam.get_service_last_accessed_details_with_entities(JobId=job, ServiceNamespace="iam")
    assert ents["JobStatus"] == "COMPLETED"
    infos = ents["EntityDetailsList"]
    assert len(infos) == 3
    # Most recent first (times are to the second); the member who never called last, without
    # LastAuthenticated.
    assert {infos[0]["EntityInfo"]["Arn"], infos[1]["EntityInfo"]["Arn"]} == {a.arn, b.arn}
    assert infos[0]["LastAuthenticated"] >= infos[1]["LastAuthenticated"]
    first = a if infos[0]["EntityInfo"]["Arn"] == a.arn else b
    assert infos[0]["EntityInfo"] == {"Arn": first.arn, "Name": first.name, "Type": "USER", "Id": first.user_id,
                                      "Path": "/"}
    assert "LastAuthenticated" not in infos[2]
    # A service the group's policies do not reach has no entities.
    none = iam.get_service_last_accessed_details_with_entities(JobId=job, ServiceNamespace="kms")
    assert none["EntityDetailsList"] == []


def test_role_and_policy_reports(server, make_user, make_policy, iam, account_id):
    parn = make_policy(policy(allow("iam:ListRoles"), allow("sts:GetCallerIdentity")))
    role = unique("role")
    rarn = iam.create_role(RoleName=role, AssumeRolePolicyDocument=doc(trust_account(account_id)))["Role"]["Arn"]
    iam.attach_role_policy(RoleName=role, PolicyArn=parn)
    caller = make_user(inline=[policy(allow("sts:AssumeRole"))], managed=[parn])
    creds = caller.client("sts").assume_role(RoleArn=rarn, RoleSessionName="report-session")["Credentials"]
    session = server.client("iam", creds["AccessKeyId"], creds["SecretAccessKey"], creds["SessionToken"])
    session.list_roles()
    r = report(iam, iam.generate_service_last_accessed_details(Arn=rarn)["JobId"])
    assert by_ns(r)["iam"]["LastAuthenticatedEntity"] == rarn
    assert by_ns(r)["sts"]["TotalAuthenticatedEntities"] == 0
    pj = iam.generate_service_last_accessed_details(Arn=parn)["JobId"]
    p = report(iam, pj)
    # The user (AssumeRole is sts) and the role (ListRoles) both used the policy's services.
    assert by_ns(p)["iam"]["LastAuthenticatedEntity"] == rarn
    assert by_ns(p)["sts"]["LastAuthenticatedEntity"] == caller.arn
    ents = iam.get_service_last_accessed_details_with_entities(JobId=pj, ServiceNamespace="iam")["EntityDetailsList"]
    assert {e["EntityInfo"]["Type"] for e in ents} == {"USER", "ROLE"}


def trust_account(account_id):
    return policy({"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{account_id}:root"}, "Action": "sts:AssumeRole"})


def test_errors(iam, iam_unvalidated, make_user):
    with aws_error("InvalidInput", 400):
        iam.generate_service_last_accessed_details(Arn="arn:aws:s3:::some-bucket-name")
    with aws_error("NoSuchEntity", 404):
        iam.generate_service_last_accessed_details(Arn=f"arn:aws:iam::{'1' * 12}:user/{unique('nobody')}")
    with aws_error("ValidationError", 400, match="granularity"):
        iam_unvalidated.generate_service_last_accessed_details(Arn="arn:aws:iam::aws:policy/ReadOnlyAccess",
                                                              Granularity="RESOURCE_LEVEL")
    with aws_error("ValidationError", 400, match="jobId"):
        iam_unvalidated.get_service_last_accessed_details(JobId="short")
    with aws_error("NoSuchEntity", 404):
        iam.get_service_last_accessed_details(JobId="00000000-0000-0000-0000-000000000000")
    # A job is read by whoever generated it only.
    u = make_user(inline=[policy(allow("iam:*"))])
    job = iam.generate_service_last_accessed_details(Arn=u.arn)["JobId"]
    with aws_error("NoSuchEntity", 404):
        u.iam.get_service_last_accessed_details(JobId=job)


def test_authorization(make_user, iam):
    target = make_user()
    nobody = make_user()
    with aws_error("AccessDenied", 403, match="iam:GenerateServiceLastAccessedDetails"):
        nobody.iam.generate_service_last_accessed_details(Arn=target.arn)
    scoped = make_user(inline=[policy(allow("iam:GenerateServiceLastAccessedDetails", target.arn),
                                      allow("iam:GetServiceLastAccessedDetails"))])
    job = scoped.iam.generate_service_last_accessed_details(Arn=target.arn)["JobId"]
    assert report(scoped.iam, job)["JobStatus"] == "COMPLETED"
    with aws_error("AccessDenied", 403):
        scoped.iam.generate_service_last_accessed_details(Arn=nobody.arn)


def test_paginator(make_user, iam):
    u = make_user(inline=[policy(allow("*"))])
    job = iam.generate_service_last_accessed_details(Arn=u.arn)["JobId"]
    whole = report(iam, job)
    assert len(whole["ServicesLastAccessed"]) >= 6
    first = iam.get_service_last_accessed_details(JobId=job, MaxItems=2)
    assert first["IsTruncated"] is True and len(first["ServicesLastAccessed"]) == 2
    rest = iam.get_service_last_accessed_details(JobId=job, Marker=first["Marker"])
    assert first["ServicesLastAccessed"] + rest["ServicesLastAccessed"] == whole["ServicesLastAccessed"]
