"""AWS Organizations through boto3: invitations and handshakes, EnableAllFeatures, LeaveOrganization,
and the organization's resource policy (delegated administration of Organizations).

Each test runs its own `--dev` server, where an access key that is a 12-digit account number is the
root of that account (secret `test`): the management account and the standalone accounts it invites
are such accounts.
"""

from __future__ import annotations

import datetime as dt
import json

import pytest

from support import aws_error, make_client, policy, allow, deny, doc, unique


def _account(n: int) -> str:
    return f"{n:012d}"


@pytest.fixture
def dev(spawn_server):
    srv = spawn_server(data_dir=None, extra_args=["--dev"])

    def client(account: str, service: str = "organizations"):
        return make_client(service, srv.endpoint, account, "test")

    client.srv = srv
    return client


MGMT, B, C = _account(111111111111), _account(222222222222), _account(333333333333)


def _invite(org, account: str, **kw):
    return org.invite_account_to_organization(Target={"Id": account, "Type": "ACCOUNT"}, **kw)["Handshake"]


def test_invite_an_account_and_accept(dev):
    org = dev(MGMT)
    info = org.create_organization(FeatureSet="ALL")["Organization"]
    oid = info["Id"]
    h = _invite(org, B, Notes="join us")
    assert h["Id"].startswith("h-") and h["Action"] == "INVITE" and h["State"] == "OPEN"
    assert h["Arn"] == f"arn:aws:organizations::{MGMT}:handshake/{oid}/invite/{h['Id']}"
    assert h["Parties"] == [{"Id": oid, "Type": "ORGANIZATION"}, {"Id": B, "Type": "ACCOUNT"}]
    assert h["Resources"] == [
        {"Type": "ORGANIZATION", "Value": oid, "Resources": [
            {"Type": "MASTER_EMAIL", "Value": info["MasterAccountEmail"]},
            {"Type": "MASTER_NAME", "Value": "management"},
            {"Type": "ORGANIZATION_FEATURE_SET", "Value": "ALL"}]},
        {"Type": "ACCOUNT", "Value": B},
        {"Type": "NOTES", "Value": "join us"},
    ]
    # AWS: the invitation expires after 15 days.
    assert h["ExpirationTimestamp"] - h["RequestedTimestamp"] == dt.timedelta(days=15)

    b = dev(B)
    # The invited account sees it (a standalone account may list what it received)...
    assert [x["Id"] for x in b.list_handshakes_for_account()["Handshakes"]] == [h["Id"]]
    assert b.describe_handshake(HandshakeId=h["Id"])["Handshake"]["State"] == "OPEN"
    # ... the sender lists it for the organization and receives nothing itself.
    assert [x["Id"] for x in org.list_handshakes_for_organization()["Handshakes"]] == [h["Id"]]
    assert org.list_handshakes_for_account()["Handshakes"] == []
    # Only the recipient accepts; only the sender cancels.
    with aws_error("AccessDeniedException", 400):
        org.accept_handshake(HandshakeId=h["Id"])
    with aws_error("AccessDeniedException", 400):
        b.cancel_handshake(HandshakeId=h["Id"])
    with aws_error("AccessDeniedException", 400):
        dev(C).describe_handshake(HandshakeId=h["Id"])

    acc = b.accept_handshake(HandshakeId=h["Id"])["Handshake"]
    assert acc["State"] == "ACCEPTED"
    # The account is a member now, INVITED, under the root, with the root's SCP.
    member = org.describe_account(AccountId=B)["Account"]
    assert member["JoinedMethod"] == "INVITED" and member["Status"] == "ACTIVE"
    assert b.describe_organization()["Organization"]["Id"] == oid
    root = org.list_roots()["Roots"][0]["Id"]
    assert B in [a["Id"] for a in org.list_accounts_for_parent(ParentId=root)["Accounts"]]
    assert [p["Id"] for p in org.list_policies_for_target(TargetId=B, Filter="SERVICE_CONTROL_POLICY")["Policies"]] == [
        "p-FullAWSAccess"]
    with aws_error("HandshakeAlreadyInStateException", 400):
        b.accept_handshake(HandshakeId=h["Id"])
    with aws_error("InvalidHandshakeTransitionException", 400):
        org.cancel_handshake(HandshakeId=h["Id"])
    # Already a member: a new invitation is refused with AWS's reason.
    with aws_error("HandshakeConstraintViolationException", 400) as e:
        _invite(org, B)
    assert e.value.response["Reason"] == "ALREADY_IN_AN_ORGANIZATION"
    # An SCP now binds the invited account.
    scp = org.create_policy(Name="no-iam", Description="", Type="SERVICE_CONTROL_POLICY",
                            Content=doc(policy(deny("iam:*"))))["Policy"]["PolicySummary"]["Id"]
    org.attach_policy(PolicyId=scp, TargetId=B)
    with aws_error("AccessDenied", 403, match="service control policy"):
        dev(B, "iam").create_user(UserName=unique("u"))


def test_decline_cancel_duplicates_and_filters(dev):
    org = dev(MGMT)
    org.create_organization()
    h1 = _invite(org, B)
    with aws_error("DuplicateHandshakeException", 400):
        _invite(org, B)
    h2 = _invite(org, C)
    d = dev(B).decline_handshake(HandshakeId=h1["Id"])["Handshake"]
    assert d["State"] == "DECLINED"
    with aws_error("HandshakeAlreadyInStateException"):
        dev(B).decline_handshake(HandshakeId=h1["Id"])
    with aws_error("InvalidHandshakeTransitionException"):
        dev(B).accept_handshake(HandshakeId=h1["Id"])
    c = org.cancel_handshake(HandshakeId=h2["Id"])["Handshake"]
    assert c["State"] == "CANCELED"
    with aws_error("InvalidHandshakeTransitionException"):
        dev(C).accept_handshake(HandshakeId=h2["Id"])
    # A declined invitation can be sent again.
    h3 = _invite(org, B)
    states = {x["Id"]: x["State"] for x in org.list_handshakes_for_organization()["Handshakes"]}
    assert states == {h1["Id"]: "DECLINED", h2["Id"]: "CANCELED", h3["Id"]: "OPEN"}
    # Pagination and the ActionType filter.
    page = org.list_handshakes_for_organization(MaxResults=2)
    assert len(page["Handshakes"]) == 2 and page["NextToken"]
    rest = org.list_handshakes_for_organization(MaxResults=2, NextToken=page["NextToken"])
    assert len(rest["Handshakes"]) == 1 and "NextToken" not in rest
    assert len(org.list_handshakes_for_organization(Filter={"ActionType": "INVITE"})["Handshakes"]) == 3
    assert org.list_handshakes_for_organization(Filter={"ActionType": "ENABLE_ALL_FEATURES"})["Handshakes"] == []
    with aws_error("InvalidInputException", 400):
        org.list_handshakes_for_organization(Filter={"ActionType": "INVITE", "ParentHandshakeId": h1["Id"]})
    with aws_error("HandshakeNotFoundException", 400):
        org.describe_handshake(HandshakeId="h-0000000000")
    with aws_error("InvalidInputException", 400) as e:
        org.describe_handshake(HandshakeId="h-BAD")
    assert e.value.response["Reason"] == "INVALID_PATTERN"
    with aws_error("InvalidInputException") as e:
        org.invite_account_to_organization(Target={"Id": "o-abcdefghij", "Type": "ORGANIZATION"})
    assert e.value.response["Reason"] == "INVALID_PARTY_TYPE_TARGET"
    with aws_error("InvalidInputException") as e:
        org.invite_account_to_organization(Target={"Id": "not-an-email", "Type": "EMAIL"})
    assert e.value.response["Reason"] == "INVALID_EMAIL_ADDRESS_TARGET"
    # Only the management account invites; accounts outside any organization cannot list its handshakes.
    with aws_error("AWSOrganizationsNotInUseException"):
        dev(C).list_handshakes_for_organization()
    with aws_error("AWSOrganizationsNotInUseException"):
        _invite(dev(C), B)


def test_invite_by_email_reaches_the_account_with_that_email(dev):
    """An account Organizations created keeps its email when it leaves; an invitation to that email
    is the account's to answer."""
    a = dev(MGMT)
    a.create_organization()
    acct = a.create_account(Email="Wanderer@Example.com", AccountName="wanderer")["CreateAccountStatus"]["AccountId"]
    a.remove_account_from_organization(AccountId=acct)
    other = dev(C)
    oid = other.create_organization()["Organization"]["Id"]
    h = other.invite_account_to_organization(Target={"Id": "wanderer@example.com", "Type": "EMAIL"})["Handshake"]
    assert h["Parties"] == [{"Id": oid, "Type": "ORGANIZATION"}, {"Id": "wanderer@example.com", "Type": "EMAIL"}]
    w = dev(acct)
    assert [x["Id"] for x in w.list_handshakes_for_account()["Handshakes"]] == [h["Id"]]
    with aws_error("AccessDeniedException"):
        dev(B).accept_handshake(HandshakeId=h["Id"])
    acc = w.accept_handshake(HandshakeId=h["Id"])["Handshake"]
    # As AWS's AcceptHandshake example shows, the accepted invitation names the account.
    assert {"Type": "ACCOUNT", "Value": acct} in acc["Resources"]
    got = other.describe_account(AccountId=acct)["Account"]
    assert got["Email"] == "wanderer@example.com" and got["JoinedMethod"] == "INVITED"


def test_a_member_accepting_another_invitation_moves(dev):
    a, c = dev(MGMT), dev(C)
    a.create_organization()
    c.create_organization()
    b = dev(B)
    b.accept_handshake(HandshakeId=_invite(a, B)["Id"])
    # The management account of an organization cannot join another one.
    h = _invite(a, C)
    with aws_error("MasterCannotLeaveOrganizationException"):
        c.accept_handshake(HandshakeId=h["Id"])
    b.accept_handshake(HandshakeId=_invite(c, B)["Id"])
    assert b.describe_organization()["Organization"]["MasterAccountId"] == C
    assert B not in [x["Id"] for x in a.list_accounts()["Accounts"]]


def test_leave_organization(dev):
    org = dev(MGMT)
    org.create_organization()
    b = dev(B)
    b.accept_handshake(HandshakeId=_invite(org, B)["Id"])
    with aws_error("MasterCannotLeaveOrganizationException", 400):
        org.leave_organization()
    # A created account waits four days (AWS's WAIT_PERIOD_ACTIVE).
    created = org.create_account(Email="new@example.com", AccountName="new")["CreateAccountStatus"]["AccountId"]
    with aws_error("ConstraintViolationException") as e:
        dev(created).leave_organization()
    assert e.value.response["Reason"] == "WAIT_PERIOD_ACTIVE"
    # A delegated administrator must be deregistered first.
    org.register_delegated_administrator(AccountId=B, ServicePrincipal="config.amazonaws.com")
    with aws_error("ConstraintViolationException") as e:
        b.leave_organization()
    assert e.value.response["Reason"] == "CANNOT_REMOVE_DELEGATED_ADMINISTRATOR_FROM_ORG"
    org.deregister_delegated_administrator(AccountId=B, ServicePrincipal="config.amazonaws.com")
    # An SCP can keep members in, as AWS documents.
    scp = org.create_policy(Name="stay", Description="", Type="SERVICE_CONTROL_POLICY",
                            Content=doc(policy(deny("organizations:LeaveOrganization"))))["Policy"]["PolicySummary"]["Id"]
    org.attach_policy(PolicyId=scp, TargetId=B)
    with aws_error("AccessDeniedException", match="service control policy"):
        b.leave_organization()
    org.detach_policy(PolicyId=scp, TargetId=B)
    b.leave_organization()
    with aws_error("AWSOrganizationsNotInUseException"):
        b.describe_organization()
    assert B not in [a["Id"] for a in org.list_accounts()["Accounts"]]
    with aws_error("AWSOrganizationsNotInUseException"):
        b.leave_organization()


def test_enable_all_features(dev):
    org = dev(MGMT)
    info = org.create_organization(FeatureSet="CONSOLIDATED_BILLING")["Organization"]
    assert info["FeatureSet"] == "CONSOLIDATED_BILLING"
    root = org.list_roots()["Roots"][0]
    assert root["PolicyTypes"] == []
    with aws_error("PolicyTypeNotAvailableForOrganizationException"):
        org.enable_policy_type(RootId=root["Id"], PolicyType="SERVICE_CONTROL_POLICY")
    b = dev(B)
    b.accept_handshake(HandshakeId=_invite(org, B)["Id"])
    org.create_account(Email="made@example.com", AccountName="made")  # approval inferred

    req = org.enable_all_features()["Handshake"]
    assert req["Action"] == "ENABLE_ALL_FEATURES" and req["State"] == "REQUESTED"
    assert req["Parties"] == [{"Id": info["Id"], "Type": "ORGANIZATION"}]
    assert req["Resources"] == [{"Type": "ORGANIZATION", "Value": info["Id"]}]
    with aws_error("HandshakeConstraintViolationException") as e:
        org.enable_all_features()
    assert e.value.response["Reason"] == "ORGANIZATION_IS_ALREADY_PENDING_ALL_FEATURES_MIGRATION"
    with aws_error("HandshakeConstraintViolationException") as e:
        _invite(org, C)
    assert e.value.response["Reason"] == "INVITE_DISABLED_DURING_ENABLE_ALL_FEATURES"
    # Not final yet: the request is not OPEN until the invited member approves.
    with aws_error("InvalidHandshakeTransitionException"):
        org.accept_handshake(HandshakeId=req["Id"])

    mine = b.list_handshakes_for_account(Filter={"ActionType": "ENABLE_ALL_FEATURES"})["Handshakes"]
    assert len(mine) == 1
    assert {"Type": "PARENT_HANDSHAKE", "Value": req["Id"]} in mine[0]["Resources"]
    children = org.list_handshakes_for_organization(Filter={"ParentHandshakeId": req["Id"]})["Handshakes"]
    assert [x["Id"] for x in children] == [mine[0]["Id"]]
    b.accept_handshake(HandshakeId=mine[0]["Id"])

    assert org.describe_handshake(HandshakeId=req["Id"])["Handshake"]["State"] == "OPEN"
    approve = org.list_handshakes_for_account(Filter={"ActionType": "APPROVE_ALL_FEATURES"})["Handshakes"]
    assert len(approve) == 1 and approve[0]["State"] == "OPEN"
    with aws_error("AccessDeniedException"):
        b.accept_handshake(HandshakeId=approve[0]["Id"])
    org.accept_handshake(HandshakeId=approve[0]["Id"])
    assert org.describe_organization()["Organization"]["FeatureSet"] == "ALL"
    assert org.describe_handshake(HandshakeId=req["Id"])["Handshake"]["State"] == "ACCEPTED"
    with aws_error("HandshakeConstraintViolationException") as e:
        org.enable_all_features()
    assert e.value.response["Reason"] == "ORGANIZATION_ALREADY_HAS_ALL_FEATURES"
    # Policy types can now be enabled, and SCPs bind the invited member.
    org.enable_policy_type(RootId=root["Id"], PolicyType="SERVICE_CONTROL_POLICY")
    scp = org.create_policy(Name="no-iam", Description="", Type="SERVICE_CONTROL_POLICY",
                            Content=doc(policy(deny("iam:*"))))["Policy"]["PolicySummary"]["Id"]
    org.attach_policy(PolicyId=scp, TargetId=root["Id"])
    with aws_error("AccessDenied", 403):
        dev(B, "iam").list_users()


def test_enable_all_features_canceled(dev):
    org = dev(MGMT)
    org.create_organization(FeatureSet="CONSOLIDATED_BILLING")
    dev(B).accept_handshake(HandshakeId=_invite(org, B)["Id"])
    req = org.enable_all_features()["Handshake"]
    assert org.cancel_handshake(HandshakeId=req["Id"])["Handshake"]["State"] == "CANCELED"
    child = dev(B).list_handshakes_for_account(Filter={"ActionType": "ENABLE_ALL_FEATURES"})["Handshakes"][0]
    assert child["State"] == "CANCELED"
    # A new request can start.
    assert org.enable_all_features()["Handshake"]["State"] == "REQUESTED"


def test_no_invited_members_the_request_is_open_at_once(dev):
    org = dev(MGMT)
    org.create_organization(FeatureSet="CONSOLIDATED_BILLING")
    req = org.enable_all_features()["Handshake"]
    assert req["State"] == "OPEN"
    # Finalized by accepting the request itself, as the EnableAllFeatures reference says.
    assert org.accept_handshake(HandshakeId=req["Id"])["Handshake"]["State"] == "ACCEPTED"
    assert org.describe_organization()["Organization"]["FeatureSet"] == "ALL"
    approve = org.list_handshakes_for_account(Filter={"ActionType": "APPROVE_ALL_FEATURES"})["Handshakes"]
    assert [h["State"] for h in approve] == ["ACCEPTED"]


def test_handshake_operations_are_iam_authorized(dev):
    org = dev(MGMT)
    org.create_organization()
    iam = dev(B, "iam")
    iam.create_user(UserName="limited")
    iam.put_user_policy(UserName="limited", PolicyName="p",
                        PolicyDocument=json.dumps(policy(allow("organizations:ListHandshakesForAccount"))))
    key = iam.create_access_key(UserName="limited")["AccessKey"]
    limited = make_client("organizations", dev.srv.endpoint, key["AccessKeyId"], key["SecretAccessKey"])
    h = _invite(org, B)
    assert [x["Id"] for x in limited.list_handshakes_for_account()["Handshakes"]] == [h["Id"]]
    with aws_error("AccessDeniedException", match="organizations:AcceptHandshake"):
        limited.accept_handshake(HandshakeId=h["Id"])


# ---- the organization's resource policy --------------------------------------------------------


def _delegation(principal: str, actions) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": [{
        "Sid": "Delegate", "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{principal}:root"},
        "Action": actions, "Resource": "*"}]})


def test_resource_policy_lifecycle(dev):
    org = dev(MGMT)
    oid = org.create_organization()["Organization"]["Id"]
    with aws_error("ResourcePolicyNotFoundException", 400):
        org.describe_resource_policy()
    with aws_error("ResourcePolicyNotFoundException", 400):
        org.delete_resource_policy()
    content = _delegation(B, ["organizations:Describe*", "organizations:List*"])
    rp = org.put_resource_policy(Content=content, Tags=[{"Key": "team", "Value": "sec"}])["ResourcePolicy"]
    rid = rp["ResourcePolicySummary"]["Id"]
    assert rid.startswith("rp-")
    assert rp["ResourcePolicySummary"]["Arn"] == f"arn:aws:organizations::{MGMT}:resourcepolicy/{oid}/{rid}"
    assert rp["Content"] == content
    assert org.describe_resource_policy()["ResourcePolicy"] == rp
    # Updating keeps the ID; tags only when creating.
    content2 = _delegation(B, "organizations:ListAccounts")
    assert org.put_resource_policy(Content=content2)["ResourcePolicy"]["ResourcePolicySummary"]["Id"] == rid
    with aws_error("ConstraintViolationException"):
        org.put_resource_policy(Content=content2, Tags=[{"Key": "a", "Value": "b"}])
    with aws_error("InvalidInputException") as e:
        org.put_resource_policy(Content="{")
    assert e.value.response["Reason"] == "INVALID_RESOURCE_POLICY_JSON"
    with aws_error("InvalidInputException") as e:
        org.put_resource_policy(Content=_delegation(B, "s3:GetObject"))
    assert e.value.response["Reason"] == "UNSUPPORTED_ACTION_IN_RESOURCE_POLICY"
    org.delete_resource_policy()
    with aws_error("ResourcePolicyNotFoundException"):
        org.describe_resource_policy()


def test_resource_policy_delegates_read_operations(dev):
    org = dev(MGMT)
    org.create_organization()
    root = org.list_roots()["Roots"][0]["Id"]
    ou = org.create_organizational_unit(ParentId=root, Name="prod")["OrganizationalUnit"]["Id"]
    b, c = dev(B), dev(C)
    b.accept_handshake(HandshakeId=_invite(org, B)["Id"])
    c.accept_handshake(HandshakeId=_invite(org, C)["Id"])
    # Without a delegation policy a member cannot read the organization.
    with aws_error("AccessDeniedException", 400, message="You don't have permissions to access this resource."):
        b.list_accounts()
    org.put_resource_policy(Content=_delegation(B, ["organizations:ListAccounts", "organizations:ListRoots",
                                                    "organizations:DescribeOrganizationalUnit",
                                                    "organizations:DescribeResourcePolicy",
                                                    "organizations:ListHandshakesForOrganization"]))
    assert {a["Id"] for a in b.list_accounts()["Accounts"]} == {MGMT, B, C}
    assert b.list_roots()["Roots"][0]["Id"] == root
    assert b.describe_organizational_unit(OrganizationalUnitId=ou)["OrganizationalUnit"]["Name"] == "prod"
    assert b.describe_resource_policy()["ResourcePolicy"]["ResourcePolicySummary"]["Id"].startswith("rp-")
    assert len(b.list_handshakes_for_organization()["Handshakes"]) == 2
    # What the policy does not grant, and writes, stay denied.
    with aws_error("AccessDeniedException", match="organizations:ListPolicies"):
        b.list_policies(Filter="SERVICE_CONTROL_POLICY")
    with aws_error("AccessDeniedException"):
        b.create_organizational_unit(ParentId=root, Name="mine")
    # Another member the policy does not name is denied.
    with aws_error("AccessDeniedException", match="organizations:ListAccounts"):
        c.list_accounts()
    # The member's own identity policies apply too (cross-account: both sides must allow).
    iam = dev(B, "iam")
    iam.create_user(UserName="reader")
    iam.put_user_policy(UserName="reader", PolicyName="p", PolicyDocument=json.dumps(policy(allow("organizations:ListRoots"))))
    key = iam.create_access_key(UserName="reader")["AccessKey"]
    reader = make_client("organizations", dev.srv.endpoint, key["AccessKeyId"], key["SecretAccessKey"])
    assert reader.list_roots()["Roots"][0]["Id"] == root
    with aws_error("AccessDeniedException", match="organizations:ListAccounts"):
        reader.list_accounts()
    # Deleting the policy ends the delegation.
    org.delete_resource_policy()
    with aws_error("AccessDeniedException", message="You don't have permissions to access this resource."):
        b.list_accounts()


# ---- effective management policies -------------------------------------------------------------


def test_describe_effective_policy(dev):
    org = dev(MGMT)
    org.create_organization()
    root = org.list_roots()["Roots"][0]["Id"]
    ou = org.create_organizational_unit(ParentId=root, Name="eng")["OrganizationalUnit"]["Id"]
    b = dev(B)
    b.accept_handshake(HandshakeId=_invite(org, B)["Id"])
    org.move_account(AccountId=B, SourceParentId=root, DestinationParentId=ou)
    with aws_error("EffectivePolicyNotFoundException", 400):
        org.describe_effective_policy(PolicyType="TAG_POLICY", TargetId=B)
    org.enable_policy_type(RootId=root, PolicyType="TAG_POLICY")
    with aws_error("EffectivePolicyNotFoundException"):
        org.describe_effective_policy(PolicyType="TAG_POLICY", TargetId=B)

    def tag_policy(name, content):
        return org.create_policy(Name=name, Description="", Type="TAG_POLICY",
                                 Content=json.dumps(content))["Policy"]["PolicySummary"]["Id"]

    # AWS's inheritance example: the root assigns, the OU appends, the account removes; the root
    # locks the key's spelling for every level below.
    p_root = tag_policy("root", {"tags": {"costcenter": {
        "tag_key": {"@@assign": "CostCenter", "@@operators_allowed_for_child_policies": ["@@none"]},
        "tag_value": {"@@assign": ["100", "200"]}}}})
    p_ou = tag_policy("ou", {"tags": {"costcenter": {"tag_key": {"@@assign": "costcenter"},
                                                     "tag_value": {"@@append": ["300"]}}}})
    p_acct = tag_policy("acct", {"tags": {"costcenter": {"tag_value": {"@@remove": ["100"]}},
                                          "project": {"tag_key": {"@@assign": "Project"}}}})
    org.attach_policy(PolicyId=p_root, TargetId=root)
    org.attach_policy(PolicyId=p_ou, TargetId=ou)
    org.attach_policy(PolicyId=p_acct, TargetId=B)
    eff = org.describe_effective_policy(PolicyType="TAG_POLICY", TargetId=B)["EffectivePolicy"]
    assert eff["TargetId"] == B and eff["PolicyType"] == "TAG_POLICY"
    assert isinstance(eff["LastUpdatedTimestamp"], dt.datetime)
    assert json.loads(eff["PolicyContent"]) == {"tags": {
        "costcenter": {"tag_key": "CostCenter", "tag_value": ["200", "300"]},
        "project": {"tag_key": "Project"}}}
    # The member reads its own effective policy (no TargetId: the caller's account).
    assert json.loads(b.describe_effective_policy(PolicyType="TAG_POLICY")["EffectivePolicy"]["PolicyContent"]) == \
        json.loads(eff["PolicyContent"])
    # ... but not another account's.
    with aws_error("AccessDeniedException"):
        b.describe_effective_policy(PolicyType="TAG_POLICY", TargetId=MGMT)
    # A delegation policy that does not grant DescribeEffectivePolicy leaves reading its own alone,
    # and one that does lets the member read other accounts'.
    org.put_resource_policy(Content=_delegation(B, "organizations:ListRoots"))
    assert b.describe_effective_policy(PolicyType="TAG_POLICY")["EffectivePolicy"]["TargetId"] == B
    with aws_error("AccessDeniedException", match="organizations:DescribeEffectivePolicy"):
        b.describe_effective_policy(PolicyType="TAG_POLICY", TargetId=MGMT)
    org.put_resource_policy(Content=_delegation(B, "organizations:DescribeEffectivePolicy"))
    assert b.describe_effective_policy(PolicyType="TAG_POLICY", TargetId=MGMT)["EffectivePolicy"]["TargetId"] == MGMT
    # The management account inherits the root's policy only.
    mine = json.loads(org.describe_effective_policy(PolicyType="TAG_POLICY")["EffectivePolicy"]["PolicyContent"])
    assert mine == {"tags": {"costcenter": {"tag_key": "CostCenter", "tag_value": ["100", "200"]}}}
    # Roots and OUs are not supported targets; SCPs have no effective policy here.
    with aws_error("InvalidInputException") as e:
        org.describe_effective_policy(PolicyType="TAG_POLICY", TargetId=ou)
    assert e.value.response["Reason"] == "TARGET_NOT_SUPPORTED"
    with aws_error("InvalidInputException") as e:
        make_client("organizations", dev.srv.endpoint, MGMT, "test", parameter_validation=False) \
            .describe_effective_policy(PolicyType="SERVICE_CONTROL_POLICY")
    assert e.value.response["Reason"] == "INVALID_ENUM_POLICY_TYPE"
    with aws_error("TargetNotFoundException"):
        org.describe_effective_policy(PolicyType="TAG_POLICY", TargetId="999999999999")
    # Changes apply on the next call.
    org.detach_policy(PolicyId=p_acct, TargetId=B)
    got = json.loads(org.describe_effective_policy(PolicyType="TAG_POLICY", TargetId=B)["EffectivePolicy"]["PolicyContent"])
    assert got == {"tags": {"costcenter": {"tag_key": "CostCenter", "tag_value": ["100", "200", "300"]}}}


def test_create_gov_cloud_account_outside_a_govcloud_enabled_organization(dev):
    org = dev(MGMT)
    with aws_error("AWSOrganizationsNotInUseException"):
        org.create_gov_cloud_account(Email="gov@example.com", AccountName="gov")
    org.create_organization()
    # Input is validated first, as for CreateAccount.
    with aws_error("InvalidInputException") as e:
        make_client("organizations", dev.srv.endpoint, MGMT, "test", parameter_validation=False) \
            .create_gov_cloud_account(Email="not-an-email", AccountName="gov")
    assert e.value.response["Reason"] == "INVALID_PATTERN"
    # No Rampart management account has an associated AWS GovCloud (US) account.
    with aws_error("ConstraintViolationException", 400) as e:
        org.create_gov_cloud_account(Email="gov@example.com", AccountName="gov")
    assert e.value.response["Reason"] == "MASTER_ACCOUNT_NOT_GOVCLOUD_ENABLED"
    assert [a["Id"] for a in org.list_accounts()["Accounts"]] == [MGMT]
    b = dev(B)
    b.accept_handshake(HandshakeId=_invite(org, B)["Id"])
    with aws_error("AccessDeniedException"):
        b.create_gov_cloud_account(Email="gov@example.com", AccountName="gov")


def test_deleting_the_organization_cancels_its_invitations(dev):
    org = dev(MGMT)
    org.create_organization()
    h = _invite(org, B)
    org.delete_organization()
    b = dev(B)
    assert [x["State"] for x in b.list_handshakes_for_account()["Handshakes"]] == ["CANCELED"]
    with aws_error("InvalidHandshakeTransitionException"):
        b.accept_handshake(HandshakeId=h["Id"])


# ---- responsibility (billing) transfers ----------------------------------------------------------


def _next_month() -> dt.datetime:
    now = dt.datetime.now(dt.timezone.utc)
    return dt.datetime(now.year + (now.month == 12), now.month % 12 + 1, 1, tzinfo=dt.timezone.utc)


def test_billing_transfer_invite_accept_update_terminate(dev):
    payer, source = dev(MGMT), dev(C)
    payer_org = payer.create_organization()["Organization"]["Id"]
    source_org = source.create_organization()["Organization"]["Id"]
    start = _next_month()
    bad = start + dt.timedelta(days=1)
    with aws_error("InvalidInputException") as e:
        payer.invite_organization_to_transfer_responsibility(
            Type="BILLING", Target={"Id": C, "Type": "ACCOUNT"}, StartTimestamp=bad, SourceName="acme")
    assert e.value.response["Reason"] == "START_DATE_NOT_BEGINNING_OF_MONTH"
    with aws_error("InvalidInputException") as e:
        payer.invite_organization_to_transfer_responsibility(
            Type="BILLING", Target={"Id": C, "Type": "ACCOUNT"},
            StartTimestamp=dt.datetime(2020, 1, 1, tzinfo=dt.timezone.utc), SourceName="acme")
    assert e.value.response["Reason"] == "START_DATE_TOO_EARLY"

    h = payer.invite_organization_to_transfer_responsibility(
        Type="BILLING", Target={"Id": C, "Type": "ACCOUNT"}, StartTimestamp=start, SourceName="acme",
        Notes="billing by us")["Handshake"]
    assert h["Action"] == "TRANSFER_RESPONSIBILITY" and h["State"] == "OPEN"
    assert h["Arn"] == f"arn:aws:organizations::{MGMT}:handshake/{payer_org}/transfer_responsibility/{h['Id']}"
    rt = h["Resources"][0]
    assert rt["Type"] == "RESPONSIBILITY_TRANSFER" and rt["Value"].startswith("rt-")
    tid = rt["Value"]
    with aws_error("HandshakeConstraintViolationException") as e:
        payer.invite_organization_to_transfer_responsibility(
            Type="BILLING", Target={"Id": C, "Type": "ACCOUNT"}, StartTimestamp=start, SourceName="again")
    assert e.value.response["Reason"] == "RESPONSIBILITY_TRANSFER_ALREADY_EXISTS"

    inbound = payer.list_inbound_responsibility_transfers(Type="BILLING")["ResponsibilityTransfers"]
    assert [(t["Id"], t["Status"], t["ActiveHandshakeId"]) for t in inbound] == [(tid, "REQUESTED", h["Id"])]
    assert inbound[0]["Arn"] == f"arn:aws:organizations::{MGMT}:transfer/{payer_org}/billing/inbound/{tid}"
    assert inbound[0]["StartTimestamp"] == start
    assert payer.list_outbound_responsibility_transfers(Type="BILLING")["ResponsibilityTransfers"] == []
    # A member account of the source organization cannot accept; its management account does.
    assert [x["Id"] for x in source.list_handshakes_for_account()["Handshakes"]] == [h["Id"]]
    source.accept_handshake(HandshakeId=h["Id"])
    out = source.list_outbound_responsibility_transfers(Type="BILLING")["ResponsibilityTransfers"]
    assert [(t["Id"], t["Status"]) for t in out] == [(tid, "ACCEPTED")]
    assert out[0]["Arn"] == f"arn:aws:organizations::{C}:transfer/{source_org}/billing/outbound/{tid}"
    assert out[0]["Source"]["ManagementAccountId"] == C and out[0]["Target"]["ManagementAccountId"] == MGMT

    upd = payer.update_responsibility_transfer(Id=tid, Name="acme billing")["ResponsibilityTransfer"]
    assert upd["Name"] == "acme billing"
    assert source.describe_responsibility_transfer(Id=tid)["ResponsibilityTransfer"]["Name"] == "acme billing"
    # The management account of a third organization is no party to it.
    third = dev(B)
    third.create_organization()
    with aws_error("ResponsibilityTransferNotFoundException", 400):
        third.describe_responsibility_transfer(Id=tid)
    with aws_error("ResponsibilityTransferNotFoundException"):
        payer.list_inbound_responsibility_transfers(Type="BILLING", Id="rt-0000000000")

    # Either side withdraws; the transfer ends at the end of a month.
    ended = source.terminate_responsibility_transfer(Id=tid, EndTimestamp=start + dt.timedelta(days=3))
    t = ended["ResponsibilityTransfer"]
    assert t["Status"] == "WITHDRAWN"
    last = (start.replace(month=start.month % 12 + 1, year=start.year + (start.month == 12))
            - dt.timedelta(seconds=1))
    assert t["EndTimestamp"] == last
    with aws_error("ResponsibilityTransferAlreadyInStatusException"):
        payer.terminate_responsibility_transfer(Id=tid)
    with aws_error("ConstraintViolationException") as e:
        payer.update_responsibility_transfer(Id=tid, Name="x")
    assert e.value.response["Reason"] == "TRANSFER_RESPONSIBILITY_UPDATE_NOT_ALLOWED"


def test_billing_transfer_declined_and_canceled(dev):
    payer, source = dev(MGMT), dev(C)
    payer.create_organization()
    source.create_organization()
    start = _next_month()

    def invite():
        return payer.invite_organization_to_transfer_responsibility(
            Type="BILLING", Target={"Id": C, "Type": "ACCOUNT"}, StartTimestamp=start, SourceName="acme")["Handshake"]

    h1 = invite()
    source.decline_handshake(HandshakeId=h1["Id"])
    h2 = invite()
    payer.cancel_handshake(HandshakeId=h2["Id"])
    states = [t["Status"] for t in payer.list_inbound_responsibility_transfers(Type="BILLING")["ResponsibilityTransfers"]]
    assert states == ["DECLINED", "CANCELED"]
    tid = h2["Resources"][0]["Value"]
    with aws_error("InvalidResponsibilityTransferTransitionException"):
        payer.terminate_responsibility_transfer(Id=tid)
    # Only management accounts take part; a standalone account is not in an organization.
    with aws_error("AWSOrganizationsNotInUseException"):
        dev(B).list_inbound_responsibility_transfers(Type="BILLING")
    with aws_error("HandshakeConstraintViolationException") as e:
        payer.invite_organization_to_transfer_responsibility(
            Type="BILLING", Target={"Id": MGMT, "Type": "ACCOUNT"}, StartTimestamp=start, SourceName="self")
    assert e.value.response["Reason"] == "SOURCE_AND_TARGET_CANNOT_MATCH"
