//! Web-config files in, [`WebConfig`] or every problem out: valid files (file and inline
//! PEMs, client certificates, versions, suites, curves, headers), and bad ones whose
//! problems must all be named at once.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "support/pki.rs"]
mod pki;

use headroom_webconfig::{Problem, WebConfig};
use pki::Pki;
use std::path::Path;

fn hash(password: &str) -> String {
    bcrypt::hash(password, 4).unwrap()
}

fn problems(text: &str, dir: &Path) -> Vec<String> {
    match WebConfig::parse(text, dir) {
        Ok(c) => panic!("accepted: {c:?}"),
        Err(p) => p.iter().map(ToString::to_string).collect(),
    }
}

#[test]
fn empty_and_auth_only_files_are_plain_http() {
    let dir = Path::new("/nonexistent");
    for text in [
        "",
        "# nothing\n",
        "tls_server_config:\n",
        "tls_server_config: {}\nbasic_auth_users: {}\n",
    ] {
        let c = WebConfig::parse(text, dir).unwrap();
        assert!(
            c.tls.is_none() && c.auth.is_none() && c.headers.is_empty(),
            "{text:?}"
        );
        assert_eq!(c.scheme(), "http");
    }
    let c = WebConfig::parse(
        &format!("basic_auth_users:\n  alice: '{}'\n", hash("x")),
        dir,
    )
    .unwrap();
    assert!(c.tls.is_none());
    assert_eq!(c.auth.unwrap().len(), 1);
}

#[test]
fn full_file_with_relative_paths() {
    let pki = Pki::new("parse-full");
    let text = format!(
        "tls_server_config:
  cert_file: server.crt
  key_file: server.key
  client_auth_type: RequireAndVerifyClientCert
  client_ca_file: ca.crt
  min_version: TLS13
  max_version: TLS13
  cipher_suites: [TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, TLS_AES_128_GCM_SHA256]
  prefer_server_cipher_suites: false
  curve_preferences: [X25519, CurveP256]
http_server_config:
  http2: false
  headers:
    X-Frame-Options: deny
    Strict-Transport-Security: max-age=31536000
    X-XSS-Protection: ''
basic_auth_users:
  alice: '{}'
  bob: '{}'
",
        hash("a"),
        hash("b").replacen("$2b$", "$2y$", 1)
    );
    std::fs::write(pki.path("web.yml"), &text).unwrap();
    let c = WebConfig::load(&pki.path("web.yml")).unwrap();
    let tls = c.tls.as_ref().unwrap();
    assert_eq!(tls.versions(), ["TLS1.3"]);
    assert_eq!(tls.client_auth(), "RequireAndVerifyClientCert");
    assert_eq!(c.scheme(), "https");
    assert_eq!(c.auth.as_ref().unwrap().len(), 2);
    assert_eq!(
        c.headers,
        [
            ("strict-transport-security", "max-age=31536000".to_string()),
            ("x-frame-options", "deny".to_string()),
        ]
    );
}

#[test]
fn inline_pems() {
    let pki = Pki::new("parse-inline");
    let indent = |f: &str| {
        std::fs::read_to_string(pki.path(f))
            .unwrap()
            .lines()
            .map(|l| format!("    {l}\n"))
            .collect::<String>()
    };
    let text = format!(
        "tls_server_config:\n  cert: |\n{}  key: |\n{}  client_ca: |\n{}  client_auth_type: VerifyClientCertIfGiven\n",
        indent("server.crt"),
        indent("server.key"),
        indent("ca.crt")
    );
    let c = WebConfig::parse(&text, Path::new("/nonexistent")).unwrap();
    let tls = c.tls.unwrap();
    assert_eq!(tls.versions(), ["TLS1.2", "TLS1.3"]);
    assert_eq!(tls.client_auth(), "VerifyClientCertIfGiven");
}

#[test]
fn every_problem_is_named_at_once() {
    let pki = Pki::new("parse-bad");
    let text = "\
tls_server_config:
  cert_file: missing.crt
  key_file: /nonexistent/missing.key
  client_allowed_sans: [scraper]
  min_version: TLS10
  max_version: TLS14
  cipher_suites: [TLS_RSA_WITH_RC4_128_SHA]
  curve_preferences: [CurveP521]
  client_auth_type: RequireAnyClientCert
  sni: example
http_server_config:
  http2: maybe
  headers:
    X-Frame-Options: allow-all
    X-Powered-By: rust
basic_auth_users:
  alice: hunter2
  bob: 12
rate_limit:
  interval: 1s
  burst: 20
listen: 0.0.0.0:9401
";
    let p = problems(text, &pki.dir);
    let expect = [
        "listen: unknown field",
        "tls_server_config.sni: unknown field",
        "rate_limit: not supported",
        "tls_server_config.client_allowed_sans: not supported",
        "tls_server_config.min_version: not supported by Headroom: TLS 1.0 and 1.1",
        "tls_server_config.max_version: unknown TLS version \"TLS14\"",
        "tls_server_config.client_auth_type: not supported by Headroom: RequestClientCert and RequireAnyClientCert",
        "http_server_config.http2: expected true or false",
        "http_server_config.headers.X-Frame-Options: \"allow-all\" is not allowed",
        "http_server_config.headers.X-Powered-By: unknown field",
        "basic_auth_users.alice: not a bcrypt hash",
        "basic_auth_users.bob: expected a bcrypt hash",
        &format!(
            "tls_server_config.cert_file: cannot read {}",
            pki.p("missing.crt")
        ),
        "tls_server_config.key_file: cannot read /nonexistent/missing.key",
        "tls_server_config.cipher_suites[0]: \"TLS_RSA_WITH_RC4_128_SHA\" is not offered",
        "tls_server_config.curve_preferences[0]: \"CurveP521\" is not offered",
    ];
    for e in &expect {
        assert!(
            p.iter().any(|p| p.starts_with(e)),
            "{e:?} missing from {p:#?}"
        );
    }
    assert_eq!(p.len(), expect.len(), "{p:#?}");
}

#[test]
fn tls_consistency_problems() {
    let pki = Pki::new("parse-tls");
    let dir = &pki.dir;
    let cases: &[(&str, &str)] = &[
        (
            "tls_server_config:\n  cert_file: server.crt\n",
            "tls_server_config.key_file: missing",
        ),
        (
            "tls_server_config:\n  key_file: server.key\n  min_version: TLS12\n",
            "tls_server_config.cert_file: missing",
        ),
        (
            "tls_server_config:\n  cert_file: server.crt\n  key_file: client.key\n",
            "tls_server_config.cert_file: certificate and key not usable together",
        ),
        (
            "tls_server_config:\n  cert_file: server.crt\n  key_file: server.crt\n",
            "tls_server_config.key_file: ",
        ),
        (
            "tls_server_config:\n  cert_file: server.key\n  key_file: server.key\n",
            "tls_server_config.cert_file: ",
        ),
        (
            "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n  client_ca_file: ca.crt\n",
            "tls_server_config.client_ca_file: set, but client_auth_type is NoClientCert",
        ),
        (
            "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n  client_auth_type: RequireAndVerifyClientCert\n",
            "tls_server_config.client_auth_type: verifying client certificates needs client_ca_file",
        ),
        (
            "tls_server_config:\n  cert_file: server.crt\n  cert: x\n  key_file: server.key\n",
            "tls_server_config.cert_file: give either cert or cert_file",
        ),
        (
            "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n  min_version: TLS13\n  max_version: TLS12\n",
            "tls_server_config.min_version: higher than max_version",
        ),
        (
            "tls_server_config: [a]\n",
            "tls_server_config: expected a mapping",
        ),
        ("- a\n- b\n", "(file): expected a mapping"),
        ("tls_server_config: {\n", "not valid YAML"),
    ];
    for (text, want) in cases {
        let p = problems(text, dir);
        assert!(
            p.len() == 1 && p[0].starts_with(want),
            "{text}\nwanted one problem starting {want:?}, got {p:#?}"
        );
    }
}

#[test]
fn unreadable_web_config_file() {
    let err = WebConfig::load(Path::new("/nonexistent/web.yml")).unwrap_err();
    assert!(matches!(err[..], [Problem::Read(_)]), "{err:?}");
}

/// The example in docs/security.md is a valid file (with the test certificates in place of
/// its paths), and its hash is of the password it names.
#[test]
fn docs_example_is_valid() {
    let doc =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/security.md"))
            .unwrap();
    let example = doc
        .split("```yaml\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .unwrap();
    let pki = Pki::new("parse-docs");
    let text = example
        .replace("/etc/headroom/tls/tls.crt", &pki.p("server.crt"))
        .replace("/etc/headroom/tls/tls.key", &pki.p("server.key"))
        .replace("/etc/headroom/tls/client-ca.crt", &pki.p("ca.crt"));
    let c = WebConfig::parse(&text, &pki.dir).unwrap();
    assert_eq!(c.tls.unwrap().client_auth(), "RequireAndVerifyClientCert");
    assert_eq!(
        c.headers,
        [("x-content-type-options", "nosniff".to_string())]
    );
    let hash = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("prometheus: "))
        .unwrap()
        .trim_matches('\'');
    assert!(bcrypt::verify("change-me", hash).unwrap());
}
