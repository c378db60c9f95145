//! Flags of `run` and `setup`.

pub const USAGE: &str =
    "flags: --url URL[,URL…] --op iam-get-user|sts-get-caller-identity|sts-assume-role|iam-tag-user|\
iam-create-user|kms-encrypt|kms-decrypt|kms-generate-data-key|secrets-get-secret-value|http-floor --connections N --count M --access-key AK --secret SK [--region R] \
[--user-name NAME] [--key-id ID] [--ciphertext BASE64] [--timeout-s S]";

/// The operations the benchmark measures.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    IamGetUser,
    StsGetCallerIdentity,
    /// AssumeRole of `bench-role` (trusting the account root), as the root.
    StsAssumeRole,
    /// A durable write: TagUser on the benchmark user (same tag each time, so nothing grows).
    IamTagUser,
    /// Setup only: create the user `IamGetUser` reads.
    IamCreateUser,
    /// A durable write that grows the store: CreateUser of a new user per call (names made
    /// unique per run; AWS's quota is 5,000 users per account).
    IamCreateUsers,
    /// Setup only: create `bench-role`.
    IamCreateRole,
    /// kms:Encrypt of 32 bytes under `--key-id`.
    KmsEncrypt,
    /// kms:Decrypt of `--ciphertext`.
    KmsDecrypt,
    /// kms:GenerateDataKey (AES_256) under `--key-id`.
    KmsGenerateDataKey,
    /// Setup only: kms:CreateKey.
    KmsCreateKey,
    /// secretsmanager:GetSecretValue of `bench-secret`.
    SecretsGetSecretValue,
    /// Setup only: secretsmanager:CreateSecret of `bench-secret`.
    SecretsCreateSecret,
    /// `GET /_rampart/health` (unsigned, no pipeline): the HTTP server's own cost per call, the
    /// floor under every API call (Rampart only).
    HttpFloor,
}

impl Op {
    pub fn parse(s: &str) -> Result<Op, String> {
        match s {
            "iam-get-user" => Ok(Op::IamGetUser),
            "sts-get-caller-identity" => Ok(Op::StsGetCallerIdentity),
            "sts-assume-role" => Ok(Op::StsAssumeRole),
            "iam-tag-user" => Ok(Op::IamTagUser),
            "iam-create-user" => Ok(Op::IamCreateUsers),
            "secrets-get-secret-value" => Ok(Op::SecretsGetSecretValue),
            "kms-encrypt" => Ok(Op::KmsEncrypt),
            "kms-decrypt" => Ok(Op::KmsDecrypt),
            "kms-generate-data-key" => Ok(Op::KmsGenerateDataKey),
            "http-floor" => Ok(Op::HttpFloor),
            _ => Err(format!(
                "unknown --op {s:?} (iam-get-user | sts-get-caller-identity | sts-assume-role | iam-tag-user | iam-create-user | kms-encrypt | kms-decrypt | kms-generate-data-key | secrets-get-secret-value | http-floor)"
            )),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Op::IamGetUser => "iam:GetUser",
            Op::StsGetCallerIdentity => "sts:GetCallerIdentity",
            Op::StsAssumeRole => "sts:AssumeRole",
            Op::IamCreateUser | Op::IamCreateUsers => "iam:CreateUser",
            Op::SecretsGetSecretValue => "secretsmanager:GetSecretValue",
            Op::SecretsCreateSecret => "secretsmanager:CreateSecret",
            Op::IamCreateRole => "iam:CreateRole",
            Op::IamTagUser => "iam:TagUser",
            Op::KmsEncrypt => "kms:Encrypt",
            Op::KmsDecrypt => "kms:Decrypt",
            Op::KmsGenerateDataKey => "kms:GenerateDataKey",
            Op::KmsCreateKey => "kms:CreateKey",
            Op::HttpFloor => "GET /_rampart/health",
        }
    }

    /// The SigV4 signing name.
    pub fn service(self) -> &'static str {
        match self {
            Op::IamGetUser | Op::IamCreateUser | Op::IamCreateUsers | Op::IamCreateRole | Op::IamTagUser => "iam",
            Op::SecretsGetSecretValue | Op::SecretsCreateSecret => "secretsmanager",
            Op::StsGetCallerIdentity | Op::StsAssumeRole => "sts",
            Op::KmsEncrypt | Op::KmsDecrypt | Op::KmsGenerateDataKey | Op::KmsCreateKey => "kms",
            Op::HttpFloor => "",
        }
    }

    /// The awsJson `X-Amz-Target` (KMS), `None` for awsQuery operations.
    pub fn json_target(self) -> Option<&'static str> {
        match self {
            Op::KmsEncrypt => Some("TrentService.Encrypt"),
            Op::KmsDecrypt => Some("TrentService.Decrypt"),
            Op::KmsGenerateDataKey => Some("TrentService.GenerateDataKey"),
            Op::KmsCreateKey => Some("TrentService.CreateKey"),
            Op::SecretsGetSecretValue => Some("secretsmanager.GetSecretValue"),
            Op::SecretsCreateSecret => Some("secretsmanager.CreateSecret"),
            _ => None,
        }
    }
}

#[derive(Clone, Debug)]
pub struct Args {
    pub url: String,
    pub op: Op,
    pub connections: usize,
    pub count: usize,
    pub access_key: String,
    pub secret: String,
    pub region: String,
    pub user_name: String,
    /// KMS key for kms-encrypt / kms-generate-data-key.
    pub key_id: String,
    /// Base64 ciphertext blob for kms-decrypt.
    pub ciphertext: String,
    pub timeout_s: u64,
}

impl Args {
    pub fn parse(argv: &[String]) -> Result<Args, String> {
        let mut a = Args {
            url: String::new(),
            op: Op::StsGetCallerIdentity,
            connections: 1,
            count: 1,
            access_key: String::new(),
            secret: String::new(),
            region: "us-east-1".into(),
            user_name: "bench-user".into(),
            key_id: String::new(),
            ciphertext: String::new(),
            timeout_s: 600,
        };
        let mut it = argv.iter();
        while let Some(flag) = it.next() {
            let mut value = || it.next().cloned().ok_or_else(|| format!("{flag} needs a value"));
            match flag.as_str() {
                // Several URLs (comma-separated): connections are spread over them round-robin.
                "--url" => a.url = value()?.split(',').map(|u| u.trim_end_matches('/')).collect::<Vec<_>>().join(","),
                "--op" => a.op = Op::parse(&value()?)?,
                "--connections" => a.connections = number(flag, &value()?)?,
                "--count" => a.count = number(flag, &value()?)?,
                "--access-key" => a.access_key = value()?,
                "--secret" => a.secret = value()?,
                "--region" => a.region = value()?,
                "--user-name" => a.user_name = value()?,
                "--key-id" => a.key_id = value()?,
                "--ciphertext" => a.ciphertext = value()?,
                "--timeout-s" => a.timeout_s = number(flag, &value()?)? as u64,
                other => return Err(format!("unknown flag {other:?}\n{USAGE}")),
            }
        }
        if a.url.is_empty() || a.access_key.is_empty() || a.secret.is_empty() {
            return Err(format!("--url, --access-key and --secret are required\n{USAGE}"));
        }
        if matches!(a.op, Op::KmsEncrypt | Op::KmsGenerateDataKey) && a.key_id.is_empty() {
            return Err(format!("--op {} needs --key-id", a.op.name()));
        }
        if a.op == Op::KmsDecrypt && a.ciphertext.is_empty() {
            return Err("--op kms-decrypt needs --ciphertext".into());
        }
        if a.connections == 0 || a.count == 0 {
            return Err("--connections and --count must be at least 1".into());
        }
        Ok(a)
    }
}

fn number(flag: &str, v: &str) -> Result<usize, String> {
    v.parse().map_err(|_| format!("{flag}: not a number: {v:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn parses_run_flags() {
        let a = Args::parse(&argv(
            "--url http://127.0.0.1:1/ --op iam-get-user --connections 4 --count 100 --access-key A --secret S",
        ))
        .unwrap();
        assert_eq!(a.url, "http://127.0.0.1:1");
        assert_eq!((a.op, a.connections, a.count), (Op::IamGetUser, 4, 100));
        assert_eq!((a.region.as_str(), a.user_name.as_str()), ("us-east-1", "bench-user"));
    }

    #[test]
    fn rejects_bad_flags() {
        assert!(Args::parse(&argv("--url http://x --access-key A")).is_err());
        assert!(Args::parse(&argv("--url http://x --access-key A --secret S --op nope")).is_err());
        assert!(Args::parse(&argv("--url http://x --access-key A --secret S --count 0")).is_err());
        assert!(Args::parse(&argv("--url http://x --access-key A --secret S --bogus 1")).is_err());
        assert!(Args::parse(&argv("--url http://x --access-key A --secret S --op kms-encrypt")).is_err());
        assert!(Args::parse(&argv("--url http://x --access-key A --secret S --op kms-decrypt")).is_err());
        let a = Args::parse(&argv("--url http://x --access-key A --secret S --op kms-encrypt --key-id k")).unwrap();
        assert_eq!((a.op, a.key_id.as_str()), (Op::KmsEncrypt, "k"));
    }
}
