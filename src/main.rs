//! The Lambda entry: logging, what lives for the execution environment
//! (built once), then the runtime loop with a handler that borrows it.

use instances::{api, app::App};
use lambda_http::{run, service_fn, Error, Request};

// One invocation at a time per execution environment, and at 128 MB a
// fraction of one vCPU: a single-threaded runtime does all the function
// needs, without starting worker threads during init.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    instances::logging::init();
    // Set by `cargo lambda watch` and by Lambda Managed Instances for
    // handlers that poll concurrently. This one serves one invocation at a
    // time (above) and says so once, instead of the runtime warning at every
    // start that a feature it does not use is missing.
    if let Some(value) = std::env::var_os("AWS_LAMBDA_MAX_CONCURRENCY") {
        tracing::info!(value = ?value, "AWS_LAMBDA_MAX_CONCURRENCY ignored: one invocation at a time");
        std::env::remove_var("AWS_LAMBDA_MAX_CONCURRENCY");
    }
    let app = App::from_env().await.inspect_err(|e| tracing::error!(error = %e, "start-up failed"))?;
    let app = &app;
    run(service_fn(move |request: Request| async move {
        Ok::<_, std::convert::Infallible>(api::handle(app, request).await)
    }))
    .await
}
