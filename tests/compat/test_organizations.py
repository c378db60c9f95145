"""AWS Organizations through boto3: the organization tree, member accounts that are real accounts,
and SCP / RCP enforcement on every call.

Each test runs its own ephemeral server: an account belongs to at most one organization, so tests
that build organizations must not share a management account.
"""

from __future__ import annotations

import json

import pytest

from support import (
    ADMIN_ARN,
    RampartServer,
    allow,
    aws_error,
    deny,
    doc,
    make_client,
    policy,
    random_account_id,
    random_key_id,
    random_secret,
    unique,
)

ACCESS_ROLE = "OrganizationAccountAccessRole"
SCP = "SERVICE_CONTROL_POLICY"
RCP = "RESOURCE_CONTROL_POLICY"
FULL = "p-FullAWSAccess"
RCP_FULL = "p-RCPFullAWSAccess"


class Org:
    """A management account with an organization, and clients into its members."""

    def __init__(self, srv: RampartServer):
        self.srv = srv
        self.mgmt = srv.account_id
        iam = srv.client("iam")
        # AWS refuses AssumeRole with root credentials: act as an administrator user, as people do.
        name = unique("admin")
        iam.create_user(UserName=name)
        iam.attach_user_policy(UserName=name, PolicyArn=ADMIN_ARN)
        key = iam.create_access_key(UserName=name)["AccessKey"]
        self.admin_key = (key["AccessKeyId"], key["SecretAccessKey"])
        self.org = self.client("organizations")
        self.info = self.org.create_organization(FeatureSet="ALL")["Organization"]
        self.root_id = self.org.list_roots()["Roots"][0]["Id"]

    def client(self, service: str, **config):
        return make_client(service, self.srv.endpoint, *self.admin_key, **config)

    def create_account(self, name: str | None = None, parent: str | None = None) -> str:
        name = name or unique("acct")
        st = self.org.create_account(Email=f"{name}@example.com", AccountName=name)["CreateAccountStatus"]
        assert st["State"] == "SUCCEEDED", st
        account = st["AccountId"]
        if parent:
            self.org.move_account(AccountId=account, SourceParentId=self.root_id, DestinationParentId=parent)
        return account

    def ou(self, name: str | None = None, parent: str | None = None) -> str:
        return self.org.create_organizational_unit(ParentId=parent or self.root_id, Name=name or unique("ou"))[
            "OrganizationalUnit"
        ]["Id"]

    def session(self, account: str, role: str = ACCESS_ROLE):
        """Credentials of a role session in a member account (cross-account AssumeRole)."""
        creds = self.client("sts").assume_role(
            RoleArn=f"arn:aws:iam::{account}:role/{role}", RoleSessionName="org-test"
        )["Credentials"]
        return creds

    def member(self, account: str, service: str, role: str = ACCESS_ROLE):
        c = self.session(account, role)
        return make_client(service, self.srv.endpoint, c["AccessKeyId"], c["SecretAccessKey"], c["SessionToken"])

    def scp(self, document: dict, ty: str = SCP) -> str:
        return self.org.create_policy(
            Content=doc(document), Description="test", Name=unique("pol"), Type=ty
        )["Policy"]["PolicySummary"]["Id"]


@pytest.fixture
def org(spawn_server):
    srv = spawn_server(
        ephemeral=True,
        data_dir=None,
        account_id=random_account_id(),
        access_key_id=random_key_id(),
        secret_access_key=random_secret(),
    )
    return Org(srv)


def _denied(client_call, reason: str):
    with aws_error("AccessDenied", codes=("AccessDeniedException",), match=reason):
        client_call()


# ---- the organization and its tree ------------------------------------------------------------


def test_create_and_describe_organization(org):
    info = org.info
    assert info["Id"].startswith("o-") and len(info["Id"]) == 12
    assert info["Arn"] == f"arn:aws:organizations::{org.mgmt}:organization/{info['Id']}"
    assert info["FeatureSet"] == "ALL"
    assert info["MasterAccountId"] == org.mgmt
    assert info["MasterAccountArn"] == f"arn:aws:organizations::{org.mgmt}:account/{info['Id']}/{org.mgmt}"
    assert org.org.describe_organization()["Organization"]["Id"] == info["Id"]
    with aws_error("AlreadyInOrganizationException", 400):
        org.org.create_organization(FeatureSet="ALL")
    root = org.org.list_roots()["Roots"][0]
    assert root["Id"].startswith("r-") and root["Name"] == "Root"
    # AWS: "created with all features enabled and service control policies automatically enabled in the root".
    assert root["PolicyTypes"] == [{"Type": "SERVICE_CONTROL_POLICY", "Status": "ENABLED"}]
    assert root["Arn"] == f"arn:aws:organizations::{org.mgmt}:root/{info['Id']}/{root['Id']}"
    accounts = org.org.list_accounts()["Accounts"]
    assert [a["Id"] for a in accounts] == [org.mgmt]
    assert accounts[0]["JoinedMethod"] == "INVITED" and accounts[0]["Status"] == "ACTIVE"


def test_not_in_organization_and_delete(spawn_server):
    srv = spawn_server(ephemeral=True, data_dir=None, account_id=random_account_id(),
                       access_key_id=random_key_id(), secret_access_key=random_secret())
    o = srv.client("organizations")
    with aws_error("AWSOrganizationsNotInUseException", 400,
                   message="Your account is not a member of an organization."):
        o.describe_organization()
    with aws_error("AWSOrganizationsNotInUseException"):
        o.list_roots()
    o.create_organization()
    acct = o.create_account(Email="x@example.com", AccountName="x")["CreateAccountStatus"]["AccountId"]
    with aws_error("OrganizationNotEmptyException"):
        o.delete_organization()
    o.remove_account_from_organization(AccountId=acct)
    o.delete_organization()
    with aws_error("AWSOrganizationsNotInUseException"):
        o.describe_organization()
    # A new organization can be created afterwards.
    assert o.create_organization()["Organization"]["Id"].startswith("o-")


def test_organizational_units_nesting_and_limits(org):
    o = org.org
    parent = org.root_id
    chain = []
    for level in range(5):
        ou = o.create_organizational_unit(ParentId=parent, Name=f"level{level}",
                                          Tags=[{"Key": "level", "Value": str(level)}])["OrganizationalUnit"]
        assert ou["Id"].startswith(f"ou-{org.root_id[2:]}-")
        assert ou["Arn"] == f"arn:aws:organizations::{org.mgmt}:ou/{org.info['Id']}/{ou['Id']}"
        chain.append(ou["Id"])
        parent = ou["Id"]
    with aws_error("ConstraintViolationException", 400) as ei:
        o.create_organizational_unit(ParentId=parent, Name="level5")
    assert ei.value.response["Reason"] == "OU_DEPTH_LIMIT_EXCEEDED"

    with aws_error("DuplicateOrganizationalUnitException"):
        o.create_organizational_unit(ParentId=org.root_id, Name="level0")
    with aws_error("ParentNotFoundException"):
        o.create_organizational_unit(ParentId=f"ou-{org.root_id[2:]}-zzzzzzzz", Name="x")

    assert o.describe_organizational_unit(OrganizationalUnitId=chain[2])["OrganizationalUnit"]["Name"] == "level2"
    o.update_organizational_unit(OrganizationalUnitId=chain[2], Name="renamed")
    assert o.describe_organizational_unit(OrganizationalUnitId=chain[2])["OrganizationalUnit"]["Name"] == "renamed"
    listed = o.list_organizational_units_for_parent(ParentId=chain[1])["OrganizationalUnits"]
    assert [u["Id"] for u in listed] == [chain[2]]
    assert o.list_parents(ChildId=chain[0])["Parents"] == [{"Id": org.root_id, "Type": "ROOT"}]
    assert o.list_parents(ChildId=chain[3])["Parents"] == [{"Id": chain[2], "Type": "ORGANIZATIONAL_UNIT"}]
    assert o.list_children(ParentId=chain[3], ChildType="ORGANIZATIONAL_UNIT")["Children"] == [
        {"Id": chain[4], "Type": "ORGANIZATIONAL_UNIT"}
    ]
    assert o.list_tags_for_resource(ResourceId=chain[1])["Tags"] == [{"Key": "level", "Value": "1"}]

    with aws_error("OrganizationalUnitNotEmptyException"):
        o.delete_organizational_unit(OrganizationalUnitId=chain[3])
    o.delete_organizational_unit(OrganizationalUnitId=chain[4])
    o.delete_organizational_unit(OrganizationalUnitId=chain[3])
    with aws_error("OrganizationalUnitNotFoundException"):
        o.describe_organizational_unit(OrganizationalUnitId=chain[3])
    with aws_error("ChildNotFoundException"):
        o.list_parents(ChildId=chain[4])


def test_accounts_create_move_and_status(org):
    o = org.org
    ou = org.ou()
    st = o.create_account(Email="dev@example.com", AccountName="dev", Tags=[{"Key": "team", "Value": "a"}])[
        "CreateAccountStatus"
    ]
    assert st["Id"].startswith("car-") and st["State"] == "SUCCEEDED"
    acct = st["AccountId"]
    assert len(acct) == 12 and acct.isdigit() and acct != org.mgmt
    assert o.describe_create_account_status(CreateAccountRequestId=st["Id"])["CreateAccountStatus"]["AccountId"] == acct
    # The same email cannot be used twice: the request fails as AWS reports it.
    dup = o.create_account(Email="dev@example.com", AccountName="dev2")["CreateAccountStatus"]
    assert dup["State"] == "FAILED" and dup["FailureReason"] == "EMAIL_ALREADY_EXISTS"
    states = {s["State"] for s in o.list_create_account_status()["CreateAccountStatuses"]}
    assert states == {"SUCCEEDED", "FAILED"}
    assert [s["Id"] for s in o.list_create_account_status(States=["FAILED"])["CreateAccountStatuses"]] == [dup["Id"]]

    a = o.describe_account(AccountId=acct)["Account"]
    assert a["Name"] == "dev" and a["Email"] == "dev@example.com" and a["JoinedMethod"] == "CREATED"
    assert a["Arn"] == f"arn:aws:organizations::{org.mgmt}:account/{org.info['Id']}/{acct}"
    assert o.list_tags_for_resource(ResourceId=acct)["Tags"] == [{"Key": "team", "Value": "a"}]

    o.move_account(AccountId=acct, SourceParentId=org.root_id, DestinationParentId=ou)
    assert o.list_parents(ChildId=acct)["Parents"] == [{"Id": ou, "Type": "ORGANIZATIONAL_UNIT"}]
    assert [x["Id"] for x in o.list_accounts_for_parent(ParentId=ou)["Accounts"]] == [acct]
    assert o.list_children(ParentId=ou, ChildType="ACCOUNT")["Children"] == [{"Id": acct, "Type": "ACCOUNT"}]
    with aws_error("DuplicateAccountException"):
        o.move_account(AccountId=acct, SourceParentId=ou, DestinationParentId=ou)
    with aws_error("AccountNotFoundException"):
        o.move_account(AccountId=acct, SourceParentId=org.root_id, DestinationParentId=ou)
    with aws_error("DestinationParentNotFoundException"):
        o.move_account(AccountId=acct, SourceParentId=ou, DestinationParentId=f"ou-{org.root_id[2:]}-zzzzzzzz")
    with aws_error("AccountNotFoundException"):
        o.describe_account(AccountId="000000000000")
    with aws_error("MasterCannotLeaveOrganizationException"):
        o.remove_account_from_organization(AccountId=org.mgmt)

    # Pagination over accounts.
    for _ in range(2):
        org.create_account()
    first = o.list_accounts(MaxResults=2)
    assert len(first["Accounts"]) == 2 and first["NextToken"]
    rest = o.list_accounts(MaxResults=2, NextToken=first["NextToken"])
    assert len(rest["Accounts"]) == 2 and "NextToken" not in rest


def test_new_account_is_real_and_reachable_through_the_access_role(org):
    acct = org.create_account()
    who = org.member(acct, "sts").get_caller_identity()
    assert who["Account"] == acct
    assert who["Arn"] == f"arn:aws:sts::{acct}:assumed-role/{ACCESS_ROLE}/org-test"
    iam = org.member(acct, "iam")
    role = iam.get_role(RoleName=ACCESS_ROLE)["Role"]
    trust_doc = role["AssumeRolePolicyDocument"]
    if isinstance(trust_doc, str):
        trust_doc = json.loads(trust_doc)
    assert trust_doc["Statement"][0]["Principal"] == {"AWS": f"arn:aws:iam::{org.mgmt}:root"}
    attached = iam.list_attached_role_policies(RoleName=ACCESS_ROLE)["AttachedPolicies"]
    assert [p["PolicyArn"] for p in attached] == [ADMIN_ARN]
    # The member account has its own IAM namespace.
    name = unique("user")
    iam.create_user(UserName=name)
    assert iam.get_user(UserName=name)["User"]["Arn"] == f"arn:aws:iam::{acct}:user/{name}"
    with aws_error("NoSuchEntity"):
        org.client("iam").get_user(UserName=name)
    # Cross-account, both sides: an identity policy of the management account must allow too.
    mgmt_iam = org.srv.client("iam")
    weak = unique("weak")
    mgmt_iam.create_user(UserName=weak)
    mgmt_iam.put_user_policy(UserName=weak, PolicyName="p", PolicyDocument=doc(policy(allow("iam:Get*"))))
    k = mgmt_iam.create_access_key(UserName=weak)["AccessKey"]
    weak_sts = make_client("sts", org.srv.endpoint, k["AccessKeyId"], k["SecretAccessKey"])
    _denied(lambda: weak_sts.assume_role(RoleArn=f"arn:aws:iam::{acct}:role/{ACCESS_ROLE}", RoleSessionName="ss"),
            "sts:AssumeRole")
    # A custom role name.
    st = org.org.create_account(Email="c@example.com", AccountName="c", RoleName="Admin")["CreateAccountStatus"]
    assert org.member(st["AccountId"], "sts", role="Admin").get_caller_identity()["Account"] == st["AccountId"]


def test_member_accounts_cannot_call_management_apis(org):
    acct = org.create_account()
    o = org.member(acct, "organizations")
    # Any account of the organization may describe it.
    assert o.describe_organization()["Organization"]["MasterAccountId"] == org.mgmt
    for call in (o.list_accounts, o.list_roots, lambda: o.list_policies(Filter=SCP),
                 lambda: o.create_organizational_unit(ParentId=org.root_id, Name="x")):
        with aws_error("AccessDeniedException", 400, message="You don't have permissions to access this resource."):
            call()
    with aws_error("AlreadyInOrganizationException"):
        o.create_organization()


# ---- policies ---------------------------------------------------------------------------------


def test_policy_management_and_errors(org):
    o = org.org
    acct = org.create_account()
    pid = org.scp(policy(deny("iam:CreateUser")))
    assert pid.startswith("p-") and len(pid) == 10
    p = o.describe_policy(PolicyId=pid)["Policy"]
    assert p["PolicySummary"]["Arn"] == (
        f"arn:aws:organizations::{org.mgmt}:policy/{org.info['Id']}/service_control_policy/{pid}"
    )
    assert p["PolicySummary"]["AwsManaged"] is False and json.loads(p["Content"])["Statement"][0]["Effect"] == "Deny"
    full = o.describe_policy(PolicyId=FULL)["Policy"]["PolicySummary"]
    assert full["Arn"] == "arn:aws:organizations::aws:policy/service_control_policy/p-FullAWSAccess"
    assert full["Name"] == "FullAWSAccess" and full["AwsManaged"] is True

    # CreateOrganization enables SCPs in the root, with FullAWSAccess attached (as AWS documents).
    assert o.list_roots()["Roots"][0]["PolicyTypes"] == [{"Type": SCP, "Status": "ENABLED"}]
    for target in (org.root_id, acct, org.mgmt):
        assert [x["Id"] for x in o.list_policies_for_target(TargetId=target, Filter=SCP)["Policies"]] == [FULL]
    o.disable_policy_type(RootId=org.root_id, PolicyType=SCP)
    with aws_error("PolicyTypeNotEnabledException"):
        o.attach_policy(PolicyId=pid, TargetId=acct)
    root = o.enable_policy_type(RootId=org.root_id, PolicyType=SCP)["Root"]
    assert root["PolicyTypes"] == [{"Type": SCP, "Status": "ENABLED"}]
    with aws_error("PolicyTypeAlreadyEnabledException"):
        o.enable_policy_type(RootId=org.root_id, PolicyType=SCP)
    # FullAWSAccess is attached everywhere when the type is enabled.
    for target in (org.root_id, acct, org.mgmt):
        assert [x["Id"] for x in o.list_policies_for_target(TargetId=target, Filter=SCP)["Policies"]] == [FULL]
    ou = org.ou()
    assert [x["Id"] for x in o.list_policies_for_target(TargetId=ou, Filter=SCP)["Policies"]] == [FULL]

    o.attach_policy(PolicyId=pid, TargetId=acct)
    with aws_error("DuplicatePolicyAttachmentException"):
        o.attach_policy(PolicyId=pid, TargetId=acct)
    targets = o.list_targets_for_policy(PolicyId=pid)["Targets"]
    assert targets == [{"TargetId": acct, "Arn": f"arn:aws:organizations::{org.mgmt}:account/{org.info['Id']}/{acct}",
                        "Name": targets[0]["Name"], "Type": "ACCOUNT"}]
    with aws_error("PolicyInUseException"):
        o.delete_policy(PolicyId=pid)
    with aws_error("DuplicatePolicyException"):
        o.create_policy(Content=doc(policy(allow("*"))), Description="d",
                        Name=o.describe_policy(PolicyId=pid)["Policy"]["PolicySummary"]["Name"], Type=SCP)
    # The last policy of an enabled type cannot be detached.
    with aws_error("ConstraintViolationException", 400) as ei:
        o.detach_policy(PolicyId=FULL, TargetId=ou)
    assert ei.value.response["Reason"] == "MIN_POLICY_TYPE_ATTACHMENT_LIMIT_EXCEEDED"
    with aws_error("PolicyNotAttachedException"):
        o.detach_policy(PolicyId=pid, TargetId=ou)
    o.detach_policy(PolicyId=pid, TargetId=acct)
    o.delete_policy(PolicyId=pid)
    with aws_error("PolicyNotFoundException"):
        o.describe_policy(PolicyId=pid)
    with aws_error("InvalidInputException"):
        o.update_policy(PolicyId=FULL, Name="mine")

    # Documents are validated as SCPs / RCPs by the policy engine.
    with aws_error("MalformedPolicyDocumentException"):
        org.scp({"Version": "2012-10-17", "Statement": [
            {"Effect": "Deny", "Principal": "*", "Action": "s3:*", "Resource": "*"}]})
    with aws_error("MalformedPolicyDocumentException"):
        org.scp(policy(allow("s3:GetObject")), ty=RCP)
    with aws_error("ConstraintViolationException") as ei:
        org.scp(policy(*[deny(f"iam:Action{i:04d}", f"arn:aws:iam::*:user/{'x' * 40}") for i in range(80)]))
    assert ei.value.response["Reason"] == "POLICY_CONTENT_LIMIT_EXCEEDED"

    # At most five SCPs per target.
    for _ in range(4):
        o.attach_policy(PolicyId=org.scp(policy(deny("ec2:*"))), TargetId=ou)
    with aws_error("ConstraintViolationException") as ei:
        o.attach_policy(PolicyId=org.scp(policy(deny("ec2:*"))), TargetId=ou)
    assert ei.value.response["Reason"] == "MAX_POLICY_TYPE_ATTACHMENT_LIMIT_EXCEEDED"

    # Disabling the type detaches its policies.
    o.disable_policy_type(RootId=org.root_id, PolicyType=SCP)
    with aws_error("PolicyTypeNotEnabledException"):
        o.disable_policy_type(RootId=org.root_id, PolicyType=SCP)
    assert o.list_policies_for_target(TargetId=ou, Filter=SCP)["Policies"] == []
    names = [x["Name"] for x in o.list_policies(Filter=SCP)["Policies"]]
    assert names[0] == "FullAWSAccess" and len(names) == 6


def test_tags(org):
    o = org.org
    pid = org.scp(policy(deny("ec2:*")))
    for rid in (org.root_id, pid, org.mgmt):
        o.tag_resource(ResourceId=rid, Tags=[{"Key": "a", "Value": "1"}, {"Key": "b", "Value": "2"}])
        o.untag_resource(ResourceId=rid, TagKeys=["a"])
        assert o.list_tags_for_resource(ResourceId=rid)["Tags"] == [{"Key": "b", "Value": "2"}]
    with aws_error("TargetNotFoundException"):
        o.tag_resource(ResourceId="p-zzzzzzzz", Tags=[{"Key": "a", "Value": "1"}])
    with aws_error("InvalidInputException"):
        o.tag_resource(ResourceId=org.root_id, Tags=[{"Key": "aws:x", "Value": "1"}])


# ---- enforcement ------------------------------------------------------------------------------


def test_scp_denying_a_service_binds_members_not_management(org):
    o = org.org
    acct = org.create_account()
    iam = org.member(acct, "iam")
    iam.create_user(UserName=unique("before"))
    pid = org.scp(policy(deny("iam:*")))
    o.attach_policy(PolicyId=pid, TargetId=acct)
    # Takes effect on the next call, for existing sessions too.
    _denied(lambda: iam.create_user(UserName=unique("after")), "with an explicit deny in a service control policy")
    _denied(lambda: iam.list_users(), "explicit deny in a service control policy")
    org.member(acct, "sts").get_caller_identity()  # other services are untouched
    # The management account is never bound, even with the SCP attached to it.
    o.attach_policy(PolicyId=pid, TargetId=org.mgmt)
    org.client("iam").create_user(UserName=unique("mgmt"))
    org.srv.client("iam").list_users()
    o.detach_policy(PolicyId=pid, TargetId=acct)
    iam.create_user(UserName=unique("again"))


def test_allow_list_scp_without_full_access(org):
    o = org.org
    ou = org.ou()
    acct = org.create_account(parent=ou)
    iam = org.member(acct, "iam")
    pid = org.scp(policy(allow(["iam:Get*", "iam:List*"])))
    o.attach_policy(PolicyId=pid, TargetId=ou)
    iam.create_user(UserName=unique("u"))  # FullAWSAccess still on the OU
    o.detach_policy(PolicyId=FULL, TargetId=ou)
    iam.list_users()
    iam.get_role(RoleName=ACCESS_ROLE)
    _denied(lambda: iam.create_user(UserName=unique("u")), "because no service control policy allows the iam:CreateUser")
    # Every level must allow: FullAWSAccess on the root and the account does not help when the OU
    # level allows only reads.
    assert [x["Id"] for x in o.list_policies_for_target(TargetId=acct, Filter=SCP)["Policies"]] == [FULL]
    _denied(lambda: iam.create_group(GroupName=unique("g")), "because no service control policy allows")


def test_scp_on_a_parent_ou_binds_nested_accounts(org):
    o = org.org
    parent = org.ou()
    child = org.ou(parent=parent)
    acct = org.create_account(parent=child)
    other = org.create_account()
    o.attach_policy(PolicyId=org.scp(policy(deny("iam:CreateGroup"))), TargetId=parent)
    _denied(lambda: org.member(acct, "iam").create_group(GroupName=unique("g")), "service control policy")
    org.member(other, "iam").create_group(GroupName=unique("g"))
    # Moving the account out of the OU lifts the SCP.
    o.move_account(AccountId=acct, SourceParentId=child, DestinationParentId=org.root_id)
    org.member(acct, "iam").create_group(GroupName=unique("g"))


def test_scp_conditions_see_org_context_keys(org):
    o = org.org
    ou = org.ou()
    acct = org.create_account(parent=ou)
    path = f"{org.info['Id']}/{org.root_id}/{ou}/"
    pid = org.scp(policy(deny("iam:CreateUser", Condition={
        "StringEquals": {"aws:PrincipalOrgID": org.info["Id"], "aws:PrincipalAccount": acct},
        "ForAnyValue:StringLike": {"aws:PrincipalOrgPaths": [path + "*"]},
    })))
    o.attach_policy(PolicyId=pid, TargetId=org.root_id)
    _denied(lambda: org.member(acct, "iam").create_user(UserName=unique("u")), "service control policy")
    o.move_account(AccountId=acct, SourceParentId=ou, DestinationParentId=org.root_id)
    org.member(acct, "iam").create_user(UserName=unique("u"))


def test_rcp_binds_member_resources(org):
    o = org.org
    acct = org.create_account()
    o.enable_policy_type(RootId=org.root_id, PolicyType=RCP)
    assert [x["Id"] for x in o.list_policies_for_target(TargetId=acct, Filter=RCP)["Policies"]] == [RCP_FULL]
    org.member(acct, "sts").get_caller_identity()
    # Deny assuming roles of the member account to principals of this organization's management
    # account: the role's trust policy allows it, the RCP overrides.
    rcp = {"Version": "2012-10-17", "Statement": [{
        "Effect": "Deny", "Principal": "*", "Action": "sts:AssumeRole", "Resource": "*",
        "Condition": {"StringEquals": {"aws:PrincipalOrgID": org.info["Id"], "aws:ResourceAccount": acct,
                                       "aws:ResourceOrgID": org.info["Id"]}},
    }]}
    pid = org.scp(rcp, ty=RCP)
    o.attach_policy(PolicyId=pid, TargetId=acct)
    _denied(lambda: org.session(acct), "explicit deny in a resource control policy")
    # RCPs bind resources, not principals: the member's own IAM calls are unaffected (IAM is not an
    # RCP service), and the management account's resources are never bound.
    o.update_policy(PolicyId=pid, Content=doc({**rcp, "Statement": [{**rcp["Statement"][0], "Condition": {
        "StringNotEquals": {"aws:PrincipalOrgID": org.info["Id"]}}}]}))
    org.session(acct)


def test_closed_account_can_do_nothing(org):
    acct = org.create_account()
    iam = org.member(acct, "iam")
    iam.list_users()
    org.org.close_account(AccountId=acct)
    closed = org.org.describe_account(AccountId=acct)["Account"]
    # AWS: SUSPENDED (both Status and State) during the 90-day post-closure period.
    assert closed["Status"] == "SUSPENDED" and closed["State"] == "SUSPENDED"
    _denied(lambda: iam.list_users(), "service control policy")
    with aws_error("AccountAlreadyClosedException"):
        org.org.close_account(AccountId=acct)


def test_policy_simulator_respects_scps(org):
    o = org.org
    acct = org.create_account()
    o.attach_policy(PolicyId=org.scp(policy(deny("iam:CreateUser"))), TargetId=acct)
    iam = org.member(acct, "iam")
    results = iam.simulate_principal_policy(
        PolicySourceArn=f"arn:aws:iam::{acct}:role/{ACCESS_ROLE}", ActionNames=["iam:CreateUser", "iam:ListUsers"]
    )["EvaluationResults"]
    by_action = {r["EvalActionName"]: r for r in results}
    assert by_action["iam:CreateUser"]["EvalDecision"] == "explicitDeny"
    assert by_action["iam:CreateUser"]["OrganizationsDecisionDetail"] == {"AllowedByOrganizations": False}
    assert by_action["iam:ListUsers"]["EvalDecision"] == "allowed"
    assert by_action["iam:ListUsers"]["OrganizationsDecisionDetail"] == {"AllowedByOrganizations": True}
    # The management account's simulations are not bound.
    mgmt = org.client("iam").simulate_principal_policy(
        PolicySourceArn=org.client("sts").get_caller_identity()["Arn"], ActionNames=["iam:CreateUser"]
    )["EvaluationResults"][0]
    assert mgmt["EvalDecision"] == "allowed" and "OrganizationsDecisionDetail" not in mgmt


def test_trusted_access_and_delegated_administrators(org):
    o = org.org
    assert o.list_aws_service_access_for_organization()["EnabledServicePrincipals"] == []
    o.enable_aws_service_access(ServicePrincipal="config.amazonaws.com")
    first = o.list_aws_service_access_for_organization()["EnabledServicePrincipals"]
    assert [s["ServicePrincipal"] for s in first] == ["config.amazonaws.com"]
    o.enable_aws_service_access(ServicePrincipal="config.amazonaws.com")  # idempotent, keeps its date
    assert o.list_aws_service_access_for_organization()["EnabledServicePrincipals"] == first
    with aws_error("InvalidInputException", 400):
        o.enable_aws_service_access(ServicePrincipal="nope.amazonaws.com")
    o.disable_aws_service_access(ServicePrincipal="config.amazonaws.com")
    o.disable_aws_service_access(ServicePrincipal="config.amazonaws.com")
    assert o.list_aws_service_access_for_organization()["EnabledServicePrincipals"] == []

    acct = org.create_account()
    o.register_delegated_administrator(AccountId=acct, ServicePrincipal="guardduty.amazonaws.com")
    with aws_error("AccountAlreadyRegisteredException", 400):
        o.register_delegated_administrator(AccountId=acct, ServicePrincipal="guardduty.amazonaws.com")
    with aws_error("ConstraintViolationException", 400):
        o.register_delegated_administrator(AccountId=org.mgmt, ServicePrincipal="guardduty.amazonaws.com")
    with aws_error("AccountNotFoundException", 400):
        o.register_delegated_administrator(AccountId="000000000000", ServicePrincipal="guardduty.amazonaws.com")
    admins = o.list_delegated_administrators(ServicePrincipal="guardduty.amazonaws.com")["DelegatedAdministrators"]
    assert [a["Id"] for a in admins] == [acct] and "DelegationEnabledDate" in admins[0]
    assert o.list_delegated_administrators(ServicePrincipal="ssm.amazonaws.com")["DelegatedAdministrators"] == []
    services = o.list_delegated_services_for_account(AccountId=acct)["DelegatedServices"]
    assert [s["ServicePrincipal"] for s in services] == ["guardduty.amazonaws.com"]
    o.deregister_delegated_administrator(AccountId=acct, ServicePrincipal="guardduty.amazonaws.com")
    with aws_error("AccountNotRegisteredException", 400):
        o.list_delegated_services_for_account(AccountId=acct)
    assert o.list_delegated_administrators()["DelegatedAdministrators"] == []


def test_management_policy_types_are_stored_and_attached(org):
    o = org.org
    ou = org.ou()
    with aws_error("MalformedPolicyDocumentException"):
        o.create_policy(Content="not json", Description="d", Name="t", Type="TAG_POLICY")
    tag = o.create_policy(Content='{"tags": {}}', Description="d", Name="t", Type="TAG_POLICY")["Policy"]
    summary = tag["PolicySummary"]
    assert summary["Type"] == "TAG_POLICY" and summary["AwsManaged"] is False
    assert summary["Arn"] == f"arn:aws:organizations::{org.mgmt}:policy/{org.info['Id']}/tag_policy/{summary['Id']}"
    with aws_error("PolicyTypeNotEnabledException"):
        o.attach_policy(PolicyId=summary["Id"], TargetId=ou)
    with aws_error("RootNotFoundException"):
        o.enable_policy_type(RootId="r-0000", PolicyType="AISERVICES_OPT_OUT_POLICY")
    o.enable_policy_type(RootId=org.root_id, PolicyType="TAG_POLICY")
    o.attach_policy(PolicyId=summary["Id"], TargetId=ou)
    assert [p["Id"] for p in o.list_policies_for_target(TargetId=ou, Filter="TAG_POLICY")["Policies"]] == [summary["Id"]]
    assert [p["Id"] for p in o.list_policies(Filter="TAG_POLICY")["Policies"]] == [summary["Id"]]
    # AWS's InvalidInputException INVALID_ENUM: "You specified an invalid value."
    with aws_error("InvalidInputException") as ei:
        o.list_children(ParentId=org.root_id, ChildType="BLEE")
    assert ei.value.response["Error"]["Message"] == "You specified an invalid value."


def test_organization_arns_in_the_callers_partition(org):
    cn = make_client("organizations", org.srv.endpoint, *org.admin_key, region="cn-north-1")
    info = cn.describe_organization()["Organization"]
    assert info["Arn"] == f"arn:aws-cn:organizations::{org.mgmt}:organization/{info['Id']}"
    pid = org.scp(policy(deny("ec2:*")))
    summary = cn.describe_policy(PolicyId=pid)["Policy"]["PolicySummary"]
    assert summary["Arn"].startswith(f"arn:aws-cn:organizations::{org.mgmt}:policy/")
    full = cn.describe_policy(PolicyId=FULL)["Policy"]["PolicySummary"]
    assert full["Arn"] == "arn:aws-cn:organizations::aws:policy/service_control_policy/p-FullAWSAccess"
    # The same organization seen from the aws partition keeps arn:aws:.
    assert org.org.describe_organization()["Organization"]["Arn"].startswith("arn:aws:organizations::")
    # AWS's InvalidInputException INVALID_PATTERN / INVALID_PATTERN_TARGET_ID texts.
    with aws_error("InvalidInputException", message="You provided a value that doesn't match the required pattern."):
        org.org.describe_organizational_unit(OrganizationalUnitId=org.root_id)
    with aws_error(
        "InvalidInputException", message="You specified a policy target ID that doesn't match the required pattern."
    ):
        org.org.list_policies_for_target(TargetId="invalidtargetid", Filter=SCP)


def test_lists_are_in_creation_order(org):
    o = org.org
    ous = [org.ou(f"order{i}") for i in range(6)]
    listed = [u["Id"] for p in o.get_paginator("list_organizational_units_for_parent").paginate(
        ParentId=org.root_id, PaginationConfig={"PageSize": 4}) for u in p["OrganizationalUnits"]]
    assert [x for x in listed if x in ous] == ous
    pids = [org.scp(policy(deny(f"ec2:Action{i}"))) for i in range(6)]
    listed = [x["Id"] for x in o.list_policies(Filter=SCP)["Policies"]]
    assert [x for x in listed if x in pids] == pids
