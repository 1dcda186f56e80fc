//! `git clutch auth codex`: sign codex in with ChatGPT, the tokens kept in the vault.

use std::time::Duration;

use crate::env::Env;
use crate::ops::auth;
use crate::Result;

use super::Out;

/// Sign agents' tools in to their providers, the tokens kept in the vault.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Sign in with ChatGPT for the codex runtime, the tokens kept in the vault.
    ///
    /// OAuth with PKCE, as `codex login` does: open the printed URL, sign in, and the tokens
    /// are stored in the vault as `codex.auth`. Agents use them with `--runtime-opt
    /// auth=chatgpt` (docs/auth-codex.md).
    Codex(Codex),
}

#[derive(Debug, clap::Args)]
pub struct Codex {
    /// The OAuth issuer.
    #[arg(long, default_value = auth::DEFAULT_ISSUER)]
    pub issuer: String,
    /// The local port for the callback (http://localhost:PORT/auth/callback); the issuer must
    /// accept that redirect_uri (OpenAI accepts 1455 for codex).
    #[arg(long, default_value_t = auth::DEFAULT_PORT)]
    pub port: u16,
    /// Print the URL only; do not try to open a browser.
    #[arg(long)]
    pub no_browser: bool,
    /// Give up when no sign-in arrives within this many seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = auth::DEFAULT_TIMEOUT.as_secs(),
          value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub timeout_s: u64,
    /// Print what was stored as JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn run(env: &Env, cmd: &Command, out: &mut Out) -> Result<()> {
    match cmd {
        Command::Codex(args) => codex(env, args, out),
    }
}

fn codex(env: &Env, args: &Codex, out: &mut Out) -> Result<()> {
    let options = auth::Options { issuer: args.issuer.clone(), port: args.port, timeout: Duration::from_secs(args.timeout_s) };
    let pending = auth::start(env, &options)?;
    let port = pending.port;
    eprintln!("Sign in with ChatGPT by opening this URL in a browser:\n\n  {}\n", pending.url);
    eprintln!("Waiting for the sign-in to come back to http://localhost:{port}/auth/callback (up to {} s).", options.timeout.as_secs());
    eprintln!("On a remote machine, forward the port from your own first: ssh -L {port}:localhost:{port} HOST, then open the URL there.");
    if !args.no_browser {
        open_browser(&pending.url);
    }
    let stored = pending.finish(env)?;
    if args.json {
        return out.json(&stored);
    }
    out.line(format!("stored {} in the vault (version {}, fingerprint {})", stored.name, stored.version, stored.fingerprint))?;
    let mut who = stored.account_id.clone().unwrap_or_else(|| "an account without an id".into());
    let details: Vec<String> = [stored.email.clone(), stored.plan.as_ref().map(|p| format!("plan {p}"))].into_iter().flatten().collect();
    if !details.is_empty() {
        who = format!("{who} ({})", details.join(", "));
    }
    out.line(format!("  account        {who}"))?;
    out.line(format!("  issuer         {}", stored.issuer))?;
    out.line(format!("  access token   expires {}", stored.expires_at.as_deref().unwrap_or("(not said)")))?;
    out.line(format!("  API key        {}", if stored.api_key { "obtained" } else { "none" }))?;
    out.line("use it: git clutch agent config AGENT --runtime codex --runtime-opt auth=chatgpt")
}

/// Best effort: a browser on this machine, if there is an opener; the URL is printed anyway.
fn open_browser(url: &str) {
    let opener = ["xdg-open", "open"].into_iter().find_map(crate::env::find_program);
    if let Some(opener) = opener {
        let spawned = std::process::Command::new(opener)
            .arg(url)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn();
        if let Ok(mut child) = spawned {
            std::thread::spawn(move || child.wait());
        }
    }
}
