//! SPEC section 2: every config and usage error, as the user sees it. Each
//! points into montage.toml (file, line, column, span) with a hint where
//! one helps, and exits with status 2 before anything runs.

use crate::common::*;

/// Loads `config` and runs `args`; asserts exit 2 and that nothing ran.
#[track_caller]
fn fails(config: &str, args: &[&str]) -> Output {
    let p = Project::new().file("montage.toml", config);
    let out = p.run(args);
    out.code(2);
    assert!(out.stdout.is_empty(), "nothing may run or be listed\n{out}");
    assert!(!p.exists(".mtr/state"), "nothing may be recorded\n{out}");
    out
}

#[test]
fn toml_syntax_error() {
    let out = fails("[tasks.build]\nrun = \"make\ninputs = [\"src/**\"]\n", &["build"]);
    assert_output!("toml_syntax_error", out);
}

#[test]
fn unknown_key_with_did_you_mean() {
    let out = fails(
        "[tasks.lint]\nrun = \"true\"\n\n[tasks.test]\ndpes = [\"lint\"]\nrun = \"true\"\n",
        &["test"],
    );
    assert_output!("unknown_key", out);
}

#[test]
fn unknown_key_without_a_close_match_lists_the_known_ones() {
    let out = fails("[project]\ncolour = \"blue\"\n", &[]);
    assert_output!("unknown_key_no_match", out);
}

#[test]
fn wrong_type() {
    let out = fails("[tasks.test]\nrun = \"true\"\ninteractive = \"yes\"\n", &["test"]);
    assert_output!("wrong_type", out);
}

#[test]
fn unknown_dependency_with_did_you_mean() {
    let out = fails(
        "[tasks.dev-test]\nrun = \"true\"\n\n[tasks.ci]\ndeps = [\"dev-tset\"]\n",
        &["ci"],
    );
    assert_output!("unknown_dep", out);
}

#[test]
fn unknown_variable() {
    let out = fails(
        "[vars]\nnamespace = \"app\"\n\n[tasks.deploy]\nrun = \"kubectl -n {{ namepsace }} apply -f k8s/\"\n",
        &["deploy"],
    );
    assert_output!("unknown_variable", out);
}

#[test]
fn invalid_glob() {
    let out = fails("[tasks.build]\ninputs = [\"src/[a-\"]\nrun = \"true\"\n", &["build"]);
    assert_output!("invalid_glob", out);
}

#[test]
fn dependency_cycle_names_the_whole_path() {
    let out = fails(
        r#"
[tasks.a]
deps = ["b"]

[tasks.b]
deps = ["c"]

[tasks.c]
deps = ["a"]
"#,
        &["a"],
    );
    assert_output!("dependency_cycle", out);
}

#[test]
fn a_task_that_depends_on_itself() {
    let out = fails("[tasks.a]\ndeps = [\"a\"]\nrun = \"true\"\n", &["a"]);
    assert_output!("self_cycle", out);
}

#[test]
fn more_than_one_action() {
    let out = fails(
        "[tasks.app]\nrun = \"make\"\ncontainer = { image = \"app:dev\" }\n",
        &["app"],
    );
    assert_output!("more_than_one_action", out);
}

#[test]
fn several_errors_are_reported_at_once() {
    let out = fails(
        r#"
[tasks.build]
run = "make {{ target }}"
inputs = ["src/[x"]

[tasks.test]
deps = ["biuld"]
run = "true"
timeout = 3
"#,
        &["test"],
    );
    assert_output!("several_errors", out);
}

#[test]
fn invalid_task_name() {
    let out = fails("[tasks.\"build all\"]\nrun = \"true\"\n", &["--list"]);
    assert_output!("invalid_task_name", out);
}

#[test]
fn task_hash_used_without_depending_on_the_task() {
    let out = fails(
        r#"
[tasks.image]
inputs = []
run = "true"

[tasks.deploy]
run = "echo {{ tasks.image.hash }}"
"#,
        &["deploy"],
    );
    assert_output!("task_hash_without_dep", out);
}

#[test]
fn unknown_task_on_the_command_line_with_did_you_mean() {
    let out = fails(
        "[tasks.dev-test]\nrun = \"true\"\n\n[tasks.build]\nrun = \"true\"\n",
        &["dev-tets"],
    );
    assert_output!("unknown_task", out);
}

#[test]
fn unknown_task_on_the_command_line_without_a_close_match() {
    let out = fails("[tasks.build]\nrun = \"true\"\n", &["xyzzy"]);
    assert_output!("unknown_task_no_match", out);
}

#[test]
fn unknown_variable_on_the_command_line() {
    let out = fails(
        "[vars]\nversion = { env = \"VERSION\" }\n\n[tasks.release]\nrun = \"echo {{ version }}\"\n",
        &["release", "verison=1.4"],
    );
    assert_output!("unknown_cli_variable", out);
}

#[test]
fn a_variable_with_no_value_says_how_to_set_it() {
    let p = Project::new().file(
        "montage.toml",
        r#"
[vars]
version = { env = "VERSION", description = "release version, e.g. v1.4.0" }

[tasks.release]
run = "echo releasing {{ version }} > released.txt"
"#,
    );
    let out = p.mtr(&["release"]).env_remove("VERSION").output();
    out.code(2);
    assert!(!p.exists("released.txt"), "nothing may run\n{out}");
    assert_output!("variable_without_value", out);
    // Set, it runs.
    p.mtr(&["release", "VERSION=v1.4.0"])
        .env_remove("VERSION")
        .output()
        .success();
    assert_eq!(p.read("released.txt"), "releasing v1.4.0\n");
}

#[test]
fn a_variable_with_no_value_is_named_when_another_variable_uses_it() {
    let p = Project::new().file(
        "montage.toml",
        r#"
[vars]
registry = { env = "REGISTRY", description = "registry host:port" }
image = "{{ registry }}/app"

[tasks.push]
run = "echo {{ image }}"

[tasks.pull]
run = "echo {{ registry }}"

[tasks.all]
deps = ["push", "pull"]
"#,
    );
    let out = p.mtr(&["all"]).env_remove("REGISTRY").output();
    out.code(2);
    assert_output!("variable_without_value_indirect", out);
}

#[test]
fn a_variable_with_no_value_is_only_an_error_for_tasks_that_run() {
    let p = Project::new().file(
        "montage.toml",
        "[vars]\nversion = { env = \"VERSION\" }\n\n[tasks.release]\nrun = \"echo {{ version }}\"\n\n[tasks.test]\nrun = \"true\"\n",
    );
    p.mtr(&["test"]).env_remove("VERSION").output().success();
}

#[test]
fn an_invalid_template() {
    let out = fails("[tasks.build]\nrun = \"echo {{ a b }}\"\n", &["build"]);
    assert_output!("invalid_template", out);
}

#[test]
fn no_config_file_found() {
    let p = Project::new();
    let out = p.run(&["build"]);
    out.code(2);
    assert_output!("no_config", out);
}

/// SPEC section 4: several platforms without `push` fail a plan that holds
/// the task, before anything runs; the rest of the file still works.
#[test]
fn several_platforms_without_push_fail_only_plans_with_that_task() {
    let config = r#"
[tasks.other]
run = "echo other > other.txt"

[tasks.img]
deps = ["other"]
image = { name = "app", platforms = ["linux/amd64", "linux/arm64"] }
"#;
    let p = Project::new()
        .file("montage.toml", config)
        .file("Dockerfile", "FROM scratch\n");
    let out = p.run(&["img"]);
    out.code(2);
    assert!(!p.exists("other.txt"), "nothing may run\n{out}");
    assert_output!("several_platforms_without_push", out);
    p.run(&["-n", "img"]).code(2);
    // The listing and the other tasks are not affected.
    p.run(&["--list"]).success();
    p.run(&[]).success();
    p.run(&["other"]).success();
    assert_eq!(p.read("other.txt"), "other\n");
}

#[test]
fn a_quoted_boolean_that_is_neither_true_nor_false() {
    let out = fails("[tasks.img.image]\nname = \"app\"\npush = \"yes\"\n", &["--list"]);
    assert_output!("push_not_a_boolean", out);
}

#[test]
fn a_boolean_template_that_renders_neither_true_nor_false() {
    let config = r#"
[vars]
push = { env = "PUSH", default = "false" }

[tasks.img.image]
name = "app"
push = "{{ push }}"
"#;
    let p = Project::new()
        .file("montage.toml", config)
        .file("Dockerfile", "FROM scratch\n");
    let out = p.mtr(&["img"]).env("PUSH", "maybe").output();
    out.code(2);
    assert!(out.stdout.is_empty(), "nothing may run\n{out}");
    assert_output!("push_template_not_a_boolean", out);
    p.run(&["--list"]).success();
}

#[test]
fn an_alias_that_is_not_a_task_name() {
    let out = fails(
        "[tasks.a]\nrun = \"echo ran > ran.txt\"\naliases = [\"bad name\", \"x.y\", \"\", \"ok\"]\n",
        &["bad name"],
    );
    assert_output!("invalid_aliases", out);
}

#[test]
fn an_alias_that_is_already_a_task_or_an_alias() {
    let out = fails(
        r#"
[tasks.build]
run = "true"
aliases = ["b"]

[tasks.bench]
run = "true"
aliases = ["build", "b"]
"#,
        &["build"],
    );
    assert_output!("alias_clashes", out);
}

#[test]
fn did_you_mean_for_short_names_and_case() {
    let out = fails(
        r#"
[vars]
Good_1 = "x"

[tasks.t]
rn = "true"
env = { X = "{{ GOOD_1 }}" }

[tasks.u]
deps = ["T"]
run = "true"
"#,
        &["u"],
    );
    assert_output!("did_you_mean_short_and_case", out);
}

#[test]
fn task_and_hash_cannot_be_used_in_a_variable() {
    let out = fails(
        r#"
[vars]
tag = "v1-{{ hash }}"
who = { sh = "echo {{ task }}", default = "nobody" }

[tasks.t]
run = "echo {{ tag }} {{ who }}"
"#,
        &["t"],
    );
    assert_output!("task_and_hash_in_a_variable", out);
}

#[test]
fn an_empty_image_name() {
    let out = fails("[tasks.img.image]\nname = \"\"\n", &["--list"]);
    assert_output!("empty_image_name", out);
}

/// `project.dotenv` is read before variables have values: a template in a
/// path is an error, not a file name that is then silently missing.
#[test]
fn a_templated_dotenv_path_is_an_error() {
    let out = fails(
        "[project]\ndotenv = [\".env\", \".env.{{ stage }}\"]\n\n[vars]\nstage = \"dev\"\n\n[tasks.t]\nrun = \"true\"\n",
        &["t"],
    );
    assert_output!("templated_dotenv", out);
}
