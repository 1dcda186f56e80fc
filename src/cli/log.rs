use std::collections::HashMap;

use crate::event::Event;
use crate::ops::{verify, Ctx};
use crate::Result;

use super::Out;

/// The org's events in replay order, oldest first. Refused events are marked.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Show only the last N events.
    #[arg(short = 'n', long)]
    pub limit: Option<usize>,
    /// Print JSON: one object per event with its commit and envelope.
    #[arg(long)]
    pub json: bool,
}

pub fn run(ctx: &Ctx, args: &Args, out: &mut Out) -> Result<()> {
    let loaded = ctx.load()?;
    let rejected: HashMap<&str, &str> = loaded.state.rejected.iter().map(|r| (r.commit.as_str(), r.reason.as_str())).collect();
    let raws = verify::ordered(ctx)?;
    let skip = args.limit.map_or(0, |n| raws.len().saturating_sub(n));
    let mut json = Vec::new();
    let mut rows = Vec::new();
    for raw in raws.into_iter().skip(skip) {
        let commit = raw.oid.to_string();
        let event = raw.event_json.as_ref().ok().and_then(|b| Event::from_json(b).ok());
        let refused = rejected.get(commit.as_str()).copied();
        if args.json {
            let envelope = event.as_ref().and_then(|e| serde_json::from_slice::<serde_json::Value>(&e.to_json()).ok());
            json.push(serde_json::json!({ "commit": commit, "valid": refused.is_none(), "rejected": refused, "event": envelope }));
            continue;
        }
        let (kind, actor, at, summary) = match &event {
            Some(e) => (e.event_type().name().to_string(), e.actor.clone(), e.at.clone(), e.summary()),
            None => ("?".into(), "?".into(), "?".into(), raw.message.lines().next().unwrap_or("").to_string()),
        };
        let task = event.as_ref().and_then(|e| e.task.clone()).unwrap_or_default();
        let mut text = if task.is_empty() { summary } else { format!("{task} {summary}") };
        if let Some(reason) = refused {
            text = format!("REJECTED ({reason}): {text}");
        }
        rows.push(vec![commit[..10].to_string(), at, actor, kind, text]);
    }
    if args.json {
        out.json(&json)
    } else {
        out.table(&rows)
    }
}
