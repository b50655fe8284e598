use crm_domain::FieldError;

/// What a repository call can fail with, in terms the API maps to statuses.
#[derive(Debug, thiserror::Error)]
pub enum RepoError {
    #[error("not found")]
    NotFound,
    /// A unique value is taken; names the field and the record holding it.
    #[error("{message}")]
    Conflict {
        field: String,
        existing_id: Option<String>,
        message: String,
    },
    /// `If-Match` named a version that is no longer current.
    #[error("version {expected} is not current (current: {current})")]
    VersionMismatch { expected: i32, current: i32 },
    #[error("invalid input")]
    Invalid(Vec<FieldError>),
    #[error(transparent)]
    Db(#[from] diesel::result::Error),
}

impl RepoError {
    pub fn invalid(field: &str, code: &str, message: impl Into<String>) -> Self {
        RepoError::Invalid(vec![FieldError::new(field, code, message)])
    }
}

pub type RepoResult<T> = Result<T, RepoError>;
