"""KMS imported key material (BYOK) through boto3: Origin=EXTERNAL keys, GetParametersForImport,
ImportKeyMaterial, DeleteImportedKeyMaterial. The client side (wrapping the material with the
returned public key) is done with `cryptography`, as AWS's documentation does it with OpenSSL."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import os

import pytest
from cryptography.hazmat.primitives import hashes, keywrap, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from support import allow, aws_error, policy, random_key_id, random_secret


@pytest.fixture(scope="session")
def kms(server):
    return server.client("kms")


@pytest.fixture(scope="session")
def kms_raw(server):
    return server.client("kms", parameter_validation=False)


def oaep(sha256: bool):
    h = hashes.SHA256() if sha256 else hashes.SHA1()
    return padding.OAEP(mgf=padding.MGF1(algorithm=h), algorithm=h, label=None)


def wrap(public_der: bytes, algorithm: str, material: bytes) -> bytes:
    """The client side of each wrapping algorithm."""
    pub = serialization.load_der_public_key(public_der)
    sha256 = algorithm.endswith("SHA_256")
    if algorithm.startswith("RSAES_OAEP"):
        return pub.encrypt(material, oaep(sha256))
    aes = os.urandom(32)
    return pub.encrypt(aes, oaep(sha256)) + keywrap.aes_key_wrap_with_padding(aes, material)


def import_material(kms, key_id, material, algorithm="RSAES_OAEP_SHA_256", spec="RSA_2048", **kw):
    params = kms.get_parameters_for_import(KeyId=key_id, WrappingAlgorithm=algorithm, WrappingKeySpec=spec)
    kw.setdefault("ExpirationModel", "KEY_MATERIAL_DOES_NOT_EXPIRE")
    return kms.import_key_material(KeyId=key_id, ImportToken=params["ImportToken"],
                                   EncryptedKeyMaterial=wrap(params["PublicKey"], algorithm, material), **kw)


def pkcs8(private_key) -> bytes:
    return private_key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                                     serialization.NoEncryption())


def test_symmetric_import_lifecycle(kms):
    md = kms.create_key(Origin="EXTERNAL", Description="byok")["KeyMetadata"]
    assert md["Origin"] == "EXTERNAL" and md["KeyState"] == "PendingImport" and md["Enabled"] is False
    assert "CurrentKeyMaterialId" not in md and "ExpirationModel" not in md
    with aws_error("KMSInvalidStateException", 400, message=f"{md['Arn']} is pending import."):
        kms.encrypt(KeyId=md["KeyId"], Plaintext=b"x")
    with aws_error("KMSInvalidStateException", 400, message=f"{md['Arn']} is pending import."):
        kms.enable_key(KeyId=md["KeyId"])

    before = dt.datetime.now(dt.timezone.utc)
    params = kms.get_parameters_for_import(KeyId=md["KeyId"], WrappingAlgorithm="RSAES_OAEP_SHA_256",
                                           WrappingKeySpec="RSA_3072")
    assert params["KeyId"] == md["Arn"]
    wrapping = serialization.load_der_public_key(params["PublicKey"])
    assert isinstance(wrapping, rsa.RSAPublicKey) and wrapping.key_size == 3072
    valid = params["ParametersValidTo"] - before
    assert dt.timedelta(hours=23, minutes=59) < valid <= dt.timedelta(hours=24, minutes=1)

    material = os.urandom(32)
    out = kms.import_key_material(KeyId=md["KeyId"], ImportToken=params["ImportToken"],
                                  EncryptedKeyMaterial=wrap(params["PublicKey"], "RSAES_OAEP_SHA_256", material),
                                  ExpirationModel="KEY_MATERIAL_DOES_NOT_EXPIRE")
    assert out["KeyId"] == md["Arn"] and len(out["KeyMaterialId"]) == 64
    now = kms.describe_key(KeyId=md["KeyId"])["KeyMetadata"]
    assert now["KeyState"] == "Enabled" and now["Enabled"] is True
    assert now["ExpirationModel"] == "KEY_MATERIAL_DOES_NOT_EXPIRE" and "ValidTo" not in now
    assert now["CurrentKeyMaterialId"] == out["KeyMaterialId"]

    blob = kms.encrypt(KeyId=md["KeyId"], Plaintext=b"secret", EncryptionContext={"a": "1"})["CiphertextBlob"]
    assert kms.decrypt(CiphertextBlob=blob, EncryptionContext={"a": "1"})["Plaintext"] == b"secret"

    # Deleting the material makes the key unusable; re-importing the same material restores it.
    deleted = kms.delete_imported_key_material(KeyId=md["KeyId"])
    assert deleted["KeyId"] == md["Arn"] and deleted["KeyMaterialId"] == out["KeyMaterialId"]
    assert kms.describe_key(KeyId=md["KeyId"])["KeyMetadata"]["KeyState"] == "PendingImport"
    with aws_error("KMSInvalidStateException", 400, message=f"{md['Arn']} is pending import."):
        kms.decrypt(CiphertextBlob=blob, EncryptionContext={"a": "1"})
    # Other material is refused.
    with aws_error("IncorrectKeyMaterialException", 400):
        import_material(kms, md["KeyId"], os.urandom(32))
    again = import_material(kms, md["KeyId"], material, algorithm="RSA_AES_KEY_WRAP_SHA_1", spec="RSA_4096")
    assert again["KeyMaterialId"] == out["KeyMaterialId"]
    assert kms.decrypt(CiphertextBlob=blob, EncryptionContext={"a": "1"})["Plaintext"] == b"secret"
    # Re-importing while imported changes the expiration.
    valid_to = dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=30)
    import_material(kms, md["KeyId"], material, ExpirationModel="KEY_MATERIAL_EXPIRES", ValidTo=valid_to)
    now = kms.describe_key(KeyId=md["KeyId"])["KeyMetadata"]
    assert now["ExpirationModel"] == "KEY_MATERIAL_EXPIRES"
    assert abs((now["ValidTo"] - valid_to).total_seconds()) < 1


def test_same_material_in_another_key_is_another_key(kms):
    material = os.urandom(32)
    a = kms.create_key(Origin="EXTERNAL")["KeyMetadata"]["KeyId"]
    b = kms.create_key(Origin="EXTERNAL")["KeyMetadata"]["KeyId"]
    ida = import_material(kms, a, material)["KeyMaterialId"]
    idb = import_material(kms, b, material)["KeyMaterialId"]
    assert ida != idb  # "based on the KMS key ID and the imported key material"
    blob = kms.encrypt(KeyId=a, Plaintext=b"x")["CiphertextBlob"]
    with aws_error("IncorrectKeyException", 400):
        kms.decrypt(CiphertextBlob=blob, KeyId=b)


@pytest.mark.parametrize("algorithm", ["RSAES_OAEP_SHA_1", "RSAES_OAEP_SHA_256", "RSA_AES_KEY_WRAP_SHA_1",
                                       "RSA_AES_KEY_WRAP_SHA_256"])
def test_hmac_import_every_wrapping_algorithm(kms, algorithm):
    key = kms.create_key(Origin="EXTERNAL", KeySpec="HMAC_384", KeyUsage="GENERATE_VERIFY_MAC")["KeyMetadata"]
    material = os.urandom(48)
    import_material(kms, key["KeyId"], material, algorithm=algorithm)
    mac = kms.generate_mac(KeyId=key["KeyId"], Message=b"msg", MacAlgorithm="HMAC_SHA_384")["Mac"]
    assert mac == hmac.new(material, b"msg", hashlib.sha384).digest()
    # HMAC material length outside the spec's range is refused.
    other = kms.create_key(Origin="EXTERNAL", KeySpec="HMAC_384", KeyUsage="GENERATE_VERIFY_MAC")["KeyMetadata"]
    with aws_error("IncorrectKeyMaterialException", 400):
        import_material(kms, other["KeyId"], os.urandom(32), algorithm=algorithm)


def test_asymmetric_import(kms):
    # RSA private keys need an RSA_AES wrapping algorithm (they are larger than RSAES-OAEP takes).
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    key = kms.create_key(Origin="EXTERNAL", KeySpec="RSA_2048", KeyUsage="SIGN_VERIFY")["KeyMetadata"]
    with aws_error("IncorrectKeyMaterialException", 400):  # not a PKCS#8 private key
        import_material(kms, key["KeyId"], b"\x00" * 16, algorithm="RSAES_OAEP_SHA_256")
    import_material(kms, key["KeyId"], pkcs8(private), algorithm="RSA_AES_KEY_WRAP_SHA_256", spec="RSA_4096")
    pub = kms.get_public_key(KeyId=key["KeyId"])["PublicKey"]
    assert pub == private.public_key().public_bytes(serialization.Encoding.DER,
                                                    serialization.PublicFormat.SubjectPublicKeyInfo)
    sig = kms.sign(KeyId=key["KeyId"], Message=b"m", SigningAlgorithm="RSASSA_PSS_SHA_256")["Signature"]
    private.public_key().verify(sig, b"m", padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32),
                                hashes.SHA256())
    # Asymmetric keys take their first material only.
    kms.delete_imported_key_material(KeyId=key["KeyId"])
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    with aws_error("IncorrectKeyMaterialException", 400):
        import_material(kms, key["KeyId"], pkcs8(other), algorithm="RSA_AES_KEY_WRAP_SHA_256")
    # A key of the wrong size for the key spec.
    small = kms.create_key(Origin="EXTERNAL", KeySpec="RSA_3072", KeyUsage="SIGN_VERIFY")["KeyMetadata"]
    with aws_error("IncorrectKeyMaterialException", 400):
        import_material(kms, small["KeyId"], pkcs8(other), algorithm="RSA_AES_KEY_WRAP_SHA_256")


def test_ecc_key_agreement_import(kms):
    private = ec.generate_private_key(ec.SECP256R1())
    key = kms.create_key(Origin="EXTERNAL", KeySpec="ECC_NIST_P256", KeyUsage="KEY_AGREEMENT")["KeyMetadata"]
    import_material(kms, key["KeyId"], pkcs8(private), algorithm="RSAES_OAEP_SHA_256")
    peer = ec.generate_private_key(ec.SECP256R1())
    peer_spki = peer.public_key().public_bytes(serialization.Encoding.DER,
                                               serialization.PublicFormat.SubjectPublicKeyInfo)
    out = kms.derive_shared_secret(KeyId=key["KeyId"], KeyAgreementAlgorithm="ECDH", PublicKey=peer_spki)
    assert out["KeyOrigin"] == "EXTERNAL"
    assert out["SharedSecret"] == private.exchange(ec.ECDH(), peer.public_key())
    # An ECC key of another curve is not this key's material.
    p384 = kms.create_key(Origin="EXTERNAL", KeySpec="ECC_NIST_P384", KeyUsage="SIGN_VERIFY")["KeyMetadata"]
    with aws_error("IncorrectKeyMaterialException", 400):
        import_material(kms, p384["KeyId"], pkcs8(private))


def test_new_key_material_and_on_demand_rotation(kms):
    key = kms.create_key(Origin="EXTERNAL")["KeyMetadata"]["KeyId"]
    first, second = os.urandom(32), os.urandom(32)
    id1 = import_material(kms, key, first, KeyMaterialDescription="first one")["KeyMaterialId"]
    old = kms.encrypt(KeyId=key, Plaintext=b"old")["CiphertextBlob"]
    with aws_error("IncorrectKeyMaterialException", 400):
        import_material(kms, key, second, ImportType="EXISTING_KEY_MATERIAL")
    id2 = import_material(kms, key, second, ImportType="NEW_KEY_MATERIAL")["KeyMaterialId"]
    # One pending at a time (AWS's words, recorded in LocalStack's test_kms.snapshot.json).
    third = os.urandom(32)
    arn = kms.describe_key(KeyId=key)["KeyMetadata"]["Arn"]
    with aws_error("KMSInvalidStateException", 400, match=(
            rf"^New key material \(id: [0-9a-f]{{64}}\) cannot be imported into KMS key {arn}, because "
            rf"another key material \(id: {id2}\) is pending rotation\.$")):
        import_material(kms, key, third, ImportType="NEW_KEY_MATERIAL")
    rotations = {r["KeyMaterialId"]: r for r in kms.list_key_rotations(KeyId=key)["Rotations"]}
    assert rotations[id1]["KeyMaterialState"] == "CURRENT" and rotations[id1]["ImportState"] == "IMPORTED"
    assert rotations[id1]["KeyMaterialDescription"] == "first one"
    assert rotations[id2]["KeyMaterialState"] == "PENDING_ROTATION"
    # Until the rotation, the first material still encrypts.
    assert kms.decrypt(CiphertextBlob=kms.encrypt(KeyId=key, Plaintext=b"x")["CiphertextBlob"])["KeyMaterialId"] == id1
    kms.rotate_key_on_demand(KeyId=key)
    assert kms.describe_key(KeyId=key)["KeyMetadata"]["CurrentKeyMaterialId"] == id2
    new = kms.encrypt(KeyId=key, Plaintext=b"new")["CiphertextBlob"]
    assert kms.decrypt(CiphertextBlob=new)["KeyMaterialId"] == id2
    assert kms.decrypt(CiphertextBlob=old)["Plaintext"] == b"old"
    rotations = {r["KeyMaterialId"]: r for r in kms.list_key_rotations(KeyId=key)["Rotations"]}
    assert rotations[id2]["KeyMaterialState"] == "CURRENT" and rotations[id2]["RotationType"] == "ON_DEMAND"
    assert rotations[id1]["KeyMaterialState"] == "NON_CURRENT"
    # Deleting the older material: PendingImport until it is imported again (by its ID).
    kms.delete_imported_key_material(KeyId=key, KeyMaterialId=id1)
    assert kms.describe_key(KeyId=key)["KeyMetadata"]["KeyState"] == "PendingImport"
    import_material(kms, key, first, KeyMaterialId=id1)
    assert kms.decrypt(CiphertextBlob=old)["Plaintext"] == b"old"
    # No pending material: nothing to rotate to; automatic rotation is refused.
    with aws_error("KMSInvalidStateException", 400,
                   message=f"No available key material pending rotation for the key: {arn}."):
        kms.rotate_key_on_demand(KeyId=key)
    with aws_error("UnsupportedOperationException", 400):
        kms.enable_key_rotation(KeyId=key)


def test_import_errors(kms, kms_raw):
    native = kms.create_key()["KeyMetadata"]
    with aws_error("UnsupportedOperationException", 400,
                   message=f"{native['Arn']} origin is AWS_KMS which is not valid for this operation."):
        kms.get_parameters_for_import(KeyId=native["KeyId"], WrappingAlgorithm="RSAES_OAEP_SHA_256",
                                      WrappingKeySpec="RSA_2048")
    with aws_error("UnsupportedOperationException", 400):
        kms.delete_imported_key_material(KeyId=native["KeyId"])
    ext = kms.create_key(Origin="EXTERNAL")["KeyMetadata"]
    for alg, spec in (("RSAES_PKCS1_V1_5", "RSA_2048"), ("SM2PKE", "SM2"), ("RSAES_OAEP_SHA_256", "SM2")):
        with aws_error("ValidationException", 400):
            kms.get_parameters_for_import(KeyId=ext["KeyId"], WrappingAlgorithm=alg, WrappingKeySpec=spec)
    with aws_error("ValidationException", 400,
                   message="1 validation error detected: Value 'RSA_1024' at 'wrappingKeySpec' failed to satisfy "
                           "constraint: Member must satisfy enum value set: [RSA_2048, RSA_3072, RSA_4096, SM2]"):
        kms_raw.get_parameters_for_import(KeyId=ext["KeyId"], WrappingAlgorithm="RSAES_OAEP_SHA_256",
                                          WrappingKeySpec="RSA_1024")
    with aws_error("NotFoundException", 400):
        kms.get_parameters_for_import(KeyId="alias/whatever", WrappingAlgorithm="RSAES_OAEP_SHA_256",
                                      WrappingKeySpec="RSA_2048")

    params = kms.get_parameters_for_import(KeyId=ext["KeyId"], WrappingAlgorithm="RSAES_OAEP_SHA_1",
                                           WrappingKeySpec="RSA_2048")
    material = os.urandom(32)
    wrapped = wrap(params["PublicKey"], "RSAES_OAEP_SHA_1", material)
    base = dict(KeyId=ext["KeyId"], ImportToken=params["ImportToken"], EncryptedKeyMaterial=wrapped)
    # ExpirationModel and ValidTo go together; ValidTo is at most 365 days ahead.
    expires_needs_date = "A validTo date must be set if the ExpirationModel is KEY_MATERIAL_EXPIRES"
    with aws_error("ValidationException", 400, message=expires_needs_date):
        kms.import_key_material(**base, ExpirationModel="KEY_MATERIAL_EXPIRES")
    with aws_error("ValidationException", 400, message=expires_needs_date):
        kms.import_key_material(**base)
    future = dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=10)
    with aws_error("ValidationException", 400, message="The parameter ValidTo cannot be specified for a key with an "
                                                        "expiration model of KEY_MATERIAL_DOES_NOT_EXPIRE"):
        kms.import_key_material(**base, ExpirationModel="KEY_MATERIAL_DOES_NOT_EXPIRE", ValidTo=future)
    with aws_error("ValidationException", 400):
        kms.import_key_material(**base, ExpirationModel="KEY_MATERIAL_EXPIRES",
                                ValidTo=dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=400))
    with aws_error("ValidationException", 400, message="ValidTo must be in the future"):
        kms.import_key_material(**base, ExpirationModel="KEY_MATERIAL_EXPIRES",
                                ValidTo=dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=1))
    # The token is bound to its key and to its wrapping key.
    other = kms.create_key(Origin="EXTERNAL")["KeyMetadata"]
    with aws_error("InvalidImportTokenException", 400):
        kms.import_key_material(**{**base, "KeyId": other["KeyId"]}, ExpirationModel="KEY_MATERIAL_DOES_NOT_EXPIRE")
    forged = bytearray(params["ImportToken"])
    forged[-1] ^= 1
    with aws_error("InvalidImportTokenException", 400):
        kms.import_key_material(**{**base, "ImportToken": bytes(forged)},
                                ExpirationModel="KEY_MATERIAL_DOES_NOT_EXPIRE")
    fresh = kms.get_parameters_for_import(KeyId=ext["KeyId"], WrappingAlgorithm="RSAES_OAEP_SHA_1",
                                          WrappingKeySpec="RSA_2048")
    with aws_error("InvalidCiphertextException", 400):  # wrapped under another wrapping key
        kms.import_key_material(**{**base, "ImportToken": fresh["ImportToken"]},
                                ExpirationModel="KEY_MATERIAL_DOES_NOT_EXPIRE")
    with aws_error("IncorrectKeyMaterialException", 400):  # 16 bytes is not a symmetric key's material
        kms.import_key_material(KeyId=ext["KeyId"], ImportToken=params["ImportToken"],
                                EncryptedKeyMaterial=wrap(params["PublicKey"], "RSAES_OAEP_SHA_1", os.urandom(16)),
                                ExpirationModel="KEY_MATERIAL_DOES_NOT_EXPIRE")
    kms.import_key_material(**base, ExpirationModel="KEY_MATERIAL_DOES_NOT_EXPIRE")
    # Pending deletion: material can be deleted, the state stays.
    kms.schedule_key_deletion(KeyId=ext["KeyId"], PendingWindowInDays=7)
    kms.delete_imported_key_material(KeyId=ext["KeyId"])
    assert kms.describe_key(KeyId=ext["KeyId"])["KeyMetadata"]["KeyState"] == "PendingDeletion"
    with aws_error("KMSInvalidStateException", 400):
        kms.import_key_material(**base, ExpirationModel="KEY_MATERIAL_DOES_NOT_EXPIRE")
    kms.cancel_key_deletion(KeyId=ext["KeyId"])
    assert kms.describe_key(KeyId=ext["KeyId"])["KeyMetadata"]["KeyState"] == "PendingImport"


def test_import_condition_keys(kms, make_user):
    key = kms.create_key(Origin="EXTERNAL")["KeyMetadata"]
    user = make_user(inline={"p": policy(
        allow("kms:GetParametersForImport", key["Arn"],
              Condition={"StringEquals": {"kms:WrappingAlgorithm": "RSA_AES_KEY_WRAP_SHA_256",
                                          "kms:WrappingKeySpec": "RSA_4096"}}),
        allow("kms:ImportKeyMaterial", key["Arn"],
              Condition={"StringEquals": {"kms:ExpirationModel": "KEY_MATERIAL_DOES_NOT_EXPIRE"}}),
    )})
    ukms = user.client("kms")
    with aws_error("AccessDeniedException", 400, match="kms:GetParametersForImport"):
        ukms.get_parameters_for_import(KeyId=key["KeyId"], WrappingAlgorithm="RSAES_OAEP_SHA_256",
                                       WrappingKeySpec="RSA_4096")
    params = ukms.get_parameters_for_import(KeyId=key["KeyId"], WrappingAlgorithm="RSA_AES_KEY_WRAP_SHA_256",
                                            WrappingKeySpec="RSA_4096")
    wrapped = wrap(params["PublicKey"], "RSA_AES_KEY_WRAP_SHA_256", os.urandom(32))
    with aws_error("AccessDeniedException", 400, match="kms:ImportKeyMaterial"):
        ukms.import_key_material(KeyId=key["KeyId"], ImportToken=params["ImportToken"], EncryptedKeyMaterial=wrapped,
                                 ExpirationModel="KEY_MATERIAL_EXPIRES",
                                 ValidTo=dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=1))
    ukms.import_key_material(KeyId=key["KeyId"], ImportToken=params["ImportToken"], EncryptedKeyMaterial=wrapped,
                             ExpirationModel="KEY_MATERIAL_DOES_NOT_EXPIRE")
    # kms:KeyOrigin is EXTERNAL for such keys.
    user2 = make_user(inline={"p": policy(allow("kms:Encrypt", key["Arn"],
                                                Condition={"StringEquals": {"kms:KeyOrigin": "EXTERNAL"}}))})
    user2.client("kms").encrypt(KeyId=key["KeyId"], Plaintext=b"x")


def test_import_survives_restart_sealed(spawn_server):
    srv = spawn_server(access_key_id=random_key_id(), secret_access_key=random_secret())
    kms = srv.client("kms")
    key = kms.create_key(Origin="EXTERNAL")["KeyMetadata"]["KeyId"]
    material = os.urandom(32)
    import_material(kms, key, material)
    blob = kms.encrypt(KeyId=key, Plaintext=b"x")["CiphertextBlob"]
    srv.restart()
    assert srv.client("kms").decrypt(CiphertextBlob=blob)["Plaintext"] == b"x"
    # The material is stored sealed: its bytes appear nowhere in the data directory.
    for root, _, files in os.walk(srv.data_dir):
        for f in files:
            with open(os.path.join(root, f), "rb") as fh:
                assert material not in fh.read()


def test_multi_region_import(kms, server):
    west = server.client("kms", region="us-west-2")
    md = kms.create_key(Origin="EXTERNAL", MultiRegion=True)["KeyMetadata"]
    key = md["KeyId"]
    assert key.startswith("mrk-") and md["KeyState"] == "PendingImport"
    material = os.urandom(32)
    material_id = import_material(kms, key, material)["KeyMaterialId"]
    blob = kms.encrypt(KeyId=key, Plaintext=b"both regions")["CiphertextBlob"]
    # The replica does not get the material: it waits for the same material to be imported.
    replica = kms.replicate_key(KeyId=key, ReplicaRegion="us-west-2")["ReplicaKeyMetadata"]
    # ReplicateKey's answer shows the replica being created (as AWS's does); then it waits.
    assert replica["KeyState"] == "Creating" and replica["Origin"] == "EXTERNAL"
    assert west.describe_key(KeyId=key)["KeyMetadata"]["KeyState"] == "PendingImport"
    with aws_error("KMSInvalidStateException", 400):
        west.decrypt(CiphertextBlob=blob)
    with aws_error("IncorrectKeyMaterialException", 400):
        import_material(west, key, os.urandom(32), ImportType="EXISTING_KEY_MATERIAL")
    assert import_material(west, key, material, ImportType="EXISTING_KEY_MATERIAL")["KeyMaterialId"] == material_id
    assert west.decrypt(CiphertextBlob=blob)["Plaintext"] == b"both regions"


def test_valid_to_condition_key(kms, make_user):
    key = kms.create_key(Origin="EXTERNAL")["KeyMetadata"]
    limit = (dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=30)).strftime("%Y-%m-%dT%H:%M:%SZ")
    user = make_user(inline={"p": policy(
        allow("kms:GetParametersForImport", key["Arn"]),
        allow("kms:ImportKeyMaterial", key["Arn"], Condition={"DateLessThan": {"kms:ValidTo": limit}}),
    )})
    ukms = user.client("kms")
    material = os.urandom(32)
    with aws_error("AccessDeniedException", 400, match="kms:ImportKeyMaterial"):
        import_material(ukms, key["KeyId"], material, ExpirationModel="KEY_MATERIAL_EXPIRES",
                        ValidTo=dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=60))
    import_material(ukms, key["KeyId"], material, ExpirationModel="KEY_MATERIAL_EXPIRES",
                    ValidTo=dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=10))
    assert kms.describe_key(KeyId=key["KeyId"])["KeyMetadata"]["KeyState"] == "Enabled"


def test_byok_with_the_aws_cli_and_openssl(aws_cli, kms, tmp_path):
    """docs/kms.md's walk-through, as AWS's guide does it: aws CLI for the calls, OpenSSL to wrap."""
    import base64
    import subprocess

    key = aws_cli("kms", "create-key", "--origin", "EXTERNAL", check=True).json()["KeyMetadata"]["KeyId"]
    params = aws_cli("kms", "get-parameters-for-import", "--key-id", key, "--wrapping-algorithm",
                     "RSAES_OAEP_SHA_256", "--wrapping-key-spec", "RSA_2048", check=True).json()
    (tmp_path / "wrapping.der").write_bytes(base64.b64decode(params["PublicKey"]))
    (tmp_path / "token.bin").write_bytes(base64.b64decode(params["ImportToken"]))
    subprocess.run(["openssl", "rand", "-out", str(tmp_path / "material.bin"), "32"], check=True)
    subprocess.run(["openssl", "pkeyutl", "-encrypt", "-pubin", "-keyform", "DER",
                    "-inkey", str(tmp_path / "wrapping.der"), "-in", str(tmp_path / "material.bin"),
                    "-out", str(tmp_path / "wrapped.bin"), "-pkeyopt", "rsa_padding_mode:oaep",
                    "-pkeyopt", "rsa_oaep_md:sha256", "-pkeyopt", "rsa_mgf1_md:sha256"], check=True)
    out = aws_cli("kms", "import-key-material", "--key-id", key,
                  "--import-token", f"fileb://{tmp_path / 'token.bin'}",
                  "--encrypted-key-material", f"fileb://{tmp_path / 'wrapped.bin'}",
                  "--expiration-model", "KEY_MATERIAL_DOES_NOT_EXPIRE", check=True).json()
    assert len(out["KeyMaterialId"]) == 64
    assert kms.describe_key(KeyId=key)["KeyMetadata"]["KeyState"] == "Enabled"
    material = (tmp_path / "material.bin").read_bytes()
    other = kms.create_key(Origin="EXTERNAL")["KeyMetadata"]["KeyId"]
    assert import_material(kms, other, material)["KeyMaterialId"] != out["KeyMaterialId"]
    blob = kms.encrypt(KeyId=key, Plaintext=b"cli")["CiphertextBlob"]
    assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"cli"
