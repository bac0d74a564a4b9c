//! Every failure the API answers, and the one place that maps each to its
//! status, `code` and message. A 5xx body says only what the client can act
//! on; the detail goes to the log with the request id.

use lambda_http::http::{header, HeaderValue, StatusCode};
use lambda_http::{Body, Response};
use serde::Serialize;

use crate::domain::configuration::{ConfigurationError, UnknownEntry};
use crate::domain::request::RequestError;

pub const MAX_BODY_BYTES: usize = 64 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("no route")]
    NotFound,
    #[error("method not allowed")]
    MethodNotAllowed { allow: &'static str },
    #[error("unauthorized")]
    Unauthorized,
    #[error("unsupported content type")]
    UnsupportedMediaType,
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
    /// DynamoDB or KMS throttled, unreachable or failing after the SDK's retries.
    #[error("unavailable: {0}")]
    Unavailable(String),
}

impl From<RequestError> for ApiError {
    fn from(e: RequestError) -> Self {
        ApiError::Request(e)
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
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::NotFound => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::MalformedJson(_) | ApiError::InvalidIdempotencyKey | ApiError::Request(_) => {
                StatusCode::BAD_REQUEST
            }
            ApiError::IdempotencyKeyInFlight => StatusCode::CONFLICT,
            ApiError::IdempotencyKeyReused => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            ApiError::NotFound => "not_found",
            ApiError::MethodNotAllowed { .. } => "method_not_allowed",
            ApiError::Unauthorized => "unauthorized",
            ApiError::UnsupportedMediaType => "unsupported_media_type",
            ApiError::PayloadTooLarge => "payload_too_large",
            ApiError::MalformedJson(_) => "malformed_json",
            ApiError::InvalidIdempotencyKey => "invalid_idempotency_key",
            ApiError::Request(RequestError::Invalid(_)) => "invalid_request",
            ApiError::Request(RequestError::UnknownElement { .. }) => "unknown_element",
            ApiError::Request(RequestError::Configuration(ConfigurationError::Entries { unknown, .. })) => {
                if unknown.is_empty() {
                    "missing_configuration"
                } else {
                    "unknown_configuration"
                }
            }
            ApiError::Request(RequestError::Configuration(_)) => "invalid_configuration",
            ApiError::Request(RequestError::Name(_)) => "invalid_name",
            ApiError::Request(RequestError::Tags(_)) => "invalid_tags",
            ApiError::IdempotencyKeyInFlight => "idempotency_key_in_flight",
            ApiError::IdempotencyKeyReused => "idempotency_key_reused",
            ApiError::Unavailable(_) => "service_unavailable",
        }
    }

    fn message(&self) -> String {
        match self {
            ApiError::NotFound => "No such resource. The API serves POST /instances.".into(),
            ApiError::MethodNotAllowed { allow } => format!("This method is not served here; allowed: {allow}."),
            ApiError::Unauthorized => {
                "Authorization must be 'User <user secret>, Organization <organization secret>' naming an enabled user of that organization.".into()
            }
            ApiError::UnsupportedMediaType => "The body must be JSON (Content-Type: application/json).".into(),
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
            ApiError::Unavailable(_) => "The service is temporarily unavailable; retry after the Retry-After delay.".into(),
        }
    }

    pub fn into_response(self, request_id: &str) -> Response<Body> {
        let (missing, unknown) = match &self {
            ApiError::Request(RequestError::Configuration(ConfigurationError::Entries { missing, unknown })) => (
                (!missing.is_empty()).then(|| missing.clone()),
                (!unknown.is_empty()).then(|| unknown.iter().map(|u| u.key.clone()).collect()),
            ),
            ApiError::Request(RequestError::UnknownElement { given, .. }) => (None, Some(vec![given.clone()])),
            _ => (None, None),
        };
        let body = ErrorBody { request_id, code: self.code(), message: self.message(), missing, unknown };
        let mut response = json_response(self.status(), serde_json::to_vec(&body).unwrap_or_default());
        let headers = response.headers_mut();
        match self {
            ApiError::MethodNotAllowed { allow } => {
                headers.insert(header::ALLOW, HeaderValue::from_static(allow));
            }
            ApiError::Unavailable(_) | ApiError::IdempotencyKeyInFlight => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            }
            _ => {}
        }
        response
    }
}

fn request_message(e: &RequestError) -> String {
    match e {
        RequestError::Invalid(why) | RequestError::Name(why) | RequestError::Tags(why) => {
            format!("{why}.")
        }
        RequestError::UnknownElement { given, known, suggestion } => {
            let hint = suggestion.as_ref().map(|s| format!(" Did you mean {s:?}?")).unwrap_or_default();
            format!("Unknown element {given:?}; known element keys: {}.{hint}", known.join(", "))
        }
        RequestError::Configuration(ConfigurationError::NotAnObject) => {
            "configuration must be an object of entry names to values.".into()
        }
        RequestError::Configuration(ConfigurationError::Invalid { key, problem }) => {
            format!("Configuration entry {key} {problem}.")
        }
        RequestError::Configuration(ConfigurationError::Entries { missing, unknown }) => {
            let mut parts = Vec::new();
            if !missing.is_empty() {
                parts.push(format!("Missing required configuration entries: {}.", missing.join(", ")));
            }
            if !unknown.is_empty() {
                let named: Vec<String> = unknown.iter().map(describe_unknown).collect();
                parts.push(format!("Unknown configuration entries: {}.", named.join(", ")));
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
