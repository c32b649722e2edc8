//! The web-config file's YAML, walked key by key so that every unknown field, unsupported
//! field and bad value is reported at once (serde's derive stops at the first). Builds the
//! [`WebConfig`] from the pieces in [`crate::tls`] and [`crate::auth`].

use crate::tls::{ClientAuth, Source, TlsSettings, Version};
use crate::{BasicAuth, Problem, Tls, WebConfig};
use serde_norway::Value;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

const TOP: &[&str] = &[
    "tls_server_config",
    "http_server_config",
    "basic_auth_users",
    "rate_limit",
];
const TLS: &[&str] = &[
    "cert",
    "key",
    "client_ca",
    "cert_file",
    "key_file",
    "client_auth_type",
    "client_ca_file",
    "client_allowed_sans",
    "min_version",
    "max_version",
    "cipher_suites",
    "prefer_server_cipher_suites",
    "curve_preferences",
];
const HTTP: &[&str] = &["http2", "headers"];
/// `http_server_config.headers` the exporter-toolkit allows, with their wire names.
const HEADERS: &[(&str, &str)] = &[
    ("Content-Security-Policy", "content-security-policy"),
    ("X-Frame-Options", "x-frame-options"),
    ("X-Content-Type-Options", "x-content-type-options"),
    ("X-XSS-Protection", "x-xss-protection"),
    ("Strict-Transport-Security", "strict-transport-security"),
];

/// Collects problems while walking the document.
struct Walk {
    problems: Vec<Problem>,
}

impl Walk {
    fn invalid(&mut self, field: &str, message: impl Into<String>) {
        self.problems.push(Problem::Invalid {
            field: field.to_string(),
            message: message.into(),
        });
    }

    /// The entries of the mapping `v` (null counts as empty), keyed by name; unknown keys,
    /// when `known` is given, are reported.
    fn map<'v>(
        &mut self,
        field: &str,
        v: &'v Value,
        known: Option<&[&str]>,
    ) -> BTreeMap<String, &'v Value> {
        let mut out = BTreeMap::new();
        let m = match v {
            Value::Null => return out,
            Value::Mapping(m) => m,
            _ => {
                self.invalid(field, "expected a mapping of keys to values");
                return out;
            }
        };
        for (k, v) in m {
            let Some(k) = k.as_str() else {
                self.invalid(field, format!("key {k:?} is not a string"));
                continue;
            };
            let path = join(field, k);
            match known {
                Some(known) if !known.contains(&k) => self.problems.push(Problem::Unknown {
                    field: path,
                    known: known.join(", "),
                }),
                _ => {
                    out.insert(k.to_string(), v);
                }
            }
        }
        out
    }

    fn string(&mut self, field: &str, v: &Value) -> Option<String> {
        match v {
            Value::String(s) => Some(s.clone()),
            // YAML's `cert_file:` with nothing after it: the same as leaving the key out.
            Value::Null => None,
            _ => {
                self.invalid(field, "expected a string");
                None
            }
        }
    }

    fn bool(&mut self, field: &str, v: &Value) -> Option<bool> {
        match v {
            Value::Bool(b) => Some(*b),
            _ => {
                self.invalid(field, "expected true or false");
                None
            }
        }
    }

    fn strings(&mut self, field: &str, v: &Value) -> Vec<String> {
        match v {
            Value::Null => Vec::new(),
            Value::Sequence(items) => items
                .iter()
                .enumerate()
                .filter_map(|(i, item)| self.string(&format!("{field}[{i}]"), item))
                .collect(),
            _ => {
                self.invalid(field, "expected a list of strings");
                Vec::new()
            }
        }
    }
}

fn join(parent: &str, key: &str) -> String {
    if parent.is_empty() {
        key.to_string()
    } else {
        format!("{parent}.{key}")
    }
}

pub(crate) fn parse(text: &str, dir: &Path) -> Result<WebConfig, Vec<Problem>> {
    let doc: Value = match serde_norway::from_str(text) {
        Ok(v) => v,
        Err(e) => return Err(vec![Problem::Yaml(e.to_string())]),
    };
    let mut w = Walk {
        problems: Vec::new(),
    };
    if !matches!(doc, Value::Null | Value::Mapping(_)) {
        w.invalid(
            "(file)",
            "expected a mapping with tls_server_config, basic_auth_users or http_server_config",
        );
        return Err(w.problems);
    }
    let top = w.map("", &doc, Some(TOP));
    if top.contains_key("rate_limit") {
        w.problems.push(Problem::Unsupported {
            field: "rate_limit".into(),
            why: "requests are not rate limited; remove it, or put a proxy in front",
        });
    }
    let tls = top
        .get("tls_server_config")
        .and_then(|v| tls_settings(&mut w, v, dir));
    let auth = top
        .get("basic_auth_users")
        .map(|v| users(&mut w, v))
        .filter(|u| !u.is_empty());
    let headers = top
        .get("http_server_config")
        .map(|v| http(&mut w, v))
        .unwrap_or_default();
    // Certificate files are read, and hashes checked, even when other fields are bad, so
    // that every problem is reported at once; TLS is set up only if there are none.
    let tls = tls.and_then(|s| Tls::build(s, &mut w.problems));
    let auth = auth.and_then(|u| BasicAuth::new(u, &mut w.problems).map(Arc::new));
    if w.problems.is_empty() {
        Ok(WebConfig { tls, auth, headers })
    } else {
        Err(w.problems)
    }
}

/// `tls_server_config`; `None` when it sets nothing (plain HTTP, as in the toolkit).
fn tls_settings(w: &mut Walk, v: &Value, dir: &Path) -> Option<TlsSettings> {
    const F: &str = "tls_server_config";
    let m = w.map(F, v, Some(TLS));
    if m.values().all(|v| v.is_null()) {
        return None;
    }
    let s = |w: &mut Walk, key: &str| m.get(key).and_then(|v| w.string(&join(F, key), v));
    // `Err(())` when both forms are given (reported), `Ok(None)` when neither is.
    let source = |w: &mut Walk, inline: &str, file: &str| -> Result<Option<Source>, ()> {
        match (s(w, inline), s(w, file)) {
            (Some(_), Some(_)) => {
                w.invalid(
                    &join(F, file),
                    format!("give either {inline} or {file}, not both"),
                );
                Err(())
            }
            (Some(pem), None) => Ok(Some(Source::Inline {
                field: join(F, inline),
                pem,
            })),
            (None, Some(path)) => Ok(Some(Source::File {
                field: join(F, file),
                path: dir.join(path),
            })),
            (None, None) => Ok(None),
        }
    };
    let cert = source(w, "cert", "cert_file");
    let key = source(w, "key", "key_file");
    let client_ca = source(w, "client_ca", "client_ca_file");
    if matches!(cert, Ok(None)) {
        w.invalid(
            &join(F, "cert_file"),
            "missing: TLS needs cert_file (or cert)",
        );
    }
    if matches!(key, Ok(None)) {
        w.invalid(&join(F, "key_file"), "missing: TLS needs key_file (or key)");
    }
    let (cert, key) = (cert.ok().flatten(), key.ok().flatten());
    let ca_conflict = client_ca.is_err();
    let client_ca = client_ca.ok().flatten();
    let client_auth = match s(w, "client_auth_type").as_deref() {
        None | Some("" | "NoClientCert") => Some(ClientAuth::None),
        Some("RequireAndVerifyClientCert") => Some(ClientAuth::Require),
        Some("VerifyClientCertIfGiven") => Some(ClientAuth::VerifyIfGiven),
        Some("RequestClientCert" | "RequireAnyClientCert") => {
            w.problems.push(Problem::Unsupported {
                field: join(F, "client_auth_type"),
                why: "RequestClientCert and RequireAnyClientCert accept certificates without verifying them; use RequireAndVerifyClientCert (or VerifyClientCertIfGiven)",
            });
            None
        }
        Some(other) => {
            w.invalid(
                &join(F, "client_auth_type"),
                format!("unknown value {other:?} (NoClientCert, VerifyClientCertIfGiven or RequireAndVerifyClientCert)"),
            );
            None
        }
    };
    match (client_auth, &client_ca) {
        (Some(ClientAuth::None), Some(_)) => w.invalid(
            &join(F, "client_ca_file"),
            "set, but client_auth_type is NoClientCert: client certificates would not be checked (set client_auth_type: RequireAndVerifyClientCert)",
        ),
        (Some(ClientAuth::Require | ClientAuth::VerifyIfGiven), None) if !ca_conflict => w.invalid(
            &join(F, "client_auth_type"),
            "verifying client certificates needs client_ca_file (or client_ca)",
        ),
        _ => {}
    }
    if m.contains_key("client_allowed_sans") {
        w.problems.push(Problem::Unsupported {
            field: join(F, "client_allowed_sans"),
            why: "client certificates are checked against client_ca_file only; issue client certificates from a CA of their own",
        });
    }
    let version = |w: &mut Walk, key: &str, default: Version| match s(w, key).as_deref() {
        None | Some("") => Some(default),
        Some("TLS12") => Some(Version::Tls12),
        Some("TLS13") => Some(Version::Tls13),
        Some("TLS10" | "TLS11") => {
            w.problems.push(Problem::Unsupported {
                field: join(F, key),
                why: "TLS 1.0 and 1.1 are not offered (rustls speaks TLS 1.2 and 1.3); use TLS12 or TLS13",
            });
            None
        }
        Some(other) => {
            w.invalid(
                &join(F, key),
                format!("unknown TLS version {other:?} (TLS12 or TLS13)"),
            );
            None
        }
    };
    let min = version(w, "min_version", Version::Tls12);
    let max = version(w, "max_version", Version::Tls13);
    if let (Some(min), Some(max)) = (min, max)
        && min > max
    {
        w.invalid(
            &join(F, "min_version"),
            "higher than max_version: no TLS version left",
        );
    }
    let cipher_suites = m
        .get("cipher_suites")
        .map(|v| w.strings(&join(F, "cipher_suites"), v))
        .unwrap_or_default();
    let curves = m
        .get("curve_preferences")
        .map(|v| w.strings(&join(F, "curve_preferences"), v))
        .unwrap_or_default();
    let prefer_server = match m.get("prefer_server_cipher_suites") {
        Some(v) => w.bool(&join(F, "prefer_server_cipher_suites"), v),
        None => Some(true),
    };
    Some(TlsSettings {
        cert,
        key,
        client_ca,
        client_auth,
        min,
        max,
        cipher_suites,
        curves,
        prefer_server,
    })
}

/// `basic_auth_users`: user name to bcrypt hash.
fn users(w: &mut Walk, v: &Value) -> Vec<(String, String)> {
    const F: &str = "basic_auth_users";
    w.map(F, v, None)
        .into_iter()
        .filter_map(|(user, hash)| match hash {
            Value::String(h) => Some((user, h.clone())),
            _ => {
                w.invalid(&join(F, &user), "expected a bcrypt hash (a string)");
                None
            }
        })
        .collect()
}

/// `http_server_config`: `http2` is accepted (connections are HTTP/1.1 either way: HTTP/2
/// is not negotiated); `headers` become response headers.
fn http(w: &mut Walk, v: &Value) -> Vec<(&'static str, String)> {
    const F: &str = "http_server_config";
    let m = w.map(F, v, Some(HTTP));
    if let Some(v) = m.get("http2") {
        w.bool(&join(F, "http2"), v);
    }
    let mut out = Vec::new();
    let Some(headers) = m.get("headers") else {
        return out;
    };
    let f = join(F, "headers");
    let known: Vec<&str> = HEADERS.iter().map(|(n, _)| *n).collect();
    for (name, value) in w.map(&f, headers, Some(&known)) {
        let field = join(&f, &name);
        let Some(value) = w.string(&field, value) else {
            continue;
        };
        if value.is_empty() {
            continue; // unset, as in the toolkit
        }
        if !value
            .bytes()
            .all(|b| b == b' ' || b == b'\t' || b.is_ascii_graphic())
        {
            w.invalid(&field, "the value must be visible ASCII");
            continue;
        }
        let ok = match name.as_str() {
            "X-Frame-Options" => {
                ["deny", "sameorigin"].contains(&value.to_ascii_lowercase().as_str())
            }
            "X-Content-Type-Options" => value.eq_ignore_ascii_case("nosniff"),
            _ => true,
        };
        if !ok {
            w.invalid(
                &field,
                format!("{value:?} is not allowed (X-Frame-Options: deny or sameorigin; X-Content-Type-Options: nosniff)"),
            );
            continue;
        }
        if let Some((_, wire)) = HEADERS.iter().find(|(n, _)| *n == name) {
            out.push((*wire, value));
        }
    }
    out
}
