//! The typed API error: what a caller needs to decide between "rejected with reasons", "try again
//! later" and "the write may or may not have happened" ([`ApiError::OutcomeUnknown`]). Also the one
//! reader of the server's error bodies (`{"error"}`, `{"message","attributes"}`, `{"errors":[…]}`,
//! text, HTML, empty). No variant ever holds the token: errors name the endpoint (method and path,
//! which carry the account and contact ids but never credentials).
use serde_json::Value;

/// How a request failed below HTTP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TransportKind {
    /// The connection could not be made (refused, DNS, connect timeout): nothing was sent.
    Connect,
    /// No response within the timeout after the request was sent: it may have been processed.
    Timeout,
    /// The connection was reset or closed before a complete response arrived.
    Closed,
    /// Anything else below HTTP (treated like `Closed`: the request may have been sent).
    Other,
}

impl TransportKind {
    /// True when the request certainly never reached the server.
    pub(crate) fn nothing_sent(self) -> bool {
        matches!(self, TransportKind::Connect)
    }
}

impl std::fmt::Display for TransportKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            TransportKind::Connect => "could not connect",
            TransportKind::Timeout => "timed out waiting for the response",
            TransportKind::Closed => "connection closed before the response",
            TransportKind::Other => "transport error",
        })
    }
}

/// Everything that can go wrong talking to the contacts API.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The server refused the request with reasons (422 validation, missing parameter, other 4xx).
    /// `attributes` lists the fields named by a validation error (`["email", "phone_number"]`).
    #[error("{endpoint}: rejected ({status}): {message}")]
    Rejected {
        endpoint: String,
        status: u16,
        message: String,
        attributes: Vec<String>,
    },
    /// The token is missing or invalid (401).
    #[error("{endpoint}: unauthorized ({status}): {message}")]
    Unauthorized {
        endpoint: String,
        status: u16,
        message: String,
    },
    /// The token is valid but may not do this (403, or Chatwoot's 401 "You are not authorized").
    #[error("{endpoint}: forbidden ({status}): {message}")]
    Forbidden {
        endpoint: String,
        status: u16,
        message: String,
    },
    /// Unknown contact, contact of another account, or unknown account (404).
    #[error("{endpoint}: not found: {message}")]
    NotFound { endpoint: String, message: String },
    /// Still rate limited (429) after every allowed wait.
    #[error("{endpoint}: still rate limited after {attempts} attempts")]
    RateLimited { endpoint: String, attempts: u32 },
    /// A server error (5xx, including HTML or empty bodies) on a request that is safe to repeat,
    /// after the retries.
    #[error("{endpoint}: server error ({status}) after {attempts} attempts: {message}")]
    Server {
        endpoint: String,
        status: u16,
        message: String,
        attempts: u32,
    },
    /// The request failed below HTTP (after the retries) and had no effect that matters: a read,
    /// or a connection that was never made.
    #[error("{endpoint}: {kind} after {attempts} attempts: {message}")]
    Transport {
        endpoint: String,
        kind: TransportKind,
        message: String,
        attempts: u32,
    },
    /// A write that may have reached the server and been applied: a 5xx, a timeout after sending or
    /// a connection closed without a response. A create or note in this state is never re-sent by
    /// the client: look the key up first.
    #[error("{endpoint}: outcome unknown (the write may have been applied): {cause}")]
    OutcomeUnknown { endpoint: String, cause: String },
    /// A 2xx body that fits no known shape; `path` is the JSON path of the offending value.
    #[error("{endpoint}: unexpected response body at `{path}`: {message}")]
    Decode {
        endpoint: String,
        path: String,
        message: String,
    },
    /// Paging ended without seeing every contact the server said it has.
    #[error("{endpoint}: listed {seen} distinct contacts but the server reports {total}")]
    Incomplete {
        endpoint: String,
        seen: u64,
        total: u64,
    },
    /// The circuit breaker is open: every attempt for the configured time (`--give-up-after`)
    /// failed with connection errors, timeouts or 5xx. Nothing more is sent; the run stops.
    #[error("{endpoint}: not sent: {message}")]
    Unreachable { endpoint: String, message: String },
    /// The client refused to send the request (it would be invalid or harmful, e.g. page 0 or an
    /// empty identifier).
    #[error("invalid request: {0}")]
    InvalidInput(String),
}

impl ApiError {
    /// Trying the same call again later may succeed, and repeating it cannot do harm.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            ApiError::RateLimited { .. } | ApiError::Server { .. } | ApiError::Transport { .. }
        )
    }

    /// A write that may or may not have been applied: look it up before doing anything else.
    pub fn is_outcome_unknown(&self) -> bool {
        matches!(self, ApiError::OutcomeUnknown { .. })
    }

    /// The row-level error code this becomes in an import report.
    pub fn error_code(&self) -> crate::model::ErrorCode {
        use crate::model::ErrorCode;
        match self {
            ApiError::Rejected { .. } | ApiError::Forbidden { .. } | ApiError::InvalidInput(_) => {
                ErrorCode::Rejected
            }
            ApiError::NotFound { .. } => ErrorCode::NotFound,
            ApiError::OutcomeUnknown { .. } => ErrorCode::OutcomeUnknown,
            _ => ErrorCode::ServerError,
        }
    }
}

/// The message and attribute list of an error body, whatever its shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ErrorBody {
    pub message: String,
    pub attributes: Vec<String>,
}

/// Read an error body: `{"error": "…"}`, `{"message": "…", "attributes": [...]}`,
/// `{"errors": ["…", …]}` (strings or objects with a message), plain text, HTML or nothing.
pub(crate) fn parse_error_body(body: &[u8]) -> ErrorBody {
    let text = String::from_utf8_lossy(body);
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return ErrorBody {
            message: "empty response body".into(),
            attributes: vec![],
        };
    }
    if let Ok(v) = serde_json::from_str::<Value>(trimmed) {
        let attributes: Vec<String> = v
            .get("attributes")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|x| x.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        let message = match (&v.get("message"), &v.get("error"), &v.get("errors")) {
            (Some(Value::String(m)), _, _) => Some(m.clone()),
            (_, Some(Value::String(e)), _) => Some(e.clone()),
            (_, _, Some(Value::Array(list))) => Some(
                list.iter()
                    .map(|e| match e {
                        Value::String(s) => s.clone(),
                        Value::Object(o) => o
                            .get("message")
                            .and_then(Value::as_str)
                            .map(str::to_owned)
                            .unwrap_or_else(|| e.to_string()),
                        other => other.to_string(),
                    })
                    .collect::<Vec<_>>()
                    .join("; "),
            ),
            _ => None,
        };
        if let Some(message) = message {
            return ErrorBody {
                message,
                attributes,
            };
        }
        return ErrorBody {
            message: excerpt(trimmed),
            attributes,
        };
    }
    let lower = trimmed.to_ascii_lowercase();
    if lower.starts_with("<!doctype html") || lower.starts_with("<html") {
        // An HTML error page: its title is the only useful part.
        let title = lower
            .find("<title>")
            .and_then(|s| lower[s + 7..].find("</title>").map(|e| (s + 7, s + 7 + e)))
            .map(|(s, e)| trimmed[s..e].trim().to_owned());
        return ErrorBody {
            message: match title {
                Some(t) if !t.is_empty() => format!("HTML error page: {t}"),
                _ => "HTML error page".into(),
            },
            attributes: vec![],
        };
    }
    ErrorBody {
        message: excerpt(trimmed),
        attributes: vec![],
    }
}

/// At most 200 characters of a body, on one line.
pub(crate) fn excerpt(s: &str) -> String {
    let one_line: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if one_line.chars().count() > 200 {
        format!("{}…", one_line.chars().take(200).collect::<String>())
    } else {
        one_line
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_documented_error_shape_yields_its_message() {
        let v = parse_error_body(
            br#"{"message": "Email has already been taken, Phone number has already been taken", "attributes": ["email", "phone_number"]}"#,
        );
        assert_eq!(v.attributes, vec!["email", "phone_number"]);
        assert!(v.message.starts_with("Email has already been taken"));
        assert_eq!(
            parse_error_body(br#"{"error": "Invalid Access Token"}"#).message,
            "Invalid Access Token"
        );
        assert_eq!(
            parse_error_body(
                br#"{"errors": ["You need to sign in or sign up before continuing."]}"#
            )
            .message,
            "You need to sign in or sign up before continuing."
        );
        assert_eq!(parse_error_body(b"Retry later\n").message, "Retry later");
        assert_eq!(parse_error_body(b"").message, "empty response body");
        assert_eq!(
            parse_error_body(b"<!DOCTYPE html><html><head><title>We're sorry, but something went wrong (500)</title></head></html>").message,
            "HTML error page: We're sorry, but something went wrong (500)"
        );
        assert_eq!(
            parse_error_body(br#"{"status": 500, "error": "Internal Server Error"}"#).message,
            "Internal Server Error"
        );
    }
}
