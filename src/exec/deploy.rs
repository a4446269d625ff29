//! Running `deploy` actions with kubectl. Rolling back (`undo_on_failure`)
//! only touches a rollout this run began.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use yaml_rust2::{Yaml, YamlLoader};

use super::docker::{Failure, failure};
use super::process::{self, Io};
use crate::action::deploy::{DeployPlan, Kube, split_ref};
use crate::action::shell_join;
use crate::config::diagnostic::closest;
use crate::report::{Reporter, Stream};

/// Everything a deploy needs from its job.
pub struct Env<'a> {
    pub task: &'a str,
    pub root: &'a Path,
    pub cwd: &'a Path,
    pub env: &'a HashMap<String, String>,
    pub reporter: &'a Arc<Reporter>,
}

impl Env<'_> {
    /// Runs a kubectl command, streaming its output; Err says why (127
    /// when kubectl is not on PATH).
    fn kubectl(&self, argv: &[String]) -> Result<(), Failure> {
        self.reporter.command(self.task, &shell_join(argv));
        let exit = process::run(self.task, argv, self.cwd, self.env, Io::Piped, self.reporter)?;
        if exit.code != 0 {
            return Err(failure(argv, &exit).into());
        }
        Ok(())
    }

    /// Runs a kubectl command and returns its stdout (shown as task output).
    fn kubectl_capture(&self, argv: &[String], show: bool) -> Result<String, Failure> {
        self.reporter.command(self.task, &shell_join(argv));
        let (code, out, err) = process::capture(argv, self.cwd, self.env)?;
        if show {
            for line in out.lines() {
                self.reporter.task_output(self.task, Stream::Out, line.as_bytes());
            }
        }
        for line in err.lines() {
            self.reporter.task_output(self.task, Stream::Err, line.as_bytes());
        }
        if code != 0 {
            let what = argv.iter().take(3).cloned().collect::<Vec<_>>().join(" ");
            let last = err.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("").trim();
            return Err(format!("`{what}` failed (exit status {code}): {last}").into());
        }
        Ok(out)
    }
}

/// Runs a deploy; the error carries the task's exit status: 127 when
/// `kubectl` is not on PATH (as for any program that is not installed),
/// else 1.
pub fn execute(e: &Env, plan: &DeployPlan) -> Result<(), Failure> {
    match plan {
        DeployPlan::SetImage {
            kube,
            deployment,
            container,
            image,
        } => set_image(e, kube, deployment, container, image),
        DeployPlan::Manifests {
            kube,
            task,
            sources,
            images,
        } => manifests(e, kube, task, sources, images),
    }
}

fn set_image(e: &Env, kube: &Kube, deployment: &str, container: &str, image: &str) -> Result<(), Failure> {
    let workload = format!("deployment/{deployment}");
    // `set image` with the image already in place starts no rollout; then a
    // failed status must not undo someone else's rollout.
    let mut began = true;
    if kube.undo_on_failure {
        let path = format!("jsonpath={{.spec.template.spec.containers[?(@.name==\"{container}\")].image}}");
        let current = e.kubectl_capture(&kube.argv(&["get", &workload, "-o", &path], None), false)?;
        began = current.trim() != image;
    }
    e.kubectl(&kube.argv(&["set", "image", &workload, &format!("{container}={image}")], None))?;
    match e.kubectl(&kube.rollout_status(&workload, None)) {
        Ok(()) => Ok(()),
        Err(why) if kube.undo_on_failure && began => {
            e.reporter.warn(&format!(
                "rollout of `{workload}` failed; rolling it back (undo_on_failure)"
            ));
            let why = why.message;
            match e.kubectl(&kube.rollout_undo(&workload, None)) {
                Ok(()) => Err(format!("{why}; rolled back `{workload}`").into()),
                Err(undo) => Err(format!("{why}; rollback failed too: {}", undo.message).into()),
            }
        }
        Err(why) => Err(why),
    }
}

/// A workload in rendered manifests that uses one of the new images.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Workload {
    pub kind: String,
    pub name: String,
    pub namespace: Option<String>,
}

impl Workload {
    fn reference(&self) -> String {
        format!("{}/{}", self.kind.to_lowercase(), self.name)
    }
}

fn manifests(e: &Env, kube: &Kube, task: &str, sources: &[String], images: &[(String, String)]) -> Result<(), Failure> {
    let safe: String = task.chars().map(|c| if c == ':' { '-' } else { c }).collect();
    let dir = e.root.join(".mtr").join("deploy").join(safe);
    // Rendered twice: the manifests as they are, to check that each
    // `images` key names an image they run (kustomize skips one that does
    // not, and the deploy would roll out nothing new), then with the new
    // images.
    let base = dir.join(SOURCES);
    let copies = write_overlay(e.root, &dir, sources, images)?;
    let kustomize = |d: &Path| ["kubectl".to_string(), "kustomize".into(), d.display().to_string()];
    let plain = e.kubectl_capture(&kustomize(&base), false).map_err(|mut why| {
        // Name the user's files, not their copies under `.mtr/`.
        why.message = copies.iter().fold(why.message, |why, (copy, src)| {
            why.replace(&base.join(copy).display().to_string(), src)
                .replace(copy.as_str(), src)
        });
        why
    })?;
    let file = dir.join(format!("{SOURCES}.yaml"));
    std::fs::write(&file, &plain).map_err(|err| format!("cannot write `{}`: {err}", file.display()))?;
    let rendered = if images.is_empty() {
        plain
    } else {
        check_images_used(&plain, images)?;
        e.kubectl_capture(&kustomize(&dir), false)?
    };
    // `apply -n NS` refuses objects of another namespace: when some name
    // one, the others get NS written in and the apply has no `-n`.
    let (rendered, keep_n) = match kube.namespace.as_deref() {
        Some(ns) => in_namespace(&rendered, ns)?,
        None => (rendered, true),
    };
    let rendered_file = dir.join("rendered.yaml");
    std::fs::write(&rendered_file, &rendered)
        .map_err(|err| format!("cannot write `{}`: {err}", rendered_file.display()))?;
    let new_refs: Vec<&str> = images.iter().map(|(_, v)| v.as_str()).collect();
    let workloads = workloads_using(&rendered, &new_refs)?;
    let file = rendered_file.display().to_string();
    let apply = if keep_n {
        kube.argv(&["apply", "-f", &file], None)
    } else {
        kube.argv_without_namespace(&["apply", "-f", &file])
    };
    let applied = e.kubectl_capture(&apply, true)?;
    let mut started = Vec::new();
    for w in &workloads {
        let unchanged = applied.lines().any(|l| {
            l.ends_with(" unchanged")
                && l.contains(&format!("/{}", w.name))
                && l.to_lowercase().starts_with(&w.kind.to_lowercase())
        });
        if !unchanged {
            started.push(w.clone());
        }
        if let Err(why) = e.kubectl(&kube.rollout_status(&w.reference(), w.namespace.as_deref())) {
            if kube.undo_on_failure {
                for s in &started {
                    e.reporter.warn(&format!(
                        "rollout of `{}` failed; rolling it back (undo_on_failure)",
                        s.reference()
                    ));
                    let _ = e.kubectl(&kube.rollout_undo(&s.reference(), s.namespace.as_deref()));
                }
            }
            return Err(why);
        }
    }
    if workloads.is_empty() {
        e.reporter.warn(&format!(
            "task `{task}`: no Deployment, StatefulSet or DaemonSet in the manifests uses {}",
            images
                .iter()
                .map(|(k, _)| format!("`{k}`"))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    Ok(())
}

/// Where under `.mtr/deploy/TASK/` the manifests are gathered, as they are;
/// `SOURCES.yaml` is their rendering, the one resource of the overlay that
/// sets the new images.
const SOURCES: &str = "sources";

/// Writes `.mtr/deploy/TASK/sources/kustomization.yaml`: the sources as
/// resources, in order — tracked files are never edited — and
/// `.mtr/deploy/TASK/kustomization.yaml`: their rendering
/// (`sources.yaml`) with the new images. YAML files are copied in (after a
/// check that names the file); returns each copy's `resources/NNN-NAME`
/// (relative to `sources/`) with the file it came from.
fn write_overlay(
    root: &Path,
    dir: &Path,
    sources: &[String],
    images: &[(String, String)],
) -> Result<Vec<(String, String)>, String> {
    let io = |p: &Path, err: std::io::Error| format!("cannot write `{}`: {err}", p.display());
    if dir.exists() {
        std::fs::remove_dir_all(dir).map_err(|err| io(dir, err))?;
    }
    let base = dir.join(SOURCES);
    let res = base.join("resources");
    std::fs::create_dir_all(&res).map_err(|err| io(&res, err))?;
    let mut resources = Vec::new();
    let mut copies: Vec<(String, String)> = Vec::new();
    let mut copy = |file: &Path, shown: String, resources: &mut Vec<String>| -> Result<(), String> {
        check_yaml(file, &shown)?;
        let name = copy_into(file, &res, copies.len() + 1)?;
        resources.push(name.clone());
        copies.push((name, shown));
        Ok(())
    };
    for src in sources {
        let abs = root.join(src);
        if abs.is_dir() {
            let is_kustomization = ["kustomization.yaml", "kustomization.yml", "Kustomization"]
                .iter()
                .any(|k| abs.join(k).is_file());
            if is_kustomization {
                resources.push(format!(
                    "../../../../{}",
                    src.trim_start_matches("./").trim_end_matches('/')
                ));
                continue;
            }
            let mut files: Vec<PathBuf> = std::fs::read_dir(&abs)
                .map_err(|err| format!("cannot read `{src}`: {err}"))?
                .filter_map(|d| d.ok().map(|d| d.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
                .collect();
            files.sort();
            for f in files {
                let shown = Path::new(src)
                    .join(f.file_name().unwrap_or_default())
                    .display()
                    .to_string();
                copy(&f, shown, &mut resources)?;
            }
        } else if abs.is_file() {
            copy(&abs, src.clone(), &mut resources)?;
        } else {
            return Err(format!("manifests `{src}` do not exist"));
        }
    }
    const HEADER: &str = "# generated by mtr for one deploy; the tracked manifests are not edited\n\
        apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n";
    let mut text = String::from(HEADER);
    for r in &resources {
        text.push_str(&format!("  - {}\n", yaml_str(r)));
    }
    let file = base.join("kustomization.yaml");
    std::fs::write(&file, text).map_err(|err| io(&file, err))?;
    let mut text = String::from(HEADER);
    text.push_str(&format!("  - {}\n", yaml_str(&format!("{SOURCES}.yaml"))));
    if !images.is_empty() {
        text.push_str("images:\n");
        for (name, reference) in images {
            let (repo, tag, digest) = split_ref(reference);
            text.push_str(&format!(
                "  - name: {}\n    newName: {}\n",
                yaml_str(name),
                yaml_str(repo)
            ));
            if let Some(t) = tag {
                text.push_str(&format!("    newTag: {}\n", yaml_str(t)));
            }
            if let Some(d) = digest {
                text.push_str(&format!("    digest: {}\n", yaml_str(d)));
            }
        }
    }
    let file = dir.join("kustomization.yaml");
    std::fs::write(&file, text).map_err(|err| io(&file, err))?;
    Ok(copies)
}

/// The image repositories the containers and init containers of the
/// rendered manifests run (wherever they are: in a Pod, a Deployment's
/// template, a CronJob's job template), sorted, each once.
pub fn image_repositories(rendered: &str) -> Result<Vec<String>, String> {
    fn walk(y: &Yaml, out: &mut Vec<String>) {
        match y {
            Yaml::Hash(h) => {
                for (k, v) in h {
                    if matches!(k.as_str(), Some("containers" | "initContainers"))
                        && let Some(cs) = v.as_vec()
                    {
                        out.extend(
                            cs.iter()
                                .filter_map(|c| c["image"].as_str())
                                .map(|i| split_ref(i).0.to_string()),
                        );
                    }
                    walk(v, out);
                }
            }
            Yaml::Array(items) => items.iter().for_each(|i| walk(i, out)),
            _ => {}
        }
    }
    let docs = YamlLoader::load_from_str(rendered).map_err(|e| format!("cannot parse the rendered manifests: {e}"))?;
    let mut out = Vec::new();
    docs.iter().for_each(|d| walk(d, &mut out));
    out.sort();
    out.dedup();
    Ok(out)
}

/// Every `images` key must name the repository of an image the manifests
/// (`plain`: rendered without the new images) run, compared as kustomize
/// compares them (by repository; a tag or digest does not count). One that
/// names none is a mistake — kustomize would skip it and the deploy roll
/// out nothing new — reported with the repositories that are there.
fn check_images_used(plain: &str, images: &[(String, String)]) -> Result<(), String> {
    let used = image_repositories(plain)?;
    let unmatched: Vec<&str> = images
        .iter()
        .map(|(k, _)| k.as_str())
        .filter(|k| !used.iter().any(|u| u == split_ref(k).0))
        .collect();
    if unmatched.is_empty() {
        return Ok(());
    }
    let quoted = |names: &[&str]| names.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", ");
    let mut msg = if let [one] = unmatched[..] {
        format!("`images` key `{one}` matches no container image in the manifests; nothing was applied")
    } else {
        format!(
            "`images` keys {} match no container image in the manifests; nothing was applied",
            quoted(&unmatched)
        )
    };
    for key in &unmatched {
        if let Some(near) = closest(split_ref(key).0, used.iter().map(String::as_str)) {
            let what = if unmatched.len() > 1 {
                format!(" (for `{key}`)")
            } else {
                String::new()
            };
            msg.push_str(&format!("\n  help: did you mean `{near}`?{what}"));
        }
    }
    if used.is_empty() {
        msg.push_str("\n  note: the manifests run no container images");
    } else {
        let used: Vec<&str> = used.iter().map(String::as_str).collect();
        msg.push_str(&format!("\n  note: the manifests use {}", quoted(&used)));
    }
    Err(msg)
}

/// A manifest file must be YAML whose documents are objects (mappings);
/// `shown` names it in the error.
fn check_yaml(file: &Path, shown: &str) -> Result<(), String> {
    let text = std::fs::read(file).map_err(|err| format!("cannot read manifests `{shown}`: {err}"))?;
    let text = String::from_utf8(text).map_err(|_| format!("manifests `{shown}` are not YAML: not UTF-8 text"))?;
    let docs = YamlLoader::load_from_str(&text).map_err(|err| format!("manifests `{shown}` are not YAML: {err}"))?;
    match docs.iter().position(|d| !matches!(d, Yaml::Hash(_) | Yaml::Null)) {
        Some(i) => Err(format!(
            "manifests `{shown}` are not Kubernetes objects: document {} is not a mapping",
            i + 1
        )),
        None => Ok(()),
    }
}

fn copy_into(file: &Path, res: &Path, n: usize) -> Result<String, String> {
    let name = format!(
        "{n:03}-{}",
        file.file_name().map(|f| f.to_string_lossy()).unwrap_or_default()
    );
    std::fs::copy(file, res.join(&name)).map_err(|err| format!("cannot copy `{}`: {err}", file.display()))?;
    Ok(format!("resources/{name}"))
}

fn yaml_str(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// Well-known kinds that have no namespace: neither `-n` nor a filled-in
/// namespace applies to them.
const CLUSTER_SCOPED: &[&str] = &[
    "APIService",
    "CertificateSigningRequest",
    "ClusterIssuer",
    "ClusterRole",
    "ClusterRoleBinding",
    "ComponentStatus",
    "CSIDriver",
    "CSINode",
    "CustomResourceDefinition",
    "FlowSchema",
    "IngressClass",
    "MutatingWebhookConfiguration",
    "Namespace",
    "Node",
    "PersistentVolume",
    "PriorityClass",
    "PriorityLevelConfiguration",
    "RuntimeClass",
    "StorageClass",
    "ValidatingAdmissionPolicy",
    "ValidatingAdmissionPolicyBinding",
    "ValidatingWebhookConfiguration",
    "VolumeAttachment",
];

/// The rendered manifests as `kubectl apply` takes them for the task's
/// namespace `ns`, and whether to pass `-n ns`. Yes when every namespaced
/// object has no namespace or `ns` (text unchanged). Otherwise `ns` is
/// written into the namespaced objects that have none, and the apply goes
/// without `-n` (kubectl refuses objects whose namespace differs from it).
/// The text is edited line by line, not re-emitted, so every other value
/// stays exactly as kustomize wrote it.
pub fn in_namespace(rendered: &str, ns: &str) -> Result<(String, bool), String> {
    let mut docs: Vec<Vec<&str>> = vec![Vec::new()];
    for line in rendered.split_inclusive('\n') {
        if line.trim_end() == "---" {
            docs.push(Vec::new());
        }
        docs.last_mut().expect("one at least").push(line);
    }
    // For each document: does it need `ns` written in?
    let mut fill = Vec::with_capacity(docs.len());
    let mut others = false;
    for doc in &docs {
        let text: String = doc.concat();
        let parsed =
            YamlLoader::load_from_str(&text).map_err(|e| format!("cannot parse the rendered manifests: {e}"))?;
        let needs = parsed.first().is_some_and(|d| {
            let namespaced = d["kind"].as_str().is_some_and(|k| !CLUSTER_SCOPED.contains(&k));
            match d["metadata"]["namespace"].as_str().filter(|n| !n.is_empty()) {
                Some(theirs) => {
                    others |= namespaced && theirs != ns;
                    false
                }
                None => namespaced,
            }
        });
        fill.push(needs);
    }
    if !others {
        return Ok((rendered.to_string(), true));
    }
    let mut out = String::with_capacity(rendered.len() + 32 * docs.len());
    for (doc, needs) in docs.iter().zip(fill) {
        if needs {
            out.push_str(&with_namespace(doc, ns)?);
        } else {
            doc.iter().for_each(|l| out.push_str(l));
        }
    }
    Ok((out, false))
}

/// One document (its lines, as kustomize writes them: block style) with
/// `metadata.namespace` set to `ns`.
fn with_namespace(doc: &[&str], ns: &str) -> Result<String, String> {
    let indent = |l: &str| l.len() - l.trim_start_matches(' ').len();
    let meta = doc.iter().position(|l| l.trim_end() == "metadata:").ok_or_else(|| {
        let name = doc.iter().find_map(|l| l.strip_prefix("kind:")).unwrap_or("").trim();
        format!("cannot write the namespace into a rendered `{name}`: no `metadata:` block")
    })?;
    // The block's keys: the lines after it, up to the next top-level one.
    let block: Vec<usize> = (meta + 1..doc.len())
        .take_while(|&i| doc[i].trim().is_empty() || indent(doc[i]) > 0 || doc[i].starts_with('#'))
        .filter(|&i| !doc[i].trim().is_empty() && !doc[i].trim_start().starts_with('#'))
        .collect();
    let width = block.first().map(|&i| indent(doc[i])).unwrap_or(2);
    let line = format!("{}namespace: {}\n", " ".repeat(width), yaml_str(ns));
    // An empty `namespace: ""` is replaced, not doubled.
    let existing = block
        .iter()
        .find(|&&i| indent(doc[i]) == width && doc[i].trim_start().starts_with("namespace:"));
    let mut out = String::new();
    for (i, l) in doc.iter().enumerate() {
        if Some(&i) == existing {
            out.push_str(&line);
            continue;
        }
        out.push_str(l);
        if i == meta && existing.is_none() {
            if !l.ends_with('\n') {
                out.push('\n');
            }
            out.push_str(&line);
        }
    }
    Ok(out)
}

/// Deployments, StatefulSets and DaemonSets whose containers run one of
/// `refs` (compared by repository, so any tag or digest matches).
pub fn workloads_using(rendered: &str, refs: &[&str]) -> Result<Vec<Workload>, String> {
    let docs = YamlLoader::load_from_str(rendered).map_err(|e| format!("cannot parse the rendered manifests: {e}"))?;
    let repos: Vec<&str> = refs.iter().map(|r| split_ref(r).0).collect();
    let mut out = Vec::new();
    for doc in docs.iter().flat_map(|d| match d {
        Yaml::Array(items) if d["kind"].is_badvalue() => items.iter().collect::<Vec<_>>(),
        _ => vec![d],
    }) {
        let Some(kind) = doc["kind"].as_str() else { continue };
        if !matches!(kind, "Deployment" | "StatefulSet" | "DaemonSet") {
            continue;
        }
        let pod = &doc["spec"]["template"]["spec"];
        let uses = ["containers", "initContainers"].iter().any(|key| {
            pod[*key].as_vec().is_some_and(|cs| {
                cs.iter()
                    .any(|c| c["image"].as_str().is_some_and(|i| repos.contains(&split_ref(i).0)))
            })
        });
        if uses && let Some(name) = doc["metadata"]["name"].as_str() {
            out.push(Workload {
                kind: kind.to_string(),
                name: name.to_string(),
                namespace: doc["metadata"]["namespace"].as_str().map(str::to_owned),
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_the_namespace_only_when_objects_name_another() {
        let same = "kind: Service\nmetadata:\n  name: a\n---\nkind: Service\nmetadata:\n  name: b\n  namespace: ns\n";
        assert_eq!(in_namespace(same, "ns").unwrap(), (same.to_string(), true));
        let mixed = "kind: Service\nmetadata:\n  name: a\n  namespace: \"\"\n---\nkind: ClusterRole\nmetadata:\n  name: r\n---\nkind: Service\nmetadata:\n  name: b\n  namespace: other\n";
        assert_eq!(
            in_namespace(mixed, "ns").unwrap(),
            (
                "kind: Service\nmetadata:\n  name: a\n  namespace: \"ns\"\n---\nkind: ClusterRole\nmetadata:\n  name: r\n---\nkind: Service\nmetadata:\n  name: b\n  namespace: other\n"
                    .to_string(),
                false
            )
        );
    }

    #[test]
    fn finds_workloads_using_new_images() {
        let rendered = "\
apiVersion: v1
kind: Namespace
metadata: {name: app}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: worker, namespace: app}
spec:
  template:
    spec:
      containers:
        - {name: w, image: 'reg:5000/app:abc'}
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: db}
spec:
  template:
    spec:
      containers:
        - {name: db, image: postgres:16}
";
        let found = workloads_using(rendered, &["reg:5000/app:abc"]).unwrap();
        assert_eq!(
            found,
            [Workload {
                kind: "Deployment".into(),
                name: "worker".into(),
                namespace: Some("app".into())
            }]
        );
    }

    #[test]
    fn every_images_key_must_name_a_repository_the_manifests_run() {
        let plain = "\
kind: Pod
metadata: {name: p}
spec:
  initContainers: [{name: i, image: 'reg:5000/acme/migrate@sha256:00'}]
  containers: [{name: c, image: 'reg:5000/acme/controller:v1'}]
---
kind: CronJob
metadata: {name: j}
spec: {jobTemplate: {spec: {template: {spec: {containers: [{name: j, image: busybox}]}}}}}
";
        assert_eq!(
            image_repositories(plain).unwrap(),
            ["busybox", "reg:5000/acme/controller", "reg:5000/acme/migrate"]
        );
        let key = |k: &str| vec![(k.to_string(), "x:1".to_string())];
        assert!(check_images_used(plain, &key("reg:5000/acme/migrate")).is_ok());
        assert!(check_images_used(plain, &key("busybox:1.36")).is_ok());
        let err = check_images_used(plain, &key("reg:5000/acme/controller-manager")).unwrap_err();
        assert_eq!(
            err,
            "`images` key `reg:5000/acme/controller-manager` matches no container image in the manifests; \
             nothing was applied\n  help: did you mean `reg:5000/acme/controller`?\n  note: the manifests use \
             `busybox`, `reg:5000/acme/controller`, `reg:5000/acme/migrate`"
        );
        // The port is part of the repository: another registry is another image.
        assert!(check_images_used(plain, &key("reg:5001/acme/controller")).is_err());
    }
}
