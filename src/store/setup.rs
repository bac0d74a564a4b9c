//! The table itself: creation for a local DynamoDB API server (the SAM
//! template owns it in the cloud), migrations of stored items, and a raw
//! scan for tests and the operator's checks.

use std::time::Duration;

use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType, TimeToLiveSpecification,
};

use super::instances::{gsi1_sk, search_name, INDEX_PROJECTION};
use super::{bug, failed, key, s, scan_all, Item, Reader, Store, StoreError, DUE_INDEX, GSI1, TTL_ATTRIBUTE};

impl Store {
    /// Creates the table (on demand, `GSI1`, `DUE`, TTL on `expiresAt`) unless it
    /// exists. Returns whether it was created. For a local DynamoDB API
    /// server; in the cloud the SAM template owns the table.
    pub async fn create_table_if_missing(&self) -> Result<bool, StoreError> {
        match self.client.describe_table().table_name(&self.table).send().await {
            Ok(_) => return Ok(false),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_resource_not_found_exception()) => {}
            Err(e) => return Err(failed("DescribeTable", e)),
        }
        let attr = |name: &str| {
            AttributeDefinition::builder()
                .attribute_name(name)
                .attribute_type(ScalarAttributeType::S)
                .build()
                .map_err(bug)
        };
        let key_el =
            |name: &str, t: KeyType| KeySchemaElement::builder().attribute_name(name).key_type(t).build().map_err(bug);
        let gsi = GlobalSecondaryIndex::builder()
            .index_name(GSI1)
            .key_schema(key_el("GSI1PK", KeyType::Hash)?)
            .key_schema(key_el("GSI1SK", KeyType::Range)?)
            .projection(
                Projection::builder()
                    .projection_type(ProjectionType::Include)
                    .set_non_key_attributes(Some(INDEX_PROJECTION.iter().map(|a| a.to_string()).collect()))
                    .build(),
            )
            .build()
            .map_err(bug)?;
        let due = GlobalSecondaryIndex::builder()
            .index_name(DUE_INDEX)
            .key_schema(key_el("pollShard", KeyType::Hash)?)
            .key_schema(key_el("pollDue", KeyType::Range)?)
            .projection(Projection::builder().projection_type(ProjectionType::KeysOnly).build())
            .build()
            .map_err(bug)?;
        let number = |name: &str| {
            AttributeDefinition::builder()
                .attribute_name(name)
                .attribute_type(ScalarAttributeType::N)
                .build()
                .map_err(bug)
        };
        let created = self
            .client
            .create_table()
            .table_name(&self.table)
            .billing_mode(BillingMode::PayPerRequest)
            .attribute_definitions(attr("PK")?)
            .attribute_definitions(attr("SK")?)
            .attribute_definitions(attr("GSI1PK")?)
            .attribute_definitions(attr("GSI1SK")?)
            .attribute_definitions(attr("pollShard")?)
            .attribute_definitions(number("pollDue")?)
            .key_schema(key_el("PK", KeyType::Hash)?)
            .key_schema(key_el("SK", KeyType::Range)?)
            .global_secondary_indexes(gsi)
            .global_secondary_indexes(due)
            .send()
            .await;
        match created {
            Ok(_) => {}
            Err(e) if e.as_service_error().is_some_and(|s| s.is_resource_in_use_exception()) => return Ok(false),
            Err(e) => return Err(failed("CreateTable", e)),
        }
        for _ in 0..60 {
            let d = self
                .client
                .describe_table()
                .table_name(&self.table)
                .send()
                .await
                .map_err(|e| failed("DescribeTable", e))?;
            if d.table().and_then(|t| t.table_status()).is_some_and(|s| s.as_str() == "ACTIVE") {
                break;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        self.client
            .update_time_to_live()
            .table_name(&self.table)
            .time_to_live_specification(
                TimeToLiveSpecification::builder().attribute_name(TTL_ATTRIBUTE).enabled(true).build().map_err(bug)?,
            )
            .send()
            .await
            .map_err(|e| failed("UpdateTimeToLive", e))?;
        Ok(true)
    }

    /// Rewrites the instances stored before timestamps had a fixed width
    /// (`...:20.04Z`) in the three-digit form (`...:20.040Z`), the index key
    /// `GSI1SK` with them, so that an organization's index sorts in time
    /// order; and adds what lists read from the index to items written before
    /// it existed (`secretKeys`, `searchName`, `version`). Each item is one `UpdateItem` conditioned on the values read;
    /// an item changed meanwhile is left for the next run. Returns how many
    /// items were rewritten and how many were left. For the operator
    /// (`admin migrate-dates`); safe to run again.
    pub async fn migrate_timestamps(&self) -> Result<(usize, usize), StoreError> {
        let items: Vec<Item> = self.scan_sort_key("INSTANCE").await?;
        let (mut rewritten, mut left) = (0, 0);
        for item in &items {
            let pk = item.get("PK").and_then(|v| v.as_s().ok()).cloned().unwrap_or_default();
            let r = Reader::new(&pk, item);
            let (created, updated, id) = (r.s("createdDate")?, r.s("updatedDate")?, r.id("id")?);
            let (new_created, new_updated) = (r.stamp("createdDate")?, r.stamp("updatedDate")?);
            let complete = ["secretKeys", "searchName", "version"].iter().all(|a| item.contains_key(*a));
            if new_created == created && new_updated == updated && complete {
                continue;
            }
            let secret_keys =
                item.get("secrets").and_then(|m| m.as_m().ok()).map(|m| m.keys().map(s).collect()).unwrap_or_default();
            let result = self
                .client
                .update_item()
                .table_name(&self.table)
                .set_key(Some(key(&pk, "INSTANCE")))
                .update_expression(
                    "SET createdDate = :c, updatedDate = :u, GSI1SK = :g, secretKeys = if_not_exists(secretKeys, :keys), \
                     searchName = if_not_exists(searchName, :search), version = if_not_exists(version, :one)",
                )
                .expression_attribute_values(":keys", AttributeValue::L(secret_keys))
                .expression_attribute_values(":search", s(search_name(&r.s("name")?)))
                .expression_attribute_values(":one", AttributeValue::N("1".into()))
                .condition_expression("createdDate = :oc AND updatedDate = :ou")
                .expression_attribute_values(":c", s(&new_created))
                .expression_attribute_values(":u", s(&new_updated))
                .expression_attribute_values(":g", s(gsi1_sk(&new_created, id)))
                .expression_attribute_values(":oc", s(created))
                .expression_attribute_values(":ou", s(updated))
                .send()
                .await;
            match result {
                Ok(_) => rewritten += 1,
                Err(e) if e.as_service_error().is_some_and(|e| e.is_conditional_check_failed_exception()) => left += 1,
                Err(e) => return Err(failed("UpdateItem", e)),
            }
        }
        Ok((rewritten, left))
    }

    /// Every item of the table, raw: for tests and the operator's checks
    /// that nothing secret is stored in clear.
    pub async fn scan_raw(&self) -> Result<Vec<Item>, StoreError> {
        scan_all(self.client.scan().table_name(&self.table).consistent_read(true)).await
    }
}
