//! Every SQS call of the events: the polls' FIFO queue (grouped by
//! instance, deduplicated on the instance and its due time) and the
//! deliveries' queue (a delay per message for the retries' waits).

use std::time::Duration;

use aws_sdk_sqs::types::SendMessageBatchRequestEntry;

use super::{DeliveryMessage, Events, EventsError, PollMessage, SqsRecord};

/// SQS's longest delay of one message; a longer wait is taken in steps.
pub const MAX_DELAY: Duration = Duration::from_secs(900);

fn queue_error<E>(operation: &'static str) -> impl Fn(E) -> EventsError
where
    E: std::error::Error + aws_sdk_sqs::error::ProvideErrorMetadata + 'static,
{
    move |e| EventsError::Queue { operation, detail: crate::sdk::describe_error(&e) }
}

impl Events {
    /// For the local driver: the two queues named `<prefix>-polls.fifo` and
    /// `<prefix>-deliveries`, created where missing (as the template makes
    /// them, shorter timeouts), where the settings name none.
    pub async fn ensure_queues(&mut self, prefix: &str) -> Result<(), EventsError> {
        use aws_sdk_sqs::types::QueueAttributeName as A;
        if self.settings.poll_queue_url.is_empty() {
            let out = self
                .sqs
                .create_queue()
                .queue_name(format!("{prefix}-polls.fifo"))
                .attributes(A::FifoQueue, "true")
                .attributes(A::VisibilityTimeout, "120")
                .send()
                .await
                .map_err(queue_error("CreateQueue"))?;
            self.settings.poll_queue_url = out.queue_url.unwrap_or_default();
        }
        if self.settings.delivery_queue_url.is_empty() {
            let out = self
                .sqs
                .create_queue()
                .queue_name(format!("{prefix}-deliveries"))
                .attributes(A::VisibilityTimeout, "60")
                .send()
                .await
                .map_err(queue_error("CreateQueue"))?;
            self.settings.delivery_queue_url = out.queue_url.unwrap_or_default();
        }
        Ok(())
    }

    /// One poll message per due instance, ten a request.
    pub async fn send_polls(&self, polls: &[PollMessage]) -> Result<(), EventsError> {
        let fifo = |p: &PollMessage| Some((p.instance.to_string(), format!("{}-{}", p.instance, p.due)));
        self.send_all(&self.settings.poll_queue_url, polls, fifo).await
    }

    /// One delivery message per notification, ten a request, at once.
    pub async fn send_deliveries(&self, deliveries: &[DeliveryMessage]) -> Result<(), EventsError> {
        self.send_all(&self.settings.delivery_queue_url, deliveries, |_| None).await
    }

    /// `messages` as JSON bodies, ten a request; `fifo` names a message's
    /// group and deduplication id on a FIFO queue.
    async fn send_all<T: serde::Serialize>(
        &self,
        queue: &str,
        messages: &[T],
        fifo: impl Fn(&T) -> Option<(String, String)>,
    ) -> Result<(), EventsError> {
        let internal = |e: String| EventsError::Internal(e);
        for chunk in messages.chunks(10) {
            let mut entries = Vec::with_capacity(chunk.len());
            for (i, m) in chunk.iter().enumerate() {
                let body = serde_json::to_string(m).map_err(|e| internal(e.to_string()))?;
                let mut entry = SendMessageBatchRequestEntry::builder().id(i.to_string()).message_body(body);
                if let Some((group, dedup)) = fifo(m) {
                    entry = entry.message_group_id(group).message_deduplication_id(dedup);
                }
                entries.push(entry.build().map_err(|e| internal(e.to_string()))?);
            }
            self.send_batch(queue, entries).await?;
        }
        Ok(())
    }

    /// A delivery message seen again after `delay` (at most [`MAX_DELAY`]).
    pub async fn send_delivery_later(&self, delivery: &DeliveryMessage, delay: Duration) -> Result<(), EventsError> {
        let body = serde_json::to_string(delivery).map_err(|e| EventsError::Internal(e.to_string()))?;
        self.sqs
            .send_message()
            .queue_url(&self.settings.delivery_queue_url)
            .message_body(body)
            // Rounded up: a message early by a fraction of a second would be
            // sent again at once, and again.
            .delay_seconds(delay.min(MAX_DELAY).as_millis().div_ceil(1000).max(1) as i32)
            .send()
            .await
            .map_err(queue_error("SendMessage"))?;
        Ok(())
    }

    async fn send_batch(&self, queue: &str, entries: Vec<SendMessageBatchRequestEntry>) -> Result<(), EventsError> {
        let out = self
            .sqs
            .send_message_batch()
            .queue_url(queue)
            .set_entries(Some(entries))
            .send()
            .await
            .map_err(queue_error("SendMessageBatch"))?;
        if let Some(failed) = out.failed().first() {
            return Err(EventsError::Queue {
                operation: "SendMessageBatch",
                detail: format!("{} of the batch refused: {}", out.failed().len(), failed.code()),
            });
        }
        Ok(())
    }

    /// Up to ten messages of `queue` (the local driver's receive: in the
    /// cloud, Lambda's event source mapping receives), with their receipts.
    pub async fn receive(&self, queue: &str, wait: Duration) -> Result<Vec<(String, SqsRecord)>, EventsError> {
        let out = self
            .sqs
            .receive_message()
            .queue_url(queue)
            .max_number_of_messages(10)
            .wait_time_seconds(wait.as_secs() as i32)
            .send()
            .await
            .map_err(queue_error("ReceiveMessage"))?;
        Ok(out
            .messages()
            .iter()
            .filter_map(|m| {
                let record = SqsRecord { message_id: m.message_id()?.to_owned(), body: m.body()?.to_owned() };
                Some((m.receipt_handle()?.to_owned(), record))
            })
            .collect())
    }

    /// Deletes a message the handler took.
    pub async fn delete(&self, queue: &str, receipt: &str) -> Result<(), EventsError> {
        self.sqs
            .delete_message()
            .queue_url(queue)
            .receipt_handle(receipt)
            .send()
            .await
            .map_err(queue_error("DeleteMessage"))?;
        Ok(())
    }
}
