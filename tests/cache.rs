//! The shared remote cache (`[cache]`, SPEC section 3) against a real OCI
//! registry: Debian's `docker-registry` (the CNCF distribution server),
//! started on a loopback port for each test with its storage in a temp dir.
//!
//! Two separate checkouts of one project (each with its own `.mtr/`) play
//! CI and a laptop: the first runs and pushes, the second restores.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const REGISTRY_BINARIES: &[&str] = &["/usr/bin/docker-registry", "/usr/sbin/docker-registry"];
const REPOSITORY: &str = "team/mtr-cache";

/// A registry serving on 127.0.0.1:`port`, killed when dropped.
struct Registry {
    child: Option<Child>,
    port: u16,
    dir: tempfile::TempDir,
}

impl Registry {
    /// Starts one, or says why the test is skipped and returns `None`.
    fn start() -> Option<Registry> {
        Registry::start_with(None)
    }

    /// With `htpasswd` (file contents), every request needs those
    /// credentials.
    fn start_with(htpasswd: Option<&str>) -> Option<Registry> {
        let Some(binary) = REGISTRY_BINARIES.iter().find(|b| Path::new(b).exists()) else {
            // Written to the real stderr (not the captured one) so a
            // skipped run is visible in the test log.
            let _ = writeln!(
                std::io::stderr(),
                "SKIPPED: `docker-registry` is not installed (apt-get install docker-registry); remote cache tests did not run"
            );
            return None;
        };
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let auth = match htpasswd {
            Some(contents) => {
                let path = dir.path().join("htpasswd");
                std::fs::write(&path, contents).unwrap();
                format!(
                    "auth:\n  htpasswd:\n    realm: mtr-test\n    path: {}\n",
                    path.display()
                )
            }
            None => String::new(),
        };
        let config = format!(
            "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\n{auth}http:\n  addr: 127.0.0.1:{port}\n",
            dir.path().join("storage").display()
        );
        let config_path = dir.path().join("config.yml");
        std::fs::write(&config_path, config).unwrap();
        let log = std::fs::File::create(dir.path().join("registry.log")).unwrap();
        let child = Command::new(binary)
            .arg("serve")
            .arg(&config_path)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start `{binary}`: {e}"));
        let registry = Registry {
            child: Some(child),
            port,
            dir,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while !registry.answers() {
            assert!(
                Instant::now() < deadline,
                "the registry did not answer on port {port}:\n{}",
                registry.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Some(registry)
    }

    /// Whether `GET /v2/` gets an HTTP answer (200, or 401 with auth).
    fn answers(&self) -> bool {
        let Ok(mut s) = TcpStream::connect(("127.0.0.1", self.port)) else {
            return false;
        };
        let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
        if s.write_all(b"GET /v2/ HTTP/1.0\r\nHost: localhost\r\n\r\n").is_err() {
            return false;
        }
        let mut head = [0u8; 12];
        s.read_exact(&mut head).is_ok() && head.starts_with(b"HTTP/1.")
    }

    fn remote(&self) -> String {
        format!("oci://127.0.0.1:{}/{REPOSITORY}", self.port)
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// The tags of the cache repository, from the registry's storage.
    fn tags(&self) -> Vec<String> {
        let dir = self
            .storage()
            .join("repositories")
            .join(REPOSITORY)
            .join("_manifests/tags");
        let mut tags: Vec<String> = std::fs::read_dir(dir)
            .map(|rd| {
                rd.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        tags.sort();
        tags
    }

    fn storage(&self) -> PathBuf {
        self.dir.path().join("storage/docker/registry/v2")
    }

    /// Flips one byte in every stored blob that contains `needle`; returns
    /// how many were damaged.
    fn tamper(&self, needle: &[u8]) -> usize {
        let mut damaged = 0;
        let mut stack = vec![self.storage().join("blobs")];
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir).unwrap().flatten() {
                let path = entry.path();
                if path.is_dir() {
                    stack.push(path);
                    continue;
                }
                let mut bytes = std::fs::read(&path).unwrap();
                if let Some(at) = bytes.windows(needle.len()).position(|w| w == needle) {
                    bytes[at] ^= 0x20;
                    std::fs::write(&path, bytes).unwrap();
                    damaged += 1;
                }
            }
        }
        damaged
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        self.stop();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A checkout of the project in a temporary directory, with its own `.mtr/`.
struct Project {
    dir: tempfile::TempDir,
}

impl Project {
    fn new(files: &[(&str, &str)]) -> Project {
        let p = Project {
            dir: tempfile::tempdir().unwrap(),
        };
        for (rel, contents) in files {
            p.write(rel, contents);
        }
        p
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    fn write(&self, rel: &str, contents: &str) {
        let path = self.path(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, contents).unwrap();
    }

    fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.path(rel)).unwrap()
    }

    fn exists(&self, rel: &str) -> bool {
        self.path(rel).exists()
    }

    fn remove_dir(&self, rel: &str) {
        std::fs::remove_dir_all(self.path(rel)).unwrap();
    }
}

/// What one `mtr` run did.
struct Output {
    code: i32,
    stdout: String,
    stderr: String,
}

impl std::fmt::Display for Output {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {}\n--- stdout\n{}--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

impl Output {
    #[track_caller]
    fn success(&self) -> &Output {
        assert_eq!(self.code, 0, "{self}");
        self
    }

    #[track_caller]
    fn assert_ran(&self, task: &str) -> &Output {
        let prefix = format!("✓ {task} (");
        assert!(
            self.stderr.lines().any(|l| l.starts_with(&prefix)),
            "`{task}` did not run:\n{self}"
        );
        self
    }

    #[track_caller]
    fn assert_up_to_date(&self, task: &str) -> &Output {
        let line = format!("· {task} up to date");
        assert!(
            self.stderr.lines().any(|l| l == line),
            "`{task}` is not up to date:\n{self}"
        );
        self
    }

    #[track_caller]
    fn stderr_has(&self, text: &str) -> &Output {
        assert!(self.stderr.contains(text), "stderr lacks {text:?}:\n{self}");
        self
    }
}

/// The project both checkouts hold. `build` writes a directory tree (an
/// executable, a private file, binary data), a glob output, a log on both
/// streams, and a marker outside its outputs that only a real run leaves.
fn checkout(remote: &str, cache_extra: &str) -> Project {
    let config = format!(
        r#"[cache]
remote = "{remote}"
insecure = true
timeout = 2
{cache_extra}

[tasks.build]
inputs = ["src/**"]
outputs = ["dist", "gen/*.txt"]
run = [
    "mkdir -p dist/bin gen",
    "cp src/input.txt dist/copy.txt",
    "chmod 600 dist/copy.txt",
    "printf '#!/bin/sh\necho tool\n' > dist/bin/tool",
    "chmod 755 dist/bin/tool",
    "head -c 65536 /dev/urandom > dist/data.bin",
    "echo generated-output > gen/one.txt",
    "echo 'building for real'",
    "echo 'a note on stderr' >&2",
    "touch ran-build.marker",
]

[tasks.docs]
inputs = ["src/**"]
outputs = ["site/index.html"]
run = ["mkdir -p site", "echo '<h1>docs</h1>' > site/index.html", "touch ran-docs.marker"]

[tasks.check]
deps = ["build", "docs"]
run = "test -x dist/bin/tool && cat dist/copy.txt"
"#
    );
    Project::new(&[("montage.toml", &config), ("src/input.txt", "the input\n")])
}

/// `mtr ARGS` with credentials looked up only where the test says.
fn mtr(p: &Project, docker_config: &Path, args: &[&str]) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_mtr"))
        .args(args)
        .current_dir(p.path(""))
        .env("NO_COLOR", "1")
        .env("DOCKER_CONFIG", docker_config)
        .env_remove("GITHUB_ACTIONS")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    Output {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn no_credentials() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

fn restored(out: &Output, task: &str) -> bool {
    let prefix = format!("✓ {task} restored from cache (");
    out.stderr.lines().any(|l| l.starts_with(&prefix))
}

fn warnings(out: &Output) -> usize {
    out.stderr.lines().filter(|l| l.starts_with("warning:")).count()
}

fn mode(p: &Project, rel: &str) -> u32 {
    std::fs::metadata(p.path(rel)).unwrap().permissions().mode() & 0o777
}

#[test]
fn a_second_checkout_restores_what_the_first_pushed() {
    let Some(registry) = Registry::start() else { return };
    let creds = no_credentials();
    let ci = checkout(&registry.remote(), "");
    let out = mtr(&ci, creds.path(), &["check"]);
    out.success().assert_ran("build").assert_ran("docs");
    assert_eq!(warnings(&out), 0, "{out}");
    assert_eq!(
        registry.tags().len(),
        2,
        "one artifact per cacheable task: {:?}",
        registry.tags()
    );

    let laptop = checkout(&registry.remote(), "");
    let out = mtr(&laptop, creds.path(), &["check", "--explain"]);
    out.success();
    assert!(restored(&out, "build") && restored(&out, "docs"), "{out}");
    assert_eq!(warnings(&out), 0, "{out}");
    assert!(!laptop.exists("ran-build.marker"), "the command ran:\n{out}");
    assert!(!laptop.exists("ran-docs.marker"), "the command ran:\n{out}");
    // Byte-identical outputs, modes kept.
    for rel in [
        "dist/copy.txt",
        "dist/bin/tool",
        "dist/data.bin",
        "gen/one.txt",
        "site/index.html",
    ] {
        assert_eq!(
            std::fs::read(laptop.path(rel)).unwrap(),
            std::fs::read(ci.path(rel)).unwrap(),
            "{rel} differs"
        );
    }
    assert_eq!(mode(&laptop, "dist/bin/tool"), 0o755);
    assert_eq!(mode(&laptop, "dist/copy.txt"), 0o600);
    // The log is replayed, each line on the stream it was written to.
    assert!(out.stdout.contains("building for real"), "{out}");
    assert!(out.stderr.contains("a note on stderr"), "{out}");
    out.stderr_has("[build] restored from cache (it would run: never ran)");
    // Dependants run on restored outputs.
    out.assert_ran("check");
    assert!(out.stdout.contains("the input"), "{out}");
    out.stderr_has("2 restored from cache");

    // Recorded like a run: the next run is a plain skip.
    let out = mtr(&laptop, creds.path(), &["build"]);
    out.success().assert_up_to_date("build");
    // Deleted outputs come back from the cache, not from a run.
    laptop.remove_dir("dist");
    let out = mtr(&laptop, creds.path(), &["build"]);
    out.success();
    assert!(restored(&out, "build"), "{out}");
    assert!(!laptop.exists("ran-build.marker"));
    assert_eq!(mode(&laptop, "dist/bin/tool"), 0o755);
}

/// A registry named by host name: mtr, linked statically on x86-64 Linux
/// (scripts/rustc-static), still resolves it (glibc's built-in `files`).
#[test]
fn a_registry_named_by_host_name_is_reached() {
    let Some(registry) = Registry::start() else { return };
    let creds = no_credentials();
    let remote = registry.remote().replace("127.0.0.1", "localhost");
    let ci = checkout(&remote, "");
    let out = mtr(&ci, creds.path(), &["check"]);
    out.success().assert_ran("build").assert_ran("docs");
    assert_eq!(warnings(&out), 0, "{out}");
    assert_eq!(registry.tags().len(), 2, "pushed: {:?}", registry.tags());
    let laptop = checkout(&remote, "");
    let out = mtr(&laptop, creds.path(), &["check"]);
    out.success();
    assert!(restored(&out, "build") && restored(&out, "docs"), "{out}");
}

#[test]
fn a_registry_gone_midway_is_one_warning_and_a_local_run() {
    let Some(mut registry) = Registry::start() else { return };
    let creds = no_credentials();
    let ci = checkout(&registry.remote(), "");
    mtr(&ci, creds.path(), &["check"]).success();
    registry.stop();

    let laptop = checkout(&registry.remote(), "");
    let out = mtr(&laptop, creds.path(), &["check"]);
    out.success().assert_ran("build").assert_ran("docs").assert_ran("check");
    assert_eq!(warnings(&out), 1, "one warning per run, not one per task:\n{out}");
    out.stderr_has("is unavailable")
        .stderr_has("tasks run locally this time");
    assert!(laptop.exists("ran-build.marker") && laptop.exists("ran-docs.marker"));
}

#[test]
fn a_slow_registry_times_out_into_a_local_run() {
    // Accepts connections and never answers.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let held = std::thread::spawn(move || {
        let mut conns = Vec::new();
        for conn in listener.incoming().take(4) {
            conns.push(conn);
        }
        std::thread::sleep(Duration::from_secs(10));
    });
    let creds = no_credentials();
    let p = checkout(&format!("oci://127.0.0.1:{port}/{REPOSITORY}"), "");
    let start = Instant::now();
    let out = mtr(&p, creds.path(), &["build"]);
    out.success().assert_ran("build");
    assert_eq!(warnings(&out), 1, "{out}");
    out.stderr_has("did not answer within 2s");
    assert!(start.elapsed() < Duration::from_secs(8), "took {:?}", start.elapsed());
    drop(held);
}

#[test]
fn a_tampered_blob_is_caught_and_the_next_push_repairs_it() {
    let Some(registry) = Registry::start() else { return };
    let creds = no_credentials();
    let ci = checkout(&registry.remote(), "");
    mtr(&ci, creds.path(), &["build"]).success();
    assert!(registry.tamper(b"generated-output") > 0, "no blob holds the outputs");

    let laptop = checkout(&registry.remote(), "");
    let out = mtr(&laptop, creds.path(), &["build"]);
    out.success().assert_ran("build");
    assert_eq!(warnings(&out), 1, "{out}");
    out.stderr_has("is unusable").stderr_has("digest");
    assert!(laptop.exists("ran-build.marker"));
    assert_eq!(laptop.read("gen/one.txt"), "generated-output\n");
    // Nothing of the damaged artifact was left behind.
    assert!(std::fs::read_dir(laptop.path(".mtr/cache")).map_or(true, |mut d| d.next().is_none()));

    // The laptop's run pushed a fresh artifact under the same tag.
    let third = checkout(&registry.remote(), "");
    let out = mtr(&third, creds.path(), &["build"]);
    out.success();
    assert!(restored(&out, "build"), "{out}");
    assert_eq!(warnings(&out), 0, "{out}");
}

#[test]
fn a_read_only_client_restores_but_never_pushes() {
    let Some(registry) = Registry::start() else { return };
    let creds = no_credentials();
    let laptop = checkout(&registry.remote(), "push = false");
    mtr(&laptop, creds.path(), &["build"]).success().assert_ran("build");
    assert_eq!(registry.tags(), Vec::<String>::new(), "a read-only client pushed");

    let ci = checkout(&registry.remote(), "");
    mtr(&ci, creds.path(), &["build"]).success().assert_ran("build");
    assert_eq!(registry.tags().len(), 1);
    let reader = checkout(&registry.remote(), "push = false");
    let out = mtr(&reader, creds.path(), &["build"]);
    out.success();
    assert!(restored(&out, "build"), "{out}");
}

#[test]
fn a_changed_input_misses_the_cache_and_runs() {
    let Some(registry) = Registry::start() else { return };
    let creds = no_credentials();
    let ci = checkout(&registry.remote(), "");
    mtr(&ci, creds.path(), &["build"]).success();

    let laptop = checkout(&registry.remote(), "");
    laptop.write("src/input.txt", "edited on the laptop\n");
    let out = mtr(&laptop, creds.path(), &["build"]);
    out.success().assert_ran("build");
    assert_eq!(warnings(&out), 0, "a miss is not a problem:\n{out}");
    assert_eq!(laptop.read("dist/copy.txt"), "edited on the laptop\n");
    assert!(laptop.exists("ran-build.marker"));
    assert_eq!(registry.tags().len(), 2, "the new fingerprint was pushed too");
}

#[test]
fn no_cache_neither_reads_nor_writes() {
    let Some(registry) = Registry::start() else { return };
    let creds = no_credentials();
    let ci = checkout(&registry.remote(), "");
    mtr(&ci, creds.path(), &["build", "--no-cache"])
        .success()
        .assert_ran("build");
    assert_eq!(registry.tags(), Vec::<String>::new(), "--no-cache pushed");

    mtr(&ci, creds.path(), &["build", "-B"]).success().assert_ran("build");
    assert_eq!(registry.tags().len(), 1);
    let laptop = checkout(&registry.remote(), "");
    let out = mtr(&laptop, creds.path(), &["build", "--no-cache"]);
    out.success().assert_ran("build");
    assert!(laptop.exists("ran-build.marker"));
}

#[test]
fn docker_login_credentials_are_used() {
    let htpasswd = format!("ci:{}\n", bcrypt::hash("s3cret", 4).unwrap());
    let Some(registry) = Registry::start_with(Some(&htpasswd)) else {
        return;
    };
    // Without credentials: refused, one warning, a local run.
    let anonymous = no_credentials();
    let p = checkout(&registry.remote(), "");
    let out = mtr(&p, anonymous.path(), &["build"]);
    out.success().assert_ran("build");
    assert_eq!(warnings(&out), 1, "{out}");
    out.stderr_has(&format!("docker login 127.0.0.1:{}", registry.port));

    // With what `docker login` writes: pushed, then restored elsewhere.
    let logged_in = tempfile::tempdir().unwrap();
    // base64("ci:s3cret")
    let config = format!(
        r#"{{"auths": {{"127.0.0.1:{}": {{"auth": "Y2k6czNjcmV0"}}}}}}"#,
        registry.port
    );
    std::fs::write(logged_in.path().join("config.json"), config).unwrap();
    let ci = checkout(&registry.remote(), "");
    let out = mtr(&ci, logged_in.path(), &["build"]);
    out.success().assert_ran("build");
    assert_eq!(warnings(&out), 0, "{out}");
    assert_eq!(registry.tags().len(), 1);
    let laptop = checkout(&registry.remote(), "");
    let out = mtr(&laptop, logged_in.path(), &["build"]);
    out.success();
    assert!(restored(&out, "build"), "{out}");
}

#[test]
fn a_malformed_remote_is_a_config_error() {
    let creds = no_credentials();
    let p = checkout("https://127.0.0.1:5000/Team", "");
    let out = mtr(&p, creds.path(), &["build"]);
    assert_eq!(out.code, 2, "{out}");
    out.stderr_has("`[cache] remote`: `https://127.0.0.1:5000/Team` is not an `oci://HOST[:PORT]/REPO` reference")
        .stderr_has("montage.toml");
    assert!(!p.exists("ran-build.marker"));
}
