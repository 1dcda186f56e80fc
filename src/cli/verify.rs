use crate::ops::{verify, Ctx};
use crate::{Error, Result};

use super::Out;

/// Check every event of the log from its root: signature, key, schema, commit metadata, role
/// and gates. Lists each refused event with its commit and reason; exits 0 only when all are
/// valid.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn run(ctx: &Ctx, args: &Args, out: &mut Out) -> Result<()> {
    let report = verify::verify(ctx)?;
    if report.head.is_none() {
        return Err(Error::user("this repository has no clutch org yet").hint("create one with: git clutch init --name ORG --founder ID"));
    }
    if args.json {
        out.json(&report)?;
    } else {
        for rejection in &report.rejected {
            out.line(format!("{}  {}", rejection.commit, rejection.reason))?;
        }
        for rejection in &report.superseded {
            out.line(format!("{}  superseded: {}", rejection.commit, rejection.reason))?;
        }
        let superseded = if report.superseded.is_empty() {
            String::new()
        } else {
            format!(", {} superseded by concurrent events", report.superseded.len())
        };
        out.line(format!("{} events: {} valid, {} rejected{superseded}", report.events, report.valid, report.rejected.len()))?;
    }
    if report.rejected.is_empty() {
        Ok(())
    } else {
        Err(Error::user(format!("{} invalid event(s) in refs/clutch/log", report.rejected.len())))
    }
}
