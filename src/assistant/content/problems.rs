//! What can be wrong with a prompts folder, and the errors of loading and rendering it.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use crate::assistant::knowledge::EmbedError;

/// What is wrong with a prompt folder, one rule per variant.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProblemKind {
    #[error("cannot read: {0}")]
    Unreadable(String),
    #[error("invalid TOML: {0}")]
    Toml(String),
    #[error("invalid CSV: {0}")]
    Csv(String),
    #[error("template error: {0}")]
    Template(String),
    #[error("unknown variable `{variable}` (this template can use: {allowed})")]
    UnknownVariable { variable: String, allowed: String },
    #[error("required template {0} is missing")]
    MissingTemplate(String),
    #[error("duplicate id `{id}` (first defined at {first})")]
    DuplicateId { id: String, first: String },
    #[error("malformed price {value}: write a decimal with a dot, like \"12.90\"")]
    BadPrice { value: String },
    #[error("unknown policy `{0}`")]
    UnknownPolicy(String),
    #[error("{0}")]
    Invalid(String),
}

/// One problem, located by file and (when known) 1-based line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub file: PathBuf,
    pub line: Option<usize>,
    pub kind: ProblemKind,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{}: {}", self.file.display(), line, self.kind),
            None => write!(f, "{}: {}", self.file.display(), self.kind),
        }
    }
}

/// Failures of loading or rendering prompts.
#[derive(Debug, Clone, thiserror::Error)]
pub enum PromptError {
    /// The folder has problems; each names its file and line. Nothing was loaded.
    #[error("{} problem(s) in the prompts folder:\n{}", .0.len(), ProblemList(.0))]
    Invalid(Vec<Problem>),
    /// A template failed at render time (should not happen after validation).
    #[error("rendering {template} failed: {message}")]
    Render { template: String, message: String },
    /// A draft asked for a product the catalogue does not have.
    #[error("no product with id `{0}` in the catalogue")]
    UnknownProduct(String),
    /// The embedding model failed on the knowledge.
    #[error(transparent)]
    Embedding(#[from] Arc<EmbedError>),
}

struct ProblemList<'a>(&'a [Problem]);

impl fmt::Display for ProblemList<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, problem) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "  {problem}")?;
        }
        Ok(())
    }
}

impl PromptError {
    /// The located problems, if this is a validation failure.
    pub fn problems(&self) -> &[Problem] {
        match self {
            PromptError::Invalid(problems) => problems,
            _ => &[],
        }
    }
}
