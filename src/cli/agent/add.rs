use crate::event::Role;
use crate::ops::{org, Ctx};
use crate::runtime::http;
use crate::{Error, Result};

use super::Out;

/// Add an agent to the roster (CEO only). Without --key a key pair is generated and its
/// private half kept under $CLUTCH_HOME/keys/ so `--as ID` can sign for it. With --a2a URL the
/// agent is a remote A2A agent: its card is read (URL/.well-known/agent-card.json, or the
/// card's own URL) and checked before anything is written, and the agent runs on the http
/// runtime at the card's JSON-RPC endpoint.
#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("runs").args(["runtime", "a2a"])))]
pub struct Args {
    /// The agent's id (lowercase letters, digits, '.', '_', '-').
    pub id: String,
    /// ceo, hr, senior or junior.
    #[arg(long)]
    pub role: Role,
    /// The agent's Ed25519 public key, `ssh-ed25519 AAAA…`.
    #[arg(long, value_name = "PUBKEY")]
    pub key: Option<String>,
    /// How the agent runs (an automated agent): in-process, subprocess, …
    #[arg(long)]
    pub runtime: Option<String>,
    /// A remote A2A agent: its base URL or its agent card's URL (runtime http).
    #[arg(long, value_name = "URL")]
    pub a2a: Option<String>,
    /// A runtime setting, KEY=VALUE (repeatable).
    #[arg(long = "runtime-opt", value_name = "KEY=VALUE", requires = "runs")]
    pub runtime_opts: Vec<String>,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn run(ctx: &Ctx, actor: &str, args: &Args, out: &mut Out) -> Result<()> {
    let mut settings = org::parse_settings(&args.runtime_opts)?;
    if let Some(runtime) = &args.runtime {
        if crate::runtime::find(runtime).is_none() {
            return Err(crate::Error::user(format!("no runtime named '{runtime}' (known: {})", crate::runtime::NAMES.join(", "))));
        }
    }
    // The card first: a bad URL or card writes nothing.
    let card = match &args.a2a {
        Some(url) => Some(http::fetch_card(url).map_err(|why| {
            Error::user(why).hint("give the agent's base URL (its card is at URL/.well-known/agent-card.json) or the card's own URL")
        })?),
        None => None,
    };
    if let Some(card) = &card {
        for (key, value) in card.settings() {
            if settings.contains_key(&key) {
                return Err(Error::usage(format!("--runtime-opt {key} comes from the agent card with --a2a: leave it out")));
            }
            settings.insert(key, value);
        }
    }
    let runtime = if card.is_some() { Some("http") } else { args.runtime.as_deref() };
    // A definition that would be refused must not leave the agent added without it.
    if let Some(runtime) = runtime {
        org::check_configuration(&args.id, Some(args.role), runtime, &settings)?;
    }
    let added = org::agent_add(ctx, actor, &args.id, args.role, args.key.as_deref())?;
    if let Some(runtime) = runtime {
        org::configure(ctx, actor, &args.id, runtime, &settings)?;
        super::config::warn_missing_secrets(ctx, &settings);
    }
    match &card {
        Some(card) if args.json => out.json(&serde_json::json!({
            "id": args.id,
            "event": added.written.commit.to_string(),
            "card": card,
        })),
        Some(card) => {
            let skills = if card.skills.is_empty() { String::new() } else { format!(", skills: {}", card.skills.join(", ")) };
            out.line(format!(
                "{}: A2A agent '{}' at {} (A2A {}{skills}), runs on http",
                args.id,
                card.name,
                card.endpoint,
                card.protocol.as_str()
            ))
        }
        None => out.written(args.json, &args.id, &added.written, &args.id),
    }
}
