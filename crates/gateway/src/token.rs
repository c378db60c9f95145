//! CAPTCHA and Challenge: the `aws-waf-token` cookie (HMAC-signed timestamps bound to the client IP),
//! the interstitial pages (202 for Challenge, 405 for CAPTCHA, as AWS answers) and their verification
//! endpoints.
//!
//! - **Challenge**: the page carries a seed the gateway signed (issue time, difficulty, random part,
//!   client IP) and a script that must find a nonce such that SHA-256(seed ‖ nonce) starts with
//!   `difficulty` zero bits, then posts both to [`CHALLENGE_PATH`]. The gateway checks the signature,
//!   the seed's age ([`SEED_TTL_S`]), that the seed was not used before, and the work, then sets the
//!   token cookie. Nothing in the page is a token: a client must do the work, i.e. run the script.
//! - **CAPTCHA**: the puzzle is an image of [`CAPTCHA_DIGITS`] distorted digits drawn from a built-in
//!   bitmap font. The form carries only an opaque state: an HMAC over (issue time, random part, IP,
//!   answer) and a second HMAC authenticating the state, so the answer can be checked but not read
//!   back. A state is good for one attempt (right or wrong) within [`PUZZLE_TTL_S`].

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;

use base64::Engine as _;
use hmac::{Hmac, Mac};
use rand::Rng as _;
use sha2::{Digest, Sha256};

pub const COOKIE: &str = "aws-waf-token";
pub const CAPTCHA_PATH: &str = "/.rampart-waf/captcha";
pub const CHALLENGE_PATH: &str = "/.rampart-waf/challenge";
/// A challenge seed must be solved and posted within this many seconds of being issued.
pub const SEED_TTL_S: u64 = 300;
/// A CAPTCHA puzzle must be answered within this many seconds of being issued.
pub const PUZZLE_TTL_S: u64 = 600;
/// Leading zero bits the challenge asks for by default (about 65,000 hashes: well under a second of
/// JavaScript on a phone, a real cost for a bot farm).
pub const DEFAULT_DIFFICULTY: u8 = 16;
/// The most a seed may ask for (and the least: a seed asking for nothing proves nothing).
pub const MAX_DIFFICULTY: u8 = 32;
pub const MIN_DIFFICULTY: u8 = 1;
pub const CAPTCHA_DIGITS: usize = 5;
/// Used seeds and puzzle states remembered until they expire; beyond this many, new ones are refused
/// (fail closed) rather than letting a state be replayed.
const MAX_SPENT: usize = 200_000;
/// Nonces longer than this are refused before hashing.
const MAX_NONCE_LEN: usize = 32;

pub struct TokenKey {
    key: [u8; 32],
    /// Random parts of seeds and puzzle states already used, with when they expire (Unix seconds).
    spent: Mutex<HashMap<String, u64>>,
}

/// Why a challenge answer or CAPTCHA answer was refused (for logs and tests; clients see a 403).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    Malformed,
    BadSignature,
    Expired,
    Replayed,
    InsufficientWork,
    WrongAnswer,
}

impl TokenKey {
    pub fn random() -> TokenKey {
        TokenKey { key: rand::random(), spent: Mutex::new(HashMap::new()) }
    }

    fn sign(&self, msg: &str) -> String {
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(&self.key) else { return String::new() };
        mac.update(msg.as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }

    /// A 128-bit tag (32 hex digits): keeps seeds short, so the page's script hashes one block per try.
    fn sign_short(&self, msg: &str) -> String {
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(&self.key) else { return String::new() };
        mac.update(msg.as_bytes());
        let tag = mac.finalize().into_bytes();
        hex::encode(tag.get(..16).unwrap_or_default())
    }

    /// A token: challenge solved at `challenge_s`, CAPTCHA at `captcha_s` (0: never), for `ip`.
    pub fn issue(&self, ip: IpAddr, challenge_s: u64, captcha_s: u64) -> String {
        let body = format!("v1.{challenge_s}.{captcha_s}");
        let sig = self.sign(&format!("{body}|{ip}"));
        format!("{body}.{sig}")
    }

    /// (challenge age, CAPTCHA age) in seconds at `now_s` of a valid token.
    pub fn verify(&self, token: &[u8], ip: IpAddr, now_s: u64) -> Option<(u64, Option<u64>)> {
        let s = std::str::from_utf8(token).ok()?;
        let mut it = s.split('.');
        let (v, ch, ca, sig) = (it.next()?, it.next()?, it.next()?, it.next()?);
        if v != "v1" || it.next().is_some() {
            return None;
        }
        let expect = self.sign(&format!("v1.{ch}.{ca}|{ip}"));
        if !subtle_eq(expect.as_bytes(), sig.as_bytes()) {
            return None;
        }
        let ch: u64 = ch.parse().ok()?;
        let ca: u64 = ca.parse().ok()?;
        let age = |t: u64| now_s.saturating_sub(t);
        Some((age(ch), (ca > 0).then(|| age(ca))))
    }

    /// Marks `id` used until `expires_s`; false if it was used already (or the set is full).
    fn spend(&self, id: &str, now_s: u64, expires_s: u64) -> Result<(), Refusal> {
        let mut g = self.spent.lock().unwrap_or_else(|p| p.into_inner());
        if g.contains_key(id) {
            return Err(Refusal::Replayed);
        }
        if g.len() >= MAX_SPENT {
            g.retain(|_, exp| *exp >= now_s);
            if g.len() >= MAX_SPENT {
                tracing::warn!("challenge/CAPTCHA replay set full: refusing answers until entries expire");
                return Err(Refusal::Replayed);
            }
        }
        g.insert(id.to_string(), expires_s);
        Ok(())
    }

    // ---- Challenge (proof of work) ----

    /// A fresh seed for `ip`: `s1.<issued>.<difficulty>.<random>.<signature>` (82 bytes).
    pub fn challenge_seed(&self, ip: IpAddr, now_s: u64, difficulty: u8) -> String {
        let bits = difficulty.clamp(MIN_DIFFICULTY, MAX_DIFFICULTY);
        let r = hex::encode(rand::random::<[u8; 16]>());
        let sig = self.sign_short(&format!("seed|{now_s}|{bits}|{r}|{ip}"));
        format!("s1.{now_s}.{bits}.{r}.{sig}")
    }

    /// Checks a posted `seed` and `nonce` (form-encoded) from `ip` at `now_s`; on success returns the
    /// token to set. `prior` is the request's current token, whose CAPTCHA time is kept.
    pub fn check_challenge(
        &self,
        ip: IpAddr,
        form: &[u8],
        now_s: u64,
        prior: Option<&[u8]>,
    ) -> Result<String, Refusal> {
        let f = form_map(form);
        let seed = f.get("seed").ok_or(Refusal::Malformed)?;
        let nonce = f.get("nonce").ok_or(Refusal::Malformed)?;
        if nonce.is_empty() || nonce.len() > MAX_NONCE_LEN || seed.len() > 256 {
            return Err(Refusal::Malformed);
        }
        let mut it = seed.split('.');
        let (v, issued, bits, r, sig) = (it.next(), it.next(), it.next(), it.next(), it.next());
        let (Some("s1"), Some(issued), Some(bits), Some(r), Some(sig), None) = (v, issued, bits, r, sig, it.next())
        else {
            return Err(Refusal::Malformed);
        };
        let expect = self.sign_short(&format!("seed|{issued}|{bits}|{r}|{ip}"));
        if !subtle_eq(expect.as_bytes(), sig.as_bytes()) {
            return Err(Refusal::BadSignature);
        }
        let issued: u64 = issued.parse().map_err(|_| Refusal::Malformed)?;
        let bits: u32 = bits.parse().map_err(|_| Refusal::Malformed)?;
        if now_s.saturating_sub(issued) > SEED_TTL_S || issued > now_s.saturating_add(60) {
            return Err(Refusal::Expired);
        }
        if leading_zero_bits(&Sha256::new().chain_update(seed.as_bytes()).chain_update(nonce.as_bytes()).finalize())
            < bits
        {
            return Err(Refusal::InsufficientWork);
        }
        self.spend(&format!("s:{r}"), now_s, issued + SEED_TTL_S)?;
        let captcha_s = prior.and_then(|t| self.verify_times(t, ip)).map_or(0, |(_, ca)| ca);
        Ok(self.issue(ip, now_s, captcha_s))
    }

    /// The raw (challenge, captcha) times of a valid token.
    fn verify_times(&self, token: &[u8], ip: IpAddr) -> Option<(u64, u64)> {
        self.verify(token, ip, 0)?;
        let s = std::str::from_utf8(token).ok()?;
        let mut it = s.split('.').skip(1);
        Some((it.next()?.parse().ok()?, it.next()?.parse().ok()?))
    }

    // ---- CAPTCHA (image puzzle) ----

    /// A new puzzle for `ip`: the opaque form state and the PNG image of its digits.
    pub fn captcha_puzzle(&self, ip: IpAddr, now_s: u64) -> Option<Puzzle> {
        let mut rng = rand::rng();
        let answer: String = (0..CAPTCHA_DIGITS).map(|_| char::from(b'0' + rng.random_range(0..10u8))).collect();
        let png = render_digits(&answer, &mut rng)?;
        let r = hex::encode(rand::random::<[u8; 16]>());
        let a = self.sign(&format!("captcha-answer|{now_s}|{r}|{ip}|{answer}"));
        let s = self.sign(&format!("captcha-state|{now_s}|{r}|{a}|{ip}"));
        Some(Puzzle { state: format!("c1.{now_s}.{r}.{a}.{s}"), png })
    }

    /// Whether `answer` solves the puzzle whose form state is `state` (for `ip`), without using the
    /// state up. Only the holder of the key can ask: the state alone does not reveal the answer.
    pub fn captcha_answer_matches(&self, state: &str, ip: IpAddr, answer: &str) -> bool {
        match self.parse_captcha_state(state, ip) {
            Ok((issued, r, a)) => {
                let expect = self.sign(&format!("captcha-answer|{issued}|{r}|{ip}|{}", normalize_answer(answer)));
                subtle_eq(expect.as_bytes(), a.as_bytes())
            }
            Err(_) => false,
        }
    }

    fn parse_captcha_state<'a>(&self, state: &'a str, ip: IpAddr) -> Result<(u64, &'a str, &'a str), Refusal> {
        if state.len() > 256 {
            return Err(Refusal::Malformed);
        }
        let mut it = state.split('.');
        let (Some("c1"), Some(issued), Some(r), Some(a), Some(s), None) =
            (it.next(), it.next(), it.next(), it.next(), it.next(), it.next())
        else {
            return Err(Refusal::Malformed);
        };
        let expect = self.sign(&format!("captcha-state|{issued}|{r}|{a}|{ip}"));
        if !subtle_eq(expect.as_bytes(), s.as_bytes()) {
            return Err(Refusal::BadSignature);
        }
        Ok((issued.parse().map_err(|_| Refusal::Malformed)?, r, a))
    }

    /// Checks a posted CAPTCHA answer from `ip` at `now_s`; the state is used up either way. On success
    /// returns (token, where to go back to).
    pub fn check_captcha(&self, ip: IpAddr, form: &[u8], now_s: u64) -> Result<(String, String), Refusal> {
        let f = form_map(form);
        let state = f.get("state").ok_or(Refusal::Malformed)?;
        let answer = f.get("answer").ok_or(Refusal::Malformed)?;
        let (issued, r, _) = self.parse_captcha_state(state, ip)?;
        if now_s.saturating_sub(issued) > PUZZLE_TTL_S || issued > now_s.saturating_add(60) {
            return Err(Refusal::Expired);
        }
        self.spend(&format!("c:{r}"), now_s, issued + PUZZLE_TTL_S)?;
        if !self.captcha_answer_matches(state, ip, answer) {
            return Err(Refusal::WrongAnswer);
        }
        Ok((self.issue(ip, now_s, now_s), safe_return(f.get("return").map(String::as_str))))
    }
}

/// A CAPTCHA puzzle as served: the form state (opaque) and the image (PNG bytes).
pub struct Puzzle {
    pub state: String,
    pub png: Vec<u8>,
}

/// Leading zero bits of a digest.
pub fn leading_zero_bits(d: &[u8]) -> u32 {
    let mut n = 0;
    for b in d {
        if *b == 0 {
            n += 8;
        } else {
            return n + b.leading_zeros();
        }
    }
    n
}

fn normalize_answer(a: &str) -> String {
    a.chars().filter(|c| !c.is_whitespace()).take(16).collect()
}

/// The `return` field of a posted CAPTCHA form, made safe.
pub fn return_path(form: &[u8]) -> String {
    safe_return(form_map(form).get("return").map(String::as_str))
}

/// Only same-site absolute paths: never `//host` or a scheme (no open redirect).
fn safe_return(r: Option<&str>) -> String {
    match r {
        Some(r) if r.starts_with('/') && !r.starts_with("//") && !r.starts_with("/\\") && r.len() <= 2048 => {
            r.to_string()
        }
        _ => "/".to_string(),
    }
}

fn subtle_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;").replace('\'', "&#39;")
}

fn form_map(b: &[u8]) -> HashMap<String, String> {
    crate::waf::request::split_pairs(b, b'&')
        .into_iter()
        .map(|(k, v)| {
            let d = |x: &[u8]| String::from_utf8_lossy(&crate::waf::transform::url_decode(x, false)).into_owned();
            (d(&k), d(&v))
        })
        .collect()
}

/// SHA-256 in plain JavaScript (crypto.subtle exists only in secure contexts, and this page may be
/// served over plain HTTP), the nonce search in slices so the page stays responsive, and the post.
const CHALLENGE_JS: &str = r#"(function(){
var K=[0x428a2f98,0x71374491,0xb5c0fbcf,0xe9b5dba5,0x3956c25b,0x59f111f1,0x923f82a4,0xab1c5ed5,0xd807aa98,0x12835b01,0x243185be,0x550c7dc3,0x72be5d74,0x80deb1fe,0x9bdc06a7,0xc19bf174,0xe49b69c1,0xefbe4786,0x0fc19dc6,0x240ca1cc,0x2de92c6f,0x4a7484aa,0x5cb0a9dc,0x76f988da,0x983e5152,0xa831c66d,0xb00327c8,0xbf597fc7,0xc6e00bf3,0xd5a79147,0x06ca6351,0x14292967,0x27b70a85,0x2e1b2138,0x4d2c6dfc,0x53380d13,0x650a7354,0x766a0abb,0x81c2c92e,0x92722c85,0xa2bfe8a1,0xa81a664b,0xc24b8b70,0xc76c51a3,0xd192e819,0xd6990624,0xf40e3585,0x106aa070,0x19a4c116,0x1e376c08,0x2748774c,0x34b0bcb5,0x391c0cb3,0x4ed8aa4a,0x5b9cca4f,0x682e6ff3,0x748f82ee,0x78a5636f,0x84c87814,0x8cc70208,0x90befffa,0xa4506ceb,0xbef9a3f7,0xc67178f2];
var H0=[0x6a09e667,0xbb67ae85,0x3c6ef372,0xa54ff53a,0x510e527f,0x9b05688c,0x1f83d9ab,0x5be0cd19];
var W=new Int32Array(64),B=new Int32Array(16);
function compress(h,m,o){var i;
for(i=0;i<16;i++)B[i]=(m[o+4*i]<<24)|(m[o+4*i+1]<<16)|(m[o+4*i+2]<<8)|m[o+4*i+3];
for(i=0;i<16;i++)W[i]=B[i];
for(i=16;i<64;i++){var x=W[i-15],y=W[i-2];
W[i]=(W[i-16]+(((x>>>7)|(x<<25))^((x>>>18)|(x<<14))^(x>>>3))+W[i-7]+(((y>>>17)|(y<<15))^((y>>>19)|(y<<13))^(y>>>10)))|0;}
var a=h[0],b=h[1],c=h[2],d=h[3],e=h[4],f=h[5],g=h[6],k=h[7];
for(i=0;i<64;i++){
var t1=(k+(((e>>>6)|(e<<26))^((e>>>11)|(e<<21))^((e>>>25)|(e<<7)))+((e&f)^(~e&g))+K[i]+W[i])|0;
var t2=((((a>>>2)|(a<<30))^((a>>>13)|(a<<19))^((a>>>22)|(a<<10)))+((a&b)^(a&c)^(b&c)))|0;
k=g;g=f;f=e;e=(d+t1)|0;d=c;c=b;b=a;a=(t1+t2)|0;}
h[0]=(h[0]+a)|0;h[1]=(h[1]+b)|0;h[2]=(h[2]+c)|0;h[3]=(h[3]+d)|0;
h[4]=(h[4]+e)|0;h[5]=(h[5]+f)|0;h[6]=(h[6]+g)|0;h[7]=(h[7]+k)|0;}
function zeros(h){var n=0;for(var i=0;i<8;i++){var x=h[i]>>>0;if(x===0){n+=32;continue;}return n+Math.clz32(x);}return n;}
var seed=SEED,bits=BITS,sb=[];for(var i=0;i<seed.length;i++)sb.push(seed.charCodeAt(i));
var full=sb.length-sb.length%64,mid=new Int32Array(H0),h=new Int32Array(8),t=new Uint8Array(128);
for(i=0;i<full;i+=64)compress(mid,sb,i);
var rest=sb.slice(full);
function hash(s){var n=0,j;for(j=0;j<rest.length;j++)t[n++]=rest[j];for(j=0;j<s.length;j++)t[n++]=s.charCodeAt(j);
var l=(full+n)*8,end=n+9<=64?64:128;t[n++]=0x80;while(n<end-4)t[n++]=0;
t[n++]=(l>>>24)&255;t[n++]=(l>>>16)&255;t[n++]=(l>>>8)&255;t[n++]=l&255;
h.set(mid);compress(h,t,0);if(end===128)compress(h,t,64);return h;}
var nonce=0;
function done(){
fetch(PATH,{method:"POST",credentials:"same-origin",headers:{"content-type":"application/x-www-form-urlencoded"},
body:"seed="+encodeURIComponent(seed)+"&nonce="+nonce}).then(function(r){
if(r.ok){location.reload();}else{document.getElementById("m").textContent="Verification failed. Reload the page to try again.";}});}
function work(){for(var n=0;n<20000;n++,nonce++){if(zeros(hash(String(nonce)))>=bits){done();return;}}setTimeout(work,0);}
work();})();"#;

/// The Challenge interstitial: a script that does the proof of work and posts it back.
pub fn challenge_page(seed: &str, bits: u8) -> String {
    let js = CHALLENGE_JS
        .replace("SEED", &format!("\"{}\"", html_escape(seed)))
        .replace("BITS", &bits.to_string())
        .replace("PATH", &format!("\"{CHALLENGE_PATH}\""));
    format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>Checking your browser</title></head>\
<body><p id=\"m\">Checking your browser…</p><noscript>Please enable JavaScript to continue.</noscript>\
<script>{js}</script></body></html>"
    )
}

/// The CAPTCHA interstitial: the puzzle image and a form posting the answer back to the gateway.
pub fn captcha_page(p: &Puzzle, return_to: &str, message: &str) -> String {
    let img = base64::engine::general_purpose::STANDARD.encode(&p.png);
    let ret = html_escape(return_to);
    let state = html_escape(&p.state);
    let msg = html_escape(message);
    format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>Verification</title></head><body>\
<form method=\"POST\" action=\"{CAPTCHA_PATH}\"><p>{msg}</p>\
<p><img src=\"data:image/png;base64,{img}\" alt=\"A number of {CAPTCHA_DIGITS} digits\" width=\"{W}\" height=\"{H}\"></p>\
<p><label>Type the digits: <input name=\"answer\" inputmode=\"numeric\" autocomplete=\"off\" autofocus></label></p>\
<input type=\"hidden\" name=\"state\" value=\"{state}\"><input type=\"hidden\" name=\"return\" value=\"{ret}\">\
<button>Continue</button></form></body></html>",
        W = IMG_W * 2,
        H = IMG_H * 2,
    )
}

// ---- The puzzle image ----

const IMG_W: usize = 150;
const IMG_H: usize = 50;
const SCALE: f32 = 4.0;

/// 5×7 bitmap digits, one row per byte (bit 4 = leftmost column).
const FONT: [[u8; 7]; 10] = [
    [0x0e, 0x11, 0x13, 0x15, 0x19, 0x11, 0x0e],
    [0x04, 0x0c, 0x04, 0x04, 0x04, 0x04, 0x0e],
    [0x0e, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1f],
    [0x1f, 0x02, 0x04, 0x02, 0x01, 0x11, 0x0e],
    [0x02, 0x06, 0x0a, 0x12, 0x1f, 0x02, 0x02],
    [0x1f, 0x10, 0x1e, 0x01, 0x01, 0x11, 0x0e],
    [0x06, 0x08, 0x10, 0x1e, 0x11, 0x11, 0x0e],
    [0x1f, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08],
    [0x0e, 0x11, 0x11, 0x0e, 0x11, 0x11, 0x0e],
    [0x0e, 0x11, 0x11, 0x0f, 0x01, 0x02, 0x0c],
];

struct Glyph {
    bits: [u8; 7],
    x0: f32,
    y0: f32,
    shear: f32,
    scale: f32,
}

impl Glyph {
    fn ink(&self, x: f32, y: f32) -> bool {
        let v = (y - self.y0) / self.scale;
        let u = (x - self.x0 - self.shear * (y - self.y0)) / self.scale;
        if !(0.0..5.0).contains(&u) || !(0.0..7.0).contains(&v) {
            return false;
        }
        let (col, row) = (u as usize, v as usize);
        self.bits.get(row).is_some_and(|r| r & (0x10 >> col) != 0)
    }
}

/// Draws `digits` as a grayscale PNG: per-glyph jitter, size and shear, a wave warp over the whole
/// image, crossing lines and speckle.
fn render_digits(digits: &str, rng: &mut impl rand::Rng) -> Option<Vec<u8>> {
    let n = digits.len().max(1) as f32;
    let cell = (IMG_W as f32 - 10.0) / n;
    let glyphs: Vec<Glyph> = digits
        .bytes()
        .enumerate()
        .filter_map(|(i, d)| {
            let bits = *FONT.get(usize::from(d.checked_sub(b'0')?))?;
            let scale = SCALE * rng.random_range(0.95..1.2);
            Some(Glyph {
                bits,
                x0: 5.0 + i as f32 * cell + rng.random_range(0.0..(cell - 5.0 * scale).max(1.0)),
                y0: rng.random_range(2.0..(IMG_H as f32 - 7.0 * scale - 2.0).max(3.0)),
                shear: rng.random_range(-0.25..0.25),
                scale,
            })
        })
        .collect();
    let (amp_x, amp_y) = (rng.random_range(1.0..2.5f32), rng.random_range(1.5..3.5f32));
    let (per_x, per_y) = (rng.random_range(9.0..16.0f32), rng.random_range(14.0..26.0f32));
    let (ph_x, ph_y) = (rng.random_range(0.0..std::f32::consts::TAU), rng.random_range(0.0..std::f32::consts::TAU));
    let mut img = vec![0u8; IMG_W * IMG_H];
    for y in 0..IMG_H {
        for x in 0..IMG_W {
            let (fx, fy) = (x as f32, y as f32);
            let wx = fx + amp_x * (fy / per_x + ph_x).sin();
            let wy = fy + amp_y * (fx / per_y + ph_y).sin();
            let inked = glyphs.iter().any(|g| g.ink(wx, wy));
            let px = if inked { rng.random_range(10..90u8) } else { rng.random_range(205..256u16) as u8 };
            img[y * IMG_W + x] = px;
        }
    }
    // Lines across the digits, as dark as the ink.
    for _ in 0..2 {
        let (mut x, mut y) = (0.0f32, rng.random_range(5.0..(IMG_H as f32 - 5.0)));
        let slope = rng.random_range(-0.25..0.25f32);
        while (x as usize) < IMG_W {
            let yi = y.round() as isize;
            if (0..IMG_H as isize).contains(&yi) {
                img[yi as usize * IMG_W + x as usize] = rng.random_range(40..120u8);
            }
            x += 1.0;
            y += slope + 0.6 * (x / 11.0).sin() * 0.2;
        }
    }
    // Speckle: dark dots on the background, light dots in the ink.
    for _ in 0..(IMG_W * IMG_H / 25) {
        let i = rng.random_range(0..img.len());
        img[i] = if img[i] > 128 { rng.random_range(30..120u8) } else { rng.random_range(170..240u8) };
    }
    let mut out = Vec::with_capacity(IMG_W * IMG_H / 2);
    {
        let mut enc = png::Encoder::new(&mut out, IMG_W as u32, IMG_H as u32);
        enc.set_color(png::ColorType::Grayscale);
        enc.set_depth(png::BitDepth::Eight);
        let mut w = enc.write_header().ok()?;
        w.write_image_data(&img).ok()?;
        w.finish().ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_800_000_000;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap_or(IpAddr::from([0, 0, 0, 0]))
    }

    fn solve(seed: &str, bits: u32) -> String {
        (0u64..)
            .map(|n| n.to_string())
            .find(|n| leading_zero_bits(&Sha256::new().chain_update(seed).chain_update(n).finalize()) >= bits)
            .unwrap_or_default()
    }

    #[test]
    fn tokens_verify_and_bind_to_ip() {
        let k = TokenKey::random();
        let a = ip("10.0.0.1");
        let t = k.issue(a, NOW, 0);
        assert_eq!(k.verify(t.as_bytes(), a, NOW + 5).map(|x| x.1), Some(None));
        assert_eq!(k.verify(t.as_bytes(), a, NOW + 5).map(|x| x.0), Some(5));
        assert!(k.verify(t.as_bytes(), ip("10.0.0.2"), NOW).is_none());
        assert!(k.verify(b"v1.1.2.deadbeef", a, NOW).is_none());
        let t2 = k.issue(a, NOW, NOW);
        assert!(matches!(k.verify(t2.as_bytes(), a, NOW), Some((_, Some(_)))));
    }

    #[test]
    fn challenge_needs_the_work_a_fresh_genuine_seed_and_is_single_use() {
        let k = TokenKey::random();
        let a = ip("10.0.0.1");
        let seed = k.challenge_seed(a, NOW, 10);
        let nonce = solve(&seed, 10);
        let form = |s: &str, n: &str| format!("seed={s}&nonce={n}");
        // A nonce without the work.
        let lazy = (0u64..)
            .map(|n| n.to_string())
            .find(|n| leading_zero_bits(&Sha256::new().chain_update(&seed).chain_update(n).finalize()) < 10)
            .unwrap_or_default();
        assert_eq!(k.check_challenge(a, form(&seed, &lazy).as_bytes(), NOW, None), Err(Refusal::InsufficientWork));
        // Another client's seed, an expired one, a tampered one (lower difficulty: work redone for it).
        assert_eq!(
            k.check_challenge(ip("10.0.0.2"), form(&seed, &nonce).as_bytes(), NOW, None),
            Err(Refusal::BadSignature)
        );
        assert_eq!(
            k.check_challenge(a, form(&seed, &nonce).as_bytes(), NOW + SEED_TTL_S + 1, None),
            Err(Refusal::Expired)
        );
        let tampered = seed.replacen(".10.", ".1.", 1);
        let tn = solve(&tampered, 1);
        assert_eq!(k.check_challenge(a, form(&tampered, &tn).as_bytes(), NOW, None), Err(Refusal::BadSignature));
        // The real thing, once.
        let tok = k.check_challenge(a, form(&seed, &nonce).as_bytes(), NOW + 3, None);
        let tok = tok.unwrap_or_default();
        assert_eq!(k.verify(tok.as_bytes(), a, NOW + 3), Some((0, None)));
        assert_eq!(k.check_challenge(a, form(&seed, &nonce).as_bytes(), NOW + 3, None), Err(Refusal::Replayed));
        // A CAPTCHA time already earned is kept.
        let prior = k.issue(a, NOW - 100, NOW - 50);
        let seed2 = k.challenge_seed(a, NOW, 4);
        let tok2 = k.check_challenge(a, form(&seed2, &solve(&seed2, 4)).as_bytes(), NOW, Some(prior.as_bytes()));
        assert_eq!(tok2.ok().and_then(|t| k.verify(t.as_bytes(), a, NOW)), Some((0, Some(50))));
    }

    #[test]
    fn captcha_state_hides_the_answer_and_is_single_use() {
        let k = TokenKey::random();
        let a = ip("10.0.0.1");
        let p = k.captcha_puzzle(a, NOW).expect("puzzle");
        assert!(p.png.starts_with(b"\x89PNG"));
        let answers: Vec<String> =
            (0..100_000u32).map(|n| format!("{n:05}")).filter(|c| k.captcha_answer_matches(&p.state, a, c)).collect();
        assert_eq!(answers.len(), 1, "exactly one answer fits the state");
        let answer = &answers[0];
        assert!(!p.state.contains(answer.as_str()), "the state does not carry the answer");
        // Only with the key: another gateway's key recognises nothing.
        let other = TokenKey::random();
        assert!(!other.captcha_answer_matches(&p.state, a, answer));
        let form = |ans: &str| format!("state={}&answer={ans}&return=%2Flogin", p.state);
        assert_eq!(k.check_captcha(ip("10.0.0.9"), form(answer).as_bytes(), NOW), Err(Refusal::BadSignature));
        assert_eq!(k.check_captcha(a, form(answer).as_bytes(), NOW + PUZZLE_TTL_S + 1), Err(Refusal::Expired));
        let (tok, ret) = k.check_captcha(a, form(answer).as_bytes(), NOW + 2).unwrap_or_default();
        assert_eq!(ret, "/login");
        assert_eq!(k.verify(tok.as_bytes(), a, NOW + 2), Some((0, Some(0))));
        assert_eq!(k.check_captcha(a, form(answer).as_bytes(), NOW + 2), Err(Refusal::Replayed));
        // A wrong answer uses the puzzle up too: no guessing on one image.
        let p2 = k.captcha_puzzle(a, NOW).expect("puzzle");
        let wrong = (0..100_000u32).map(|n| format!("{n:05}")).find(|c| !k.captcha_answer_matches(&p2.state, a, c));
        let f2 = |ans: &str| format!("state={}&answer={ans}", p2.state);
        assert_eq!(k.check_captcha(a, f2(&wrong.unwrap_or_default()).as_bytes(), NOW), Err(Refusal::WrongAnswer));
    }

    #[test]
    fn return_paths_stay_on_site() {
        assert_eq!(safe_return(Some("/a?b=1")), "/a?b=1");
        assert_eq!(safe_return(Some("//evil.example/")), "/");
        assert_eq!(safe_return(Some("/\\evil.example/")), "/");
        assert_eq!(safe_return(Some("https://evil.example/")), "/");
        assert_eq!(safe_return(None), "/");
    }

    #[test]
    fn images_decode_and_differ() {
        let mut rng = rand::rng();
        let a = render_digits("12345", &mut rng).expect("png");
        let b = render_digits("12345", &mut rng).expect("png");
        assert_ne!(a, b, "the same digits never draw the same image");
        let dec = png::Decoder::new(std::io::Cursor::new(a));
        let info = dec.read_info().map(|r| (r.info().width, r.info().height)).ok();
        assert_eq!(info, Some((IMG_W as u32, IMG_H as u32)));
    }
}
