"""KMS with real clients beyond boto3: the AWS Encryption SDK, the aws CLI, and what reaches disk."""

from __future__ import annotations

import base64
import os
from pathlib import Path

import aws_encryption_sdk
import pytest
from aws_encryption_sdk import CommitmentPolicy
from aws_encryption_sdk.key_providers.kms import KMSMasterKey

from support import TEST_STORE, aws_error, random_account_id, random_key_id, random_secret


@pytest.fixture(scope="session")
def kms(server):
    return server.client("kms")


def test_encryption_sdk_round_trip(kms):
    key = kms.create_key(Description="esdk")["KeyMetadata"]
    master_key = KMSMasterKey(key_id=key["Arn"], client=kms)
    sdk = aws_encryption_sdk.EncryptionSDKClient(commitment_policy=CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT)
    message = b"envelope encrypted through Rampart's KMS " * 100
    ciphertext, header = sdk.encrypt(source=message, key_provider=master_key, encryption_context={"app": "compat"})
    assert message not in ciphertext
    assert header.encryption_context["app"] == "compat"
    plaintext, dheader = sdk.decrypt(source=ciphertext, key_provider=master_key)
    assert plaintext == message and dheader.encryption_context["app"] == "compat"
    # A different key cannot open it.
    other = kms.create_key()["KeyMetadata"]
    with pytest.raises(Exception):
        sdk.decrypt(source=ciphertext, key_provider=KMSMasterKey(key_id=other["Arn"], client=kms))
    # After a rotation the old message still decrypts.
    kms.rotate_key_on_demand(KeyId=key["KeyId"])
    assert sdk.decrypt(source=ciphertext, key_provider=master_key)[0] == message


def test_cli_and_boto3_ciphertexts_round_trip(kms, aws_cli, tmp_path):
    key = kms.create_key()["KeyMetadata"]
    alias = f"alias/cli-{os.getpid()}-{random_key_id('')[:6].lower()}"
    r = aws_cli("kms", "create-alias", "--alias-name", alias, "--target-key-id", key["KeyId"])
    assert r.returncode == 0, r.stderr
    (tmp_path / "pt").write_bytes(b"from the cli")
    out = aws_cli("kms", "encrypt", "--key-id", alias, "--plaintext", f"fileb://{tmp_path / 'pt'}",
                  "--encryption-context", "purpose=interop", check=True).json()
    assert out["KeyId"] == key["Arn"]
    blob = base64.b64decode(out["CiphertextBlob"])
    assert kms.decrypt(CiphertextBlob=blob, EncryptionContext={"purpose": "interop"})["Plaintext"] == b"from the cli"
    # boto3 → CLI
    blob2 = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"from boto3")["CiphertextBlob"]
    (tmp_path / "ct").write_bytes(blob2)
    dec = aws_cli("kms", "decrypt", "--ciphertext-blob", f"fileb://{tmp_path / 'ct'}", check=True).json()
    assert base64.b64decode(dec["Plaintext"]) == b"from boto3" and dec["KeyId"] == key["Arn"]
    # Errors come back with AWS's codes.
    (tmp_path / "bad").write_bytes(blob2[:-1] + bytes([blob2[-1] ^ 1]))
    bad = aws_cli("kms", "decrypt", "--ciphertext-blob", f"fileb://{tmp_path / 'bad'}")
    assert bad.returncode != 0 and "InvalidCiphertextException" in bad.stderr
    desc = aws_cli("kms", "describe-key", "--key-id", alias, check=True).json()
    assert desc["KeyMetadata"]["KeyId"] == key["KeyId"]
    listed = aws_cli("kms", "list-aliases", "--key-id", key["KeyId"], check=True).json()
    assert [a["AliasName"] for a in listed["Aliases"]] == [alias]


def test_no_key_material_or_plaintext_at_rest(spawn_server):
    srv = spawn_server(account_id=random_account_id(), access_key_id=random_key_id(), secret_access_key=random_secret())
    kms = srv.client("kms")
    secrets = []
    key = kms.create_key()["KeyMetadata"]
    for spec in ("ECC_NIST_P256", "HMAC_256"):
        usage = "SIGN_VERIFY" if spec.startswith("ECC") else "GENERATE_VERIFY_MAC"
        kms.create_key(KeySpec=spec, KeyUsage=usage)
    plaintext = b"PLAINTEXT-CANARY-" + os.urandom(8).hex().encode()
    kms.encrypt(KeyId=key["KeyId"], Plaintext=plaintext)
    dk = kms.generate_data_key(KeyId=key["KeyId"], KeySpec="AES_256")
    secrets.append(dk["Plaintext"])
    pair = kms.generate_data_key_pair(KeyId=key["KeyId"], KeyPairSpec="ECC_NIST_P256")
    secrets.append(pair["PrivateKeyPlaintext"])
    kms.rotate_key_on_demand(KeyId=key["KeyId"])
    srv.stop()
    needles = [plaintext, base64.b64encode(plaintext)]
    for s in secrets:
        needles += [s, base64.b64encode(s), s.hex().encode()]
    files = [p for p in Path(srv.data_dir).rglob("*") if p.is_file()]
    if not TEST_STORE:  # on PostgreSQL the store is not in the data directory
        assert any(p.name.startswith("rampart.sqlite") for p in files)
    for p in files:
        data = p.read_bytes()
        for n in needles:
            assert n not in data, f"{p.name} holds a plaintext secret"
        assert b"PRIVATE KEY" not in data


def test_key_survives_restart(spawn_server):
    srv = spawn_server(account_id=random_account_id(), access_key_id=random_key_id(), secret_access_key=random_secret())
    kms = srv.client("kms")
    key = kms.create_key()["KeyMetadata"]
    blob = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"durable", EncryptionContext={"a": "b"})["CiphertextBlob"]
    srv.restart()
    kms = srv.client("kms")
    assert kms.decrypt(CiphertextBlob=blob, EncryptionContext={"a": "b"})["Plaintext"] == b"durable"


def test_master_key_file_outside_the_data_directory(spawn_server, tmp_path):
    key_file = tmp_path / "kms-master.key"
    key_file.write_bytes(os.urandom(32))
    key_file.chmod(0o600)
    srv = spawn_server(account_id=random_account_id(), access_key_id=random_key_id(),
                       secret_access_key=random_secret(), extra_env={"RAMPART_MASTER_KEY_FILE": str(key_file)})
    kms = srv.client("kms")
    key = kms.create_key()["KeyMetadata"]
    blob = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"file key")["CiphertextBlob"]
    assert not (Path(srv.data_dir) / "master.key").exists()
    srv.restart()
    assert srv.client("kms").decrypt(CiphertextBlob=blob)["Plaintext"] == b"file key"
    with aws_error("NotFoundException"):
        srv.client("kms").describe_key(KeyId="alias/missing")


def test_master_key_from_the_environment(spawn_server):
    """RAMPART_MASTER_KEY: the key itself (hex), never written; a restart with it decrypts."""
    key_hex = os.urandom(32).hex()
    srv = spawn_server(account_id=random_account_id(), access_key_id=random_key_id(),
                       secret_access_key=random_secret(), extra_env={"RAMPART_MASTER_KEY": key_hex})
    kms = srv.client("kms")
    key = kms.create_key()["KeyMetadata"]
    blob = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"env key")["CiphertextBlob"]
    srv.stop()
    assert not (Path(srv.data_dir) / "master.key").exists()
    for p in Path(srv.data_dir).rglob("*"):
        if p.is_file():
            assert key_hex.encode() not in p.read_bytes() and bytes.fromhex(key_hex) not in p.read_bytes()
    assert key_hex not in srv.logs()
    srv.start()
    assert srv.client("kms").decrypt(CiphertextBlob=blob)["Plaintext"] == b"env key"
