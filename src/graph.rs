//! The task graph: which tasks a run needs, in what order, and cycles.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet};

use petgraph::algo::{kosaraju_scc, toposort};
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
}

impl Plan {
    pub fn new(config: &Config, requested: &[String]) -> Plan {
        let mut g: DiGraph<String, ()> = DiGraph::new();
        let mut index: HashMap<String, NodeIndex> = HashMap::new();
        let mut deps: HashMap<String, Vec<String>> = HashMap::new();
        let mut stack: Vec<String> = requested.to_vec();
        while let Some(name) = stack.pop() {
            if deps.contains_key(&name) {
                continue;
            }
            let task_deps: Vec<String> = config.tasks[&name]
                .deps
                .iter()
                .filter_map(|(d, _)| config.resolve_task(d).map(str::to_owned))
                .collect();
            stack.extend(task_deps.iter().cloned());
            deps.insert(name, task_deps);
        }
        // Declaration order breaks ties, so plans read like the file.
        for name in config.tasks.keys().filter(|n| deps.contains_key(*n)) {
            index.insert(name.clone(), g.add_node(name.clone()));
        }
        for (name, ds) in &deps {
            for d in ds {
                g.add_edge(index[d], index[name], ());
            }
        }
        let order = toposort(&g, None)
            .map(|nodes| nodes.into_iter().map(|n| g[n].clone()).collect())
            .unwrap_or_else(|_| config.tasks.keys().filter(|n| deps.contains_key(*n)).cloned().collect());
        Plan {
            order: stable_order(&g, order, config),
            deps,
            requested: requested.to_vec(),
        }
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

/// A topological order that prefers declaration order among ready tasks.
fn stable_order(g: &DiGraph<String, ()>, fallback: Vec<String>, config: &Config) -> Vec<String> {
    let pos: HashMap<&str, usize> = config.tasks.keys().enumerate().map(|(i, k)| (k.as_str(), i)).collect();
    let mut indegree: HashMap<NodeIndex, usize> = g
        .node_indices()
        .map(|n| (n, g.neighbors_directed(n, petgraph::Incoming).count()))
        .collect();
    // A heap, not a sort per step: an aggregate of 100,000 tasks has them
    // all ready at once.
    let mut ready: BinaryHeap<Reverse<(usize, NodeIndex)>> = indegree
        .iter()
        .filter(|(_, d)| **d == 0)
        .map(|(n, _)| Reverse((pos[g[*n].as_str()], *n)))
        .collect();
    let mut out = Vec::new();
    while let Some(Reverse((_, n))) = ready.pop() {
        out.push(g[n].clone());
        for m in g.neighbors(n) {
            let d = indegree.entry(m).or_default();
            *d -= 1;
            if *d == 0 {
                ready.push(Reverse((pos[g[m].as_str()], m)));
            }
        }
    }
    if out.len() == fallback.len() { out } else { fallback }
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
    fn no_cycles_in_a_dag() {
        let edges = vec![
            ("a".into(), "b".into()),
            ("a".into(), "c".into()),
            ("b".into(), "c".into()),
        ];
        assert!(find_cycles(s(&["a", "b", "c"]), &edges).is_empty());
    }
}
