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
