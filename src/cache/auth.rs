//! Registry credentials, found where docker keeps them, so `docker login`
//! is all the setup a user does: `$DOCKER_CONFIG/config.json` (default
//! `~/.docker/config.json`), its `credHelpers` / `credsStore` helpers, then
//! its `auths` (a base64 `auth`, or `username` and `password`).

use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use base64::Engine;
use serde::Deserialize;

/// A user name and password (or token) for HTTP basic auth; the registry's
/// token service, if any, is asked with them.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Credentials({}, ***)", self.username)
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct DockerConfig {
    #[serde(default)]
    auths: HashMap<String, AuthEntry>,
    #[serde(default)]
    creds_store: Option<String>,
    #[serde(default)]
    cred_helpers: HashMap<String, String>,
}

#[derive(Debug, Default, Deserialize)]
struct AuthEntry {
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
}

/// What a credential helper prints for `get`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct HelperReply {
    username: String,
    secret: String,
}

/// The docker config file in effect.
pub fn config_path() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("DOCKER_CONFIG").filter(|d| !d.is_empty()) {
        return Some(PathBuf::from(dir).join("config.json"));
    }
    std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".docker").join("config.json"))
}

/// Credentials for `registry` (`host[:port]`), or `None` for anonymous
/// access. A config file that cannot be read or parsed is an error to warn
/// about (the cache then tries anonymously).
pub fn lookup(registry: &str) -> Result<Option<Credentials>, String> {
    let Some(path) = config_path() else {
        return Ok(None);
    };
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("cannot read `{}`: {e}", path.display())),
    };
    from_config(&text, registry, run_helper).map_err(|e| format!("`{}`: {e}", path.display()))
}

/// The lookup itself, with the credential helper runner passed in (tests
/// give a fake one).
pub fn from_config(
    text: &str,
    registry: &str,
    helper: impl Fn(&str, &str) -> Result<Option<Credentials>, String>,
) -> Result<Option<Credentials>, String> {
    let config: DockerConfig = serde_json::from_str(text).map_err(|e| format!("not a docker config: {e}"))?;
    let helper_name = config
        .cred_helpers
        .iter()
        .find(|(k, _)| hostname(k) == registry)
        .map(|(_, v)| v.as_str())
        .or(config.creds_store.as_deref())
        .filter(|h| !h.is_empty());
    if let Some(name) = helper_name
        && let Some(creds) = helper(name, registry)?
    {
        return Ok(Some(creds));
    }
    let Some(entry) = config
        .auths
        .iter()
        .find(|(k, _)| hostname(k) == registry)
        .map(|(_, v)| v)
    else {
        return Ok(None);
    };
    if let Some(auth) = entry.auth.as_deref().filter(|a| !a.is_empty()) {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(auth.trim())
            .map_err(|_| format!("the `auth` of `{registry}` is not base64"))?;
        let text = String::from_utf8(bytes).map_err(|_| format!("the `auth` of `{registry}` is not UTF-8"))?;
        let (username, password) = text
            .split_once(':')
            .ok_or_else(|| format!("the `auth` of `{registry}` is not `user:password`"))?;
        return Ok(Some(Credentials {
            username: username.to_string(),
            password: password.to_string(),
        }));
    }
    match (&entry.username, &entry.password) {
        (Some(u), Some(p)) if !u.is_empty() => Ok(Some(Credentials {
            username: u.clone(),
            password: p.clone(),
        })),
        _ => Ok(None),
    }
}

/// A docker config key as a `host[:port]`: keys may be URLs
/// (`https://index.docker.io/v1/`, `http://host:5000`).
fn hostname(key: &str) -> &str {
    let key = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    key.split('/').next().unwrap_or(key)
}

/// Runs `docker-credential-NAME get` with the registry on stdin. A helper
/// that is not installed, or has no entry for the registry, yields `None`.
fn run_helper(name: &str, registry: &str) -> Result<Option<Credentials>, String> {
    let program = format!("docker-credential-{name}");
    let mut child = match Command::new(&program)
        .arg("get")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
    {
        Ok(c) => c,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("cannot run `{program}`: {e}")),
    };
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(registry.as_bytes());
    }
    let out = child
        .wait_with_output()
        .map_err(|e| format!("cannot run `{program}`: {e}"))?;
    if !out.status.success() {
        // "credentials not found in native keychain": not an error.
        return Ok(None);
    }
    let reply: HelperReply =
        serde_json::from_slice(&out.stdout).map_err(|e| format!("`{program}` printed no credentials: {e}"))?;
    Ok(Some(Credentials {
        username: reply.username,
        password: reply.secret,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_helper(_: &str, _: &str) -> Result<Option<Credentials>, String> {
        panic!("no helper should run")
    }

    fn creds(u: &str, p: &str) -> Option<Credentials> {
        Some(Credentials {
            username: u.into(),
            password: p.into(),
        })
    }

    #[track_caller]
    fn case(config: &str, registry: &str, want: Option<Credentials>) {
        assert_eq!(
            from_config(config, registry, no_helper).unwrap(),
            want,
            "{registry} in {config}"
        );
    }

    #[test]
    fn base64_auth() {
        // base64("ci:s3cret:with:colons")
        let auth = base64::engine::general_purpose::STANDARD.encode("ci:s3cret:with:colons");
        let config = format!(r#"{{"auths": {{"127.0.0.1:5000": {{"auth": "{auth}"}}}}}}"#);
        case(&config, "127.0.0.1:5000", creds("ci", "s3cret:with:colons"));
        case(&config, "127.0.0.1:5001", None);
    }

    #[test]
    fn username_and_password() {
        case(
            r#"{"auths": {"ghcr.io": {"username": "me", "password": "tok"}}}"#,
            "ghcr.io",
            creds("me", "tok"),
        );
    }

    #[test]
    fn url_keys() {
        let auth = base64::engine::general_purpose::STANDARD.encode("u:p");
        case(
            &format!(r#"{{"auths": {{"https://registry.example.com/v1/": {{"auth": "{auth}"}}}}}}"#),
            "registry.example.com",
            creds("u", "p"),
        );
        case(
            &format!(r#"{{"auths": {{"http://10.0.0.1:5000": {{"auth": "{auth}"}}}}}}"#),
            "10.0.0.1:5000",
            creds("u", "p"),
        );
    }

    #[test]
    fn empty_or_missing() {
        case("{}", "ghcr.io", None);
        case(r#"{"auths": {"ghcr.io": {}}}"#, "ghcr.io", None);
        case(r#"{"auths": {"ghcr.io": {"auth": ""}}}"#, "ghcr.io", None);
    }

    #[test]
    fn bad_config_is_an_error() {
        assert!(from_config("not json", "ghcr.io", no_helper).is_err());
        let e = from_config(r#"{"auths": {"ghcr.io": {"auth": "%%%"}}}"#, "ghcr.io", no_helper).unwrap_err();
        assert!(e.contains("not base64"), "{e}");
    }

    #[test]
    fn helpers_come_first() {
        let auth = base64::engine::general_purpose::STANDARD.encode("file:user");
        let config = format!(
            r#"{{"auths": {{"ghcr.io": {{"auth": "{auth}"}}}}, "credsStore": "store", "credHelpers": {{"ghcr.io": "gh"}}}}"#
        );
        let helper = |name: &str, registry: &str| Ok(creds(name, registry));
        assert_eq!(from_config(&config, "ghcr.io", helper).unwrap(), creds("gh", "ghcr.io"));
        assert_eq!(
            from_config(&config, "other.io", helper).unwrap(),
            creds("store", "other.io")
        );
        // A helper that knows nothing falls back to `auths`.
        let empty = |_: &str, _: &str| Ok(None);
        assert_eq!(from_config(&config, "ghcr.io", empty).unwrap(), creds("file", "user"));
    }
}
