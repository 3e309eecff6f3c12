//! The services' one error: what went wrong, sorted by the answer it deserves. Every service call returns
//! it; HTTP maps each kind to a status once (`http::error`), the commands print it. A kind says what the
//! caller can do about it (fix the request, look elsewhere, wait, ask the operator), not which service
//! found it, so a service that calls another (invoices → the costs query, budgets → reports) passes the
//! error on as it is.

use std::time::Duration;

use crate::model::token::RuleToken;

/// Everything a service call can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// The named thing does not exist for this caller (another account's answers the same).
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The request is wrong: one sentence per problem, naming the field.
    #[error("{}", .0.join("; "))]
    Invalid(Vec<String>),
    /// The caller may not do this (a managed account asking for an MSP's work).
    #[error("{0}")]
    Forbidden(String),
    /// The request conflicts with what exists (an overlap, a name in use, a sync already running).
    #[error("{0}")]
    Conflict(String),
    /// The file is larger than the configured limit, in bytes.
    #[error("the file is larger than the upload limit of {0} bytes")]
    TooLarge(u64),
    /// The request is well-formed but the data cannot be processed as it is: a file's rows (`Row N: …`), an
    /// amount past `Decimal128(38, 18)`, a stored rule that no longer passes, several currencies.
    #[error("{}", .0.join("; "))]
    Unprocessable(Vec<String>),
    /// The caller has too much under way or sent too much lately; trying later works.
    #[error("{0}")]
    TooMany(String),
    /// A server costd depends on (SMTP) refused or failed; nothing was recorded.
    #[error("{0}")]
    Upstream(String),
    /// The work ran past its time limit and was stopped; trying later or asking for less may work.
    #[error("{0}")]
    Unavailable(String),
    /// Anything unexpected (the store, the engine, I/O): logged with its cause, never shown.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

/// A service call's result.
pub type Result<T, E = ServiceError> = std::result::Result<T, E>;

impl ServiceError {
    /// A request with one problem.
    pub fn invalid(problem: impl Into<String>) -> Self {
        ServiceError::Invalid(vec![problem.into()])
    }

    /// Data that cannot be processed, for one reason.
    pub fn unprocessable(reason: impl Into<String>) -> Self {
        ServiceError::Unprocessable(vec![reason.into()])
    }

    /// A rule stored under older, looser checks that no longer passes them: it must be updated.
    pub fn invalid_rule(token: &RuleToken, problems: &[String]) -> Self {
        ServiceError::unprocessable(format!(
            "billing rule {token} is no longer valid ({}); update it",
            problems.join("; ")
        ))
    }

    /// The costs query ran past `limit` and was stopped.
    pub fn timed_out(limit: Duration) -> Self {
        ServiceError::Unavailable(format!(
            "the costs query took longer than {} s and was stopped; narrow its dates or filter",
            limit.as_secs()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kind_reads_as_the_sentence_a_caller_is_shown() {
        assert_eq!(ServiceError::NotFound("managed account").to_string(), "managed account not found");
        assert_eq!(ServiceError::Invalid(vec!["a".into(), "b".into()]).to_string(), "a; b");
        assert_eq!(
            ServiceError::timed_out(Duration::from_secs(30)).to_string(),
            "the costs query took longer than 30 s and was stopped; narrow its dates or filter"
        );
        assert_eq!(ServiceError::TooLarge(10).to_string(), "the file is larger than the upload limit of 10 bytes");
    }
}
