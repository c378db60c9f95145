"""AssumeRoleWithSAML: an unsigned call carrying a base64 SAML Response from an IAM SAML provider.
The test is its own IdP: it signs its responses (XML-DSig, signxml) with the key whose certificate is
in the provider's metadata. Rampart checks what AWS checks: the signature, the provider, the Role
attribute pairing role and provider, status, validity window, audience, RoleSessionName, and the
role's trust policy with its SAML: condition keys."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from lxml import etree
from signxml import XMLSigner, methods

from support import aws_error, doc, make_client, unique

SAML_NS = "urn:oasis:names:tc:SAML:2.0:assertion"
EXC_C14N = "http://www.w3.org/2001/10/xml-exc-c14n#"


class Signer:
    """An IdP signing key and its self-signed certificate."""

    def __init__(self):
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "idp.example.com")])
        now = dt.datetime.now(dt.timezone.utc)
        self.cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
                     .public_key(self.key.public_key()).serial_number(x509.random_serial_number())
                     .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=365))
                     .sign(self.key, hashes.SHA256()))

    def metadata(self) -> str:
        der = base64.b64encode(self.cert.public_bytes(serialization.Encoding.DER)).decode()
        return METADATA.format(cert=der, pad="p" * 600)

    def sign(self, xml: str, whole_response: bool = False) -> str:
        """Sign the Response's Assertion (enveloped signature referencing its ID), as IdPs do, or
        the whole Response."""
        root = etree.fromstring(xml.encode())
        if whole_response:
            return etree.tostring(XMLSigner(method=methods.enveloped, c14n_algorithm=EXC_C14N).sign(
                root, key=self.key, cert=[self.cert], reference_uri=root.get("ID"))).decode()
        assertion = root.find(f"{{{SAML_NS}}}Assertion")
        signed = XMLSigner(method=methods.enveloped, c14n_algorithm=EXC_C14N).sign(
            assertion, key=self.key, cert=[self.cert], reference_uri=assertion.get("ID"))
        root.replace(assertion, signed)
        return etree.tostring(root).decode()


SIGNER = Signer()

METADATA = """<?xml version="1.0"?>
<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" xmlns:ds="http://www.w3.org/2000/09/xmldsig#"
    entityID="https://idp.example.com/saml">
  <md:IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">
    <md:KeyDescriptor use="signing">
      <ds:KeyInfo><ds:X509Data><ds:X509Certificate>{cert}</ds:X509Certificate></ds:X509Data></ds:KeyInfo>
    </md:KeyDescriptor>
    <md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect"
        Location="https://idp.example.com/sso/{pad}"/>
  </md:IDPSSODescriptor>
</md:EntityDescriptor>
"""

ISSUER = "https://idp.example.com/saml"
RECIPIENT = "https://signin.aws.amazon.com/saml"


def ts(delta: int) -> str:
    t = dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=delta)
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def assertion(provider_arn: str, role_arn: str, session_name: str | None = "alice", *, status="Success",
              not_after: int = 300, audience="urn:amazon:webservices", recipient=RECIPIENT,
              session_not_after: int | None = None, extra_attrs: str = "", signer: Signer | None = SIGNER,
              edit=None) -> str:
    session_attr = (
        f'<saml:Attribute Name="https://aws.amazon.com/SAML/Attributes/RoleSessionName">'
        f"<saml:AttributeValue>{session_name}</saml:AttributeValue></saml:Attribute>"
        if session_name is not None else ""
    )
    authn = f' SessionNotOnOrAfter="{ts(session_not_after)}"' if session_not_after is not None else ""
    xml = f"""<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion"
    ID="_r1" Version="2.0" IssueInstant="{ts(0)}" Destination="{recipient}">
  <saml:Issuer>{ISSUER}</saml:Issuer>
  <samlp:Status><samlp:StatusCode Value="urn:oasis:names:tc:SAML:2.0:status:{status}"/></samlp:Status>
  <saml:Assertion ID="_a1" Version="2.0" IssueInstant="{ts(0)}">
    <saml:Issuer>{ISSUER}</saml:Issuer>
    <saml:Subject>
      <saml:NameID Format="urn:oasis:names:tc:SAML:2.0:nameid-format:persistent">user-42</saml:NameID>
      <saml:SubjectConfirmation Method="urn:oasis:names:tc:SAML:2.0:cm:bearer">
        <saml:SubjectConfirmationData NotOnOrAfter="{ts(not_after)}" Recipient="{recipient}"/>
      </saml:SubjectConfirmation>
    </saml:Subject>
    <saml:Conditions NotBefore="{ts(-60)}" NotOnOrAfter="{ts(not_after)}">
      <saml:AudienceRestriction><saml:Audience>{audience}</saml:Audience></saml:AudienceRestriction>
    </saml:Conditions>
    <saml:AttributeStatement>
      <saml:Attribute Name="https://aws.amazon.com/SAML/Attributes/Role">
        <saml:AttributeValue>{provider_arn},{role_arn}</saml:AttributeValue>
      </saml:Attribute>
      {session_attr}
      {extra_attrs}
    </saml:AttributeStatement>
    <saml:AuthnStatement AuthnInstant="{ts(0)}"{authn}/>
  </saml:Assertion>
</samlp:Response>"""
    if signer is not None:
        xml = signer.sign(xml)
    if edit is not None:
        xml = edit(xml)
    return base64.b64encode(xml.encode()).decode()


def saml_trust(provider_arn: str, aud: str = RECIPIENT, actions=("sts:AssumeRoleWithSAML",)) -> dict:
    return {
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Principal": {"Federated": provider_arn},
            "Action": list(actions),
            "Condition": {"StringEquals": {"SAML:aud": aud}},
        }],
    }


@pytest.fixture
def provider(iam):
    return iam.create_saml_provider(Name=unique("idp"), SAMLMetadataDocument=SIGNER.metadata())["SAMLProviderArn"]


@pytest.fixture
def role(iam, provider):
    def _make(trust=None, **kwargs) -> str:
        return iam.create_role(RoleName=unique("saml-role"), AssumeRolePolicyDocument=doc(trust or saml_trust(provider)),
                               **kwargs)["Role"]["Arn"]
    return _make


def test_assume_role_with_saml(server, sts, provider, role, account_id):
    role_arn = role()
    out = sts.assume_role_with_saml(RoleArn=role_arn, PrincipalArn=provider,
                                    SAMLAssertion=assertion(provider, role_arn), DurationSeconds=900)
    role_name = role_arn.rsplit("/", 1)[1]
    assert out["AssumedRoleUser"]["Arn"] == f"arn:aws:sts::{account_id}:assumed-role/{role_name}/alice"
    assert out["AssumedRoleUser"]["AssumedRoleId"].startswith("AROA")
    assert out["AssumedRoleUser"]["AssumedRoleId"].endswith(":alice")
    assert out["Subject"] == "user-42"
    assert out["SubjectType"] == "persistent"
    assert out["Issuer"] == ISSUER
    assert out["Audience"] == RECIPIENT
    provider_name = provider.rsplit("/", 1)[1]
    expected = base64.b64encode(hashlib.sha1(f"{ISSUER}{account_id}/{provider_name}".encode()).digest()).decode()
    assert out["NameQualifier"] == expected
    c = out["Credentials"]
    left = (c["Expiration"] - dt.datetime.now(dt.timezone.utc)).total_seconds()
    assert 800 < left <= 900
    session = make_client("sts", server.endpoint, c["AccessKeyId"], c["SecretAccessKey"], c["SessionToken"])
    assert session.get_caller_identity()["Arn"] == out["AssumedRoleUser"]["Arn"]


def test_session_ends_with_the_assertions_session_not_on_or_after(sts, provider, role):
    role_arn = role()
    out = sts.assume_role_with_saml(RoleArn=role_arn, PrincipalArn=provider,
                                    SAMLAssertion=assertion(provider, role_arn, session_not_after=1200))
    left = (out["Credentials"]["Expiration"] - dt.datetime.now(dt.timezone.utc)).total_seconds()
    assert 1100 < left <= 1200


def test_saml_refusals(iam, sts, provider, role, account_id):
    role_arn = role()

    def call(saml, principal=provider, role_arn=role_arn, **kw):
        return sts.assume_role_with_saml(RoleArn=role_arn, PrincipalArn=principal, SAMLAssertion=saml, **kw)

    missing = f"arn:aws:iam::{account_id}:saml-provider/{unique('nope')}"
    with aws_error("InvalidIdentityToken", 400):
        call(assertion(missing, role_arn), principal=missing)
    with aws_error("InvalidIdentityToken", 400):
        call(base64.b64encode(b"<not-saml/>").decode())
    with aws_error("InvalidIdentityToken", 400):
        call("!!!not base64!!!")
    with aws_error("InvalidIdentityToken", 400):
        call(assertion(provider, role_arn, status="Requester"))
    with aws_error("InvalidIdentityToken", 400):
        call(assertion(provider, role_arn, session_name=None))
    with aws_error("InvalidIdentityToken", 400):
        call(assertion(provider, role_arn, audience="https://app.example.com"))
    with aws_error("ExpiredTokenException", 400):
        call(assertion(provider, role_arn, not_after=-600))
    # The Role attribute must pair the requested role with the provider.
    other = role()
    with aws_error("AccessDenied", 403):
        call(assertion(provider, other), role_arn=role_arn)
    # The trust policy decides: its SAML:aud condition, and the provider it names.
    strict = role(saml_trust(provider, aud="https://signin.aws.amazon.com/saml/other"))
    with aws_error("AccessDenied", 403):
        call(assertion(provider, strict), role_arn=strict)
    other_provider = iam.create_saml_provider(Name=unique("idp"), SAMLMetadataDocument=SIGNER.metadata())["SAMLProviderArn"]
    with aws_error("AccessDenied", 403):
        call(assertion(other_provider, role_arn), principal=other_provider)
    with aws_error("ValidationError", 400):
        call(assertion(provider, role_arn), DurationSeconds=7200)


def test_source_identity_attribute_needs_set_source_identity(sts, provider, role):
    attr = ('<saml:Attribute Name="https://aws.amazon.com/SAML/Attributes/SourceIdentity">'
            "<saml:AttributeValue>alice-src</saml:AttributeValue></saml:Attribute>")
    plain = role()
    with aws_error("AccessDenied", 403):
        sts.assume_role_with_saml(RoleArn=plain, PrincipalArn=provider,
                                  SAMLAssertion=assertion(provider, plain, extra_attrs=attr))
    allowed = role(saml_trust(provider, actions=("sts:AssumeRoleWithSAML", "sts:SetSourceIdentity")))
    out = sts.assume_role_with_saml(RoleArn=allowed, PrincipalArn=provider,
                                    SAMLAssertion=assertion(provider, allowed, extra_attrs=attr))
    assert out["SourceIdentity"] == "alice-src"


def test_the_signature_must_verify_with_the_providers_certificate(iam, sts, provider, role):
    role_arn = role()

    def call(saml, principal=provider):
        return sts.assume_role_with_saml(RoleArn=role_arn, PrincipalArn=principal, SAMLAssertion=saml)

    call(assertion(provider, role_arn))
    call(assertion(provider, role_arn, signer=None, edit=lambda x: SIGNER.sign(x, whole_response=True)))
    # Unsigned (AWS rejects unsigned SAML responses), signed by another key, or altered after signing.
    with aws_error("InvalidIdentityToken", 400, match="not signed"):
        call(assertion(provider, role_arn, signer=None))
    with aws_error("InvalidIdentityToken", 400, match="does not verify"):
        call(assertion(provider, role_arn, signer=Signer()))
    with aws_error("InvalidIdentityToken", 400, match="does not verify"):
        call(assertion(provider, role_arn, edit=lambda x: x.replace(">alice<", ">root<")))
    # Signature wrapping: the signed assertion moved aside, a forged one in its place.
    def wrap(xml: str, forged_id: str | None = None) -> str:
        root = etree.fromstring(xml.encode())
        signed = root.find(f"{{{SAML_NS}}}Assertion")
        forged = etree.fromstring(etree.tostring(signed))
        forged.remove(forged.find("{http://www.w3.org/2000/09/xmldsig#}Signature"))
        forged.find(f".//{{{SAML_NS}}}NameID").text = "admin"
        if forged_id:
            forged.set("ID", forged_id)
        ext = etree.SubElement(root, "{urn:oasis:names:tc:SAML:2.0:protocol}Extensions")
        root.replace(signed, forged)
        ext.append(signed)
        return etree.tostring(root).decode()
    with aws_error("InvalidIdentityToken", 400, match="duplicate ID|does not verify"):
        call(assertion(provider, role_arn, edit=wrap))
    with aws_error("InvalidIdentityToken", 400, match="covers neither"):
        call(assertion(provider, role_arn, edit=lambda x: wrap(x, forged_id="_forged")))
    # A provider whose metadata has no signing certificate cannot vouch for anything.
    bare = iam.create_saml_provider(
        Name=unique("idp"),
        SAMLMetadataDocument=METADATA.replace('<md:KeyDescriptor use="signing">', "<!--").replace(
            "</md:KeyDescriptor>", "-->").format(cert="", pad="p" * 600),
    )["SAMLProviderArn"]
    bare_role = role(saml_trust(bare))
    with aws_error("InvalidIdentityToken", 400, match="no signing certificate"):
        sts.assume_role_with_saml(RoleArn=bare_role, PrincipalArn=bare, SAMLAssertion=assertion(bare, bare_role))
