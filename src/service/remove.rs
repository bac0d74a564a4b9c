//! Deleting an instance: its item and the idempotency record that replays
//! its token go together, all or none, so the token stops resolving at once
//! (`401`) and an idempotent replay no longer answers it; a second delete is
//! `404`.

use crate::app::App;
use crate::domain::catalog::Element;
use crate::domain::instance::{InstanceSummary, Principal};
use crate::domain::token::{InstanceId, Token};
use crate::service::enable::{if_match_names, UpdateError};
use crate::service::read;

use crate::service::ATTEMPTS;

/// Deletes the instance `id` (or the one `token` names) and answers what it
/// was. While it is disabled, naming it by its token is `Disabled`, as for
/// every call but enabling.
pub async fn delete(
    app: &App,
    principal: &Principal,
    id: Option<InstanceId>,
    token: Option<&Token>,
    if_match: Option<&str>,
    element: Option<&Element>,
) -> Result<InstanceSummary, UpdateError> {
    let mut record = read::target(app, principal, id, token, element).await?;
    for _ in 0..ATTEMPTS {
        let summary = record.summary.clone();
        if if_match.is_some_and(|h| !if_match_names(h, &summary)) {
            return Err(UpdateError::PreconditionFailed);
        }
        if app.store.delete_instance(&record).await? {
            return Ok(summary);
        }
        // Changed meanwhile, or gone (a second delete, or an SDK retry of a
        // delete that committed): read it again; gone is `NotFound`.
        record = read::resolve(app, principal, Some(record.summary.id), None).await?;
    }
    Err(UpdateError::Busy)
}
