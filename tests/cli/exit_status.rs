//! SPEC section 5: exit statuses, `-k`, missing programs, Ctrl-C, and the
//! state store surviving corruption and concurrent `mtr` processes.

use std::time::Duration;

use crate::common::*;

#[test]
fn success_is_status_0() {
    let p = Project::new().file("montage.toml", "[tasks.t]\nrun = \"true\"\n");
    p.run(&["t"]).success().assert_ran("t");
}

#[test]
fn a_failure_exits_with_the_failing_command_s_status() {
    let p = Project::new().file(
        "montage.toml",
        "[tasks.t]\nrun = [\"echo before\", \"exit 3\", \"echo never\"]\n",
    );
    let out = p.run(&["t"]);
    out.code(3);
    assert!(!out.stdout.contains("never"), "later steps do not run\n{out}");
    assert_output!("failing_command", out);
}

const BRANCHES: &str = r#"
[tasks.bad]
run = "exit 3"

[tasks.after-bad]
deps = ["bad"]
run = "echo after > after.txt"

[tasks.good]
run = "echo good > good.txt"

[tasks.all]
deps = ["bad", "after-bad", "good"]
"#;

#[test]
fn the_run_stops_at_the_first_failure_by_default() {
    let p = Project::new().file("montage.toml", BRANCHES);
    let out = p.run(&["-j", "1", "all"]);
    out.code(3);
    assert!(!p.exists("good.txt"), "nothing starts after a failure\n{out}");
    assert!(!p.exists("after.txt"), "{out}");
    assert_output!("stop_on_failure", out);
}

#[test]
fn keep_going_runs_what_does_not_depend_on_the_failure() {
    let p = Project::new().file("montage.toml", BRANCHES);
    let out = p.run(&["-j", "1", "-k", "all"]);
    out.code(3);
    assert!(p.exists("good.txt"), "an independent branch runs with -k\n{out}");
    assert!(!p.exists("after.txt"), "a dependant of the failure never runs\n{out}");
    assert_output!("keep_going", out);
}

#[test]
fn a_missing_program_is_named_with_its_task() {
    let p = Project::new().file(
        "montage.toml",
        "[tasks.cluster-build]\nrun = \"nosuchprog --version\"\n",
    );
    let out = p.run(&["cluster-build"]);
    assert_ne!(out.code, 0, "{out}");
    assert!(out.failed("cluster-build"), "{out}");
    assert_output!("missing_program", out);
}

#[test]
fn a_missing_program_run_through_the_shell_is_named_too() {
    let p = Project::new().file("montage.toml", "[tasks.gen]\nrun = \"nosuchprog > out.txt\"\n");
    let out = p.run(&["gen"]);
    out.code(127)
        .stderr_has("✗ gen failed: `nosuchprog` was not found on PATH");
    // The program, not the builtin or keyword that comes first.
    let p = Project::new()
        .file(
            "montage.toml",
            "[tasks.gen]\nrun = \"cd sub && if true; then nosuchprog ci; fi\"\n",
        )
        .dir("sub");
    p.run(&["gen"])
        .code(127)
        .stderr_has("✗ gen failed: `nosuchprog` was not found on PATH");
    // A command that exits 127 itself names no program: quoted words are
    // arguments, a relative path may be relative to a `cd`.
    for line in ["sh -c 'echo nosuchprog; exit 127'", "cd sub && ./run.sh"] {
        let p = Project::new()
            .file("montage.toml", &format!("[tasks.gen]\nrun = \"{line}\"\n"))
            .file("sub/run.sh", "#!/bin/sh\nexit 127\n");
        p.chmod("sub/run.sh", 0o755);
        p.run(&["gen"]).code(127).stderr_has("✗ gen failed: exit status 127");
    }
}

#[test]
fn config_errors_exit_2() {
    let p = Project::new().file("montage.toml", "[tasks.t]\nrun = 1\n");
    p.run(&["t"]).code(2);
}

#[test]
fn usage_errors_exit_2() {
    let p = Project::new().file("montage.toml", "[tasks.t]\nrun = \"true\"\n");
    p.run(&["--jobs", "many", "t"]).code(2);
}

/// Ctrl-C: every child's process group is stopped (here a grandchild that
/// ignores SIGINT, as background jobs of a script do), mtr exits 130, and
/// the interrupted task is not recorded as a success.
#[cfg(unix)]
#[test]
fn ctrl_c_leaves_no_child_process_and_records_nothing() {
    use nix::sys::signal::{Signal, kill};
    use nix::unistd::Pid;

    let p = Project::new().file(
        "montage.toml",
        r#"
[tasks.serve]
inputs = []
run = "(sleep 1000 & echo $! > sleep.pid; wait)"

[tasks.after]
deps = ["serve"]
run = "echo after > after.txt"
"#,
    );
    let child = p.mtr(&["after"]).spawn();
    let mtr = Pid::from_raw(child.id() as i32);
    if !p.wait_for_file("sleep.pid", Duration::from_secs(10)) {
        let _ = kill(mtr, Signal::SIGKILL);
        panic!(
            "the task did not start\n{}",
            wait_with_timeout(child, p.root(), Duration::from_secs(5))
        );
    }
    let sleep: i32 = p.read("sleep.pid").trim().parse().expect("a pid");
    kill(mtr, Signal::SIGINT).unwrap();
    let out = wait_for_exit(child, p.root(), Duration::from_secs(20));
    // Whatever happens below, do not leave the sleeper behind.
    let gone = wait_until(Duration::from_secs(10), || process_gone(sleep));
    if !gone {
        let _ = kill(Pid::from_raw(sleep), Signal::SIGKILL);
    }
    let out = out.unwrap_or_else(|out| panic!("mtr did not exit after SIGINT\n{out}"));
    out.code(130);
    assert!(gone, "`sleep` (pid {sleep}) outlived mtr\n{out}");
    assert!(!p.exists("after.txt"), "nothing starts after Ctrl-C\n{out}");
    assert!(out.failed("serve"), "{out}");
    p.run(&["serve", "--dry-run"])
        .success()
        .stdout
        .contains("serve: would run: never ran")
        .then_some(())
        .expect("an interrupted task is not recorded");
}

/// An interactive task owns the terminal, so a Ctrl-C there reaches it
/// directly; a SIGTERM to mtr (CI cancelling, `docker stop`), or a SIGINT
/// with no terminal (an IDE's stop button), is passed on to it, and mtr
/// exits without waiting for it forever.
#[cfg(unix)]
#[test]
fn a_signal_to_mtr_stops_an_interactive_task() {
    use nix::sys::signal::{Signal, kill};
    use nix::unistd::Pid;

    for (signal, code) in [(Signal::SIGTERM, 143), (Signal::SIGINT, 130)] {
        let p = Project::new().file(
            "montage.toml",
            "[tasks.serve]\ninteractive = true\nrun = \"echo $$ > serve.pid; exec sleep 1000\"\n",
        );
        let child = p.mtr(&["serve"]).spawn();
        let mtr = Pid::from_raw(child.id() as i32);
        if !p.wait_for_file("serve.pid", Duration::from_secs(10)) {
            let _ = kill(mtr, Signal::SIGKILL);
            panic!(
                "the task did not start\n{}",
                wait_with_timeout(child, p.root(), Duration::from_secs(5))
            );
        }
        std::thread::sleep(Duration::from_millis(200));
        let serve: i32 = p.read("serve.pid").trim().parse().expect("a pid");
        kill(mtr, signal).unwrap();
        let out = wait_for_exit(child, p.root(), Duration::from_secs(20));
        let gone = wait_until(Duration::from_secs(10), || process_gone(serve));
        if !gone {
            let _ = kill(Pid::from_raw(serve), Signal::SIGKILL);
        }
        let out = out.unwrap_or_else(|out| panic!("mtr did not exit after {signal}\n{out}"));
        out.code(code);
        assert!(
            gone,
            "the interactive task (pid {serve}) outlived mtr after {signal}\n{out}"
        );
    }
}

/// A command that traps Ctrl-C and exits 0 with its work half done is
/// still an interrupted run: nothing is recorded.
#[cfg(unix)]
#[test]
fn a_task_that_exits_0_on_ctrl_c_is_not_recorded() {
    use nix::sys::signal::{Signal, kill};
    use nix::unistd::Pid;

    let p = Project::new().file(
        "montage.toml",
        r#"
[tasks.gen]
inputs = []
outputs = ["gen.out"]
run = "trap 'echo partial > gen.out; exit 0' INT TERM; echo up > started; while :; do sleep 0.05; done"
"#,
    );
    let child = p.mtr(&["gen"]).spawn();
    let mtr = Pid::from_raw(child.id() as i32);
    if !p.wait_for_file("started", Duration::from_secs(10)) {
        let _ = kill(mtr, Signal::SIGKILL);
        panic!(
            "the task did not start\n{}",
            wait_with_timeout(child, p.root(), Duration::from_secs(5))
        );
    }
    kill(mtr, Signal::SIGINT).unwrap();
    let out = wait_for_exit(child, p.root(), Duration::from_secs(20))
        .unwrap_or_else(|out| panic!("mtr did not exit after SIGINT\n{out}"));
    out.code(130);
    assert!(!out.ran("gen"), "{out}");
    let plan = p.run(&["gen", "--dry-run"]);
    assert!(plan.success().stdout.contains("gen: would run: never ran"), "{plan}");
}

#[test]
fn a_corrupt_state_file_is_a_warning_and_tasks_run() {
    let p = Project::new()
        .file("montage.toml", "[tasks.t]\ninputs = [\"a.txt\"]\nrun = \"echo ran\"\n")
        .file("a.txt", "a\n");
    p.run(&["t"]).success().assert_ran("t");
    p.write(".mtr/state", "this is not a state file");
    let out = p.run(&["t"]);
    out.success().assert_ran("t");
    assert_output!("corrupt_state", out);
    // The state was written anew.
    let out = p.run(&["t"]);
    out.success().assert_up_to_date("t");
    assert!(!out.stderr.contains("warning"), "{out}");
}

#[test]
fn a_truncated_state_file_is_a_warning_and_tasks_run() {
    let p = Project::new()
        .file("montage.toml", "[tasks.t]\ninputs = [\"a.txt\"]\nrun = \"echo ran\"\n")
        .file("a.txt", "a\n");
    p.run(&["t"]).success();
    let state = std::fs::read(p.path(".mtr/state")).unwrap();
    std::fs::write(p.path(".mtr/state"), &state[..state.len() - 5]).unwrap();
    p.run(&["t"])
        .success()
        .assert_ran("t")
        .stderr_has("warning: `.mtr/state` is corrupt");
}

#[test]
fn the_state_directory_ignores_itself_in_git() {
    let p = Project::new().file("montage.toml", "[tasks.t]\ninputs = []\nrun = \"true\"\n");
    p.run(&["t"]).success();
    assert!(p.read(".mtr/.gitignore").lines().any(|l| l == "*"));
}

#[test]
fn a_state_directory_removed_by_a_task_is_made_again_with_its_records() {
    let p = Project::new()
        .file(
            "montage.toml",
            "[tasks.wipe]\ninputs = [\"a.txt\"]\nrun = \"rm -rf .mtr\"\n\n\
             [tasks.after]\ninputs = [\"a.txt\"]\ndeps = [\"wipe\"]\nrun = \"echo after\"\n",
        )
        .file("a.txt", "a\n");
    p.run(&["after"]).success().assert_ran("wipe").assert_ran("after");
    assert!(p.read(".mtr/.gitignore").lines().any(|l| l == "*"));
    let again = p.run(&["after"]);
    again.success().assert_up_to_date("wipe").assert_up_to_date("after");
}

#[test]
fn a_state_gitignore_removed_by_hand_comes_back_when_the_state_is_written() {
    let p = Project::new()
        .file("montage.toml", "[tasks.t]\ninputs = [\"src/**\"]\nrun = \"true\"\n")
        .file("src/a.txt", "a\n");
    p.run(&["t"]).success();
    std::fs::remove_file(p.path(".mtr/.gitignore")).unwrap();
    // A new input file: the state is written whole, not appended to.
    p.write("src/b.txt", "b\n");
    p.run(&["t"]).success().assert_ran("t");
    assert!(p.read(".mtr/.gitignore").lines().any(|l| l == "*"));
}

/// Ten `mtr` processes at once in one project, each running another task:
/// every record survives and the state still loads.
#[test]
fn concurrent_mtr_processes_keep_the_state_valid() {
    let mut config = String::new();
    for i in 0..10 {
        config.push_str(&format!(
            "[tasks.t{i}]\ninputs = [\"src/{i}.txt\"]\nrun = \"echo {i}\"\n\n"
        ));
    }
    let mut p = Project::new().file("montage.toml", &config);
    for i in 0..10 {
        p = p.file(&format!("src/{i}.txt"), &format!("{i}\n"));
    }
    let children: Vec<_> = (0..10).map(|i| p.mtr(&[&format!("t{i}")]).spawn()).collect();
    for child in children {
        wait_with_timeout(child, p.root(), Duration::from_secs(60)).success();
    }
    let names: Vec<String> = (0..10).map(|i| format!("t{i}")).collect();
    let args: Vec<&str> = names.iter().map(String::as_str).collect();
    let out = p.run(&args);
    out.success();
    assert!(!out.stderr.contains("warning"), "{out}");
    for name in &names {
        out.assert_up_to_date(name);
    }
    let left = p.mtr_dir_entries_but_delta();
    assert_eq!(
        left,
        [".gitignore", "config", "lock", "state"],
        "no temporary files are left behind"
    );
}

/// A program that is there but not executable exits 126, as a shell says.
#[cfg(unix)]
#[test]
fn a_program_that_is_not_executable_exits_126() {
    let p = Project::new()
        .file("montage.toml", "[tasks.script]\nrun = \"./tool.sh\"\n")
        .file("tool.sh", "#!/bin/sh\necho hi\n");
    p.chmod("tool.sh", 0o644);
    p.run(&["script"])
        .code(126)
        .stderr_has("✗ script failed: cannot run `./tool.sh`: permission denied (is it executable?)");
}

#[test]
fn jobs_0_is_a_usage_error() {
    let p = Project::new().file("montage.toml", "[tasks.t]\nrun = \"true\"\n");
    p.run(&["-j", "0", "t"])
        .code(2)
        .stderr_has("at least 1 task must be able to run");
}
