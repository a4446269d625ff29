//! The scheduler: independent tasks really run at the same time, `-j 1`
//! runs one at a time, and output of overlapping tasks is prefixed.

use crate::common::*;

/// Each task waits (10 s at most) for the other's marker: both succeed only
/// if they run at the same time.
const RENDEZVOUS: &str = r#"
[tasks.left]
run = """
touch left.started
i=0
while [ ! -e right.started ]; do
  i=$((i + 1)); [ $i -le 500 ] || { echo 'right never started' >&2; exit 1; }
  sleep 0.02
done
"""

[tasks.right]
run = """
touch right.started
i=0
while [ ! -e left.started ]; do
  i=$((i + 1)); [ $i -le 500 ] || { echo 'left never started' >&2; exit 1; }
  sleep 0.02
done
"""

[tasks.both]
deps = ["left", "right"]
"#;

#[test]
fn independent_deps_run_at_the_same_time() {
    let p = Project::new().file("montage.toml", RENDEZVOUS);
    p.run(&["-j", "2", "both"])
        .success()
        .assert_ran("left")
        .assert_ran("right");
}

/// `-p` runs the named tasks at the same time, as go-task's `--parallel`.
#[test]
fn two_named_tasks_run_at_the_same_time_with_p() {
    let p = Project::new().file("montage.toml", RENDEZVOUS);
    p.run(&["-j", "2", "-p", "left", "right"]).success();
}

/// `mtr clean build` cleans first, as make, just and task do: each named
/// task (with what it needs) finishes before the next one starts, and the
/// deps of one still run at the same time.
#[test]
fn named_tasks_run_in_the_order_given() {
    let config = r#"
[tasks.clean]
run = "sleep 0.3; rm -rf build; echo clean >> log.txt"

[tasks.obj-a]
run = "mkdir -p build && touch build/a && echo obj-a >> log.txt"

[tasks.obj-b]
run = "mkdir -p build && touch build/b && echo obj-b >> log.txt"

[tasks.build]
deps = ["obj-a", "obj-b"]
run = "test -e build/a && test -e build/b && echo build >> log.txt"
"#;
    let p = Project::new().file("montage.toml", config);
    p.run(&["-j", "4", "clean", "build"]).success();
    let log = p.read("log.txt");
    let lines: Vec<&str> = log.lines().collect();
    assert_eq!(lines[0], "clean", "{log}");
    assert_eq!(lines[3], "build", "{log}");
    assert!(p.exists("build/a") && p.exists("build/b"));
    // The other way round, the build is cleaned away.
    p.run(&["-j", "4", "build", "clean"]).success();
    assert!(!p.path("build").exists());
    let log = p.read("log.txt");
    assert_eq!(log.lines().last(), Some("clean"), "{log}");
}

#[test]
fn two_named_tasks_with_a_shared_dep_run_it_once_first() {
    let config = r#"
[tasks.gen]
run = "echo gen >> log.txt"

[tasks.lint]
deps = ["gen"]
run = "echo lint >> log.txt"

[tasks.test]
deps = ["gen"]
run = "echo test >> log.txt"
"#;
    let p = Project::new().file("montage.toml", config);
    p.run(&["test", "lint"]).success();
    assert_eq!(p.read("log.txt"), "gen\ntest\nlint\n");
}

#[test]
fn after_a_failure_later_named_tasks_do_not_start_unless_keep_going() {
    let config = r#"
[tasks.bad]
run = "exit 3"

[tasks.next]
run = "touch next.ran"
"#;
    let p = Project::new().file("montage.toml", config);
    p.run(&["bad", "next"]).code(3);
    assert!(!p.path("next.ran").exists());
    p.run(&["-k", "bad", "next"]).code(3);
    assert!(p.path("next.ran").exists());
}

/// Each task logs its start and end; with `-j 1` no two overlap.
#[test]
fn jobs_1_runs_one_task_at_a_time() {
    let mut config = String::new();
    for name in ["a", "b", "c", "d"] {
        config.push_str(&format!(
            "[tasks.{name}]\nrun = \"echo start {name} >> log.txt; sleep 0.1; echo end {name} >> log.txt\"\n\n"
        ));
    }
    config.push_str("[tasks.all]\ndeps = [\"a\", \"b\", \"c\", \"d\"]\n");
    let p = Project::new().file("montage.toml", &config);
    p.run(&["-j", "1", "all"]).success();
    let log = p.read("log.txt");
    let lines: Vec<&str> = log.lines().collect();
    assert_eq!(lines.len(), 8, "{log}");
    for pair in lines.chunks(2) {
        let started = pair[0].strip_prefix("start ").expect(&log);
        assert_eq!(pair[1], format!("end {started}"), "tasks overlapped:\n{log}");
    }
}

#[test]
fn a_dependant_starts_after_its_dependencies_finished() {
    let p = Project::new().file(
        "montage.toml",
        r#"
[tasks.a]
run = "echo a >> log.txt"

[tasks.b]
run = "echo b >> log.txt"

[tasks.c]
deps = ["a", "b"]
run = "echo c >> log.txt"

[tasks.d]
deps = ["c"]
run = "echo d >> log.txt"
"#,
    );
    p.run(&["-j", "4", "d"]).success();
    let log = p.read("log.txt");
    let lines: Vec<&str> = log.lines().collect();
    assert_eq!(lines.len(), 4, "{log}");
    assert_eq!(&lines[2..], ["c", "d"], "{log}");
}

#[test]
fn output_of_tasks_that_may_overlap_is_prefixed_with_their_name() {
    let p = Project::new().file(
        "montage.toml",
        r#"
[tasks.lint]
run = "echo linted"

[tasks.unit-test]
run = "echo tested"

[tasks.check]
deps = ["lint", "unit-test"]
"#,
    );
    let out = p.run(&["-j", "2", "check"]);
    out.success();
    let mut lines: Vec<&str> = out.stdout.lines().collect();
    lines.sort();
    assert_eq!(lines, ["lint      | linted", "unit-test | tested"], "{out}");
}

#[test]
fn output_of_a_single_chain_is_not_prefixed() {
    let p = Project::new().file(
        "montage.toml",
        "[tasks.a]\nrun = \"echo from a\"\n\n[tasks.b]\ndeps = [\"a\"]\nrun = \"echo from b\"\n",
    );
    let out = p.run(&["-j", "2", "b"]);
    out.success();
    assert_eq!(out.stdout, "from a\nfrom b\n", "{out}");
}

/// Named tasks run one after another, so their output is not prefixed
/// either; deps that can overlap within one of them are.
#[test]
fn output_of_named_tasks_in_order_is_not_prefixed() {
    let p = Project::new().file(
        "montage.toml",
        "[tasks.a]\nrun = \"echo from a\"\n\n[tasks.b]\nrun = \"echo from b\"\n\n\
         [tasks.c]\nrun = \"echo from c\"\n\n[tasks.both]\ndeps = [\"b\", \"c\"]\n",
    );
    let out = p.run(&["-j", "2", "b", "a"]);
    out.success();
    assert_eq!(out.stdout, "from b\nfrom a\n", "{out}");
    let out = p.run(&["-j", "2", "a", "both"]);
    out.success();
    assert!(
        out.stdout.contains("| from b") && out.stdout.contains("| from a"),
        "{out}"
    );
}
