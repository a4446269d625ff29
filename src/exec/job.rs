//! One task: render it, hash its inputs, decide whether it is up to date,
//! run its steps, check its outputs and produce the record to store.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::Context;
use super::deferred::Deferred;
use super::process::{self, Exit, Io, SpawnError};
use super::{deploy, docker};
use crate::action::{self, Compiled, Step};
use crate::cache::Cache;
use crate::config::template::{Part, Ref, Template};
use crate::config::{Action, Task};
use crate::dir_stamps::{self, Checked, Listing, Restated};
use crate::explain::{self, Reason};
use crate::fingerprint::{self, Fingerprint, Ingredients};
use crate::hashing::{self, Digest, FileEntry};
use crate::inputs::{self, Entry, Stat};
use crate::render::{DepInfo, Renderer, used_vars};
use crate::state::{Changed, EarlyBegin, LazyParts, Parts, TaskRecord};

/// How a task ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    Ran,
    UpToDate,
    /// Its outputs came from the remote cache instead of a run.
    Restored,
    /// `--dry-run`: it would run.
    WouldRun,
    Failed {
        code: i32,
        message: String,
    },
    Interrupted,
    /// Not started because a dependency failed or the run stopped.
    NotRun(String),
}

impl Status {
    /// Whether dependants may run after it.
    pub fn ok(&self) -> bool {
        matches!(
            self,
            Status::Ran | Status::UpToDate | Status::Restored | Status::WouldRun
        )
    }
}

/// The result of one task's job.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub status: Status,
    pub reason: Reason,
    pub fingerprint: Option<Digest>,
    /// What dependants see as `tasks.NAME.*`.
    pub info: DepInfo,
    /// Boxed: an outcome is kept for every task of the plan.
    pub record: Option<Box<TaskRecord>>,
    pub files: Vec<(String, FileEntry)>,
    /// For a task found up to date: a listing its record should keep
    /// instead of the one it has (see [`crate::dir_stamps`]).
    pub listing: Option<Arc<Listing>>,
    /// The commands, as shown in a dry-run plan (only there).
    pub steps: Vec<String>,
    pub took: Duration,
}

impl Outcome {
    pub fn not_run(why: String) -> Outcome {
        Outcome {
            status: Status::NotRun(why.clone()),
            reason: Reason::Other(why),
            fingerprint: None,
            info: DepInfo::default(),
            record: None,
            files: Vec::new(),
            listing: None,
            steps: Vec::new(),
            took: Duration::ZERO,
        }
    }

    pub fn failed(message: String, start: Instant) -> Outcome {
        Outcome {
            status: Status::Failed {
                code: 1,
                message: message.clone(),
            },
            reason: Reason::Other(message),
            took: start.elapsed(),
            ..Outcome::not_run(String::new())
        }
    }
}

/// What the scheduler knows about a task's deps when it starts.
#[derive(Debug, Default)]
pub struct DepState {
    pub infos: HashMap<String, DepInfo>,
    pub fingerprints: Vec<(String, Digest)>,
    /// `--dry-run`: a dep that would run (so this task cannot be judged).
    pub would_run: Option<String>,
    pub any_ran: bool,
}

/// A task, rendered and hashed, before deciding what to do.
struct Prepared {
    /// Worked out while the task starts when it must run for certain
    /// (see [`DEFER_MIN`]).
    fingerprint: Deferred<Fingerprint>,
    /// Every part but the input files (see [`Prepared::parts`]).
    base: crate::state::Parts,
    inputs: Vec<Entry>,
    digests: Vec<Digest>,
    /// [`Prepared::parts`], once built.
    parts: std::cell::OnceCell<crate::state::Parts>,
    fresh: Vec<(String, FileEntry)>,
    /// How the input files were found, for the record of a run.
    listed: Listed,
    /// The input files are the record's, unchanged, and not listed here
    /// (`inputs` and `digests` are empty; see [`dir_stamps::check`]).
    unchanged: bool,
    /// The input files when they are the record's and only some have
    /// another stat: listed in `inputs` only once needed (see [`Lazy`]).
    lazy: Option<Arc<Lazy>>,
    /// How long finding and stat'ing the input files took: about what
    /// stat'ing them again after a run costs (see [`worth_verifying`]).
    found_in: Duration,
    /// The task's journal entry, begun while it is judged when its input
    /// stats changed (see [`EarlyBegin`]).
    early: Option<EarlyBegin>,
    exec: Compiled,
    env: Vec<(String, String)>,
    dir: String,
}

/// A record's input files of which only some have another stat: those
/// are hashed, and the others are what the stat cache says (100,000 paths
/// are not built as strings for the one file that changed).
struct Lazy {
    restated: Restated,
    /// The digest the record has for each changed input, and its own now.
    digests: Vec<(Digest, Digest)>,
    table: crate::state::StatCache,
}

impl Lazy {
    /// Whether an input's content is not the record's: then the
    /// fingerprint is not either (everything else was checked the same).
    fn content_changed(&self) -> bool {
        self.digests.iter().any(|(was, now)| was != now)
    }

    /// The inputs whose content or executable bit is not the record's.
    fn modified(&self) -> impl Iterator<Item = &(dir_stamps::Restat, Entry)> {
        (self.restated.changed.iter().zip(&self.digests))
            .filter(|((c, e), (was, now))| was != now || fingerprint::executable(e) != c.exec)
            .map(|(changed, _)| changed)
    }

    /// Passes each input (path, executable bit, digest) to `f`, in order.
    fn each(&self, f: &mut dyn FnMut(&[u8], bool, &Digest)) {
        self.each_from(0, &mut |path, exec, digest| {
            f(path, exec, digest);
            true
        });
    }

    /// Passes the inputs from position `start` on to `f`, in order, while
    /// it returns true.
    fn each_from(&self, start: usize, f: &mut dyn FnMut(&[u8], bool, &Digest) -> bool) {
        let first = self.restated.changed.partition_point(|(c, _)| c.at < start);
        let mut changed = (self.restated.changed[first..].iter())
            .zip(&self.digests[first..])
            .peekable();
        let mut cur = self.table.cursor();
        for (k, &(i, exec)) in self.restated.inputs.iter().enumerate().skip(start) {
            let more = match changed.next_if(|((c, _), _)| c.at == k) {
                Some(((_, e), (_, now))) => f(e.rel.as_bytes(), fingerprint::executable(e), now),
                // The cache passed its checksum: a bad index is a bug, and
                // only makes the fingerprint differ.
                None if cur.goto(i) => f(cur.path(), exec, &self.table.hash(i).unwrap_or_default()),
                None => true,
            };
            if !more {
                return;
            }
        }
    }
}

impl Prepared {
    /// The fingerprint, once known.
    fn digest(&self) -> &Digest {
        &self.fingerprint.get().digest
    }

    /// Puts the fingerprint in `base`, once known.
    fn fill_in(&self, base: &mut Outcome) {
        let fingerprint = *self.digest();
        base.fingerprint = Some(fingerprint);
        base.info.hash = fingerprint::short(&fingerprint);
    }

    /// All the fingerprint's parts, input files included: built only to
    /// store a record or explain a change.
    fn parts(&self) -> &crate::state::Parts {
        self.parts.get_or_init(|| {
            let inputs = match (&self.lazy, self.inputs.is_empty()) {
                (Some(lazy), true) => {
                    let mut v = Vec::with_capacity(lazy.restated.inputs.len());
                    lazy.each(&mut |path, exec, digest| {
                        v.push((String::from_utf8_lossy(path).into_owned(), *digest, exec))
                    });
                    v
                }
                _ => fingerprint::input_parts(&self.inputs, &self.digests),
            };
            crate::state::Parts {
                inputs,
                ..self.base.clone()
            }
        })
    }

    /// Lists the input files (and their digests) if they are not yet.
    fn list(&mut self, root: &std::path::Path) -> Result<(), String> {
        if let Some(lazy) = self.lazy.as_ref().filter(|_| self.inputs.is_empty()) {
            self.inputs = (lazy.restated)
                .entries(root, &lazy.table)
                .ok_or("the stat cache cannot be read back")?;
            let mut digests = Vec::with_capacity(self.inputs.len());
            lazy.each(&mut |_, _, d| digests.push(*d));
            self.digests = digests;
        }
        Ok(())
    }

    /// [`Prepared::parts`], moved out for the record.
    fn take_parts(&mut self) -> crate::state::Parts {
        self.parts();
        self.parts.take().unwrap_or_default()
    }
}

/// Whether the remote cache can stand in for running `task`: it declares
/// inputs and outputs, and its work is its outputs (no image to build, no
/// rollout, no terminal).
pub fn cacheable(task: &Task) -> bool {
    !task.interactive
        && !task.outputs.is_empty()
        && task.inputs.is_some()
        && matches!(task.action, Action::Run(_) | Action::Container(_))
}

/// A task judged out of date: hashed, and waiting to run (or be restored).
pub struct Pending {
    start: Instant,
    p: Prepared,
    reason: Reason,
    files: Vec<(String, FileEntry)>,
    /// The outcome's fields that do not depend on how the run goes.
    base: Outcome,
}

/// What [`judge`] found.
pub enum Judged {
    /// Nothing (more) to do: up to date, a dry run, or it failed to prepare.
    Done(Box<Outcome>),
    Pending(Box<Pending>),
}

impl From<Outcome> for Judged {
    fn from(outcome: Outcome) -> Judged {
        Judged::Done(Box::new(outcome))
    }
}

/// Judges the task, then runs it when it is out of date.
pub fn run(ctx: &Context, name: &str, deps: &DepState, cache: Option<&Arc<Cache>>) -> Outcome {
    match judge(ctx, name, deps) {
        Judged::Done(outcome) => *outcome,
        Judged::Pending(pending) => carry_out(ctx, name, *pending, cache),
    }
}

/// Renders and hashes the task and decides whether it must run. It
/// writes at most the task's journal entry (see [`EarlyBegin`]), so it
/// needs no care about signals.
pub fn judge(ctx: &Context, name: &str, deps: &DepState) -> Judged {
    let start = Instant::now();
    let task = &ctx.config.tasks[name];
    if let Some(note) = &task.deprecated {
        let note = if note.is_empty() {
            String::new()
        } else {
            format!(": {note}")
        };
        ctx.reporter.warn(&format!("task `{name}` is deprecated{note}"));
    }
    if ctx.options.dry_run
        && let Some(dep) = &deps.would_run
    {
        let r = renderer(ctx, name, &deps.infos, Some("<hash>"));
        mask_secret_env(ctx, task, &r);
        let steps = action::compile(&ctx.config, task, &r)
            .map(|c| c.steps.iter().map(Step::describe).collect())
            .unwrap_or_default();
        return Judged::Done(Box::new(Outcome {
            status: Status::WouldRun,
            reason: Reason::DepWouldRun(dep.clone()),
            steps,
            ..Outcome::not_run(String::new())
        }));
    }
    let failed = |message| Judged::Done(Box::new(Outcome::failed(message, start)));
    let mut p = match prepare(ctx, task, deps, true) {
        Ok(p) => p,
        Err(message) => return failed(message),
    };
    let mut files = std::mem::take(&mut p.fresh);
    let mut reason = decide(ctx, task, deps, &p, &mut files);
    if p.unchanged && reason != Reason::UpToDate {
        // It runs after all: its record needs the input files listed.
        let before = *p.digest();
        p = match prepare(ctx, task, deps, false) {
            Ok(p) => p,
            Err(message) => return failed(message),
        };
        files.append(&mut p.fresh);
        if *p.digest() != before {
            reason = decide(ctx, task, deps, &p, &mut files);
        }
    }
    // A fingerprint still worked out is filled in once the task ran.
    let info = DepInfo {
        hash: p
            .fingerprint
            .known()
            .map(|f| fingerprint::short(&f.digest))
            .unwrap_or_default(),
        image: p.exec.image.clone(),
    };
    let base = Outcome {
        status: Status::UpToDate,
        reason: reason.clone(),
        fingerprint: p.fingerprint.known().map(|f| f.digest),
        info,
        record: None,
        files: Vec::new(),
        listing: None,
        steps: if ctx.options.dry_run {
            p.exec.steps.iter().map(Step::describe).collect()
        } else {
            Vec::new()
        },
        took: Duration::ZERO,
    };
    if reason == Reason::UpToDate {
        // A walk's listing replaces what the record keeps, if different.
        let listing = match std::mem::replace(&mut p.listed, Listed::Kept) {
            Listed::Walked(Some(l)) if ctx.state.tasks.get(name).and_then(|r| r.listing.as_deref()) != Some(&l) => {
                Some(Arc::new(l))
            }
            _ => None,
        };
        return Judged::Done(Box::new(Outcome {
            files,
            listing,
            took: start.elapsed(),
            ..base
        }));
    }
    if ctx.options.dry_run {
        return Judged::Done(Box::new(Outcome {
            status: Status::WouldRun,
            files,
            ..base
        }));
    }
    Judged::Pending(Box::new(Pending {
        start,
        p,
        reason,
        files,
        base,
    }))
}

/// Runs a task [`judge`] found out of date (or restores its outputs from
/// the remote cache) and builds its record.
pub fn carry_out(ctx: &Context, name: &str, pending: Pending, cache: Option<&Arc<Cache>>) -> Outcome {
    let Pending {
        start,
        mut p,
        reason,
        mut files,
        mut base,
    } = pending;
    let task = &ctx.config.tasks[name];
    // From here on the task may change files: until this run's outcome is
    // committed, a crash must not leave its old record standing.
    if let Some(early) = p.early.take() {
        early.confirm();
    }
    ctx.store.begin(name);
    let cache = cache.filter(|_| cacheable(task));
    if let Some(c) = cache
        && !matches!(reason, Reason::Forced | Reason::Watched)
        && let Some(record) = restore(ctx, task, &mut p, c, &reason, &mut files)
    {
        p.fill_in(&mut base);
        return Outcome {
            status: Status::Restored,
            record: record.map(Box::new),
            files,
            took: start.elapsed(),
            ..base
        };
    }
    if ctx.options.explain {
        ctx.reporter.explain(name, &format!("running: {reason}"));
    }
    let pushing = cache.filter(|c| c.pushes());
    if pushing.is_some() {
        ctx.reporter.start_capture(name);
    }
    let running = Instant::now();
    let executed = execute(ctx, task, &p);
    p.fill_in(&mut base);
    let verify = pushing.is_some() || worth_verifying(running.elapsed(), p.found_in);
    let log = if pushing.is_some() {
        ctx.reporter.take_capture(name)
    } else {
        Vec::new()
    };
    if let Err(status) = executed {
        return Outcome {
            status,
            files,
            took: start.elapsed(),
            ..base
        };
    }
    match finish(ctx, task, &mut p, &mut files, verify) {
        Ok(record) => {
            if let (Some(c), Some(rec)) = (pushing, &record)
                && let Ok(patterns) = output_patterns(ctx, task, &p)
            {
                let paths: Vec<String> = rec.outputs.iter().map(|(path, _)| path.clone()).collect();
                c.push(name, p.digest(), &patterns, &paths, log);
            }
            Outcome {
                status: Status::Ran,
                record: record.map(Box::new),
                files,
                took: start.elapsed(),
                ..base
            }
        }
        Err(message) => Outcome {
            status: Status::Failed { code: 1, message },
            files,
            took: start.elapsed(),
            ..base
        },
    }
}

fn renderer<'a>(
    ctx: &'a Context,
    name: &'a str,
    infos: &'a HashMap<String, DepInfo>,
    hash: Option<&'a str>,
) -> Renderer<'a> {
    Renderer {
        vars: &ctx.vars,
        task: name,
        root: &ctx.root,
        hash,
        deps: infos,
    }
}

/// Env values marked `secret = true` (in `[env]`, the task's `env`, a
/// container's `env`) are masked from now on, before anything of the task
/// is printed.
fn mask_secret_env(ctx: &Context, task: &Task, r: &Renderer) {
    let secret = ctx
        .config
        .env
        .iter()
        .map(|(_, t)| t)
        .chain(task.templates())
        .filter(|t| t.secret);
    ctx.reporter.add_masks(secret.filter_map(|t| r.render(t).ok()));
}

/// The task's environment as mtr sets it: `[env]`, dotenv, task `env`.
fn task_env(ctx: &Context, task: &Task, r: &Renderer) -> Result<Vec<(String, String)>, String> {
    let mut env: Vec<(String, String)> = ctx.dotenv.clone();
    env.extend(r.render_map(&ctx.config.env).map_err(|e| e.to_string())?);
    env.extend(r.render_map(&task.env).map_err(|e| e.to_string())?);
    // Later entries win; keep one value per name.
    let mut seen = std::collections::HashSet::new();
    let mut out: Vec<(String, String)> = env.into_iter().rev().filter(|(k, _)| seen.insert(k.clone())).collect();
    out.reverse();
    Ok(out)
}

/// Renders the task and finds and hashes its input files, for its
/// fingerprint. With `quick`, input files found just as the task's record
/// saw them are not listed at all: the record's fingerprint stands for
/// them when nothing else differs.
fn prepare(ctx: &Context, task: &Task, deps: &DepState, quick: bool) -> Result<Prepared, String> {
    let name = task.name.as_str();
    let fp_r = renderer(ctx, name, &deps.infos, None);
    let fp_env = task_env(ctx, task, &fp_r)?;
    let dir = fp_r
        .render_opt(&task.dir)
        .map_err(|e| e.to_string())?
        .unwrap_or_else(|| ".".into());
    let compiled_fp = action::compile(&ctx.config, task, &fp_r).map_err(|e| e.to_string())?;
    let values: Vec<(String, Option<String>)> = used_vars(task.templates())
        .into_iter()
        .map(|v| {
            let volatile = ctx.vars.def(&v).is_some_and(|d| d.volatile);
            let value = if volatile {
                None
            } else {
                ctx.vars.get(&v).ok().map(|x| x.stable)
            };
            (v, value)
        })
        .collect();
    let declared = fp_r.render_list(&task.outputs).map_err(|e| e.to_string())?;
    let mut ingredients = Ingredients {
        action: &compiled_fp.identity,
        env: &fp_env,
        dir: &dir,
        outputs: &declared,
        deps: deps.fingerprints.iter().map(|(n, d)| (n.as_str(), *d)).collect(),
        vars: values.iter().map(|(n, v)| (n.as_str(), v.as_deref())).collect(),
        ..Ingredients::default()
    };
    let mut inputs = Vec::new();
    let mut found = Vec::new();
    let mut listed = Listed::Walked(None);
    let mut unchanged = None;
    // The parts but the files, if worked out for the record check.
    let mut base = None;
    let mut restated = None;
    let mut early = None;
    let finding = Instant::now();
    if let Some(patterns) = &task.inputs {
        let mut patterns = fp_r.render_list(patterns).map_err(|e| e.to_string())?;
        // An image task's Dockerfile is always one of its inputs.
        if let Some(c) = &compiled_fp.context {
            patterns.push(c.dockerfile.clone());
        }
        let record = ctx.state.tasks.get(name).filter(|_| quick);
        let checked = record.and_then(|r| {
            let now = base.insert(fingerprint::base_parts(&ingredients));
            let (checked, begun) = check_record(ctx, name, r, &patterns, now)?;
            early = begun;
            Some(checked)
        });
        match checked {
            Some(Checked::Unchanged) => (unchanged, listed) = (record, Listed::Kept),
            Some(Checked::Restated(r)) => (restated, listed) = (Some(r), Listed::Kept),
            Some(Checked::Walk) => (inputs, found, listed) = resolve_inputs(ctx, name, &patterns, false)?,
            None => (inputs, found, listed) = resolve_inputs(ctx, name, &patterns, true)?,
        }
    } else if let Some(c) = &compiled_fp.context {
        inputs = crate::build_context::files(&ctx.config.root, c).map_err(|e| e.to_string())?;
    }
    let found_in = finding.elapsed();
    let (digests, fresh, lazy) = match restated {
        Some(restated) => {
            let (lazy, fresh) = rehash(ctx, restated).map_err(|e| e.to_string())?;
            (Vec::new(), fresh, Some(Arc::new(lazy)))
        }
        None => {
            let (digests, fresh) = hashing::hash_entries_found(&ctx.config.root, &inputs, &ctx.state.files, &found)
                .map_err(|e| e.to_string())?;
            (digests, fresh, None)
        }
    };
    ingredients.inputs = &inputs;
    ingredients.digests = &digests;
    let alike = renders_alike(ctx, task);
    let (fingerprint, base) = match (unchanged, &lazy) {
        (Some(record), _) => (
            Deferred::ready(recorded(record)),
            base.unwrap_or_else(|| fingerprint::base_parts(&ingredients)),
        ),
        (None, Some(lazy)) => {
            let base = base.unwrap_or_else(|| fingerprint::base_parts(&ingredients));
            let defer = lazy.content_changed() && alike && !ctx.options.dry_run;
            (restated_fingerprint(ctx, name, &base, lazy, defer), base)
        }
        (None, None) => {
            let (fingerprint, base) = fingerprint::compute(&ingredients);
            (Deferred::ready(fingerprint), base)
        }
    };
    let (exec, env, dir) = if alike {
        mask_secret_env(ctx, task, &fp_r);
        (compiled_fp, fp_env, dir)
    } else {
        let short = fingerprint::short(&fingerprint.get().digest);
        let exec_r = renderer(ctx, name, &deps.infos, Some(&short));
        mask_secret_env(ctx, task, &exec_r);
        let exec = action::compile(&ctx.config, task, &exec_r).map_err(|e| e.to_string())?;
        let env = task_env(ctx, task, &exec_r)?;
        let dir = exec_r
            .render_opt(&task.dir)
            .map_err(|e| e.to_string())?
            .unwrap_or_else(|| ".".into());
        (exec, env, dir)
    };
    Ok(Prepared {
        fingerprint,
        base,
        inputs,
        digests,
        parts: Default::default(),
        fresh,
        listed,
        unchanged: unchanged.is_some(),
        lazy,
        found_in,
        early,
        exec,
        env,
        dir,
    })
}

/// The fingerprint of a task whose record's input files came back with
/// some stats changed (`lazy`), and the rest (`base`) as the record has
/// it. With `defer` (it runs for certain, and nothing needs the value
/// before the command), it is worked out while the task starts.
fn restated_fingerprint(
    ctx: &Context,
    name: &str,
    base: &Parts,
    lazy: &Arc<Lazy>,
    defer: bool,
) -> Deferred<Fingerprint> {
    let record = ctx.state.tasks.get(name);
    let changed: Vec<usize> = lazy.modified().map(|(c, _)| c.at).collect();
    if let Some(record) = record.filter(|_| changed.is_empty()) {
        // Every input as the record has it (rewritten with the same
        // content): the record's fingerprint is the one.
        return Deferred::ready(recorded(record));
    }
    let n = lazy.restated.inputs.len();
    // The record's fingerprint, hashed again only where those inputs lie.
    let patched = record.and_then(|r| fingerprint::patch(base, n, &r.tree, &changed, &mut |k, f| lazy.each_from(k, f)));
    if let Some(fingerprint) = patched {
        return Deferred::ready(fingerprint);
    }
    if defer && n >= DEFER_MIN {
        let (base, lazy) = (base.clone(), lazy.clone());
        if let Some(deferred) = Deferred::spawn(move || fingerprint::digest_with(&base, n, &mut |f| lazy.each(f))) {
            return deferred;
        }
    }
    Deferred::ready(fingerprint::digest_with(base, n, &mut |f| lazy.each(f)))
}

/// The fingerprint `record` was stored with.
fn recorded(record: &TaskRecord) -> Fingerprint {
    Fingerprint {
        digest: record.fingerprint,
        tree: record.tree.clone(),
    }
}

/// The inputs of `restated` whose stat changed, hashed again.
fn rehash(ctx: &Context, restated: Restated) -> Result<(Lazy, Vec<(String, FileEntry)>), inputs::InputError> {
    let table = ctx.state.files.clone();
    let entries: Vec<Entry> = restated.changed.iter().map(|(_, e)| e.clone()).collect();
    let (now, fresh) = hashing::hash_entries(&ctx.config.root, &entries, &table)?;
    let digests = (restated.changed.iter())
        .zip(now)
        .map(|((c, _), d)| (table.hash(c.entry).unwrap_or_default(), d))
        .collect();
    let lazy = Lazy {
        restated,
        digests,
        table,
    };
    Ok((lazy, fresh))
}

/// The task's input files checked against `record` without listing them
/// (see [`dir_stamps::check`]): when every part of the fingerprint but
/// the input files (`now`) is the same, and the record can be checked so.
/// The first input found most likely edited begins the task's journal
/// entry at once, returned too (see [`EarlyBegin`]).
fn check_record(
    ctx: &Context,
    name: &str,
    record: &TaskRecord,
    patterns: &[String],
    now: &Parts,
) -> Option<(Checked, Option<EarlyBegin>)> {
    let listing = record.listing.as_ref()?;
    let then = record.parts.base();
    // `vars` only explain a change; their values are in the action.
    if (now.action, &now.env, now.dir, now.outputs, &now.deps)
        != (then.action, &then.env, then.dir, then.outputs, &then.deps)
    {
        return None;
    }
    let (table, inputs) = record.parts.cached_inputs()?;
    let (early, committed) = (OnceLock::new(), OnceLock::new());
    let on_change = |entry: usize, stat: &Stat| {
        if ctx.options.dry_run || early.get().is_some() {
            return;
        }
        // A file whose stat changed since its hash was trusted, or that
        // changed after the last commit, was most likely edited: the task
        // runs, so its journal entry is synced while the other inputs are
        // stat'ed and this one hashed. A hash too fresh to be trusted was
        // kept with a stat no file has: such a file, not changed since
        // that commit, is most likely as it was.
        let edited = table.record(entry).is_some_and(|e| e.trusted())
            || stat.mtime_ns.max(stat.ctime_ns) > *committed.get_or_init(|| ctx.store.committed_ns());
        if edited {
            early.get_or_init(|| ctx.store.begin_early(name));
        }
    };
    let checked = dir_stamps::check(&ctx.config.root, patterns, listing, table, inputs, &on_change);
    Some((checked, early.into_inner().flatten()))
}

/// Input files, what hashing them on the walk gave, how they were found.
type Resolved = (Vec<Entry>, Vec<Option<FileEntry>>, Listed);

/// How a task's input files were found, so its record keeps the listing
/// that skips the walk next time (see [`crate::dir_stamps`]).
enum Listed {
    /// From the record's listing, which still holds.
    Kept,
    /// By a walk, and the listing it gave (`None`: not one to trust).
    Walked(Option<Listing>),
}

/// The task's input files for `patterns`: from its record's listing when
/// no directory read for it changed (no walk), else walked (and, with
/// nothing cached, hashed as they are found). Also what its record should
/// keep to skip the walk next time. Without `try_listing` (the listing is
/// known not to hold), always walked.
fn resolve_inputs(ctx: &Context, name: &str, patterns: &[String], try_listing: bool) -> Result<Resolved, String> {
    let root = &ctx.config.root;
    let record = ctx.state.tasks.get(name).filter(|_| try_listing);
    let known = record.and_then(|r| dir_stamps::files(root, patterns, r.listing.as_ref()?, || r.parts.input_paths()));
    if let Some(files) = known {
        return Ok((files, Vec::new(), Listed::Kept));
    }
    let began = hashing::now_ns();
    let res = if ctx.state.files.is_empty() {
        // Nothing cached (a cold run): every file will be read, so read
        // each as the walk finds it, while it walks on.
        inputs::resolve_hashing(root, patterns, &hashing::file_hasher())
    } else {
        inputs::resolve(root, patterns, false)
    };
    let mut res = res.map_err(|e| format!("{e}"))?;
    if let Some(missing) = res.missing.first() {
        return Err(format!("input `{missing}` does not exist"));
    }
    let listing = dir_stamps::settle(root, patterns, res.read.take(), began);
    Ok((res.files, res.hashes, Listed::Walked(listing)))
}

/// Whether `task`'s action, env and dir render the same for its
/// fingerprint as to run: a `run` action (an `image` action tags with the
/// hash by default) whose templates name neither `{{ hash }}` nor a
/// volatile variable, nor one made from a volatile variable (the
/// fingerprint sees placeholders for them).
fn renders_alike(ctx: &Context, task: &Task) -> bool {
    let differs = |t: &Template| {
        t.parts.iter().any(|p| match p {
            Part::Ref(Ref::Hash) => true,
            Part::Ref(Ref::Var(v)) => {
                ctx.vars.def(v).is_some_and(|d| d.volatile) || ctx.vars.get(v).is_ok_and(|x| x.stable != x.value)
            }
            _ => false,
        })
    };
    matches!(task.action, Action::Run(_) | Action::None)
        && !task.templates().into_iter().any(differs)
        && !ctx.config.env.iter().any(|(_, t)| differs(t))
}

/// Why the task must run, or `UpToDate`.
fn decide(ctx: &Context, task: &Task, deps: &DepState, p: &Prepared, files: &mut Vec<(String, FileEntry)>) -> Reason {
    if task.interactive {
        return Reason::Interactive;
    }
    if ctx.options.force.contains(&task.name) {
        return Reason::Forced;
    }
    if ctx.options.watched.contains(&task.name) {
        return Reason::Watched;
    }
    if matches!(task.action, Action::None) && task.inputs.is_none() {
        return if deps.any_ran || ctx.options.dry_run && deps.would_run.is_some() {
            Reason::Aggregate
        } else {
            Reason::UpToDate
        };
    }
    if task.inputs.is_none() && !matches!(task.action, Action::Image(_)) {
        return Reason::NoInputs;
    }
    let Some(rec) = ctx.state.tasks.get(&task.name) else {
        return Reason::NeverRan;
    };
    let changed = p.lazy.as_ref().is_some_and(|l| l.content_changed());
    if changed || rec.fingerprint != *p.digest() {
        return modified_inputs(rec, p).unwrap_or_else(|| explain::diff(&rec.parts, p.parts()));
    }
    if let Some(reason) = check_outputs(ctx, task, rec, files) {
        return reason;
    }
    if let (Some(check), Some(image)) = (&p.exec.exists, &p.exec.image)
        && !crate::exec::docker::image_exists(check, &ctx.config.root, &ctx.env)
    {
        return Reason::ImageMissing(image.clone());
    }
    Reason::UpToDate
}

/// What [`explain::diff`] says when only the contents or executable bits
/// of some inputs changed, found without decoding the record's inputs:
/// from the inputs whose stat changed, when everything else is the same.
fn modified_inputs(rec: &TaskRecord, p: &Prepared) -> Option<Reason> {
    let lazy = p.lazy.as_ref()?;
    if rec.parts.base().vars != p.base.vars {
        return None;
    }
    let modified: Vec<String> = lazy.modified().map(|(_, e)| e.rel.to_string()).collect();
    (!modified.is_empty()).then_some(Reason::Inputs {
        added: Vec::new(),
        removed: Vec::new(),
        modified,
    })
}

/// The parts of a record for `p`, whose input files are those of the
/// task's last record, some with new content: that record's inputs, still
/// encoded, with the new digests (see [`LazyParts::patched`]). `None`
/// when an executable bit changed too, or there is no such record.
fn patched_parts(ctx: &Context, task: &Task, p: &Prepared) -> Option<LazyParts> {
    let lazy = p.lazy.as_ref()?;
    let old = ctx.state.tasks.get(&task.name)?;
    let changed = (lazy.restated.changed.iter())
        .zip(&lazy.digests)
        .map(|((c, e), (_, now))| {
            (fingerprint::executable(e) == c.exec).then_some(Changed {
                at: c.at,
                entry: c.entry,
                digest: *now,
            })
        })
        .collect::<Option<Vec<_>>>()?;
    LazyParts::patched(p.base.clone(), &old.parts, changed)
}

/// Whether every recorded output still has the content it had.
fn check_outputs(ctx: &Context, task: &Task, rec: &TaskRecord, files: &mut Vec<(String, FileEntry)>) -> Option<Reason> {
    if rec.outputs.is_empty() && task.outputs.is_empty() {
        return None;
    }
    let root = &ctx.config.root;
    let mut entries = Vec::new();
    for (path, _) in &rec.outputs {
        let file = root.join(inputs::key_path(path));
        match std::fs::symlink_metadata(&file) {
            Ok(m) => entries.push(Entry {
                rel: path.as_str().into(),
                stat: Stat::of(&m),
                link: m
                    .file_type()
                    .is_symlink()
                    .then(|| std::fs::read_link(&file).unwrap_or_default().into()),
            }),
            Err(_) => return Some(Reason::OutputMissing(path.clone())),
        }
    }
    for t in &task.outputs {
        if let Some(lit) = t.as_literal()
            && !lit.contains(['*', '?', '[', '{'])
            && !root.join(lit).exists()
        {
            return Some(Reason::OutputMissing(lit.to_string()));
        }
    }
    let Ok((digests, fresh)) = hashing::hash_entries(root, &entries, &ctx.state.files) else {
        return Some(Reason::Other("an output could not be read".into()));
    };
    files.extend(fresh);
    for ((path, want), got) in rec.outputs.iter().zip(digests) {
        if *want != got {
            return Some(Reason::OutputChanged(path.clone()));
        }
    }
    None
}

/// Runs the steps; `Err` carries the failed or interrupted status.
fn execute(ctx: &Context, task: &Task, p: &Prepared) -> Result<(), Status> {
    let cwd = ctx.config.root.join(&p.dir);
    let mut env = ctx.env.clone();
    env.extend(p.env.iter().cloned());
    let io = if task.interactive { Io::Terminal } else { Io::Piped };
    let shell = &ctx.config.project.shell;
    let default_shell = ctx.config.project.has_default_shell();
    if !cwd.is_dir() && !p.exec.steps.is_empty() {
        return Err(Status::Failed {
            code: 1,
            message: format!("working directory `{}` does not exist", p.dir),
        });
    }
    for step in &p.exec.steps {
        if process::cancelled() {
            return Err(Status::Interrupted);
        }
        let failed = |message: String| Status::Failed { code: 1, message };
        let argv = match step {
            Step::Shell(line) => action::run::argv_for(shell, default_shell, line),
            Step::Exec(argv) => argv.clone(),
            Step::MkDir(dir) => {
                std::fs::create_dir_all(ctx.config.root.join(dir))
                    .map_err(|e| failed(format!("cannot create `{}`: {e}", dir.display())))?;
                continue;
            }
            Step::RequireBuildx => {
                docker::check_buildx(&cwd, &env)?;
                continue;
            }
            Step::EnsureBuilder(spec) => {
                docker::setup_builder(&task.name, spec, ctx.store.dir(), &cwd, &env, &ctx.reporter)?;
                continue;
            }
            Step::Container(run) => {
                let exit = docker::run_container(&task.name, run, task.interactive, &cwd, &env, &ctx.reporter);
                check_exit(step, exit, &env)?;
                continue;
            }
            Step::Deploy(plan) => {
                let e = deploy::Env {
                    task: &task.name,
                    root: &ctx.config.root,
                    cwd: &cwd,
                    env: &env,
                    reporter: &ctx.reporter,
                };
                deploy::execute(&e, plan).map_err(|f| {
                    if process::cancelled() {
                        Status::Interrupted
                    } else {
                        f.into()
                    }
                })?;
                continue;
            }
        };
        ctx.reporter.command(&task.name, &step.describe());
        let exit = process::run(&task.name, &argv, &cwd, &env, io, &ctx.reporter);
        check_exit(step, exit, &env)?;
    }
    Ok(())
}

/// Turns a step's exit into `Ok` or the task's failed/interrupted status.
fn check_exit(step: &Step, exit: Result<Exit, SpawnError>, env: &HashMap<String, String>) -> Result<(), Status> {
    match exit {
        // Even a clean exit: a command that traps Ctrl-C may exit 0 with
        // its work half done.
        Ok(_) if process::cancelled() => Err(Status::Interrupted),
        Ok(e) if e.code == 0 => Ok(()),
        Ok(e) => {
            let code = e.code;
            let message = match step {
                Step::Shell(line) if code == 127 => {
                    super::missing_program::find(line, env.get("PATH").map(String::as_str))
                        .map(|p| format!("`{p}` was not found on PATH"))
                        .unwrap_or_else(|| format!("exit status {code}"))
                }
                Step::Exec(argv) => docker::failure(argv, &e),
                Step::Container(_) => format!("the container exited with status {code}"),
                _ => format!("exit status {code}"),
            };
            Err(Status::Failed { code, message })
        }
        Err(SpawnError::Interrupted) => Err(Status::Interrupted),
        Err(e) => Err(Status::Failed {
            code: e.exit_code(),
            message: e.to_string(),
        }),
    }
}

/// The first input of `changed` (index, stat now) whose content or
/// executable bit is not what was hashed before the run, or that is gone,
/// a symlink or no longer a file.
fn changed_content<'a>(ctx: &Context, p: &'a Prepared, changed: &[(usize, Option<Stat>)]) -> Option<&'a str> {
    let mut now = Vec::with_capacity(changed.len());
    for &(i, stat) in changed {
        let was = &p.inputs[i];
        match stat {
            Some(s)
                if was.link.is_none()
                    && crate::dirents::Kind::of_mode(s.mode) == crate::dirents::Kind::Other
                    && s.executable() == was.stat.executable() =>
            {
                now.push(Entry {
                    rel: was.rel.clone(),
                    stat: s,
                    link: None,
                })
            }
            _ => return Some(&was.rel),
        }
    }
    let (first, _) = changed.first()?;
    let Ok((digests, _)) = hashing::hash_entries(&ctx.config.root, &now, &ctx.state.files) else {
        return Some(&p.inputs[*first].rel);
    };
    changed
        .iter()
        .zip(digests)
        .find(|((i, _), d)| *d != p.digests[*i])
        .map(|((i, _), _)| &*p.inputs[*i].rel)
}

/// A run is recorded against the input content hashed before it. An input
/// edited during the run and left so has a newer stat, so the next check
/// hashes it again and runs the task; only an edit undone after the run
/// would go unseen. Stat'ing every input again after the run closes that
/// gap too, at the cost of the check itself: done when the run took at
/// least this many times as long as finding the inputs did (so it adds at
/// most a tenth), and always before a result goes to the shared cache.
const VERIFY_RATIO: u32 = 10;

/// From this many input files on, a fingerprint is worked out on a thread
/// of its own while the task starts (~0.3 ms at 10,000 files): below, the
/// thread would cost more than it saves.
const DEFER_MIN: usize = 4096;

/// Whether to stat the inputs again after a run that took `ran` (see
/// [`VERIFY_RATIO`]).
fn worth_verifying(ran: Duration, found_in: Duration) -> bool {
    ran >= found_in * VERIFY_RATIO
}

/// Restores the task's outputs from the remote cache, replays its log
/// and builds the record a run would have: `None` on a miss or any cache
/// failure (the task then runs).
fn restore(
    ctx: &Context,
    task: &Task,
    p: &mut Prepared,
    cache: &Cache,
    reason: &Reason,
    files: &mut Vec<(String, FileEntry)>,
) -> Option<Option<TaskRecord>> {
    let patterns = output_patterns(ctx, task, p).ok()?;
    let log = cache.restore(&task.name, p.digest(), &patterns)?;
    if ctx.options.explain {
        ctx.reporter
            .explain(&task.name, &format!("restored from cache (it would run: {reason})"));
    }
    ctx.reporter.replay(&task.name, &log);
    // Nothing ran that read the inputs: the outputs are the cache's for
    // the fingerprint they were hashed for.
    match finish(ctx, task, p, files, false) {
        Ok(record) => Some(record),
        Err(message) => {
            ctx.reporter.warn(&format!(
                "the outputs of `{}` restored from the remote cache are incomplete ({message}); running it",
                task.name
            ));
            None
        }
    }
}

/// The task's `outputs`, rendered.
fn output_patterns(ctx: &Context, task: &Task, p: &Prepared) -> Result<Vec<String>, String> {
    let short = fingerprint::short(p.digest());
    let infos = HashMap::new();
    let r = renderer(ctx, &task.name, &infos, Some(&short));
    r.render_list(&task.outputs).map_err(|e| e.to_string())
}

/// After a successful run: check outputs (and, with `verify`, inputs),
/// build the record.
fn finish(
    ctx: &Context,
    task: &Task,
    p: &mut Prepared,
    files: &mut Vec<(String, FileEntry)>,
    verify: bool,
) -> Result<Option<TaskRecord>, String> {
    let root = &ctx.config.root;
    let patterns = output_patterns(ctx, task, p)?;
    let mut outputs = Vec::new();
    // A glob output that matched nothing is only a warning, but the run is
    // not recorded as up to date.
    let mut unrecorded = false;
    if !patterns.is_empty() {
        let res = inputs::resolve(root, &patterns, true).map_err(|e| e.to_string())?;
        if let Some(missing) = res.missing.first() {
            return Err(format!("declared output `{missing}` was not created"));
        }
        for glob in &res.empty {
            ctx.reporter.warn(&format!(
                "output glob `{glob}` of task `{}` matched no file; it will run again next time",
                task.name
            ));
        }
        unrecorded |= !res.empty.is_empty();
        let (digests, fresh) = hashing::hash_entries(root, &res.files, &ctx.state.files).map_err(|e| e.to_string())?;
        files.extend(fresh);
        outputs = res
            .files
            .into_iter()
            .map(|e| e.rel.into_string())
            .zip(digests)
            .collect();
    }
    if unrecorded || task.interactive || (task.inputs.is_none() && !matches!(task.action, Action::Image(_))) {
        return Ok(None);
    }
    // The run must not be recorded against input content it did not see
    // (a file it rewrote with the same content is fine).
    if verify {
        p.list(root)?;
    }
    if verify && let Some(changed) = changed_content(ctx, p, &inputs::changed(root, &p.inputs)) {
        ctx.reporter.warn(&format!(
            "input `{}` changed while `{}` ran; it will run again next time",
            inputs::display_key(changed),
            task.name
        ));
        return Ok(None);
    }
    let finished = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    Ok(Some(TaskRecord {
        fingerprint: *p.digest(),
        tree: p.fingerprint.get().tree.clone(),
        finished,
        parts: patched_parts(ctx, task, p).unwrap_or_else(|| p.take_parts().into()),
        outputs,
        listing: match std::mem::replace(&mut p.listed, Listed::Kept) {
            Listed::Kept => ctx.state.tasks.get(&task.name).and_then(|r| r.listing.clone()),
            Listed::Walked(listing) => listing.map(Arc::new),
        },
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inputs_are_checked_again_after_runs_ten_times_as_long_as_finding_them() {
        let ms = Duration::from_millis;
        assert!(worth_verifying(ms(1000), ms(100)));
        assert!(worth_verifying(ms(5), Duration::ZERO));
        assert!(!worth_verifying(ms(999), ms(100)));
        assert!(!worth_verifying(ms(1), ms(70)));
    }
}
