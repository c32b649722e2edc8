//! Test certificates, made at test time with the `openssl` command line (scripts/test.sh
//! installs it): a CA, a server certificate for `localhost` and 127.0.0.1, a client
//! certificate from the same CA, and a client certificate from another CA (`rogue`). Shared
//! by the webconfig and exporter tests (`#[path]`).
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::Command;

const X509_CNF: &str = "\
[req]
distinguished_name = dn
prompt = no
[dn]
CN = unused
[ca]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
[server]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost,IP:127.0.0.1
authorityKeyIdentifier = keyid
[client]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = clientAuth
subjectAltName = DNS:scraper
authorityKeyIdentifier = keyid
";

/// A directory of PEM files, removed on drop: `ca.crt`, `server.crt`/`server.key`,
/// `client.crt`/`client.key`, `rogue-ca.crt`, `rogue.crt`/`rogue.key`.
pub struct Pki {
    pub dir: PathBuf,
}

impl Drop for Pki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Runs `openssl` in `dir` with the whitespace-separated `args`.
fn openssl(dir: &Path, args: &str) {
    let out = Command::new("openssl")
        .current_dir(dir)
        .args(args.split_whitespace())
        .output()
        .expect("the `openssl` command is needed (scripts/test.sh installs it)");
    assert!(
        out.status.success(),
        "openssl {args}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

const EC_KEY: &str = "-nodes -newkey ec -pkeyopt ec_paramgen_curve:P-256";

/// A self-signed CA `name`.
fn ca(dir: &Path, name: &str) {
    openssl(
        dir,
        &format!(
            "req -x509 -new {EC_KEY} -keyout {name}.key -out {name}.crt -days 2 \
             -subj /CN={name} -config x509.cnf -extensions ca"
        ),
    );
}

/// A leaf `name` of kind `server` or `client`, signed by the CA `issuer`.
fn leaf(dir: &Path, name: &str, kind: &str, issuer: &str) {
    openssl(
        dir,
        &format!(
            "req -new {EC_KEY} -keyout {name}.key -out {name}.csr -subj /CN={name} \
             -config x509.cnf"
        ),
    );
    openssl(
        dir,
        &format!(
            "x509 -req -in {name}.csr -CA {issuer}.crt -CAkey {issuer}.key -CAcreateserial \
             -days 2 -out {name}.crt -extfile x509.cnf -extensions {kind}"
        ),
    );
}

impl Pki {
    /// Makes every file in a fresh directory named after `tag` and the process.
    pub fn new(tag: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("headroom-pki-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("x509.cnf"), X509_CNF).unwrap();
        ca(&dir, "ca");
        leaf(&dir, "server", "server", "ca");
        leaf(&dir, "client", "client", "ca");
        ca(&dir, "rogue-ca");
        leaf(&dir, "rogue", "client", "rogue-ca");
        Self { dir }
    }

    pub fn path(&self, file: &str) -> PathBuf {
        self.dir.join(file)
    }

    /// `path(file)` as text, for command lines and YAML.
    pub fn p(&self, file: &str) -> String {
        self.path(file).to_str().unwrap().to_string()
    }
}
