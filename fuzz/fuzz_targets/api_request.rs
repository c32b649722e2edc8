//! The sidecar's admission-API request decoder (`sidecar/src/routes/decode.rs`, with the wire
//! types of `sidecar/src/api.rs`): method, path and body as a client on the unix socket sends
//! them. Input: byte 0 picks the method, the bytes up to the first `\n` are the path, the
//! rest is the body.
//!
//! Properties beyond "no panic": every decoded body re-encodes to JSON that decodes to the
//! same request (profiles: the same to within float printing, and still valid); an error has
//! the status of its kind, names the path where it is about the path, and its `ApiError`
//! body round-trips; routes that take no body decode the same whatever the body is.
#![no_main]
#![forbid(unsafe_code)]

#[allow(dead_code)]
#[path = "../../sidecar/src/api.rs"]
mod api;
#[allow(dead_code)]
#[path = "../../sidecar/src/routes/decode.rs"]
mod decode;

use api::ApiError;
use decode::{Call, DecodeError, decode};
use headroom_admission::Profile;
use hyper::{Method, StatusCode};
use libfuzzer_sys::fuzz_target;

fn method(b: u8) -> Method {
    match b % 8 {
        0 => Method::GET,
        1 => Method::POST,
        2 => Method::PUT,
        3 => Method::DELETE,
        4 => Method::HEAD,
        5 => Method::PATCH,
        6 => Method::OPTIONS,
        _ => Method::from_bytes(b"PURGE").unwrap(),
    }
}

fn close(a: f64, b: f64) -> bool {
    a == b || (a - b).abs() <= 1e-12 * a.abs().max(b.abs())
}

fn same_profile(a: &Profile, b: &Profile) -> bool {
    let (sa, sb) = (a.stretch(), b.stretch());
    a.name() == b.name()
        && a.runs() == b.runs()
        && a.is_lower_bound() == b.is_lower_bound()
        && close(a.duration_s(), b.duration_s())
        && a.points().len() == b.points().len()
        && a.points()
            .iter()
            .zip(b.points())
            .all(|(x, y)| close(x.0, y.0) && x.1 == y.1)
        && close(sa.per_corunner, sb.per_corunner)
        && close(sa.spread, sb.spread)
        && close(sa.jitter, sb.jitter)
}

/// The call `raw` decodes to must come back from its own re-encoding.
fn check_round_trip(m: &Method, path: &str, call: &Call<'_>) {
    let again = |body: Vec<u8>| match decode(m, path, &body) {
        Ok(c) => c,
        Err(e) => panic!("re-encoded {call:?} does not decode: {e:?}"),
    };
    match call {
        Call::Enqueue(req) => {
            let Call::Enqueue(back) = again(serde_json::to_vec(req).unwrap()) else {
                panic!("route changed");
            };
            assert_eq!(&back, req);
        }
        Call::Started { started, .. } => {
            let Call::Started { started: back, .. } = again(serde_json::to_vec(started).unwrap())
            else {
                panic!("route changed");
            };
            assert_eq!(&back, started);
        }
        Call::Finished { finished, .. } => {
            let Call::Finished { finished: back, .. } =
                again(serde_json::to_vec(finished).unwrap())
            else {
                panic!("route changed");
            };
            assert_eq!(&back, finished);
        }
        Call::PutProfile { profile, .. } => {
            let Call::PutProfile { profile: back, .. } =
                again(serde_json::to_vec(profile).unwrap())
            else {
                panic!("route changed");
            };
            assert!(
                same_profile(&back, profile),
                "{profile:?} came back as {back:?}"
            );
        }
        Call::Status { .. }
        | Call::Cancel { .. }
        | Call::Profiles
        | Call::Profile { .. }
        | Call::DaemonStatus => {
            // No body: any other body decodes the same.
            let other = decode(m, path, b"\xff garbage");
            assert_eq!(
                format!("{:?}", other.as_ref().map(|_| ())),
                "Ok(())",
                "{call:?} depends on its body"
            );
            assert_eq!(format!("{:?}", other.unwrap()), format!("{call:?}"));
        }
    }
}

fn check_error(m: &Method, path: &str, e: &DecodeError) {
    let want = match e {
        DecodeError::BadBody(msg) => {
            assert!(msg.starts_with("invalid JSON body: "), "{msg}");
            StatusCode::BAD_REQUEST
        }
        DecodeError::MethodNotAllowed(msg) => {
            assert!(msg.contains(path) && msg.contains(m.as_str()), "{msg}");
            StatusCode::METHOD_NOT_ALLOWED
        }
        DecodeError::NoRoute(msg) => {
            assert!(msg.contains(path), "{msg}");
            StatusCode::NOT_FOUND
        }
    };
    assert_eq!(e.status(), want);
    // The error body the daemon sends (`Reply::error`) is JSON that reads back the same.
    let body = serde_json::to_vec(&ApiError {
        error: e.message().to_string(),
    })
    .unwrap();
    let back: ApiError = serde_json::from_slice(&body).unwrap();
    assert_eq!(back.error, e.message());
    // Path and method errors do not depend on the body.
    if !matches!(e, DecodeError::BadBody(_)) {
        assert_eq!(decode(m, path, b"{}").err().as_ref(), Some(e));
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&first, rest)) = data.split_first() else {
        return;
    };
    let m = method(first);
    let (path, body) = match rest.iter().position(|b| *b == b'\n') {
        Some(i) => (&rest[..i], &rest[i + 1..]),
        None => (rest, &[][..]),
    };
    let Ok(path) = std::str::from_utf8(path) else {
        return;
    };
    match decode(&m, path, body) {
        Ok(call) => {
            if let Call::Enqueue(_)
            | Call::Started { .. }
            | Call::Finished { .. }
            | Call::PutProfile { .. } = call
            {
                // Only JSON decodes.
                assert!(serde_json::from_slice::<serde_json::Value>(body).is_ok());
            }
            check_round_trip(&m, path, &call);
        }
        Err(e) => check_error(&m, path, &e),
    }
});
