//! State that survives faults: `kill -9` at random moments, many `mtr`
//! processes at once, SIGINT/SIGTERM with children that ignore them.

use std::time::{Duration, Instant};

use crate::common::*;

/// A small deterministic generator (xorshift64*), so a failing trial can be
/// replayed with `MTR_CRASH_SEED`.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

fn env_number(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

/// Every task writes its completion marker last, after a pause, from what
/// it read: `out/X.done` holds the content the run saw. `e` declares its
/// marker as an output; the others do not, so only mtr's records decide.
const CRASH_CONFIG: &str = r#"
[tasks.a]
inputs = ["src/a.txt"]
run = "rm -f out/a.done; sleep 0.03; cat src/a.txt > out/a.part; sleep 0.03; mv out/a.part out/a.done"

[tasks.b]
inputs = ["src/b.txt"]
run = "rm -f out/b.done; sleep 0.05; cat src/b.txt > out/b.part; mv out/b.part out/b.done"

[tasks.c]
deps = ["a", "b"]
inputs = ["src/c.txt"]
run = "rm -f out/c.done; sleep 0.03; cat out/a.done out/b.done src/c.txt > out/c.part; sleep 0.02; mv out/c.part out/c.done"

[tasks.d]
deps = ["c"]
inputs = []
run = "rm -f out/d.done; sleep 0.02; cat out/c.done > out/d.part; mv out/d.part out/d.done"

[tasks.e]
inputs = ["src/a.txt"]
outputs = ["out/e.txt"]
run = "rm -f out/e.txt; sleep 0.04; cp src/a.txt out/e.part; mv out/e.part out/e.txt"
"#;

/// What each task's marker must hold for the current inputs.
fn expected_markers(p: &Project) -> Vec<(&'static str, &'static str, String)> {
    let a = p.read("src/a.txt");
    let b = p.read("src/b.txt");
    let c = format!("{a}{b}{}", p.read("src/c.txt"));
    vec![
        ("a", "out/a.done", a.clone()),
        ("b", "out/b.done", b),
        ("c", "out/c.done", c.clone()),
        ("d", "out/d.done", c),
        ("e", "out/e.txt", a),
    ]
}

/// SIGKILLs every process that carries `token` in its environment (the
/// task processes a killed mtr left behind) and waits until they are gone.
#[cfg(target_os = "linux")]
fn kill_leftovers(token: &str) {
    use nix::sys::signal::{Signal, kill};
    use nix::unistd::Pid;

    let needle = format!("MTR_CRASH_TOKEN={token}");
    let find = || -> Vec<i32> {
        let Ok(dir) = std::fs::read_dir("/proc") else {
            return Vec::new();
        };
        dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
            .filter(|pid| {
                std::fs::read(format!("/proc/{pid}/environ"))
                    .is_ok_and(|env| env.split(|b| *b == 0).any(|kv| kv == needle.as_bytes()))
            })
            .filter(|pid| !process_gone(*pid))
            .collect()
    };
    let gone = wait_until(Duration::from_secs(10), || {
        let pids = find();
        for pid in &pids {
            let _ = kill(Pid::from_raw(*pid), Signal::SIGKILL);
        }
        pids.is_empty()
    });
    assert!(gone, "task processes of a killed mtr would not die");
}

/// `kill -9` of mtr at random moments: the state file always loads, and a
/// task recorded as up to date always has the marker its last command
/// writes last, for the current inputs. Inputs flip between two contents,
/// so an old record's fingerprint comes back while a killed run's partial
/// work is on disk — exactly the case a stale record would get wrong.
///
/// 20 trials here; `scripts/crash-test.sh` runs hundreds
/// (`MTR_CRASH_TRIALS=300`, optionally `MTR_CRASH_SEED=N` to replay).
#[cfg(target_os = "linux")]
#[test]
fn kill_9_at_random_moments_never_leaves_a_stale_or_broken_state() {
    use nix::sys::signal::{Signal, kill};
    use nix::unistd::Pid;

    let trials = env_number("MTR_CRASH_TRIALS").unwrap_or(20);
    let seed = env_number("MTR_CRASH_SEED").unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1)
            | 1
    });
    eprintln!("kill -9 trials: {trials}, MTR_CRASH_SEED={seed}");
    let mut rng = Rng(seed);
    let p = Project::new()
        .file("montage.toml", CRASH_CONFIG)
        .file("src/a.txt", "a1\n")
        .file("src/b.txt", "b1\n")
        .file("src/c.txt", "c1\n")
        .dir("out");
    let token = format!("{}-{seed}", std::process::id());
    let (mut killed, mut completed, mut skips_checked) = (0, 0, 0);
    for trial in 0..trials {
        // Flip one input (so something runs), sometimes more.
        let flip = rng.below(3);
        for (i, (file, stem)) in [("src/a.txt", "a"), ("src/b.txt", "b"), ("src/c.txt", "c")]
            .into_iter()
            .enumerate()
        {
            if i as u64 == flip {
                let next = if p.read(file).ends_with("1\n") { 2 } else { 1 };
                p.write(file, &format!("{stem}{next}\n"));
            } else if rng.chance(30) {
                p.write(file, &format!("{stem}{}\n", 1 + rng.below(2)));
            }
        }
        let mut args = vec!["-j", "2", "d", "e"];
        if rng.chance(15) {
            args.insert(0, "-B");
        }
        let child = p.mtr(&args).env("MTR_CRASH_TOKEN", &token).spawn();
        let pid = Pid::from_raw(child.id() as i32);
        // Up to a bit past a whole run (about 300 ms), so some runs finish
        // and commit.
        std::thread::sleep(Duration::from_millis(rng.below(400)));
        let _ = kill(pid, Signal::SIGKILL);
        let out = wait_with_timeout(child, p.root(), Duration::from_secs(60));
        if out.code == -1 {
            killed += 1;
        } else {
            completed += 1;
        }
        kill_leftovers(&token);
        let ctx = format!("trial {trial} (MTR_CRASH_SEED={seed})");
        let plan = p.run(&["--dry-run", "d", "e"]);
        plan.success();
        assert!(
            !plan.stderr.contains("warning"),
            "{ctx}: the state must load without a warning\n{plan}"
        );
        for (task, marker, want) in expected_markers(&p) {
            if plan.stdout.lines().any(|l| l == format!("{task}: up to date")) {
                skips_checked += 1;
                let got = std::fs::read_to_string(p.path(marker)).ok();
                assert_eq!(
                    got.as_deref(),
                    Some(want.as_str()),
                    "{ctx}: `{task}` would be skipped, but its last run did not finish for these inputs\n{plan}"
                );
            }
        }
        // Now and then a full run: afterwards everything is right and
        // a second run skips everything.
        if rng.chance(25) {
            p.run(&["-j", "2", "d", "e"]).success();
            for (task, marker, want) in expected_markers(&p) {
                assert_eq!(p.read(marker), want, "{ctx}: `{task}` after a full run");
            }
            let again = p.run(&["d", "e"]);
            again.success();
            for task in ["a", "b", "c", "d", "e"] {
                again.assert_up_to_date(task);
            }
        }
    }
    eprintln!("{killed} runs killed, {completed} finished, {skips_checked} skips checked against their markers");
    let left: Vec<String> = p.mtr_dir_entries().into_iter().filter(|n| n.contains("tmp")).collect();
    assert!(
        left.is_empty(),
        "temporary files of killed runs are cleaned up: {left:?}"
    );
}

/// 20 `mtr` processes at once, some running the same tasks and some
/// others: every run succeeds, the state loads, every task is recorded.
#[test]
fn twenty_concurrent_mtr_processes_keep_every_success() {
    let mut config = String::new();
    for i in 0..10 {
        config.push_str(&format!(
            "[tasks.t{i}]\ninputs = [\"src/{i}.txt\"]\nrun = \"cat src/{i}.txt > out/{i}.txt\"\n\n"
        ));
    }
    config.push_str(
        "[tasks.all]\ndeps = [\"t0\", \"t1\", \"t2\", \"t3\", \"t4\", \"t5\", \"t6\", \"t7\", \"t8\", \"t9\"]\n",
    );
    let mut p = Project::new().file("montage.toml", &config).dir("out");
    for i in 0..10 {
        p = p.file(&format!("src/{i}.txt"), &format!("{i}\n"));
    }
    let children: Vec<_> = (0..20)
        .map(|i| match i % 4 {
            // the same task as another process
            0 => p.mtr(&["t0"]).spawn(),
            // everything
            1 => p.mtr(&["all"]).spawn(),
            // two different tasks
            _ => p.mtr(&[&format!("t{}", i % 10), &format!("t{}", (i + 3) % 10)]).spawn(),
        })
        .collect();
    for child in children {
        let out = wait_with_timeout(child, p.root(), Duration::from_secs(120));
        out.success();
        assert!(!out.stderr.contains("warning"), "{out}");
    }
    let out = p.run(&["all"]);
    out.success();
    assert!(!out.stderr.contains("warning"), "{out}");
    for i in 0..10 {
        out.assert_up_to_date(&format!("t{i}"));
    }
    let left = p.mtr_dir_entries_but_delta();
    assert_eq!(
        left,
        [".gitignore", "config", "lock", "state"],
        "no temporary files are left behind"
    );
}

/// Two tasks at once whose shells ignore the signal and keep a background
/// sleeper: mtr forwards the signal to both process groups, SIGKILLs them
/// after the grace period, exits 128+N, and records the task that finished
/// before but not the interrupted ones.
#[cfg(target_os = "linux")]
fn signal_stops_every_child_group(signal: nix::sys::signal::Signal, code: i32) {
    use nix::sys::signal::{Signal, kill};
    use nix::unistd::Pid;

    let stubborn = |name: &str| {
        format!(
            "[tasks.{name}]\ndeps = [\"first\"]\ninputs = []\n\
             run = \"trap '' INT TERM; sleep 1000 & echo $! > {name}.bg; echo $$ > {name}.pid; while :; do sleep 0.1; done\"\n\n"
        )
    };
    let config = format!(
        "[tasks.first]\ninputs = []\nrun = \"echo first\"\n\n{}{}[tasks.both]\ndeps = [\"one\", \"two\"]\n",
        stubborn("one"),
        stubborn("two")
    );
    let p = Project::new().file("montage.toml", &config);
    let child = p.mtr(&["-j", "4", "both"]).spawn();
    let mtr = Pid::from_raw(child.id() as i32);
    let started = ["one.pid", "two.pid", "one.bg", "two.bg"]
        .iter()
        .all(|f| p.wait_for_file(f, Duration::from_secs(20)));
    if !started {
        let _ = kill(mtr, Signal::SIGKILL);
        panic!(
            "the tasks did not start\n{}",
            wait_with_timeout(child, p.root(), Duration::from_secs(5))
        );
    }
    let pids: Vec<i32> = ["one.pid", "two.pid", "one.bg", "two.bg"]
        .iter()
        .map(|f| p.read(f).trim().parse().expect("a pid"))
        .collect();
    let sent = Instant::now();
    kill(mtr, signal).unwrap();
    let out = wait_for_exit(child, p.root(), Duration::from_secs(30));
    let took = sent.elapsed();
    let gone = wait_until(Duration::from_secs(10), || pids.iter().all(|pid| process_gone(*pid)));
    if !gone {
        for pid in &pids {
            let _ = kill(Pid::from_raw(*pid), Signal::SIGKILL);
        }
    }
    let out = out.unwrap_or_else(|out| panic!("mtr did not exit after {signal}\n{out}"));
    out.code(code);
    assert!(gone, "a child outlived mtr after {signal}\n{out}");
    // The shells ignore the signal: they only die of the SIGKILL that
    // follows the grace period (3 s).
    assert!(
        took >= Duration::from_secs(2),
        "SIGKILL came only after the grace period ({took:?})"
    );
    assert!(out.failed("one") && out.failed("two"), "{out}");
    let plan = p.run(&["--dry-run", "both"]);
    plan.success();
    assert!(plan.stdout.contains("first: up to date"), "{plan}");
    assert!(plan.stdout.contains("one: would run: never ran"), "{plan}");
    assert!(plan.stdout.contains("two: would run: never ran"), "{plan}");
}

#[cfg(target_os = "linux")]
#[test]
fn sigterm_stops_every_child_group_even_one_that_ignores_it_and_exits_143() {
    signal_stops_every_child_group(nix::sys::signal::Signal::SIGTERM, 143);
}

#[cfg(target_os = "linux")]
#[test]
fn sigint_stops_every_child_group_even_one_that_ignores_it_and_exits_130() {
    signal_stops_every_child_group(nix::sys::signal::Signal::SIGINT, 130);
}
