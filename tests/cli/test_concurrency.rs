//! Many processes, one log: appends are compare-and-swap, so racing writers lose nothing, and
//! of two racing claims exactly one wins while the other is told who holds the task.

use std::collections::BTreeSet;
use std::sync::Barrier;
use std::thread;

use crate::common::{str_field, CommandOutput, TestEnv, LOG_REF};

#[test]
fn concurrent_appends_lose_no_event() {
    const WRITERS: usize = 8;
    const EACH: usize = 12;
    let env = TestEnv::with_org();
    let setup = env.log_commits().len();
    let start = Barrier::new(WRITERS);
    let outputs: Vec<Vec<CommandOutput>> = thread::scope(|s| {
        let writers: Vec<_> = (0..WRITERS)
            .map(|w| {
                let (env, start) = (&env, &start);
                s.spawn(move || {
                    let agent = if w % 2 == 0 { "alice" } else { "bob" };
                    start.wait();
                    (0..EACH).map(|i| env.clutch_as(agent, ["task", "new", &format!("writer {w} task {i}")])).collect::<Vec<_>>()
                })
            })
            .collect();
        writers.into_iter().map(|w| w.join().expect("writer thread")).collect()
    });
    for out in outputs.iter().flatten() {
        assert_eq!(out.status, 0, "every append succeeds:\n{out}");
    }
    let printed: BTreeSet<String> = outputs.iter().flatten().map(|o| o.out().to_string()).collect();
    assert_eq!(printed.len(), WRITERS * EACH, "every append printed its own task id");

    let tasks = env.tasks(&[]);
    assert_eq!(tasks.len(), WRITERS * EACH, "no task was lost");
    let listed: BTreeSet<String> = tasks.iter().map(|t| str_field(t, "id").to_string()).collect();
    assert_eq!(listed, printed);
    let titles: BTreeSet<String> = tasks.iter().map(|t| str_field(t, "title").to_string()).collect();
    let expected: BTreeSet<String> = (0..WRITERS).flat_map(|w| (0..EACH).map(move |i| format!("writer {w} task {i}"))).collect();
    assert_eq!(titles, expected);

    let total = setup + WRITERS * EACH;
    assert_eq!(env.log_commits().len(), total, "one commit per event");
    assert_eq!(env.git_ok(["rev-list", "--min-parents=2", LOG_REF]), "", "the log stays linear");
    let report = env.clutch(["verify", "--json"]).success().json();
    assert_eq!(report["events"], total);
    assert_eq!(report["valid"], total);
    let log = env.clutch(["log", "--json"]).success().json();
    let clocks: Vec<u64> = log.as_array().expect("log").iter().map(|e| e["event"]["clock"].as_u64().expect("clock")).collect();
    assert_eq!(clocks, (1..=total as u64).collect::<Vec<_>>(), "Lamport clocks rise by one along the log");
    // Each writer's tasks are in the log in the order it made them.
    for w in 0..WRITERS {
        let mine: Vec<String> = log
            .as_array()
            .expect("log")
            .iter()
            .filter_map(|e| e["event"]["payload"]["title"].as_str())
            .filter(|t| t.starts_with(&format!("writer {w} ")))
            .map(str::to_string)
            .collect();
        assert_eq!(mine, (0..EACH).map(|i| format!("writer {w} task {i}")).collect::<Vec<_>>());
    }

    // The state cache, written by racing processes, agrees with a replay from scratch.
    let cached = env.state();
    let cache_dir = env.repo.join(".git").join("clutch");
    std::fs::remove_dir_all(&cache_dir).expect("the state cache lives in .git/clutch");
    assert_eq!(env.state(), cached, "cached state equals replayed state");
}

#[test]
fn concurrent_claims_have_exactly_one_winner() {
    const ROUNDS: usize = 8;
    let env = TestEnv::with_org();
    let mut wins = BTreeSet::new();
    for round in 0..ROUNDS {
        let task = env.new_task("bob", &format!("Race {round}"), &[]);
        let barrier = Barrier::new(2);
        let (jill, kim) = thread::scope(|s| {
            let claim = |agent: &'static str| {
                let (env, task, barrier) = (&env, &task, &barrier);
                s.spawn(move || {
                    barrier.wait();
                    env.clutch_as(agent, ["task", "claim", task])
                })
            };
            let (jill, kim) = (claim("jill"), claim("kim"));
            (jill.join().expect("jill's claim"), kim.join().expect("kim's claim"))
        });
        let (winner, won, lost) = match (jill.status, kim.status) {
            (0, 3) => ("jill", jill, kim),
            (3, 0) => ("kim", kim, jill),
            _ => panic!("exactly one claim wins and the other exits 3:\njill: {jill}\nkim: {kim}"),
        };
        assert_eq!(won.out(), format!("{task} claimed by {winner}"));
        assert_eq!(lost.error(), format!("task {task} is already assigned to {winner}"), "the loser is told who holds it");
        let state = env.state();
        assert_eq!(state["tasks"][&task]["assignee"], winner);
        assert_eq!(state["tasks"][&task]["status"], "assigned");
        let assigned = env.git_ok(["log", "--format=%s", &format!("--grep=^Clutch-Task: {task}$"), LOG_REF]);
        assert_eq!(assigned, format!("TASK_ASSIGNED {task}: claimed by {winner}"), "one claim event per task");
        wins.insert(winner);
    }
    env.clutch(["verify"]).success();
    assert_eq!(env.log_commits().len(), 6 + 2 * ROUNDS);
    eprintln!("winners over {ROUNDS} rounds: {wins:?}");
}

#[test]
fn concurrent_inits_found_exactly_one_org() {
    for round in 0..5 {
        let env = TestEnv::new();
        let barrier = Barrier::new(2);
        let (alice, bob) = thread::scope(|s| {
            let init = |founder: &'static str| {
                let (env, barrier) = (&env, &barrier);
                s.spawn(move || {
                    barrier.wait();
                    env.clutch(["init", "--name", founder, "--founder", founder])
                })
            };
            let (alice, bob) = (init("alice"), init("bob"));
            (alice.join().expect("alice's init"), bob.join().expect("bob's init"))
        });
        let (founder, won, lost) = match (alice.status, bob.status) {
            (0, 1 | 3) => ("alice", alice, bob),
            (1 | 3, 0) => ("bob", bob, alice),
            _ => panic!("round {round}: exactly one init wins:\nalice: {alice}\nbob: {bob}"),
        };
        let error = lost.error();
        assert!(error.contains("another clutch init") || error.contains("already has a clutch org"), "{lost}");
        let org = won.out();
        assert_eq!(env.log_commits(), vec![org.to_string()], "one genesis, the winner's");
        assert_eq!(env.git_ok(["config", "clutch.orgId"]), org);
        assert_eq!(env.git_ok(["config", "clutch.actor"]), founder);
        env.clutch(["verify"]).success();
    }
}
