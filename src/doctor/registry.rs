//! Which registry an image reference names, and whether it answers: a
//! minimal HTTP/1.1 `GET /v2/` over a plain TCP connection (no TLS stack).
//!
//! Over HTTPS only the connection is checked, plus one useful question: a
//! plain-HTTP request to the port gets a registry's answer when the
//! registry does not speak TLS at all — the usual reason a push to a
//! cluster-local registry fails until it is listed as insecure.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

/// Docker Hub's registry, where references without a registry host go.
pub const DOCKER_HUB: &str = "docker.io";

/// The registry part of an image reference (`host[:port]`), as Docker
/// reads it: the first path component when it looks like a host.
pub fn registry_of(reference: &str) -> String {
    match reference.split_once('/') {
        Some((first, _)) if first.contains(['.', ':']) || first == "localhost" => first.to_string(),
        _ => DOCKER_HUB.to_string(),
    }
}

/// The registry of a cache remote such as `oci://host:5000/team/cache`.
pub fn registry_of_remote(remote: &str) -> String {
    let rest = remote.strip_prefix("oci://").unwrap_or(remote);
    rest.split('/').next().unwrap_or(rest).to_string()
}

/// Host and port to connect to for `registry`.
pub fn address(registry: &str, https: bool) -> (String, u16) {
    let default = if https { 443 } else { 80 };
    if registry == DOCKER_HUB {
        return ("registry-1.docker.io".into(), 443);
    }
    // `[::1]:5000` or `host:5000` or `host`.
    if let Some(rest) = registry.strip_prefix('[')
        && let Some((host, tail)) = rest.split_once(']')
    {
        let port = tail.strip_prefix(':').and_then(|p| p.parse().ok()).unwrap_or(default);
        return (host.to_string(), port);
    }
    match registry.rsplit_once(':') {
        Some((host, port)) if port.parse::<u16>().is_ok() => (host.to_string(), port.parse().unwrap_or(default)),
        _ => (registry.to_string(), default),
    }
}

/// What a registry port said to a plain-HTTP `GET /v2/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// An HTTP answer from a plain-HTTP server (status code; whether it
    /// carried the registry API header).
    Http { status: u16, registry: bool },
    /// The server wants TLS (a 400 "sent an HTTP request to an HTTPS
    /// server", a TLS alert, or a closed connection).
    Tls,
}

/// A TCP connection to `host:port`; `Err` says why none was made.
pub fn connect(host: &str, port: u16, timeout: Duration) -> Result<TcpStream, String> {
    let addrs = (host, port)
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve `{host}`: {e}"))?;
    let mut last = format!("`{host}` has no address");
    for addr in addrs {
        match TcpStream::connect_timeout(&addr, timeout) {
            Ok(s) => return Ok(s),
            Err(e) => last = format!("cannot connect to {host}:{port}: {}", io_reason(&e)),
        }
    }
    Err(last)
}

/// Connects and asks `GET /v2/`; `Err` says why no connection was made.
pub fn probe(host: &str, port: u16, timeout: Duration) -> Result<Answer, String> {
    let mut stream = connect(host, port, timeout)?;
    let _ = stream.set_read_timeout(Some(timeout));
    let _ = stream.set_write_timeout(Some(timeout));
    let host_header = if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    };
    let request =
        format!("GET /v2/ HTTP/1.1\r\nHost: {host_header}\r\nUser-Agent: mtr-doctor\r\nConnection: close\r\n\r\n");
    if stream.write_all(request.as_bytes()).is_err() {
        return Ok(Answer::Tls);
    }
    let mut buf = Vec::new();
    let mut chunk = [0u8; 2048];
    while buf.len() < 8192 {
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    Ok(classify(&buf))
}

/// Reads the first bytes a server answered.
pub fn classify(reply: &[u8]) -> Answer {
    let text = String::from_utf8_lossy(reply);
    let Some(status) = text
        .strip_prefix("HTTP/1.")
        .and_then(|rest| rest.get(2..5))
        .and_then(|code| code.parse::<u16>().ok())
    else {
        return Answer::Tls;
    };
    let lower = text.to_ascii_lowercase();
    let registry = lower.contains("\ndocker-distribution-api-version:");
    // Go's TLS servers (the registry itself) and nginx answer plain HTTP on
    // a TLS port with a 400 that says so.
    if status == 400 && !registry && (lower.contains("https") || lower.contains("tls")) {
        return Answer::Tls;
    }
    Answer::Http { status, registry }
}

fn io_reason(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::ConnectionRefused => "connection refused".into(),
        std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock => "timed out".into(),
        _ => e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn reg(reference: &str, want: &str) {
        assert_eq!(registry_of(reference), want);
    }

    #[test]
    fn finds_the_registry_of_a_reference() {
        reg("10.43.17.166:5000/montage-ai", "10.43.17.166:5000");
        reg("ghcr.io/mfahsold/montage-ai", "ghcr.io");
        reg("localhost/app", "localhost");
        reg("mfahsold/montage-ai", DOCKER_HUB);
        reg("montage-ai", DOCKER_HUB);
        assert_eq!(registry_of_remote("oci://127.0.0.1:5000/team/cache"), "127.0.0.1:5000");
    }

    #[test]
    fn splits_host_and_port() {
        assert_eq!(address("10.43.17.166:5000", false), ("10.43.17.166".into(), 5000));
        assert_eq!(address("ghcr.io", true), ("ghcr.io".into(), 443));
        assert_eq!(address("registry.local", false), ("registry.local".into(), 80));
        assert_eq!(address("[::1]:5000", true), ("::1".into(), 5000));
        assert_eq!(address(DOCKER_HUB, true), ("registry-1.docker.io".into(), 443));
    }

    #[test]
    fn tells_plain_http_registries_from_tls_ports() {
        let registry = b"HTTP/1.1 401 Unauthorized\r\nDocker-Distribution-Api-Version: registry/2.0\r\n\r\n";
        assert_eq!(
            classify(registry),
            Answer::Http {
                status: 401,
                registry: true
            }
        );
        let go_tls = b"HTTP/1.0 400 Bad Request\r\n\r\nClient sent an HTTP request to an HTTPS server.\n";
        assert_eq!(classify(go_tls), Answer::Tls);
        assert_eq!(classify(b"\x15\x03\x01\x00\x02\x02\x46"), Answer::Tls);
        assert_eq!(classify(b""), Answer::Tls);
    }
}
