//! A config error that points into `montage.toml`: message, labelled spans, hint.

use std::fmt;
use std::ops::Range;
use std::sync::Arc;

use miette::{Diagnostic, LabeledSpan, NamedSource, SourceCode};

/// The source text of a config file, shared by all its diagnostics.
pub type Source = Arc<NamedSource<String>>;

/// A source with no text, until the real one is set.
pub fn empty_source() -> Source {
    Arc::new(NamedSource::new("", String::new()))
}

/// One error found while loading or checking `montage.toml`.
#[derive(Debug, Clone)]
pub struct ConfigError {
    pub code: &'static str,
    pub message: String,
    pub labels: Vec<(Range<usize>, String)>,
    pub help: Option<String>,
    pub source: Option<Source>,
}

impl ConfigError {
    pub fn new(code: &'static str, message: impl Into<String>) -> Self {
        ConfigError {
            code,
            message: message.into(),
            labels: Vec::new(),
            help: None,
            source: None,
        }
    }

    pub fn label(mut self, span: Range<usize>, text: impl Into<String>) -> Self {
        self.labels.push((span, text.into()));
        self
    }

    pub fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    pub fn maybe_help(mut self, help: Option<String>) -> Self {
        if help.is_some() {
            self.help = help;
        }
        self
    }

    pub fn with_source(mut self, source: &Source) -> Self {
        self.source = Some(source.clone());
        self
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ConfigError {}

impl Diagnostic for ConfigError {
    fn code<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        Some(Box::new(format!("mtr::{}", self.code)))
    }

    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.help.as_ref().map(|h| Box::new(h) as Box<dyn fmt::Display>)
    }

    fn source_code(&self) -> Option<&dyn SourceCode> {
        self.source.as_deref().map(|s| s as &dyn SourceCode)
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        if self.source.is_none() || self.labels.is_empty() {
            return None;
        }
        Some(Box::new(self.labels.iter().map(|(span, text)| {
            LabeledSpan::new_with_span(Some(text.clone()), span.clone())
        })))
    }
}

/// "did you mean `x`?" for the closest of `candidates`, if any is close.
pub fn did_you_mean<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<String> {
    closest(name, candidates).map(|c| format!("did you mean `{c}`?"))
}

/// The candidate most similar to `name`, when similar enough to be a typo:
/// the same but for case, a few edits away for its length (`rn` → `run`,
/// `dpes` → `deps`; swapping two letters is one edit), or close by
/// Jaro-Winkler (a long shared prefix). Very different names get nothing:
/// `x` is not a typo of `a`.
pub fn closest<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let lower = name.to_lowercase();
    candidates
        .into_iter()
        .filter(|c| *c != name)
        .filter_map(|c| {
            let distance = strsim::osa_distance(&lower, &c.to_lowercase());
            let longest = lower.chars().count().max(c.chars().count());
            let similarity = strsim::jaro_winkler(name, c);
            let close = distance <= (longest + 1) / 3 || similarity > 0.8;
            // Fewest edits first (0: only the case differs), then the most similar.
            close.then_some((distance, similarity, c))
        })
        .min_by(|a, b| a.0.cmp(&b.0).then(b.1.total_cmp(&a.1)))
        .map(|(_, _, c)| c)
}

#[cfg(test)]
mod tests {
    use super::closest;

    #[test]
    fn suggests_typos_case_and_short_names() {
        let keys = ["description", "deps", "run", "dir", "env", "aliases"];
        assert_eq!(closest("rn", keys), Some("run"));
        assert_eq!(closest("dpes", keys), Some("deps"));
        assert_eq!(closest("RUN", keys), Some("run"));
        assert_eq!(closest("GOOD_1", ["Good_1", "good"]), Some("Good_1"));
        assert_eq!(closest("T", ["t", "b"]), Some("t"));
        assert_eq!(closest("rot", ["root", "task", "os"]), Some("root"));
        assert_eq!(
            closest("tasks.b.hsh", ["tasks.b.hash", "tasks.b.image"]),
            Some("tasks.b.hash")
        );
        assert_eq!(closest("dev-tset", ["dev-test", "dev"]), Some("dev-test"));
    }

    #[test]
    fn does_not_suggest_very_different_names() {
        assert_eq!(closest("x", ["a", "os"]), None);
        assert_eq!(closest("colour", ["name", "shell", "dotenv", "default"]), None);
        assert_eq!(closest("xyzzy", ["build", "test"]), None);
        assert_eq!(closest("ab", ["cd", "os"]), None);
    }
}
