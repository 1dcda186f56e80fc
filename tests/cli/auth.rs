//! `git clutch auth codex` against a loopback OAuth issuer (`tests/agents/oauth_server.py`),
//! and the REAL codex CLI signed in with the tokens it stored (against
//! `tests/agents/model_server.py`, as in `agents.rs`): nothing leaves the machine.
//!
//! The browser is played by a tiny HTTP client: it opens the authorize URL the command prints,
//! follows the issuer's redirect to the callback, and reads the page. Every token the issuer
//! hands out is a `test_secret`, so the suite's secret scan would see one that leaked; the
//! tests also look for each of them in everything the commands printed and in every object of
//! the repository. No assertion message prints a value that holds a token.

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use sha2::Digest as _;

use crate::agents::{self, Cli, World};
use crate::common::{rfc3339, test_secret, CommandOutput, TestEnv, CLUTCH};

const CLIENT_ID: &str = "app_EMoamEEZ73f0CkXaXp7hrann";
const ACCOUNT: &str = "acct-clutch-test";

// ---------------------------------------------------------------------------------------------
// The issuer

/// The values the issuer hands out (each a `test_secret`).
struct Tokens {
    access: String,
    refresh: String,
    id_sig: String,
    api_key: String,
    refreshed_access: String,
    refreshed_refresh: String,
}

impl Tokens {
    fn new() -> Tokens {
        Tokens {
            access: test_secret("access"),
            refresh: test_secret("refresh"),
            id_sig: test_secret("idtoken"),
            api_key: test_secret("apikey"),
            refreshed_access: test_secret("access2"),
            refreshed_refresh: test_secret("refresh2"),
        }
    }

    fn all(&self) -> [&str; 6] {
        [&self.access, &self.refresh, &self.id_sig, &self.api_key, &self.refreshed_access, &self.refreshed_refresh]
    }
}

/// `tests/agents/oauth_server.py` on a free port; killed when dropped.
struct Issuer {
    child: Child,
    port: u16,
    log: PathBuf,
}

impl Issuer {
    fn start(env: &TestEnv, tokens: &Tokens, flags: &[&str]) -> Issuer {
        let log = env.root.join("oauth-log.jsonl");
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests").join("agents").join("oauth_server.py");
        let mut cmd = Command::new("python3");
        // Outside the test's directory (cwd and environment), so the run tests' "no process
        // left under the test directory" checks do not count it.
        cmd.current_dir("/").env_clear().env("PATH", "/usr/local/bin:/usr/bin:/bin").arg(&script).arg("0");
        cmd.arg("--log").arg(&log);
        for (flag, value) in [
            ("--access-token", &tokens.access),
            ("--refresh-token", &tokens.refresh),
            ("--id-token-sig", &tokens.id_sig),
            ("--api-key", &tokens.api_key),
            ("--refreshed-access-token", &tokens.refreshed_access),
            ("--refreshed-refresh-token", &tokens.refreshed_refresh),
            ("--account-id", &ACCOUNT.to_string()),
        ] {
            cmd.args([flag, value]);
        }
        cmd.args(flags).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = cmd.spawn().unwrap_or_else(|err| panic!("cannot start {} with python3: {err}", script.display()));
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = rx.recv_timeout(Duration::from_secs(20)).unwrap_or_default();
        let Ok(port) = line.trim().parse::<u16>() else {
            let _ = child.kill();
            let mut said = String::new();
            let _ = child.stderr.take().map(|mut e| e.read_to_string(&mut said));
            panic!("the OAuth server did not print its port (got {line:?}); its stderr:\n{said}");
        };
        Issuer { child, port, log }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The log, one JSON object per request.
    fn logged(&self) -> Vec<Value> {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        text.lines().map(|l| serde_json::from_str(l).expect("a JSON log line")).collect()
    }

    /// The logged token requests with this grant type.
    fn grants(&self, grant: &str) -> Vec<Value> {
        self.logged().into_iter().filter(|r| r["endpoint"] == "token" && r["grant_type"] == grant).collect()
    }
}

impl Drop for Issuer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ---------------------------------------------------------------------------------------------
// The browser

/// A port nobody listens on right now.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port").port()
}

/// One HTTP/1.1 GET: (status, Location, body).
fn get(url: &str) -> (u16, Option<String>, String) {
    let rest = url.strip_prefix("http://").unwrap_or_else(|| panic!("not an http URL: {url}"));
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let path = if path.is_empty() { "/" } else { path };
    let (host, port) = authority.rsplit_once(':').expect("a port in the URL");
    let port: u16 = port.parse().expect("a numeric port");
    let mut stream = std::net::TcpStream::connect((host, port)).unwrap_or_else(|err| panic!("cannot connect to {authority}: {err}"));
    stream.set_read_timeout(Some(Duration::from_secs(30))).expect("a read timeout");
    write!(stream, "GET {path} HTTP/1.1\r\nHost: {authority}\r\nUser-Agent: clutch-test-browser\r\nConnection: close\r\n\r\n")
        .expect("send the request");
    let mut raw = Vec::new();
    let _ = stream.read_to_end(&mut raw);
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or_else(|| panic!("no status line from {url}"));
    let location =
        head.lines().find_map(|l| l.split_once(':').filter(|(k, _)| k.eq_ignore_ascii_case("location")).map(|(_, v)| v.trim().to_string()));
    (status, location, body.to_string())
}

/// What a person does with the URL: open it, get sent to the callback, see the page there.
/// Returns the issuer's status and, when it redirected, the callback page (status, body).
fn sign_in(url: &str) -> (u16, Option<(u16, String)>) {
    let (status, location, _) = get(url);
    let page = location.filter(|_| status == 302).map(|to| {
        let (status, _, body) = get(&to);
        (status, body)
    });
    (status, page)
}

// ---------------------------------------------------------------------------------------------
// `git clutch auth codex` in the background

struct SignIn {
    child: Child,
    url_rx: mpsc::Receiver<String>,
    out: std::thread::JoinHandle<String>,
    err: std::thread::JoinHandle<String>,
}

impl SignIn {
    fn start(env: &TestEnv, args: &[&str]) -> SignIn {
        let mut cmd = env.command(CLUTCH);
        cmd.env("CLUTCH_NOW", rfc3339(env.tick())).args(["auth", "codex", "--no-browser"]).args(args);
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("start git clutch auth codex");
        let (stdout, stderr) = (child.stdout.take().expect("piped"), child.stderr.take().expect("piped"));
        let (tx, url_rx) = mpsc::channel();
        let err = std::thread::spawn(move || {
            let mut all = String::new();
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if line.trim().starts_with("http") && line.contains("/oauth/authorize?") {
                    let _ = tx.send(line.trim().to_string());
                }
                all.push_str(&line);
                all.push('\n');
            }
            all
        });
        let out = std::thread::spawn(move || {
            let mut all = String::new();
            let _ = BufReader::new(stdout).read_to_string(&mut all);
            all
        });
        SignIn { child, url_rx, out, err }
    }

    /// The authorize URL it printed (or what it said instead, when it ended first).
    fn url(&mut self) -> Result<String, CommandOutput> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(url) = self.url_rx.recv_timeout(Duration::from_millis(100)) {
                return Ok(url);
            }
            if matches!(self.child.try_wait(), Ok(Some(_))) || Instant::now() > deadline {
                return Err(self.wait_ref());
            }
        }
    }

    fn wait_ref(&mut self) -> CommandOutput {
        let deadline = Instant::now() + Duration::from_secs(60);
        let status = loop {
            match self.child.try_wait() {
                Ok(Some(status)) => break status.code().unwrap_or(-1),
                Ok(None) if Instant::now() > deadline => {
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    break -1;
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(50)),
                Err(_) => break -1,
            }
        };
        let out = std::mem::replace(&mut self.out, std::thread::spawn(String::new));
        let err = std::mem::replace(&mut self.err, std::thread::spawn(String::new));
        CommandOutput { stdout: out.join().unwrap_or_default(), stderr: err.join().unwrap_or_default(), status }
    }

    /// Wait (at most a minute) for it to end.
    fn wait(mut self) -> CommandOutput {
        self.wait_ref()
    }
}

impl Drop for SignIn {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The query parameters of a URL, decoded.
fn query(url: &str) -> Vec<(String, String)> {
    let decode = |s: &str| {
        let bytes = s.replace('+', " ").into_bytes();
        let mut out = Vec::new();
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i] == b'%' && i + 2 < bytes.len() {
                if let Ok(b) = u8::from_str_radix(std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("zz"), 16) {
                    out.push(b);
                    i += 3;
                    continue;
                }
            }
            out.push(bytes[i]);
            i += 1;
        }
        String::from_utf8(out).expect("UTF-8")
    };
    let q = url.split_once('?').map(|(_, q)| q).unwrap_or("");
    q.split('&').filter_map(|p| p.split_once('=')).map(|(k, v)| (decode(k), decode(v))).collect()
}

// ---------------------------------------------------------------------------------------------
// The vault, read with the age crate

/// The vault's secrets ({name: {value, …}}), decrypted with the test's identity; `None` when
/// the vault file does not exist.
fn vault(env: &TestEnv, identity_file: &Path) -> Option<serde_json::Map<String, Value>> {
    let bytes = std::fs::read(env.clutch_home.join("vault.age")).ok()?;
    let text = std::fs::read_to_string(identity_file).expect("read the identity");
    let line = text.lines().find(|l| l.starts_with("AGE-SECRET-KEY-")).expect("an identity line");
    let identity: age::x25519::Identity = line.parse().expect("a valid identity");
    let plain = age::decrypt(&identity, &bytes).expect("the test's identity opens the vault");
    let doc: Value = serde_json::from_slice(&plain).expect("the vault is JSON");
    doc["secrets"].as_object().cloned()
}

/// The `auth.json` stored as `codex.auth`, if any.
fn stored_auth(env: &TestEnv, identity_file: &Path) -> Option<Value> {
    let secrets = vault(env, identity_file)?;
    let value = secrets.get("codex.auth")?["value"].as_str()?.to_string();
    Some(serde_json::from_str(&value).expect("codex.auth holds JSON"))
}

/// The error a failed `auth codex` ended with: after whatever it printed while waiting,
/// stderr ends with exactly one `error: …` line and at most one `hint: …` line.
#[track_caller]
fn failure(out: &CommandOutput) -> (String, String) {
    let lines: Vec<&str> = out.stderr.lines().collect();
    let at = lines.iter().position(|l| l.starts_with("error: ")).unwrap_or_else(|| panic!("no error line:\n{out}"));
    let rest = &lines[at + 1..];
    assert!(rest.len() <= 1 && rest.iter().all(|l| l.starts_with("hint: ")), "one error line and an optional hint end stderr:\n{out}");
    (lines[at]["error: ".len()..].to_string(), rest.first().map(|h| h["hint: ".len()..].to_string()).unwrap_or_default())
}

/// Fails (without printing any token) when one of `tokens` is in `text`.
#[track_caller]
fn assert_no_token(what: &str, text: &str, tokens: &Tokens) {
    for (i, token) in tokens.all().iter().enumerate() {
        assert!(!text.contains(token), "token #{i} of the issuer appears in {what}");
    }
}

/// Every object of the repository, as git prints them.
fn all_objects(env: &TestEnv) -> String {
    let list = env.git_ok(["rev-list", "--all", "--objects"]);
    let ids: String = list.lines().filter_map(|l| l.split_whitespace().next()).map(|id| format!("{id}\n")).collect();
    let mut cmd = env.command("git");
    cmd.args(["cat-file", "--batch"]).stdin(Stdio::piped()).stdout(Stdio::piped());
    let mut child = cmd.spawn().expect("git cat-file");
    let mut stdin = child.stdin.take().expect("piped");
    let writer = std::thread::spawn(move || stdin.write_all(ids.as_bytes()));
    let out = child.wait_with_output().expect("git cat-file output");
    let _ = writer.join();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

// ---------------------------------------------------------------------------------------------
// 1. The sign-in

#[test]
fn auth_codex_signs_in_with_pkce_and_keeps_the_tokens_in_the_vault_only() {
    let env = TestEnv::new();
    let identity = env.unlock_vault();
    let tokens = Tokens::new();
    let issuer = Issuer::start(&env, &tokens, &[]);
    let port = free_port();
    let mut signing = SignIn::start(&env, &["--issuer", &issuer.url(), "--port", &port.to_string(), "--json"]);
    let url = signing.url().unwrap_or_else(|out| panic!("auth codex printed no authorize URL:\n{out}"));

    // The URL carries Codex's parameters.
    assert!(url.starts_with(&format!("{}/oauth/authorize?", issuer.url())), "{url}");
    let params = query(&url);
    let param = |k: &str| params.iter().find(|(key, _)| key == k).map(|(_, v)| v.clone());
    assert_eq!(param("client_id").as_deref(), Some(CLIENT_ID));
    assert_eq!(param("redirect_uri"), Some(format!("http://localhost:{port}/auth/callback")));
    assert_eq!(param("code_challenge_method").as_deref(), Some("S256"));
    assert_eq!(param("response_type").as_deref(), Some("code"));
    assert_eq!(param("code_challenge").map(|c| c.len()), Some(43), "base64url of a SHA-256, unpadded");

    // A browser also asks for the favicon: 404, and the command keeps waiting.
    let (status, _, _) = get(&format!("http://127.0.0.1:{port}/favicon.ico"));
    assert_eq!(status, 404);
    assert!(matches!(signing.child.try_wait(), Ok(None)), "still waiting after /favicon.ico");

    let (status, page) = sign_in(&url);
    assert_eq!(status, 302, "the issuer accepted the authorize request: {:?}", issuer.logged());
    let (page_status, page) = page.expect("the issuer redirected to the callback");
    assert_eq!(page_status, 200, "{page}");
    assert!(page.contains("You can close this tab"), "{page}");
    let out = signing.wait().success();
    assert_no_token("the output of auth codex", &format!("{}{}", out.stdout, out.stderr), &tokens);

    // The issuer checked the verifier against the challenge, and was asked for an API key.
    let exchanged = issuer.grants("authorization_code");
    assert_eq!(exchanged.len(), 1, "one code exchange: {:?}", issuer.logged());
    for check in ["code", "redirect_uri", "client_id", "code_verifier_length", "verifier_matches_challenge"] {
        assert_eq!(exchanged[0]["checks"][check], true, "{check}: {}", exchanged[0]);
    }
    assert_eq!(exchanged[0]["outcome"], 200);
    assert_eq!(issuer.grants("urn:ietf:params:oauth:grant-type:token-exchange")[0]["outcome"], 200);

    // What it printed: the account, the expiry and the fingerprint, no token.
    let stored = out.json();
    assert_eq!(stored["name"], "codex.auth");
    assert_eq!(stored["account_id"], ACCOUNT);
    assert_eq!(stored["email"], "jo@example.com");
    assert_eq!(stored["api_key"], true);
    assert!(stored["expires_at"].as_str().is_some_and(|t| t.ends_with('Z')), "{stored}");
    let listed = env.clutch(["secret", "list", "--json"]).success().json();
    let entry = listed.as_array().and_then(|l| l.iter().find(|e| e["name"] == "codex.auth")).cloned().expect("codex.auth is listed");
    assert_eq!(entry["fingerprint"], stored["fingerprint"], "the fingerprint printed is the vault's");

    // The vault holds what codex's auth.json would.
    let auth = stored_auth(&env, &identity).expect("codex.auth is in the vault");
    assert_eq!(auth["auth_mode"], "chatgpt");
    assert!(auth["OPENAI_API_KEY"] == tokens.api_key.as_str(), "the exchanged API key is kept");
    assert!(auth["tokens"]["refresh_token"] == tokens.refresh.as_str(), "the issuer's refresh token");
    assert_eq!(auth["tokens"]["account_id"], ACCOUNT);
    assert!(auth["tokens"]["access_token"].as_str().is_some_and(|t| t.ends_with(&tokens.access)), "the issuer's access token");
    assert!(auth["tokens"]["id_token"].as_str().is_some_and(|t| t.ends_with(&tokens.id_sig)), "the issuer's id_token");
    assert_eq!(auth["clutch_issuer"], issuer.url().as_str(), "a non-default issuer is remembered for refreshes");
    assert!(auth["last_refresh"].as_str().is_some_and(|t| !t.is_empty()));

    // And nowhere else: not in CLUTCH_HOME in clear, not in the repository.
    for entry in walk(&env.root) {
        let bytes = std::fs::read(&entry).unwrap_or_default();
        assert_no_token(&format!("{}", entry.display()), &String::from_utf8_lossy(&bytes), &tokens);
    }
}

/// Every file under `dir`.
fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            match entry.file_type() {
                Ok(t) if t.is_dir() => stack.push(entry.path()),
                Ok(t) if t.is_file() => files.push(entry.path()),
                _ => {}
            }
        }
    }
    files
}

/// A sign-in the issuer or the callback spoils: exit 1 with `cause` in the error, nothing in
/// the vault, no token printed.
fn spoiled(flags: &[&str], cause: &str) -> (TestEnv, Issuer) {
    let env = TestEnv::new();
    let identity = env.unlock_vault();
    let tokens = Tokens::new();
    let issuer = Issuer::start(&env, &tokens, flags);
    let port = free_port();
    let mut signing = SignIn::start(&env, &["--issuer", &issuer.url(), "--port", &port.to_string()]);
    let url = signing.url().unwrap_or_else(|out| panic!("auth codex printed no authorize URL:\n{out}"));
    let (status, page) = sign_in(&url);
    assert_eq!(status, 302);
    let (page_status, page) = page.expect("the issuer redirected to the callback");
    assert_eq!(page_status, 400, "the browser is told it failed: {page}");
    assert!(page.contains("Sign-in failed"), "{page}");
    let out = signing.wait().code(1);
    let (error, _) = failure(&out);
    assert!(error.contains(cause), "the error says why ({cause}):\n{out}");
    assert!(error.contains("nothing was stored"), "{out}");
    assert_no_token("the output of auth codex", &format!("{}{}", out.stdout, out.stderr), &tokens);
    assert!(stored_auth(&env, &identity).is_none(), "nothing is stored");
    (env, issuer)
}

#[test]
fn auth_codex_refuses_a_callback_with_a_wrong_state_and_keeps_waiting_for_the_right_one() {
    let env = TestEnv::new();
    let identity = env.unlock_vault();
    let tokens = Tokens::new();
    let issuer = Issuer::start(&env, &tokens, &["--wrong-state"]);
    let port = free_port();
    let mut signing = SignIn::start(&env, &["--issuer", &issuer.url(), "--port", &port.to_string()]);
    let url = signing.url().unwrap_or_else(|out| panic!("auth codex printed no authorize URL:\n{out}"));
    let state = query(&url).into_iter().find(|(k, _)| k == "state").map(|(_, v)| v).expect("the URL has a state");

    // The issuer sends the browser back with a tampered state: refused, nothing exchanged, and
    // the sign-in goes on (any page could have sent that request).
    let (status, location, _) = get(&url);
    assert_eq!(status, 302);
    let callback = location.expect("redirected to the callback");
    let tampered = query(&callback).into_iter().find(|(k, _)| k == "state").map(|(_, v)| v).expect("a state");
    assert_ne!(tampered, state);
    let (page_status, _, page) = get(&callback);
    assert_eq!(page_status, 400, "the browser is told: {page}");
    assert!(page.contains("does not match"), "{page}");
    assert!(issuer.grants("authorization_code").is_empty(), "the code was not exchanged: {:?}", issuer.logged());
    assert!(stored_auth(&env, &identity).is_none(), "nothing is stored");
    std::thread::sleep(Duration::from_millis(200));
    assert!(matches!(signing.child.try_wait(), Ok(None)), "still waiting for the real callback");

    // The same callback with this sign-in's state completes it.
    let right = callback.replace(&format!("state={tampered}"), &format!("state={state}"));
    assert_ne!(right, callback, "the state was replaced in {callback}");
    let (page_status, _, page) = get(&right);
    assert_eq!(page_status, 200, "{page}");
    let out = signing.wait().success();
    assert_no_token("the output of auth codex", &format!("{}{}", out.stdout, out.stderr), &tokens);
    assert_eq!(issuer.grants("authorization_code").len(), 1, "one code exchange: {:?}", issuer.logged());
    assert!(stored_auth(&env, &identity).is_some(), "the tokens are in the vault");
}

#[test]
fn auth_codex_whose_verifier_the_issuer_rejects_stores_nothing() {
    let (_env, issuer) = spoiled(&["--break-challenge"], "refused the authorization code");
    let exchanged = issuer.grants("authorization_code");
    assert_eq!(exchanged.len(), 1, "{:?}", issuer.logged());
    assert_eq!(exchanged[0]["checks"]["verifier_matches_challenge"], false, "{}", exchanged[0]);
    assert_eq!(exchanged[0]["outcome"], 400);
}

#[test]
fn auth_codex_on_a_port_in_use_says_to_free_it_or_pick_another() {
    let env = TestEnv::new();
    env.unlock_vault();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a port");
    let port = taken.local_addr().expect("its address").port().to_string();
    let out = env.clutch(["auth", "codex", "--no-browser", "--issuer", "http://127.0.0.1:9", "--port", &port]).code(1);
    assert!(out.error().contains(&format!("port {port}")) && out.error().contains("in use"), "{out}");
    let hint = out.stderr.lines().nth(1).unwrap_or_default();
    assert!(hint.contains("--port") && hint.contains("redirect_uri") && hint.contains("free"), "the hint says what to do:\n{out}");
    assert!(!out.stderr.contains("/oauth/authorize"), "no URL to open when the callback cannot be heard:\n{out}");
}

#[test]
fn auth_codex_gives_up_after_its_timeout_and_needs_an_unlocked_vault() {
    let env = TestEnv::new();
    let port = free_port().to_string();
    let args = ["auth", "codex", "--no-browser", "--issuer", "http://127.0.0.1:9", "--port", &port, "--timeout-s", "1"];
    let locked = env.clutch(args).code(1);
    assert!(locked.error().contains("vault is locked"), "checked before anyone signs in:\n{locked}");
    assert!(!locked.stderr.contains("/oauth/authorize"), "{locked}");
    let identity = env.unlock_vault();
    let out = env.clutch(args).code(1);
    let (error, hint) = failure(&out);
    assert!(error.contains("no sign-in reached") && error.contains("within 1 s"), "{out}");
    assert!(hint.contains("--timeout-s") && hint.contains("ssh -L"), "the hint says what to do:\n{out}");
    assert!(stored_auth(&env, &identity).is_none(), "nothing is stored");
}

// ---------------------------------------------------------------------------------------------
// 2. Codex runs with the vault's tokens

/// A world with `jo` on the real codex CLI, signed in through `issuer_flags`, `auth=chatgpt`.
/// Returns it, the issuer and the identity file.
fn signed_in_world(tokens: &Tokens, issuer_flags: &[&str]) -> (World, Issuer, PathBuf) {
    signed_in_world_with(tokens, issuer_flags, "write", &[], "60")
}

/// [`signed_in_world`] with the model server in `mode` (with `server_env`) and `timeout_s`.
fn signed_in_world_with(
    tokens: &Tokens,
    issuer_flags: &[&str],
    mode: &str,
    server_env: &[(&str, &str)],
    timeout_s: &str,
) -> (World, Issuer, PathBuf) {
    let w = World::new(Cli::Codex, mode, server_env, &[]);
    let identity = w.env.unlock_vault();
    let issuer = Issuer::start(&w.env, tokens, issuer_flags);
    let port = free_port().to_string();
    let mut signing = SignIn::start(&w.env, &["--issuer", &issuer.url(), "--port", &port]);
    let url = signing.url().unwrap_or_else(|out| panic!("auth codex printed no authorize URL:\n{out}"));
    let (status, _) = sign_in(&url);
    assert_eq!(status, 302);
    signing.wait().success();
    let bin = agents::clis().codex.display().to_string();
    let base_url = format!("http://127.0.0.1:{}/v1", w.server.port);
    let mut args: Vec<String> = ["agent", "config", "jo", "--runtime", "codex"].map(String::from).to_vec();
    for opt in [
        format!("bin={bin}"),
        format!("base_url={base_url}"),
        "model=gpt-5.5".into(),
        format!("timeout_s={timeout_s}"),
        "auth=chatgpt".into(),
    ] {
        args.extend(["--runtime-opt".to_string(), opt]);
    }
    w.env.clutch(args).success();
    (w, issuer, identity)
}

/// `git clutch run TASK --agent jo --json`, watching the run's processes: (output, processes
/// seen, the CODEX_HOME directories seen in codex's environment with the modes of the
/// directory and its auth.json at that moment).
/// Processes seen during a run: (pid, command name).
type Seen = Vec<(u32, String)>;
/// CODEX_HOME directories seen: (path, the directory's mode, its auth.json's mode).
type Homes = Vec<(PathBuf, u32, u32)>;

fn run_watching_codex_home(w: &World, task: &str) -> (CommandOutput, Seen, Homes) {
    let (out, seen, homes, _) = run_watching(w, task, &[]);
    (out, seen, homes)
}

/// [`run_watching_codex_home`] with `vars` set too, and the full command line of every process
/// seen.
fn run_watching(w: &World, task: &str, vars: &[(&str, &str)]) -> (CommandOutput, Seen, Homes, Vec<String>) {
    let mut cmd = w.env.command(CLUTCH);
    cmd.env("PATH", &agents::clis().path)
        .env("CLUTCH_NOW", rfc3339(w.env.tick()))
        .env("CODEX_HOME", w.home.join(".codex"))
        .envs(vars.iter().copied())
        .args(["run", task, "--agent", "jo", "--json"]);
    let mut seen: Vec<(u32, String)> = Vec::new();
    let mut homes: Vec<(PathBuf, u32, u32)> = Vec::new();
    let mut cmdlines: Vec<String> = Vec::new();
    let root = w.env.root.clone();
    let server = w.server.pid();
    let out = agents::bounded_watching(cmd, agents::RUN_LIMIT, |clutch| {
        for (pid, cmdline) in agents::processes_under(&root) {
            if pid == clutch || pid == server {
                continue;
            }
            if !seen.iter().any(|(p, _)| *p == pid) {
                seen.push((pid, cmdline));
                let full = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
                cmdlines.push(String::from_utf8_lossy(&full).replace('\0', " "));
            }
            let environ = std::fs::read(format!("/proc/{pid}/environ")).unwrap_or_default();
            for var in environ.split(|b| *b == 0) {
                let Some(home) = var.strip_prefix(b"CODEX_HOME=") else { continue };
                let home = PathBuf::from(String::from_utf8_lossy(home).into_owned());
                let mode = |p: &Path| std::fs::metadata(p).ok().map(|m| m.permissions().mode() & 0o777);
                if let (Some(dir), Some(file)) = (mode(&home), mode(&home.join("auth.json"))) {
                    if !homes.iter().any(|(h, _, _)| *h == home) {
                        homes.push((home, dir, file));
                    }
                }
            }
        }
    })
    .unwrap_or_else(|why| panic!("git clutch run: {why}"));
    (out, seen, homes, cmdlines)
}

/// What every chatgpt run must leave: the model heard the access token `access`, and no token
/// is in anything the run printed or the repository holds; the run's CODEX_HOME was private,
/// and is gone; the user's CODEX_HOME was not touched.
#[track_caller]
fn assert_signed_run(w: &World, tokens: &Tokens, out: &CommandOutput, homes: &[(PathBuf, u32, u32)], access: &str) {
    let logged = w.server.logged();
    let model_calls: Vec<&Value> = logged.iter().filter(|r| r["path"].as_str().is_some_and(|p| p.ends_with("/responses"))).collect();
    assert!(!model_calls.is_empty(), "codex asked the model");
    let bearer = format!("{:x}", sha2::Sha256::digest(format!("Bearer {access}").as_bytes()));
    for call in &model_calls {
        assert_eq!(call["authorization_sha256"], bearer.as_str(), "codex sent the vault's access token as its bearer");
        assert_eq!(call["headers"]["chatgpt-account-id"], ACCOUNT, "and the account from the id_token: {}", call["headers"]);
    }
    let clutch_tmp = w.env.clutch_home.join("tmp");
    assert_eq!(homes.len(), 1, "one CODEX_HOME, the run's own: {homes:?}");
    let (home, dir_mode, file_mode) = &homes[0];
    assert!(home.starts_with(&clutch_tmp), "the run's CODEX_HOME is under $CLUTCH_HOME/tmp: {}", home.display());
    assert_eq!((*dir_mode, *file_mode), (0o700, 0o600), "private while codex ran");
    assert!(!home.exists(), "the run's CODEX_HOME is removed after the run");
    let left: Vec<_> = std::fs::read_dir(&clutch_tmp).map(|d| d.flatten().map(|e| e.path()).collect()).unwrap_or_default();
    assert!(left.is_empty(), "nothing is left in $CLUTCH_HOME/tmp: {left:?}");
    assert!(!w.home.join(".codex").join("auth.json").exists(), "the user's CODEX_HOME gets no auth.json");
    assert_no_token("the run's output", &format!("{}{}", out.stdout, out.stderr), tokens);
    assert_no_token("the repository's objects (events, transcripts, memory)", &all_objects(&w.env), tokens);
    let log = w.env.clutch(["log", "--json"]).success();
    assert_no_token("git clutch log", &log.stdout, tokens);
    for file in walk(&w.server.logs) {
        assert_no_token("the model server's log", &std::fs::read_to_string(&file).unwrap_or_default(), tokens);
    }
    // Signed in with ChatGPT, codex would also reach chatgpt.com for apps (connectors): off.
    let run = out.json()["run"].as_str().expect("the run's id").to_string();
    let end = crate::common::finished(&w.log(), &run).clone();
    let transcript = w.env.git_ok(["show", &format!("{}:files/transcript.txt", end.commit)]);
    assert!(!transcript.contains("chatgpt.com"), "codex tried to reach chatgpt.com:\n{transcript}");
}

#[test]
fn auth_codex_tokens_sign_in_a_real_codex_run_in_a_private_codex_home() {
    let tokens = Tokens::new();
    let (w, issuer, identity) = signed_in_world(&tokens, &[]);
    let before = stored_auth(&w.env, &identity).expect("signed in");
    let fingerprint = w.env.clutch(["secret", "list", "--json"]).success().json();
    let fingerprint =
        fingerprint.as_array().and_then(|l| l.iter().find(|e| e["name"] == "codex.auth")).expect("listed")["fingerprint"].clone();
    let task = w.task("Write hello");
    let (out, seen, homes) = run_watching_codex_home(&w, &task);
    agents::assert_task_completed(&w, &task, &out, &seen);
    let access = before["tokens"]["access_token"].as_str().expect("an access token").to_string();
    assert_signed_run(&w, &tokens, &out, &homes, &access);

    // RUN_STARTED names the vault entry (its fingerprint), and codex needed no refresh.
    let log = w.log();
    let started = agents::of_kind(&log, "RUN_STARTED", &task);
    assert_eq!(started[0].payload()["secrets"], serde_json::json!([{"name": "codex.auth", "fingerprint": fingerprint}]));
    assert!(issuer.grants("refresh_token").is_empty(), "a fresh token is not refreshed: {:?}", issuer.logged());
    assert!(stored_auth(&w.env, &identity) == Some(before), "the vault's entry is unchanged");
}

#[test]
fn auth_codex_tokens_refreshed_during_a_run_go_back_to_the_vault() {
    let tokens = Tokens::new();
    // The access token the sign-in gets has expired already: codex refreshes it at its issuer
    // (clutch points codex there) before asking the model.
    let (w, issuer, identity) = signed_in_world(&tokens, &["--access-ttl-s", "-60"]);
    let before = stored_auth(&w.env, &identity).expect("signed in");
    let task = w.task("Write hello");
    let (out, seen, homes) = run_watching_codex_home(&w, &task);
    agents::assert_task_completed(&w, &task, &out, &seen);

    let refreshed = issuer.grants("refresh_token");
    assert_eq!(refreshed.len(), 1, "codex refreshed once: {:?}", issuer.logged());
    assert_eq!(refreshed[0]["checks"]["refresh_token"], true, "with the refresh token from the vault: {}", refreshed[0]);
    assert_eq!(refreshed[0]["outcome"], 200);
    let after = stored_auth(&w.env, &identity).expect("still signed in");
    assert!(after != before, "the vault's codex.auth changed");
    assert!(after["tokens"]["refresh_token"] == tokens.refreshed_refresh.as_str(), "the new refresh token is in the vault");
    let access = after["tokens"]["access_token"].as_str().expect("an access token").to_string();
    assert!(access.ends_with(&tokens.refreshed_access), "the new access token is in the vault");
    assert_eq!(after["clutch_issuer"], issuer.url().as_str(), "the issuer is still remembered");
    assert_eq!(after["tokens"]["account_id"], ACCOUNT);
    let listed = w.env.clutch(["secret", "list", "--json"]).success().json();
    let entry = listed.as_array().and_then(|l| l.iter().find(|e| e["name"] == "codex.auth")).cloned().expect("listed");
    assert_eq!(entry["version"], 2, "the refresh is a new version of codex.auth: {entry}");
    // The model heard the refreshed token; no token, old or new, is anywhere.
    assert_signed_run(&w, &tokens, &out, &homes, &access);
}

#[test]
fn auth_codex_a_refreshed_token_written_into_the_worktree_is_never_committed() {
    // codex refreshes its tokens during the run; the model then writes the new refresh token
    // into a file. The new tokens are the run's secrets too: nothing is committed, and the log
    // holds no token.
    let tokens = Tokens::new();
    let content = [("CLUTCH_MS_CONTENT", tokens.refreshed_refresh.as_str())];
    let (w, issuer, _identity) = signed_in_world_with(&tokens, &["--access-ttl-s", "-60"], "write", &content, "60");
    let task = w.task("Leak the new token");
    let (out, seen) = w.run(&task);
    assert_eq!(issuer.grants("refresh_token").len(), 1, "codex refreshed during the run: {:?}", issuer.logged());
    assert_no_token("the output of the run", &format!("{}{}", out.stdout, out.stderr), &tokens);
    agents::assert_run_failed(&w, &task, &out, &seen, "failed", &["the agent wrote the value of secret codex.auth into hello.txt"]);
    assert_no_token("the repository", &all_objects(&w.env), &tokens);
}

#[test]
fn auth_codex_run_home_is_removed_when_the_run_fails_or_is_killed() {
    for (mode, server_env, timeout_s, status) in
        [("error", &[("CLUTCH_MS_ERROR_STATUS", "400")][..], "60", "failed"), ("slow", &[("CLUTCH_MS_SLOW_S", "30")][..], "2", "timed_out")]
    {
        let tokens = Tokens::new();
        let (w, _issuer, identity) = signed_in_world_with(&tokens, &[], mode, server_env, timeout_s);
        let before = stored_auth(&w.env, &identity).expect("signed in");
        let task = w.task(&format!("Meet a {mode} provider"));
        let (out, _, homes) = run_watching_codex_home(&w, &task);
        let out = out.code(1);
        assert_eq!(out.json()["status"], status, "{mode}: {out}");
        assert_eq!(homes.len(), 1, "{mode}: codex ran with the run's own CODEX_HOME: {homes:?}");
        let (home, dir_mode, file_mode) = &homes[0];
        assert_eq!((*dir_mode, *file_mode), (0o700, 0o600), "{mode}: private while codex ran");
        assert!(!home.exists(), "{mode}: the run's CODEX_HOME is removed after a {status} run");
        let left: Vec<_> =
            std::fs::read_dir(w.env.clutch_home.join("tmp")).map(|d| d.flatten().map(|e| e.path()).collect()).unwrap_or_default();
        assert!(left.is_empty(), "{mode}: nothing is left in $CLUTCH_HOME/tmp: {left:?}");
        assert!(stored_auth(&w.env, &identity) == Some(before), "{mode}: the vault's entry is unchanged");
        assert_no_token("the run's output", &format!("{}{}", out.stdout, out.stderr), &tokens);
        assert_no_token("the repository's objects", &all_objects(&w.env), &tokens);
    }
}

// ---------------------------------------------------------------------------------------------
// 3. The codex runtime's policy

/// `git clutch agent config jo --runtime codex` with the world's codex settings and `extra`.
fn configure_codex(w: &World, extra: &[&str]) {
    configuring_codex(w, extra).success();
}

/// What `agent config jo --runtime codex …` with the world's codex settings and `extra` said.
fn configuring_codex(w: &World, extra: &[&str]) -> CommandOutput {
    let bin = agents::clis().codex.display().to_string();
    let mut args: Vec<String> = ["agent", "config", "jo", "--runtime", "codex"].map(String::from).to_vec();
    let base = [
        format!("bin={bin}"),
        format!("base_url=http://127.0.0.1:{}/v1", w.server.port),
        "api_key_env=CLUTCH_MODEL_KEY".into(),
        "model=gpt-5.5".into(),
        "timeout_s=60".into(),
    ];
    for opt in base.iter().map(String::as_str).chain(extra.iter().copied()) {
        args.extend(["--runtime-opt".to_string(), opt.to_string()]);
    }
    w.env.clutch(args)
}

#[test]
fn codex_policy_compiles_into_its_sandbox_flags_and_what_it_cannot_enforce_is_refused() {
    let w = World::new(Cli::Codex, "write", &[], &[]);
    // network none: workspace-write with the network off, passed to the real CLI.
    configure_codex(&w, &["sandbox=workspace-write", "network=none"]);
    let task = w.task("Write hello offline");
    // The provider's key is named by api_key_env: the run gets it from the environment.
    let (out, seen, _, cmdlines) = run_watching(&w, &task, &[("CLUTCH_MODEL_KEY", "sk-test-dummy")]);
    agents::assert_task_completed(&w, &task, &out, &seen);
    let codex = cmdlines.iter().find(|c| c.contains(" exec --json")).unwrap_or_else(|| panic!("codex ran: {cmdlines:?}"));
    assert!(codex.contains(" -s workspace-write "), "{codex}");
    assert!(codex.contains(" sandbox_workspace_write.network_access=false "), "network none is compiled: {codex}");
    for confined in ["exclude_slash_tmp=true", "exclude_tmpdir_env_var=true", "writable_roots=[]"] {
        assert!(codex.contains(&format!(" sandbox_workspace_write.{confined} ")), "workspace-write is the checkout only: {codex}");
    }
    assert!(codex.contains(" --disable apps "), "no ChatGPT apps: {codex}");
    let started = agents::of_kind(&w.log(), "RUN_STARTED", &task)[0].payload().clone();
    assert!(started["policy"].as_str().is_some_and(|p| p.starts_with("sha256:")), "the policy is recorded: {started}");

    // What codex cannot enforce is refused when the definition is written: nothing recorded,
    // the agent keeps the definition it had, and the model hears nothing.
    let before = w.server.logged().len();
    for (settings, why) in [
        (&["network=api.example.com"][..], "host allowlist"),
        (&["tool_allowlist=shell"][..], "tool allowlist"),
        (&["sandbox=read-only", "network=any"][..], "read-only"),
        (&["sandbox=full-access", "network=none"][..], "full access"),
    ] {
        let head = w.env.log_head();
        let out = configuring_codex(&w, settings).code(1);
        assert!(out.error().contains("would refuse every run") && out.error().contains(why), "{settings:?}: {out}");
        assert_eq!(w.env.log_head(), head, "{settings:?}: nothing was recorded");
        let kept = &w.env.state()["agents"]["jo"]["runtime"]["settings"];
        assert_eq!((&kept["sandbox"], &kept["network"]), (&json!("workspace-write"), &json!("none")), "{settings:?}: {kept}");
    }
    assert_eq!(w.server.logged().len(), before, "the model heard nothing more");
    // The CEO only ever reviews here, and a review runs read-only whatever the policy says:
    // what no work run could go under is still a definition for the CEO.
    let bin = format!("bin={}", agents::clis().codex.display());
    let ceo = [
        "agent",
        "config",
        "alice",
        "--runtime",
        "codex",
        "--runtime-opt",
        &bin,
        "--runtime-opt",
        "sandbox=read-only",
        "--runtime-opt",
        "network=any",
    ];
    w.env.clutch(ceo).success();
}

#[test]
fn auth_codex_timeout_out_of_range_is_a_usage_error() {
    let env = TestEnv::new();
    for (value, why) in [("0", "1..=86400"), ("86401", "1..=86400"), ("99999999999999999999", "too large")] {
        let out = env.clutch(["auth", "codex", "--no-browser", "--timeout-s", value]).code(2);
        assert!(out.stderr.contains("--timeout-s") && out.stderr.contains(why), "{out}");
    }
}
