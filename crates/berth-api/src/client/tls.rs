//! TLS to a `tcp://` daemon: docker's client TLS options turned into a rustls configuration
//! (ring provider), and a blocking TLS stream that two threads can use at once.
//!
//! Nothing here runs for `unix://` hosts: options are resolved only when the chosen host is
//! `tcp://`, and the rustls configuration is built on the first connection.
//!
//! Docker's rules, as its CLI applies them (`cli/flags/options.go`):
//! - TLS is on with `--tls`, `--tlsverify` (given at all, even `=false`), a non-empty
//!   `DOCKER_TLS_VERIFY` or a non-empty `DOCKER_TLS` (`BERTH_*` first);
//! - `--tlsverify` (or `DOCKER_TLS_VERIFY`) verifies the daemon's certificate against the CA
//!   file only; plain `--tls` encrypts without verifying the daemon (insecure, as docker's);
//! - files default to `ca.pem`, `cert.pem` and `key.pem` in `$BERTH_CERT_PATH`, else
//!   `$DOCKER_CERT_PATH`, else docker's config directory (`$DOCKER_CONFIG`, else
//!   `~/.docker`); a default client certificate or key that does not exist is left out, a
//!   file named by a flag must exist.
//!
//! berthd never serves plain TCP, so a `tcp://` host without TLS is refused here with the
//! flags to add.
//!
//! [`TlsStream`] is used by a reader and a writer thread at the same time (attach: output
//! flows while stdin is copied). rustls connections are not split into halves, so the
//! connection state sits behind a mutex that is never held across a blocking socket call:
//! the reader waits for ciphertext on the socket without the lock, then feeds it in; a writer
//! encrypts under the lock and writes the records after releasing it (one writer at a time,
//! so records stay in order).

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, ClientConnection, DigitallySignedStruct, RootCertStore};

/// The CLI's TLS flags before docker's defaults are applied (`--tls`, `--tlsverify`,
/// `--tlscacert`, `--tlscert`, `--tlskey`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsFlags {
    /// `--tls`: use TLS (implied by `--tlsverify`).
    pub tls: bool,
    /// `--tlsverify[=BOOL]`: `Some` when given at all (which turns TLS on, as docker's).
    pub tlsverify: Option<bool>,
    /// `--tlscacert`: trust only daemons whose certificate this CA signed.
    pub tlscacert: Option<PathBuf>,
    /// `--tlscert`: the client certificate (PEM).
    pub tlscert: Option<PathBuf>,
    /// `--tlskey`: the client certificate's private key (PEM, unencrypted).
    pub tlskey: Option<PathBuf>,
}

/// TLS settings for one `tcp://` host, after docker's defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsOptions {
    /// Verify the daemon's certificate against `ca` (`--tlsverify`); false encrypts without
    /// verifying the daemon (`--tls` alone, insecure).
    pub verify: bool,
    /// The CA that signed the daemon's certificate (required when `verify`).
    pub ca: Option<PathBuf>,
    /// The client certificate and its key (berthd requires them).
    pub cert: Option<(PathBuf, PathBuf)>,
}

impl TlsFlags {
    /// Applies docker's rules and defaults (see the module docs); `Ok(None)` when TLS is
    /// off. `env` looks up environment variables. Touches the file system only to see
    /// whether the default client certificate and key exist.
    pub fn resolve(
        &self,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Option<TlsOptions>, String> {
        let set = |name: &str| {
            env(&format!("BERTH_{name}"))
                .filter(|v| !v.is_empty())
                .or_else(|| env(&format!("DOCKER_{name}")).filter(|v| !v.is_empty()))
        };
        let verify = self
            .tlsverify
            .unwrap_or_else(|| set("TLS_VERIFY").is_some());
        let tls = self.tls || self.tlsverify.is_some() || verify || set("TLS").is_some();
        if !tls {
            return Ok(None);
        }
        let dir = set("CERT_PATH")
            .or_else(|| env("DOCKER_CONFIG").filter(|v| !v.is_empty()))
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                env("HOME")
                    .filter(|h| !h.is_empty())
                    .map(PathBuf::from)
                    .unwrap_or_else(|| PathBuf::from("/"))
                    .join(".docker")
            });
        let ca = Some(self.tlscacert.clone().unwrap_or_else(|| dir.join("ca.pem")));
        let pick = |flag: &Option<PathBuf>, default: &str| match flag {
            Some(p) => Some(p.clone()),
            None => Some(dir.join(default)).filter(|p| p.exists()),
        };
        let cert = match (
            pick(&self.tlscert, "cert.pem"),
            pick(&self.tlskey, "key.pem"),
        ) {
            (Some(c), Some(k)) => Some((c, k)),
            (None, None) => None,
            (Some(c), None) => {
                return Err(format!(
                    "client certificate {} has no key: pass --tlskey (or put key.pem next to it in DOCKER_CERT_PATH)",
                    c.display()
                ));
            }
            (None, Some(k)) => {
                return Err(format!(
                    "client key {} has no certificate: pass --tlscert (or put cert.pem next to it in DOCKER_CERT_PATH)",
                    k.display()
                ));
            }
        };
        Ok(Some(TlsOptions {
            verify,
            ca: if verify { ca } else { None },
            cert,
        }))
    }
}

/// How long the daemon may take to answer the TLS handshake.
const HANDSHAKE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// The message for a `tcp://` host without TLS.
pub(crate) const TCP_NEEDS_TLS: &str = "berthd serves tcp:// only over TLS with client certificates: add --tlsverify --tlscacert CA.pem --tlscert CERT.pem --tlskey KEY.pem (or set DOCKER_TLS_VERIFY=1 and DOCKER_CERT_PATH to a directory holding ca.pem, cert.pem and key.pem)";

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn read_certs(path: &Path, what: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    // Read first so that a missing file says so (the PEM iterator's error is vaguer).
    let pem =
        std::fs::read(path).map_err(|e| format!("cannot read {what} {}: {e}", path.display()))?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{what} {}: invalid PEM: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!(
            "{what} {}: no CERTIFICATE block found (a PEM certificate is expected)",
            path.display()
        ));
    }
    Ok(certs)
}

fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, String> {
    let pem = std::fs::read(path)
        .map_err(|e| format!("cannot read client key {}: {e}", path.display()))?;
    PrivateKeyDer::from_pem_slice(&pem).map_err(|e| {
        format!(
            "client key {}: no usable private key ({e}); an unencrypted PEM key (PKCS#8, RSA or EC) is expected",
            path.display()
        )
    })
}

/// Builds the rustls client configuration for `opts` (reads the PEM files).
pub fn client_config(opts: &TlsOptions) -> Result<Arc<ClientConfig>, String> {
    let provider = provider();
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("tls setup: {e}"))?;
    let builder = if opts.verify {
        let ca = opts
            .ca
            .as_deref()
            .ok_or("--tlsverify needs a CA certificate: pass --tlscacert")?;
        let mut roots = RootCertStore::empty();
        for cert in read_certs(ca, "CA certificate")? {
            roots
                .add(cert)
                .map_err(|e| format!("CA certificate {}: {e}", ca.display()))?;
        }
        builder.with_root_certificates(roots)
    } else {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(UnverifiedServer(provider)))
    };
    let config = match &opts.cert {
        Some((cert, key)) => {
            let chain = read_certs(cert, "client certificate")?;
            let key_der = read_key(key)?;
            builder.with_client_auth_cert(chain, key_der).map_err(|e| {
                format!(
                    "client certificate {} with key {}: {e}",
                    cert.display(),
                    key.display()
                )
            })?
        }
        None => builder.with_no_client_auth(),
    };
    Ok(Arc::new(config))
}

/// `--tls` without `--tlsverify`: any daemon certificate is accepted (docker's
/// `InsecureSkipVerify`); the handshake signatures are still checked.
#[derive(Debug)]
struct UnverifiedServer(Arc<CryptoProvider>);

impl ServerCertVerifier for UnverifiedServer {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// A hint for a TLS failure, said in terms of the CLI's flags.
pub(crate) fn hint(e: &rustls::Error) -> &'static str {
    use rustls::{AlertDescription as A, CertificateError as C, Error as E};
    match e {
        E::AlertReceived(A::CertificateRequired) | E::NoCertificatesPresented => {
            " (the daemon requires a client certificate signed by its CA: pass --tlscert and --tlskey)"
        }
        E::AlertReceived(A::UnknownCA | A::BadCertificate | A::DecryptError | A::AccessDenied)
        | E::AlertReceived(A::CertificateUnknown | A::UnsupportedCertificate) => {
            " (the daemon rejected the client certificate: it must be signed by the CA the daemon trusts)"
        }
        E::InvalidCertificate(C::UnknownIssuer | C::BadSignature) => {
            " (the daemon's certificate is not signed by the CA given with --tlscacert)"
        }
        E::InvalidCertificate(C::NotValidForName | C::NotValidForNameContext { .. }) => {
            " (the daemon's certificate does not name this host: connect with a name or IP address in its subjectAltName)"
        }
        E::InvalidCertificate(C::Expired | C::ExpiredContext { .. }) => {
            " (the daemon's certificate has expired)"
        }
        E::InvalidMessage(_) => " (is this a TLS port of berthd?)",
        _ => "",
    }
}

/// A TLS connection over blocking TCP that a reader and a writer thread may share
/// (see the module docs for the locking).
pub struct TlsStream {
    sock: TcpStream,
    conn: Mutex<ClientConnection>,
    /// Held by whoever writes ciphertext to the socket, so records stay in order.
    write_turn: Mutex<()>,
    /// Held by the reader while it moves ciphertext from the socket into `conn`: the
    /// ciphertext read from the socket that rustls has not taken yet.
    read_turn: Mutex<Vec<u8>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn tls_error(e: rustls::Error) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e)
}

impl TlsStream {
    /// Connects to `addr` (`host:port`) and completes the handshake, verifying the daemon as
    /// `server_name` (a DNS name or IP address).
    pub fn connect(
        addr: &str,
        server_name: &str,
        config: Arc<ClientConfig>,
    ) -> io::Result<TlsStream> {
        let name = ServerName::try_from(server_name.to_owned()).map_err(|_| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{server_name:?} is not a valid DNS name or IP address for TLS"),
            )
        })?;
        let mut sock = TcpStream::connect(addr)?;
        sock.set_nodelay(true)?;
        // A peer that accepts the connection but never answers the handshake (not a TLS
        // port) must not hang the CLI; once the session is up, reads may wait for as long as
        // the operation takes (logs -f, wait).
        sock.set_read_timeout(Some(HANDSHAKE_TIMEOUT))?;
        let mut conn = ClientConnection::new(config, name).map_err(tls_error)?;
        let handshake = (|| -> io::Result<()> {
            while conn.is_handshaking() {
                conn.complete_io(&mut sock)?;
            }
            while conn.wants_write() {
                conn.write_tls(&mut sock)?;
            }
            Ok(())
        })();
        if let Err(e) = handshake {
            return Err(match e.kind() {
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!(
                        "no TLS handshake within {}s (is this a TLS port of berthd?)",
                        HANDSHAKE_TIMEOUT.as_secs()
                    ),
                ),
                _ => e,
            });
        }
        sock.set_read_timeout(None)?;
        Ok(TlsStream {
            sock,
            conn: Mutex::new(conn),
            write_turn: Mutex::new(()),
            read_turn: Mutex::new(Vec::new()),
        })
    }

    /// Encrypts `plain` (may be empty: just flush what rustls queued, alerts included) and
    /// writes the records; returns how much of `plain` was taken.
    fn send(&self, plain: &[u8]) -> io::Result<usize> {
        let _turn = lock(&self.write_turn);
        let mut records = Vec::new();
        let n = {
            let mut conn = lock(&self.conn);
            let n = if plain.is_empty() {
                0
            } else {
                conn.writer().write(plain)?
            };
            while conn.wants_write() {
                conn.write_tls(&mut records)?;
            }
            n
        };
        (&self.sock).write_all(&records)?;
        Ok(n)
    }

    /// Reads plaintext; `Ok(0)` once the daemon closed the session cleanly.
    ///
    /// Ciphertext goes from the socket into `pending` (without the connection lock), then into
    /// rustls only while its plaintext buffer is empty: rustls refuses more input ("received
    /// plaintext buffer full") while it holds 16 KiB of unread plaintext, and bytes it has
    /// not taken yet stay in `pending` for the next call.
    pub fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let mut pending = lock(&self.read_turn);
        let mut cipher = [0u8; 16 * 1024];
        loop {
            {
                let mut conn = lock(&self.conn);
                let result = loop {
                    match conn.reader().read(buf) {
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                        done => break Some(done),
                    }
                    // No plaintext buffered: rustls takes ciphertext now.
                    if pending.is_empty() {
                        break None;
                    }
                    let mut rd = &pending[..];
                    match conn.read_tls(&mut rd) {
                        Ok(0) => pending.clear(),
                        Ok(n) => {
                            pending.drain(..n);
                        }
                        Err(e) => break Some(Err(e)),
                    }
                    if let Err(e) = conn.process_new_packets() {
                        break Some(Err(tls_error(e)));
                    }
                };
                let reply = conn.wants_write();
                drop(conn);
                if reply {
                    // Key updates, or the alert for an error.
                    let _ = self.send(&[]);
                }
                if let Some(done) = result {
                    return done;
                }
            }
            // Here `pending` is empty. Wait for ciphertext without holding the connection, so
            // a writer may go on.
            let got = loop {
                match (&self.sock).read(&mut cipher) {
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    r => break r?,
                }
            };
            if got == 0 {
                // Tell rustls about the end of the stream; the next round returns Ok(0) after
                // a close_notify, UnexpectedEof otherwise.
                let mut conn = lock(&self.conn);
                conn.read_tls(&mut io::empty())?;
                conn.process_new_packets().map_err(tls_error)?;
            }
            pending.extend_from_slice(&cipher[..got]);
        }
    }

    /// Encrypts and sends `buf`.
    pub fn write(&self, buf: &[u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        self.send(buf)
    }

    /// Half- or fully closes: the write side ends the TLS session with `close_notify` first,
    /// so the daemon reads a clean end of input.
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        if how != Shutdown::Read {
            lock(&self.conn).send_close_notify();
            self.send(&[])?;
        }
        self.sock.shutdown(how)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::{ClientError, Host};

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |k: &str| pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone())
    }

    #[test]
    fn tls_is_off_unless_asked_for() {
        let off = TlsFlags::default().resolve(env(&[("HOME", "/h")])).unwrap();
        assert_eq!(off, None);
        // Empty variables count as unset, as docker's.
        let off = TlsFlags::default()
            .resolve(env(&[("DOCKER_TLS_VERIFY", ""), ("DOCKER_TLS", "")]))
            .unwrap();
        assert_eq!(off, None);
    }

    #[test]
    fn docker_rules_for_verify_and_default_files() {
        let dir = tempfile::Builder::new()
            .prefix("berth-test-tls")
            .tempdir()
            .unwrap();
        let d = dir.path().to_str().unwrap().to_owned();
        // DOCKER_TLS_VERIFY with DOCKER_CERT_PATH: CA from there; no client files there yet.
        let o = TlsFlags::default()
            .resolve(env(&[("DOCKER_TLS_VERIFY", "1"), ("DOCKER_CERT_PATH", &d)]))
            .unwrap()
            .unwrap();
        assert!(o.verify);
        assert_eq!(o.ca, Some(dir.path().join("ca.pem")));
        assert_eq!(o.cert, None);
        // Once cert.pem and key.pem exist they are used; BERTH_CERT_PATH wins.
        std::fs::write(dir.path().join("cert.pem"), "").unwrap();
        std::fs::write(dir.path().join("key.pem"), "").unwrap();
        let o = TlsFlags::default()
            .resolve(env(&[
                ("BERTH_TLS_VERIFY", "1"),
                ("BERTH_CERT_PATH", &d),
                ("DOCKER_CERT_PATH", "/nonexistent"),
            ]))
            .unwrap()
            .unwrap();
        assert_eq!(
            o.cert,
            Some((dir.path().join("cert.pem"), dir.path().join("key.pem")))
        );
        // DOCKER_CONFIG, then ~/.docker, when no cert path is set.
        let o = TlsFlags::default()
            .resolve(env(&[("DOCKER_TLS_VERIFY", "1"), ("DOCKER_CONFIG", &d)]))
            .unwrap()
            .unwrap();
        assert_eq!(o.ca, Some(dir.path().join("ca.pem")));
        let o = TlsFlags::default()
            .resolve(env(&[("DOCKER_TLS_VERIFY", "1"), ("HOME", "/h")]))
            .unwrap()
            .unwrap();
        assert_eq!(o.ca, Some(PathBuf::from("/h/.docker/ca.pem")));
        // --tlsverify=false still means TLS (docker's flags.Changed rule), unverified.
        let flags = TlsFlags {
            tlsverify: Some(false),
            ..Default::default()
        };
        let o = flags
            .resolve(env(&[("DOCKER_TLS_VERIFY", "1"), ("HOME", "/h")]))
            .unwrap()
            .unwrap();
        assert!(!o.verify);
        assert_eq!(o.ca, None);
        // --tls alone: encrypted, daemon unverified.
        let flags = TlsFlags {
            tls: true,
            ..Default::default()
        };
        assert!(
            !flags
                .resolve(env(&[("HOME", "/h")]))
                .unwrap()
                .unwrap()
                .verify
        );
        // A certificate without its key is an error naming the flag to add.
        let flags = TlsFlags {
            tlsverify: Some(true),
            tlscert: Some("/c/cert.pem".into()),
            ..Default::default()
        };
        let e = flags.resolve(env(&[("HOME", "/h")])).unwrap_err();
        assert!(
            e.starts_with("client certificate /c/cert.pem has no key: pass --tlskey"),
            "{e}"
        );
    }

    #[test]
    fn tcp_hosts_need_tls_and_parse_like_docker() {
        let tcp = |s: &str| match Host::parse(s) {
            Ok(Host::Tcp { host, port, .. }) => Ok((host, port)),
            Ok(other) => panic!("{s}: {other:?}"),
            Err(e) => Err(e.to_string()),
        };
        assert_eq!(tcp("tcp://10.0.0.1:2375"), Ok(("10.0.0.1".into(), 2375)));
        assert_eq!(tcp("tcp://example.org"), Ok(("example.org".into(), 2376)));
        assert_eq!(tcp("tcp://:9/"), Ok(("127.0.0.1".into(), 9)));
        assert_eq!(tcp("tcp://[::1]:7"), Ok(("::1".into(), 7)));
        assert_eq!(tcp("tcp://[::1]"), Ok(("::1".into(), 2376)));
        for (bad, why) in [
            ("tcp://h:0", "invalid port \"0\""),
            ("tcp://h:x", "invalid port \"x\""),
            ("tcp://::1:5", "put IPv6 addresses in brackets"),
            ("tcp://[::1]5", "expected :PORT after the IPv6 address"),
        ] {
            let e = tcp(bad).unwrap_err();
            assert!(e.contains(why), "{bad}: {e}");
        }
        assert_eq!(
            Host::Tcp {
                host: "::1".into(),
                port: 7,
                tls: None
            }
            .to_string(),
            "tcp://[::1]:7"
        );
        // Without TLS a tcp:// host is refused before any connection, saying what to add.
        let e = Host::resolve_with_tls(
            Some("tcp://127.0.0.1:1"),
            &TlsFlags::default(),
            env(&[("HOME", "/h")]),
        )
        .unwrap_err();
        assert!(matches!(e, ClientError::InvalidHost { .. }));
        assert!(e.to_string().contains(TCP_NEEDS_TLS), "{e}");
        // TLS settings are not even looked at for unix sockets.
        let broken = TlsFlags {
            tlsverify: Some(true),
            tlscert: Some("/only/a/cert.pem".into()),
            ..Default::default()
        };
        assert_eq!(
            Host::resolve_with_tls(Some("unix:///x.sock"), &broken, env(&[])).unwrap(),
            Host::Unix("/x.sock".into())
        );
        let e = Host::resolve_with_tls(Some("tcp://h"), &broken, env(&[])).unwrap_err();
        assert!(e.to_string().contains("has no key"), "{e}");
    }

    #[test]
    fn unreadable_files_are_named() {
        let opts = TlsOptions {
            verify: true,
            ca: Some("/nonexistent/berth-test/ca.pem".into()),
            cert: None,
        };
        let e = client_config(&opts).unwrap_err();
        assert!(
            e.starts_with("cannot read CA certificate /nonexistent/berth-test/ca.pem:"),
            "{e}"
        );
        let dir = tempfile::Builder::new()
            .prefix("berth-test-tls")
            .tempdir()
            .unwrap();
        let junk = dir.path().join("junk.pem");
        std::fs::write(&junk, "not a certificate\n").unwrap();
        let opts = TlsOptions {
            verify: true,
            ca: Some(junk.clone()),
            cert: None,
        };
        let e = client_config(&opts).unwrap_err();
        assert!(e.contains("no CERTIFICATE block found"), "{e}");
    }
}
