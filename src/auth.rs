//! Authentication: the `Authorization` secrets resolved to their owner, with
//! a bounded cache of verified pairs so that a warm environment reads nothing
//! for a known credential. A disabled user, a deleted one or a secret rotated
//! without a grace period is refused at most `AUTH_CACHE_SECONDS` (≤ 60 s)
//! later; a secret a rotation left working for a grace period is trusted
//! until the grace ends and not a moment longer (the cache keeps it only
//! until then); a refusal is never cached.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use crate::domain::credentials::Credentials;
use crate::domain::secret::SecretDigest;
use crate::store::{Principal, Refusal, Store, StoreError};

const MAX_ENTRIES: usize = 1024;

/// The most `AUTH_CACHE_SECONDS` can be: how long a change that removes
/// access may take to reach every running function.
pub const MAX_CACHE_SECONDS: u64 = 60;

pub struct Authenticator {
    ttl: Duration,
    /// Each verified pair with the instant its trust ends.
    verified: Mutex<HashMap<SecretDigest, (Principal, Instant)>>,
}

impl Authenticator {
    pub fn new(ttl: Duration) -> Self {
        Authenticator { ttl, verified: Mutex::new(HashMap::new()) }
    }

    pub async fn authenticate(
        &self,
        store: &Store,
        credentials: &Credentials,
    ) -> Result<Result<Principal, Refusal>, StoreError> {
        if let Some(principal) = self.cached(credentials) {
            return Ok(Ok(principal));
        }
        let found = store
            .verify_principal(&credentials.user.digest(), &credentials.organization.digest(), SystemTime::now())
            .await?;
        Ok(found.map(|(principal, valid_until)| {
            self.remember_until(credentials, principal.clone(), valid_until);
            principal
        }))
    }

    /// The owner of these credentials, if verified less than the bound ago
    /// (and, for a secret in a rotation's grace, before the grace ends).
    pub fn cached(&self, credentials: &Credentials) -> Option<Principal> {
        let verified = self.verified.lock().ok()?;
        let (principal, until) = verified.get(&credentials.pair_digest())?;
        (Instant::now() < *until).then(|| principal.clone())
    }

    /// Records a verified pair (only ever called with what the store confirmed).
    pub fn remember(&self, credentials: &Credentials, principal: Principal) {
        self.remember_until(credentials, principal, None);
    }

    /// Records a verified pair, trusted for the bound or until `valid_until`
    /// (the end of a rotation's grace), whichever comes first.
    pub fn remember_until(&self, credentials: &Credentials, principal: Principal, valid_until: Option<SystemTime>) {
        let mut ttl = self.ttl;
        if let Some(until) = valid_until {
            ttl = ttl.min(until.duration_since(SystemTime::now()).unwrap_or_default());
        }
        if ttl.is_zero() {
            return;
        }
        if let Ok(mut verified) = self.verified.lock() {
            let now = Instant::now();
            if verified.len() >= MAX_ENTRIES {
                verified.retain(|_, (_, until)| *until > now);
                if verified.len() >= MAX_ENTRIES {
                    verified.clear();
                }
            }
            verified.insert(credentials.pair_digest(), (principal, now + ttl));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair() -> (Credentials, Principal) {
        let credentials = Credentials::parse("User u-secret, Organization o-secret").unwrap();
        (credentials, Principal { organization: "acme".into(), user: "ops@acme.io".into() })
    }

    #[test]
    fn a_pair_is_trusted_for_the_bound() {
        let auth = Authenticator::new(Duration::from_millis(40));
        let (credentials, principal) = pair();
        auth.remember(&credentials, principal.clone());
        assert_eq!(auth.cached(&credentials), Some(principal));
        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(auth.cached(&credentials), None);
    }

    /// A secret in a rotation's grace is not trusted past the grace, however
    /// long the bound.
    #[test]
    fn a_secret_in_its_grace_is_trusted_only_until_it_ends() {
        let auth = Authenticator::new(Duration::from_secs(60));
        let (credentials, principal) = pair();
        auth.remember_until(&credentials, principal.clone(), Some(SystemTime::now() + Duration::from_millis(40)));
        assert_eq!(auth.cached(&credentials), Some(principal.clone()));
        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(auth.cached(&credentials), None, "the grace has ended");

        auth.remember_until(&credentials, principal, Some(SystemTime::now() - Duration::from_secs(1)));
        assert_eq!(auth.cached(&credentials), None, "an ended grace is not cached");
    }
}
