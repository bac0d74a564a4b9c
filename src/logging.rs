//! JSON log lines through `tracing`: level, message, requestId and the fields
//! that explain the event, one object per line. `RUST_LOG` sets the filter
//! (default: `info` for this crate, `warn` for the others).

use tracing::Level;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

pub fn init() {
    init_with(std::io::stdout);
}

/// The same format to another writer (the tests read what was logged).
pub fn init_with<W>(writer: W)
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    // `Targets` rather than `EnvFilter`: the same `RUST_LOG` syntax for
    // targets and levels, without a regex engine in the binary.
    let filter = std::env::var("RUST_LOG")
        .ok()
        .and_then(|v| v.parse::<Targets>().ok())
        .unwrap_or_else(|| Targets::new().with_default(Level::WARN).with_target("instances", Level::INFO));
    let format = tracing_subscriber::fmt::layer()
        .json()
        .flatten_event(true)
        .with_current_span(false)
        .with_span_list(false)
        .with_target(false)
        .with_writer(writer);
    let _ = tracing_subscriber::registry().with(format).with(filter).try_init();
}
