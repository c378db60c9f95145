"""The IAM policy simulator through boto3: SimulateCustomPolicy, SimulatePrincipalPolicy,
GetContextKeysForCustomPolicy, GetContextKeysForPrincipalPolicy (issue 3, Interfaces 1)."""

import pytest

from support import ADMIN_ARN, allow, aws_error, deny, doc, policy, trust, unique

BUCKET_OBJ = "arn:aws:s3:::example-bucket/key.txt"


def results(resp):
    return {(r["EvalActionName"], r["EvalResourceName"]): r for r in resp["EvaluationResults"]}


def decisions(resp):
    return {r["EvalActionName"]: r["EvalDecision"] for r in resp["EvaluationResults"]}


def lower(keys):
    return {k.lower() for k in keys}


# -- SimulateCustomPolicy --------------------------------------------------------------------------
def test_custom_allow_and_implicit_deny(iam):
    resp = iam.simulate_custom_policy(
        PolicyInputList=[doc(policy(allow("s3:GetObject", "arn:aws:s3:::example-bucket/*")))],
        ActionNames=["s3:GetObject", "s3:PutObject"],
        ResourceArns=[BUCKET_OBJ],
    )
    assert resp["IsTruncated"] is False
    r = results(resp)
    got = r[("s3:GetObject", BUCKET_OBJ)]
    assert got["EvalDecision"] == "allowed"
    assert [m["SourcePolicyId"] for m in got["MatchedStatements"]] == ["PolicyInputList.1"]
    assert got["MissingContextValues"] == []
    put = r[("s3:PutObject", BUCKET_OBJ)]
    assert put["EvalDecision"] == "implicitDeny"
    assert put["MatchedStatements"] == []


def test_custom_default_resource_is_star(iam):
    resp = iam.simulate_custom_policy(PolicyInputList=[doc(policy(allow("dynamodb:*")))],
                                      ActionNames=["dynamodb:CreateBackup"])
    [r] = resp["EvaluationResults"]
    assert r["EvalResourceName"] == "*"
    assert r["EvalDecision"] == "allowed"


def test_custom_explicit_deny(iam):
    resp = iam.simulate_custom_policy(
        PolicyInputList=[doc(policy(allow("s3:*"))), doc(policy(deny("s3:DeleteObject")))],
        ActionNames=["s3:GetObject", "s3:DeleteObject"],
        ResourceArns=[BUCKET_OBJ],
    )
    d = decisions(resp)
    assert d == {"s3:GetObject": "allowed", "s3:DeleteObject": "explicitDeny"}
    deleted = results(resp)[("s3:DeleteObject", BUCKET_OBJ)]
    assert "PolicyInputList.2" in [m["SourcePolicyId"] for m in deleted["MatchedStatements"]]


def test_custom_matched_statement_positions(iam):
    """The AWS CLI documentation's own example: same input, same positions."""
    text = ('{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"dynamodb:*","Resource":"*",'
            '"Condition":{"DateGreaterThan":{"aws:CurrentTime":"2018-08-16T12:00:00Z"}}}}')
    resp = iam.simulate_custom_policy(
        PolicyInputList=[text], ActionNames=["dynamodb:CreateBackup"],
        ContextEntries=[{"ContextKeyName": "aws:CurrentTime", "ContextKeyValues": ["2019-04-25T11:00:00Z"],
                         "ContextKeyType": "date"}],
    )
    [r] = resp["EvaluationResults"]
    assert r["EvalDecision"] == "allowed"
    [m] = r["MatchedStatements"]
    assert m["SourcePolicyId"] == "PolicyInputList.1"
    assert m["StartPosition"] == {"Line": 1, "Column": 38}
    assert m["EndPosition"] == {"Line": 1, "Column": 167}


def test_custom_date_condition_false(iam):
    text = doc(policy(allow("dynamodb:*", Condition={"DateGreaterThan": {"aws:CurrentTime": "2018-08-16T12:00:00Z"}})))
    resp = iam.simulate_custom_policy(
        PolicyInputList=[text], ActionNames=["dynamodb:CreateBackup"],
        ContextEntries=[{"ContextKeyName": "aws:CurrentTime", "ContextKeyValues": ["2014-04-25T11:00:00Z"],
                         "ContextKeyType": "date"}],
    )
    [r] = resp["EvaluationResults"]
    assert r["EvalDecision"] == "implicitDeny"
    assert r["MatchedStatements"] == [] and r["MissingContextValues"] == []


def _ip_policy():
    return doc(policy(allow("s3:GetObject", Condition={"IpAddress": {"aws:SourceIp": "203.0.113.0/24"}})))


@pytest.mark.parametrize("ip, decision", [("203.0.113.7", "allowed"), ("198.51.100.1", "implicitDeny")])
def test_custom_ip_condition(iam, ip, decision):
    resp = iam.simulate_custom_policy(
        PolicyInputList=[_ip_policy()], ActionNames=["s3:GetObject"],
        ContextEntries=[{"ContextKeyName": "aws:SourceIp", "ContextKeyValues": [ip], "ContextKeyType": "ip"}],
    )
    assert decisions(resp) == {"s3:GetObject": decision}
    assert resp["EvaluationResults"][0]["MissingContextValues"] == []


def test_custom_missing_context_values(iam):
    resp = iam.simulate_custom_policy(PolicyInputList=[_ip_policy()], ActionNames=["s3:GetObject"])
    [r] = resp["EvaluationResults"]
    assert r["EvalDecision"] == "implicitDeny"
    assert lower(r["MissingContextValues"]) == {"aws:sourceip"}


@pytest.mark.parametrize(
    "condition, entry, decision",
    [
        ({"NumericLessThanEquals": {"s3:max-keys": "10"}},
         {"ContextKeyName": "s3:max-keys", "ContextKeyValues": ["7"], "ContextKeyType": "numeric"}, "allowed"),
        ({"NumericLessThanEquals": {"s3:max-keys": "10"}},
         {"ContextKeyName": "s3:max-keys", "ContextKeyValues": ["70"], "ContextKeyType": "numeric"}, "implicitDeny"),
        ({"Bool": {"aws:MultiFactorAuthPresent": "true"}},
         {"ContextKeyName": "aws:MultiFactorAuthPresent", "ContextKeyValues": ["true"], "ContextKeyType": "boolean"},
         "allowed"),
        ({"Bool": {"aws:MultiFactorAuthPresent": "true"}},
         {"ContextKeyName": "aws:MultiFactorAuthPresent", "ContextKeyValues": ["false"], "ContextKeyType": "boolean"},
         "implicitDeny"),
        ({"ForAnyValue:StringEquals": {"aws:TagKeys": ["env", "team"]}},
         {"ContextKeyName": "aws:TagKeys", "ContextKeyValues": ["owner", "team"], "ContextKeyType": "stringList"},
         "allowed"),
        ({"ForAllValues:StringEquals": {"aws:TagKeys": ["env", "team"]}},
         {"ContextKeyName": "aws:TagKeys", "ContextKeyValues": ["owner", "team"], "ContextKeyType": "stringList"},
         "implicitDeny"),
        ({"StringLike": {"s3:prefix": "home/*"}},
         {"ContextKeyName": "s3:prefix", "ContextKeyValues": ["home/alice/"], "ContextKeyType": "string"}, "allowed"),
        ({"StringEqualsIgnoreCase": {"aws:PrincipalTag/team": "RED"}},
         {"ContextKeyName": "aws:PrincipalTag/team", "ContextKeyValues": ["red"], "ContextKeyType": "string"},
         "allowed"),
    ],
    ids=["numeric-true", "numeric-false", "bool-true", "bool-false", "for-any-value", "for-all-values",
         "string-like", "ignore-case"],
)
def test_custom_condition_types(iam, condition, entry, decision):
    resp = iam.simulate_custom_policy(
        PolicyInputList=[doc(policy(allow("s3:ListBucket", Condition=condition)))],
        ActionNames=["s3:ListBucket"], ContextEntries=[entry],
    )
    assert decisions(resp) == {"s3:ListBucket": decision}


def test_custom_deny_with_negated_operator_on_missing_key(iam):
    """A missing key makes a negated operator true: the Deny applies."""
    resp = iam.simulate_custom_policy(
        PolicyInputList=[doc(policy(allow("s3:*"), deny("s3:*", Condition={"StringNotEquals": {"s3:prefix": "pub/"}})))],
        ActionNames=["s3:ListBucket"],
    )
    assert decisions(resp) == {"s3:ListBucket": "explicitDeny"}


def test_custom_permissions_boundary(iam):
    resp = iam.simulate_custom_policy(
        PolicyInputList=[doc(policy(allow("iam:*")))],
        PermissionsBoundaryPolicyInputList=[doc(policy(allow("iam:Get*")))],
        ActionNames=["iam:GetUser", "iam:CreateUser"],
    )
    r = {x["EvalActionName"]: x for x in resp["EvaluationResults"]}
    assert r["iam:GetUser"]["EvalDecision"] == "allowed"
    assert r["iam:CreateUser"]["EvalDecision"] == "implicitDeny"
    assert r["iam:CreateUser"]["PermissionsBoundaryDecisionDetail"]["AllowedByPermissionsBoundary"] is False
    assert r["iam:GetUser"]["PermissionsBoundaryDecisionDetail"]["AllowedByPermissionsBoundary"] is True


def test_custom_resource_policy_same_account(iam, account_id):
    user = unique("caller")
    arn = iam.create_user(UserName=user)["User"]["Arn"]
    bucket_policy = policy({"Effect": "Allow", "Principal": {"AWS": arn}, "Action": "s3:GetObject",
                            "Resource": "arn:aws:s3:::example-bucket/*"})
    resp = iam.simulate_custom_policy(
        PolicyInputList=[], ActionNames=["s3:GetObject", "s3:PutObject"], ResourceArns=[BUCKET_OBJ],
        ResourcePolicy=doc(bucket_policy), CallerArn=arn,
    )
    assert decisions(resp) == {"s3:GetObject": "allowed", "s3:PutObject": "implicitDeny"}


def test_custom_resource_policy_explicit_deny(iam):
    user = unique("caller")
    arn = iam.create_user(UserName=user)["User"]["Arn"]
    bucket_policy = policy({"Effect": "Deny", "Principal": {"AWS": arn}, "Action": "s3:*",
                            "Resource": "arn:aws:s3:::example-bucket/*"})
    resp = iam.simulate_custom_policy(
        PolicyInputList=[doc(policy(allow("s3:*")))], ActionNames=["s3:GetObject"], ResourceArns=[BUCKET_OBJ],
        ResourcePolicy=doc(bucket_policy), CallerArn=arn,
    )
    [r] = resp["EvaluationResults"]
    assert r["EvalDecision"] == "explicitDeny"


def test_custom_resource_policy_cross_account_needs_both_sides(iam):
    user = unique("caller")
    arn = iam.create_user(UserName=user)["User"]["Arn"]
    bucket_policy = policy({"Effect": "Allow", "Principal": {"AWS": arn}, "Action": "s3:GetObject",
                            "Resource": "arn:aws:s3:::example-bucket/*"})
    common = dict(ActionNames=["s3:GetObject"], ResourceArns=[BUCKET_OBJ], ResourcePolicy=doc(bucket_policy),
                  CallerArn=arn, ResourceOwner="arn:aws:iam::999999999999:root")
    only_resource = iam.simulate_custom_policy(PolicyInputList=[], **common)
    assert decisions(only_resource) == {"s3:GetObject": "implicitDeny"}
    both = iam.simulate_custom_policy(PolicyInputList=[doc(policy(allow("s3:GetObject")))], **common)
    assert decisions(both) == {"s3:GetObject": "allowed"}
    # Cross-account simulations summarise each policy type's contribution (AWS: EvalDecisionDetails is
    # "populated for only cross-account simulations").
    for resp in (only_resource, both):
        details = resp["EvaluationResults"][0].get("EvalDecisionDetails")
        assert details, resp["EvaluationResults"][0]
        assert set(details.values()) <= {"allowed", "explicitDeny", "implicitDeny"}
    assert "implicitDeny" in only_resource["EvaluationResults"][0]["EvalDecisionDetails"].values()


def test_custom_multiple_resources(iam):
    a, b = "arn:aws:s3:::example-bucket/a", "arn:aws:s3:::other-bucket/b"
    resp = iam.simulate_custom_policy(
        PolicyInputList=[doc(policy(allow("s3:GetObject", "arn:aws:s3:::example-bucket/*")))],
        ActionNames=["s3:GetObject"], ResourceArns=[a, b],
    )
    # One result per action; per-resource outcomes are in ResourceSpecificResults (AWS's shape), or
    # one result per action/resource pair.
    flat = {}
    for r in resp["EvaluationResults"]:
        if r.get("ResourceSpecificResults"):
            for rs in r["ResourceSpecificResults"]:
                flat[rs["EvalResourceName"]] = rs["EvalResourceDecision"]
        else:
            flat[r["EvalResourceName"]] = r["EvalDecision"]
    assert flat == {a: "allowed", b: "implicitDeny"}


def test_custom_pagination(iam):
    actions = ["iam:GetUser", "iam:ListUsers", "iam:CreateUser"]
    kwargs = dict(PolicyInputList=[doc(policy(allow("iam:Get*")))], ActionNames=actions)
    first = iam.simulate_custom_policy(MaxItems=2, **kwargs)
    assert first["IsTruncated"] is True and len(first["EvaluationResults"]) == 2
    rest = iam.simulate_custom_policy(MaxItems=2, Marker=first["Marker"], **kwargs)
    assert rest["IsTruncated"] is False
    assert sorted(r["EvalActionName"] for r in first["EvaluationResults"] + rest["EvaluationResults"]) == sorted(actions)


def test_custom_invalid_policy(iam):
    with aws_error("InvalidInput", 400, codes=("MalformedPolicyDocument",)):
        iam.simulate_custom_policy(PolicyInputList=["{not json"], ActionNames=["s3:GetObject"])


def test_custom_invalid_context_type(iam_unvalidated):
    with aws_error("ValidationError", 400, codes=("InvalidInput",)):
        iam_unvalidated.simulate_custom_policy(
            PolicyInputList=[_ip_policy()], ActionNames=["s3:GetObject"],
            ContextEntries=[{"ContextKeyName": "aws:SourceIp", "ContextKeyValues": ["1.2.3.4"],
                             "ContextKeyType": "ipAddressThing"}],
        )


# -- SimulatePrincipalPolicy -----------------------------------------------------------------------
def test_principal_user_inline_policy(iam):
    user = unique("user")
    arn = iam.create_user(UserName=user)["User"]["Arn"]
    iam.put_user_policy(UserName=user, PolicyName="Grant-List", PolicyDocument=doc(policy(allow("codecommit:ListRepositories"))))
    resp = iam.simulate_principal_policy(PolicySourceArn=arn, ActionNames=["codecommit:ListRepositories",
                                                                           "codecommit:DeleteRepository"])
    r = {x["EvalActionName"]: x for x in resp["EvaluationResults"]}
    assert r["codecommit:ListRepositories"]["EvalDecision"] == "allowed"
    [m] = r["codecommit:ListRepositories"]["MatchedStatements"]
    assert m["SourcePolicyId"] == "Grant-List"
    assert m["SourcePolicyType"] == "user"
    assert r["codecommit:DeleteRepository"]["EvalDecision"] == "implicitDeny"


def test_principal_includes_groups_and_managed(iam):
    user, group = unique("user"), unique("group")
    arn = iam.create_user(UserName=user)["User"]["Arn"]
    iam.create_group(GroupName=group)
    iam.add_user_to_group(GroupName=group, UserName=user)
    iam.put_group_policy(GroupName=group, PolicyName="gp", PolicyDocument=doc(policy(allow("sqs:SendMessage"))))
    local_arn = iam.create_policy(PolicyName=unique("policy"), PolicyDocument=doc(policy(allow("sns:Publish"))))["Policy"]["Arn"]
    iam.attach_user_policy(UserName=user, PolicyArn=local_arn)
    iam.attach_group_policy(GroupName=group, PolicyArn="arn:aws:iam::aws:policy/IAMReadOnlyAccess")
    resp = iam.simulate_principal_policy(
        PolicySourceArn=arn, ActionNames=["sqs:SendMessage", "sns:Publish", "iam:ListUsers", "iam:CreateUser"])
    r = {x["EvalActionName"]: x for x in resp["EvaluationResults"]}
    assert {k: v["EvalDecision"] for k, v in r.items()} == {
        "sqs:SendMessage": "allowed", "sns:Publish": "allowed", "iam:ListUsers": "allowed", "iam:CreateUser": "implicitDeny"}
    assert {m["SourcePolicyType"] for m in r["sqs:SendMessage"]["MatchedStatements"]} == {"group"}
    assert {m["SourcePolicyType"] for m in r["sns:Publish"]["MatchedStatements"]} == {"user-managed"}
    assert {m["SourcePolicyType"] for m in r["iam:ListUsers"]["MatchedStatements"]} == {"aws-managed"}


def test_principal_group_deny_beats_user_allow(iam):
    user, group = unique("user"), unique("group")
    arn = iam.create_user(UserName=user)["User"]["Arn"]
    iam.put_user_policy(UserName=user, PolicyName="all", PolicyDocument=doc(policy(allow("s3:*"))))
    iam.create_group(GroupName=group)
    iam.add_user_to_group(GroupName=group, UserName=user)
    iam.put_group_policy(GroupName=group, PolicyName="no-delete", PolicyDocument=doc(policy(deny("s3:DeleteBucket"))))
    resp = iam.simulate_principal_policy(PolicySourceArn=arn, ActionNames=["s3:DeleteBucket", "s3:ListBucket"])
    r = {x["EvalActionName"]: x for x in resp["EvaluationResults"]}
    assert r["s3:DeleteBucket"]["EvalDecision"] == "explicitDeny"
    assert ("no-delete", "group") in {(m["SourcePolicyId"], m["SourcePolicyType"]) for m in r["s3:DeleteBucket"]["MatchedStatements"]}
    assert r["s3:ListBucket"]["EvalDecision"] == "allowed"


def test_principal_with_boundary(iam):
    user = unique("user")
    boundary = iam.create_policy(PolicyName=unique("boundary"), PolicyDocument=doc(policy(allow("iam:List*"))))["Policy"]["Arn"]
    arn = iam.create_user(UserName=user, PermissionsBoundary=boundary)["User"]["Arn"]
    iam.attach_user_policy(UserName=user, PolicyArn=ADMIN_ARN)
    resp = iam.simulate_principal_policy(PolicySourceArn=arn, ActionNames=["iam:ListUsers", "iam:CreateUser"])
    r = {x["EvalActionName"]: x for x in resp["EvaluationResults"]}
    assert r["iam:ListUsers"]["EvalDecision"] == "allowed"
    assert r["iam:CreateUser"]["EvalDecision"] == "implicitDeny"
    assert r["iam:CreateUser"]["PermissionsBoundaryDecisionDetail"]["AllowedByPermissionsBoundary"] is False


def test_principal_role(iam):
    role = unique("role")
    arn = iam.create_role(RoleName=role, AssumeRolePolicyDocument=doc(trust()))["Role"]["Arn"]
    iam.put_role_policy(RoleName=role, PolicyName="rp", PolicyDocument=doc(policy(allow("ec2:Describe*"))))
    resp = iam.simulate_principal_policy(PolicySourceArn=arn, ActionNames=["ec2:DescribeInstances", "ec2:RunInstances"])
    r = {x["EvalActionName"]: x for x in resp["EvaluationResults"]}
    assert r["ec2:DescribeInstances"]["EvalDecision"] == "allowed"
    assert {m["SourcePolicyType"] for m in r["ec2:DescribeInstances"]["MatchedStatements"]} == {"role"}
    assert r["ec2:RunInstances"]["EvalDecision"] == "implicitDeny"


def test_principal_group(iam):
    group = unique("group")
    arn = iam.create_group(GroupName=group)["Group"]["Arn"]
    iam.put_group_policy(GroupName=group, PolicyName="gp", PolicyDocument=doc(policy(allow("s3:Get*"))))
    resp = iam.simulate_principal_policy(PolicySourceArn=arn, ActionNames=["s3:GetObject", "s3:PutObject"])
    assert decisions(resp) == {"s3:GetObject": "allowed", "s3:PutObject": "implicitDeny"}


def test_principal_extra_policy_input(iam):
    user = unique("user")
    arn = iam.create_user(UserName=user)["User"]["Arn"]
    resp = iam.simulate_principal_policy(PolicySourceArn=arn, ActionNames=["s3:GetObject"],
                                         PolicyInputList=[doc(policy(allow("s3:GetObject")))])
    assert decisions(resp) == {"s3:GetObject": "allowed"}


def test_principal_policy_variables_use_principal(iam, account_id):
    user = unique("user")
    arn = iam.create_user(UserName=user)["User"]["Arn"]
    iam.put_user_policy(UserName=user, PolicyName="self",
                        PolicyDocument=doc(policy(allow("iam:GetUser", "arn:aws:iam::*:user/${aws:username}"))))
    resp = iam.simulate_principal_policy(
        PolicySourceArn=arn, ActionNames=["iam:GetUser"],
        ResourceArns=[arn, f"arn:aws:iam::{account_id}:user/someone-else"],
        ContextEntries=[{"ContextKeyName": "aws:username", "ContextKeyValues": [user], "ContextKeyType": "string"}],
    )
    flat = {}
    for r in resp["EvaluationResults"]:
        for rs in r.get("ResourceSpecificResults") or [{"EvalResourceName": r["EvalResourceName"],
                                                        "EvalResourceDecision": r["EvalDecision"]}]:
            flat[rs["EvalResourceName"]] = rs["EvalResourceDecision"]
    assert flat == {arn: "allowed", f"arn:aws:iam::{account_id}:user/someone-else": "implicitDeny"}


def test_principal_missing_entity(iam, account_id):
    with aws_error("NoSuchEntity", 404):
        iam.simulate_principal_policy(PolicySourceArn=f"arn:aws:iam::{account_id}:user/{unique('nobody')}",
                                      ActionNames=["s3:GetObject"])


def test_simulate_requires_permission(make_user, account_id):
    u = make_user()
    with aws_error("AccessDenied", 403, match=r"iam:SimulatePrincipalPolicy"):
        u.iam.simulate_principal_policy(PolicySourceArn=u.arn, ActionNames=["s3:GetObject"])
    allowed = make_user(inline=[policy(allow(["iam:SimulateCustomPolicy", "iam:GetContextKeysForCustomPolicy"]))])
    assert decisions(allowed.iam.simulate_custom_policy(
        PolicyInputList=[doc(policy(allow("s3:*")))], ActionNames=["s3:GetObject"])) == {"s3:GetObject": "allowed"}


# -- GetContextKeysFor*Policy ----------------------------------------------------------------------
def test_context_keys_for_custom_policy(iam):
    """The AWS CLI documentation's example: policy variables count as context keys too."""
    text = ('{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"dynamodb:*",'
            '"Resource":"arn:aws:dynamodb:us-west-2:123456789012:table/${aws:username}",'
            '"Condition":{"DateGreaterThan":{"aws:CurrentTime":"2015-08-16T12:00:00Z"}}}}')
    keys = iam.get_context_keys_for_custom_policy(PolicyInputList=[text])["ContextKeyNames"]
    assert lower(keys) == {"aws:username", "aws:currenttime"}
    assert len(keys) == 2


def test_context_keys_union_over_policies(iam):
    p1 = doc(policy(allow("s3:*", Condition={"IpAddress": {"aws:SourceIp": "10.0.0.0/8"},
                                             "StringLike": {"s3:prefix": "a/*"}})))
    p2 = doc(policy(deny("s3:*", Condition={"Bool": {"aws:SecureTransport": "false"},
                                            "StringEquals": {"aws:SourceIp": "10.1.1.1"}})))
    keys = iam.get_context_keys_for_custom_policy(PolicyInputList=[p1, p2])["ContextKeyNames"]
    assert lower(keys) == {"aws:sourceip", "s3:prefix", "aws:securetransport"}
    assert len(keys) == 3, "each key once"


def test_context_keys_none(iam):
    keys = iam.get_context_keys_for_custom_policy(PolicyInputList=[doc(policy(allow("s3:*")))])
    assert keys.get("ContextKeyNames", []) == []


def test_context_keys_invalid_policy(iam):
    with aws_error("InvalidInput", 400, codes=("MalformedPolicyDocument",)):
        iam.get_context_keys_for_custom_policy(PolicyInputList=["{nope"])


def test_context_keys_for_principal_policy(iam):
    user, group = unique("user"), unique("group")
    arn = iam.create_user(UserName=user)["User"]["Arn"]
    iam.put_user_policy(UserName=user, PolicyName="p", PolicyDocument=doc(policy(
        allow("dynamodb:*", "arn:aws:dynamodb:*:*:table/${aws:username}",
              Condition={"DateGreaterThan": {"aws:CurrentTime": "2015-08-16T12:00:00Z"}}))))
    iam.create_group(GroupName=group)
    iam.add_user_to_group(GroupName=group, UserName=user)
    iam.put_group_policy(GroupName=group, PolicyName="g", PolicyDocument=doc(policy(
        allow("s3:*", Condition={"StringEquals": {"s3:x-amz-acl": "private"}}))))
    keys = iam.get_context_keys_for_principal_policy(PolicySourceArn=arn)["ContextKeyNames"]
    assert lower(keys) == {"aws:username", "aws:currenttime", "s3:x-amz-acl"}
    extra = iam.get_context_keys_for_principal_policy(
        PolicySourceArn=arn, PolicyInputList=[doc(policy(allow("s3:*", Condition={"Bool": {"aws:SecureTransport": "true"}})))]
    )["ContextKeyNames"]
    assert lower(extra) == {"aws:username", "aws:currenttime", "s3:x-amz-acl", "aws:securetransport"}


def test_context_keys_for_missing_principal(iam, account_id):
    with aws_error("NoSuchEntity", 404):
        iam.get_context_keys_for_principal_policy(PolicySourceArn=f"arn:aws:iam::{account_id}:user/{unique('nobody')}")


@pytest.mark.parametrize("version, alice, literal", [("2012-10-17", "allowed", "implicitDeny"),
                                                     ("2008-10-17", "implicitDeny", "allowed")])
def test_policy_variables_only_under_2012(iam, version, alice, literal):
    """${aws:username} is a variable under 2012-10-17 and literal text under 2008-10-17 (shown with a
    resource policy: bucket policies are where AWS still accepts the 2008 language)."""
    user = unique("caller")
    caller = iam.create_user(UserName=user)["User"]["Arn"]
    bucket_policy = {"Version": version, "Statement": [{
        "Effect": "Allow", "Principal": {"AWS": caller}, "Action": "s3:GetObject",
        "Resource": "arn:aws:s3:::example-bucket/${aws:username}"}]}
    alice_arn = "arn:aws:s3:::example-bucket/alice"
    literal_arn = "arn:aws:s3:::example-bucket/${aws:username}"
    resp = iam.simulate_custom_policy(
        PolicyInputList=[], ActionNames=["s3:GetObject"], ResourceArns=[alice_arn, literal_arn],
        ResourcePolicy=doc(bucket_policy), CallerArn=caller,
        ContextEntries=[{"ContextKeyName": "aws:username", "ContextKeyValues": ["alice"], "ContextKeyType": "string"}],
    )
    flat = {}
    for r in resp["EvaluationResults"]:
        for rs in r.get("ResourceSpecificResults") or [{"EvalResourceName": r["EvalResourceName"],
                                                        "EvalResourceDecision": r["EvalDecision"]}]:
            flat[rs["EvalResourceName"]] = rs["EvalResourceDecision"]
    assert flat == {alice_arn: alice, literal_arn: literal}
