//! The task graph: which tasks a run needs, in what order, and cycles.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet};

use petgraph::algo::kosaraju_scc;
use petgraph::graph::{DiGraph, NodeIndex};

use crate::config::Config;

/// Every cycle in a graph given as `from → to` edges, each as a path that
/// starts and ends on the same node, in the order nodes were given.
pub fn find_cycles(nodes: Vec<String>, edges: &[(String, String)]) -> Vec<Vec<String>> {
    let mut g: DiGraph<String, ()> = DiGraph::new();
    let index: HashMap<String, NodeIndex> = nodes.iter().map(|n| (n.clone(), g.add_node(n.clone()))).collect();
    for (from, to) in edges {
        if let (Some(&a), Some(&b)) = (index.get(from), index.get(to)) {
            g.add_edge(a, b, ());
        }
    }
    let mut cycles = Vec::new();
    // Kosaraju's walk is iterative; petgraph's Tarjan recurses once per
    // node of a chain and overflows the stack on a long one.
    for scc in kosaraju_scc(&g) {
        let looped = scc.len() > 1 || g.contains_edge(scc[0], scc[0]);
        if !looped {
            continue;
        }
        let members: HashSet<NodeIndex> = scc.iter().copied().collect();
        let start = *scc.iter().min().unwrap_or(&scc[0]);
        // petgraph names one node of a cycle; rebuild the whole path by a
        // breadth-first search back to `start` inside the component.
        let mut prev: HashMap<NodeIndex, NodeIndex> = HashMap::new();
        let mut queue = std::collections::VecDeque::from([start]);
        let mut end = None;
        'search: while let Some(n) = queue.pop_front() {
            let mut next: Vec<NodeIndex> = g.neighbors(n).filter(|m| members.contains(m)).collect();
            next.sort();
            for m in next {
                if m == start {
                    end = Some(n);
                    break 'search;
                }
                if let std::collections::hash_map::Entry::Vacant(e) = prev.entry(m) {
                    e.insert(n);
                    queue.push_back(m);
                }
            }
        }
        let Some(mut n) = end else { continue };
        let mut path = vec![g[n].clone()];
        while n != start {
            n = prev[&n];
            path.push(g[n].clone());
        }
        path.reverse();
        path.push(g[start].clone());
        cycles.push(path);
    }
    cycles
}

/// The tasks of one run and their dependency edges, in a runnable order.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Every task needed, dependencies before dependants.
    pub order: Vec<String>,
    /// Each task's deps (task names, aliases resolved).
    pub deps: HashMap<String, Vec<String>>,
    /// The tasks the user named.
    pub requested: Vec<String>,
    /// Per task of `order`, the position in `requested` of the first named
    /// task that needs it: named tasks run in the order given (`mtr clean
    /// build`, as in make, just and task), each with its deps in parallel,
    /// so `order` holds the tasks of one phase after another.
    pub phases: Vec<usize>,
}

impl Plan {
    pub fn new(config: &Config, requested: &[String]) -> Plan {
        // Tasks are indexes into `config.tasks` (declaration order) until
        // the plan is built, so no name is hashed or cloned twice.
        let resolve = |name: &str| {
            config
                .tasks
                .get_index_of(name)
                .or_else(|| config.aliases.get(name).and_then(|t| config.tasks.get_index_of(t)))
        };
        let mut deps: Vec<Option<Vec<usize>>> = vec![None; config.tasks.len()];
        let mut stack: Vec<usize> = requested
            .iter()
            .map(|name| {
                config
                    .tasks
                    .get_index_of(name)
                    .unwrap_or_else(|| panic!("no task `{name}` in the config"))
            })
            .collect();
        let mut needed = 0;
        while let Some(i) = stack.pop() {
            if deps[i].is_some() {
                continue;
            }
            let task_deps: Vec<usize> = config.tasks[i].deps.iter().filter_map(|(d, _)| resolve(d)).collect();
            stack.extend(&task_deps);
            deps[i] = Some(task_deps);
            needed += 1;
        }
        let name = |i: usize| config.tasks.get_index(i).map(|(k, _)| k.clone()).unwrap_or_default();
        let mut order = stable_order(&deps, needed)
            // A cycle (config validation rejects them): declaration order.
            .unwrap_or_else(|| (0..deps.len()).filter(|&i| deps[i].is_some()).collect());
        let phase = phases(&deps, requested.iter().filter_map(|n| resolve(n)));
        // Stable: still dependencies first, as a task's deps are in its
        // phase or an earlier one.
        order.sort_by_key(|&i| phase[i]);
        let mut names: HashMap<String, Vec<String>> = HashMap::with_capacity(needed);
        for (i, ds) in deps.iter().enumerate() {
            if let Some(ds) = ds {
                names.insert(name(i), ds.iter().map(|&d| name(d)).collect());
            }
        }
        Plan {
            phases: order.iter().map(|&i| phase[i]).collect(),
            order: order.into_iter().map(name).collect(),
            deps: names,
            requested: requested.to_vec(),
        }
    }

    /// `-p`: the named tasks run at the same time, as the graph allows
    /// (`order`, phase by phase, is still dependencies first).
    pub fn all_at_once(&mut self) {
        self.phases.iter_mut().for_each(|p| *p = 0);
    }

    /// Tasks that depend on `name` within this plan.
    pub fn dependants(&self, name: &str) -> Vec<&str> {
        self.order
            .iter()
            .filter(|t| self.deps[*t].iter().any(|d| d == name))
            .map(String::as_str)
            .collect()
    }
}

/// Per task, the position among `named` of the first named task that
/// reaches it through `deps` (`usize::MAX` for tasks none reaches).
fn phases(deps: &[Option<Vec<usize>>], named: impl Iterator<Item = usize>) -> Vec<usize> {
    let mut phase = vec![usize::MAX; deps.len()];
    for (k, first) in named.enumerate() {
        let mut stack = vec![first];
        while let Some(i) = stack.pop() {
            if phase[i] == usize::MAX {
                phase[i] = k;
                stack.extend(deps[i].iter().flatten());
            }
        }
    }
    phase
}

/// A topological order of the tasks with `Some` deps (`needed` of them)
/// that prefers declaration (index) order among ready tasks; `None` on a
/// cycle.
fn stable_order(deps: &[Option<Vec<usize>>], needed: usize) -> Option<Vec<usize>> {
    let mut waiting: Vec<usize> = deps.iter().map(|d| d.as_ref().map_or(0, Vec::len)).collect();
    let mut dependants: Vec<Vec<usize>> = vec![Vec::new(); deps.len()];
    for (i, ds) in deps.iter().enumerate() {
        for &d in ds.iter().flatten() {
            dependants[d].push(i);
        }
    }
    // A heap, not a sort per step: an aggregate of 100,000 tasks has them
    // all ready at once.
    let mut ready: BinaryHeap<Reverse<usize>> = (0..deps.len())
        .filter(|&i| deps[i].is_some() && waiting[i] == 0)
        .map(Reverse)
        .collect();
    let mut out = Vec::with_capacity(needed);
    while let Some(Reverse(n)) = ready.pop() {
        out.push(n);
        for &m in &dependants[n] {
            waiting[m] -= 1;
            if waiting[m] == 0 {
                ready.push(Reverse(m));
            }
        }
    }
    (out.len() == needed).then_some(out)
}

/// Whether the graph with `deps[i]` the successors of node `i` has no
/// cycle (a self-loop is one).
pub fn is_acyclic(deps: &[Vec<usize>]) -> bool {
    let mut waiting = vec![0usize; deps.len()];
    for ds in deps {
        for &d in ds {
            waiting[d] += 1;
        }
    }
    let mut ready: Vec<usize> = (0..deps.len()).filter(|&i| waiting[i] == 0).collect();
    let mut done = 0;
    while let Some(n) = ready.pop() {
        done += 1;
        for &d in &deps[n] {
            waiting[d] -= 1;
            if waiting[d] == 0 {
                ready.push(d);
            }
        }
    }
    done == deps.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn finds_whole_cycle_paths() {
        let edges = vec![
            ("a".into(), "b".into()),
            ("b".into(), "c".into()),
            ("c".into(), "a".into()),
            ("d".into(), "d".into()),
        ];
        let mut cycles = find_cycles(s(&["a", "b", "c", "d"]), &edges);
        cycles.sort();
        assert_eq!(cycles, vec![s(&["a", "b", "c", "a"]), s(&["d", "d"])]);
    }

    /// Regression: a recursive SCC search overflowed the stack here.
    #[test]
    fn a_chain_of_100000_nodes_does_not_overflow_the_stack() {
        let n = 100_000;
        let nodes: Vec<String> = (0..n).map(|i| format!("t{i}")).collect();
        let mut edges: Vec<(String, String)> = (0..n - 1).map(|i| (nodes[i].clone(), nodes[i + 1].clone())).collect();
        assert!(find_cycles(nodes.clone(), &edges).is_empty());
        edges.push((nodes[n - 1].clone(), nodes[0].clone()));
        let cycles = find_cycles(nodes, &edges);
        assert_eq!(cycles.len(), 1);
        assert_eq!(cycles[0].len(), n + 1);
    }

    #[test]
    fn acyclic_iff_no_cycle() {
        assert!(is_acyclic(&[vec![1, 2], vec![2], vec![]]));
        assert!(is_acyclic(&[vec![1, 1], vec![]]));
        assert!(!is_acyclic(&[vec![0]]));
        assert!(!is_acyclic(&[vec![1], vec![2], vec![0], vec![]]));
    }

    #[test]
    fn no_cycles_in_a_dag() {
        let edges = vec![
            ("a".into(), "b".into()),
            ("a".into(), "c".into()),
            ("b".into(), "c".into()),
        ];
        assert!(find_cycles(s(&["a", "b", "c"]), &edges).is_empty());
    }
}
