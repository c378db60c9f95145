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


# ---- Organizations access reports ----------------------------------------------------------------

from support import random_account_id, random_key_id, random_secret  # noqa: E402
from test_organizations import Org  # noqa: E402


@pytest.fixture
def org(spawn_server):
    srv = spawn_server(ephemeral=True, data_dir=None, account_id=random_account_id(),
                       access_key_id=random_key_id(), secret_access_key=random_secret())
    return Org(srv)


def org_report(iam, job_id, **kw):
    got = wait_until(
        lambda: (r := iam.get_organizations_access_report(JobId=job_id, **kw))["JobStatus"] != "IN_PROGRESS" and r,
        timeout=10,
    )
    assert got, "the job completes"
    return got


def test_organizations_access_report_for_root_ou_and_account(org):
    ou = org.ou()
    a = org.create_account(parent=ou)
    b = org.create_account()
    org.member(a, "iam").list_users()
    org.member(a, "kms").list_keys()
    org.member(b, "iam").list_roles()
    iam = org.client("iam")
    oid = org.info["Id"]
    root_path = f"{oid}/{org.root_id}"
    r = org_report(iam, iam.generate_organizations_access_report(EntityPath=root_path)["JobId"])
    assert r["JobStatus"] == "COMPLETED" and "JobCompletionDate" in r
    d = {x["ServiceNamespace"]: x for x in r["AccessDetails"]}
    assert [x["ServiceNamespace"] for x in r["AccessDetails"]] == sorted(d)
    # FullAWSAccess: every service Rampart serves is allowed.
    assert {"iam", "kms", "sts", "organizations", "secretsmanager", "cloudtrail"} <= set(d)
    # Both members called IAM (the management account's admin called it too).
    assert d["iam"]["TotalAuthenticatedEntities"] >= 2
    assert d["iam"]["Region"] == "us-east-1" and d["iam"]["EntityPath"].startswith(root_path + "/")
    assert r["NumberOfServicesAccessible"] == len(d)
    assert r["NumberOfServicesNotAccessed"] == sum(1 for x in d.values() if "LastAuthenticatedTime" not in x)
    assert d["secretsmanager"] == {"ServiceName": "AWS Secrets Manager", "ServiceNamespace": "secretsmanager",
                                   "TotalAuthenticatedEntities": 0}
    # The OU holds only account a.
    r = org_report(iam, iam.generate_organizations_access_report(EntityPath=f"{root_path}/{ou}")["JobId"])
    d = {x["ServiceNamespace"]: x for x in r["AccessDetails"]}
    assert d["iam"]["TotalAuthenticatedEntities"] == 1 and d["iam"]["EntityPath"] == f"{root_path}/{ou}/{a}"
    assert d["kms"]["TotalAuthenticatedEntities"] == 1
    # An account.
    r = org_report(iam, iam.generate_organizations_access_report(EntityPath=f"{root_path}/{b}")["JobId"])
    d = {x["ServiceNamespace"]: x for x in r["AccessDetails"]}
    assert d["iam"]["EntityPath"] == f"{root_path}/{b}" and d["kms"]["TotalAuthenticatedEntities"] == 0
    # Sorted by time, most recent first: services never accessed come last.
    r = org_report(iam, iam.generate_organizations_access_report(EntityPath=root_path)["JobId"],
                   SortKey="LAST_AUTHENTICATED_TIME_DESCENDING")
    times = [x.get("LastAuthenticatedTime") for x in r["AccessDetails"]]
    seen = [t for t in times if t]
    assert seen == sorted(seen, reverse=True) and times[: len(seen)] == seen


def test_organizations_access_report_for_an_scp(org):
    ou = org.ou()
    a = org.create_account(parent=ou)
    pid = org.scp(policy(allow(["iam:Get*", "iam:List*", "kms:List*"])))
    org.org.attach_policy(PolicyId=pid, TargetId=ou)
    org.member(a, "iam").list_users()
    iam = org.client("iam")
    path = f"{org.info['Id']}/{org.root_id}/{ou}"
    r = org_report(iam, iam.generate_organizations_access_report(EntityPath=path, OrganizationsPolicyId=pid)["JobId"])
    assert [x["ServiceNamespace"] for x in r["AccessDetails"]] == ["iam", "kms"]
    assert r["NumberOfServicesAccessible"] == 2 and r["NumberOfServicesNotAccessed"] == 1
    # Without the policy ID: the SCPs of every level (FullAWSAccess everywhere plus the allow list).
    org.org.detach_policy(PolicyId="p-FullAWSAccess", TargetId=ou)
    r = org_report(iam, iam.generate_organizations_access_report(EntityPath=path)["JobId"])
    assert [x["ServiceNamespace"] for x in r["AccessDetails"]] == ["iam", "kms"]


def test_organizations_access_report_errors(org, spawn_server):
    iam = org.client("iam")
    oid = org.info["Id"]
    # A path that is not an entity of the organization: the job fails and says why.
    r = org_report(iam, iam.generate_organizations_access_report(EntityPath=f"{oid}/{org.root_id}/ou-zzzz-zzzzzzzz")["JobId"])
    assert r["JobStatus"] == "FAILED" and r["ErrorDetails"]["Code"] == "InvalidEntityPath"
    with aws_error("ValidationError", 400, match="entityPath"):
        org.client("iam", parameter_validation=False).generate_organizations_access_report(EntityPath="not-a-path-at-all-x")
    with aws_error("NoSuchEntity", 404):
        iam.get_organizations_access_report(JobId="00000000-0000-0000-0000-000000000000")
    # A member account cannot generate reports.
    member = org.member(org.create_account(), "iam")
    with aws_error("InvalidInput", 400):
        member.generate_organizations_access_report(EntityPath=f"{oid}/{org.root_id}")
    # Nor can an account outside any organization.
    lone = spawn_server(ephemeral=True, data_dir=None, account_id=random_account_id(),
                        access_key_id=random_key_id(), secret_access_key=random_secret())
    with aws_error("InvalidInput", 400):
        lone.client("iam").generate_organizations_access_report(EntityPath=f"{oid}/{org.root_id}")
