//! Deleting an instance: its item and the idempotency record that replays
//! its token go together, all or none, so the token stops resolving at once
//! (`401`) and an idempotent replay no longer answers it; a second delete is
//! `404`.

use crate::app::App;
use crate::domain::catalog::Element;
use crate::domain::instance::{InstanceSummary, Principal};
use crate::domain::token::{InstanceId, Token};
use crate::service::change::{Tries, UpdateError};
use crate::service::read::Target;
use crate::store::DeleteOutcome;

/// Deletes the instance `id` (or the one `token` names) and answers what it
/// was. While it is disabled, naming it by its token is `Disabled`, as for
/// every call but enabling. An instance found gone at the write (this call's
/// own write, retried by the SDK after a lost answer, or a concurrent
/// delete) is deleted, as asked.
pub async fn delete(
    app: &App,
    principal: &Principal,
    id: Option<InstanceId>,
    token: Option<&Token>,
    if_match: Option<&str>,
    element: Option<&Element>,
) -> Result<InstanceSummary, UpdateError> {
    let target = Target::new(id, token, element);
    let record = target.read(app, principal).await?;
    let mut tries = Tries::new(&target, record, if_match);
    loop {
        let record = tries.next(app, principal).await?;
        if app.store.delete_instance(&record).await? == DeleteOutcome::Deleted {
            return Ok(record.summary);
        }
    }
}
