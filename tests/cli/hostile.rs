//! Hostile trees and configs: symlink loops and links out of the root,
//! unreadable files and directories, names that are not UTF-8, inputs that
//! change while a task runs, variables nested absurdly deep.
//!
//! The 2 GB input (memory stays flat) and the 100,000-file tree are
//! measured by `scripts/hostile-tree.sh`, not here: they take seconds of IO.

use std::time::Duration;

use crate::common::*;

/// Symlinks are entries hashed by their target path: loops are harmless,
/// links out of the root are never followed (a change behind them is not
/// seen, pointing them elsewhere is).
#[cfg(unix)]
#[test]
fn symlink_loops_and_links_out_of_the_root_are_hashed_not_followed() {
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("data.txt"), "outside 1\n").unwrap();
    let p = Project::new()
        .file(
            "montage.toml",
            "[tasks.t]\ninputs = [\"**\", \"linked-dir/**\", \"dir-link\"]\nrun = \"echo ran\"\n",
        )
        .file("src/a.txt", "a\n")
        .dir("dir");
    p.symlink("loop", "loop");
    p.symlink("ping", "pong");
    p.symlink("pong", "ping");
    p.symlink("..", "dir/up");
    p.symlink(".", "dir/self");
    p.symlink("/", "dir/root");
    let data = outside.path().join("data.txt");
    p.symlink(data.to_str().unwrap(), "ext.txt");
    p.symlink(outside.path().to_str().unwrap(), "linked-dir");
    p.symlink(outside.path().to_str().unwrap(), "dir-link");
    let out = p.run(&["t"]);
    out.success().assert_ran("t");
    p.run(&["t"]).success().assert_up_to_date("t");
    // What a link points to is not an input: it is outside the root.
    std::fs::write(&data, "outside 2, changed\n").unwrap();
    p.run(&["t"]).success().assert_up_to_date("t");
    // Where it points is.
    p.symlink(outside.path().join("other.txt").to_str().unwrap(), "ext.txt");
    p.run(&["--explain", "t"])
        .success()
        .assert_ran("t")
        .stderr_has("inputs changed: modified `ext.txt`");
}

/// Runs mtr so that file permissions apply: as `nobody`, with the project
/// handed over, when the tests run as root (root reads a mode-000 file);
/// as ourselves otherwise.
#[cfg(unix)]
fn run_restricted(p: &Project, args: &[&str]) -> Output {
    use std::os::unix::fs::MetadataExt;
    // A file this process creates is owned by who we are.
    let me = tempfile::tempfile().unwrap().metadata().unwrap().uid();
    if me == 0 {
        p.chmod(".", 0o755);
        p.chown_all(65534, 65534);
        p.mtr(args).user(65534, 65534).output()
    } else {
        p.run(args)
    }
}

#[cfg(unix)]
#[test]
fn an_unreadable_input_file_is_an_error_naming_it() {
    let p = Project::new()
        .file("montage.toml", "[tasks.t]\ninputs = [\"src/**\"]\nrun = \"echo ran\"\n")
        .file("src/ok.txt", "ok\n")
        .file("src/locked.txt", "secret\n");
    let out = run_restricted(&p, &["--version"]);
    if !out.stderr.is_empty() || out.code != 0 {
        eprintln!("skipped: cannot run mtr as an unprivileged user here\n{out}");
        return;
    }
    p.chmod("src/locked.txt", 0o000);
    let out = run_restricted(&p, &["t"]);
    p.chmod("src/locked.txt", 0o644);
    out.code(1);
    assert!(out.failed("t"), "{out}");
    out.stderr_has("cannot read `src/locked.txt`: Permission denied");
    assert!(!out.stdout.contains("ran"), "the task did not run\n{out}");
}

#[cfg(unix)]
#[test]
fn an_unreadable_input_directory_is_an_error_naming_it() {
    let p = Project::new()
        .file("montage.toml", "[tasks.t]\ninputs = [\"src/**\"]\nrun = \"echo ran\"\n")
        .file("src/ok.txt", "ok\n")
        .file("src/private/key.txt", "secret\n");
    let out = run_restricted(&p, &["--version"]);
    if !out.stderr.is_empty() || out.code != 0 {
        eprintln!("skipped: cannot run mtr as an unprivileged user here\n{out}");
        return;
    }
    p.chmod("src/private", 0o000);
    let out = run_restricted(&p, &["t"]);
    p.chmod("src/private", 0o755);
    out.code(1);
    assert!(out.failed("t"), "{out}");
    out.stderr_has("cannot read `src/private`: Permission denied");
}

/// File names that are not UTF-8 are inputs like any other: hashed (not
/// "not found" under a lossy name), told apart from each other, named in
/// explanations with `\xNN`.
#[cfg(unix)]
#[test]
fn inputs_with_names_that_are_not_utf8_work() {
    use std::os::unix::ffi::OsStrExt;
    let p = Project::new().file(
        "montage.toml",
        "[tasks.t]\ninputs = [\"src/**\"]\nrun = \"cat src/*\"\n",
    );
    let e9 = p.path("src").join(std::ffi::OsStr::from_bytes(b"caf\xe9.txt"));
    let ff = p.path("src").join(std::ffi::OsStr::from_bytes(b"caf\xff.txt"));
    std::fs::create_dir_all(p.path("src")).unwrap();
    std::fs::write(&e9, "latin-1 name\n").unwrap();
    std::fs::write(&ff, "another name\n").unwrap();
    let out = p.run(&["t"]);
    out.success().assert_ran("t");
    assert!(
        out.stdout.contains("latin-1 name") && out.stdout.contains("another name"),
        "{out}"
    );
    p.run(&["t"]).success().assert_up_to_date("t");
    std::fs::write(&ff, "changed\n").unwrap();
    p.run(&["--explain", "t"])
        .success()
        .assert_ran("t")
        .stderr_has("inputs changed: modified `src/caf\\xff.txt`");
    p.run(&["t"]).success().assert_up_to_date("t");
}

/// An input edited while its task runs: the run is not recorded (it saw the
/// old content), so the next run runs it again, on the new content.
#[test]
fn an_input_changed_while_its_task_runs_is_not_recorded() {
    let p = Project::new()
        .file(
            "montage.toml",
            "[tasks.t]\ninputs = [\"src/**\"]\n\
             run = \"cat src/a.txt > seen.txt; touch started; while [ ! -f go ]; do sleep 0.02; done\"\n",
        )
        .file("src/a.txt", "version 1\n");
    let child = p.mtr(&["t"]).spawn();
    assert!(p.wait_for_file("seen.txt", Duration::from_secs(20)), "the task started");
    assert!(wait_until(Duration::from_secs(20), || p.exists("started")));
    p.write("src/a.txt", "version 2, written while the task ran\n");
    p.write("go", "go");
    let out = wait_with_timeout(child, p.root(), Duration::from_secs(30));
    out.success()
        .stderr_has("input `src/a.txt` changed while `t` ran; it will run again next time");
    assert_eq!(p.read("seen.txt"), "version 1\n");
    let out = p.run(&["--explain", "t"]);
    out.success().assert_ran("t");
    assert_eq!(p.read("seen.txt"), "version 2, written while the task ran\n");
    p.run(&["t"]).success().assert_up_to_date("t");
}

/// A task that rewrites files its globs take as inputs, with the same
/// content (its own output under `**`, a generated file): its run is
/// recorded, so it is up to date next time. (Its run takes long enough
/// next to finding its three inputs for them to be checked again after
/// it.)
#[test]
fn an_input_rewritten_with_the_same_content_is_recorded() {
    let p = Project::new()
        .file(
            "montage.toml",
            "[tasks.b]\ninputs = [\"**\"]\noutputs = [\"dist/out.txt\"]\n\
             run = \"mkdir -p dist && cat src.txt > dist/out.txt && cp src.txt copy.txt && sleep 0.2\"\n",
        )
        .file("src.txt", "source\n")
        .file("copy.txt", "source\n");
    p.run(&["b"]).success().assert_ran("b");
    // Now `dist/out.txt` is an input too: a new file, so it runs once more.
    let out = p.run(&["b"]);
    out.success().assert_ran("b");
    assert!(!out.stderr.contains("changed while"), "{out}");
    p.run(&["b"]).success().assert_up_to_date("b");
    // A rewrite with other content is still not recorded.
    p.write("src.txt", "source 2\n");
    p.run(&["b"])
        .success()
        .stderr_has("changed while `b` ran; it will run again next time");
    p.run(&["b"]).success().assert_ran("b");
    p.run(&["b"]).success().assert_up_to_date("b");
}

/// A run is recorded against its inputs as hashed before it, whether or
/// not they are checked again after it (a quick run next to many inputs
/// is not): an input the run changes, and leaves so, makes the next run
/// run the task again, on what it holds now.
#[test]
fn an_input_a_run_changes_runs_the_task_again_next_time() {
    let mut p = Project::new().file(
        "montage.toml",
        "[tasks.t]\ninputs = [\"src/**\"]\n\
         run = \"cat src/a.txt > seen.txt; grep -q more src/a.txt || echo more >> src/a.txt\"\n",
    );
    for i in 0..2000 {
        p = p.file(&format!("src/d{}/f{i}.txt", i % 40), "x\n");
    }
    let p = p.file("src/a.txt", "one\n");
    p.run(&["t"]).success().assert_ran("t");
    assert_eq!(p.read("seen.txt"), "one\n");
    p.run(&["--explain", "t"])
        .success()
        .assert_ran("t")
        .stderr_has("inputs changed: modified `src/a.txt`");
    assert_eq!(p.read("seen.txt"), "one\nmore\n");
    p.run(&["t"]).success().assert_up_to_date("t");
}

/// Variables that use variables 10,000 levels deep: a diagnostic, not a
/// stack overflow.
#[test]
fn variables_nested_absurdly_deep_are_an_error_not_a_crash() {
    let mut config = String::from("[vars]\n");
    for i in 0..10_000 {
        config.push_str(&format!("v{i} = \"{{{{ v{} }}}}\"\n", i + 1));
    }
    config.push_str("v10000 = \"end\"\n\n[tasks.t]\nrun = \"echo {{ v0 }}\"\n");
    let p = Project::new().file("montage.toml", &config);
    let out = p.run(&["t"]);
    out.code(2);
    out.stderr_has("more than 100 levels deep");
}
