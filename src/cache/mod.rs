//! The team's shared cache in an OCI registry (`[cache]`, SPEC section 3):
//! a task that declares `outputs` and whose fingerprint is there is not
//! run, its outputs are restored and its log replayed; after a successful
//! run its outputs and log are pushed, tagged with the fingerprint.
//!
//! The cache can only make a run faster: whatever goes wrong (registry
//! unreachable, slow, refusing the credentials, an artifact that fails its
//! digests) is one warning per run and a normal local run. After the
//! registry failed once, the rest of the run does not ask it again.

mod artifact;
mod auth;
mod client;
pub mod reference;

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use artifact::{Item, Meta};
use client::{Failure, Registry};
use reference::Remote;

use crate::config::CacheConfig;
use crate::hashing::Digest;
use crate::report::{Reporter, Verbosity};

/// A connection to the remote cache for one run.
#[derive(Debug)]
pub struct Cache {
    registry: Arc<Registry>,
    push: bool,
    root: PathBuf,
    /// `.mtr/cache`: staging for downloads and restores.
    dir: PathBuf,
    shared: Arc<Shared>,
    pending: Mutex<Vec<tokio::task::JoinHandle<()>>>,
    seq: AtomicUsize,
}

/// What background pushes share with the run: where the warning goes and
/// the switches a failure flips.
#[derive(Debug)]
struct Shared {
    remote: Remote,
    reporter: Arc<Reporter>,
    /// The one warning of the run was given.
    warned: AtomicBool,
    /// The registry failed: no more reads or writes this run.
    offline: AtomicBool,
    /// A push failed: no more pushes this run.
    no_push: AtomicBool,
}

/// What the cache was doing when it failed.
#[derive(Debug, Clone, Copy)]
enum Doing {
    Restore,
    Push,
}

/// The tag of a fingerprint: its full hex (64 characters).
fn tag(fingerprint: &Digest) -> String {
    crate::fingerprint::hex(fingerprint)
}

impl Cache {
    /// The cache at `remote` (the rendered `[cache] remote`), or `None`
    /// after a warning when it cannot be used at all.
    pub fn open(settings: &CacheConfig, remote: &str, root: &Path, reporter: Arc<Reporter>) -> Option<Arc<Cache>> {
        let remote = match Remote::parse(remote) {
            Ok(r) => r,
            Err(why) => {
                reporter.warn(&format!("remote cache disabled: {why}"));
                return None;
            }
        };
        let warned = AtomicBool::new(false);
        let creds = auth::lookup(&remote.registry).unwrap_or_else(|why| {
            reporter.warn(&format!(
                "remote cache: cannot use the docker credentials ({why}); trying without"
            ));
            warned.store(true, Ordering::SeqCst);
            None
        });
        let timeout = Duration::from_secs(settings.timeout_secs.max(1));
        let registry = Registry::new(remote.clone(), settings.insecure, timeout, creds);
        Some(Arc::new(Cache {
            registry: Arc::new(registry),
            push: settings.push,
            root: root.to_path_buf(),
            dir: root.join(".mtr").join("cache"),
            shared: Arc::new(Shared {
                remote,
                reporter,
                warned,
                offline: AtomicBool::new(false),
                no_push: AtomicBool::new(false),
            }),
            pending: Mutex::new(Vec::new()),
            seq: AtomicUsize::new(0),
        }))
    }

    fn offline(&self) -> bool {
        self.shared.offline.load(Ordering::SeqCst)
    }

    /// Whether successful runs are pushed (so their log must be kept).
    pub fn pushes(&self) -> bool {
        self.push && !self.offline() && !self.shared.no_push.load(Ordering::SeqCst)
    }

    /// Restores `task`'s outputs for `fingerprint` when the remote has
    /// them, and returns the log of the run that pushed them (see
    /// [`Reporter::replay`]); `None` on a miss or any failure (the task
    /// then runs).
    pub fn restore(&self, task: &str, fingerprint: &Digest, outputs: &[String]) -> Option<Vec<u8>> {
        if self.offline() {
            return None;
        }
        let start = Instant::now();
        let stage = Stage::new(&self.dir, self.seq.fetch_add(1, Ordering::SeqCst)).map_err(|e| {
            self.shared
                .verbose(&format!("remote cache: cannot stage a restore in `.mtr/cache` ({e})"));
        });
        let stage = stage.ok()?;
        let tag = tag(fingerprint);
        let registry = self.registry.clone();
        let tar = stage.path.join("outputs.tar");
        let fetched = client::block_on(fetch(&registry, &tag, outputs, &tar));
        let (meta, log) = match fetched {
            Ok(Some(found)) => found,
            Ok(None) => {
                self.shared.verbose(&format!("[{task}] not in the remote cache"));
                return None;
            }
            // Ctrl-C: the task is not run either; nothing to warn about.
            Err(_) if crate::exec::process::cancelled() => return None,
            Err(f) => {
                self.shared.fail(task, &f, Doing::Restore);
                return None;
            }
        };
        let tree = stage.path.join("tree");
        if let Err(why) = std::fs::create_dir(&tree)
            .map_err(|e| e.to_string())
            .and_then(|()| artifact::unpack(&tar, &meta, &tree))
            .and_then(|()| matches_outputs(&tree, &meta))
        {
            self.shared.fail(task, &Failure::Corrupt(why), Doing::Restore);
            return None;
        }
        if let Err(e) = artifact::install(&tree, &self.root, &stage.path.join("trash"), &meta) {
            let why = Failure::Corrupt(format!("cannot move its outputs into place: {e}"));
            self.shared.fail(task, &why, Doing::Restore);
            return None;
        }
        let files = meta.entries.iter().filter(|i| !matches!(i, Item::Dir { .. })).count();
        let bytes = meta.bytes();
        self.shared.verbose(&format!(
            "[{task}] restored {files} files ({}) from `{}` in {}",
            size(bytes),
            self.shared.remote,
            crate::report::duration(start.elapsed())
        ));
        Some(log)
    }

    /// Pushes `task`'s outputs (`files`, relative to the root, as its
    /// record lists them) and `log`, tagged with `fingerprint`. The files
    /// are read now; the upload goes on in the background until
    /// [`finish`](Self::finish).
    pub fn push(&self, task: &str, fingerprint: &Digest, outputs: &[String], files: &[String], log: Vec<u8>) {
        if !self.pushes() {
            return;
        }
        let tag = tag(fingerprint);
        let mut meta = Meta::new(task, &tag, outputs);
        let tar = match artifact::pack(&self.root, files, &mut meta) {
            Ok(t) => t,
            Err(artifact::PackError::TooLarge(n)) => {
                self.shared.verbose(&format!(
                    "[{task}] not pushed to the remote cache: its outputs are over {} ({})",
                    size(artifact::MAX_BYTES),
                    size(n)
                ));
                return;
            }
            Err(artifact::PackError::Io(why)) => {
                self.shared
                    .verbose(&format!("[{task}] not pushed to the remote cache: {why}"));
                return;
            }
        };
        let config = match serde_json::to_vec(&meta) {
            Ok(c) => c,
            Err(_) => return,
        };
        let annotations = BTreeMap::from([
            ("org.opencontainers.image.title".to_string(), format!("mtr task {task}")),
            ("dev.mtr.task".to_string(), task.to_string()),
        ]);
        let registry = self.registry.clone();
        let shared = self.shared.clone();
        let task = task.to_string();
        let bytes = meta.bytes();
        let upload = async move {
            let start = Instant::now();
            let layers = vec![(tar, artifact::OUTPUTS_MEDIA_TYPE), (log, artifact::LOG_MEDIA_TYPE)];
            let result = registry
                .push(
                    &tag,
                    (config, artifact::CONFIG_MEDIA_TYPE),
                    layers,
                    artifact::ARTIFACT_TYPE,
                    annotations,
                )
                .await;
            match result {
                Ok(()) => shared.verbose(&format!(
                    "[{task}] pushed to the remote cache ({}, {})",
                    size(bytes),
                    crate::report::duration(start.elapsed())
                )),
                Err(f) => shared.fail(&task, &f, Doing::Push),
            }
        };
        if let Some(handle) = client::spawn(upload) {
            self.pending.lock().unwrap_or_else(|e| e.into_inner()).push(handle);
        }
    }

    /// Waits for the pushes still going (or drops them after Ctrl-C).
    pub fn finish(&self, interrupted: bool) {
        let pending: Vec<_> = std::mem::take(&mut *self.pending.lock().unwrap_or_else(|e| e.into_inner()));
        if interrupted {
            pending.iter().for_each(|h| h.abort());
            return;
        }
        if pending.iter().all(|h| h.is_finished()) {
            return;
        }
        let _ = client::block_on(async {
            for h in pending {
                let _ = h.await;
            }
            Ok::<(), Failure>(())
        });
    }
}

impl Shared {
    /// The one warning of the run (later ones only with `-v`).
    fn warn_once(&self, text: &str) {
        if !self.warned.swap(true, Ordering::SeqCst) {
            self.reporter.warn(text);
        } else {
            self.verbose(&format!("warning: {text}"));
        }
    }

    fn verbose(&self, text: &str) {
        if self.reporter.verbosity >= Verbosity::Verbose {
            self.reporter.line(text);
        }
    }

    /// Reports a failure; a registry that cannot be reached (or refuses
    /// us) is not asked again this run.
    fn fail(&self, task: &str, f: &Failure, doing: Doing) {
        let remote = &self.remote;
        let hint = format!(
            "\nhint: `docker login {}` stores credentials that mtr uses",
            remote.registry
        );
        let text = match (f, doing) {
            (Failure::Unreachable(why), _) => {
                self.offline.store(true, Ordering::SeqCst);
                format!("remote cache `{remote}` is unavailable ({why}); tasks run locally this time")
            }
            (Failure::Auth(why), Doing::Restore) => {
                self.offline.store(true, Ordering::SeqCst);
                format!("remote cache `{remote}`: {why}; tasks run locally this time{hint}")
            }
            (Failure::Auth(why), Doing::Push) => {
                self.no_push.store(true, Ordering::SeqCst);
                format!("remote cache `{remote}`: cannot push task `{task}`: {why}{hint}")
            }
            (Failure::Corrupt(why), Doing::Restore) => {
                format!("remote cache: the artifact of task `{task}` is unusable ({why}); it runs locally")
            }
            (Failure::Corrupt(why), Doing::Push) => {
                format!("remote cache `{remote}`: cannot push task `{task}`: {why}")
            }
        };
        self.warn_once(&text);
    }
}

/// Downloads what a restore needs: the config (checked to fit), the
/// outputs tar into `tar`, and the log. `None` is a miss.
async fn fetch(
    registry: &Registry,
    tag: &str,
    outputs: &[String],
    tar: &Path,
) -> Result<Option<(Meta, Vec<u8>)>, Failure> {
    let Some(manifest) = registry.manifest(tag).await? else {
        return Ok(None);
    };
    if manifest.artifact_type.as_deref() != Some(artifact::ARTIFACT_TYPE)
        || manifest.config.media_type != artifact::CONFIG_MEDIA_TYPE
    {
        return Err(Failure::Corrupt(format!("`{tag}` is not an mtr cache artifact")));
    }
    let layer = |media: &str| {
        let mut found = manifest.layers.iter().filter(|l| l.media_type == media);
        match (found.next(), found.next()) {
            (Some(l), None) => Ok(l),
            _ => Err(Failure::Corrupt(format!("the manifest has no single `{media}` layer"))),
        }
    };
    let outputs_layer = layer(artifact::OUTPUTS_MEDIA_TYPE)?;
    let log_layer = layer(artifact::LOG_MEDIA_TYPE)?;
    let config = registry.blob(tag, &manifest.config).await?;
    let meta: Meta =
        serde_json::from_slice(&config).map_err(|e| Failure::Corrupt(format!("unreadable config: {e}")))?;
    if !meta.fits(tag, outputs) {
        // Another version of mtr, or a task with the same fingerprint but
        // other outputs: not ours to use.
        return Ok(None);
    }
    registry.blob_to_file(tag, outputs_layer, tar).await?;
    let log = registry.blob(tag, log_layer).await?;
    Ok(Some((meta, log)))
}

/// The unpacked files must be exactly what the task's output patterns
/// match there: an artifact never writes anywhere else.
fn matches_outputs(tree: &Path, meta: &Meta) -> Result<(), String> {
    let res = crate::inputs::resolve(tree, &meta.outputs, false).map_err(|e| e.to_string())?;
    let matched: HashSet<&str> = res.files.iter().map(|e| &*e.rel).collect();
    let listed: HashSet<&str> = meta
        .entries
        .iter()
        .filter(|i| !matches!(i, Item::Dir { .. }))
        .map(Item::path)
        .collect();
    match listed.iter().find(|p| !matched.contains(*p)) {
        Some(p) => Err(format!("`{p}` is not one of the task's outputs")),
        None => Ok(()),
    }
}

/// A staging directory under `.mtr/cache`, removed when dropped.
struct Stage {
    path: PathBuf,
}

impl Stage {
    fn new(dir: &Path, seq: usize) -> std::io::Result<Stage> {
        std::fs::create_dir_all(dir)?;
        let path = dir.join(format!("restore-{}-{seq}", std::process::id()));
        if path.exists() {
            std::fs::remove_dir_all(&path)?;
        }
        std::fs::create_dir(&path)?;
        Ok(Stage { path })
    }
}

impl Drop for Stage {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// Bytes as people read them.
fn size(bytes: u64) -> String {
    match bytes {
        b if b < 1 << 10 => format!("{b} B"),
        b if b < 1 << 20 => format!("{:.1} KiB", b as f64 / 1024.0),
        b if b < 1 << 30 => format!("{:.1} MiB", b as f64 / (1 << 20) as f64),
        b => format!("{:.2} GiB", b as f64 / (1 << 30) as f64),
    }
}
