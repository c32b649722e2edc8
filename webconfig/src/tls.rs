//! TLS for a listener: the rustls server configuration built from `tls_server_config`
//! (ring provider; TLS 1.2 and 1.3; optional client certificates verified against a CA),
//! and [`Tls::accept`], which secures one accepted connection within a time limit and
//! answers plain HTTP sent to the TLS port with a readable 400 instead of a broken handshake.

use crate::Problem;
use rustls::RootCertStore;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

/// Where a PEM comes from: inline in the YAML or a file.
#[derive(Debug)]
pub(crate) enum Source {
    Inline { field: String, pem: String },
    File { field: String, path: PathBuf },
}

impl Source {
    fn field(&self) -> &str {
        match self {
            Source::Inline { field, .. } | Source::File { field, .. } => field,
        }
    }

    fn read(&self, problems: &mut Vec<Problem>) -> Option<Vec<u8>> {
        match self {
            Source::Inline { pem, .. } => Some(pem.as_bytes().to_vec()),
            Source::File { field, path } => std::fs::read(path)
                .map_err(|source| {
                    problems.push(Problem::File {
                        field: field.clone(),
                        path: path.clone(),
                        source,
                    });
                })
                .ok(),
        }
    }

    fn describe(&self) -> String {
        match self {
            Source::Inline { .. } => "the inline PEM".into(),
            Source::File { path, .. } => path.display().to_string(),
        }
    }

    fn invalid(&self, problems: &mut Vec<Problem>, what: impl std::fmt::Display) {
        problems.push(Problem::Invalid {
            field: self.field().to_string(),
            message: format!("{}: {what}", self.describe()),
        });
    }

    fn certs(&self, problems: &mut Vec<Problem>) -> Option<Vec<CertificateDer<'static>>> {
        let pem = self.read(problems)?;
        match CertificateDer::pem_slice_iter(&pem).collect::<Result<Vec<_>, _>>() {
            Ok(certs) if !certs.is_empty() => Some(certs),
            Ok(_) => {
                self.invalid(problems, "no PEM CERTIFICATE block");
                None
            }
            Err(e) => {
                self.invalid(problems, format!("bad PEM: {e}"));
                None
            }
        }
    }

    fn key(&self, problems: &mut Vec<Problem>) -> Option<PrivateKeyDer<'static>> {
        let pem = self.read(problems)?;
        PrivateKeyDer::from_pem_slice(&pem)
            .map_err(|e| {
                self.invalid(
                    problems,
                    format!("no usable private key (PKCS#8, PKCS#1 or SEC1 PEM): {e}"),
                )
            })
            .ok()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ClientAuth {
    None,
    VerifyIfGiven,
    Require,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Version {
    Tls12,
    Tls13,
}

/// `tls_server_config` as read; `None` where the field had a problem (already reported).
#[derive(Debug)]
pub(crate) struct TlsSettings {
    pub cert: Option<Source>,
    pub key: Option<Source>,
    pub client_ca: Option<Source>,
    pub client_auth: Option<ClientAuth>,
    pub min: Option<Version>,
    pub max: Option<Version>,
    /// Go names of TLS 1.2 suites (TLS 1.3 suites are not configurable, as in Go).
    pub cipher_suites: Vec<String>,
    /// Go names of key-exchange groups, in preference order.
    pub curves: Vec<String>,
    pub prefer_server: Option<bool>,
}

/// Go's names of its TLS 1.3 suites: accepted in `cipher_suites` and, as in Go, no effect.
const GO_TLS13: &[&str] = &[
    "TLS_AES_128_GCM_SHA256",
    "TLS_AES_256_GCM_SHA384",
    "TLS_CHACHA20_POLY1305_SHA256",
];

/// The provider with `cipher_suites` and `curve_preferences` applied.
fn provider(s: &TlsSettings, problems: &mut Vec<Problem>) -> CryptoProvider {
    let mut p = rustls::crypto::ring::default_provider();
    let tls12_name = |suite: &rustls::SupportedCipherSuite| match suite {
        rustls::SupportedCipherSuite::Tls12(_) => suite.suite().as_str(),
        rustls::SupportedCipherSuite::Tls13(_) => None,
    };
    if !s.cipher_suites.is_empty() {
        let offered: Vec<&str> = p.cipher_suites.iter().filter_map(tls12_name).collect();
        for (i, name) in s.cipher_suites.iter().enumerate() {
            if !offered.contains(&name.as_str()) && !GO_TLS13.contains(&name.as_str()) {
                problems.push(Problem::Invalid {
                    field: format!("tls_server_config.cipher_suites[{i}]"),
                    message: format!(
                        "{name:?} is not offered (TLS 1.2 suites here: {})",
                        offered.join(", ")
                    ),
                });
            }
        }
        // In the order given (the server's preference with prefer_server_cipher_suites);
        // TLS 1.3 suites are kept first, as Go does.
        let all = std::mem::take(&mut p.cipher_suites);
        p.cipher_suites = all
            .iter()
            .filter(|c| tls12_name(c).is_none())
            .copied()
            .collect();
        for name in &s.cipher_suites {
            if let Some(c) = all.iter().find(|c| tls12_name(c) == Some(name.as_str())) {
                p.cipher_suites.push(*c);
            }
        }
    }
    if !s.curves.is_empty() {
        let all = std::mem::take(&mut p.kx_groups);
        for (i, name) in s.curves.iter().enumerate() {
            let group = match name.as_str() {
                "X25519" => Some(rustls::NamedGroup::X25519),
                "CurveP256" => Some(rustls::NamedGroup::secp256r1),
                "CurveP384" => Some(rustls::NamedGroup::secp384r1),
                _ => None,
            };
            match group.and_then(|g| all.iter().find(|k| k.name() == g)) {
                Some(k) => p.kx_groups.push(*k),
                None => problems.push(Problem::Invalid {
                    field: format!("tls_server_config.curve_preferences[{i}]"),
                    message: format!("{name:?} is not offered (X25519, CurveP256, CurveP384)"),
                }),
            }
        }
    }
    p
}

/// A listener's TLS: the rustls configuration and an acceptor for it.
#[derive(Clone)]
pub struct Tls {
    acceptor: TlsAcceptor,
    versions: Vec<&'static str>,
    client_auth: ClientAuth,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tls")
            .field("versions", &self.versions())
            .finish_non_exhaustive()
    }
}

/// Why [`Tls::accept`] gave up on a connection.
#[derive(Debug, thiserror::Error)]
pub enum AcceptError {
    #[error("TLS handshake not finished within {0:?}")]
    Timeout(Duration),
    #[error("plain HTTP on the TLS port (answered 400)")]
    PlainHttp,
    #[error("closed before a TLS handshake")]
    Closed,
    #[error("TLS handshake failed: {0}")]
    Handshake(std::io::Error),
}

impl Tls {
    /// Loads the PEMs and checks the settings, adding problems to `problems`; builds the
    /// configuration only when `problems` is then empty.
    pub(crate) fn build(s: TlsSettings, problems: &mut Vec<Problem>) -> Option<Self> {
        let certs = s.cert.as_ref().and_then(|c| c.certs(problems));
        let key = s.key.as_ref().and_then(|k| k.key(problems));
        let roots = s.client_ca.as_ref().and_then(|ca| {
            let certs = ca.certs(problems)?;
            let mut roots = RootCertStore::empty();
            for (i, c) in certs.into_iter().enumerate() {
                if let Err(e) = roots.add(c) {
                    ca.invalid(
                        problems,
                        format!("certificate {} unusable as a CA: {e}", i + 1),
                    );
                }
            }
            Some(roots)
        });
        let provider = Arc::new(provider(&s, problems));
        if !problems.is_empty() {
            return None;
        }
        let (certs, key, client_auth, min, max, prefer_server) = (
            certs?,
            key?,
            s.client_auth?,
            s.min?,
            s.max?,
            s.prefer_server?,
        );
        let (versions, names): (Vec<&'static rustls::SupportedProtocolVersion>, Vec<_>) = [
            (Version::Tls12, &rustls::version::TLS12, "TLS1.2"),
            (Version::Tls13, &rustls::version::TLS13, "TLS1.3"),
        ]
        .into_iter()
        .filter(|(v, _, _)| (min..=max).contains(v))
        .map(|(_, v, name)| (v, name))
        .unzip();
        let invalid = |problems: &mut Vec<Problem>, field: &str, message: String| {
            problems.push(Problem::Invalid {
                field: format!("tls_server_config.{field}"),
                message,
            });
        };
        let builder = match rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(&versions)
        {
            Ok(b) => b,
            Err(e) => {
                invalid(
                    problems,
                    "cipher_suites",
                    format!("no suite left for the TLS versions allowed: {e}"),
                );
                return None;
            }
        };
        let builder = match (client_auth, roots) {
            (ClientAuth::None, _) => builder.with_no_client_auth(),
            (_, None) => {
                invalid(
                    problems,
                    "client_ca_file",
                    "needed to verify client certificates".into(),
                );
                return None;
            }
            (auth, Some(roots)) => {
                let mut v = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
                if auth == ClientAuth::VerifyIfGiven {
                    v = v.allow_unauthenticated();
                }
                match v.build() {
                    Ok(v) => builder.with_client_cert_verifier(v),
                    Err(e) => {
                        invalid(problems, "client_ca_file", format!("unusable: {e}"));
                        return None;
                    }
                }
            }
        };
        let mut config = match builder.with_single_cert(certs, key) {
            Ok(c) => c,
            Err(e) => {
                invalid(
                    problems,
                    "cert_file",
                    format!("certificate and key not usable together: {e}"),
                );
                return None;
            }
        };
        config.ignore_client_order = prefer_server;
        // Only HTTP/1.1 is served; saying so lets HTTP/2-capable clients fall back at once.
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Some(Self {
            acceptor: TlsAcceptor::from(Arc::new(config)),
            versions: names,
            client_auth,
        })
    }

    /// The TLS versions offered (`TLS1.2`, `TLS1.3`).
    pub fn versions(&self) -> &[&'static str] {
        &self.versions
    }

    /// The `client_auth_type` in force, by its exporter-toolkit name.
    pub fn client_auth(&self) -> &'static str {
        match self.client_auth {
            ClientAuth::None => "NoClientCert",
            ClientAuth::VerifyIfGiven => "VerifyClientCertIfGiven",
            ClientAuth::Require => "RequireAndVerifyClientCert",
        }
    }

    /// Secures `stream` within `timeout`. A client that speaks plain HTTP (its first byte
    /// is not a TLS handshake record) gets `400` with a hint to use https, then the
    /// connection closes.
    pub async fn accept(
        &self,
        stream: TcpStream,
        timeout: Duration,
    ) -> Result<TlsStream<TcpStream>, AcceptError> {
        tokio::time::timeout(timeout, self.accept_inner(stream))
            .await
            .map_err(|_| AcceptError::Timeout(timeout))?
    }

    async fn accept_inner(
        &self,
        mut stream: TcpStream,
    ) -> Result<TlsStream<TcpStream>, AcceptError> {
        /// The content type of a TLS handshake record: every ClientHello starts with it.
        const HANDSHAKE: u8 = 0x16;
        let mut first = [0u8; 1];
        match stream.peek(&mut first).await {
            Ok(0) | Err(_) => return Err(AcceptError::Closed),
            Ok(_) => {}
        }
        if first[0] != HANDSHAKE {
            if first[0].is_ascii_uppercase() {
                refuse_plain_http(&mut stream).await;
                return Err(AcceptError::PlainHttp);
            }
            return Err(AcceptError::Handshake(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!(
                    "first byte 0x{:02x} is not a TLS handshake record",
                    first[0]
                ),
            )));
        }
        self.acceptor
            .accept(stream)
            .await
            .map_err(AcceptError::Handshake)
    }
}

/// Answers an HTTP request on the TLS port, then reads what is left of it (up to 64 KiB or
/// a second), so that closing does not reset the connection before the client reads.
async fn refuse_plain_http(stream: &mut TcpStream) {
    const BODY: &str = "this port speaks HTTPS (TLS): use an https:// URL\n";
    let response = format!(
        "HTTP/1.1 400 Bad Request\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{BODY}",
        BODY.len()
    );
    if stream.write_all(response.as_bytes()).await.is_err() {
        return;
    }
    let _ = stream.shutdown().await;
    let mut sink = [0u8; 4096];
    let mut left = 64 * 1024usize;
    let drain = async {
        while left > 0 {
            match stream.read(&mut sink).await {
                Ok(0) | Err(_) => break,
                Ok(n) => left = left.saturating_sub(n),
            }
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(1), drain).await;
}
