//! Disabling and enabling an instance (`DELETE`/`PUT .../enabled`): the
//! configuration is kept, `disabled` shows it, and while it is disabled every
//! call that names the instance by its token answers `403`, except enabling
//! it. One conditional write on the instance's version: a concurrent update
//! is never lost, and `If-Match` with a stale tag is refused.

use std::time::SystemTime;

use crate::app::App;
use crate::domain::instance::{InstanceSummary, Principal};
use crate::domain::time::iso8601;
use crate::domain::token::{InstanceId, Token};
use crate::service::read::{self, ReadError};
use crate::store::StoreError;

use crate::service::ATTEMPTS;

#[derive(Debug, thiserror::Error)]
pub enum UpdateError {
    #[error(transparent)]
    Read(#[from] ReadError),
    /// `If-Match` names another state of the instance than its current one.
    #[error("If-Match does not name the instance's current state")]
    PreconditionFailed,
    /// Other updates kept landing between the read and the write.
    #[error("the instance kept changing; {ATTEMPTS} writes were refused")]
    Busy,
}

impl From<StoreError> for UpdateError {
    fn from(e: StoreError) -> Self {
        UpdateError::Read(ReadError::Store(e))
    }
}

/// Whether an `If-Match` header value names this state (`*` names any; weak
/// tags compare by their value, as RFC 9110 allows for a state check).
pub fn if_match_names(header: &str, summary: &InstanceSummary) -> bool {
    let current = summary.etag();
    header.split(',').map(|t| t.trim().trim_start_matches("W/")).any(|t| t == "*" || t == current)
}

/// Sets the instance enabled or disabled. `id`: the path's; `token`: the
/// `Element` part (the only way to name it without an id).
pub async fn set_enabled(
    app: &App,
    principal: &Principal,
    id: Option<InstanceId>,
    token: Option<&Token>,
    if_match: Option<&str>,
    enabled: bool,
) -> Result<InstanceSummary, UpdateError> {
    let mut record = read::resolve(app, principal, id, token).await?;
    if token.is_some() && record.summary.disabled && !enabled {
        return Err(ReadError::Disabled.into());
    }
    for _ in 0..ATTEMPTS {
        if if_match.is_some_and(|h| !if_match_names(h, &record.summary.clone())) {
            return Err(UpdateError::PreconditionFailed);
        }
        if record.summary.disabled != enabled {
            return Ok(record.summary.clone());
        }
        let now = iso8601(SystemTime::now());
        match app.store.set_disabled(record.summary.id, !enabled, record.summary.version, &now).await? {
            Some(updated) => return Ok(updated.summary.clone()),
            // Changed meanwhile (or an SDK retry of a write that committed):
            // read it again and decide again.
            None => record = read::resolve(app, principal, Some(record.summary.id), None).await?,
        }
    }
    Err(UpdateError::Busy)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn if_match_names_the_current_state_or_any() {
        let summary = InstanceSummary { version: 3, ..InstanceSummary::example(InstanceId::new(7).unwrap(), "o", "u") };
        for yes in ["\"7-3\"", "*", "W/\"7-3\"", "\"7-2\", \"7-3\""] {
            assert!(if_match_names(yes, &summary), "{yes}");
        }
        for no in ["\"7-2\"", "\"8-3\"", "7-3", ""] {
            assert!(!if_match_names(no, &summary), "{no}");
        }
    }
}
