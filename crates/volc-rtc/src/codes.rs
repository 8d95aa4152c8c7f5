//! The API's error codes and what each means for a caller: one list, so retrying and
//! stopping can never disagree about a code (`docs/api.md`, "Errors").

/// What an API error code says about the run, in one place (`docs/api.md`, "Errors").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodeClass {
    /// The same request may pass later: throttling, a server or gateway failure.
    Retry,
    /// This request is refused (its parameters, or one app's permission); others may
    /// pass, so the run goes on.
    Refused,
    /// No request of the run can pass: credentials, the signature's time, the action,
    /// or the account's permission. The run stops sending.
    StopsEverything,
}

impl CodeClass {
    /// The class of `code`, or `None` for a code the API does not document (then the
    /// HTTP status decides: 429 and 5xx are retried).
    pub fn of(code: &str) -> Option<CodeClass> {
        let family = code.split('.').next().unwrap_or(code);
        match family {
            "FlowLimitExceeded" | "AccountFlowLimitExceeded" | "InternalError" => {
                Some(CodeClass::Retry)
            }
            "ServiceUnavailableTemp" | "InternalServiceTimeout" | "FailToConnect" => {
                Some(CodeClass::Retry)
            }
            "InvalidParameter" => Some(CodeClass::Refused),
            // Refused for one app only: the pipeline's other apps may still pass.
            "AccessDenied" if code == "AccessDenied.NoPermissionForApp" => Some(CodeClass::Refused),
            "AccessDenied"
            | "SignatureDoesNotMatch"
            | "InvalidAccessKey"
            | "MissingRequestInfo"
            | "InvalidActionOrVersion"
            | "InvalidTimestamp" => Some(CodeClass::StopsEverything),
            _ => None,
        }
    }
}
