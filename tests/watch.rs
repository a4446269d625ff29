//! `--watch`: re-runs after relevant changes, restarts long-running tasks
//! without orphans, and Ctrl-C ends it cleanly.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn spawn_watch(dir: &Path, task: &str) -> Child {
    Command::new(env!("CARGO_BIN_EXE_mtr"))
        .args(["-w", task])
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

#[track_caller]
fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(30) {
        if cond() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("timed out waiting for {what}");
}

fn interrupt(child: &mut Child) -> Option<i32> {
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    child.wait().unwrap().code()
}

fn alive(pid: i32) -> bool {
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_ok()
}

fn project(toml: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("montage.toml"), toml).unwrap();
    std::fs::create_dir_all(dir.path().join("src")).unwrap();
    std::fs::write(dir.path().join("src/a.txt"), "one\n").unwrap();
    dir
}

#[test]
fn reruns_when_an_input_changes() {
    let dir = project("[tasks.gen]\ninputs = [\"src/**\"]\nrun = \"cat src/a.txt >> log.txt\"\n");
    let log = dir.path().join("log.txt");
    let mut child = spawn_watch(dir.path(), "gen");
    wait_for("the first run", || lines(&log).len() == 1);
    // Give the watcher a moment to be armed after the run ended.
    std::thread::sleep(Duration::from_millis(300));
    std::fs::write(dir.path().join("src/a.txt"), "two\n").unwrap();
    wait_for("the re-run", || lines(&log) == ["one", "two"]);
    assert_eq!(interrupt(&mut child), Some(130));
}

/// A change under a task's `watch` paths runs that task again, though its
/// inputs did not change; a task that does not watch them stays skipped.
#[test]
fn a_change_under_watch_paths_reruns_the_task_that_watches_them() {
    let dir = project(
        "[tasks.gen]\ninputs = [\"src/**\"]\nwatch = [\"extra/**\"]\nrun = \"cat src/a.txt >> log.txt\"\n\n\
         [tasks.other]\ninputs = [\"src/**\"]\nrun = \"echo other >> other.txt\"\n\n\
         [tasks.all]\ndeps = [\"gen\", \"other\"]\n",
    );
    std::fs::create_dir_all(dir.path().join("extra")).unwrap();
    let log = dir.path().join("log.txt");
    let mut child = spawn_watch(dir.path(), "all");
    wait_for("the first run", || lines(&log).len() == 1);
    std::thread::sleep(Duration::from_millis(300));
    std::fs::write(dir.path().join("extra/settings.ini"), "x\n").unwrap();
    wait_for("the re-run", || lines(&log) == ["one", "one"]);
    // Then an input change: both inputs and the next run agree again.
    std::thread::sleep(Duration::from_millis(300));
    std::fs::write(dir.path().join("src/a.txt"), "two\n").unwrap();
    wait_for("the run after the input change", || {
        lines(&log) == ["one", "one", "two"]
    });
    assert_eq!(interrupt(&mut child), Some(130));
    assert_eq!(lines(&dir.path().join("other.txt")), ["other", "other"]);
}

#[test]
fn a_long_running_task_is_restarted_and_never_orphaned() {
    let dir = project(
        "[tasks.serve]\nwatch = [\"src/**\"]\nrun = \"echo $$ >> pids.txt; sleep 1000 & echo $! >> pids.txt; wait\"\n",
    );
    let pids_file = dir.path().join("pids.txt");
    let mut child = spawn_watch(dir.path(), "serve");
    wait_for("the server to start", || lines(&pids_file).len() == 2);
    let first: Vec<i32> = lines(&pids_file).iter().map(|p| p.parse().unwrap()).collect();
    std::fs::write(dir.path().join("src/a.txt"), "changed\n").unwrap();
    wait_for("the restart", || lines(&pids_file).len() == 4);
    wait_for("the old processes to be gone", || first.iter().all(|p| !alive(*p)));
    let second: Vec<i32> = lines(&pids_file)[2..].iter().map(|p| p.parse().unwrap()).collect();
    assert!(second.iter().all(|p| alive(*p)));
    assert_eq!(interrupt(&mut child), Some(130));
    wait_for("no process left after Ctrl-C", || second.iter().all(|p| !alive(*p)));
}
