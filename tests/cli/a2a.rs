//! The `http` runtime and `agent add --a2a` against a REAL A2A agent: `tests/agents/a2a_server.py`,
//! built on the `a2a-sdk` server (its card route, JSON-RPC dispatcher, request handler and task
//! store), on 127.0.0.1. Nothing leaves the machine.
//!
//! Each test starts its own server (port 0, a request log in the test's temporary directory)
//! in one mode (work, fail, hang, hostile, input, symlink, hold), adds an agent from its card, runs
//! `git clutch run`, and checks what clutch recorded against what the server logged: the files
//! committed on `clutch/<agent>/<task>`, the PR, RUN_STARTED / RUN_FINISHED and the cost the agent
//! reported, and on failure that nothing was committed and nothing was written outside the
//! worktree. When python3 or the a2a-sdk package is missing, the tests fail and say what to
//! install (`pip install -r tests/requirements.txt`); they never skip.

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::Value;

use crate::common::{finished, parse_log, poll_until, str_field, test_secret, CommandOutput, Entry, TestEnv};

/// What the server's agent writes for work, and says when done (tests/agents/a2a_server.py).
const HELLO: &str = "hello from the a2a agent\n";
const NOTES: &str = "# notes\n";
const DONE: &str = "Wrote hello.txt.";
const CARD_NAME: &str = "Clutch Test Agent";

// ---------------------------------------------------------------------------------------------
// The server

/// `tests/agents/a2a_server.py` on a free port; killed when dropped.
struct A2aServer {
    child: Child,
    port: u16,
    log: PathBuf,
}

impl A2aServer {
    fn start(env: &TestEnv, mode: &str, v03: bool, token: Option<&str>) -> A2aServer {
        let dir = env.root.join(format!("a2a-{mode}"));
        std::fs::create_dir_all(&dir).expect("make the A2A server's directory");
        let log = dir.join("requests.jsonl");
        let err_file = dir.join("stderr.txt");
        let server = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests").join("agents").join("a2a_server.py");
        let mut cmd = Command::new("python3");
        cmd.arg(&server).args(["--mode", mode, "--log"]).arg(&log).current_dir(&dir).env_remove("A2A_TEST_TOKEN");
        if v03 {
            cmd.arg("--v03");
        }
        if let Some(token) = token {
            cmd.env("A2A_TEST_TOKEN", token);
        }
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&err_file).expect("create the A2A server's stderr file"));
        let mut child = cmd.spawn().unwrap_or_else(|err| {
            panic!(
                "cannot start {} with python3: {err} (install python3 >= 3.10 and pip install -r tests/requirements.txt)",
                server.display()
            )
        });
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = rx.recv_timeout(Duration::from_secs(60)).unwrap_or_default();
        let Ok(port) = line.trim().parse::<u16>() else {
            let _ = child.kill();
            let _ = child.wait();
            let said = std::fs::read_to_string(&err_file).unwrap_or_default();
            panic!(
                "the A2A test server did not start (got {line:?}): is a2a-sdk installed? pip install -r tests/requirements.txt\nits stderr:\n{said}"
            );
        };
        A2aServer { child, port, log }
    }

    fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn endpoint(&self) -> String {
        format!("{}/a2a", self.base())
    }

    /// Every request logged so far, oldest first.
    fn requests(&self) -> Vec<Value> {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        text.lines().map(|l| serde_json::from_str(l).expect("a logged request is JSON")).collect()
    }

    /// The JSON-RPC requests logged so far.
    fn calls(&self) -> Vec<Value> {
        self.requests().into_iter().filter(|r| r["method"] == "POST").collect()
    }

    fn methods(&self) -> Vec<String> {
        self.calls().iter().map(|r| r["body"]["method"].as_str().unwrap_or("").to_string()).collect()
    }

    fn raw_log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for A2aServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ---------------------------------------------------------------------------------------------
// Helpers

/// The org of `TestEnv::with_org` with a commit on `main`; returns main's tip.
fn org() -> (TestEnv, String) {
    let env = TestEnv::with_org();
    std::fs::write(env.repo.join("README.md"), "acme\n").expect("write README");
    env.git_ok(["add", "README.md"]);
    env.git_ok(["commit", "-q", "-m", "initial commit"]);
    let main = env.git_ok(["rev-parse", "refs/heads/main"]);
    (env, main)
}

fn log(env: &TestEnv) -> Vec<Entry> {
    parse_log(&env.clutch(["log", "--json"]).success())
}

/// `agent add ID --role ROLE --a2a URL [--runtime-opt …]`: must succeed.
#[track_caller]
fn add_a2a(env: &TestEnv, id: &str, role: &str, url: &str, opts: &[&str]) -> CommandOutput {
    let mut args = vec!["agent", "add", id, "--role", role, "--a2a", url];
    for opt in opts {
        args.extend(["--runtime-opt", opt]);
    }
    env.clutch(args).success()
}

/// A task in `core` made by bob and assigned to `agent`.
fn assigned_task(env: &TestEnv, title: &str, agent: &str) -> String {
    let task = env.new_task("bob", title, &["--project", "core"]);
    env.clutch_as("bob", ["task", "assign", &task, agent]).success();
    task
}

fn branch_tip(env: &TestEnv, branch: &str) -> Option<String> {
    let out = env.git(["rev-parse", "--verify", "--quiet", &format!("refs/heads/{branch}")]);
    (out.status == 0).then(|| out.out().to_string())
}

/// The `error:` line of a failed `run` (which first says on stderr how the run ended).
#[track_caller]
fn error_line(out: &CommandOutput) -> &str {
    out.stderr.lines().find_map(|l| l.strip_prefix("error: ")).unwrap_or_else(|| panic!("no 'error: ' line on stderr:\n{out}"))
}

/// The run id from a failed `run`'s error line (`run r-… did not succeed: …`).
#[track_caller]
fn failed_run_id(out: &CommandOutput) -> String {
    let line = error_line(out);
    let rest = line.strip_prefix("run ").unwrap_or_else(|| panic!("the error names the run: {out}"));
    rest.split_whitespace().next().expect("a run id").to_string()
}

/// After a run that did not succeed: no commit, no PR, no branch, main unchanged.
#[track_caller]
fn assert_nothing_committed(env: &TestEnv, agent: &str, task: &str, main: &str, run: &str) -> Entry {
    let log = log(env);
    let end = finished(&log, run).clone();
    assert_eq!(end.payload()["commit"], Value::Null, "nothing committed: {}", end.event);
    assert!(log.iter().all(|e| e.kind() != "PR_OPENED"), "no PR was opened");
    assert_eq!(branch_tip(env, &format!("clutch/{agent}/{task}")), None, "no task branch is left behind");
    assert_eq!(env.git_ok(["rev-parse", "refs/heads/main"]), main, "main did not move");
    let worktrees = env.repo.join(".clutch").join("worktrees");
    let left: Vec<_> = std::fs::read_dir(&worktrees).map(|d| d.flatten().map(|e| e.path()).collect()).unwrap_or_default();
    assert!(left.is_empty(), "no worktree is left: {left:?}");
    end
}

/// The one RUN_STARTED of `agent` on `task`.
#[track_caller]
fn started<'a>(log: &'a [Entry], task: &str) -> &'a Entry {
    let found: Vec<&Entry> = log.iter().filter(|e| e.kind() == "RUN_STARTED" && e.task() == Some(task)).collect();
    assert_eq!(found.len(), 1, "one RUN_STARTED on {task}");
    found[0]
}

// ---------------------------------------------------------------------------------------------
// 1. agent add --a2a

#[test]
fn a2a_agent_add_reads_the_card_and_configures_the_http_runtime() {
    let (env, _main) = org();
    let server = A2aServer::start(&env, "work", false, None);
    let out = add_a2a(&env, "jo", "junior", &server.base(), &[]);
    assert!(out.stdout.contains(CARD_NAME), "says which agent it found:\n{out}");
    assert!(out.stdout.contains(&server.endpoint()) && out.stdout.contains("A2A 1.0"), "and where and how it talks:\n{out}");
    let state = env.state();
    let jo = &state["agents"]["jo"];
    assert_eq!(jo["role"], "junior");
    assert_eq!(jo["runtime"]["runtime"], "http", "{jo}");
    assert_eq!(jo["runtime"]["settings"]["url"], server.endpoint().as_str(), "the card's JSON-RPC endpoint: {jo}");
    assert_eq!(jo["runtime"]["settings"]["protocol"], "1.0");
    assert_eq!(jo["runtime"]["settings"]["card_name"], CARD_NAME);
    env.key_file("jo");
    let card_reads: Vec<Value> =
        server.requests().into_iter().filter(|r| r["method"] == "GET" && r["path"] == "/.well-known/agent-card.json").collect();
    assert_eq!(card_reads.len(), 1, "the card was read from the well-known path: {:?}", server.requests());

    // The card's own URL works too, and --json reports the card.
    let card_url = format!("{}/.well-known/agent-card.json", server.base());
    let json = env.clutch(["agent", "add", "ann", "--role", "senior", "--a2a", &card_url, "--json"]).success().json();
    assert_eq!(json["id"], "ann");
    assert_eq!(json["card"]["name"], CARD_NAME, "{json}");
    assert_eq!(json["card"]["endpoint"], server.endpoint().as_str(), "{json}");
    assert_eq!(json["card"]["protocol"], "1.0", "{json}");
    assert_eq!(env.state()["agents"]["ann"]["runtime"]["runtime"], "http");
}

#[test]
fn a2a_bad_url_missing_or_invalid_card_is_refused_and_nothing_is_written() {
    let (env, _main) = org();
    let server = A2aServer::start(&env, "work", false, None);
    let head = env.log_head();
    // A port nobody listens on: bind one, note it, let it go.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a port").local_addr().expect("its address").port();
    let cases = [
        ("not a url".to_string(), "is not an http"),
        (format!("http://127.0.0.1:{closed}"), "cannot fetch the agent card"),
        (format!("{}/no-such-card.json", server.base()), "HTTP 404"),
        (format!("{}/bogus-card.json", server.base()), "not a valid A2A card: it has no name"),
    ];
    for (url, needle) in &cases {
        let out = env.clutch(["agent", "add", "zed", "--role", "junior", "--a2a", url]).code(1);
        assert!(out.error().contains(needle), "{url}: the error says why ({needle}):\n{out}");
        assert!(out.stderr.contains("hint: give the agent's base URL"), "{url}: a hint says what to give:\n{out}");
    }
    assert_eq!(env.log_head(), head, "nothing was recorded");
    assert!(env.state()["agents"].get("zed").is_none(), "zed was not added");
    let keys: Vec<String> = std::fs::read_dir(env.clutch_home.join("keys"))
        .expect("the keys directory")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("zed"))
        .collect();
    assert!(keys.is_empty(), "no key was made for zed: {keys:?}");
    // --runtime and --a2a do not go together.
    let out = env.clutch(["agent", "add", "zed", "--role", "junior", "--runtime", "http", "--a2a", &server.base()]).code(2);
    assert!(out.stderr.contains("cannot be used with"), "{out}");
    assert_eq!(env.log_head(), head, "nothing was recorded");
}

// ---------------------------------------------------------------------------------------------
// 2. Runs

#[test]
fn a2a_task_completes_with_the_agents_files_committed_a_pr_and_its_cost() {
    let (env, main) = org();
    let server = A2aServer::start(&env, "work", false, None);
    add_a2a(&env, "jo", "junior", &server.base(), &[]);
    let task = assigned_task(&env, "Say hello", "jo");

    let report = env.clutch(["run", &task, "--json"]).success().json();
    assert_eq!(report["agent"], "jo", "{report}");
    assert_eq!(report["status"], "succeeded", "{report}");
    assert_eq!(report["summary"], DONE, "the agent's completion message: {report}");
    let run = str_field(&report, "run").to_string();
    let commit = str_field(&report, "commit").to_string();
    let pr = str_field(&report, "pr").to_string();

    // The artifacts are the commit on clutch/jo/<task>, on top of main, signed by jo.
    let branch = format!("clutch/jo/{task}");
    assert_eq!(branch_tip(&env, &branch).as_deref(), Some(commit.as_str()));
    assert_eq!(env.git_ok(["rev-parse", &format!("{commit}^")]), main);
    assert_eq!(env.git(["show", &format!("{commit}:hello.txt")]).success().stdout, HELLO, "the raw file part");
    assert_eq!(env.git(["show", &format!("{commit}:notes/readme.md")]).success().stdout, NOTES, "the text part with a filename");
    let changed = env.git_ok(["diff-tree", "--no-commit-id", "--name-only", "-r", &main, &commit]);
    assert_eq!(changed, "hello.txt\nnotes/readme.md", "exactly the agent's files");
    let verified = env.git_verify_commit(&env.signers_file(), &commit).success();
    assert!(verified.stderr.contains("Good \"git\" signature for jo"), "{verified}");
    let state = env.state();
    assert_eq!(state["governance"]["prs"][&pr]["head"], commit.as_str());
    assert_eq!(state["governance"]["prs"][&pr]["status"], "open");

    // RUN_STARTED / RUN_FINISHED, with the cost the agent reported under clutch/cost.
    let log = log(&env);
    assert_eq!(started(&log, &task).payload()["runtime"], "http");
    let end = finished(&log, &run);
    assert_eq!(end.payload()["status"], "succeeded");
    assert_eq!(end.payload()["commit"], commit.as_str());
    assert_eq!((end.cost("input_tokens"), end.cost("output_tokens"), end.cost("usd_micros")), (1200, 80, 4200), "{}", end.event);
    assert_eq!(end.event["cost"]["source"], "provider");
    assert_eq!(state["agents"]["jo"]["spend"]["usd_micros"], 4200);
    let transcript = env.git_ok(["show", &format!("{}:files/transcript.txt", end.commit)]);
    assert!(transcript.contains("\"SendMessage\"") && transcript.contains(DONE), "the exchange is the transcript: {transcript}");

    // What the agent received: A2A 1.0, the prompt, and the task in the metadata.
    let calls = server.calls();
    let send = calls.iter().find(|c| c["body"]["method"] == "SendMessage").expect("a SendMessage");
    assert_eq!(send["headers"]["a2a-version"], "1.0", "{send}");
    let message = &send["body"]["params"]["message"];
    assert_eq!(message["role"], "ROLE_USER");
    assert_eq!(message["metadata"]["clutch/task"], task.as_str(), "{message}");
    assert_eq!(message["metadata"]["clutch/title"], "Say hello");
    assert_eq!(message["metadata"]["clutch/purpose"], "work");
    assert_eq!(message["contextId"], format!("clutch-jo-{task}").as_str());
    assert!(str_field(&message["parts"][0], "text").contains("Say hello"), "the prompt: {message}");
    assert_eq!(send["body"]["params"]["configuration"]["returnImmediately"], true);
    assert!(server.methods().iter().any(|m| m == "GetTask"), "the task was followed with GetTask: {:?}", server.methods());
    env.clutch(["verify"]).success();

    // A senior on the same agent reviews the PR: the agent's APPROVE is the verdict.
    add_a2a(&env, "rev", "senior", &server.base(), &[]);
    let reviewed = env.clutch(["run", "--review", &pr, "--agent", "rev", "--json"]).success().json();
    assert_eq!(reviewed["purpose"], "review", "{reviewed}");
    assert_eq!(reviewed["verdict"], "approve", "{reviewed}");
    assert_eq!(reviewed["commit"], Value::Null);
    let reviews = env.state()["governance"]["prs"][&pr]["reviews"].as_array().expect("reviews").clone();
    assert_eq!(reviews.len(), 1, "{reviews:?}");
    assert_eq!(
        (&reviews[0]["by"], &reviews[0]["verdict"], &reviews[0]["head"]),
        (&"rev".into(), &"approve".into(), &commit.as_str().into())
    );
    let review_send = server.calls().into_iter().rev().find(|c| c["body"]["method"] == "SendMessage").expect("the review's SendMessage");
    let meta = &review_send["body"]["params"]["message"]["metadata"];
    assert_eq!((&meta["clutch/purpose"], &meta["clutch/pr"]), (&"review".into(), &pr.as_str().into()), "{meta}");
    assert!(str_field(&review_send["body"]["params"]["message"]["parts"][0], "text").contains("APPROVE"), "how to answer is asked");
}

#[test]
fn a2a_protocol_0_3_agent_is_spoken_to_in_0_3() {
    let (env, main) = org();
    let server = A2aServer::start(&env, "work", true, None);
    let out = add_a2a(&env, "jo", "junior", &server.base(), &[]);
    assert!(out.stdout.contains("A2A 0.3"), "{out}");
    assert_eq!(env.state()["agents"]["jo"]["runtime"]["settings"]["protocol"], "0.3");
    let task = assigned_task(&env, "Say hello", "jo");
    let report = env.clutch(["run", &task, "--json"]).success().json();
    assert_eq!(report["summary"], DONE, "{report}");
    let commit = str_field(&report, "commit");
    assert_eq!(env.git(["show", &format!("{commit}:hello.txt")]).success().stdout, HELLO, "the 0.3 file part");
    assert_eq!(env.git(["show", &format!("{commit}:notes/readme.md")]).success().stdout, NOTES, "the text part's metadata filename");
    assert_eq!(env.git_ok(["rev-parse", &format!("{commit}^")]), main);
    let methods = server.methods();
    assert_eq!(methods.first().map(String::as_str), Some("message/send"), "{methods:?}");
    assert!(methods.iter().all(|m| m == "message/send" || m == "tasks/get"), "only 0.3 methods: {methods:?}");
    let end = finished(&log(&env), str_field(&report, "run")).clone();
    assert_eq!(end.cost("usd_micros"), 4200);
}

#[test]
fn a2a_failing_agent_gives_a_failed_run_with_its_reason_and_no_commit() {
    let (env, main) = org();
    let server = A2aServer::start(&env, "fail", false, None);
    add_a2a(&env, "jo", "junior", &server.base(), &[]);
    let task = assigned_task(&env, "Build it", "jo");
    let out = env.clutch(["run", &task, "--agent", "jo"]).code(1);
    assert!(error_line(&out).contains("the agent failed the task: cannot build: no compiler here"), "{out}");
    let run = failed_run_id(&out);
    let end = assert_nothing_committed(&env, "jo", &task, &main, &run);
    assert_eq!(end.payload()["status"], "failed");
    assert!(str_field(end.payload(), "summary").contains("no compiler here"), "{}", end.event);
}

#[test]
fn a2a_agent_asking_for_input_fails_the_run_and_says_so() {
    let (env, main) = org();
    let server = A2aServer::start(&env, "input", false, None);
    add_a2a(&env, "jo", "junior", &server.base(), &[]);
    let task = assigned_task(&env, "Pick a branch", "jo");
    let out = env.clutch(["run", &task, "--agent", "jo"]).code(1);
    let error = error_line(&out);
    assert!(error.contains("input-required") && error.contains("which branch?"), "{out}");
    let run = failed_run_id(&out);
    assert_eq!(assert_nothing_committed(&env, "jo", &task, &main, &run).payload()["status"], "failed");
}

#[test]
fn a2a_agent_that_never_finishes_times_out_and_its_task_is_cancelled() {
    let (env, main) = org();
    let server = A2aServer::start(&env, "hang", false, None);
    add_a2a(&env, "jo", "junior", &server.base(), &["timeout_s=2"]);
    let task = assigned_task(&env, "Never ends", "jo");
    let out = env.clutch(["run", &task, "--agent", "jo", "--json"]).code(1);
    let report: Value = serde_json::from_str(&out.stdout).unwrap_or_else(|err| panic!("the report is JSON ({err}):\n{out}"));
    assert_eq!(report["status"], "timed_out", "{report}");
    assert!(str_field(&report, "summary").contains("did not finish within 2s: cancelled it"), "{report}");
    let run = str_field(&report, "run").to_string();
    assert_eq!(assert_nothing_committed(&env, "jo", &task, &main, &run).payload()["status"], "timed_out");
    let cancels: Vec<Value> = server.calls().into_iter().filter(|c| c["body"]["method"] == "CancelTask").collect();
    assert_eq!(cancels.len(), 1, "the agent's task was cancelled: {:?}", server.methods());
    let sent = server.calls().into_iter().find(|c| c["body"]["method"] == "GetTask").expect("the task was polled");
    assert_eq!(cancels[0]["body"]["params"]["id"], sent["body"]["params"]["id"], "the task it followed is the one cancelled");
}

/// `git clutch run TASK --agent jo` in the background until `ready` holds of the server, then
/// `signal` to it; how it ended (by which signal) and its stderr.
fn interrupted_run(
    env: &TestEnv,
    server: &A2aServer,
    task: &str,
    signal: rustix::process::Signal,
    ready: impl Fn(&A2aServer) -> bool,
) -> (Option<i32>, CommandOutput) {
    let mut child = env
        .command(crate::common::CLUTCH)
        .args(["run", task, "--agent", "jo"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start git-clutch");
    let reached = poll_until(Duration::from_secs(60), || ready(server) || !matches!(child.try_wait(), Ok(None)));
    assert!(reached && ready(server), "the agent was reached: {:?}", server.methods());
    let pid = rustix::process::Pid::from_raw(child.id() as i32).expect("a pid");
    rustix::process::kill_process(pid, signal).expect("signal git-clutch");
    // The run's timeout is 120 s: ending well before it shows the signal was heard.
    poll_until(Duration::from_secs(60), || !matches!(child.try_wait(), Ok(None)));
    let Some(status) = child.try_wait().ok().flatten() else {
        let _ = child.kill();
        let _ = child.wait();
        panic!("git-clutch did not end on {signal:?} while the agent was busy");
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().expect("piped"), &mut stderr).expect("read stderr");
    use std::os::unix::process::ExitStatusExt as _;
    (status.signal(), CommandOutput { stdout: String::new(), stderr, status: status.code().unwrap_or(-1) })
}

#[test]
fn a2a_a_signal_while_the_agent_holds_the_request_ends_the_run_at_once() {
    // An agent that ignores returnImmediately and keeps SendMessage open: Ctrl-C still ends the
    // run now, not when the agent answers or the run's time is up.
    let (env, main) = org();
    let server = A2aServer::start(&env, "hold", false, None);
    add_a2a(&env, "jo", "junior", &server.base(), &["timeout_s=120"]);
    let task = assigned_task(&env, "Held", "jo");
    let (signal, out) =
        interrupted_run(&env, &server, &task, rustix::process::Signal::INT, |s| s.methods().iter().any(|m| m == "SendMessage"));
    assert_eq!(signal, Some(2), "git-clutch ended itself by SIGINT:\n{out}");
    assert!(error_line(&out).contains("interrupted by SIGINT while the agent held the request"), "{out}");
    let run = failed_run_id(&out);
    let end = assert_nothing_committed(&env, "jo", &task, &main, &run);
    assert_eq!(end.payload()["status"], "failed", "{}", end.event);
}

#[test]
fn a2a_a_signal_while_the_task_runs_cancels_it() {
    let (env, main) = org();
    let server = A2aServer::start(&env, "hang", false, None);
    add_a2a(&env, "jo", "junior", &server.base(), &["timeout_s=120"]);
    let task = assigned_task(&env, "Interrupted", "jo");
    let (signal, out) =
        interrupted_run(&env, &server, &task, rustix::process::Signal::TERM, |s| s.methods().iter().any(|m| m == "GetTask"));
    assert_eq!(signal, Some(15), "git-clutch ended itself by SIGTERM:\n{out}");
    assert!(error_line(&out).contains("interrupted by SIGTERM while the agent's task"), "{out}");
    assert!(error_line(&out).contains("clutch cancelled it"), "{out}");
    let run = failed_run_id(&out);
    assert_eq!(assert_nothing_committed(&env, "jo", &task, &main, &run).payload()["status"], "failed");
    let cancels: Vec<Value> = server.calls().into_iter().filter(|c| c["body"]["method"] == "CancelTask").collect();
    assert_eq!(cancels.len(), 1, "the agent's task was cancelled: {:?}", server.methods());
    let polled = server.calls().into_iter().find(|c| c["body"]["method"] == "GetTask").expect("the task was polled");
    assert_eq!(cancels[0]["body"]["params"]["id"], polled["body"]["params"]["id"], "the task it followed is the one cancelled");
}

#[test]
fn a2a_hostile_artifact_paths_are_refused_and_nothing_lands_outside_the_worktree() {
    let (env, main) = org();
    let server = A2aServer::start(&env, "hostile", false, None);
    add_a2a(&env, "jo", "junior", &server.base(), &[]);
    let task = assigned_task(&env, "Escape", "jo");
    let out = env.clutch(["run", &task, "--agent", "jo"]).code(1);
    assert!(error_line(&out).contains("unsafe path '../escaped.txt'"), "{out}");
    let run = failed_run_id(&out);
    assert_nothing_committed(&env, "jo", &task, &main, &run);
    let worktrees = env.repo.join(".clutch").join("worktrees");
    for place in [worktrees.join("escaped.txt"), env.repo.join(".clutch").join("escaped.txt"), env.repo.join("escaped.txt")] {
        assert!(!place.exists(), "nothing was written at {}", place.display());
    }

    // A symbolic link in the checkout that points outside it is not followed either.
    let outside = env.root.join("outside");
    std::fs::create_dir_all(&outside).expect("make a directory outside the repository");
    std::os::unix::fs::symlink(&outside, env.repo.join("out")).expect("make a symbolic link");
    env.git_ok(["add", "out"]);
    env.git_ok(["commit", "-q", "-m", "a link that leads out"]);
    let main = env.git_ok(["rev-parse", "refs/heads/main"]);
    let linker = A2aServer::start(&env, "symlink", false, None);
    add_a2a(&env, "lu", "junior", &linker.base(), &[]);
    let task = assigned_task(&env, "Escape by a link", "lu");
    let out = env.clutch(["run", &task, "--agent", "lu"]).code(1);
    assert!(error_line(&out).contains("symbolic link out"), "{out}");
    assert_nothing_committed(&env, "lu", &task, &main, &failed_run_id(&out));
    assert!(!outside.join("pwned.txt").exists(), "nothing was written through the link");
}

#[test]
fn a2a_bearer_token_from_the_vault_reaches_the_agent_and_appears_nowhere() {
    let (env, main) = org();
    let token = test_secret("a2a");
    let server = A2aServer::start(&env, "work", false, Some(&token));
    let mut outputs = Vec::new();
    outputs.push(add_a2a(&env, "jo", "junior", &server.base(), &[]));
    let task = assigned_task(&env, "Say hello with a token", "jo");

    // Without the token the agent answers 401, and the run says so.
    let out = env.clutch(["run", &task, "--agent", "jo"]).code(1);
    assert!(error_line(&out).contains("HTTP 401") && error_line(&out).contains("token=secret:NAME"), "{out}");
    assert_nothing_committed(&env, "jo", &task, &main, &failed_run_id(&out));
    assert!(server.calls().iter().all(|c| c["bearer"] == "missing"), "no token was sent: {:?}", server.calls());
    outputs.push(out);

    // With token=secret:A2A_TOKEN it gets through.
    env.unlock_vault();
    env.set_secret("A2A_TOKEN", &token);
    let endpoint = format!("url={}", server.endpoint());
    outputs.push(
        env.clutch(["agent", "config", "jo", "--runtime", "http", "--runtime-opt", &endpoint, "--runtime-opt", "token=secret:A2A_TOKEN"])
            .success(),
    );
    let before = server.calls().len();
    let out = env.clutch(["run", &task, "--agent", "jo", "--json"]).success();
    let report = out.json();
    outputs.push(out);
    assert_eq!(report["status"], "succeeded", "{report}");
    let commit = str_field(&report, "commit");
    assert_eq!(env.git(["show", &format!("{commit}:hello.txt")]).success().stdout, HELLO);
    let authed = &server.calls()[before..];
    assert!(!authed.is_empty() && authed.iter().all(|c| c["bearer"] == "ok"), "every call carried the token: {authed:?}");
    let log = log(&env);
    let starts: Vec<&Entry> = log.iter().filter(|e| e.kind() == "RUN_STARTED" && e.task() == Some(task.as_str())).collect();
    let secrets = &starts.last().expect("the second run started").payload()["secrets"];
    assert_eq!(secrets[0]["name"], "A2A_TOKEN", "RUN_STARTED names the secret it used: {secrets}");

    // In one step: agent add --a2a with the token setting.
    outputs.push(add_a2a(&env, "ty", "junior", &server.base(), &["token=secret:A2A_TOKEN"]));
    let other = assigned_task(&env, "Say hello again", "ty");
    let before = server.calls().len();
    let out = env.clutch(["run", &other, "--agent", "ty", "--json"]).success();
    assert_eq!(out.json()["status"], "succeeded", "{out}");
    outputs.push(out);
    let authed = &server.calls()[before..];
    assert!(!authed.is_empty() && authed.iter().all(|c| c["bearer"] == "ok"), "ty's calls carried the token: {authed:?}");

    // The token is in no event, file, output or request log.
    let history = env.git(["log", "-p", "refs/clutch/log"]).success();
    assert!(!history.stdout.contains(&token), "the token is not in the log's history");
    for out in &outputs {
        assert!(!out.stdout.contains(&token) && !out.stderr.contains(&token), "the token is not in any output:\n{out}");
    }
    assert!(!server.raw_log().contains(&token), "nor in what the agent was sent (beyond the Authorization header)");
    assert!(!env.git(["show", commit]).success().stdout.contains(&token), "nor in the commit");
}

#[test]
fn a2a_any_policy_is_refused_before_the_agent_is_called() {
    let (env, _main) = org();
    let server = A2aServer::start(&env, "work", false, None);
    let head = env.log_head();
    let out = env.clutch(["agent", "add", "jo", "--role", "junior", "--a2a", &server.base(), "--runtime-opt", "sandbox=read-only"]).code(1);
    assert!(out.error().contains("the http runtime cannot enforce a sandbox"), "{out}");
    assert_eq!(env.log_head(), head, "jo was not added");
    assert!(env.state()["agents"].get("jo").is_none(), "no agent jo");
    // Added without a policy, the agent cannot be given one later either.
    add_a2a(&env, "jo", "junior", &server.base(), &[]);
    let url = env.state()["agents"]["jo"]["runtime"]["settings"]["url"].as_str().expect("the card's endpoint").to_string();
    let head = env.log_head();
    let out = env
        .clutch(["agent", "config", "jo", "--runtime", "http", "--runtime-opt", &format!("url={url}"), "--runtime-opt", "network=none"])
        .code(1);
    assert!(out.error().contains("the http runtime cannot enforce"), "{out}");
    assert_eq!(env.log_head(), head, "nothing was recorded");
    assert!(server.calls().is_empty(), "the agent was never called: {:?}", server.calls());
    // A URL kept in the vault is judged when it is resolved, at the run.
    env.clutch(["agent", "config", "jo", "--runtime", "http", "--runtime-opt", "url=secret:AGENT_URL"]).success();
}
