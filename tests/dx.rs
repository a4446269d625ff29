//! Integration tests of the developer-experience features (issue 5):
//! `--help`, `--graph`, `--completions`, `--vars`, `--summary`,
//! `--profile`, GitHub Actions output and `--doctor`, through the real
//! binary on temporary projects. What users read is snapshotted
//! (`tests/snapshots/dx__*.snap`), with the temporary root, ports and
//! durations filtered.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

const MTR: &str = env!("CARGO_BIN_EXE_mtr");

/// A temporary project; removed when dropped.
struct Project {
    _dir: tempfile::TempDir,
    root: PathBuf,
}

/// What one mtr invocation did.
struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Project {
    fn new(toml: &str) -> Project {
        let dir = tempfile::Builder::new().prefix("mtr-dx-").tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        let p = Project { _dir: dir, root };
        p.write("montage.toml", toml);
        p
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.root.join(rel)
    }

    fn write(&self, rel: &str, contents: &str) {
        let path = self.path(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, contents).unwrap();
    }

    fn script(&self, rel: &str, contents: &str) {
        use std::os::unix::fs::PermissionsExt;
        self.write(rel, contents);
        std::fs::set_permissions(self.path(rel), std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.path(rel)).unwrap_or_else(|e| panic!("cannot read `{rel}`: {e}"))
    }

    /// `mtr ARGS` in the project root, with a clean, colourless environment.
    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(MTR);
        c.args(args)
            .current_dir(&self.root)
            .env("NO_COLOR", "1")
            .env("COLUMNS", "100");
        for var in ["GITHUB_ACTIONS", "GITHUB_STEP_SUMMARY", "CLICOLOR_FORCE", "FORCE_COLOR"] {
            c.env_remove(var);
        }
        c
    }

    fn run(&self, args: &[&str]) -> Out {
        output(self.cmd(args))
    }

    /// Output as a snapshot reads it: exit status, stdout, stderr, with the
    /// root path replaced.
    fn shown(&self, out: &Out) -> String {
        let text = format!(
            "exit: {}\n--- stdout\n{}--- stderr\n{}",
            out.code, out.stdout, out.stderr
        );
        text.replace(&self.root.display().to_string(), "[ROOT]")
    }
}

fn output(mut c: Command) -> Out {
    let out = c.output().expect("cannot run mtr");
    Out {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Snapshots with durations (`12ms`, `1.52s`, `2m03s`) filtered.
macro_rules! snapshot_timed {
    ($name:expr, $value:expr) => {
        insta::with_settings!({filters => vec![
            (r"\b\d+m\d\ds\b", "[TIME]"),
            (r"\b\d+(\.\d+)?m?s\b", "[TIME]"),
        ]}, {
            insta::assert_snapshot!($name, $value);
        })
    };
}

/// Snapshots of `--summary`/`--profile` JSON, as written, with times,
/// durations and fingerprints filtered.
macro_rules! snapshot_json {
    ($name:expr, $value:expr) => {
        insta::with_settings!({filters => vec![
            (r#""(started_unix_ms|duration_ms|start_ms|ts|dur)": \d+"#, r#""$1": "[number]""#),
            (r#""started": "[^"]+""#, r#""started": "[time]""#),
            (r#""mtr_version": "[^"]+""#, r#""mtr_version": "[version]""#),
            (r#""fingerprint": "[0-9a-f]{64}""#, r#""fingerprint": "[64 hex digits]""#),
            (r#""fingerprint": "[0-9a-f]{12}""#, r#""fingerprint": "[12 hex digits]""#),
        ]}, {
            insta::assert_snapshot!($name, $value);
        })
    };
}

fn has(program: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

// ---------------------------------------------------------------- --help

#[test]
fn help_for_newcomers() {
    let p = Project::new("");
    let long = p.run(&["--help"]);
    assert_eq!(long.code, 0);
    insta::assert_snapshot!("help_long", long.stdout);
    let short = p.run(&["-h"]);
    assert_eq!(short.code, 0);
    insta::assert_snapshot!("help_short", short.stdout);
}

// ---------------------------------------------------------------- --graph

const GRAPH: &str = r#"
[tasks.fmt]
run = "cargo fmt --check"

[tasks.lint]
description = "Clippy, \"pedantic\""
run = "cargo clippy"

[tasks.build]
deps = ["fmt"]
run = "cargo build"

[tasks."db:migrate"]
run = "migrate up"

[tasks.test]
deps = ["build", "lint", "db:migrate", "build"]
run = "cargo test"
aliases = ["t"]

[tasks.ci]
description = "What CI runs"
deps = ["test"]

[tasks._setup]
run = "true"
"#;

#[test]
fn graph_of_every_task_as_dot() {
    let p = Project::new(GRAPH);
    let out = p.run(&["--graph"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    insta::assert_snapshot!("graph_dot_all", p.shown(&out));
}

#[test]
fn graph_of_one_task_as_mermaid() {
    let p = Project::new(GRAPH);
    // An alias names the task; only it and its deps are drawn.
    let out = p.run(&["--graph", "t", "--format", "mermaid"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    insta::assert_snapshot!("graph_mermaid_test", p.shown(&out));
    // Task names as arguments work too, and the output is deterministic.
    let again = p.run(&["test", "--graph", "--format", "mermaid"]);
    assert_eq!(again.stdout, out.stdout);
}

#[test]
fn graph_of_an_unknown_task() {
    let p = Project::new(GRAPH);
    let out = p.run(&["--graph", "tset"]);
    assert_eq!(out.code, 2);
    insta::assert_snapshot!("graph_unknown_task", p.shown(&out));
}

// ---------------------------------------------------------- --completions

const COMPLETE: &str = r#"
[tasks.build]
description = "Build the app"
run = "true"
aliases = ["b"]

[tasks."db:migrate"]
run = "true"

[tasks.deploy]
run = "true"

[tasks._hidden]
run = "true"
"#;

#[test]
fn completion_scripts_for_every_shell() {
    let p = Project::new(COMPLETE);
    for shell in ["bash", "zsh", "fish", "powershell", "elvish"] {
        let out = p.run(&["--completions", shell]);
        assert_eq!(out.code, 0, "{shell}: {}", out.stderr);
        assert!(out.stdout.contains("dry-run"), "{shell}: no flags");
        // The dynamic hook: task names come from the montage.toml in scope.
        assert!(out.stdout.contains("mtr --complete-tasks"), "{shell}: no task hook");
        assert!(
            !out.stdout.contains("--complete-tasks["),
            "{shell}: the hidden flag is offered"
        );
    }
    let bad = p.run(&["--completions", "tcsh"]);
    assert_eq!(bad.code, 2);
}

#[test]
fn task_names_for_completion() {
    let p = Project::new(COMPLETE);
    let out = p.run(&["--complete-tasks"]);
    assert_eq!(out.code, 0);
    insta::assert_snapshot!("complete_tasks", out.stdout);
    // Elsewhere, and with a broken config: nothing, quietly.
    let empty = tempfile::tempdir().unwrap();
    let mut c = p.cmd(&["--complete-tasks"]);
    c.current_dir(empty.path());
    let out = output(c);
    assert_eq!((out.code, out.stdout.as_str(), out.stderr.as_str()), (0, "", ""));
    p.write("broken.toml", "[tasks.x]\nrun = 1\n");
    let out = p.run(&["--complete-tasks", "-f", "broken.toml"]);
    assert_eq!((out.code, out.stdout.as_str(), out.stderr.as_str()), (0, "", ""));
}

/// Runs the bash completion for each command line (the cursor at its
/// end) and returns `LINE => CANDIDATES` lines.
fn bash_complete(p: &Project, lines: &[&str]) -> String {
    let script = p.run(&["--completions", "bash"]).stdout;
    p.write("mtr.bash", &script);
    let driver = r#"
source ./mtr.bash
comp() {
    COMP_LINE="$1"; COMP_POINT=${#COMP_LINE}
    read -r -a COMP_WORDS <<< "$COMP_LINE"
    [[ $COMP_LINE == *" " ]] && COMP_WORDS+=("")
    COMP_CWORD=$(( ${#COMP_WORDS[@]} - 1 ))
    COMPREPLY=()
    _mtr_complete mtr "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"
    printf '%s => %s\n' "$1" "${COMPREPLY[*]}"
}
for line in "$@"; do comp "$line"; done
"#;
    let bin_dir = Path::new(MTR).parent().unwrap();
    let path = format!("{}:{}", bin_dir.display(), std::env::var("PATH").unwrap_or_default());
    let out = Command::new("bash")
        .arg("-c")
        .arg(driver)
        .arg("bash")
        .args(lines)
        .current_dir(&p.root)
        .env("PATH", path)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn bash_completes_task_names_from_the_config_in_scope() {
    let p = Project::new(COMPLETE);
    p.write("other/montage.toml", "[tasks.elsewhere]\nrun = \"true\"\n");
    let shown = bash_complete(
        &p,
        &[
            "mtr ",
            "mtr b",
            "mtr build d",
            "mtr db:",
            "mtr --graph ",
            "mtr --graph=d",
            "mtr --form",
            "mtr --format ",
            "mtr -C other ",
            "mtr -f other/montage.toml e",
        ],
    );
    insta::assert_snapshot!("bash_completion", shown);
}

#[test]
fn fish_completes_task_names() {
    if !has("fish") {
        eprintln!("skipped: fish is not installed");
        return;
    }
    let p = Project::new(COMPLETE);
    p.write("mtr.fish", &p.run(&["--completions", "fish"]).stdout);
    let bin_dir = Path::new(MTR).parent().unwrap();
    let out = Command::new("fish")
        .arg("--no-config")
        .arg("-c")
        .arg("source ./mtr.fish; complete -C 'mtr '; echo SEP; complete -C 'mtr --graph d'")
        .current_dir(&p.root)
        .env(
            "PATH",
            format!("{}:{}", bin_dir.display(), std::env::var("PATH").unwrap_or_default()),
        )
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("build\tBuild the app"), "{stdout}");
    assert!(stdout.contains("b\talias of build"), "{stdout}");
    assert!(stdout.contains("SEP\ndb:migrate\ndeploy\n"), "{stdout}");
    assert!(!stdout.contains("_hidden"), "{stdout}");
}

#[test]
fn zsh_task_helper_reads_the_config_in_scope() {
    if !has("zsh") {
        eprintln!("skipped: zsh is not installed");
        return;
    }
    let p = Project::new(COMPLETE);
    p.write("other/montage.toml", "[tasks.elsewhere]\nrun = \"true\"\n");
    p.write("mtr.zsh", &p.run(&["--completions", "zsh"]).stdout);
    // compsys is interactive; stub the two functions the helper calls.
    let driver = r#"
autoload -U compinit && compinit -u -D
source ./mtr.zsh
_describe() { print -rl -- "${(@P)4}" }
_call_program() { shift; eval "$@" }
typeset -A opt_args
_mtr_tasks
print -- --
opt_args[-C]=other
_mtr_tasks
"#;
    let bin_dir = Path::new(MTR).parent().unwrap();
    let out = Command::new("zsh")
        .args(["-f", "-c", driver])
        .current_dir(&p.root)
        .env(
            "PATH",
            format!("{}:{}", bin_dir.display(), std::env::var("PATH").unwrap_or_default()),
        )
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        stdout,
        "build:Build the app\nb:alias of build\ndb\\:migrate:\ndeploy:\n--\nelsewhere:\n",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

// ---------------------------------------------------------------- --vars

const VARS: &str = r#"
[vars]
namespace = "montage-ai"
registry = { default = "10.43.17.166:5000", env = "REGISTRY" }
git_commit = { sh = "echo 1a2b3c4d", default = "dev" }
version = { env = "VERSION", description = "release version, e.g. v1.4.0" }
token = { env = "REGISTRY_TOKEN", secret = true }
auth = { default = "user:{{ token }}" }
build_date = { sh = "echo 2026-01-01", volatile = true }
suffix = { default = "" }
broken = { sh = "exit 3", description = "needs a tool" }

[tasks.show]
run = "echo {{ namespace }}"
"#;

#[test]
fn vars_show_values_and_origins() {
    let p = Project::new(VARS);
    let mut c = p.cmd(&["--vars", "namespace=staging"]);
    c.env("REGISTRY", "registry.example:5000")
        .env("REGISTRY_TOKEN", "hunter2")
        .env_remove("VERSION");
    let out = output(c);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(!out.stdout.contains("hunter2"));
    insta::assert_snapshot!("vars_text", p.shown(&out));

    let mut c = p.cmd(&["--vars", "--json", "VERSION=v1.4.0"]);
    c.env("REGISTRY_TOKEN", "hunter2").env_remove("REGISTRY");
    let out = output(c);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(!out.stdout.contains("hunter2"));
    serde_json::from_str::<Value>(&out.stdout).expect("--vars --json prints JSON");
    insta::assert_snapshot!("vars_json", out.stdout);
}

#[test]
fn vars_without_any() {
    let p = Project::new("[tasks.a]\nrun = \"true\"\n");
    let out = p.run(&["--vars"]);
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (0, "this montage.toml declares no [vars]\n")
    );
}

// ------------------------------------------------------ --summary, --profile

const RUN: &str = r#"
[project]
name = "summary-demo"

[vars]
token = { env = "TOKEN", secret = true }

[tasks.gen]
inputs = ["in.txt"]
outputs = ["gen.txt"]
run = "cp in.txt gen.txt"

[tasks.fail]
run = "echo failing; exit 3"

[tasks.leak]
outputs = ["{{ token }}.out"]
run = "true"

[tasks.after]
deps = ["gen", "fail"]
run = "echo after"

[tasks.all]
deps = ["after", "leak"]
"#;

#[test]
fn summary_of_a_failed_run() {
    let p = Project::new(RUN);
    p.write("in.txt", "x");
    assert_eq!(p.run(&["gen"]).code, 0);
    let mut c = p.cmd(&["all", "-k", "--summary", "reports/summary.json"]);
    c.env("TOKEN", "hunter2");
    let out = output(c);
    assert_eq!(out.code, 3, "{}", out.stderr);
    let raw = p.read("reports/summary.json");
    assert!(!raw.contains("hunter2"), "a secret leaked: {raw}");
    let json: Value = serde_json::from_str(&raw).unwrap();
    assert_eq!(json["root"], Value::from(p.root.display().to_string()));
    assert!(
        json["started"]
            .as_str()
            .is_some_and(|t| t.ends_with('Z') && t.len() == 24),
        "{}",
        json["started"]
    );
    for task in json["tasks"].as_array().unwrap() {
        if let Some(fp) = task["fingerprint"].as_str() {
            assert!(fp.len() == 64 && fp.chars().all(|c| c.is_ascii_hexdigit()), "{fp}");
        }
    }
    snapshot_json!(
        "summary_failed_run",
        raw.replace(&p.root.display().to_string(), "[ROOT]")
    );
}

#[test]
fn summary_of_a_dry_run() {
    let p = Project::new(RUN);
    p.write("in.txt", "x");
    let mut c = p.cmd(&["gen", "-n", "--summary", "s.json"]);
    c.env("TOKEN", "hunter2");
    assert_eq!(output(c).code, 0);
    let json: Value = serde_json::from_str(&p.read("s.json")).unwrap();
    assert_eq!(json["dry_run"], Value::Bool(true));
    assert_eq!(json["tasks"][0]["status"], Value::from("would-run"));
    assert_eq!(json["tasks"][0]["reason"], Value::from("never ran"));
}

#[test]
fn summary_that_cannot_be_written() {
    let p = Project::new("[tasks.a]\nrun = \"true\"\n");
    p.write("taken", "a file, not a directory");
    let out = p.run(&["a", "--summary", "taken/summary.json"]);
    assert_eq!(out.code, 1);
    assert!(
        out.stderr.contains("cannot write the summary to `taken/summary.json`"),
        "{}",
        out.stderr
    );
}

#[test]
fn profile_puts_overlapping_tasks_on_separate_lanes() {
    let p = Project::new(
        r#"
[project]
name = "profile-demo"

[tasks.slow_a]
run = "sleep 0.4"

[tasks.slow_b]
run = "sleep 0.4"

[tasks.after]
deps = ["slow_a", "slow_b"]
run = "true"
"#,
    );
    let out = p.run(&["after", "-j", "2", "--profile", "trace.json"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let raw = p.read("trace.json");
    let trace: Value = serde_json::from_str(&raw).unwrap();
    let events = trace["traceEvents"].as_array().unwrap();
    let spans: Vec<(String, u64, u64, u64)> = events
        .iter()
        .filter(|e| e["ph"] == "X")
        .map(|e| {
            let n = |k: &str| e[k].as_u64().unwrap_or_else(|| panic!("{k} in {e}"));
            (e["name"].as_str().unwrap().to_string(), n("ts"), n("dur"), n("tid"))
        })
        .collect();
    assert_eq!(spans.len(), 3);
    let (a, b, after) = (&spans[0], &spans[1], &spans[2]);
    assert_eq!(
        (a.0.as_str(), b.0.as_str(), after.0.as_str()),
        ("slow_a", "slow_b", "after")
    );
    // slow_a and slow_b overlap, so they are on two lanes; `after` starts
    // once both ended.
    assert!(a.1 < b.1 + b.2 && b.1 < a.1 + a.2, "{spans:?}");
    assert_ne!(a.3, b.3);
    assert!(after.1 >= a.1 + a.2 && after.1 >= b.1 + b.2, "{spans:?}");
    assert!(a.2 >= 300_000 && b.2 >= 300_000, "durations are in µs: {spans:?}");
    snapshot_json!("profile", raw);
}

// -------------------------------------------------------- GitHub Actions

#[test]
fn github_actions_groups_output_and_writes_a_step_summary() {
    let p = Project::new(
        r#"
[vars]
token = { env = "TOKEN", secret = true }

[tasks.quick]
run = ["echo q1 {{ token }}", "echo q2 >&2"]

[tasks.slow]
run = "echo s1; sleep 1.2; echo s2"

[tasks.broken]
run = "echo b1; sleep 0.5; echo b2; exit 4"

[tasks.ci]
deps = ["quick", "slow", "broken"]
"#,
    );
    p.write("step-summary.md", "# earlier step\n\n");
    let mut c = p.cmd(&["ci", "-k", "-j", "3"]);
    c.env("GITHUB_ACTIONS", "true")
        .env("GITHUB_STEP_SUMMARY", p.path("step-summary.md"))
        .env("TOKEN", "hunter2");
    let out = output(c);
    assert_eq!(out.code, 4, "{}", out.stderr);
    assert!(!out.stdout.contains("hunter2") && !out.stderr.contains("hunter2"));
    // Each task's lines together in its group, though the tasks ran at once.
    snapshot_timed!("github_output", p.shown(&out));
    snapshot_timed!("github_step_summary", p.read("step-summary.md"));
}

// ---------------------------------------------------------------- --doctor

const DOCKER_SHIM: &str = r#"#!/bin/sh
# docker for --doctor tests: answers as DX_* variables say.
case "$1 $2" in
"version --format")
    if [ -n "$DX_DAEMON_DOWN" ]; then
        echo "Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?" >&2
        exit 1
    fi
    echo "27.1.1"; exit 0 ;;
"buildx version")
    if [ -n "$DX_NO_BUILDX" ]; then echo "docker: 'buildx' is not a docker command." >&2; exit 1; fi
    echo "github.com/docker/buildx v0.16.2 abc1234"; exit 0 ;;
"buildx inspect")
    case " $DX_BUILDERS " in
    *" $3 "*) printf 'Name: %s\nDriver: docker-container\n\nNodes:\nName: %s0\nStatus: running\n' "$3" "$3"; exit 0 ;;
    esac
    echo "ERROR: no builder \"$3\" found" >&2; exit 1 ;;
esac
echo "unexpected: docker $*" >&2
exit 1
"#;

const KUBECTL_SHIM: &str = r#"#!/bin/sh
# kubectl for --doctor tests.
case "$*" in
"config current-context")
    if [ -n "$DX_CONTEXT" ]; then echo "$DX_CONTEXT"; exit 0; fi
    echo "error: current-context is not set" >&2; exit 1 ;;
"config get-contexts -o name")
    for c in $DX_CONTEXTS; do echo "$c"; done; exit 0 ;;
"get --raw /version"*)
    if [ -n "$DX_CLUSTER_DOWN" ]; then
        echo "The connection to the server 127.0.0.1:6443 was refused - did you specify the right host or port?" >&2
        exit 1
    fi
    echo '{"major":"1","minor":"30","gitVersion":"v1.30.2+k3s1"}'; exit 0 ;;
esac
echo "unexpected: kubectl $*" >&2
exit 1
"#;

const DOCTOR: &str = r#"
[project]
name = "montage-ai"

[vars]
registry = { default = "10.43.17.166:5000", env = "REGISTRY" }
secure_registry = { default = "ghcr.io", env = "SECURE_REGISTRY" }
node = { default = "amd64-node:1234", env = "NODE" }
cache_registry = { default = "10.43.17.166:5000", env = "CACHE_REGISTRY" }

[cache]
remote = "oci://{{ cache_registry }}/team/mtr-cache"
insecure = true

[builders.multiarch]
driver = "remote"
insecure_registries = ["{{ registry }}"]
nodes = [{ endpoint = "tcp://{{ node }}", platforms = ["linux/amd64"] }]

[tasks.lint]
run = "ruff check"

[tasks.test]
run = "pytest"
outputs = ["report.xml"]

[tasks.cluster-build.image]
name = "{{ registry }}/montage-ai"
builder = "multiarch"
push = true

[tasks.release.image]
name = "{{ secure_registry }}/montage-ai"
builder = "ci-builder"
push = true

[tasks.dev-image.image]
name = "montage-ai"
tags = ["dev"]

[tasks.dev.container]
image = "montage-ai:dev"

[tasks.cluster-deploy]
deps = ["cluster-build"]
[tasks.cluster-deploy.deploy]
deployment = "worker"
container = "montage-ai"
image = "{{ tasks.cluster-build.image }}"
namespace = "montage-ai"

[tasks.prod-deploy]
deps = ["release"]
[tasks.prod-deploy.deploy]
deployment = "worker"
container = "montage-ai"
image = "{{ tasks.release.image }}"
namespace = "montage-ai"
context = "prod"
"#;

/// A TCP server answering every connection with `reply`; returns its port.
fn serve(reply: &'static str) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { continue };
            let mut buf = [0u8; 1024];
            let _ = s.read(&mut buf);
            let _ = s.write_all(reply.as_bytes());
        }
    });
    port
}

/// A registry over plain HTTP, as `registry:2` answers `/v2/` without auth.
fn http_registry() -> u16 {
    serve("HTTP/1.1 401 Unauthorized\r\nDocker-Distribution-Api-Version: registry/2.0\r\nContent-Length: 0\r\n\r\n")
}

/// What a Go TLS server (a registry with TLS) says to plain HTTP.
fn tls_port() -> u16 {
    serve("HTTP/1.0 400 Bad Request\r\n\r\nClient sent an HTTP request to an HTTPS server.\n")
}

/// A port nothing listens on.
fn closed_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// `mtr --doctor` with shims in `[ROOT]/bin` as the whole PATH; `ports`
/// are shown by name in the output.
fn doctor(p: &Project, env: &[(&str, String)], ports: &[(&str, u16)]) -> (i32, String) {
    let (code, shown) = doctor_args(p, &["--doctor"], env);
    (code, name_ports(shown, ports))
}

fn name_ports(mut shown: String, ports: &[(&str, u16)]) -> String {
    for (name, port) in ports {
        shown = shown.replace(&format!("127.0.0.1:{port}"), &format!("127.0.0.1:[{name}]"));
    }
    shown
}

fn doctor_args(p: &Project, args: &[&str], env: &[(&str, String)]) -> (i32, String) {
    let bin = p.path("bin");
    std::fs::create_dir_all(&bin).unwrap();
    if !bin.join("sh").exists() {
        std::os::unix::fs::symlink("/bin/sh", bin.join("sh")).unwrap();
    }
    let mut c = p.cmd(args);
    c.env("PATH", &bin);
    for var in [
        "REGISTRY",
        "SECURE_REGISTRY",
        "NODE",
        "CACHE_REGISTRY",
        "KUBECONFIG",
        "DOCKER_HOST",
    ] {
        c.env_remove(var);
    }
    for (k, v) in env {
        c.env(k, v);
    }
    let out = output(c);
    (out.code, p.shown(&out))
}

fn with_shims(p: &Project) {
    p.script("bin/docker", DOCKER_SHIM);
    p.script("bin/kubectl", KUBECTL_SHIM);
}

#[test]
fn doctor_when_everything_is_in_place() {
    let p = Project::new(DOCTOR);
    with_shims(&p);
    let (http, tls, node) = (http_registry(), tls_port(), serve(""));
    let (code, shown) = doctor(
        &p,
        &[
            ("REGISTRY", format!("127.0.0.1:{http}")),
            ("SECURE_REGISTRY", format!("127.0.0.1:{tls}")),
            ("NODE", format!("127.0.0.1:{node}")),
            ("CACHE_REGISTRY", format!("127.0.0.1:{http}")),
            ("DX_BUILDERS", "multiarch ci-builder".into()),
            ("DX_CONTEXT", "k3s".into()),
            ("DX_CONTEXTS", "k3s prod".into()),
        ],
        &[("HTTP_REGISTRY", http), ("TLS_REGISTRY", tls), ("NODE", node)],
    );
    assert_eq!(code, 0, "{shown}");
    insta::assert_snapshot!("doctor_ok", shown);
}

#[test]
fn doctor_says_how_to_fix_each_problem() {
    let p = Project::new(DOCTOR);
    with_shims(&p);
    let (http, closed, tls) = (http_registry(), closed_port(), tls_port());
    let (code, shown) = doctor(
        &p,
        &[
            // Nothing listens where the insecure registry should be; the
            // "secure" one speaks plain HTTP; the builder node is down.
            ("REGISTRY", format!("127.0.0.1:{closed}")),
            ("SECURE_REGISTRY", format!("127.0.0.1:{http}")),
            ("NODE", format!("127.0.0.1:{closed}")),
            // The cache is declared insecure, but its registry wants TLS.
            ("CACHE_REGISTRY", format!("127.0.0.1:{tls}")),
            ("DX_BUILDERS", "".into()),
            ("DX_CONTEXT", "k3s".into()),
            ("DX_CONTEXTS", "k3s".into()),
            ("DX_CLUSTER_DOWN", "1".into()),
        ],
        &[("CLOSED", closed), ("HTTP_REGISTRY", http), ("TLS_REGISTRY", tls)],
    );
    assert_eq!(code, 1, "{shown}");
    insta::assert_snapshot!("doctor_problems", shown);
}

#[test]
fn doctor_without_the_daemon_buildx_or_a_context() {
    let p = Project::new(DOCTOR);
    with_shims(&p);
    let tls = tls_port();
    let env = |extra: &'static str| {
        let http = http_registry();
        vec![
            ("REGISTRY", format!("127.0.0.1:{http}")),
            ("CACHE_REGISTRY", format!("127.0.0.1:{http}")),
            ("SECURE_REGISTRY", format!("127.0.0.1:{tls}")),
            ("DX_CONTEXTS", "k3s prod".to_string()),
            (extra, "1".to_string()),
        ]
    };
    let (code, daemon_down) = doctor(&p, &env("DX_DAEMON_DOWN"), &[]);
    assert_eq!(code, 1);
    let (code, no_buildx) = doctor(&p, &env("DX_NO_BUILDX"), &[]);
    assert_eq!(code, 1);
    let pick = |text: &str, subjects: &[&str]| -> String {
        let mut out = String::new();
        let mut keep = false;
        for line in text.lines() {
            if !line.starts_with(' ') {
                keep = subjects.iter().any(|s| line.contains(s));
            }
            if keep {
                out.push_str(line);
                out.push('\n');
            }
        }
        out
    };
    let shown = format!(
        "{}--- without buildx\n{}",
        pick(
            &daemon_down,
            &["docker daemon", "buildx", "builders", "kubectl context:"]
        ),
        pick(&no_buildx, &["buildx", "builders"])
    );
    insta::assert_snapshot!("doctor_docker_broken", shown);
}

#[test]
fn doctor_without_docker_or_kubectl() {
    let p = Project::new(DOCTOR);
    let http = http_registry();
    let tls = tls_port();
    let (code, shown) = doctor(
        &p,
        &[
            ("REGISTRY", format!("127.0.0.1:{http}")),
            ("SECURE_REGISTRY", format!("127.0.0.1:{tls}")),
            ("CACHE_REGISTRY", format!("127.0.0.1:{http}")),
        ],
        &[("HTTP_REGISTRY", http), ("TLS_REGISTRY", tls)],
    );
    assert_eq!(code, 1);
    insta::assert_snapshot!("doctor_missing_tools", shown);
}

#[test]
fn doctor_for_named_tasks_checks_only_what_they_need() {
    let p = Project::new(DOCTOR);
    with_shims(&p);
    // `lint` only runs a command; `dev` runs a container.
    let (code, shown) = doctor_args(&p, &["--doctor", "lint", "dev"], &[]);
    assert_eq!(code, 0, "{shown}");
    insta::assert_snapshot!("doctor_named_tasks", shown);
}

#[test]
fn doctor_with_nothing_to_check() {
    let p = Project::new("[tasks.all]\ndeps = []\n");
    let (code, shown) = doctor(&p, &[], &[]);
    assert_eq!(code, 0);
    insta::assert_snapshot!("doctor_nothing", shown);
}

#[test]
fn github_actions_annotates_config_errors_on_their_line() {
    let p = Project::new("[tasks.a]\nrun = \"true\"\nbad = 1\n");
    let mut c = p.cmd(&["a"]);
    c.env("GITHUB_ACTIONS", "true").env("GITHUB_WORKSPACE", &p.root);
    let out = output(c);
    assert_eq!(out.code, 2);
    let first = out.stderr.lines().next().unwrap_or_default();
    assert!(
        first.starts_with("::error file=montage.toml,line=3,col=1,title=mtr%3A config error::unknown key `bad`"),
        "{}",
        out.stderr
    );
}
