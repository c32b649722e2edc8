//! Decoding an admission-API request (method, path, body) into a typed [`Call`] before any
//! daemon state is touched: route matching and JSON body parsing. Pure and self-contained
//! (it needs only `crate::api`), so the fuzz target `fuzz/fuzz_targets/api_request.rs`
//! includes this file and drives it directly.

use crate::api::{AdmissionRequest, Finished, Started};
use headroom_admission::Profile;
use hyper::{Method, StatusCode};

/// One admission-API call, decoded. Ids and names are still the raw path segments: the
/// daemon resolves them.
#[derive(Debug)]
pub enum Call<'a> {
    /// `POST /v1/admissions`
    Enqueue(AdmissionRequest),
    /// `GET /v1/admissions/{id}`
    Status { id: &'a str },
    /// `DELETE /v1/admissions/{id}`
    Cancel { id: &'a str },
    /// `POST /v1/admissions/{id}/started`
    Started { id: &'a str, started: Started },
    /// `POST /v1/admissions/{id}/finished`
    Finished { id: &'a str, finished: Finished },
    /// `GET /v1/profiles`
    Profiles,
    /// `GET /v1/profiles/{name}`
    Profile { name: &'a str },
    /// `PUT /v1/profiles/{name}`
    PutProfile { name: &'a str, profile: Profile },
    /// `GET /v1/status`
    DaemonStatus,
}

/// Why a request names no call; each maps to one HTTP status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodeError {
    /// 400: the body is not the JSON the route takes.
    BadBody(String),
    /// 405: a known path with another method.
    MethodNotAllowed(String),
    /// 404: no such path.
    NoRoute(String),
}

impl DecodeError {
    pub fn status(&self) -> StatusCode {
        match self {
            Self::BadBody(_) => StatusCode::BAD_REQUEST,
            Self::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            Self::NoRoute(_) => StatusCode::NOT_FOUND,
        }
    }

    /// The message for the error body.
    pub fn message(&self) -> &str {
        match self {
            Self::BadBody(m) | Self::MethodNotAllowed(m) | Self::NoRoute(m) => m,
        }
    }
}

fn body<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, DecodeError> {
    serde_json::from_slice(body)
        .map_err(|e| DecodeError::BadBody(format!("invalid JSON body: {e}")))
}

/// Matches `method` and `path` to a route and parses the body the route takes (other
/// routes ignore the body).
pub fn decode<'a>(method: &Method, path: &'a str, raw: &[u8]) -> Result<Call<'a>, DecodeError> {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    Ok(match (method, segments.as_slice()) {
        (&Method::POST, ["v1", "admissions"]) => Call::Enqueue(body(raw)?),
        (&Method::GET, ["v1", "admissions", id]) => Call::Status { id },
        (&Method::DELETE, ["v1", "admissions", id]) => Call::Cancel { id },
        (&Method::POST, ["v1", "admissions", id, "started"]) => Call::Started {
            id,
            started: body(raw)?,
        },
        (&Method::POST, ["v1", "admissions", id, "finished"]) => Call::Finished {
            id,
            finished: body(raw)?,
        },
        (&Method::GET, ["v1", "profiles"]) => Call::Profiles,
        (&Method::GET, ["v1", "profiles", name]) => Call::Profile { name },
        (&Method::PUT, ["v1", "profiles", name]) => Call::PutProfile {
            name,
            profile: body(raw)?,
        },
        (&Method::GET, ["v1", "status"]) => Call::DaemonStatus,
        (
            _,
            ["v1", "admissions"]
            | ["v1", "admissions", _]
            | ["v1", "admissions", _, _]
            | ["v1", "profiles"]
            | ["v1", "profiles", _]
            | ["v1", "status"],
        ) => {
            return Err(DecodeError::MethodNotAllowed(format!(
                "{method} is not allowed on {path}"
            )));
        }
        _ => {
            return Err(DecodeError::NoRoute(format!(
                "no route {path}; see docs/api.md"
            )));
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_and_bodies() {
        let body = br#"{"workload":"ti2v-5b","peak_bytes":1024,"command":["python3","x.py"]}"#;
        let Ok(Call::Enqueue(req)) = decode(&Method::POST, "/v1/admissions", body) else {
            panic!("enqueue not decoded");
        };
        assert_eq!(req.workload, "ti2v-5b");
        assert!(matches!(
            decode(&Method::GET, "/v1/admissions/7", b"ignored"),
            Ok(Call::Status { id: "7" })
        ));
        assert!(matches!(
            decode(&Method::POST, "/v1/admissions/7/started", br#"{"pid":42}"#),
            Ok(Call::Started {
                id: "7",
                started: Started {
                    pid: 42,
                    start_time: None
                }
            })
        ));
        let e = decode(&Method::POST, "/v1/admissions", b"{").unwrap_err();
        assert_eq!(e.status(), StatusCode::BAD_REQUEST);
        assert!(e.message().starts_with("invalid JSON body: "), "{e:?}");
        let e = decode(&Method::DELETE, "/v1/status", b"").unwrap_err();
        assert_eq!(
            e,
            DecodeError::MethodNotAllowed("DELETE is not allowed on /v1/status".into())
        );
        let e = decode(&Method::GET, "/v1/admissions/7/started/x", b"").unwrap_err();
        assert_eq!(e.status(), StatusCode::NOT_FOUND);
    }
}
