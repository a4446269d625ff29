//! Deploy form 2 (`manifests` + `images`) through the recording kubectl
//! shim (tests/shims/kubectl, which renders with the real `kubectl
//! kustomize`): objects keep their own namespaces, the task's is written
//! into the others when they differ (kubectl refuses `apply -n NS` of an
//! object in another namespace), and `manifests` may be a list.

use yaml_rust2::{Yaml, YamlLoader};

mod shimmed;

use shimmed::{Shimmed, fails, ok};

/// The kubectl calls so far, with the root written as `ROOT`.
fn calls(p: &Shimmed) -> Vec<String> {
    let root = p.root().display().to_string();
    p.calls().into_iter().map(|l| l.replace(&root, "ROOT")).collect()
}

fn rendered(p: &Shimmed, task: &str) -> String {
    std::fs::read_to_string(p.root().join(format!(".mtr/deploy/{task}/rendered.yaml"))).unwrap()
}

/// `KIND/NAME` → `metadata.namespace` of every object in `rendered`.
fn namespaces(rendered: &str) -> Vec<(String, Option<String>)> {
    YamlLoader::load_from_str(rendered)
        .unwrap()
        .iter()
        .filter(|d| !matches!(d, Yaml::Null))
        .map(|d| {
            (
                format!(
                    "{}/{}",
                    d["kind"].as_str().unwrap(),
                    d["metadata"]["name"].as_str().unwrap()
                ),
                d["metadata"]["namespace"].as_str().map(str::to_owned),
            )
        })
        .collect()
}

fn images(rendered: &str) -> Vec<String> {
    rendered
        .lines()
        .filter_map(|l| l.trim().trim_start_matches("- ").strip_prefix("image: "))
        .map(str::to_owned)
        .collect()
}

fn deployment(name: &str, ns: Option<&str>, image: &str) -> String {
    let ns = ns.map(|n| format!("  namespace: {n}\n")).unwrap_or_default();
    format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {name}\n{ns}spec:\n  selector:\n    matchLabels: {{app: {name}}}\n  template:\n    metadata:\n      labels: {{app: {name}}}\n    spec:\n      containers:\n        - name: {name}\n          image: {image}\n"
    )
}

const SERVICE: &str = "apiVersion: v1\nkind: Service\nmetadata:\n  name: web\nspec:\n  ports:\n    - port: 80\n";
const CLUSTER_ROLE: &str =
    "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata:\n  name: reader\nrules: []\n";
const NAMESPACE: &str = "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: data\n";

#[test]
fn objects_in_other_namespaces_are_applied_without_n_and_the_rest_get_the_tasks() {
    let p = Shimmed::empty();
    p.write(
        "k8s/app.yaml",
        &format!(
            "{NAMESPACE}---\n{CLUSTER_ROLE}---\n{SERVICE}---\n{}---\n{}",
            deployment("web", None, "ghcr.io/o/web:old"),
            deployment("etl", Some("data"), "ghcr.io/o/etl:old"),
        ),
    )
    .write(
        "montage.toml",
        r#"
[tasks.ship.deploy]
manifests = "k8s/app.yaml"
images = { "ghcr.io/o/web" = "reg:5000/web:abc", "ghcr.io/o/etl" = "reg:5000/etl:abc" }
namespace = "montage-ai"
context = "k3s"
"#,
    );
    ok(&p.mtr(&["ship"]));
    assert_eq!(
        calls(&p),
        [
            "kubectl kustomize ROOT/.mtr/deploy/ship/sources",
            "kubectl kustomize ROOT/.mtr/deploy/ship",
            "kubectl --context k3s apply -f ROOT/.mtr/deploy/ship/rendered.yaml",
            "kubectl --context k3s rollout status deployment/etl -n data --timeout=10m",
            "kubectl --context k3s rollout status deployment/web -n montage-ai --timeout=10m",
        ]
    );
    let rendered = rendered(&p, "ship");
    let mut got = namespaces(&rendered);
    got.sort();
    let some = |s: &str| Some(s.to_string());
    assert_eq!(
        got,
        [
            ("ClusterRole/reader".into(), None),
            ("Deployment/etl".into(), some("data")),
            ("Deployment/web".into(), some("montage-ai")),
            ("Namespace/data".into(), None),
            ("Service/web".into(), some("montage-ai")),
        ],
        "{rendered}"
    );
    let mut imgs = images(&rendered);
    imgs.sort();
    assert_eq!(imgs, ["reg:5000/etl:abc", "reg:5000/web:abc"]);
    // What kubectl then reads is still what kustomize rendered, plus the
    // namespace lines.
    let plain = std::process::Command::new("kubectl")
        .args(["kustomize", &p.root().join(".mtr/deploy/ship").display().to_string()])
        .output()
        .unwrap();
    let plain = String::from_utf8(plain.stdout).unwrap();
    let without: String = rendered
        .lines()
        .filter(|l| l.trim() != "namespace: \"montage-ai\"")
        .map(|l| format!("{l}\n"))
        .collect();
    assert_eq!(without, plain);
}

#[test]
fn a_kustomization_with_its_own_namespace_is_applied_without_n() {
    let p = Shimmed::empty();
    p.write(
        "deploy/overlays/dev/kustomization.yaml",
        "namespace: dev-ns\nresources:\n  - app.yaml\n",
    )
    .write(
        "deploy/overlays/dev/app.yaml",
        &format!(
            "{}---\n{SERVICE}---\n{CLUSTER_ROLE}",
            deployment("web", None, "ghcr.io/o/web:old")
        ),
    )
    .write(
        "montage.toml",
        r#"
[tasks.dev.deploy]
manifests = "deploy/overlays/dev"
images = { "ghcr.io/o/web" = "reg:5000/web:abc" }
namespace = "montage-ai"
"#,
    );
    ok(&p.mtr(&["dev"]));
    assert_eq!(
        calls(&p),
        [
            "kubectl kustomize ROOT/.mtr/deploy/dev/sources",
            "kubectl kustomize ROOT/.mtr/deploy/dev",
            "kubectl apply -f ROOT/.mtr/deploy/dev/rendered.yaml",
            "kubectl rollout status deployment/web -n dev-ns --timeout=10m",
        ]
    );
    let mut got = namespaces(&rendered(&p, "dev"));
    got.sort();
    assert_eq!(
        got,
        [
            ("ClusterRole/reader".into(), None),
            ("Deployment/web".into(), Some("dev-ns".into())),
            ("Service/web".into(), Some("dev-ns".into())),
        ]
    );
}

#[test]
fn objects_all_in_the_tasks_namespace_or_none_keep_n() {
    let p = Shimmed::empty();
    p.write(
        "k8s/app.yaml",
        &format!(
            "{}---\n{SERVICE}---\n{CLUSTER_ROLE}",
            deployment("web", Some("prod"), "ghcr.io/o/web:old")
        ),
    )
    .write(
        "montage.toml",
        r#"
[tasks.ship.deploy]
manifests = "k8s/app.yaml"
images = { "ghcr.io/o/web" = "reg:5000/web:abc" }
namespace = "prod"
"#,
    );
    ok(&p.mtr(&["ship"]));
    assert_eq!(
        calls(&p),
        [
            "kubectl kustomize ROOT/.mtr/deploy/ship/sources",
            "kubectl kustomize ROOT/.mtr/deploy/ship",
            "kubectl apply -f ROOT/.mtr/deploy/ship/rendered.yaml -n prod",
            "kubectl rollout status deployment/web -n prod --timeout=10m",
        ]
    );
    // Nothing written in: `-n prod` places the Service.
    let mut got = namespaces(&rendered(&p, "ship"));
    got.sort();
    assert_eq!(
        got,
        [
            ("ClusterRole/reader".into(), None),
            ("Deployment/web".into(), Some("prod".into())),
            ("Service/web".into(), None),
        ]
    );
}

#[test]
fn without_a_task_namespace_nothing_is_written_in() {
    let p = Shimmed::empty();
    p.write(
        "k8s/app.yaml",
        &format!("{SERVICE}---\n{}", deployment("etl", Some("data"), "ghcr.io/o/etl:old")),
    )
    .write(
        "montage.toml",
        r#"
[tasks.ship.deploy]
manifests = "k8s/app.yaml"
images = { "ghcr.io/o/etl" = "reg:5000/etl:abc" }
"#,
    );
    ok(&p.mtr(&["ship"]));
    assert_eq!(
        calls(&p)[2..],
        [
            "kubectl apply -f ROOT/.mtr/deploy/ship/rendered.yaml",
            "kubectl rollout status deployment/etl -n data --timeout=10m",
        ]
    );
    let mut got = namespaces(&rendered(&p, "ship"));
    got.sort();
    assert_eq!(
        got,
        [
            ("Deployment/etl".into(), Some("data".into())),
            ("Service/web".into(), None),
        ]
    );
}

#[test]
fn a_list_of_manifests_is_rendered_in_order_and_applied_once() {
    let p = Shimmed::empty();
    p.write("k8s/web.yaml", &deployment("web", None, "ghcr.io/o/app:old"))
        .write(
            "k8s/worker.yaml",
            &format!("{}---\n{CLUSTER_ROLE}", deployment("worker", None, "ghcr.io/o/app:old")),
        )
        .write(
            "montage.toml",
            r#"
[vars]
extra = ""

[tasks.ship.deploy]
manifests = ["k8s/web.yaml", "{{ extra }}", "./k8s/worker.yaml"]
images = { "ghcr.io/o/app" = "reg:5000/app:abc" }
namespace = "prod"
"#,
        );
    ok(&p.mtr(&["ship"]));
    let calls = calls(&p);
    assert_eq!(
        calls,
        [
            "kubectl kustomize ROOT/.mtr/deploy/ship/sources",
            "kubectl kustomize ROOT/.mtr/deploy/ship",
            "kubectl apply -f ROOT/.mtr/deploy/ship/rendered.yaml -n prod",
            "kubectl rollout status deployment/web -n prod --timeout=10m",
            "kubectl rollout status deployment/worker -n prod --timeout=10m",
        ]
    );
    let rendered = rendered(&p, "ship");
    assert_eq!(
        images(&rendered),
        ["reg:5000/app:abc", "reg:5000/app:abc"],
        "{rendered}"
    );
    let overlay = std::fs::read_to_string(p.root().join(".mtr/deploy/ship/sources/kustomization.yaml")).unwrap();
    assert!(
        overlay.contains("  - \"resources/001-web.yaml\"\n  - \"resources/002-worker.yaml\"\n"),
        "{overlay}"
    );
    // Tracked files are never edited.
    assert!(
        std::fs::read_to_string(p.root().join("k8s/worker.yaml"))
            .unwrap()
            .contains("app:old")
    );
}

#[test]
fn a_list_mixes_kustomization_dirs_and_files() {
    let p = Shimmed::empty();
    p.write(
        "base/kustomization.yaml",
        "namespace: dev-ns\nresources:\n  - web.yaml\n",
    )
    .write("base/web.yaml", &deployment("web", None, "ghcr.io/o/app:old"))
    .write("jobs/worker.yaml", &deployment("worker", None, "ghcr.io/o/app:old"))
    .write(
        "montage.toml",
        r#"
[tasks.ship.deploy]
manifests = ["base", "jobs/worker.yaml"]
images = { "ghcr.io/o/app" = "reg:5000/app:abc" }
namespace = "montage-ai"
"#,
    );
    ok(&p.mtr(&["ship"]));
    assert_eq!(
        calls(&p)[2..],
        [
            "kubectl apply -f ROOT/.mtr/deploy/ship/rendered.yaml",
            "kubectl rollout status deployment/web -n dev-ns --timeout=10m",
            "kubectl rollout status deployment/worker -n montage-ai --timeout=10m",
        ]
    );
    let rendered = rendered(&p, "ship");
    assert_eq!(
        namespaces(&rendered),
        [
            ("Deployment/web".into(), Some("dev-ns".into())),
            ("Deployment/worker".into(), Some("montage-ai".into())),
        ]
    );
    assert_eq!(images(&rendered), ["reg:5000/app:abc", "reg:5000/app:abc"]);
}

#[test]
fn manifest_errors_name_the_file() {
    let p = Shimmed::empty();
    p.write("k8s/web.yaml", &deployment("web", None, "ghcr.io/o/app:old"))
        .write("k8s/broken.yaml", "kind: Deployment\nmetadata: [unclosed\n")
        .write("k8s/notes.yaml", "just some words\n")
        .write("k8s/dup.yaml", &deployment("web", None, "ghcr.io/o/app:old"))
        .write(
            "montage.toml",
            r#"
[tasks.missing.deploy]
manifests = ["k8s/web.yaml", "k8s/nope.yaml"]
images = { "ghcr.io/o/app" = "reg:5000/app:abc" }

[tasks.broken.deploy]
manifests = ["k8s/web.yaml", "k8s/broken.yaml"]
images = { "ghcr.io/o/app" = "reg:5000/app:abc" }

[tasks.notes.deploy]
manifests = ["k8s/web.yaml", "k8s/notes.yaml"]
images = { "ghcr.io/o/app" = "reg:5000/app:abc" }

[tasks.dup.deploy]
manifests = ["k8s/web.yaml", "k8s/dup.yaml"]
images = { "ghcr.io/o/app" = "reg:5000/app:abc" }
"#,
        );
    let err = fails(&p.mtr(&["missing"]));
    assert!(err.contains("`k8s/nope.yaml` do not exist"), "{err}");
    let err = fails(&p.mtr(&["broken"]));
    assert!(err.contains("`k8s/broken.yaml` are not YAML"), "{err}");
    let err = fails(&p.mtr(&["notes"]));
    assert!(err.contains("`k8s/notes.yaml` are not Kubernetes objects"), "{err}");
    // kustomize's own error names the file, not its copy under `.mtr/`.
    let err = fails(&p.mtr(&["dup"]));
    let failed = err.lines().find(|l| l.contains("dup failed")).unwrap_or_default();
    assert!(
        failed.contains("'k8s/dup.yaml'") && !failed.contains("002-dup"),
        "{err}"
    );
    assert!(!calls(&p).iter().any(|c| c.contains(" apply ")), "nothing applied");
}

/// A Deployment whose pod has an init container too.
fn with_init(name: &str, image: &str, init: &str) -> String {
    deployment(name, None, image).replace(
        "      containers:\n",
        &format!("      initContainers:\n        - name: init\n          image: {init}\n      containers:\n"),
    )
}

const CRONJOB: &str = "apiVersion: batch/v1\nkind: CronJob\nmetadata:\n  name: nightly\nspec:\n  schedule: \"@daily\"\n  jobTemplate:\n    spec:\n      template:\n        spec:\n          restartPolicy: Never\n          containers:\n            - name: job\n              image: docker.io/library/busybox:1.36\n";

#[test]
fn an_images_key_no_image_has_fails_naming_it_and_applies_nothing() {
    let p = Shimmed::empty();
    p.write(
        "k8s/app.yaml",
        &format!(
            "{}---\n{}---\n{CRONJOB}",
            deployment("web", None, "ghcr.io/acme/app:old"),
            with_init("ctl", "reg:5000/acme/controller:v1", "postgres:16"),
        ),
    )
    .write(
        "montage.toml",
        r#"
[tasks.typo.deploy]
manifests = "k8s/app.yaml"
images = { "ghcr.io/acme/typo" = "ghcr.io/acme/app:new" }
namespace = "prod"

[tasks.longer.deploy]
manifests = "k8s/app.yaml"
images = { "reg:5000/acme/controller-manager" = "reg:5000/acme/controller:v2" }

[tasks.some.deploy]
manifests = "k8s/app.yaml"
images = { "ghcr.io/acme/app" = "ghcr.io/acme/app:new", "nope" = "nope:1", "reg:5000/acme/ctl" = "x:1" }
"#,
    );
    let out = p.mtr(&["typo"]);
    assert_eq!(out.status.code(), Some(1));
    let err = fails(&out);
    assert!(
        err.contains("✗ typo failed: `images` key `ghcr.io/acme/typo` matches no container image in the manifests"),
        "{err}"
    );
    assert!(err.contains("did you mean `ghcr.io/acme/app`?"), "{err}");
    // Every repository the manifests run: containers, init containers,
    // a CronJob's; tags ignored, a registry's port kept.
    assert!(
        err.contains(
            "the manifests use `docker.io/library/busybox`, `ghcr.io/acme/app`, `postgres`, `reg:5000/acme/controller`"
        ),
        "{err}"
    );
    // Only the manifests were rendered: nothing applied, no rollout waited on.
    assert_eq!(calls(&p), ["kubectl kustomize ROOT/.mtr/deploy/typo/sources"]);
    assert!(!p.root().join(".mtr/deploy/typo/rendered.yaml").exists());

    let err = fails(&p.mtr(&["longer"]));
    assert!(
        err.contains("key `reg:5000/acme/controller-manager` matches no"),
        "{err}"
    );
    assert!(err.contains("did you mean `reg:5000/acme/controller`?"), "{err}");
    assert!(
        !calls(&p)
            .iter()
            .any(|c| c.contains(" apply ") || c.contains(" rollout "))
    );

    // Each key that matches nothing is named; one that matches is not.
    let err = fails(&p.mtr(&["some"]));
    assert!(
        err.contains("`images` keys `nope`, `reg:5000/acme/ctl` match no container image"),
        "{err}"
    );
    let first = err.lines().find(|l| l.contains("some failed")).unwrap_or_default();
    assert!(!first.contains("ghcr.io/acme/app"), "{err}");
    assert!(
        !calls(&p)
            .iter()
            .any(|c| c.contains(" apply ") || c.contains(" rollout "))
    );
}

#[test]
fn keys_match_by_repository_whatever_the_tag_digest_or_registry_port() {
    let p = Shimmed::empty();
    p.write(
        "k8s/app.yaml",
        &format!(
            "{}---\n{}---\n{CRONJOB}",
            deployment("web", None, "localhost:5000/acme/app:old"),
            with_init(
                "ctl",
                "ghcr.io/acme/controller@sha256:0000000000000000000000000000000000000000000000000000000000000000",
                "ghcr.io/acme/migrate:v1"
            ),
        ),
    )
    .write(
        "montage.toml",
        r#"
[tasks.ship.deploy]
manifests = "k8s/app.yaml"
images = { "localhost:5000/acme/app" = "localhost:5000/acme/app:new", "ghcr.io/acme/migrate" = "reg:5000/migrate:v2", "docker.io/library/busybox" = "busybox:1.37" }
namespace = "prod"
"#,
    );
    ok(&p.mtr(&["ship"]));
    assert_eq!(
        calls(&p),
        [
            "kubectl kustomize ROOT/.mtr/deploy/ship/sources",
            "kubectl kustomize ROOT/.mtr/deploy/ship",
            "kubectl apply -f ROOT/.mtr/deploy/ship/rendered.yaml -n prod",
            "kubectl rollout status deployment/ctl -n prod --timeout=10m",
            "kubectl rollout status deployment/web -n prod --timeout=10m",
        ]
    );
    let mut imgs = images(&rendered(&p, "ship"));
    imgs.sort();
    assert_eq!(
        imgs,
        [
            "busybox:1.37",
            "ghcr.io/acme/controller@sha256:0000000000000000000000000000000000000000000000000000000000000000",
            "localhost:5000/acme/app:new",
            "reg:5000/migrate:v2",
        ]
    );
}

/// A PATH holding `sh` (and the docker shim) but no `kubectl`, which is
/// installed at a system path here.
fn path_without_kubectl(p: &Shimmed) -> String {
    let bin = p.dir.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::os::unix::fs::symlink("/bin/sh", bin.join("sh")).unwrap();
    std::os::unix::fs::symlink(shimmed::repo().join("tests/shims/docker"), bin.join("docker")).unwrap();
    bin.display().to_string()
}

/// README: a program that is not installed exits 127, deploys included.
#[test]
fn missing_kubectl_exits_127_in_both_forms() {
    let p = Shimmed::empty();
    p.write("k8s/app.yaml", &deployment("web", None, "ghcr.io/o/web:old"))
        .write(
            "montage.toml",
            r#"
[tasks.one.deploy]
deployment = "web"
container = "web"
image = "reg:5000/web:abc"
namespace = "prod"

[tasks.two.deploy]
manifests = "k8s/app.yaml"
images = { "ghcr.io/o/web" = "reg:5000/web:abc" }
"#,
        );
    let path = path_without_kubectl(&p);
    for task in ["one", "two"] {
        let out = p.mtr_env(&[task], &[("PATH", &path)]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(127), "{task}: {err}");
        assert!(
            err.contains(&format!("✗ {task} failed: `kubectl` was not found on PATH")),
            "{task}: {err}"
        );
    }
}
