//! An agent's policy: what it may touch, which tools it may use, where it may connect.
//!
//! Three settings of the agent definition make it up: `sandbox` (`read-only`,
//! `workspace-write`, `full-access`), `tool_allowlist` (comma-separated tool names, in the
//! runtime's own vocabulary) and `network` (`none`, `any`, or a comma-separated host
//! allowlist). A setting left out asks nothing: the runtime's default applies. Each runtime
//! compiles the policy into its own knobs in `pull` (see [`super::Runtime::pull`]) and refuses
//! a policy it cannot enforce; the policy's [`Policy::hash`] is recorded in RUN_STARTED, so
//! the log says under which rules each run ran.

use std::collections::BTreeMap;

use serde::Serialize;
use sha2::{Digest, Sha256};

use super::Unavailable;

/// What the agent may write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Sandbox {
    /// Read the checkout, change nothing.
    ReadOnly,
    /// Write inside the checkout only.
    WorkspaceWrite,
    /// No restriction from clutch.
    FullAccess,
}

/// Where the agent may connect.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Network {
    /// No connection at all.
    None,
    /// Only these hosts.
    Hosts(Vec<String>),
    /// Anywhere.
    Any,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Policy {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sandbox: Option<Sandbox>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool_allowlist: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub network: Option<Network>,
}

/// The settings that make up a policy.
pub const KEYS: &[&str] = &["sandbox", "tool_allowlist", "network"];

impl Policy {
    /// The policy an agent definition's settings ask for; `Err` names the bad setting.
    pub fn from_settings(settings: &BTreeMap<String, String>) -> Result<Policy, String> {
        let sandbox = match settings.get("sandbox").map(|s| s.trim()) {
            None => None,
            Some("read-only") => Some(Sandbox::ReadOnly),
            Some("workspace-write") => Some(Sandbox::WorkspaceWrite),
            Some("full-access" | "danger-full-access") => Some(Sandbox::FullAccess),
            Some(other) => return Err(format!("sandbox '{other}' is not one of read-only, workspace-write, full-access")),
        };
        let list = |text: &str| -> Vec<String> {
            let mut items: Vec<String> = text.split(',').map(|t| t.trim().to_string()).filter(|t| !t.is_empty()).collect();
            items.sort();
            items.dedup();
            items
        };
        let tool_allowlist = settings.get("tool_allowlist").map(|t| list(t));
        let network = match settings.get("network").map(|s| s.trim()) {
            None => None,
            Some("none") => Some(Network::None),
            Some("any") => Some(Network::Any),
            Some(text) => {
                let hosts = list(text);
                if hosts.iter().any(|h| h == "none" || h == "any") {
                    return Err(format!("network '{text}' is not valid: give none, any, or host names separated by commas"));
                }
                if let Some(bad) = hosts.iter().find(|h| !valid_host(h)) {
                    return Err(format!(
                        "network host '{bad}' is not a host name (network is none, any, or host names separated by commas)"
                    ));
                }
                if hosts.is_empty() {
                    Some(Network::None)
                } else {
                    Some(Network::Hosts(hosts))
                }
            }
        };
        Ok(Policy { sandbox, tool_allowlist, network })
    }

    /// Whether the definition asks for anything at all.
    pub fn is_empty(&self) -> bool {
        *self == Policy::default()
    }

    /// `sha256:` and the hex digest of the policy's canonical JSON (keys in order, lists
    /// sorted): the same rules hash the same on every machine.
    pub fn hash(&self) -> String {
        let json = serde_json::to_vec(self).unwrap_or_default();
        let digest = Sha256::digest(&json);
        let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        format!("sha256:{hex}")
    }

    /// A refusal naming what `runtime` cannot enforce.
    pub fn cannot(runtime: &str, what: &str) -> Unavailable {
        Unavailable(format!("the {runtime} runtime cannot enforce {what}: change the agent's policy or give it a runtime that can"))
    }

    /// Refuse any part of the policy beyond what `runtime` enforces; `enforces` lists the
    /// setting names it handles itself.
    pub fn only(&self, runtime: &str, enforces: &[&str]) -> Result<(), Unavailable> {
        if self.sandbox.is_some() && !enforces.contains(&"sandbox") {
            return Err(Policy::cannot(runtime, "a sandbox"));
        }
        if self.tool_allowlist.is_some() && !enforces.contains(&"tool_allowlist") {
            return Err(Policy::cannot(runtime, "a tool allowlist"));
        }
        if self.network.is_some() && !enforces.contains(&"network") {
            return Err(Policy::cannot(runtime, "a network policy"));
        }
        Ok(())
    }
}

/// A DNS name or an IP address, optionally with `*.` in front.
fn valid_host(host: &str) -> bool {
    let name = host.strip_prefix("*.").unwrap_or(host);
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| !label.is_empty() && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == ':'))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]
mod tests {
    use super::*;

    fn settings(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn parses_and_hashes_canonically() {
        let a = Policy::from_settings(&settings(&[("network", "b.example, a.example"), ("tool_allowlist", "Read,Edit")])).unwrap();
        let b = Policy::from_settings(&settings(&[("network", "a.example,b.example"), ("tool_allowlist", "Edit, Read")])).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.hash(), b.hash());
        assert_eq!(a.network, Some(Network::Hosts(vec!["a.example".into(), "b.example".into()])));
        let none = Policy::from_settings(&settings(&[("network", "none")])).unwrap();
        assert_ne!(none.hash(), a.hash());
        assert!(Policy::from_settings(&BTreeMap::new()).unwrap().is_empty());
        assert!(a.hash().starts_with("sha256:") && a.hash().len() == 7 + 64);
    }

    #[test]
    fn refuses_bad_settings_and_unenforceable_parts() {
        assert!(Policy::from_settings(&settings(&[("sandbox", "jail")])).unwrap_err().contains("sandbox 'jail'"));
        assert!(Policy::from_settings(&settings(&[("network", "exa mple.com")])).unwrap_err().contains("exa mple.com"));
        assert!(Policy::from_settings(&settings(&[("network", "none,")])).unwrap_err().contains("not valid"));
        assert!(Policy::from_settings(&settings(&[("network", "any,docs.rs")])).unwrap_err().contains("not valid"));
        let p = Policy::from_settings(&settings(&[("sandbox", "read-only"), ("network", "none")])).unwrap();
        assert!(p.only("x", &["sandbox", "network"]).is_ok());
        let refused = p.only("x", &["sandbox"]).unwrap_err();
        assert!(refused.0.contains("network policy"), "{}", refused.0);
    }
}
