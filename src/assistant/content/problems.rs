//! What can be wrong with a prompts folder, and the errors of loading and rendering it.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use crate::assistant::knowledge::EmbedError;

/// What is wrong with a prompt folder, one rule per variant.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProblemKind {
    /// The file could not be read (the I/O error, in words).
    #[error("cannot read: {0}")]
    Unreadable(String),
    /// The file is not valid TOML.
    #[error("invalid TOML: {0}")]
    Toml(String),
    /// The file is not valid CSV.
    #[error("invalid CSV: {0}")]
    Csv(String),
    /// A template does not parse.
    #[error("template error: {0}")]
    Template(String),
    /// A template uses a variable its caller does not pass.
    #[error("unknown variable `{variable}` (this template can use: {allowed})")]
    UnknownVariable {
        /// The variable used.
        variable: String,
        /// The variables this template is given, comma-separated.
        allowed: String,
    },
    /// A template the assistant renders is not in the folder.
    #[error("required template {0} is missing")]
    MissingTemplate(String),
    /// Two entries of one kind share an id.
    #[error("duplicate id `{id}` (first defined at {first})")]
    DuplicateId {
        /// The id.
        id: String,
        /// Where it was first defined (file and line).
        first: String,
    },
    /// A catalogue price that is not a decimal with a dot.
    #[error("malformed price {value}: write a decimal with a dot, like \"12.90\"")]
    BadPrice {
        /// The price as written.
        value: String,
    },
    /// An entry refers to a policy id the folder does not define.
    #[error("unknown policy `{0}`")]
    UnknownPolicy(String),
    /// Any other rule broken; the text says which.
    #[error("{0}")]
    Invalid(String),
}

/// One problem, located by file and (when known) 1-based line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The file, as found in the folder.
    pub file: PathBuf,
    /// The 1-based line, when known.
    pub line: Option<usize>,
    /// What is wrong.
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
    Render {
        /// The template's name.
        template: String,
        /// What the template engine said.
        message: String,
    },
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
