//! Reports over the log: cost roll-ups and HR scorecards.
//!
//! Both walk the applied events (refused ones never count), so a total is exactly the sum of
//! the `cost` of the events it covers.

use std::collections::{BTreeMap, HashSet};

use serde::Serialize;

use crate::env::parse_time;
use crate::event::{Cost, Event};
use crate::state::{PrStatus, Spend, State};
use crate::{Error, Result};

use super::{verify, Ctx};

/// Applied events in replay order, with their commit ids.
pub fn applied_events(ctx: &Ctx, state: &State) -> Result<Vec<(String, Event)>> {
    let rejected: HashSet<&str> = state.rejected.iter().map(|r| r.commit.as_str()).collect();
    let mut out = Vec::new();
    for raw in verify::ordered(ctx)? {
        let commit = raw.oid.to_string();
        if rejected.contains(commit.as_str()) {
            continue;
        }
        if let Some(event) = raw.event_json.as_ref().ok().and_then(|b| Event::from_json(b).ok()) {
            out.push((commit, event));
        }
    }
    Ok(out)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum By {
    Agent,
    Task,
    Project,
    Role,
    Day,
    Type,
}

impl std::str::FromStr for By {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "agent" => By::Agent,
            "task" => By::Task,
            "project" => By::Project,
            "role" => By::Role,
            "day" => By::Day,
            "type" => By::Type,
            _ => return Err(format!("cannot group by '{s}' (agent, task, project, role, day or type)")),
        })
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CostRow {
    pub key: String,
    pub events: u64,
    /// The summed cost, its fields inline in JSON.
    #[serde(flatten)]
    pub spend: Spend,
}

impl CostRow {
    fn add(&mut self, cost: &Cost) {
        self.events += 1;
        self.spend.add(cost);
    }
}

#[derive(Debug, Serialize)]
pub struct CostReport {
    pub by: String,
    pub since: Option<String>,
    pub rows: Vec<CostRow>,
    pub total: CostRow,
}

pub fn cost(ctx: &Ctx, state: &State, by: By, since: Option<&str>) -> Result<CostReport> {
    let since_s = since.map(parse_since).transpose()?;
    let mut rows: BTreeMap<String, CostRow> = BTreeMap::new();
    let mut total = CostRow { key: "total".into(), ..CostRow::default() };
    for (_, event) in applied_events(ctx, state)? {
        if let Some(since) = since_s {
            if parse_time(&event.at).unwrap_or(0) < since {
                continue;
            }
        }
        let key = match by {
            By::Agent => event.actor.clone(),
            By::Task => event.task.clone().unwrap_or_else(|| "-".into()),
            By::Project => event.project.clone().unwrap_or_else(|| "-".into()),
            By::Role => state.agents.get(&event.actor).map(|a| a.role.to_string()).unwrap_or_else(|| "-".into()),
            By::Day => event.at.get(..10).unwrap_or("-").to_string(),
            By::Type => event.event_type().name().to_string(),
        };
        rows.entry(key.clone()).or_insert_with(|| CostRow { key, ..CostRow::default() }).add(&event.cost);
        total.add(&event.cost);
    }
    Ok(CostReport { by: format!("{by:?}").to_lowercase(), since: since.map(str::to_string), rows: rows.into_values().collect(), total })
}

/// `2026-11-24` or a full RFC 3339 time.
fn parse_since(text: &str) -> Result<i64> {
    if text.len() == 10 {
        parse_time(&format!("{text}T00:00:00Z"))
    } else {
        parse_time(text)
    }
}

/// `7d`, `24h`, `30m` or `all`, in seconds (`None` for all).
pub fn parse_window(text: &str) -> Result<Option<i64>> {
    if text == "all" {
        return Ok(None);
    }
    let (number, unit) = text.split_at(text.len().saturating_sub(1));
    let n: i64 = number.parse().map_err(|_| Error::user(format!("window '{text}' is not like 7d, 24h, 90m or all")))?;
    let seconds = match unit {
        "d" => n * 86_400,
        "h" => n * 3_600,
        "m" => n * 60,
        _ => return Err(Error::user(format!("window '{text}' is not like 7d, 24h, 90m or all"))),
    };
    Ok(Some(seconds))
}

/// An agent's figures over a window.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Scorecard {
    pub agent: String,
    pub role: String,
    pub window: String,
    pub tasks_done: u64,
    pub prs_opened: u64,
    pub prs_merged: u64,
    /// Of the agent's PRs with a senior verdict, the share whose first verdict approved.
    pub first_review_approval_rate: Option<f64>,
    /// Heads per merged PR: 1 when merged as first submitted.
    pub review_rounds_per_merged_pr: Option<f64>,
    pub test_runs: u64,
    pub test_pass_rate: Option<f64>,
    pub usd_micros: u64,
    pub tokens: u64,
    pub cost_per_merged_pr_usd_micros: Option<u64>,
    /// Median hours from assignment to done.
    pub median_cycle_time_hours: Option<f64>,
}

impl Scorecard {
    /// The figures as EVAL_REPORTED stores them.
    pub fn figures(&self) -> BTreeMap<String, f64> {
        let mut figures = BTreeMap::new();
        figures.insert("tasks_done".into(), self.tasks_done as f64);
        figures.insert("prs_opened".into(), self.prs_opened as f64);
        figures.insert("prs_merged".into(), self.prs_merged as f64);
        figures.insert("test_runs".into(), self.test_runs as f64);
        figures.insert("usd".into(), self.usd_micros as f64 / 1e6);
        figures.insert("tokens".into(), self.tokens as f64);
        for (name, value) in [
            ("first_review_approval_rate", self.first_review_approval_rate),
            ("review_rounds_per_merged_pr", self.review_rounds_per_merged_pr),
            ("test_pass_rate", self.test_pass_rate),
            ("cost_per_merged_pr_usd", self.cost_per_merged_pr_usd_micros.map(|c| c as f64 / 1e6)),
            ("median_cycle_time_hours", self.median_cycle_time_hours),
        ] {
            if let Some(value) = value {
                figures.insert(name.into(), value);
            }
        }
        figures
    }
}

/// Scorecards for `agents` over the window that ends at `now`.
pub fn scorecards(state: &State, events: &[(String, Event)], agents: &[String], window: &str, now: i64) -> Result<Vec<Scorecard>> {
    let from = parse_window(window)?.map(|w| now - w);
    let within = |at: &str| from.is_none_or(|from| parse_time(at).is_ok_and(|t| t >= from && t <= now));
    let mut cards = Vec::new();
    for agent in agents {
        let role = state.agents.get(agent).map(|a| a.role.to_string()).ok_or_else(|| Error::user(format!("no agent '{agent}'")))?;
        let done: Vec<_> = state
            .tasks
            .values()
            .filter(|t| t.assignee.as_deref() == Some(agent.as_str()) && t.done_at.as_deref().is_some_and(within))
            .collect();
        let authored: Vec<_> = state.governance.prs.values().filter(|p| &p.author == agent).collect();
        let opened: Vec<_> = authored.iter().filter(|p| within(&p.opened_at)).collect();
        let merged: Vec<_> =
            authored.iter().filter(|p| p.status == PrStatus::Merged && p.merged_at.as_deref().is_some_and(within)).collect();
        let first_verdicts: Vec<bool> = opened
            .iter()
            .filter_map(|p| {
                p.reviews
                    .iter()
                    .find(|r| {
                        r.by != p.author
                            && matches!(r.role, crate::event::Role::Senior | crate::event::Role::Ceo)
                            && r.verdict != crate::event::Verdict::Comment
                    })
                    .map(|r| r.verdict == crate::event::Verdict::Approve)
            })
            .collect();
        let runs: Vec<_> = state.governance.test_runs.iter().filter(|t| &t.by == agent && within(&t.at)).collect();
        let mut usd = 0u64;
        let mut tokens = 0u64;
        for (_, event) in events.iter().filter(|(_, e)| &e.actor == agent && within(&e.at)) {
            usd += event.cost.usd_micros;
            tokens += event.cost.input_tokens + event.cost.output_tokens;
        }
        let mut cycles: Vec<f64> = done
            .iter()
            .filter_map(|t| Some((parse_time(t.done_at.as_deref()?).ok()? - parse_time(t.assigned_at.as_deref()?).ok()?) as f64 / 3600.0))
            .collect();
        cycles.sort_by(|a, b| a.total_cmp(b));
        let median = match cycles.len() {
            0 => None,
            n if n % 2 == 1 => Some(cycles[n / 2]),
            n => Some((cycles[n / 2 - 1] + cycles[n / 2]) / 2.0),
        };
        let ratio = |num: usize, den: usize| if den == 0 { None } else { Some(num as f64 / den as f64) };
        cards.push(Scorecard {
            agent: agent.clone(),
            role,
            window: window.to_string(),
            tasks_done: done.len() as u64,
            prs_opened: opened.len() as u64,
            prs_merged: merged.len() as u64,
            first_review_approval_rate: ratio(first_verdicts.iter().filter(|a| **a).count(), first_verdicts.len()),
            review_rounds_per_merged_pr: ratio(merged.iter().map(|p| p.heads.len()).sum(), merged.len()),
            test_runs: runs.len() as u64,
            test_pass_rate: ratio(runs.iter().filter(|t| t.passed).count(), runs.len()),
            usd_micros: usd,
            tokens,
            cost_per_merged_pr_usd_micros: if merged.is_empty() { None } else { Some(usd / merged.len() as u64) },
            median_cycle_time_hours: median,
        });
    }
    Ok(cards)
}
