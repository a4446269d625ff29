//! The golden path through recording `docker`/`kubectl` shims (tests/shims):
//! the argv of every typed action, what is skipped, what rebuilds.

use std::path::Path;
use std::process::Command;

mod shimmed;

use shimmed::{Shimmed, ok, repo, stderr};

fn builds(calls: &[String]) -> Vec<&String> {
    calls.iter().filter(|c| c.starts_with("docker buildx build")).collect()
}

#[test]
fn dev_builds_once_with_a_local_cache_and_load() {
    let g = Shimmed::montage_ai();
    ok(&g.mtr(&["dev"]));
    let calls = g.calls();
    assert_eq!(
        builds(&calls),
        [
            "docker buildx build --target dev --cache-from type=local,src=.cache/buildx \
          --cache-to type=local,dest=.cache/buildx,mode=max -t montage-ai:dev --load ."
        ]
    );
    assert!(
        g.root().join(".cache/buildx").is_dir(),
        "the local cache dir is created"
    );
    ok(&g.mtr(&["dev"]));
    let calls = g.calls();
    assert!(builds(&calls).is_empty(), "second dev is skipped: {calls:?}");
    assert!(calls.contains(&"docker image inspect montage-ai:dev".to_string()));
}

#[test]
fn dev_test_after_a_src_edit_does_not_rebuild_dev() {
    let g = Shimmed::montage_ai();
    ok(&g.mtr(&["dev-test"]));
    g.calls();
    g.write("src/montage_ai/__init__.py", "# edited\n");
    ok(&g.mtr(&["dev-test"]));
    let calls = g.calls();
    assert!(builds(&calls).is_empty(), "{calls:?}");
    let run = calls
        .iter()
        .find(|c| c.starts_with("docker run"))
        .expect("dev-test runs");
    let root = g.root().display().to_string();
    assert!(run.starts_with("docker run --rm --name mtr-dev-test-"), "{run}");
    assert!(!run.contains(" -t "), "no TTY when not on a terminal: {run}");
    assert!(
        run.ends_with(&format!(
            "-e PYTHONPATH=/app/src -v {root}/src:/app/src -v {root}/tests:/app/tests \
             -w /app montage-ai:dev python -m pytest -q -p no:cacheprovider tests"
        )),
        "{run}"
    );
}

#[test]
fn dev_rebuilds_when_the_image_is_gone() {
    let g = Shimmed::montage_ai();
    ok(&g.mtr(&["dev"]));
    std::fs::remove_dir_all(g.state.join("images")).unwrap();
    g.calls();
    let err = ok(&g.mtr(&["dev", "--explain"]));
    assert_eq!(builds(&g.calls()).len(), 1);
    assert!(err.contains("image `montage-ai:dev` no longer exists"), "{err}");
}

#[test]
fn cluster_build_pushes_every_platform_with_a_registry_cache() {
    let g = Shimmed::montage_ai();
    ok(&g.mtr(&["cluster-build"]));
    let calls = g.calls();
    let root = g.root().display().to_string();
    let create = format!(
        "docker buildx create --name montage-builder --driver docker-container \
         --config {root}/.mtr/builders/montage-builder/buildkitd.toml --bootstrap"
    );
    assert_eq!(calls.iter().filter(|c| **c == create).count(), 1, "{calls:?}");
    let config = std::fs::read_to_string(g.root().join(".mtr/builders/montage-builder/buildkitd.toml")).unwrap();
    assert!(
        config.contains("[registry.\"127.0.0.1:5000\"]\n  http = true\n  insecure = true"),
        "{config}"
    );
    let build = builds(&calls);
    assert_eq!(build.len(), 1);
    let b = build[0];
    for part in [
        "--builder montage-builder",
        "--target runtime",
        "--platform linux/amd64,linux/arm64",
        "--build-arg GIT_COMMIT=",
        "--cache-from type=registry,ref=127.0.0.1:5000/montage-ai:buildcache",
        "--cache-to type=registry,ref=127.0.0.1:5000/montage-ai:buildcache,mode=max",
        "-t 127.0.0.1:5000/montage-ai:latest --push .",
    ] {
        assert!(b.contains(part), "missing `{part}` in {b}");
    }
    let tag = content_tag(b);
    assert_eq!(tag.len(), 12, "the content tag is the 12-digit hash: {b}");
    assert!(create_before_build(&calls), "the builder exists before the build");

    // Second run: skipped, the tag is checked in the registry.
    ok(&g.mtr(&["cluster-build"]));
    let calls = g.calls();
    assert!(builds(&calls).is_empty(), "{calls:?}");
    assert!(calls.contains(&format!(
        "docker buildx imagetools inspect 127.0.0.1:5000/montage-ai:{tag}"
    )));
    assert!(
        !calls.iter().any(|c| c.starts_with("docker buildx create")),
        "builder created once"
    );
}

fn content_tag(build: &str) -> String {
    let words: Vec<&str> = build.split(' ').collect();
    let i = words.iter().position(|w| *w == "-t").unwrap();
    words[i + 1].rsplit(':').next().unwrap().to_string()
}

fn create_before_build(calls: &[String]) -> bool {
    let c = calls.iter().position(|c| c.starts_with("docker buildx create"));
    let b = calls.iter().position(|c| c.starts_with("docker buildx build"));
    matches!((c, b), (Some(c), Some(b)) if c < b)
}

#[test]
fn context_edits_rebuild_but_dockerignored_edits_do_not() {
    let g = Shimmed::montage_ai();
    ok(&g.mtr(&["cluster-build"]));
    g.calls();
    g.write("tests/test_extra.py", "# ignored: tests/ is in .dockerignore\n");
    g.write("NOTES.md", "ignored: *.md\n");
    g.write("src/montage_ai/__pycache__/x.pyc", "ignored\n");
    ok(&g.mtr(&["cluster-build"]));
    assert!(builds(&g.calls()).is_empty());
    g.write("README.md", "kept by !README.md\n");
    ok(&g.mtr(&["cluster-build"]));
    assert_eq!(builds(&g.calls()).len(), 1);
    g.write("src/montage_ai/new_module.py", "X = 1\n");
    let err = ok(&g.mtr(&["cluster-build", "--explain"]));
    assert_eq!(builds(&g.calls()).len(), 1);
    assert!(err.contains("added `src/montage_ai/new_module.py`"), "{err}");
}

#[test]
fn a_missing_registry_tag_rebuilds() {
    let g = Shimmed::montage_ai();
    ok(&g.mtr(&["cluster-build"]));
    // The registry restarted empty (an emptyDir registry loses its images).
    std::fs::remove_dir_all(g.state.join("pushed")).unwrap();
    g.calls();
    ok(&g.mtr(&["cluster-build"]));
    assert_eq!(builds(&g.calls()).len(), 1);
}

#[test]
fn cluster_deploys_the_content_tag_and_waits() {
    let g = Shimmed::montage_ai();
    ok(&g.mtr(&["cluster"]));
    let calls = g.calls();
    let tag = content_tag(builds(&calls)[0]);
    let root = g.root().display().to_string();
    let deploy: Vec<&String> = calls.iter().filter(|c| c.starts_with("kubectl")).collect();
    assert_eq!(
        deploy,
        [
            &format!("kubectl kustomize {root}/.mtr/deploy/cluster-deploy/sources"),
            &format!("kubectl kustomize {root}/.mtr/deploy/cluster-deploy"),
            &format!("kubectl apply -f {root}/.mtr/deploy/cluster-deploy/rendered.yaml -n montage-ai"),
            &"kubectl rollout status deployment/montage-ai-worker -n montage-ai --timeout=5m".to_string(),
        ]
    );
    let rendered = std::fs::read_to_string(g.root().join(".mtr/deploy/cluster-deploy/rendered.yaml")).unwrap();
    assert!(
        rendered.contains(&format!("image: 127.0.0.1:5000/montage-ai:{tag}")),
        "{rendered}"
    );
    // Tracked manifests are never edited.
    let tracked = std::fs::read_to_string(g.root().join("deploy/k3s/deployment.yaml")).unwrap();
    assert!(tracked.contains("ghcr.io/mfahsold/montage-ai"));
    // A second `mtr cluster` pushes nothing new.
    ok(&g.mtr(&["cluster"]));
    assert!(builds(&g.calls()).is_empty());
}

#[test]
fn variables_from_the_environment_reach_the_argv() {
    let g = Shimmed::montage_ai();
    ok(&g.mtr_env(
        &["cluster-build"],
        &[("REGISTRY", "10.43.17.166:5000"), ("PLATFORMS", "linux/arm64")],
    ));
    let calls = g.calls();
    let b = builds(&calls)[0];
    assert!(b.contains("--platform linux/arm64 "), "{b}");
    assert!(b.contains("-t 10.43.17.166:5000/montage-ai:latest"), "{b}");
}

#[test]
fn a_changed_builder_section_recreates_the_builder() {
    let g = Shimmed::montage_ai();
    ok(&g.mtr(&["cluster-build"]));
    g.calls();
    ok(&g.mtr_env(&["cluster-build"], &[("REGISTRY", "10.0.0.9:5000")]));
    let calls = g.calls();
    let rm = calls
        .iter()
        .position(|c| c == "docker buildx rm montage-builder")
        .expect("old builder removed");
    let create = calls
        .iter()
        .position(|c| c.starts_with("docker buildx create --name montage-builder"))
        .unwrap();
    assert!(rm < create);
    let config = std::fs::read_to_string(g.root().join(".mtr/builders/montage-builder/buildkitd.toml")).unwrap();
    assert!(config.contains("10.0.0.9:5000"));
}

#[test]
fn builder_nodes_are_appended() {
    let g = Shimmed::empty();
    g.write("Dockerfile", "FROM scratch\n").write(
        "montage.toml",
        r#"
[builders.multi]
driver = "remote"
nodes = [
  { endpoint = "tcp://amd64-node:1234", platforms = ["linux/amd64"] },
  { endpoint = "tcp://arm64-node:1234", platforms = ["linux/arm64"] },
]
[tasks.img.image]
name = "reg/app"
builder = "multi"
platforms = ["linux/amd64", "linux/arm64"]
push = true
"#,
    );
    ok(&g.mtr(&["img"]));
    let calls = g.calls();
    let creates: Vec<&String> = calls.iter().filter(|c| c.starts_with("docker buildx create")).collect();
    assert_eq!(creates.len(), 2, "{calls:?}");
    assert!(
        creates[0].contains("--driver remote")
            && creates[0].ends_with("--node multi-0 --platform linux/amd64 tcp://amd64-node:1234")
    );
    assert!(creates[1].contains("--append --node multi-1 --platform linux/arm64 --bootstrap tcp://arm64-node:1234"));
}

#[test]
fn several_platforms_without_push_is_a_config_error() {
    let g = Shimmed::empty();
    g.write("Dockerfile", "FROM scratch\n").write(
        "montage.toml",
        "[tasks.img.image]\nname = \"app\"\nplatforms = [\"linux/amd64\", \"linux/arm64\"]\n",
    );
    let out = g.mtr(&["img"]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains("task `img` builds several platforms but does not push"),
        "{err}"
    );
    assert!(err.contains("montage.toml:3"), "points into the file: {err}");
    assert!(g.calls().is_empty(), "nothing ran");

    // With templated platforms the check happens when the plan is made.
    g.write(
        "montage.toml",
        "[vars]\nplatforms = { default = \"linux/amd64,linux/arm64\", env = \"PLATFORMS\" }\n\
         [tasks.img.image]\nname = \"app\"\nplatforms = [\"{{ platforms }}\"]\n",
    );
    assert_eq!(g.mtr(&["img"]).status.code(), Some(2));
    assert!(g.calls().is_empty());
    ok(&g.mtr_env(&["img"], &[("PLATFORMS", "linux/arm64")]));
    assert!(builds(&g.calls())[0].contains("--platform linux/arm64 -t app:"));
}

#[test]
fn missing_buildx_is_said_plainly() {
    let g = Shimmed::montage_ai();
    g.shim_flag("no-buildx", true);
    let out = g.mtr(&["dev"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("✗ dev failed: `docker buildx` is not installed"), "{err}");
    assert!(err.contains("buildx plugin"), "{err}");
    assert!(builds(&g.calls()).is_empty());
}

/// A project with one task per typed docker action, run where no `docker`
/// is on PATH: (exit status, stderr) of each task.
fn without_docker() -> Vec<(&'static str, Option<i32>, String)> {
    let g = Shimmed::empty();
    g.write("Dockerfile", "FROM scratch\n").write(
        "montage.toml",
        r#"
[builders.b]
driver = "docker-container"

[tasks.img]
image = { name = "app" }

[tasks.with-builder]
image = { name = "app", builder = "b" }

[tasks.box]
container = { image = "alpine", command = "true" }
"#,
    );
    ["img", "with-builder", "box"]
        .into_iter()
        .map(|task| {
            let out = g.mtr_env(&[task], &[("PATH", "/nonexistent")]);
            (task, out.status.code(), stderr(&out))
        })
        .collect()
}

#[test]
fn missing_docker_is_reported_by_name_with_the_task() {
    for (task, _, err) in without_docker() {
        assert!(
            err.contains(&format!("✗ {task} failed: `docker` was not found on PATH")),
            "{err}"
        );
    }
}

/// README: a missing program exits 127, typed actions included.
#[test]
fn missing_docker_exits_127_from_every_typed_action() {
    for (task, code, err) in without_docker() {
        assert_eq!(code, Some(127), "{task}: {err}");
    }
}

#[test]
fn image_defaults_tag_to_the_hash_and_exposes_tasks_image() {
    let g = Shimmed::empty();
    g.write("Dockerfile", "FROM scratch\n").write("app.txt", "1\n").write(
        "montage.toml",
        r#"
[tasks.img]
image = { name = "reg:5000/app", dockerfile = "Dockerfile" }
[tasks.show]
deps = ["img"]
run = "echo deploying {{ tasks.img.image }} hash {{ tasks.img.hash }}"
"#,
    );
    let out = g.mtr(&["show"]);
    ok(&out);
    let calls = g.calls();
    let tag = content_tag(builds(&calls)[0]);
    assert!(builds(&calls)[0].contains("-f Dockerfile"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(&format!("deploying reg:5000/app:{tag} hash {tag}")),
        "{stdout}"
    );
}

fn deploy_project(g: &Shimmed, undo: bool) {
    g.write(
        "montage.toml",
        &format!(
            r#"
[tasks.rollout.deploy]
deployment = "montage-ai-worker"
container = "montage-ai"
image = "reg/app:v2"
namespace = "montage-ai"
context = "k3s"
timeout = "5m"
undo_on_failure = {undo}
"#
        ),
    );
}

#[test]
fn deploy_sets_the_image_and_waits() {
    let g = Shimmed::empty();
    deploy_project(&g, false);
    ok(&g.mtr(&["rollout"]));
    assert_eq!(
        g.calls(),
        [
            "kubectl --context k3s set image deployment/montage-ai-worker montage-ai=reg/app:v2 -n montage-ai",
            "kubectl --context k3s rollout status deployment/montage-ai-worker -n montage-ai --timeout=5m",
        ]
    );
}

#[test]
fn a_failed_rollout_is_undone_only_when_this_run_began_it() {
    let g = Shimmed::empty();
    deploy_project(&g, true);
    g.shim_flag("fail-rollout", true);
    let out = g.mtr(&["rollout"]);
    assert_eq!(out.status.code(), Some(1));
    let calls = g.calls();
    assert_eq!(
        calls.last().unwrap(),
        "kubectl --context k3s rollout undo deployment/montage-ai-worker -n montage-ai"
    );
    let err = stderr(&out);
    assert!(
        err.contains("✗ rollout failed: `kubectl --context k3s` failed"),
        "{err}"
    );
    assert!(
        err.contains("exceeded its progress deadline"),
        "kubectl's error is shown: {err}"
    );

    // A failed `set image` began no rollout: nothing to undo.
    g.shim_flag("fail-rollout", false);
    g.shim_flag("fail-set-image", true);
    let out = g.mtr(&["rollout"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(!g.calls().iter().any(|c| c.contains("rollout undo")));
    let err = stderr(&out);
    assert!(
        err.contains("rollout failed") && err.contains("deployments.apps \"nope\" not found"),
        "{err}"
    );
}

#[test]
fn deploy_manifest_files_get_the_new_images() {
    let g = Shimmed::empty();
    g.write(
        "k8s/app.yaml",
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  selector:\n    matchLabels: {app: web}\n  template:\n    metadata:\n      labels: {app: web}\n    spec:\n      containers:\n        - name: web\n          image: ghcr.io/o/web:old\n",
    )
    .write(
        "montage.toml",
        r#"
[tasks.ship.deploy]
manifests = "k8s/app.yaml"
images = { "ghcr.io/o/web" = "reg:5000/web:abc123" }
namespace = "prod"
"#,
    );
    ok(&g.mtr(&["ship"]));
    let calls = g.calls();
    assert_eq!(
        calls.last().unwrap(),
        "kubectl rollout status deployment/web -n prod --timeout=10m"
    );
    let rendered = std::fs::read_to_string(g.root().join(".mtr/deploy/ship/rendered.yaml")).unwrap();
    assert!(rendered.contains("image: reg:5000/web:abc123"), "{rendered}");
    assert!(
        std::fs::read_to_string(g.root().join("k8s/app.yaml"))
            .unwrap()
            .contains("web:old")
    );
}

#[test]
fn dry_run_prints_the_argv_and_runs_nothing() {
    let g = Shimmed::montage_ai();
    let out = g.mtr(&["cluster", "-n"]);
    ok(&out);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("cluster-build: would run: never ran"), "{stdout}");
    assert!(stdout.contains("--platform linux/amd64,linux/arm64"), "{stdout}");
    // The builder it would create, in full.
    assert!(
        stdout.contains(
            "docker buildx create --name montage-builder --driver docker-container \
             --config .mtr/builders/montage-builder/buildkitd.toml --bootstrap  # if missing or changed"
        ),
        "{stdout}"
    );
    assert!(
        stdout.contains("cluster-deploy: would run: dependency `cluster-build` would run"),
        "{stdout}"
    );
    let calls = g.calls();
    assert!(
        calls
            .iter()
            .all(|c| !c.contains("buildx build") && !c.contains("kubectl")),
        "{calls:?}"
    );
}

#[test]
fn the_example_lists_like_make_help() {
    let g = Shimmed::montage_ai();
    let out = g.mtr(&[]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    for line in [
        "Local development",
        "  dev             Build the dev image (once)",
        "Cluster deployment",
        "  cluster         Build, push and deploy to the cluster",
        "Maintenance",
    ] {
        assert!(stdout.contains(line), "missing {line:?} in:\n{stdout}");
    }
}

#[test]
fn the_example_checks_pass_offline() {
    // Python tests, the CLI, and `kubectl kustomize` of every manifest dir.
    let out = Command::new("bash")
        .arg(repo().join("examples/montage-ai/check.sh"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// What buildx leaves in a `type=local` cache dir after a build.
fn fill_cache(dir: &Path) {
    std::fs::create_dir_all(dir.join("blobs/sha256")).unwrap();
    std::fs::write(dir.join("index.json"), "{\"manifests\":[]}\n").unwrap();
    std::fs::write(dir.join("blobs/sha256/0a1b"), "layer\n").unwrap();
}

#[test]
fn a_local_cache_dir_in_the_context_is_not_an_input() {
    let g = Shimmed::empty();
    g.write("Dockerfile", "FROM scratch\nCOPY . /app\n")
        .write("app.txt", "1\n")
        .write("sub/Dockerfile", "FROM scratch\n")
        .write("sub/b.txt", "1\n")
        // Another task's context; only its own local cache is left out.
        .write(".dockerignore", "sub\n")
        .write(
            "montage.toml",
            r#"
[tasks.img.image]
name = "app"
tags = ["dev"]
cache_from = ["type=local,src=.cache/buildx"]
cache_to = ["type=local,dest=./.cache/buildx/,mode=max"]

[tasks.sub.image]
name = "sub"
context = "sub"
cache_to = ["type=local,dest={{ root }}/sub/.buildcache"]
"#,
        );
    ok(&g.mtr(&["img", "sub"]));
    assert_eq!(builds(&g.calls()).len(), 2);
    assert!(g.root().join(".cache/buildx").is_dir(), "mtr creates the cache dir");
    fill_cache(&g.root().join(".cache/buildx"));
    fill_cache(&g.root().join("sub/.buildcache"));
    let err = ok(&g.mtr(&["img", "sub", "--explain"]));
    let calls = g.calls();
    assert!(builds(&calls).is_empty(), "{err}\n{calls:?}");
    assert!(
        err.contains("· img up to date") && err.contains("· sub up to date"),
        "{err}"
    );
    // Anything else in the context still rebuilds it.
    g.write("app.txt", "2\n").write("sub/b.txt", "2\n");
    let err = ok(&g.mtr(&["img", "sub", "--explain"]));
    assert_eq!(builds(&g.calls()).len(), 2, "{err}");
    assert!(
        err.contains("modified `app.txt`") && err.contains("modified `sub/b.txt`"),
        "{err}"
    );
    // A new file next to the cache dir is a change; one in it is not.
    g.write(".cache/other.txt", "x\n");
    fill_cache(&g.root().join(".cache/buildx/more"));
    let err = ok(&g.mtr(&["img", "--explain"]));
    assert_eq!(builds(&g.calls()).len(), 1, "{err}");
    assert!(err.contains("added `.cache/other.txt`"), "{err}");
}

#[test]
fn a_local_cache_dir_is_relative_to_the_root_in_a_task_dir() {
    let g = Shimmed::empty();
    g.write("web/Dockerfile", "FROM scratch\n").write(
        "montage.toml",
        r#"
[tasks.img]
dir = "web"
[tasks.img.image]
name = "web"
context = "web"
cache_to = ["type=local,dest=web/.cache,mode=max"]
"#,
    );
    ok(&g.mtr(&["img"]));
    let calls = g.calls();
    let root = g.root().display().to_string();
    assert!(
        builds(&calls)[0].contains(&format!("--cache-to type=local,dest={root}/web/.cache,mode=max")),
        "{calls:?}"
    );
    assert!(g.root().join("web/.cache").is_dir());
    fill_cache(&g.root().join("web/.cache"));
    ok(&g.mtr(&["img"]));
    assert!(builds(&g.calls()).is_empty());
}

#[test]
fn the_example_dev_image_is_up_to_date_once_its_cache_is_filled() {
    let g = Shimmed::montage_ai();
    ok(&g.mtr(&["dev"]));
    assert_eq!(builds(&g.calls()).len(), 1);
    fill_cache(&g.root().join(".cache/buildx"));
    let err = ok(&g.mtr(&["dev", "--explain"]));
    assert!(builds(&g.calls()).is_empty(), "{err}");
    assert!(err.contains("· dev up to date"), "{err}");
}

#[test]
fn an_image_name_with_a_tag_or_digest_is_an_error_before_anything_runs() {
    let g = Shimmed::empty();
    g.write("Dockerfile", "FROM scratch\n").write(
        "montage.toml",
        r#"
[vars]
img = { default = "controller:latest", env = "IMG" }

[tasks.tagged.image]
name = "controller:latest"

[tasks.templated.image]
name = "{{ img }}"

[tasks.digest.image]
name = "reg:5000/app@sha256:0123abcd"

[tasks.port.image]
name = "localhost:5000/app"
"#,
    );
    let out = g.mtr(&["tagged"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains(
            "task `tagged`: `image.name` must be a repository without a tag (`controller:latest`): put `latest` in `tags`"
        ),
        "{err}"
    );
    assert!(err.contains("montage.toml:6:8"), "{err}");
    let out = g.mtr(&["templated"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("put `latest` in `tags`"), "{}", stderr(&out));
    let out = g.mtr(&["digest"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("without a digest"), "{}", stderr(&out));
    assert!(g.calls().is_empty(), "nothing runs");
    // A registry port is not a tag; a variable can make the name valid.
    ok(&g.mtr(&["port"]));
    ok(&g.mtr_env(&["templated"], &[("IMG", "controller")]));
    let calls = g.calls();
    assert!(builds(&calls)[0].contains("-t localhost:5000/app:"), "{calls:?}");
    assert!(builds(&calls)[1].contains("-t controller:"), "{calls:?}");
}

#[test]
fn a_tilde_mount_is_the_home_directory() {
    let g = Shimmed::empty();
    let home = g.dir.path().join("home");
    std::fs::create_dir_all(home.join(".kube")).unwrap();
    g.write(
        "montage.toml",
        r#"
[tasks.kube.container]
image = "bitnami/kubectl"
mounts = ["~/.kube:/root/.kube:ro", "~:/home/me", "~/.cache", "data:/data"]
"#,
    );
    let home_s = home.display().to_string();
    ok(&g.mtr_env(&["kube"], &[("HOME", &home_s)]));
    let calls = g.calls();
    let run = calls.iter().find(|c| c.starts_with("docker run")).expect("it runs");
    let root = g.root().display().to_string();
    assert!(
        run.ends_with(&format!(
            "-v {home_s}/.kube:/root/.kube:ro -v {home_s}:/home/me -v {home_s}/.cache:{home_s}/.cache \
             -v {root}/data:/data bitnami/kubectl"
        )),
        "{run}"
    );
    assert!(!g.root().join("~").exists(), "no `~` directory in the project");
}
