//! The errors of parsing and rendering a template.

/// A template that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{name}:{line}:{column}: {message}")]
pub struct ParseError {
    /// The template's name (destination path or annotation).
    pub name: String,
    /// 1-based line.
    pub line: usize,
    /// 1-based byte column.
    pub column: usize,
    /// What is wrong.
    pub message: String,
}

/// A render that failed. Names the template and position; never contains
/// a secret value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{name}:{line}:{column}: executing at <{context}>: {message}")]
pub struct ExecError {
    /// The template's name.
    pub name: String,
    /// 1-based line of the failing action.
    pub line: usize,
    /// 1-based byte column of the failing action.
    pub column: usize,
    /// The failing part of the action, as written in the template.
    pub context: String,
    /// What failed, e.g. `map has no entry for key "password"`.
    pub message: String,
}
