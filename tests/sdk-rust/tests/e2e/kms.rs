//! KMS (awsJson1.1, blobs as base64): keys, Encrypt/Decrypt, data keys, aliases, tags.

use aws_sdk_kms::operation::decrypt::DecryptError;
use aws_sdk_kms::operation::describe_key::DescribeKeyError;
use aws_sdk_kms::operation::encrypt::EncryptError;
use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::{DataKeySpec, KeySpec, KeyState, KeyUsageType, Tag};
use aws_sdk_kms::Client;
use rampart_sdk_rust_tests::{all_bytes, code_message, status, Server, NON_ASCII};

#[tokio::test]
async fn keys_encrypt_decrypt_data_keys_and_aliases() {
    let srv = Server::start();
    let kms = Client::new(&srv.root_config().await);
    let tag = Tag::builder().tag_key("owner").tag_value(NON_ASCII).build().unwrap();
    let created = kms.create_key().description(NON_ASCII).tags(tag.clone()).send().await.unwrap();
    let meta = created.key_metadata().unwrap();
    let key_id = meta.key_id().to_string();
    let key_arn = format!("arn:aws:kms:us-east-1:{}:key/{key_id}", srv.account_id);
    assert_eq!(meta.arn(), Some(key_arn.as_str()));
    assert_eq!(meta.aws_account_id(), Some(srv.account_id.as_str()));
    assert_eq!(meta.key_state(), Some(&KeyState::Enabled));
    assert_eq!(meta.key_usage(), Some(&KeyUsageType::EncryptDecrypt));
    assert_eq!(meta.key_spec(), Some(&KeySpec::SymmetricDefault));
    assert_eq!(meta.description(), Some(NON_ASCII));

    let described = kms.describe_key().key_id(&key_id).send().await.unwrap();
    assert_eq!(described.key_metadata().unwrap().description(), Some(NON_ASCII));
    let tags = kms.list_resource_tags().key_id(&key_id).send().await.unwrap();
    assert_eq!(tags.tags(), [tag]);

    // Binary plaintext (every byte value) with a non-ASCII encryption context.
    let plaintext = all_bytes();
    let enc = kms
        .encrypt()
        .key_id(&key_id)
        .plaintext(Blob::new(plaintext.clone()))
        .encryption_context("purpose", NON_ASCII)
        .send()
        .await
        .unwrap();
    assert_eq!(enc.key_id(), Some(key_arn.as_str()));
    let ciphertext = enc.ciphertext_blob().unwrap().clone();
    assert!(ciphertext.as_ref().len() > plaintext.len());
    let dec = kms
        .decrypt()
        .ciphertext_blob(ciphertext.clone())
        .encryption_context("purpose", NON_ASCII)
        .send()
        .await
        .unwrap();
    assert_eq!(dec.plaintext().unwrap().as_ref(), plaintext.as_slice());
    assert_eq!(dec.key_id(), Some(key_arn.as_str()));
    // Another context does not decrypt: a typed InvalidCiphertextException.
    let err =
        kms.decrypt().ciphertext_blob(ciphertext).encryption_context("purpose", "naive").send().await.unwrap_err();
    assert_eq!(status(&err), 400);
    assert!(matches!(err.into_service_error(), DecryptError::InvalidCiphertextException(_)));

    // Data keys.
    let dk = kms.generate_data_key().key_id(&key_id).key_spec(DataKeySpec::Aes256).send().await.unwrap();
    let dk_plain = dk.plaintext().unwrap().as_ref().to_vec();
    assert_eq!(dk_plain.len(), 32);
    let dk_dec = kms.decrypt().ciphertext_blob(dk.ciphertext_blob().unwrap().clone()).send().await.unwrap();
    assert_eq!(dk_dec.plaintext().unwrap().as_ref(), dk_plain.as_slice());
    let nb = kms.generate_data_key_without_plaintext().key_id(&key_id).number_of_bytes(64).send().await.unwrap();
    let nb_dec = kms.decrypt().ciphertext_blob(nb.ciphertext_blob().unwrap().clone()).send().await.unwrap();
    assert_eq!(nb_dec.plaintext().unwrap().as_ref().len(), 64);
    let random = kms.generate_random().number_of_bytes(1024).send().await.unwrap();
    assert_eq!(random.plaintext().unwrap().as_ref().len(), 1024);

    // Aliases: create, use in place of the key ID, list, delete.
    kms.create_alias().alias_name("alias/sdk-rust").target_key_id(&key_id).send().await.unwrap();
    let enc = kms.encrypt().key_id("alias/sdk-rust").plaintext(Blob::new(NON_ASCII.as_bytes())).send().await.unwrap();
    let dec = kms.decrypt().ciphertext_blob(enc.ciphertext_blob().unwrap().clone()).send().await.unwrap();
    assert_eq!(std::str::from_utf8(dec.plaintext().unwrap().as_ref()).unwrap(), NON_ASCII);
    let aliases = kms.list_aliases().key_id(&key_id).send().await.unwrap();
    let aliases: Vec<_> =
        aliases.aliases().iter().map(|a| (a.alias_name(), a.target_key_id(), a.alias_arn())).collect();
    let alias_arn = format!("arn:aws:kms:us-east-1:{}:alias/sdk-rust", srv.account_id);
    assert_eq!(aliases, [(Some("alias/sdk-rust"), Some(key_id.as_str()), Some(alias_arn.as_str()))]);
    assert_eq!(
        kms.describe_key().key_id("alias/sdk-rust").send().await.unwrap().key_metadata().unwrap().key_id(),
        key_id
    );
    kms.delete_alias().alias_name("alias/sdk-rust").send().await.unwrap();
    let err = kms.encrypt().key_id("alias/sdk-rust").plaintext(Blob::new(b"x".to_vec())).send().await.unwrap_err();
    assert!(matches!(err.into_service_error(), EncryptError::NotFoundException(_)));

    // Disable, then schedule deletion.
    kms.disable_key().key_id(&key_id).send().await.unwrap();
    let err = kms.encrypt().key_id(&key_id).plaintext(Blob::new(b"x".to_vec())).send().await.unwrap_err();
    assert!(matches!(err.into_service_error(), EncryptError::DisabledException(_)));
    let del = kms.schedule_key_deletion().key_id(&key_id).pending_window_in_days(7).send().await.unwrap();
    assert_eq!(del.key_state(), Some(&KeyState::PendingDeletion));
    assert_eq!(del.pending_window_in_days(), Some(7));
    assert!(del.deletion_date().is_some());
    srv.stop();
}

#[tokio::test]
async fn list_keys_and_aliases_paginators() {
    let srv = Server::start();
    let kms = Client::new(&srv.root_config().await);
    let mut ids = Vec::new();
    for i in 0..5 {
        let key = kms.create_key().send().await.unwrap();
        let id = key.key_metadata().unwrap().key_id().to_string();
        kms.create_alias().alias_name(format!("alias/k{i}")).target_key_id(&id).send().await.unwrap();
        ids.push(id);
    }
    let mut pages = kms.list_keys().limit(2).into_paginator().send();
    let mut sizes = Vec::new();
    let mut seen = Vec::new();
    while let Some(page) = pages.next().await {
        let page = page.unwrap();
        sizes.push(page.keys().len());
        seen.extend(page.keys().iter().map(|k| k.key_id().unwrap().to_string()));
    }
    assert_eq!(sizes, [2, 2, 1]);
    seen.sort();
    ids.sort();
    assert_eq!(seen, ids);

    let aliases: Vec<_> =
        kms.list_aliases().limit(2).into_paginator().items().send().collect::<Result<Vec<_>, _>>().await.unwrap();
    let names: Vec<_> =
        aliases.iter().filter_map(|a| a.alias_name()).filter(|n| !n.starts_with("alias/aws/")).collect();
    assert_eq!(names.len(), 5, "{names:?}");
    for i in 0..5 {
        assert!(names.contains(&format!("alias/k{i}").as_str()), "{names:?}");
    }
    srv.stop();
}

#[tokio::test]
async fn user_without_policies_is_denied() {
    let srv = Server::start();
    let root = srv.root_config().await;
    let key_id = Client::new(&root).create_key().send().await.unwrap().key_metadata().unwrap().key_id().to_string();
    let user = srv.make_user(&aws_sdk_iam::Client::new(&root), &[]).await;
    let kms = Client::new(&srv.user_config(&user).await);

    let err = kms.create_key().send().await.unwrap_err();
    assert_eq!(status(&err), 400);
    let (code, message) = code_message(&err);
    assert_eq!(code, "AccessDeniedException");
    assert_eq!(
        message,
        format!(
            "User: {} is not authorized to perform: kms:CreateKey on resource: * because no identity-based \
             policy allows the kms:CreateKey action",
            user.arn
        )
    );
    let err = kms.encrypt().key_id(&key_id).plaintext(Blob::new(b"x".to_vec())).send().await.unwrap_err();
    let (code, message) = code_message(&err);
    assert_eq!(code, "AccessDeniedException");
    assert!(message.contains("kms:Encrypt"), "{message}");
    srv.stop();
}

#[tokio::test]
async fn not_found_is_a_typed_error() {
    let srv = Server::start();
    let kms = Client::new(&srv.root_config().await);
    let missing = "11111111-2222-3333-4444-555555555555";
    let err = kms.describe_key().key_id(missing).send().await.unwrap_err();
    assert_eq!(status(&err), 400);
    match err.into_service_error() {
        DescribeKeyError::NotFoundException(e) => assert_eq!(
            e.message(),
            Some(format!("Key 'arn:aws:kms:us-east-1:{}:key/{missing}' does not exist", srv.account_id).as_str())
        ),
        other => panic!("expected NotFoundException, got {other:?}"),
    }
    let err = kms.encrypt().key_id("alias/nope").plaintext(Blob::new(b"x".to_vec())).send().await.unwrap_err();
    assert!(matches!(err.into_service_error(), EncryptError::NotFoundException(_)));
    srv.stop();
}

#[tokio::test]
async fn derive_shared_secret_agrees_between_two_keys() {
    use aws_sdk_kms::operation::derive_shared_secret::DeriveSharedSecretError;
    use aws_sdk_kms::types::KeyAgreementAlgorithmSpec;
    let srv = Server::start();
    let kms = Client::new(&srv.root_config().await);
    let mut keys = Vec::new();
    for _ in 0..2 {
        let md = kms
            .create_key()
            .key_spec(KeySpec::EccNistP256)
            .key_usage(KeyUsageType::KeyAgreement)
            .send()
            .await
            .unwrap()
            .key_metadata
            .unwrap();
        assert_eq!(md.key_agreement_algorithms(), [KeyAgreementAlgorithmSpec::Ecdh]);
        let public = kms.get_public_key().key_id(md.key_id()).send().await.unwrap().public_key.unwrap();
        keys.push((md.key_id().to_string(), public));
    }
    let derive = |key: String, public: Blob| {
        let kms = kms.clone();
        async move {
            kms.derive_shared_secret()
                .key_id(key)
                .key_agreement_algorithm(KeyAgreementAlgorithmSpec::Ecdh)
                .public_key(public)
                .send()
                .await
        }
    };
    let ab = derive(keys[0].0.clone(), keys[1].1.clone()).await.unwrap();
    let ba = derive(keys[1].0.clone(), keys[0].1.clone()).await.unwrap();
    assert_eq!(ab.shared_secret().unwrap().as_ref().len(), 32);
    assert_eq!(ab.shared_secret(), ba.shared_secret());
    assert_eq!(ab.key_origin().map(|o| o.as_str()), Some("AWS_KMS"));

    let sign =
        kms.create_key().key_spec(KeySpec::EccNistP256).key_usage(KeyUsageType::SignVerify).send().await.unwrap();
    let err = derive(sign.key_metadata().unwrap().key_id().to_string(), keys[0].1.clone()).await.unwrap_err();
    assert_eq!(status(&err), 400);
    assert!(matches!(err.into_service_error(), DeriveSharedSecretError::InvalidKeyUsageException(_)));
    srv.stop();
}

/// The client side of BYOK as AWS's guide does it: `openssl pkeyutl` wraps the material with the
/// public key of GetParametersForImport (RSAES-OAEP with SHA-256).
fn openssl_wrap(public_der: &[u8], material: &[u8]) -> Vec<u8> {
    let dir = std::env::temp_dir().join(rampart_sdk_rust_tests::unique("byok"));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("pub.der"), public_der).unwrap();
    std::fs::write(dir.join("material.bin"), material).unwrap();
    let out = std::process::Command::new("openssl")
        .args(["pkeyutl", "-encrypt", "-pubin", "-keyform", "DER", "-inkey"])
        .arg(dir.join("pub.der"))
        .arg("-in")
        .arg(dir.join("material.bin"))
        .args(["-pkeyopt", "rsa_padding_mode:oaep", "-pkeyopt", "rsa_oaep_md:sha256", "-pkeyopt", "rsa_mgf1_md:sha256"])
        .output()
        .expect("openssl is needed for this test");
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    out.stdout
}

#[tokio::test]
async fn imported_key_material_round_trip() {
    use aws_sdk_kms::types::{AlgorithmSpec, ExpirationModelType, OriginType, WrappingKeySpec};
    let srv = Server::start();
    let kms = Client::new(&srv.root_config().await);
    let md = kms.create_key().origin(OriginType::External).send().await.unwrap().key_metadata.unwrap();
    assert_eq!(md.key_state(), Some(&KeyState::PendingImport));
    let key_id = md.key_id().to_string();
    let material = kms.generate_random().number_of_bytes(32).send().await.unwrap().plaintext.unwrap();
    let import = |material: Blob| {
        let kms = kms.clone();
        let key_id = key_id.clone();
        async move {
            let params = kms
                .get_parameters_for_import()
                .key_id(&key_id)
                .wrapping_algorithm(AlgorithmSpec::RsaesOaepSha256)
                .wrapping_key_spec(WrappingKeySpec::Rsa2048)
                .send()
                .await
                .unwrap();
            let wrapped = openssl_wrap(params.public_key().unwrap().as_ref(), material.as_ref());
            kms.import_key_material()
                .key_id(&key_id)
                .import_token(params.import_token.unwrap())
                .encrypted_key_material(Blob::new(wrapped))
                .expiration_model(ExpirationModelType::KeyMaterialDoesNotExpire)
                .send()
                .await
        }
    };
    let imported = import(material.clone()).await.unwrap();
    assert_eq!(imported.key_material_id().map(str::len), Some(64));
    let plaintext = all_bytes();
    let blob = kms.encrypt().key_id(&key_id).plaintext(Blob::new(plaintext.clone())).send().await.unwrap();
    let blob = blob.ciphertext_blob.unwrap();
    kms.delete_imported_key_material().key_id(&key_id).send().await.unwrap();
    let err = kms.decrypt().ciphertext_blob(blob.clone()).send().await.unwrap_err();
    assert!(matches!(err.into_service_error(), DecryptError::KmsInvalidStateException(_)));
    let wrong = import(Blob::new(vec![7u8; 32])).await.unwrap_err();
    assert_eq!(code_message(&wrong).0, "IncorrectKeyMaterialException");
    import(material).await.unwrap();
    let dec = kms.decrypt().ciphertext_blob(blob).send().await.unwrap();
    assert_eq!(dec.plaintext().unwrap().as_ref(), plaintext.as_slice());
    srv.stop();
}

#[tokio::test]
async fn ml_kem_encapsulate_decapsulate() {
    use aws_sdk_kms::types::EncapsulationAlgorithmSpec;
    let srv = Server::start();
    let kms = Client::new(&srv.root_config().await);
    let md = kms
        .create_key()
        .key_spec(KeySpec::MlKem1024)
        .key_usage(KeyUsageType::EncapsulateDecapsulate)
        .send()
        .await
        .unwrap()
        .key_metadata
        .unwrap();
    let enc = kms
        .encapsulate()
        .key_id(md.key_id())
        .encapsulation_algorithm(EncapsulationAlgorithmSpec::MlKem)
        .send()
        .await
        .unwrap();
    let dec = kms
        .decapsulate()
        .key_id(md.arn().unwrap())
        .encapsulation_algorithm(EncapsulationAlgorithmSpec::MlKem)
        .shared_secret_ciphertext_blob(enc.shared_secret_ciphertext_blob().unwrap().clone())
        .send()
        .await
        .unwrap();
    assert_eq!(dec.shared_secret(), enc.shared_secret());
    assert_eq!(enc.shared_secret().unwrap().as_ref().len(), 32);
    srv.stop();
}
