//! Sharing the org log through real git remotes: a `git daemon` on 127.0.0.1 and `file://`
//! bare repositories, with clutch's `pre-receive` hook installed. Clones append concurrently
//! and sync in several orders until nothing moves; they must then hold the same log and the
//! same state, with no event lost or duplicated and a conflicting claim decided the same way
//! everywhere. The server's hook refuses rewrites, deletions, forged and gate-breaking events
//! and unapproved moves of `main`, and the client's `pre-push` hook catches a forgery before
//! it leaves. A log of another org is refused by `sync` without a trace; `clone` and plain
//! `git clone` + `sync` give the whole org; `remote setup` makes plain `git push`/`git fetch`
//! carry the log without ever forcing.
//!
//! Every command runs with the directory of the binary first in `PATH`, as does the daemon:
//! the hooks run `git-clutch hook …`, in the process of whichever git receives the push.

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Barrier;
use std::thread;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::common::{commit_message, rfc3339, str_field, CommandOutput, Ident, TestEnv, CLUTCH, LOG_REF};

// ---------------------------------------------------------------------------------------------
// Running things with git-clutch on the PATH

/// `PATH` with the directory of the binary under test first, so git finds `git-clutch` when a
/// hook runs it.
fn path_with_clutch(env: &TestEnv) -> OsString {
    let probe = env.command("true");
    let inherited = probe.get_envs().find(|(k, _)| *k == "PATH").and_then(|(_, v)| v).map(|v| v.to_os_string()).unwrap_or_default();
    let bin = Path::new(CLUTCH).parent().expect("the binary lives in a directory").to_path_buf();
    let mut dirs = vec![bin];
    dirs.extend(std::env::split_paths(&inherited));
    std::env::join_paths(dirs).expect("PATH entries without separators")
}

fn output(mut cmd: Command) -> CommandOutput {
    let out = cmd.output().unwrap_or_else(|err| panic!("cannot run {cmd:?}: {err}"));
    CommandOutput {
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        status: out.status.code().unwrap_or(-1),
    }
}

/// `git clutch ARGS…` in `dir`, with the harness's environment and clock.
fn clutch_at(env: &TestEnv, dir: &Path, args: &[&str]) -> CommandOutput {
    let mut cmd = env.command(CLUTCH);
    cmd.current_dir(dir).env("PATH", path_with_clutch(env)).env("CLUTCH_NOW", rfc3339(env.tick())).args(args);
    output(cmd)
}

/// `git clutch --as AGENT ARGS…` in `dir`.
fn clutch_as_at(env: &TestEnv, dir: &Path, agent: &str, args: &[&str]) -> CommandOutput {
    let mut all = vec!["--as", agent];
    all.extend_from_slice(args);
    clutch_at(env, dir, &all)
}

/// Plain `git ARGS…` in `dir`.
fn git_at(env: &TestEnv, dir: &Path, args: &[&str]) -> CommandOutput {
    let mut cmd = env.command("git");
    cmd.current_dir(dir).env("PATH", path_with_clutch(env)).args(args);
    output(cmd)
}

/// Plain git in `dir` that must succeed; its stdout, trimmed.
#[track_caller]
fn git_ok_at(env: &TestEnv, dir: &Path, args: &[&str]) -> String {
    git_at(env, dir, args).success().out().to_string()
}

/// Where a ref points in the repository at `dir` (a work tree or a bare repository).
fn rev(env: &TestEnv, dir: &Path, name: &str) -> Option<String> {
    let out = git_at(env, dir, &["rev-parse", "--verify", "--quiet", name]);
    (out.status == 0).then(|| out.out().to_string())
}

/// Every ref of the repository at `dir`, as `git for-each-ref` prints them.
fn all_refs(env: &TestEnv, dir: &Path) -> String {
    git_ok_at(env, dir, &["for-each-ref", "--format=%(objectname) %(refname)"])
}

/// `git clutch state --json` in `dir`, exactly as printed.
#[track_caller]
fn state_text(env: &TestEnv, dir: &Path) -> String {
    clutch_at(env, dir, &["state", "--json"]).success().stdout
}

#[track_caller]
fn state_at(env: &TestEnv, dir: &Path) -> Value {
    clutch_at(env, dir, &["state", "--json"]).success().json()
}

/// `git config KEY` in `dir`, if set.
fn config(env: &TestEnv, dir: &Path, key: &str) -> Option<String> {
    let out = git_at(env, dir, &["config", "--get", key]);
    (out.status == 0).then(|| out.out().to_string())
}

fn config_all(env: &TestEnv, dir: &Path, key: &str) -> Vec<String> {
    git_at(env, dir, &["config", "--get-all", key]).stdout.lines().map(str::to_string).collect()
}

// ---------------------------------------------------------------------------------------------
// Servers: a bare repository with the pre-receive hook, reached by git:// or file://

/// A `git daemon` serving every repository under one directory on 127.0.0.1, receive-pack
/// enabled. Killed when dropped.
struct Daemon {
    child: Child,
    port: u16,
}

impl Daemon {
    /// Start on a free port and wait (at most 10 s) until it accepts connections.
    fn start(env: &TestEnv, base: &Path) -> Daemon {
        // The program itself, not `git daemon`: killing the `git` wrapper would leave its
        // `git-daemon` child running.
        let program = Path::new(&env.git_ok(["--exec-path"])).join("git-daemon");
        for _ in 0..5 {
            let port = {
                let listener = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
                listener.local_addr().expect("bound address").port()
            };
            let log = std::fs::File::create(env.root.join(format!("daemon-{port}.log"))).expect("create the daemon's log");
            let mut cmd = env.command(&program);
            cmd.env("PATH", path_with_clutch(env))
                .args(["--export-all", "--enable=receive-pack", "--reuseaddr", "--informative-errors", "--listen=127.0.0.1"])
                .arg(format!("--port={port}"))
                .arg(format!("--base-path={}", base.display()))
                .stdout(Stdio::null())
                .stderr(log);
            let child = cmd.spawn().expect("git daemon must be installed");
            let mut daemon = Daemon { child, port };
            let addr = SocketAddr::from(([127, 0, 0, 1], port));
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                    return daemon;
                }
                if daemon.child.try_wait().expect("poll git daemon").is_some() {
                    break; // the port was taken meanwhile: try another
                }
                assert!(Instant::now() < deadline, "git daemon did not listen on {addr} within 10 s");
                thread::sleep(Duration::from_millis(20));
            }
        }
        panic!("git daemon did not start on any of 5 free ports");
    }

    fn url(&self, name: &str) -> String {
        format!("git://127.0.0.1:{}/{name}", self.port)
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Transport {
    Daemon,
    File,
}

/// A bare repository `root/srv/<name>`, with clutch's `pre-receive` hook when `hook`, and
/// the URL clones reach it by. Holds the daemon alive when it serves by git://.
struct Server {
    bare: PathBuf,
    url: String,
    _daemon: Option<Daemon>,
}

impl Server {
    fn new(env: &TestEnv, transport: Transport, name: &str, hook: bool) -> Server {
        let base = env.root.join("srv");
        std::fs::create_dir_all(&base).expect("create the server directory");
        let bare = base.join(name);
        git_ok_at(env, &base, &["init", "--quiet", "--bare", "-b", "main", name]);
        if hook {
            let installed = clutch_at(env, &env.root, &["hooks", "install", "--server", &bare.display().to_string()]).success();
            let hook = bare.join("hooks").join("pre-receive");
            assert_eq!(installed.out(), hook.display().to_string(), "hooks install prints the hook's path");
            let text = std::fs::read_to_string(&hook).expect("read the installed hook");
            assert!(text.contains("git-clutch hook pre-receive"), "{text}");
        }
        let (url, daemon) = match transport {
            Transport::Daemon => {
                let daemon = Daemon::start(env, &base);
                (daemon.url(name), Some(daemon))
            }
            Transport::File => (format!("file://{}", bare.display()), None),
        };
        Server { bare, url, _daemon: daemon }
    }

    /// Where the server's `refs/clutch/log` and `main` are.
    fn refs(&self, env: &TestEnv) -> (Option<String>, Option<String>) {
        (rev(env, &self.bare, LOG_REF), rev(env, &self.bare, "refs/heads/main"))
    }
}

/// `git remote add origin URL` and `git clutch remote setup` in `dir`.
fn add_origin(env: &TestEnv, dir: &Path, url: &str) {
    git_ok_at(env, dir, &["remote", "add", "origin", url]);
    clutch_at(env, dir, &["remote", "setup"]).success();
}

/// `git clutch --as AGENT sync --json` that must succeed: the report.
#[track_caller]
fn sync(env: &TestEnv, dir: &Path, agent: &str) -> Value {
    let report = clutch_as_at(env, dir, agent, &["sync", "--json"]).success().json();
    for key in
        ["remote", "remote_head", "local_before", "local_after", "events_in", "events_out", "merge", "pushed", "rejected_in", "attempts"]
    {
        assert!(report.get(key).is_some(), "the sync report has {key}: {report}");
    }
    assert_eq!(report["local_after"].as_str(), rev(env, dir, LOG_REF).as_deref(), "local_after is the log's head: {report}");
    report
}

// ---------------------------------------------------------------------------------------------
// Forging events with plain git (as in docs/storage-format.md)

/// An event made with plain git in the origin repository on top of `parent`, consistent in
/// everything but what the caller breaks: the next clock, a fresh time, author and committer
/// the actor, project `core`; signed with `key` when given. The log does not move.
fn forge(env: &TestEnv, parent: &str, actor: &str, kind: &str, task: Option<&str>, payload: Value, key: Option<&Path>) -> String {
    let mut event: Value = serde_json::from_str(&env.git_ok(["show", &format!("{parent}:event.json")])).expect("event.json is JSON");
    let time = env.tick();
    event["type"] = json!(kind);
    event["actor_agent_id"] = json!(actor);
    event["at"] = json!(rfc3339(time));
    event["clock"] = json!(event["clock"].as_u64().expect("clock") + 1);
    event["project"] = json!("core");
    event["task"] = json!(task);
    event["refs"] = json!([]);
    event["cost"] = json!({"input_tokens": 0, "output_tokens": 0, "cache_read_tokens": 0, "cache_write_tokens": 0,
                           "usd_micros": 0, "wall_ms": 0, "source": "none"});
    event["payload"] = payload;
    let mut bytes = serde_json::to_vec_pretty(&event).expect("serialize");
    bytes.push(b'\n');
    let blob = env.git_stdin(["hash-object", "-w", "--stdin"], &bytes);
    let tree = env.git_stdin(["mktree"], format!("100644 blob {blob}\tevent.json\n").as_bytes());
    let who = Ident::agent(actor, time);
    env.commit_tree(&tree, &[parent], &who, &who, &commit_message(&event, "forged with plain git"), key)
}

fn task_created(title: &str) -> Value {
    json!({"title": title, "description": null, "after": []})
}

/// Copy `agent`'s key pair from the shared `CLUTCH_HOME` into `home`.
fn copy_key(env: &TestEnv, agent: &str, home: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let keys = home.join("keys");
    std::fs::create_dir_all(&keys).expect("create a keys directory");
    let private = env.key_file(agent);
    let name = private.file_name().expect("key file name").to_os_string();
    std::fs::copy(&private, keys.join(&name)).expect("copy the private key");
    std::fs::set_permissions(keys.join(&name), std::fs::Permissions::from_mode(0o600)).expect("chmod 600");
    let mut public = name.clone();
    public.push(".pub");
    let source = private.with_file_name(&public);
    if source.exists() {
        std::fs::copy(&source, keys.join(&public)).expect("copy the public key");
    }
}

/// A first commit on `main` in the origin repository.
fn seed_main(env: &TestEnv) -> String {
    std::fs::write(env.repo.join("README.md"), "acme\n").expect("write README");
    env.git_ok(["add", "README.md"]);
    env.git_ok(["commit", "-q", "-m", "initial commit"]);
    env.git_ok(["rev-parse", "main"])
}

// ---------------------------------------------------------------------------------------------
// 1–2. Three clones, concurrent appends, syncs in several orders

/// One clone of the org and the agent that signs its merges.
struct Peer {
    name: &'static str,
    dir: PathBuf,
    agent: &'static str,
}

/// An event a clone made, as its command reported it.
#[derive(Debug, Clone)]
struct Made {
    event: String,
    task: String,
    title: Option<String>,
}

#[track_caller]
fn new_task(env: &TestEnv, clone: &Peer, agent: &str, title: &str) -> Made {
    let json = clutch_as_at(env, &clone.dir, agent, &["task", "new", title, "--project", "core", "--json"]).success().json();
    Made { event: str_field(&json, "event").to_string(), task: str_field(&json, "id").to_string(), title: Some(title.to_string()) }
}

#[track_caller]
fn claim(env: &TestEnv, clone: &Peer, agent: &str, task: &str) -> Made {
    let json = clutch_as_at(env, &clone.dir, agent, &["task", "claim", task, "--json"]).success().json();
    assert_eq!(str_field(&json, "id"), task);
    Made { event: str_field(&json, "event").to_string(), task: task.to_string(), title: None }
}

/// Sync the clones in `order`, pass after pass, until a whole pass moves nothing and every
/// clone and the server hold the same head (at most 5 passes). Returns the reports.
#[track_caller]
fn quiesce(env: &TestEnv, server: &Server, clones: &[Peer], order: &[usize]) -> Vec<Value> {
    let mut reports = Vec::new();
    for _ in 0..5 {
        let mut quiet = true;
        for &i in order {
            let report = sync(env, &clones[i].dir, clones[i].agent);
            quiet &= report["events_in"] == 0 && report["events_out"] == 0 && report["merge"].is_null();
            reports.push(report);
        }
        let heads: BTreeSet<Option<String>> = clones.iter().map(|c| rev(env, &c.dir, LOG_REF)).collect();
        if quiet && heads.len() == 1 {
            assert_eq!(heads.into_iter().next().flatten(), server.refs(env).0, "the server holds the common head");
            return reports;
        }
    }
    panic!("the clones did not settle after 5 passes of syncs: {reports:#?}");
}

/// Run each clone's `plan` in its own thread, all released together; returns what they made.
fn concurrently<F>(clones: &[Peer], plan: F) -> Vec<Made>
where
    F: Fn(&Peer) -> Vec<Made> + Sync,
{
    let start = Barrier::new(clones.len());
    thread::scope(|s| {
        let handles: Vec<_> = clones
            .iter()
            .map(|clone| {
                let (start, plan) = (&start, &plan);
                s.spawn(move || {
                    start.wait();
                    plan(clone)
                })
            })
            .collect();
        handles.into_iter().flat_map(|h| h.join().expect("a clone's thread")).collect()
    })
}

/// After quiescence: every clone holds the same log, the same state to the byte, every task
/// made anywhere exactly once, and exactly the commits made plus LOG_MERGED joins.
#[track_caller]
fn assert_converged(env: &TestEnv, clones: &[Peer], initial: &BTreeSet<String>, made: &[Made]) -> Value {
    let reference = state_text(env, &clones[0].dir);
    for clone in clones {
        assert_eq!(
            state_text(env, &clone.dir),
            reference,
            "clone {} computes the same state --json as clone {}",
            clone.name,
            clones[0].name
        );
    }
    let made_events: BTreeSet<String> = made.iter().map(|m| m.event.clone()).collect();
    assert_eq!(made_events.len(), made.len(), "every command made its own commit");
    for clone in clones {
        let commits: Vec<String> = git_ok_at(env, &clone.dir, &["rev-list", LOG_REF]).lines().map(str::to_string).collect();
        let merges: BTreeSet<String> =
            git_ok_at(env, &clone.dir, &["rev-list", "--min-parents=2", LOG_REF]).lines().map(str::to_string).collect();
        for merge in &merges {
            let subject = git_ok_at(env, &clone.dir, &["log", "-1", "--format=%s", merge]);
            assert!(subject.starts_with("LOG_MERGED"), "a merge commit in the log is a LOG_MERGED: {merge} {subject}");
            let event: Value =
                serde_json::from_str(&git_ok_at(env, &clone.dir, &["show", &format!("{merge}:event.json")])).expect("event.json");
            assert_eq!(event["type"], "LOG_MERGED");
        }
        let set: BTreeSet<String> = commits.iter().cloned().collect();
        assert_eq!(set.len(), commits.len());
        let expected: BTreeSet<String> = initial.iter().chain(&made_events).chain(&merges).cloned().collect();
        assert_eq!(set, expected, "clone {}: the log holds exactly the events made and the joins (no loss, no copy)", clone.name);
        assert_eq!(commits.len(), initial.len() + made.len() + merges.len(), "clone {}", clone.name);

        let tasks = match clutch_at(env, &clone.dir, &["task", "list", "--json"]).success().json() {
            Value::Array(tasks) => tasks,
            other => panic!("task list --json is not an array: {other}"),
        };
        for m in made.iter().filter(|m| m.title.is_some()) {
            let found: Vec<&Value> = tasks.iter().filter(|t| t["id"] == m.task.as_str()).collect();
            assert_eq!(found.len(), 1, "clone {} lists task {} ({:?}) once", clone.name, m.task, m.title);
            assert_eq!(found[0]["title"].as_str(), m.title.as_deref());
            assert_eq!(found[0]["event"], m.event.as_str());
        }
        let titles: Vec<&str> = tasks.iter().map(|t| str_field(t, "title")).collect();
        let unique: BTreeSet<&str> = titles.iter().copied().collect();
        assert_eq!(unique.len(), titles.len(), "no task is listed twice in clone {}: {titles:?}", clone.name);
    }
    serde_json::from_str(&reference).expect("state is JSON")
}

/// The commits `verify` rejects in `dir` (it must exit 1 when there are any).
#[track_caller]
fn rejected(env: &TestEnv, dir: &Path) -> Vec<(String, String)> {
    // Losing claims of a conflict were valid where they were made: `verify` lists them as
    // superseded, not as invalid, and passes.
    let out = clutch_at(env, dir, &["verify", "--json"]);
    let report = out.json();
    assert_eq!(report["rejected"].as_array().expect("rejected is a list").len(), 0, "no forged event: {out}");
    assert_eq!(out.status, 0, "{out}");
    report["superseded"]
        .as_array()
        .expect("superseded is a list")
        .iter()
        .map(|r| (str_field(r, "commit").to_string(), str_field(r, "reason").to_string()))
        .collect()
}

/// The conflicting claims of `task`: exactly one stands, `winner`'s, on every clone; every other
/// claim is listed by `verify` as superseded because the task is taken.
#[track_caller]
fn assert_claim_resolved(env: &TestEnv, clones: &[Peer], task: &str, claims: &[(&str, &Made)], winner: &str) {
    for clone in clones {
        let state = state_at(env, &clone.dir);
        assert_eq!(state["tasks"][task]["assignee"], winner, "clone {}: {task} goes to {winner}", clone.name);
        let refused = rejected(env, &clone.dir);
        for (agent, made) in claims {
            let listed = refused.iter().find(|(commit, _)| *commit == made.event);
            if *agent == winner {
                assert!(listed.is_none(), "clone {}: {winner}'s claim stands: {refused:?}", clone.name);
            } else {
                let (_, reason) =
                    listed.unwrap_or_else(|| panic!("clone {}: {agent}'s claim {} is refused: {refused:?}", clone.name, made.event));
                assert!(reason.contains(&format!("already assigned to {winner}")), "clone {}: {reason}", clone.name);
            }
        }
    }
}

/// The org in A (the origin clone, alice), a server with the hook, and clones B and C made with
/// `git clutch clone`; `contested` tasks created in A, and everything synced.
fn three_clones(transport: Transport, contested: &[&str]) -> (TestEnv, Server, Vec<Peer>, Vec<Made>) {
    let env = TestEnv::with_org();
    let server = Server::new(&env, transport, "org.git", true);
    add_origin(&env, &env.repo, &server.url);
    let first = sync(&env, &env.repo, "alice");
    assert_eq!(first["pushed"], true, "{first}");
    assert_eq!(first["events_out"], env.log_commits().len(), "{first}");
    assert_eq!(server.refs(&env).0, env.log_head());

    let mut peers = vec![Peer { name: "A", dir: env.repo.clone(), agent: "alice" }];
    for (name, agent) in [("B", "jill"), ("C", "kim")] {
        let dir = env.root.join(name.to_lowercase());
        let out = clutch_at(&env, &env.root, &["clone", &server.url, &dir.display().to_string()]).success();
        assert_eq!(out.out(), dir.display().to_string(), "clone prints its directory:\n{out}");
        peers.push(Peer { name, dir, agent });
    }
    let tasks = contested.iter().map(|title| new_task(&env, &peers[0], "bob", title)).collect();
    quiesce(&env, &server, &peers, &[0, 1, 2]);
    (env, server, peers, tasks)
}

fn three_clones_converge(transport: Transport) {
    let (env, server, clones, tasks) = three_clones(transport, &["Contested one", "Contested two"]);
    let (t1, t2) = (&tasks[0], &tasks[1]);
    let initial: BTreeSet<String> = env.log_commits().into_iter().collect();
    let mut made = Vec::new();

    // Round 1: everyone appends at once, bob, jill and kim each claim t1 in their own clone;
    // then syncs A, B, C, A, B, C… The clone that joins puts its own events first, so C, which
    // joins last, keeps kim's claim.
    let round1 = concurrently(&clones, |c| match c.name {
        "A" => vec![claim(&env, c, "bob", &t1.task), new_task(&env, c, "bob", "A1 first"), new_task(&env, c, "alice", "A1 second")],
        "B" => vec![claim(&env, c, "jill", &t1.task), new_task(&env, c, "bob", "B1 first")],
        _ => vec![new_task(&env, c, "bob", "C1 first"), claim(&env, c, "kim", &t1.task), new_task(&env, c, "alice", "C1 second")],
    });
    let reports = quiesce(&env, &server, &clones, &[0, 1, 2]);
    assert!(reports.iter().any(|r| !r["merge"].is_null()), "diverged logs were joined: {reports:#?}");
    let claims1: Vec<(&str, &Made)> = vec![("bob", &round1[0]), ("jill", &round1[3]), ("kim", &round1[6])];
    made.extend(round1.iter().cloned());
    assert_converged(&env, &clones, &initial, &made);
    assert_claim_resolved(&env, &clones, &t1.task, &claims1, "kim");

    // Round 2: jill and kim claim t2 while A works on; syncs C, A, B, …: B joins last, jill keeps it.
    let round2 = concurrently(&clones, |c| match c.name {
        "A" => vec![new_task(&env, c, "bob", "A2 first"), new_task(&env, c, "bob", "A2 second")],
        "B" => vec![claim(&env, c, "jill", &t2.task), new_task(&env, c, "bob", "B2 first")],
        _ => vec![claim(&env, c, "kim", &t2.task)],
    });
    quiesce(&env, &server, &clones, &[2, 0, 1]);
    made.extend(round2.iter().cloned());
    assert_converged(&env, &clones, &initial, &made);
    let claims2: Vec<(&str, &Made)> = vec![("jill", &round2[2]), ("kim", &round2[4])];
    assert_claim_resolved(&env, &clones, &t2.task, &claims2, "jill");
    assert_claim_resolved(&env, &clones, &t1.task, &claims1, "kim");

    // Nothing but the losing claims is refused, on any clone.
    let losers: BTreeSet<String> = [claims1[0].1, claims1[1].1, claims2[1].1].iter().map(|m| m.event.clone()).collect();
    for clone in &clones {
        let refused: BTreeSet<String> = rejected(&env, &clone.dir).into_iter().map(|(c, _)| c).collect();
        assert_eq!(refused, losers, "clone {}: verify lists exactly the losing claims", clone.name);
    }
}

#[test]
fn three_clones_over_git_daemon_converge_without_losing_an_event() {
    three_clones_converge(Transport::Daemon);
}

#[test]
fn three_clones_over_file_url_converge_without_losing_an_event() {
    three_clones_converge(Transport::File);
}

/// Three clones claim one task, append and sync all at once, three times over: two pushes
/// that pass their lease together race on the server, and the loser must fetch and join
/// again, not fail. Whoever wins the task, every clone agrees.
#[test]
fn racing_syncs_over_git_daemon_retry_and_converge() {
    let (env, server, clones, tasks) = three_clones(Transport::Daemon, &["Raced for"]);
    let task = &tasks[0];
    let initial: BTreeSet<String> = env.log_commits().into_iter().collect();
    let failed = std::sync::Mutex::new(Vec::new());
    let made = concurrently(&clones, |c| {
        let agent = match c.name {
            "A" => "bob",
            "B" => "jill",
            _ => "kim",
        };
        let mut made = vec![claim(&env, c, agent, &task.task)];
        for i in 0..3 {
            made.push(new_task(&env, c, "bob", &format!("{} raced {i}", c.name)));
            let out = clutch_as_at(&env, &c.dir, c.agent, &["sync", "--json"]);
            if out.status != 0 {
                failed.lock().expect("no poisoned lock").push(format!("clone {}: {out}", c.name));
            }
        }
        made
    });
    let failed = failed.into_inner().expect("no poisoned lock");
    assert!(failed.is_empty(), "a sync that loses a push race retries instead of failing:\n{}", failed.join("\n"));
    quiesce(&env, &server, &clones, &[1, 2, 0]);
    let state = assert_converged(&env, &clones, &initial, &made);
    let winner = str_field(&state["tasks"][&task.task], "assignee").to_string();
    let claims: Vec<(&str, &Made)> = vec![("bob", &made[0]), ("jill", &made[4]), ("kim", &made[8])];
    assert!(claims.iter().any(|(agent, _)| *agent == winner), "the task goes to one of its claimants: {winner}");
    assert_claim_resolved(&env, &clones, &task.task, &claims, &winner);
    let losers: BTreeSet<String> = claims.iter().filter(|(agent, _)| *agent != winner).map(|(_, m)| m.event.clone()).collect();
    for clone in &clones {
        let refused: BTreeSet<String> = rejected(&env, &clone.dir).into_iter().map(|(c, _)| c).collect();
        assert_eq!(refused, losers, "clone {}: verify lists exactly the losing claims", clone.name);
    }
}

// ---------------------------------------------------------------------------------------------
// 3. The server's pre-receive hook, and the client's pre-push hook

/// A push that the server's hook refuses: git fails, every needle appears on a
/// `remote: clutch: refused: …` line, and the server's log and `main` stay where they were.
#[track_caller]
fn refused_push(env: &TestEnv, server: &Server, args: &[&str], needles: &[&str]) -> CommandOutput {
    let before = server.refs(env);
    let mut all = vec!["push"];
    all.extend_from_slice(args);
    let out = git_at(env, &env.repo, &all);
    assert_ne!(out.status, 0, "the push is refused:\n{out}");
    let lines: Vec<&str> = out.stderr.lines().filter_map(|l| l.strip_prefix("remote: clutch: refused: ")).collect();
    for needle in needles {
        assert!(lines.iter().any(|l| l.contains(needle)), "a refusal names {needle:?}:\n{out}");
    }
    assert!(out.stderr.contains("pre-receive hook declined"), "{out}");
    assert_eq!(server.refs(env), before, "a refused push changes nothing on the server:\n{out}");
    out
}

/// A junior PR ready for review: bob's task assigned to jill, one commit on `branch`, the PR
/// opened by jill; `main` checked out again. Returns (task, pr, head).
fn junior_pr(env: &TestEnv, branch: &str) -> (String, String, String) {
    let task = env.new_task("bob", &format!("Deliver {branch}"), &["--project", "core"]);
    env.clutch_as("bob", ["task", "assign", &task, "jill"]).success();
    env.git_ok(["checkout", "-q", "-b", branch, "main"]);
    std::fs::write(env.repo.join(format!("{branch}.txt")), "work\n").expect("write work file");
    env.git_ok(["add", "."]);
    env.git_ok(["commit", "-q", "-m", &format!("{branch}: work")]);
    let head = env.git_ok(["rev-parse", "HEAD"]);
    let pr = env.clutch_as("jill", ["pr", "open", "--task", &task, "--head", branch]).success().out().to_string();
    env.git_ok(["checkout", "-q", "main"]);
    (task, pr, head)
}

fn hook_refuses_what_would_break_the_org(transport: Transport) {
    let env = TestEnv::with_org();
    seed_main(&env);
    let server = Server::new(&env, transport, "org.git", true);
    add_origin(&env, &env.repo, &server.url);
    // Plain `git push` carries the log and main (creating main on the server is allowed).
    git_ok_at(&env, &env.repo, &["push", "--quiet"]);
    assert_eq!(server.refs(&env), (env.log_head(), rev(&env, &env.repo, "main")));
    let (task, pr, head) = junior_pr(&env, "feature");
    sync(&env, &env.repo, "alice");
    let tip = env.log_head().expect("a log");
    assert_eq!(server.refs(&env).0.as_deref(), Some(tip.as_str()));

    // Rewriting the log: an older head, forced; a rewritten last commit, forced; deletion.
    let older = env.git_ok(["rev-parse", &format!("{tip}~2")]);
    refused_push(&env, &server, &["--force", "origin", &format!("{older}:{LOG_REF}")], &[&format!("{LOG_REF} may only fast-forward")]);
    let who = Ident::agent("bob", env.tick());
    let rewritten = env.commit_tree(
        &format!("{tip}^{{tree}}"),
        &[&format!("{tip}~1")],
        &who,
        &who,
        "PR_OPENED: rewritten\n",
        Some(&env.key_file("bob")),
    );
    refused_push(
        &env,
        &server,
        &["--force", "origin", &format!("{rewritten}:{LOG_REF}")],
        &[&format!("{rewritten} does not contain {tip} (the push rewrites history)")],
    );
    refused_push(&env, &server, &["origin", &format!(":{LOG_REF}")], &[&format!("deleting {LOG_REF} is refused")]);

    // Forged events, each alone on top of the server's head.
    let stranger = env.ssh_keygen("stranger", "");
    let bob_key = env.key_file("bob");
    let jill_key = env.key_file("jill");
    let forgeries = [
        (forge(&env, &tip, "bob", "TASK_CREATED", None, task_created("Unsigned"), None), "the commit is not signed".to_string()),
        (
            forge(&env, &tip, "bob", "TASK_CREATED", None, task_created("Stranger"), Some(&stranger)),
            "not the roster's key for 'bob'".into(),
        ),
        (
            forge(&env, &tip, "kim", "TASK_ASSIGNED", Some(&task), json!({"assignee": "kim", "claim": true}), Some(&bob_key)),
            "not the roster's key for 'kim'".into(),
        ),
        // Validly signed, but the role gate forbids it.
        (
            forge(&env, &tip, "jill", "TASK_CREATED", None, task_created("Junior's own"), Some(&jill_key)),
            "junior 'jill' may not create tasks".into(),
        ),
    ];
    for (forged, reason) in &forgeries {
        refused_push(
            &env,
            &server,
            &["origin", &format!("{forged}:{LOG_REF}")],
            &[&format!("carries an invalid event {forged}: "), reason],
        );
    }
    // A forgery under a valid event is refused just the same.
    let (unsigned, _) = &forgeries[0];
    let on_top = forge(&env, unsigned, "bob", "TASK_CREATED", None, task_created("Valid on a forgery"), Some(&bob_key));
    refused_push(
        &env,
        &server,
        &["origin", &format!("{on_top}:{LOG_REF}")],
        &[&format!("carries an invalid event {unsigned}: the commit is not signed")],
    );

    // bob signs a MERGE_APPROVED of a PR nobody reviewed, and moves main to its result.
    let base = env.git_ok(["rev-parse", "main"]);
    let tree = env.git_ok(["merge-tree", "--write-tree", "main", "feature"]);
    let who = Ident::agent("bob", env.tick());
    let result = env.commit_tree(&tree, &[&base, &head], &who, &who, "Merge\n", Some(&bob_key));
    let gate = json!({"required_approvals": 1, "approvals": ["bob"], "require_tests": false, "test_run": null, "unmet": []});
    let approval = forge(
        &env,
        &tip,
        "bob",
        "MERGE_APPROVED",
        Some(&task),
        json!({"pr": pr, "head": head, "gate": gate, "result": result}),
        Some(&bob_key),
    );
    refused_push(
        &env,
        &server,
        &["origin", &format!("{approval}:{LOG_REF}"), &format!("{result}:refs/heads/main")],
        &[
            &format!("carries an invalid event {approval}: merge gate of {pr} does not hold"),
            &format!("protected branch main may only move to a merge the log approved: no MERGE_APPROVED names {result}"),
        ],
    );

    // main moved by a plain commit, or deleted.
    std::fs::write(env.repo.join("README.md"), "acme, unreviewed\n").expect("write README");
    env.git_ok(["commit", "-q", "-am", "straight to main"]);
    let unreviewed = env.git_ok(["rev-parse", "main"]);
    refused_push(
        &env,
        &server,
        &["origin", "main"],
        &[&format!("protected branch main may only move to a merge the log approved: no MERGE_APPROVED names {unreviewed}")],
    );
    refused_push(&env, &server, &["origin", ":main"], &["deleting protected branch main is refused"]);
    env.git_ok(["reset", "-q", "--hard", &base]);

    // The positive case: bob approves, `pr merge` moves main, and plain `git push` carries both.
    env.clutch_as("bob", ["pr", "review", &pr, "--approve", "-m", "good"]).success();
    let merged = env.clutch_as("bob", ["pr", "merge", &pr, "--json"]).success().json();
    let result = str_field(&merged, "result").to_string();
    assert_eq!(env.git_ok(["rev-parse", "main"]), result);
    let pushed = git_at(&env, &env.repo, &["push"]);
    assert_eq!(pushed.status, 0, "an approved merge is accepted:\n{pushed}");
    assert!(!pushed.stderr.contains("refused"), "{pushed}");
    assert_eq!(server.refs(&env), (env.log_head(), Some(result.clone())));
    assert_eq!(git_ok_at(&env, &server.bare, &["rev-list", "--count", LOG_REF]), env.log_commits().len().to_string());
    // And the server still holds no event that replay refuses.
    let check = env.root.join("check");
    git_ok_at(&env, &env.root, &["clone", "--quiet", &server.url, &check.display().to_string()]);
    clutch_at(&env, &check, &["sync"]).success();
    assert_eq!(rejected(&env, &check), Vec::new());
    assert_eq!(state_text(&env, &check), state_text(&env, &env.repo));

    // A server that never had main: once the log has merged into main, main can only be
    // created there at a merge the log approved.
    let fresh = Server::new(&env, transport, "fresh.git", true);
    git_ok_at(&env, &env.repo, &["push", "--quiet", &fresh.url, LOG_REF]);
    refused_push(
        &env,
        &fresh,
        &[&fresh.url, &format!("{unreviewed}:refs/heads/main")],
        &[&format!("protected branch main may only be created at a merge the log approved: no MERGE_APPROVED names {unreviewed}")],
    );
    assert_eq!(fresh.refs(&env).1, None, "main was not created");
    let pushed = git_at(&env, &env.repo, &["push", &fresh.url, &format!("{result}:refs/heads/main")]);
    assert_eq!(pushed.status, 0, "main created at the approved merge:\n{pushed}");
    assert_eq!(fresh.refs(&env).1, Some(result));
}

#[test]
fn pre_receive_over_git_daemon_refuses_rewrites_forgeries_and_unapproved_merges() {
    hook_refuses_what_would_break_the_org(Transport::Daemon);
}

#[test]
fn pre_receive_over_file_url_refuses_rewrites_forgeries_and_unapproved_merges() {
    hook_refuses_what_would_break_the_org(Transport::File);
}

/// An org whose origin is a `file://` server without any hook, with clutch's `pre-push` hook
/// installed in the work repository, synced; then a forged (unsigned) event on top of the local
/// log. Returns (server, the honest head, the forged event).
fn forged_behind_pre_push(env: &TestEnv) -> (Server, String, String) {
    // A server without any hook: whatever is refused here, the client refused.
    let server = Server::new(env, Transport::File, "plain.git", false);
    add_origin(env, &env.repo, &server.url);
    let installed = clutch_at(env, &env.repo, &["hooks", "install"]).success();
    let hook = env.repo.join(".git").join("hooks").join("pre-push");
    assert_eq!(installed.out(), hook.display().to_string());
    assert!(std::fs::read_to_string(&hook).expect("read the hook").contains("git-clutch hook pre-push"));

    // Valid events go through the hook.
    sync(env, &env.repo, "alice");
    env.new_task("bob", "Honest work", &["--project", "core"]);
    git_ok_at(env, &env.repo, &["push", "--quiet", "origin", LOG_REF]);
    let honest = env.log_head().expect("a log");
    assert_eq!(server.refs(env).0.as_deref(), Some(honest.as_str()));

    let forged = forge(env, &honest, "bob", "TASK_CREATED", None, task_created("Forged here"), None);
    env.git_ok(["update-ref", LOG_REF, &forged, &honest]);
    (server, honest, forged)
}

#[test]
fn pre_push_catches_a_forged_event_before_it_leaves() {
    let env = TestEnv::with_org();
    let (server, honest, forged) = forged_behind_pre_push(&env);
    let honest = Some(honest);

    // The forged event does not leave: not by plain git, not by sync.
    let out = git_at(&env, &env.repo, &["push", "origin", LOG_REF]);
    assert_ne!(out.status, 0, "{out}");
    assert!(
        out.stderr.contains(&format!("clutch: refused: {LOG_REF} carries an invalid event {forged}: the commit is not signed")),
        "{out}"
    );
    assert!(!out.stderr.contains("remote: clutch"), "the client refused, not the server:\n{out}");
    assert_eq!(server.refs(&env).0, honest, "nothing left:\n{out}");
    let refused = clutch_as_at(&env, &env.repo, "alice", &["sync"]).code(1);
    assert!(refused.stderr.starts_with("error: this repository's pre-push hook stopped the push: "), "{refused}");
    assert!(refused.stderr.contains(&format!("carries an invalid event {forged}")), "sync names the forged event:\n{refused}");
    assert_eq!(server.refs(&env).0, honest);

    // Only the client hook stood in the way: skipping it, the hookless server takes anything.
    git_ok_at(&env, &env.repo, &["push", "--quiet", "--no-verify", "origin", LOG_REF]);
    assert_eq!(server.refs(&env).0.as_deref(), Some(forged.as_str()));
}

/// BUG: when the local `pre-push` hook refuses the push that `sync` makes, the error is git's
/// raw stderr, three lines long (`error: 'origin' refused the log:  clutch: refused: …`,
/// `error: push refused by clutch (1 problem(s))`, `error: failed to push some refs to …`),
/// instead of one line plus a hint like every other clutch error; and the hint blames "the
/// remote's hook" although the local hook refused.
#[test]
fn sync_refused_by_the_pre_push_hook_says_so_in_one_line() {
    let env = TestEnv::with_org();
    let (server, honest, forged) = forged_behind_pre_push(&env);
    let refused = clutch_as_at(&env, &env.repo, "alice", &["sync"]).code(1);
    assert_eq!(server.refs(&env).0, Some(honest));
    let error = refused.error();
    assert!(error.contains(&format!("carries an invalid event {forged}: the commit is not signed")), "{refused}");
    assert!(!refused.stderr.contains("the remote's hook"), "the local pre-push hook refused, not the remote:\n{refused}");
}

// ---------------------------------------------------------------------------------------------
// 4. Another org's log

/// A second org, `evil` founded by mallory, in `root/evil`, synced to its own bare repository.
/// Returns (its org id, the server).
fn other_org(env: &TestEnv) -> (String, Server) {
    let dir = env.root.join("evil");
    std::fs::create_dir_all(&dir).expect("create the other repo");
    git_ok_at(env, &dir, &["init", "--quiet", "-b", "main"]);
    let org = clutch_at(env, &dir, &["init", "--name", "evil", "--founder", "mallory"]).success().out().to_string();
    let server = Server::new(env, Transport::File, "evil.git", false);
    add_origin(env, &dir, &server.url);
    sync(env, &dir, "mallory");
    assert_eq!(server.refs(env).0, rev(env, &dir, LOG_REF));
    (org, server)
}

/// `sync other` is refused, names both genesis ids, and changes nothing local: no ref (the log,
/// no refs/remotes/other/…), the same state, the same pin.
#[track_caller]
fn assert_foreign_sync_refused(env: &TestEnv, ours: &str, theirs: &str) {
    let refs = all_refs(env, &env.repo);
    let state = state_text(env, &env.repo);
    for args in [vec!["sync", "other"], vec!["sync", "other", "--json"]] {
        let out = clutch_as_at(env, &env.repo, "alice", &args).code(1);
        let error = out.error();
        assert!(error.contains("'other' holds the log of another org"), "{out}");
        assert!(error.contains(theirs) && error.contains(ours), "the error names both genesis commits:\n{out}");
        assert!(out.stdout.is_empty(), "{out}");
        assert_eq!(all_refs(env, &env.repo), refs, "a refused sync creates or moves no ref:\n{out}");
        assert_eq!(state_text(env, &env.repo), state, "a refused sync changes no state");
        assert_eq!(config(env, &env.repo, "clutch.orgId").as_deref(), Some(ours));
    }
    assert!(rev(env, &env.repo, "refs/remotes/other/clutch/log").is_none());
}

#[test]
fn sync_refuses_a_remote_log_with_another_genesis_and_changes_nothing() {
    let env = TestEnv::with_org();
    let ours = env.git_ok(["rev-list", "--max-parents=0", LOG_REF]);
    assert_eq!(env.git_ok(["config", "clutch.orgId"]), ours, "init pins the org");
    let (theirs, evil) = other_org(&env);
    assert_ne!(ours, theirs);
    env.git_ok(["remote", "add", "other", &evil.url]);
    assert_foreign_sync_refused(&env, &ours, &theirs);
    // The other side is untouched too.
    assert_eq!(evil.refs(&env).0, rev(&env, &env.root.join("evil"), LOG_REF));

    // A fresh repository without a pin adopts the org it syncs first, then refuses the other.
    let fresh = env.root.join("fresh");
    git_ok_at(&env, &env.root, &["clone", "--quiet", &evil.url, &fresh.display().to_string()]);
    sync(&env, &fresh, "mallory");
    assert_eq!(config(&env, &fresh, "clutch.orgId").as_deref(), Some(theirs.as_str()));
}

/// BUG: after `git clutch remote setup other` (which `init` also runs for existing remotes),
/// the refused sync leaves `refs/remotes/other/clutch/log` pointing at the foreign log:
/// `Store::fetch_log` runs `git fetch other refs/clutch/log`, and git updates the tracking ref
/// that the configured fetch refspec maps it to ("opportunistic remote-tracking update"),
/// before `check_same_org` refuses. The error's hint says "nothing was changed".
#[test]
fn sync_refuses_another_genesis_after_remote_setup_without_a_tracking_ref() {
    let env = TestEnv::with_org();
    let ours = env.git_ok(["rev-list", "--max-parents=0", LOG_REF]);
    let (theirs, evil) = other_org(&env);
    env.git_ok(["remote", "add", "other", &evil.url]);
    env.clutch(["remote", "setup", "other"]).success();
    assert_foreign_sync_refused(&env, &ours, &theirs);
}

#[test]
fn a_server_pinned_to_an_org_refuses_another_orgs_log() {
    let env = TestEnv::with_org();
    let ours = env.git_ok(["rev-list", "--max-parents=0", LOG_REF]);
    let server = Server::new(&env, Transport::Daemon, "pinned.git", true);
    git_ok_at(&env, &server.bare, &["config", "clutch.orgId", &ours]);
    let (theirs, _) = other_org(&env);
    let evil = env.root.join("evil");
    git_ok_at(&env, &evil, &["remote", "add", "pinned", &server.url]);
    let out = git_at(&env, &evil, &["push", "pinned", LOG_REF]);
    assert_ne!(out.status, 0, "{out}");
    assert!(
        out.stderr.contains(&format!("remote: clutch: refused: {LOG_REF} belongs to org {theirs} but this repository holds org {ours}")),
        "{out}"
    );
    assert_eq!(server.refs(&env), (None, None));
    let out = clutch_as_at(&env, &evil, "mallory", &["sync", "pinned"]).code(1);
    assert!(out.error().contains("'pinned' refused the log") && out.error().contains(&ours), "{out}");
    assert_eq!(server.refs(&env), (None, None));
    // The org it is pinned to gets in.
    add_origin(&env, &env.repo, &server.url);
    sync(&env, &env.repo, "alice");
    assert_eq!(server.refs(&env).0, env.log_head());
}

// ---------------------------------------------------------------------------------------------
// 5. Cloning

#[test]
fn plain_git_clone_then_sync_and_clutch_clone_give_the_whole_org() {
    let env = TestEnv::with_org();
    seed_main(&env);
    let server = Server::new(&env, Transport::Daemon, "org.git", true);
    add_origin(&env, &env.repo, &server.url);
    let task = env.new_task("bob", "Cloned work", &["--project", "core"]);
    env.clutch_as("bob", ["task", "assign", &task, "jill"]).success();
    git_ok_at(&env, &env.repo, &["push", "--quiet"]);
    let org = env.git_ok(["config", "clutch.orgId"]);
    let state = state_text(&env, &env.repo);
    let head = env.log_head();

    // git clone + git clutch sync.
    let plain = env.root.join("plain");
    git_ok_at(&env, &env.root, &["clone", "--quiet", &server.url, &plain.display().to_string()]);
    assert!(rev(&env, &plain, LOG_REF).is_none(), "plain git clone does not bring the log");
    assert!(config(&env, &plain, "clutch.orgId").is_none());
    let report = clutch_at(&env, &plain, &["sync", "--json"]).success().json();
    assert_eq!(report["events_in"], env.log_commits().len(), "{report}");
    assert_eq!(report["local_before"], Value::Null);
    assert_eq!(report["local_after"].as_str(), head.as_deref());
    assert_eq!(report["pushed"], false);
    assert_eq!(report["rejected_in"], json!([]));
    assert_eq!(rev(&env, &plain, LOG_REF), head);
    assert_eq!(rev(&env, &plain, "refs/remotes/origin/clutch/log"), head);
    assert_eq!(config(&env, &plain, "clutch.orgId").as_deref(), Some(org.as_str()), "sync pins the org");
    assert_eq!(state_text(&env, &plain), state, "the same state as the origin clone");
    clutch_at(&env, &plain, &["verify"]).success();
    let again = clutch_at(&env, &plain, &["sync"]).success();
    assert_eq!(again.out(), format!("origin: up to date at {}", &head.as_deref().expect("a log")[..10]));

    // git clutch clone with only jill's key on this machine: jill acts.
    let jill_home = env.root.join("jill-home");
    copy_key(&env, "jill", &jill_home);
    let mut cmd = env.command(CLUTCH);
    cmd.current_dir(&env.root).env("PATH", path_with_clutch(&env)).env("CLUTCH_HOME", &jill_home).args(["clone", &server.url, "mine"]);
    let out = output(cmd).success();
    let mine = env.root.join("mine");
    assert_eq!(out.out(), "mine", "clone prints the directory:\n{out}");
    assert!(out.stderr.contains("acting as jill"), "{out}");
    assert_eq!(config(&env, &mine, "clutch.actor").as_deref(), Some("jill"));
    assert_eq!(config(&env, &mine, "clutch.orgId").as_deref(), Some(org.as_str()));
    assert_eq!(state_text(&env, &mine), state);
    assert_eq!(rev(&env, &mine, "main"), rev(&env, &env.repo, "main"), "the branches come along");
    assert!(config_all(&env, &mine, "remote.origin.push").contains(&"refs/clutch/*:refs/clutch/*".to_string()));
    // …and can work: jill starts her task and syncs it back, as herself.
    let mut cmd = env.command(CLUTCH);
    cmd.current_dir(&mine).env("CLUTCH_HOME", &jill_home).env("PATH", path_with_clutch(&env)).args(["task", "start", &task]);
    output(cmd).success();
    let mut cmd = env.command(CLUTCH);
    cmd.current_dir(&mine).env("CLUTCH_HOME", &jill_home).env("PATH", path_with_clutch(&env)).args(["sync", "--json"]);
    assert_eq!(output(cmd).success().json()["pushed"], true);
    sync(&env, &env.repo, "alice");
    assert_eq!(env.state()["tasks"][&task]["status"], "in_progress");

    // No key at all: the org arrives, nobody acts, and the hint says how to join.
    let empty_home = env.root.join("empty-home");
    let mut cmd = env.command(CLUTCH);
    cmd.current_dir(&env.root).env("PATH", path_with_clutch(&env)).env("CLUTCH_HOME", &empty_home).args(["clone", &server.url, "nobody"]);
    let out = output(cmd).success();
    let nobody = env.root.join("nobody");
    assert!(out.stderr.contains("no key for any of its agents on this machine"), "{out}");
    assert!(out.stderr.lines().any(|l| l.starts_with("hint: ") && l.contains("git clutch agent add")), "{out}");
    assert!(config(&env, &nobody, "clutch.actor").is_none());
    assert_eq!(state_text(&env, &nobody), state_text(&env, &env.repo));

    // Keys of several agents: nobody is picked, and the hint says how to choose.
    let out = clutch_at(&env, &env.root, &["clone", &server.url, "several"]).success();
    assert!(out.stderr.contains("this machine holds keys for alice, bob, hank, jill, kim"), "{out}");
    assert!(out.stderr.contains("hint: choose who acts with: git config clutch.actor AGENT"), "{out}");
    assert!(config(&env, &env.root.join("several"), "clutch.actor").is_none());
}

// ---------------------------------------------------------------------------------------------
// 6. remote setup and plain git

#[test]
fn remote_setup_makes_plain_push_and_fetch_carry_the_log_without_forcing() {
    let env = TestEnv::with_org();
    seed_main(&env);
    let server = Server::new(&env, Transport::File, "org.git", true);
    env.git_ok(["remote", "add", "origin", &server.url]);
    let fetch = vec![
        "+refs/heads/*:refs/remotes/origin/*".to_string(),
        "+refs/clutch/log:refs/remotes/origin/clutch/log".to_string(),
        "+refs/clutch/memory/*:refs/remotes/origin/clutch/memory/*".to_string(),
    ];
    let push = vec!["refs/clutch/*:refs/clutch/*".to_string(), "HEAD".to_string()];
    let out = clutch_at(&env, &env.repo, &["remote", "setup"]).success();
    let added: Vec<String> = fetch[1..]
        .iter()
        .map(|s| format!("remote.origin.fetch {s}"))
        .chain(push.iter().map(|s| format!("remote.origin.push {s}")))
        .collect();
    assert_eq!(out.stdout.lines().collect::<Vec<_>>(), added);
    assert_eq!(config_all(&env, &env.repo, "remote.origin.fetch"), fetch);
    assert_eq!(config_all(&env, &env.repo, "remote.origin.push"), push);
    for _ in 0..2 {
        assert_eq!(clutch_at(&env, &env.repo, &["remote", "setup"]).success().out(), "Nothing changed.");
        assert_eq!(
            clutch_at(&env, &env.repo, &["remote", "setup", "origin", "--json"]).success().json(),
            json!({"remote": "origin", "added": []})
        );
        assert_eq!(config_all(&env, &env.repo, "remote.origin.fetch"), fetch, "idempotent");
        assert_eq!(config_all(&env, &env.repo, "remote.origin.push"), push, "idempotent");
    }
    let all = git_ok_at(&env, &env.repo, &["config", "--get-regexp", r"^remote\..*\.push$"]);
    assert!(all.lines().all(|l| !l.split_whitespace().nth(1).is_some_and(|s| s.starts_with('+'))), "no forced push refspec: {all}");
    let out = clutch_at(&env, &env.repo, &["remote", "setup", "nope"]).code(1);
    assert!(out.error().contains("no remote 'nope'"), "{out}");

    // `init` sets up the remotes a repository already has.
    let fresh = env.root.join("fresh");
    std::fs::create_dir_all(&fresh).expect("create fresh");
    git_ok_at(&env, &fresh, &["init", "--quiet", "-b", "main"]);
    git_ok_at(&env, &fresh, &["remote", "add", "origin", &server.url]);
    clutch_at(&env, &fresh, &["init", "--name", "other", "--founder", "olga"]).success();
    assert_eq!(config_all(&env, &fresh, "remote.origin.fetch"), fetch);
    assert_eq!(config_all(&env, &fresh, "remote.origin.push"), push);

    // Plain `git push` carries refs/clutch/log (and the current branch).
    git_ok_at(&env, &env.repo, &["push", "--quiet"]);
    assert_eq!(server.refs(&env), (env.log_head(), rev(&env, &env.repo, "main")));
    let before = env.log_head();
    env.new_task("bob", "Pushed by plain git", &["--project", "core"]);
    git_ok_at(&env, &env.repo, &["push", "--quiet"]);
    assert_eq!(server.refs(&env).0, env.log_head(), "a fast-forward of the log goes through");
    assert_ne!(env.log_head(), before);

    // Another clone moves the server; plain `git fetch` updates only the tracking ref.
    let other = env.root.join("other");
    clutch_at(&env, &env.root, &["clone", &server.url, &other.display().to_string()]).success();
    clutch_as_at(&env, &other, "bob", &["task", "new", "From the other clone", "--project", "core"]).success();
    git_ok_at(&env, &other, &["push", "--quiet"]);
    let theirs = rev(&env, &other, LOG_REF);
    let ours = env.log_head();
    assert_ne!(theirs, ours);
    git_ok_at(&env, &env.repo, &["fetch", "--quiet"]);
    assert_eq!(rev(&env, &env.repo, "refs/remotes/origin/clutch/log"), theirs, "git fetch updates the tracking ref");
    assert_eq!(env.log_head(), ours, "git fetch never touches refs/clutch/log");

    // Diverged: plain `git push` is refused by git itself (no `+`), and the server keeps theirs.
    env.new_task("bob", "Diverging", &["--project", "core"]);
    let out = git_at(&env, &env.repo, &["push"]);
    assert_ne!(out.status, 0, "a non-fast-forward push of the log is refused:\n{out}");
    assert!(out.stderr.contains("rejected"), "{out}");
    assert_eq!(server.refs(&env).0, theirs);
    // sync joins the two logs and pushes the join.
    let report = sync(&env, &env.repo, "alice");
    assert!(report["merge"].is_string(), "{report}");
    assert_eq!(server.refs(&env).0, env.log_head());
    let titles: Vec<String> = env.tasks(&[]).iter().map(|t| str_field(t, "title").to_string()).collect();
    for title in ["Pushed by plain git", "From the other clone", "Diverging"] {
        assert!(titles.iter().any(|t| t == title), "{title} in {titles:?}");
    }
}
