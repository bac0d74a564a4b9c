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
use crate::service::change::{Tries, UpdateError};
use crate::service::read::Target;

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
    let target = Target { enabling: enabled, ..Target::new(id, token, None) };
    let record = target.read(app, principal).await?;
    let mut tries = Tries::new(&target, record, if_match);
    loop {
        let record = tries.next(app, principal).await?;
        if record.summary.disabled != enabled {
            return Ok(record.summary);
        }
        let now = iso8601(SystemTime::now());
        if let Some(updated) = app.store.set_disabled(record.summary.id, !enabled, record.summary.version, &now).await?
        {
            return Ok(updated.summary);
        }
    }
}
