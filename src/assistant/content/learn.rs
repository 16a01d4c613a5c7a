//! Adding a FAQ entry to a prompts folder, as an admin accepting a team answer does: the
//! entry is appended to [`LEARNED_FILE`] in the normal `[[faq]]` format, but only after the
//! whole folder with it has passed the same validation as `shopkeep check-prompts`. A
//! refused entry leaves every file as it was. The running bot serves the entry after a
//! reload.

use std::path::{Path, PathBuf};

use serde::Serialize;

use super::problems::{Problem, PromptError};
use super::PromptSet;

/// The knowledge file, relative to the prompts folder, that accepted answers are added to.
pub const LEARNED_FILE: &str = "knowledge/from-the-team.toml";

/// The first lines of [`LEARNED_FILE`] when it is created.
const HEADER: &str = "# FAQ entries written from answers the team gave in hand-off tickets\n\
# (`shopkeep knowledge accept`, or the Add to FAQ button on a resolved ticket).\n\
# Edit them like any other entry; `shopkeep check-prompts` validates the folder.\n";

/// A FAQ entry to add.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewFaqEntry {
    /// The entry id; unique among the FAQ entries of the folder.
    pub id: String,
    /// The canonical question (the citation title).
    pub question: String,
    /// The answer, quoted to customers as written.
    pub answer: String,
    /// Where it comes from, written as a comment above the entry ("from ticket 12").
    pub provenance: String,
}

/// Why an entry was not added; the folder is unchanged in every case.
#[derive(Debug, thiserror::Error)]
pub enum LearnError {
    /// The folder with the entry does not validate; each problem names its file and line
    /// in the real folder.
    #[error("the entry was not added: {0}")]
    Invalid(#[source] PromptError),
    /// A file could not be read, copied or written.
    #[error("could not {action} {}: {source}", path.display())]
    Io {
        /// What was being done ("read", "write", "replace", …).
        action: &'static str,
        /// The file or folder.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}

#[derive(Serialize)]
struct FaqFile<'a> {
    faq: [FaqFields<'a>; 1],
}

#[derive(Serialize)]
struct FaqFields<'a> {
    id: &'a str,
    question: &'a str,
    answer: &'a str,
}

/// The `[[faq]]` block for `entry`, with its provenance comment above it.
fn faq_block(entry: &NewFaqEntry) -> String {
    let fields = FaqFile {
        faq: [FaqFields {
            id: entry.id.trim(),
            question: entry.question.trim(),
            answer: entry.answer.trim(),
        }],
    };
    let toml = toml::to_string(&fields).unwrap_or_default();
    let comment: String = entry
        .provenance
        .lines()
        .map(|line| format!("# {line}\n"))
        .collect();
    format!("{comment}{toml}")
}

/// Adds `entry` to `dir`'s [`LEARNED_FILE`] (created when missing), after validating a copy
/// of the folder with it; returns the file written. On any problem nothing is written.
pub fn add_faq_entry(dir: &Path, entry: &NewFaqEntry) -> Result<PathBuf, LearnError> {
    let target = dir.join(LEARNED_FILE);
    let current = match std::fs::read_to_string(&target) {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => HEADER.to_string(),
        Err(source) => return Err(io("read", &target, source)),
    };
    let mut updated = current.trim_end().to_string();
    updated.push_str("\n\n");
    updated.push_str(&faq_block(entry));

    let staging = Staging::copy_of(dir)?;
    let staged_file = staging.path.join(LEARNED_FILE);
    std::fs::write(&staged_file, &updated).map_err(|e| io("write", &staged_file, e))?;
    if let Err(error) = PromptSet::load(&staging.path) {
        return Err(LearnError::Invalid(relocated(error, &staging.path, dir)));
    }
    drop(staging);

    // Written beside the target, then renamed over it: a reload never reads half a file.
    // The `.tmp` extension keeps the loader from reading it as knowledge meanwhile.
    let partial = target.with_extension("toml.tmp");
    std::fs::write(&partial, &updated).map_err(|e| io("write", &partial, e))?;
    std::fs::rename(&partial, &target).map_err(|e| {
        let _ = std::fs::remove_file(&partial);
        io("replace", &target, e)
    })?;
    Ok(target)
}

fn io(action: &'static str, path: &Path, source: std::io::Error) -> LearnError {
    LearnError::Io {
        action,
        path: path.to_path_buf(),
        source,
    }
}

/// The problems of a staged copy, pointing at the same files in the real folder.
fn relocated(error: PromptError, staged: &Path, real: &Path) -> PromptError {
    match error {
        PromptError::Invalid(problems) => PromptError::Invalid(
            problems
                .into_iter()
                .map(|problem| Problem {
                    file: problem
                        .file
                        .strip_prefix(staged)
                        .map(|relative| real.join(relative))
                        .unwrap_or(problem.file),
                    ..problem
                })
                .collect(),
        ),
        other => other,
    }
}

/// A private copy of a prompts folder in the system's temporary directory, deleted when
/// dropped.
struct Staging {
    path: PathBuf,
}

impl Staging {
    fn copy_of(dir: &Path) -> Result<Self, LearnError> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let path =
            std::env::temp_dir().join(format!("shopkeep-learn-{}-{nanos}", std::process::id()));
        let staging = Self { path };
        copy_dir(dir, &staging.path)?;
        Ok(staging)
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

fn copy_dir(from: &Path, to: &Path) -> Result<(), LearnError> {
    std::fs::create_dir_all(to).map_err(|e| io("create", to, e))?;
    for entry in std::fs::read_dir(from).map_err(|e| io("read", from, e))? {
        let entry = entry.map_err(|e| io("read", from, e))?;
        let source = entry.path();
        let target = to.join(entry.file_name());
        if source.is_dir() {
            copy_dir(&source, &target)?;
        } else {
            std::fs::copy(&source, &target).map_err(|e| io("copy", &source, e))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::assistant::content::test_support::broken_copy;

    fn entry(id: &str) -> NewFaqEntry {
        NewFaqEntry {
            id: id.into(),
            question: "Do you offer gift wrapping?".into(),
            answer: "Yes: tick \"gift wrap\" at checkout.\nIt is free.".into(),
            provenance: "From ticket 7".into(),
        }
    }

    #[test]
    fn an_accepted_entry_is_written_in_the_faq_format_and_loads() {
        let (_temp, dir) = broken_copy(|_| {});
        let written = add_faq_entry(&dir, &entry("team-1")).unwrap();
        assert!(written.ends_with(LEARNED_FILE));
        let text = std::fs::read_to_string(&written).unwrap();
        assert!(text.starts_with("# FAQ entries"), "{text}");
        assert!(
            text.contains("# From ticket 7\n[[faq]]\nid = \"team-1\""),
            "{text}"
        );
        let set = PromptSet::load(&dir).unwrap();
        let added = set.knowledge.faq.iter().find(|e| e.id == "team-1").unwrap();
        assert_eq!(
            added.answer,
            "Yes: tick \"gift wrap\" at checkout.\nIt is free."
        );
        // A second entry goes into the same file, below the first.
        add_faq_entry(&dir, &entry("team-2")).unwrap();
        let set = PromptSet::load(&dir).unwrap();
        assert!(set.knowledge.faq.iter().any(|e| e.id == "team-1"));
        assert!(set.knowledge.faq.iter().any(|e| e.id == "team-2"));
    }

    #[test]
    fn an_entry_that_breaks_the_folder_is_refused_and_nothing_changes() {
        let (_temp, dir) = broken_copy(|_| {});
        add_faq_entry(&dir, &entry("team-1")).unwrap();
        let before = std::fs::read_to_string(dir.join(LEARNED_FILE)).unwrap();
        let error = add_faq_entry(&dir, &entry("team-1")).unwrap_err();
        let text = error.to_string();
        assert!(text.contains("duplicate id `team-1`"), "{text}");
        let LearnError::Invalid(invalid) = &error else {
            panic!("{error}")
        };
        assert!(
            invalid.problems()[0].file.starts_with(&dir),
            "the problem names the real folder: {text}"
        );
        assert_eq!(
            std::fs::read_to_string(dir.join(LEARNED_FILE)).unwrap(),
            before
        );
        let leftovers: Vec<_> = std::fs::read_dir(dir.join("knowledge"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .filter(|name| name.to_string_lossy().ends_with(".tmp"))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
    }
}
