//! The one error type of `bulkhead-sdk-testing`.

use std::path::PathBuf;

/// Why a plugin could not be built, loaded or tested.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The runtime refused the plugin or a call failed.
    #[error(transparent)]
    Runtime(#[from] bulkhead_runtime::Error),
    /// A file could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A case file is malformed. `case` is empty for file-level problems, `field` when the
    /// problem is not in one field.
    #[error("{path}: {}{}{reason}", prefixed("case ", case), prefixed("", field))]
    CaseFile {
        /// The case file.
        path: PathBuf,
        /// The case: `#index` (from 1), followed by its quoted name when it has one.
        case: String,
        /// The JSON path of the offending field inside the case (or the file), e.g.
        /// `container.pod.name` or `expect.mutations[1]`.
        field: String,
        /// What is wrong.
        reason: String,
    },
    /// A case run was given no case files. A CI step that tests nothing must not pass.
    #[error("no case files given: there is nothing to test")]
    NoCaseFiles,
    /// A JSON container view given inline could not be parsed.
    #[error("invalid container view: {0}")]
    View(serde_json::Error),
    /// Building the plugin component with cargo failed.
    #[error("building the plugin component failed: {reason}")]
    Build {
        /// What went wrong (cargo's exit status, or the missing artifact).
        reason: String,
    },
}

/// `"{label}{text}: "`, or nothing when `text` is empty.
fn prefixed(label: &str, text: &str) -> String {
    if text.is_empty() {
        String::new()
    } else {
        format!("{label}{text}: ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn case_file_errors_name_file_case_and_field() {
        let err = |case: &str, field: &str| {
            Error::CaseFile {
                path: "c.json".into(),
                case: case.into(),
                field: field.into(),
                reason: "bad".into(),
            }
            .to_string()
        };
        assert_eq!(
            err("#2 \"web\"", "container.pod"),
            "c.json: case #2 \"web\": container.pod: bad"
        );
        assert_eq!(err("#1", ""), "c.json: case #1: bad");
        assert_eq!(err("", "cases"), "c.json: cases: bad");
        assert_eq!(err("", ""), "c.json: bad");
    }
}
