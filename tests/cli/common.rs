//! The harness: a temporary git repository with its own `CLUTCH_HOME`, and the real binary run
//! in it with a cleared environment, in the manner of jj's `cli/tests/common/test_environment.rs`.
//!
//! Nothing from the developer's machine leaks in: no global or system git config, no
//! `CLUTCH_*` variables, a `HOME` inside the temporary directory. The clock is pinned through
//! `CLUTCH_NOW` and advances one minute per clutch command, so event times are known and ordered.

use std::ffi::OsStr;
use std::fmt;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicI64, Ordering};

use serde_json::Value;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// The binary under test.
pub const CLUTCH: &str = env!("CARGO_BIN_EXE_git-clutch");

/// The head of the org log.
pub const LOG_REF: &str = "refs/clutch/log";

/// 2026-11-24T08:00:00Z: the time of the first command of every test.
const START: i64 = 1_795_507_200;

/// What a finished command said: stdout, stderr and exit code, kept together so a failing
/// assertion shows all three.
#[derive(Debug, Clone)]
pub struct CommandOutput {
    pub stdout: String,
    pub stderr: String,
    pub status: i32,
}

impl fmt::Display for CommandOutput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "[exit {}]", self.status)?;
        writeln!(f, "--- stdout ---\n{}", self.stdout)?;
        write!(f, "--- stderr ---\n{}", self.stderr)
    }
}

impl CommandOutput {
    fn from_output(output: std::process::Output) -> Self {
        CommandOutput {
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
            // A signal (no code) is never a valid outcome; -1 makes every assertion fail.
            status: output.status.code().unwrap_or(-1),
        }
    }

    /// Assert exit code 0.
    #[track_caller]
    pub fn success(self) -> Self {
        assert_eq!(self.status, 0, "expected success, got:\n{self}");
        self
    }

    /// Assert the given exit code.
    #[track_caller]
    pub fn code(self, code: i32) -> Self {
        assert_eq!(self.status, code, "expected exit {code}, got:\n{self}");
        self
    }

    /// Stdout without surrounding whitespace: the printed id of a command that created something.
    pub fn out(&self) -> &str {
        self.stdout.trim()
    }

    /// Stdout parsed as JSON.
    #[track_caller]
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|err| panic!("stdout is not JSON ({err}):\n{self}"))
    }

    /// A clutch error: stderr is exactly `error: <one line>`, optionally followed by one
    /// `hint: <line>`. Returns the error line without its prefix.
    #[track_caller]
    pub fn error(&self) -> &str {
        let mut lines = self.stderr.lines();
        let first = lines.next().unwrap_or_else(|| panic!("no error on stderr:\n{self}"));
        let message = first.strip_prefix("error: ").unwrap_or_else(|| panic!("stderr does not start with 'error: ':\n{self}"));
        assert!(!message.trim().is_empty(), "empty error message:\n{self}");
        let rest: Vec<&str> = lines.collect();
        match rest.as_slice() {
            [] => {}
            [hint] => assert!(hint.starts_with("hint: ") && hint.len() > "hint: ".len(), "second stderr line is not a hint:\n{self}"),
            _ => panic!("an error is one line (plus an optional hint), got:\n{self}"),
        }
        message
    }
}

/// One test's world: a temporary directory holding a git repository (`repo/`), clutch's home
/// (`clutch-home/`), a `HOME` (`home/`), and room for anything else a test makes.
pub struct TestEnv {
    _temp: tempfile::TempDir,
    pub root: PathBuf,
    pub repo: PathBuf,
    pub clutch_home: PathBuf,
    home: PathBuf,
    path: std::ffi::OsString,
    minutes: AtomicI64,
    /// The age identity file that unlocks this test's vault, once [`TestEnv::unlock_vault`] ran.
    vault_key: std::sync::Mutex<Option<PathBuf>>,
}

/// A secret value for a test: random, and starting with the prefix `tests/scan_secrets.py`
/// looks for in the suite's output, so a leak anywhere is caught.
pub fn test_secret(name: &str) -> String {
    let mut bytes = [0u8; 12];
    getrandom::getrandom(&mut bytes).expect("randomness");
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("{}{name}-{hex}", SECRET_PREFIX)
}

/// What every test secret begins with (see `tests/scan_secrets.py`).
pub const SECRET_PREFIX: &str = "clutch-test-secret-";

impl TestEnv {
    /// A fresh `git init -b main` repository; no org yet.
    pub fn new() -> Self {
        let temp = tempfile::Builder::new().prefix("clutch-cli-").tempdir().expect("create a temporary directory");
        let root = temp.path().canonicalize().expect("canonical temporary directory");
        let repo = root.join("repo");
        let home = root.join("home");
        let clutch_home = root.join("clutch-home");
        for dir in [&repo, &home] {
            std::fs::create_dir_all(dir).expect("create test directory");
        }
        let env = TestEnv {
            _temp: temp,
            root,
            repo,
            clutch_home,
            home,
            path: inherited_path(),
            minutes: AtomicI64::new(0),
            vault_key: std::sync::Mutex::new(None),
        };
        env.git(["init", "--quiet", "-b", "main"]).success();
        env
    }

    /// A repository with the org every test starts from: `acme`, founded by alice (CEO), with
    /// bob (senior), jill and kim (juniors), hank (HR), and the project `core`.
    pub fn with_org() -> Self {
        let env = TestEnv::new();
        env.clutch(["init", "--name", "acme", "--founder", "alice"]).success();
        for (id, role) in [("bob", "senior"), ("jill", "junior"), ("kim", "junior"), ("hank", "hr")] {
            env.clutch(["agent", "add", id, "--role", role]).success();
        }
        env.clutch(["project", "new", "core"]).success();
        env
    }

    /// Where the suite-wide leak scan (see `impl Drop for TestEnv`) would find a test secret
    /// in this world now.
    pub fn leaks(&self) -> Vec<String> {
        leaks_under(&self.root, &self.path)
    }

    /// The pinned time, in seconds since the epoch.
    pub fn now(&self) -> i64 {
        START + 60 * self.minutes.load(Ordering::SeqCst)
    }

    /// The time for the next event, in seconds since the epoch; advances the clock a minute.
    pub fn tick(&self) -> i64 {
        START + 60 * self.minutes.fetch_add(1, Ordering::SeqCst)
    }

    /// A command with the cleared, pinned environment, running in the repository.
    pub fn command(&self, program: impl AsRef<OsStr>) -> Command {
        let mut cmd = Command::new(program);
        cmd.current_dir(&self.repo)
            .env_clear()
            .env("PATH", &self.path)
            .env("HOME", &self.home)
            .env("CLUTCH_HOME", &self.clutch_home)
            .env("CLUTCH_NOW", rfc3339(self.now()))
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_AUTHOR_NAME", "Test User")
            .env("GIT_AUTHOR_EMAIL", "test.user@example.com")
            .env("GIT_COMMITTER_NAME", "Test User")
            .env("GIT_COMMITTER_EMAIL", "test.user@example.com")
            .env("LANG", "C")
            .stdin(Stdio::null());
        if let Some(key) = self.vault_key.lock().expect("vault key").as_ref() {
            cmd.env("CLUTCH_SECRET_KEY_FILE", key);
        }
        cmd
    }

    /// Make an age identity for this test (`vault-key.txt`, as `age-keygen` writes it) and
    /// unlock the vault with it in every later command. Returns the identity file.
    pub fn unlock_vault(&self) -> PathBuf {
        let identity = age::x25519::Identity::generate();
        let path = self.root.join("vault-key.txt");
        let text =
            format!("# public key: {}\n{}\n", identity.to_public(), age::secrecy::ExposeSecret::expose_secret(&identity.to_string()));
        std::fs::write(&path, text).expect("write the vault key");
        *self.vault_key.lock().expect("vault key") = Some(path.clone());
        path
    }

    /// `git clutch secret set NAME` with `value` on stdin; panics when it fails.
    pub fn set_secret(&self, name: &str, value: &str) {
        let mut cmd = self.command(CLUTCH);
        cmd.env("CLUTCH_NOW", rfc3339(self.tick())).args(["secret", "set", name]);
        let out = run_with_stdin(cmd, value.as_bytes());
        assert_eq!(out.status, 0, "secret set {name} failed: {}", out.stderr);
    }

    /// `git clutch ARGS…` in the repository with `input` on stdin.
    pub fn clutch_stdin<I, S>(&self, args: I, input: &[u8]) -> CommandOutput
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut cmd = self.command(CLUTCH);
        cmd.env("CLUTCH_NOW", rfc3339(self.tick())).args(args);
        run_with_stdin(cmd, input)
    }

    /// `git clutch ARGS…` in the repository.
    pub fn clutch<I, S>(&self, args: I) -> CommandOutput
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.clutch_in(&self.repo, args)
    }

    /// `git clutch --as AGENT ARGS…` in the repository.
    pub fn clutch_as<I, S>(&self, agent: &str, args: I) -> CommandOutput
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut all: Vec<std::ffi::OsString> = vec!["--as".into(), agent.into()];
        all.extend(args.into_iter().map(|a| a.as_ref().to_os_string()));
        self.clutch(all)
    }

    /// `git clutch ARGS…` in another directory.
    pub fn clutch_in<I, S>(&self, dir: &Path, args: I) -> CommandOutput
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut cmd = self.command(CLUTCH);
        cmd.current_dir(dir).env("CLUTCH_NOW", rfc3339(self.tick())).args(args);
        run(cmd)
    }

    /// Plain `git ARGS…` in the repository.
    pub fn git<I, S>(&self, args: I) -> CommandOutput
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut cmd = self.command("git");
        cmd.args(args);
        run(cmd)
    }

    /// Plain git that must succeed; its stdout, trimmed.
    #[track_caller]
    pub fn git_ok<I, S>(&self, args: I) -> String
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.git(args).success().out().to_string()
    }

    /// Plain git with bytes on stdin; must succeed; its stdout, trimmed.
    #[track_caller]
    pub fn git_stdin<I, S>(&self, args: I, stdin: &[u8]) -> String
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut cmd = self.command("git");
        cmd.args(args).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("git must be installed");
        child.stdin.take().expect("piped stdin").write_all(stdin).expect("write to git");
        CommandOutput::from_output(child.wait_with_output().expect("wait for git")).success().out().to_string()
    }

    /// Where `refs/clutch/log` points, if anywhere.
    pub fn log_head(&self) -> Option<String> {
        let out = self.git(["rev-parse", "--verify", "--quiet", LOG_REF]);
        (out.status == 0).then(|| out.out().to_string())
    }

    /// Every commit of the log, oldest first (plain `git rev-list`).
    pub fn log_commits(&self) -> Vec<String> {
        if self.log_head().is_none() {
            return Vec::new();
        }
        self.git_ok(["rev-list", "--reverse", LOG_REF]).lines().map(str::to_string).collect()
    }

    /// `git clutch state --json`.
    #[track_caller]
    pub fn state(&self) -> Value {
        self.clutch(["state", "--json"]).success().json()
    }

    /// `git clutch task list --json`.
    #[track_caller]
    pub fn tasks(&self, filters: &[&str]) -> Vec<Value> {
        let mut args = vec!["task", "list", "--json"];
        args.extend_from_slice(filters);
        match self.clutch(args).success().json() {
            Value::Array(tasks) => tasks,
            other => panic!("task list --json is not an array: {other}"),
        }
    }

    /// Ids of `task list --json FILTERS…`, in listed order.
    #[track_caller]
    pub fn task_ids(&self, filters: &[&str]) -> Vec<String> {
        self.tasks(filters).iter().map(|t| t["id"].as_str().expect("task id").to_string()).collect()
    }

    /// `task new` as `agent` with `--json`: checks `{id, event}` and returns the id.
    #[track_caller]
    pub fn new_task(&self, agent: &str, title: &str, extra: &[&str]) -> String {
        let mut args = vec!["task", "new", title, "--json"];
        args.extend_from_slice(extra);
        let json = self.clutch_as(agent, args).success().json();
        let id = json["id"].as_str().unwrap_or_else(|| panic!("no id in {json}")).to_string();
        let event = json["event"].as_str().unwrap_or_else(|| panic!("no event in {json}"));
        assert_eq!(Some(event.to_string()), self.log_head(), "the event of task new is the new head of {LOG_REF}");
        assert_eq!(id, format!("t-{}", &event[..7]), "a task id is t- and the first 7 hex digits of its commit");
        id
    }

    /// The private key file clutch keeps for `agent`: `$CLUTCH_HOME/keys/<agent>-<16 hex>`.
    #[track_caller]
    pub fn key_file(&self, agent: &str) -> PathBuf {
        let dir = self.clutch_home.join("keys");
        let mut found: Vec<PathBuf> = std::fs::read_dir(&dir)
            .unwrap_or_else(|err| panic!("cannot list {}: {err}", dir.display()))
            .map(|entry| entry.expect("directory entry").path())
            .filter(|path| {
                let name = path.file_name().and_then(OsStr::to_str).unwrap_or("");
                name.strip_prefix(agent)
                    .and_then(|rest| rest.strip_prefix('-'))
                    .is_some_and(|id| id.len() == 16 && id.bytes().all(|b| b.is_ascii_hexdigit()))
            })
            .collect();
        assert_eq!(found.len(), 1, "exactly one private key for {agent} in {}: {found:?}", dir.display());
        found.remove(0)
    }

    /// Make an Ed25519 key pair with `ssh-keygen` at `root/<name>`; returns the private key's path.
    #[track_caller]
    pub fn ssh_keygen(&self, name: &str, passphrase: &str) -> PathBuf {
        let path = self.root.join(name);
        let mut cmd = self.command("ssh-keygen");
        cmd.args(["-q", "-t", "ed25519", "-N", passphrase, "-C", &format!("{name}@example.com"), "-f"]).arg(&path);
        let out = cmd.output().expect("ssh-keygen must be installed (package openssh-client)");
        assert!(out.status.success(), "ssh-keygen failed: {}", String::from_utf8_lossy(&out.stderr));
        path
    }
}

/// Run `cmd` with `input` written to its stdin.
pub fn run_with_stdin(mut cmd: Command, input: &[u8]) -> CommandOutput {
    use std::io::Write as _;
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|err| panic!("cannot run {cmd:?}: {err}"));
    let mut stdin = child.stdin.take().expect("piped stdin");
    let input = input.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let output = child.wait_with_output().expect("wait for the command");
    let _ = writer.join();
    CommandOutput::from_output(output)
}

impl Drop for TestEnv {
    /// The suite-wide leak scan: when `tests/run.sh` names a report file
    /// (`CLUTCH_TEST_SCAN_REPORT`), every test's world is searched for [`SECRET_PREFIX`] before
    /// it is deleted — every object of every repository in it (the log, its transcripts and
    /// artifacts, task branches, dangling objects) and every file clutch keeps outside the work
    /// tree (`CLUTCH_HOME`, `.git/`, the runs' `.clutch/`, and `HOME` with the agent CLIs'
    /// own files) — and one line is appended to the
    /// report, which `tests/scan_secrets.py` then checks. A worktree file an agent wrote is not
    /// scanned: tests put secrets there on purpose to see that they are never committed.
    fn drop(&mut self) {
        let Some(report) = scan_report() else { return };
        let leaks = leaks_under(&self.root, &self.path);
        let line = if leaks.is_empty() {
            format!("clean {}\n", self.root.display())
        } else {
            format!("leak {}: {}\n", self.root.display(), leaks.join("; "))
        };
        if let Ok(mut file) = std::fs::OpenOptions::new().create(true).append(true).open(report) {
            let _ = file.write_all(line.as_bytes());
        }
    }
}

#[allow(clippy::disallowed_methods, reason = "tests/run.sh names the leak report through the environment")]
fn scan_report() -> Option<PathBuf> {
    std::env::var_os("CLUTCH_TEST_SCAN_REPORT").filter(|v| !v.is_empty()).map(PathBuf::from)
}

/// Where under `root` a test secret can be seen: git directories whose objects hold one, and
/// files outside work trees that contain one. Never panics (it runs in `drop`).
fn leaks_under(root: &Path, path: &OsStr) -> Vec<String> {
    let prefix = SECRET_PREFIX.as_bytes();
    let contains = |bytes: &[u8]| bytes.windows(prefix.len()).any(|w| w == prefix);
    let mut leaks = Vec::new();
    let mut stack = vec![(root.to_path_buf(), false)];
    while let Some((dir, kept_by_clutch)) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        let is_git_dir = dir.join("objects").is_dir() && dir.join("HEAD").is_file();
        if is_git_dir {
            let objects = Command::new("git")
                .env_clear()
                .env("PATH", path)
                .env("GIT_CONFIG_NOSYSTEM", "1")
                .arg("--git-dir")
                .arg(&dir)
                .args(["cat-file", "--batch-all-objects", "--batch"])
                .stdin(Stdio::null())
                .stderr(Stdio::null())
                .output();
            match objects {
                Ok(out) if contains(&out.stdout) => leaks.push(format!("an object of {}", dir.display())),
                Ok(_) => {}
                Err(err) => leaks.push(format!("cannot read the objects of {}: {err}", dir.display())),
            }
        }
        for entry in entries.flatten() {
            let (path, name) = (entry.path(), entry.file_name());
            let Ok(kind) = entry.file_type() else { continue };
            if kind.is_dir() {
                // A work tree's own files are the agents' (and the tests'); what clutch and the
                // agent CLIs keep is under a git directory, a run's `.clutch/`, or one of the
                // homes at the top (`home`, `clutch-home`, and other `*-home`s tests make).
                let kept = kept_by_clutch
                    || is_git_dir
                    || name == ".git"
                    || name == ".clutch"
                    || (dir == root && name.to_string_lossy().ends_with("home"));
                if !(is_git_dir && name == "objects") {
                    stack.push((path, kept));
                }
            } else if kind.is_file()
                && (kept_by_clutch || is_git_dir)
                && std::fs::read(&path).map(|bytes| contains(&bytes)).unwrap_or(false)
            {
                leaks.push(path.display().to_string());
            }
        }
    }
    leaks
}

/// Poll `done` every 50 ms for at most `limit`; whether it came true. For waiting on another
/// process: the caller asserts on the outcome, never on the time it took.
pub fn poll_until(limit: std::time::Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = std::time::Instant::now() + limit;
    loop {
        if done() {
            return true;
        }
        if std::time::Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

pub fn run(mut cmd: Command) -> CommandOutput {
    let output = cmd.output().unwrap_or_else(|err| panic!("cannot run {cmd:?}: {err}"));
    CommandOutput::from_output(output)
}

#[allow(clippy::disallowed_methods, reason = "the test harness passes PATH through so git and ssh-keygen are found")]
fn inherited_path() -> std::ffi::OsString {
    std::env::var_os("PATH").unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin".into())
}

/// `2026-11-24T08:00:00Z` from seconds since the epoch.
pub fn rfc3339(seconds: i64) -> String {
    OffsetDateTime::from_unix_timestamp(seconds).expect("a time in range").format(&Rfc3339).expect("formats as RFC 3339")
}

/// A JSON string field, or a panic naming the field.
#[track_caller]
pub fn str_field<'a>(value: &'a Value, field: &str) -> &'a str {
    value[field].as_str().unwrap_or_else(|| panic!("field {field} is not a string in {value}"))
}

/// Owned ids, for comparing with `task_ids`.
pub fn ids<const N: usize>(ids: [&String; N]) -> Vec<String> {
    ids.iter().map(|id| id.to_string()).collect()
}

/// Who made a commit, and when: an author or committer line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ident {
    pub name: String,
    pub email: String,
    pub time: i64,
}

impl Ident {
    /// How clutch writes an agent: `<agent> <agent@clutch.invalid>`.
    pub fn agent(agent: &str, time: i64) -> Self {
        Ident { name: agent.to_string(), email: format!("{agent}@clutch.invalid"), time }
    }

    /// Parse the value of an `author`/`committer` header: `name <email> 1795507200 +0000`.
    #[track_caller]
    pub fn parse(line: &str) -> Self {
        let open = line.find('<').unwrap_or_else(|| panic!("no email in {line:?}"));
        let close = line.rfind('>').unwrap_or_else(|| panic!("no email in {line:?}"));
        let time = line[close + 1..].split_whitespace().next().and_then(|t| t.parse().ok());
        Ident {
            name: line[..open].trim().to_string(),
            email: line[open + 1..close].to_string(),
            time: time.unwrap_or_else(|| panic!("no time in {line:?}")),
        }
    }
}

/// The raw bytes of a commit as `git cat-file commit` prints them, split where git splits them.
#[derive(Debug, Clone)]
pub struct RawCommit {
    pub text: String,
}

impl RawCommit {
    pub fn header(&self, key: &str) -> Vec<&str> {
        let end = self.text.find("\n\n").unwrap_or(self.text.len());
        self.text[..end].lines().filter_map(|line| line.strip_prefix(key).and_then(|rest| rest.strip_prefix(' '))).collect()
    }

    /// The message: every byte after the first blank line.
    pub fn message(&self) -> &str {
        let start = self.text.find("\n\n").expect("a commit has a blank line before its message");
        &self.text[start + 2..]
    }
}

static MESSAGE_FILES: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

impl TestEnv {
    /// `git cat-file commit C`.
    #[track_caller]
    pub fn raw_commit(&self, commit: &str) -> RawCommit {
        RawCommit { text: self.git(["cat-file", "commit", commit]).success().stdout }
    }

    /// Plain `git commit-tree`: a commit of `tree` on `parents` with exactly `message`, made by
    /// the given identities, signed with `git -c gpg.format=ssh -S` when a key file is given.
    #[track_caller]
    pub fn commit_tree(
        &self,
        tree: &str,
        parents: &[&str],
        author: &Ident,
        committer: &Ident,
        message: &str,
        key: Option<&Path>,
    ) -> String {
        let file = self.root.join(format!("message-{}", MESSAGE_FILES.fetch_add(1, Ordering::SeqCst)));
        std::fs::write(&file, message).expect("write the commit message");
        let mut cmd = self.command("git");
        if let Some(key) = key {
            cmd.args(["-c", "gpg.format=ssh", "-c"]).arg(format!("user.signingkey={}", key.display()));
        }
        cmd.arg("commit-tree");
        if key.is_some() {
            cmd.arg("-S");
        }
        cmd.arg(tree);
        for parent in parents {
            cmd.args(["-p", parent]);
        }
        cmd.arg("-F").arg(&file);
        cmd.env("GIT_AUTHOR_NAME", &author.name)
            .env("GIT_AUTHOR_EMAIL", &author.email)
            .env("GIT_AUTHOR_DATE", format!("{} +0000", author.time))
            .env("GIT_COMMITTER_NAME", &committer.name)
            .env("GIT_COMMITTER_EMAIL", &committer.email)
            .env("GIT_COMMITTER_DATE", format!("{} +0000", committer.time));
        run(cmd).success().out().to_string()
    }

    /// `git clutch signers` written to a file, for `gpg.ssh.allowedSignersFile`.
    #[track_caller]
    pub fn signers_file(&self) -> PathBuf {
        let path = self.root.join("allowed_signers");
        std::fs::write(&path, self.clutch(["signers"]).success().stdout).expect("write allowed signers");
        path
    }

    /// Plain `git verify-commit` against the roster's allowed-signers file.
    pub fn git_verify_commit(&self, signers: &Path, commit: &str) -> CommandOutput {
        let mut cmd = self.command("git");
        cmd.arg("-c").arg(format!("gpg.ssh.allowedSignersFile={}", signers.display())).args(["verify-commit", commit]);
        run(cmd)
    }
}

/// The commit message clutch writes for `event` (`TYPE [task]: summary`, then the `Clutch-*`
/// trailers in clutch's order): what a forgery made with plain git must carry to look right.
pub fn commit_message(event: &Value, summary: &str) -> String {
    let kind = str_field(event, "type");
    let mut message = kind.to_string();
    if let Some(task) = event["task"].as_str() {
        message.push_str(&format!(" {task}"));
    }
    message.push_str(&format!(": {summary}\n\nClutch-Event: {kind}\nClutch-Actor: {}\n", str_field(event, "actor_agent_id")));
    if let Some(project) = event["project"].as_str() {
        message.push_str(&format!("Clutch-Project: {project}\n"));
    }
    if let Some(task) = event["task"].as_str() {
        message.push_str(&format!("Clutch-Task: {task}\n"));
    }
    message.push_str(&format!("Clutch-Clock: {}\n", event["clock"]));
    message
}

/// One event of `log --json`: its commit and its envelope.
#[derive(Debug, Clone)]
pub struct Entry {
    pub commit: String,
    pub event: Value,
}

impl Entry {
    pub fn kind(&self) -> &str {
        str_field(&self.event, "type")
    }
    pub fn actor(&self) -> &str {
        str_field(&self.event, "actor_agent_id")
    }
    pub fn task(&self) -> Option<&str> {
        self.event["task"].as_str()
    }
    pub fn payload(&self) -> &Value {
        &self.event["payload"]
    }
    #[track_caller]
    pub fn cost(&self, field: &str) -> u64 {
        self.event["cost"][field].as_u64().unwrap_or_else(|| panic!("cost.{field} of {}", self.event))
    }
}

/// The entries of a `log --json` output, oldest first; every one must be valid.
#[track_caller]
pub fn parse_log(out: &CommandOutput) -> Vec<Entry> {
    let Value::Array(entries) = out.json() else { panic!("log --json is not an array:\n{out}") };
    entries
        .into_iter()
        .map(|e| {
            assert_eq!(e["valid"], true, "every event of the log is valid: {e}");
            Entry { commit: str_field(&e, "commit").to_string(), event: e["event"].clone() }
        })
        .collect()
}

/// The one RUN_FINISHED of `run`.
#[track_caller]
pub fn finished<'a>(log: &'a [Entry], run: &str) -> &'a Entry {
    let found: Vec<_> = log.iter().filter(|e| e.kind() == "RUN_FINISHED" && e.payload()["run"] == run).collect();
    assert_eq!(found.len(), 1, "exactly one RUN_FINISHED for {run}: {found:?}");
    found[0]
}
