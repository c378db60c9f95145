"""Service-specific credentials: CreateServiceSpecificCredential / ListServiceSpecificCredentials /
UpdateServiceSpecificCredential / ResetServiceSpecificCredential / DeleteServiceSpecificCredential,
the two-per-user-per-service quota, API keys with an age, and what the audit trail keeps."""

import json
import re

from support import allow, aws_error, policy, recent, unique, wait_until

CRED_ID = re.compile(r"^ACCA[A-Z2-7]{17}$")


def test_create_codecommit_credential_shape(iam, account_id):
    user = unique("user")
    iam.create_user(UserName=user)
    c = iam.create_service_specific_credential(UserName=user, ServiceName="codecommit.amazonaws.com")[
        "ServiceSpecificCredential"
    ]
    assert CRED_ID.match(c["ServiceSpecificCredentialId"]), c
    assert c["ServiceUserName"] == f"{user}-at-{account_id}"
    assert len(c["ServicePassword"]) == 44
    assert c["UserName"] == user and c["Status"] == "Active" and c["ServiceName"] == "codecommit.amazonaws.com"
    assert recent(c["CreateDate"])
    assert "ExpirationDate" not in c and "ServiceCredentialSecret" not in c
    listed = iam.list_service_specific_credentials(UserName=user)
    assert listed["ServiceSpecificCredentials"] == [
        {
            "UserName": user,
            "Status": "Active",
            "ServiceUserName": c["ServiceUserName"],
            "CreateDate": c["CreateDate"],
            "ServiceSpecificCredentialId": c["ServiceSpecificCredentialId"],
            "ServiceName": "codecommit.amazonaws.com",
        }
    ]
    # The password is never shown again.
    assert "ServicePassword" not in json.dumps(listed, default=str)


def test_two_per_service_per_user(iam):
    user = unique("user")
    iam.create_user(UserName=user)
    a = iam.create_service_specific_credential(UserName=user, ServiceName="cassandra.amazonaws.com")
    iam.create_service_specific_credential(UserName=user, ServiceName="cassandra.amazonaws.com")
    with aws_error("LimitExceeded", 409, message="Cannot exceed quota for ServiceSpecificCredentialsPerUserPerService: 2"):
        iam.create_service_specific_credential(UserName=user, ServiceName="cassandra.amazonaws.com")
    # Another service has its own two.
    iam.create_service_specific_credential(UserName=user, ServiceName="codecommit.amazonaws.com")
    only = iam.list_service_specific_credentials(UserName=user, ServiceName="cassandra.amazonaws.com")
    assert len(only["ServiceSpecificCredentials"]) == 2
    assert {c["ServiceName"] for c in only["ServiceSpecificCredentials"]} == {"cassandra.amazonaws.com"}
    iam.delete_service_specific_credential(
        UserName=user, ServiceSpecificCredentialId=a["ServiceSpecificCredential"]["ServiceSpecificCredentialId"]
    )
    iam.create_service_specific_credential(UserName=user, ServiceName="cassandra.amazonaws.com")


def test_bedrock_api_key_with_age(iam):
    user = unique("user")
    iam.create_user(UserName=user)
    c = iam.create_service_specific_credential(UserName=user, ServiceName="bedrock.amazonaws.com", CredentialAgeDays=30)[
        "ServiceSpecificCredential"
    ]
    assert c["ServiceCredentialAlias"].startswith(user)
    assert len(c["ServiceCredentialSecret"]) == 44
    assert "ServicePassword" not in c
    days = (c["ExpirationDate"] - c["CreateDate"]).total_seconds() / 86400
    assert days == 30
    [m] = iam.list_service_specific_credentials(UserName=user)["ServiceSpecificCredentials"]
    assert m["ExpirationDate"] == c["ExpirationDate"] and m["ServiceCredentialAlias"] == c["ServiceCredentialAlias"]


def test_unsupported_service_and_bad_input(iam, iam_unvalidated):
    user = unique("user")
    iam.create_user(UserName=user)
    with aws_error("NotSupportedService", 404):
        iam.create_service_specific_credential(UserName=user, ServiceName="s3.amazonaws.com")
    with aws_error("NotSupportedService", 404):
        iam.list_service_specific_credentials(UserName=user, ServiceName="ec2.amazonaws.com")
    with aws_error("InvalidInput", 400):
        iam.create_service_specific_credential(UserName=user, ServiceName="codecommit.amazonaws.com", CredentialAgeDays=3)
    with aws_error("ValidationError", 400, match="credentialAgeDays"):
        iam_unvalidated.create_service_specific_credential(
            UserName=user, ServiceName="bedrock.amazonaws.com", CredentialAgeDays=0
        )
    with aws_error("ValidationError", 400, match="status"):
        iam_unvalidated.update_service_specific_credential(
            UserName=user, ServiceSpecificCredentialId="ACCA" + "A" * 17, Status="Paused"
        )
    with aws_error("NoSuchEntity", 404, message="The user with name nobody-here cannot be found."):
        iam.create_service_specific_credential(UserName="nobody-here", ServiceName="codecommit.amazonaws.com")
    with aws_error("InvalidInput", 400):
        iam.list_service_specific_credentials(UserName=user, AllUsers=True)


def test_update_reset_delete(iam):
    user = unique("user")
    iam.create_user(UserName=user)
    c = iam.create_service_specific_credential(UserName=user, ServiceName="codecommit.amazonaws.com")[
        "ServiceSpecificCredential"
    ]
    cid = c["ServiceSpecificCredentialId"]
    iam.update_service_specific_credential(UserName=user, ServiceSpecificCredentialId=cid, Status="Inactive")
    assert iam.list_service_specific_credentials(UserName=user)["ServiceSpecificCredentials"][0]["Status"] == "Inactive"
    r = iam.reset_service_specific_credential(UserName=user, ServiceSpecificCredentialId=cid)["ServiceSpecificCredential"]
    assert r["ServicePassword"] != c["ServicePassword"] and len(r["ServicePassword"]) == 44
    assert r["ServiceSpecificCredentialId"] == cid and r["Status"] == "Inactive" and r["CreateDate"] == c["CreateDate"]
    iam.delete_service_specific_credential(UserName=user, ServiceSpecificCredentialId=cid)
    assert iam.list_service_specific_credentials(UserName=user)["ServiceSpecificCredentials"] == []
    with aws_error("NoSuchEntity", 404, message=f"No such credential {cid} exists"):
        iam.delete_service_specific_credential(UserName=user, ServiceSpecificCredentialId=cid)
    with aws_error("NoSuchEntity", 404):
        iam.reset_service_specific_credential(UserName=user, ServiceSpecificCredentialId=cid)


def test_another_users_credential_is_not_found(iam):
    a, b = unique("user"), unique("user")
    iam.create_user(UserName=a)
    iam.create_user(UserName=b)
    cid = iam.create_service_specific_credential(UserName=a, ServiceName="codecommit.amazonaws.com")[
        "ServiceSpecificCredential"
    ]["ServiceSpecificCredentialId"]
    with aws_error("NoSuchEntity", 404):
        iam.update_service_specific_credential(UserName=b, ServiceSpecificCredentialId=cid, Status="Inactive")


def test_delete_user_refuses_while_credentials_exist(iam):
    user = unique("user")
    iam.create_user(UserName=user)
    cid = iam.create_service_specific_credential(UserName=user, ServiceName="codecommit.amazonaws.com")[
        "ServiceSpecificCredential"
    ]["ServiceSpecificCredentialId"]
    with aws_error("DeleteConflict", 409, message="Cannot delete entity, must delete service specific credentials first."):
        iam.delete_user(UserName=user)
    iam.delete_service_specific_credential(UserName=user, ServiceSpecificCredentialId=cid)
    iam.delete_user(UserName=user)


def test_renamed_user_keeps_credentials(iam):
    old, new = unique("user"), unique("user")
    iam.create_user(UserName=old)
    cid = iam.create_service_specific_credential(UserName=old, ServiceName="codecommit.amazonaws.com")[
        "ServiceSpecificCredential"
    ]["ServiceSpecificCredentialId"]
    iam.update_user(UserName=old, NewUserName=new)
    [m] = iam.list_service_specific_credentials(UserName=new)["ServiceSpecificCredentials"]
    assert m["ServiceSpecificCredentialId"] == cid and m["UserName"] == new


def test_caller_defaults_and_authorization(make_user, iam):
    u = make_user(inline=[policy(allow("iam:*ServiceSpecificCredential*", f"arn:aws:iam::*:user/*"))])
    iam.create_service_specific_credential(UserName=u.name, ServiceName="codecommit.amazonaws.com")
    # Without UserName: the calling user.
    [m] = u.iam.list_service_specific_credentials()["ServiceSpecificCredentials"]
    assert m["UserName"] == u.name
    other = unique("user")
    iam.create_user(UserName=other)
    nobody = make_user()
    with aws_error("AccessDenied", 403, match="iam:CreateServiceSpecificCredential"):
        nobody.iam.create_service_specific_credential(UserName=other, ServiceName="codecommit.amazonaws.com")
    with aws_error("AccessDenied", 403, match="iam:ListServiceSpecificCredentials"):
        nobody.iam.list_service_specific_credentials(AllUsers=True, ServiceName="codecommit.amazonaws.com")
    all_users = u.iam.list_service_specific_credentials(AllUsers=True, ServiceName="codecommit.amazonaws.com")
    assert u.name in {c["UserName"] for c in all_users["ServiceSpecificCredentials"]}


def test_passwords_stay_out_of_the_trail(server, iam):
    user = unique("user")
    iam.create_user(UserName=user)
    c = iam.create_service_specific_credential(UserName=user, ServiceName="codecommit.amazonaws.com")[
        "ServiceSpecificCredential"
    ]
    r = iam.reset_service_specific_credential(
        UserName=user, ServiceSpecificCredentialId=c["ServiceSpecificCredentialId"]
    )["ServiceSpecificCredential"]
    k = iam.create_service_specific_credential(UserName=user, ServiceName="bedrock.amazonaws.com")[
        "ServiceSpecificCredential"
    ]
    ct = server.client("cloudtrail")

    def events():
        found = []
        for name in ("CreateServiceSpecificCredential", "ResetServiceSpecificCredential"):
            for e in ct.lookup_events(LookupAttributes=[{"AttributeKey": "EventName", "AttributeValue": name}])["Events"]:
                if user in e["CloudTrailEvent"]:
                    found.append(e["CloudTrailEvent"])
        return found if len(found) == 3 else None

    records = wait_until(events)
    assert records, "the three calls are recorded"
    text = "\n".join(records)
    for secret in (c["ServicePassword"], r["ServicePassword"], k["ServiceCredentialSecret"]):
        assert secret not in text
    assert c["ServiceSpecificCredentialId"] in text
