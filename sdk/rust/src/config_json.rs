//! Parsing a plugin's JSON config into its own `Config` type, with errors that name the key at
//! fault. Behind the `config-json` feature, so plugins that read their config by hand do not pull
//! in serde.

use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::PluginError;

/// Parses a plugin config, naming the offending key when serde's own message does not.
///
/// serde names unknown keys but not the key behind a type error ("invalid type: string, expected
/// a boolean"); re-parsing each top-level key on its own finds the culprit. `T` must default
/// every field (`#[serde(default)]`) for that to work.
///
/// Empty (or all-whitespace) text is `T::default()`. Errors are
/// [`PluginError::InvalidConfig`], prefixed with `plugin` ("`<plugin>: config key `<key>`:
/// <serde's message>`").
///
/// ```
/// use bulkhead_sdk::{PluginError, parse_config};
///
/// #[derive(Default, serde::Deserialize)]
/// #[serde(default, deny_unknown_fields)]
/// struct Config {
///     strict: bool,
/// }
///
/// let err = parse_config::<Config>("demo", r#"{"strict": "yes"}"#).err().unwrap();
/// assert!(matches!(err, PluginError::InvalidConfig(r) if r.starts_with("demo: config key `strict`")));
/// ```
pub fn parse_config<T: DeserializeOwned + Default>(
    plugin: &str,
    text: &str,
) -> Result<T, PluginError> {
    if text.trim().is_empty() {
        return Ok(T::default());
    }
    let invalid = |reason: String| PluginError::InvalidConfig(format!("{plugin}: {reason}"));
    let value: Value = serde_json::from_str(text)
        .map_err(|e| invalid(format!("config is not a JSON document: {e}")))?;
    serde_json::from_value(value.clone()).map_err(|err| {
        let culprit = value.as_object().and_then(|map| {
            map.iter()
                .find(|(key, v)| {
                    let alone = serde_json::Map::from_iter([((*key).clone(), (*v).clone())]);
                    serde_json::from_value::<T>(Value::Object(alone)).is_err()
                })
                .map(|(key, _)| key.clone())
        });
        match culprit {
            Some(key) => invalid(format!("config key `{key}`: {err}")),
            None => invalid(format!("config: {err}")),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Default, PartialEq, Eq, Deserialize)]
    #[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
    struct Config {
        enabled: bool,
        namespaces: Vec<String>,
    }

    fn error(text: &str) -> String {
        match parse_config::<Config>("demo", text) {
            Err(PluginError::InvalidConfig(reason)) => reason,
            other => panic!("expected a config error for {text}, got {other:?}"),
        }
    }

    #[test]
    fn empty_text_is_the_default() {
        assert_eq!(
            parse_config::<Config>("demo", "").unwrap(),
            Config::default()
        );
        assert_eq!(
            parse_config::<Config>("demo", " \n\t").unwrap(),
            Config::default()
        );
        assert_eq!(
            parse_config::<Config>("demo", "{}").unwrap(),
            Config::default()
        );
    }

    #[test]
    fn parses_a_valid_config() {
        let config: Config =
            parse_config("demo", r#"{"enabled": true, "namespaces": ["a"]}"#).unwrap();
        assert_eq!(
            config,
            Config {
                enabled: true,
                namespaces: vec!["a".into()],
            }
        );
    }

    #[test]
    fn type_errors_name_the_key() {
        let err = error(r#"{"namespaces": ["a"], "enabled": "yes"}"#);
        assert!(err.starts_with("demo: config key `enabled`: "), "{err}");
        assert!(err.contains("expected a boolean"), "{err}");
        let err = error(r#"{"namespaces": "a"}"#);
        assert!(err.starts_with("demo: config key `namespaces`: "), "{err}");
    }

    #[test]
    fn unknown_keys_are_named() {
        let err = error(r#"{"enable": true}"#);
        assert!(err.starts_with("demo: config key `enable`: "), "{err}");
        assert!(err.contains("unknown field `enable`"), "{err}");
    }

    #[test]
    fn non_json_and_non_objects() {
        assert!(error("enabled = true").starts_with("demo: config is not a JSON document: "));
        // Not an object: no key to blame, serde's message alone.
        assert!(
            error("[1]").starts_with("demo: config: "),
            "{}",
            error("[1]")
        );
    }
}
