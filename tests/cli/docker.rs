//! The docker runtime through the real binary and a real Docker engine: the one
//! `tests/docker/start.sh` starts (DOCKER_HOST) with its busybox image
//! (CLUTCH_TEST_DOCKER_IMAGE). Without them every test here fails: an engine is part of the
//! suite, never skipped.
//!
//! What a user or plain git sees is checked: the run's report, `log --json`, the commits of the
//! task branch and their files, the transcript kept with the run, and the engine's own list of
//! containers (`docker ps -a`), which must hold none of a test's runs once it is over. Tests
//! run in parallel against one engine, so each looks only at the containers labelled with its
//! own task.

use std::io::Read as _;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::common::{finished, parse_log, rfc3339, str_field, test_secret, CommandOutput, Entry, TestEnv, CLUTCH};

// ---------------------------------------------------------------------------------------------
// Helpers

/// The engine and image tests/docker/start.sh made.
struct Engine {
    host: String,
    image: String,
}

#[allow(clippy::disallowed_methods, reason = "the harness hands the suite's engine to the tests")]
fn engine() -> Engine {
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    match (var("DOCKER_HOST"), var("CLUTCH_TEST_DOCKER_IMAGE")) {
        (Some(host), Some(image)) => Engine { host, image },
        _ => panic!(
            "no Docker engine for the docker runtime tests: DOCKER_HOST and CLUTCH_TEST_DOCKER_IMAGE are not set; \
             run the suite with tests/run.sh, or `source tests/docker/start.sh` in this shell first (and `stop_docker` after)"
        ),
    }
}

fn output(out: std::process::Output) -> CommandOutput {
    CommandOutput {
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        status: out.status.code().unwrap_or(-1),
    }
}

/// `git clutch ARGS…` that can reach the engine (the harness clears the environment).
fn clutch_cmd(env: &TestEnv, engine: &Engine, args: &[&str]) -> Command {
    let mut cmd = env.command(CLUTCH);
    cmd.env("DOCKER_HOST", &engine.host).env("CLUTCH_NOW", rfc3339(env.tick())).args(args);
    cmd
}

fn clutch(env: &TestEnv, engine: &Engine, args: &[&str]) -> CommandOutput {
    output(clutch_cmd(env, engine, args).output().expect("run git-clutch"))
}

/// The docker client, at the suite's engine.
fn docker(env: &TestEnv, engine: &Engine, args: &[&str]) -> CommandOutput {
    let mut cmd = env.command("docker");
    cmd.env("DOCKER_HOST", &engine.host).args(args);
    output(cmd.output().expect("the docker client must be installed (package docker.io)"))
}

/// Ids of the containers of `task`'s runs, running or not.
fn containers_of(env: &TestEnv, engine: &Engine, task: &str, running_only: bool) -> Vec<String> {
    let task_label = format!("label=clutch.task={task}");
    let mut args = vec!["ps", "-q", "--no-trunc", "--filter", "label=clutch.run=1", "--filter", task_label.as_str()];
    if !running_only {
        args.push("-a");
    }
    let out = docker(env, engine, &args).success();
    out.stdout.lines().map(str::to_string).collect()
}

#[track_caller]
fn assert_no_container_left(env: &TestEnv, engine: &Engine, task: &str) {
    let left = containers_of(env, engine, task, false);
    assert!(left.is_empty(), "no container of {task}'s runs is left on the engine: {left:?}");
}

/// Make `agent` a docker agent on the test image running `command`, with `extra` settings.
fn docker_agent(env: &TestEnv, engine: &Engine, agent: &str, command: &str, extra: &[&str]) {
    let image = format!("image={}", engine.image);
    let command = format!("command={command}");
    let mut args = vec!["agent", "config", agent, "--runtime", "docker", "--runtime-opt", &image, "--runtime-opt", &command];
    for opt in extra {
        args.extend(["--runtime-opt", opt]);
    }
    env.clutch(args).success();
}

fn org() -> TestEnv {
    let env = TestEnv::with_org();
    std::fs::write(env.repo.join("README.md"), "acme\n").expect("write README");
    env.git_ok(["add", "README.md"]);
    env.git_ok(["commit", "-q", "-m", "initial commit"]);
    env
}

/// A task in `core` made by bob (senior) and assigned to `agent`.
fn assigned_task(env: &TestEnv, title: &str, agent: &str) -> String {
    let task = env.new_task("bob", title, &["--project", "core"]);
    env.clutch_as("bob", ["task", "assign", &task, agent]).success();
    task
}

fn log(env: &TestEnv) -> Vec<Entry> {
    parse_log(&env.clutch(["log", "--json"]).success())
}

fn of_task<'a>(log: &'a [Entry], kind: &str, task: &str) -> Vec<&'a Entry> {
    log.iter().filter(|e| e.kind() == kind && e.task() == Some(task)).collect()
}

/// The error line (`error: …`) of a command's stderr.
#[track_caller]
fn error_line(out: &CommandOutput) -> &str {
    out.stderr.lines().find_map(|l| l.strip_prefix("error: ")).unwrap_or_else(|| panic!("no 'error: ' line on stderr:\n{out}"))
}

/// The run id a failed `run` names in its error (`run r-… did not succeed: …`).
#[track_caller]
fn failed_run_id(out: &CommandOutput) -> String {
    let line = error_line(out);
    let rest = line.strip_prefix("run ").unwrap_or_else(|| panic!("the error names the run: {line}"));
    rest.split_whitespace().next().expect("a run id").to_string()
}

/// The transcript kept with a run (the `files/transcript.txt` of its RUN_FINISHED commit).
fn transcript(env: &TestEnv, end: &Entry) -> String {
    env.git_ok(["show", &format!("{}:files/transcript.txt", end.commit)])
}

/// The host's own address on the engine's default bridge: where a container with a network
/// finds the host.
///
/// Engine 20.10 leaves `Gateway` out of the default bridge's IPAM config on the start that
/// creates the bridge (a fresh data directory, as on a new machine), and fills it in on later
/// starts. Its default IPAM always gives the bridge the first host address of the subnet, so
/// that is the gateway when none is named.
fn bridge_gateway(env: &TestEnv, engine: &Engine) -> std::net::IpAddr {
    let format = "{{range .IPAM.Config}}{{.Subnet}} {{.Gateway}}{{println}}{{end}}";
    let out = docker(env, engine, &["network", "inspect", "bridge", "--format", format]).success();
    let line = out.out().lines().find(|l| l.contains('.')).unwrap_or_else(|| panic!("the bridge network has no IPv4 subnet:\n{out}"));
    let mut fields = line.split_whitespace();
    let subnet = fields.next().unwrap_or_else(|| panic!("no subnet in {line:?}"));
    if let Some(gateway) = fields.next() {
        return gateway.parse().unwrap_or_else(|err| panic!("gateway {gateway:?} is not an address: {err}"));
    }
    let network = subnet.split('/').next().unwrap_or(subnet);
    let network: std::net::Ipv4Addr = network.parse().unwrap_or_else(|err| panic!("subnet {subnet:?} is not IPv4: {err}"));
    std::net::IpAddr::V4(std::net::Ipv4Addr::from(u32::from(network) + 1))
}

/// A TCP listener of the test's own, answering each connection by reading one line and
/// closing it (so the client sees the end and exits); it remembers the lines it heard.
struct Listener {
    port: u16,
    heard: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl Listener {
    fn start(address: std::net::IpAddr) -> Listener {
        let socket = std::net::TcpListener::bind((address, 0)).expect("listen on the bridge address");
        socket.set_nonblocking(true).expect("a non-blocking listener");
        let port = socket.local_addr().expect("local address").port();
        let heard = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (log, done) = (heard.clone(), stop.clone());
        std::thread::spawn(move || {
            while !done.load(std::sync::atomic::Ordering::SeqCst) {
                match socket.accept() {
                    Ok((conn, _)) => {
                        let _ = conn.set_nonblocking(false);
                        let _ = conn.set_read_timeout(Some(Duration::from_secs(10)));
                        let mut line = String::new();
                        let mut reader = std::io::BufReader::new(conn);
                        let _ = std::io::BufRead::read_line(&mut reader, &mut line);
                        // Heard before the close lets the client, and so its run, finish.
                        log.lock().expect("heard").push(line.trim().to_string());
                        drop(reader);
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(20)),
                }
            }
        });
        Listener { port, heard, stop }
    }

    fn heard(&self) -> Vec<String> {
        self.heard.lock().expect("heard").clone()
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

/// A run in the background (to be interrupted); killed when dropped if it still runs.
struct Background(Child);

impl Drop for Background {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// Poll (bounded) until `ready` holds; panics with `what` otherwise.
#[track_caller]
fn wait_for(what: &str, ready: impl FnMut() -> bool) {
    assert!(crate::common::poll_until(Duration::from_secs(60), ready), "gave up waiting (60s) for {what}");
}

// ---------------------------------------------------------------------------------------------
// Tests

#[test]
fn docker_task_runs_in_a_container_and_its_file_is_committed_on_the_task_branch() {
    let engine = engine();
    let env = org();
    let main = env.git_ok(["rev-parse", "main"]);
    let host_uid = output(env.command("id").arg("-u").output().expect("run id")).success().out().to_string();
    // The job arrives on stdin; the file records where and as whom the command ran.
    let command = r#"cat > job.json
mkdir -p notes
printf 'for %s (%s) in %s as uid %s\n' "$CLUTCH_TASK_ID" "$CLUTCH_PURPOSE" "$(pwd)" "$(id -u)" > "notes/$CLUTCH_TASK_ID.txt"
echo "working on $CLUTCH_TASK_TITLE"
v1=/sys/fs/cgroup/memory
if [ -f $v1/memory.limit_in_bytes ]; then cat $v1/memory.limit_in_bytes; cat $v1/memory.memsw.limit_in_bytes 2>/dev/null || echo 'no swap accounting'; else cat /sys/fs/cgroup/memory.max; echo "swap $(cat /sys/fs/cgroup/memory.swap.max)"; fi > limits.txt
echo 'a note on stderr' >&2
echo '{"summary": "wrote the notes in a container", "cost": {"input_tokens": 10, "usd_micros": 1500}}'"#;
    docker_agent(&env, &engine, "kim", command, &["cpus=0.5", "memory_mb=64", "timeout_s=120"]);
    let task = assigned_task(&env, "Take notes in a box", "kim");

    let report = clutch(&env, &engine, &["run", &task, "--json"]).success().json();
    assert_eq!(report["status"], "succeeded", "{report}");
    assert_eq!(report["summary"], "wrote the notes in a container", "the reply's summary: {report}");
    let commit = str_field(&report, "commit").to_string();
    let run = str_field(&report, "run").to_string();

    let branch = format!("clutch/kim/{task}");
    assert_eq!(env.git_ok(["rev-parse", &format!("refs/heads/{branch}")]), commit, "{branch} holds the run's commit");
    assert_eq!(env.git_ok(["rev-parse", &format!("{commit}^")]), main, "the commit starts from main");
    assert_eq!(
        env.git_ok(["show", &format!("{commit}:notes/{task}.txt")]),
        format!("for {task} (work) in /workspace as uid {host_uid}"),
        "the command ran in /workspace as the invoking user"
    );
    // memory_mb=64 is the container's whole memory: with swap, cgroup v1 counts memory+swap
    // (memsw), cgroup v2 the swap alone; a v1 kernel without swap accounting shows only the
    // memory.
    let limits = env.git_ok(["show", &format!("{commit}:limits.txt")]);
    assert!(
        ["67108864\n67108864", "67108864\nswap 0", "67108864\nno swap accounting"].contains(&limits.as_str()),
        "the container's memory limit is 64 MiB with no swap on top: {limits:?}"
    );
    let job: Value = serde_json::from_str(&env.git_ok(["show", &format!("{commit}:job.json")])).expect("the job as JSON on stdin");
    assert_eq!((&job["agent"], &job["task"]["id"], &job["purpose"]), (&"kim".into(), &task.as_str().into(), &"work".into()));

    let log = log(&env);
    let started = of_task(&log, "RUN_STARTED", &task);
    assert_eq!(started.len(), 1, "one RUN_STARTED for {task}");
    assert_eq!(started[0].payload()["runtime"], "docker");
    let end = finished(&log, &run);
    assert_eq!(end.payload()["status"], "succeeded", "{}", end.event);
    assert_eq!(end.payload()["exit_code"], 0);
    assert_eq!(end.payload()["commit"], commit.as_str());
    assert_eq!(end.cost("usd_micros"), 1500, "the reply's cost is recorded");
    let kept = transcript(&env, end);
    assert!(kept.contains("working on Take notes in a box") && kept.contains("a note on stderr"), "stdout and stderr are kept: {kept}");
    assert_no_container_left(&env, &engine, &task);
    env.clutch(["verify"]).success();
}

#[test]
fn docker_run_ends_when_the_container_exits_not_when_its_output_closes() {
    let engine = engine();
    let env = org();
    // The program closes stdout and stderr first and writes its file after: only a runtime
    // that waits for the exit (not for the end of the output) sees the file.
    docker_agent(&env, &engine, "kim", "echo early; exec >&- 2>&-; sleep 2; echo late > late.txt", &[]);
    let task = assigned_task(&env, "Finish quietly", "kim");
    let report = clutch(&env, &engine, &["run", &task, "--json"]).success().json();
    assert_eq!(report["summary"], "early", "the last line it printed: {report}");
    let commit = str_field(&report, "commit");
    assert_eq!(env.git_ok(["show", &format!("{commit}:late.txt")]), "late", "the file written after the output closed is committed");
    assert_no_container_left(&env, &engine, &task);
}

#[test]
fn docker_read_only_sandbox_mounts_the_worktree_read_only() {
    let engine = engine();
    let env = org();
    let main = env.git_ok(["rev-parse", "main"]);
    docker_agent(&env, &engine, "kim", "cat README.md && echo changed > README.md", &["sandbox=read-only"]);
    let task = assigned_task(&env, "Look, do not touch", "kim");
    let out = clutch(&env, &engine, &["run", &task]).code(1);
    let run = failed_run_id(&out);
    assert!(error_line(&out).contains("exit 1") && error_line(&out).contains("Read-only file system"), "the write was refused:\n{out}");
    let log = log(&env);
    let end = finished(&log, &run);
    assert_eq!(end.payload()["status"], "failed");
    assert!(transcript(&env, end).contains("acme"), "the worktree was there to read");
    assert_eq!(env.git_ok(["rev-parse", "main"]), main);
    assert_no_container_left(&env, &engine, &task);
}

#[test]
fn docker_network_is_none_unless_the_policy_grants_it() {
    let engine = engine();
    let env = org();
    // A listener of the test's own on the host's bridge address: the same probe from two
    // containers that differ only in the network setting. With network=any it must get
    // through (so the target is reachable from a container at all); with the default, not.
    let gateway = bridge_gateway(&env, &engine);
    let listener = Listener::start(gateway);
    let port = listener.port;
    let nonce = format!("nonce-{}-{port}", std::process::id());
    let probe = format!(
        "if echo {nonce} | nc {gateway} {port}; then echo connected > net.txt; else echo \"no connection (nc exit $?)\" > net.txt; fi; cat net.txt"
    );
    docker_agent(&env, &engine, "kim", &probe, &["timeout_s=60"]);
    docker_agent(&env, &engine, "jill", &probe, &["network=any", "timeout_s=60"]);

    let open = assigned_task(&env, "Reach out", "jill");
    let report = clutch(&env, &engine, &["run", &open, "--json"]).success().json();
    let commit = str_field(&report, "commit");
    assert_eq!(env.git_ok(["show", &format!("{commit}:net.txt")]), "connected", "network=any reaches the host: {report}");
    assert_eq!(listener.heard(), vec![nonce.clone()], "the listener heard this test's container, once");

    let closed = assigned_task(&env, "Stay home", "kim");
    let report = clutch(&env, &engine, &["run", &closed, "--json"]).success().json();
    let commit = str_field(&report, "commit");
    let said = env.git_ok(["show", &format!("{commit}:net.txt")]);
    assert!(said.starts_with("no connection"), "with network none the same probe cannot connect: {said}");
    assert_eq!(listener.heard(), vec![nonce], "the network=none container never reached the listener");
    let log = log(&env);
    let kept = transcript(&env, finished(&log, str_field(&report, "run")));
    assert!(kept.contains("unreachable") || kept.contains("can't connect"), "nc says why it could not connect: {kept}");
    assert_no_container_left(&env, &engine, &open);
    assert_no_container_left(&env, &engine, &closed);
}

#[test]
fn docker_overrunning_container_is_killed_removed_and_recorded_as_timed_out() {
    let engine = engine();
    let env = org();
    let main = env.git_ok(["rev-parse", "main"]);
    docker_agent(&env, &engine, "kim", "echo started; echo half > half.txt; sleep 300", &["timeout_s=2"]);
    let task = assigned_task(&env, "Take forever", "kim");
    let out = clutch(&env, &engine, &["run", &task]).code(1);
    let run = failed_run_id(&out);
    assert!(error_line(&out).contains("killed after 2s"), "the error says the run was killed at the timeout:\n{out}");
    let log = log(&env);
    let end = finished(&log, &run);
    assert_eq!(end.payload()["status"], "timed_out", "{}", end.event);
    assert_eq!(end.payload()["commit"], Value::Null, "a timed-out run commits nothing");
    assert!(transcript(&env, end).contains("started"), "what it printed before the kill is kept");
    assert_eq!(env.state()["runs"][&run]["status"], "timed_out");
    assert_eq!(env.git_ok(["rev-parse", "main"]), main);
    assert_no_container_left(&env, &engine, &task);
}

#[test]
fn docker_unenforceable_policy_missing_image_or_engine_are_refused_before_anything_runs() {
    let engine = engine();
    let env = org();
    let ran = env.root.join("ran");
    std::fs::create_dir_all(&ran).expect("make a marker directory");
    let marker = format!("touch {}/$CLUTCH_TASK_ID", ran.display());
    // A policy the runtime cannot enforce anywhere is refused when the definition is written.
    for (agent, extra, needle) in [
        ("kim", "network=example.com", "cannot enforce a host allowlist"),
        ("jill", "tool_allowlist=Read,Edit", "cannot enforce a tool allowlist"),
    ] {
        let head = env.log_head();
        let image = format!("image={}", engine.image);
        let out =
            clutch(&env, &engine, &["agent", "config", agent, "--runtime", "docker", "--runtime-opt", &image, "--runtime-opt", extra]);
        let out = out.code(1);
        assert!(out.error().contains("would refuse every run") && out.error().contains(needle), "{needle}: {out}");
        assert_eq!(env.log_head(), head, "{needle}: nothing was recorded");
    }
    // What only the engine at hand lacks is refused when a run starts, and recorded.
    let cases: Vec<(&str, Vec<String>, Option<&str>, &str)> = vec![
        ("kim", vec!["image=clutch-test/not-there:0".into()], None, "image 'clutch-test/not-there:0' is not on the Docker engine"),
        (
            "jill",
            vec![],
            Some("unix:///nonexistent/docker.sock"),
            "cannot reach the Docker engine at DOCKER_HOST=unix:///nonexistent/docker.sock",
        ),
        ("kim", vec![], Some("tcp://127.0.0.1:2375"), "speaks only to a unix socket"),
    ];
    for (agent, extra, host, needle) in cases {
        let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
        // An image= of the case's own comes after the test image's, and wins.
        docker_agent(&env, &engine, agent, &marker, &extra);
        let task = assigned_task(&env, &format!("Refused: {needle}"), agent);
        let mut cmd = clutch_cmd(&env, &engine, &["run", &task]);
        if let Some(host) = host {
            cmd.env("DOCKER_HOST", host);
        }
        let out = output(cmd.output().expect("run git-clutch")).code(1);
        let error = out.error();
        assert!(error.starts_with("run refused: ") && error.contains(needle), "{needle}: the refusal says why:\n{out}");
        let log = log(&env);
        assert!(of_task(&log, "RUN_STARTED", &task).is_empty(), "{needle}: no run started");
        let refused = of_task(&log, "RUN_REFUSED", &task);
        assert_eq!(refused.len(), 1, "{needle}: the refusal is recorded");
        assert!(str_field(refused[0].payload(), "reason").contains(needle), "{needle}: {}", refused[0].event);
        assert!(!ran.join(&task).exists(), "{needle}: the command never ran");
        assert_no_container_left(&env, &engine, &task);
    }
}

#[test]
fn docker_secret_reaches_the_container_env_but_never_the_log_or_transcript() {
    let engine = engine();
    let env = org();
    env.unlock_vault();
    let secret = test_secret("docker");
    env.set_secret("DOCKER_TOKEN", &secret);
    let command = r#"printf %s "$TOKEN" | sha256sum | cut -d' ' -f1 > token.sha256
printf %s "$TOKEN" | wc -c | tr -d ' ' > token.len
echo "token is $TOKEN"
echo "and on stderr: $TOKEN" >&2"#;
    docker_agent(&env, &engine, "kim", command, &["env.TOKEN=secret:DOCKER_TOKEN"]);
    let task = assigned_task(&env, "Use the token", "kim");

    let out = clutch(&env, &engine, &["run", &task, "--json"]);
    assert!(!out.stdout.contains(&secret) && !out.stderr.contains(&secret), "the secret is not in git-clutch's output");
    let report = out.success().json();
    let commit = str_field(&report, "commit").to_string();
    let digest: String = Sha256::digest(secret.as_bytes()).iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(env.git_ok(["show", &format!("{commit}:token.sha256")]), digest, "the container saw the secret's value");
    assert_eq!(env.git_ok(["show", &format!("{commit}:token.len")]), secret.len().to_string());

    let log = log(&env);
    let end = finished(&log, str_field(&report, "run"));
    let kept = transcript(&env, end);
    assert!(!kept.contains(&secret), "the transcript holds no secret value");
    assert!(
        kept.contains("token is [secret:DOCKER_TOKEN]") && kept.contains("and on stderr: [secret:DOCKER_TOKEN]"),
        "the value is replaced by the secret's name in stdout and stderr: {kept}"
    );
    let started = of_task(&log, "RUN_STARTED", &task);
    assert_eq!(started[0].payload()["secrets"][0]["name"], "DOCKER_TOKEN", "RUN_STARTED names the secret: {}", started[0].event);
    for args in [vec!["log", "-p", "refs/clutch/log"], vec!["log", "-p", "--all"]] {
        let text = env.git(&args).success().stdout;
        assert!(!text.contains(&secret), "`git {}` holds no secret value", args.join(" "));
    }
    assert_no_container_left(&env, &engine, &task);
}

#[test]
fn docker_interrupted_run_removes_its_container_and_is_recorded() {
    let engine = engine();
    let env = org();
    docker_agent(&env, &engine, "kim", "echo started; sleep 300", &[]);
    use rustix::process::Signal;
    for (signal, name, code) in [(Signal::INT, "SIGINT", 130), (Signal::TERM, "SIGTERM", 143), (Signal::HUP, "SIGHUP", 129)] {
        let task = assigned_task(&env, &format!("Be interrupted by {name}"), "kim");
        let mut cmd = clutch_cmd(&env, &engine, &["run", &task]);
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = Background(cmd.spawn().expect("start git-clutch"));
        wait_for(&format!("the container of {task} to run"), || !containers_of(&env, &engine, &task, true).is_empty());
        let pid = rustix::process::Pid::from_raw(child.0.id() as i32).expect("a pid");
        rustix::process::kill_process(pid, signal).expect("signal git-clutch");
        wait_for("git-clutch to exit", || matches!(child.0.try_wait(), Ok(Some(_))));
        let Some(process) = child.0.try_wait().ok().flatten() else { unreachable!("it exited") };
        let mut stderr = String::new();
        child.0.stderr.take().expect("piped stderr").read_to_string(&mut stderr).expect("read stderr");
        use std::os::unix::process::ExitStatusExt as _;
        assert_eq!(process.signal(), Some(code - 128), "{name}: git-clutch ended itself by the signal");
        let out = CommandOutput { stdout: String::new(), stderr, status: code };
        assert!(error_line(&out).contains(&format!("interrupted by {name}")), "{name}: the error says so:\n{out}");
        assert_no_container_left(&env, &engine, &task);
        let run = failed_run_id(&out);
        let log = log(&env);
        let end = finished(&log, &run);
        assert_eq!(end.payload()["status"], "failed", "{}", end.event);
        assert!(str_field(end.payload(), "summary").contains("the container was removed"), "{}", end.event);
    }
}

#[test]
fn docker_review_run_sees_the_pr_read_only_and_its_verdict_is_recorded() {
    let engine = engine();
    let env = org();
    docker_agent(&env, &engine, "kim", "echo 'the change' > change.txt", &[]);
    let task = assigned_task(&env, "Change something", "kim");
    let worked = clutch(&env, &engine, &["run", &task, "--json"]).success().json();
    let pr = str_field(&worked, "pr").to_string();
    let head = str_field(&worked, "commit").to_string();

    // The reviewer approves only what it could read but not write, and says what it was told.
    let review = r#"if touch probe.txt 2>/dev/null; then verdict=request_changes; else verdict=approve; fi
echo "{\"verdict\": \"$verdict\", \"message\": \"$CLUTCH_PURPOSE of $CLUTCH_PR: $(cat change.txt)\"}""#;
    docker_agent(&env, &engine, "bob", review, &["sandbox=full-access"]);
    let reviewed = clutch(&env, &engine, &["--as", "bob", "run", "--review", &pr, "--json"]).success().json();
    assert_eq!(reviewed["verdict"], "approve", "the checkout was read-only even with sandbox=full-access: {reviewed}");
    let state = env.state();
    let reviews = state["governance"]["prs"][&pr]["reviews"].as_array().expect("reviews").clone();
    assert_eq!(reviews.len(), 1, "{reviews:?}");
    assert_eq!((&reviews[0]["by"], &reviews[0]["head"]), (&"bob".into(), &head.as_str().into()));
    assert_eq!(reviews[0]["body"], format!("review of {pr}: the change"), "{reviews:?}");
    assert_no_container_left(&env, &engine, &task);
}
