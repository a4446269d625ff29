//! Talking to the registry, through `oci-client` (the distribution
//! protocol, token auth, digest checks on every download) on a small
//! runtime of its own, with short timeouts.
//!
//! Jobs run on blocking threads of the scheduler's current-thread runtime;
//! they call [`block_on`] on this module's runtime, which is never the
//! caller's, so nothing can wait on itself.

use std::collections::BTreeMap;
use std::future::Future;
use std::path::Path;
use std::sync::OnceLock;
use std::time::Duration;

use oci_client::client::{ClientConfig, ClientProtocol, Config, ImageLayer};
use oci_client::errors::{OciDistributionError, OciErrorCode};
use oci_client::manifest::{OciDescriptor, OciImageManifest};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference};
use tokio::runtime::Runtime;

use super::auth::Credentials;
use super::reference::Remote;

/// Why a registry call failed, as the cache's warning words it.
#[derive(Debug)]
pub enum Failure {
    /// Connection refused, DNS, TLS, timeouts, 5xx: the registry is not
    /// usable this run.
    Unreachable(String),
    /// 401/403 or a failed token exchange.
    Auth(String),
    /// The artifact is there but not what it claims to be.
    Corrupt(String),
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Unreachable(why) | Failure::Auth(why) | Failure::Corrupt(why) => f.write_str(why),
        }
    }
}

/// The runtime all registry calls run on: one worker, made on first use
/// and kept for the process (a runtime cannot be dropped inside another).
fn runtime() -> Result<&'static Runtime, Failure> {
    static RUNTIME: OnceLock<Option<Runtime>> = OnceLock::new();
    RUNTIME
        .get_or_init(|| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .thread_name("mtr-cache")
                .enable_all()
                .build()
                .ok()
        })
        .as_ref()
        .ok_or_else(|| Failure::Unreachable("cannot start the cache's runtime".into()))
}

/// How often a wait on the registry looks for Ctrl-C.
const CANCEL_POLL: Duration = Duration::from_millis(50);

/// Runs `fut` to completion from a thread that is not a runtime worker,
/// or until the run is interrupted (Ctrl-C never waits on a registry).
pub fn block_on<T>(fut: impl Future<Output = Result<T, Failure>>) -> Result<T, Failure> {
    runtime()?.block_on(async {
        tokio::select! {
            r = fut => r,
            _ = async {
                while !crate::exec::process::cancelled() {
                    tokio::time::sleep(CANCEL_POLL).await;
                }
            } => Err(Failure::Unreachable("interrupted".into())),
        }
    })
}

/// Starts `fut` in the background.
pub fn spawn(fut: impl Future<Output = ()> + Send + 'static) -> Option<tokio::task::JoinHandle<()>> {
    runtime().ok().map(|rt| rt.spawn(fut))
}

/// One repository of one registry, with the credentials to use.
pub struct Registry {
    client: Client,
    auth: RegistryAuth,
    remote: Remote,
    timeout: Duration,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Registry({})", self.remote)
    }
}

impl Registry {
    pub fn new(remote: Remote, insecure: bool, timeout: Duration, creds: Option<Credentials>) -> Registry {
        // reqwest is built without a default TLS provider; ring is ours.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let config = ClientConfig {
            protocol: if insecure {
                ClientProtocol::Http
            } else {
                ClientProtocol::Https
            },
            connect_timeout: Some(timeout),
            read_timeout: Some(timeout),
            // Our artifacts are single manifests; an index is not ours.
            platform_resolver: None,
            user_agent: concat!("mtr/", env!("CARGO_PKG_VERSION")),
            ..ClientConfig::default()
        };
        Registry {
            client: Client::new(config),
            auth: match creds {
                Some(c) => RegistryAuth::Basic(c.username, c.password),
                None => RegistryAuth::Anonymous,
            },
            remote,
            timeout,
        }
    }

    fn reference(&self, tag: &str) -> Reference {
        Reference::with_tag(
            self.remote.registry.clone(),
            self.remote.repository.clone(),
            tag.to_string(),
        )
    }

    /// The manifest tagged `tag`; `None` when there is none.
    pub async fn manifest(&self, tag: &str) -> Result<Option<OciImageManifest>, Failure> {
        let reference = self.reference(tag);
        let fetch = self.client.pull_image_manifest(&reference, &self.auth);
        match tokio::time::timeout(self.timeout, fetch).await {
            Err(_) => Err(self.timed_out()),
            Ok(Ok((manifest, _digest))) => Ok(Some(manifest)),
            Ok(Err(e)) if not_found(&e) => Ok(None),
            Ok(Err(e)) => Err(self.classify(e)),
        }
    }

    /// A blob of the artifact tagged `tag`, in memory, digest-checked.
    pub async fn blob(&self, tag: &str, desc: &OciDescriptor) -> Result<Vec<u8>, Failure> {
        let mut out = Vec::with_capacity(usize::try_from(desc.size).unwrap_or(0).min(64 << 20));
        let reference = self.reference(tag);
        let pull = self.client.pull_blob(&reference, desc, &mut out);
        self.within(desc.size, "download", pull).await?;
        Ok(out)
    }

    /// A blob written to `path`, digest-checked.
    pub async fn blob_to_file(&self, tag: &str, desc: &OciDescriptor, path: &Path) -> Result<(), Failure> {
        let file = tokio::fs::File::create(path)
            .await
            .map_err(|e| Failure::Corrupt(format!("cannot write `{}`: {e}", path.display())))?;
        let reference = self.reference(tag);
        let pull = self.client.pull_blob(&reference, desc, file);
        self.within(desc.size, "download", pull).await
    }

    /// `transfer` of `bytes`, given up after the timeout plus a second per
    /// MiB: each read has its own timeout, but a registry that sends a
    /// byte now and then would keep a whole transfer going for ever.
    async fn within<T>(
        &self,
        bytes: i64,
        what: &str,
        transfer: impl Future<Output = Result<T, OciDistributionError>>,
    ) -> Result<T, Failure> {
        let deadline = self.timeout + Duration::from_secs(u64::try_from(bytes >> 20).unwrap_or(0));
        match tokio::time::timeout(deadline, transfer).await {
            Err(_) => Err(Failure::Unreachable(format!(
                "the {what} from `{}` took over {}s",
                self.remote.registry,
                deadline.as_secs()
            ))),
            Ok(result) => result.map_err(|e| self.classify(e)),
        }
    }

    /// Pushes the config and layers, then the manifest tagged `tag`, given
    /// up after the timeout plus a second per MiB.
    pub async fn push(
        &self,
        tag: &str,
        config: (Vec<u8>, &str),
        layers: Vec<(Vec<u8>, &str)>,
        artifact_type: &str,
        annotations: BTreeMap<String, String>,
    ) -> Result<(), Failure> {
        let layers: Vec<ImageLayer> = layers
            .into_iter()
            .map(|(data, media)| ImageLayer::new(data, media.to_string(), None))
            .collect();
        let config = Config::new(config.0, config.1.to_string(), None);
        let bytes: usize = layers.iter().map(|l| l.data.len()).sum::<usize>() + config.data.len();
        let mut manifest = OciImageManifest::build(&layers, &config, Some(annotations));
        manifest.artifact_type = Some(artifact_type.to_string());
        let reference = self.reference(tag);
        let upload = self
            .client
            .push(&reference, &layers, config, &self.auth, Some(manifest));
        self.within(i64::try_from(bytes).unwrap_or(i64::MAX), "upload", upload)
            .await
            .map(|_| ())
    }

    fn timed_out(&self) -> Failure {
        Failure::Unreachable(format!(
            "`{}` did not answer within {}s",
            self.remote.registry,
            self.timeout.as_secs()
        ))
    }

    fn classify(&self, e: OciDistributionError) -> Failure {
        use OciDistributionError as E;
        let registry = &self.remote.registry;
        match e {
            E::AuthenticationFailure(why) => Failure::Auth(format!("authentication failed at `{registry}`: {why}")),
            E::UnauthorizedError { .. } => Failure::Auth(format!("`{registry}` refused the credentials")),
            E::RegistryError { envelope, .. }
                if envelope
                    .errors
                    .iter()
                    .any(|e| matches!(e.code, OciErrorCode::Unauthorized | OciErrorCode::Denied)) =>
            {
                Failure::Auth(format!("`{registry}` denied access: {}", messages(&envelope.errors)))
            }
            E::RegistryError { envelope, .. }
                if envelope
                    .errors
                    .iter()
                    .any(|e| matches!(e.code, OciErrorCode::BlobUnknown | OciErrorCode::ManifestBlobUnknown)) =>
            {
                Failure::Corrupt(format!(
                    "a blob of the artifact is missing: {}",
                    messages(&envelope.errors)
                ))
            }
            E::ServerError { code: 401 | 403, .. } => Failure::Auth(format!("`{registry}` denied access")),
            E::DigestError(e) => Failure::Corrupt(format!("digest mismatch: {e}")),
            E::RequestError(e) if e.is_timeout() => self.timed_out(),
            E::RequestError(e) => Failure::Unreachable(format!("cannot reach `{registry}`: {}", cause(&e))),
            E::IoError(e) => Failure::Corrupt(e.to_string()),
            other => Failure::Unreachable(format!("`{registry}`: {other}")),
        }
    }
}

fn messages(errors: &[oci_client::errors::OciError]) -> String {
    errors.iter().map(|e| e.message.clone()).collect::<Vec<_>>().join("; ")
}

/// reqwest's own message names the URL and hides the cause ("error
/// sending request for url ..."): the innermost error says what happened.
fn cause(e: &dyn std::error::Error) -> String {
    let mut cur = e;
    while let Some(next) = cur.source() {
        cur = next;
    }
    cur.to_string()
}

fn not_found(e: &OciDistributionError) -> bool {
    match e {
        OciDistributionError::ImageManifestNotFoundError(_) => true,
        OciDistributionError::RegistryError { envelope, .. } => envelope.errors.iter().all(|e| {
            matches!(
                e.code,
                OciErrorCode::ManifestUnknown | OciErrorCode::NameUnknown | OciErrorCode::NotFound
            )
        }),
        OciDistributionError::ServerError { code: 404, .. } => true,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A transfer that never ends (a registry sending a byte now and then)
    /// is given up after the timeout plus a second per MiB.
    #[test]
    fn a_transfer_is_given_up_at_its_deadline() {
        let remote = Remote::parse("oci://127.0.0.1:9/team/cache").unwrap();
        let registry = Registry::new(remote, true, Duration::from_millis(300), None);
        let start = std::time::Instant::now();
        let never = std::future::pending::<Result<(), OciDistributionError>>();
        let got = runtime().unwrap().block_on(registry.within(1000, "download", never));
        assert!(
            matches!(&got, Err(Failure::Unreachable(why)) if why.contains("the download from `127.0.0.1:9` took over")),
            "{got:?}"
        );
        assert!(start.elapsed() < Duration::from_secs(5), "{:?}", start.elapsed());
    }
}
