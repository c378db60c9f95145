"""Tags on users, roles, customer managed policies and instance profiles: Tag* / Untag* / List*Tags."""

import pytest

from support import aws_error, collect_pages, doc, policy, allow, trust, unique


class Kind:
    def __init__(self, name, create, ident, tag, untag, list_tags, missing):
        self.name, self.create, self.ident = name, create, ident
        self.tag, self.untag, self.list_tags, self.missing = tag, untag, list_tags, missing


def _user(iam, tags=None):
    n = unique("user")
    iam.create_user(UserName=n, **({"Tags": tags} if tags else {}))
    return n


def _role(iam, tags=None):
    n = unique("role")
    iam.create_role(RoleName=n, AssumeRolePolicyDocument=doc(trust()), **({"Tags": tags} if tags else {}))
    return n


def _policy(iam, tags=None):
    return iam.create_policy(PolicyName=unique("policy"), PolicyDocument=doc(policy(allow("s3:Get*"))),
                             **({"Tags": tags} if tags else {}))["Policy"]["Arn"]


def _profile(iam, tags=None):
    n = unique("profile")
    iam.create_instance_profile(InstanceProfileName=n, **({"Tags": tags} if tags else {}))
    return n


KINDS = {
    "user": Kind("user", _user, "UserName", "tag_user", "untag_user", "list_user_tags", lambda a: unique("nobody")),
    "role": Kind("role", _role, "RoleName", "tag_role", "untag_role", "list_role_tags", lambda a: unique("norole")),
    "policy": Kind("policy", _policy, "PolicyArn", "tag_policy", "untag_policy", "list_policy_tags",
                   lambda a: f"arn:aws:iam::{a}:policy/{unique('missing')}"),
    "instance-profile": Kind("instance-profile", _profile, "InstanceProfileName", "tag_instance_profile",
                             "untag_instance_profile", "list_instance_profile_tags", lambda a: unique("noprofile")),
}


@pytest.fixture(params=list(KINDS), ids=list(KINDS))
def kind(request):
    return KINDS[request.param]


def tags_of(iam, kind, ident):
    return {t["Key"]: t["Value"] for t in getattr(iam, kind.list_tags)(**{kind.ident: ident})["Tags"]}


def test_tag_list_untag(iam, kind):
    ident = kind.create(iam)
    assert tags_of(iam, kind, ident) == {}
    getattr(iam, kind.tag)(**{kind.ident: ident, "Tags": [{"Key": "env", "Value": "prod"}, {"Key": "team", "Value": "a"}]})
    assert tags_of(iam, kind, ident) == {"env": "prod", "team": "a"}
    # Tagging an existing key replaces its value; other tags stay.
    getattr(iam, kind.tag)(**{kind.ident: ident, "Tags": [{"Key": "env", "Value": "dev"}]})
    assert tags_of(iam, kind, ident) == {"env": "dev", "team": "a"}
    getattr(iam, kind.untag)(**{kind.ident: ident, "TagKeys": ["env", "not-there"]})
    assert tags_of(iam, kind, ident) == {"team": "a"}


def test_tags_on_create(iam, kind):
    ident = kind.create(iam, tags=[{"Key": "owner", "Value": "compat"}, {"Key": "empty", "Value": ""}])
    assert tags_of(iam, kind, ident) == {"owner": "compat", "empty": ""}


def test_tag_missing_entity(iam, kind, account_id):
    missing = kind.missing(account_id)
    with aws_error("NoSuchEntity", 404):
        getattr(iam, kind.tag)(**{kind.ident: missing, "Tags": [{"Key": "k", "Value": "v"}]})
    with aws_error("NoSuchEntity", 404):
        getattr(iam, kind.list_tags)(**{kind.ident: missing})
    with aws_error("NoSuchEntity", 404):
        getattr(iam, kind.untag)(**{kind.ident: missing, "TagKeys": ["k"]})


def test_fifty_tag_limit(iam, kind):
    ident = kind.create(iam)
    getattr(iam, kind.tag)(**{kind.ident: ident, "Tags": [{"Key": f"k{i}", "Value": "v"} for i in range(30)]})
    getattr(iam, kind.tag)(**{kind.ident: ident, "Tags": [{"Key": f"k{i}", "Value": "v"} for i in range(30, 50)]})
    assert len(tags_of(iam, kind, ident)) == 50
    with aws_error("LimitExceeded", 409):
        getattr(iam, kind.tag)(**{kind.ident: ident, "Tags": [{"Key": "one-too-many", "Value": "v"}]})
    assert len(tags_of(iam, kind, ident)) == 50, "a rejected call adds nothing"
    # Overwriting an existing key does not count against the limit.
    getattr(iam, kind.tag)(**{kind.ident: ident, "Tags": [{"Key": "k0", "Value": "changed"}]})
    assert tags_of(iam, kind, ident)["k0"] == "changed"


def test_tag_key_and_value_length(iam, kind):
    ident = kind.create(iam)
    with aws_error("ValidationError", 400):
        getattr(iam, kind.tag)(**{kind.ident: ident, "Tags": [{"Key": "k" * 129, "Value": "v"}]})
    with aws_error("ValidationError", 400):
        getattr(iam, kind.tag)(**{kind.ident: ident, "Tags": [{"Key": "k", "Value": "v" * 257}]})
    getattr(iam, kind.tag)(**{kind.ident: ident, "Tags": [{"Key": "k" * 128, "Value": "v" * 256}]})
    assert tags_of(iam, kind, ident) == {"k" * 128: "v" * 256}


def test_list_tags_paginates(iam, kind):
    ident = kind.create(iam)
    want = {f"key{i}": f"value{i}" for i in range(5)}
    getattr(iam, kind.tag)(**{kind.ident: ident, "Tags": [{"Key": k, "Value": v} for k, v in want.items()]})
    items, pages = collect_pages(lambda **kw: getattr(iam, kind.list_tags)(**{kind.ident: ident}, **kw), "Tags", 2)
    assert pages == 3
    assert {t["Key"]: t["Value"] for t in items} == want


def test_duplicate_keys_in_one_request(iam, kind):
    """IAM tag keys are case-insensitive: the same key twice in one call is invalid input."""
    ident = kind.create(iam)
    with aws_error("InvalidInput", 400):
        getattr(iam, kind.tag)(**{kind.ident: ident, "Tags": [{"Key": "Env", "Value": "a"}, {"Key": "env", "Value": "b"}]})
    assert tags_of(iam, kind, ident) == {}


def test_tag_key_characters(iam, kind):
    ident = kind.create(iam)
    with aws_error("ValidationError", 400):
        getattr(iam, kind.tag)(**{kind.ident: ident, "Tags": [{"Key": "bad#key", "Value": "v"}]})
    ok = {"a b_c.d:e/f=g+h-i@j": "any value: with spaces/and+signs=@"}
    getattr(iam, kind.tag)(**{kind.ident: ident, "Tags": [{"Key": k, "Value": v} for k, v in ok.items()]})
    assert tags_of(iam, kind, ident) == ok
