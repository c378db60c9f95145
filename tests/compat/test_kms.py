"""KMS through boto3: keys, aliases, cryptography, lifecycle, rotation, tags, policies."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from support import aws_error, unique


@pytest.fixture(scope="session")
def kms(server):
    return server.client("kms")


@pytest.fixture(scope="session")
def kms_raw(server):
    """Skips botocore's client-side validation so the server's own is reached."""
    return server.client("kms", parameter_validation=False)


@pytest.fixture
def sym_key(kms):
    return kms.create_key(Description="test key")["KeyMetadata"]


@pytest.fixture(scope="session")
def rsa_key(kms):
    return kms.create_key(KeySpec="RSA_2048", KeyUsage="ENCRYPT_DECRYPT")["KeyMetadata"]


@pytest.fixture(scope="session")
def rsa_sign_key(kms):
    return kms.create_key(KeySpec="RSA_2048", KeyUsage="SIGN_VERIFY")["KeyMetadata"]


# -- keys ------------------------------------------------------------------------------------------
def test_create_describe_list(kms, account_id, sym_key):
    md = sym_key
    assert md["AWSAccountId"] == account_id
    assert md["Arn"] == f"arn:aws:kms:us-east-1:{account_id}:key/{md['KeyId']}"
    assert md["KeyState"] == "Enabled" and md["Enabled"] is True
    assert md["KeySpec"] == "SYMMETRIC_DEFAULT" and md["KeyUsage"] == "ENCRYPT_DECRYPT"
    assert md["EncryptionAlgorithms"] == ["SYMMETRIC_DEFAULT"]
    assert md["KeyManager"] == "CUSTOMER" and md["Origin"] == "AWS_KMS"
    assert md["Description"] == "test key"
    for ref in (md["KeyId"], md["Arn"]):
        assert kms.describe_key(KeyId=ref)["KeyMetadata"]["KeyId"] == md["KeyId"]
    keys = []
    for page in kms.get_paginator("list_keys").paginate(PaginationConfig={"PageSize": 2}):
        keys += page["Keys"]
    assert {"KeyId": md["KeyId"], "KeyArn": md["Arn"]} in keys


@pytest.mark.parametrize(
    "spec,usage,field,algs",
    [
        ("ECC_NIST_P256", "SIGN_VERIFY", "SigningAlgorithms", ["ECDSA_SHA_256"]),
        ("ECC_NIST_P384", "SIGN_VERIFY", "SigningAlgorithms", ["ECDSA_SHA_384"]),
        ("ECC_NIST_P521", "SIGN_VERIFY", "SigningAlgorithms", ["ECDSA_SHA_512"]),
        ("ECC_SECG_P256K1", "SIGN_VERIFY", "SigningAlgorithms", ["ECDSA_SHA_256"]),
        ("HMAC_224", "GENERATE_VERIFY_MAC", "MacAlgorithms", ["HMAC_SHA_224"]),
        ("HMAC_512", "GENERATE_VERIFY_MAC", "MacAlgorithms", ["HMAC_SHA_512"]),
    ],
)
def test_key_specs(kms, spec, usage, field, algs):
    md = kms.create_key(KeySpec=spec, KeyUsage=usage)["KeyMetadata"]
    assert md["KeySpec"] == spec and md["CustomerMasterKeySpec"] == spec and md["KeyUsage"] == usage
    assert md[field] == algs


def test_create_key_errors(kms, kms_raw):
    with aws_error("ValidationException", 400, match="not compatible"):
        kms.create_key(KeySpec="ECC_NIST_P256", KeyUsage="ENCRYPT_DECRYPT")
    with aws_error("ValidationException", 400):
        kms_raw.create_key(KeySpec="AES_9000")
    with aws_error("MalformedPolicyDocumentException", 400):
        kms.create_key(Policy="{not json")
    with aws_error("TagException", 400):
        kms.create_key(Tags=[{"TagKey": "aws:x", "TagValue": "v"}])
    with aws_error("MalformedPolicyDocumentException", 400,
                   message="The new key policy will not allow you to update the key policy in the future."):
        kms.create_key(Policy=json.dumps({"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::111122223333:root"}, "Action": "kms:*", "Resource": "*"}]}))


def test_unknown_keys(kms, account_id):
    missing = "11111111-2222-3333-4444-555555555555"
    with aws_error("NotFoundException", 400, message=f"Key 'arn:aws:kms:us-east-1:{account_id}:key/{missing}' does not exist"):
        kms.describe_key(KeyId=missing)
    with aws_error("NotFoundException", 400, message=f"Alias arn:aws:kms:us-east-1:{account_id}:alias/nope is not found."):
        kms.describe_key(KeyId="alias/nope")
    with aws_error("NotFoundException", 400):
        kms.encrypt(KeyId="not-a-key", Plaintext=b"x")


def test_update_description_enable_disable(kms, sym_key):
    kid = sym_key["KeyId"]
    kms.update_key_description(KeyId=kid, Description="new")
    assert kms.describe_key(KeyId=kid)["KeyMetadata"]["Description"] == "new"
    kms.disable_key(KeyId=kid)
    md = kms.describe_key(KeyId=kid)["KeyMetadata"]
    assert md["KeyState"] == "Disabled" and md["Enabled"] is False
    with aws_error("DisabledException", 400, message=f"{sym_key['Arn']} is disabled."):
        kms.encrypt(KeyId=kid, Plaintext=b"x")
    kms.enable_key(KeyId=kid)
    kms.encrypt(KeyId=kid, Plaintext=b"x")


def test_schedule_and_cancel_deletion(kms, sym_key):
    kid, arn = sym_key["KeyId"], sym_key["Arn"]
    with aws_error("ValidationException", 400):
        kms.schedule_key_deletion(KeyId=kid, PendingWindowInDays=6)
    with aws_error("ValidationException", 400):
        kms.schedule_key_deletion(KeyId=kid, PendingWindowInDays=31)
    blob = kms.encrypt(KeyId=kid, Plaintext=b"keep")["CiphertextBlob"]
    out = kms.schedule_key_deletion(KeyId=kid, PendingWindowInDays=7)
    assert out["KeyId"] == arn and out["KeyState"] == "PendingDeletion" and out["PendingWindowInDays"] == 7
    md = kms.describe_key(KeyId=kid)["KeyMetadata"]
    assert md["KeyState"] == "PendingDeletion" and "DeletionDate" in md and md["PendingDeletionWindowInDays"] == 7
    pending = f"{arn} is pending deletion."
    with aws_error("KMSInvalidStateException", 400, message=pending):
        kms.decrypt(CiphertextBlob=blob)
    with aws_error("KMSInvalidStateException", 400, message=pending):
        kms.enable_key(KeyId=kid)
    with aws_error("KMSInvalidStateException", 400, message=pending):
        kms.schedule_key_deletion(KeyId=kid)
    assert kms.cancel_key_deletion(KeyId=kid)["KeyId"] == arn
    assert kms.describe_key(KeyId=kid)["KeyMetadata"]["KeyState"] == "Disabled"
    with aws_error("KMSInvalidStateException", 400):
        kms.cancel_key_deletion(KeyId=kid)
    kms.enable_key(KeyId=kid)
    assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"keep"


# -- aliases ---------------------------------------------------------------------------------------
def test_aliases(kms, account_id, sym_key):
    other = kms.create_key()["KeyMetadata"]
    name = f"alias/{unique('a')}"
    kms.create_alias(AliasName=name, TargetKeyId=sym_key["KeyId"])
    with aws_error("AlreadyExistsException", 400):
        kms.create_alias(AliasName=name, TargetKeyId=sym_key["KeyId"])
    assert kms.describe_key(KeyId=name)["KeyMetadata"]["KeyId"] == sym_key["KeyId"]
    alias_arn = f"arn:aws:kms:us-east-1:{account_id}:{name}"
    assert kms.describe_key(KeyId=alias_arn)["KeyMetadata"]["KeyId"] == sym_key["KeyId"]
    listed = kms.list_aliases(KeyId=sym_key["KeyId"])["Aliases"]
    assert [a["AliasName"] for a in listed] == [name]
    assert listed[0]["AliasArn"] == alias_arn and listed[0]["TargetKeyId"] == sym_key["KeyId"]
    blob = kms.encrypt(KeyId=name, Plaintext=b"via alias")["CiphertextBlob"]
    kms.update_alias(AliasName=name, TargetKeyId=other["KeyId"])
    assert kms.describe_key(KeyId=name)["KeyMetadata"]["KeyId"] == other["KeyId"]
    assert kms.decrypt(CiphertextBlob=blob)["KeyId"] == sym_key["Arn"]
    all_names = []
    for page in kms.get_paginator("list_aliases").paginate(PaginationConfig={"PageSize": 1}):
        all_names += [a["AliasName"] for a in page["Aliases"]]
    assert name in all_names
    kms.delete_alias(AliasName=name)
    with aws_error("NotFoundException", 400):
        kms.delete_alias(AliasName=name)
    with aws_error("NotFoundException", 400):
        kms.update_alias(AliasName=name, TargetKeyId=other["KeyId"])
    # AWS's answers: a reserved prefix is NotAuthorizedException (no message), a name without
    # alias/ AWS's prefix message (as recorded from AWS), an alias as target "Aliases must refer to
    # keys. Not aliases".
    with aws_error("NotAuthorizedException", 400):
        kms.create_alias(AliasName="alias/aws/mine", TargetKeyId=other["KeyId"])
    with aws_error("ValidationException", 400, 'Alias must start with the prefix "alias/". Please see '
                   "https://docs.aws.amazon.com/kms/latest/developerguide/kms-alias.html"):
        kms.create_alias(AliasName="noprefix", TargetKeyId=other["KeyId"])
    with aws_error("ValidationException", 400, "Aliases must refer to keys. Not aliases"):
        kms.create_alias(AliasName=f"alias/{unique('c')}", TargetKeyId=alias_arn)
    # Operations that take a key ID or key ARN only answer AWS's "Invalid keyId" for an alias.
    with aws_error("NotFoundException", 400, f"Invalid keyId '{alias_arn}'"):
        kms.get_key_policy(KeyId=alias_arn, PolicyName="default")
    with aws_error("NotFoundException", 400):
        kms.create_alias(AliasName=f"alias/{unique('b')}", TargetKeyId="11111111-2222-3333-4444-555555555555")


# -- symmetric cryptography ------------------------------------------------------------------------
def test_encrypt_decrypt_context(kms, sym_key):
    ctx = {"purpose": "test", "tenant": "a"}
    out = kms.encrypt(KeyId=sym_key["KeyId"], Plaintext=b"hello", EncryptionContext=ctx)
    assert out["KeyId"] == sym_key["Arn"] and out["EncryptionAlgorithm"] == "SYMMETRIC_DEFAULT"
    blob = out["CiphertextBlob"]
    assert b"hello" not in blob
    dec = kms.decrypt(CiphertextBlob=blob, EncryptionContext=ctx)
    assert dec["Plaintext"] == b"hello" and dec["KeyId"] == sym_key["Arn"]
    assert dec["EncryptionAlgorithm"] == "SYMMETRIC_DEFAULT"
    assert kms.decrypt(CiphertextBlob=blob, EncryptionContext=ctx, KeyId=sym_key["Arn"])["Plaintext"] == b"hello"
    for wrong in ({}, {"purpose": "test"}, {"purpose": "test", "tenant": "b"}, {**ctx, "extra": "1"}):
        with aws_error("InvalidCiphertextException", 400):
            kms.decrypt(CiphertextBlob=blob, EncryptionContext=wrong)
    other = kms.create_key()["KeyMetadata"]
    with aws_error("IncorrectKeyException", 400):
        kms.decrypt(CiphertextBlob=blob, EncryptionContext=ctx, KeyId=other["KeyId"])


def test_tampered_ciphertext(kms, sym_key):
    blob = bytearray(kms.encrypt(KeyId=sym_key["KeyId"], Plaintext=b"secret")["CiphertextBlob"])
    for i in (0, 5, 20, len(blob) // 2, len(blob) - 1):
        t = bytearray(blob)
        t[i] ^= 0x01
        with aws_error("InvalidCiphertextException", 400):
            kms.decrypt(CiphertextBlob=bytes(t))
    with aws_error("InvalidCiphertextException", 400):
        kms.decrypt(CiphertextBlob=bytes(blob[:-1]))
    with aws_error("InvalidCiphertextException", 400):
        kms.decrypt(CiphertextBlob=b"garbage-garbage-garbage-garbage-garbage")


def test_encrypt_limits(kms, kms_raw, sym_key):
    kms.encrypt(KeyId=sym_key["KeyId"], Plaintext=b"x" * 4096)
    with aws_error("ValidationException", 400):
        kms_raw.encrypt(KeyId=sym_key["KeyId"], Plaintext=b"x" * 4097)
    with aws_error("ValidationException", 400):
        kms_raw.encrypt(KeyId=sym_key["KeyId"])


def test_generate_data_key(kms, kms_raw, sym_key):
    ctx = {"k": "v"}
    out = kms.generate_data_key(KeyId=sym_key["KeyId"], KeySpec="AES_256", EncryptionContext=ctx)
    assert len(out["Plaintext"]) == 32 and out["KeyId"] == sym_key["Arn"]
    assert kms.decrypt(CiphertextBlob=out["CiphertextBlob"], EncryptionContext=ctx)["Plaintext"] == out["Plaintext"]
    assert len(kms.generate_data_key(KeyId=sym_key["KeyId"], KeySpec="AES_128")["Plaintext"]) == 16
    assert len(kms.generate_data_key(KeyId=sym_key["KeyId"], NumberOfBytes=7)["Plaintext"]) == 7
    w = kms.generate_data_key_without_plaintext(KeyId=sym_key["KeyId"], KeySpec="AES_256")
    assert "Plaintext" not in w
    assert len(kms.decrypt(CiphertextBlob=w["CiphertextBlob"])["Plaintext"]) == 32
    with aws_error("ValidationException", 400):
        kms_raw.generate_data_key(KeyId=sym_key["KeyId"])
    with aws_error("ValidationException", 400):
        kms_raw.generate_data_key(KeyId=sym_key["KeyId"], NumberOfBytes=2000)


def test_generate_data_key_pair(kms, sym_key):
    out = kms.generate_data_key_pair(KeyId=sym_key["KeyId"], KeyPairSpec="ECC_NIST_P256", EncryptionContext={"a": "b"})
    assert out["KeyPairSpec"] == "ECC_NIST_P256" and out["KeyId"] == sym_key["Arn"]
    private = serialization.load_der_private_key(out["PrivateKeyPlaintext"], None)
    public = serialization.load_der_public_key(out["PublicKey"])
    assert private.public_key().public_numbers() == public.public_numbers()
    dec = kms.decrypt(CiphertextBlob=out["PrivateKeyCiphertextBlob"], EncryptionContext={"a": "b"})
    assert dec["Plaintext"] == out["PrivateKeyPlaintext"]
    w = kms.generate_data_key_pair_without_plaintext(KeyId=sym_key["KeyId"], KeyPairSpec="ECC_SECG_P256K1")
    assert "PrivateKeyPlaintext" not in w
    serialization.load_der_private_key(kms.decrypt(CiphertextBlob=w["PrivateKeyCiphertextBlob"])["Plaintext"], None)


def test_reencrypt(kms, sym_key):
    dst = kms.create_key()["KeyMetadata"]
    blob = kms.encrypt(KeyId=sym_key["KeyId"], Plaintext=b"move me", EncryptionContext={"a": "1"})["CiphertextBlob"]
    out = kms.re_encrypt(CiphertextBlob=blob, SourceEncryptionContext={"a": "1"}, DestinationKeyId=dst["KeyId"],
                         DestinationEncryptionContext={"b": "2"})
    assert out["SourceKeyId"] == sym_key["Arn"] and out["KeyId"] == dst["Arn"]
    assert kms.decrypt(CiphertextBlob=out["CiphertextBlob"], EncryptionContext={"b": "2"})["Plaintext"] == b"move me"
    with aws_error("InvalidCiphertextException", 400):
        kms.re_encrypt(CiphertextBlob=blob, DestinationKeyId=dst["KeyId"])


def test_generate_random(kms, kms_raw):
    a = kms.generate_random(NumberOfBytes=64)["Plaintext"]
    b = kms.generate_random(NumberOfBytes=64)["Plaintext"]
    assert len(a) == 64 and a != b
    with aws_error("ValidationException", 400):
        kms_raw.generate_random(NumberOfBytes=0)
    with aws_error("ValidationException", 400):
        kms_raw.generate_random(NumberOfBytes=1025)


# -- asymmetric and HMAC ---------------------------------------------------------------------------
def test_rsa_encryption(kms, rsa_key):
    pub = kms.get_public_key(KeyId=rsa_key["KeyId"])
    assert pub["KeySpec"] == "RSA_2048" and pub["EncryptionAlgorithms"] == ["RSAES_OAEP_SHA_1", "RSAES_OAEP_SHA_256"]
    public = serialization.load_der_public_key(pub["PublicKey"])
    assert isinstance(public, rsa.RSAPublicKey) and public.key_size == 2048
    for alg, h in (("RSAES_OAEP_SHA_1", hashes.SHA1()), ("RSAES_OAEP_SHA_256", hashes.SHA256())):
        # Encrypted locally with the public key: KMS decrypts it.
        ct = public.encrypt(b"offline", padding.OAEP(mgf=padding.MGF1(h), algorithm=h, label=None))
        assert kms.decrypt(CiphertextBlob=ct, KeyId=rsa_key["KeyId"], EncryptionAlgorithm=alg)["Plaintext"] == b"offline"
        ct = kms.encrypt(KeyId=rsa_key["KeyId"], Plaintext=b"online", EncryptionAlgorithm=alg)["CiphertextBlob"]
        assert kms.decrypt(CiphertextBlob=ct, KeyId=rsa_key["KeyId"], EncryptionAlgorithm=alg)["Plaintext"] == b"online"
    with aws_error("InvalidKeyUsageException", 400):
        kms.encrypt(KeyId=rsa_key["KeyId"], Plaintext=b"x")
    with aws_error("ValidationException", 400):
        kms.encrypt(KeyId=rsa_key["KeyId"], Plaintext=b"x" * 215, EncryptionAlgorithm="RSAES_OAEP_SHA_1")
    with aws_error("InvalidCiphertextException", 400):
        kms.decrypt(CiphertextBlob=b"\x00" * 256, KeyId=rsa_key["KeyId"], EncryptionAlgorithm="RSAES_OAEP_SHA_256")


@pytest.mark.parametrize("alg", ["RSASSA_PKCS1_V1_5_SHA_256", "RSASSA_PSS_SHA_384", "RSASSA_PSS_SHA_512"])
def test_rsa_signatures(kms, rsa_sign_key, alg):
    public = serialization.load_der_public_key(kms.get_public_key(KeyId=rsa_sign_key["KeyId"])["PublicKey"])
    h = {"256": hashes.SHA256(), "384": hashes.SHA384(), "512": hashes.SHA512()}[alg[-3:]]
    sig = kms.sign(KeyId=rsa_sign_key["KeyId"], Message=b"message", SigningAlgorithm=alg)["Signature"]
    pad = padding.PKCS1v15() if "PKCS1" in alg else padding.PSS(mgf=padding.MGF1(h), salt_length=h.digest_size)
    public.verify(sig, b"message", pad, h)
    assert kms.verify(KeyId=rsa_sign_key["KeyId"], Message=b"message", Signature=sig, SigningAlgorithm=alg)["SignatureValid"]
    with aws_error("KMSInvalidSignatureException", 400):
        kms.verify(KeyId=rsa_sign_key["KeyId"], Message=b"messagE", Signature=sig, SigningAlgorithm=alg)


def test_ecdsa_raw_and_digest(kms):
    key = kms.create_key(KeySpec="ECC_NIST_P384", KeyUsage="SIGN_VERIFY")["KeyMetadata"]
    pub = kms.get_public_key(KeyId=key["KeyId"])
    assert pub["SigningAlgorithms"] == ["ECDSA_SHA_384"] and pub["KeyUsage"] == "SIGN_VERIFY"
    public = serialization.load_der_public_key(pub["PublicKey"])
    assert isinstance(public.curve, ec.SECP384R1)
    sig = kms.sign(KeyId=key["KeyId"], Message=b"abc", SigningAlgorithm="ECDSA_SHA_384")["Signature"]
    public.verify(sig, b"abc", ec.ECDSA(hashes.SHA384()))
    digest = hashlib.sha384(b"abc").digest()
    sig2 = kms.sign(KeyId=key["KeyId"], Message=digest, MessageType="DIGEST", SigningAlgorithm="ECDSA_SHA_384")["Signature"]
    public.verify(sig2, b"abc", ec.ECDSA(hashes.SHA384()))
    assert kms.verify(KeyId=key["KeyId"], Message=digest, MessageType="DIGEST", Signature=sig,
                      SigningAlgorithm="ECDSA_SHA_384")["SignatureValid"]
    with aws_error("ValidationException", 400):
        kms.sign(KeyId=key["KeyId"], Message=b"short", MessageType="DIGEST", SigningAlgorithm="ECDSA_SHA_384")
    with aws_error("InvalidKeyUsageException", 400):
        kms.sign(KeyId=key["KeyId"], Message=b"abc", SigningAlgorithm="ECDSA_SHA_256")
    with aws_error("InvalidKeyUsageException", 400):
        kms.encrypt(KeyId=key["KeyId"], Plaintext=b"abc")


def test_hmac(kms, sym_key):
    key = kms.create_key(KeySpec="HMAC_256", KeyUsage="GENERATE_VERIFY_MAC")["KeyMetadata"]
    mac = kms.generate_mac(KeyId=key["KeyId"], Message=b"msg", MacAlgorithm="HMAC_SHA_256")
    assert len(mac["Mac"]) == 32 and mac["MacAlgorithm"] == "HMAC_SHA_256" and mac["KeyId"] == key["Arn"]
    assert kms.verify_mac(KeyId=key["KeyId"], Message=b"msg", Mac=mac["Mac"], MacAlgorithm="HMAC_SHA_256")["MacValid"]
    with aws_error("KMSInvalidMacException", 400):
        kms.verify_mac(KeyId=key["KeyId"], Message=b"msG", Mac=mac["Mac"], MacAlgorithm="HMAC_SHA_256")
    with aws_error("InvalidKeyUsageException", 400):
        kms.generate_mac(KeyId=key["KeyId"], Message=b"msg", MacAlgorithm="HMAC_SHA_512")
    with aws_error("InvalidKeyUsageException", 400):
        kms.generate_mac(KeyId=sym_key["KeyId"], Message=b"msg", MacAlgorithm="HMAC_SHA_256")
    with aws_error("UnsupportedOperationException", 400):
        kms.get_public_key(KeyId=key["KeyId"])
    assert not hmac.compare_digest(mac["Mac"], b"\x00" * 32)


# -- rotation --------------------------------------------------------------------------------------
def test_rotation_keeps_old_ciphertexts(kms, kms_raw, sym_key):
    kid = sym_key["KeyId"]
    st = kms.get_key_rotation_status(KeyId=kid)
    assert st["KeyRotationEnabled"] is False
    with aws_error("ValidationException", 400):
        kms_raw.enable_key_rotation(KeyId=kid, RotationPeriodInDays=89)
    kms.enable_key_rotation(KeyId=kid, RotationPeriodInDays=180)
    st = kms.get_key_rotation_status(KeyId=kid)
    assert st["KeyRotationEnabled"] is True and st["RotationPeriodInDays"] == 180 and "NextRotationDate" in st
    blobs = []
    for i in range(3):
        blobs.append((f"v{i}".encode(), kms.encrypt(KeyId=kid, Plaintext=f"v{i}".encode())["CiphertextBlob"]))
        # The key ARN, as GetKeyRotationStatus answers (recorded from AWS in LocalStack's
        # test_kms.snapshot.json: test_rotate_on_demand_returns_arn_for_key_id asserts it).
        assert kms.rotate_key_on_demand(KeyId=kid)["KeyId"] == sym_key["Arn"]
        assert kms.get_key_rotation_status(KeyId=kid)["KeyId"] == sym_key["Arn"]
    rotations = kms.list_key_rotations(KeyId=kid)["Rotations"]
    assert [r["RotationType"] for r in rotations] == ["ON_DEMAND"] * 3
    ids = {r["KeyMaterialId"] for r in rotations}
    assert len(ids) == 3
    assert kms.describe_key(KeyId=kid)["KeyMetadata"]["CurrentKeyMaterialId"] == rotations[-1]["KeyMaterialId"]
    for pt, blob in blobs:
        assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == pt
    kms.disable_key_rotation(KeyId=kid)
    assert kms.get_key_rotation_status(KeyId=kid)["KeyRotationEnabled"] is False


def test_rotation_unsupported_for_asymmetric(kms, rsa_sign_key):
    with aws_error("UnsupportedOperationException", 400):
        kms.enable_key_rotation(KeyId=rsa_sign_key["KeyId"])
    with aws_error("UnsupportedOperationException", 400) as e:
        kms.rotate_key_on_demand(KeyId=rsa_sign_key["KeyId"])
    assert e.value.response["Error"]["Message"] == ""  # as recorded from AWS


# -- tags and policies -----------------------------------------------------------------------------
def test_tags(kms, sym_key):
    kid = sym_key["KeyId"]
    kms.tag_resource(KeyId=kid, Tags=[{"TagKey": "env", "TagValue": "dev"}, {"TagKey": "team", "TagValue": "a"}])
    kms.tag_resource(KeyId=kid, Tags=[{"TagKey": "env", "TagValue": "prod"}])
    tags = {t["TagKey"]: t["TagValue"] for t in kms.list_resource_tags(KeyId=kid)["Tags"]}
    assert tags == {"env": "prod", "team": "a"}
    kms.untag_resource(KeyId=kid, TagKeys=["team"])
    assert kms.list_resource_tags(KeyId=kid)["Tags"] == [{"TagKey": "env", "TagValue": "prod"}]
    with aws_error("TagException", 400):
        kms.tag_resource(KeyId=kid, Tags=[{"TagKey": "aws:reserved", "TagValue": "x"}])
    created = kms.create_key(Tags=[{"TagKey": "a", "TagValue": "1"}])["KeyMetadata"]
    assert kms.list_resource_tags(KeyId=created["KeyId"])["Tags"] == [{"TagKey": "a", "TagValue": "1"}]


def test_key_policy_default_and_put(kms, account_id, sym_key):
    kid = sym_key["KeyId"]
    assert kms.list_key_policies(KeyId=kid)["PolicyNames"] == ["default"]
    pol = json.loads(kms.get_key_policy(KeyId=kid, PolicyName="default")["Policy"])
    assert pol["Statement"] == [{
        "Sid": "Enable IAM User Permissions",
        "Effect": "Allow",
        "Principal": {"AWS": f"arn:aws:iam::{account_id}:root"},
        "Action": "kms:*",
        "Resource": "*",
    }]
    new = {"Version": "2012-10-17", "Statement": [
        {"Sid": "root", "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{account_id}:root"},
         "Action": "kms:*", "Resource": "*"},
        {"Sid": "deny", "Effect": "Deny", "Principal": {"AWS": "*"}, "Action": "kms:Encrypt", "Resource": "*"}]}
    kms.put_key_policy(KeyId=kid, PolicyName="default", Policy=json.dumps(new))
    assert json.loads(kms.get_key_policy(KeyId=kid)["Policy"]) == new
    with aws_error("AccessDeniedException", 400):
        kms.encrypt(KeyId=kid, Plaintext=b"x")
    with aws_error("MalformedPolicyDocumentException", 400):
        kms.put_key_policy(KeyId=kid, PolicyName="default", Policy='{"Statement": 5}')
    with aws_error("MalformedPolicyDocumentException", 400):
        kms.put_key_policy(KeyId=kid, PolicyName="default", Policy=json.dumps({"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{account_id}:root"}, "Action": "kms:Decrypt", "Resource": "*"}]}))
    with aws_error("NotFoundException", 400):
        kms.get_key_policy(KeyId=kid, PolicyName="other")


def test_unknown_operation(server):
    from support import send_request, sign
    from botocore.awsrequest import AWSRequest

    req = AWSRequest(method="POST", url=server.endpoint + "/", data=b"{}", headers={
        # Every operation of KMS's model is implemented: a name outside it.
        "X-Amz-Target": "TrentService.CreateKeyStoreOfNoSuchKind", "Content-Type": "application/x-amz-json-1.1"})
    resp = send_request(sign(req, server.access_key_id, server.secret_access_key, service="kms"))
    assert resp.status == 400
    assert json.loads(resp.body)["__type"] == "UnknownOperationException"


def test_dry_run(kms, sym_key):
    with aws_error("DryRunOperationException", 400):
        kms.encrypt(KeyId=sym_key["KeyId"], Plaintext=b"x", DryRun=True)


def test_base64_blob_shape(kms, sym_key):
    blob = kms.encrypt(KeyId=sym_key["KeyId"], Plaintext=b"x")["CiphertextBlob"]
    assert isinstance(blob, bytes) and base64.b64encode(blob)


# -- multi-Region keys -----------------------------------------------------------------------------
def test_multi_region_key_replica_decrypts_primary_ciphertexts(kms, server, account_id):
    import boto3

    west = boto3.client("kms", region_name="us-west-2", endpoint_url=server.endpoint,
                        aws_access_key_id=server.access_key_id, aws_secret_access_key=server.secret_access_key)
    md = kms.create_key(MultiRegion=True, Description="primary")["KeyMetadata"]
    key_id = md["KeyId"]
    assert key_id.startswith("mrk-") and md["MultiRegion"] is True
    assert md["MultiRegionConfiguration"]["MultiRegionKeyType"] == "PRIMARY"
    blob = kms.encrypt(KeyId=key_id, Plaintext=b"across regions")["CiphertextBlob"]
    with aws_error("NotFoundException", 400):
        west.describe_key(KeyId=key_id)
    out = kms.replicate_key(KeyId=key_id, ReplicaRegion="us-west-2", Tags=[{"TagKey": "r", "TagValue": "w"}])
    replica = out["ReplicaKeyMetadata"]
    assert replica["Arn"] == f"arn:aws:kms:us-west-2:{account_id}:key/{key_id}"
    assert replica["MultiRegionConfiguration"]["MultiRegionKeyType"] == "REPLICA"
    assert replica["MultiRegionConfiguration"]["PrimaryKey"] == {"Arn": md["Arn"], "Region": "us-east-1"}
    assert out["ReplicaTags"] == [{"TagKey": "r", "TagValue": "w"}] and json.loads(out["ReplicaPolicy"])
    # The answer shows the replica as it starts (as recorded from AWS); it is ready when it returns.
    assert (replica["KeyState"], replica["Enabled"]) == ("Creating", False)
    assert "CurrentKeyMaterialId" not in replica
    assert west.describe_key(KeyId=key_id)["KeyMetadata"]["KeyState"] == "Enabled"
    assert west.decrypt(CiphertextBlob=blob)["Plaintext"] == b"across regions"
    with aws_error("AlreadyExistsException", 400):
        kms.replicate_key(KeyId=key_id, ReplicaRegion="us-west-2")
    cfg = kms.describe_key(KeyId=key_id)["KeyMetadata"]["MultiRegionConfiguration"]
    assert cfg["ReplicaKeys"] == [{"Arn": replica["Arn"], "Region": "us-west-2"}]
    kms.update_primary_region(KeyId=key_id, PrimaryRegion="us-west-2")
    assert west.describe_key(KeyId=key_id)["KeyMetadata"]["MultiRegionConfiguration"]["MultiRegionKeyType"] == "PRIMARY"
    with aws_error("UnsupportedOperationException", 400):
        kms.replicate_key(KeyId=key_id, ReplicaRegion="eu-west-1")
