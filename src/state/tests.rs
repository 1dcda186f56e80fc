//! Reducer unit tests: events built in memory, no git.
//!
//! Every refusal goes through [`Org::refuse`], which also checks that the refused event left
//! the state exactly as it was (DESIGN §3: an invalid event is never applied).

use std::collections::BTreeMap;

use ed25519_dalek::SigningKey;

use super::*;
use crate::event::*;
use crate::sign::PublicKey;

// ---------------------------------------------------------------------------------------------
// Harness
// ---------------------------------------------------------------------------------------------

/// The public key `ssh-ed25519 AAAA…` of the test key made from `n`.
fn key(n: u8) -> String {
    PublicKey::of(&SigningKey::from_bytes(&[n; 32])).to_openssh()
}

/// An event ready for the reducer, with everything `Verified` borrows.
#[derive(Debug, Clone)]
struct Ev {
    commit: String,
    signer: String,
    event: Event,
    files: Vec<(String, String)>,
    is_root: bool,
}

impl Ev {
    fn verified(&self) -> Verified<'_> {
        Verified { commit: &self.commit, signer: &self.signer, event: &self.event, files: &self.files, is_root: self.is_root }
    }
    fn project(mut self, project: Option<&str>) -> Self {
        self.event.project = project.map(str::to_string);
        self
    }
    fn task(mut self, task: Option<&str>) -> Self {
        self.event.task = task.map(str::to_string);
        self
    }
    fn signer(mut self, signer: &str) -> Self {
        self.signer = signer.to_string();
        self
    }
    fn files(mut self, files: &[(&str, &str)]) -> Self {
        self.files = files.iter().map(|(n, b)| (n.to_string(), b.to_string())).collect();
        self
    }
    fn root(mut self, is_root: bool) -> Self {
        self.is_root = is_root;
        self
    }
    fn commit(mut self, commit: &str) -> Self {
        assert!(is_hex_oid(commit), "test commit ids are 40 hex: {commit}");
        self.commit = commit.to_string();
        self
    }
    fn cost(mut self, usd_micros: u64, input_tokens: u64) -> Self {
        self.event.cost =
            Cost { input_tokens, output_tokens: 2 * input_tokens, usd_micros, wall_ms: 7, source: CostSource::Provider, ..Cost::default() };
        self
    }
}

const CEO: &str = "ceo";
const SENIOR: &str = "sam";
const SENIOR2: &str = "sue";
const JUNIOR: &str = "jo";
const JUNIOR2: &str = "jim";
const HR: &str = "hal";
const BLOB: &str = "0123456789abcdef0123456789abcdef01234567";
const BLOB2: &str = "fedcba9876543210fedcba9876543210fedcba98";

/// An org being built event by event.
struct Org {
    state: State,
    /// Agent id → the key it signs with.
    keys: BTreeMap<String, String>,
    commits: u64,
    clock: u64,
    next_key: u8,
    /// Every event submitted, applied or refused, in order.
    log: Vec<Ev>,
}

impl Org {
    /// No events at all.
    fn bare() -> Org {
        Org { state: State::default(), keys: BTreeMap::new(), commits: 0, clock: 0, next_key: 10, log: Vec::new() }
    }

    /// Founded by `ceo`.
    fn new() -> Org {
        let mut org = Org::bare();
        let genesis = org.genesis();
        org.ok(genesis);
        org
    }

    /// Founded, with a senior, a second senior, two juniors and HR.
    fn staffed() -> Org {
        let mut org = Org::new();
        org.hire(SENIOR, Role::Senior);
        org.hire(SENIOR2, Role::Senior);
        org.hire(JUNIOR, Role::Junior);
        org.hire(JUNIOR2, Role::Junior);
        org.hire(HR, Role::Hr);
        org
    }

    /// The genesis event, as `init` would write it.
    fn genesis(&mut self) -> Ev {
        let founder_key = key(1);
        self.keys.insert(CEO.into(), founder_key.clone());
        let payload = Payload::OrgCreated(OrgCreated { name: "Acme".into(), founder: CEO.into(), public_key: founder_key });
        self.ev(CEO, payload).root(true)
    }

    /// A distinct 40-hex commit id whose first seven digits differ between calls.
    fn next_commit(&mut self) -> String {
        self.commits += 1;
        let x = self.commits.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        format!("{:016x}{:016x}{:08x}", x, x.rotate_left(29) ^ 0x5555_5555_5555_5555, self.commits)
    }

    /// An event by `actor`, signed with the actor's key (an unrelated key for a stranger).
    fn ev(&mut self, actor: &str, payload: Payload) -> Ev {
        self.clock += 1;
        let c = self.clock;
        let signer = self.keys.get(actor).cloned().unwrap_or_else(|| key(200));
        let event = Event {
            actor: actor.to_string(),
            at: format!("2026-11-24T{:02}:{:02}:{:02}Z", 8 + c / 3600, (c / 60) % 60, c % 60),
            clock: c,
            project: None,
            task: None,
            refs: vec![],
            cost: Cost::default(),
            payload,
        };
        Ev { commit: self.next_commit(), signer, event, files: vec![], is_root: false }
    }

    /// An event about `task`, naming the task's project as `ops::Draft::task` does.
    fn task_event(&mut self, actor: &str, task: &str, payload: Payload) -> Ev {
        let project = self.state.tasks.get(task).and_then(|t| t.project.clone());
        self.ev(actor, payload).task(Some(task)).project(project.as_deref())
    }

    #[track_caller]
    fn ok(&mut self, ev: Ev) -> Applied {
        let events = self.state.events;
        let applied = apply(&mut self.state, &ev.verified())
            .unwrap_or_else(|err| panic!("{} by {} should apply, was refused: {err}", ev.event.event_type(), ev.event.actor));
        assert_eq!(self.state.events, events + 1);
        self.log.push(ev);
        applied
    }

    /// Apply `ev`, expect a refusal mentioning `needle`, and check nothing changed.
    #[track_caller]
    fn refuse(&mut self, ev: Ev, needle: &str) -> String {
        let before = self.state.clone();
        let result = apply(&mut self.state, &ev.verified());
        let err = match result {
            Ok(_) => panic!("{} by {} should be refused ({needle}) but applied", ev.event.event_type(), ev.event.actor),
            Err(err) => err,
        };
        assert!(err.contains(needle), "refusal '{err}' should mention '{needle}'");
        assert_eq!(self.state, before, "refusing {} ('{err}') changed the state", ev.event.event_type());
        self.log.push(ev);
        err
    }

    fn hire(&mut self, id: &str, role: Role) {
        let k = key(self.next_key);
        self.next_key += 1;
        let ev = self.ev(CEO, Payload::AgentRegistered(AgentRegistered { id: id.into(), role, public_key: k.clone() }));
        let applied = self.ok(ev);
        assert_eq!(applied.created.as_deref(), Some(id));
        self.keys.insert(id.into(), k);
    }

    fn project(&mut self, actor: &str, name: &str) {
        let ev = self.ev(actor, project_created(name));
        self.ok(ev);
    }

    fn task(&mut self, actor: &str, title: &str, after: &[&str]) -> String {
        let ev = self.ev(actor, created(title, after));
        self.ok(ev).created.expect("a task id")
    }

    fn task_in(&mut self, actor: &str, project: &str, title: &str, after: &[&str]) -> String {
        let ev = self.ev(actor, created(title, after)).project(Some(project));
        self.ok(ev).created.expect("a task id")
    }

    fn assign(&mut self, lead: &str, task: &str, who: &str) {
        let ev = self.task_event(lead, task, assigned(who));
        self.ok(ev);
    }

    fn set(&mut self, actor: &str, task: &str, to: TaskStatus) {
        let ev = self.task_event(actor, task, status(to));
        self.ok(ev);
    }

    /// Assign to `who`, start, finish.
    fn finish(&mut self, task: &str, who: &str) {
        self.assign(SENIOR, task, who);
        self.set(who, task, TaskStatus::InProgress);
        self.set(who, task, TaskStatus::Done);
    }

    fn get(&self, task: &str) -> &Task {
        self.state.tasks.get(task).unwrap_or_else(|| panic!("no task {task}"))
    }

    fn ready(&self, task: &str) -> bool {
        self.state.is_ready(self.get(task))
    }
}

fn created(title: &str, after: &[&str]) -> Payload {
    Payload::TaskCreated(TaskCreated { title: title.into(), description: None, after: after.iter().map(|s| s.to_string()).collect() })
}

fn updated(after: &[&str]) -> Payload {
    Payload::TaskUpdated(TaskUpdated { title: None, description: None, after: after.iter().map(|s| s.to_string()).collect() })
}

fn project_created(name: &str) -> Payload {
    Payload::ProjectCreated(ProjectCreated { name: name.into(), description: None })
}

fn registered(id: &str, role: Role, public_key: &str) -> Payload {
    Payload::AgentRegistered(AgentRegistered { id: id.into(), role, public_key: public_key.into() })
}

fn assigned(who: &str) -> Payload {
    Payload::TaskAssigned(TaskAssigned { assignee: who.into(), claim: false })
}

fn claimed(who: &str) -> Payload {
    Payload::TaskAssigned(TaskAssigned { assignee: who.into(), claim: true })
}

fn status(to: TaskStatus) -> Payload {
    Payload::TaskStatusChanged(TaskStatusChanged { status: to, reason: None })
}

fn artifact(path: &str, blob: &str) -> Payload {
    Payload::ArtifactProduced(ArtifactProduced { path: path.into(), kind: "report".into(), blob: blob.into(), size: 12 })
}

/// A 40-hex commit id starting with `prefix`.
fn oid(prefix: &str) -> String {
    format!("{prefix:0<40}")
}

// ---------------------------------------------------------------------------------------------
// Genesis
// ---------------------------------------------------------------------------------------------

#[test]
fn genesis_founds_the_org_with_the_founder_as_ceo() {
    let mut org = Org::bare();
    let genesis = org.genesis().cost(1_500, 10);
    let commit = genesis.commit.clone();
    let applied = org.ok(genesis);
    assert_eq!(applied, Applied::default());
    let o = org.state.org.as_ref().expect("org exists");
    assert_eq!(o.id, commit, "the org id is the genesis commit id");
    assert_eq!(o.name, "Acme");
    assert_eq!(o.founder, CEO);
    let founder = org.state.agents.get(CEO).expect("founder on the roster");
    assert_eq!(founder.role, Role::Ceo);
    assert_eq!(founder.status, AgentStatus::Active);
    assert_eq!(founder.public_key, key(1));
    assert_eq!(founder.joined_by, commit);
    assert_eq!(founder.events, 1);
    assert_eq!(founder.spend.usd_micros, 1_500);
    assert_eq!(org.state.events, 1);
    assert_eq!(org.state.clock, 1);
    assert_eq!(org.state.spend.usd_micros, 1_500);
}

#[test]
fn genesis_key_comment_is_ignored() {
    let mut org = Org::bare();
    let mut genesis = org.genesis();
    if let Payload::OrgCreated(p) = &mut genesis.event.payload {
        p.public_key = format!("{}  founder@laptop", key(1));
    }
    org.ok(genesis);
    assert_eq!(org.state.agents[CEO].public_key, key(1), "the roster keeps type and data only");
}

#[test]
fn genesis_must_be_the_root_commit() {
    let mut org = Org::bare();
    let genesis = org.genesis().root(false);
    org.refuse(genesis, "must be the first commit");
    assert!(org.state.org.is_none());
}

#[test]
fn genesis_must_be_signed_by_the_founders_key() {
    let mut org = Org::bare();
    let genesis = org.genesis().signer(&key(2));
    org.refuse(genesis, "not signed with the founder's key");

    // The payload names key 2 but key 1 signed.
    let mut genesis = org.genesis();
    if let Payload::OrgCreated(p) = &mut genesis.event.payload {
        p.public_key = key(2);
    }
    org.refuse(genesis, "not signed with the founder's key");
}

#[test]
fn genesis_must_be_made_by_the_founder() {
    let mut org = Org::bare();
    let mut genesis = org.genesis();
    genesis.event.actor = "mallory".into();
    org.refuse(genesis, "names founder 'ceo' but is made by 'mallory'");
}

#[test]
fn genesis_checks_founder_id_and_name() {
    let mut org = Org::bare();
    let mut genesis = org.genesis();
    if let Payload::OrgCreated(p) = &mut genesis.event.payload {
        p.founder = "Bad Founder".into();
    }
    genesis.event.actor = "Bad Founder".into();
    org.refuse(genesis, "founder id 'Bad Founder' is not valid");

    let mut genesis = org.genesis();
    if let Payload::OrgCreated(p) = &mut genesis.event.payload {
        p.name = "   ".into();
    }
    org.refuse(genesis, "org name is empty");
}

#[test]
fn genesis_applies_only_once() {
    let mut org = Org::new();
    let again = org.genesis();
    org.refuse(again, "the org already exists");
    // Not even as a non-root commit.
    let again = org.genesis().root(false);
    org.refuse(again, "the org already exists");
    assert_eq!(org.state.events, 1);
}

#[test]
fn nothing_applies_before_genesis() {
    let mut org = Org::bare();
    org.keys.insert(CEO.into(), key(1));
    let ev = org.ev(CEO, registered("bob", Role::Senior, &key(3)));
    org.refuse(ev, "does not start with a valid ORG_CREATED");
    let ev = org.ev(CEO, project_created("core")).root(true);
    org.refuse(ev, "does not start with a valid ORG_CREATED");
    let ev = org.ev(CEO, created("work", &[])).root(true);
    org.refuse(ev, "does not start with a valid ORG_CREATED");
    assert_eq!(org.state, State::default());

    // A failed genesis leaves the log without an org: what follows is refused too.
    let bad = org.genesis().signer(&key(9));
    org.refuse(bad, "founder's key");
    let ev = org.ev(CEO, project_created("core"));
    org.refuse(ev, "does not start with a valid ORG_CREATED");
}

// ---------------------------------------------------------------------------------------------
// Key binding and the roster
// ---------------------------------------------------------------------------------------------

#[test]
fn event_signed_with_another_agents_key_is_refused() {
    let mut org = Org::staffed();
    let senior_key = org.keys[SENIOR].clone();
    // A junior tries to pass as the senior, but signs with the junior's own key.
    let junior_key = org.keys[JUNIOR].clone();
    let ev = org.ev(SENIOR, created("sneaky", &[])).signer(&junior_key);
    org.refuse(ev, "not the roster's key for 'sam'");
    // A stranger's key.
    let ev = org.ev(SENIOR, created("sneaky", &[])).signer(&key(99));
    org.refuse(ev, "not the roster's key for 'sam'");
    // The CEO's key does not make the senior's events valid either.
    let ceo_key = org.keys[CEO].clone();
    let ev = org.ev(SENIOR, created("sneaky", &[])).signer(&ceo_key);
    org.refuse(ev, "not the roster's key");
    // The right key works.
    let ev = org.ev(SENIOR, created("honest", &[])).signer(&senior_key);
    org.ok(ev);
}

#[test]
fn unknown_actor_is_refused() {
    let mut org = Org::staffed();
    let ev = org.ev("mallory", created("x", &[]));
    org.refuse(ev, "'mallory' is not an agent of this org");
    // Even when signed by a key that is on the roster.
    let k = org.keys[CEO].clone();
    let ev = org.ev("mallory", created("x", &[])).signer(&k);
    org.refuse(ev, "'mallory' is not an agent of this org");
}

#[test]
fn fired_agent_may_not_act_or_be_assigned() {
    let mut org = Org::staffed();
    let t = org.task(SENIOR, "work", &[]);
    org.state.agents.get_mut(JUNIOR).expect("junior").status = AgentStatus::Fired;
    let ev = org.task_event(JUNIOR, &t, claimed(JUNIOR));
    org.refuse(ev, "was fired");
    let ev = org.task_event(SENIOR, &t, assigned(JUNIOR));
    org.refuse(ev, "'jo' is not an active agent");
    org.state.agents.get_mut(SENIOR).expect("senior").status = AgentStatus::Fired;
    let ev = org.ev(SENIOR, created("more", &[]));
    org.refuse(ev, "agent 'sam' was fired");
}

#[test]
fn only_the_ceo_registers_agents() {
    let mut org = Org::staffed();
    for actor in [SENIOR, JUNIOR, HR] {
        let ev = org.ev(actor, registered("newbie", Role::Junior, &key(50)));
        org.refuse(ev, "may not add agents (that takes ceo)");
    }
    let ev = org.ev(CEO, registered("newbie", Role::Junior, &format!("{} newbie@host", key(50))));
    let commit = ev.commit.clone();
    assert_eq!(org.ok(ev).created.as_deref(), Some("newbie"));
    let newbie = &org.state.agents["newbie"];
    assert_eq!(newbie.role, Role::Junior);
    assert_eq!(newbie.public_key, key(50), "stored without the comment");
    assert_eq!(newbie.joined_by, commit);
    assert_eq!(newbie.events, 0);
    assert_eq!(newbie.status, AgentStatus::Active);
}

#[test]
fn agent_registration_checks_id_uniqueness_and_key() {
    let mut org = Org::staffed();
    let ev = org.ev(CEO, registered(JUNIOR, Role::Senior, &key(51)));
    org.refuse(ev, "agent 'jo' already exists");
    let ev = org.ev(CEO, registered(CEO, Role::Junior, &key(51)));
    org.refuse(ev, "agent 'ceo' already exists");
    let ev = org.ev(CEO, registered("Bad Id", Role::Junior, &key(51)));
    org.refuse(ev, "agent id 'Bad Id' is not valid");
    let ev = org.ev(CEO, registered("9lives", Role::Junior, &key(51)));
    org.refuse(ev, "is not valid");
    let ev = org.ev(CEO, registered("x", Role::Junior, "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQ"));
    org.refuse(ev, "is not a usable ssh-ed25519 public key");
    let ev = org.ev(CEO, registered("x", Role::Junior, "ssh-ed25519 AAAA"));
    org.refuse(ev, "is not a usable ssh-ed25519 public key");
    // Right length and prefix, but not a point on the curve.
    let off_curve = (0u8..=255)
        .map(|b| [b; 32])
        .find(|bytes| ed25519_dalek::VerifyingKey::from_bytes(bytes).is_err())
        .expect("some byte pattern is off the curve");
    let mut blob = b"\0\0\0\x0bssh-ed25519\0\0\0\x20".to_vec();
    blob.extend_from_slice(&off_curve);
    use base64ct::Encoding;
    let text = format!("ssh-ed25519 {}", base64ct::Base64::encode_string(&blob));
    let ev = org.ev(CEO, registered("x", Role::Junior, &text));
    org.refuse(ev, "not a valid curve point");
}

#[test]
fn applied_events_are_counted_per_signer() {
    let mut org = Org::staffed();
    let t = org.task(SENIOR, "work", &[]);
    let ev = org.task_event(JUNIOR, &t, claimed(JUNIOR));
    org.ok(ev);
    assert_eq!(org.state.agents[JUNIOR].events, 1);
    assert_eq!(org.state.agents[SENIOR].events, 1);
}

// ---------------------------------------------------------------------------------------------
// Roles
// ---------------------------------------------------------------------------------------------

#[test]
fn leads_create_projects() {
    let mut org = Org::staffed();
    org.project(SENIOR, "core");
    org.project(CEO, "web");
    let p = &org.state.projects["core"];
    assert_eq!(p.created_by, SENIOR);
    for actor in [JUNIOR, HR] {
        let ev = org.ev(actor, project_created("ops"));
        org.refuse(ev, "may not create projects (that takes ceo or senior)");
    }
    let ev = org.ev(CEO, project_created("core"));
    org.refuse(ev, "project 'core' already exists");
    let ev = org.ev(CEO, project_created("Core Stuff"));
    org.refuse(ev, "project name 'Core Stuff' is not valid");
    assert_eq!(org.state.projects.len(), 2);
}

#[test]
fn leads_create_tasks() {
    let mut org = Org::staffed();
    let a = org.task(SENIOR, "by senior", &[]);
    let b = org.task(CEO, "by ceo", &[]);
    assert_eq!(org.get(&a).created_by, SENIOR);
    assert_eq!(org.get(&b).created_by, CEO);
    assert_eq!(org.get(&a).status, TaskStatus::Open);
    assert_eq!(org.get(&a).assignee, None);
    let ev = org.ev(JUNIOR, created("by junior", &[]));
    org.refuse(ev, "junior 'jo' may not create tasks (that takes ceo or senior)");
    let ev = org.ev(HR, created("by hr", &[]));
    org.refuse(ev, "hr 'hal' may not create tasks");
    assert_eq!(org.state.tasks.len(), 2);
}

#[test]
fn task_creation_checks_title_project_and_envelope() {
    let mut org = Org::staffed();
    let ev = org.ev(SENIOR, created("  ", &[]));
    org.refuse(ev, "task title is empty");
    let ev = org.ev(SENIOR, created("two\nlines", &[]));
    org.refuse(ev, "task title must be one line");
    let ev = org.ev(SENIOR, created("somewhere", &[])).project(Some("nowhere"));
    org.refuse(ev, "no project 'nowhere'");
    let ev = org.ev(SENIOR, created("named", &[])).task(Some("t-1234567"));
    org.refuse(ev, "TASK_CREATED must not name a task");
    org.project(SENIOR, "core");
    let t = org.task_in(SENIOR, "core", "in core", &[]);
    assert_eq!(org.get(&t).project.as_deref(), Some("core"));
}

#[test]
fn leads_assign_tasks_to_workers() {
    let mut org = Org::staffed();
    let t = org.task(SENIOR, "work", &[]);
    for actor in [JUNIOR, HR] {
        let ev = org.task_event(actor, &t, assigned(JUNIOR2));
        org.refuse(ev, "may not assign tasks (that takes ceo or senior)");
    }
    let ev = org.task_event(SENIOR, &t, assigned(HR));
    org.refuse(ev, "'hal' is hr and does not work tasks");
    let ev = org.task_event(SENIOR, &t, assigned("nobody"));
    org.refuse(ev, "'nobody' is not an active agent");

    org.assign(SENIOR, &t, JUNIOR);
    assert_eq!(org.get(&t).assignee.as_deref(), Some(JUNIOR));
    assert_eq!(org.get(&t).status, TaskStatus::Assigned);
    // A lead may reassign, also to a senior or to the CEO.
    org.assign(CEO, &t, SENIOR2);
    assert_eq!(org.get(&t).assignee.as_deref(), Some(SENIOR2));
    org.assign(SENIOR, &t, CEO);
    assert_eq!(org.get(&t).assignee.as_deref(), Some(CEO));
}

#[test]
fn junior_and_hr_cannot_cancel() {
    let mut org = Org::staffed();
    let t = org.task(SENIOR, "work", &[]);
    org.assign(SENIOR, &t, JUNIOR);
    for actor in [JUNIOR, JUNIOR2, HR] {
        let ev = org.task_event(actor, &t, status(TaskStatus::Cancelled));
        org.refuse(ev, "may not cancel tasks (that takes ceo or senior)");
    }
    assert_eq!(org.get(&t).status, TaskStatus::Assigned);
}

#[test]
fn hr_cannot_claim_tasks() {
    let mut org = Org::staffed();
    let t = org.task(SENIOR, "work", &[]);
    let ev = org.task_event(HR, &t, claimed(HR));
    org.refuse(ev, "hr 'hal' may not claim tasks (that takes ceo or senior or junior)");
    assert_eq!(org.get(&t).assignee, None);
}

#[test]
fn only_leads_edit_tasks() {
    let mut org = Org::staffed();
    let a = org.task(SENIOR, "a", &[]);
    let b = org.task(SENIOR, "b", &[]);
    for actor in [JUNIOR, HR] {
        let ev = org.task_event(actor, &b, updated(&[&a]));
        org.refuse(ev, "may not edit tasks");
    }
    let mut ev = org.task_event(SENIOR2, &b, updated(&[&a]));
    if let Payload::TaskUpdated(p) = &mut ev.event.payload {
        p.title = Some("b, renamed".into());
        p.description = Some("details".into());
    }
    let at = ev.event.at.clone();
    org.ok(ev);
    let task = org.get(&b);
    assert_eq!(task.after, vec![a.clone()]);
    assert_eq!(task.title, "b, renamed");
    assert_eq!(task.description.as_deref(), Some("details"));
    assert_eq!(task.updated_at, at);

    let mut ev = org.task_event(SENIOR, &b, updated(&[]));
    if let Payload::TaskUpdated(p) = &mut ev.event.payload {
        p.title = Some("bad\rtitle".into());
    }
    org.refuse(ev, "task title must be one line");
}

// ---------------------------------------------------------------------------------------------
// Task ids
// ---------------------------------------------------------------------------------------------

#[test]
fn task_id_is_t_and_seven_hex_of_the_commit() {
    let mut org = Org::staffed();
    let commit = oid("3f9a2c1d");
    let ev = org.ev(SENIOR, created("work", &[])).commit(&commit);
    let applied = org.ok(ev);
    assert_eq!(applied.created.as_deref(), Some("t-3f9a2c1"));
    let task = org.get("t-3f9a2c1");
    assert_eq!(task.id, "t-3f9a2c1");
    assert_eq!(task.event, commit);
}

#[test]
fn task_id_lengthens_on_collision() {
    let mut org = Org::staffed();
    let c1 = "abcdef1200000000000000000000000000000001";
    let c2 = "abcdef1299999999999999999999999999999992";
    let c3 = "abcdef1234444444444444444444444444444443";
    let c4 = "abcdef1ff0000000000000000000000000000004";
    let ids: Vec<String> = [c1, c2, c3, c4]
        .iter()
        .map(|c| {
            let ev = org.ev(SENIOR, created("same prefix", &[])).commit(c);
            org.ok(ev).created.expect("id")
        })
        .collect();
    assert_eq!(ids, vec!["t-abcdef1", "t-abcdef12", "t-abcdef123", "t-abcdef1f"]);
    for (id, commit) in ids.iter().zip([c1, c2, c3, c4]) {
        assert_eq!(org.get(id).event, commit);
    }
    assert_eq!(org.state.tasks.len(), 4);
}

// ---------------------------------------------------------------------------------------------
// Dependencies and cycles
// ---------------------------------------------------------------------------------------------

#[test]
fn dependencies_must_exist() {
    let mut org = Org::staffed();
    let a = org.task(SENIOR, "a", &[]);
    let ev = org.ev(SENIOR, created("b", &[&a, "t-0000000"]));
    org.refuse(ev, "dependency 't-0000000' is not a task");
    let ev = org.task_event(SENIOR, &a, updated(&["t-0000000"]));
    org.refuse(ev, "dependency 't-0000000' is not a task");
    let b = org.task(SENIOR, "b", &[&a]);
    assert_eq!(org.get(&b).after, vec![a]);
}

#[test]
fn dependencies_may_not_be_listed_twice() {
    let mut org = Org::staffed();
    let a = org.task(SENIOR, "a", &[]);
    let b = org.task(SENIOR, "b", &[]);
    let ev = org.ev(SENIOR, created("c", &[&a, &b, &a]));
    let msg = org.refuse(ev, "is listed twice");
    assert!(msg.contains(&a), "{msg}");
    let c = org.task(SENIOR, "c", &[]);
    let ev = org.task_event(SENIOR, &c, updated(&[&b, &b]));
    org.refuse(ev, "listed twice");
}

#[test]
fn updating_adds_dependencies_without_duplicating_them() {
    let mut org = Org::staffed();
    let a = org.task(SENIOR, "a", &[]);
    let b = org.task(SENIOR, "b", &[]);
    let c = org.task(SENIOR, "c", &[&a]);
    let ev = org.task_event(SENIOR, &c, updated(&[&b]));
    org.ok(ev);
    assert_eq!(org.get(&c).after, vec![a.clone(), b.clone()]);
    // Adding a dependency the task already has keeps a single copy.
    let ev = org.task_event(SENIOR, &c, updated(&[&a]));
    org.ok(ev);
    assert_eq!(org.get(&c).after, vec![a, b]);
}

#[test]
fn self_dependency_is_a_cycle() {
    let mut org = Org::staffed();
    let a = org.task(SENIOR, "a", &[]);
    let ev = org.task_event(SENIOR, &a, updated(&[&a]));
    let msg = org.refuse(ev, "dependency cycle");
    assert_eq!(msg, format!("dependency cycle: {a} → {a}"));
}

#[test]
fn two_cycle_is_refused_with_its_path() {
    let mut org = Org::staffed();
    let a = org.task(SENIOR, "a", &[]);
    let b = org.task(SENIOR, "b", &[&a]);
    let ev = org.task_event(SENIOR, &a, updated(&[&b]));
    let msg = org.refuse(ev, "dependency cycle");
    assert_eq!(msg, format!("dependency cycle: {a} → {b} → {a}"));
}

#[test]
fn longer_cycle_is_refused_with_its_path() {
    let mut org = Org::staffed();
    let a = org.task(SENIOR, "a", &[]);
    let b = org.task(SENIOR, "b", &[&a]);
    let c = org.task(SENIOR, "c", &[&b]);
    let d = org.task(SENIOR, "d", &[&c]);
    let ev = org.task_event(SENIOR, &a, updated(&[&d]));
    let msg = org.refuse(ev, "dependency cycle");
    assert_eq!(msg, format!("dependency cycle: {a} → {d} → {c} → {b} → {a}"));
    // Closing the cycle half way is refused too.
    let ev = org.task_event(SENIOR, &b, updated(&[&c]));
    let msg = org.refuse(ev, "dependency cycle");
    assert_eq!(msg, format!("dependency cycle: {b} → {c} → {b}"));
}

#[test]
fn cycle_refusal_adds_none_of_the_listed_dependencies() {
    let mut org = Org::staffed();
    let a = org.task(SENIOR, "a", &[]);
    let b = org.task(SENIOR, "b", &[&a]);
    let x = org.task(SENIOR, "x", &[]);
    // x is fine on its own; b closes a cycle. Nothing of the event may stick.
    let ev = org.task_event(SENIOR, &a, updated(&[&x, &b]));
    org.refuse(ev, "dependency cycle");
    assert!(org.get(&a).after.is_empty());
}

#[test]
fn diamond_is_not_a_cycle() {
    let mut org = Org::staffed();
    let a = org.task(SENIOR, "a", &[]);
    let b = org.task(SENIOR, "b", &[&a]);
    let c = org.task(SENIOR, "c", &[&a]);
    let d = org.task(SENIOR, "d", &[&b]);
    let ev = org.task_event(SENIOR, &d, updated(&[&c, &a]));
    org.ok(ev);
    assert_eq!(org.get(&d).after, vec![b, c, a]);
}

fn graph(edges: &[(&str, &[&str])]) -> BTreeMap<String, Task> {
    edges
        .iter()
        .map(|(id, after)| {
            let task = Task {
                id: id.to_string(),
                seq: 0,
                title: id.to_string(),
                description: None,
                project: None,
                after: after.iter().map(|s| s.to_string()).collect(),
                status: TaskStatus::Open,
                assignee: None,
                created_by: CEO.into(),
                created_at: "2026-11-24T08:00:00Z".into(),
                updated_at: "2026-11-24T08:00:00Z".into(),
                assigned_at: None,
                done_at: None,
                event: oid("1"),
                spend: Spend::default(),
            };
            (id.to_string(), task)
        })
        .collect()
}

fn path(ids: &[&str]) -> Option<Vec<String>> {
    Some(ids.iter().map(|s| s.to_string()).collect())
}

#[test]
fn would_cycle_finds_cycles_and_their_paths() {
    // a ← b ← c ← d, and e ← c (c is after b and e); f stands alone.
    let tasks = graph(&[("a", &[]), ("b", &["a"]), ("e", &[]), ("c", &["b", "e"]), ("d", &["c"]), ("f", &[])]);
    assert_eq!(would_cycle(&tasks, "a", "a"), path(&["a", "a"]));
    assert_eq!(would_cycle(&tasks, "a", "b"), path(&["a", "b", "a"]));
    assert_eq!(would_cycle(&tasks, "a", "d"), path(&["a", "d", "c", "b", "a"]));
    assert_eq!(would_cycle(&tasks, "e", "d"), path(&["e", "d", "c", "e"]));
    assert_eq!(would_cycle(&tasks, "b", "c"), path(&["b", "c", "b"]));
    // Edges in the direction the graph already has are no cycle.
    assert_eq!(would_cycle(&tasks, "d", "a"), None);
    assert_eq!(would_cycle(&tasks, "c", "a"), None);
    assert_eq!(would_cycle(&tasks, "f", "d"), None);
    assert_eq!(would_cycle(&tasks, "a", "f"), None);
    // Unknown tasks have no edges.
    assert_eq!(would_cycle(&tasks, "a", "zzz"), None);
    assert_eq!(would_cycle(&tasks, "zzz", "d"), None);
}

#[test]
fn would_cycle_terminates_on_shared_subgraphs() {
    // A wide diamond lattice: every node of a level depends on every node of the level below.
    let mut edges: Vec<(String, Vec<String>)> = Vec::new();
    for level in 0..6 {
        for i in 0..4 {
            let after = if level == 0 { vec![] } else { (0..4).map(|j| format!("n{}-{j}", level - 1)).collect() };
            edges.push((format!("n{level}-{i}"), after));
        }
    }
    let owned: Vec<(&str, Vec<&str>)> = edges.iter().map(|(id, a)| (id.as_str(), a.iter().map(String::as_str).collect())).collect();
    let borrowed: Vec<(&str, &[&str])> = owned.iter().map(|(id, a)| (*id, a.as_slice())).collect();
    let tasks = graph(&borrowed);
    assert_eq!(would_cycle(&tasks, "n5-0", "n0-0"), None);
    let cycle = would_cycle(&tasks, "n0-3", "n5-1").expect("a cycle");
    assert_eq!(cycle.first().map(String::as_str), Some("n0-3"));
    assert_eq!(cycle.last().map(String::as_str), Some("n0-3"));
    assert_eq!(cycle.len(), 7, "n0-3 → n5-1 → n4 → n3 → n2 → n1 → n0-3: {cycle:?}");
    for pair in cycle.windows(2).skip(1) {
        assert!(tasks[&pair[0]].after.contains(&pair[1]), "{} does not depend on {}", pair[0], pair[1]);
    }
}

// ---------------------------------------------------------------------------------------------
// Ready set
// ---------------------------------------------------------------------------------------------

#[test]
fn ready_set_follows_finished_dependencies() {
    let mut org = Org::staffed();
    let a = org.task(SENIOR, "a", &[]);
    let b = org.task(SENIOR, "b", &[&a]);
    let c = org.task(SENIOR, "c", &[&a, &b]);
    let d = org.task(SENIOR, "d", &[]);
    assert!(org.ready(&a) && org.ready(&d));
    assert!(!org.ready(&b) && !org.ready(&c));
    assert!(!org.state.dependencies_done(org.get(&b)));

    org.assign(SENIOR, &a, JUNIOR);
    assert!(org.ready(&a), "an assigned task is still ready");
    org.set(JUNIOR, &a, TaskStatus::InProgress);
    assert!(!org.ready(&a), "a started task is no longer ready");
    assert!(!org.ready(&b), "a started dependency is not done");
    org.set(JUNIOR, &a, TaskStatus::Done);
    assert!(!org.ready(&a), "a done task is not ready");
    assert!(org.ready(&b));
    assert!(!org.ready(&c), "c also waits for b");
    assert!(!org.state.dependencies_done(org.get(&c)));

    org.finish(&b, JUNIOR2);
    assert!(org.ready(&c));
    assert!(org.state.dependencies_done(org.get(&c)));

    org.set(SENIOR, &d, TaskStatus::Cancelled);
    assert!(!org.ready(&d), "a cancelled task is not ready");
}

#[test]
fn cancelled_dependency_does_not_count_as_done() {
    let mut org = Org::staffed();
    let a = org.task(SENIOR, "a", &[]);
    let b = org.task(SENIOR, "b", &[&a]);
    org.set(SENIOR, &a, TaskStatus::Cancelled);
    assert!(!org.ready(&b));
    assert!(!org.state.dependencies_done(org.get(&b)));
}

#[test]
fn a_dependency_added_later_unreadies_the_task() {
    let mut org = Org::staffed();
    let a = org.task(SENIOR, "a", &[]);
    let b = org.task(SENIOR, "b", &[]);
    assert!(org.ready(&b));
    let ev = org.task_event(SENIOR, &b, updated(&[&a]));
    org.ok(ev);
    assert!(!org.ready(&b));
    org.finish(&a, JUNIOR);
    assert!(org.ready(&b));
}

// ---------------------------------------------------------------------------------------------
// Claim, start, done, cancel
// ---------------------------------------------------------------------------------------------

#[test]
fn claim_by_a_worker_for_itself_when_unassigned() {
    let mut org = Org::staffed();
    let t = org.task(SENIOR, "work", &[]);
    let ev = org.task_event(JUNIOR, &t, claimed(JUNIOR));
    let at = ev.event.at.clone();
    org.ok(ev);
    let task = org.get(&t);
    assert_eq!(task.assignee.as_deref(), Some(JUNIOR));
    assert_eq!(task.status, TaskStatus::Assigned);
    assert_eq!(task.updated_at, at);
    // Seniors and the CEO are workers too.
    let u = org.task(SENIOR, "more", &[]);
    let ev = org.task_event(SENIOR2, &u, claimed(SENIOR2));
    org.ok(ev);
    let w = org.task(SENIOR, "even more", &[]);
    let ev = org.task_event(CEO, &w, claimed(CEO));
    org.ok(ev);
}

#[test]
fn claim_is_refused_for_others_or_when_taken() {
    let mut org = Org::staffed();
    let t = org.task(SENIOR, "work", &[]);
    let ev = org.task_event(JUNIOR, &t, claimed(JUNIOR2));
    org.refuse(ev, "'jo' cannot claim a task for 'jim'");
    // A lead cannot "claim" on someone's behalf either: that is an assignment.
    let ev = org.task_event(SENIOR, &t, claimed(JUNIOR));
    org.refuse(ev, "'sam' cannot claim a task for 'jo'");

    let ev = org.task_event(JUNIOR, &t, claimed(JUNIOR));
    org.ok(ev);
    let ev = org.task_event(JUNIOR2, &t, claimed(JUNIOR2));
    org.refuse(ev, "is already assigned to jo");
    let ev = org.task_event(JUNIOR, &t, claimed(JUNIOR));
    org.refuse(ev, "is already assigned to jo");

    let assigned_by_lead = org.task(SENIOR, "given", &[]);
    org.assign(SENIOR, &assigned_by_lead, JUNIOR2);
    let ev = org.task_event(JUNIOR, &assigned_by_lead, claimed(JUNIOR));
    org.refuse(ev, "already assigned to jim");

    let closed = org.task(SENIOR, "closed", &[]);
    org.set(SENIOR, &closed, TaskStatus::Cancelled);
    let ev = org.task_event(JUNIOR, &closed, claimed(JUNIOR));
    org.refuse(ev, "is cancelled");
    let ev = org.task_event(SENIOR, &closed, assigned(JUNIOR));
    org.refuse(ev, "is cancelled");
}

#[test]
fn start_only_by_the_assignee_of_an_assigned_task() {
    let mut org = Org::staffed();
    let t = org.task(SENIOR, "work", &[]);
    let ev = org.task_event(JUNIOR, &t, status(TaskStatus::InProgress));
    org.refuse(ev, "only the assignee may start task");
    org.assign(SENIOR, &t, JUNIOR);
    for actor in [JUNIOR2, SENIOR, CEO] {
        let ev = org.task_event(actor, &t, status(TaskStatus::InProgress));
        org.refuse(ev, "only the assignee may start task");
    }
    org.set(JUNIOR, &t, TaskStatus::InProgress);
    assert_eq!(org.get(&t).status, TaskStatus::InProgress);
    let ev = org.task_event(JUNIOR, &t, status(TaskStatus::InProgress));
    org.refuse(ev, "is in_progress, not assigned");
}

#[test]
fn start_waits_for_dependencies() {
    let mut org = Org::staffed();
    let a = org.task(SENIOR, "a", &[]);
    let b = org.task(SENIOR, "b", &[&a]);
    org.assign(SENIOR, &b, JUNIOR);
    let ev = org.task_event(JUNIOR, &b, status(TaskStatus::InProgress));
    let msg = org.refuse(ev, "waits for");
    assert_eq!(msg, format!("task {b} waits for {a} to be done"));
    org.finish(&a, JUNIOR2);
    org.set(JUNIOR, &b, TaskStatus::InProgress);
}

#[test]
fn done_by_the_assignee_or_a_lead() {
    let mut org = Org::staffed();
    let t = org.task(SENIOR, "work", &[]);
    org.assign(SENIOR, &t, JUNIOR);
    org.set(JUNIOR, &t, TaskStatus::InProgress);
    for actor in [JUNIOR2, HR] {
        let ev = org.task_event(actor, &t, status(TaskStatus::Done));
        org.refuse(ev, "only the assignee or a senior may finish task");
    }
    org.set(JUNIOR, &t, TaskStatus::Done);
    assert_eq!(org.get(&t).status, TaskStatus::Done);

    // A lead who is not the assignee may close it, straight from assigned.
    let u = org.task(SENIOR, "other", &[]);
    org.assign(SENIOR, &u, JUNIOR);
    org.set(SENIOR2, &u, TaskStatus::Done);
    assert_eq!(org.get(&u).status, TaskStatus::Done);
    let w = org.task(SENIOR, "third", &[]);
    org.assign(SENIOR, &w, JUNIOR);
    org.set(CEO, &w, TaskStatus::Done);
}

#[test]
fn done_needs_an_assigned_or_started_task_with_dependencies_done() {
    let mut org = Org::staffed();
    let open = org.task(SENIOR, "open", &[]);
    let ev = org.task_event(SENIOR, &open, status(TaskStatus::Done));
    org.refuse(ev, "is open: only an assigned or started task can be done");

    let a = org.task(SENIOR, "a", &[]);
    let b = org.task(SENIOR, "b", &[&a]);
    org.assign(SENIOR, &b, JUNIOR);
    let ev = org.task_event(JUNIOR, &b, status(TaskStatus::Done));
    org.refuse(ev, "waits for");
    let ev = org.task_event(SENIOR, &b, status(TaskStatus::Done));
    org.refuse(ev, "waits for");

    org.finish(&a, JUNIOR2);
    let ev = org.task_event(JUNIOR2, &a, status(TaskStatus::Done));
    org.refuse(ev, "is done: only an assigned or started task can be done");
    org.set(JUNIOR, &b, TaskStatus::Done);
}

#[test]
fn cancel_by_a_lead_and_not_when_closed() {
    let mut org = Org::staffed();
    let open = org.task(SENIOR, "open", &[]);
    org.set(SENIOR, &open, TaskStatus::Cancelled);
    assert_eq!(org.get(&open).status, TaskStatus::Cancelled);
    let ev = org.task_event(CEO, &open, status(TaskStatus::Cancelled));
    org.refuse(ev, "is already cancelled");

    let started = org.task(SENIOR, "started", &[]);
    org.assign(SENIOR, &started, JUNIOR);
    org.set(JUNIOR, &started, TaskStatus::InProgress);
    let ev = org.task_event(JUNIOR, &started, status(TaskStatus::Cancelled));
    org.refuse(ev, "junior 'jo' may not cancel tasks");
    org.set(CEO, &started, TaskStatus::Cancelled);
    assert_eq!(org.get(&started).status, TaskStatus::Cancelled);
    assert_eq!(org.get(&started).assignee.as_deref(), Some(JUNIOR), "cancelling keeps the assignee");

    let done = org.task(SENIOR, "done", &[]);
    org.finish(&done, JUNIOR);
    let ev = org.task_event(SENIOR, &done, status(TaskStatus::Cancelled));
    org.refuse(ev, "is already done");
    // A cancelled task cannot be finished or started either.
    let ev = org.task_event(JUNIOR, &started, status(TaskStatus::Done));
    org.refuse(ev, "is cancelled");
    let ev = org.task_event(JUNIOR, &started, status(TaskStatus::InProgress));
    org.refuse(ev, "not assigned");
}

#[test]
fn status_cannot_be_set_back_to_open_or_assigned() {
    let mut org = Org::staffed();
    let t = org.task(SENIOR, "work", &[]);
    org.assign(SENIOR, &t, JUNIOR);
    org.set(JUNIOR, &t, TaskStatus::InProgress);
    for to in [TaskStatus::Open, TaskStatus::Assigned] {
        let ev = org.task_event(SENIOR, &t, status(to));
        org.refuse(ev, "cannot be set to");
    }
}

#[test]
fn closed_tasks_cannot_be_edited_or_assigned() {
    let mut org = Org::staffed();
    let a = org.task(SENIOR, "a", &[]);
    let t = org.task(SENIOR, "t", &[]);
    org.finish(&t, JUNIOR);
    let ev = org.task_event(SENIOR, &t, updated(&[&a]));
    org.refuse(ev, "is done: it can no longer change");
    let ev = org.task_event(SENIOR, &t, assigned(JUNIOR2));
    org.refuse(ev, "is done");
    let c = org.task(SENIOR, "c", &[]);
    org.set(SENIOR, &c, TaskStatus::Cancelled);
    let ev = org.task_event(SENIOR, &c, updated(&[&a]));
    org.refuse(ev, "is cancelled: it can no longer change");
}

#[test]
fn task_events_must_name_an_existing_task() {
    let mut org = Org::staffed();
    let ev = org.ev(SENIOR, assigned(JUNIOR));
    org.refuse(ev, "TASK_ASSIGNED must name its task");
    let ev = org.ev(JUNIOR, status(TaskStatus::InProgress));
    org.refuse(ev, "TASK_STATUS_CHANGED must name its task");
    let ev = org.ev(SENIOR, updated(&[]));
    org.refuse(ev, "TASK_UPDATED must name its task");
    let ev = org.ev(JUNIOR, artifact("r.txt", BLOB)).files(&[("r.txt", BLOB)]);
    org.refuse(ev, "ARTIFACT_PRODUCED must name its task");
    let ev = org.ev(SENIOR, assigned(JUNIOR)).task(Some("t-0000000"));
    org.refuse(ev, "no task 't-0000000'");
    // The short form a person types is not an id on the wire.
    let t = org.task(SENIOR, "work", &[]);
    let ev = org.ev(SENIOR, assigned(JUNIOR)).task(Some(&t[2..]));
    org.refuse(ev, "no task");
}

// ---------------------------------------------------------------------------------------------
// Artifacts
// ---------------------------------------------------------------------------------------------

#[test]
fn artifact_needs_its_file_in_the_tree() {
    let mut org = Org::staffed();
    let t = org.task(SENIOR, "work", &[]);
    org.assign(SENIOR, &t, JUNIOR);
    let ev = org.task_event(JUNIOR, &t, artifact("report.md", BLOB));
    org.refuse(ev, "artifact content files/report.md with blob");
    let ev = org.task_event(JUNIOR, &t, artifact("report.md", BLOB)).files(&[("report.md", BLOB2)]);
    org.refuse(ev, "is not in the event's tree");
    let ev = org.task_event(JUNIOR, &t, artifact("report.md", BLOB)).files(&[("other.md", BLOB)]);
    org.refuse(ev, "is not in the event's tree");
    assert!(org.state.artifacts.is_empty());

    let ev = org.task_event(JUNIOR, &t, artifact("report.md", BLOB)).files(&[("other.md", BLOB2), ("report.md", BLOB)]);
    let commit = ev.commit.clone();
    let at = ev.event.at.clone();
    org.ok(ev);
    let recorded: Vec<&Artifact> = org.state.artifacts_of(&t).collect();
    assert_eq!(
        recorded,
        vec![&Artifact {
            task: t.clone(),
            path: "report.md".into(),
            kind: "report".into(),
            blob: BLOB.into(),
            size: 12,
            by: JUNIOR.into(),
            at: at.clone(),
            event: commit,
        }]
    );
    assert_eq!(org.get(&t).updated_at, at);
    assert_eq!(org.state.artifacts_of("t-0000000").count(), 0);
}

#[test]
fn artifact_by_the_assignee_or_a_lead() {
    let mut org = Org::staffed();
    let t = org.task(SENIOR, "work", &[]);
    let ev = org.task_event(JUNIOR, &t, artifact("a.txt", BLOB)).files(&[("a.txt", BLOB)]);
    org.refuse(ev, "only the assignee or a senior may add artifacts");
    org.assign(SENIOR, &t, JUNIOR);
    for actor in [JUNIOR2, HR] {
        let ev = org.task_event(actor, &t, artifact("a.txt", BLOB)).files(&[("a.txt", BLOB)]);
        org.refuse(ev, "only the assignee or a senior may add artifacts");
    }
    let ev = org.task_event(JUNIOR, &t, artifact("a.txt", BLOB)).files(&[("a.txt", BLOB)]);
    org.ok(ev);
    let ev = org.task_event(SENIOR2, &t, artifact("b.txt", BLOB2)).files(&[("b.txt", BLOB2)]);
    org.ok(ev);
    // Also after the task is done.
    org.set(JUNIOR, &t, TaskStatus::InProgress);
    org.set(JUNIOR, &t, TaskStatus::Done);
    let ev = org.task_event(JUNIOR, &t, artifact("c.txt", BLOB)).files(&[("c.txt", BLOB)]);
    org.ok(ev);
    let by: Vec<&str> = org.state.artifacts_of(&t).map(|a| a.by.as_str()).collect();
    assert_eq!(by, vec![JUNIOR, SENIOR2, JUNIOR]);
}

#[test]
fn artifact_refused_on_cancelled_task_or_bad_name() {
    let mut org = Org::staffed();
    let t = org.task(SENIOR, "work", &[]);
    org.assign(SENIOR, &t, JUNIOR);
    for bad in ["", "dir/file.txt", ".", ".."] {
        let ev = org.task_event(JUNIOR, &t, artifact(bad, BLOB)).files(&[(bad, BLOB)]);
        org.refuse(ev, "is not a plain file name");
    }
    org.set(SENIOR, &t, TaskStatus::Cancelled);
    let ev = org.task_event(JUNIOR, &t, artifact("a.txt", BLOB)).files(&[("a.txt", BLOB)]);
    org.refuse(ev, "is cancelled");
}

// ---------------------------------------------------------------------------------------------
// Project consistency
// ---------------------------------------------------------------------------------------------

#[test]
fn task_events_must_name_the_tasks_project() {
    let mut org = Org::staffed();
    org.project(SENIOR, "core");
    org.project(SENIOR, "web");
    let t = org.task_in(SENIOR, "core", "in core", &[]);
    let loose = org.task(SENIOR, "no project", &[]);
    let dep = org.task(SENIOR, "dep", &[]);
    #[allow(clippy::type_complexity, reason = "a table of test cases")]
    let payloads: Vec<(&str, Payload, Vec<(&str, &str)>)> = vec![
        (SENIOR, assigned(JUNIOR), vec![]),
        (JUNIOR, claimed(JUNIOR), vec![]),
        (SENIOR, status(TaskStatus::Cancelled), vec![]),
        (SENIOR, updated(&[&dep]), vec![]),
        (SENIOR, artifact("a.txt", BLOB), vec![("a.txt", BLOB)]),
    ];
    for (actor, payload, files) in &payloads {
        for wrong in [None, Some("web"), Some("nowhere")] {
            let ev = org.ev(actor, payload.clone()).task(Some(&t)).project(wrong).files(files);
            org.refuse(ev, "belongs to Some(\"core\")");
        }
        let ev = org.ev(actor, payload.clone()).task(Some(&loose)).project(Some("core"));
        org.refuse(ev, "belongs to None");
    }
    // With the right project every one of them applies.
    let ev = org.task_event(SENIOR, &t, updated(&[&dep]));
    org.ok(ev);
    let ev = org.task_event(JUNIOR, &t, claimed(JUNIOR));
    org.ok(ev);
    let ev = org.task_event(JUNIOR, &t, artifact("a.txt", BLOB)).files(&[("a.txt", BLOB)]);
    org.ok(ev);
    let ev = org.task_event(SENIOR, &t, status(TaskStatus::Cancelled));
    org.ok(ev);
}

/// DESIGN §4 rolls spend up by the event's project and task, so the two must agree on every
/// event that names a task, not only on the task event types.
#[test]
fn any_event_naming_a_task_must_name_its_project() {
    let mut org = Org::staffed();
    org.project(SENIOR, "core");
    org.project(SENIOR, "web");
    let t = org.task_in(SENIOR, "core", "in core", &[]);
    let ev = org.ev(CEO, registered("newbie", Role::Junior, &key(60))).task(Some(&t)).project(Some("web")).cost(5_000, 100);
    org.refuse(ev, "belongs to");
    assert_eq!(org.state.projects["web"].spend, Spend::default());
    assert_eq!(org.get(&t).spend, Spend::default());
}

// ---------------------------------------------------------------------------------------------
// Spend
// ---------------------------------------------------------------------------------------------

#[test]
fn spend_rolls_up_into_org_agent_project_and_task() {
    let mut org = Org::staffed();
    org.project(SENIOR, "core");
    let t = org.task_in(SENIOR, "core", "work", &[]);
    let u = org.task_in(SENIOR, "core", "other", &[]);
    let loose = org.task(SENIOR, "loose", &[]);
    let base = org.state.spend.clone();
    assert_eq!(base, Spend::default());

    let ev = org.task_event(JUNIOR, &t, claimed(JUNIOR)).cost(1_000, 10);
    org.ok(ev);
    let ev = org.task_event(JUNIOR, &t, status(TaskStatus::InProgress)).cost(20_000, 300);
    org.ok(ev);
    let ev = org.task_event(JUNIOR2, &u, claimed(JUNIOR2)).cost(400, 4);
    org.ok(ev);
    let ev = org.task_event(JUNIOR2, &loose, claimed(JUNIOR2)).cost(5, 1);
    org.ok(ev);
    let ev = org.ev(SENIOR, created("costly planning", &[])).project(Some("core")).cost(70, 0);
    org.ok(ev);
    // A refused event costs nothing anywhere.
    let ev = org.task_event(JUNIOR2, &t, status(TaskStatus::Done)).cost(999_999, 999);
    org.refuse(ev, "only the assignee");

    let s = &org.state;
    assert_eq!(s.spend.usd_micros, 21_475);
    assert_eq!(s.spend.input_tokens, 315);
    assert_eq!(s.spend.output_tokens, 630);
    assert_eq!(s.spend.wall_ms, 35);
    assert_eq!(s.agents[JUNIOR].spend.usd_micros, 21_000);
    assert_eq!(s.agents[JUNIOR].spend.input_tokens, 310);
    assert_eq!(s.agents[JUNIOR2].spend.usd_micros, 405);
    assert_eq!(s.agents[SENIOR].spend.usd_micros, 70);
    assert_eq!(s.agents[CEO].spend.usd_micros, 0);
    assert_eq!(s.projects["core"].spend.usd_micros, 21_470);
    assert_eq!(s.projects["core"].spend.input_tokens, 314);
    assert_eq!(s.tasks[&t].spend.usd_micros, 21_000);
    assert_eq!(s.tasks[&t].spend.output_tokens, 620);
    assert_eq!(s.tasks[&u].spend.usd_micros, 400);
    assert_eq!(s.tasks[&loose].spend.usd_micros, 5);
    // The sum over agents is the org's spend.
    let agents: u64 = s.agents.values().map(|a| a.spend.usd_micros).sum();
    assert_eq!(agents, s.spend.usd_micros);
}

#[test]
fn events_and_clock_are_counted() {
    let mut org = Org::staffed();
    let events = org.state.events;
    let t = org.task(SENIOR, "work", &[]);
    let mut ev = org.task_event(JUNIOR, &t, claimed(JUNIOR));
    ev.event.clock = 1_000;
    org.ok(ev);
    assert_eq!(org.state.clock, 1_000);
    // A lower clock (a merged branch) does not move the highest clock back.
    let mut ev = org.task_event(JUNIOR, &t, status(TaskStatus::InProgress));
    ev.event.clock = 3;
    org.ok(ev);
    assert_eq!(org.state.clock, 1_000);
    assert_eq!(org.state.events, events + 3);
    assert_eq!(org.state.agents[JUNIOR].events, 2);
}

// ---------------------------------------------------------------------------------------------
// Unsupported event types
// ---------------------------------------------------------------------------------------------

fn gate() -> Gate {
    Gate { required_approvals: 1, approvals: vec![SENIOR.into()], require_tests: false, test_run: None, unmet: vec![] }
}

#[test]
fn governance_events_about_missing_things_are_refused() {
    let mut org = Org::staffed();
    let head = oid("aa");
    let cases: Vec<(&str, Payload, &str)> = vec![
        (
            CEO,
            Payload::MergeApproved(MergeApproved { pr: "pr-1".into(), head: head.clone(), gate: gate(), result: oid("bb") }),
            "no PR 'pr-1'",
        ),
        (SENIOR, Payload::MergeBlocked(MergeBlocked { pr: "pr-1".into(), head: head.clone(), gate: gate() }), "no PR 'pr-1'"),
        (
            JUNIOR,
            Payload::PrOpened(PrOpened { title: "x".into(), base: "main".into(), head_branch: "feature".into(), head: head.clone() }),
            "must name its task",
        ),
        (
            SENIOR,
            Payload::ReviewCommented(ReviewCommented {
                pr: "pr-1".into(),
                head: head.clone(),
                verdict: Verdict::Approve,
                body: "ok".into(),
            }),
            "no PR 'pr-1'",
        ),
        (
            CEO,
            Payload::DecisionRecorded(DecisionRecorded { proposal: None, approve: None, policy: BTreeMap::new(), reason: "policy".into() }),
            "must settle a proposal or set policy",
        ),
        (CEO, Payload::BudgetUpdated(BudgetUpdated { scope: "project:ghost".into(), usd_micros: Some(1), tokens: None }), "names nothing"),
        (
            HR,
            Payload::EvalReported(EvalReported { agent: "ghost".into(), window: "7d".into(), scorecard: BTreeMap::new(), summary: None }),
            "no agent",
        ),
    ];
    for (actor, payload, needle) in cases {
        let ev = org.ev(actor, payload);
        org.refuse(ev, needle);
    }
    // Key binding is still checked first.
    let ev =
        org.ev(SENIOR, Payload::MergeApproved(MergeApproved { pr: "pr-1".into(), head, gate: gate(), result: oid("bb") })).signer(&key(99));
    org.refuse(ev, "not the roster's key");
}

// ---------------------------------------------------------------------------------------------
// Determinism and atomicity over a whole log
// ---------------------------------------------------------------------------------------------

/// A busy log with refusals sprinkled in.
fn busy_org() -> Org {
    let mut org = Org::staffed();
    org.project(SENIOR, "core");
    let a = org.task_in(SENIOR, "core", "a", &[]);
    let b = org.task_in(SENIOR, "core", "b", &[&a]);
    let c = org.task(CEO, "c", &[]);
    let ev = org.task_event(SENIOR, &a, updated(&[&b]));
    org.refuse(ev, "cycle");
    let ev = org.task_event(JUNIOR, &a, claimed(JUNIOR)).cost(100, 1);
    org.ok(ev);
    let ev = org.task_event(JUNIOR2, &a, claimed(JUNIOR2));
    org.refuse(ev, "already assigned");
    org.set(JUNIOR, &a, TaskStatus::InProgress);
    let ev = org.task_event(JUNIOR, &a, artifact("out.txt", BLOB)).files(&[("out.txt", BLOB)]).cost(5, 5);
    org.ok(ev);
    org.set(JUNIOR, &a, TaskStatus::Done);
    org.assign(SENIOR, &b, JUNIOR2);
    let ev = org.task_event(HR, &c, claimed(HR));
    org.refuse(ev, "may not claim");
    org.set(SENIOR, &c, TaskStatus::Cancelled);
    org
}

#[test]
fn replaying_the_same_events_gives_the_same_state() {
    let org = busy_org();
    let replay = |log: &[Ev]| {
        let mut state = State::default();
        let outcomes: Vec<Result<Applied, String>> = log.iter().map(|ev| apply(&mut state, &ev.verified())).collect();
        (state, outcomes)
    };
    let (one, outcomes_one) = replay(&org.log);
    let (two, outcomes_two) = replay(&org.log);
    assert_eq!(one, two);
    assert_eq!(outcomes_one, outcomes_two);
    assert_eq!(one, org.state, "replay reproduces the state built step by step");
    assert_eq!(outcomes_one.iter().filter(|o| o.is_err()).count(), 3);
    // The state survives a round trip through its cache format.
    let json = serde_json::to_string(&one).expect("serializes");
    let back: State = serde_json::from_str(&json).expect("deserializes");
    assert_eq!(back, one);
}

#[test]
fn refused_events_leave_no_trace_in_replay() {
    let org = busy_org();
    // Replaying only the events that applied gives exactly the same state.
    let mut probe = State::default();
    let accepted: Vec<&Ev> = org.log.iter().filter(|ev| apply(&mut probe, &ev.verified()).is_ok()).collect();
    let mut state = State::default();
    for ev in &accepted {
        apply(&mut state, &ev.verified()).expect("applies again");
    }
    assert_eq!(state, org.state);
    assert_eq!(state.events as usize, accepted.len());
}

// ---------------------------------------------------------------------------------------------
// find_task
// ---------------------------------------------------------------------------------------------

#[test]
fn find_task_by_id_or_unique_prefix() {
    let mut org = Org::staffed();
    for c in ["abc1230", "abc4560", "abd7890", "ff00000"] {
        let ev = org.ev(SENIOR, created(c, &[])).commit(&oid(c));
        org.ok(ev);
    }
    let s = &org.state;
    assert_eq!(s.find_task("t-abc1230").map(|t| t.title.as_str()), Ok("abc1230"));
    assert_eq!(s.find_task("t-abc4").map(|t| t.id.as_str()), Ok("t-abc4560"));
    assert_eq!(s.find_task("abc4").map(|t| t.id.as_str()), Ok("t-abc4560"), "the t- may be left out");
    assert_eq!(s.find_task("abd").map(|t| t.id.as_str()), Ok("t-abd7890"));
    assert_eq!(s.find_task("t-ff").map(|t| t.id.as_str()), Ok("t-ff00000"));
    assert_eq!(s.find_task("ff00000").map(|t| t.id.as_str()), Ok("t-ff00000"));

    assert_eq!(s.find_task("abc").expect_err("should fail"), "task id 'abc' is ambiguous: give more of it");
    assert_eq!(s.find_task("t-ab").expect_err("should fail"), "task id 't-ab' is ambiguous: give more of it");
    assert_eq!(s.find_task("t-abc9").expect_err("should fail"), "no task 't-abc9'");
    assert_eq!(s.find_task("t-abc12300").expect_err("should fail"), "no task 't-abc12300'");
    assert_eq!(s.find_task("f").expect_err("should fail"), "no task 'f'", "one hex digit is too short to name a task");
    assert_eq!(s.find_task("t-f").expect_err("should fail"), "no task 't-f'");
    assert!(s.find_task("").is_err());
    assert!(s.find_task("zzz").is_err());
}

#[test]
fn find_task_prefers_an_exact_id_over_longer_ids() {
    let mut org = Org::staffed();
    for c in ["abcdef121", "abcdef122", "abcdef123"] {
        let ev = org.ev(SENIOR, created("collide", &[])).commit(&oid(c));
        org.ok(ev);
    }
    let s = &org.state;
    assert_eq!(s.tasks.keys().collect::<Vec<_>>(), vec!["t-abcdef1", "t-abcdef12", "t-abcdef123"]);
    assert_eq!(s.find_task("t-abcdef1").map(|t| t.id.as_str()), Ok("t-abcdef1"));
    assert_eq!(s.find_task("t-abcdef12").map(|t| t.id.as_str()), Ok("t-abcdef12"));
    assert_eq!(s.find_task("t-abcdef123").map(|t| t.id.as_str()), Ok("t-abcdef123"));
    assert!(s.find_task("t-abcdef").expect_err("should fail").contains("ambiguous"));
}
