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
/// value), or, named by an absolute path, not there at all: the first word
/// of each command after `;`, `&`, `|`, `(`, `)` and newlines (outside
/// quotes), and after keywords such as `then` and prefixes such as
/// `exec`, skipping variable assignments. A guess that names nothing when
/// unsure: a command exits 127 for reasons of its own too.
pub fn find(line: &str, path: Option<&str>) -> Option<String> {
    commands(line).into_iter().find(|word| !exists(word, path))
}

/// The words that name a program to run, in order.
fn commands(line: &str) -> Vec<String> {
    segments(line)
        .into_iter()
        .filter_map(|words| {
            words
                .into_iter()
                .find(|(w, quoted)| *quoted || (!is_assignment(w) && !PREFIXES.contains(&w.as_str())))
        })
        .filter(|(word, quoted)| !quoted && !NOT_PROGRAMS.contains(&word.as_str()) && is_plain(word) && !is_fd(word))
        .map(|(word, _)| word)
        .collect()
}

/// The words of each simple command of `line`, each with whether any of
/// it was quoted or escaped; quotes are honoured, expansions are not.
fn segments(line: &str) -> Vec<Vec<(String, bool)>> {
    let mut out = vec![Vec::new()];
    let mut word: Option<(String, bool)> = None;
    let mut chars = line.chars();
    let end_word = |out: &mut Vec<Vec<(String, bool)>>, word: &mut Option<(String, bool)>| {
        if let Some(w) = word.take() {
            out.last_mut().expect("one segment at least").push(w);
        }
    };
    while let Some(c) = chars.next() {
        match c {
            '\n' | ';' | '&' | '|' | '(' | ')' | '`' => {
                end_word(&mut out, &mut word);
                out.push(Vec::new());
            }
            c if c.is_whitespace() => end_word(&mut out, &mut word),
            '\'' | '"' => {
                let w = word.get_or_insert_with(Default::default);
                w.1 = true;
                let mut escaped = false;
                for q in chars.by_ref() {
                    match q {
                        _ if escaped => escaped = false,
                        '\\' if c == '"' => escaped = true,
                        _ if q == c => break,
                        _ => {}
                    }
                    w.0.push(q);
                }
            }
            '\\' => {
                let w = word.get_or_insert_with(Default::default);
                w.1 = true;
                w.0.extend(chars.next());
            }
            c => word.get_or_insert_with(Default::default).0.push(c),
        }
    }
    end_word(&mut out, &mut word);
    out
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
        // A relative path depends on the directory the line is in by then
        // (`cd scripts && ./test.sh`): unknown, so not reported.
        return !word.starts_with('/') || Path::new(word).exists();
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
        assert_eq!(missing("/nosuch/tool --flag").as_deref(), Some("/nosuch/tool"));
        assert_eq!(missing("echo 'a; b' && nosuch").as_deref(), Some("nosuch"));
    }

    #[test]
    fn names_nothing_when_every_program_exists_or_is_unknowable() {
        assert_eq!(missing("cd sub && ls"), None);
        assert_eq!(missing("$TOOL --version"), None);
        assert_eq!(missing("echo hi > out.txt"), None);
        assert_eq!(find("nosuch", None), None);
        // A command that exits 127 itself: its quoted arguments are not
        // commands, and a relative path may be relative to a `cd`.
        assert_eq!(missing("ls -c 'import sys; sys.exit(127)'"), None);
        assert_eq!(missing("ls -c \"a; b(1)\" \\; c"), None);
        assert_eq!(missing("cd scripts && ./test.sh"), None);
        assert_eq!(missing("'nosuch' arg"), None);
    }
}
