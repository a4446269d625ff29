//! Output integrity: parallel tasks' lines are never torn or mixed, and
//! binary output or huge lines pass through without breaking mtr.

use std::collections::HashMap;

use crate::common::*;

/// Raw stdout and stderr of `mtr ARGS` (task output need not be UTF-8).
fn raw(p: &Project, args: &[&str]) -> std::process::Output {
    let child = p.mtr(args).spawn();
    let out = child.wait_with_output().expect("mtr runs");
    assert!(
        out.status.success(),
        "mtr {args:?} failed\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Two tasks at once, each writing thousands of long lines (awk buffers
/// its output, so lines arrive split across reads): every line mtr prints
/// is one whole line of one task, under that task's prefix, and each
/// task's lines all arrive, in order.
#[test]
fn parallel_tasks_lines_are_never_torn_or_mixed() {
    const LINES: usize = 3000;
    let task = |name: &str| {
        format!(
            "[tasks.{name}]\nrun = '''awk 'BEGIN {{ s = \"\"; for (i = 0; i < 3000; i++) s = s \"x\"; \
             for (i = 0; i < {LINES}; i++) {{ printf \"{name}:%d:%s:end\\n\", i, substr(s, 1, 1 + (i * 7919) % 3000) }} }}' '''\n\n"
        )
    };
    let config = format!(
        "{}{}[tasks.both]\ndeps = [\"one\", \"two\"]\n",
        task("one"),
        task("two")
    );
    let p = Project::new().file("montage.toml", &config);
    let out = p.mtr(&["-j", "2", "both"]).output();
    out.success();
    let mut next: HashMap<&str, usize> = HashMap::new();
    for line in out.stdout.lines() {
        let (prefix, payload) = line
            .split_once(" | ")
            .unwrap_or_else(|| panic!("an unprefixed line: {:.80}", line));
        let owner = prefix.trim_end();
        let mut fields = payload.split(':');
        let (name, i, xs, end) = (fields.next(), fields.next(), fields.next(), fields.next());
        assert_eq!(name, Some(owner), "a line under another task's prefix: {:.80}", line);
        assert_eq!(end, Some("end"), "a torn line: {:.80}", line);
        assert_eq!(fields.next(), None, "two lines in one: {:.80}", line);
        let i: usize = i.and_then(|i| i.parse().ok()).expect("a line number");
        let want = 1 + (i * 7919) % 3000;
        assert!(
            xs.is_some_and(|x| x.len() == want && x.bytes().all(|b| b == b'x')),
            "line {i} of `{owner}` is not whole"
        );
        let n = next.entry(if owner == "one" { "one" } else { "two" }).or_default();
        assert_eq!(i, *n, "`{owner}` lines out of order or lost");
        *n += 1;
    }
    assert_eq!(next.get("one"), Some(&LINES), "every line of `one`");
    assert_eq!(next.get("two"), Some(&LINES), "every line of `two`");
}

/// Binary output (NUL bytes, invalid UTF-8, CRs, no final newline) reaches
/// stdout byte for byte when redirected, and mtr's own lines stay intact.
#[test]
fn binary_output_passes_through_unchanged() {
    let blob: Vec<u8> = (0..200_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .chain([0xff, 0xfe, 0, b'\r'])
        .collect();
    let p = Project::new().file(
        "montage.toml",
        "[tasks.dump]\nrun = \"cat blob.bin\"\n\n[tasks.noise]\nrun = \"cat blob.bin >&2\"\n",
    );
    std::fs::write(p.path("blob.bin"), &blob).unwrap();
    let out = raw(&p, &["dump"]);
    assert!(out.stdout == blob, "stdout differs from what the task wrote");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.lines().any(|l| l.starts_with("✓ dump (")), "{stderr}");
    // On stderr mtr's status line follows the task's: it starts a line of its own.
    let out = raw(&p, &["noise"]);
    let at = out
        .stderr
        .windows(blob.len())
        .position(|w| w == blob)
        .expect("stderr holds the task's bytes unchanged");
    let after = String::from_utf8_lossy(&out.stderr[at + blob.len()..]);
    assert!(after.starts_with('\n'), "{after}");
    assert!(after.lines().any(|l| l.starts_with("✓ noise (")), "{after}");
}

/// A 10 MB line without a newline, alone and next to another task: passed
/// on whole. A 40 MB one (past the 16 MiB a line is held for) arrives
/// complete too, in pieces, with memory bounded.
#[test]
fn very_long_lines_pass_through() {
    let p = Project::new().file(
        "montage.toml",
        r#"
[tasks.long]
run = "head -c 10000000 /dev/zero | tr '\\0' a"

[tasks.longer]
run = "head -c 40000000 /dev/zero | tr '\\0' b"

[tasks.short]
run = "echo short"

[tasks.both]
deps = ["long", "short"]
"#,
    );
    let out = raw(&p, &["long"]);
    assert_eq!(out.stdout.len(), 10_000_000);
    assert!(out.stdout.iter().all(|b| *b == b'a'));
    let out = raw(&p, &["longer"]);
    assert_eq!(out.stdout.len(), 40_000_000);
    assert!(out.stdout.iter().all(|b| *b == b'b'));
    let out = raw(&p, &["-j", "2", "both"]);
    let text = String::from_utf8(out.stdout).expect("text");
    let mut lines: Vec<&str> = text.lines().collect();
    lines.sort_by_key(|l| l.len());
    assert_eq!(lines.len(), 2, "one line per task");
    assert_eq!(lines[0], "short | short");
    assert_eq!(lines[1].len(), "long  | ".len() + 10_000_000);
    assert!(lines[1].starts_with("long  | aaaa"));
}

/// Millions of short lines as fast as a task can write them.
#[test]
fn a_task_flooding_output_does_not_hang_mtr() {
    let p = Project::new().file("montage.toml", "[tasks.flood]\nrun = \"yes mtr | head -n 2000000\"\n");
    let out = p.run(&["flood"]);
    out.success();
    assert_eq!(out.stdout.len(), 2_000_000 * 4);
}

/// `-v` says why each task runs, as `--explain` does.
#[test]
fn verbose_says_why_each_task_runs() {
    let p = Project::new()
        .file("montage.toml", "[tasks.a]\ninputs = [\"x.txt\"]\nrun = \"echo hi\"\n")
        .file("x.txt", "x\n");
    p.run(&["-v", "a"]).success().stderr_has("[a] running: never ran");
    p.write("x.txt", "y\n");
    p.run(&["a", "--verbose"])
        .success()
        .stderr_has("[a] running: inputs changed: modified `x.txt`");
}
