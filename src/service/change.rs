//! What every change of an instance shares (update, disable/enable,
//! delete): the `If-Match` check, and the loop that writes on the version
//! read and, when another change landed in between, reads the instance
//! again under the same rules as the first read ([`Target`]) and decides
//! again. A token-addressed change racing a disable is refused on the second
//! read as it would have been on the first.

use crate::app::App;
use crate::domain::instance::{InstanceRecord, InstanceSummary, Principal};
use crate::service::read::{ReadError, Target};
use crate::service::ATTEMPTS;
use crate::store::StoreError;

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

/// The states a change is tried on: the instance as the caller first read
/// it, then, each time the write found that another change landed first, as
/// read again under the target's rules; `If-Match` checked on each; at most
/// [`ATTEMPTS`] of them, then [`UpdateError::Busy`].
///
/// ```ignore
/// let mut tries = Tries::new(&target, record, if_match);
/// loop {
///     let record = tries.next(app, principal).await?;
///     if let Some(done) = write(record).await? { return Ok(done) }
/// }
/// ```
pub struct Tries<'t, 'a> {
    target: &'t Target<'a>,
    if_match: Option<&'t str>,
    first: Option<InstanceRecord>,
    made: usize,
}

impl<'t, 'a> Tries<'t, 'a> {
    pub fn new(target: &'t Target<'a>, first: InstanceRecord, if_match: Option<&'t str>) -> Self {
        Tries { target, if_match, first: Some(first), made: 0 }
    }

    /// The state to try (next).
    pub async fn next(&mut self, app: &App, principal: &Principal) -> Result<InstanceRecord, UpdateError> {
        if self.made == ATTEMPTS {
            return Err(UpdateError::Busy);
        }
        self.made += 1;
        let record = match self.first.take() {
            Some(first) => first,
            // The same rules as the first read (token, disabled, element).
            None => self.target.read(app, principal).await?,
        };
        if self.if_match.is_some_and(|h| !if_match_names(h, &record.summary)) {
            return Err(UpdateError::PreconditionFailed);
        }
        Ok(record)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::token::InstanceId;

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
