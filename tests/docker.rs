//! `container` tasks against the real Docker engine, with a tiny image
//! imported from a static busybox. Skipped, visibly, where no engine answers.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

const IMAGE: &str = "mtr-test-busybox:1";

/// Whether the engine answers; builds the test image once per test binary.
fn engine() -> bool {
    static READY: OnceLock<Result<(), String>> = OnceLock::new();
    match READY.get_or_init(prepare_image) {
        Ok(()) => true,
        Err(why) => {
            eprintln!("skipped: {why}");
            false
        }
    }
}

fn prepare_image() -> Result<(), String> {
    let version = Command::new("docker")
        .args(["version", "--format", "{{.Server.Version}}"])
        .output();
    if !version.is_ok_and(|o| o.status.success()) {
        return Err("no Docker engine answers (`docker version` failed)".into());
    }
    let inspect = Command::new("docker")
        .args(["image", "inspect", IMAGE])
        .output()
        .map_err(|e| e.to_string())?;
    if inspect.status.success() {
        return Ok(());
    }
    let busybox = ["/bin/busybox", "/usr/bin/busybox"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .ok_or("no static busybox (Debian: apt install busybox-static)")?;
    let rootfs = tempfile::tempdir().map_err(|e| e.to_string())?;
    let bin = rootfs.path().join("bin");
    std::fs::create_dir_all(&bin).map_err(|e| e.to_string())?;
    std::fs::copy(busybox, bin.join("busybox")).map_err(|e| e.to_string())?;
    for applet in ["sh", "cat", "echo", "sleep", "pwd", "ls", "true", "test"] {
        std::os::unix::fs::symlink("busybox", bin.join(applet)).map_err(|e| e.to_string())?;
    }
    std::fs::create_dir_all(rootfs.path().join("tmp")).map_err(|e| e.to_string())?;
    let status = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "tar -C '{}' -cf - . | docker import - {IMAGE} >/dev/null",
            rootfs.path().display()
        ))
        .status()
        .map_err(|e| e.to_string())?;
    if status.success() {
        Ok(())
    } else {
        Err("`docker import` of the busybox rootfs failed".into())
    }
}

fn project(toml: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("montage.toml"), toml).unwrap();
    std::fs::create_dir_all(dir.path().join("src")).unwrap();
    dir
}

fn mtr(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mtr"))
        .args(args)
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn a_mounted_src_edit_is_visible_on_the_next_run_without_a_rebuild() {
    if !engine() {
        return;
    }
    let dir = project(&format!(
        "[tasks.show.container]\nimage = \"{IMAGE}\"\nmounts = [\"src:/app/src:ro\"]\ncommand = [\"cat\", \"/app/src/msg.txt\"]\n"
    ));
    std::fs::write(dir.path().join("src/msg.txt"), "first edit\n").unwrap();
    let out = mtr(dir.path(), &["show"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(stdout(&out), "first edit\n");
    std::fs::write(dir.path().join("src/msg.txt"), "second edit\n").unwrap();
    let out = mtr(dir.path(), &["show"]);
    assert_eq!(stdout(&out), "second edit\n");
}

#[test]
fn the_container_exit_status_is_the_task_status() {
    if !engine() {
        return;
    }
    let dir = project(&format!(
        "[tasks.fail.container]\nimage = \"{IMAGE}\"\ncommand = \"sh -c 'exit 7'\"\n"
    ));
    let out = mtr(dir.path(), &["fail"]);
    assert_eq!(out.status.code(), Some(7), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("✗ fail failed: the container exited with status 7"));
}

#[test]
fn env_workdir_and_entrypoint_reach_the_container_without_a_tty() {
    if !engine() {
        return;
    }
    let dir = project(&format!(
        "[tasks.env.container]\nimage = \"{IMAGE}\"\nentrypoint = \"/bin/sh\"\nworkdir = \"/tmp\"\n\
         env = {{ GREETING = \"hi from {{{{ task }}}}\" }}\ncommand = [\"-c\", \"echo $GREETING; pwd; test -t 0 || echo no-tty\"]\n"
    ));
    let out = mtr(dir.path(), &["env"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(stdout(&out), "hi from env\n/tmp\nno-tty\n");
}

/// The task's own `env` reaches the process in the container (by name, so
/// a secret value is never on docker's command line); `container.env`
/// wins over it, and `[env]` (for the tools on the host) stays outside.
#[test]
fn the_tasks_env_reaches_the_container_process() {
    if !engine() {
        return;
    }
    let dir = project(&format!(
        "[env]\nHOST_ONLY = \"host\"\n\n\
         [tasks.env]\nenv = {{ PYTHONPATH = \"src\", BOTH = \"task\" }}\n\n\
         [tasks.env.container]\nimage = \"{IMAGE}\"\nenv = {{ BOTH = \"container\" }}\n\
         command = [\"sh\", \"-c\", \"echo $PYTHONPATH $BOTH ${{HOST_ONLY:-unset}}\"]\n"
    ));
    let out = mtr(dir.path(), &["env"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(stdout(&out), "src container unset\n");
    let plan = mtr(dir.path(), &["env", "--dry-run"]);
    assert!(
        stdout(&plan).contains("-e PYTHONPATH -e BOTH=container"),
        "{}",
        stdout(&plan)
    );
}

fn containers(filter: &str, all: bool) -> String {
    let mut args = vec!["ps", "--filter", filter, "--format", "{{.Names}}"];
    if all {
        args.insert(1, "-a");
    }
    let out = Command::new("docker").args(&args).output().unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn wait_until(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    cond()
}

/// Starts two `container` tasks at once, sends `signal` to mtr once both
/// containers run, and checks the exit status and that neither container
/// is left (running or stopped).
fn signal_leaves_no_container(signal: nix::sys::signal::Signal, code: i32) {
    let dir = project(&format!(
        "[tasks.hang-forever.container]\nimage = \"{IMAGE}\"\ncommand = [\"sleep\", \"300\"]\n\n\
         [tasks.hang-too.container]\nimage = \"{IMAGE}\"\ncommand = [\"sh\", \"-c\", \"trap '' TERM INT; sleep 300\"]\n\n\
         [tasks.both]\ndeps = [\"hang-forever\", \"hang-too\"]\n"
    ));
    let mut child = Command::new(env!("CARGO_BIN_EXE_mtr"))
        .args(["-j", "2", "both"])
        .current_dir(dir.path())
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let filter = format!("name=mtr-hang-.*-{}-", child.id());
    let running = |all| containers(&filter, all).lines().filter(|l| !l.is_empty()).count();
    if !wait_until(Duration::from_secs(60), || running(false) == 2) {
        let _ = child.kill();
        panic!("the containers did not start: {}", containers(&filter, true));
    }
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), signal).unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(code));
    assert!(
        wait_until(Duration::from_secs(30), || running(true) == 0),
        "container left behind after {signal}: {}",
        containers(&filter, true)
    );
}

#[test]
fn ctrl_c_leaves_no_container_running() {
    if engine() {
        signal_leaves_no_container(nix::sys::signal::Signal::SIGINT, 130);
    }
}

#[test]
fn sigterm_leaves_no_container_running() {
    if engine() {
        signal_leaves_no_container(nix::sys::signal::Signal::SIGTERM, 143);
    }
}

/// `~/…` on the host side of a mount is the home directory (HOME), not a
/// directory called `~` in the project that docker would create.
#[test]
fn a_tilde_mount_reads_from_the_home_directory() {
    if !engine() {
        return;
    }
    let dir = project(&format!(
        "[tasks.show.container]\nimage = \"{IMAGE}\"\nmounts = [\"~/conf:/conf:ro\"]\ncommand = [\"cat\", \"/conf/msg.txt\"]\n"
    ));
    let home = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(home.path().join("conf")).unwrap();
    std::fs::write(home.path().join("conf/msg.txt"), "from home\n").unwrap();
    // The docker CLI keeps reading its own config (contexts) from the real home.
    let config =
        std::env::var("DOCKER_CONFIG").unwrap_or_else(|_| format!("{}/.docker", std::env::var("HOME").unwrap()));
    let out = Command::new(env!("CARGO_BIN_EXE_mtr"))
        .arg("show")
        .current_dir(dir.path())
        .env("NO_COLOR", "1")
        .env("HOME", home.path())
        .env("DOCKER_CONFIG", config)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(stdout(&out), "from home\n");
    assert!(!dir.path().join("~").exists(), "no `~` directory in the project");
}
