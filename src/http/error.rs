//! Errors as responses: an HTML page for readers, JSON for the API and `.json` alternates.

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::api;
use crate::Error;
use crate::report::html;

/// An error as a response: client errors carry their (Swedish) message, server errors are
/// logged and answered with a generic one. Pages get an HTML page, the API and `.json`
/// alternates JSON.
pub(super) struct AppError {
    pub(super) error: Error,
    pub(super) json: bool,
    /// A status decided by the HTTP layer itself (413, 415), not by the error's kind.
    pub(super) status: Option<StatusCode>,
}

impl AppError {
    pub(super) fn json(error: Error) -> AppError {
        AppError {
            error,
            json: true,
            status: None,
        }
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let (status, title, message) = match (&self.error, self.status) {
            (e, Some(s)) => (s, "Felaktig begäran", e.to_string()),
            (Error::NotFound(m), _) => (StatusCode::NOT_FOUND, "Sidan finns inte", m.clone()),
            (Error::Usage(m), _) => (StatusCode::BAD_REQUEST, "Felaktig begäran", m.clone()),
            (Error::Rejected(r), _) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "Filen avvisades",
                format!(
                    "{}: filen avvisades, inget sparades ({} fel)",
                    r.file,
                    r.problems.len()
                ),
            ),
            (Error::Unauthorized(m), _) => {
                (StatusCode::UNAUTHORIZED, "Ingen behörighet", m.clone())
            }
            (Error::Forbidden(m), _) => (StatusCode::FORBIDDEN, "Ingen behörighet", m.clone()),
            (
                Error::Busy {
                    message, client, ..
                },
                _,
            ) => (
                if *client {
                    StatusCode::TOO_MANY_REQUESTS
                } else {
                    StatusCode::SERVICE_UNAVAILABLE
                },
                "Försök igen senare",
                message.clone(),
            ),
            (Error::Unavailable(m), _) => {
                tracing::error!(error = %m, "lake unavailable");
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    "Tillfälligt otillgänglig",
                    format!("{m}; inget sparades, försök igen senare"),
                )
            }
            (e, _) => {
                tracing::error!(error = %e, "request failed");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Något gick fel",
                    "Ett internt fel inträffade. Felet är loggat; försök igen senare.".into(),
                )
            }
        };
        let retry_after = match &self.error {
            Error::Busy {
                retry_after_secs, ..
            } => Some(*retry_after_secs),
            _ => None,
        };
        let mut res = if self.json {
            let (file, problems) = match self.error {
                Error::Rejected(r) => (Some(r.file), r.problems),
                _ => (None, Vec::new()),
            };
            let body = api::ApiError {
                status: status.as_u16(),
                error: message,
                file,
                problems,
            };
            (status, axum::Json(body)).into_response()
        } else {
            (
                status,
                [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
                html::error_page(status.as_u16(), title, &message),
            )
                .into_response()
        };
        if let Some(v) =
            retry_after.and_then(|s| header::HeaderValue::from_str(&s.to_string()).ok())
        {
            res.headers_mut().insert(header::RETRY_AFTER, v);
        }
        if status == StatusCode::UNAUTHORIZED {
            res.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer"),
            );
        }
        res
    }
}

pub(super) fn page(e: Error) -> AppError {
    AppError {
        error: e,
        json: false,
        status: None,
    }
}
