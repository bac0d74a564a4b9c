//! Every failure the API answers, and the one place that maps each to its
//! status, `code` and message. A 5xx body says only what the client can act
//! on; the detail goes to the log with the request id.

use lambda_http::http::{header, HeaderValue, StatusCode};
use lambda_http::{Body, Response};
use serde::Serialize;

use crate::domain::configuration::UnknownEntry;
use crate::domain::request::{FieldErrors, RequestError, CONFIGURATION, NAME, TAGS};
use crate::provider::CheckError;
use crate::service::change::UpdateError;
use crate::service::read::ReadError;
use crate::service::update::PatchError;
use crate::service::verify::VerifyError;
use crate::service::CreateError;
use crate::store::StoreError;

pub const MAX_BODY_BYTES: usize = 64 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("no route")]
    NotFound,
    /// A hub failure answered for the instance the token named
    /// (`Elements-Element-Instance-Id`).
    #[error("{1}")]
    ForInstance(crate::domain::token::InstanceId, Box<ApiError>),
    /// A hub path served with other methods only.
    #[error("method not allowed")]
    HubMethodNotAllowed(String),
    /// A hub body over 1 MiB.
    #[error("hub body too large")]
    HubPayloadTooLarge,
    /// A CEQL `where` or `orderBy` that does not parse.
    #[error("invalid query: {0}")]
    InvalidWhere(String),
    /// The vendor refused a hub call: its status and words.
    #[error("the vendor refused (HTTP {status})")]
    ProviderRefused { status: u16, provider_message: String },
    /// The vendor refused the instance's credentials at a hub call.
    #[error("the vendor refused the instance's credentials")]
    InstanceInvalid { provider_message: String },
    /// The vendor's rate limit at a hub call.
    #[error("the vendor's rate limit")]
    ProviderRateLimited { retry_after: Option<String> },
    /// The vendor could not be asked (or failed) at a hub call.
    #[error("the vendor is unavailable: {0}")]
    HubUnavailable(String),
    /// The vendor's answer is not what was due.
    #[error("the vendor's answer is unusable: {0}")]
    ProviderBadResponse(String),
    /// `/elements/{keyOrId}` naming no element of the catalog.
    #[error("no element {given}")]
    NoSuchElement { given: String, known: Vec<String>, suggestion: Option<String> },
    /// No instance with that id in the caller's organization.
    #[error("no such instance")]
    NoSuchInstance,
    /// No configuration entry with that id in the instance's element.
    #[error("no such configuration entry")]
    NoSuchEntry,
    /// A search that matched nothing (the platform answers 404).
    #[error("no instance matches the search")]
    NoMatch,
    /// The instance the `Element` token names is disabled.
    #[error("instance disabled")]
    InstanceDisabled,
    /// `If-Match` names another state of the instance.
    #[error("precondition failed")]
    PreconditionFailed,
    /// A query parameter out of its range or shape.
    #[error("invalid query: {0}")]
    InvalidQuery(String),
    #[error("method not allowed")]
    MethodNotAllowed { allow: &'static str },
    /// Why, for the log only: the answer never tells (one message for a bad
    /// user or organization secret, whichever it was).
    #[error("unauthorized: {0}")]
    Unauthorized(&'static str),
    /// The user and organization authenticated, but the call acts on the
    /// instance an `Element` token names and none was given.
    #[error("unauthorized: no Element token names the instance")]
    ElementTokenNeeded,
    /// The user and organization authenticated, but the `Element` token names
    /// no live instance of the organization (or not the path's).
    #[error("unauthorized: the Element token names no live instance of the organization")]
    ElementTokenRefused,
    /// The `Content-Type` received.
    #[error("unsupported content type {0}")]
    UnsupportedMediaType(String),
    #[error("body too large")]
    PayloadTooLarge,
    #[error("malformed JSON: {0}")]
    MalformedJson(String),
    #[error("invalid idempotency key")]
    InvalidIdempotencyKey,
    #[error("invalid request: {0:?}")]
    Request(RequestError),
    #[error("idempotency key in flight")]
    IdempotencyKeyInFlight,
    #[error("idempotency key reused")]
    IdempotencyKeyReused,
    /// The vendor refused the instance's credentials (`captcha`: it asks for
    /// a CAPTCHA, which retrying makes worse).
    #[error("credentials refused by the vendor: {provider_message}")]
    CredentialsRefused { captcha: bool, provider_message: String },
    /// The URL entry does not lead to the vendor's API, or to an address the
    /// service does not connect to.
    #[error("configuration entry {entry} {problem}")]
    ProviderUrl { entry: String, problem: String, provider_message: Option<String> },
    /// The vendor could not be asked (unreachable, timed out, TLS, 5xx).
    #[error("vendor unavailable: {0}")]
    ProviderUnavailable(String),
    /// DynamoDB or KMS throttled, unreachable or timed out after the SDK's
    /// retries: worth retrying (`503`, `Retry-After`).
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// A fault that retrying will not mend: a corrupt item, a value that does
    /// not open, a refused request, a bug (`500`, the detail only in the log).
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<RequestError> for ApiError {
    fn from(e: RequestError) -> Self {
        ApiError::Request(e)
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        if e.is_transient() {
            ApiError::Unavailable(e.to_string())
        } else {
            ApiError::Internal(e.to_string())
        }
    }
}

impl From<ReadError> for ApiError {
    fn from(e: ReadError) -> Self {
        match e {
            ReadError::Store(e) => e.into(),
            ReadError::NotFound => ApiError::NoSuchInstance,
            ReadError::NoMatch => ApiError::NoMatch,
            ReadError::TokenRefused => ApiError::ElementTokenRefused,
            ReadError::Disabled => ApiError::InstanceDisabled,
        }
    }
}

impl From<UpdateError> for ApiError {
    fn from(e: UpdateError) -> Self {
        match e {
            UpdateError::Read(e) => e.into(),
            UpdateError::PreconditionFailed => ApiError::PreconditionFailed,
            UpdateError::Busy => ApiError::Unavailable(e.to_string()),
        }
    }
}

impl From<PatchError> for ApiError {
    fn from(e: PatchError) -> Self {
        match e {
            PatchError::Update(e) => e.into(),
            PatchError::Invalid(e) => ApiError::Request(e),
            PatchError::Verify(e) => e.into(),
            PatchError::Seal(e) if e.is_transient() => ApiError::Unavailable(e.to_string()),
            PatchError::Seal(e) => ApiError::Internal(e.to_string()),
        }
    }
}

impl From<VerifyError> for ApiError {
    fn from(e: VerifyError) -> Self {
        match e {
            VerifyError::Check { error: CheckError::Credentials { captcha, provider_message }, .. } => {
                ApiError::CredentialsRefused { captcha, provider_message }
            }
            VerifyError::Check { error: CheckError::Url { problem, provider_message }, url_name } => {
                ApiError::ProviderUrl { entry: url_name, problem, provider_message }
            }
            VerifyError::Check { error: CheckError::Unavailable { provider_message }, .. } => {
                ApiError::ProviderUnavailable(provider_message)
            }
            VerifyError::Broken(why) => ApiError::Internal(why),
        }
    }
}

impl From<crate::hub::HubError> for ApiError {
    fn from(e: crate::hub::HubError) -> Self {
        use crate::hub::HubError as H;
        match e {
            H::Read(e) => e.into(),
            H::NotFound => ApiError::NotFound,
            H::MethodNotAllowed { allow } => ApiError::HubMethodNotAllowed(allow),
            H::Invalid(why) => ApiError::InvalidQuery(why),
            H::InvalidQuery(why) => ApiError::InvalidWhere(why),
            H::MalformedJson(why) => ApiError::MalformedJson(why),
            H::Provider { status, message } => ApiError::ProviderRefused { status, provider_message: message },
            H::InstanceInvalid { message } => ApiError::InstanceInvalid { provider_message: message },
            H::RateLimited { retry_after } => ApiError::ProviderRateLimited { retry_after },
            H::Unavailable(message) => ApiError::HubUnavailable(message),
            H::BadResponse(why) => ApiError::ProviderBadResponse(why),
            H::Internal(why) => ApiError::Internal(why),
            H::Store(e) => e.into(),
            H::Seal(e) if e.is_transient() => ApiError::Unavailable(e.to_string()),
            H::Seal(e) => ApiError::Internal(e.to_string()),
        }
    }
}

impl From<CreateError> for ApiError {
    fn from(e: CreateError) -> Self {
        match e {
            CreateError::Verify(e) => e.into(),
            CreateError::KeyReused => ApiError::IdempotencyKeyReused,
            CreateError::KeyInFlight => ApiError::IdempotencyKeyInFlight,
            other if other.is_transient() => ApiError::Unavailable(other.to_string()),
            other => ApiError::Internal(other.to_string()),
        }
    }
}

/// Every `code` the API answers with (the README and the OpenAPI description list the same).
pub const CODES: &[&str] = &[
    "not_found",
    "method_not_allowed",
    "unauthorized",
    "unsupported_media_type",
    "payload_too_large",
    "malformed_json",
    "invalid_idempotency_key",
    "invalid_request",
    "unknown_element",
    "missing_configuration",
    "unknown_configuration",
    "invalid_configuration",
    "invalid_name",
    "invalid_tags",
    "idempotency_key_in_flight",
    "idempotency_key_reused",
    "service_unavailable",
    "internal_error",
    "instance_disabled",
    "precondition_failed",
    "invalid_credentials",
    "captcha_required",
    "provider_unavailable",
    "invalid_query",
    "provider_error",
    "instance_invalid",
    "provider_rate_limited",
    "provider_bad_response",
];

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ErrorBody<'a> {
    request_id: &'a str,
    code: &'static str,
    message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    missing: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    unknown: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    invalid: Option<Vec<String>>,
    /// What the vendor said, in its words, when it was asked.
    #[serde(skip_serializing_if = "Option::is_none")]
    provider_message: Option<String>,
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::ForInstance(_, inner) => inner.status(),
            ApiError::HubMethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::HubPayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::InvalidWhere(_) => StatusCode::BAD_REQUEST,
            ApiError::ProviderRefused { status, .. } => {
                StatusCode::from_u16(*status).unwrap_or(StatusCode::BAD_GATEWAY)
            }
            ApiError::InstanceInvalid { .. } => StatusCode::FORBIDDEN,
            ApiError::ProviderRateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::HubUnavailable(_) | ApiError::ProviderBadResponse(_) => StatusCode::BAD_GATEWAY,
            ApiError::NotFound
            | ApiError::NoSuchElement { .. }
            | ApiError::NoSuchInstance
            | ApiError::NoSuchEntry
            | ApiError::NoMatch => StatusCode::NOT_FOUND,
            ApiError::InstanceDisabled => StatusCode::FORBIDDEN,
            ApiError::PreconditionFailed => StatusCode::PRECONDITION_FAILED,
            ApiError::InvalidQuery(_) => StatusCode::BAD_REQUEST,
            ApiError::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Unauthorized(_) | ApiError::ElementTokenNeeded | ApiError::ElementTokenRefused => {
                StatusCode::UNAUTHORIZED
            }
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::MalformedJson(_) | ApiError::InvalidIdempotencyKey | ApiError::Request(_) => {
                StatusCode::BAD_REQUEST
            }
            ApiError::IdempotencyKeyInFlight => StatusCode::CONFLICT,
            ApiError::IdempotencyKeyReused => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::CredentialsRefused { .. } | ApiError::ProviderUrl { .. } => StatusCode::BAD_REQUEST,
            ApiError::ProviderUnavailable(_) => StatusCode::BAD_GATEWAY,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            ApiError::ForInstance(_, inner) => inner.code(),
            ApiError::HubMethodNotAllowed(_) => "method_not_allowed",
            ApiError::HubPayloadTooLarge => "payload_too_large",
            ApiError::InvalidWhere(_) => "invalid_query",
            ApiError::ProviderRefused { .. } => "provider_error",
            ApiError::InstanceInvalid { .. } => "instance_invalid",
            ApiError::ProviderRateLimited { .. } => "provider_rate_limited",
            ApiError::HubUnavailable(_) => "provider_unavailable",
            ApiError::ProviderBadResponse(_) => "provider_bad_response",
            ApiError::NotFound
            | ApiError::NoSuchElement { .. }
            | ApiError::NoSuchInstance
            | ApiError::NoSuchEntry
            | ApiError::NoMatch => "not_found",
            ApiError::InstanceDisabled => "instance_disabled",
            ApiError::PreconditionFailed => "precondition_failed",
            ApiError::InvalidQuery(_) => "invalid_request",
            ApiError::MethodNotAllowed { .. } => "method_not_allowed",
            ApiError::Unauthorized(_) | ApiError::ElementTokenNeeded | ApiError::ElementTokenRefused => "unauthorized",
            ApiError::UnsupportedMediaType(_) => "unsupported_media_type",
            ApiError::PayloadTooLarge => "payload_too_large",
            ApiError::MalformedJson(_) => "malformed_json",
            ApiError::InvalidIdempotencyKey => "invalid_idempotency_key",
            ApiError::Request(RequestError::Invalid(_)) => "invalid_request",
            ApiError::Request(RequestError::UnknownElement { .. }) => "unknown_element",
            ApiError::Request(RequestError::Fields(f)) => fields_code(f),
            ApiError::IdempotencyKeyInFlight => "idempotency_key_in_flight",
            ApiError::IdempotencyKeyReused => "idempotency_key_reused",
            ApiError::CredentialsRefused { captcha: false, .. } => "invalid_credentials",
            ApiError::CredentialsRefused { captcha: true, .. } => "captcha_required",
            ApiError::ProviderUrl { .. } => "invalid_configuration",
            ApiError::ProviderUnavailable(_) => "provider_unavailable",
            ApiError::Unavailable(_) => "service_unavailable",
            ApiError::Internal(_) => "internal_error",
        }
    }

    fn message(&self) -> String {
        match self {
            ApiError::ForInstance(_, inner) => inner.message(),
            ApiError::HubMethodNotAllowed(allow) => format!("This method is not served here; allowed: {allow}."),
            ApiError::HubPayloadTooLarge => {
                format!("A hub call's body must be at most {} bytes.", crate::hub::MAX_REQUEST_BYTES)
            }
            ApiError::InvalidWhere(why) => format!("The query does not parse ({why}); JIRA was not asked."),
            ApiError::ProviderRefused { status, .. } => {
                format!("JIRA refused the call (HTTP {status}; see providerMessage).")
            }
            ApiError::InstanceInvalid { .. } => "JIRA refused this instance's credentials (see providerMessage): update them (PATCH /instances with the Element token) and retry; the instance is marked valid: false meanwhile.".into(),
            ApiError::ProviderRateLimited { retry_after: Some(s) } => {
                format!("JIRA's rate limit was reached; retry after {s} seconds (Retry-After).")
            }
            ApiError::ProviderRateLimited { retry_after: None } => "JIRA's rate limit was reached; retry later.".into(),
            ApiError::HubUnavailable(_) => "JIRA could not be asked or failed (see providerMessage); retry later.".into(),
            ApiError::ProviderBadResponse(why) => format!("JIRA's answer could not be used: {why}."),
            ApiError::NotFound => "No such resource. The API serves /instances, /instances/{id}, \
                 /instances/{id}/enabled, /instances/{id}/configuration[/{configId}], /elements, \
                 /elements/{keyOrId}, /elements/{keyOrId}/instances and /elements/{keyOrId}/instances/{id}."
                .into(),
            ApiError::NoSuchElement { given, known, suggestion } => {
                let hint = suggestion.as_ref().map(|s| format!(" Did you mean {s:?}?")).unwrap_or_default();
                format!("No element {given:?} in the catalog.{hint} Its elements: {}.", known.join(", "))
            }
            ApiError::NoSuchInstance => "No instance with this id in your organization.".into(),
            ApiError::NoSuchEntry => {
                "No configuration entry with this id; GET the instance's configuration for the ids.".into()
            }
            ApiError::NoMatch => "No instance matches the search.".into(),
            ApiError::InstanceDisabled => {
                "The instance this Element token names is disabled; enable it (PUT /instances/enabled) to use it.".into()
            }
            ApiError::InvalidQuery(why) => format!("{why}."),
            ApiError::PreconditionFailed => {
                "The instance changed since the ETag given in If-Match; read it again and retry with its new ETag.".into()
            }
            ApiError::MethodNotAllowed { allow } => format!("This method is not served here; allowed: {allow}."),
            ApiError::Unauthorized(_) => {
                "Authorization must be 'User <user secret>, Organization <organization secret>' naming an enabled user of that organization.".into()
            }
            ApiError::ElementTokenNeeded => {
                "This call acts on the instance an Element token names: add ', Element <token>' (the token its create answered) to the Authorization header, or call the form with the instance's id. The user and organization secrets were accepted.".into()
            }
            ApiError::ElementTokenRefused => {
                "The Element token names no instance of this organization (mistyped, or the instance was deleted), or not the instance this path names. The user and organization secrets were accepted.".into()
            }
            ApiError::UnsupportedMediaType(received) => {
                format!("The body must be JSON (Content-Type: application/json); the request said {received:?}.")
            }
            ApiError::PayloadTooLarge => format!("The body must be at most {MAX_BODY_BYTES} bytes."),
            ApiError::MalformedJson(why) => format!("The body is not valid JSON: {why}."),
            ApiError::InvalidIdempotencyKey => "Idempotency-Key must be 1 to 255 printable ASCII characters.".into(),
            ApiError::Request(e) => request_message(e),
            ApiError::IdempotencyKeyInFlight => {
                "A request with this Idempotency-Key is still being processed; retry shortly.".into()
            }
            ApiError::IdempotencyKeyReused => {
                "This Idempotency-Key was already used with a different request; use a new key for a new request.".into()
            }
            ApiError::CredentialsRefused { captcha: false, .. } => {
                "JIRA refused the credentials of this configuration (see providerMessage); nothing was stored.".into()
            }
            ApiError::CredentialsRefused { captcha: true, .. } => {
                "JIRA asks for a CAPTCHA for this account: sign in to JIRA in a browser once, then retry; retrying before that makes it worse. Nothing was stored.".into()
            }
            ApiError::ProviderUrl { entry, problem, .. } => {
                format!("Configuration entry {entry} {problem}; nothing was stored.")
            }
            ApiError::ProviderUnavailable(_) => {
                "JIRA could not be reached to check the credentials (see providerMessage); nothing was stored. Retry later.".into()
            }
            ApiError::Unavailable(_) => "The service is temporarily unavailable; retry after the Retry-After delay.".into(),
            ApiError::Internal(_) => {
                "Something went wrong on our side and retrying will not help; quote the requestId to support.".into()
            }
        }
    }

    pub fn into_response(self, request_id: &str) -> Response<Body> {
        let (missing, unknown, invalid) = match &self {
            ApiError::Request(RequestError::Fields(FieldErrors { missing, unknown, invalid })) => (
                (!missing.is_empty()).then(|| missing.clone()),
                (!unknown.is_empty()).then(|| unknown.iter().map(|u| u.key.clone()).collect()),
                (!invalid.is_empty()).then(|| invalid.iter().map(|i| i.key.clone()).collect()),
            ),
            ApiError::Request(RequestError::UnknownElement { given, .. }) => (None, Some(vec![given.clone()]), None),
            ApiError::ProviderUrl { entry, .. } => (None, None, Some(vec![entry.clone()])),
            _ => (None, None, None),
        };
        let provider_message = match &self {
            ApiError::CredentialsRefused { provider_message, .. } | ApiError::ProviderUnavailable(provider_message) => {
                Some(provider_message.clone())
            }
            ApiError::ProviderUrl { provider_message, .. } => provider_message.clone(),
            ApiError::ProviderRefused { provider_message, .. }
            | ApiError::InstanceInvalid { provider_message }
            | ApiError::HubUnavailable(provider_message) => Some(provider_message.clone()),
            ApiError::ForInstance(_, inner) => match inner.as_ref() {
                ApiError::ProviderRefused { provider_message, .. }
                | ApiError::InstanceInvalid { provider_message }
                | ApiError::HubUnavailable(provider_message) => Some(provider_message.clone()),
                _ => None,
            },
            _ => None,
        };
        let body = ErrorBody {
            request_id,
            code: self.code(),
            message: self.message(),
            missing,
            unknown,
            invalid,
            provider_message,
        };
        let mut response = json_response(self.status(), serde_json::to_vec(&body).unwrap_or_default());
        let headers = response.headers_mut();
        let error = match self {
            ApiError::ForInstance(id, inner) => {
                headers.insert(INSTANCE_ID_HEADER, HeaderValue::from(id.get()));
                *inner
            }
            other => other,
        };
        match error {
            ApiError::HubMethodNotAllowed(allow) => {
                if let Ok(v) = HeaderValue::from_str(&allow) {
                    headers.insert(header::ALLOW, v);
                }
            }
            ApiError::ProviderRateLimited { retry_after: Some(after) } => {
                if let Ok(v) = HeaderValue::from_str(&after) {
                    headers.insert(header::RETRY_AFTER, v);
                }
            }
            ApiError::MethodNotAllowed { allow } => {
                headers.insert(header::ALLOW, HeaderValue::from_static(allow));
            }
            ApiError::Unauthorized(_) => {
                headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static(CHALLENGE));
            }
            ApiError::ElementTokenNeeded | ApiError::ElementTokenRefused => {
                headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static(ELEMENT_CHALLENGE));
            }
            ApiError::Unavailable(_) | ApiError::IdempotencyKeyInFlight => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            }
            _ => {}
        }
        response
    }
}

/// The `WWW-Authenticate` challenge of a 401: the two parts the API's
/// scheme needs (RFC 9110 11.6.1).
pub const CHALLENGE: &str = r#"User realm="instances", Organization realm="instances""#;

/// The instance a hub answer (or failure) is for.
pub const INSTANCE_ID_HEADER: &str = "elements-element-instance-id";

/// The challenge of a 401 for the `Element` part, the other two having passed.
pub const ELEMENT_CHALLENGE: &str = r#"Element realm="instances""#;

/// The code of a 400 that names several fields: the first kind of problem in
/// the order the fields are read (unknown, then missing configuration
/// entries; then invalid values: configuration, name, tags).
fn fields_code(f: &FieldErrors) -> &'static str {
    if !f.unknown.is_empty() {
        return "unknown_configuration";
    }
    if !f.missing.is_empty() {
        return "missing_configuration";
    }
    match f.invalid.first().map(|i| i.key.as_str()) {
        Some(NAME) => "invalid_name",
        Some(TAGS) => "invalid_tags",
        _ => "invalid_configuration",
    }
}

fn request_message(e: &RequestError) -> String {
    match e {
        RequestError::Invalid(why) => format!("{why}."),
        RequestError::UnknownElement { given, known, suggestion } => {
            let hint = suggestion.as_ref().map(|s| format!(" Did you mean {s:?}?")).unwrap_or_default();
            format!("Unknown element {given:?}; known element keys: {}.{hint}", known.join(", "))
        }
        RequestError::Fields(FieldErrors { missing, unknown, invalid }) => {
            let mut parts = Vec::new();
            if !missing.is_empty() {
                parts.push(format!("Missing required configuration entries: {}.", missing.join(", ")));
            }
            if !unknown.is_empty() {
                let named: Vec<String> = unknown.iter().map(describe_unknown).collect();
                parts.push(format!("Unknown configuration entries: {}.", named.join(", ")));
            }
            for i in invalid {
                let field = match i.key.as_str() {
                    CONFIGURATION | NAME | TAGS => i.key.clone(),
                    key => format!("Configuration entry {key}"),
                };
                let mut sentence = format!("{field} {}.", i.problem);
                sentence[..1].make_ascii_uppercase();
                parts.push(sentence);
            }
            parts.join(" ")
        }
    }
}

fn describe_unknown(u: &UnknownEntry) -> String {
    match &u.suggestion {
        Some(s) => format!("{} (did you mean {s}?)", u.key),
        None => u.key.clone(),
    }
}

pub fn json_response(status: StatusCode, body: Vec<u8>) -> Response<Body> {
    let mut response = Response::new(Body::Text(String::from_utf8(body).unwrap_or_default()));
    *response.status_mut() = status;
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::seal::SealError;
    use std::collections::BTreeSet;

    /// One value of every way the API fails. The match below has no
    /// wildcard: a new variant does not compile until it is listed here, and
    /// the test fails unless every arm was reached.
    fn every_failure() -> Vec<ApiError> {
        let fields = |missing: Vec<&str>, unknown: Vec<&str>, invalid: Vec<&str>| {
            ApiError::Request(RequestError::Fields(FieldErrors {
                missing: missing.into_iter().map(String::from).collect(),
                unknown: unknown.into_iter().map(|k| UnknownEntry { key: k.into(), suggestion: None }).collect(),
                invalid: invalid
                    .into_iter()
                    .map(|k| crate::domain::configuration::InvalidEntry { key: k.into(), problem: "p".into() })
                    .collect(),
            }))
        };
        let all = vec![
            ApiError::NotFound,
            ApiError::NoSuchElement {
                given: "JIRA".into(),
                known: vec!["jira".into()],
                suggestion: Some("jira".into()),
            },
            ApiError::NoSuchInstance,
            ApiError::NoSuchEntry,
            ApiError::NoMatch,
            ApiError::InstanceDisabled,
            ApiError::InvalidQuery("pageSize".into()),
            ApiError::PreconditionFailed,
            ApiError::MethodNotAllowed { allow: "POST" },
            ApiError::Unauthorized("no Authorization header"),
            ApiError::ElementTokenNeeded,
            ApiError::ElementTokenRefused,
            ApiError::HubMethodNotAllowed("GET".into()),
            ApiError::HubPayloadTooLarge,
            ApiError::InvalidWhere("x".into()),
            ApiError::ProviderRefused { status: 404, provider_message: "Issue does not exist".into() },
            ApiError::InstanceInvalid { provider_message: "HTTP 401".into() },
            ApiError::ProviderRateLimited { retry_after: Some("7".into()) },
            ApiError::HubUnavailable("the site could not be reached".into()),
            ApiError::ProviderBadResponse("not JSON".into()),
            ApiError::ForInstance(crate::domain::token::InstanceId::new(7).unwrap(), Box::new(ApiError::NotFound)),
            ApiError::UnsupportedMediaType("text/plain".into()),
            ApiError::PayloadTooLarge,
            ApiError::MalformedJson("eof".into()),
            ApiError::InvalidIdempotencyKey,
            ApiError::Request(RequestError::Invalid("x".into())),
            ApiError::Request(RequestError::UnknownElement { given: "x".into(), known: vec![], suggestion: None }),
            fields(vec!["a"], vec![], vec!["name"]),
            fields(vec!["a"], vec!["b"], vec![]),
            fields(vec![], vec![], vec!["jira.api.url", "name"]),
            fields(vec![], vec![], vec!["name", "tags"]),
            fields(vec![], vec![], vec!["tags"]),
            ApiError::IdempotencyKeyInFlight,
            ApiError::IdempotencyKeyReused,
            ApiError::CredentialsRefused { captcha: false, provider_message: "Unauthorized".into() },
            ApiError::CredentialsRefused { captcha: true, provider_message: "CAPTCHA_CHALLENGE".into() },
            ApiError::ProviderUrl {
                entry: "base.url".into(),
                problem: "names 10.0.0.1".into(),
                provider_message: Some("HTTP 404".into()),
            },
            ApiError::ProviderUnavailable("connection refused".into()),
            ApiError::Unavailable("SECRET-DETAIL".into()),
            ApiError::Internal("SECRET-DETAIL".into()),
        ];
        let arms: BTreeSet<u8> = all
            .iter()
            .map(|e| match e {
                ApiError::NotFound => 0,
                ApiError::NoSuchElement { .. } => 31,
                ApiError::NoSuchInstance => 19,
                ApiError::NoSuchEntry => 24,
                ApiError::NoMatch => 20,
                ApiError::InstanceDisabled => 21,
                ApiError::InvalidQuery(_) => 22,
                ApiError::PreconditionFailed => 23,
                ApiError::MethodNotAllowed { .. } => 1,
                ApiError::Unauthorized(_) => 2,
                ApiError::ElementTokenNeeded => 29,
                ApiError::ElementTokenRefused => 30,
                ApiError::HubMethodNotAllowed(_) => 32,
                ApiError::HubPayloadTooLarge => 33,
                ApiError::InvalidWhere(_) => 34,
                ApiError::ProviderRefused { .. } => 35,
                ApiError::InstanceInvalid { .. } => 36,
                ApiError::ProviderRateLimited { .. } => 37,
                ApiError::HubUnavailable(_) => 38,
                ApiError::ProviderBadResponse(_) => 39,
                ApiError::ForInstance(..) => 40,
                ApiError::UnsupportedMediaType(_) => 3,
                ApiError::PayloadTooLarge => 4,
                ApiError::MalformedJson(_) => 5,
                ApiError::InvalidIdempotencyKey => 6,
                ApiError::Request(RequestError::Invalid(_)) => 7,
                ApiError::Request(RequestError::UnknownElement { .. }) => 8,
                // One arm per code a 400 naming fields can carry.
                ApiError::Request(RequestError::Fields(f)) => match fields_code(f) {
                    "missing_configuration" => 9,
                    "unknown_configuration" => 10,
                    "invalid_configuration" => 11,
                    "invalid_name" => 12,
                    "invalid_tags" => 13,
                    other => panic!("{other}"),
                },
                ApiError::IdempotencyKeyInFlight => 15,
                ApiError::IdempotencyKeyReused => 16,
                ApiError::Unavailable(_) => 17,
                ApiError::Internal(_) => 18,
                ApiError::CredentialsRefused { captcha: false, .. } => 25,
                ApiError::CredentialsRefused { captcha: true, .. } => 26,
                ApiError::ProviderUrl { .. } => 27,
                ApiError::ProviderUnavailable(_) => 28,
            })
            .collect();
        assert_eq!(arms.len(), 40, "every kind of failure has a sample");
        all
    }

    #[test]
    fn the_listed_codes_are_exactly_those_answered() {
        let answered: BTreeSet<&str> = every_failure().iter().map(ApiError::code).collect();
        let listed: BTreeSet<&str> = CODES.iter().copied().collect();
        assert_eq!(answered, listed);
        assert_eq!(listed.len(), CODES.len(), "no code is listed twice");
    }

    #[test]
    fn every_failure_renders_the_error_shape() {
        for e in every_failure() {
            let (status, code) = (e.status(), e.code());
            let response = e.into_response("req-1");
            assert_eq!(response.status(), status);
            let Body::Text(text) = response.body() else { panic!("{code}: not text") };
            let v: serde_json::Value = serde_json::from_str(text).unwrap();
            assert_eq!((v["requestId"].as_str(), v["code"].as_str()), (Some("req-1"), Some(code)));
            assert!(v["message"].as_str().is_some_and(|m| !m.is_empty()), "{code}");
            let retry = response.headers().contains_key(header::RETRY_AFTER);
            assert_eq!(
                retry,
                matches!(status.as_u16(), 503 | 409 | 429),
                "{code}: Retry-After only where a retry helps"
            );
            assert!(!text.contains("SECRET-DETAIL"), "{code}: no internal detail in the body: {text}");
        }
    }

    #[test]
    fn faults_that_retrying_cannot_mend_are_500_and_the_others_503() {
        let store = |e: StoreError| ApiError::from(CreateError::Store(e)).status().as_u16();
        let seal = |e: SealError| ApiError::from(CreateError::Seal(e)).status().as_u16();
        let d = || String::from("d");
        assert_eq!(store(StoreError::Unavailable { operation: "PutItem", detail: d() }), 503);
        assert_eq!(store(StoreError::Refused { operation: "PutItem", detail: d() }), 500);
        assert_eq!(store(StoreError::Corrupt { pk: d(), detail: d() }), 500);
        assert_eq!(store(StoreError::Bug(d())), 500);
        assert_eq!(seal(SealError::Unavailable { operation: "Decrypt", detail: d() }), 503);
        assert_eq!(seal(SealError::Refused { operation: "Decrypt", detail: d() }), 500);
        assert_eq!(seal(SealError::Corrupt), 500);
        assert_eq!(seal(SealError::Random), 500);
        assert_eq!(ApiError::from(CreateError::NoFreeId).status().as_u16(), 500);
        assert_eq!(ApiError::from(CreateError::KeyInFlight).status().as_u16(), 409);
        assert_eq!(ApiError::from(CreateError::KeyReused).status().as_u16(), 422);
        assert_eq!(ApiError::from(StoreError::Corrupt { pk: d(), detail: d() }).status().as_u16(), 500);
        assert_eq!(
            ApiError::from(StoreError::Unavailable { operation: "GetItem", detail: d() }).status().as_u16(),
            503
        );
    }
}
