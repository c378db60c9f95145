"""Virtual MFA devices: CreateVirtualMFADevice (seed + QR code PNG), EnableMFADevice with two
consecutive TOTP codes, replay refusal, ResyncMFADevice, DeactivateMFADevice, DeleteVirtualMFADevice,
GetMFADevice, ListMFADevices, ListVirtualMFADevices, MFA device tags, DeleteUser conflicts, account
summary counters, and authorization on the mfa/ and user/ resources.

TOTP codes are computed here from the returned seed (RFC 6238: HMAC-SHA-1, 30 s, 6 digits).
"""

import base64
import hashlib
import hmac
import struct
import time
import zlib

from support import allow, aws_error, collect_pages, policy, recent, unique

STEP = 30


def totp(seed_b32: str, step: int) -> str:
    key = base64.b32decode(seed_b32)
    mac = hmac.new(key, struct.pack(">Q", step), hashlib.sha1).digest()
    off = mac[-1] & 0x0F
    value = (struct.unpack(">I", mac[off : off + 4])[0] & 0x7FFFFFFF) % 10**6
    return f"{value:06d}"


def now_step() -> int:
    return int(time.time()) // STEP


def wrong_code(seed: str, around: int, spread: int = 25) -> str:
    """A 6-digit code that is not the code of any step near `around`."""
    taken = {totp(seed, s) for s in range(around - spread, around + spread + 1)}
    for n in range(10**6):
        c = f"{(int(totp(seed, around)) + 1 + n) % 10**6:06d}"
        if c not in taken:
            return c
    raise AssertionError("no free code")


def create_device(iam, name=None, path=None, tags=None):
    kwargs = {"VirtualMFADeviceName": name or unique("mfa")}
    if path:
        kwargs["Path"] = path
    if tags:
        kwargs["Tags"] = tags
    dev = iam.create_virtual_mfa_device(**kwargs)["VirtualMFADevice"]
    return dev["SerialNumber"], dev["Base32StringSeed"].decode()


def enable(iam, user, serial, seed, first=None):
    s = now_step() - 1 if first is None else first
    iam.enable_mfa_device(
        UserName=user, SerialNumber=serial, AuthenticationCode1=totp(seed, s), AuthenticationCode2=totp(seed, s + 1)
    )
    return s


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "PNG signature"
    length, kind = struct.unpack(">I4s", data[8:16])
    assert kind == b"IHDR" and length == 13
    w, h = struct.unpack(">II", data[16:24])
    assert zlib.crc32(data[12:29]) == struct.unpack(">I", data[29:33])[0], "IHDR CRC"
    return w, h


def test_create_returns_seed_and_qr_png(iam, account_id):
    name = unique("mfa")
    dev = iam.create_virtual_mfa_device(VirtualMFADeviceName=name, Path="/team/")["VirtualMFADevice"]
    assert dev["SerialNumber"] == f"arn:aws:iam::{account_id}:mfa/team/{name}"
    seed = dev["Base32StringSeed"].decode()
    assert len(seed) == 64 and len(base64.b32decode(seed)) == 40
    w, h = png_size(dev["QRCodePNG"])
    assert w == h and w >= 21 * 4
    # A second device gets another seed; names are unique in the account.
    other = iam.create_virtual_mfa_device(VirtualMFADeviceName=unique("mfa"))["VirtualMFADevice"]
    assert other["Base32StringSeed"] != dev["Base32StringSeed"]
    with aws_error("EntityAlreadyExists", 409, message="MFADevice entity at the same path and name already exists."):
        iam.create_virtual_mfa_device(VirtualMFADeviceName=name)


def test_enable_list_get_deactivate_delete(iam, account_id):
    user = unique("user")
    iam.create_user(UserName=user)
    serial, seed = create_device(iam)
    listed = iam.list_virtual_mfa_devices(AssignmentStatus="Unassigned")["VirtualMFADevices"]
    assert serial in [d["SerialNumber"] for d in listed]
    assert iam.list_mfa_devices(UserName=user)["MFADevices"] == []

    enable(iam, user, serial, seed)
    devices = iam.list_mfa_devices(UserName=user)["MFADevices"]
    assert [(d["UserName"], d["SerialNumber"]) for d in devices] == [(user, serial)]
    assert recent(devices[0]["EnableDate"])
    got = iam.get_mfa_device(SerialNumber=serial, UserName=user)
    assert got["UserName"] == user and got["SerialNumber"] == serial and recent(got["EnableDate"])

    assigned = {d["SerialNumber"]: d for d in iam.list_virtual_mfa_devices(AssignmentStatus="Assigned")["VirtualMFADevices"]}
    assert assigned[serial]["User"]["UserName"] == user
    assert assigned[serial]["User"]["Arn"] == f"arn:aws:iam::{account_id}:user/{user}"
    assert "Base32StringSeed" not in assigned[serial] and "QRCodePNG" not in assigned[serial]
    unassigned = iam.list_virtual_mfa_devices(AssignmentStatus="Unassigned")["VirtualMFADevices"]
    assert serial not in [d["SerialNumber"] for d in unassigned]
    every = iam.list_virtual_mfa_devices()["VirtualMFADevices"]
    assert serial in [d["SerialNumber"] for d in every]

    with aws_error("DeleteConflict", 409):
        iam.delete_virtual_mfa_device(SerialNumber=serial)
    with aws_error("DeleteConflict", 409, message="Cannot delete entity, must delete MFA device first."):
        iam.delete_user(UserName=user)

    iam.deactivate_mfa_device(UserName=user, SerialNumber=serial)
    assert iam.list_mfa_devices(UserName=user)["MFADevices"] == []
    with aws_error("NoSuchEntity", 404):
        iam.get_mfa_device(SerialNumber=serial, UserName=user)
    with aws_error("NoSuchEntity", 404):
        iam.deactivate_mfa_device(UserName=user, SerialNumber=serial)
    iam.delete_virtual_mfa_device(SerialNumber=serial)
    with aws_error("NoSuchEntity", 404):
        iam.delete_virtual_mfa_device(SerialNumber=serial)
    iam.delete_user(UserName=user)


def test_wrong_and_non_consecutive_codes(iam):
    user = unique("user")
    iam.create_user(UserName=user)
    serial, seed = create_device(iam)
    s = now_step()
    bad = wrong_code(seed, s)
    cases = [
        (bad, totp(seed, s)),  # wrong first code
        (totp(seed, s - 1), bad),  # wrong second code
        (totp(seed, s - 1), totp(seed, s + 1)),  # not consecutive
        (totp(seed, s), totp(seed, s - 1)),  # consecutive but reversed
        (totp(seed, s), totp(seed, s)),  # the same code twice
        (totp(seed, s - 200), totp(seed, s - 199)),  # consecutive but long expired
    ]
    for c1, c2 in cases:
        with aws_error("InvalidAuthenticationCode", 403, message="Authentication code for device is not valid."):
            iam.enable_mfa_device(UserName=user, SerialNumber=serial, AuthenticationCode1=c1, AuthenticationCode2=c2)
    assert iam.list_mfa_devices(UserName=user)["MFADevices"] == []
    enable(iam, user, serial, seed)
    assert len(iam.list_mfa_devices(UserName=user)["MFADevices"]) == 1


def test_used_codes_are_refused(iam):
    user = unique("user")
    iam.create_user(UserName=user)
    serial, seed = create_device(iam)
    s = enable(iam, user, serial, seed)
    # The same pair cannot resync the device, nor re-enable it after deactivation.
    with aws_error("InvalidAuthenticationCode", 403):
        iam.resync_mfa_device(
            UserName=user, SerialNumber=serial, AuthenticationCode1=totp(seed, s), AuthenticationCode2=totp(seed, s + 1)
        )
    iam.deactivate_mfa_device(UserName=user, SerialNumber=serial)
    with aws_error("InvalidAuthenticationCode", 403):
        iam.enable_mfa_device(
            UserName=user, SerialNumber=serial, AuthenticationCode1=totp(seed, s), AuthenticationCode2=totp(seed, s + 1)
        )
    # Codes newer than the last one used are fine.
    enable(iam, user, serial, seed, first=s + 2)
    assert len(iam.list_mfa_devices(UserName=user)["MFADevices"]) == 1


def test_resync(iam):
    user = unique("user")
    iam.create_user(UserName=user)
    serial, seed = create_device(iam)
    s = enable(iam, user, serial, seed)
    iam.resync_mfa_device(
        UserName=user, SerialNumber=serial, AuthenticationCode1=totp(seed, s + 2), AuthenticationCode2=totp(seed, s + 3)
    )
    with aws_error("InvalidAuthenticationCode", 403):
        iam.resync_mfa_device(
            UserName=user, SerialNumber=serial, AuthenticationCode1=totp(seed, s + 5), AuthenticationCode2=totp(seed, s + 7)
        )
    other = unique("user")
    iam.create_user(UserName=other)
    with aws_error("NoSuchEntity", 404):
        iam.resync_mfa_device(
            UserName=other, SerialNumber=serial, AuthenticationCode1=totp(seed, s + 4), AuthenticationCode2=totp(seed, s + 5)
        )


def test_device_in_use_and_missing_entities(iam, account_id):
    a, b = unique("user"), unique("user")
    iam.create_user(UserName=a)
    iam.create_user(UserName=b)
    serial, seed = create_device(iam)
    s = enable(iam, a, serial, seed)
    with aws_error("EntityAlreadyExists", 409, message="MFA Device is already in use."):
        iam.enable_mfa_device(
            UserName=b, SerialNumber=serial, AuthenticationCode1=totp(seed, s + 2), AuthenticationCode2=totp(seed, s + 3)
        )
    missing = f"arn:aws:iam::{account_id}:mfa/{unique('nodevice')}"
    with aws_error("NoSuchEntity", 404):
        iam.enable_mfa_device(UserName=b, SerialNumber=missing, AuthenticationCode1="123456", AuthenticationCode2="654321")
    with aws_error("NoSuchEntity", 404, message="The user with name nobody-x cannot be found."):
        iam.enable_mfa_device(
            UserName="nobody-x", SerialNumber=serial, AuthenticationCode1="123456", AuthenticationCode2="654321"
        )
    with aws_error("NoSuchEntity", 404):
        iam.list_mfa_devices(UserName="nobody-x")


def test_code_validation(iam_unvalidated):
    with aws_error("ValidationError", 400, match="at 'authenticationCode1' failed to satisfy constraint"):
        iam_unvalidated.enable_mfa_device(
            UserName="u", SerialNumber="arn:aws:iam::123456789012:mfa/x", AuthenticationCode1="12345a",
            AuthenticationCode2="123456",
        )
    with aws_error("ValidationError", 400, match="Member must have length greater than or equal to 9"):
        iam_unvalidated.delete_virtual_mfa_device(SerialNumber="short")


def test_tags(iam):
    serial, _ = create_device(iam, tags=[{"Key": "team", "Value": "red"}])
    assert iam.list_mfa_device_tags(SerialNumber=serial)["Tags"] == [{"Key": "team", "Value": "red"}]
    iam.tag_mfa_device(SerialNumber=serial, Tags=[{"Key": "env", "Value": "prod"}, {"Key": "TEAM", "Value": "blue"}])
    tags = {t["Key"]: t["Value"] for t in iam.list_mfa_device_tags(SerialNumber=serial)["Tags"]}
    assert tags == {"team": "blue", "env": "prod"}
    iam.untag_mfa_device(SerialNumber=serial, TagKeys=["team"])
    assert iam.list_mfa_device_tags(SerialNumber=serial)["Tags"] == [{"Key": "env", "Value": "prod"}]
    with aws_error("InvalidInput", 400):
        iam.tag_mfa_device(SerialNumber=serial, Tags=[{"Key": "aws:x", "Value": "1"}])
    iam.delete_virtual_mfa_device(SerialNumber=serial)
    with aws_error("NoSuchEntity", 404):
        iam.list_mfa_device_tags(SerialNumber=serial)


def test_rename_user_keeps_device(iam):
    user, renamed = unique("user"), unique("user")
    iam.create_user(UserName=user)
    serial, seed = create_device(iam)
    enable(iam, user, serial, seed)
    iam.update_user(UserName=user, NewUserName=renamed)
    assert [d["SerialNumber"] for d in iam.list_mfa_devices(UserName=renamed)["MFADevices"]] == [serial]
    iam.deactivate_mfa_device(UserName=renamed, SerialNumber=serial)


def test_account_summary_counts_devices(iam):
    def counts():
        m = iam.get_account_summary()["SummaryMap"]
        return m["MFADevices"], m["MFADevicesInUse"], m["AccountMFAEnabled"]

    before = counts()
    user = unique("user")
    iam.create_user(UserName=user)
    serial, seed = create_device(iam)
    assert counts() == (before[0] + 1, before[1], 0)
    enable(iam, user, serial, seed)
    assert counts() == (before[0] + 1, before[1] + 1, 0)
    iam.deactivate_mfa_device(UserName=user, SerialNumber=serial)
    iam.delete_virtual_mfa_device(SerialNumber=serial)
    assert counts() == before


def test_self_service_policy(server, iam, make_user, account_id):
    """The documented self-management policy: own mfa/ device and own user only."""
    u = make_user(
        inline=[
            policy(
                allow(["iam:CreateVirtualMFADevice", "iam:DeleteVirtualMFADevice"], "arn:aws:iam::*:mfa/${aws:username}"),
                allow(["iam:EnableMFADevice", "iam:ListMFADevices", "iam:DeactivateMFADevice", "iam:ResyncMFADevice"],
                      "arn:aws:iam::*:user/${aws:username}"),
            )
        ]
    )
    mine = u.iam
    dev = mine.create_virtual_mfa_device(VirtualMFADeviceName=u.name)["VirtualMFADevice"]
    serial, seed = dev["SerialNumber"], dev["Base32StringSeed"].decode()
    assert serial == f"arn:aws:iam::{account_id}:mfa/{u.name}"
    with aws_error("AccessDenied", 403, match="iam:CreateVirtualMFADevice"):
        mine.create_virtual_mfa_device(VirtualMFADeviceName=unique("other"))
    enable(mine, u.name, serial, seed)
    # Without UserName, ListMFADevices is about the caller.
    assert [d["SerialNumber"] for d in mine.list_mfa_devices()["MFADevices"]] == [serial]
    other = unique("user")
    iam.create_user(UserName=other)
    with aws_error("AccessDenied", 403, match="iam:ListMFADevices"):
        mine.list_mfa_devices(UserName=other)
    with aws_error("AccessDenied", 403, match="iam:ListVirtualMFADevices"):
        mine.list_virtual_mfa_devices()
    mine.deactivate_mfa_device(UserName=u.name, SerialNumber=serial)
    mine.delete_virtual_mfa_device(SerialNumber=serial)


def test_cli_writes_qr_png(aws_cli, tmp_path, iam):
    out = tmp_path / "qr.png"
    name = unique("mfa")
    r = aws_cli(
        "iam", "create-virtual-mfa-device", "--virtual-mfa-device-name", name,
        "--outfile", str(out), "--bootstrap-method", "QRCodePNG", check=True,
    )
    serial = r.json()["VirtualMFADevice"]["SerialNumber"]
    w, h = png_size(out.read_bytes())
    assert w == h
    seed_file = tmp_path / "seed.txt"
    aws_cli(
        "iam", "create-virtual-mfa-device", "--virtual-mfa-device-name", unique("mfa"),
        "--outfile", str(seed_file), "--bootstrap-method", "Base32StringSeed", check=True,
    )
    seed = seed_file.read_text().strip()
    assert len(base64.b32decode(seed)) == 40
    user = unique("user")
    iam.create_user(UserName=user)
    listed = aws_cli("iam", "list-virtual-mfa-devices", "--assignment-status", "Unassigned", check=True).json()
    assert serial in [d["SerialNumber"] for d in listed["VirtualMFADevices"]]
    r = aws_cli("iam", "enable-mfa-device", "--user-name", user, "--serial-number", serial,
                "--authentication-code1", "000000", "--authentication-code2", "000001")
    assert r.returncode != 0 and "InvalidAuthenticationCode" in r.stderr


def test_pagination(iam):
    user = unique("user")
    iam.create_user(UserName=user)
    devices = [create_device(iam) for _ in range(3)]
    for serial, seed in devices[:2]:
        enable(iam, user, serial, seed)
    listed, pages = collect_pages(iam.list_virtual_mfa_devices, "VirtualMFADevices", 2)
    serials = [d["SerialNumber"] for d in listed]
    assert len(serials) == len(set(serials)) and {d[0] for d in devices} <= set(serials)
    assert pages >= 2
    # Ordered by device name (case-insensitive).
    names = [s.rsplit("/", 1)[1].lower() for s in serials]
    assert names == sorted(names)
    mine, pages = collect_pages(iam.list_mfa_devices, "MFADevices", 1, UserName=user)
    assert sorted(d["SerialNumber"] for d in mine) == sorted(d[0] for d in devices[:2]) and pages == 2
