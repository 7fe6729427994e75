//! Error answers: `application/problem+json` (RFC 9457) keyed by the library's stable code.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use phiscrub::{Error, Limit};

/// A refusal: its status, a stable machine code and a one-line reason that names no patient
/// data (library messages quote no metadata values; they may name a format or a limit).
#[derive(Debug, Clone)]
pub struct Problem {
    /// The HTTP status.
    pub status: StatusCode,
    /// The stable code (`malformed`, `limits`, `unauthorized`, ...).
    pub code: &'static str,
    /// The reason, one line.
    pub detail: String,
    /// Seconds a client should wait before trying again (`503`).
    pub retry_after: Option<u32>,
}

impl Problem {
    /// A refusal with no retry hint.
    pub fn new(status: StatusCode, code: &'static str, detail: impl Into<String>) -> Problem {
        Problem {
            status,
            code,
            detail: detail.into(),
            retry_after: None,
        }
    }

    /// The service is busy or past a deadline: try again later.
    pub fn unavailable(code: &'static str, detail: impl Into<String>) -> Problem {
        Problem {
            retry_after: Some(1),
            ..Problem::new(StatusCode::SERVICE_UNAVAILABLE, code, detail)
        }
    }

    /// The answer to a scrub that failed. Nothing of the image is returned.
    pub fn from_scrub(e: &Error) -> Problem {
        let status = match e {
            // The request is wrong, not the image: an empty body, a box outside the picture, a
            // region id to keep that the picture does not have.
            Error::Empty | Error::Region { .. } | Error::UnknownRegion { .. } => {
                StatusCode::BAD_REQUEST
            }
            Error::UnknownFormat => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Error::Limits {
                limit: Limit::InputBytes,
                ..
            } => StatusCode::PAYLOAD_TOO_LARGE,
            Error::Limits {
                limit: Limit::Timeout,
                ..
            } => return Problem::unavailable(e.code(), e.to_string()),
            Error::Runtime(_) | Error::RuntimeNotFound { .. } | Error::Model(_) | Error::Io(_) => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
            // Everything else is this file: it cannot be scrubbed, so it is refused whole.
            _ => StatusCode::UNPROCESSABLE_ENTITY,
        };
        Problem::new(status, e.code(), e.to_string())
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let body = serde_json::json!({
            "type": format!("urn:phiscrub:error:{}", self.code),
            "title": self.status.canonical_reason().unwrap_or("error"),
            "status": self.status.as_u16(),
            "code": self.code,
            "detail": self.detail,
        });
        let mut r = (self.status, body.to_string()).into_response();
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if let Some(s) = self.retry_after {
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(s));
        }
        if self.status == StatusCode::UNAUTHORIZED {
            r.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"phiscrub\""),
            );
        }
        r.extensions_mut().insert(Code(self.code));
        r
    }
}

/// The error code of an answer, for the access log and the metrics.
#[derive(Debug, Clone, Copy)]
pub struct Code(pub &'static str);
