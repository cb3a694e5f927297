//! berthd's TCP listeners: the same API over TLS, and only with client certificates.
//!
//! `-H tcp://ADDR:PORT` needs dockerd's `--tlsverify --tlscacert CA --tlscert CERT --tlskey
//! KEY` (or the same keys in the config file). Every client must present a certificate that
//! `--tlscacert` signed; one without a certificate, or with a certificate from another CA, is
//! rejected during the handshake, before any HTTP is read. Plain TCP and TLS without client
//! authentication are not offered at all: anyone who can reach the API can run privileged
//! containers, i.e. own the host.
//!
//! Nothing here runs when every host is a unix socket: [`TcpListeners::bind`] returns at once
//! for an empty list, before any file is read or TLS state built.
//!
//! Handshakes run in their own tasks with a deadline, so a client that connects and stays
//! silent holds up nobody; finished handshakes are handed to axum's server through a channel
//! ([`TlsListener`] implements axum's `Listener`).

use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use berth_engine::Engine;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

/// Where `--tlscacert`, `--tlscert` and `--tlskey` point by default.
pub const DEFAULT_CERT_DIR: &str = "/etc/berth";

/// The port of `tcp://ADDR` without one (docker's TLS port).
pub const DEFAULT_PORT: u16 = 2376;

/// How long a client may take to complete the TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a refused client may take to close its side (see [`close_gently`]).
const LINGER: Duration = Duration::from_secs(2);

/// dockerd's TLS flags.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct TlsFlags {
    /// Use TLS; implied by --tlsverify (tcp:// hosts need --tlsverify)
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub tls: Option<bool>,
    /// Use TLS and require client certificates signed by --tlscacert (needed for tcp:// hosts)
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub tlsverify: Option<bool>,
    /// Trust client certificates signed only by this CA (default /etc/berth/ca.pem)
    #[arg(long, value_name = "PATH")]
    pub tlscacert: Option<PathBuf>,
    /// The daemon's TLS certificate (default /etc/berth/cert.pem)
    #[arg(long, value_name = "PATH")]
    pub tlscert: Option<PathBuf>,
    /// The daemon's TLS key (default /etc/berth/key.pem)
    #[arg(long, value_name = "PATH")]
    pub tlskey: Option<PathBuf>,
}

/// The config file keys [`TlsSettings::resolve`] reads (dockerd's names).
pub const CONFIG_KEYS: [&str; 5] = ["tls", "tlsverify", "tlscacert", "tlscert", "tlskey"];

/// The effective TLS settings (flags over the config file over the defaults).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsSettings {
    /// `--tls` (or implied by `--tlsverify`).
    pub tls: bool,
    /// `--tlsverify`: client certificates required and checked against `ca`.
    pub verify: bool,
    /// The CA that signs client certificates.
    pub ca: PathBuf,
    /// The daemon's certificate (chain) and key.
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl TlsSettings {
    /// Merges `flags` over the config `file` (read from `path`, for messages).
    pub fn resolve(
        flags: &TlsFlags,
        file: &serde_json::Map<String, serde_json::Value>,
        path: &Path,
    ) -> anyhow::Result<TlsSettings> {
        let boolean = |key: &str| -> anyhow::Result<Option<bool>> {
            match file.get(key) {
                None | Some(serde_json::Value::Null) => Ok(None),
                Some(serde_json::Value::Bool(b)) => Ok(Some(*b)),
                Some(other) => bail!(
                    "{}: {key:?} must be true or false, not {other}",
                    path.display()
                ),
            }
        };
        let file_path = |key: &str, default: &str| -> anyhow::Result<PathBuf> {
            match file.get(key) {
                None | Some(serde_json::Value::Null) => {
                    Ok(Path::new(DEFAULT_CERT_DIR).join(default))
                }
                Some(serde_json::Value::String(s)) if !s.is_empty() => Ok(PathBuf::from(s)),
                Some(other) => bail!(
                    "{}: {key:?} must be a file path, not {other}",
                    path.display()
                ),
            }
        };
        let verify = match flags.tlsverify {
            Some(v) => v,
            None => boolean("tlsverify")?.unwrap_or(false),
        };
        let tls = verify
            || flags.tlsverify.is_some()
            || match flags.tls {
                Some(v) => v,
                None => boolean("tls")?.unwrap_or(false),
            };
        Ok(TlsSettings {
            tls,
            verify,
            ca: match &flags.tlscacert {
                Some(p) => p.clone(),
                None => file_path("tlscacert", "ca.pem")?,
            },
            cert: match &flags.tlscert {
                Some(p) => p.clone(),
                None => file_path("tlscert", "cert.pem")?,
            },
            key: match &flags.tlskey {
                Some(p) => p.clone(),
                None => file_path("tlskey", "key.pem")?,
            },
        })
    }
}

/// True for a `tcp://` host (served here); the others are unix sockets.
pub fn is_tcp(host: &str) -> bool {
    host.starts_with("tcp://")
}

/// The socket address of `tcp://ADDR[:PORT]`: an empty address listens on every interface
/// (`tcp://:2376`, as dockerd), a missing port is [`DEFAULT_PORT`].
pub fn tcp_addr(host: &str) -> anyhow::Result<String> {
    let rest = host
        .strip_prefix("tcp://")
        .with_context(|| format!("invalid host {host:?}: expected tcp://ADDR:PORT"))?;
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    if rest.contains(['/', '?', '#', '@']) {
        bail!("invalid host {host:?}: expected tcp://ADDR:PORT without a path");
    }
    let has_port = match rest.rfind(']') {
        Some(close) => rest[close..].contains(':'),
        None if rest.matches(':').count() > 1 => {
            bail!("invalid host {host:?}: put IPv6 addresses in brackets: tcp://[::1]:2376")
        }
        None => rest.contains(':'),
    };
    let mut addr = if rest.is_empty() || rest.starts_with(':') {
        format!("0.0.0.0{rest}")
    } else {
        rest.to_owned()
    };
    if !has_port {
        addr.push_str(&format!(":{DEFAULT_PORT}"));
    }
    Ok(addr)
}

fn read_certs(path: &Path, flag: &str) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    let pem = std::fs::read(path)
        .with_context(|| format!("{flag} {}: cannot read the certificate", path.display()))?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| anyhow::anyhow!("{flag} {}: invalid PEM: {e}", path.display()))?;
    if certs.is_empty() {
        bail!(
            "{flag} {}: no CERTIFICATE block found (a PEM certificate is expected)",
            path.display()
        );
    }
    Ok(certs)
}

/// The rustls server configuration: the daemon's certificate, and client certificates
/// required and verified against the CA (ring provider).
pub fn server_config(s: &TlsSettings) -> anyhow::Result<Arc<ServerConfig>> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = RootCertStore::empty();
    for cert in read_certs(&s.ca, "--tlscacert")? {
        roots
            .add(cert)
            .map_err(|e| anyhow::anyhow!("--tlscacert {}: {e}", s.ca.display()))?;
    }
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .map_err(|e| anyhow::anyhow!("--tlscacert {}: {e}", s.ca.display()))?;
    let chain = read_certs(&s.cert, "--tlscert")?;
    let key_pem = std::fs::read(&s.key)
        .with_context(|| format!("--tlskey {}: cannot read the key", s.key.display()))?;
    let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| {
        anyhow::anyhow!(
            "--tlskey {}: no usable private key ({e}); an unencrypted PEM key (PKCS#8, RSA or EC) is expected",
            s.key.display()
        )
    })?;
    let config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("tls setup")?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)
        .map_err(|e| {
            anyhow::anyhow!(
                "--tlscert {} with --tlskey {}: {e}",
                s.cert.display(),
                s.key.display()
            )
        })?;
    Ok(Arc::new(config))
}

/// The `tcp://` hosts, bound, with their TLS configuration loaded (so that a bad certificate
/// or a busy port fails berthd's start, not the first client).
pub struct TcpListeners {
    bound: Vec<(String, std::net::TcpListener)>,
    acceptor: Option<TlsAcceptor>,
}

impl TcpListeners {
    /// Binds every `tcp://` host in `hosts`; refuses them without `--tlsverify`. Returns at
    /// once, touching nothing, when there is none.
    pub fn bind(hosts: &[String], tls: &TlsSettings) -> anyhow::Result<TcpListeners> {
        let tcp: Vec<&String> = hosts.iter().filter(|h| is_tcp(h)).collect();
        let Some(first) = tcp.first() else {
            return Ok(TcpListeners {
                bound: Vec::new(),
                acceptor: None,
            });
        };
        if !tls.verify {
            bail!(
                "{first}: berthd listens on TCP only with TLS client authentication{}: add --tlsverify --tlscacert CA.pem --tlscert SERVER-CERT.pem --tlskey SERVER-KEY.pem (or \"tlsverify\": true and the same keys in the config file), or use unix://PATH",
                if tls.tls {
                    " (--tls without --tlsverify would let in any client)"
                } else {
                    ""
                }
            );
        }
        let acceptor = TlsAcceptor::from(server_config(tls)?);
        let mut bound = Vec::new();
        for host in tcp {
            let addr = tcp_addr(host)?;
            let listener = std::net::TcpListener::bind(&addr)
                .with_context(|| format!("listening on {host}"))?;
            listener.set_nonblocking(true)?;
            bound.push((host.clone(), listener));
        }
        Ok(TcpListeners {
            bound,
            acceptor: Some(acceptor),
        })
    }

    /// The bound addresses (port 0 resolved), in the order of the hosts.
    pub fn local_addrs(&self) -> Vec<SocketAddr> {
        self.bound
            .iter()
            .filter_map(|(_, l)| l.local_addr().ok())
            .collect()
    }

    /// Starts serving the API on every listener (inside the tokio runtime).
    pub fn serve(
        self,
        engine: Arc<Engine>,
    ) -> anyhow::Result<Vec<tokio::task::JoinHandle<io::Result<()>>>> {
        let mut servers = Vec::new();
        let Some(acceptor) = self.acceptor else {
            return Ok(servers);
        };
        for (host, listener) in self.bound {
            let local = listener.local_addr()?;
            let listener =
                TcpListener::from_std(listener).with_context(|| format!("listening on {host}"))?;
            tracing::info!("listening on tcp://{local} (TLS, client certificates required)");
            servers.push(tokio::spawn(serve_tls(
                listener,
                acceptor.clone(),
                engine.clone(),
            )));
        }
        Ok(servers)
    }
}

/// Serves the API over TLS on `listener` until the future is dropped.
pub async fn serve_tls(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    engine: Arc<Engine>,
) -> io::Result<()> {
    let local = listener.local_addr()?;
    let (tx, rx) = mpsc::channel(64);
    tokio::select! {
        r = crate::serve(TlsListener { rx, local }, engine) => r,
        () = accept_loop(listener, acceptor, tx) => Ok(()),
    }
}

/// Accepts TCP connections and runs each handshake in its own task.
async fn accept_loop(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    ready: mpsc::Sender<(TlsStream<TcpStream>, SocketAddr)>,
) {
    loop {
        let (tcp, peer) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                // Out of file descriptors and the like: back off instead of spinning.
                tracing::warn!("accepting a TCP connection: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        let acceptor = acceptor.clone();
        let ready = ready.clone();
        tokio::spawn(async move {
            let handshake = acceptor.accept(tcp).into_fallible();
            match tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake).await {
                Ok(Ok(tls)) => {
                    let _ = ready.send((tls, peer)).await;
                }
                Ok(Err((e, tcp))) => {
                    tracing::warn!("tls handshake with {peer} failed: {e}");
                    close_gently(tcp).await;
                }
                Err(_) => tracing::warn!(
                    "tls handshake with {peer} took longer than {}s: closed",
                    HANDSHAKE_TIMEOUT.as_secs()
                ),
            }
        });
    }
}

/// Closes a refused connection so that the client reads the TLS alert rustls sent. A TLS 1.3
/// client learns that its certificate was refused only after it sent its request; if that
/// request were still unread when the socket closes, the kernel would answer with a reset and
/// the client would see "connection reset" instead of the alert. So: end our side, then read
/// and drop what the client sends until it closes too (at most [`LINGER`]).
async fn close_gently(mut tcp: TcpStream) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let _ = tcp.shutdown().await;
    let mut sink = [0u8; 4096];
    let drain = async { while matches!(tcp.read(&mut sink).await, Ok(n) if n > 0) {} };
    let _ = tokio::time::timeout(LINGER, drain).await;
}

/// Connections whose handshake (client certificate included) succeeded, as axum's listener.
pub struct TlsListener {
    rx: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    local: SocketAddr,
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.rx.recv().await {
            Some(conn) => conn,
            // The accept loop is gone (berthd is stopping): accept nothing more.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        Ok(self.local)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tcp_addresses_follow_dockerd() {
        assert_eq!(tcp_addr("tcp://127.0.0.1:2376").unwrap(), "127.0.0.1:2376");
        assert_eq!(tcp_addr("tcp://127.0.0.1").unwrap(), "127.0.0.1:2376");
        assert_eq!(tcp_addr("tcp://:2377").unwrap(), "0.0.0.0:2377");
        assert_eq!(tcp_addr("tcp://").unwrap(), "0.0.0.0:2376");
        assert_eq!(tcp_addr("tcp://[::1]:9").unwrap(), "[::1]:9");
        assert_eq!(tcp_addr("tcp://[::1]").unwrap(), "[::1]:2376");
        assert_eq!(tcp_addr("tcp://localhost:5/").unwrap(), "localhost:5");
        for bad in ["tcp://::1:5", "tcp://h:1/path", "unix:///x"] {
            assert!(tcp_addr(bad).is_err(), "{bad}");
        }
    }

    fn file(json: &str) -> serde_json::Map<String, serde_json::Value> {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn settings_merge_flags_over_file() {
        let p = Path::new("/x/daemon.json");
        let s = TlsSettings::resolve(&TlsFlags::default(), &file("{}"), p).unwrap();
        assert!(!s.tls && !s.verify);
        assert_eq!(s.ca, Path::new("/etc/berth/ca.pem"));
        let s = TlsSettings::resolve(
            &TlsFlags::default(),
            &file(r#"{"tlsverify":true,"tlscacert":"/c/ca.pem","tlscert":"/c/s.pem"}"#),
            p,
        )
        .unwrap();
        assert!(s.tls && s.verify);
        assert_eq!(s.ca, Path::new("/c/ca.pem"));
        assert_eq!(s.cert, Path::new("/c/s.pem"));
        assert_eq!(s.key, Path::new("/etc/berth/key.pem"));
        let flags = TlsFlags {
            tlsverify: Some(false),
            tlscacert: Some("/f/ca.pem".into()),
            ..Default::default()
        };
        let s = TlsSettings::resolve(&flags, &file(r#"{"tlsverify":true}"#), p).unwrap();
        assert!(
            s.tls && !s.verify,
            "--tlsverify=false wins and still means TLS"
        );
        assert_eq!(s.ca, Path::new("/f/ca.pem"));
        for (bad, needle) in [
            (
                r#"{"tlsverify":"yes"}"#,
                "\"tlsverify\" must be true or false",
            ),
            (r#"{"tlscert":5}"#, "\"tlscert\" must be a file path"),
            (r#"{"tlskey":""}"#, "\"tlskey\" must be a file path"),
        ] {
            let e = TlsSettings::resolve(&TlsFlags::default(), &file(bad), p).unwrap_err();
            assert!(format!("{e:#}").contains(needle), "{bad}: {e:#}");
        }
    }

    #[test]
    fn tcp_is_refused_without_client_verification() {
        let plain =
            TlsSettings::resolve(&TlsFlags::default(), &file("{}"), Path::new("/d")).unwrap();
        let hosts = vec![
            "unix:///x.sock".to_string(),
            "tcp://127.0.0.1:0".to_string(),
        ];
        let e = TcpListeners::bind(&hosts, &plain)
            .err()
            .unwrap()
            .to_string();
        assert!(
            e.starts_with("tcp://127.0.0.1:0: berthd listens on TCP only with TLS client authentication: add --tlsverify"),
            "{e}"
        );
        let tls_only = TlsSettings {
            tls: true,
            ..plain.clone()
        };
        let e = TcpListeners::bind(&hosts, &tls_only)
            .err()
            .unwrap()
            .to_string();
        assert!(
            e.contains("--tls without --tlsverify would let in any client"),
            "{e}"
        );
        // Unix-only: nothing is checked or loaded, even with unreadable TLS files.
        let missing = TlsSettings {
            verify: true,
            tls: true,
            ca: "/nonexistent/berth-test/ca.pem".into(),
            ..plain
        };
        let l = TcpListeners::bind(&hosts[..1], &missing).unwrap();
        assert!(l.local_addrs().is_empty());
        // With a tcp host the missing files are reported by flag and path.
        let e = format!("{:#}", TcpListeners::bind(&hosts, &missing).err().unwrap());
        assert!(
            e.contains("--tlscacert /nonexistent/berth-test/ca.pem: cannot read the certificate"),
            "{e}"
        );
    }
}
