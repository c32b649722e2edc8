//! gRPC over HTTP/2, the unary-call subset: the 5-byte message prefix (compressed flag, u32
//! big-endian length), and the call's outcome from `grpc-status` / `grpc-message` (in the
//! trailers, or in the headers of a trailers-only reply). Headroom never asks for
//! compression, so a compressed message is an error.

use bytes::{BufMut, Bytes, BytesMut};
use thiserror::Error;

/// The largest message accepted: gRPC's usual client limit, far above any node's pod list.
pub const MAX_MESSAGE: usize = 16 << 20;

/// Content type of gRPC requests and replies.
pub const CONTENT_TYPE: &str = "application/grpc";

/// Why a reply's framing or status is not a successful unary reply.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum FrameError {
    #[error("reply body of {0} bytes is shorter than a gRPC message prefix")]
    Short(usize),
    #[error("reply message is compressed (flag {0}), which was not asked for")]
    Compressed(u8),
    #[error("reply message of {0} bytes exceeds the {MAX_MESSAGE}-byte limit")]
    TooLarge(usize),
    #[error("reply message claims {claimed} bytes but {got} arrived")]
    Truncated { claimed: usize, got: usize },
    #[error("{0} bytes after the one message of a unary reply")]
    Trailing(usize),
    #[error("reply has no grpc-status")]
    NoStatus,
    #[error("grpc-status {0:?} is not a number")]
    BadStatus(String),
    #[error("grpc-status {code} ({name}): {message}")]
    Status {
        code: u32,
        name: &'static str,
        message: String,
    },
}

/// `msg` with its gRPC prefix (uncompressed).
pub fn frame(msg: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(5 + msg.len());
    out.put_u8(0);
    out.put_u32(u32::try_from(msg.len()).unwrap_or(u32::MAX));
    out.put_slice(msg);
    out.freeze()
}

/// The one message of a unary reply body.
pub fn unframe(body: &[u8]) -> Result<&[u8], FrameError> {
    let Some((prefix, rest)) = body.split_first_chunk::<5>() else {
        return Err(FrameError::Short(body.len()));
    };
    if prefix[0] != 0 {
        return Err(FrameError::Compressed(prefix[0]));
    }
    let len = u32::from_be_bytes([prefix[1], prefix[2], prefix[3], prefix[4]]) as usize;
    if len > MAX_MESSAGE {
        return Err(FrameError::TooLarge(len));
    }
    if len > rest.len() {
        return Err(FrameError::Truncated {
            claimed: len,
            got: rest.len(),
        });
    }
    if rest.len() > len {
        return Err(FrameError::Trailing(rest.len() - len));
    }
    Ok(rest)
}

/// The name of a gRPC status code.
pub fn code_name(code: u32) -> &'static str {
    const NAMES: [&str; 17] = [
        "OK",
        "CANCELLED",
        "UNKNOWN",
        "INVALID_ARGUMENT",
        "DEADLINE_EXCEEDED",
        "NOT_FOUND",
        "ALREADY_EXISTS",
        "PERMISSION_DENIED",
        "RESOURCE_EXHAUSTED",
        "FAILED_PRECONDITION",
        "ABORTED",
        "OUT_OF_RANGE",
        "UNIMPLEMENTED",
        "INTERNAL",
        "UNAVAILABLE",
        "DATA_LOSS",
        "UNAUTHENTICATED",
    ];
    usize::try_from(code)
        .ok()
        .and_then(|c| NAMES.get(c))
        .copied()
        .unwrap_or("UNRECOGNISED")
}

/// Decodes `grpc-message`'s percent-encoding (invalid escapes are kept as they are).
pub fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && let Some(v) = b
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The call's outcome from its `grpc-status` and `grpc-message` values.
pub fn status(grpc_status: Option<&str>, grpc_message: Option<&str>) -> Result<(), FrameError> {
    let Some(s) = grpc_status else {
        return Err(FrameError::NoStatus);
    };
    let code: u32 = s
        .trim()
        .parse()
        .map_err(|_| FrameError::BadStatus(s.to_string()))?;
    if code == 0 {
        return Ok(());
    }
    Err(FrameError::Status {
        code,
        name: code_name(code),
        message: grpc_message.map(percent_decode).unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_and_unframe_round_trip() {
        assert_eq!(&frame(&[])[..], &[0, 0, 0, 0, 0]);
        let f = frame(b"abc");
        assert_eq!(&f[..], &[0, 0, 0, 0, 3, b'a', b'b', b'c']);
        assert_eq!(unframe(&f).unwrap(), b"abc");
        assert_eq!(unframe(&[0, 0, 0, 0, 0]).unwrap(), b"");
    }

    #[test]
    fn bad_frames() {
        assert_eq!(unframe(&[0, 0, 0]), Err(FrameError::Short(3)));
        assert_eq!(unframe(&[1, 0, 0, 0, 1, 7]), Err(FrameError::Compressed(1)));
        assert_eq!(
            unframe(&[0, 0, 0, 0, 4, 1, 2]),
            Err(FrameError::Truncated { claimed: 4, got: 2 })
        );
        assert_eq!(
            unframe(&[0, 0, 0, 0, 1, 1, 2]),
            Err(FrameError::Trailing(1))
        );
        assert_eq!(
            unframe(&[0, 0x7f, 0, 0, 0]),
            Err(FrameError::TooLarge(0x7f00_0000))
        );
    }

    #[test]
    fn statuses() {
        assert_eq!(status(Some("0"), None), Ok(()));
        assert_eq!(status(None, None), Err(FrameError::NoStatus));
        assert_eq!(
            status(Some("x"), None),
            Err(FrameError::BadStatus("x".into()))
        );
        let e = status(
            Some("12"),
            Some("unknown service v1.PodResourcesLister%0Aor %zz"),
        )
        .unwrap_err();
        assert_eq!(
            e,
            FrameError::Status {
                code: 12,
                name: "UNIMPLEMENTED",
                message: "unknown service v1.PodResourcesLister\nor %zz".into()
            }
        );
        assert_eq!(code_name(99), "UNRECOGNISED");
    }
}
