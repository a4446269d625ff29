//! Which program a shell line ran that does not exist, to name it when the
//! shell exits 127 ("command not found"): `cd web && npm ci` names `npm`,
//! not `cd`.

use std::path::Path;

/// Words that start a command but run none themselves (shell keywords and
/// builtins); a name among them is never reported missing.
const NOT_PROGRAMS: &[&str] = &[
    "!", "{", "}", "[[", "]]", "case", "do", "done", "elif", "else", "esac", "fi", "for", "function", "if", "in",
    "select", "then", "until", "while", ".", ":", "[", "alias", "bg", "break", "builtin", "cd", "command", "continue",
    "declare", "echo", "eval", "exec", "exit", "export", "false", "fg", "getopts", "hash", "jobs", "kill", "let",
    "local", "printf", "pwd", "read", "readonly", "return", "set", "shift", "source", "test", "time", "times", "trap",
    "true", "type", "typeset", "ulimit", "umask", "unalias", "unset", "wait",
];

/// Words after which the next word is the program to run (`exec npm`).
const PREFIXES: &[&str] = &[
    "!", "builtin", "command", "exec", "time", "then", "do", "else", "elif", "if", "while", "until", "{",
];

/// The first program `line` starts that is not on `path` (a `PATH`
/// value), or not there at all when named with a `/`: the first word of
/// each command after `;`, `&`, `|`, `(`, `)` and newlines, and after
/// keywords such as `then` and prefixes such as `exec`, skipping variable
/// assignments. A guess: quoting and expansions are not interpreted.
pub fn find(line: &str, path: Option<&str>) -> Option<String> {
    commands(line)
        .into_iter()
        .find(|word| !exists(word, path))
        .map(str::to_string)
}

/// The words that name a program to run, in order.
fn commands(line: &str) -> Vec<&str> {
    // `2>&1` is a redirection, not a `&` between commands.
    line.split(['\n', ';', '&', '|', '(', ')', '`'])
        .filter_map(|segment| {
            segment
                .split_whitespace()
                .find(|w| !is_assignment(w) && !PREFIXES.contains(w))
        })
        .filter(|word| !NOT_PROGRAMS.contains(word) && is_plain(word) && !is_fd(word))
        .collect()
}

/// What `2>&1` leaves after its `&`: a file descriptor number.
fn is_fd(word: &str) -> bool {
    word.bytes().all(|b| b.is_ascii_digit())
}

fn is_assignment(word: &str) -> bool {
    word.split_once('=')
        .is_some_and(|(name, _)| !name.is_empty() && name.chars().all(|c| c == '_' || c.is_ascii_alphanumeric()))
}

/// A word that names a program as written (no expansion, quote or
/// redirection to interpret).
fn is_plain(word: &str) -> bool {
    !word.is_empty() && !word.contains(['$', '"', '\'', '<', '>', '*', '?', '=', '\\', '{', '}'])
}

fn exists(word: &str, path: Option<&str>) -> bool {
    if word.contains('/') {
        return Path::new(word).exists();
    }
    let Some(path) = path else {
        // Nothing to search: do not guess.
        return true;
    };
    std::env::split_paths(path).any(|dir| dir.join(word).is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn missing(line: &str) -> Option<String> {
        find(line, Some("/usr/bin:/bin"))
    }

    #[test]
    fn names_the_program_not_the_builtin_before_it() {
        assert_eq!(missing("cd sub && nosuch ci").as_deref(), Some("nosuch"));
        assert_eq!(missing("if true; then nosuch; fi").as_deref(), Some("nosuch"));
        assert_eq!(missing("set -x; nosuch").as_deref(), Some("nosuch"));
        assert_eq!(missing("exec nosuch --flag").as_deref(), Some("nosuch"));
        assert_eq!(missing("ls >/dev/null && nosuch arg").as_deref(), Some("nosuch"));
        assert_eq!(missing("FOO=1 BAR=2 nosuch").as_deref(), Some("nosuch"));
        assert_eq!(missing("ls | nosuch").as_deref(), Some("nosuch"));
        assert_eq!(missing("ls 2>&1 | nosuch").as_deref(), Some("nosuch"));
        assert_eq!(missing("for f in a b; do nosuch $f; done").as_deref(), Some("nosuch"));
        assert_eq!(missing("(cd x; nosuch)").as_deref(), Some("nosuch"));
        assert_eq!(missing("./nosuch.sh").as_deref(), Some("./nosuch.sh"));
    }

    #[test]
    fn names_nothing_when_every_program_exists_or_is_unknowable() {
        assert_eq!(missing("cd sub && ls"), None);
        assert_eq!(missing("$TOOL --version"), None);
        assert_eq!(missing("echo hi > out.txt"), None);
        assert_eq!(find("nosuch", None), None);
    }
}
