//! One error type for every handler, rendered as RFC 9457 problem+json.

use actix_web::http::{header, StatusCode};
use actix_web::{HttpResponse, ResponseError};
use crm_db::RepoError;
use crm_domain::FieldError;
use serde::Serialize;
use utoipa::ToSchema;

/// A problem detail (RFC 9457).
#[derive(Debug, Serialize, serde::Deserialize, ToSchema)]
#[schema(example = json!({"type": "/problems/validation", "title": "Validation failed", "status": 422, "detail": "1 field is invalid", "errors": [{"field": "email", "code": "invalid_email", "message": "is not a valid e-mail address"}]}))]
pub struct Problem {
    /// A URI reference naming the kind of problem.
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    /// The offending fields, for validation problems.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<ProblemField>,
    /// For conflicts: the id of the record that already holds the value.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub existing_id: Option<String>,
    /// For 403: the permission that was missing.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub missing_permission: Option<String>,
    /// For a record merged into another (301, 404): the id of the record it became.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merged_into: Option<String>,
}

#[derive(Debug, Serialize, serde::Deserialize, ToSchema)]
pub struct ProblemField {
    pub field: String,
    pub code: String,
    pub message: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Unauthorized(String),
    #[error("missing permission {0}")]
    Forbidden(String),
    #[error("{0}")]
    ForbiddenAction(String),
    #[error("not found")]
    NotFound,
    /// The record was merged into `survivor`: a read is redirected there (301), anything
    /// else is a 404 naming it.
    #[error("this record was merged into {survivor}")]
    Merged {
        survivor: String,
        location: String,
        redirect: bool,
    },
    #[error("{message}")]
    Conflict {
        message: String,
        existing_id: Option<String>,
    },
    #[error("{method} is not allowed here; use {allow}")]
    MethodNotAllowed { method: String, allow: String },
    #[error("{0}")]
    PreconditionFailed(String),
    #[error("request body exceeds {0} bytes")]
    PayloadTooLarge(usize),
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("validation failed")]
    Validation(Vec<FieldError>),
    /// An operation not applied because another of its atomic batch failed.
    #[error("{0}")]
    FailedDependency(String),
    /// The caller's request budget for the window is spent (see `ratelimit`).
    #[error("{limit} requests per {window} s are allowed; retry in {retry_after} s")]
    TooManyRequests {
        limit: u32,
        window: u32,
        retry_after: u64,
    },
    /// Too many failed sign-ins in a row locked the account's password sign-in.
    #[error("too many failed sign-ins: password sign-in to this account is locked; retry in {retry_after} s")]
    SignInLocked { retry_after: u64 },
    #[error("{0}")]
    Unavailable(String),
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    pub fn field(field: &str, code: &str, message: impl Into<String>) -> Self {
        ApiError::Validation(vec![FieldError::new(field, code, message)])
    }
    pub fn internal(e: impl std::fmt::Display) -> Self {
        ApiError::Internal(e.to_string())
    }
    /// The error of a nested object: validation errors name their field under `prefix`
    /// (`amount` → `deal.amount`); other errors are unchanged.
    pub fn within(self, prefix: &str) -> Self {
        match self {
            ApiError::Validation(errs) => ApiError::Validation(
                errs.into_iter()
                    .map(|e| FieldError {
                        field: format!("{prefix}.{}", e.field),
                        ..e
                    })
                    .collect(),
            ),
            other => other,
        }
    }

    fn slug_title(&self) -> (&'static str, &'static str) {
        match self {
            ApiError::BadRequest(_) => ("bad-request", "Malformed request"),
            ApiError::Unauthorized(_) => ("unauthorized", "Authentication required"),
            ApiError::Forbidden(_) | ApiError::ForbiddenAction(_) => ("forbidden", "Not allowed"),
            ApiError::NotFound => ("not-found", "Not found"),
            ApiError::Merged { .. } => ("merged", "Merged into another record"),
            ApiError::Conflict { .. } => ("conflict", "Conflict"),
            ApiError::MethodNotAllowed { .. } => ("method-not-allowed", "Method not allowed"),
            ApiError::PreconditionFailed(_) => ("precondition-failed", "Precondition failed"),
            ApiError::PayloadTooLarge(_) => ("payload-too-large", "Request body too large"),
            ApiError::UnsupportedMediaType(_) => {
                ("unsupported-media-type", "Unsupported media type")
            }
            ApiError::Validation(_) => ("validation", "Validation failed"),
            ApiError::FailedDependency(_) => ("failed-dependency", "Not applied"),
            ApiError::TooManyRequests { .. } => ("rate-limited", "Too many requests"),
            ApiError::SignInLocked { .. } => ("sign-in-locked", "Too many failed sign-ins"),
            ApiError::Unavailable(_) => ("unavailable", "Service unavailable"),
            ApiError::Internal(_) => ("internal", "Internal server error"),
        }
    }

    pub fn problem(&self) -> Problem {
        let (slug, title) = self.slug_title();
        let status = self.status_code().as_u16();
        let detail = match self {
            ApiError::Validation(errs) => {
                let n = errs.len();
                format!(
                    "{n} field{} invalid: {}",
                    if n == 1 { " is" } else { "s are" },
                    errs.iter()
                        .map(|e| e.field.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            }
            ApiError::Forbidden(p) => format!("this requires the `{p}` permission"),
            ApiError::NotFound => "no such record in this workspace".to_string(),
            // Never show internals; the cause is logged.
            ApiError::Internal(_) => "an unexpected error occurred; it has been logged".to_string(),
            other => other.to_string(),
        };
        Problem {
            kind: format!("/problems/{slug}"),
            title: title.to_string(),
            status,
            detail,
            errors: match self {
                ApiError::Validation(errs) => errs
                    .iter()
                    .map(|e| ProblemField {
                        field: e.field.clone(),
                        code: e.code.clone(),
                        message: e.message.clone(),
                    })
                    .collect(),
                _ => Vec::new(),
            },
            existing_id: match self {
                ApiError::Conflict { existing_id, .. } => existing_id.clone(),
                _ => None,
            },
            missing_permission: match self {
                ApiError::Forbidden(p) => Some(p.clone()),
                _ => None,
            },
            merged_into: match self {
                ApiError::Merged { survivor, .. } => Some(survivor.clone()),
                _ => None,
            },
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) | ApiError::ForbiddenAction(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound => StatusCode::NOT_FOUND,
            ApiError::Merged { redirect: true, .. } => StatusCode::MOVED_PERMANENTLY,
            ApiError::Merged { .. } => StatusCode::NOT_FOUND,
            ApiError::Conflict { .. } => StatusCode::CONFLICT,
            ApiError::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::PreconditionFailed(_) => StatusCode::PRECONDITION_FAILED,
            ApiError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::Validation(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::FailedDependency(_) => StatusCode::FAILED_DEPENDENCY,
            ApiError::TooManyRequests { .. } | ApiError::SignInLocked { .. } => {
                StatusCode::TOO_MANY_REQUESTS
            }
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        if let ApiError::Internal(cause) = self {
            tracing::error!(%cause, "request failed");
        }
        let mut res = HttpResponse::build(self.status_code());
        res.content_type("application/problem+json");
        if matches!(self, ApiError::Unauthorized(_)) {
            res.insert_header((header::WWW_AUTHENTICATE, "Bearer"));
        }
        if let ApiError::Merged {
            location,
            redirect: true,
            ..
        } = self
        {
            res.insert_header((header::LOCATION, location.as_str()));
        }
        if let ApiError::MethodNotAllowed { allow, .. } = self {
            res.insert_header((header::ALLOW, allow.as_str()));
        }
        if matches!(self, ApiError::Unavailable(_)) {
            res.insert_header((header::RETRY_AFTER, "1"));
        }
        if let ApiError::TooManyRequests { retry_after, .. }
        | ApiError::SignInLocked { retry_after } = self
        {
            res.insert_header((header::RETRY_AFTER, retry_after.to_string()));
        }
        res.json(self.problem())
    }
}

impl From<RepoError> for ApiError {
    fn from(e: RepoError) -> Self {
        match e {
            RepoError::NotFound => ApiError::NotFound,
            RepoError::Conflict {
                message,
                existing_id,
                ..
            } => ApiError::Conflict {
                message,
                existing_id,
            },
            RepoError::VersionMismatch { expected, current } => {
                ApiError::PreconditionFailed(format!(
                    "If-Match names version {expected}, but the record is at version {current}"
                ))
            }
            RepoError::Invalid(errs) => ApiError::Validation(errs),
            RepoError::Db(e) => db_error(e),
        }
    }
}

fn db_error(e: diesel::result::Error) -> ApiError {
    use diesel::result::{DatabaseErrorKind, Error};
    match &e {
        Error::NotFound => ApiError::NotFound,
        Error::DatabaseError(DatabaseErrorKind::ForeignKeyViolation, _) => ApiError::field(
            "id",
            "not_found",
            "a referenced record does not exist in this workspace",
        ),
        Error::DatabaseError(DatabaseErrorKind::UniqueViolation, _) => ApiError::Conflict {
            message: "a unique value is already taken".into(),
            existing_id: None,
        },
        Error::DatabaseError(DatabaseErrorKind::SerializationFailure, _) => {
            ApiError::Unavailable("the database is busy; retry".into())
        }
        Error::DatabaseError(DatabaseErrorKind::Unknown, info)
            if info.message().contains("database is locked") =>
        {
            ApiError::Unavailable("the database is busy; retry".into())
        }
        _ => ApiError::internal(e),
    }
}

impl From<diesel::result::Error> for ApiError {
    fn from(e: diesel::result::Error) -> Self {
        db_error(e)
    }
}

impl From<diesel::r2d2::PoolError> for ApiError {
    fn from(e: diesel::r2d2::PoolError) -> Self {
        tracing::warn!(error = %e, "database pool exhausted");
        ApiError::Unavailable("no database connection is free; retry".into())
    }
}

impl From<actix_web::error::BlockingError> for ApiError {
    fn from(e: actix_web::error::BlockingError) -> Self {
        ApiError::internal(e)
    }
}

impl From<Vec<FieldError>> for ApiError {
    fn from(errs: Vec<FieldError>) -> Self {
        ApiError::Validation(errs)
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

/// The error statuses of read endpoints, for the OpenAPI document.
#[derive(utoipa::IntoResponses)]
#[allow(dead_code)]
pub enum ReadErrors {
    /// Malformed request (query string, cursor).
    #[response(status = 400, content_type = "application/problem+json")]
    BadRequest(Problem),
    /// Missing or invalid credentials.
    #[response(status = 401, content_type = "application/problem+json")]
    Unauthorized(Problem),
    /// The caller lacks the named permission.
    #[response(status = 403, content_type = "application/problem+json")]
    Forbidden(Problem),
    /// No such record in this workspace.
    #[response(status = 404, content_type = "application/problem+json")]
    NotFound(Problem),
    /// Invalid parameters or filter (unknown field or operator, bad value).
    #[response(status = 422, content_type = "application/problem+json")]
    Unprocessable(Problem),
    /// No database connection was free in time; retry.
    #[response(status = 503, content_type = "application/problem+json")]
    Unavailable(Problem),
}

/// The error statuses of write endpoints, for the OpenAPI document.
#[derive(utoipa::IntoResponses)]
#[allow(dead_code)]
pub enum WriteErrors {
    /// Malformed JSON or headers.
    #[response(status = 400, content_type = "application/problem+json")]
    BadRequest(Problem),
    /// Missing or invalid credentials.
    #[response(status = 401, content_type = "application/problem+json")]
    Unauthorized(Problem),
    /// The caller lacks the named permission.
    #[response(status = 403, content_type = "application/problem+json")]
    Forbidden(Problem),
    /// No such record in this workspace.
    #[response(status = 404, content_type = "application/problem+json")]
    NotFound(Problem),
    /// A unique value is taken (`existing_id` names the holder), or an idempotent request with the same key is still running.
    #[response(status = 409, content_type = "application/problem+json")]
    Conflict(Problem),
    /// `If-Match` names a version that is no longer current.
    #[response(status = 412, content_type = "application/problem+json")]
    PreconditionFailed(Problem),
    /// The body exceeds the configured limit.
    #[response(status = 413, content_type = "application/problem+json")]
    TooLarge(Problem),
    /// The body is not `application/json`.
    #[response(status = 415, content_type = "application/problem+json")]
    UnsupportedMediaType(Problem),
    /// Validation failed; `errors` names each field; or an `Idempotency-Key` was reused with another body.
    #[response(status = 422, content_type = "application/problem+json")]
    Unprocessable(Problem),
    /// No database connection was free in time; retry.
    #[response(status = 503, content_type = "application/problem+json")]
    Unavailable(Problem),
}
