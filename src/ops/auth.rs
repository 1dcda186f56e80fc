//! `git clutch auth codex`: "Sign in with ChatGPT" as the Codex CLI does it, with the tokens
//! kept in the vault instead of `~/.codex/auth.json`.
//!
//! The OAuth 2.0 authorization-code flow with PKCE (RFC 7636, S256), with Codex's public client
//! and parameters (openai/codex `codex-rs/login/src/server.rs`, `pkce.rs`): a callback server on
//! 127.0.0.1 (port 1455 by default, the one registered with the issuer as
//! `http://localhost:1455/auth/callback`), the authorize URL for the user to open, the code
//! exchanged at `{issuer}/oauth/token`, then — best effort, as Codex does — the id_token
//! exchanged for an API key. What Codex would write to `auth.json` is stored in the vault as
//! [`codex::AUTH_SECRET`]; each codex run gets a copy in its own CODEX_HOME
//! (see [`crate::runtime::codex`]).
//!
//! Nothing here prints or returns a token: the outcome names the account, the expiry and the
//! vault entry's fingerprint. The callback server reads one request line per connection and
//! answers anything but `/auth/callback` with 404, so a browser's `/favicon.ico` is harmless.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use base64ct::{Base64UrlUnpadded, Encoding};
use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::env::Env;
use crate::runtime::codex;
use crate::runtime::one_line;
use crate::vault::Vault;
use crate::{Error, Result};

/// Where Codex signs in.
pub const DEFAULT_ISSUER: &str = codex::DEFAULT_ISSUER;
/// The Codex CLI's public OAuth client (no secret: PKCE protects the code).
pub const CLIENT_ID: &str = "app_EMoamEEZ73f0CkXaXp7hrann";
/// The callback port registered with the issuer for that client.
pub const DEFAULT_PORT: u16 = 1455;
/// The scopes Codex asks for.
pub const SCOPE: &str = "openid profile email offline_access api.connectors.read api.connectors.invoke";
/// How long a sign-in may take by default.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(600);

/// A PKCE pair: the verifier stays here, the challenge goes in the URL.
pub struct Pkce {
    pub verifier: Zeroizing<String>,
    pub challenge: String,
}

impl std::fmt::Debug for Pkce {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pkce").field("challenge", &self.challenge).finish_non_exhaustive()
    }
}

impl Pkce {
    /// 64 random bytes, base64url without padding (86 characters); the challenge is
    /// base64url(SHA-256(verifier)) without padding.
    pub fn generate() -> Result<Pkce> {
        let verifier = Zeroizing::new(Base64UrlUnpadded::encode_string(&random::<64>()?));
        Ok(Pkce { challenge: challenge_of(&verifier), verifier })
    }
}

/// The S256 challenge of `verifier`.
pub fn challenge_of(verifier: &str) -> String {
    Base64UrlUnpadded::encode_string(&Sha256::digest(verifier.as_bytes()))
}

fn random<const N: usize>() -> Result<[u8; N]> {
    let mut bytes = [0u8; N];
    getrandom::getrandom(&mut bytes).map_err(|err| Error::internal(format!("no randomness for the sign-in: {err}")))?;
    Ok(bytes)
}

/// What to sign in against, and how long to wait.
#[derive(Debug, Clone)]
pub struct Options {
    pub issuer: String,
    pub port: u16,
    pub timeout: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Options { issuer: DEFAULT_ISSUER.to_string(), port: DEFAULT_PORT, timeout: DEFAULT_TIMEOUT }
    }
}

/// A sign-in waiting for its callback: the URL to open, and the listener that will hear back.
pub struct Pending {
    listener: TcpListener,
    issuer: String,
    redirect_uri: String,
    pkce: Pkce,
    state: String,
    timeout: Duration,
    /// Callbacks refused for another sign-in's state, said when the time runs out.
    stale_callbacks: std::cell::Cell<u32>,
    /// The URL the user opens.
    pub url: String,
    pub port: u16,
}

impl std::fmt::Debug for Pending {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pending").field("url", &self.url).finish_non_exhaustive()
    }
}

/// What was stored: everything but the tokens.
#[derive(Debug, Clone, Serialize)]
pub struct Stored {
    /// The vault entry.
    pub name: String,
    pub fingerprint: String,
    pub version: u32,
    pub issuer: String,
    /// The ChatGPT account (workspace) the tokens act for.
    pub account_id: Option<String>,
    pub email: Option<String>,
    pub plan: Option<String>,
    /// When the access token expires (RFC 3339), when it says.
    pub expires_at: Option<String>,
    /// Whether the issuer also gave an API key (Codex's token exchange).
    pub api_key: bool,
}

/// Check the vault opens, bind the callback port, and make the authorize URL.
pub fn start(env: &Env, options: &Options) -> Result<Pending> {
    let issuer = options.issuer.trim_end_matches('/').to_string();
    if !(issuer.starts_with("https://") || issuer.starts_with("http://")) {
        return Err(Error::usage(format!("--issuer '{issuer}' is not an http(s) URL")).hint(format!("the default is {DEFAULT_ISSUER}")));
    }
    // Before the user signs in: a locked or unopenable vault would waste the sign-in.
    Vault::open(env).map_err(|err| err.context("the tokens go into the vault"))?;
    let listener = TcpListener::bind(("127.0.0.1", options.port)).map_err(|err| {
        let redirect = format!("http://localhost:{}/auth/callback", options.port);
        match err.kind() {
            std::io::ErrorKind::AddrInUse => Error::user(format!(
                "port {} on 127.0.0.1 is in use, so the sign-in callback ({redirect}) cannot be received",
                options.port
            ))
            .hint("free the port (a `codex login` still running?), or pass --port N; the issuer must then accept http://localhost:N/auth/callback as redirect_uri"),
            _ => Error::user(format!("cannot listen on 127.0.0.1:{} for the sign-in callback: {err}", options.port))
                .hint("pass another --port N; the issuer must then accept http://localhost:N/auth/callback as redirect_uri"),
        }
    })?;
    let port = listener.local_addr().map(|a| a.port()).unwrap_or(options.port);
    let redirect_uri = format!("http://localhost:{port}/auth/callback");
    let pkce = Pkce::generate()?;
    let state = Base64UrlUnpadded::encode_string(&random::<32>()?);
    let url = authorize_url(&issuer, &redirect_uri, &pkce.challenge, &state);
    Ok(Pending { listener, issuer, redirect_uri, pkce, state, timeout: options.timeout, stale_callbacks: Default::default(), url, port })
}

/// `{issuer}/oauth/authorize?…` with the parameters Codex sends.
pub fn authorize_url(issuer: &str, redirect_uri: &str, challenge: &str, state: &str) -> String {
    let query = [
        ("response_type", "code"),
        ("client_id", CLIENT_ID),
        ("redirect_uri", redirect_uri),
        ("scope", SCOPE),
        ("code_challenge", challenge),
        ("code_challenge_method", "S256"),
        ("id_token_add_organizations", "true"),
        ("codex_cli_simplified_flow", "true"),
        ("state", state),
        ("originator", "codex_cli_rs"),
    ];
    let query: Vec<String> = query.iter().map(|(k, v)| format!("{k}={}", percent_encode(v))).collect();
    format!("{issuer}/oauth/authorize?{}", query.join("&"))
}

impl Pending {
    /// Wait for the browser to come back, exchange the code, store the tokens in the vault.
    /// The browser gets a page saying how it went; nothing is stored unless all of it worked.
    pub fn finish(self, env: &Env) -> Result<Stored> {
        let (code, mut browser) = self.callback()?;
        let result = self.exchange_and_store(env, &code);
        let page = match &result {
            Ok(_) => page(200, "Signed in", "Codex is signed in for clutch. You can close this tab."),
            Err(err) => page(400, "Sign-in failed", &format!("{err}. Return to the terminal and run git clutch auth codex again.")),
        };
        let _ = browser.write_all(page.as_bytes()).and_then(|_| browser.flush());
        result
    }

    /// Serve until `/auth/callback` arrives with the right state (or the time is up).
    fn callback(&self) -> Result<(Zeroizing<String>, TcpStream)> {
        let deadline = Instant::now() + self.timeout;
        self.listener.set_nonblocking(true).map_err(|err| Error::internal(format!("cannot poll the callback listener: {err}")))?;
        loop {
            let stream = match self.listener.accept() {
                Ok((stream, _)) => stream,
                Err(err) if err.kind() == std::io::ErrorKind::WouldBlock => {
                    if Instant::now() >= deadline {
                        let stale = match self.stale_callbacks.get() {
                            0 => String::new(),
                            n => format!(" ({n} callback{} with another sign-in's state refused)", if n == 1 { "" } else { "s" }),
                        };
                        return Err(Error::user(format!(
                            "no sign-in reached {} within {} s{stale}: nothing was stored",
                            self.redirect_uri,
                            self.timeout.as_secs()
                        ))
                        .hint("open the URL printed above in a browser (on a remote machine: ssh -L PORT:localhost:PORT HOST first), or give more time with --timeout-s"));
                    }
                    std::thread::sleep(Duration::from_millis(50));
                    continue;
                }
                Err(err) if err.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(err) => return Err(Error::internal(format!("the callback listener failed: {err}"))),
            };
            if let Some(found) = self.handle(stream)? {
                return Ok(found);
            }
        }
    }

    /// One connection: `Some` for the callback, `None` for anything else (already answered).
    fn handle(&self, mut stream: TcpStream) -> Result<Option<(Zeroizing<String>, TcpStream)>> {
        let _ = stream.set_nonblocking(false);
        let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
        let _ = stream.set_write_timeout(Some(Duration::from_secs(5)));
        let Some(target) = read_request_target(&mut stream) else {
            let _ = stream.write_all(page(400, "Bad request", "clutch's sign-in callback expects GET /auth/callback.").as_bytes());
            return Ok(None);
        };
        let (path, query) = target.split_once('?').unwrap_or((&target, ""));
        if path != "/auth/callback" {
            let _ = stream.write_all(page(404, "Not found", "Nothing here: this is clutch's sign-in callback.").as_bytes());
            return Ok(None);
        }
        let params = parse_query(query);
        let param = |key: &str| params.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str()).filter(|v| !v.is_empty());
        let refuse = |mut stream: TcpStream, err: Error| -> Result<Option<(Zeroizing<String>, TcpStream)>> {
            let _ = stream.write_all(page(400, "Sign-in failed", &format!("{err}.")).as_bytes());
            Err(err)
        };
        if param("state") != Some(self.state.as_str()) {
            // A stale tab or a forged request: any page can send the browser here. Refusing it
            // must not end the sign-in the person is doing, so the callback keeps listening.
            self.stale_callbacks.set(self.stale_callbacks.get() + 1);
            let _ = stream.write_all(
                page(400, "Sign-in failed", "this callback's state does not match the sign-in under way (a stale tab, or a request from another page): nothing was stored. Use the URL git clutch auth codex printed last.")
                    .as_bytes(),
            );
            return Ok(None);
        }
        if let Some(error) = param("error") {
            let why = param("error_description").map(|d| format!("{error}: {d}")).unwrap_or_else(|| error.to_string());
            return refuse(
                stream,
                Error::user(format!("the issuer refused the sign-in: {}", one_line(&why)))
                    .hint("check the account can use Codex, then run git clutch auth codex again"),
            );
        }
        match param("code") {
            Some(code) => Ok(Some((Zeroizing::new(code.to_string()), stream))),
            None => {
                refuse(stream, Error::user("the sign-in callback carried no authorization code").hint("run git clutch auth codex again"))
            }
        }
    }

    fn exchange_and_store(&self, env: &Env, code: &str) -> Result<Stored> {
        let token_url = format!("{}/oauth/token", self.issuer);
        let form = [
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", self.redirect_uri.as_str()),
            ("client_id", CLIENT_ID),
            ("code_verifier", self.pkce.verifier.as_str()),
        ];
        let secrets = [code, self.pkce.verifier.as_str()];
        let tokens = post_form(&token_url, &form, &secrets).map_err(|why| {
            Error::user(format!("the token endpoint {token_url} refused the authorization code: {why}: nothing was stored"))
        })?;
        let field = |name: &str| -> Result<Zeroizing<String>> {
            tokens.get(name).and_then(Value::as_str).filter(|v| !v.is_empty()).map(|v| Zeroizing::new(v.to_string())).ok_or_else(|| {
                Error::user(format!("the token endpoint {token_url} answered without {name}: nothing was stored"))
                    .hint("check --issuer names an OpenAI-compatible issuer")
            })
        };
        let (id_token, access_token, refresh_token) = (field("id_token")?, field("access_token")?, field("refresh_token")?);
        let claims = jwt_claims(&id_token).ok_or_else(|| {
            Error::user(format!("the id_token from {token_url} is not a JWT codex can read: nothing was stored"))
                .hint("check --issuer names an OpenAI-compatible issuer")
        })?;
        let auth = claims.get("https://api.openai.com/auth");
        let account_id = auth.and_then(|a| a.get("chatgpt_account_id")).and_then(Value::as_str).map(str::to_string);
        let plan = auth.and_then(|a| a.get("chatgpt_plan_type")).and_then(Value::as_str).map(str::to_string);
        let email = claims
            .get("email")
            .or_else(|| claims.pointer("/https:~1~1api.openai.com~1profile/email"))
            .and_then(Value::as_str)
            .map(str::to_string);
        // Codex trades the id_token for an API key and keeps it when that works; so do we.
        let api_key = exchange_for_api_key(&token_url, &id_token);
        let expires_at = jwt_claims(&access_token).and_then(|c| c.get("exp").and_then(Value::as_i64)).map(crate::env::format_time);
        let file = codex::AuthFile {
            id_token,
            access_token,
            refresh_token,
            account_id: account_id.clone(),
            api_key: api_key.map(Zeroizing::new),
            last_refresh: crate::env::format_time(env.now()),
            issuer: (self.issuer != DEFAULT_ISSUER).then(|| self.issuer.clone()),
        };
        let has_api_key = file.api_key.is_some();
        let json = file.to_json();
        let listed = Vault::edit(env, |vault| vault.set(codex::AUTH_SECRET, json.to_string(), env.now()))?;
        Ok(Stored {
            name: listed.name,
            fingerprint: listed.fingerprint,
            version: listed.version,
            issuer: self.issuer.clone(),
            account_id,
            email,
            plan,
            expires_at,
            api_key: has_api_key,
        })
    }
}

/// The OAuth token exchange for an API key (RFC 8693), as Codex asks for it; `None` when the
/// issuer does not give one.
fn exchange_for_api_key(token_url: &str, id_token: &str) -> Option<String> {
    let form = [
        ("grant_type", "urn:ietf:params:oauth:grant-type:token-exchange"),
        ("client_id", CLIENT_ID),
        ("requested_token", "openai-api-key"),
        ("subject_token", id_token),
        ("subject_token_type", "urn:ietf:params:oauth:token-type:id_token"),
    ];
    let answer = post_form(token_url, &form, &[id_token]).ok()?;
    answer.get("access_token").and_then(Value::as_str).filter(|k| !k.is_empty()).map(str::to_string)
}

/// POST a form, expect a JSON object back. `Err` is one line, with `secrets` (what was sent)
/// scrubbed from anything the server said.
fn post_form(url: &str, form: &[(&str, &str)], secrets: &[&str]) -> std::result::Result<Value, String> {
    let scrub = |text: &str| -> String {
        let mut text = one_line(text);
        for secret in secrets.iter().filter(|s| s.len() >= 4) {
            text = text.replace(secret, "[redacted]");
        }
        text
    };
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(60)))
        .http_status_as_error(false)
        .max_redirects(0)
        .build()
        .into();
    let mut response =
        agent.post(url).header("Accept", "application/json").send_form(form.iter().copied()).map_err(|err| scrub(&err.to_string()))?;
    let status = response.status();
    let body = response.body_mut().with_config().limit(1 << 20).read_to_string().map_err(|err| scrub(&err.to_string()))?;
    let json: Option<Value> = serde_json::from_str(&body).ok();
    if !status.is_success() {
        let detail = json
            .as_ref()
            .and_then(|j| {
                let error = j.get("error").and_then(|e| e.as_str().or_else(|| e.get("message").and_then(Value::as_str)));
                let description = j.get("error_description").and_then(Value::as_str);
                match (error, description) {
                    (Some(e), Some(d)) => Some(format!("{e}: {d}")),
                    (e, d) => e.or(d).map(str::to_string),
                }
            })
            .unwrap_or_else(|| body.chars().take(200).collect());
        return Err(scrub(&format!("HTTP {}: {detail}", status.as_u16())));
    }
    match json {
        Some(json @ Value::Object(_)) => Ok(json),
        _ => Err(format!("HTTP {}: the answer is not a JSON object", status.as_u16())),
    }
}

/// The claims of a JWT (its middle part), without checking the signature: the token came
/// straight from the issuer over the connection clutch opened.
pub fn jwt_claims(jwt: &str) -> Option<Value> {
    let mut parts = jwt.split('.');
    let (_, payload, _) = (parts.next()?, parts.next()?, parts.next()?);
    let bytes = Base64UrlUnpadded::decode_vec(payload.trim_end_matches('=')).ok()?;
    serde_json::from_slice::<Value>(&bytes).ok().filter(Value::is_object)
}

/// The request target of an HTTP/1.x request line (`GET /auth/callback?… HTTP/1.1`), after
/// reading the head (at most 16 KiB); `None` for anything else.
fn read_request_target(stream: &mut TcpStream) -> Option<String> {
    let mut head = Vec::with_capacity(1024);
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && !head.windows(2).any(|w| w == b"\n\n") {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => head.extend_from_slice(&buf[..n]),
            Err(err) if err.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => break,
        }
        if head.len() > 16 * 1024 {
            return None;
        }
    }
    let line = head.split(|b| *b == b'\n').next()?;
    let line = std::str::from_utf8(line).ok()?.trim_end_matches('\r');
    let mut words = line.split(' ');
    let (method, target, version) = (words.next()?, words.next()?, words.next()?);
    let ok = matches!(method, "GET" | "HEAD") && target.starts_with('/') && version.starts_with("HTTP/1.") && words.next().is_none();
    ok.then(|| target.to_string())
}

/// `a=1&b=x%20y` as pairs, percent-decoded (`+` is a space); undecodable pairs are dropped.
fn parse_query(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .filter_map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            Some((percent_decode(k)?, percent_decode(v)?))
        })
        .collect()
}

fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

/// RFC 3986 percent-encoding: everything but the unreserved characters.
pub fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A complete HTTP/1.1 response with a small HTML page; the connection closes after it.
fn page(status: u16, title: &str, message: &str) -> String {
    let reason = match status {
        200 => "OK",
        404 => "Not Found",
        _ => "Bad Request",
    };
    let escape = |s: &str| s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;");
    let body = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>clutch: {0}</title></head>\
         <body style=\"font-family:sans-serif;margin:3em\"><h1>{0}</h1><p>{1}</p></body></html>\n",
        escape(title),
        escape(message)
    );
    format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: {}\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkce_matches_rfc_7636_appendix_b() {
        // RFC 7636, Appendix B: the verifier and its S256 challenge.
        assert_eq!(challenge_of("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"), "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
        let pkce = Pkce::generate().expect("randomness");
        assert_eq!(pkce.verifier.len(), 86, "64 bytes, base64url without padding");
        assert!(pkce.verifier.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
        assert_eq!(pkce.challenge, challenge_of(&pkce.verifier));
        assert_ne!(Pkce::generate().expect("randomness").verifier, pkce.verifier);
    }

    #[test]
    fn the_authorize_url_carries_codex_parameters() {
        let url = authorize_url("https://auth.openai.com", "http://localhost:1455/auth/callback", "CH", "ST");
        let (base, query) = url.split_once('?').expect("a query");
        assert_eq!(base, "https://auth.openai.com/oauth/authorize");
        let params = parse_query(query);
        let get = |k: &str| params.iter().find(|(key, _)| key == k).map(|(_, v)| v.as_str());
        assert_eq!(get("response_type"), Some("code"));
        assert_eq!(get("client_id"), Some(CLIENT_ID));
        assert_eq!(get("redirect_uri"), Some("http://localhost:1455/auth/callback"));
        assert_eq!(get("scope"), Some(SCOPE));
        assert_eq!(get("code_challenge"), Some("CH"));
        assert_eq!(get("code_challenge_method"), Some("S256"));
        assert_eq!(get("state"), Some("ST"));
        assert_eq!(get("codex_cli_simplified_flow"), Some("true"));
        assert!(query.contains("redirect_uri=http%3A%2F%2Flocalhost%3A1455%2Fauth%2Fcallback"), "{query}");
    }

    #[test]
    fn queries_and_jwts_parse_and_bad_ones_do_not_panic() {
        assert_eq!(parse_query("a=1&b=x%20y+z&c"), vec![("a".into(), "1".into()), ("b".into(), "x y z".into()), ("c".into(), "".into())]);
        assert!(parse_query("a=%zz&b=%4").is_empty());
        let payload = Base64UrlUnpadded::encode_string(br#"{"email":"a@b.c","exp":5}"#);
        assert_eq!(jwt_claims(&format!("h.{payload}.s")).and_then(|c| c["exp"].as_i64()), Some(5));
        assert!(jwt_claims("not a jwt").is_none());
        assert!(jwt_claims("a.!!!.c").is_none());
        assert_eq!(percent_encode("a b/é"), "a%20b%2F%C3%A9");
    }
}
