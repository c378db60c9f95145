//! AssumeRoleWithWebIdentity against slow and broken identity providers: the issuer's documents
//! are fetched within one total timeout, a failure answers AWS's error instead of holding the
//! call, and is remembered briefly so the next calls naming that issuer do not wait again.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::mpsc::{channel, Receiver};
use std::time::Duration;

use base64::Engine;
use common::*;
use rampart_iam::OidcFetchLimits;
use rampart_service::{Input, QueryParams};

/// What the local issuer does for a request path: answer `(status, body)`, or never answer.
type Route = fn(&str, &str) -> Option<(u16, String)>;

/// A local issuer on 127.0.0.1; reports the peer port of every connection it accepts.
fn issuer(route: Route) -> (String, Receiver<u16>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let base = url.clone();
    let (tx, rx) = channel();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { break };
            let _ = tx.send(stream.peer_addr().map(|a| a.port()).unwrap_or(0));
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut line = String::new();
            if reader.read_line(&mut line).is_err() {
                continue;
            }
            let path = line.split_whitespace().nth(1).unwrap_or("").to_string();
            loop {
                let mut h = String::new();
                if reader.read_line(&mut h).map(|n| n == 0).unwrap_or(true) || h == "\r\n" {
                    break;
                }
            }
            match route(&base, &path) {
                Some((status, body)) => {
                    let _ = write!(
                        stream,
                        "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    );
                }
                // Accepted and read, never answered: the connection stays open.
                None => held.push(stream),
            }
        }
    });
    (url, rx)
}

/// How many connections the issuer accepted so far (a sentinel connection marks "so far").
fn accepted(url: &str, rx: &Receiver<u16>) -> usize {
    let sentinel = TcpStream::connect(url.trim_start_matches("http://")).unwrap();
    let port = sentinel.local_addr().unwrap().port();
    let mut n = 0;
    while rx.recv_timeout(Duration::from_secs(30)).expect("the issuer accepts") != port {
        n += 1;
    }
    n
}

fn token(iss: &str) -> String {
    let enc = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
    format!(
        "{}.{}.{}",
        enc(r#"{"alg":"RS256","kid":"k1","typ":"JWT"}"#),
        enc(&format!(r#"{{"iss":"{iss}","sub":"u","aud":"client","exp":4102444800}}"#)),
        enc("not-a-signature")
    )
}

fn assume(h: &H, iss: &str) -> rampart_protocol::AwsError {
    let input = Input::Query(QueryParams::from_pairs([
        ("Action", "AssumeRoleWithWebIdentity".to_string()),
        ("RoleArn", format!("arn:aws:iam::{ACCT}:role/web")),
        ("RoleSessionName", "session".to_string()),
        ("WebIdentityToken", token(iss)),
    ]));
    match h.sts.unsigned_caller("AssumeRoleWithWebIdentity", &input, "req-web").expect("STS authenticates it") {
        Ok(c) => panic!("verified: {c:?}"),
        Err(e) => e,
    }
}

fn harness(url: &str) -> H {
    let h = H::new();
    h.iam.set_oidc_fetch_limits(OidcFetchLimits { timeout: Duration::from_millis(300), max_bytes: 4096 });
    h.ok("CreateOpenIDConnectProvider", &[("Url", url), ("ClientIDList.member.1", "client")]);
    h
}

#[test]
fn an_issuer_that_never_answers_is_an_idp_communication_error_remembered_briefly() {
    let (url, rx) = issuer(|_, _| None);
    let h = harness(&url);
    let e = assume(&h, &url);
    assert_err(&e, "IDPCommunicationError", 400);
    // The next call naming the same issuer answers at once, without connecting again.
    assert_err(&assume(&h, &url), "IDPCommunicationError", 400);
    assert_eq!(accepted(&url, &rx), 1);
}

#[test]
fn a_key_set_that_never_arrives_is_an_idp_communication_error() {
    let (url, _rx) = issuer(|base, path| match path {
        "/.well-known/openid-configuration" => Some((200, format!(r#"{{"jwks_uri":"{base}/jwks"}}"#))),
        _ => None,
    });
    let h = harness(&url);
    assert_err(&assume(&h, &url), "IDPCommunicationError", 400);
}

#[test]
fn unusable_documents_are_aws_invalid_identity_token() {
    let missing = "Couldn't retrieve verification key from your identity provider,  please reference AssumeRoleWithWebIdentity documentation for requirements";
    // The key set is missing (404).
    let (url, _rx) = issuer(|base, path| match path {
        "/.well-known/openid-configuration" => Some((200, format!(r#"{{"jwks_uri":"{base}/jwks"}}"#))),
        _ => Some((404, "{}".into())),
    });
    let e = assume(&harness(&url), &url);
    assert_err(&e, "InvalidIdentityToken", 400);
    assert_eq!(e.message, missing);
    // A discovery document over the size limit.
    let (url, _rx) = issuer(|_, _| Some((200, format!(r#"{{"jwks_uri":"{}"}}"#, "x".repeat(10_000)))));
    let e = assume(&harness(&url), &url);
    assert_eq!((e.code.as_ref(), e.message.as_ref()), ("InvalidIdentityToken", missing));
    // Not a discovery document.
    let (url, _rx) = issuer(|_, _| Some((200, "[1,2,3]".into())));
    let e = assume(&harness(&url), &url);
    assert_eq!((e.code.as_ref(), e.message.as_ref()), ("InvalidIdentityToken", missing));
}

#[test]
fn concurrent_calls_naming_a_hung_issuer_make_one_fetch() {
    let (url, rx) = issuer(|_, _| None);
    let h = harness(&url);
    std::thread::scope(|s| {
        let calls: Vec<_> = (0..4).map(|_| s.spawn(|| assume(&h, &url))).collect();
        for c in calls {
            assert_err(&c.join().unwrap(), "IDPCommunicationError", 400);
        }
    });
    assert_eq!(accepted(&url, &rx), 1);
}
