//! A project run with the recording `docker`/`kubectl` shims (tests/shims)
//! first on PATH, shared by the test binaries that check typed actions'
//! argv: each test binary uses part of it.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A project in a temp dir; the shims' log and state live next to it.
pub struct Shimmed {
    pub dir: tempfile::TempDir,
    root: PathBuf,
    log: PathBuf,
    /// Flags the shims read (`shim_flag`) and what they keep (images).
    pub state: PathBuf,
}

impl Shimmed {
    /// A copy of examples/montage-ai.
    pub fn montage_ai() -> Shimmed {
        let g = Shimmed::empty();
        copy_dir(&repo().join("examples/montage-ai"), g.root());
        g
    }

    pub fn empty() -> Shimmed {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("shim.log");
        let state = dir.path().join("shim-state");
        // The shims' files live next to the project, not in it.
        let root = dir.path().join("project");
        std::fs::create_dir_all(&root).unwrap();
        Shimmed { dir, root, log, state }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn write(&self, rel: &str, text: &str) -> &Shimmed {
        let p = self.root.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
        self
    }

    pub fn mtr(&self, args: &[&str]) -> Output {
        self.mtr_env(args, &[])
    }

    /// `mtr ARGS` with `env` set last (a `PATH` there replaces the shims').
    pub fn mtr_env(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        let path = format!(
            "{}:{}",
            repo().join("tests/shims").display(),
            std::env::var("PATH").unwrap()
        );
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_mtr"));
        cmd.args(args)
            .current_dir(&self.root)
            .env("PATH", path)
            .env("NO_COLOR", "1")
            .env("SHIM_LOG", &self.log)
            .env("SHIM_STATE", &self.state)
            .env_remove("REGISTRY")
            .env_remove("PLATFORMS")
            .env_remove("GITHUB_ACTIONS");
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.output().unwrap()
    }

    /// The shim calls so far, then clears the log.
    pub fn calls(&self) -> Vec<String> {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let _ = std::fs::remove_file(&self.log);
        text.lines().map(str::to_owned).collect()
    }

    pub fn shim_flag(&self, name: &str, on: bool) {
        std::fs::create_dir_all(&self.state).unwrap();
        let p = self.state.join(name);
        if on {
            std::fs::write(p, "").unwrap();
        } else {
            let _ = std::fs::remove_file(p);
        }
    }
}

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn copy_dir(from: &Path, to: &Path) {
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name();
        if name == ".mtr" || name == "__pycache__" || name == ".cache" {
            continue;
        }
        let target = to.join(&name);
        if entry.file_type().unwrap().is_dir() {
            std::fs::create_dir_all(&target).unwrap();
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// Asserts that mtr succeeded; its stderr.
#[track_caller]
pub fn ok(out: &Output) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        out.status.success(),
        "mtr failed ({:?}):\n{stderr}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout)
    );
    stderr
}

/// Asserts that mtr failed; its stderr.
#[track_caller]
pub fn fails(out: &Output) -> String {
    assert!(!out.status.success(), "mtr should have failed");
    stderr(out)
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}
