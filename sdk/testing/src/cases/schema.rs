//! The parts of the case-file JSON Schema that serde's attributes cannot express: the two forms
//! of `config`, the error kinds, and which expectation fields go together.
//!
//! Each rule here mirrors one check of [`super::parse`], so an editor using the schema flags a
//! file before `bulkhead plugin test` would refuse it.

use schemars::{Schema, SchemaGenerator, json_schema};
use serde_json::{Value, json};

use super::parse::ANY_REPORTED;

/// `config`: a JSON object (the plugin's `[plugins.config]` table) or, legacy, a string; `null`
/// is the same as leaving it out.
pub(super) fn config(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "description": "What the plugin's `config` import returns: a JSON object (the operator's `[plugins.config]` table, serialized as the daemon does) or, legacy, a string passed as is.",
        "type": ["object", "string", "null"]
    })
}

/// `expect.error`: one of the runtime's error kinds, or `plugin-error` for any error the plugin
/// reports itself.
pub(super) fn error_kind(_: &mut SchemaGenerator) -> Schema {
    let mut kinds: Vec<&str> = bulkhead_runtime::Error::KINDS.to_vec();
    kinds.push(ANY_REPORTED);
    json_schema!({
        "description": "The error kind the call must fail with instead of deciding; `plugin-error` matches any error the plugin reports itself (`invalid-config`, `unsupported`, `internal`).",
        "anyOf": [{"type": "string", "enum": kinds}, {"type": "null"}]
    })
}

/// The rules `parse::validate` checks on an expectation: exactly one of `verdict` and `error`;
/// `mutations` only with a verdict; `exact` only with `mutations`; no `reason-contains` with
/// an allow. `null` counts as absent, as it does for serde.
pub(super) fn expectation_rules(schema: &mut Schema) {
    let present = |field: &str| json!({"required": [field], "properties": {field: {"not": {"type": "null"}}}});
    let rules: Value = json!([
        {"oneOf": [present("verdict"), present("error")]},
        {"if": present("mutations"), "then": present("verdict")},
        {
            "if": {"required": ["exact"], "properties": {"exact": {"const": true}}},
            "then": present("mutations")
        },
        {
            "if": {"required": ["verdict"], "properties": {"verdict": {"const": "allow"}}},
            "then": {"not": present("reason-contains")}
        }
    ]);
    schema.insert("allOf".into(), rules);
}

#[cfg(test)]
mod tests {
    use super::super::CaseFile;

    #[test]
    fn schema_keeps_the_parsers_rules() {
        let schema = schemars::schema_for!(CaseFile);
        let value = schema.as_value();
        assert_eq!(value["additionalProperties"], false);
        assert_eq!(value["properties"]["cases"]["minItems"], 1);
        assert_eq!(value["required"], serde_json::json!(["cases"]));
        let expectation = &value["$defs"]["Expectation"];
        assert_eq!(expectation["additionalProperties"], false);
        assert_eq!(expectation["allOf"].as_array().unwrap().len(), 4);
        let kinds = &expectation["properties"]["error"]["anyOf"][0]["enum"];
        for kind in ["timeout", "trap", "invalid-config", "plugin-error"] {
            assert!(
                kinds.as_array().unwrap().iter().any(|k| k == kind),
                "{kind}"
            );
        }
        // The container is the core view, referenced rather than copied.
        assert!(value["$defs"]["ContainerView"].is_object());
    }
}
