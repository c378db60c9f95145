//! Access keys, the credential store, bootstrap, last-used, STS GetCallerIdentity.

mod common;
use common::*;
use rampart_iam::Iam;
use rampart_service::CallerKind;
use rampart_store::{Read, ReadExt, Sealer, SqliteStore, Store};
use std::sync::Arc;
use time::OffsetDateTime;

#[test]
fn create_list_update_delete() {
    let h = H::new();
    h.ok("CreateUser", &[("UserName", "ann")]);
    let k = h.ok("CreateAccessKey", &[("UserName", "ann")]);
    let id = k.text("AccessKey/AccessKeyId");
    let secret = k.text("AccessKey/SecretAccessKey");
    assert!(id.starts_with("AKIA") && id.len() == 20, "{id}");
    assert_eq!(secret.len(), 40);
    assert_eq!(k.text("AccessKey/Status"), "Active");
    assert_eq!(k.text("AccessKey/UserName"), "ann");

    h.ok("CreateAccessKey", &[("UserName", "ann")]);
    let e = h.err("CreateAccessKey", &[("UserName", "ann")]);
    assert_err(&e, "LimitExceeded", 409);
    assert_eq!(e.message, "Cannot exceed quota for AccessKeysPerUser: 2");
    let l = h.ok("ListAccessKeys", &[("UserName", "ann")]);
    assert_eq!(l.members("AccessKeyMetadata").len(), 2);
    assert_eq!(l.text("IsTruncated"), "false");

    // The credential store authenticates with it.
    let cred = h.creds.lookup(&id).unwrap().unwrap();
    assert_eq!(cred.secret_access_key.expose(), secret);
    assert!(cred.active);
    assert_eq!(cred.caller.arn, format!("arn:aws:iam::{ACCT}:user/ann"));
    assert!(matches!(cred.caller.kind, CallerKind::IamUser { ref user_name, .. } if user_name == "ann"));

    h.ok("UpdateAccessKey", &[("UserName", "ann"), ("AccessKeyId", &id), ("Status", "Inactive")]);
    assert!(!h.creds.lookup(&id).unwrap().unwrap().active, "deactivation takes effect at once");
    let l = h.ok("ListAccessKeys", &[("UserName", "ann")]);
    assert!(l.member_texts("AccessKeyMetadata", "Status").contains(&"Inactive".to_string()));
    assert_err(
        &h.err("UpdateAccessKey", &[("AccessKeyId", &id), ("Status", "Bogus"), ("UserName", "ann")]),
        "ValidationError",
        400,
    );

    h.ok("DeleteAccessKey", &[("UserName", "ann"), ("AccessKeyId", &id)]);
    assert!(h.creds.lookup(&id).unwrap().is_none(), "deletion takes effect at once");
    let e = h.err("DeleteAccessKey", &[("UserName", "ann"), ("AccessKeyId", &id)]);
    assert_err(&e, "NoSuchEntity", 404);
    assert_eq!(e.message, format!("The Access Key with id {id} cannot be found."));
    assert_err(&h.err("CreateAccessKey", &[("UserName", "nobody")]), "NoSuchEntity", 404);
}

#[test]
fn keys_of_another_user_are_not_found() {
    let h = H::new();
    let a = h.user_with_key("a");
    h.ok("CreateUser", &[("UserName", "b")]);
    assert_err(&h.err("DeleteAccessKey", &[("UserName", "b"), ("AccessKeyId", &a)]), "NoSuchEntity", 404);
    assert_err(
        &h.err("UpdateAccessKey", &[("UserName", "b"), ("AccessKeyId", &a), ("Status", "Active")]),
        "NoSuchEntity",
        404,
    );
}

#[test]
fn secrets_are_sealed_at_rest() {
    let h = H::new();
    h.ok("CreateUser", &[("UserName", "s")]);
    let k = h.ok("CreateAccessKey", &[("UserName", "s")]);
    let secret = k.text("AccessKey/SecretAccessKey");
    for table in ["iam_access_keys", "iam_users", "iam_accounts"] {
        for (_, v) in h.store.scan(table, "", None, 0).unwrap() {
            let s = String::from_utf8_lossy(&v);
            assert!(!s.contains(&secret), "plaintext secret in {table}");
            assert!(!s.contains(ROOT_SECRET), "plaintext root secret in {table}");
        }
    }
}

#[test]
fn root_keys_and_bootstrap() {
    let h = H::new();
    let root = h.creds.lookup(ROOT_KEY).unwrap().unwrap();
    assert!(root.caller.is_root());
    assert_eq!(root.secret_access_key.expose(), ROOT_SECRET);
    assert_eq!(root.caller.arn, format!("arn:aws:iam::{ACCT}:root"));
    // Root manages its own keys when no UserName is given.
    let l = h.ok("ListAccessKeys", &[]);
    assert_eq!(l.member_texts("AccessKeyMetadata", "AccessKeyId"), vec![ROOT_KEY]);
    let k = h.ok("CreateAccessKey", &[]);
    assert!(!k.has("AccessKey/UserName"));
    assert_err(&h.err("CreateAccessKey", &[]), "LimitExceeded", 409);

    // Idempotent; a changed secret is taken; a changed key replaces the old one.
    h.iam.bootstrap_account(ACCT, ROOT_KEY, ROOT_SECRET).unwrap();
    h.iam.bootstrap_account(ACCT, ROOT_KEY, "another-secret").unwrap();
    assert_eq!(h.creds.lookup(ROOT_KEY).unwrap().unwrap().secret_access_key.expose(), "another-secret");
    h.iam.bootstrap_account(ACCT, "AKIANEWROOTKEY000001", "s2").unwrap();
    assert!(h.creds.lookup(ROOT_KEY).unwrap().is_none());
    assert!(h.creds.lookup("AKIANEWROOTKEY000001").unwrap().unwrap().caller.is_root());
    assert!(h.iam.bootstrap_account("12", "AKIA1", "s").is_err());
    // Another account cannot take over the key.
    assert!(h.iam.bootstrap_account("999988887777", "AKIANEWROOTKEY000001", "s").is_err());
}

#[test]
fn accounts_are_isolated() {
    let store: Arc<dyn Store> = Arc::new(SqliteStore::in_memory().unwrap());
    let iam = Iam::new(store, Arc::new(Sealer::new(&Sealer::generate_key())));
    iam.bootstrap_account("111111111111", "AKIAAAAAAAAAAAAAAAA1", "s1").unwrap();
    iam.bootstrap_account("222222222222", "AKIABBBBBBBBBBBBBBB2", "s2").unwrap();
    let creds = iam.credentials();
    assert_eq!(creds.lookup("AKIAAAAAAAAAAAAAAAA1").unwrap().unwrap().caller.account_id, "111111111111");
    assert_eq!(creds.lookup("AKIABBBBBBBBBBBBBBB2").unwrap().unwrap().caller.account_id, "222222222222");
}

#[test]
fn last_used() {
    let h = H::new();
    let id = h.user_with_key("lu");
    let r = h.ok("GetAccessKeyLastUsed", &[("AccessKeyId", &id)]);
    assert_eq!(r.text("UserName"), "lu");
    assert_eq!(r.text("AccessKeyLastUsed/ServiceName"), "N/A");
    assert_eq!(r.text("AccessKeyLastUsed/Region"), "N/A");
    assert!(!r.has("AccessKeyLastUsed/LastUsedDate"));
    let at = OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap();
    h.creds.record_use(&id, "iam", "eu-west-1", at);
    h.creds.record_use(&id, "iam", "eu-west-1", at + time::Duration::seconds(5));
    let r = h.ok("GetAccessKeyLastUsed", &[("AccessKeyId", &id)]);
    assert_eq!(r.text("AccessKeyLastUsed/ServiceName"), "iam");
    assert_eq!(r.text("AccessKeyLastUsed/Region"), "eu-west-1");
    assert_eq!(r.text("AccessKeyLastUsed/LastUsedDate"), "2023-11-14T22:13:20Z");
    h.creds.record_use(&id, "sts", "us-east-1", at + time::Duration::seconds(70));
    let r = h.ok("GetAccessKeyLastUsed", &[("AccessKeyId", &id)]);
    assert_eq!(r.text("AccessKeyLastUsed/ServiceName"), "sts");
    assert_err(&h.err("GetAccessKeyLastUsed", &[("AccessKeyId", "AKIAUNKNOWNUNKNOWN00")]), "NoSuchEntity", 404);
    // Recording use does not disturb the stored key.
    let v: Option<serde_json::Value> = h.store.get_json("iam_access_keys", &id).unwrap();
    assert!(v.is_some());
}

#[test]
fn get_caller_identity() {
    let h = H::new();
    let r = h.call_on(h.sts.as_ref(), &h.root(), "GetCallerIdentity", &[]).unwrap();
    assert_eq!(r.text("Account"), ACCT);
    assert_eq!(r.text("Arn"), format!("arn:aws:iam::{ACCT}:root"));
    assert_eq!(r.text("UserId"), ACCT);
    let key = h.user_with_key("who");
    let user_id = h.ok("GetUser", &[("UserName", "who")]).text("User/UserId");
    // Always allowed, even for a user without any policy.
    let r = h.call_on(h.sts.as_ref(), &h.ctx_for(&key), "GetCallerIdentity", &[]).unwrap();
    assert_eq!(r.text("Arn"), format!("arn:aws:iam::{ACCT}:user/who"));
    assert_eq!(r.text("UserId"), user_id);
    assert!(h.sts.has_operation("AssumeRoleWithSAML") && !h.sts.has_operation("GetDelegatedAccessToken"));
    assert_eq!(h.sts.signing_name(), "sts");
    assert_eq!(h.sts.xml_namespace(), "https://sts.amazonaws.com/doc/2011-06-15/");
}
