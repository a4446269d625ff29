//! Rendering a task's templates, in two modes: for its fingerprint
//! (`{{ hash }}` left as written, volatile variables as a placeholder) and
//! for running it (every value real).

use std::collections::{BTreeSet, HashMap};

use crate::config::template::{Ref, Template};
use crate::config::vars::{Missing, Vars};

/// What a dependency passes on to its dependants' templates.
#[derive(Debug, Clone, Default)]
pub struct DepInfo {
    pub hash: String,
    pub image: Option<String>,
}

/// Renders templates for one task.
#[derive(Debug, Clone, Copy)]
pub struct Renderer<'a> {
    pub vars: &'a Vars,
    pub task: &'a str,
    pub root: &'a str,
    /// `Some(hash)` when rendering to run; `None` for the fingerprint.
    pub hash: Option<&'a str>,
    pub deps: &'a HashMap<String, DepInfo>,
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum RenderError {
    #[error("variable `{}` has no value: {}", .0.name, .0.detail)]
    Missing(Missing),
    #[error("`{{{{ {0} }}}}` is not known yet: task `{1}` has not run in this invocation")]
    Unknown(String, String),
}

impl Renderer<'_> {
    pub fn for_fingerprint(&self) -> bool {
        self.hash.is_none()
    }

    pub fn render(&self, t: &Template) -> Result<String, RenderError> {
        t.render(|r| self.lookup(r))
    }

    pub fn render_opt(&self, t: &Option<Template>) -> Result<Option<String>, RenderError> {
        t.as_ref().map(|t| self.render(t)).transpose()
    }

    /// Renders a list, dropping elements that expand to the empty string.
    pub fn render_list(&self, ts: &[Template]) -> Result<Vec<String>, RenderError> {
        let mut out = Vec::new();
        for t in ts {
            let s = self.render(t)?;
            if !s.is_empty() {
                out.push(s);
            }
        }
        Ok(out)
    }

    /// Like [`render_list`](Self::render_list), also splitting elements at commas.
    pub fn render_split(&self, ts: &[Template]) -> Result<Vec<String>, RenderError> {
        Ok(self
            .render_list(ts)?
            .iter()
            .flat_map(|s| s.split(','))
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect())
    }

    pub fn render_map(&self, m: &[(String, Template)]) -> Result<Vec<(String, String)>, RenderError> {
        m.iter().map(|(k, t)| Ok((k.clone(), self.render(t)?))).collect()
    }

    fn lookup(&self, r: &Ref) -> Result<String, RenderError> {
        Ok(match r {
            Ref::Var(name) => {
                let v = self.vars.get(name).map_err(RenderError::Missing)?;
                let volatile = self.vars.def(name).is_some_and(|d| d.volatile);
                match (volatile, self.for_fingerprint()) {
                    (true, true) => format!("<volatile {name}>"),
                    (false, true) => v.stable,
                    (_, false) => v.value,
                }
            }
            Ref::Root => self.root.to_string(),
            Ref::Task => self.task.to_string(),
            Ref::Hash => match self.hash {
                Some(h) => h.to_string(),
                None => "{{ hash }}".to_string(),
            },
            Ref::Os => std::env::consts::OS.to_string(),
            Ref::Arch => std::env::consts::ARCH.to_string(),
            Ref::Env(name) => self.vars.env().get(name).cloned().unwrap_or_default(),
            Ref::TaskHash(t) => self
                .deps
                .get(t)
                .map(|d| d.hash.clone())
                .ok_or_else(|| RenderError::Unknown(r.display(), t.clone()))?,
            Ref::TaskImage(t) => self
                .deps
                .get(t)
                .and_then(|d| d.image.clone())
                .ok_or_else(|| RenderError::Unknown(r.display(), t.clone()))?,
        })
    }
}

/// The variables a set of templates names directly (each resolves the
/// variables it needs itself, lazily).
pub fn used_vars<'t>(templates: impl IntoIterator<Item = &'t Template>) -> BTreeSet<String> {
    templates
        .into_iter()
        .flat_map(|t| t.refs())
        .filter_map(|r| match r {
            Ref::Var(v) => Some(v.clone()),
            _ => None,
        })
        .collect()
}
