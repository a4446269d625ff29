//! SPEC section 5: `mtr` alone, `--list`, `--list --json`, and the
//! `--dry-run` plan.

use crate::common::*;

const PROJECT: &str = r#"
[project]
name = "montage-ai"
default = "test"

[tasks.dev]
description = "Build the dev image"
group = "Local development"
inputs = ["src/**"]
run = "echo dev"

[tasks.dev-test]
description = "Run with volume mounts (instant)"
group = "Local development"
deps = ["dev"]
aliases = ["test", "t"]
run = "echo test"

[tasks.cluster-build]
description = "Multi-arch build, pushed to the registry"
group = "Cluster"
run = "echo build"

[tasks.cluster]
description = "Build and roll out"
group = "Cluster"
deps = ["cluster-build", "_render"]

[tasks._render]
description = "internal: render manifests"
run = "echo render"

[tasks.fmt]
description = "Format the code"
run = "echo fmt"

[tasks.old-test]
description = "The old test entry point"
group = "Local development"
deprecated = "use `mtr dev-test`"
deps = ["dev-test"]

[tasks.lint]
"#;

#[test]
fn the_listing_is_grouped_with_descriptions() {
    let p = Project::new().file("montage.toml", PROJECT);
    let out = p.run(&["--list"]);
    out.success();
    assert!(!out.stdout.contains("_render"), "hidden tasks are not listed\n{out}");
    assert_output!("listing", out);
}

#[test]
fn mtr_alone_lists_the_tasks_when_there_is_no_default() {
    let p = Project::new().file(
        "montage.toml",
        "[project]\nname = \"demo\"\n\n[tasks.build]\ndescription = \"Build it\"\nrun = \"echo built > built.txt\"\n",
    );
    let out = p.run(&[]);
    out.success();
    assert!(!p.exists("built.txt"), "{out}");
    assert_output!("listing_without_default", out);
}

#[test]
fn mtr_alone_runs_the_default_task() {
    let p = Project::new().file(
        "montage.toml",
        "[project]\ndefault = \"build\"\n\n[tasks.build]\nrun = \"echo built > built.txt\"\n",
    );
    p.run(&[]).success().assert_ran("build");
    assert_eq!(p.read("built.txt"), "built\n");
}

#[test]
fn an_empty_project_says_how_to_add_tasks() {
    let p = Project::new().file("montage.toml", "[project]\nname = \"empty\"\n");
    assert_output!("listing_empty", p.run(&[]));
}

#[test]
fn the_json_listing_has_every_task() {
    let p = Project::new().file("montage.toml", PROJECT);
    let out = p.run(&["--list", "--json"]);
    out.success();
    let json: serde_json::Value = serde_json::from_str(&out.stdout).expect("--json prints JSON");
    assert_eq!(json["tasks"].as_array().map(Vec::len), Some(8));
    assert_output!("listing_json", out);
}

const PLAN: &str = r#"
[vars]
mode = { default = "debug" }

[tasks.gen]
inputs = ["src/**"]
outputs = ["gen.txt"]
run = "cat src/*.txt > gen.txt"

[tasks.build]
deps = ["gen"]
inputs = ["gen.txt"]
outputs = ["app.txt"]
run = ["echo building {{ mode }}", "cp gen.txt app.txt"]

[tasks.docs]
inputs = ["docs/**"]
run = "echo docs"

[tasks.all]
deps = ["build", "docs"]
"#;

#[test]
fn dry_run_prints_the_plan_and_runs_nothing() {
    let p = Project::new().file("montage.toml", PLAN).file("src/a.txt", "a\n");
    let out = p.run(&["all", "--dry-run", "mode=release"]);
    out.success();
    assert!(!p.exists("gen.txt"), "a dry run runs nothing\n{out}");
    assert!(!p.exists(".mtr/state"), "a dry run records nothing\n{out}");
    assert_output!("dry_run_first", out);
}

#[test]
fn dry_run_says_what_is_up_to_date_and_why_the_rest_would_run() {
    let p = Project::new().file("montage.toml", PLAN).file("src/a.txt", "a\n");
    p.run(&["all"]).success();
    p.write("docs/index.md", "# docs\n");
    let out = p.run(&["-n", "all"]);
    out.success();
    assert_output!("dry_run_partly_up_to_date", out);
    p.write("src/a.txt", "b\n");
    let out = p.run(&["-n", "all"]);
    out.success();
    assert_output!("dry_run_dependency_would_run", out);
    assert_eq!(p.read("gen.txt"), "a\n", "a dry run runs nothing");
}

#[test]
fn a_hidden_task_is_runnable_by_name() {
    let p = Project::new().file("montage.toml", PROJECT);
    let out = p.run(&["_render"]);
    out.success().assert_ran("_render");
    assert_eq!(out.stdout, "render\n");
}

#[test]
fn task_names_may_hold_colons() {
    let p = Project::new().file(
        "montage.toml",
        "[tasks.\"docker:build\"]\ninputs = []\nrun = \"echo {{ task }}\"\n\n[tasks.release]\ndeps = [\"docker:build\"]\nrun = \"echo {{ tasks.docker:build.hash }}\"\n",
    );
    let out = p.run(&["release"]);
    out.success().assert_ran("docker:build").assert_ran("release");
    assert!(out.stdout.starts_with("docker:build\n"), "{out}");
}

/// Once tasks ran (`.mtr/` exists), the loaded config is cached there
/// (`src/config/cache.rs`); every edit is still seen, mistakes included.
#[test]
fn an_edited_config_is_read_again_after_it_was_cached() {
    let p = Project::new().file("montage.toml", "[tasks.a]\nrun = \"echo a\"\n");
    p.run(&["a"]).success().assert_ran("a");
    // Kept by the first load that finds `.mtr/`, used by the next one.
    assert!(p.run(&["--list"]).success().stdout.contains("  a\n"));
    assert!(p.exists(".mtr/config"), "{:?}", p.mtr_dir_entries());
    assert!(p.run(&["--list"]).success().stdout.contains("  a\n"));
    p.write(
        "montage.toml",
        "[tasks.a]\nrun = \"echo a\"\n[tasks.b]\nrun = \"echo bee\"\n",
    );
    let listed = p.run(&["--list"]);
    assert!(listed.success().stdout.contains("  b\n"), "{listed}");
    p.run(&["b"]).success().assert_ran("b");
    p.write("montage.toml", "[tasks.a]\nrun = \"echo a\"\n[tasks.b]\nrun = 3\n");
    p.run(&["b"]).code(2).stderr_has("montage.toml:4:");
    p.write(
        "montage.toml",
        "[tasks.a]\nrun = \"echo a\"\n[tasks.b]\nrun = \"echo b again\"\n",
    );
    let out = p.run(&["b"]);
    assert!(out.success().stdout.contains("b again"), "{out}");
}
