//! A `.mtr/` that cannot be written (read-only, not a directory, a full
//! disk): a clear error, the tasks' own work kept, their exit status kept,
//! and nothing recorded — they run again next time.

use std::process::{Command, Stdio};

use crate::common::*;

const CONFIG: &str = "[tasks.t]\ninputs = [\"src/**\"]\noutputs = [\"out.txt\"]\nrun = \"cp src/a.txt out.txt\"\n";

fn project() -> Project {
    Project::new().file("montage.toml", CONFIG).file("src/a.txt", "one\n")
}

/// After the state could not be saved: the next run (with `.mtr/` usable
/// again) runs the task once more, then skips it.
#[track_caller]
fn runs_again_then_skips(p: &Project) {
    p.run(&["t"]).success().assert_ran("t");
    p.run(&["t"]).success().assert_up_to_date("t");
}

#[cfg(unix)]
#[test]
fn a_read_only_state_directory_is_a_clear_error_and_the_work_is_kept() {
    use std::os::unix::fs::MetadataExt;
    let p = project();
    p.run(&["t"]).success().assert_ran("t");
    p.write("src/a.txt", "two\n");
    // Root writes anywhere: then mtr runs as `nobody`, `.mtr/` stays root's.
    let root = tempfile::tempfile().unwrap().metadata().unwrap().uid() == 0;
    if root {
        p.chmod(".", 0o755);
        p.chown_all(65534, 65534);
        p.chown_all_of(".mtr", 0, 0);
    }
    p.chmod(".mtr", 0o555);
    let out = if root {
        p.mtr(&["t"]).user(65534, 65534).output()
    } else {
        p.run(&["t"])
    };
    p.chmod(".mtr", 0o755);
    out.success().assert_ran("t");
    out.stderr_has("error: could not save state in `")
        .stderr_has("Permission denied")
        .stderr_has("the tasks' own work is kept; they will run again next time");
    assert_eq!(p.read("out.txt"), "two\n", "the task's output is there");
    runs_again_then_skips(&p);
}

#[test]
fn a_state_path_that_is_a_file_is_a_clear_error_and_the_work_is_kept() {
    let p = project().file(".mtr", "not a directory\n");
    let out = p.run(&["t"]);
    out.success().assert_ran("t");
    out.stderr_has("could not save state in `")
        .stderr_has("the tasks' own work is kept");
    assert_eq!(p.read("out.txt"), "one\n");
    // A failing task keeps its own exit status.
    p.write("montage.toml", "[tasks.t]\ninputs = []\nrun = \"exit 4\"\n");
    let out = p.run(&["t"]);
    out.code(4).stderr_has("could not save state in `");
    p.remove(".mtr");
    p.write("montage.toml", CONFIG);
    runs_again_then_skips(&p);
}

/// A full disk under `.mtr/`: a 16 KiB tmpfs filled up, mounted in a
/// mount namespace of its own (root only; skipped elsewhere, visibly).
#[cfg(target_os = "linux")]
#[test]
fn a_full_disk_is_a_clear_error_and_the_work_is_kept() {
    let p = project().dir(".mtr");
    let script = "mount -t tmpfs -o size=16k tmpfs .mtr || exit 99; \
                  head -c 100000 /dev/zero > .mtr/fill 2>/dev/null; \
                  exec \"$0\" \"$@\"";
    let out = Command::new("unshare")
        .args(["-m", "sh", "-c", script, MTR, "t"])
        .current_dir(p.root())
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .output();
    let out = match out {
        Ok(out) if out.status.code() != Some(99) && !String::from_utf8_lossy(&out.stderr).contains("unshare:") => {
            Output::new(out, p.root().to_path_buf())
        }
        _ => {
            eprintln!("skipped: no mount namespace with a tmpfs here (needs root and `unshare`)");
            return;
        }
    };
    out.success().assert_ran("t");
    out.stderr_has("could not save state in `")
        .stderr_has("No space left on device")
        .stderr_has("the tasks' own work is kept");
    assert_eq!(p.read("out.txt"), "one\n");
    runs_again_then_skips(&p);
}
