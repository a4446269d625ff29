//! Variable values: CLI, environment, `sh`, `default` — first that applies.
//!
//! Resolution is lazy: a variable is resolved the first time a task in the
//! plan needs it, and its `sh` command runs at most once per invocation.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use indexmap::IndexMap;

use super::diagnostic::{ConfigError, did_you_mean};
use super::model::{Config, VarDef};
use super::template::{Ref, Template};

/// Where a variable's value came from (shown by `--vars`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    Cli,
    Env(String),
    Sh,
    Default,
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Origin::Cli => f.write_str("command line"),
            Origin::Env(name) => write!(f, "env `{name}`"),
            Origin::Sh => f.write_str("sh"),
            Origin::Default => f.write_str("default"),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Value {
    pub value: String,
    pub origin: Origin,
    /// The value as fingerprints see it: volatile variables it was made
    /// from as their placeholders (a volatile variable's own value is
    /// never looked at there).
    pub stable: String,
}

/// Why a variable has no value.
#[derive(Debug, Clone)]
pub struct Missing {
    pub name: String,
    pub detail: String,
}

/// How deep variables may refer to variables (`a` uses `b` uses `c`...).
const MAX_NESTING: usize = 100;

/// The variables of one invocation.
#[derive(Debug)]
pub struct Vars {
    defs: IndexMap<String, VarDef>,
    cli: HashMap<String, String>,
    /// The process environment plus dotenv values (dotenv does not override).
    env: HashMap<String, String>,
    root: PathBuf,
    shell: Vec<String>,
    resolved: Mutex<HashMap<String, Result<Value, Missing>>>,
}

impl Vars {
    /// Applies `NAME=value` assignments; a name may be a variable or its `env`.
    pub fn new(
        config: &Config,
        assignments: &[(String, String)],
        env: HashMap<String, String>,
    ) -> Result<Vars, ConfigError> {
        let mut cli = HashMap::new();
        for (name, value) in assignments {
            let mut matched = false;
            if config.vars.contains_key(name) {
                cli.insert(name.clone(), value.clone());
                matched = true;
            }
            for var in config.vars.values().filter(|v| v.env.as_deref() == Some(name)) {
                cli.entry(var.name.clone()).or_insert_with(|| value.clone());
                matched = true;
            }
            if !matched {
                let candidates = config
                    .vars
                    .values()
                    .flat_map(|v| std::iter::once(v.name.as_str()).chain(v.env.as_deref()));
                return Err(
                    ConfigError::new("unknown-var", format!("unknown variable `{name}` on the command line")).help(
                        did_you_mean(name, candidates).unwrap_or_else(|| {
                            let known: Vec<&str> = config.vars.keys().map(String::as_str).collect();
                            if known.is_empty() {
                                "this montage.toml declares no [vars]".into()
                            } else {
                                format!("known variables: {}", known.join(", "))
                            }
                        }),
                    ),
                );
            }
        }
        Ok(Vars {
            defs: config.vars.clone(),
            cli,
            env,
            root: config.root.clone(),
            shell: config.project.shell.clone(),
            resolved: Mutex::new(HashMap::new()),
        })
    }

    pub fn def(&self, name: &str) -> Option<&VarDef> {
        self.defs.get(name)
    }

    pub fn defs(&self) -> impl Iterator<Item = &VarDef> {
        self.defs.values()
    }

    pub fn env(&self) -> &HashMap<String, String> {
        &self.env
    }

    /// The value of variable `name`, resolving (and memoising) it.
    pub fn get(&self, name: &str) -> Result<Value, Missing> {
        self.get_inner(name, &mut Vec::new())
    }

    fn get_inner(&self, name: &str, stack: &mut Vec<String>) -> Result<Value, Missing> {
        if let Some(r) = self.lock().get(name) {
            return r.clone();
        }
        if stack.iter().any(|s| s == name) {
            return Err(Missing {
                name: name.into(),
                detail: "it refers to itself".into(),
            });
        }
        if stack.len() >= MAX_NESTING {
            // Deeper than any real config: stop before the recursion
            // (one level per variable) runs out of stack.
            return Err(Missing {
                name: name.into(),
                detail: format!(
                    "variables refer to variables more than {MAX_NESTING} levels deep (`{}` → …)",
                    stack[0]
                ),
            });
        }
        stack.push(name.to_string());
        let result = self.compute(name, stack);
        stack.pop();
        self.lock().insert(name.to_string(), result.clone());
        result
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Result<Value, Missing>>> {
        self.resolved.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn compute(&self, name: &str, stack: &mut Vec<String>) -> Result<Value, Missing> {
        let Some(def) = self.defs.get(name) else {
            return Err(Missing {
                name: name.into(),
                detail: "it is not declared in [vars]".into(),
            });
        };
        if let Some(v) = self.cli.get(name) {
            return Ok(Value {
                value: v.clone(),
                origin: Origin::Cli,
                stable: v.clone(),
            });
        }
        if let Some(env_name) = &def.env
            && let Some(v) = self.env.get(env_name).filter(|v| !v.is_empty())
        {
            return Ok(Value {
                value: v.clone(),
                origin: Origin::Env(env_name.clone()),
                stable: v.clone(),
            });
        }
        let mut sh_failure = None;
        if let Some(sh) = &def.sh {
            let script = self.render(sh, stack)?;
            // Output made from a volatile value is as volatile as it.
            let stable = self.render_stable(sh, stack)?;
            match self.run_sh(&script) {
                Ok(out) => {
                    return Ok(Value {
                        stable: if stable == script {
                            out.clone()
                        } else {
                            format!("<volatile {name}>")
                        },
                        value: out,
                        origin: Origin::Sh,
                    });
                }
                Err(e) => sh_failure = Some(e),
            }
        }
        if let Some(default) = &def.default {
            return Ok(Value {
                value: self.render(default, stack)?,
                origin: Origin::Default,
                stable: self.render_stable(default, stack)?,
            });
        }
        let mut how = Vec::new();
        how.push(format!("`mtr TASK {name}=VALUE`"));
        if let Some(env_name) = &def.env {
            how.push(format!("the environment variable `{env_name}`"));
        }
        let mut detail = format!("set it with {}", how.join(" or "));
        if let Some(e) = sh_failure {
            detail = format!("its `sh` command failed ({e}); {detail}");
        }
        Err(Missing {
            name: name.into(),
            detail,
        })
    }

    fn render(&self, t: &Template, stack: &mut Vec<String>) -> Result<String, Missing> {
        self.render_with(t, stack, false)
    }

    /// [`render`](Self::render) as fingerprints see it (see [`Value::stable`]).
    fn render_stable(&self, t: &Template, stack: &mut Vec<String>) -> Result<String, Missing> {
        self.render_with(t, stack, true)
    }

    fn render_with(&self, t: &Template, stack: &mut Vec<String>, stable: bool) -> Result<String, Missing> {
        t.render(|r| match r {
            Ref::Var(v) if stable && self.defs.get(v.as_str()).is_some_and(|d| d.volatile) => {
                // Resolved all the same: a missing value is an error either way.
                self.get_inner(v, stack).map(|_| format!("<volatile {v}>"))
            }
            Ref::Var(v) => self
                .get_inner(v, stack)
                .map(|v| if stable { v.stable } else { v.value }),
            Ref::Env(n) => Ok(self.env.get(n).cloned().unwrap_or_default()),
            Ref::Root => Ok(self.root.display().to_string()),
            Ref::Os => Ok(std::env::consts::OS.into()),
            Ref::Arch => Ok(std::env::consts::ARCH.into()),
            other => Ok(format!("{{{{ {} }}}}", other.display())),
        })
    }

    fn run_sh(&self, script: &str) -> Result<String, String> {
        let (program, args) = self.shell.split_first().ok_or("no shell")?;
        let mut cmd = std::process::Command::new(program);
        cmd.args(args).arg(script).env_clear().envs(&self.env);
        crate::cwd::set_for_child(&mut cmd, &self.root);
        let out = cmd
            .stdin(std::process::Stdio::null())
            .output()
            .map_err(|e| format!("cannot start `{program}`: {e}"))?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
        } else {
            let stderr = String::from_utf8_lossy(&out.stderr);
            let first = stderr.lines().next().unwrap_or("").trim();
            Err(match out.status.code() {
                Some(code) if first.is_empty() => format!("exit status {code}"),
                Some(code) => format!("exit status {code}: {first}"),
                None => "killed by a signal".into(),
            })
        }
    }

    /// Values that must be masked as `***` wherever mtr prints: every
    /// secret variable resolved so far, and those that need no command to
    /// resolve (a task may print `$REGISTRY_TOKEN` without `{{ token }}`).
    pub fn secrets(&self) -> Vec<String> {
        self.defs
            .values()
            .filter(|d| d.secret)
            .filter_map(|d| {
                let known = self.lock().get(&d.name).cloned();
                match known {
                    Some(r) => r.ok(),
                    // Never a command that is not needed (nor one behind
                    // a default that uses other variables).
                    None if d.sh.is_none() && d.default.as_ref().is_none_or(|t| t.refs().next().is_none()) => {
                        self.get(&d.name).ok()
                    }
                    None => None,
                }
            })
            .map(|v| v.value)
            .filter(|v| !v.is_empty())
            .collect()
    }
}

/// The environment tasks start from, and the `(name, value)` pairs read
/// from dotenv files (in file order).
pub type Environment = (HashMap<String, String>, Vec<(String, String)>);

/// The process environment plus values from `dotenv` files under `root`.
/// A dotenv value never overrides the real environment; a missing dotenv
/// file is skipped (it is usually optional, like `.env`).
pub fn environment(root: &Path, dotenv: &[String]) -> Result<Environment, String> {
    let mut env: HashMap<String, String> = std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
        .collect();
    let mut loaded = Vec::new();
    for file in dotenv {
        let path = root.join(file);
        let iter = match dotenvy::from_path_iter(&path) {
            Ok(iter) => iter,
            Err(dotenvy::Error::Io(e)) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(format!("cannot read dotenv file `{file}`: {e}")),
        };
        for item in iter {
            let (k, v) = item.map_err(|e| format!("invalid dotenv file `{file}`: {e}"))?;
            loaded.push((k.clone(), v.clone()));
            env.entry(k).or_insert(v);
        }
    }
    Ok((env, loaded))
}
