//! The live status line: drawn on a terminal when a task runs long, never
//! in pipes (CI logs).

use std::process::Command;

use crate::common::Project;

const SLOW: &str = "[tasks.slow]\nrun = \"sleep 2\"\n";

#[test]
fn a_terminal_gets_a_live_line_while_a_task_runs_long() {
    let p = Project::new().file("montage.toml", SLOW);
    // `script` gives mtr a pseudo-terminal, as an interactive shell would.
    let cmd = format!("{} slow", env!("CARGO_BIN_EXE_mtr"));
    let out = Command::new("script")
        .args(["-qec", &cmd, "/dev/null"])
        .current_dir(p.root())
        .env("NO_COLOR", "1")
        .output();
    let Ok(out) = out else {
        eprintln!("skipped: `script` (util-linux) is not installed");
        return;
    };
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("running slow · "), "no live line in:\n{text}");
    // It is cleared before the summary.
    assert!(text.contains("\r\x1b[2Kmtr: 1 ran in"), "{text:?}");
}

#[test]
fn pipes_get_plain_lines_only() {
    let p = Project::new().file("montage.toml", SLOW);
    let out = p.run(&["slow"]);
    out.success();
    assert!(!out.stderr.contains("running slow"), "{out}");
    assert!(!out.stderr.contains('\r'), "{out}");
}
