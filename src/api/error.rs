//! What can go wrong with one call, and whether trying again can help
//! (`docs/api.md`, "Errors").

use volc_rtc::CodeClass;

/// One failed call.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ApiError {
    /// The API answered with `ResponseMetadata.Error`.
    #[error("API error {code} (HTTP {status}): {message}{}", request_id.as_ref().map(|r| format!(" [request {r}]")).unwrap_or_default())]
    Api {
        /// The HTTP status, which may be 200: the error document decides.
        status: u16,
        /// `Error.Code`, e.g. `InvalidParameter.OutofTimeRange`: decides whether to retry.
        code: String,
        /// `Error.Message`, the API's own explanation.
        message: String,
        /// `ResponseMetadata.RequestId`, to quote to Volcengine support.
        request_id: Option<String>,
    },
    /// A non-success status without a readable error document.
    #[error("HTTP {status} without an API error document: {snippet}")]
    Http {
        /// The HTTP status: 429 and 5xx are worth retrying.
        status: u16,
        /// The start of the body, control characters removed, to show what answered.
        snippet: String,
    },
    /// No answer at all: the host could not be resolved or reached, the TLS handshake
    /// failed, or the request timed out before a response began.
    #[error("no answer from {host}: {kind} ({detail})")]
    Unreachable {
        /// The endpoint's host (and port), the thing to check.
        host: String,
        /// What kind of failure, in words that point at the fix.
        kind: Unreachable,
        /// The underlying error chain, without the URL.
        detail: String,
    },
    /// The answer began but could not be read to its end (a reset or a cut body).
    #[error("transport error: {0}")]
    Transport(String),
    /// A success status whose body is not a valid response.
    #[error("malformed response: {0}")]
    Decode(String),
    /// The body was larger than we accept.
    #[error("response larger than {limit} bytes: refused")]
    TooLarge {
        /// The cap that was hit, in bytes.
        limit: usize,
    },
    /// A request header could not be built from the credentials (never shows the value).
    #[error(
        "the {0} header cannot be built: the credentials must be printable ASCII, exactly as issued"
    )]
    Header(&'static str),
}

/// Why a request got no answer, as the user fixes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unreachable {
    /// The host name does not resolve: a typo in `api.endpoint`, or no DNS.
    Dns,
    /// Nothing listens there, or a firewall refuses: the port, or the network.
    Refused,
    /// The TLS handshake failed: a proxy, a certificate, or `http` vs `https`.
    Tls,
    /// No answer in time: the network, a proxy, or `--request-timeout`.
    Timeout,
    /// Anything else before an answer.
    Other,
}

impl std::fmt::Display for Unreachable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Unreachable::Dns => {
                "the host name does not resolve (DNS); check api.endpoint and the network"
            }
            Unreachable::Refused => {
                "the connection was refused; check api.endpoint's host and port, and the network"
            }
            Unreachable::Tls => {
                "the TLS handshake failed; check the endpoint's scheme, a proxy or its certificate"
            }
            Unreachable::Timeout => "it timed out; check the network or a proxy",
            Unreachable::Other => "the connection failed; check api.endpoint and the network",
        })
    }
}

impl ApiError {
    /// The API error code, if the API sent one.
    pub(crate) fn code(&self) -> Option<&str> {
        match self {
            ApiError::Api { code, .. } => Some(code),
            _ => None,
        }
    }

    /// Whether the same request may succeed later.
    pub fn is_retryable(&self) -> bool {
        match self {
            ApiError::Api { status, code, .. } => {
                is_retryable_code(code)
                    || (!is_fatal_code(code) && (*status == 429 || *status >= 500))
            }
            ApiError::Http { status, .. } => *status == 429 || *status >= 500,
            ApiError::Unreachable { .. } | ApiError::Transport(_) | ApiError::Decode(_) => true,
            ApiError::TooLarge { .. } | ApiError::Header(_) => false,
        }
    }

    /// Whether the server throttled us: the pacer should slow down.
    pub(crate) fn is_throttle(&self) -> bool {
        match self {
            ApiError::Api { status, code, .. } => {
                *status == 429
                    || code.starts_with("FlowLimitExceeded")
                    || code.starts_with("AccountFlowLimitExceeded")
            }
            ApiError::Http { status, .. } => *status == 429,
            _ => false,
        }
    }

    /// Whether no other request of the run can succeed either (see [`CodeClass`]).
    pub(crate) fn stops_everything(&self) -> bool {
        self.code().and_then(CodeClass::of) == Some(CodeClass::StopsEverything)
    }

    /// The request's window was refused for its time range (`OutofTimeRange`): with a
    /// clock that is off, the window is asked again on the API's clock.
    pub(crate) fn is_window(&self) -> bool {
        self.code().is_some_and(|c| c.contains("OutofTimeRange"))
    }

    /// The signature's time was refused: re-sign once, then ask the user to check the clock.
    pub(crate) fn is_clock(&self) -> bool {
        self.code() == Some("InvalidTimestamp")
    }
}

/// Which failed attempts of one request are tried again: a retryable error, and once a
/// refused signature time (the next attempt is signed anew, reading the clock again;
/// a second refusal asks the user to check the clock).
#[derive(Debug, Default)]
pub(crate) struct RetryRule {
    resigned: bool,
}

impl RetryRule {
    /// Whether the attempt that failed with `e` is tried again.
    pub(crate) fn allows(&mut self, e: &ApiError) -> bool {
        if e.is_clock() && !self.resigned {
            self.resigned = true;
            return true;
        }
        e.is_retryable()
    }
}

fn is_retryable_code(code: &str) -> bool {
    CodeClass::of(code) == Some(CodeClass::Retry)
}

fn is_fatal_code(code: &str) -> bool {
    matches!(
        CodeClass::of(code),
        Some(CodeClass::Refused | CodeClass::StopsEverything)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_documented_code_has_one_class_and_the_run_stops_on_the_account_wide_ones() {
        use CodeClass::*;
        for (code, class) in [
            ("FlowLimitExceeded", Retry),
            ("FlowLimitExceeded.QPSOverLimit", Retry),
            ("AccountFlowLimitExceeded", Retry),
            ("InternalError", Retry),
            ("InternalError.Database", Retry),
            ("ServiceUnavailableTemp", Retry),
            ("InternalServiceTimeout", Retry),
            ("FailToConnect", Retry),
            ("InvalidParameter", Refused),
            ("InvalidParameter.OutofTimeRange", Refused),
            ("InvalidParameter.NotExistAppId", Refused),
            ("AccessDenied.NoPermissionForApp", Refused),
            ("AccessDenied", StopsEverything),
            ("AccessDenied.ServiceNotEnabled", StopsEverything),
            // A new account-wide denial stops the run too, not only fails one request.
            ("AccessDenied.SomethingNew", StopsEverything),
            ("SignatureDoesNotMatch", StopsEverything),
            ("InvalidAccessKey", StopsEverything),
            ("MissingRequestInfo", StopsEverything),
            ("InvalidActionOrVersion", StopsEverything),
            ("InvalidTimestamp", StopsEverything),
        ] {
            assert_eq!(CodeClass::of(code), Some(class), "{code}");
            let e = api(400, code);
            assert_eq!(e.stops_everything(), class == StopsEverything, "{code}");
            assert_eq!(e.is_retryable(), class == Retry, "{code}");
        }
        assert_eq!(CodeClass::of("SomethingElse"), None);
        // An undocumented code: the status decides.
        assert!(api(503, "SomethingElse").is_retryable());
        assert!(!api(400, "SomethingElse").is_retryable());
    }

    fn api(status: u16, code: &str) -> ApiError {
        ApiError::Api {
            status,
            code: code.into(),
            message: "m".into(),
            request_id: None,
        }
    }

    #[test]
    fn classes_follow_the_reference() {
        for (status, code) in [
            (429, "FlowLimitExceeded"),
            (200, "FlowLimitExceeded.QPSOverLimit"),
            (429, "AccountFlowLimitExceeded"),
            (500, "InternalError"),
            (200, "InternalError.Timeout"),
            (503, "ServiceUnavailableTemp"),
            (504, "InternalServiceTimeout"),
            (502, "FailToConnect"),
            (500, "SomethingNew"),
        ] {
            assert!(api(status, code).is_retryable(), "{code}");
        }
        for (status, code) in [
            (401, "SignatureDoesNotMatch"),
            (401, "InvalidAccessKey"),
            (403, "AccessDenied"),
            (200, "AccessDenied.NoPermissionForApp"),
            (400, "InvalidParameter.OutofTimeRange"),
            (400, "MissingRequestInfo"),
            (403, "InvalidTimestamp"),
            (500, "InvalidParameter"),
        ] {
            assert!(!api(status, code).is_retryable(), "{code}");
        }
        assert!(ApiError::Transport("reset".into()).is_retryable());
        assert!(
            ApiError::Http {
                status: 502,
                snippet: String::new()
            }
            .is_retryable()
        );
        assert!(
            !ApiError::Http {
                status: 404,
                snippet: String::new()
            }
            .is_retryable()
        );
        assert!(api(200, "FlowLimitExceeded.QPSOverLimit").is_throttle());
        assert!(api(403, "InvalidTimestamp").is_clock());
    }

    #[test]
    fn message_names_code_and_message() {
        let e = ApiError::Api {
            status: 401,
            code: "InvalidAccessKey".into(),
            message: "The access key is invalid".into(),
            request_id: Some("r1".into()),
        };
        assert_eq!(
            e.to_string(),
            "API error InvalidAccessKey (HTTP 401): The access key is invalid [request r1]"
        );
    }
}
