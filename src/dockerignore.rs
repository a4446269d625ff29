//! Docker `.dockerignore` semantics for one build context.
//!
//! This module owns three things: finding the ignore file Docker would use for a build
//! (`<Dockerfile>.dockerignore` first, then `<context>/.dockerignore`), parsing it exactly
//! like docker/cli and BuildKit do (moby/patternmatcher's `ignorefile.ReadAll` followed by
//! `patternmatcher.New`), and answering "does Docker leave this context-relative path out of
//! the build context?" with `MatchesOrParentMatches` semantics. It never walks the filesystem
//! itself; callers use [`DockerIgnore::is_excluded`] and [`DockerIgnore::can_skip_dir`] while
//! walking.
//!
//! Patterns are compiled once into a small token program that runs as a bit-set NFA. One
//! pass over a path tests the path *and* all of its parent directories (a parent matches
//! exactly when the automaton accepts just before a `/`), without allocating for patterns of
//! up to about 250 characters. Literal prefixes and suffixes of a pattern are checked first,
//! so most paths are rejected without running the automaton at all.

use std::ffi::OsString;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

/// Docker's .dockerignore rules for one build context.
///
/// Note that Docker always sends the Dockerfile and the ignore file to the daemon even when
/// a pattern excludes them, because the builder needs them (`COPY`/`ADD` still cannot see
/// them). This type does not special-case either file: a caller computing what the build
/// depends on must add the Dockerfile itself, and can use the path returned by
/// [`DockerIgnore::load`] for the ignore file.
#[derive(Debug, Clone, Default)]
pub struct DockerIgnore {
    /// Rules in file order; the last one that matches a path decides.
    rules: Vec<Rule>,
}

#[derive(Debug, Clone)]
struct Rule {
    /// A `!pattern` line: re-includes what earlier rules excluded.
    exception: bool,
    matcher: Matcher,
}

#[derive(Debug, Clone)]
enum Matcher {
    /// A pattern without wildcards (escapes already resolved) names exactly one path, so a
    /// string comparison replaces the automaton. This is the most common kind of line.
    Literal(String),
    Glob(Glob),
}

/// A compiled wildcard pattern. NFA state `i < tokens.len()` means "about to match
/// `tokens[i]`", state `tokens.len()` accepts, and every [`Token::DirStar`] owns one extra
/// state above that for "inside a directory name it is skipping".
#[derive(Debug, Clone)]
struct Glob {
    tokens: Vec<Token>,
    /// `mid_owner[k]` is the token index of the `DirStar` owning state `accept + 1 + k`.
    mid_owner: Vec<usize>,
    states: usize,
    /// Literal text every match starts with / ends with; cheap tests that reject most paths
    /// before the automaton runs (think `**/*.log` against a source tree).
    prefix: String,
    suffix: String,
}

#[derive(Debug, Clone)]
enum Token {
    /// One literal character (escapes are resolved at compile time).
    Char(char),
    /// `?`: any one character except `/`.
    AnyChar,
    /// `[...]` / `[^...]`.
    Class(Class),
    /// `*`: any run of characters without `/`.
    Star,
    /// `**` (or `**/`) with more pattern after it: patternmatcher's `(.*/)?`, i.e. nothing or
    /// any string ending in `/`. `mid` is the state used until the next `/` is consumed.
    DirStar { mid: usize },
    /// `**` at the end of the pattern (`.*`), or the leading-`**` suffix quirk: anything.
    AnyAll,
}

#[derive(Debug, Clone)]
struct Class {
    negated: bool,
    ranges: Box<[(char, char)]>,
}

impl Class {
    fn matches(&self, c: char) -> bool {
        // Like Docker's regexp (and Go's filepath.Match), a class can match `/`.
        self.ranges.iter().any(|&(lo, hi)| lo <= c && c <= hi) != self.negated
    }
}

impl DockerIgnore {
    /// Parses the text of a .dockerignore file. Invalid patterns (e.g. an unclosed `[`) give
    /// Err with a message naming the line.
    ///
    /// # Errors
    ///
    /// A malformed pattern (bad `[` class, trailing `\`, a bare `!`), as `line N: ...`.
    pub fn parse(text: &str) -> Result<DockerIgnore, String> {
        // ignorefile.ReadAll strips a UTF-8 byte order mark from the first line.
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let mut rules = Vec::new();
        for (index, line) in text.lines().enumerate() {
            let line_no = index + 1;
            // Comments are recognised before trimming: only a `#` in column 1 starts one,
            // ` #x` is the pattern `#x`.
            if line.starts_with('#') {
                continue;
            }
            let line = line.trim();
            if line.is_empty() {
                continue;
            }
            let (exception, body) = match line.strip_prefix('!') {
                Some(rest) => (true, rest.trim()),
                None => (false, line),
            };
            let cleaned = clean(body);
            // Patterns are relative to the context root, so `/foo` means `foo`; a lone `/`
            // is kept as is (and matches nothing), as in ReadAll.
            let pattern = match cleaned.strip_prefix('/') {
                Some(rest) if !rest.is_empty() => rest,
                _ => cleaned.as_str(),
            };
            // patternmatcher.New re-cleans `!` + pattern, which turns `!` and `!/` into a bare
            // `!` and rejects it.
            if exception && (body.is_empty() || pattern == "/") {
                return Err(format!(
                    "line {line_no}: illegal exclusion pattern {line:?}: `!` needs a pattern"
                ));
            }
            let matcher = Matcher::compile(pattern)
                .map_err(|reason| format!("line {line_no}: invalid pattern {line:?}: {reason}"))?;
            rules.push(Rule { exception, matcher });
        }
        Ok(DockerIgnore { rules })
    }

    /// Loads `<dockerfile>.dockerignore` if it exists, else `<context>/.dockerignore`, else an
    /// empty (nothing excluded) set.
    /// Returns the path that was used too (None when no file), for use as a fingerprint input.
    ///
    /// `dockerfile` is the Dockerfile's filesystem path as the caller resolved it (like
    /// `docker build -f`), so the specific ignore file sits next to the Dockerfile, e.g.
    /// `docker/app.Dockerfile.dockerignore`.
    ///
    /// # Errors
    ///
    /// Reading an existing ignore file fails, or it does not parse (`InvalidData`, naming the
    /// file and line).
    pub fn load(context: &Path, dockerfile: &Path) -> io::Result<(DockerIgnore, Option<PathBuf>)> {
        let mut specific = OsString::from(dockerfile.as_os_str());
        specific.push(".dockerignore");
        for path in [PathBuf::from(specific), context.join(".dockerignore")] {
            let bytes = match fs::read(&path) {
                Ok(bytes) => bytes,
                Err(err) if err.kind() == io::ErrorKind::NotFound => continue,
                Err(err) => {
                    return Err(io::Error::new(err.kind(), format!("reading {}: {err}", path.display())));
                }
            };
            // Go reads bytes; a stray invalid byte must not make the whole file unusable.
            let text = String::from_utf8_lossy(&bytes);
            let ignore = Self::parse(&text)
                .map_err(|msg| io::Error::new(io::ErrorKind::InvalidData, format!("{}: {msg}", path.display())))?;
            return Ok((ignore, Some(path)));
        }
        Ok((DockerIgnore::default(), None))
    }

    /// Whether a context-relative path (with `/` separators, no leading `./`) is excluded from
    /// the build context.
    ///
    /// A path is excluded when the last rule matching it, or any of its parent directories,
    /// is not an exception. The context root (`""` or `"."`) is never excluded.
    pub fn is_excluded(&self, rel_path: &str) -> bool {
        let path = normalize(rel_path);
        if path.is_empty() {
            return false;
        }
        let mut excluded = false;
        for rule in &self.rules {
            // A rule can only flip the current verdict: exclusions matter while the path is
            // included, exceptions while it is excluded. Skipping the others is what
            // patternmatcher does and saves most of the matching work.
            if rule.exception != excluded {
                continue;
            }
            if rule.matcher.matches_self_or_parent(path) {
                excluded = !rule.exception;
            }
        }
        excluded
    }

    /// Whether a whole directory can be skipped when walking: true only if the directory is
    /// excluded AND no exception pattern could re-include anything below it.
    ///
    /// Unlike Docker's literal-prefix shortcut this also honours wildcard exceptions such as
    /// `!**/*.go`, so skipping never hides a file [`Self::is_excluded`] would keep.
    pub fn can_skip_dir(&self, rel_dir: &str) -> bool {
        let dir = normalize(rel_dir);
        if dir.is_empty() {
            return false;
        }
        let Some(last) = self
            .rules
            .iter()
            .rposition(|rule| rule.matcher.matches_self_or_parent(dir))
        else {
            return false;
        };
        if self.rules[last].exception {
            return false;
        }
        // A descendant is matched by every rule that matches `dir` (parent semantics) and
        // possibly by rules that only match strictly below `dir`. Only an exception of the
        // latter kind, placed after the rule deciding `dir`, can flip it back to included.
        !self.rules[last + 1..]
            .iter()
            .any(|rule| rule.exception && rule.matcher.can_match_below(dir))
    }

    /// True when there are no patterns.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }
}

/// Tolerates `./` prefixes and stray slashes around a caller's path without allocating;
/// `""` stands for the context root.
fn normalize(path: &str) -> &str {
    let mut path = path;
    while let Some(rest) = path.strip_prefix("./") {
        path = rest;
    }
    let path = path.trim_matches('/');
    if path == "." { "" } else { path }
}

/// Go's `path.Clean` for `/`-separated paths: drops empty and `.` elements, resolves `..`
/// against the preceding element, and returns `.` for an empty result.
fn clean(path: &str) -> String {
    let rooted = path.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if parts.last().is_some_and(|last| *last != "..") {
                    parts.pop();
                } else if !rooted {
                    // `..` cannot climb above the root of a rooted path.
                    parts.push("..");
                }
            }
            _ => parts.push(part),
        }
    }
    let joined = parts.join("/");
    if rooted {
        format!("/{joined}")
    } else if joined.is_empty() {
        ".".to_owned()
    } else {
        joined
    }
}

impl Matcher {
    /// Compiles one cleaned pattern. Syntax follows Go's `filepath.Match` (which Docker uses
    /// to validate) plus `**`, with the matching behaviour of patternmatcher's regexp.
    fn compile(pattern: &str) -> Result<Matcher, String> {
        let chars: Vec<char> = pattern.chars().collect();
        // patternmatcher turns a leading `**` whose remainder has no other metacharacter into
        // `strings.HasSuffix`, so `**.log` excludes `*.log` at any depth (its regexp would
        // only match files named `.log`). Reproduce that; it is what Docker really sends.
        let suffix_quirk = pattern
            .strip_prefix("**")
            .is_some_and(|rest| !rest.starts_with('/') && !rest.contains(['*', '?', '[', ']', '\\']));
        let mut tokens = Vec::new();
        let mut literal = String::new();
        let mut is_literal = true;
        let mut i = 0;
        while let Some(&c) = chars.get(i) {
            i += 1;
            let token = match c {
                '*' if chars.get(i) == Some(&'*') => {
                    i += 1;
                    // `**/` is the same token as `**`: the slash is part of `(.*/)?`.
                    if chars.get(i) == Some(&'/') {
                        i += 1;
                    }
                    if i == chars.len() || suffix_quirk {
                        Token::AnyAll
                    } else {
                        Token::DirStar { mid: 0 }
                    }
                }
                '*' => Token::Star,
                '?' => Token::AnyChar,
                '[' => Token::Class(parse_class(&chars, &mut i)?),
                '\\' => match chars.get(i) {
                    Some(&escaped) => {
                        i += 1;
                        Token::Char(escaped)
                    }
                    None => return Err("trailing `\\` escapes nothing".to_owned()),
                },
                c => Token::Char(c),
            };
            match token {
                Token::Char(c) => literal.push(c),
                _ => is_literal = false,
            }
            tokens.push(token);
        }
        if is_literal {
            return Ok(Matcher::Literal(literal));
        }
        Ok(Matcher::Glob(Glob::new(tokens)))
    }

    /// Whether the pattern matches `path` or one of its parent directories.
    fn matches_self_or_parent(&self, path: &str) -> bool {
        match self {
            Matcher::Literal(lit) => path
                .strip_prefix(lit.as_str())
                .is_some_and(|rest| rest.is_empty() || rest.starts_with('/')),
            Matcher::Glob(glob) => glob.matches_self_or_parent(path),
        }
    }

    /// Whether the pattern could match some path strictly below directory `dir`
    /// (conservative: may say yes for a path that cannot exist, never no wrongly).
    fn can_match_below(&self, dir: &str) -> bool {
        match self {
            Matcher::Literal(lit) => lit
                .strip_prefix(dir)
                .and_then(|rest| rest.strip_prefix('/'))
                .is_some_and(|rest| !rest.is_empty()),
            Matcher::Glob(glob) => glob.can_match_below(dir),
        }
    }
}

/// Parses a character class after its `[`, leaving `i` after the closing `]`. Rejects what
/// `filepath.Match` rejects (empty class, unescaped `-`/`]` in a range position, no closing
/// `]`) and reversed ranges, which Docker's regexp fails on.
fn parse_class(chars: &[char], i: &mut usize) -> Result<Class, String> {
    let negated = chars.get(*i) == Some(&'^');
    if negated {
        *i += 1;
    }
    let mut ranges = Vec::new();
    loop {
        if chars.get(*i) == Some(&']') && !ranges.is_empty() {
            *i += 1;
            break;
        }
        let lo = class_char(chars, i)?;
        let hi = if chars.get(*i) == Some(&'-') {
            *i += 1;
            class_char(chars, i)?
        } else {
            lo
        };
        if lo > hi {
            return Err(format!("character range `{lo}-{hi}` is reversed"));
        }
        ranges.push((lo, hi));
    }
    Ok(Class {
        negated,
        ranges: ranges.into_boxed_slice(),
    })
}

/// One possibly escaped class character (Go's `getEsc`).
fn class_char(chars: &[char], i: &mut usize) -> Result<char, String> {
    let mut c = match chars.get(*i) {
        None => return Err("unclosed `[` character class".to_owned()),
        Some('-' | ']') => return Err("malformed `[` character class".to_owned()),
        Some(&c) => c,
    };
    *i += 1;
    if c == '\\' {
        c = *chars.get(*i).ok_or_else(|| "unclosed `[` character class".to_owned())?;
        *i += 1;
    }
    if *i >= chars.len() {
        return Err("unclosed `[` character class".to_owned());
    }
    Ok(c)
}

/// Words of state bits kept on the stack (per set); longer patterns use the heap.
const INLINE_WORDS: usize = 4;

fn has(set: &[u64], state: usize) -> bool {
    set[state / 64] & (1 << (state % 64)) != 0
}

fn insert(set: &mut [u64], state: usize) {
    set[state / 64] |= 1 << (state % 64);
}

fn is_dead(set: &[u64]) -> bool {
    set.iter().all(|&word| word == 0)
}

impl Glob {
    fn new(mut tokens: Vec<Token>) -> Glob {
        let accept = tokens.len();
        let mut mid_owner = Vec::new();
        for (index, token) in tokens.iter_mut().enumerate() {
            if let Token::DirStar { mid } = token {
                *mid = accept + 1 + mid_owner.len();
                mid_owner.push(index);
            }
        }
        let states = accept + 1 + mid_owner.len();
        let literal = |token: &Token| match token {
            Token::Char(c) => Some(*c),
            _ => None,
        };
        let prefix = tokens.iter().map_while(literal).collect();
        let mut suffix: Vec<char> = tokens.iter().rev().map_while(literal).collect();
        suffix.reverse();
        Glob {
            tokens,
            mid_owner,
            states,
            prefix,
            suffix: suffix.into_iter().collect(),
        }
    }

    fn accept(&self) -> usize {
        self.tokens.len()
    }

    /// Splits the scratch space into the current and next state sets.
    fn state_sets<'a>(
        &self,
        inline: &'a mut [u64; 2 * INLINE_WORDS],
        heap: &'a mut Vec<u64>,
    ) -> (&'a mut [u64], &'a mut [u64]) {
        let words = self.states.div_ceil(64);
        let buf: &'a mut [u64] = if words <= INLINE_WORDS {
            &mut inline[..2 * words]
        } else {
            heap.resize(2 * words, 0);
            heap
        };
        buf.split_at_mut(words)
    }

    /// Adds `state` plus everything reachable from it without consuming input (the star
    /// tokens may all match nothing).
    fn add(&self, set: &mut [u64], mut state: usize) {
        loop {
            if has(set, state) {
                return;
            }
            insert(set, state);
            match self.tokens.get(state) {
                Some(Token::Star | Token::DirStar { .. } | Token::AnyAll) => state += 1,
                _ => return,
            }
        }
    }

    /// Advances every state in `cur` over `c` into `next`.
    fn step(&self, cur: &[u64], next: &mut [u64], c: char) {
        next.fill(0);
        for (w, &word) in cur.iter().enumerate() {
            let mut bits = word;
            while bits != 0 {
                let state = w * 64 + bits.trailing_zeros() as usize;
                bits &= bits - 1;
                match self.tokens.get(state) {
                    Some(Token::Char(x)) if *x == c => self.add(next, state + 1),
                    Some(Token::AnyChar) if c != '/' => self.add(next, state + 1),
                    Some(Token::Class(class)) if class.matches(c) => self.add(next, state + 1),
                    Some(Token::Star) if c != '/' => self.add(next, state),
                    // Only a `/` may end what `**` skips, so other characters move to `mid`.
                    Some(Token::DirStar { .. }) if c == '/' => self.add(next, state),
                    Some(Token::DirStar { mid }) => insert(next, *mid),
                    Some(Token::AnyAll) => self.add(next, state),
                    Some(_) => {}
                    None if state > self.accept() => {
                        let owner = self.mid_owner[state - self.accept() - 1];
                        if c == '/' {
                            self.add(next, owner);
                        } else {
                            insert(next, state);
                        }
                    }
                    // The accept state consumes nothing.
                    None => {}
                }
            }
        }
    }

    /// One pass over `path`: the pattern matches a parent directory exactly when the
    /// automaton accepts right before one of the path's `/`.
    fn matches_self_or_parent(&self, path: &str) -> bool {
        // Whatever matches (the path or a parent) is a prefix of `path` ending at its end or
        // before a `/`, so it must start `path` and end with `suffix` at such a boundary.
        let bytes = path.as_bytes();
        let prefix = self.prefix.as_bytes();
        // The emptiness test is not redundant: comparing against an empty slice still calls
        // `memcmp`, which measured slower than the whole filter.
        if !prefix.is_empty() && !bytes.starts_with(prefix) {
            return false;
        }
        let suffix = self.suffix.as_bytes();
        if !suffix.is_empty()
            && !bytes.ends_with(suffix)
            && !bytes
                .iter()
                .enumerate()
                .any(|(at, &b)| b == b'/' && bytes[..at].ends_with(suffix))
        {
            return false;
        }
        let accept = self.accept();
        let mut inline = [0; 2 * INLINE_WORDS];
        let mut heap = Vec::new();
        let (mut cur, mut next) = self.state_sets(&mut inline, &mut heap);
        self.add(cur, 0);
        for c in path.chars() {
            if c == '/' && has(cur, accept) {
                return true;
            }
            self.step(cur, next, c);
            std::mem::swap(&mut cur, &mut next);
            if is_dead(cur) {
                return false;
            }
        }
        has(cur, accept)
    }

    /// Runs the automaton over `dir/`; any live state other than "accepted exactly `dir/`"
    /// can still consume a non-empty remainder.
    fn can_match_below(&self, dir: &str) -> bool {
        let mut inline = [0; 2 * INLINE_WORDS];
        let mut heap = Vec::new();
        let (mut cur, mut next) = self.state_sets(&mut inline, &mut heap);
        self.add(cur, 0);
        for c in dir.chars().chain(std::iter::once('/')) {
            self.step(cur, next, c);
            std::mem::swap(&mut cur, &mut next);
            if is_dead(cur) {
                return false;
            }
        }
        let accept = self.accept();
        cur[accept / 64] &= !(1 << (accept % 64));
        !is_dead(cur)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn case(patterns: &str, path: &str, excluded: bool) {
        let ignore =
            DockerIgnore::parse(patterns).unwrap_or_else(|err| panic!("patterns {patterns:?} failed to parse: {err}"));
        assert_eq!(
            ignore.is_excluded(path),
            excluded,
            "patterns {patterns:?}, path {path:?}"
        );
    }

    #[track_caller]
    fn skip(patterns: &str, dir: &str, skippable: bool) {
        let ignore =
            DockerIgnore::parse(patterns).unwrap_or_else(|err| panic!("patterns {patterns:?} failed to parse: {err}"));
        assert_eq!(
            ignore.can_skip_dir(dir),
            skippable,
            "patterns {patterns:?}, dir {dir:?}"
        );
    }

    #[track_caller]
    fn invalid(patterns: &str, line: usize) {
        let err = DockerIgnore::parse(patterns).expect_err(patterns);
        assert!(
            err.starts_with(&format!("line {line}: ")),
            "{patterns:?} gave {err:?}, expected line {line}"
        );
    }

    #[test]
    fn empty_excludes_nothing() {
        let ignore = DockerIgnore::parse("").unwrap();
        assert!(ignore.is_empty());
        assert!(!ignore.is_excluded("anything"));
        assert!(!ignore.can_skip_dir("anything"));
        assert!(DockerIgnore::default().is_empty());
        assert!(DockerIgnore::parse("# only a comment\n\n   \n").unwrap().is_empty());
        assert!(!DockerIgnore::parse("a").unwrap().is_empty());
    }

    #[test]
    fn comments_and_blank_lines() {
        case("# comment\n\nfoo\n", "foo", true);
        case("# comment\n\nfoo\n", "# comment", false);
        case("#foo", "foo", false);
        // Only column 1 starts a comment; after trimming this is the pattern `#foo`.
        case("  #foo", "#foo", true);
        case("\tfoo  \n", "foo", true);
        case("a\r\nb\r\n", "b", true);
        case("\u{feff}foo", "foo", true);
        case("\u{feff}#foo", "foo", false);
    }

    #[test]
    fn cleaning() {
        case("./a", "a", true);
        case("a/", "a", true);
        case("/a", "a", true);
        case("/a", "a/b", true);
        case("a//b", "a/b", true);
        case("a/./b/", "a/b", true);
        case("a/../b", "b", true);
        case("a/../b", "a", false);
        case("//a/b", "a/b", true);
        case("! ./a", "a", false);
        case("*\n! /a/", "a", false);
        case("*\n! /a/", "b", true);
        // A lone `/` is kept and matches nothing; `.` never excludes the root.
        case("/", "a", false);
        case(".", "a", false);
        case("*", "", false);
        case("*", ".", false);
        // Callers' paths are tolerated with `./` and slashes around them.
        case("a", "./a/b", true);
        case("a", "a/", true);
    }

    #[test]
    fn star() {
        case("*.go", "main.go", true);
        case("*.go", "src/main.go", false);
        case("*", "anything", true);
        case("*", "dir/file", true);
        case("*c", "abc", true);
        case("a*", "a", true);
        case("a*/b", "abc/b", true);
        case("a*/b", "a/c/b", false);
        case("a*b*c*d*e*/f", "axbxcxdxexxx/f", true);
        case("a*b*c*d*e*/f", "axbxcxdxe/xxx/f", false);
        case("a*b?c*x", "abxbbxdbxebxczzx", true);
        case("a*b?c*x", "abxbbxdbxebxczzy", false);
        case("*/temp*", "somedir/temporary.txt", true);
        case("*/temp*", "somedir/temp", true);
        case("*/temp*", "temp", false);
        case("*/*/temp*", "somedir/subdir/temporary.txt", true);
        case("*/*/temp*", "somedir/temporary.txt", false);
        case(".*", ".foo", true);
        case(".*", "foo", false);
        case("*x", "xxx", true);
    }

    #[test]
    fn question_mark() {
        case("temp?", "tempa", true);
        case("temp?", "temp", false);
        case("temp?", "tempab", false);
        case("a?b", "a/b", false);
        case("a?b", "a☺b", true);
        case("a???b", "a☺b", false);
        case("abc.def", "abcZdef", false);
    }

    #[test]
    fn classes() {
        case("a[b-d]e", "ace", true);
        case("a[b-d]e", "aae", false);
        case("a[b-d]e", "ae", false);
        case("a[^b-d]e", "aze", true);
        case("a[^b-d]e", "ace", false);
        case("ab[c]", "abc", true);
        case("[a-ζ]*", "α", true);
        case("*[a-ζ]", "A", false);
        case("[\\]a]", "]", true);
        case("[\\-x]", "-", true);
        case("[x\\-]", "z", false);
        // Docker's classes are Go's: `!` is an ordinary member, not negation.
        case("[!a]", "!", true);
        case("[!a]", "a", true);
        case("[!a]", "b", false);
        // Classes, unlike `?`, can match `/` (Docker compiles them to regexp classes).
        case("a[^x]b", "a/b", true);
        // `]` outside a class is a literal.
        case("a]", "a]", true);
    }

    #[test]
    fn escapes() {
        case("a\\*b", "a*b", true);
        case("a\\*b", "axb", false);
        case("\\[x]", "[x]", true);
        case("\\[x]", "x", false);
        case("a\\\\", "a\\", true);
        case("a\\?", "a?", true);
        case("a\\?", "ab", false);
        // Regexp metacharacters are plain characters.
        case("a.|)$(}+{bc", "a.|)$(}+{bc", true);
        case("a(b)c/def", "a(b)c/xyz", false);
    }

    #[test]
    fn double_star() {
        case("**", "file", true);
        case("**", "dir/file", true);
        case("**/", "dir/file", true);
        case("**/**", "dir/file", true);
        case("**/*.go", "main.go", true);
        case("**/*.go", "a/b/c.go", true);
        case("**/*.go", "a/b/c.rs", false);
        case("**/*.txt", "file.txt", true);
        case("**/**/*.txt2", "dir/dir/file.txt", false);
        case("a/**/b", "a/b", true);
        case("a/**/b", "a/x/b", true);
        case("a/**/b", "a/x/y/b", true);
        case("a/**/b", "a/b/c", true);
        case("a/**/b", "ab", false);
        case("a/**/b", "a/xb", false);
        case("a/**/b", "b", false);
        case("a/**", "a/x", true);
        case("a/**", "a/x/y", true);
        case("a/**", "a", false);
        case("a/**", "ab", false);
        case("a**", "ab/c", true);
        case("a**/*.txt", "a/dir/dir/file.txt", true);
        case("a**/*.txt", "a/file.txt", true);
        case("**/dir2/*", "dir/dir2/file", true);
        case("**/dir2/**", "dir/dir2/dir3/file", true);
        case("**/dir2/**", "dir/dir2", false);
        case("**/foo", "foo", true);
        case("**/foo", "x/y/foo", true);
        case("**/foo", "x/foo/bar", true);
        case("**/foo", "xfoo", false);
        case("**/foo/bar", "dir/dir2/foo/bar", true);
        case("**/.foo", "bar.foo", false);
        // Docker's suffix shortcut: a leading `**` with a plain remainder is "ends with".
        case("**file", "file", true);
        case("**file", "dir/file", true);
        case("**file", "dir/xfile", true);
        case("**.log", "a/b/c.log", true);
        case("**.log", "c.log", true);
        // ...which any other metacharacter turns back into the `(.*/)?` reading.
        case("**\\.log", "a/b.log", false);
        case("**\\.log", "a/.log", true);
        case("**.l?g", "a/b.log", false);
        case("**.l?g", "a/.log", true);
    }

    #[test]
    fn exceptions_and_last_match_wins() {
        case("*.md\n!README.md", "README.md", false);
        case("*.md\n!README.md", "CHANGES.md", true);
        case("*.md\n!README*.md\nREADME-secret.md", "README-secret.md", true);
        case("*.md\n!README*.md\nREADME-secret.md", "README-public.md", false);
        case("*.md\nREADME-secret.md\n!README*.md", "README-secret.md", false);
        case("!fileutils.go\n*.go", "fileutils.go", true);
        case("*.go\n!fileutils.go", "fileutils.go", false);
        case("*\n!src", "src/main.rs", false);
        case("*\n!src", "target/debug/mtr", true);
        case("**\n!util/docker/web", "util/docker/web/foo", false);
        case("**\n!util/docker/web\nutil/docker/web/foo", "util/docker/web/foo", true);
        case("**\n!dist/*.whl", "dist/p-2.4.0rc3.dev36+g08acad9-py3.whl", false);
    }

    #[test]
    fn parent_directory_excludes_descendants() {
        case("foo", "foo/bar/baz.txt", true);
        case("foo", "foobar/baz.txt", false);
        case("foo/bar", "foo/bar/x", true);
        case("foo/bar", "foo/barx", false);
        case("foo/bar", "foo/x", false);
        case("foo/bar", "foo", false);
        case("*/node_modules", "web/node_modules/react/index.js", true);
        case("docs/*", "docs/sub/README.md", true);
        case("**/dir", "dir/file", true);
    }

    #[test]
    fn exception_reincludes_file_under_excluded_dir() {
        case("foo\n!foo/keep.txt", "foo/keep.txt", false);
        case("foo\n!foo/keep.txt", "foo/other.txt", true);
        case("foo\n!foo/keep.txt", "foo", true);
        case("docs/\n!docs/README.md", "docs/README.md", false);
        case("docs/*\n!docs/README.md", "docs/README.md", false);
        case("node_modules\n!**/*.go", "node_modules/x/y.go", false);
        case("node_modules\n!**/*.go", "node_modules/x/y.js", true);
        // An exception naming a directory re-includes everything in it.
        case("foo\n!foo/keep", "foo/keep/deep/file", false);
    }

    #[test]
    fn skipping_directories() {
        skip("foo", "foo", true);
        skip("foo", "foo/sub", true);
        skip("foo", "bar", false);
        skip("foo", "", false);
        skip("**", "", false);
        skip("foo\n!foo/keep.txt", "foo", false);
        skip("foo\n!foo/keep.txt", "foo/sub", true);
        skip("foo\n!foo/keep.txt", "foobar", false);
        // Wildcard exceptions block skipping wherever they could match below.
        skip("node_modules\n!**/*.go", "node_modules", false);
        skip("node_modules\n!*/keep", "node_modules", false);
        skip("node_modules\n!*/keep", "node_modules/sub", true);
        skip("*\n!src", "target", true);
        skip("*\n!src", "src", false);
        skip("*\n!*/keep/**", "target", false);
        // An exception before the rule deciding the directory cannot re-include anything.
        skip("!foo/keep\nfoo", "foo", true);
        skip("foo\n!foo/keep\nfoo", "foo", true);
        // The directory itself is kept (only its contents are excluded).
        skip("a/**", "a", false);
        skip("a/**", "a/b", true);
        skip("foo/bar\n!foo", "foo/bar", false);
        skip("**\n!util/docker/web", "util", false);
        skip("**\n!util/docker/web", "other", true);
    }

    #[test]
    fn invalid_patterns() {
        invalid("ok\n[", 2);
        invalid("a[", 1);
        invalid("[^", 1);
        invalid("[^bc", 1);
        invalid("[]a]", 1);
        invalid("[-]", 1);
        invalid("[x-]", 1);
        invalid("[-x]", 1);
        invalid("[a-b-c]", 1);
        invalid("[z-a]", 1);
        invalid("a\\", 1);
        invalid("# c\n\n!", 3);
        invalid("! ", 1);
        invalid("!/", 1);
        let err = DockerIgnore::parse("x\n  foo[  \n").unwrap_err();
        assert!(err.contains("line 2") && err.contains("foo["), "{err}");
    }

    /// The regexp semantics the automaton must implement, written as plain backtracking.
    fn reference(tokens: &[Token], s: &[char]) -> bool {
        let Some((token, rest)) = tokens.split_first() else {
            return s.is_empty();
        };
        let one = |ok: &dyn Fn(char) -> bool| s.first().is_some_and(|&c| ok(c)) && reference(rest, &s[1..]);
        match token {
            Token::Char(x) => one(&|c| c == *x),
            Token::AnyChar => one(&|c| c != '/'),
            Token::Class(class) => one(&|c| class.matches(c)),
            Token::Star => (0..=s.len())
                .take_while(|&k| k == 0 || s[k - 1] != '/')
                .any(|k| reference(rest, &s[k..])),
            Token::DirStar { .. } => {
                reference(rest, s) || (1..=s.len()).any(|k| s[k - 1] == '/' && reference(rest, &s[k..]))
            }
            Token::AnyAll => (0..=s.len()).any(|k| reference(rest, &s[k..])),
        }
    }

    #[test]
    fn automaton_agrees_with_backtracking_reference() {
        let patterns = [
            "*", "a*", "*b", "a*b", "a?b", "[ab]*", "**", "**/b", "a/**", "a/**/b", "a**b", "**/a/**", "*/b", "a/*/b",
            "**/**/b", "*a*b*", "[^a]/b", "a/**/*", "**a", "?/?", "a**/b/**", "*aa", "**/aa", "a*a", "?a/*b",
        ];
        let paths = [
            "a", "b", "ab", "aab", "a/b", "a/a/b", "b/a", "a/b/a", "ab/b", "a/xb", "ba/b", "a//b", "xa", "a/x/y/b",
            "aa/bb", "c", "aaa", "aaa/b", "b/aaa/c", "ba/ab",
        ];
        for pattern in patterns {
            let Ok(Matcher::Glob(glob)) = Matcher::compile(pattern) else {
                panic!("{pattern} should compile to a glob");
            };
            for path in paths {
                let chars: Vec<char> = path.chars().collect();
                let expected = (0..=chars.len())
                    .filter(|&k| k == chars.len() || chars[k] == '/')
                    .any(|k| reference(&glob.tokens, &chars[..k]));
                assert_eq!(
                    glob.matches_self_or_parent(path),
                    expected,
                    "pattern {pattern:?}, path {path:?}"
                );
            }
        }
    }

    #[test]
    fn long_patterns_spill_to_heap() {
        let dir = "d".repeat(300);
        let pattern = format!("{dir}/*.txt");
        case(&pattern, &format!("{dir}/x.txt"), true);
        case(&pattern, &format!("{dir}/x.rs"), false);
        skip(&format!("{dir}\n!{dir}/*.txt"), &dir, false);
    }

    #[test]
    fn skipping_never_hides_included_files() {
        let ignores = [
            "foo",
            "foo\n!foo/keep.txt",
            "*\n!src",
            "**\n!**/*.go",
            "a/**\n!a/b/c",
            "a\n!*/b\na/b/x",
            "**/b\n!a/b/c/**",
            "!a\na/b",
        ];
        let dirs = ["a", "a/b", "a/b/c", "foo", "src", "x"];
        let leaves = ["keep.txt", "c", "x", "y.go", "b/c/d"];
        for text in ignores {
            let ignore = DockerIgnore::parse(text).unwrap();
            for dir in dirs {
                if !ignore.can_skip_dir(dir) {
                    continue;
                }
                assert!(ignore.is_excluded(dir), "{text:?}: skipped {dir} is kept");
                for leaf in leaves {
                    let path = format!("{dir}/{leaf}");
                    assert!(ignore.is_excluded(&path), "{text:?}: skipping {dir} hides kept {path}");
                }
            }
        }
    }

    /// A fresh directory under the system temp dir, removed on drop.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new(name: &str) -> TempDir {
            let path = std::env::temp_dir().join(format!("mtr-dockerignore-{}-{name}", std::process::id()));
            let _ = fs::remove_dir_all(&path);
            fs::create_dir_all(&path).unwrap();
            TempDir(path)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn load_prefers_dockerfile_specific_ignore_file() {
        let tmp = TempDir::new("load");
        let context = tmp.0.as_path();
        fs::create_dir_all(context.join("docker")).unwrap();
        let dockerfile = context.join("docker/app.Dockerfile");
        fs::write(&dockerfile, "FROM scratch\n").unwrap();
        let specific = context.join("docker/app.Dockerfile.dockerignore");
        let general = context.join(".dockerignore");
        fs::write(&specific, "b\n").unwrap();
        fs::write(&general, "a\n").unwrap();

        let (ignore, used) = DockerIgnore::load(context, &dockerfile).unwrap();
        assert_eq!(used.as_deref(), Some(specific.as_path()));
        assert!(ignore.is_excluded("b"));
        assert!(!ignore.is_excluded("a"));

        fs::remove_file(&specific).unwrap();
        let (ignore, used) = DockerIgnore::load(context, &dockerfile).unwrap();
        assert_eq!(used.as_deref(), Some(general.as_path()));
        assert!(ignore.is_excluded("a"));
        assert!(!ignore.is_excluded("b"));

        // The plain `Dockerfile` name works the same way.
        let plain = context.join("Dockerfile");
        fs::write(context.join("Dockerfile.dockerignore"), "c\n").unwrap();
        let (ignore, used) = DockerIgnore::load(context, &plain).unwrap();
        assert_eq!(used, Some(context.join("Dockerfile.dockerignore")));
        assert!(ignore.is_excluded("c") && !ignore.is_excluded("a"));

        fs::remove_file(&general).unwrap();
        let (ignore, used) = DockerIgnore::load(context, &dockerfile).unwrap();
        assert_eq!(used, None);
        assert!(ignore.is_empty());
        assert!(!ignore.is_excluded("a"));
    }

    #[test]
    fn load_reports_invalid_file() {
        let tmp = TempDir::new("invalid");
        let context = tmp.0.as_path();
        fs::write(context.join(".dockerignore"), "ok\n[oops\n").unwrap();
        let err = DockerIgnore::load(context, &context.join("Dockerfile")).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        let msg = err.to_string();
        assert!(msg.contains(".dockerignore") && msg.contains("line 2"), "{msg}");
    }
}
