"""Centralized root access: IAM ListOrganizationsFeatures, Enable/DisableOrganizationsRoot{Credentials
Management,Sessions}, and STS AssumeRoot — root sessions in member accounts, scoped by AWS's
root-task policies on every call."""

from __future__ import annotations

import datetime as dt

import pytest

from support import aws_error, doc, make_client, policy, random_account_id, random_key_id, random_secret, unique
from test_organizations import Org

AUDIT = "arn:aws:iam::aws:policy/root-task/IAMAuditRootUserCredentials"
S3_UNLOCK = "arn:aws:iam::aws:policy/root-task/S3UnlockBucketPolicy"
IAM = "iam.amazonaws.com"


@pytest.fixture
def org(spawn_server):
    srv = spawn_server(ephemeral=True, data_dir=None, account_id=random_account_id(), access_key_id=random_key_id(),
                       secret_access_key=random_secret())
    return Org(srv)


def session(org, creds, service):
    return make_client(service, org.srv.endpoint, creds["AccessKeyId"], creds["SecretAccessKey"],
                       creds["SessionToken"])


def test_features_need_an_organization_trusted_access_and_the_management_account(spawn_server):
    srv = spawn_server(ephemeral=True, data_dir=None, account_id=random_account_id(), access_key_id=random_key_id(),
                       secret_access_key=random_secret())
    with aws_error("OrganizationNotFoundException", 400):
        srv.client("iam").list_organizations_features()
    org = Org(srv)
    iam = org.client("iam")
    with aws_error("ServiceAccessNotEnabledException", 400):
        iam.list_organizations_features()
    with aws_error("ServiceAccessNotEnabledException", 400):
        iam.enable_organizations_root_sessions()
    org.org.enable_aws_service_access(ServicePrincipal=IAM)
    assert iam.list_organizations_features()["EnabledFeatures"] == []
    r = iam.enable_organizations_root_sessions()
    assert r["OrganizationId"] == org.info["Id"] and r["EnabledFeatures"] == ["RootSessions"]
    r = iam.enable_organizations_root_credentials_management()
    assert r["EnabledFeatures"] == ["RootCredentialsManagement", "RootSessions"]
    assert iam.enable_organizations_root_sessions()["EnabledFeatures"] == r["EnabledFeatures"]  # idempotent
    assert iam.list_organizations_features() | {"ResponseMetadata": None} == r | {"ResponseMetadata": None}

    member = org.create_account()
    with aws_error("AccountNotManagementOrDelegatedAdministratorException", 400):
        org.member(member, "iam").list_organizations_features()
    # The delegated administrator for IAM may list and disable, not enable.
    org.org.register_delegated_administrator(AccountId=member, ServicePrincipal=IAM)
    delegated = org.member(member, "iam")
    assert delegated.list_organizations_features()["EnabledFeatures"] == r["EnabledFeatures"]
    with aws_error("CallerIsNotManagementAccountException", 400):
        delegated.enable_organizations_root_sessions()
    assert delegated.disable_organizations_root_credentials_management()["EnabledFeatures"] == ["RootSessions"]
    assert iam.disable_organizations_root_sessions()["EnabledFeatures"] == []

    # Permission is checked first, with IAM's action names.
    name = unique("nobody")
    org.client("iam").create_user(UserName=name)
    k = org.client("iam").create_access_key(UserName=name)["AccessKey"]
    nobody = make_client("iam", srv.endpoint, k["AccessKeyId"], k["SecretAccessKey"])
    with aws_error("AccessDenied", 403, match="iam:ListOrganizationsFeatures"):
        nobody.list_organizations_features()


@pytest.fixture
def root_org(org):
    org.org.enable_aws_service_access(ServicePrincipal=IAM)
    org.client("iam").enable_organizations_root_sessions()
    org.member_id = org.create_account()
    return org


def test_assume_root_session_is_the_member_root_scoped_by_the_task_policy(root_org):
    org, member = root_org, root_org.member_id
    before = dt.datetime.now(dt.timezone.utc)
    r = org.client("sts").assume_root(TargetPrincipal=member, TaskPolicyArn={"arn": AUDIT})
    creds = r["Credentials"]
    assert creds["AccessKeyId"].startswith("ASIA")
    assert dt.timedelta(seconds=895) <= creds["Expiration"] - before <= dt.timedelta(seconds=901)
    ident = session(org, creds, "sts").get_caller_identity()
    assert ident["Account"] == member and ident["Arn"] == f"arn:aws:iam::{member}:root"
    assert ident["UserId"] == member

    iam = session(org, creds, "iam")
    assert iam.list_access_keys()["AccessKeyMetadata"] == []  # the task: audit root credentials
    iam.list_mfa_devices()
    with aws_error("AccessDenied", 403, match="iam:CreateUser"):
        iam.create_user(UserName="x")
    with aws_error("AccessDenied", 403, match="iam:ListUsers"):
        iam.list_users()
    # Audit actions only on the root user itself.
    with aws_error("AccessDenied", 403, match="iam:ListAccessKeys"):
        iam.list_access_keys(UserName="OrganizationAccountAccessRole")

    # A root ARN names the target too; a shorter session.
    r = org.client("sts").assume_root(TargetPrincipal=f"arn:aws:iam::{member}:root",
                                      TaskPolicyArn={"arn": S3_UNLOCK}, DurationSeconds=60)
    assert r["Credentials"]["Expiration"] - before <= dt.timedelta(seconds=62)
    with aws_error("AccessDenied", 403, match="iam:ListAccessKeys"):
        session(org, r["Credentials"], "iam").list_access_keys()


def test_assume_root_refusals(root_org):
    org, member = root_org, root_org.member_id
    raw = org.client("sts", parameter_validation=False)
    with aws_error("ValidationError", 400, match="durationSeconds"):
        raw.assume_root(TargetPrincipal=member, TaskPolicyArn={"arn": AUDIT}, DurationSeconds=901)
    with aws_error("InvalidParameterValue", 400, match="TaskPolicyArn"):
        raw.assume_root(TargetPrincipal=member, TaskPolicyArn={"arn": "arn:aws:iam::aws:policy/AdministratorAccess"})
    with aws_error("InvalidParameterValue", 400, match="TargetPrincipal"):
        raw.assume_root(TargetPrincipal=f"arn:aws:iam::{member}:user/x", TaskPolicyArn={"arn": AUDIT})
    with aws_error("AccessDenied", 403, match="not a member account"):
        raw.assume_root(TargetPrincipal=org.mgmt, TaskPolicyArn={"arn": AUDIT})
    with aws_error("AccessDenied", 403, match="not a member account"):
        raw.assume_root(TargetPrincipal=random_account_id(), TaskPolicyArn={"arn": AUDIT})
    # Root user credentials cannot call it.
    with aws_error("AccessDenied", 403):
        org.srv.client("sts").assume_root(TargetPrincipal=member, TaskPolicyArn={"arn": AUDIT})
    # The caller's policy decides, with sts:TaskPolicyArn in the context.
    iam = org.client("iam")
    name = unique("rooter")
    iam.create_user(UserName=name)
    iam.put_user_policy(UserName=name, PolicyName="p", PolicyDocument=doc(policy(
        {"Effect": "Allow", "Action": "sts:AssumeRoot", "Resource": "*",
         "Condition": {"StringEquals": {"sts:TaskPolicyArn": AUDIT}}})))
    k = iam.create_access_key(UserName=name)["AccessKey"]
    sts = make_client("sts", org.srv.endpoint, k["AccessKeyId"], k["SecretAccessKey"])
    sts.assume_root(TargetPrincipal=member, TaskPolicyArn={"arn": AUDIT})
    with aws_error("AccessDenied", 403, match="sts:AssumeRoot"):
        sts.assume_root(TargetPrincipal=member, TaskPolicyArn={"arn": S3_UNLOCK})
    # Root sessions disabled: no more root sessions.
    iam.disable_organizations_root_sessions()
    with aws_error("AccessDenied", 403, match="root sessions are not enabled"):
        sts.assume_root(TargetPrincipal=member, TaskPolicyArn={"arn": AUDIT})


def test_delegated_administrator_assumes_root_in_other_members(root_org):
    org, member = root_org, root_org.member_id
    admin = org.create_account()
    other = org.create_account()
    denied = org.member(admin, "sts")
    with aws_error("AccessDenied", 403, match="delegated administrator"):
        denied.assume_root(TargetPrincipal=other, TaskPolicyArn={"arn": AUDIT})
    org.org.register_delegated_administrator(AccountId=admin, ServicePrincipal=IAM)
    r = org.member(admin, "sts").assume_root(TargetPrincipal=other, TaskPolicyArn={"arn": AUDIT})
    assert session(org, r["Credentials"], "sts").get_caller_identity()["Account"] == other
    with aws_error("AccessDenied", 403, match="not a member account"):
        org.member(admin, "sts").assume_root(TargetPrincipal=admin, TaskPolicyArn={"arn": AUDIT})
    assert member != other
