//! Idempotency records: what an `Idempotency-Key` replays (the first
//! response, sealed), kept 24 h (TTL). Written with the instance, in the
//! create's transaction (`instances`).

use super::{b, item, n, s, Item, Reader, Store, StoreError, TTL_ATTRIBUTE};
use crate::domain::token::InstanceId;

/// What an `Idempotency-Key` replays.
#[derive(Debug, Clone, PartialEq)]
pub struct ReplayRecord {
    pub organization: String,
    pub key_digest: String,
    pub instance_id: InstanceId,
    pub sealed_data_key: Vec<u8>,
    pub sealed_response: Vec<u8>,
    pub created_date: String,
    pub expires_at: i64,
}

impl Store {
    /// The idempotency record, read strongly consistently.
    pub async fn get_replay(&self, organization: &str, key_digest: &str) -> Result<Option<ReplayRecord>, StoreError> {
        let pk = replay_pk(organization, key_digest);
        let item = self.get_consistent(&pk, "IDEMPOTENCY").await?;
        item.map(|item| {
            let r = Reader::new(&pk, &item);
            Ok(ReplayRecord {
                organization: organization.to_owned(),
                key_digest: key_digest.to_owned(),
                instance_id: r.id("instanceId")?,
                sealed_data_key: r.b("sealedDataKey")?,
                sealed_response: r.b("sealedResponse")?,
                created_date: r.s("createdDate")?,
                expires_at: r.n("expiresAt")?,
            })
        })
        .transpose()
    }
}

pub(super) fn replay_pk(organization: &str, key_digest: &str) -> String {
    format!("IDEMPOTENCY#{organization}#{key_digest}")
}

pub(super) fn replay_item(r: &ReplayRecord) -> Item {
    item([
        ("PK", s(replay_pk(&r.organization, &r.key_digest))),
        ("SK", s("IDEMPOTENCY")),
        ("instanceId", n(r.instance_id.get())),
        ("sealedDataKey", b(&r.sealed_data_key)),
        ("sealedResponse", b(&r.sealed_response)),
        ("createdDate", s(&r.created_date)),
        (TTL_ATTRIBUTE, n(r.expires_at)),
    ])
}
