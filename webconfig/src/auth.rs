//! HTTP basic auth against `basic_auth_users` (user name to bcrypt hash).
//!
//! bcrypt is slow on purpose (cost 10 is tens of milliseconds of CPU), and a scraper sends
//! the same credentials every few seconds, so each user's last successful verification is
//! remembered as a SHA-256 of the user and password and later requests are compared against
//! it in constant time, as the exporter-toolkit caches too. Verifications run off the async
//! threads, at most [`PARALLEL`] at once, so a flood of wrong passwords cannot stall the
//! server's event loop or take every core. Unknown users are checked against a real hash
//! too, so they take as long as known ones.

use crate::Problem;
use base64::Engine as _;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use subtle::ConstantTimeEq;
use tokio::sync::Semaphore;

/// bcrypt verifications that may run at the same time.
pub const PARALLEL: usize = 2;

type Digest = [u8; 32];

/// The users and their hashes, with the cache of verified credentials.
pub struct BasicAuth {
    users: HashMap<String, String>,
    /// Checked for unknown users, so that they cost a bcrypt like known ones.
    decoy: String,
    verified: Mutex<HashMap<String, Digest>>,
    /// [`PARALLEL`] permits; each is held by its blocking task until bcrypt returns, even
    /// when the client has gone and the request future was dropped.
    gate: Arc<Semaphore>,
}

impl std::fmt::Debug for BasicAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut users: Vec<&str> = self.users.keys().map(String::as_str).collect();
        users.sort_unstable();
        f.debug_struct("BasicAuth")
            .field("users", &users)
            .finish_non_exhaustive()
    }
}

fn digest(user: &str, password: &[u8]) -> Digest {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    ctx.update(&(user.len() as u64).to_be_bytes());
    ctx.update(user.as_bytes());
    ctx.update(password);
    let mut out = [0u8; 32];
    out.copy_from_slice(ctx.finish().as_ref());
    out
}

/// `Basic base64(user:password)` → (user, password).
fn credentials(header: &[u8]) -> Option<(String, Vec<u8>)> {
    let header = std::str::from_utf8(header).ok()?.trim();
    let (scheme, encoded) = header.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let colon = decoded.iter().position(|&b| b == b':')?;
    let user = String::from_utf8(decoded[..colon].to_vec()).ok()?;
    Some((user, decoded[colon + 1..].to_vec()))
}

impl BasicAuth {
    /// Checks every hash; reports each bad one to `problems`.
    pub(crate) fn new(users: Vec<(String, String)>, problems: &mut Vec<Problem>) -> Option<Self> {
        let mut ok = true;
        for (user, hash) in &users {
            let message = match hash.parse::<bcrypt::HashParts>() {
                Ok(parts) if (4..=31).contains(&parts.get_cost()) => continue,
                Ok(parts) => format!("bcrypt cost {} is outside 4..=31", parts.get_cost()),
                Err(e) => format!(
                    "not a bcrypt hash ({e}); make one with `htpasswd -nBC 10 \"\" | tr -d ':\\n'`"
                ),
            };
            ok = false;
            problems.push(Problem::Invalid {
                field: format!("basic_auth_users.{user}"),
                message,
            });
        }
        let decoy = users.first()?.1.clone();
        ok.then(|| Self {
            users: users.into_iter().collect(),
            decoy,
            verified: Mutex::new(HashMap::new()),
            gate: Arc::new(Semaphore::new(PARALLEL)),
        })
    }

    /// Number of users.
    pub fn len(&self) -> usize {
        self.users.len()
    }

    /// Whether there are no users (never, once built: an empty list means no auth).
    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }

    /// Whether the `Authorization` header value grants access.
    pub async fn check(&self, authorization: Option<&[u8]>) -> bool {
        let Some((user, password)) = authorization.and_then(credentials) else {
            return false;
        };
        let seen = digest(&user, &password);
        let hash = self.users.get(&user);
        if hash.is_some() {
            let cached = self
                .verified
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .get(&user)
                .copied();
            if let Some(cached) = cached
                && bool::from(cached.ct_eq(&seen))
            {
                return true;
            }
        }
        let Ok(permit) = self.gate.clone().acquire_owned().await else {
            return false;
        };
        let against = hash.unwrap_or(&self.decoy).clone();
        let matched = tokio::task::spawn_blocking(move || {
            let matched = bcrypt::verify(&password, &against).unwrap_or(false);
            drop(permit);
            matched
        })
        .await
        .unwrap_or(false);
        let granted = matched && hash.is_some();
        if granted {
            self.verified
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .insert(user, seen);
        }
        granted
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use std::time::{Duration, Instant};

    fn basic(user: &str, password: &str) -> Vec<u8> {
        let enc = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        format!("Basic {enc}").into_bytes()
    }

    fn auth(users: &[(&str, &str)]) -> BasicAuth {
        let mut problems = Vec::new();
        let users = users
            .iter()
            .map(|(u, p)| (u.to_string(), bcrypt::hash(p, 10).unwrap()))
            .collect();
        let a = BasicAuth::new(users, &mut problems).unwrap();
        assert!(problems.is_empty());
        a
    }

    fn rt() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    #[test]
    fn header_parsing() {
        assert_eq!(
            credentials(&basic("alice", "p:w d")),
            Some(("alice".into(), b"p:w d".to_vec()))
        );
        assert_eq!(
            credentials(b"basic YWxpY2U6eA=="),
            Some(("alice".into(), b"x".to_vec()))
        );
        for bad in [
            &b"Bearer YWxpY2U6eA=="[..],
            b"Basic",
            b"Basic !!!",
            b"Basic YWxpY2U=",
        ] {
            assert_eq!(credentials(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn right_wrong_unknown_and_missing() {
        let a = auth(&[("alice", "secret"), ("bob", "other")]);
        let rt = rt();
        assert!(rt.block_on(a.check(Some(&basic("alice", "secret")))));
        assert!(rt.block_on(a.check(Some(&basic("bob", "other")))));
        assert!(!rt.block_on(a.check(Some(&basic("alice", "other")))));
        assert!(!rt.block_on(a.check(Some(&basic("alice", "secret ")))));
        assert!(!rt.block_on(a.check(Some(&basic("carol", "secret")))));
        // An unknown user with a known user's password: still refused.
        assert!(!rt.block_on(a.check(Some(&basic("carol", "other")))));
        assert!(!rt.block_on(a.check(None)));
        // A cached success does not let a wrong password through.
        assert!(rt.block_on(a.check(Some(&basic("alice", "secret")))));
        assert!(!rt.block_on(a.check(Some(&basic("alice", "secreT")))));
    }

    #[test]
    fn successful_verifications_are_cached() {
        let a = auth(&[("alice", "secret")]);
        let rt = rt();
        let header = basic("alice", "secret");
        let t = Instant::now();
        assert!(rt.block_on(a.check(Some(&header))));
        let first = t.elapsed();
        let t = Instant::now();
        for _ in 0..100 {
            assert!(rt.block_on(a.check(Some(&header))));
        }
        let hundred = t.elapsed();
        // Cost 10 is tens of milliseconds per bcrypt; 100 cached checks take far less
        // than one.
        assert!(
            hundred < first && hundred < Duration::from_millis(20),
            "first {first:?}, 100 cached {hundred:?}"
        );
    }

    /// A client that goes away mid-check does not free its bcrypt slot before bcrypt is
    /// done, so abandoned requests cannot pile up more than [`PARALLEL`] running hashes.
    #[test]
    fn slots_outlive_abandoned_requests() {
        let a = std::sync::Arc::new(auth(&[("alice", "secret")]));
        rt().block_on(async {
            let tasks: Vec<_> = (0..6)
                .map(|_| {
                    let a = a.clone();
                    tokio::spawn(async move { a.check(Some(&basic("alice", "wrong"))).await })
                })
                .collect();
            tokio::time::sleep(Duration::from_millis(20)).await;
            assert_eq!(a.gate.available_permits(), 0);
            for t in &tasks {
                t.abort();
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
            assert_eq!(
                a.gate.available_permits(),
                0,
                "slots freed while bcrypt runs"
            );
            let deadline = Instant::now() + Duration::from_secs(20);
            while a.gate.available_permits() < PARALLEL {
                assert!(Instant::now() < deadline, "slots never came back");
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        });
    }

    #[test]
    fn bad_hashes_are_named() {
        let mut problems = Vec::new();
        let users = vec![
            ("alice".to_string(), "secret".to_string()),
            ("bob".to_string(), bcrypt::hash("x", 4).unwrap()),
            (
                "carol".to_string(),
                "$2y$99$mDwo.lAisC94iLAyP81MCesa29IzH37oigHC/42V2pdJlUprsJPze".to_string(),
            ),
        ];
        assert!(BasicAuth::new(users, &mut problems).is_none());
        let text: Vec<String> = problems.iter().map(ToString::to_string).collect();
        assert_eq!(text.len(), 2, "{text:#?}");
        assert!(text[0].starts_with("basic_auth_users.alice: not a bcrypt hash"));
        assert!(text[1].starts_with("basic_auth_users.carol: bcrypt cost 99"));
    }
}
