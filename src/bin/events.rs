//! The event functions' entry: `EVENTS_STEP` says which step this function
//! is (`tick`: the schedule's; `poll`, `deliver`: their queues'), each the
//! same thin loop over `instances::events`. `events drive` is the local
//! driver (`make run`): the tick every minute and both queues, on the local
//! servers.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use instances::events::{driver, tick, Events, SqsEvent};
use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use serde_json::Value;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    instances::logging::init();
    std::env::remove_var("AWS_LAMBDA_MAX_CONCURRENCY");
    let mut events = Events::from_env().await.inspect_err(|e| tracing::error!(error = %e, "start-up failed"))?;
    if std::env::args().nth(1).as_deref() == Some("drive") {
        let prefix = std::env::var("TABLE_NAME").unwrap_or_else(|_| "instances".into());
        events.ensure_queues(&prefix).await?;
        tracing::info!(
            polls = events.settings.poll_queue_url,
            deliveries = events.settings.delivery_queue_url,
            "events: the local driver runs the tick every minute and drains both queues"
        );
        driver::run(Arc::new(events), Duration::from_secs(60)).await;
        return Ok(());
    }
    let events = Arc::new(events);
    let step = std::env::var("EVENTS_STEP").unwrap_or_default();
    let events = &events;
    let step = step.as_str();
    run(service_fn(move |event: LambdaEvent<Value>| async move {
        let now = SystemTime::now();
        match step {
            "tick" => {
                let ticked = tick::tick(events, now, None).await?;
                Ok::<Value, Error>(serde_json::json!({"sent": ticked.sent}))
            }
            "poll" | "deliver" => {
                let batch: SqsEvent = serde_json::from_value(event.payload)?;
                let response = if step == "poll" {
                    driver::handle_polls(events, &batch.records, now).await
                } else {
                    driver::handle_deliveries(events, &batch.records, now).await
                };
                Ok(serde_json::to_value(response)?)
            }
            other => Err(format!("EVENTS_STEP is {other:?}: tick, poll or deliver").into()),
        }
    }))
    .await
}
