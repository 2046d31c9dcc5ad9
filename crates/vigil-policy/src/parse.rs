//! YAML text to [`Policy`] values: strict structure, CRD defaults, and errors
//! that carry both the field path and the line/column.

use serde_saphyr::{DuplicateKeyPolicy, Error as YamlError};

use crate::error::PolicyError;
use crate::model::Policy;

/// One YAML document of a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Document<'a> {
    /// Number of lines of the file before this document's text.
    pub(crate) line_offset: u32,
    pub(crate) text: &'a str,
}

/// Splits a YAML stream at its `---` document markers.
///
/// A `---` at column 0 always starts a new document in YAML (document markers
/// may not appear inside content at column 0), so splitting by lines is exact.
/// Documents holding only comments or whitespace are dropped.
pub(crate) fn split_documents(text: &str) -> Vec<Document<'_>> {
    let mut documents = Vec::new();
    let mut start_byte = 0;
    let mut start_line = 0u32;
    let mut byte = 0;
    for (line_number, line) in (0u32..).zip(text.split_inclusive('\n')) {
        let content = line.trim_end_matches(['\n', '\r']);
        let is_marker = content
            .strip_prefix("---")
            .is_some_and(|rest| rest.is_empty() || rest.starts_with([' ', '\t']));
        if is_marker && byte > start_byte {
            documents.push(Document {
                line_offset: start_line,
                text: &text[start_byte..byte],
            });
            start_byte = byte;
            start_line = line_number;
        }
        byte += line.len();
    }
    documents.push(Document {
        line_offset: start_line,
        text: &text[start_byte..],
    });
    documents.retain(|document| has_content(document.text));
    documents
}

/// True when the text has anything besides markers, comments and blank lines.
fn has_content(text: &str) -> bool {
    text.lines().any(|line| {
        let line = line.trim();
        !(line.is_empty() || line.starts_with('#') || line == "---" || line == "...")
    })
}

/// Deserializes one document. Reports the first structural problem: serde
/// cannot continue past it.
pub(crate) fn parse_document(document: &Document<'_>) -> Result<Policy, PolicyError> {
    let options = serde_saphyr::options! {
        with_snippet: false,
        duplicate_keys: DuplicateKeyPolicy::Error,
    };
    // serde_path_to_error records where deserialization stopped; the error itself
    // must go back through serde-saphyr so that it gains a location and no
    // "trailing content" error is raised for the unread rest of the document.
    let mut failed_at = String::new();
    serde_saphyr::with_deserializer_from_str_with_options(document.text, options, |deserializer| {
        serde_path_to_error::deserialize::<_, Policy>(deserializer).map_err(|error| {
            failed_at = error.path().to_string();
            error.into_inner()
        })
    })
    .map_err(|error| yaml_error(document, failed_at, &error))
}

fn yaml_error(document: &Document<'_>, path: String, error: &YamlError) -> PolicyError {
    let error = error.without_snippet();
    let (path, message) = describe(path, error);
    PolicyError {
        path: if path.is_empty() || path == "." {
            "<document>".to_owned()
        } else {
            path
        },
        message,
        location: error.location().and_then(|location| {
            let line = u32::try_from(location.line()).ok()?;
            let column = u32::try_from(location.column()).ok()?;
            (line > 0).then(|| (line + document.line_offset, column))
        }),
    }
}

/// Rewords serde's messages to name the bad value and what is allowed.
fn describe(path: String, error: &YamlError) -> (String, String) {
    match error {
        YamlError::SerdeUnknownField {
            field, expected, ..
        } => {
            // The recorded path ends at the unknown key itself.
            (
                path,
                format!(
                    "unknown field \"{field}\"; allowed fields: {}",
                    expected.join(", ")
                ),
            )
        }
        YamlError::SerdeUnknownVariant {
            variant, expected, ..
        } => (
            path,
            format!(
                "unknown value \"{variant}\"; allowed: {}",
                expected.join(", ")
            ),
        ),
        YamlError::SerdeMissingField { field, .. } => {
            let field_path = if path.is_empty() || path == "." {
                (*field).to_owned()
            } else {
                format!("{path}.{field}")
            };
            (field_path, "required field is missing".to_owned())
        }
        YamlError::SerdeInvalidType {
            unexpected,
            expected,
            ..
        }
        | YamlError::SerdeInvalidValue {
            unexpected,
            expected,
            ..
        } => (
            path,
            format!("invalid value {unexpected}; expected {expected}"),
        ),
        YamlError::InvalidScalar { ty, .. } => (path, format!("value is not a valid {ty}")),
        YamlError::DuplicateMappingKey { key, .. } => {
            // serde_path_to_error cannot name a key it rejected; it records "?".
            let parent = path.strip_suffix(".?").unwrap_or(&path).to_owned();
            let message = match key {
                Some(key) => format!("duplicate key \"{key}\""),
                None => "duplicate key".to_owned(),
            };
            (parent, message)
        }
        other => (path, strip_location(&other.to_string())),
    }
}

/// serde-saphyr appends " at line L column C" to some messages; the location
/// is reported separately.
fn strip_location(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(position) => message[..position].to_owned(),
        None => message.to_owned(),
    }
}
