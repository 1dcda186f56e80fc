//! Interrupts (Ctrl-C, SIGTERM, SIGHUP) while agents run.
//!
//! An agent runs in a process group of its own or in a container, so a signal that simply
//! ended clutch would leave the agent running, its worktree behind and its run unrecorded.
//! While a run is under way (a [`Guard`] lives), the first such signal is only noted: the
//! runtime sees [`interrupted`], kills the agent's process group or removes its container, the
//! run is recorded as failed, and the command exits with 128 + the signal's number. A second
//! signal ends clutch at once, as does any signal while no run is under way.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

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
    runs: AtomicUsize,
}

static HANDLERS: OnceLock<Option<Handlers>> = OnceLock::new();

fn handlers() -> Option<&'static Handlers> {
    HANDLERS
        .get_or_init(|| {
            let passthrough = Arc::new(AtomicBool::new(true));
            let signal = Arc::new(AtomicUsize::new(0));
            for number in [SIGINT, SIGTERM, SIGHUP] {
                // In this order: end the process when passing through; else note the signal,
                // and pass the next one through.
                signal_hook::flag::register_conditional_default(number, passthrough.clone()).ok()?;
                signal_hook::flag::register_usize(number, signal.clone(), number as usize).ok()?;
                signal_hook::flag::register(number, passthrough.clone()).ok()?;
            }
            Some(Handlers { passthrough, signal, runs: AtomicUsize::new(0) })
        })
        .as_ref()
}

/// While it lives, a signal interrupts the run instead of ending clutch.
#[derive(Debug)]
pub struct Guard(());

impl Guard {
    pub fn new() -> Guard {
        if let Some(h) = handlers() {
            if h.runs.fetch_add(1, Ordering::SeqCst) == 0 && h.signal.load(Ordering::SeqCst) == 0 {
                h.passthrough.store(false, Ordering::SeqCst);
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
            if h.runs.fetch_sub(1, Ordering::SeqCst) == 1 {
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
