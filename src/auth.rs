//! Authentication: the `Authorization` secrets resolved to their owner, with
//! a bounded cache of verified pairs so that a warm environment reads nothing
//! for a known credential. A disabled user or a rotated secret is refused at
//! most `AUTH_CACHE_SECONDS` (≤ 60 s) later; a refusal is never cached.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::domain::credentials::Credentials;
use crate::domain::secret::SecretDigest;
use crate::store::{Principal, Refusal, Store, StoreError};

const MAX_ENTRIES: usize = 1024;

pub struct Authenticator {
    ttl: Duration,
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
        let found = store.find_principal(&credentials.user.digest(), &credentials.organization.digest()).await?;
        if let Ok(principal) = &found {
            self.remember(credentials, principal.clone());
        }
        Ok(found)
    }

    /// The owner of these credentials, if verified less than the bound ago.
    pub fn cached(&self, credentials: &Credentials) -> Option<Principal> {
        let verified = self.verified.lock().ok()?;
        let (principal, at) = verified.get(&credentials.pair_digest())?;
        (at.elapsed() < self.ttl).then(|| principal.clone())
    }

    /// Records a verified pair (only ever called with what the store confirmed).
    pub fn remember(&self, credentials: &Credentials, principal: Principal) {
        if self.ttl.is_zero() {
            return;
        }
        if let Ok(mut verified) = self.verified.lock() {
            if verified.len() >= MAX_ENTRIES {
                let ttl = self.ttl;
                verified.retain(|_, (_, at)| at.elapsed() < ttl);
                if verified.len() >= MAX_ENTRIES {
                    verified.clear();
                }
            }
            verified.insert(credentials.pair_digest(), (principal, Instant::now()));
        }
    }
}
