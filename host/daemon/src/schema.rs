//! JSON Schemas of what plugin authors read and write: the container view, a plugin's decision
//! and a case file.
//!
//! They are generated from the serde types themselves (`schemars` reads the same `rename_all`,
//! `deny_unknown_fields` and `default` attributes), so a schema cannot promise a field the parser
//! refuses. `bulkhead schema <name>` prints one; copies live in `sdk/schema/` for editors and
//! other languages, and this module's test fails when one of them differs from the generator.
//!
//! ```
//! use bulkhead_daemon::schema::Schema;
//!
//! let text = Schema::Decision.generate();
//! let schema: serde_json::Value = serde_json::from_str(&text).unwrap();
//! assert_eq!(schema["title"], "Decision");
//! ```

use bulkhead_core::decision::Decision;
use bulkhead_core::view::ContainerView;
use bulkhead_sdk_testing::cases::CaseFile;

/// One of the published schemas.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Schema {
    /// A [`ContainerView`]: a case's `container`, `bulkhead eval --container`, `bulkhead view`.
    ContainerView,
    /// A plugin's [`Decision`], and the mutations a case expects.
    Decision,
    /// A case file for `bulkhead plugin test`.
    CaseFile,
}

impl Schema {
    /// Every schema, in the order the docs list them.
    pub const ALL: [Schema; 3] = [Schema::ContainerView, Schema::Decision, Schema::CaseFile];

    /// The name on the command line and in the file name (`container-view`).
    pub fn name(self) -> &'static str {
        match self {
            Schema::ContainerView => "container-view",
            Schema::Decision => "decision",
            Schema::CaseFile => "case-file",
        }
    }

    /// The schema as pretty-printed JSON with a final newline, exactly as committed.
    pub fn generate(self) -> String {
        let schema = match self {
            Schema::ContainerView => schemars::schema_for!(ContainerView),
            Schema::Decision => schemars::schema_for!(Decision),
            Schema::CaseFile => schemars::schema_for!(CaseFile),
        };
        // Serializing a `serde_json::Value` cannot fail.
        let mut text = serde_json::to_string_pretty(&schema).unwrap_or_default();
        text.push('\n');
        text
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use serde_json::Value;

    use super::*;

    #[test]
    fn committed_schemas_match_the_generator() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../sdk/schema");
        let stale: Vec<String> = Schema::ALL
            .into_iter()
            .filter(|schema| {
                let path = dir.join(format!("{}.json", schema.name()));
                std::fs::read_to_string(path).ok() != Some(schema.generate())
            })
            .map(|schema| {
                format!(
                    "cargo run -q -p bulkhead-daemon -- schema {0} > sdk/schema/{0}.json",
                    schema.name()
                )
            })
            .collect();
        assert!(
            stale.is_empty(),
            "sdk/schema/ is stale or incomplete; regenerate from the workspace root with:\n{}",
            stale.join("\n")
        );
    }

    /// Every key the serializer writes is one the schema names: the serde renames made it into
    /// the schema.
    #[test]
    fn schema_properties_are_the_serialized_names() {
        let schema: Value = serde_json::from_str(&Schema::ContainerView.generate()).unwrap();
        let view = serde_json::to_value(ContainerView::default()).unwrap();
        for key in view.as_object().unwrap().keys() {
            assert!(schema["properties"].get(key).is_some(), "{key}");
        }
        assert_eq!(schema["additionalProperties"], false);
        assert!(schema["properties"].get("pod-sandbox-id").is_some());
        let decision: Value = serde_json::from_str(&Schema::Decision.generate()).unwrap();
        let mutation = decision["$defs"]["Mutation"].to_string();
        for kind in ["drop-capabilities", "set-no-new-privileges", "mount-secret"] {
            assert!(mutation.contains(kind), "{kind}");
        }
    }
}
