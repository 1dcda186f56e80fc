//! `git clutch secret …`: the vault (docs/vault.md). Values come from stdin or a prompt that
//! does not echo, never from the command line; nothing prints a value.

use std::io::{IsTerminal, Read, Write};
use std::path::PathBuf;

use crate::env::{Env, SecretText};
use crate::sign::KeyStore;
use crate::vault::{self, Vault, VaultKey};
use crate::{Error, Result};

use super::Out;

/// The encrypted secrets vault ($CLUTCH_HOME/vault.age), unlocked by CLUTCH_SECRET_KEY.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Store a secret; the value is read from stdin (or a prompt that does not echo).
    Set(Named),
    /// Names and fingerprints of the secrets (never their values).
    List(List),
    /// Remove a secret.
    Rm(Remove),
    /// Replace a secret's value (read like `set`); its fingerprint and version change.
    Rotate(Named),
    /// Encrypt the vault to a new identity or passphrase.
    Rekey(Rekey),
    /// Move the agent signing keys kept as plain files under $CLUTCH_HOME/keys into the vault.
    ImportKeys(Json),
}

#[derive(Debug, clap::Args)]
pub struct Named {
    /// The secret's name: letters, digits, `_`, `.`, `-`.
    pub name: String,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, clap::Args)]
pub struct Remove {
    /// The secret's name.
    pub name: String,
    /// Also remove an agent's signing key (`key/AGENT-ID`): that agent can no longer sign here.
    #[arg(long)]
    pub force: bool,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, clap::Args)]
pub struct List {
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, clap::Args)]
pub struct Json {
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, clap::Args)]
#[group(required = true, multiple = false)]
pub struct Rekey {
    /// An age identity file (as age-keygen writes it) to encrypt to from now on.
    #[arg(long, value_name = "FILE")]
    pub to_identity_file: Option<PathBuf>,
    /// Encrypt to a passphrase, read from stdin (or a prompt).
    #[arg(long)]
    pub to_passphrase: bool,
}

pub fn run(env: &Env, cmd: &Command, out: &mut Out) -> Result<()> {
    match cmd {
        Command::Set(args) => {
            vault::check_name(&args.name)?;
            let value = read_value(&format!("value for {}: ", args.name), &format!("git clutch secret set {}", args.name))?;
            let listed = Vault::edit(env, |vault| vault.set(&args.name, value, env.now()))?;
            print_listed(out, args.json, &listed, "set")
        }
        Command::Rotate(args) => {
            vault::check_name(&args.name)?;
            // Check before asking for a value: nothing to rotate is an error, not a prompt.
            if Vault::open(env)?.get(&args.name).is_none() {
                return Err(Error::user(format!("there is no secret '{}' to rotate", args.name))
                    .hint(format!("add it with: git clutch secret set {}", args.name)));
            }
            let value = read_value(&format!("new value for {}: ", args.name), &format!("git clutch secret rotate {}", args.name))?;
            let listed = Vault::edit(env, |vault| {
                if vault.get(&args.name).is_none() {
                    return Err(Error::conflict(format!("secret '{}' was removed meanwhile", args.name)));
                }
                vault.set(&args.name, value, env.now())
            })?;
            print_listed(out, args.json, &listed, "rotated")
        }
        Command::Rm(args) => {
            if args.name.starts_with(vault::KEY_PREFIX) && !args.force {
                return Err(Error::user(format!(
                    "'{}' is an agent's signing key: without it that agent cannot sign on this machine",
                    args.name
                ))
                .hint("add --force if that is what you want"));
            }
            let removed = Vault::edit(env, |vault| {
                if !vault.remove(&args.name) {
                    return Err(Error::user(format!("there is no secret '{}'", args.name)).hint("see them with: git clutch secret list"));
                }
                Ok(true)
            })?;
            if args.json {
                out.json(&serde_json::json!({ "name": args.name, "removed": removed }))
            } else {
                out.line(format!("removed {}", args.name))
            }
        }
        Command::List(args) => {
            let vault = Vault::open(env)?;
            let listed = vault.list();
            if args.json {
                return out.json(&listed);
            }
            let mut rows = vec![vec!["NAME".into(), "FINGERPRINT".into(), "VERSION".into(), "SET".into()]];
            for l in listed {
                rows.push(vec![l.name, l.fingerprint, l.version.to_string(), l.set_at]);
            }
            out.table(&rows)
        }
        Command::Rekey(args) => {
            // The current key must open the vault before anything else happens.
            Vault::open(env)?;
            let new_key = match &args.to_identity_file {
                Some(path) => {
                    let text = std::fs::read_to_string(path)
                        .map_err(|err| Error::user(format!("cannot read the identity file {}: {err}", path.display())))?;
                    if !text.lines().any(|l| l.trim().starts_with("AGE-SECRET-KEY-")) {
                        return Err(Error::user(format!("{} holds no AGE-SECRET-KEY line", path.display()))
                            .hint("make an identity with: age-keygen -o FILE"));
                    }
                    VaultKey::parse(&SecretText::new(text))?
                }
                None => {
                    let passphrase = read_value("new passphrase: ", "git clutch secret rekey --to-passphrase")?;
                    if passphrase.starts_with("AGE-SECRET-KEY-") {
                        return Err(Error::user("that is an age identity, not a passphrase").hint("use --to-identity-file FILE"));
                    }
                    VaultKey::parse(&SecretText::new(passphrase))?
                }
            };
            let count = Vault::rekey(env, new_key)?;
            if args.to_identity_file.is_some() {
                out.line(format!("vault re-encrypted ({count} {}): set CLUTCH_SECRET_KEY_FILE to the new identity file", plural(count)))
            } else {
                out.line(format!("vault re-encrypted ({count} {}): set CLUTCH_SECRET_KEY to the new passphrase", plural(count)))
            }
        }
        Command::ImportKeys(args) => {
            let moved = KeyStore::for_env(env).import_into_vault()?;
            if args.json {
                return out.json(&moved);
            }
            if moved.is_empty() {
                return out.line("no plain key files to move");
            }
            for name in moved {
                out.line(format!("moved into the vault: {name}"))?;
            }
            Ok(())
        }
    }
}

fn plural(count: usize) -> &'static str {
    if count == 1 {
        "secret"
    } else {
        "secrets"
    }
}

fn print_listed(out: &mut Out, json: bool, listed: &vault::Listed, verb: &str) -> Result<()> {
    if json {
        out.json(listed)
    } else {
        out.line(format!("{verb} {} (fingerprint {}, version {})", listed.name, listed.fingerprint, listed.version))
    }
}

/// Largest value accepted: a credential, not a file.
const MAX_VALUE: usize = 64 * 1024;

/// A value from stdin (one trailing newline dropped), or from a prompt on the terminal that
/// does not echo when stdin is a terminal.
/// `command` is what to pipe the value into, for the hint when there is none.
fn read_value(prompt: &str, command: &str) -> Result<String> {
    let mut bytes = zeroize::Zeroizing::new(Vec::new());
    if std::io::stdin().is_terminal() {
        let line = prompt_hidden(prompt)?;
        bytes.extend_from_slice(line.as_bytes());
    } else {
        std::io::stdin()
            .take(MAX_VALUE as u64 + 1)
            .read_to_end(&mut bytes)
            .map_err(|err| Error::user(format!("cannot read the value from stdin: {err}")))?;
    }
    if bytes.len() > MAX_VALUE {
        return Err(Error::user(format!("the value is longer than {} KiB", MAX_VALUE / 1024))
            .hint("a secret is a credential; keep files elsewhere"));
    }
    let mut text = String::from_utf8(bytes.to_vec())
        .map_err(|_| Error::user("the value is not UTF-8 text").hint("encode binary values, e.g. with base64"))?;
    if text.ends_with('\n') {
        text.pop();
        if text.ends_with('\r') {
            text.pop();
        }
    }
    if text.is_empty() {
        return Err(Error::user("the value is empty").hint(format!("pipe it in: printf %s \"$VALUE\" | {command}")));
    }
    Ok(text)
}

/// Ask on the terminal with echo off, restoring the terminal afterwards.
fn prompt_hidden(prompt: &str) -> Result<String> {
    let tty_error =
        |err: std::io::Error| Error::user(format!("cannot prompt on the terminal: {err}")).hint("pipe the value on stdin instead");
    let mut tty = std::fs::OpenOptions::new().read(true).write(true).open("/dev/tty").map_err(tty_error)?;
    let saved = rustix::termios::tcgetattr(&tty).map_err(|err| tty_error(err.into()))?;
    let mut quiet = saved.clone();
    quiet.local_modes.remove(rustix::termios::LocalModes::ECHO);
    rustix::termios::tcsetattr(&tty, rustix::termios::OptionalActions::Now, &quiet).map_err(|err| tty_error(err.into()))?;
    let _ = write!(tty, "{prompt}");
    let _ = tty.flush();
    let mut line = String::new();
    let read = std::io::BufRead::read_line(&mut std::io::BufReader::new(&tty), &mut line);
    let _ = rustix::termios::tcsetattr(&tty, rustix::termios::OptionalActions::Now, &saved);
    let _ = writeln!(tty);
    read.map_err(tty_error)?;
    Ok(line)
}
