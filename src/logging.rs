//! JSON log lines through `tracing`: level, message, requestId and the fields
//! that explain the event, one object per line. `RUST_LOG` sets the filter
//! (default: `info` for this crate, `warn` for the others).

use tracing_subscriber::fmt::MakeWriter;

pub fn init() {
    init_with(std::io::stdout);
}

/// The same format to another writer (the tests read what was logged).
pub fn init_with<W>(writer: W)
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new("warn,instances=info,bootstrap=info")
    });
    let _ = tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_current_span(false)
        .with_span_list(false)
        .with_target(false)
        .with_env_filter(filter)
        .with_writer(writer)
        .try_init();
}
