//! The task dependency graph.

use std::collections::{BTreeMap, HashSet};

use super::Task;

/// Whether making `task` depend on `dep` closes a cycle: true when `task` is `dep` or `dep`
/// already depends on `task`, directly or through other tasks. Returns the cycle's path.
pub fn would_cycle(tasks: &BTreeMap<String, Task>, task: &str, dep: &str) -> Option<Vec<String>> {
    if task == dep {
        return Some(vec![task.to_string(), dep.to_string()]);
    }
    // Depth-first from `dep` along `after` edges, looking for `task`.
    let mut stack = vec![(dep.to_string(), vec![task.to_string(), dep.to_string()])];
    let mut seen = HashSet::new();
    while let Some((id, path)) = stack.pop() {
        if !seen.insert(id.clone()) {
            continue;
        }
        for next in tasks.get(&id).map(|t| t.after.as_slice()).unwrap_or_default() {
            let mut longer = path.clone();
            longer.push(next.clone());
            if next == task {
                return Some(longer);
            }
            stack.push((next.clone(), longer));
        }
    }
    None
}
