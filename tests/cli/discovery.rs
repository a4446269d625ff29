//! SPEC section 1: finding montage.toml (upward search, `-f`, `-C`), and
//! every path being relative to the project root wherever mtr started.

use crate::common::*;

const BUILD: &str = r#"
[tasks.build]
inputs = ["src/a.txt"]
outputs = ["out.txt"]
run = "cat src/a.txt > out.txt; pwd > where.txt"
"#;

#[test]
fn finds_the_config_in_a_parent_directory() {
    let p = Project::new()
        .file("montage.toml", BUILD)
        .file("src/a.txt", "a\n")
        .dir("deep/down");
    p.mtr(&["build"])
        .cwd("deep/down")
        .output()
        .success()
        .assert_ran("build");
    assert_eq!(p.read("out.txt"), "a\n");
    assert_eq!(p.read("where.txt").trim(), p.root().display().to_string());
    assert!(!p.exists("deep/down/out.txt"));
    // The same state, wherever mtr starts.
    p.run(&["build"]).success().assert_up_to_date("build");
    p.mtr(&["build"])
        .cwd("src")
        .output()
        .success()
        .assert_up_to_date("build");
}

#[test]
fn the_nearest_config_wins() {
    let p = Project::new()
        .file("montage.toml", "[tasks.outer]\nrun = \"true\"\n")
        .file("app/montage.toml", "[tasks.inner]\nrun = \"pwd > where.txt\"\n")
        .dir("app/src");
    p.mtr(&["inner"]).cwd("app/src").output().success();
    assert_eq!(p.read("app/where.txt").trim(), p.path("app").display().to_string());
    p.mtr(&["outer"])
        .cwd("app/src")
        .output()
        .code(2)
        .stderr_has("unknown task `outer`");
}

#[test]
fn file_flag_names_the_config_and_its_directory_is_the_root() {
    let p = Project::new()
        .file("ci/pipeline.toml", BUILD)
        .file("ci/src/a.txt", "ci\n")
        .file("src/a.txt", "top\n");
    p.run(&["-f", "ci/pipeline.toml", "build"])
        .success()
        .assert_ran("build");
    assert_eq!(p.read("ci/out.txt"), "ci\n");
    assert!(!p.exists("out.txt"));
    p.run(&["--file", "ci/pipeline.toml", "build"])
        .success()
        .assert_up_to_date("build");
}

#[test]
fn file_flag_with_a_missing_file_is_an_error() {
    let p = Project::new();
    let out = p.run(&["-f", "nope.toml", "build"]);
    out.code(2);
    assert_output!("missing_config_file", out);
}

#[test]
fn dir_flag_starts_the_search_elsewhere() {
    let p = Project::new()
        .file("app/montage.toml", BUILD)
        .file("app/src/a.txt", "app\n");
    p.run(&["-C", "app", "build"]).success().assert_ran("build");
    assert_eq!(p.read("app/out.txt"), "app\n");
    // Upward from DIR too.
    p.run(&["--dir", "app/src", "build"])
        .success()
        .assert_up_to_date("build");
    p.mtr(&["-C", "..", "build"])
        .cwd("app/src")
        .output()
        .success()
        .assert_up_to_date("build");
}

#[test]
fn a_task_dir_is_relative_to_the_root() {
    let p = Project::new()
        .file(
            "montage.toml",
            r#"
[tasks.site]
dir = "web"
inputs = ["src/a.txt"]
outputs = ["web/copy.txt"]
run = "cp ../src/a.txt copy.txt; pwd > where.txt"
"#,
        )
        .file("src/a.txt", "a\n")
        .dir("web")
        .dir("elsewhere");
    p.mtr(&["site"]).cwd("elsewhere").output().success().assert_ran("site");
    assert_eq!(p.read("web/copy.txt"), "a\n");
    assert_eq!(p.read("web/where.txt").trim(), p.path("web").display().to_string());
    p.run(&["site"]).success().assert_up_to_date("site");
}

#[test]
fn a_missing_task_dir_fails_the_task_naming_it() {
    let p = Project::new().file("montage.toml", "[tasks.t]\ndir = \"nope\"\nrun = \"true\"\n");
    let out = p.run(&["t"]);
    out.code(1)
        .stderr_has("✗ t failed: working directory `nope` does not exist");
}

#[test]
fn dir_flag_with_a_missing_directory_is_an_error() {
    let p = Project::new().file("montage.toml", "[tasks.build]\nrun = \"echo ran > ran.txt\"\n");
    p.run(&["-C", "nope", "build"])
        .code(2)
        .stderr_has("error: directory `nope` does not exist");
    assert!(
        !p.exists("ran.txt"),
        "the config above a missing -C directory must not run"
    );
}

const BAD_KEY: &str = "[tasks.build]\nrn = \"true\"\n";

/// SPEC section 2: a config error names the file as the user can open it
/// from where mtr started, not relative to the project root.
#[test]
fn config_errors_name_the_file_from_the_current_directory() {
    let p = Project::new()
        .file("montage.toml", BAD_KEY)
        .file("types/other.toml", BAD_KEY)
        .dir("sub");
    let out = p.mtr(&["build"]).cwd("sub").output();
    out.code(2);
    assert_output!("config_error_from_a_subdirectory", out);
    let out = p.run(&["-f", "types/other.toml", "build"]);
    out.code(2);
    assert_output!("config_error_with_file_flag", out);
    p.mtr(&["-f", "../types/other.toml", "build"])
        .cwd("sub")
        .output()
        .code(2)
        .stderr_has("╭─[../types/other.toml:2:1]");
    // From a directory that shares nothing with it but `/`: absolute.
    p.mtr(&["-f", &p.path("types/other.toml").display().to_string(), "build"])
        .cwd(p.root().ancestors().last().unwrap())
        .output()
        .code(2)
        .stderr_has(&format!("╭─[{}:2:1]", p.path("types/other.toml").display()));
}

/// Under GitHub Actions the `::error` annotation names the file relative
/// to `$GITHUB_WORKSPACE` (GitHub shows it on the pull request's diff),
/// and as it is shown otherwise when the file is outside the workspace.
#[test]
fn github_annotations_name_the_file_relative_to_the_workspace() {
    let p = Project::new()
        .file("montage.toml", BAD_KEY)
        .file("types/other.toml", BAD_KEY)
        .dir("sub");
    let workspace = p.root().display().to_string();
    let annotation = |out: &Output| out.stderr.lines().next().unwrap_or_default().to_string();
    let out = p
        .mtr(&["build"])
        .cwd("sub")
        .env("GITHUB_ACTIONS", "true")
        .env("GITHUB_WORKSPACE", &workspace)
        .output();
    out.code(2);
    assert_output!("github_annotation_from_a_subdirectory", out);
    let out = p
        .mtr(&["-f", "../types/other.toml", "build"])
        .cwd("sub")
        .env("GITHUB_ACTIONS", "true")
        .env("GITHUB_WORKSPACE", &workspace)
        .output();
    out.code(2);
    assert!(
        annotation(&out).starts_with("::error file=types/other.toml,line=2,col=1,"),
        "{out}"
    );
    // A workspace that does not hold the file: the path as shown.
    let out = p
        .mtr(&["-f", "../types/other.toml", "build"])
        .cwd("sub")
        .env("GITHUB_ACTIONS", "true")
        .env("GITHUB_WORKSPACE", &p.path("sub").display().to_string())
        .output();
    out.code(2);
    assert!(
        annotation(&out).starts_with("::error file=../types/other.toml,line=2,col=1,"),
        "{out}"
    );
}

/// A config checked out with Windows line ends runs the same commands: no
/// `\r` reaches the shell from a multi-line `run`.
#[test]
fn a_config_with_crlf_line_ends_runs_the_same_commands() {
    let p = Project::new().file(
        "montage.toml",
        "[tasks.ml]\r\nrun = \"\"\"\r\nmkdir -p dd\r\ncd dd\r\ntouch made\r\n\"\"\"\r\n",
    );
    p.run(&["ml"]).success();
    assert!(
        p.exists("dd/made"),
        "{:?}",
        std::fs::read_dir(p.root()).unwrap().collect::<Vec<_>>()
    );
}

#[test]
fn report_files_are_named_from_where_mtr_started_and_tasks_run_at_the_root() {
    let p = Project::new()
        .file(
            "montage.toml",
            r#"
[vars]
here = { sh = "pwd" }

[tasks.top]
run = "pwd > where.txt; echo {{ here }} > var.txt"

[tasks.sub]
dir = "lib"
run = "pwd > where.txt"
"#,
        )
        .dir("lib")
        .dir("deep/down");
    p.mtr(&["top", "sub", "--summary", "run.json", "--profile", "trace.json"])
        .cwd("deep/down")
        .output()
        .success();
    assert_eq!(p.read("where.txt").trim(), p.root().display().to_string());
    assert_eq!(p.read("var.txt").trim(), p.root().display().to_string());
    assert_eq!(p.read("lib/where.txt").trim(), p.path("lib").display().to_string());
    assert!(p.read("deep/down/run.json").contains("\"top\""));
    assert!(p.read("deep/down/trace.json").contains("traceEvents"));
    assert!(!p.exists("run.json") && !p.exists("trace.json"));
}
