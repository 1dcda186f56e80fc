//! The org and its roster: `init`, `agent add`, `project new`.

use std::path::{Path, PathBuf};

use crate::event::{AgentRegistered, OrgCreated, Payload, ProjectCreated, Role};
use crate::sign::{KeyStore, PublicKey, StoredKey};
use crate::state::apply::check_id;
use crate::store::ObjectId;
use crate::{Error, Result};

use super::{append, transact, Ctx, Draft, Loaded, Written};

#[derive(Debug)]
pub struct Founded {
    pub org: ObjectId,
    pub founder: String,
    /// The file that holds the founder's private key (a key file, a link to the key given,
    /// or the vault).
    pub key_path: PathBuf,
    pub key_in_vault: bool,
}

/// Write the genesis event, signed by the founder, and make the founder this clone's actor.
pub fn init(ctx: &Ctx, name: &str, founder: &str, key: Option<&Path>) -> Result<Founded> {
    if let Some(head) = ctx.store.head()? {
        return Err(Error::user(format!("this repository already has a clutch org (refs/clutch/log is at {head})"))
            .hint("see it with: git clutch state"));
    }
    check_id("founder id", founder).map_err(Error::user)?;
    if name.trim().is_empty() || name.contains(['\n', '\r']) {
        return Err(Error::user("the org name must be one non-empty line"));
    }
    let (signing, key_path, key_in_vault) = match key {
        Some(path) => {
            let key = ctx.keys.link(founder, path)?;
            let linked = ctx.keys.path_for(founder, &PublicKey::of(&key));
            (key, linked, false)
        }
        None => {
            let key = KeyStore::generate()?;
            let stored = ctx.keys.store(founder, &key)?;
            (key, stored.location().to_path_buf(), stored.in_vault())
        }
    };
    let public = PublicKey::of(&signing);
    let draft = Draft::new(Payload::OrgCreated(OrgCreated {
        name: name.trim().to_string(),
        founder: founder.to_string(),
        public_key: public.to_openssh(),
    }));
    let (written, _) = append(ctx, &signing, founder, Loaded::default(), vec![draft])?
        .map_err(|_| Error::conflict("another clutch init wrote refs/clutch/log at the same time"))?;
    let org = written[0].commit;
    git_config(ctx, "clutch.actor", founder)?;
    git_config(ctx, "clutch.orgId", &org.to_string())?;
    for remote in ctx.store.remotes()? {
        super::sync::setup_remote(ctx, &remote)?;
    }
    Ok(Founded { org, founder: founder.to_string(), key_path, key_in_vault })
}

fn git_config(ctx: &Ctx, key: &str, value: &str) -> Result<()> {
    let status = std::process::Command::new("git")
        .arg("--git-dir")
        .arg(ctx.store.git_dir())
        .args(["config", key, value])
        .status()
        .map_err(|err| Error::internal(format!("cannot run git config: {err}")))?;
    if !status.success() {
        return Err(Error::internal(format!("git config {key} failed")));
    }
    Ok(())
}

#[derive(Debug)]
pub struct AgentAdded {
    pub written: Written,
    /// Where the generated private key was stored, when clutch made one.
    pub key: Option<StoredKey>,
}

/// Register an agent. Without a public key, a key pair is made and kept on this machine.
pub fn agent_add(ctx: &Ctx, actor: &str, id: &str, role: Role, public_key: Option<&str>) -> Result<AgentAdded> {
    check_id("agent id", id).map_err(Error::user)?;
    let (public, generated) = match public_key {
        Some(text) => (PublicKey::parse_openssh(text)?, None),
        None => {
            let key = KeyStore::generate()?;
            (PublicKey::of(&key), Some(key))
        }
    };
    let key = match &generated {
        Some(key) => {
            let loaded = ctx.load()?;
            if loaded.state.agents.contains_key(id) {
                return Err(Error::user(format!("agent '{id}' already exists")));
            }
            Some(ctx.keys.store(id, key)?)
        }
        None => None,
    };
    let result = transact(ctx, actor, |_| {
        Ok(vec![Draft::new(Payload::AgentRegistered(AgentRegistered { id: id.to_string(), role, public_key: public.to_openssh() }))])
    });
    match result {
        Ok((mut written, _)) => Ok(AgentAdded { written: written.remove(0), key }),
        Err(err) => {
            if let Some(stored) = &key {
                let _ = ctx.keys.discard(stored); // the refusal is what the user needs to see; an unused key is harmless
            }
            Err(err)
        }
    }
}

pub fn project_new(ctx: &Ctx, actor: &str, name: &str, description: Option<&str>) -> Result<Written> {
    check_id("project name", name).map_err(Error::user)?;
    let (mut written, _) = transact(ctx, actor, |state| {
        if state.projects.contains_key(name) {
            return Err(Error::user(format!("project '{name}' already exists")));
        }
        Ok(vec![Draft::new(Payload::ProjectCreated(ProjectCreated {
            name: name.to_string(),
            description: description.map(str::to_string),
        }))])
    })?;
    Ok(written.remove(0))
}

/// What a run would refuse anyway, refused before anything is recorded: an unknown runtime, a
/// malformed policy, a secret reference that names no possible secret.
///
/// `role` decides which runs the agent can be given: a Junior only works, a Senior or the CEO
/// also reviews (and the CEO may only ever review), so theirs is refused only when no run of
/// either kind could go. Unknown (`None`), both are tried.
pub fn check_configuration(
    agent: &str,
    role: Option<Role>,
    runtime: &str,
    settings: &std::collections::BTreeMap<String, String>,
) -> Result<()> {
    let Some(rt) = crate::runtime::find(runtime) else {
        return Err(Error::user(format!("no runtime named '{runtime}' (known: {})", crate::runtime::NAMES.join(", "))));
    };
    let policy = crate::runtime::policy::Policy::from_settings(settings).map_err(|why| Error::user(format!("agent '{agent}': {why}")))?;
    for (key, value) in settings {
        if let Some(name) = value.strip_prefix(crate::vault::SECRET_REF) {
            crate::vault::check_name(name).map_err(|err| err.context(format!("setting {key}")))?;
        }
    }
    // What the runtime would refuse on any machine (an unenforceable policy, a bad setting)
    // is refused now, before the definition is written, not at its first run.
    let job = |purpose| crate::runtime::definition_job(agent, purpose, settings.clone(), policy.clone());
    let checked = rt.check(&job(crate::event::RunPurpose::Work)).or_else(|refused| match role {
        Some(Role::Junior) => Err(refused),
        _ => rt.check(&job(crate::event::RunPurpose::Review)).map_err(|_| refused),
    });
    checked.map_err(|refused| {
        Error::user(format!("runtime {runtime} would refuse every run of agent '{agent}': {}", refused.0))
            .hint(format!("change the settings (git clutch agent config {agent} --runtime {runtime} --runtime-opt KEY=VALUE …)"))
    })
}

/// The secrets `settings` refer to (`secret:NAME`) that the unlocked vault does not hold: a
/// run would be stopped for them. Nothing when the vault is locked (it cannot be asked then).
pub fn missing_secrets(ctx: &Ctx, settings: &std::collections::BTreeMap<String, String>) -> Vec<String> {
    let Ok(Some(vault)) = crate::vault::Vault::open_if_unlocked(&ctx.env) else { return Vec::new() };
    let mut missing: Vec<String> = settings
        .values()
        .filter_map(|v| v.strip_prefix(crate::vault::SECRET_REF))
        .filter(|name| vault.get(name).is_none())
        .map(str::to_string)
        .collect();
    missing.sort_unstable();
    missing.dedup();
    missing
}

/// Define how an agent runs (CEO): AGENT_CONFIGURED.
pub fn configure(
    ctx: &Ctx,
    actor: &str,
    agent: &str,
    runtime: &str,
    settings: &std::collections::BTreeMap<String, String>,
) -> Result<Written> {
    let role = ctx.load()?.state.agents.get(agent).map(|a| a.role);
    check_configuration(agent, role, runtime, settings)?;
    let (mut written, _) = transact(ctx, actor, |state| {
        if state.active_agent(agent).is_none() {
            return Err(Error::user(format!("'{agent}' is not an active agent")));
        }
        Ok(vec![Draft::new(Payload::AgentConfigured(crate::event::AgentConfigured {
            agent: agent.to_string(),
            runtime: runtime.to_string(),
            settings: settings.clone(),
        }))])
    })?;
    Ok(written.remove(0))
}

/// `KEY=VALUE` pairs from the command line.
pub fn parse_settings(items: &[String]) -> Result<std::collections::BTreeMap<String, String>> {
    let mut settings = std::collections::BTreeMap::new();
    for item in items {
        let (key, value) = item.split_once('=').ok_or_else(|| Error::usage(format!("--runtime-opt '{item}' is not KEY=VALUE")))?;
        if !crate::state::valid_setting(key.trim()) {
            return Err(Error::usage(format!(
                "setting name '{}' is not valid: use lowercase letters, digits, '.', '_' or '-', or env.VARIABLE",
                key.trim()
            )));
        }
        settings.insert(key.trim().to_string(), value.to_string());
    }
    Ok(settings)
}
