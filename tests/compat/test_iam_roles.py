"""IAM roles: trust policies, MaxSessionDuration, role inline/managed policies, boundaries, deletion."""

import re

from support import ADMIN, allow, aws_error, doc, policy, recent, trust, unique, unique_path

ROLE_ID = re.compile(r"^AROA[A-Z0-9]{17}$")


def make_role(iam, **kwargs):
    name = kwargs.pop("RoleName", None) or unique("role")
    kwargs.setdefault("AssumeRolePolicyDocument", doc(trust()))
    return iam.create_role(RoleName=name, **kwargs)["Role"]


def test_create_role_returns_aws_shape(iam, account_id):
    name = unique("role")
    t = trust("lambda.amazonaws.com")
    role = iam.create_role(RoleName=name, AssumeRolePolicyDocument=doc(t), Description="compat role")["Role"]
    assert role["RoleName"] == name
    assert role["Path"] == "/"
    assert ROLE_ID.match(role["RoleId"]), role["RoleId"]
    assert role["Arn"] == f"arn:aws:iam::{account_id}:role/{name}"
    assert recent(role["CreateDate"])
    assert role["AssumeRolePolicyDocument"] == t
    got = iam.get_role(RoleName=name)["Role"]
    assert got["RoleId"] == role["RoleId"]
    assert got["AssumeRolePolicyDocument"] == t
    assert got["Description"] == "compat role"
    assert got["MaxSessionDuration"] == 3600


def test_create_role_with_path_and_account_principal(iam, account_id):
    t = policy(
        {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{account_id}:root"}, "Action": "sts:AssumeRole"}
    )
    role = make_role(iam, Path="/service-role/", AssumeRolePolicyDocument=doc(t))
    assert role["Arn"] == f"arn:aws:iam::{account_id}:role/service-role/{role['RoleName']}"
    assert iam.get_role(RoleName=role["RoleName"])["Role"]["AssumeRolePolicyDocument"] == t


def test_trust_policy_variants_accepted(iam, account_id):
    variants = [
        policy({"Effect": "Allow", "Principal": {"Service": ["ec2.amazonaws.com", "lambda.amazonaws.com"]},
                "Action": ["sts:AssumeRole", "sts:TagSession"]}),
        policy({"Effect": "Allow", "Principal": {"AWS": account_id}, "Action": "sts:AssumeRole",
                "Condition": {"Bool": {"aws:MultiFactorAuthPresent": "true"}}}),
        policy({"Effect": "Allow", "Principal": {"Federated": "cognito-identity.amazonaws.com"},
                "Action": "sts:AssumeRoleWithWebIdentity"}),
        {"Statement": [{"Effect": "Allow", "Principal": "*", "Action": "sts:AssumeRole"}]},
    ]
    for t in variants:
        role = make_role(iam, AssumeRolePolicyDocument=doc(t))
        # AWS may normalise principals (a bare account ID becomes its root ARN): compare loosely.
        got = iam.get_role(RoleName=role["RoleName"])["Role"]["AssumeRolePolicyDocument"]
        assert got["Statement"][0]["Action"] == t["Statement"][0]["Action"]


def test_create_duplicate_role(iam):
    role = make_role(iam)
    name = role["RoleName"]
    with aws_error("EntityAlreadyExists", 409, message=f"Role with name {name} already exists."):
        make_role(iam, RoleName=name)


def test_get_missing_role(iam):
    name = unique("norole")
    with aws_error("NoSuchEntity", 404, message=f"The role with name {name} cannot be found."):
        iam.get_role(RoleName=name)


def test_trust_policy_must_name_a_principal(iam):
    bad = policy({"Effect": "Allow", "Action": "sts:AssumeRole"})
    with aws_error("MalformedPolicyDocument", 400):
        make_role(iam, AssumeRolePolicyDocument=doc(bad))


def test_trust_policy_invalid_json(iam):
    with aws_error("MalformedPolicyDocument", 400):
        make_role(iam, AssumeRolePolicyDocument='{"Version": "2012-10-17", "Statement": [')


def test_trust_policy_invalid_principal(iam):
    bad = policy({"Effect": "Allow", "Principal": {"AWS": "not-an-arn"}, "Action": "sts:AssumeRole"})
    with aws_error("MalformedPolicyDocument", 400, match="(?i)principal"):
        make_role(iam, AssumeRolePolicyDocument=doc(bad))


def test_trust_policy_must_not_name_resources(iam):
    bad = policy({"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole",
                  "Resource": "*"})
    with aws_error("MalformedPolicyDocument", 400):
        make_role(iam, AssumeRolePolicyDocument=doc(bad))


def test_trust_policy_only_sts_actions(iam):
    bad = policy({"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "s3:GetObject"})
    with aws_error("MalformedPolicyDocument", 400):
        make_role(iam, AssumeRolePolicyDocument=doc(bad))


def test_max_session_duration_bounds(iam, iam_unvalidated):
    assert iam.get_role(RoleName=make_role(iam, MaxSessionDuration=43200)["RoleName"])["Role"][
        "MaxSessionDuration"] == 43200
    assert iam.get_role(RoleName=make_role(iam, MaxSessionDuration=3600)["RoleName"])["Role"][
        "MaxSessionDuration"] == 3600
    for bad in (3599, 43201, 0):
        with aws_error("ValidationError", 400, match="maxSessionDuration"):
            make_role(iam_unvalidated, MaxSessionDuration=bad)


def test_update_role(iam, iam_unvalidated):
    name = make_role(iam)["RoleName"]
    iam.update_role(RoleName=name, MaxSessionDuration=7200, Description="updated")
    got = iam.get_role(RoleName=name)["Role"]
    assert got["MaxSessionDuration"] == 7200
    assert got["Description"] == "updated"
    with aws_error("ValidationError", 400, match="maxSessionDuration"):
        iam_unvalidated.update_role(RoleName=name, MaxSessionDuration=50000)
    with aws_error("NoSuchEntity", 404):
        iam.update_role(RoleName=unique("norole"), Description="x")


def test_update_role_description(iam):
    name = make_role(iam)["RoleName"]
    role = iam.update_role_description(RoleName=name, Description="new text")["Role"]
    assert role["Description"] == "new text"
    assert iam.get_role(RoleName=name)["Role"]["Description"] == "new text"


def test_update_assume_role_policy(iam):
    name = make_role(iam)["RoleName"]
    new = trust("ecs-tasks.amazonaws.com")
    iam.update_assume_role_policy(RoleName=name, PolicyDocument=doc(new))
    assert iam.get_role(RoleName=name)["Role"]["AssumeRolePolicyDocument"] == new
    with aws_error("MalformedPolicyDocument", 400):
        iam.update_assume_role_policy(RoleName=name, PolicyDocument=doc(policy(allow("sts:AssumeRole"))))
    assert iam.get_role(RoleName=name)["Role"]["AssumeRolePolicyDocument"] == new, "a rejected update changes nothing"
    with aws_error("NoSuchEntity", 404):
        iam.update_assume_role_policy(RoleName=unique("norole"), PolicyDocument=doc(new))


def test_role_inline_policies(iam):
    name = make_role(iam)["RoleName"]
    d = policy(allow(["s3:GetObject", "s3:PutObject"], "arn:aws:s3:::bucket/*"))
    iam.put_role_policy(RoleName=name, PolicyName="s3", PolicyDocument=doc(d))
    got = iam.get_role_policy(RoleName=name, PolicyName="s3")
    assert got["RoleName"] == name and got["PolicyName"] == "s3" and got["PolicyDocument"] == d
    assert iam.list_role_policies(RoleName=name)["PolicyNames"] == ["s3"]
    iam.delete_role_policy(RoleName=name, PolicyName="s3")
    assert iam.list_role_policies(RoleName=name)["PolicyNames"] == []
    with aws_error("NoSuchEntity", 404, message="The role policy with name s3 cannot be found."):
        iam.get_role_policy(RoleName=name, PolicyName="s3")
    with aws_error("NoSuchEntity", 404):
        iam.delete_role_policy(RoleName=name, PolicyName="s3")


def test_role_inline_policy_rejects_principal(iam):
    name = make_role(iam)["RoleName"]
    bad = policy(allow("s3:*", Principal="*"))
    with aws_error("MalformedPolicyDocument", 400, message="Policy document should not specify a principal."):
        iam.put_role_policy(RoleName=name, PolicyName="p", PolicyDocument=doc(bad))


def test_role_managed_policies(iam, make_policy):
    name = make_role(iam)["RoleName"]
    arn = make_policy()
    iam.attach_role_policy(RoleName=name, PolicyArn=arn)
    iam.attach_role_policy(RoleName=name, PolicyArn="arn:aws:iam::aws:policy/ReadOnlyAccess")
    attached = iam.list_attached_role_policies(RoleName=name)["AttachedPolicies"]
    assert sorted(p["PolicyArn"] for p in attached) == sorted([arn, "arn:aws:iam::aws:policy/ReadOnlyAccess"])
    assert {p["PolicyName"] for p in attached} == {arn.rsplit("/", 1)[1], "ReadOnlyAccess"}
    iam.detach_role_policy(RoleName=name, PolicyArn=arn)
    assert [p["PolicyArn"] for p in iam.list_attached_role_policies(RoleName=name)["AttachedPolicies"]] == [
        "arn:aws:iam::aws:policy/ReadOnlyAccess"
    ]
    with aws_error("NoSuchEntity", 404):
        iam.detach_role_policy(RoleName=name, PolicyArn=arn)
    with aws_error("NoSuchEntity", 404):
        iam.attach_role_policy(RoleName=unique("norole"), PolicyArn=arn)


def test_role_permissions_boundary(iam, make_policy):
    arn = make_policy()
    name = make_role(iam, PermissionsBoundary=arn)["RoleName"]
    pb = iam.get_role(RoleName=name)["Role"]["PermissionsBoundary"]
    assert pb == {"PermissionsBoundaryType": "Policy", "PermissionsBoundaryArn": arn}
    iam.delete_role_permissions_boundary(RoleName=name)
    assert "PermissionsBoundary" not in iam.get_role(RoleName=name)["Role"]
    iam.put_role_permissions_boundary(RoleName=name, PermissionsBoundary=arn)
    assert iam.get_role(RoleName=name)["Role"]["PermissionsBoundary"]["PermissionsBoundaryArn"] == arn


def test_delete_role(iam):
    name = make_role(iam)["RoleName"]
    iam.delete_role(RoleName=name)
    with aws_error("NoSuchEntity", 404):
        iam.get_role(RoleName=name)
    with aws_error("NoSuchEntity", 404):
        iam.delete_role(RoleName=name)


def test_delete_role_with_inline_policy_conflicts(iam):
    name = make_role(iam)["RoleName"]
    iam.put_role_policy(RoleName=name, PolicyName="p", PolicyDocument=doc(ADMIN))
    with aws_error("DeleteConflict", 409, message="Cannot delete entity, must delete policies first."):
        iam.delete_role(RoleName=name)
    iam.delete_role_policy(RoleName=name, PolicyName="p")
    iam.delete_role(RoleName=name)


def test_delete_role_with_attached_policy_conflicts(iam, make_policy):
    name, arn = make_role(iam)["RoleName"], make_policy()
    iam.attach_role_policy(RoleName=name, PolicyArn=arn)
    with aws_error("DeleteConflict", 409, message="Cannot delete entity, must detach all policies first."):
        iam.delete_role(RoleName=name)
    iam.detach_role_policy(RoleName=name, PolicyArn=arn)
    iam.delete_role(RoleName=name)


def test_delete_role_in_instance_profile_conflicts(iam):
    name, profile = make_role(iam)["RoleName"], unique("profile")
    iam.create_instance_profile(InstanceProfileName=profile)
    iam.add_role_to_instance_profile(InstanceProfileName=profile, RoleName=name)
    with aws_error(
        "DeleteConflict", 409, message="Cannot delete entity, must remove roles from instance profile first."
    ):
        iam.delete_role(RoleName=name)
    iam.remove_role_from_instance_profile(InstanceProfileName=profile, RoleName=name)
    iam.delete_role(RoleName=name)


def test_list_roles_path_prefix(iam):
    path = unique_path()
    inside = sorted(make_role(iam, Path=path)["RoleName"] for _ in range(3))
    make_role(iam, Path="/other/")
    resp = iam.list_roles(PathPrefix=path)
    assert sorted(r["RoleName"] for r in resp["Roles"]) == inside
    assert resp["IsTruncated"] is False
    for r in resp["Roles"]:
        assert ROLE_ID.match(r["RoleId"]) and r["Path"] == path


def test_role_tags_on_create(iam):
    tags = [{"Key": "env", "Value": "prod"}]
    name = make_role(iam, Tags=tags)["RoleName"]
    assert iam.list_role_tags(RoleName=name)["Tags"] == tags
    assert iam.get_role(RoleName=name)["Role"]["Tags"] == tags


def test_role_policy_on_missing_role(iam):
    with aws_error("NoSuchEntity", 404):
        iam.put_role_policy(RoleName=unique("norole"), PolicyName="p", PolicyDocument=doc(ADMIN))
    with aws_error("NoSuchEntity", 404):
        iam.list_role_policies(RoleName=unique("norole"))
    with aws_error("NoSuchEntity", 404):
        iam.list_attached_role_policies(RoleName=unique("norole"))


def test_attach_policy_arn_that_is_a_name(iam, iam_unvalidated):
    """A policy name given as PolicyArn, even one under the model's 20 characters, is 'not valid'
    (ValidationError), not a length error: recorded AWS responses, localstack
    tests/aws/services/iam/test_iam_roles.snapshot.json, test_role_managed_policy_errors
    (existing-policy-name-provided)."""
    name = make_role(iam)["RoleName"]
    for op in (iam_unvalidated.attach_role_policy, iam_unvalidated.detach_role_policy):
        with aws_error("ValidationError", 400, message="ARN policy-1a2b3c4d is not valid."):
            op(RoleName=name, PolicyArn="policy-1a2b3c4d")
