//! The vendor credential check as the use cases call it: before a create is
//! stored, and before an update that changes the credentials or the URL is
//! written. Nothing is stored when it fails. Off (`PROVIDER_CHECK=off`), or
//! for an element whose catalog entry names no check, it passes.

use crate::app::App;
use crate::domain::catalog::Element;
use crate::provider::{self, CheckError, CheckRequest};

#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// The vendor's verdict, or why it could not be had; `url_name` is the
    /// name the client gave the URL entry by (for a `400` naming it).
    #[error("{error}")]
    Check { error: CheckError, url_name: String },
    /// The check could not be set up (an unreadable test certificate).
    #[error("the credential check is broken: {0}")]
    Broken(String),
}

/// The values a check reads, in clear, and the names the client used.
pub struct Values<'a> {
    pub url: &'a str,
    pub username: &'a str,
    pub password: &'a str,
    pub url_name: &'a str,
}

/// Asks the vendor whether `values` work for `element`; answers the kind of
/// site the account tells, if any (`None` too when nothing was asked).
pub async fn credentials(app: &App, element: &Element, values: &Values<'_>) -> Result<Option<String>, VerifyError> {
    let Some(check) = element.credential_check.as_ref().filter(|_| app.settings.provider_check) else {
        return Ok(None);
    };
    let client = app.vendor.as_ref().map_err(|e| VerifyError::Broken(e.clone()))?;
    let request = CheckRequest {
        base_url: values.url,
        path: &check.path,
        username: values.username,
        password: values.password,
        account_fields: &check.account_fields,
        flavors: &check.flavors,
    };
    let started = std::time::Instant::now();
    let outcome = provider::check(client, app.settings.provider_check_timeout, &request).await;
    let ms = started.elapsed().as_secs_f64() * 1000.0;
    match &outcome {
        Ok(flavor) => tracing::info!(element = %element.info.key, ms, flavor, "credential check passed"),
        Err(e) => tracing::info!(element = %element.info.key, ms, outcome = %e, "credential check did not pass"),
    }
    outcome.map_err(|error| VerifyError::Check { error, url_name: values.url_name.to_owned() })
}

/// Whether the app checks credentials of this element at all.
pub fn enabled(app: &App, element: &Element) -> bool {
    app.settings.provider_check && element.credential_check.is_some()
}
