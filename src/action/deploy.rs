//! The `deploy` action: `kubectl` rollouts, in two forms — one Deployment's
//! image (`set image` + `rollout status`), or manifests rendered with new
//! images (kustomize `images`) applied once, then `rollout status` for each
//! workload that uses them. An `images` key that no image in the
//! manifests has is an error before anything is applied.

use super::{ActionError, Compiled, Step, shell_join};
use crate::config::DeployAction;
use crate::render::Renderer;

pub const DEFAULT_TIMEOUT: &str = "10m";

/// A rendered deploy, ready to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeployPlan {
    /// Form 1: update one running Deployment.
    SetImage {
        kube: Kube,
        deployment: String,
        container: String,
        image: String,
    },
    /// Form 2: apply manifests with new images.
    Manifests {
        kube: Kube,
        task: String,
        /// Root-relative paths: a kustomization dir, YAML files or dirs.
        sources: Vec<String>,
        /// Repository → new image reference.
        images: Vec<(String, String)>,
    },
}

/// What every kubectl call of one deploy shares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Kube {
    pub context: Option<String>,
    pub namespace: Option<String>,
    pub timeout: String,
    pub undo_on_failure: bool,
}

impl Kube {
    /// `kubectl [--context C] ARGS... [-n NS]` (`ns` overrides the default).
    pub fn argv(&self, args: &[&str], ns: Option<&str>) -> Vec<String> {
        let mut argv = vec!["kubectl".to_string()];
        if let Some(c) = &self.context {
            argv.extend(["--context".into(), c.clone()]);
        }
        argv.extend(args.iter().map(|a| a.to_string()));
        if let Some(ns) = ns.or(self.namespace.as_deref()) {
            argv.extend(["-n".into(), ns.to_string()]);
        }
        argv
    }

    /// `kubectl [--context C] ARGS...` without any `-n`: for objects that
    /// name their own namespaces (kubectl refuses a `-n` that differs).
    pub fn argv_without_namespace(&self, args: &[&str]) -> Vec<String> {
        Kube {
            namespace: None,
            ..self.clone()
        }
        .argv(args, None)
    }

    pub fn rollout_status(&self, workload: &str, ns: Option<&str>) -> Vec<String> {
        let mut argv = self.argv(&["rollout", "status", workload], ns);
        argv.push(format!("--timeout={}", self.timeout));
        argv
    }

    pub fn rollout_undo(&self, workload: &str, ns: Option<&str>) -> Vec<String> {
        self.argv(&["rollout", "undo", workload], ns)
    }
}

impl DeployPlan {
    /// The commands as a plan shows them.
    pub fn describe(&self) -> String {
        match self {
            DeployPlan::SetImage {
                kube,
                deployment,
                container,
                image,
            } => {
                let workload = format!("deployment/{deployment}");
                [
                    kube.argv(&["set", "image", &workload, &format!("{container}={image}")], None),
                    kube.rollout_status(&workload, None),
                ]
                .iter()
                .map(|a| shell_join(a))
                .collect::<Vec<_>>()
                .join("\n")
            }
            DeployPlan::Manifests { kube, task, images, .. } => {
                let dir = format!(".mtr/deploy/{task}");
                let mapping: Vec<String> = images.iter().map(|(k, v)| format!("{k}={v}")).collect();
                [
                    format!("kubectl kustomize {dir}/sources  # as they are: each images key must match an image"),
                    format!("kubectl kustomize {dir}  # images: {}", mapping.join(" ")),
                    shell_join(&kube.argv(&["apply", "-f", &format!("{dir}/rendered.yaml")], None))
                        + if kube.namespace.is_some() {
                            "  # without -n if objects name other namespaces (the task's filled in)"
                        } else {
                            ""
                        },
                    shell_join(&kube.rollout_status("KIND/NAME", None)) + "  # each workload using the images",
                ]
                .join("\n")
            }
        }
    }
}

pub fn compile(d: &DeployAction, r: &Renderer) -> Result<Compiled, ActionError> {
    let kube = Kube {
        context: r.render_opt(&d.context)?.filter(|c| !c.is_empty()),
        namespace: r.render_opt(&d.namespace)?.filter(|n| !n.is_empty()),
        timeout: r
            .render_opt(&d.timeout)?
            .filter(|t| !t.is_empty())
            .unwrap_or_else(|| DEFAULT_TIMEOUT.into()),
        undo_on_failure: super::image::flag(r, &d.undo_on_failure, "undo_on_failure")?,
    };
    let plan = if let Some(deployment) = r.render_opt(&d.deployment)? {
        let container = r.render_opt(&d.container)?.unwrap_or_default();
        let image = r.render_opt(&d.image)?.unwrap_or_default();
        if deployment.is_empty() || container.is_empty() || image.is_empty() {
            return Err(ActionError::Invalid(
                "`deployment`, `container` and `image` must not be empty".into(),
            ));
        }
        DeployPlan::SetImage {
            kube,
            deployment,
            container,
            image,
        }
    } else {
        let sources = r.render_split(&d.manifests)?;
        if sources.is_empty() {
            return Err(ActionError::Invalid("`manifests` is empty".into()));
        }
        let images = r.render_map(&d.images)?;
        DeployPlan::Manifests {
            kube,
            task: r.task.to_string(),
            sources,
            images,
        }
    };
    let identity = vec!["deploy".to_string(), format!("{plan:?}")];
    Ok(Compiled {
        steps: vec![Step::Deploy(Box::new(plan))],
        identity,
        ..Compiled::default()
    })
}

/// Splits `repo[:tag][@digest]` into (repo, tag, digest).
pub fn split_ref(reference: &str) -> (&str, Option<&str>, Option<&str>) {
    let (rest, digest) = match reference.split_once('@') {
        Some((r, d)) => (r, Some(d)),
        None => (reference, None),
    };
    let slash = rest.rfind('/').map(|i| i + 1).unwrap_or(0);
    match rest[slash..].rfind(':') {
        Some(i) => (&rest[..slash + i], Some(&rest[slash + i + 1..]), digest),
        None => (rest, None, digest),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_image_references() {
        assert_eq!(
            split_ref("10.0.0.1:5000/app:abc"),
            ("10.0.0.1:5000/app", Some("abc"), None)
        );
        assert_eq!(split_ref("ghcr.io/o/app"), ("ghcr.io/o/app", None, None));
        assert_eq!(split_ref("app@sha256:00"), ("app", None, Some("sha256:00")));
        assert_eq!(split_ref("localhost:5000/app"), ("localhost:5000/app", None, None));
    }

    #[test]
    fn kubectl_argv_has_context_and_namespace() {
        let k = Kube {
            context: Some("k3s".into()),
            namespace: Some("ns".into()),
            timeout: "5m".into(),
            undo_on_failure: false,
        };
        assert_eq!(
            shell_join(&k.rollout_status("deployment/w", None)),
            "kubectl --context k3s rollout status deployment/w -n ns --timeout=5m"
        );
    }
}
