//! A container per run, through the Docker Engine API (bollard, over the engine's unix socket).
//!
//! The container holds only what the run needs: the worktree bind-mounted at `/workspace`
//! (read-only for a review or `sandbox=read-only`), the job's variables, no network unless the
//! policy grants `network=any`, no capabilities, the invoking user's uid:gid (so what it writes
//! in the worktree is not root's), and the limits of the agent's settings. The job contract is
//! the subprocess runtime's: the job as JSON on stdin, `CLUTCH_TASK_ID`, `CLUTCH_TASK_TITLE`,
//! `CLUTCH_PURPOSE`, `CLUTCH_PR` in the environment, and an optional JSON reply as the last line
//! of stdout (see [`super::subprocess::parse_reply`]).
//!
//! Settings: `image` (required; never pulled, it must already be on the engine), `command`
//! (run with `sh -c`; default: the image's own entrypoint and command), `timeout_s` (600),
//! `cpus`, `memory_mb`, `pids_limit` (256).
//!
//! Every container is labelled `clutch.run=1` and removed whatever happens: after it exits,
//! after it is killed at the timeout, and when git-clutch is interrupted (SIGINT, SIGTERM or SIGHUP)
//! while it runs. The engine writes none of its output to disk (log driver `none`): the
//! output comes back over the attach stream only, redacted before it is kept as the transcript.
//!
//! The engine is `DOCKER_HOST` (`unix://` only) or `/var/run/docker.sock`; the API version is
//! negotiated, so an Engine 20.10 (API 1.41) works.

use std::collections::HashMap;
use std::future::Future;
use std::pin::pin;
use std::time::Duration;

use bollard::container::LogOutput;
use bollard::models::{ContainerCreateBody, HostConfig, HostConfigLogConfig, Mount, MountType};
use bollard::query_parameters::{
    AttachContainerOptionsBuilder, CreateContainerOptionsBuilder, KillContainerOptionsBuilder, RemoveContainerOptionsBuilder,
};
use futures_util::future::{select, Either};
use futures_util::StreamExt;
use tokio::io::AsyncWriteExt;

use super::policy::{Network, Policy, Sandbox};
use super::subprocess::parse_reply;
use super::{Job, Outcome, Runtime, Tail, Unavailable};
use crate::event::{RunPurpose, RunStatus};

#[derive(Debug)]
pub struct Docker;

/// Where the worktree appears inside the container.
pub const WORKSPACE: &str = "/workspace";

/// The label every container of a run carries, so leftovers can be found.
pub const RUN_LABEL: &str = "clutch.run";

const DEFAULT_SOCKET: &str = "/var/run/docker.sock";
const DEFAULT_TIMEOUT_S: u64 = 600;
const DEFAULT_PIDS_LIMIT: i64 = 256;
/// Docker refuses memory limits below 6 MiB.
const MIN_MEMORY_MB: u64 = 6;
/// How much of each output stream is kept in memory (the log keeps far less).
const KEEP_BYTES: usize = 1 << 20;

/// The settings of a run, checked.
#[derive(Debug)]
struct Plan {
    image: String,
    command: Option<String>,
    timeout: Duration,
    nano_cpus: Option<i64>,
    memory_bytes: Option<i64>,
    pids_limit: i64,
    network: &'static str,
    read_only: bool,
}

impl Plan {
    fn of(job: &Job) -> Result<Plan, Unavailable> {
        let policy = &job.policy;
        if policy.tool_allowlist.is_some() {
            return Err(Policy::cannot("docker", "a tool allowlist (a container runs whatever its image holds)"));
        }
        let network = match &policy.network {
            None | Some(Network::None) => "none",
            Some(Network::Any) => "bridge",
            Some(Network::Hosts(_)) => {
                return Err(Policy::cannot("docker", "a host allowlist (a container has no network or all of it: use network=none or any)"))
            }
        };
        let settings = &job.settings;
        let image = settings.get("image").map(|i| i.trim()).filter(|i| !i.is_empty()).ok_or_else(|| {
            Unavailable("the docker runtime needs an image setting (--runtime-opt image=NAME:TAG, an image already on the engine)".into())
        })?;
        let command = settings.get("command").filter(|c| !c.trim().is_empty()).cloned();
        let number = |key: &str, what: &str| -> Result<Option<f64>, Unavailable> {
            match settings.get(key).map(|v| v.trim()) {
                None => Ok(None),
                Some(text) => match text.parse::<f64>() {
                    Ok(n) if n.is_finite() && n > 0.0 => Ok(Some(n)),
                    _ => Err(Unavailable(format!("the docker runtime's setting {key}='{text}' is not {what}"))),
                },
            }
        };
        let whole = |key: &str| -> Result<Option<u64>, Unavailable> {
            match settings.get(key).map(|v| v.trim()) {
                None => Ok(None),
                Some(text) => match text.parse::<u64>() {
                    Ok(n) if n > 0 && n <= i64::MAX as u64 / (1 << 20) => Ok(Some(n)),
                    _ => Err(Unavailable(format!("the docker runtime's setting {key}='{text}' is not a positive whole number"))),
                },
            }
        };
        let timeout = super::timeout(settings, DEFAULT_TIMEOUT_S)?;
        let nano_cpus = match number("cpus", "a positive number of CPUs (like 0.5 or 2)")? {
            Some(cpus) if cpus * 1e9 >= 1.0 && cpus <= 1e6 => Some((cpus * 1e9) as i64),
            Some(_) => return Err(Unavailable("the docker runtime's setting cpus is out of range (0.000000001 to 1000000)".into())),
            None => None,
        };
        let memory_bytes = match whole("memory_mb")? {
            Some(mb) if mb < MIN_MEMORY_MB => {
                return Err(Unavailable(format!(
                    "the docker runtime's setting memory_mb={mb} is below Docker's minimum of {MIN_MEMORY_MB}"
                )))
            }
            Some(mb) => Some((mb << 20) as i64),
            None => None,
        };
        let pids_limit = whole("pids_limit")?.map(|n| n as i64).unwrap_or(DEFAULT_PIDS_LIMIT);
        // A container is stricter than any sandbox: only the worktree is shared with the host.
        let read_only = job.purpose == RunPurpose::Review || policy.sandbox == Some(Sandbox::ReadOnly);
        Ok(Plan { image: image.to_string(), command, timeout, nano_cpus, memory_bytes, pids_limit, network, read_only })
    }

    /// The container's whole definition.
    fn container(&self, job: &Job) -> ContainerCreateBody {
        let purpose = if job.purpose == RunPurpose::Work { "work" } else { "review" };
        let mut env: Vec<(String, String)> = vec![
            ("CLUTCH_TASK_ID".into(), job.task.id.clone()),
            ("CLUTCH_TASK_TITLE".into(), job.task.title.clone()),
            ("CLUTCH_PURPOSE".into(), purpose.into()),
            ("CLUTCH_PR".into(), job.pr.clone().unwrap_or_default()),
        ];
        for (name, value) in &job.env {
            env.retain(|(n, _)| n != name);
            env.push((name.clone(), value.clone()));
        }
        let labels = HashMap::from([
            (RUN_LABEL.to_string(), "1".to_string()),
            ("clutch.agent".to_string(), job.agent.clone()),
            ("clutch.task".to_string(), job.task.id.clone()),
            ("clutch.purpose".to_string(), purpose.to_string()),
        ]);
        let user = format!("{}:{}", rustix::process::getuid().as_raw(), rustix::process::getgid().as_raw());
        ContainerCreateBody {
            image: Some(self.image.clone()),
            entrypoint: self.command.as_ref().map(|c| vec!["sh".to_string(), "-c".to_string(), c.clone()]),
            env: Some(env.into_iter().map(|(n, v)| format!("{n}={v}")).collect()),
            working_dir: Some(WORKSPACE.into()),
            user: Some(user),
            labels: Some(labels),
            attach_stdin: Some(true),
            attach_stdout: Some(true),
            attach_stderr: Some(true),
            open_stdin: Some(true),
            stdin_once: Some(true),
            tty: Some(false),
            host_config: Some(HostConfig {
                mounts: Some(vec![Mount {
                    target: Some(WORKSPACE.into()),
                    source: Some(job.workdir.display().to_string()),
                    typ: Some(MountType::BIND),
                    read_only: Some(self.read_only),
                    ..Default::default()
                }]),
                network_mode: Some(self.network.into()),
                nano_cpus: self.nano_cpus,
                memory: self.memory_bytes,
                // Equal to the memory: no swap on top of the limit.
                memory_swap: self.memory_bytes,
                pids_limit: Some(self.pids_limit),
                cap_drop: Some(vec!["ALL".into()]),
                security_opt: Some(vec!["no-new-privileges".into()]),
                // The output reaches clutch over the attach stream; nothing (no secret an agent
                // printed) is written to the engine's disk.
                log_config: Some(HostConfigLogConfig { typ: Some("none".into()), config: None }),
                ..Default::default()
            }),
            ..Default::default()
        }
    }
}

/// The engine's socket: `DOCKER_HOST` (unix:// only) or the default.
fn engine_socket() -> Result<(String, String), Unavailable> {
    match crate::env::docker_host() {
        None => Ok((DEFAULT_SOCKET.to_string(), format!("{DEFAULT_SOCKET} (DOCKER_HOST is not set)"))),
        Some(host) => match host.strip_prefix("unix://") {
            Some(path) if !path.is_empty() => Ok((path.to_string(), format!("DOCKER_HOST={host}"))),
            _ => {
                let scheme = host.split("://").next().unwrap_or("");
                Err(Unavailable(format!(
                    "the docker runtime speaks only to a unix socket, and DOCKER_HOST is {scheme}://…: set DOCKER_HOST=unix:///path/to/docker.sock"
                )))
            }
        },
    }
}

/// A connection to the engine, at the API version both sides speak.
async fn connect() -> Result<bollard::Docker, Unavailable> {
    let (socket, described) = engine_socket()?;
    let unreachable = |why: String| {
        Unavailable(format!(
            "cannot reach the Docker engine at {described}: {why}; start dockerd, or point DOCKER_HOST at a running engine (unix:///path/to/docker.sock)"
        ))
    };
    let docker =
        bollard::Docker::connect_with_unix(&socket, 120, bollard::API_DEFAULT_VERSION).map_err(|err| unreachable(err.to_string()))?;
    docker.negotiate_version().await.map_err(|err| unreachable(err.to_string()))
}

fn tokio_runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread().enable_io().enable_time().build()
}

fn is_not_found(err: &bollard::errors::Error) -> bool {
    matches!(err, bollard::errors::Error::DockerResponseServerError { status_code: 404, .. })
}

/// What the container printed.
struct Output<'a> {
    stdout: Tail<'a>,
    stderr: Tail<'a>,
    all: Tail<'a>,
}

/// How the container's run ended.
enum Ending {
    Exited { code: i64, out_of_memory: bool },
    TimedOut,
    Interrupted(&'static str),
    Broken(String),
}

/// The signal that interrupts the run (see [`crate::interrupt`]), once it comes.
async fn interrupt() -> &'static str {
    loop {
        if let Some(signal) = crate::interrupt::interrupted() {
            return signal.name;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Attach, start, feed the job, collect the output and wait for the exit.
/// `output` gets stdout, stderr and both in the order they came.
async fn drive(docker: &bollard::Docker, id: &str, input: Vec<u8>, output: &mut Output<'_>) -> Ending {
    let options = AttachContainerOptionsBuilder::new().stdin(true).stdout(true).stderr(true).stream(true).build();
    let attached = match docker.attach_container(id, Some(options)).await {
        Ok(attached) => attached,
        Err(err) => return Ending::Broken(format!("cannot attach to the container: {err}")),
    };
    if let Err(err) = docker.start_container(id, None).await {
        return Ending::Broken(format!("the container did not start: {err}"));
    }
    let bollard::container::AttachContainerResults { output: mut stream, input: mut writer } = attached;
    // A program that does not read its stdin must not stop the output from being read.
    let feed = async move {
        let _ = writer.write_all(&input).await;
        let _ = writer.shutdown().await;
    };
    let collect = async {
        while let Some(Ok(item)) = stream.next().await {
            match item {
                LogOutput::StdOut { message } | LogOutput::Console { message } => {
                    output.stdout.push(&message);
                    output.all.push(&message);
                }
                LogOutput::StdErr { message } => {
                    output.stderr.push(&message);
                    output.all.push(&message);
                }
                LogOutput::StdIn { .. } => {}
            }
        }
    };
    futures_util::future::join(feed, collect).await;
    // The streams close when the program closes them, which may be before it exits: wait for
    // the exit itself, and trust only the state the engine reports once it is not running.
    loop {
        let _ = docker.wait_container(id, None).next().await;
        match docker.inspect_container(id, None).await {
            Ok(inspected) => {
                let state = inspected.state.unwrap_or_default();
                if state.running != Some(true) {
                    return Ending::Exited { code: state.exit_code.unwrap_or(-1), out_of_memory: state.oom_killed.unwrap_or(false) };
                }
            }
            Err(err) => return Ending::Broken(format!("cannot read the container's exit status: {err}")),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Run `work` until it ends, the time is up, or a signal comes.
async fn bounded(work: impl Future<Output = Ending>, timeout: Duration) -> Ending {
    let stop = async {
        match select(pin!(tokio::time::sleep(timeout)), pin!(interrupt())).await {
            Either::Left(_) => Ending::TimedOut,
            Either::Right((signal, _)) => Ending::Interrupted(signal),
        }
    };
    match select(pin!(work), pin!(stop)).await {
        Either::Left((ending, _)) | Either::Right((ending, _)) => ending,
    }
}

/// Kill (when it may still run) and remove the container; `Err` says why it could not be.
async fn remove(docker: &bollard::Docker, id: &str, kill: bool) -> Result<(), String> {
    if kill {
        let _ = docker.kill_container(id, Some(KillContainerOptionsBuilder::new().signal("KILL").build())).await;
    }
    let options = RemoveContainerOptionsBuilder::new().force(true).v(true).build();
    match docker.remove_container(id, Some(options)).await {
        Ok(()) => Ok(()),
        Err(err) if is_not_found(&err) => Ok(()),
        Err(err) => Err(format!("the container {} could not be removed ({err}): remove it with docker rm -f {id}", short(id))),
    }
}

fn short(id: &str) -> &str {
    &id[..id.len().min(12)]
}

impl Docker {
    async fn run_async(&self, job: &Job) -> Outcome {
        let started = crate::env::monotonic();
        let plan = match Plan::of(job) {
            Ok(plan) => plan,
            Err(unavailable) => return Outcome::failed(unavailable.0),
        };
        let docker = match connect().await {
            Ok(docker) => docker,
            Err(unavailable) => return Outcome::failed(unavailable.0),
        };
        // A signal from here on removes the container, also one that comes while it is made.
        let tail = || Tail::new(&job.secrets, KEEP_BYTES);
        let mut output = Output { stdout: tail(), stderr: tail(), all: tail() };
        let created = {
            let create = docker.create_container(Some(CreateContainerOptionsBuilder::new().build()), plan.container(job));
            match select(pin!(create), pin!(interrupt())).await {
                Either::Left((created, _)) => created,
                Either::Right((signal, create)) => {
                    // Let the creation finish so that the container it made can be removed.
                    if let Ok(made) = create.await {
                        let _ = remove(&docker, &made.id, false).await;
                    }
                    return Outcome::failed(format!("interrupted by {signal} before the container started"));
                }
            }
        };
        let id = match created {
            Ok(created) => created.id,
            Err(err) if is_not_found(&err) => {
                return Outcome::failed(format!("image '{}' is not on the Docker engine: build or load it there first", plan.image))
            }
            Err(err) => return Outcome::failed(format!("cannot create a container from image '{}': {err}", plan.image)),
        };
        let ending = bounded(drive(&docker, &id, job.wire_json(), &mut output), plan.timeout).await;
        let removed = remove(&docker, &id, !matches!(ending, Ending::Exited { .. })).await;
        let elapsed = started.elapsed();
        let out = output.stdout.text();
        let transcript = output.all.text().into_bytes();
        let reply = parse_reply(out.as_bytes());
        let (status, exit_code, mut summary) = match ending {
            Ending::Exited { code, out_of_memory } => {
                let code32 = i32::try_from(code).ok();
                if code == 0 {
                    let said = super::last_line(&out);
                    let summary = reply.summary.clone().unwrap_or(if said.is_empty() { "the container exited 0".into() } else { said });
                    (reply.status.unwrap_or(RunStatus::Succeeded), code32, summary)
                } else {
                    // Why it failed is usually the last thing it said on stderr (the two streams
                    // come through separate pipes, so their interleaving proves nothing).
                    let said =
                        Some(super::last_line(&output.stderr.text())).filter(|s| !s.is_empty()).unwrap_or_else(|| super::last_line(&out));
                    let summary = match (reply.summary.clone(), out_of_memory, code) {
                        (Some(summary), false, _) => summary,
                        (_, true, _) => format!(
                            "killed for using more than its memory_mb={} (exit {code})",
                            plan.memory_bytes.map(|b| b >> 20).unwrap_or_default()
                        ),
                        (None, false, _) => super::failure_summary(Some(code), &said),
                    };
                    (RunStatus::Failed, code32, summary)
                }
            }
            Ending::TimedOut => (RunStatus::TimedOut, None, format!("killed after {}s", plan.timeout.as_secs())),
            Ending::Interrupted(signal) if removed.is_ok() => {
                (RunStatus::Failed, None, format!("interrupted by {signal}: the container was removed"))
            }
            Ending::Interrupted(signal) => (RunStatus::Failed, None, format!("interrupted by {signal}")),
            Ending::Broken(why) => (RunStatus::Failed, None, why),
        };
        if let Err(why) = removed {
            summary = format!("{summary}; {why}");
        }
        let verdict = reply.verdict.map(|v| (v, reply.message.clone().unwrap_or_default()));
        Outcome {
            status,
            exit_code,
            summary: job.redact(&summary),
            cost: reply.cost(elapsed),
            verdict,
            transcript,
            rate_card: None,
            learned_secrets: Vec::new(),
        }
    }
}

impl Runtime for Docker {
    fn name(&self) -> &'static str {
        "docker"
    }

    fn check(&self, job: &Job) -> Result<(), Unavailable> {
        Plan::of(job).map(|_| ())
    }

    fn pull(&self, job: &Job) -> Result<(), Unavailable> {
        let plan = Plan::of(job)?;
        let runtime = tokio_runtime().map_err(|err| Unavailable(format!("cannot start the docker runtime's event loop: {err}")))?;
        runtime.block_on(async {
            let docker = connect().await?;
            match docker.inspect_image(&plan.image).await {
                Ok(_) => Ok(()),
                Err(err) if is_not_found(&err) => Err(Unavailable(format!(
                    "image '{}' is not on the Docker engine, and clutch never pulls one: build or load it there first (docker build -t {} … or docker load)",
                    plan.image, plan.image
                ))),
                Err(err) => Err(Unavailable(format!("cannot look up image '{}' on the Docker engine: {err}", plan.image))),
            }
        })
    }

    fn run(&self, job: &Job) -> Outcome {
        match tokio_runtime() {
            Ok(runtime) => runtime.block_on(self.run_async(job)),
            Err(err) => Outcome::failed(format!("cannot start the docker runtime's event loop: {err}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(settings: &[(&str, &str)]) -> Job {
        let mut job = crate::runtime::test_job(RunPurpose::Work, settings);
        job.workdir = "/tmp/work".into();
        job.env = vec![("TOKEN".into(), "s3cret-value".into())];
        job
    }

    #[test]
    fn settings_become_limits_and_bad_ones_are_refused() {
        let plan = Plan::of(&job(&[("image", "img:1"), ("cpus", "1.5"), ("memory_mb", "64"), ("timeout_s", "9")])).expect("valid");
        assert_eq!((plan.nano_cpus, plan.memory_bytes, plan.pids_limit), (Some(1_500_000_000), Some(64 << 20), 256));
        assert_eq!((plan.timeout, plan.network, plan.read_only), (Duration::from_secs(9), "none", false));
        for (key, value, needle) in [
            ("cpus", "lots", "cpus='lots'"),
            ("cpus", "-1", "cpus='-1'"),
            ("memory_mb", "2", "below Docker's minimum"),
            ("timeout_s", "0", "timeout_s='0'"),
            ("pids_limit", "x", "pids_limit='x'"),
        ] {
            let refused = Plan::of(&job(&[("image", "img:1"), (key, value)])).expect_err(key).0;
            assert!(refused.contains(needle), "{refused}");
        }
        assert!(Plan::of(&job(&[])).expect_err("no image").0.contains("needs an image setting"));
    }

    #[test]
    fn policy_compiles_to_the_container_or_is_refused() {
        let any = Plan::of(&job(&[("image", "i"), ("network", "any"), ("sandbox", "read-only")])).expect("valid");
        assert_eq!((any.network, any.read_only), ("bridge", true));
        let hosts = Plan::of(&job(&[("image", "i"), ("network", "example.com")])).expect_err("hosts").0;
        assert!(hosts.contains("host allowlist"), "{hosts}");
        let tools = Plan::of(&job(&[("image", "i"), ("tool_allowlist", "Read")])).expect_err("tools").0;
        assert!(tools.contains("tool allowlist"), "{tools}");
        let mut review = job(&[("image", "i"), ("sandbox", "full-access")]);
        review.purpose = RunPurpose::Review;
        assert!(Plan::of(&review).expect("valid").read_only, "a review never writes");

        let body = Plan::of(&job(&[("image", "i"), ("command", "echo hi")])).expect("valid").container(&job(&[]));
        assert_eq!(body.entrypoint, Some(vec!["sh".to_string(), "-c".to_string(), "echo hi".to_string()]));
        let env = body.env.expect("env");
        assert!(env.contains(&"TOKEN=s3cret-value".to_string()) && env.contains(&"CLUTCH_TASK_ID=t-1".to_string()), "{env:?}");
        let host = body.host_config.expect("host config");
        assert_eq!(host.network_mode.as_deref(), Some("none"));
        assert_eq!(body.labels.expect("labels").get(RUN_LABEL).map(String::as_str), Some("1"));
    }
}
