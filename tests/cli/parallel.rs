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

#[test]
fn two_named_tasks_run_at_the_same_time() {
    let p = Project::new().file("montage.toml", RENDEZVOUS);
    p.run(&["-j", "2", "left", "right"]).success();
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
