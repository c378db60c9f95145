"""SSH public keys, signing certificates and server certificates: uploads checked like AWS
(OpenSSH keys, PEM X.509, PEM private keys), per-user / per-account quotas, the MD5
fingerprint, PEM re-encoding, DeleteUser conflicts, credential-report columns, tags, and the
server certificate's private key never coming back."""

import base64
import datetime as dt
import hashlib

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
from cryptography.x509.oid import NameOID

from support import allow, aws_error, policy, recent, unique


def ssh_key(kind: str = "rsa", bits: int = 2048) -> str:
    key = ed25519.Ed25519PrivateKey.generate() if kind == "ed25519" else rsa.generate_private_key(65537, bits)
    return key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode()


def md5_fingerprint(line: str) -> str:
    digest = hashlib.md5(base64.b64decode(line.split()[1])).hexdigest()
    return ":".join(digest[i:i + 2] for i in range(0, 32, 2))


def cert_and_key(days: int = 30, start_days: int = -1) -> tuple[str, str]:
    key = rsa.generate_private_key(65537, 2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, unique("cn"))])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now + dt.timedelta(days=start_days))
        .not_valid_after(now + dt.timedelta(days=days))
        .sign(key, hashes.SHA256())
    )
    pem_key = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
    )
    return cert.public_bytes(serialization.Encoding.PEM).decode(), pem_key.decode()


# -- SSH public keys -----------------------------------------------------------------------------


def test_ssh_key_lifecycle(iam):
    user = unique("user")
    iam.create_user(UserName=user)
    line = ssh_key()
    up = iam.upload_ssh_public_key(UserName=user, SSHPublicKeyBody=line + " me@laptop")["SSHPublicKey"]
    assert up["UserName"] == user
    assert up["SSHPublicKeyId"].startswith("APKA") and len(up["SSHPublicKeyId"]) == 20
    assert up["Fingerprint"] == md5_fingerprint(line)
    assert up["Status"] == "Active" and recent(up["UploadDate"])
    kid = up["SSHPublicKeyId"]

    got = iam.get_ssh_public_key(UserName=user, SSHPublicKeyId=kid, Encoding="SSH")["SSHPublicKey"]
    assert got["SSHPublicKeyBody"] == line
    pem = iam.get_ssh_public_key(UserName=user, SSHPublicKeyId=kid, Encoding="PEM")["SSHPublicKey"]["SSHPublicKeyBody"]
    loaded = serialization.load_pem_public_key(pem.encode())
    assert loaded.public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode() == line

    listed = iam.list_ssh_public_keys(UserName=user)["SSHPublicKeys"]
    assert [(k["SSHPublicKeyId"], k["Status"]) for k in listed] == [(kid, "Active")]
    iam.update_ssh_public_key(UserName=user, SSHPublicKeyId=kid, Status="Inactive")
    assert iam.list_ssh_public_keys(UserName=user)["SSHPublicKeys"][0]["Status"] == "Inactive"

    with aws_error("DeleteConflict", 409):
        iam.delete_user(UserName=user)
    iam.delete_ssh_public_key(UserName=user, SSHPublicKeyId=kid)
    assert iam.list_ssh_public_keys(UserName=user)["SSHPublicKeys"] == []
    with aws_error("NoSuchEntity", 404, message=f"The Public Key with id {kid} cannot be found."):
        iam.get_ssh_public_key(UserName=user, SSHPublicKeyId=kid, Encoding="SSH")
    iam.delete_user(UserName=user)


def test_ssh_key_ed25519_pem(iam):
    user = unique("user")
    iam.create_user(UserName=user)
    line = ssh_key("ed25519")
    kid = iam.upload_ssh_public_key(UserName=user, SSHPublicKeyBody=line)["SSHPublicKey"]["SSHPublicKeyId"]
    pem = iam.get_ssh_public_key(UserName=user, SSHPublicKeyId=kid, Encoding="PEM")["SSHPublicKey"]["SSHPublicKeyBody"]
    assert isinstance(serialization.load_pem_public_key(pem.encode()), ed25519.Ed25519PublicKey)


def test_ssh_key_errors(iam):
    user = unique("user")
    iam.create_user(UserName=user)
    with aws_error("UnrecognizedPublicKeyEncoding", 400):
        iam.upload_ssh_public_key(UserName=user, SSHPublicKeyBody="not a key")
    with aws_error("InvalidPublicKey", 400):
        iam.upload_ssh_public_key(UserName=user, SSHPublicKeyBody="ssh-rsa AAAAB3NzaC1yc2E=")
    with aws_error("InvalidPublicKey", 400):
        iam.upload_ssh_public_key(UserName=user, SSHPublicKeyBody=ssh_key(bits=1024))
    with aws_error("NoSuchEntity", 404, message="The user with name nobody-here cannot be found."):
        iam.upload_ssh_public_key(UserName="nobody-here", SSHPublicKeyBody=ssh_key())
    line = ssh_key("ed25519")
    iam.upload_ssh_public_key(UserName=user, SSHPublicKeyBody=line)
    with aws_error("DuplicateSSHPublicKey", 400):
        iam.upload_ssh_public_key(UserName=user, SSHPublicKeyBody=line)
    for _ in range(4):
        iam.upload_ssh_public_key(UserName=user, SSHPublicKeyBody=ssh_key("ed25519"))
    with aws_error("LimitExceeded", 409, message="Cannot exceed quota for SSHPublicKeysPerUser: 5"):
        iam.upload_ssh_public_key(UserName=user, SSHPublicKeyBody=ssh_key("ed25519"))
    with aws_error("ValidationError", 400):
        iam.get_ssh_public_key(UserName=user, SSHPublicKeyId="APKA" + "A" * 16, Encoding="DER")


def test_ssh_keys_follow_renamed_user(iam):
    user, new = unique("user"), unique("user")
    iam.create_user(UserName=user)
    kid = iam.upload_ssh_public_key(UserName=user, SSHPublicKeyBody=ssh_key("ed25519"))["SSHPublicKey"]["SSHPublicKeyId"]
    iam.update_user(UserName=user, NewUserName=new)
    keys = iam.list_ssh_public_keys(UserName=new)["SSHPublicKeys"]
    assert [(k["SSHPublicKeyId"], k["UserName"]) for k in keys] == [(kid, new)]


def test_ssh_key_needs_permission_on_the_user(iam, make_user, account_id):
    target = unique("user")
    iam.create_user(UserName=target)
    u = make_user([policy(allow("iam:ListSSHPublicKeys", f"arn:aws:iam::{account_id}:user/{target}"))])
    assert u.iam.list_ssh_public_keys(UserName=target)["SSHPublicKeys"] == []
    with aws_error("AccessDenied", 403):
        u.iam.upload_ssh_public_key(UserName=target, SSHPublicKeyBody=ssh_key("ed25519"))


# -- signing certificates ------------------------------------------------------------------------


def test_signing_certificates(iam):
    user = unique("user")
    iam.create_user(UserName=user)
    body, _ = cert_and_key()
    c = iam.upload_signing_certificate(UserName=user, CertificateBody=body)["Certificate"]
    assert c["UserName"] == user and c["CertificateBody"] == body and c["Status"] == "Active"
    assert len(c["CertificateId"]) >= 24 and recent(c["UploadDate"])
    with aws_error("DuplicateCertificate", 409):
        iam.upload_signing_certificate(UserName=user, CertificateBody=body)
    listed = iam.list_signing_certificates(UserName=user)["Certificates"]
    assert [x["CertificateId"] for x in listed] == [c["CertificateId"]]
    iam.update_signing_certificate(UserName=user, CertificateId=c["CertificateId"], Status="Inactive")
    assert iam.list_signing_certificates(UserName=user)["Certificates"][0]["Status"] == "Inactive"

    iam.upload_signing_certificate(UserName=user, CertificateBody=cert_and_key()[0])
    with aws_error("LimitExceeded", 409, message="Cannot exceed quota for CertificatesPerUser: 2"):
        iam.upload_signing_certificate(UserName=user, CertificateBody=cert_and_key()[0])

    report_row = credential_report_row(iam, user)
    assert (report_row["cert_1_active"], report_row["cert_2_active"]) == ("false", "true")
    assert report_row["cert_1_last_rotated"] != "N/A"

    with aws_error("DeleteConflict", 409):
        iam.delete_user(UserName=user)
    for x in iam.list_signing_certificates(UserName=user)["Certificates"]:
        iam.delete_signing_certificate(UserName=user, CertificateId=x["CertificateId"])
    iam.delete_user(UserName=user)


def credential_report_row(iam, user: str) -> dict:
    import csv
    import io

    iam.generate_credential_report()
    content = iam.get_credential_report()["Content"].decode()
    rows = list(csv.DictReader(io.StringIO(content)))
    return next(r for r in rows if r["user"] == user)


def test_signing_certificate_errors(iam):
    user = unique("user")
    iam.create_user(UserName=user)
    with aws_error("MalformedCertificate", 400):
        iam.upload_signing_certificate(UserName=user, CertificateBody="notacert")
    expired, _ = cert_and_key(days=-1, start_days=-10)
    with aws_error("InvalidCertificate", 400):
        iam.upload_signing_certificate(UserName=user, CertificateBody=expired)
    with aws_error("NoSuchEntity", 404, message="The user with name notauser cannot be found."):
        iam.upload_signing_certificate(UserName="notauser", CertificateBody=cert_and_key()[0])
    with aws_error("NoSuchEntity", 404, message="The user with name notauser cannot be found."):
        iam.list_signing_certificates(UserName="notauser")
    fake = "x" * 32
    with aws_error("NoSuchEntity", 404, message=f"The Certificate with id {fake} cannot be found."):
        iam.update_signing_certificate(UserName=user, CertificateId=fake, Status="Inactive")
    with aws_error("NoSuchEntity", 404, message=f"The Certificate with id {fake} cannot be found."):
        iam.delete_signing_certificate(UserName=user, CertificateId=fake)


# -- server certificates -------------------------------------------------------------------------


def test_server_certificate_lifecycle(server, iam, account_id):
    name = unique("cert")
    body, key = cert_and_key(days=90)
    chain, _ = cert_and_key()
    meta = iam.upload_server_certificate(
        ServerCertificateName=name, CertificateBody=body, PrivateKey=key, CertificateChain=chain,
        Path="/cloudfront/", Tags=[{"Key": "team", "Value": "web"}],
    )["ServerCertificateMetadata"]
    assert meta["Arn"] == f"arn:aws:iam::{account_id}:server-certificate/cloudfront/{name}"
    assert meta["ServerCertificateId"].startswith("ASCA") and meta["Path"] == "/cloudfront/"
    assert recent(meta["UploadDate"])
    assert abs((meta["Expiration"] - dt.datetime.now(dt.timezone.utc)).days - 90) <= 1

    assert iam.get_account_summary()["SummaryMap"]["ServerCertificates"] >= 1
    got = iam.get_server_certificate(ServerCertificateName=name)["ServerCertificate"]
    assert got["CertificateBody"] == body and got["CertificateChain"] == chain
    assert got["Tags"] == [{"Key": "team", "Value": "web"}]
    assert "PrivateKey" not in got
    raw = str(got)
    assert "PRIVATE KEY" not in raw
    # Nor anywhere the server writes: its logs and its data directory.
    assert "PRIVATE KEY" not in server.logs()
    needle = key.splitlines()[1].encode()
    for f in server.data_dir.rglob("*"):
        if f.is_file():
            assert needle not in f.read_bytes(), f

    names = [c["ServerCertificateName"] for c in iam.list_server_certificates(PathPrefix="/cloudfront/")["ServerCertificateMetadataList"]]
    assert name in names

    iam.tag_server_certificate(ServerCertificateName=name, Tags=[{"Key": "env", "Value": "prod"}])
    iam.untag_server_certificate(ServerCertificateName=name, TagKeys=["team"])
    assert iam.list_server_certificate_tags(ServerCertificateName=name)["Tags"] == [{"Key": "env", "Value": "prod"}]

    new = unique("cert")
    iam.update_server_certificate(ServerCertificateName=name, NewServerCertificateName=new, NewPath="/")
    with aws_error("NoSuchEntity", 404, message=f"The Server Certificate with name {name} cannot be found."):
        iam.get_server_certificate(ServerCertificateName=name)
    assert iam.get_server_certificate(ServerCertificateName=new)["ServerCertificate"]["ServerCertificateMetadata"]["Path"] == "/"
    iam.delete_server_certificate(ServerCertificateName=new)
    with aws_error("NoSuchEntity", 404, message=f"The Server Certificate with name {new} cannot be found."):
        iam.delete_server_certificate(ServerCertificateName=new)


def test_server_certificate_errors(iam):
    name = unique("cert")
    body, key = cert_and_key()
    with aws_error("MalformedCertificate", 400):
        iam.upload_server_certificate(ServerCertificateName=name, CertificateBody="certbody", PrivateKey=key)
    with aws_error("MalformedCertificate", 400) as ei:
        iam.upload_server_certificate(ServerCertificateName=name, CertificateBody=body, PrivateKey="privatekey")
    assert "privatekey" not in ei.value.response["Error"]["Message"]
    with aws_error("MalformedCertificate", 400):
        iam.upload_server_certificate(ServerCertificateName=name, CertificateBody=body, PrivateKey=key, CertificateChain="chain")
    iam.upload_server_certificate(ServerCertificateName=name, CertificateBody=body, PrivateKey=key)
    with aws_error("EntityAlreadyExists", 409, message=f"The Server Certificate with name {name} already exists."):
        iam.upload_server_certificate(ServerCertificateName=name, CertificateBody=body, PrivateKey=key)
    with aws_error("NoSuchEntity", 404, message="The Server Certificate with name NonExistant cannot be found."):
        iam.get_server_certificate(ServerCertificateName="NonExistant")
    iam.delete_server_certificate(ServerCertificateName=name)


def test_server_certificate_private_key_not_echoed_in_validation(iam_unvalidated):
    with aws_error("ValidationError", 400) as ei:
        iam_unvalidated.upload_server_certificate(
            ServerCertificateName=unique("cert"), CertificateBody="x", PrivateKey="SECRET\u2603KEY"
        )
    assert "SECRET" not in ei.value.response["Error"]["Message"]
