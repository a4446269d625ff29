//! SPEC section 2: templates and their built-ins, variables and their
//! sources, and the task fields `aliases`, `deprecated`, `interactive`.

use crate::common::*;

const BUILTINS: &str = r#"
[tasks.dep]
inputs = ["src/**"]
run = "echo {{ hash }} > dep-hash.txt"

[tasks.show]
deps = ["dep"]
inputs = []
run = [
  "echo '{{ root }}' > root.txt",
  "echo {{task}} > task.txt",
  "echo {{ hash }} > hash.txt",
  "echo {{ tasks.dep.hash }} > tasks-dep-hash.txt",
  "echo '{{ env.MTR_TEST_VALUE }}' > env.txt",
  "echo {{ os }}/{{ arch }} > platform.txt",
  "echo '{{{{ literal }}' > literal.txt",
]
"#;

fn is_short_hash(s: &str) -> bool {
    s.len() == 12 && s.chars().all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
}

#[test]
fn built_in_templates() {
    let p = Project::new().file("montage.toml", BUILTINS).file("src/a.txt", "a\n");
    p.mtr(&["show"])
        .env("MTR_TEST_VALUE", "from the environment")
        .output()
        .success();
    assert_eq!(p.read("root.txt").trim(), p.root().display().to_string());
    assert_eq!(p.read("task.txt"), "show\n");
    let hash = p.read("hash.txt").trim().to_string();
    assert!(is_short_hash(&hash), "{hash:?}");
    let dep_hash = p.read("dep-hash.txt").trim().to_string();
    assert!(is_short_hash(&dep_hash), "{dep_hash:?}");
    assert_ne!(hash, dep_hash);
    assert_eq!(p.read("tasks-dep-hash.txt").trim(), dep_hash);
    assert_eq!(p.read("env.txt"), "from the environment\n");
    assert_eq!(
        p.read("platform.txt").trim(),
        format!("{}/{}", std::env::consts::OS, std::env::consts::ARCH)
    );
    assert_eq!(p.read("literal.txt"), "{{ literal }}\n");
}

#[test]
fn the_hash_is_stable_and_follows_the_inputs() {
    let p = Project::new().file("montage.toml", BUILTINS).file("src/a.txt", "a\n");
    let run = |args: &[&str]| p.mtr(args).env("MTR_TEST_VALUE", "x").output();
    run(&["dep"]).success();
    let first = p.read("dep-hash.txt");
    run(&["-B", "dep"]).success();
    assert_eq!(p.read("dep-hash.txt"), first, "same inputs, same hash");
    p.write("src/a.txt", "b\n");
    run(&["dep"]).success().assert_ran("dep");
    assert_ne!(p.read("dep-hash.txt"), first);
    // A dependant sees the new hash of its dep.
    run(&["show"]).success();
    assert_eq!(p.read("tasks-dep-hash.txt"), p.read("dep-hash.txt"));
}

#[test]
fn variables_may_use_other_variables() {
    let p = Project::new().file(
        "montage.toml",
        r#"
[vars]
registry = "localhost:5000"
namespace = "app"
image = "{{ registry }}/{{ namespace }}/web"

[tasks.t]
run = "echo {{ image }} > image.txt"
"#,
    );
    p.run(&["t"]).success();
    assert_eq!(p.read("image.txt"), "localhost:5000/app/web\n");
    p.run(&["t", "namespace=prod"]).success();
    assert_eq!(p.read("image.txt"), "localhost:5000/prod/web\n");
}

const SOURCES: &str = r#"
[vars]
value = { env = "MTR_TEST_VALUE", sh = "echo sh >> sh.log; echo from-sh", default = "from-default" }
fallback = { sh = "exit 1", default = "from-default" }
empty = { default = "" }

[tasks.a]
run = "echo {{ value }} {{ fallback }} [{{ empty }}] > a.txt"

[tasks.b]
deps = ["a"]
run = "echo {{ value }} > b.txt"

[tasks.other]
run = "echo other"
"#;

#[test]
fn variable_sources_apply_in_order() {
    let p = Project::new().file("montage.toml", SOURCES);
    let run = |args: &[&str]| p.mtr(args).env_remove("MTR_TEST_VALUE");
    run(&["a"]).output().success();
    assert_eq!(p.read("a.txt"), "from-sh from-default [] \n".replace(" \n", "\n"));
    run(&["a"]).env("MTR_TEST_VALUE", "from-env").output().success();
    assert_eq!(p.read("a.txt"), "from-env from-default []\n");
    run(&["a", "value=from-cli"])
        .env("MTR_TEST_VALUE", "from-env")
        .output()
        .success();
    assert_eq!(p.read("a.txt"), "from-cli from-default []\n");
}

#[test]
fn a_variable_s_sh_runs_once_and_only_when_needed() {
    let p = Project::new().file("montage.toml", SOURCES);
    let run = |args: &[&str]| p.mtr(args).env_remove("MTR_TEST_VALUE").output();
    run(&["other"]).success();
    assert!(!p.exists("sh.log"), "`sh` ran for a variable no task needed");
    run(&["b"]).success();
    assert_eq!(p.read("b.txt"), "from-sh\n");
    assert_eq!(p.read("sh.log"), "sh\n", "`sh` runs at most once per invocation");
}

#[test]
fn a_variable_s_sh_runs_at_the_root_and_sees_dotenv() {
    let p = Project::new()
        .file(
            "montage.toml",
            r#"
[project]
dotenv = [".env"]

[vars]
where = { sh = "pwd" }
token = { sh = "echo $MTR_TEST_TOKEN" }

[tasks.t]
run = "echo {{ where }} {{ token }} > out.txt"
"#,
        )
        .file(".env", "MTR_TEST_TOKEN=dotenv-token\n")
        .dir("sub");
    p.mtr(&["t"]).cwd("sub").env_remove("MTR_TEST_TOKEN").output().success();
    assert_eq!(p.read("out.txt"), format!("{} dotenv-token\n", p.root().display()));
}

#[test]
fn a_secret_is_masked_in_output_and_not_stored() {
    let p = Project::new().file(
        "montage.toml",
        r#"
[vars]
token = { env = "MTR_TEST_TOKEN", secret = true }

[tasks.login]
inputs = []
run = "echo logging in with {{ token }}"
"#,
    );
    let out = p.mtr(&["login"]).env("MTR_TEST_TOKEN", "hunter2-s3cret").output();
    out.success();
    assert!(
        !out.stdout.contains("hunter2-s3cret") && !out.stderr.contains("hunter2-s3cret"),
        "{out}"
    );
    assert!(out.stdout.contains("logging in with ***"), "{out}");
    let state = std::fs::read(p.path(".mtr/state")).unwrap();
    assert!(
        !state.windows(14).any(|w| w == b"hunter2-s3cret"),
        ".mtr/state holds the secret"
    );
}

#[test]
fn env_tables_are_templated_and_reach_every_task() {
    let p = Project::new().file(
        "montage.toml",
        r#"
[vars]
mode = "release"

[env]
BUILD_MODE = "{{ mode }}"
PORT = 8080

[tasks.t]
env = { GREETING = "hello from {{ task }}" }
run = "echo $BUILD_MODE $PORT $GREETING > env.txt"
"#,
    );
    p.run(&["t"]).success();
    assert_eq!(p.read("env.txt"), "release 8080 hello from t\n");
}

#[test]
fn the_project_shell_runs_each_line() {
    let p = Project::new().file(
        "montage.toml",
        "[project]\nshell = [\"sh\", \"-c\"]\n\n[tasks.t]\nrun = [\"false; echo still > out.txt\"]\n",
    );
    // Without `-e` the line goes on after `false`.
    p.run(&["t"]).success();
    assert_eq!(p.read("out.txt"), "still\n");
}

const TASK_FIELDS: &str = r#"
[tasks.dev-test]
aliases = ["test"]
run = "echo tested >> log.txt"

[tasks.old-test]
deprecated = "use `mtr dev-test`"
deps = ["test"]

[tasks.ci]
deps = ["old-test"]

[tasks.shell]
interactive = true
inputs = []
run = "echo interactive >> log.txt"
"#;

#[test]
fn an_alias_runs_its_task() {
    let p = Project::new().file("montage.toml", TASK_FIELDS);
    p.run(&["test"]).success().assert_ran("dev-test");
    assert_eq!(p.read("log.txt"), "tested\n");
}

#[test]
fn a_deprecated_task_warns_when_it_runs() {
    let p = Project::new().file("montage.toml", TASK_FIELDS);
    p.run(&["old-test"])
        .success()
        .assert_ran("dev-test")
        .stderr_has("warning: task `old-test` is deprecated: use `mtr dev-test`");
    // Also as a dependency.
    p.run(&["ci"])
        .success()
        .stderr_has("warning: task `old-test` is deprecated: use `mtr dev-test`");
    let out = p.run(&["dev-test"]);
    assert!(!out.stderr.contains("deprecated"), "{out}");
}

#[test]
fn an_interactive_task_runs_every_time() {
    let p = Project::new().file("montage.toml", TASK_FIELDS);
    p.run(&["shell"]).success().assert_ran("shell");
    p.run(&["shell"]).success().assert_ran("shell");
    assert_eq!(p.read("log.txt"), "interactive\ninteractive\n");
}

#[test]
fn an_interactive_task_runs_alone() {
    let p = Project::new().file(
        "montage.toml",
        r#"
[tasks.a]
run = "echo start a >> log.txt; sleep 0.2; echo end a >> log.txt"

[tasks.b]
run = "echo start b >> log.txt; sleep 0.2; echo end b >> log.txt"

[tasks.repl]
interactive = true
run = "echo start repl >> log.txt; sleep 0.2; echo end repl >> log.txt"

[tasks.all]
deps = ["a", "repl", "b"]
"#,
    );
    p.run(&["-j", "4", "all"]).success();
    let log = p.read("log.txt");
    let lines: Vec<&str> = log.lines().collect();
    let start = lines.iter().position(|l| *l == "start repl").expect(&log);
    assert_eq!(
        lines.get(start + 1),
        Some(&"end repl"),
        "something ran beside the interactive task:\n{log}"
    );
}

#[test]
fn a_task_hash_is_known_through_indirect_dependencies() {
    let p = Project::new().file(
        "montage.toml",
        r#"
[tasks.base]
inputs = []
run = "echo {{ hash }} > base.txt"

[tasks.mid]
deps = ["base"]
run = "true"

[tasks.top]
deps = ["mid"]
run = "echo {{ tasks.base.hash }} > top.txt"
"#,
    );
    p.run(&["top"]).success();
    assert_eq!(p.read("top.txt"), p.read("base.txt"));
    // Also when `base` is up to date.
    p.run(&["top"]).success().assert_up_to_date("base");
    assert_eq!(p.read("top.txt"), p.read("base.txt"));
}

#[test]
fn tasks_hash_through_an_alias() {
    let p = Project::new().file(
        "montage.toml",
        r#"
[tasks.build]
aliases = ["b"]
inputs = []
run = "echo {{ hash }} > build.txt"

[tasks.show]
deps = ["b"]
run = "echo {{ tasks.b.hash }} > show.txt"
"#,
    );
    p.run(&["show"]).success();
    assert_eq!(p.read("show.txt"), p.read("build.txt"));
}

#[test]
fn quiet_prints_only_task_output_and_errors() {
    let p = Project::new().file(
        "montage.toml",
        "[tasks.ok]\nrun = \"echo fine\"\n\n[tasks.bad]\nrun = \"exit 4\"\n",
    );
    let out = p.run(&["-q", "ok"]);
    out.success();
    assert_eq!((out.stdout.as_str(), out.stderr.as_str()), ("fine\n", ""), "{out}");
    let out = p.run(&["-q", "bad"]);
    out.code(4);
    assert!(out.failed("bad"), "{out}");
}

#[test]
fn an_env_name_on_the_command_line_sets_every_variable_reading_it() {
    let p = Project::new().file(
        "montage.toml",
        r#"
[vars]
app_version = { env = "VERSION", default = "dev" }
chart_version = { env = "VERSION", default = "0.0.0" }

[tasks.t]
run = "echo {{ app_version }} {{ chart_version }} > versions.txt"
"#,
    );
    p.mtr(&["t", "VERSION=1.4.0"]).env_remove("VERSION").output().success();
    assert_eq!(p.read("versions.txt"), "1.4.0 1.4.0\n");
}

#[test]
fn a_failed_sh_without_a_default_says_why() {
    let p = Project::new().file(
        "montage.toml",
        "[vars]\ncommit = { sh = \"echo 'not a git repository' >&2; exit 128\" }\n\n[tasks.t]\nrun = \"echo {{ commit }}\"\n",
    );
    p.run(&["t"])
        .code(2)
        .stderr_has("variable `commit` has no value")
        .stderr_has("its `sh` command failed (exit status 128: not a git repository)");
}

/// A variable that only `[builders.NAME]` uses is needed by every image
/// task that uses that builder: reported before anything runs.
#[test]
fn a_variable_only_a_builder_uses_is_reported_before_anything_runs() {
    let p = Project::new().file("Dockerfile", "FROM scratch\n").file(
        "montage.toml",
        r#"
[vars]
reg = { env = "REG", description = "the registry BuildKit reaches over HTTP" }
builder = { env = "BUILDER", default = "b" }

[builders.b]
insecure_registries = ["{{ reg }}"]

[tasks.dep]
run = "echo ran > dep.txt"

[tasks.img]
deps = ["dep"]
image = { name = "app", builder = "{{ builder }}" }

[tasks.other]
run = "true"
"#,
    );
    let out = p.mtr(&["img"]).env_remove("REG").env_remove("BUILDER").output();
    out.code(2);
    assert!(!p.exists("dep.txt"), "nothing may run\n{out}");
    assert_output!("variable_without_value_in_builder", out);
    // Set, the plan is made; tasks that do not use the builder never need it.
    p.mtr(&["-n", "img", "REG=10.0.0.1:5000"])
        .env_remove("REG")
        .env_remove("BUILDER")
        .output()
        .success();
    p.mtr(&["other"]).env_remove("REG").output().success();
    // An undeclared builder is used as it is: no section, no variable.
    p.mtr(&["-n", "img", "BUILDER=elsewhere"])
        .env_remove("REG")
        .output()
        .success();
}

/// A glob that is invalid only once a variable is in it is reported when
/// the plan is made (exit 2, nothing runs), pointing at the template.
#[test]
fn a_glob_made_invalid_by_a_variable_is_reported_before_anything_runs() {
    let p = Project::new().file("src/a.txt", "a\n").file(
        "montage.toml",
        r#"
[vars]
pat = { env = "PAT", default = "src/**" }

[tasks.dep]
run = "echo ran > dep.txt"

[tasks.t]
deps = ["dep"]
inputs = ["{{ pat }}"]
run = "echo t > t.txt"
"#,
    );
    let out = p.mtr(&["t"]).env("PAT", "src/[a").output();
    out.code(2);
    assert!(!p.exists("dep.txt"), "nothing may run\n{out}");
    assert_output!("glob_invalid_after_templating", out);
    p.mtr(&["t"]).env_remove("PAT").output().success();
    assert_eq!(p.read("t.txt"), "t\n");
}

/// SPEC section 2: a misspelt built-in gets a did-you-mean like a variable,
/// and every bad placeholder of a string is reported, not only the first.
#[test]
fn misspelt_built_ins_and_several_bad_placeholders() {
    let p = Project::new().file(
        "montage.toml",
        r#"
[tasks.b]
inputs = []
run = "echo {{ rot }} {{ ARCH }}"

[tasks.c]
deps = ["b"]
run = "echo {{ tasks.b.hsh }} {{ a b }} {{ }}"
"#,
    );
    let out = p.run(&["c"]);
    out.code(2);
    assert!(out.stdout.is_empty(), "nothing may run\n{out}");
    assert_output!("misspelt_built_ins", out);
}

/// An image name that renders to nothing is reported before anything runs
/// (it would build `-t :HASH`); other tasks still run.
#[test]
fn an_image_name_that_renders_empty_is_reported_before_anything_runs() {
    let p = Project::new().file("Dockerfile", "FROM scratch\n").file(
        "montage.toml",
        r#"
[vars]
reg = { env = "REG", default = "" }

[tasks.dep]
run = "echo ran > dep.txt"

[tasks.img]
deps = ["dep"]
image = { name = "{{ reg }}" }

[tasks.other]
run = "true"
"#,
    );
    let out = p.mtr(&["img"]).env_remove("REG").output();
    out.code(2);
    assert!(!p.exists("dep.txt"), "nothing may run\n{out}");
    assert!(out.stderr.contains("`image.name` is empty"), "{out}");
    p.mtr(&["other"]).env_remove("REG").output().success();
}
