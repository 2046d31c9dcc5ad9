//! Entry points: check policy text, one file, or many files.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::error::{PolicyError, PolicyErrors};
use crate::model::Policy;
use crate::parse::{parse_document, split_documents};
use crate::validate::validate;

/// Parses and validates every YAML document of `text`; each document is one policy.
///
/// On failure returns all problems: the first structural problem of each
/// document that does not parse, and every semantic problem of those that do.
/// In a file with several documents, paths start with `documents[N].`.
pub fn check_str(text: &str) -> Result<Vec<Policy>, Vec<PolicyError>> {
    let documents = split_documents(text);
    if documents.is_empty() {
        return Err(vec![PolicyError::new("<file>", "no policy document found")]);
    }
    let several = documents.len() > 1;
    let mut policies = Vec::with_capacity(documents.len());
    let mut errors = Vec::new();
    for (position, document) in documents.iter().enumerate() {
        let found = match parse_document(document) {
            Ok(policy) => {
                let found = validate(&policy);
                policies.push(policy);
                found
            }
            Err(error) => vec![error],
        };
        errors.extend(found.into_iter().map(|mut error| {
            if several {
                error.path = document_path(position, &error.path);
            }
            error
        }));
    }
    if errors.is_empty() {
        Ok(policies)
    } else {
        Err(errors)
    }
}

fn document_path(position: usize, path: &str) -> String {
    if path == "<document>" {
        format!("documents[{position}]")
    } else {
        format!("documents[{position}].{path}")
    }
}

/// Reads, parses and validates one policy file.
pub fn check_file(path: impl AsRef<Path>) -> Result<Vec<Policy>, PolicyErrors> {
    let path = path.as_ref();
    let failed = |errors| PolicyErrors {
        file: path.to_path_buf(),
        errors,
    };
    let text = std::fs::read_to_string(path).map_err(|error| {
        failed(vec![PolicyError::new(
            "<file>",
            format!("cannot read: {error}"),
        )])
    })?;
    check_str(&text).map_err(failed)
}

/// Result of checking one file.
#[derive(Debug, Clone, PartialEq)]
pub struct FileReport {
    pub file: PathBuf,
    pub outcome: Result<Vec<Policy>, PolicyErrors>,
}

/// Result of checking several files, as `vigil policy check FILE...` prints it.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckReport {
    pub files: Vec<FileReport>,
}

impl CheckReport {
    /// True when every file is valid; the CLI exits non-zero otherwise.
    pub fn is_ok(&self) -> bool {
        self.files.iter().all(|report| report.outcome.is_ok())
    }

    pub fn error_count(&self) -> usize {
        self.files
            .iter()
            .filter_map(|report| report.outcome.as_ref().err())
            .map(|errors| errors.errors.len())
            .sum()
    }
}

/// Checks each file independently.
pub fn check_files<P: AsRef<Path>>(paths: &[P]) -> CheckReport {
    CheckReport {
        files: paths
            .iter()
            .map(|path| FileReport {
                file: path.as_ref().to_path_buf(),
                outcome: check_file(path),
            })
            .collect(),
    }
}

/// One line per valid file (`FILE: ok: NAME (KIND)`) and one per problem
/// (`FILE: PATH: message`).
impl fmt::Display for CheckReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for report in &self.files {
            match &report.outcome {
                Ok(policies) => {
                    let names: Vec<String> = policies
                        .iter()
                        .map(|policy| format!("{} ({})", policy.name(), policy.kind))
                        .collect();
                    writeln!(f, "{}: ok: {}", report.file.display(), names.join(", "))?;
                }
                Err(errors) => writeln!(f, "{errors}")?,
            }
        }
        Ok(())
    }
}
