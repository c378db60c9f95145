//! The signed requests: awsQuery form POSTs, signed with AWS's own SigV4 signer (as an SDK would).

use std::time::SystemTime;

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
use aws_sigv4::sign::v4;
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, Uri};

use crate::args::{Args, Op};

/// A signed request, kept as parts so each send can rebuild it cheaply.
#[derive(Clone, Debug)]
pub struct Signed {
    pub method: Method,
    pub uri: Uri,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Signed {
    pub fn to_request(&self) -> http::Request<http_body_util::Full<Bytes>> {
        let mut req = http::Request::new(http_body_util::Full::new(self.body.clone()));
        *req.method_mut() = self.method.clone();
        *req.uri_mut() = self.uri.clone();
        *req.headers_mut() = self.headers.clone();
        req
    }
}

/// The account run.sh starts both servers with, and the role `sts-assume-role` assumes.
pub const BENCH_ACCOUNT: &str = "123456789012";
pub const BENCH_ROLE: &str = "bench-role";

/// 32 bytes ("rampart-bench-plaintext-32-bytes"), base64: what kms-encrypt encrypts.
pub const PLAINTEXT_B64: &str = "cmFtcGFydC1iZW5jaC1wbGFpbnRleHQtMzItYnl0ZXM=";

/// The secret `secrets-get-secret-value` reads (setup creates it).
pub const BENCH_SECRET: &str = "bench-secret";

/// The body of `op`: an awsQuery form, or an awsJson document for KMS and Secrets Manager.
pub fn body(op: Op, args: &Args) -> String {
    let user_name = &args.user_name;
    match op {
        // One call's body: `run` signs one per call with its own user name.
        Op::IamCreateUsers => format!("Action=CreateUser&Version=2010-05-08&UserName={user_name}"),
        Op::SecretsGetSecretValue => format!("{{\"SecretId\":\"{BENCH_SECRET}\"}}"),
        Op::SecretsCreateSecret => {
            // A raw client supplies the idempotency token the SDKs fill in (AWS requires it).
            format!(
                "{{\"Name\":\"{BENCH_SECRET}\",\"SecretString\":\"bench-secret-value-32-bytes-long\",\
                 \"ClientRequestToken\":\"6b0a3b3e-2f1c-4a9e-8d7f-5c4b3a2f1e0d\"}}"
            )
        }
        Op::IamGetUser => format!("Action=GetUser&Version=2010-05-08&UserName={user_name}"),
        Op::IamCreateUser => format!("Action=CreateUser&Version=2010-05-08&UserName={user_name}"),
        Op::StsGetCallerIdentity => "Action=GetCallerIdentity&Version=2011-06-15".to_string(),
        Op::StsAssumeRole => format!(
            "Action=AssumeRole&Version=2011-06-15&RoleSessionName=bench&RoleArn=arn%3Aaws%3Aiam%3A%3A{BENCH_ACCOUNT}%3Arole%2F{BENCH_ROLE}"
        ),
        Op::IamCreateRole => format!(
            "Action=CreateRole&Version=2010-05-08&RoleName={BENCH_ROLE}&AssumeRolePolicyDocument=\
             %7B%22Version%22%3A%222012-10-17%22%2C%22Statement%22%3A%5B%7B%22Effect%22%3A%22Allow%22%2C\
             %22Principal%22%3A%7B%22AWS%22%3A%22arn%3Aaws%3Aiam%3A%3A{BENCH_ACCOUNT}%3Aroot%22%7D%2C\
             %22Action%22%3A%22sts%3AAssumeRole%22%7D%5D%7D"
        ),
        Op::IamTagUser => format!(
            "Action=TagUser&Version=2010-05-08&UserName={user_name}&Tags.member.1.Key=bench&Tags.member.1.Value=v"
        ),
        Op::KmsEncrypt => format!(
            "{{\"KeyId\":\"{}\",\"Plaintext\":\"{PLAINTEXT_B64}\",\"EncryptionContext\":{{\"bench\":\"kms\"}}}}",
            args.key_id
        ),
        Op::KmsDecrypt => format!(
            "{{\"CiphertextBlob\":\"{}\",\"EncryptionContext\":{{\"bench\":\"kms\"}}}}",
            args.ciphertext
        ),
        Op::KmsGenerateDataKey => format!(
            "{{\"KeyId\":\"{}\",\"KeySpec\":\"AES_256\",\"EncryptionContext\":{{\"bench\":\"kms\"}}}}",
            args.key_id
        ),
        Op::KmsCreateKey => "{\"Description\":\"bench\"}".to_string(),
        Op::HttpFloor => String::new(),
    }
}

/// Build and sign `op` for `args.url` at `time`.
pub fn signed(args: &Args, op: Op, time: SystemTime) -> Result<Signed, String> {
    let uri: Uri = format!("{}/", args.url).parse().map_err(|e| format!("bad --url: {e}"))?;
    let host = uri.authority().ok_or("--url needs a host")?.as_str().to_string();
    let body = body(op, args);
    if op == Op::HttpFloor {
        let mut headers = HeaderMap::new();
        headers.insert("host", HeaderValue::from_str(&host).map_err(|e| e.to_string())?);
        let uri: Uri = "/_rampart/health".parse().map_err(|e: http::uri::InvalidUri| e.to_string())?;
        return Ok(Signed { method: Method::GET, uri, headers, body: Bytes::new() });
    }

    let mut headers = HeaderMap::new();
    headers.insert("host", HeaderValue::from_str(&host).map_err(|e| e.to_string())?);
    match op.json_target() {
        Some(target) => {
            headers.insert("content-type", HeaderValue::from_static("application/x-amz-json-1.1"));
            headers.insert("x-amz-target", HeaderValue::from_static(target));
        }
        None => {
            headers
                .insert("content-type", HeaderValue::from_static("application/x-www-form-urlencoded; charset=utf-8"));
        }
    }

    let identity = Credentials::new(&args.access_key, &args.secret, None, None, "loadgen").into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(&args.region)
        .name(op.service())
        .time(time)
        .settings(SigningSettings::default())
        .build()
        .map_err(|e| e.to_string())?
        .into();
    let signable = SignableRequest::new(
        "POST",
        uri.to_string(),
        headers.iter().map(|(k, v)| (k.as_str(), v.to_str().unwrap_or_default())),
        SignableBody::Bytes(body.as_bytes()),
    )
    .map_err(|e| e.to_string())?;
    let (instructions, _signature) = sign(signable, &params).map_err(|e| e.to_string())?.into_parts();
    for (name, value) in instructions.headers() {
        headers.insert(
            http::HeaderName::from_bytes(name.as_bytes()).map_err(|e| e.to_string())?,
            HeaderValue::from_str(value).map_err(|e| e.to_string())?,
        );
    }
    // The path part only: the request goes over a connection we opened ourselves.
    let path: Uri = "/".parse().map_err(|e: http::uri::InvalidUri| e.to_string())?;
    Ok(Signed { method: Method::POST, uri: path, headers, body: Bytes::from(body) })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(op: Op) -> Args {
        Args {
            url: "http://127.0.0.1:4566".into(),
            op,
            connections: 1,
            count: 1,
            access_key: "AKIAIOSFODNN7EXAMPLE".into(),
            secret: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY".into(),
            region: "us-east-1".into(),
            user_name: "bench-user".into(),
            key_id: "1234abcd-12ab-34cd-56ef-1234567890ab".into(),
            ciphertext: "AQID".into(),
            timeout_s: 1,
        }
    }

    #[test]
    fn signs_like_an_sdk() {
        let t = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_725_021_360); // 2024-08-30T12:36:00Z
        let s = signed(&args(Op::StsGetCallerIdentity), Op::StsGetCallerIdentity, t).unwrap();
        let authz = s.headers.get("authorization").unwrap().to_str().unwrap();
        assert!(
            authz.starts_with(
                "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20240830/us-east-1/sts/aws4_request, \
             SignedHeaders=content-type;host;x-amz-date, Signature="
            ),
            "{authz}"
        );
        assert_eq!(s.headers.get("x-amz-date").unwrap(), "20240830T123600Z");
        assert_eq!(s.headers.get("host").unwrap(), "127.0.0.1:4566");
        assert_eq!(&s.body[..], b"Action=GetCallerIdentity&Version=2011-06-15");
        let req = s.to_request();
        assert_eq!(req.uri(), "/");
        assert_eq!(req.method(), Method::POST);
    }

    #[test]
    fn iam_ops_sign_for_iam() {
        let t = SystemTime::now();
        let s = signed(&args(Op::IamGetUser), Op::IamGetUser, t).unwrap();
        let authz = s.headers.get("authorization").unwrap().to_str().unwrap();
        assert!(authz.contains("/us-east-1/iam/aws4_request"));
        assert_eq!(&s.body[..], b"Action=GetUser&Version=2010-05-08&UserName=bench-user");
    }

    #[test]
    fn kms_ops_are_aws_json() {
        let s = signed(&args(Op::KmsEncrypt), Op::KmsEncrypt, SystemTime::now()).unwrap();
        let authz = s.headers.get("authorization").unwrap().to_str().unwrap();
        assert!(authz.contains("/us-east-1/kms/aws4_request") && authz.contains("x-amz-target"), "{authz}");
        assert_eq!(s.headers.get("x-amz-target").unwrap(), "TrentService.Encrypt");
        assert_eq!(s.headers.get("content-type").unwrap(), "application/x-amz-json-1.1");
        let body = std::str::from_utf8(&s.body).unwrap();
        assert!(body.contains("\"KeyId\":\"1234abcd-12ab-34cd-56ef-1234567890ab\""), "{body}");
        let d = signed(&args(Op::KmsDecrypt), Op::KmsDecrypt, SystemTime::now()).unwrap();
        assert!(std::str::from_utf8(&d.body).unwrap().contains("\"CiphertextBlob\":\"AQID\""));
    }
}
