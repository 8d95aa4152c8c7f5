//! The errors the emulator answers with, shaped like the real API's
//! `ResponseMetadata.Error` (see `docs/api.md`, "Errors").
//!
//! Gateway errors (signature, action, throttling) carry a `CodeN`; errors of the RTC
//! service itself (`InvalidParameter*`) do not.

use hyper::StatusCode;

use volc_rtc::ErrorBody;

/// One error answer: HTTP status plus the body's `Error` object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub(crate) status: StatusCode,
    pub(crate) code: String,
    pub(crate) code_n: Option<i64>,
    pub(crate) message: String,
}

impl ApiError {
    fn gateway(status: StatusCode, code: &str, code_n: i64, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code: code.to_string(),
            code_n: Some(code_n),
            message: message.into(),
        }
    }

    fn service(status: StatusCode, code: &str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code: code.to_string(),
            code_n: None,
            message: message.into(),
        }
    }

    /// `MissingRequestInfo`, 100004, HTTP 400.
    pub(crate) fn missing_request_info(message: impl Into<String>) -> Self {
        Self::gateway(
            StatusCode::BAD_REQUEST,
            "MissingRequestInfo",
            100004,
            message,
        )
    }

    /// `InvalidTimestamp`, 100006, HTTP 403 (the docs also say 400; 403 is what the
    /// signature docs give for an expired signature).
    pub(crate) fn invalid_timestamp(message: impl Into<String>) -> Self {
        Self::gateway(StatusCode::FORBIDDEN, "InvalidTimestamp", 100006, message)
    }

    /// `InvalidActionOrVersion`, 100008, HTTP 404.
    pub(crate) fn invalid_action_or_version(message: impl Into<String>) -> Self {
        Self::gateway(
            StatusCode::NOT_FOUND,
            "InvalidActionOrVersion",
            100008,
            message,
        )
    }

    /// `InvalidAccessKey`, 100009, HTTP 401.
    pub(crate) fn invalid_access_key(message: impl Into<String>) -> Self {
        Self::gateway(
            StatusCode::UNAUTHORIZED,
            "InvalidAccessKey",
            100009,
            message,
        )
    }

    /// `SignatureDoesNotMatch`, 100010, HTTP 401.
    pub(crate) fn signature_does_not_match(message: impl Into<String>) -> Self {
        Self::gateway(
            StatusCode::UNAUTHORIZED,
            "SignatureDoesNotMatch",
            100010,
            message,
        )
    }

    /// `AccessDenied`, 100013, HTTP 403: the key is genuine but its policy does not allow
    /// the action. A gateway (IAM) refusal, hence the `CodeN`.
    pub(crate) fn access_denied(message: impl Into<String>) -> Self {
        Self::gateway(StatusCode::FORBIDDEN, "AccessDenied", 100013, message)
    }

    /// `InternalError`, 100014, HTTP 500.
    pub(crate) fn internal_error(message: impl Into<String>) -> Self {
        Self::gateway(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalError",
            100014,
            message,
        )
    }

    /// `FailToConnect`, 100015, HTTP 502.
    pub(crate) fn fail_to_connect(message: impl Into<String>) -> Self {
        Self::gateway(StatusCode::BAD_GATEWAY, "FailToConnect", 100015, message)
    }

    /// `ServiceUnavailableTemp`, HTTP 503. The reference gives it no `CodeN`.
    pub(crate) fn service_unavailable(message: impl Into<String>) -> Self {
        Self::service(
            StatusCode::SERVICE_UNAVAILABLE,
            "ServiceUnavailableTemp",
            message,
        )
    }

    /// `InternalServiceTimeout`, 100016, HTTP 504.
    pub(crate) fn internal_service_timeout(message: impl Into<String>) -> Self {
        Self::gateway(
            StatusCode::GATEWAY_TIMEOUT,
            "InternalServiceTimeout",
            100016,
            message,
        )
    }

    /// `FlowLimitExceeded`, HTTP 429. The reference gives this gateway code no `CodeN`.
    pub(crate) fn flow_limit_exceeded(message: impl Into<String>) -> Self {
        Self::service(StatusCode::TOO_MANY_REQUESTS, "FlowLimitExceeded", message)
    }

    /// `InvalidParameter` or `InvalidParameter.<sub>`, HTTP 400, no `CodeN`.
    pub(crate) fn invalid_parameter(sub: Option<&str>, message: impl Into<String>) -> Self {
        let code = match sub {
            Some(s) => format!("InvalidParameter.{s}"),
            None => "InvalidParameter".to_string(),
        };
        Self::service(StatusCode::BAD_REQUEST, &code, message)
    }

    /// The body's `ResponseMetadata.Error`.
    pub(crate) fn body(&self) -> ErrorBody {
        ErrorBody {
            code_n: self.code_n,
            code: self.code.clone(),
            message: self.message.clone(),
        }
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {}: {}",
            self.status.as_u16(),
            self.code,
            self.message
        )
    }
}

impl std::error::Error for ApiError {}
