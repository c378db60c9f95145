"""KMS shared secrets through boto3: KEY_AGREEMENT keys and DeriveSharedSecret (ECDH, checked
against the client side computed with `cryptography`), ML-KEM keys and Encapsulate /
Decapsulate, and GetKeyLastUsage."""

from __future__ import annotations

import base64
import json

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from support import allow, aws_error, policy, random_key_id, random_secret

CURVES = {"ECC_NIST_P256": ec.SECP256R1(), "ECC_NIST_P384": ec.SECP384R1(), "ECC_NIST_P521": ec.SECP521R1()}


@pytest.fixture(scope="session")
def kms(server):
    return server.client("kms")


@pytest.fixture(scope="session")
def kms_raw(server):
    return server.client("kms", parameter_validation=False)


@pytest.fixture(scope="session")
def ct(server):
    return server.client("cloudtrail")


def spki(public_key) -> bytes:
    return public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


@pytest.mark.parametrize("spec", sorted(CURVES))
def test_derive_shared_secret_matches_client_ecdh(kms, spec):
    md = kms.create_key(KeySpec=spec, KeyUsage="KEY_AGREEMENT")["KeyMetadata"]
    assert md["KeyUsage"] == "KEY_AGREEMENT" and md["KeySpec"] == spec
    assert md["KeyAgreementAlgorithms"] == ["ECDH"]
    assert "SigningAlgorithms" not in md and "EncryptionAlgorithms" not in md
    assert kms.describe_key(KeyId=md["KeyId"])["KeyMetadata"]["KeyAgreementAlgorithms"] == ["ECDH"]

    pub = kms.get_public_key(KeyId=md["KeyId"])
    assert pub["KeyAgreementAlgorithms"] == ["ECDH"] and pub["KeyUsage"] == "KEY_AGREEMENT"
    assert "SigningAlgorithms" not in pub
    kms_public = serialization.load_der_public_key(pub["PublicKey"])

    peer = ec.generate_private_key(CURVES[spec])
    out = kms.derive_shared_secret(KeyId=md["KeyId"], KeyAgreementAlgorithm="ECDH",
                                   PublicKey=spki(peer.public_key()))
    assert out["KeyId"] == md["Arn"] and out["KeyAgreementAlgorithm"] == "ECDH" and out["KeyOrigin"] == "AWS_KMS"
    expected = peer.exchange(ec.ECDH(), kms_public)
    assert out["SharedSecret"] == expected
    # Another peer, another secret; the same peer, the same secret.
    other = ec.generate_private_key(CURVES[spec])
    assert kms.derive_shared_secret(KeyId=md["KeyId"], KeyAgreementAlgorithm="ECDH",
                                    PublicKey=spki(other.public_key()))["SharedSecret"] != expected
    assert kms.derive_shared_secret(KeyId=md["Arn"], KeyAgreementAlgorithm="ECDH",
                                    PublicKey=spki(peer.public_key()))["SharedSecret"] == expected


def test_two_kms_keys_agree(kms):
    a = kms.create_key(KeySpec="ECC_NIST_P384", KeyUsage="KEY_AGREEMENT")["KeyMetadata"]["KeyId"]
    b = kms.create_key(KeySpec="ECC_NIST_P384", KeyUsage="KEY_AGREEMENT")["KeyMetadata"]["KeyId"]
    pa, pb = (kms.get_public_key(KeyId=k)["PublicKey"] for k in (a, b))
    sa = kms.derive_shared_secret(KeyId=a, KeyAgreementAlgorithm="ECDH", PublicKey=pb)["SharedSecret"]
    sb = kms.derive_shared_secret(KeyId=b, KeyAgreementAlgorithm="ECDH", PublicKey=pa)["SharedSecret"]
    assert sa == sb and len(sa) == 48


def test_key_agreement_errors(kms, kms_raw):
    agree = kms.create_key(KeySpec="ECC_NIST_P256", KeyUsage="KEY_AGREEMENT")["KeyMetadata"]
    sign = kms.create_key(KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")["KeyMetadata"]
    peer = spki(ec.generate_private_key(ec.SECP256R1()).public_key())
    # secp256k1 and RSA keys cannot agree; symmetric keys take no KEY_AGREEMENT usage.
    for spec in ("ECC_SECG_P256K1", "RSA_2048", "SYMMETRIC_DEFAULT", "HMAC_256"):
        with aws_error("ValidationException", 400, message=f"KeyUsage KEY_AGREEMENT is not compatible with KeySpec {spec}"):
            kms.create_key(KeySpec=spec, KeyUsage="KEY_AGREEMENT")
    with aws_error("InvalidKeyUsageException", 400,
                   message=f"{sign['Arn']} key usage is SIGN_VERIFY which is not valid for DeriveSharedSecret."):
        kms.derive_shared_secret(KeyId=sign["KeyId"], KeyAgreementAlgorithm="ECDH", PublicKey=peer)
    # A key agreement key neither signs nor encrypts.
    with aws_error("InvalidKeyUsageException", 400):
        kms.sign(KeyId=agree["KeyId"], Message=b"m", SigningAlgorithm="ECDSA_SHA_256")
    # The peer's key must be on the key's curve, as SPKI DER.
    other_curve = spki(ec.generate_private_key(ec.SECP384R1()).public_key())
    for bad in (other_curve, b"\x30\x03not-der", peer[:-3]):
        with aws_error("ValidationException", 400):
            kms.derive_shared_secret(KeyId=agree["KeyId"], KeyAgreementAlgorithm="ECDH", PublicKey=bad)
    with aws_error("ValidationException", 400,
                   message="1 validation error detected: Value 'X25519' at 'keyAgreementAlgorithm' failed to satisfy "
                           "constraint: Member must satisfy enum value set: [ECDH]"):
        kms_raw.derive_shared_secret(KeyId=agree["KeyId"], KeyAgreementAlgorithm="X25519", PublicKey=peer)
    with aws_error("DryRunOperationException", 400):
        kms.derive_shared_secret(KeyId=agree["KeyId"], KeyAgreementAlgorithm="ECDH", PublicKey=peer, DryRun=True)
    with aws_error("UnsupportedOperationException", 400):
        kms.derive_shared_secret(KeyId=agree["KeyId"], KeyAgreementAlgorithm="ECDH", PublicKey=peer,
                                 Recipient={"KeyEncryptionAlgorithm": "RSAES_OAEP_SHA_256",
                                            "AttestationDocument": b"not an attestation document"})
    kms.disable_key(KeyId=agree["KeyId"])
    with aws_error("DisabledException", 400, message=f"{agree['Arn']} is disabled."):
        kms.derive_shared_secret(KeyId=agree["KeyId"], KeyAgreementAlgorithm="ECDH", PublicKey=peer)


def test_derive_shared_secret_authorization(kms, account_id, make_user):
    key = kms.create_key(KeySpec="ECC_NIST_P256", KeyUsage="KEY_AGREEMENT")["KeyMetadata"]
    peer = spki(ec.generate_private_key(ec.SECP256R1()).public_key())
    ok = make_user(inline={"p": policy(allow("kms:DeriveSharedSecret", key["Arn"],
                                             Condition={"StringEquals": {"kms:KeyAgreementAlgorithm": "ECDH"}}))})
    assert len(ok.client("kms").derive_shared_secret(KeyId=key["KeyId"], KeyAgreementAlgorithm="ECDH",
                                                     PublicKey=peer)["SharedSecret"]) == 32
    other = make_user(inline={"p": policy(allow("kms:Sign", key["Arn"]))})
    with aws_error("AccessDeniedException", 400, match="kms:DeriveSharedSecret"):
        other.client("kms").derive_shared_secret(KeyId=key["KeyId"], KeyAgreementAlgorithm="ECDH", PublicKey=peer)


def test_shared_secret_never_in_the_trail(kms, ct):
    key = kms.create_key(KeySpec="ECC_NIST_P256", KeyUsage="KEY_AGREEMENT")["KeyMetadata"]
    peer = spki(ec.generate_private_key(ec.SECP256R1()).public_key())
    secret = kms.derive_shared_secret(KeyId=key["KeyId"], KeyAgreementAlgorithm="ECDH", PublicKey=peer)["SharedSecret"]
    ml = kms.create_key(KeySpec="ML_KEM_768", KeyUsage="ENCAPSULATE_DECAPSULATE")["KeyMetadata"]
    enc = kms.encapsulate(KeyId=ml["KeyId"], EncapsulationAlgorithm="ML_KEM")
    kms.decapsulate(KeyId=ml["KeyId"], EncapsulationAlgorithm="ML_KEM",
                    SharedSecretCiphertextBlob=enc["SharedSecretCiphertextBlob"])
    for name, key_arn, leaked in (("DeriveSharedSecret", key["Arn"], secret),
                                  ("Encapsulate", ml["Arn"], enc["SharedSecret"]),
                                  ("Decapsulate", ml["Arn"], enc["SharedSecret"])):
        events = ct.lookup_events(LookupAttributes=[{"AttributeKey": "EventName", "AttributeValue": name}])["Events"]
        records = [json.loads(e["CloudTrailEvent"]) for e in events]
        mine = [r for r in records if key_arn in json.dumps(r)]
        assert mine, name
        text = json.dumps(mine)
        assert base64.b64encode(leaked).decode() not in text and "sharedSecret\"" not in text, name
        assert mine[0]["requestParameters"]["keyId"] == key_arn.split("/")[-1]


# -- ML-KEM ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("spec,ct_len", [("ML_KEM_512", 768), ("ML_KEM_768", 1088), ("ML_KEM_1024", 1568)])
def test_encapsulate_decapsulate(kms, spec, ct_len):
    md = kms.create_key(KeySpec=spec, KeyUsage="ENCAPSULATE_DECAPSULATE")["KeyMetadata"]
    assert md["KeySpec"] == spec and md["KeyUsage"] == "ENCAPSULATE_DECAPSULATE"
    assert md["EncapsulationAlgorithms"] == ["ML_KEM"]
    pub = kms.get_public_key(KeyId=md["KeyId"])
    assert pub["EncapsulationAlgorithms"] == ["ML_KEM"] and pub["KeySpec"] == spec
    # SPKI DER with the FIPS 203 OID 2.16.840.1.101.3.4.4.{1,2,3}.
    oid = {"ML_KEM_512": b"\x01", "ML_KEM_768": b"\x02", "ML_KEM_1024": b"\x03"}[spec]
    assert b"\x06\x09\x60\x86\x48\x01\x65\x03\x04\x04" + oid in pub["PublicKey"][:24]

    enc = kms.encapsulate(KeyId=md["KeyId"], EncapsulationAlgorithm="ML_KEM")
    assert enc["KeyId"] == md["Arn"] and enc["EncapsulationAlgorithm"] == "ML_KEM"
    assert len(enc["SharedSecret"]) == 32 and len(enc["SharedSecretCiphertextBlob"]) == ct_len
    dec = kms.decapsulate(KeyId=md["KeyId"], EncapsulationAlgorithm="ML_KEM",
                          SharedSecretCiphertextBlob=enc["SharedSecretCiphertextBlob"])
    assert dec["SharedSecret"] == enc["SharedSecret"] and dec["KeyId"] == md["Arn"]
    # Implicit rejection: an altered ciphertext decapsulates to another 32-byte value.
    altered = bytearray(enc["SharedSecretCiphertextBlob"])
    altered[5] ^= 1
    other = kms.decapsulate(KeyId=md["KeyId"], EncapsulationAlgorithm="ML_KEM",
                            SharedSecretCiphertextBlob=bytes(altered))["SharedSecret"]
    assert len(other) == 32 and other != enc["SharedSecret"]
    # A ciphertext of the wrong length is InvalidCiphertextException.
    with aws_error("InvalidCiphertextException", 400):
        kms.decapsulate(KeyId=md["KeyId"], EncapsulationAlgorithm="ML_KEM",
                        SharedSecretCiphertextBlob=enc["SharedSecretCiphertextBlob"][:-1])


def test_ml_kem_errors(kms, kms_raw):
    sym = kms.create_key()["KeyMetadata"]
    with aws_error("InvalidKeyUsageException", 400,
                   message=f"{sym['Arn']} key usage is ENCRYPT_DECRYPT which is not valid for Encapsulate."):
        kms.encapsulate(KeyId=sym["KeyId"], EncapsulationAlgorithm="ML_KEM")
    with aws_error("ValidationException", 400,
                   message="KeyUsage SIGN_VERIFY is not compatible with KeySpec ML_KEM_768"):
        kms.create_key(KeySpec="ML_KEM_768", KeyUsage="SIGN_VERIFY")
    with aws_error("ValidationException", 400):
        kms_raw.encapsulate(KeyId=sym["KeyId"], EncapsulationAlgorithm="KYBER")
    ml = kms.create_key(KeySpec="ML_KEM_512", KeyUsage="ENCAPSULATE_DECAPSULATE")["KeyMetadata"]
    with aws_error("InvalidKeyUsageException", 400):
        kms.encrypt(KeyId=ml["KeyId"], Plaintext=b"x")
    with aws_error("DryRunOperationException", 400):
        kms.encapsulate(KeyId=ml["KeyId"], EncapsulationAlgorithm="ML_KEM", DryRun=True)


# -- GetKeyLastUsage -------------------------------------------------------------------------------
def test_get_key_last_usage(kms, server):
    md = kms.create_key()["KeyMetadata"]
    fresh = kms.get_key_last_usage(KeyId=md["KeyId"])
    assert fresh["KeyId"] == md["Arn"] and fresh["KeyCreationDate"] == md["CreationDate"]
    assert fresh["KeyLastUsage"] == {}
    assert fresh["TrackingStartDate"] <= fresh["KeyCreationDate"]

    resp = kms.encrypt(KeyId=md["KeyId"], Plaintext=b"x")
    used = kms.get_key_last_usage(KeyId=md["KeyId"])["KeyLastUsage"]
    assert used["Operation"] == "Encrypt"
    assert used["KmsRequestId"] == resp["ResponseMetadata"]["RequestId"]
    assert used["Timestamp"] >= md["CreationDate"]

    dec = kms.decrypt(CiphertextBlob=resp["CiphertextBlob"])
    used = kms.get_key_last_usage(KeyId=md["Arn"])["KeyLastUsage"]
    assert used["Operation"] == "Decrypt" and used["KmsRequestId"] == dec["ResponseMetadata"]["RequestId"]

    # A failed call is not a use; management calls are not uses.
    with aws_error("InvalidCiphertextException", 400):
        kms.decrypt(CiphertextBlob=resp["CiphertextBlob"], EncryptionContext={"a": "b"})
    kms.describe_key(KeyId=md["KeyId"])
    assert kms.get_key_last_usage(KeyId=md["KeyId"])["KeyLastUsage"]["Operation"] == "Decrypt"

    # ReEncrypt records both keys.
    dst = kms.create_key()["KeyMetadata"]
    kms.re_encrypt(CiphertextBlob=resp["CiphertextBlob"], DestinationKeyId=dst["KeyId"])
    assert kms.get_key_last_usage(KeyId=md["KeyId"])["KeyLastUsage"]["Operation"] == "ReEncrypt"
    assert kms.get_key_last_usage(KeyId=dst["KeyId"])["KeyLastUsage"]["Operation"] == "ReEncrypt"

    with aws_error("NotFoundException", 400):
        kms.get_key_last_usage(KeyId="00000000-0000-0000-0000-000000000000")


def test_get_key_last_usage_survives_restart(spawn_server):
    srv = spawn_server(access_key_id=random_key_id(), secret_access_key=random_secret())
    kms = srv.client("kms")
    key = kms.create_key(KeySpec="HMAC_256", KeyUsage="GENERATE_VERIFY_MAC")["KeyMetadata"]["KeyId"]
    rid = kms.generate_mac(KeyId=key, Message=b"m", MacAlgorithm="HMAC_SHA_256")["ResponseMetadata"]["RequestId"]
    srv.restart()
    used = srv.client("kms").get_key_last_usage(KeyId=key)["KeyLastUsage"]
    assert used["Operation"] == "GenerateMac" and used["KmsRequestId"] == rid


def test_get_key_last_usage_needs_permission(kms, make_user):
    key = kms.create_key()["KeyMetadata"]
    user = make_user(inline={"p": policy(allow("kms:DescribeKey", key["Arn"]))})
    with aws_error("AccessDeniedException", 400, match="kms:GetKeyLastUsage"):
        user.client("kms").get_key_last_usage(KeyId=key["KeyId"])
