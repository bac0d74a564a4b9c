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
    let app = App::from_env().await.inspect_err(|e| tracing::error!(error = %e, "start-up failed"))?;
    let app = &app;
    run(service_fn(move |request: Request| async move {
        Ok::<_, std::convert::Infallible>(api::handle(app, request).await)
    }))
    .await
}
