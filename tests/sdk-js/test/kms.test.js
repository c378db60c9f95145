// KMS through @aws-sdk/client-kms (awsJson1_1; blobs travel base64-encoded, the SDK hands out Uint8Array).

import assert from "node:assert/strict";
import {
  constants,
  createHmac,
  createPublicKey,
  createVerify,
  diffieHellman,
  generateKeyPairSync,
  publicEncrypt,
  randomBytes,
  randomUUID,
} from "node:crypto";
import { after, before, test } from "node:test";

import { CreateAccessKeyCommand, CreateUserCommand, IAMClient } from "@aws-sdk/client-iam";
import {
  CreateAliasCommand,
  CreateKeyCommand,
  DecapsulateCommand,
  DecryptCommand,
  DeleteAliasCommand,
  DeleteImportedKeyMaterialCommand,
  DeriveSharedSecretCommand,
  EncapsulateCommand,
  GenerateMacCommand,
  GetKeyLastUsageCommand,
  GetParametersForImportCommand,
  ImportKeyMaterialCommand,
  IncorrectKeyMaterialException,
  InvalidImportTokenException,
  InvalidKeyUsageException,
  KMSInvalidStateException,
  DescribeKeyCommand,
  DisableKeyCommand,
  DisabledException,
  EnableKeyCommand,
  EncryptCommand,
  GenerateDataKeyCommand,
  GenerateDataKeyWithoutPlaintextCommand,
  GenerateRandomCommand,
  GetPublicKeyCommand,
  KMSInvalidSignatureException,
  ReEncryptCommand,
  SignCommand,
  VerifyCommand,
  InvalidCiphertextException,
  KMSClient,
  KMSServiceException,
  ListAliasesCommand,
  ListResourceTagsCommand,
  NotFoundException,
  ScheduleKeyDeletionCommand,
  TagResourceCommand,
  UpdateAliasCommand,
  paginateListAliases,
  paginateListKeys,
} from "@aws-sdk/client-kms";

import { ALL_BYTES, UNICODE, implicitDeny, startServer, unique } from "../harness.js";

let srv, kms;
before(async () => {
  srv = await startServer();
  kms = srv.client(KMSClient);
});
after(async () => {
  await srv?.stop();
});

const createKey = async (input = {}) => (await kms.send(new CreateKeyCommand(input))).KeyMetadata;

test("CreateKey and DescribeKey; non-ASCII description and tags", async () => {
  const key = await createKey({ Description: `key ${UNICODE}`, Tags: [{ TagKey: "owner", TagValue: UNICODE }] });
  assert.match(key.KeyId, /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
  assert.equal(key.Arn, `arn:aws:kms:us-east-1:${srv.accountId}:key/${key.KeyId}`);
  assert.equal(key.AWSAccountId, srv.accountId);
  assert.equal(key.KeyState, "Enabled");
  assert.equal(key.KeyUsage, "ENCRYPT_DECRYPT");
  assert.equal(key.KeySpec, "SYMMETRIC_DEFAULT");
  assert.equal(key.Origin, "AWS_KMS");
  assert.ok(key.CreationDate instanceof Date);

  const described = (await kms.send(new DescribeKeyCommand({ KeyId: key.Arn }))).KeyMetadata;
  assert.equal(described.Description, `key ${UNICODE}`);
  assert.equal(described.KeyId, key.KeyId);

  await kms.send(new TagResourceCommand({ KeyId: key.KeyId, Tags: [{ TagKey: "日本語キー", TagValue: "✓" }] }));
  const tags = (await kms.send(new ListResourceTagsCommand({ KeyId: key.KeyId }))).Tags;
  assert.deepEqual(
    tags.toSorted((a, b) => (a.TagKey < b.TagKey ? -1 : 1)),
    [
      { TagKey: "owner", TagValue: UNICODE },
      { TagKey: "日本語キー", TagValue: "✓" },
    ],
  );
});

test("Encrypt and Decrypt round-trip every byte value; encryption context is bound", async () => {
  const key = await createKey();
  const context = { purpose: "sdk-js", note: UNICODE };
  const enc = await kms.send(new EncryptCommand({ KeyId: key.KeyId, Plaintext: ALL_BYTES, EncryptionContext: context }));
  assert.ok(enc.CiphertextBlob instanceof Uint8Array);
  assert.ok(enc.CiphertextBlob.length > ALL_BYTES.length);
  assert.equal(enc.KeyId, key.Arn);
  assert.equal(enc.EncryptionAlgorithm, "SYMMETRIC_DEFAULT");

  const dec = await kms.send(new DecryptCommand({ CiphertextBlob: enc.CiphertextBlob, EncryptionContext: context }));
  assert.ok(dec.Plaintext instanceof Uint8Array);
  assert.deepEqual(Buffer.from(dec.Plaintext), Buffer.from(ALL_BYTES));
  assert.equal(dec.KeyId, key.Arn);

  // Non-ASCII text as bytes.
  const text = new TextEncoder().encode(UNICODE);
  const enc2 = await kms.send(new EncryptCommand({ KeyId: key.Arn, Plaintext: text }));
  const dec2 = await kms.send(new DecryptCommand({ CiphertextBlob: enc2.CiphertextBlob, KeyId: key.KeyId }));
  assert.equal(new TextDecoder().decode(dec2.Plaintext), UNICODE);

  await assert.rejects(
    kms.send(new DecryptCommand({ CiphertextBlob: enc.CiphertextBlob, EncryptionContext: { purpose: "other" } })),
    (e) => {
      assert.ok(e instanceof InvalidCiphertextException, `${e.name}: ${e.message}`);
      assert.equal(e.$metadata.httpStatusCode, 400);
      return true;
    },
  );
  const tampered = Uint8Array.from(enc.CiphertextBlob);
  tampered[tampered.length - 1] ^= 1;
  await assert.rejects(
    kms.send(new DecryptCommand({ CiphertextBlob: tampered, EncryptionContext: context })),
    InvalidCiphertextException,
  );
});

test("GenerateDataKey: the plaintext key decrypts from its ciphertext blob", async () => {
  const key = await createKey();
  const dk = await kms.send(new GenerateDataKeyCommand({ KeyId: key.KeyId, KeySpec: "AES_256" }));
  assert.ok(dk.Plaintext instanceof Uint8Array);
  assert.equal(dk.Plaintext.length, 32);
  assert.equal(dk.KeyId, key.Arn);
  const back = await kms.send(new DecryptCommand({ CiphertextBlob: dk.CiphertextBlob }));
  assert.deepEqual(Buffer.from(back.Plaintext), Buffer.from(dk.Plaintext));

  const dk2 = await kms.send(new GenerateDataKeyCommand({ KeyId: key.KeyId, NumberOfBytes: 17 }));
  assert.equal(dk2.Plaintext.length, 17);

  const noPlain = await kms.send(new GenerateDataKeyWithoutPlaintextCommand({ KeyId: key.KeyId, KeySpec: "AES_128" }));
  assert.equal(noPlain.Plaintext, undefined);
  assert.equal((await kms.send(new DecryptCommand({ CiphertextBlob: noPlain.CiphertextBlob }))).Plaintext.length, 16);
});

test("ReEncrypt moves a ciphertext to another key; GenerateRandom returns bytes", async () => {
  const k1 = await createKey();
  const k2 = await createKey();
  const enc = await kms.send(new EncryptCommand({ KeyId: k1.KeyId, Plaintext: ALL_BYTES }));
  const re = await kms.send(new ReEncryptCommand({ CiphertextBlob: enc.CiphertextBlob, DestinationKeyId: k2.KeyId }));
  assert.equal(re.SourceKeyId, k1.Arn);
  assert.equal(re.KeyId, k2.Arn);
  const dec = await kms.send(new DecryptCommand({ CiphertextBlob: re.CiphertextBlob }));
  assert.equal(dec.KeyId, k2.Arn);
  assert.deepEqual(Buffer.from(dec.Plaintext), Buffer.from(ALL_BYTES));

  const random = (await kms.send(new GenerateRandomCommand({ NumberOfBytes: 64 }))).Plaintext;
  assert.ok(random instanceof Uint8Array);
  assert.equal(random.length, 64);
});

test("Sign and Verify with an asymmetric key; the public key verifies outside KMS", async () => {
  const key = await createKey({ KeySpec: "ECC_NIST_P256", KeyUsage: "SIGN_VERIFY" });
  const message = new TextEncoder().encode(`signed ${UNICODE}`);
  const signed = await kms.send(
    new SignCommand({ KeyId: key.KeyId, Message: message, MessageType: "RAW", SigningAlgorithm: "ECDSA_SHA_256" }),
  );
  assert.ok(signed.Signature instanceof Uint8Array);
  assert.equal(signed.SigningAlgorithm, "ECDSA_SHA_256");
  const verified = await kms.send(
    new VerifyCommand({
      KeyId: key.KeyId,
      Message: message,
      Signature: signed.Signature,
      SigningAlgorithm: "ECDSA_SHA_256",
    }),
  );
  assert.equal(verified.SignatureValid, true);

  const pub = await kms.send(new GetPublicKeyCommand({ KeyId: key.KeyId }));
  assert.ok(pub.PublicKey instanceof Uint8Array);
  assert.deepEqual(pub.SigningAlgorithms, ["ECDSA_SHA_256"]);
  const publicKey = createPublicKey({ key: Buffer.from(pub.PublicKey), format: "der", type: "spki" });
  assert.ok(createVerify("SHA256").update(message).verify(publicKey, Buffer.from(signed.Signature)));

  const other = new TextEncoder().encode("another message");
  await assert.rejects(
    kms.send(
      new VerifyCommand({ KeyId: key.KeyId, Message: other, Signature: signed.Signature, SigningAlgorithm: "ECDSA_SHA_256" }),
    ),
    (e) => e instanceof KMSInvalidSignatureException,
  );
});

test("aliases: create, use, list, retarget, delete", async () => {
  const k1 = await createKey();
  const k2 = await createKey();
  const alias = `alias/${unique("sdkjs")}`;
  await kms.send(new CreateAliasCommand({ AliasName: alias, TargetKeyId: k1.KeyId }));

  const enc = await kms.send(new EncryptCommand({ KeyId: alias, Plaintext: Uint8Array.of(1, 2, 3) }));
  assert.equal(enc.KeyId, k1.Arn);
  assert.equal((await kms.send(new DescribeKeyCommand({ KeyId: alias }))).KeyMetadata.KeyId, k1.KeyId);
  const aliasArn = `arn:aws:kms:us-east-1:${srv.accountId}:${alias}`;
  assert.equal((await kms.send(new DescribeKeyCommand({ KeyId: aliasArn }))).KeyMetadata.KeyId, k1.KeyId);

  const listed = (await kms.send(new ListAliasesCommand({ KeyId: k1.KeyId }))).Aliases;
  assert.equal(listed.length, 1);
  assert.equal(listed[0].AliasName, alias);
  assert.equal(listed[0].AliasArn, aliasArn);
  assert.equal(listed[0].TargetKeyId, k1.KeyId);

  await kms.send(new UpdateAliasCommand({ AliasName: alias, TargetKeyId: k2.KeyId }));
  assert.equal((await kms.send(new DescribeKeyCommand({ KeyId: alias }))).KeyMetadata.KeyId, k2.KeyId);
  // The ciphertext names k1: decrypting it still works after the alias moved.
  assert.deepEqual(
    [...(await kms.send(new DecryptCommand({ CiphertextBlob: enc.CiphertextBlob }))).Plaintext],
    [1, 2, 3],
  );

  await kms.send(new DeleteAliasCommand({ AliasName: alias }));
  await assert.rejects(kms.send(new DescribeKeyCommand({ KeyId: alias })), NotFoundException);
});

test("paginateListKeys and paginateListAliases follow NextMarker", async () => {
  const created = [];
  for (let i = 0; i < 5; i++) created.push((await createKey()).KeyId);
  const pages = [];
  for await (const page of paginateListKeys({ client: kms, pageSize: 2 }, {})) {
    assert.ok(page.Keys.length <= 2);
    pages.push(page.Keys.map((k) => k.KeyId));
  }
  const all = pages.flat();
  assert.ok(pages.length >= 3, `${pages.length} pages`);
  assert.equal(new Set(all).size, all.length, "no key on two pages");
  for (const id of created) assert.ok(all.includes(id), `${id} listed`);

  const prefix = unique("page");
  for (let i = 0; i < 5; i++) {
    await kms.send(new CreateAliasCommand({ AliasName: `alias/${prefix}-${i}`, TargetKeyId: created[i] }));
  }
  const aliasPages = [];
  for await (const page of paginateListAliases({ client: kms, pageSize: 2 }, {})) {
    assert.ok(page.Aliases.length <= 2);
    aliasPages.push(page.Aliases.map((a) => a.AliasName));
  }
  assert.ok(aliasPages.length >= 3);
  const mine = aliasPages.flat().filter((n) => n.startsWith(`alias/${prefix}-`));
  assert.deepEqual(mine.sort(), [0, 1, 2, 3, 4].map((i) => `alias/${prefix}-${i}`));
});

test("a key that does not exist is NotFoundException", async () => {
  const id = randomUUID();
  await assert.rejects(kms.send(new DescribeKeyCommand({ KeyId: id })), (e) => {
    assert.ok(e instanceof NotFoundException, `${e.name}: ${e.message}`);
    assert.ok(e instanceof KMSServiceException);
    assert.equal(e.name, "NotFoundException");
    assert.equal(e.$metadata.httpStatusCode, 400);
    assert.equal(e.message, `Key 'arn:aws:kms:us-east-1:${srv.accountId}:key/${id}' does not exist`);
    return true;
  });
  await assert.rejects(kms.send(new DescribeKeyCommand({ KeyId: "alias/does-not-exist" })), (e) => {
    assert.ok(e instanceof NotFoundException);
    assert.equal(e.message, `Alias arn:aws:kms:us-east-1:${srv.accountId}:alias/does-not-exist is not found.`);
    return true;
  });
});

test("a disabled key is DisabledException; deletion is scheduled", async () => {
  const key = await createKey();
  await kms.send(new DisableKeyCommand({ KeyId: key.KeyId }));
  await assert.rejects(
    kms.send(new EncryptCommand({ KeyId: key.KeyId, Plaintext: Uint8Array.of(0) })),
    (e) => e instanceof DisabledException,
  );
  await kms.send(new EnableKeyCommand({ KeyId: key.KeyId }));
  const del = await kms.send(new ScheduleKeyDeletionCommand({ KeyId: key.KeyId, PendingWindowInDays: 7 }));
  assert.equal(del.KeyId, key.Arn);
  assert.equal(del.KeyState, "PendingDeletion");
  assert.ok(del.DeletionDate instanceof Date);
  assert.equal((await kms.send(new DescribeKeyCommand({ KeyId: key.KeyId }))).KeyMetadata.KeyState, "PendingDeletion");
});

test("a user without policies gets AccessDeniedException with AWS's message", async () => {
  const key = await createKey();
  const iam = srv.client(IAMClient);
  const name = unique("nobody");
  const { User } = await iam.send(new CreateUserCommand({ UserName: name }));
  const { AccessKey } = await iam.send(new CreateAccessKeyCommand({ UserName: name }));
  const asUser = srv.client(KMSClient, { accessKeyId: AccessKey.AccessKeyId, secretAccessKey: AccessKey.SecretAccessKey });

  await assert.rejects(asUser.send(new EncryptCommand({ KeyId: key.KeyId, Plaintext: Uint8Array.of(1) })), (e) => {
    // client-kms models no AccessDeniedException shape: its service exception carries the code as name.
    assert.ok(e instanceof KMSServiceException, `${e.constructor.name}: ${e.message}`);
    assert.equal(e.name, "AccessDeniedException");
    assert.equal(e.$metadata.httpStatusCode, 400);
    assert.equal(e.message, implicitDeny(User.Arn, "kms:Encrypt", key.Arn));
    return true;
  });
  await assert.rejects(asUser.send(new CreateKeyCommand({})), (e) => {
    assert.equal(e.name, "AccessDeniedException");
    assert.equal(e.message, implicitDeny(User.Arn, "kms:CreateKey", "*"));
    return true;
  });
});

test("DeriveSharedSecret: ECDH with a KEY_AGREEMENT key equals Node's own", async () => {
  const key = await createKey({ KeySpec: "ECC_NIST_P384", KeyUsage: "KEY_AGREEMENT" });
  assert.deepEqual(key.KeyAgreementAlgorithms, ["ECDH"]);
  const { PublicKey } = await kms.send(new GetPublicKeyCommand({ KeyId: key.KeyId }));
  const peer = generateKeyPairSync("ec", { namedCurve: "P-384" });
  const out = await kms.send(
    new DeriveSharedSecretCommand({
      KeyId: key.KeyId,
      KeyAgreementAlgorithm: "ECDH",
      PublicKey: peer.publicKey.export({ format: "der", type: "spki" }),
    }),
  );
  assert.ok(out.SharedSecret instanceof Uint8Array);
  assert.equal(out.KeyId, key.Arn);
  assert.equal(out.KeyOrigin, "AWS_KMS");
  const expected = diffieHellman({
    privateKey: peer.privateKey,
    publicKey: createPublicKey({ key: Buffer.from(PublicKey), format: "der", type: "spki" }),
  });
  assert.deepEqual(Buffer.from(out.SharedSecret), expected);

  const sign = await createKey({ KeySpec: "ECC_NIST_P384", KeyUsage: "SIGN_VERIFY" });
  await assert.rejects(
    kms.send(new DeriveSharedSecretCommand({ KeyId: sign.KeyId, KeyAgreementAlgorithm: "ECDH", PublicKey })),
    (e) => e instanceof InvalidKeyUsageException,
  );
});

test("Encapsulate / Decapsulate with an ML-KEM key", async () => {
  const key = await createKey({ KeySpec: "ML_KEM_768", KeyUsage: "ENCAPSULATE_DECAPSULATE" });
  assert.deepEqual(key.EncapsulationAlgorithms, ["ML_KEM"]);
  const enc = await kms.send(new EncapsulateCommand({ KeyId: key.KeyId, EncapsulationAlgorithm: "ML_KEM" }));
  assert.equal(enc.SharedSecret.length, 32);
  assert.equal(enc.SharedSecretCiphertextBlob.length, 1088);
  const dec = await kms.send(
    new DecapsulateCommand({
      KeyId: key.Arn,
      EncapsulationAlgorithm: "ML_KEM",
      SharedSecretCiphertextBlob: enc.SharedSecretCiphertextBlob,
    }),
  );
  assert.deepEqual(dec.SharedSecret, enc.SharedSecret);
  const last = await kms.send(new GetKeyLastUsageCommand({ KeyId: key.KeyId }));
  assert.equal(last.KeyLastUsage.Operation, "Decapsulate");
  assert.ok(last.KeyLastUsage.Timestamp instanceof Date);
  assert.equal(last.KeyLastUsage.KmsRequestId, dec.$metadata.requestId);
});

const wrapForImport = (publicKeyDer, material) =>
  publicEncrypt(
    {
      key: createPublicKey({ key: Buffer.from(publicKeyDer), format: "der", type: "spki" }),
      padding: constants.RSA_PKCS1_OAEP_PADDING,
      oaepHash: "sha256",
    },
    material,
  );

test("imported key material: import, use, delete, re-import; the token is bound to its key", async () => {
  const key = await createKey({ Origin: "EXTERNAL", KeySpec: "HMAC_256", KeyUsage: "GENERATE_VERIFY_MAC" });
  assert.equal(key.KeyState, "PendingImport");
  assert.equal(key.Origin, "EXTERNAL");
  const params = await kms.send(
    new GetParametersForImportCommand({ KeyId: key.KeyId, WrappingAlgorithm: "RSAES_OAEP_SHA_256", WrappingKeySpec: "RSA_2048" }),
  );
  assert.ok(params.ParametersValidTo instanceof Date);
  const material = randomBytes(32);
  const wrapped = wrapForImport(params.PublicKey, material);
  const other = await createKey({ Origin: "EXTERNAL", KeySpec: "HMAC_256", KeyUsage: "GENERATE_VERIFY_MAC" });
  await assert.rejects(
    kms.send(
      new ImportKeyMaterialCommand({
        KeyId: other.KeyId,
        ImportToken: params.ImportToken,
        EncryptedKeyMaterial: wrapped,
        ExpirationModel: "KEY_MATERIAL_DOES_NOT_EXPIRE",
      }),
    ),
    (e) => e instanceof InvalidImportTokenException,
  );
  const imported = await kms.send(
    new ImportKeyMaterialCommand({
      KeyId: key.KeyId,
      ImportToken: params.ImportToken,
      EncryptedKeyMaterial: wrapped,
      ExpirationModel: "KEY_MATERIAL_EXPIRES",
      ValidTo: new Date(Date.now() + 7 * 86400_000),
    }),
  );
  assert.match(imported.KeyMaterialId, /^[0-9a-f]{64}$/);
  const described = (await kms.send(new DescribeKeyCommand({ KeyId: key.KeyId }))).KeyMetadata;
  assert.equal(described.KeyState, "Enabled");
  assert.equal(described.ExpirationModel, "KEY_MATERIAL_EXPIRES");
  assert.ok(described.ValidTo instanceof Date);
  const { Mac } = await kms.send(new GenerateMacCommand({ KeyId: key.KeyId, Message: ALL_BYTES, MacAlgorithm: "HMAC_SHA_256" }));
  assert.deepEqual(Buffer.from(Mac), createHmac("sha256", material).update(ALL_BYTES).digest());

  await kms.send(new DeleteImportedKeyMaterialCommand({ KeyId: key.KeyId }));
  await assert.rejects(
    kms.send(new GenerateMacCommand({ KeyId: key.KeyId, Message: ALL_BYTES, MacAlgorithm: "HMAC_SHA_256" })),
    (e) => e instanceof KMSInvalidStateException,
  );
  const again = await kms.send(
    new GetParametersForImportCommand({ KeyId: key.Arn, WrappingAlgorithm: "RSAES_OAEP_SHA_256", WrappingKeySpec: "RSA_3072" }),
  );
  await assert.rejects(
    kms.send(
      new ImportKeyMaterialCommand({
        KeyId: key.KeyId,
        ImportToken: again.ImportToken,
        EncryptedKeyMaterial: wrapForImport(again.PublicKey, randomBytes(32)),
        ExpirationModel: "KEY_MATERIAL_DOES_NOT_EXPIRE",
      }),
    ),
    (e) => e instanceof IncorrectKeyMaterialException,
  );
  await kms.send(
    new ImportKeyMaterialCommand({
      KeyId: key.KeyId,
      ImportToken: again.ImportToken,
      EncryptedKeyMaterial: wrapForImport(again.PublicKey, material),
      ExpirationModel: "KEY_MATERIAL_DOES_NOT_EXPIRE",
    }),
  );
  const mac2 = await kms.send(new GenerateMacCommand({ KeyId: key.KeyId, Message: ALL_BYTES, MacAlgorithm: "HMAC_SHA_256" }));
  assert.deepEqual(mac2.Mac, Mac);
});
