use std::collections::BTreeMap;

use crate::ops::{governance, Ctx};
use crate::{Error, Result};

use super::Out;

/// Record a CEO decision (DECISION_RECORDED): approve or reject an HR proposal, or set policy.
///
/// Policy knobs: required_approvals=N (Senior approvals a Junior's PR needs, default 1),
/// require_tests=true|false (a passing TEST_RUN on the head, default false),
/// tests_by=anyone|reviewers (whose TEST_RUN counts: anyone's, or only a Senior's or the CEO's
/// other than the PR's author; default anyone),
/// merge_mode=merge|ff (default merge), protected_branches=main,release (default main).
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The proposal to decide on (p-…).
    pub proposal: Option<String>,
    #[arg(long, conflicts_with = "reject", requires = "proposal")]
    pub approve: bool,
    #[arg(long, requires = "proposal")]
    pub reject: bool,
    /// A policy knob to set, NAME=VALUE (repeatable).
    #[arg(long, value_name = "NAME=VALUE", conflicts_with = "proposal")]
    pub policy: Vec<String>,
    /// Why: kept in the decision.
    #[arg(short, long)]
    pub message: String,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn run(ctx: &Ctx, actor: &str, args: &Args, out: &mut Out) -> Result<()> {
    let written = match &args.proposal {
        Some(proposal) => {
            if !args.approve && !args.reject {
                return Err(Error::usage("say --approve or --reject"));
            }
            governance::decide(ctx, actor, proposal, args.approve, &args.message)?
        }
        None => {
            let mut changes = BTreeMap::new();
            for item in &args.policy {
                let (name, value) = item.split_once('=').ok_or_else(|| Error::usage(format!("--policy '{item}' is not NAME=VALUE")))?;
                changes.insert(name.trim().to_string(), value.trim().to_string());
            }
            governance::set_policy(ctx, actor, &changes, &args.message)?
        }
    };
    let id = written.commit.to_string();
    let human = match &written.applied.created {
        Some(hired) => format!("{id}\nhired {hired}"),
        None => id.clone(),
    };
    out.written(args.json, &id, &written, &human)
}
