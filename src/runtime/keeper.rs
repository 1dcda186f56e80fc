//! The keeper: a small process of clutch's own between clutch and every program it runs (an
//! agent, a test command), so that nothing the program starts outlives it.
//!
//! clutch starts `git-clutch __keep REPORT WATCH PARENT PROGRAM ARGS…` (see
//! [`super::process::Kept`]). The keeper makes itself the child subreaper and starts the
//! program in a process group of its own. Whatever the program orphans — a `setsid` daemon, a
//! double fork, a process that cleared its environment or made itself non-dumpable — is
//! reparented to the keeper, not to init and not to clutch. When the program's leader ends (or
//! clutch asks, or clutch dies), the keeper kills the program's group, then kills and reaps
//! every child it has until none is left, writes how the program ended to REPORT (clutch's
//! own descriptor of an anonymous file, `/proc/CLUTCH/fd/N`), and exits.
//!
//! The keeper runs with the program's environment, so what the program is given to load
//! (`LD_PRELOAD` among its variables) loads into the keeper too; it is the same user's code
//! either way, outside any sandbox the program's own runtime sets up.
//!
//! Signals: SIGTERM, SIGINT, SIGHUP and SIGCONT sent to the keeper are passed on to the
//! program's group (a test suite's own clean-up runs); SIGUSR1 means "kill the run now"; and
//! SIGUSR1 is also the keeper's parent-death signal, so a clutch killed with SIGKILL leaves
//! nothing running. A signal the keeper was started ignoring stays ignored for the program.
//! With WATCH `tty`, a group stopped for reading the terminal is killed and reported.

use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustix::process::{Pid, Signal, WaitOptions};

/// The name clutch starts the keeper by: `git-clutch __keep …`.
pub const ENTRY: &str = "__keep";

/// How a kept program ended, as the keeper reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Report {
    /// The program could not be started: the OS error number.
    NotStarted(i32),
    /// It ended with this raw wait status.
    Ended(i32),
    /// Its group stopped to read the terminal and was killed.
    StoppedForTerminal,
}

impl Report {
    pub fn encode(self) -> String {
        match self {
            Report::NotStarted(errno) => format!("not-started {errno}\n"),
            Report::Ended(raw) => format!("ended {raw}\n"),
            Report::StoppedForTerminal => "stopped-for-terminal\n".to_string(),
        }
    }

    pub fn decode(text: &str) -> Option<Report> {
        let line = text.lines().next()?;
        let (kind, value) = line.split_once(' ').unwrap_or((line, ""));
        match kind {
            "not-started" => value.parse().ok().map(Report::NotStarted),
            "ended" => value.parse().ok().map(Report::Ended),
            "stopped-for-terminal" => Some(Report::StoppedForTerminal),
            _ => None,
        }
    }
}

/// The keeper's `main`: `args` are what follows `__keep`. Returns the exit code.
pub fn main(args: &[std::ffi::OsString]) -> i32 {
    let [report, watch, parent, program, rest @ ..] = args else {
        eprintln!("git-clutch {ENTRY}: clutch's internal keeper, not a command (REPORT WATCH PARENT PROGRAM ARGS…)");
        return 2;
    };
    let parent: Option<i32> = parent.to_str().and_then(|p| p.parse().ok());
    let parent_gone = || parent.is_some_and(|p| rustix::process::getppid().map(|pp| pp.as_raw_nonzero().get()) != Some(p));
    let watch_terminal = watch == "tty";

    let _ = rustix::process::set_child_subreaper(Some(rustix::process::getpid()));
    // Handlers first, so that neither a signal from clutch nor clutch's death (SIGUSR1, armed
    // next) can end the keeper before it has swept.
    let kill_now = Arc::new(AtomicBool::new(false));
    let _ = signal_hook::flag::register(Signal::USR1.as_raw(), kill_now.clone());
    let ignored = crate::interrupt::ignored_signals();
    let mut forwarded = Vec::new();
    for signal in [Signal::TERM, Signal::INT, Signal::HUP, Signal::CONT] {
        if ignored.contains(&signal.as_raw()) {
            continue;
        }
        let flag = Arc::new(AtomicBool::new(false));
        if signal_hook::flag::register(signal.as_raw(), flag.clone()).is_ok() {
            forwarded.push((signal, flag));
        }
    }
    let _ = rustix::process::set_parent_process_death_signal(Some(Signal::USR1));
    // clutch may have died before that took effect.
    if parent_gone() {
        return 1;
    }

    use std::os::unix::process::CommandExt as _;
    let child = match Command::new(program).args(rest).process_group(0).spawn() {
        Ok(child) => child,
        Err(err) => return write_report(report, Report::NotStarted(err.raw_os_error().unwrap_or(0))),
    };
    let Some(leader) = i32::try_from(child.id()).ok().and_then(Pid::from_raw) else {
        return write_report(report, Report::NotStarted(0));
    };
    drop(child);

    let mut ended = None;
    let mut stopped = false;
    let mut last_look = Instant::now();
    let mut last_sweep = Instant::now();
    let mut backoff = super::process::Backoff::new(Duration::from_millis(10));
    while ended.is_none() {
        for (signal, flag) in &forwarded {
            if flag.swap(false, Ordering::SeqCst) {
                let _ = rustix::process::kill_process_group(leader, *signal);
            }
        }
        if kill_now.load(Ordering::SeqCst) {
            let _ = rustix::process::kill_process_group(leader, Signal::KILL);
        }
        // The leader's end is seen without reaping it: while it is a zombie its group id
        // cannot be reused, so the group is killed before the leader is reaped.
        let exited = rustix::process::waitid(
            rustix::process::WaitId::Pid(leader),
            rustix::process::WaitIdOptions::EXITED | rustix::process::WaitIdOptions::NOHANG | rustix::process::WaitIdOptions::NOWAIT,
        );
        if matches!(exited, Ok(Some(_))) {
            let _ = rustix::process::kill_process_group(leader, Signal::KILL);
            if let Ok(Some((_, status))) = rustix::process::waitpid(Some(leader), WaitOptions::NOHANG) {
                ended = Some(status.as_raw());
            }
            continue;
        }
        if exited.is_err() {
            // Not our child any more (cannot happen): no status to report.
            break;
        }
        if last_sweep.elapsed() >= Duration::from_secs(1) {
            last_sweep = Instant::now();
            reap_dead_orphans(leader);
        }
        if watch_terminal && last_look.elapsed() >= Duration::from_millis(250) {
            last_look = Instant::now();
            if super::process::group_stopped(leader.as_raw_nonzero().get() as u32) {
                stopped = true;
                let _ = rustix::process::kill_process_group(leader, Signal::KILL);
            }
        }
        backoff.sleep();
    }
    sweep();
    if parent_gone() {
        // clutch is gone: nobody will read the report.
        return 1;
    }
    match (stopped, ended) {
        (true, _) => write_report(report, Report::StoppedForTerminal),
        (false, Some(raw)) => write_report(report, Report::Ended(raw)),
        (false, None) => 1,
    }
}

/// Reap the dead children other than `leader` (orphans that came to the keeper and died), so
/// none stays a zombie while the program runs.
fn reap_dead_orphans(leader: Pid) {
    super::process::reap_zombies(|c| c.pid != leader.as_raw_nonzero().get());
}

/// Kill and reap every child of the keeper (the orphans that came to it) until it has none;
/// a killed process's own children come to the keeper in turn. SIGKILL goes to every child
/// whatever its state: a process whose main thread ended shows as a zombie while its other
/// threads still run (and hold the run's pipes). Bounded: a process that cannot be killed
/// (stuck in the kernel) is left rather than waited on forever.
fn sweep() {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        loop {
            match rustix::process::wait(WaitOptions::NOHANG) {
                Ok(Some(_)) => continue,
                Ok(None) => break,
                // No child at all: done.
                Err(_) => return,
            }
        }
        if !super::process::proc_usable() {
            // Without a /proc that numbers processes as we do, living orphans cannot be found.
            return;
        }
        for child in super::process::children() {
            if let Some(pid) = Pid::from_raw(child.pid) {
                let _ = rustix::process::kill_process(pid, Signal::KILL);
            }
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn write_report(path: &std::ffi::OsStr, report: Report) -> i32 {
    // The path names the file clutch holds open (/proc/PID/fd/N): no other file is reached.
    match std::fs::OpenOptions::new().write(true).open(path) {
        Ok(mut file) => {
            use std::io::Write as _;
            if file.write_all(report.encode().as_bytes()).is_ok() {
                return 0;
            }
            1
        }
        Err(_) => 1,
    }
}

#[cfg(test)]
mod tests {
    use super::Report;

    #[test]
    fn reports_round_trip() {
        for report in [Report::NotStarted(2), Report::Ended(0), Report::Ended(9), Report::Ended(256 * 127), Report::StoppedForTerminal] {
            assert_eq!(Report::decode(&report.encode()), Some(report));
        }
        assert_eq!(Report::decode(""), None);
        assert_eq!(Report::decode("ended x\n"), None);
        assert_eq!(Report::decode("what\n"), None);
    }
}
