//! The doctor's `kubectl` checks: on PATH, the current context (or the
//! ones deploy tasks name) in the kubeconfig, and their clusters answering.

use indexmap::IndexMap;

use super::{Doctor, Verdict};
use crate::config::{Action, Task};

impl<'a> Doctor<'a> {
    pub(super) fn kubectl(&mut self, first: &Task, deploys: &[&'a Task]) {
        let Some(path) = self.which("kubectl") else {
            self.problem(
                "kubectl",
                format!(
                    "`kubectl` was not found on PATH (needed by deploy task `{}`)",
                    first.name
                ),
                "install it: https://kubernetes.io/docs/tasks/tools/ (on a k3s node, `k3s kubectl` is one)",
            );
            return;
        };
        self.push("kubectl", Verdict::Ok(path.display().to_string()));
        // Contexts named by tasks, and which tasks use the current one.
        let mut named: IndexMap<String, String> = IndexMap::new();
        let mut uses_current = None;
        for t in deploys {
            let Action::Deploy(d) = &t.action else { continue };
            match self.renderer(&t.name).render_opt(&d.context) {
                Ok(Some(c)) if !c.is_empty() => {
                    named.entry(c).or_insert_with(|| t.name.clone());
                }
                _ => {
                    uses_current.get_or_insert_with(|| t.name.clone());
                }
            }
        }
        if let Some(task) = uses_current {
            let out = self.command(&["kubectl", "config", "current-context"]);
            let current = out.stdout.trim().to_string();
            if out.ok && !current.is_empty() {
                self.push("kubectl context", Verdict::Ok(format!("`{current}` (current)")));
                self.cluster(&current, false);
            } else {
                self.problem(
                    "kubectl context",
                    format!("no current context (task `{task}` deploys with it): {}", out.message()),
                    "pick one: `kubectl config use-context NAME` (`kubectl config get-contexts` lists them),\n\
                     point `KUBECONFIG` at your cluster's kubeconfig, or set `context` in the task's [deploy]",
                );
            }
        }
        if named.is_empty() {
            return;
        }
        let out = self.command(&["kubectl", "config", "get-contexts", "-o", "name"]);
        let known: Vec<&str> = out.stdout.lines().map(str::trim).collect();
        for (context, task) in &named {
            if known.contains(&context.as_str()) {
                self.push(
                    format!("kubectl context `{context}`"),
                    Verdict::Ok("in the kubeconfig".into()),
                );
                self.cluster(context, true);
            } else {
                self.problem(
                    format!("kubectl context `{context}`"),
                    format!("not in the kubeconfig (task `{task}` deploys with it)"),
                    format!(
                        "add it to your kubeconfig, or fix `context` in [tasks.{task}.deploy];\n\
                         the contexts you have: {}",
                        if known.is_empty() {
                            "none".into()
                        } else {
                            known.join(", ")
                        }
                    ),
                );
            }
        }
    }

    /// Whether the cluster of `context` answers.
    fn cluster(&mut self, context: &str, explicit: bool) {
        let mut argv = vec!["kubectl", "get", "--raw", "/version", "--request-timeout=5s"];
        if explicit {
            argv.extend(["--context", context]);
        }
        let out = self.command(&argv);
        let subject = format!("cluster of `{context}`");
        if out.ok {
            let version = serde_json::from_str::<serde_json::Value>(&out.stdout)
                .ok()
                .and_then(|v| v["gitVersion"].as_str().map(str::to_owned))
                .map(|v| format!(" (Kubernetes {v})"))
                .unwrap_or_default();
            self.push(subject, Verdict::Ok(format!("answering{version}")));
        } else {
            self.problem(
                subject,
                format!("not answering: {}", out.message()),
                "check that the cluster runs and is reachable from here (`kubectl cluster-info`),\n\
                 and that the kubeconfig's server address and credentials are current",
            );
        }
    }
}
