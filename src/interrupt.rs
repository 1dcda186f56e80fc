//! Interrupts (Ctrl-C, SIGTERM, SIGHUP) while agents run.
//!
//! An agent runs in a process group of its own or in a container, so a signal that simply
//! ended clutch would leave the agent running, its worktree behind and its run unrecorded.
//! While a run is under way (a [`Guard`] lives), the first such signal is only noted: the
//! runtime sees [`interrupted`], kills the agent's process group or removes its container, the
//! run is recorded as failed, and once the command has said so, [`exit_as_interrupted`] ends
//! the process by that same signal (so a calling shell sees a Ctrl-C, not an exit status). A
//! second signal ends clutch at once, as does any signal while no run is under way. A signal
//! the process was started ignoring (`nohup`, a background job) is left ignored.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use signal_hook::consts::signal::{SIGHUP, SIGINT, SIGTERM};

/// A signal that interrupted a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Interrupt {
    pub name: &'static str,
    pub number: i32,
}

impl Interrupt {
    /// The exit status of a process ended by this signal, as shells report it.
    pub fn exit_code(self) -> i32 {
        128 + self.number
    }
}

struct Handlers {
    /// True while no run is under way, and after the first signal: the signal's default
    /// action (ending the process) is taken.
    passthrough: Arc<AtomicBool>,
    /// The number of the first signal that came during a run, or 0.
    signal: Arc<AtomicUsize>,
    /// Runs under way. Changed only under the lock (never in the handler), together with
    /// `passthrough`, so two runs starting and ending on two threads cannot leave a run
    /// unguarded.
    runs: Mutex<usize>,
}

static HANDLERS: OnceLock<Option<Handlers>> = OnceLock::new();

fn handlers() -> Option<&'static Handlers> {
    HANDLERS
        .get_or_init(|| {
            let passthrough = Arc::new(AtomicBool::new(true));
            let signal = Arc::new(AtomicUsize::new(0));
            let ignored = ignored_signals();
            for number in [SIGINT, SIGTERM, SIGHUP].into_iter().filter(|n| !ignored.contains(n)) {
                // In this order: end the process when passing through; else note the signal,
                // and pass the next one through.
                signal_hook::flag::register_conditional_default(number, passthrough.clone()).ok()?;
                signal_hook::flag::register_usize(number, signal.clone(), number as usize).ok()?;
                signal_hook::flag::register(number, passthrough.clone()).ok()?;
            }
            Some(Handlers { passthrough, signal, runs: Mutex::new(0) })
        })
        .as_ref()
}

/// The signals this process was started ignoring (`SigIgn` of `/proc/self/status`): a handler
/// would undo what `nohup` or the shell asked for.
pub(crate) fn ignored_signals() -> Vec<i32> {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let mask = status.lines().find_map(|l| l.strip_prefix("SigIgn:")).and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok()).unwrap_or(0);
    (1..=64).filter(|n| mask & (1u64 << (n - 1)) != 0).collect()
}

/// While it lives, a signal interrupts the run instead of ending clutch.
#[derive(Debug)]
pub struct Guard(());

impl Guard {
    pub fn new() -> Guard {
        if let Some(h) = handlers() {
            let mut runs = h.runs.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            *runs += 1;
            if *runs == 1 && h.signal.load(Ordering::SeqCst) == 0 {
                h.passthrough.store(false, Ordering::SeqCst);
                // A signal noted just before that store must leave the next one passing.
                if h.signal.load(Ordering::SeqCst) != 0 {
                    h.passthrough.store(true, Ordering::SeqCst);
                }
            }
        }
        Guard(())
    }
}

impl Default for Guard {
    fn default() -> Self {
        Guard::new()
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        if let Some(h) = handlers() {
            let mut runs = h.runs.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            *runs = runs.saturating_sub(1);
            if *runs == 0 {
                h.passthrough.store(true, Ordering::SeqCst);
            }
        }
    }
}

/// The signal that interrupted a run of this process, if one did.
pub fn interrupted() -> Option<Interrupt> {
    let number = HANDLERS.get()?.as_ref()?.signal.load(Ordering::SeqCst) as i32;
    let name = match number {
        SIGINT => "SIGINT",
        SIGTERM => "SIGTERM",
        SIGHUP => "SIGHUP",
        _ => return None,
    };
    Some(Interrupt { name, number })
}

/// When a signal interrupted a run, end the process by that signal's default action now that
/// everything is recorded and said; otherwise return.
pub fn exit_as_interrupted() {
    if let Some(signal) = interrupted() {
        let _ = signal_hook::low_level::emulate_default_handler(signal.number);
    }
}
