//! Parsing and error shapes. Signature computation is covered by tests/sigv4_aws_suite.rs (AWS's
//! test suite) and tests/sigv4_botocore.rs (requests signed by botocore).

use http::{HeaderMap, HeaderValue};
use time::macros::datetime;

use super::*;

const AUTHZ: &str = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/iam/aws4_request, \
SignedHeaders=content-type;host;x-amz-date, Signature=5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7";

fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (k, v) in pairs {
        h.append(*k, HeaderValue::from_str(v).unwrap());
    }
    h
}

fn parse_with(h: &HeaderMap, query: &str) -> Result<Authorization, AuthError> {
    parse(&SignedRequest { method: "POST", path: "/", query, headers: h, body: b"" })
}

fn incomplete(r: Result<Authorization, AuthError>) -> String {
    match r {
        Err(AuthError::IncompleteSignature(m)) => m,
        other => panic!("expected IncompleteSignature, got {other:?}"),
    }
}

#[test]
fn header_form_is_parsed() {
    let h = headers(&[
        ("host", "iam.amazonaws.com"),
        ("x-amz-date", "20150830T123600Z"),
        ("x-amz-security-token", "tok"),
        ("authorization", AUTHZ),
    ]);
    let a = parse_with(&h, "").unwrap();
    assert_eq!(a.access_key_id(), "AKIDEXAMPLE");
    assert_eq!((a.region(), a.service(), a.date()), ("us-east-1", "iam", "20150830"));
    assert_eq!(a.timestamp, datetime!(2015-08-30 12:36:00 UTC));
    assert_eq!(a.signed_headers().collect::<Vec<_>>(), ["content-type", "host", "x-amz-date"]);
    assert!(a.signature().starts_with("5d672d79"));
    assert_eq!(a.session_token.as_deref(), Some("tok"));
    assert!(!a.presigned);
    assert!(!format!("{a:?}").contains("tok\""), "session token must not be in Debug output");
}

#[test]
fn nothing_signed_is_missing_authentication_token() {
    let err = parse_with(&headers(&[("host", "x")]), "Action=ListUsers").unwrap_err();
    assert_eq!(err, AuthError::MissingAuthenticationToken);
    let aws = err.to_aws_error();
    assert_eq!(
        (aws.code.as_ref(), aws.message.as_str(), aws.status),
        ("MissingAuthenticationToken", "Request is missing Authentication Token", 403)
    );
    let json = err.to_aws_error_for(Protocol::AwsJson1_0);
    assert_eq!((json.code.as_ref(), json.status), ("MissingAuthenticationTokenException", 400));
    // An algorithm other than SigV4 in the query is no signature at all.
    let err = parse_with(&headers(&[]), "X-Amz-Algorithm=AWS4-ECDSA-P256-SHA256").unwrap_err();
    assert_eq!(err, AuthError::MissingAuthenticationToken);
}

#[test]
fn unsupported_algorithm() {
    let h = headers(&[("authorization", "AWS AKIDEXAMPLE:frJIUN8DYpKDtOLCwo//yllqDzg="), ("date", "x")]);
    assert_eq!(incomplete(parse_with(&h, "")), "Unsupported AWS 'algorithm': 'AWS'.");
    let aws = parse_with(&h, "").unwrap_err().to_aws_error();
    assert_eq!((aws.code.as_ref(), aws.status), ("IncompleteSignature", 400));
}

#[test]
fn missing_parameters_are_listed_in_order() {
    let h = headers(&[("authorization", "AWS4-HMAC-SHA256 SignedHeaders=host")]);
    assert_eq!(
        incomplete(parse_with(&h, "")),
        "Authorization header requires 'Credential' parameter. Authorization header requires 'Signature' parameter. \
         Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. \
         Authorization=AWS4-HMAC-SHA256 SignedHeaders=host"
    );
    let h = headers(&[("authorization", "AWS4-HMAC-SHA256")]);
    assert!(incomplete(parse_with(&h, "")).contains("requires 'SignedHeaders' parameter."));
}

#[test]
fn parameter_without_equal_sign() {
    let h = headers(&[("authorization", "AWS4-HMAC-SHA256 Credential=a/b/c/d/e, SignedHeaders, Signature=00")]);
    assert_eq!(
        incomplete(parse_with(&h, "")),
        "'SignedHeaders' not a valid key=value pair (missing equal-sign) in Authorization header: \
         'AWS4-HMAC-SHA256 Credential=a/b/c/d/e, SignedHeaders, Signature=00'"
    );
}

#[test]
fn host_must_be_signed() {
    let h = headers(&[
        ("x-amz-date", "20150830T123600Z"),
        (
            "authorization",
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/iam/aws4_request, SignedHeaders=x-amz-date, Signature=00",
        ),
    ]);
    let err = parse_with(&h, "").unwrap_err();
    assert_eq!(err.to_string(), "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.");
    assert_eq!(err.to_aws_error().code, "SignatureDoesNotMatch");
}

#[test]
fn bad_date_format() {
    let h = headers(&[("x-amz-date", "2015-08-30 12:36"), ("authorization", AUTHZ)]);
    assert_eq!(
        incomplete(parse_with(&h, "")),
        "Date must be in ISO-8601 'basic format'. Got '2015-08-30 12:36'. See http://en.wikipedia.org/wiki/ISO_8601"
    );
}

#[test]
fn accepted_date_forms() {
    for (name, value) in [
        ("x-amz-date", "20150830T123600Z"),
        ("x-amz-date", "2015-08-30T12:36:00Z"),
        ("date", "Sun, 30 Aug 2015 12:36:00 GMT"),
        ("date", "Sun, 30 Aug 2015 12:36:00 -0000"),
    ] {
        let h = headers(&[(name, value), ("authorization", AUTHZ)]);
        let a = parse_with(&h, "").unwrap_or_else(|e| panic!("{value}: {e:?}"));
        assert_eq!(a.timestamp, datetime!(2015-08-30 12:36:00 UTC), "{value}");
    }
    // X-Amz-Date wins over Date.
    let h = headers(&[("date", "garbage"), ("x-amz-date", "20150830T123600Z"), ("authorization", AUTHZ)]);
    assert!(parse_with(&h, "").is_ok());
}

#[test]
fn credential_shape_and_scope() {
    let with_cred = |cred: &str| {
        let authz = format!("AWS4-HMAC-SHA256 Credential={cred}, SignedHeaders=host;x-amz-date, Signature=00");
        let h = headers(&[("x-amz-date", "20150830T123600Z"), ("authorization", &authz)]);
        parse_with(&h, "")
    };
    assert_eq!(
        incomplete(with_cred("AKIDEXAMPLE/20150830/us-east-1/iam")),
        "Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/term, \
         got 'AKIDEXAMPLE/20150830/us-east-1/iam'"
    );
    let err = with_cred("AKIDEXAMPLE/20150831/us-east-1/iam/aws4_request").unwrap_err();
    assert_eq!(
        err.to_string(),
        "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: \
         '20150831' != '20150830', from '20150830T123600Z'."
    );
    assert_eq!(err.to_aws_error().code, "SignatureDoesNotMatch");
    let err = with_cred("AKIDEXAMPLE/20150830/US_EAST/iam/aws4_reqest").unwrap_err();
    assert_eq!(
        err.to_string(),
        "Credential should be scoped to a valid region, not 'US_EAST'. \
         Credential should be scoped with a valid terminator: 'aws4_request', not 'aws4_reqest'."
    );
}

#[test]
fn presigned_form_is_parsed() {
    let q = "Action=GetCallerIdentity&Version=2011-06-15&X-Amz-Algorithm=AWS4-HMAC-SHA256\
&X-Amz-Credential=AKIDEXAMPLE%2F20150830%2Fus-east-1%2Fsts%2Faws4_request&X-Amz-Date=20150830T123600Z\
&X-Amz-Expires=60&X-Amz-SignedHeaders=host&X-Amz-Security-Token=a%2Bb%3D&X-Amz-Signature=abcd";
    let a = parse_with(&headers(&[("host", "sts.amazonaws.com")]), q).unwrap();
    assert!(a.presigned);
    assert_eq!(a.service(), "sts");
    assert_eq!(a.expires_seconds, Some(60));
    assert_eq!(a.session_token.as_deref(), Some("a+b="));
    assert_eq!(a.signature(), "abcd");
    assert_eq!(a.signed_headers().collect::<Vec<_>>(), ["host"]);
    assert_eq!(
        strip_signature_param(q),
        q.replace("&X-Amz-Signature=abcd", ""),
        "the signature is dropped from the signed query, nothing else"
    );
}

#[test]
fn presigned_missing_parameters() {
    let err = parse_with(&headers(&[]), "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Date=20150830T123600Z");
    assert_eq!(
        incomplete(err),
        "AWS query-string parameters must include 'X-Amz-Credential'. AWS query-string parameters must include \
         'X-Amz-Signature'. AWS query-string parameters must include 'X-Amz-SignedHeaders'. Re-examine the \
         query-string parameters."
    );
}

#[test]
fn presigned_expires_bounds() {
    let q = |e: &str| {
        format!(
            "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIDEXAMPLE%2F20150830%2Fus-east-1%2Fsts%2Faws4_request\
&X-Amz-Date=20150830T123600Z&X-Amz-Expires={e}&X-Amz-SignedHeaders=host&X-Amz-Signature=ab"
        )
    };
    assert!(parse_with(&headers(&[]), &q("604800")).is_ok());
    assert!(incomplete(parse_with(&headers(&[]), &q("604801"))).contains("604800"));
    assert!(incomplete(parse_with(&headers(&[]), &q("soon"))).contains("should be a number"));
}

#[test]
fn caller_decided_errors() {
    let e = AuthError::invalid_client_token_id();
    assert_eq!(
        (e.code.as_ref(), e.message.as_str(), e.status),
        ("InvalidClientTokenId", "The security token included in the request is invalid.", 403)
    );
    let e = AuthError::expired_token();
    assert_eq!(
        (e.code.as_ref(), e.message.as_str(), e.status),
        ("ExpiredToken", "The security token included in the request is expired", 403)
    );
    let e = AuthError::InvalidClientTokenId.to_aws_error_for(Protocol::AwsJson1_1);
    assert_eq!((e.code.as_ref(), e.status), ("UnrecognizedClientException", 400));
    let e = AuthError::ExpiredToken.to_aws_error_for(Protocol::RestJson1);
    assert_eq!((e.code.as_ref(), e.status), ("ExpiredTokenException", 403));
}

#[test]
fn garbage_never_panics() {
    // Odd but representable inputs must come back as errors, not panics.
    for authz in [
        "",
        " ",
        "AWS4-HMAC-SHA256 ,,,",
        "AWS4-HMAC-SHA256 Credential=/////, SignedHeaders=;;;host, Signature=",
        "AWS4-HMAC-SHA256 Credential==, SignedHeaders==host, Signature==",
    ] {
        let h = headers(&[("x-amz-date", "20150830T123600Z"), ("authorization", authz)]);
        let req =
            SignedRequest { method: "GET", path: "", query: "%%%&&=&X-Amz-Signature", headers: &h, body: b"\xff" };
        if let Ok(a) = parse(&req) {
            let _ = verify(&req, &a, "secret", datetime!(2015-08-30 12:36:00 UTC));
        }
    }
}

mod split_and_scope_date {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        /// `split5` is `split('/')` when that yields exactly five parts, else `None`.
        #[test]
        fn split5_is_split_into_exactly_five(s in "[a/Z\u{e9}]{0,12}") {
            let parts: Vec<&str> = s.split('/').collect();
            let expected: Option<[&str; 5]> = parts.try_into().ok();
            prop_assert_eq!(split5(&s), expected);
        }

        /// The scope date check is the former `date == &iso_basic(timestamp)[..8]`.
        #[test]
        fn scope_date_is_compared_as_before(
            secs in -62_167_219_200i64..253_402_300_799,
            offset_minutes in -1439i32..1439,
            date in prop_oneof!["[0-9]{8}", "[0-9]{0,9}"],
            use_own_date in any::<bool>(),
        ) {
            let offset = time::UtcOffset::from_whole_seconds(offset_minutes * 60).unwrap();
            let t = OffsetDateTime::from_unix_timestamp(secs).unwrap().to_offset(offset);
            let own = iso_basic(t)[..8].to_string();
            let date = if use_own_date { own.as_str() } else { date.as_str() };
            prop_assert_eq!(scope_date_matches(date, t), date == &iso_basic(t)[..8]);
        }
    }
}

#[test]
fn parts_are_held_in_one_buffer_and_empty_signed_header_names_are_left_out() {
    let h = headers(&[
        ("x-amz-date", "20150830T123600Z"),
        (
            "authorization",
            "AWS4-HMAC-SHA256 Credential=AKID/20150830/eu-west-1/kms/aws4_request, \
             SignedHeaders=;content-type;;host;x-amz-date;, Signature=00ff",
        ),
    ]);
    let a = parse_with(&h, "").unwrap();
    assert_eq!(
        (a.access_key_id(), a.date(), a.region(), a.service(), a.signature()),
        ("AKID", "20150830", "eu-west-1", "kms", "00ff")
    );
    assert_eq!(a.signed_headers().collect::<Vec<_>>(), ["content-type", "host", "x-amz-date"]);
    assert_eq!(a.signed_header_list(), "content-type;host;x-amz-date");
    let debug = format!("{a:?}");
    assert!(debug.contains(r#"signed_headers: ["content-type", "host", "x-amz-date"]"#), "{debug}");
    assert!(
        debug.contains(r#"access_key_id: "AKID", region: "eu-west-1", service: "kms", date: "20150830""#),
        "{debug}"
    );
    // The same claims parse to equal values; another signature does not.
    assert_eq!(parse_with(&h, "").unwrap(), a);
    let other = headers(&[
        ("x-amz-date", "20150830T123600Z"),
        (
            "authorization",
            "AWS4-HMAC-SHA256 Credential=AKID/20150830/eu-west-1/kms/aws4_request, \
             SignedHeaders=content-type;host;x-amz-date, Signature=00fe",
        ),
    ]);
    assert_ne!(parse_with(&other, "").unwrap(), a);
}

mod byte_splitting_and_header_text {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #[test]
        fn split_byte_is_str_split(s in "[a;,= \u{e9}]{0,16}") {
            for sep in [b';', b',', b'=', b' '] {
                let expected: Vec<&str> = s.split(char::from(sep)).collect();
                prop_assert_eq!(SplitByte::new(&s, sep).collect::<Vec<_>>(), expected);
                prop_assert_eq!(split_once_byte(&s, sep), s.split_once(char::from(sep)));
            }
            prop_assert_eq!(has_empty_names(&s), s.split(';').any(str::is_empty));
        }

        /// `header_str` gives what `to_str` with a lossy fallback gave, for any header value.
        #[test]
        fn header_text_is_as_before(bytes in proptest::collection::vec(prop_oneof![
            8 => 0x20u8..0x7f, 1 => Just(b'\t'), 2 => 0x80u8..=0xff, 1 => any::<u8>(),
        ], 0..24)) {
            let Ok(value) = HeaderValue::from_bytes(&bytes) else { return Ok(()) };
            let before = match value.to_str() {
                Ok(text) => Cow::Borrowed(text),
                Err(_) => String::from_utf8_lossy(value.as_bytes()),
            };
            prop_assert_eq!(header_str(&value), before);
        }
    }

    #[test]
    fn header_text_of_utf8_and_invalid_bytes() {
        let utf8 = HeaderValue::from_bytes("caf\u{e9}".as_bytes()).unwrap();
        assert_eq!(header_str(&utf8), "caf\u{e9}");
        let invalid = HeaderValue::from_bytes(b"a\xffb").unwrap();
        assert_eq!(header_str(&invalid), "a\u{fffd}b");
    }
}
