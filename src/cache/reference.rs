//! `[cache] remote = "oci://HOST[:PORT]/REPO"`: where the team's cache
//! lives, parsed and checked the way the distribution spec names things.

use std::fmt;

/// A repository in an OCI registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Remote {
    /// `host` or `host:port`, as docker writes it (also the key in
    /// `~/.docker/config.json`).
    pub registry: String,
    /// `team/mtr-cache`.
    pub repository: String,
}

impl fmt::Display for Remote {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "oci://{}/{}", self.registry, self.repository)
    }
}

/// The scheme every remote starts with.
const SCHEME: &str = "oci://";

impl Remote {
    /// Parses `oci://HOST[:PORT]/REPO`; the error says what is wrong.
    pub fn parse(text: &str) -> Result<Remote, String> {
        let Some(rest) = text.strip_prefix(SCHEME) else {
            return Err(format!("`{text}` is not an `oci://HOST[:PORT]/REPO` reference"));
        };
        let Some((registry, repository)) = rest.split_once('/') else {
            return Err(format!("`{text}` names no repository (`oci://HOST[:PORT]/REPO`)"));
        };
        check_registry(registry).map_err(|why| format!("`{text}`: {why}"))?;
        let repository = repository.trim_end_matches('/');
        check_repository(repository).map_err(|why| format!("`{text}`: {why}"))?;
        Ok(Remote {
            registry: registry.to_string(),
            repository: repository.to_string(),
        })
    }
}

fn check_registry(registry: &str) -> Result<(), String> {
    if registry.is_empty() {
        return Err("the registry host is empty".into());
    }
    let (host, port) = if let Some(v6) = registry.strip_prefix('[') {
        let (addr, rest) = v6.split_once(']').ok_or("an IPv6 host needs its closing `]`")?;
        if addr.is_empty() || !addr.chars().all(|c| c.is_ascii_hexdigit() || c == ':' || c == '.') {
            return Err(format!("`[{addr}]` is not an IPv6 address"));
        }
        match rest.strip_prefix(':') {
            Some(port) => ("v6", Some(port)),
            None if rest.is_empty() => ("v6", None),
            None => return Err(format!("unexpected `{rest}` after the host")),
        }
    } else {
        match registry.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (registry, None),
        }
    };
    if host != "v6" {
        let label_ok = |l: &str| {
            !l.is_empty()
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        };
        if !host.split('.').all(label_ok) {
            return Err(format!("`{host}` is not a host name"));
        }
    }
    if let Some(port) = port
        && port.parse::<u16>().map_or(true, |p| p == 0)
    {
        return Err(format!("`{port}` is not a port"));
    }
    Ok(())
}

/// Path components as the distribution spec allows them:
/// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`, joined by `/`.
fn check_repository(repository: &str) -> Result<(), String> {
    if repository.is_empty() {
        return Err("the repository is empty".into());
    }
    for part in repository.split('/') {
        if !component_ok(part) {
            return Err(format!(
                "`{part}` is not a valid repository name component (lowercase letters, digits, and `.`, `_`, `-` between them)"
            ));
        }
    }
    Ok(())
}

fn component_ok(part: &str) -> bool {
    let bytes = part.as_bytes();
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    if bytes.is_empty() || !alnum(bytes[0]) || !alnum(bytes[bytes.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < bytes.len() {
        if alnum(bytes[i]) {
            i += 1;
            continue;
        }
        // A separator run: `.`, `_`, `__` or any number of `-`.
        let start = i;
        while i < bytes.len() && !alnum(bytes[i]) {
            i += 1;
        }
        let sep = &part[start..i];
        let ok = sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|b| b == b'-');
        if !ok {
            return false;
        }
    }
    true
}

/// Whether `tag` is a valid OCI tag: `[A-Za-z0-9_][A-Za-z0-9._-]{0,127}`.
pub fn valid_tag(tag: &str) -> bool {
    let b = tag.as_bytes();
    !b.is_empty()
        && b.len() <= 128
        && (b[0].is_ascii_alphanumeric() || b[0] == b'_')
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn ok(text: &str, registry: &str, repository: &str) {
        let r = Remote::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
        assert_eq!(r.registry, registry, "{text}");
        assert_eq!(r.repository, repository, "{text}");
        assert_eq!(Remote::parse(&r.to_string()).as_ref(), Ok(&r), "round trip of {text}");
    }

    #[track_caller]
    fn bad(text: &str, needle: &str) {
        match Remote::parse(text) {
            Ok(r) => panic!("{text} parsed as {r:?}"),
            Err(e) => assert!(e.contains(needle), "{text}: `{e}` lacks `{needle}`"),
        }
    }

    #[test]
    fn parses_remotes() {
        ok(
            "oci://10.43.17.166:5000/montage-ai/mtr-cache",
            "10.43.17.166:5000",
            "montage-ai/mtr-cache",
        );
        ok("oci://127.0.0.1:5000/cache", "127.0.0.1:5000", "cache");
        ok("oci://ghcr.io/team/app/mtr-cache", "ghcr.io", "team/app/mtr-cache");
        ok("oci://localhost/a.b_c__d---e", "localhost", "a.b_c__d---e");
        ok("oci://[::1]:5000/cache", "[::1]:5000", "cache");
        ok("oci://registry.example.com/cache/", "registry.example.com", "cache");
    }

    #[test]
    fn rejects_bad_remotes() {
        bad("https://ghcr.io/team/cache", "oci://HOST");
        bad("ghcr.io/team/cache", "oci://HOST");
        bad("oci://ghcr.io", "names no repository");
        bad("oci://ghcr.io/", "repository is empty");
        bad("oci:///cache", "host is empty");
        bad("oci://host:port/cache", "not a port");
        bad("oci://host:0/cache", "not a port");
        bad("oci://ho_st/cache", "not a host name");
        bad("oci://ghcr.io/Team/cache", "`Team`");
        bad("oci://ghcr.io/team//cache", "``");
        bad("oci://ghcr.io/team/cache-", "`cache-`");
        bad("oci://ghcr.io/a..b", "`a..b`");
        bad("oci://[::1/cache", "closing");
    }

    #[test]
    fn tags() {
        assert!(valid_tag(&"a".repeat(128)));
        assert!(!valid_tag(&"a".repeat(129)));
        assert!(valid_tag("0123abcdef"));
        assert!(!valid_tag(".hidden"));
        assert!(!valid_tag(""));
        assert!(!valid_tag("a/b"));
    }
}
