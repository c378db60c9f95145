"""SAML providers (metadata checked to be an EntityDescriptor, ValidUntil from it, tags) and
service-linked roles (AWS's names and paths, the service trust policy, deletion tasks)."""

import json
import re
import urllib.parse

from support import aws_error, unique

METADATA = """<?xml version="1.0"?>
<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" entityID="https://idp.example.com/{n}"
    validUntil="2031-05-06T07:08:09Z">
  <md:IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">
    <md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect"
        Location="https://idp.example.com/sso/{pad}"/>
  </md:IDPSSODescriptor>
</md:EntityDescriptor>
"""


def metadata(n: str = "x") -> str:
    return METADATA.format(n=n, pad="p" * 600)


def test_saml_provider_lifecycle(iam, account_id):
    name = unique("saml")
    arn = iam.create_saml_provider(Name=name, SAMLMetadataDocument=metadata(),
                                   Tags=[{"Key": "team", "Value": "id"}])["SAMLProviderArn"]
    assert arn == f"arn:aws:iam::{account_id}:saml-provider/{name}"
    got = iam.get_saml_provider(SAMLProviderArn=arn)
    assert got["SAMLMetadataDocument"] == metadata()
    assert got["ValidUntil"].year == 2031 and got["ValidUntil"].month == 5
    assert got["Tags"] == [{"Key": "team", "Value": "id"}]
    assert len(got["SAMLProviderUUID"]) == 36
    listed = {p["Arn"]: p for p in iam.list_saml_providers()["SAMLProviderList"]}
    assert arn in listed and "CreateDate" in listed[arn]

    assert iam.update_saml_provider(SAMLProviderArn=arn, SAMLMetadataDocument=metadata("y"))["SAMLProviderArn"] == arn
    assert "idp.example.com/y" in iam.get_saml_provider(SAMLProviderArn=arn)["SAMLMetadataDocument"]

    iam.tag_saml_provider(SAMLProviderArn=arn, Tags=[{"Key": "env", "Value": "prod"}])
    iam.untag_saml_provider(SAMLProviderArn=arn, TagKeys=["team"])
    assert iam.list_saml_provider_tags(SAMLProviderArn=arn)["Tags"] == [{"Key": "env", "Value": "prod"}]

    assert iam.get_account_summary()["SummaryMap"]["Providers"] >= 1
    with aws_error("EntityAlreadyExists", 409):
        iam.create_saml_provider(Name=name, SAMLMetadataDocument=metadata())
    iam.delete_saml_provider(SAMLProviderArn=arn)
    assert arn not in [p["Arn"] for p in iam.list_saml_providers()["SAMLProviderList"]]
    with aws_error("NoSuchEntity", 404):
        iam.get_saml_provider(SAMLProviderArn=arn)
    with aws_error("NoSuchEntity", 404):
        iam.delete_saml_provider(SAMLProviderArn=arn)


def test_saml_provider_errors(iam, iam_unvalidated):
    with aws_error("InvalidInput", 400, message="Could not parse metadata"):
        iam.create_saml_provider(Name=unique("saml"), SAMLMetadataDocument="a" * 1024)
    not_entity = "<Other>" + "a" * 1000 + "</Other>"
    with aws_error("InvalidInput", 400):
        iam.create_saml_provider(Name=unique("saml"), SAMLMetadataDocument=not_entity)
    with aws_error("ValidationError", 400):
        iam.create_saml_provider(Name="bad name!", SAMLMetadataDocument=metadata())
    with aws_error("ValidationError", 400):
        iam_unvalidated.create_saml_provider(Name=unique("saml"), SAMLMetadataDocument="<EntityDescriptor/>")


def test_service_linked_role(iam, account_id):
    role = iam.create_service_linked_role(AWSServiceName="elasticbeanstalk.amazonaws.com", Description="desc")["Role"]
    assert role["RoleName"] == "AWSServiceRoleForElasticBeanstalk"
    assert role["Path"] == "/aws-service-role/elasticbeanstalk.amazonaws.com/"
    assert role["Arn"] == (f"arn:aws:iam::{account_id}:role/aws-service-role/elasticbeanstalk.amazonaws.com/"
                           "AWSServiceRoleForElasticBeanstalk")
    assert role["Description"] == "desc"
    trust = role["AssumeRolePolicyDocument"]
    if isinstance(trust, str):
        trust = json.loads(urllib.parse.unquote(trust))
    # As AWS writes it: Action and Principal.Service as strings (a recorded GetRole of a
    # service-linked role; the Lex developer guide's get-role example).
    assert trust["Statement"] == [
        {"Action": "sts:AssumeRole", "Effect": "Allow", "Principal": {"Service": "elasticbeanstalk.amazonaws.com"}}
    ]
    assert [p["PolicyArn"] for p in iam.list_attached_role_policies(RoleName=role["RoleName"])["AttachedPolicies"]] == [
        "arn:aws:iam::aws:policy/aws-service-role/AWSElasticBeanstalkServiceRolePolicy"]
    with aws_error("InvalidInput", 400, match="has been taken in this account"):
        iam.create_service_linked_role(AWSServiceName="elasticbeanstalk.amazonaws.com")
    with aws_error("UnmodifiableEntity", 400, match="protected role"):
        iam.delete_role(RoleName=role["RoleName"])

    task = iam.delete_service_linked_role(RoleName=role["RoleName"])["DeletionTaskId"]
    assert re.fullmatch(r"task/aws-service-role/elasticbeanstalk\.amazonaws\.com/AWSServiceRoleForElasticBeanstalk/"
                        r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", task)
    assert iam.get_service_linked_role_deletion_status(DeletionTaskId=task)["Status"] == "SUCCEEDED"
    with aws_error("NoSuchEntity", 404):
        iam.get_role(RoleName=role["RoleName"])


def test_service_linked_role_suffix_and_errors(iam):
    role = iam.create_service_linked_role(AWSServiceName="autoscaling.amazonaws.com", CustomSuffix="suf")["Role"]
    assert role["RoleName"] == "AWSServiceRoleForAutoScaling_suf"
    iam.delete_service_linked_role(RoleName=role["RoleName"])
    with aws_error("InvalidInput", 400):
        iam.create_service_linked_role(AWSServiceName="notaservice")
    plain = unique("role")
    iam.create_role(RoleName=plain, AssumeRolePolicyDocument=json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}],
    }))
    with aws_error("InvalidInput", 400):
        iam.delete_service_linked_role(RoleName=plain)
    with aws_error("NoSuchEntity", 404):
        iam.delete_service_linked_role(RoleName=unique("role"))
    with aws_error("InvalidInput", 400):
        iam.get_service_linked_role_deletion_status(DeletionTaskId="bogus")


def test_service_linked_role_names_policy_and_suffix_as_aws(iam, account_id):
    """AWS's name, path and managed policy for acm.amazonaws.com, and its refusal of CustomSuffix
    (AWS responses recorded by LocalStack's IAM suite; see crates/iam/data/service-linked-roles.json)."""
    with aws_error("InvalidInput", 400, match="^Custom suffix is not allowed for acm.amazonaws.com$"):
        iam.create_service_linked_role(AWSServiceName="acm.amazonaws.com", CustomSuffix="x")
    role = iam.create_service_linked_role(AWSServiceName="acm.amazonaws.com")["Role"]
    assert role["RoleName"] == "AWSServiceRoleForCertificateManager"
    assert role["Arn"] == (f"arn:aws:iam::{account_id}:role/aws-service-role/acm.amazonaws.com/"
                           "AWSServiceRoleForCertificateManager")
    policy = "arn:aws:iam::aws:policy/aws-service-role/CertificateManagerServiceRolePolicy"
    assert iam.list_attached_role_policies(RoleName=role["RoleName"])["AttachedPolicies"] == [
        {"PolicyName": "CertificateManagerServiceRolePolicy", "PolicyArn": policy}]
    assert iam.get_policy(PolicyArn=policy)["Policy"]["AttachmentCount"] == 1
    assert iam.list_entities_for_policy(PolicyArn=policy)["PolicyRoles"][0]["RoleName"] == role["RoleName"]
    task = iam.delete_service_linked_role(RoleName=role["RoleName"])["DeletionTaskId"]
    assert iam.get_service_linked_role_deletion_status(DeletionTaskId=task)["Status"] == "SUCCEEDED"
    assert iam.get_policy(PolicyArn=policy)["Policy"]["AttachmentCount"] == 0


def test_service_linked_role_description_is_the_services_when_none_is_given(iam):
    """RDS describes its role itself (recorded from AWS: LocalStack's test_iam.snapshot.json,
    test_service_role_lifecycle[rds.amazonaws.com]); a caller's description wins."""
    role = iam.create_service_linked_role(AWSServiceName="rds.amazonaws.com")["Role"]
    try:
        assert role["Description"] == "Allows Amazon RDS to manage AWS resources on your behalf"
        assert iam.get_role(RoleName=role["RoleName"])["Role"]["Description"] == role["Description"]
    finally:
        iam.delete_service_linked_role(RoleName=role["RoleName"])
    role = iam.create_service_linked_role(AWSServiceName="acm.amazonaws.com", Description="mine")["Role"]
    try:
        assert role["Description"] == "mine"
    finally:
        iam.delete_service_linked_role(RoleName=role["RoleName"])
