//! The `run` action: shell lines, run in order.

use super::{ActionError, Compiled, Step};
use crate::config::Config;
use crate::config::template::Template;
use crate::render::Renderer;

pub fn compile(config: &Config, lines: &[Template], r: &Renderer) -> Result<Compiled, ActionError> {
    let mut steps = Vec::new();
    let mut identity = vec!["run".to_string()];
    identity.extend(config.project.shell.iter().cloned());
    for line in lines {
        let text = r.render(line)?;
        identity.push(text.clone());
        steps.push(Step::Shell(text));
    }
    Ok(Compiled {
        steps,
        identity,
        ..Compiled::default()
    })
}

/// The argv to run `line` with: directly when it is plain words and the
/// shell is the default one (no shell process to start), else through it.
pub fn argv_for(shell: &[String], default_shell: bool, line: &str) -> Vec<String> {
    if default_shell && let Some(words) = plain_words(line) {
        return words;
    }
    let mut argv = shell.to_vec();
    argv.push(line.to_string());
    argv
}

/// Words of a line that needs nothing from a shell: no quoting, variables,
/// globs, redirections, operators or builtins.
fn plain_words(line: &str) -> Option<Vec<String>> {
    const SPECIAL: &[char] = &[
        '$', '`', '\'', '"', '\\', '|', '&', ';', '<', '>', '(', ')', '{', '}', '*', '?', '[', ']', '~', '#', '!', '=',
        '\n', '%',
    ];
    if line.contains(SPECIAL) {
        return None;
    }
    let words: Vec<String> = line.split_whitespace().map(str::to_owned).collect();
    let first = words.first()?;
    const BUILTINS: &[&str] = &[
        ".", ":", "alias", "bg", "break", "cd", "command", "continue", "eval", "exec", "exit", "export", "fg",
        "getopts", "hash", "jobs", "read", "readonly", "return", "set", "shift", "source", "times", "trap", "type",
        "ulimit", "umask", "unalias", "unset", "wait", "if", "then", "else", "elif", "fi", "for", "while", "until",
        "do", "done", "case", "esac", "function", "local",
    ];
    (!BUILTINS.contains(&first.as_str())).then_some(words)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_plain_lines_without_a_shell() {
        let sh = vec!["sh".to_string(), "-ec".to_string()];
        assert_eq!(argv_for(&sh, true, "cargo  test -q"), ["cargo", "test", "-q"]);
        assert_eq!(argv_for(&sh, true, "echo $HOME"), ["sh", "-ec", "echo $HOME"]);
        assert_eq!(argv_for(&sh, true, "cd src"), ["sh", "-ec", "cd src"]);
        assert_eq!(argv_for(&sh, true, "a && b"), ["sh", "-ec", "a && b"]);
        assert_eq!(argv_for(&sh, true, "FOO=1 make"), ["sh", "-ec", "FOO=1 make"]);
        assert_eq!(argv_for(&sh, false, "ls"), ["sh", "-ec", "ls"]);
    }
}
