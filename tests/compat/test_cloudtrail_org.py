"""CloudTrail and Organizations: RegisterOrganizationDelegatedAdmin /
DeregisterOrganizationDelegatedAdmin, and organization trails that the management account and
CloudTrail's delegated administrators manage, that every member sees, and that log every account."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

import subprocess

from support import make_client, rampart_bin, random_account_id, random_key_id, random_secret, unique
from test_organizations import Org

CT = "cloudtrail.amazonaws.com"


def code(exc: pytest.ExceptionInfo) -> str:
    return exc.value.response["Error"]["Code"]


@pytest.fixture
def org(spawn_server):
    srv = spawn_server(
        account_id=random_account_id(), access_key_id=random_key_id(), secret_access_key=random_secret()
    )
    return Org(srv)


def member_ct(org: Org, account: str, **config):
    c = org.session(account)
    return make_client("cloudtrail", org.srv.endpoint, c["AccessKeyId"], c["SecretAccessKey"], c["SessionToken"], **config)


def test_register_and_deregister_delegated_admin(org):
    ct = org.client("cloudtrail")
    raw = org.client("cloudtrail", parameter_validation=False)
    a, b = org.create_account(), org.create_account()
    with pytest.raises(ClientError) as exc:
        ct.register_organization_delegated_admin(MemberAccountId=a)
    assert code(exc) == "CloudTrailAccessNotEnabledException", "trusted access comes first"
    org.org.enable_aws_service_access(ServicePrincipal=CT)
    with pytest.raises(ClientError) as exc:
        ct.register_organization_delegated_admin(MemberAccountId=org.mgmt)
    assert code(exc) == "CannotDelegateManagementAccountException"
    with pytest.raises(ClientError) as exc:
        ct.register_organization_delegated_admin(MemberAccountId=random_account_id())
    assert code(exc) == "AccountNotFoundException"
    with pytest.raises(ClientError) as exc:
        raw.register_organization_delegated_admin(MemberAccountId="12345")
    assert code(exc) == "InvalidParameterException"

    ct.register_organization_delegated_admin(MemberAccountId=a)
    with pytest.raises(ClientError) as exc:
        ct.register_organization_delegated_admin(MemberAccountId=a)
    assert code(exc) == "AccountRegisteredException"
    # Registered through Organizations, as in AWS.
    admins = org.org.list_delegated_administrators(ServicePrincipal=CT)["DelegatedAdministrators"]
    assert [x["Id"] for x in admins] == [a]
    # Only the management account registers.
    with pytest.raises(ClientError) as exc:
        member_ct(org, a).register_organization_delegated_admin(MemberAccountId=b)
    assert code(exc) == "NotOrganizationManagementAccountException"
    with pytest.raises(ClientError) as exc:
        ct.deregister_organization_delegated_admin(DelegatedAdminAccountId=b)
    assert code(exc) == "AccountNotRegisteredException"
    ct.deregister_organization_delegated_admin(DelegatedAdminAccountId=a)
    assert org.org.list_delegated_administrators(ServicePrincipal=CT)["DelegatedAdministrators"] == []
    # At most three.
    accounts = [org.create_account() for _ in range(4)]
    for x in accounts[:3]:
        ct.register_organization_delegated_admin(MemberAccountId=x)
    with pytest.raises(ClientError) as exc:
        ct.register_organization_delegated_admin(MemberAccountId=accounts[3])
    assert code(exc) == "DelegatedAdminAccountLimitExceededException"


def test_outside_an_organization(spawn_server):
    srv = spawn_server(account_id=random_account_id(), access_key_id=random_key_id(), secret_access_key=random_secret())
    ct = srv.client("cloudtrail")
    with pytest.raises(ClientError) as exc:
        ct.register_organization_delegated_admin(MemberAccountId=random_account_id())
    assert code(exc) == "OrganizationsNotInUseException"
    with pytest.raises(ClientError) as exc:
        ct.create_trail(Name=unique("trail"), S3BucketName="org-bucket", IsOrganizationTrail=True)
    assert code(exc) == "OrganizationsNotInUseException"


def test_delegated_admin_manages_organization_trails(org):
    ct = org.client("cloudtrail")
    admin, member = org.create_account(), org.create_account()
    org.org.enable_aws_service_access(ServicePrincipal=CT)
    name = unique("orgtrail")
    bucket = "org-" + name.lower()
    # Before registration the member account cannot make one.
    with pytest.raises(ClientError) as exc:
        member_ct(org, admin).create_trail(Name=name, S3BucketName=bucket, IsOrganizationTrail=True)
    assert code(exc) == "NotOrganizationMasterAccountException"
    ct.register_organization_delegated_admin(MemberAccountId=admin)
    act = member_ct(org, admin)
    made = act.create_trail(Name=name, S3BucketName=bucket, IsOrganizationTrail=True, IsMultiRegionTrail=True)
    # The management account owns it.
    arn = f"arn:aws:cloudtrail:us-east-1:{org.mgmt}:trail/{name}"
    assert made["TrailARN"] == arn and made["IsOrganizationTrail"] is True
    assert ct.get_trail(Name=name)["Trail"]["IsOrganizationTrail"] is True
    # Every member sees it; only administrators change it.
    mct = member_ct(org, member)
    assert arn in [t["TrailARN"] for t in mct.describe_trails()["trailList"]]
    assert arn in [t["TrailARN"] for t in mct.list_trails()["Trails"]]
    assert mct.get_trail(Name=arn)["Trail"]["IsOrganizationTrail"] is True
    with pytest.raises(ClientError) as exc:
        mct.update_trail(Name=arn, EnableLogFileValidation=True)
    assert code(exc) == "NotOrganizationMasterAccountException"
    with pytest.raises(ClientError) as exc:
        mct.create_trail(Name=unique("orgtrail"), S3BucketName=bucket, IsOrganizationTrail=True)
    assert code(exc) == "NotOrganizationMasterAccountException"

    # The delegated administrator runs it; it logs the member account's calls too.
    act.update_trail(Name=arn, EnableLogFileValidation=True)
    act.start_logging(Name=arn)
    user = unique("user")
    org.member(member, "iam").create_user(UserName=user)
    act.stop_logging(Name=arn)
    org_id = org.info["Id"]
    logs = Path(org.srv.data_dir) / "trails" / bucket / "AWSLogs" / org_id / member / "CloudTrail" / "us-east-1"
    records = [r for f in logs.rglob("*.json.gz") for r in json.loads(gzip.decompress(f.read_bytes()))["Records"]]
    assert any(r["eventName"] == "CreateUser" and r["requestParameters"] == {"userName": user} for r in records)
    assert all(r["recipientAccountId"] == member for r in records)
    digests = list((Path(org.srv.data_dir) / "trails" / bucket / "AWSLogs" / org_id / member).rglob("*CloudTrail-Digest*.json.gz"))
    assert digests and all(f.name.startswith(f"{member}_CloudTrail-Digest_us-east-1_{name}_us-east-1_") for f in digests)
    assert json.loads(gzip.decompress(digests[0].read_bytes()))["awsAccountId"] == member
    # Every account's chain verifies.
    bucket_dir = Path(org.srv.data_dir) / "trails" / bucket
    verified = subprocess.run([rampart_bin(), "trail", "verify", str(bucket_dir)], capture_output=True, text=True, timeout=60)
    assert verified.returncode == 0, verified.stdout + verified.stderr

    # Deregistered, it can no longer manage the trail, which stays the management account's.
    ct.deregister_organization_delegated_admin(DelegatedAdminAccountId=admin)
    with pytest.raises(ClientError) as exc:
        act.start_logging(Name=arn)
    assert code(exc) == "NotOrganizationMasterAccountException"
    assert ct.get_trail(Name=name)["Trail"]["TrailARN"] == arn
    # The management account turns it back into a trail of its own account.
    ct.update_trail(Name=name, IsOrganizationTrail=False)
    assert name not in [t["Name"] for t in mct.describe_trails()["trailList"]]
    ct.delete_trail(Name=name)
