"""The awsQuery wire protocol as AWS speaks it: XML envelopes with the service namespace,
ResponseMetadata/RequestId and the x-amzn-RequestId header, AWS error envelopes, URL-encoded policy
documents, GET with a query string, and AWS-style errors (never a 500) for bad requests."""

import re
import urllib.parse

import pytest

from support import (
    IAM_NS,
    IAM_VERSION,
    STS_NS,
    STS_VERSION,
    aws_error,
    doc,
    local,
    namespace,
    policy,
    allow,
    query_request,
    send_request,
    sign,
    signed_query,
    trust,
    unique,
)

REQUEST_ID = re.compile(r"^[0-9A-Za-z-]{16,}$")
TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]00:00)$")


def assert_success_envelope(resp, operation, ns):
    assert resp.status == 200, resp.text[:500]
    assert resp.header("content-type", ).startswith("text/xml"), resp.header("content-type")
    root = resp.xml
    assert local(root.tag) == f"{operation}Response"
    assert namespace(root.tag) == ns
    assert resp.find(f"{operation}Result") is not None or operation in ("DeleteUser",), resp.text[:500]
    rid = resp.findtext("ResponseMetadata/RequestId")
    assert rid and REQUEST_ID.match(rid), rid
    assert resp.header("x-amzn-requestid") == rid
    return rid


def assert_error_envelope(resp, code, status, ns=IAM_NS):
    assert resp.status == status, resp.text[:500]
    assert resp.header("content-type").startswith("text/xml")
    root = resp.xml
    assert local(root.tag) == "ErrorResponse"
    assert namespace(root.tag) == ns
    assert resp.findtext("Error/Type") == "Sender"
    assert resp.findtext("Error/Code") == code
    assert resp.findtext("Error/Message")
    rid = resp.findtext("RequestId")
    assert rid and REQUEST_ID.match(rid)
    assert resp.header("x-amzn-requestid") == rid
    return resp.findtext("Error/Message")


# -- envelopes -------------------------------------------------------------------------------------
def test_iam_success_envelope(server):
    assert_success_envelope(signed_query(server, {"Action": "ListUsers", "Version": IAM_VERSION}), "ListUsers", IAM_NS)


def test_sts_success_envelope(server):
    resp = signed_query(server, {"Action": "GetCallerIdentity", "Version": STS_VERSION}, service="sts")
    assert_success_envelope(resp, "GetCallerIdentity", STS_NS)


def test_request_ids_are_unique(server):
    ids = {assert_success_envelope(signed_query(server, {"Action": "ListUsers", "Version": IAM_VERSION}),
                                   "ListUsers", IAM_NS) for _ in range(5)}
    assert len(ids) == 5


def test_iam_error_envelope(server):
    name = unique("nobody")
    resp = signed_query(server, {"Action": "GetUser", "Version": IAM_VERSION, "UserName": name})
    msg = assert_error_envelope(resp, "NoSuchEntity", 404)
    assert msg == f"The user with name {name} cannot be found."


def test_sts_error_envelope(server):
    resp = signed_query(server, {"Action": "GetCallerIdentity", "Version": STS_VERSION}, service="sts",
                        secret="x" * 40)
    assert_error_envelope(resp, "SignatureDoesNotMatch", 403, ns=STS_NS)


def test_boto3_sees_request_id(iam, server):
    resp = iam.list_users(MaxItems=1)
    meta = resp["ResponseMetadata"]
    assert REQUEST_ID.match(meta["RequestId"])
    assert meta["HTTPHeaders"]["x-amzn-requestid"] == meta["RequestId"]
    assert meta["HTTPStatusCode"] == 200


def test_boto3_error_has_request_id(iam):
    from botocore.exceptions import ClientError

    with pytest.raises(ClientError) as ei:
        iam.get_role(RoleName=unique("norole"))
    meta = ei.value.response["ResponseMetadata"]
    assert REQUEST_ID.match(meta["RequestId"])
    assert meta["HTTPHeaders"]["x-amzn-requestid"] == meta["RequestId"]
    assert ei.value.response["Error"]["Type"] == "Sender"


# -- field encodings -------------------------------------------------------------------------------
def test_policy_documents_are_url_encoded(server, iam):
    user, role = unique("user"), unique("role")
    d = policy(allow("s3:GetObject", "arn:aws:s3:::bucket/a b+c/*"))
    iam.create_user(UserName=user)
    iam.put_user_policy(UserName=user, PolicyName="p", PolicyDocument=doc(d))
    resp = signed_query(server, {"Action": "GetUserPolicy", "Version": IAM_VERSION, "UserName": user, "PolicyName": "p"})
    raw = resp.findtext("GetUserPolicyResult/PolicyDocument")
    assert raw.startswith("%7B"), raw[:40]
    assert urllib.parse.unquote(raw) == doc(d), "the document comes back as submitted, URL-encoded"

    t = trust()
    iam.create_role(RoleName=role, AssumeRolePolicyDocument=doc(t))
    resp = signed_query(server, {"Action": "GetRole", "Version": IAM_VERSION, "RoleName": role})
    raw = resp.findtext("GetRoleResult/Role/AssumeRolePolicyDocument")
    assert raw.startswith("%7B") and urllib.parse.unquote(raw) == doc(t)


def test_policy_document_whitespace_preserved(iam, server):
    user = unique("user")
    iam.create_user(UserName=user)
    text = '{\n  "Version": "2012-10-17",\n  "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]\n}'
    iam.put_user_policy(UserName=user, PolicyName="p", PolicyDocument=text)
    resp = signed_query(server, {"Action": "GetUserPolicy", "Version": IAM_VERSION, "UserName": user, "PolicyName": "p"})
    assert urllib.parse.unquote(resp.findtext("GetUserPolicyResult/PolicyDocument")) == text


def test_timestamps_and_booleans(server, iam):
    name = unique("user")
    iam.create_user(UserName=name)
    resp = signed_query(server, {"Action": "GetUser", "Version": IAM_VERSION, "UserName": name})
    assert TIMESTAMP.match(resp.findtext("GetUserResult/User/CreateDate")), resp.findtext("GetUserResult/User/CreateDate")
    resp = signed_query(server, {"Action": "ListUsers", "Version": IAM_VERSION, "MaxItems": "1"})
    assert resp.findtext("ListUsersResult/IsTruncated") in ("true", "false")


def test_list_members_encoding(server, iam):
    name = unique("user")
    iam.create_user(UserName=name, Path="/enc/")
    resp = signed_query(server, {"Action": "ListUsers", "Version": IAM_VERSION, "PathPrefix": "/enc/"})
    users = resp.find("ListUsersResult/Users")
    assert users is not None and all(local(m.tag) == "member" for m in users)
    assert name in [m.findtext(f"{{{IAM_NS}}}UserName") for m in users]


def test_struct_list_input_encoding(server, account_id):
    """Tags.member.N.Key/Value form keys decode into the tag list."""
    name = unique("user")
    resp = signed_query(server, {
        "Action": "CreateUser", "Version": IAM_VERSION, "UserName": name,
        "Tags.member.1.Key": "a", "Tags.member.1.Value": "1",
        "Tags.member.2.Key": "b", "Tags.member.2.Value": "2",
    })
    assert resp.status == 200, resp.text
    listed = signed_query(server, {"Action": "ListUserTags", "Version": IAM_VERSION, "UserName": name})
    tags = {m.findtext(f"{{{IAM_NS}}}Key"): m.findtext(f"{{{IAM_NS}}}Value") for m in listed.find("ListUserTagsResult/Tags")}
    assert tags == {"a": "1", "b": "2"}


# -- GET and POST forms ----------------------------------------------------------------------------
def test_get_with_query_string(server, iam):
    name = unique("user")
    iam.create_user(UserName=name)
    resp = signed_query(server, {"Action": "GetUser", "Version": IAM_VERSION, "UserName": name}, method="GET")
    assert_success_envelope(resp, "GetUser", IAM_NS)
    assert resp.findtext("GetUserResult/User/UserName") == name


def test_get_mutating_action(server, iam):
    name = unique("user")
    resp = signed_query(server, {"Action": "CreateUser", "Version": IAM_VERSION, "UserName": name}, method="GET")
    assert resp.status == 200, resp.text
    assert iam.get_user(UserName=name)["User"]["UserName"] == name


def test_form_content_type_without_charset(server):
    req = query_request(server.endpoint, {"Action": "ListUsers", "Version": IAM_VERSION},
                        headers={"Content-Type": "application/x-www-form-urlencoded"})
    sign(req, server.access_key_id, server.secret_access_key)
    assert send_request(req).status == 200


# -- bad requests: AWS-shaped 4xx, never 5xx -------------------------------------------------------
def test_unknown_action(server):
    resp = signed_query(server, {"Action": "FrobnicateUsers", "Version": IAM_VERSION})
    msg = assert_error_envelope(resp, "InvalidAction", 400)
    assert "FrobnicateUsers" in msg


def test_unknown_sts_action(server):
    resp = signed_query(server, {"Action": "FrobnicateTokens", "Version": STS_VERSION}, service="sts")
    assert resp.status == 400 and resp.error_code == "InvalidAction", resp.text
    assert "FrobnicateTokens" in resp.findtext("Error/Message")


def test_missing_action(server):
    resp = signed_query(server, {"Version": IAM_VERSION})
    assert resp.status == 400, resp.text
    assert resp.error_code in ("MissingAction", "InvalidAction"), resp.text


def test_missing_required_parameter(server):
    resp = signed_query(server, {"Action": "CreateUser", "Version": IAM_VERSION})
    msg = assert_error_envelope(resp, "ValidationError", 400)
    assert "username" in msg.lower(), msg


def test_wrong_parameter_type(server):
    resp = signed_query(server, {"Action": "ListUsers", "Version": IAM_VERSION, "MaxItems": "many"})
    assert resp.status == 400, resp.text
    assert resp.error_code in ("ValidationError", "MalformedInput", "InvalidParameterValue"), resp.text


def test_validation_error_message_shape(iam):
    with aws_error("ValidationError", 400, match=r"^1 validation error detected: Value 'a b' at 'userName' failed to "
                                                 r"satisfy constraint: Member must satisfy regular expression pattern"):
        iam.create_user(UserName="a b")


@pytest.mark.parametrize("body", [b"\xff\xfe\xfd", b"=&&==&", b"Action=&Version="],
                         ids=["not-utf8", "empty-pairs", "empty-action"])
def test_garbage_bodies_get_4xx(server, body):
    from botocore.awsrequest import AWSRequest

    req = AWSRequest(method="POST", url=f"{server.endpoint}/", data=body,
                     headers={"Content-Type": "application/x-www-form-urlencoded"})
    sign(req, server.access_key_id, server.secret_access_key)
    resp = send_request(req)
    assert 400 <= resp.status < 500, (resp.status, resp.text[:300])
    assert resp.error_code, resp.text[:300]


def test_unknown_path_is_not_a_500(server):
    resp = signed_query(server, {"Action": "ListUsers", "Version": IAM_VERSION})
    assert resp.status == 200
    from support import send

    r = send("GET", f"{server.endpoint}/no/such/thing")
    assert r.status < 500, r.status


def test_error_echoing_control_characters_is_well_formed_xml(server):
    """A name holding characters XML 1.0 forbids (here U+0001) is echoed in the validation message:
    the body must still parse (they read back as U+FFFD)."""
    resp = signed_query(server, {"Action": "GetUser", "Version": IAM_VERSION, "UserName": "a\x01b"})
    message = assert_error_envelope(resp, "ValidationError", 400)
    assert "\x01" not in message
