//! `{{ name }}` templates: parsed once at load time, rendered per task.
//!
//! There is no logic in templates: a placeholder names a variable or a
//! built-in (`root`, `task`, `hash`, `os`, `arch`, `env.NAME`,
//! `tasks.NAME.hash`, `tasks.NAME.image`), and `{{{{` is a literal `{{`.

use std::ops::Range;

use serde::{Deserialize, Serialize};

/// A parsed template string.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Template {
    pub parts: Vec<Part>,
    /// Span of the whole string value in the config file.
    pub span: Range<usize>,
    /// An env value written `{ value = "...", secret = true }`: what it
    /// renders to is masked as `***` wherever mtr prints.
    pub secret: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Part {
    Lit(String),
    Ref(Ref),
}

/// What a placeholder refers to.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Ref {
    Var(String),
    Root,
    Task,
    Hash,
    Os,
    Arch,
    Env(String),
    TaskHash(String),
    TaskImage(String),
}

impl Ref {
    /// The placeholder text as a user writes it, e.g. `tasks.dev.hash`.
    pub fn display(&self) -> String {
        match self {
            Ref::Var(v) => v.clone(),
            Ref::Root => "root".into(),
            Ref::Task => "task".into(),
            Ref::Hash => "hash".into(),
            Ref::Os => "os".into(),
            Ref::Arch => "arch".into(),
            Ref::Env(n) => format!("env.{n}"),
            Ref::TaskHash(t) => format!("tasks.{t}.hash"),
            Ref::TaskImage(t) => format!("tasks.{t}.image"),
        }
    }
}

/// A template syntax error, with the byte range inside the string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateError {
    pub message: String,
    pub offset: Range<usize>,
}

impl Template {
    /// A template with no placeholders.
    pub fn literal(text: impl Into<String>) -> Template {
        Template {
            parts: vec![Part::Lit(text.into())],
            span: 0..0,
            secret: false,
        }
    }

    pub fn parse(text: &str, span: Range<usize>) -> Result<Template, TemplateError> {
        Template::parse_all(text, span).map_err(|mut errors| errors.swap_remove(0))
    }

    /// [`parse`](Self::parse), reporting every bad placeholder of the string
    /// rather than the first (never an empty list).
    pub fn parse_all(text: &str, span: Range<usize>) -> Result<Template, Vec<TemplateError>> {
        if !text.contains("{{") {
            return Ok(Template {
                parts: vec![Part::Lit(text.to_owned())],
                span,
                secret: false,
            });
        }
        let mut parts = Vec::new();
        let mut errors = Vec::new();
        let mut lit = String::new();
        let mut rest = text;
        let mut pos = 0;
        while let Some(open) = rest.find("{{") {
            lit.push_str(&rest[..open]);
            let after = &rest[open..];
            if let Some(tail) = after.strip_prefix("{{{{") {
                lit.push_str("{{");
                rest = tail;
                pos += open + 4;
                continue;
            }
            let Some(close) = after.find("}}") else {
                errors.push(TemplateError {
                    message: "unclosed `{{`".into(),
                    offset: pos + open..text.len(),
                });
                rest = "";
                break;
            };
            let inner = after[2..close].trim();
            match parse_ref(inner) {
                Some(r) => {
                    if !lit.is_empty() {
                        parts.push(Part::Lit(std::mem::take(&mut lit)));
                    }
                    parts.push(Part::Ref(r));
                }
                None => errors.push(TemplateError {
                    message: if inner.is_empty() {
                        "empty `{{ }}`".into()
                    } else {
                        format!("`{inner}` is not a valid variable name")
                    },
                    offset: pos + open..pos + open + close + 2,
                }),
            }
            rest = &after[close + 2..];
            pos += open + close + 2;
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        lit.push_str(rest);
        if !lit.is_empty() || parts.is_empty() {
            parts.push(Part::Lit(lit));
        }
        Ok(Template {
            parts,
            span,
            secret: false,
        })
    }

    pub fn refs(&self) -> impl Iterator<Item = &Ref> {
        self.parts.iter().filter_map(|p| match p {
            Part::Ref(r) => Some(r),
            Part::Lit(_) => None,
        })
    }

    /// The literal text when the template has no placeholders.
    pub fn as_literal(&self) -> Option<&str> {
        match self.parts.as_slice() {
            [Part::Lit(s)] => Some(s),
            _ => None,
        }
    }

    /// Renders with `lookup` supplying each placeholder's value.
    pub fn render<E>(&self, mut lookup: impl FnMut(&Ref) -> Result<String, E>) -> Result<String, E> {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Lit(s) => out.push_str(s),
                Part::Ref(r) => out.push_str(&lookup(r)?),
            }
        }
        Ok(out)
    }
}

/// The built-in placeholders without an argument, for did-you-mean.
pub const BUILTINS: &[&str] = &["root", "task", "hash", "os", "arch"];

/// What a placeholder that is not valid may have meant to be: the
/// built-ins, and for `tasks.NAME.xyz` (or a misspelt `tasks`) the two
/// fields of that task.
pub fn builtin_candidates(inner: &str) -> Vec<String> {
    let mut out: Vec<String> = BUILTINS.iter().map(|b| b.to_string()).collect();
    if let Some((_, rest)) = inner.split_once('.') {
        let task = rest.rsplit_once('.').map_or(rest, |(task, _)| task);
        if is_task_name(task) {
            out.push(format!("tasks.{task}.hash"));
            out.push(format!("tasks.{task}.image"));
        }
    }
    out
}

pub fn is_var_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

pub fn is_task_name(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | ':'))
}

fn parse_ref(inner: &str) -> Option<Ref> {
    match inner {
        "root" => return Some(Ref::Root),
        "task" => return Some(Ref::Task),
        "hash" => return Some(Ref::Hash),
        "os" => return Some(Ref::Os),
        "arch" => return Some(Ref::Arch),
        _ => {}
    }
    if let Some(name) = inner.strip_prefix("env.") {
        return (!name.is_empty() && !name.contains(char::is_whitespace)).then(|| Ref::Env(name.into()));
    }
    if let Some(rest) = inner.strip_prefix("tasks.") {
        let (task, field) = rest.rsplit_once('.')?;
        if !is_task_name(task) {
            return None;
        }
        return match field {
            "hash" => Some(Ref::TaskHash(task.into())),
            "image" => Some(Ref::TaskImage(task.into())),
            _ => None,
        };
    }
    is_var_name(inner).then(|| Ref::Var(inner.into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(t: &str) -> String {
        Template::parse(t, 0..0)
            .unwrap()
            .render::<()>(|r| Ok(format!("<{}>", r.display())))
            .unwrap()
    }

    #[test]
    fn renders_placeholders_and_literals() {
        assert_eq!(render("a {{x}} b {{  y_2 }}"), "a <x> b <y_2>");
        assert_eq!(render("{{{{ x }}"), "{{ x }}");
        assert_eq!(
            render("{{ tasks.dev-x.hash }}:{{env.HOME}}"),
            "<tasks.dev-x.hash>:<env.HOME>"
        );
        assert_eq!(render(""), "");
        assert_eq!(render("}} plain"), "}} plain");
    }

    #[test]
    fn rejects_bad_placeholders() {
        for bad in ["{{ x", "{{ }}", "{{ a b }}", "{{ tasks.x.nope }}", "{{ 1x }}"] {
            assert!(Template::parse(bad, 0..0).is_err(), "{bad}");
        }
    }

    #[test]
    fn reports_every_bad_placeholder() {
        let errors = Template::parse_all("{{ a b }} {{ ok }} {{ }} {{ x", 0..0).unwrap_err();
        let found: Vec<(&str, Range<usize>)> = errors.iter().map(|e| (e.message.as_str(), e.offset.clone())).collect();
        assert_eq!(
            found,
            [
                ("`a b` is not a valid variable name", 0..9),
                ("empty `{{ }}`", 19..24),
                ("unclosed `{{`", 25..29),
            ]
        );
    }
}
