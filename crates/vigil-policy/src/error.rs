//! Error types: every problem names the field path it was found at.

use std::fmt;
use std::path::PathBuf;

/// One problem found in a policy document.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct PolicyError {
    /// Field path such as `spec.kprobes[0].selectors[1].matchArgs[0].operator`.
    /// Problems that concern the whole file or document use `<file>` or `<document>`.
    pub path: String,
    /// What is wrong, the offending value and what is allowed.
    pub message: String,
    /// 1-based line and column in the file, known for YAML syntax and type errors.
    pub location: Option<(u32, u32)>,
}

impl PolicyError {
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            message: message.into(),
            location: None,
        }
    }
}

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)?;
        if let Some((line, column)) = self.location {
            write!(f, " (line {line}, column {column})")?;
        }
        Ok(())
    }
}

/// All problems found in one file. `Display` prints one `FILE: PATH: message` per line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct PolicyErrors {
    pub file: PathBuf,
    pub errors: Vec<PolicyError>,
}

impl fmt::Display for PolicyErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (position, error) in self.errors.iter().enumerate() {
            if position > 0 {
                writeln!(f)?;
            }
            write!(f, "{}: {error}", self.file.display())?;
        }
        Ok(())
    }
}

/// Builder for field paths in the `a.b[0].c` notation used by Kubernetes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FieldPath(String);

impl FieldPath {
    pub(crate) fn root(name: &str) -> Self {
        Self(name.to_owned())
    }

    pub(crate) fn field(&self, name: &str) -> Self {
        if self.0.is_empty() {
            Self(name.to_owned())
        } else {
            Self(format!("{}.{name}", self.0))
        }
    }

    pub(crate) fn index(&self, position: usize) -> Self {
        Self(format!("{}[{position}]", self.0))
    }
}

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Accumulates errors so that validation reports all of them, not just the first.
#[derive(Debug, Default)]
pub(crate) struct Errors(pub(crate) Vec<PolicyError>);

impl Errors {
    pub(crate) fn push(&mut self, path: &FieldPath, message: impl Into<String>) {
        self.0.push(PolicyError::new(path.to_string(), message));
    }
}
