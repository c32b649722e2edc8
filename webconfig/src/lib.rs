//! TLS and HTTP basic auth for Headroom's HTTP listeners, set by a web-config file in the
//! format of the Prometheus exporter-toolkit (`--web.config.file` of node_exporter and
//! friends): `tls_server_config`, `basic_auth_users` (bcrypt hashes) and
//! `http_server_config`.
//!
//! [`WebConfig::load`] reads and checks a whole file and returns every problem in it at
//! once (unknown fields, fields Headroom does not implement, unreadable or mismatched
//! certificate files, malformed hashes), so a binary can report them with its other flag
//! errors and exit 2. The result holds a ready [`tls::Tls`] acceptor (rustls with the `ring`
//! provider) and a [`auth::BasicAuth`] checker that caches successful bcrypt verifications.
//!
//! This crate knows nothing of hyper: a server hands it the stream to secure and the bytes of
//! the `Authorization` header, and applies the extra response headers itself.
#![forbid(unsafe_code)]

pub mod auth;
mod file;
pub mod tls;

use std::path::{Path, PathBuf};

pub use auth::BasicAuth;
pub use tls::Tls;

/// One problem in a web-config file. `field` is the dotted path of the YAML key
/// (`tls_server_config.cert_file`).
#[derive(Debug, thiserror::Error)]
pub enum Problem {
    #[error("cannot read the file: {0}")]
    Read(std::io::Error),
    #[error("not valid YAML: {0}")]
    Yaml(String),
    #[error("{field}: unknown field (known: {known})")]
    Unknown { field: String, known: String },
    #[error("{field}: not supported by Headroom: {why}")]
    Unsupported { field: String, why: &'static str },
    #[error("{field}: {message}")]
    Invalid { field: String, message: String },
    #[error("{field}: cannot read {}: {source}", path.display())]
    File {
        field: String,
        path: PathBuf,
        source: std::io::Error,
    },
}

/// A checked web-config: what a listener must do. The default is plain HTTP without auth
/// (also what an empty file means, as in the exporter-toolkit).
#[derive(Debug, Default)]
pub struct WebConfig {
    /// TLS for every connection, when `tls_server_config` has a certificate.
    pub tls: Option<Tls>,
    /// Basic auth, when `basic_auth_users` is not empty.
    pub auth: Option<std::sync::Arc<BasicAuth>>,
    /// Response headers from `http_server_config.headers`: lower-case names, values of
    /// visible ASCII.
    pub headers: Vec<(&'static str, String)>,
}

impl WebConfig {
    /// Reads and checks `path`; relative file names in it are taken from the file's
    /// directory (as the exporter-toolkit does).
    pub fn load(path: &Path) -> Result<Self, Vec<Problem>> {
        let text = std::fs::read_to_string(path).map_err(|e| vec![Problem::Read(e)])?;
        let dir = path.parent().unwrap_or(Path::new("."));
        Self::parse(&text, dir)
    }

    /// Checks the YAML `text`; relative file names in it are taken from `dir`.
    pub fn parse(text: &str, dir: &Path) -> Result<Self, Vec<Problem>> {
        file::parse(text, dir)
    }

    /// `https` when connections are TLS, else `http`.
    pub fn scheme(&self) -> &'static str {
        if self.tls.is_some() { "https" } else { "http" }
    }
}
