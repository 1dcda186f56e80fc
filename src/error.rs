//! One error type, categorized at the edge: every error carries the exit code it maps to and,
//! where one helps, a hint that says what to do about it.

use std::fmt;

/// What kind of failure this is; decides the exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Bad input or a refused operation (a gate, a missing entity): exit 1.
    User,
    /// Malformed command line: exit 2.
    Usage,
    /// Lost a race that retrying cannot win (the other writer got there first): exit 3.
    Conflict,
    /// The repository, the file system or a bug: exit 4.
    Internal,
    /// Standard output was closed by its reader: exit quietly.
    BrokenPipe,
    /// Pass on the exit status of a command clutch ran for the user (`test run`).
    Exit(i32),
}

impl Kind {
    pub fn exit_code(self) -> i32 {
        match self {
            Kind::User => 1,
            Kind::Usage => 2,
            Kind::Conflict => 3,
            Kind::Internal => 4,
            Kind::BrokenPipe => 0,
            Kind::Exit(code) => code,
        }
    }
}

#[derive(Debug)]
pub struct Error {
    pub kind: Kind,
    pub message: String,
    pub hint: Option<String>,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn user(message: impl Into<String>) -> Self {
        Error { kind: Kind::User, message: message.into(), hint: None }
    }
    pub fn usage(message: impl Into<String>) -> Self {
        Error { kind: Kind::Usage, message: message.into(), hint: None }
    }
    pub fn conflict(message: impl Into<String>) -> Self {
        Error { kind: Kind::Conflict, message: message.into(), hint: None }
    }
    pub fn internal(message: impl Into<String>) -> Self {
        Error { kind: Kind::Internal, message: message.into(), hint: None }
    }
    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
    /// A run stopped by a signal: the command exits as a process ended by it would.
    pub fn interrupted(signal: crate::interrupt::Interrupt, message: impl Into<String>) -> Self {
        Error { kind: Kind::Exit(signal.exit_code()), message: message.into(), hint: None }
    }
    /// Prefix the message with what was being done, keeping kind and hint.
    pub fn context(mut self, what: impl fmt::Display) -> Self {
        self.message = format!("{what}: {}", self.message);
        self
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

impl From<std::io::Error> for Error {
    fn from(err: std::io::Error) -> Self {
        Error::internal(err.to_string())
    }
}

/// Attach context to any displayable error and make it internal.
pub trait Context<T> {
    fn internal(self, what: impl FnOnce() -> String) -> Result<T>;
}

impl<T, E: fmt::Display> Context<T> for std::result::Result<T, E> {
    fn internal(self, what: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|err| Error::internal(format!("{}: {err}", what())))
    }
}
