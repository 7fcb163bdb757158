//! Registry credentials from a docker-style `config.json` (`{"auths": {"<registry>": {"auth":
//! "<base64 user:password>"}}}`, or `username` and `password` fields), the file `docker login`,
//! `podman login` and Kubernetes pull secrets write. Credentials never appear in errors.

use std::collections::BTreeMap;
use std::path::Path;

use base64::Engine as _;
use oci_client::secrets::RegistryAuth;
use serde::Deserialize;

use crate::RegistryError;

#[derive(Deserialize)]
struct AuthFile {
    #[serde(default)]
    auths: BTreeMap<String, Entry>,
}

#[derive(Deserialize)]
struct Entry {
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
}

/// Credentials per registry, read from an auth file; anonymous for any registry it does not
/// name.
#[derive(Default, Clone)]
pub struct Credentials {
    by_registry: BTreeMap<String, (String, String)>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The registries, never the secrets.
        f.debug_set().entries(self.by_registry.keys()).finish()
    }
}

impl Credentials {
    /// Reads `path`.
    pub fn from_file(path: &Path) -> Result<Credentials, RegistryError> {
        let error = |reason: String| RegistryError::Auth {
            path: path.display().to_string(),
            reason,
        };
        let text = std::fs::read_to_string(path).map_err(|e| error(e.to_string()))?;
        Credentials::from_json(&text).map_err(error)
    }

    /// Parses an auth file's text; the error says what is wrong without quoting it.
    pub fn from_json(text: &str) -> Result<Credentials, String> {
        let file: AuthFile = serde_json::from_str(text)
            .map_err(|e| format!("not a docker config.json: line {}", e.line()))?;
        let mut by_registry = BTreeMap::new();
        for (registry, entry) in file.auths {
            let pair = match (entry.auth, entry.username, entry.password) {
                (Some(auth), _, _) => {
                    let decoded = base64::engine::general_purpose::STANDARD
                        .decode(auth.trim())
                        .map_err(|_| format!("auths.{registry}.auth is not base64"))?;
                    let decoded = String::from_utf8(decoded)
                        .map_err(|_| format!("auths.{registry}.auth is not UTF-8"))?;
                    let (user, password) = decoded
                        .split_once(':')
                        .ok_or_else(|| format!("auths.{registry}.auth is not user:password"))?;
                    (user.to_string(), password.to_string())
                }
                (None, Some(user), Some(password)) => (user, password),
                _ => continue,
            };
            by_registry.insert(registry, pair);
        }
        Ok(Credentials { by_registry })
    }

    /// What to present to `registry` (`host[:port]`); also found under an `https://` key.
    pub fn for_registry(&self, registry: &str) -> RegistryAuth {
        let found = self.by_registry.get(registry).or_else(|| {
            self.by_registry
                .iter()
                .find(|(key, _)| {
                    key.trim_start_matches("https://")
                        .trim_start_matches("http://")
                        .trim_end_matches('/')
                        == registry
                })
                .map(|(_, pair)| pair)
        });
        match found {
            Some((user, password)) => RegistryAuth::Basic(user.clone(), password.clone()),
            None => RegistryAuth::Anonymous,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auth_and_user_password_entries_are_read() {
        let credentials = Credentials::from_json(
            r#"{"auths": {
                "registry.example:5000": {"auth": "YWxpY2U6czNjcjN0"},
                "https://ghcr.io": {"username": "bob", "password": "hunter2"},
                "empty.example": {}
            }}"#,
        )
        .unwrap();
        assert!(matches!(
            credentials.for_registry("registry.example:5000"),
            RegistryAuth::Basic(user, password) if user == "alice" && password == "s3cr3t"
        ));
        assert!(matches!(
            credentials.for_registry("ghcr.io"),
            RegistryAuth::Basic(user, _) if user == "bob"
        ));
        assert!(matches!(
            credentials.for_registry("empty.example"),
            RegistryAuth::Anonymous
        ));
        assert!(matches!(
            credentials.for_registry("other.example"),
            RegistryAuth::Anonymous
        ));
        let shown = format!("{credentials:?}");
        assert!(
            !shown.contains("s3cr3t") && !shown.contains("hunter2"),
            "{shown}"
        );
    }

    #[test]
    fn a_broken_file_is_an_error_that_quotes_no_secret() {
        let error = Credentials::from_json(r#"{"auths": {"r": {"auth": "not base64 s3cr3t!"}}}"#)
            .err()
            .unwrap();
        assert!(error.contains("auths.r.auth"), "{error}");
        assert!(!error.contains("s3cr3t"), "{error}");
        assert!(Credentials::from_json("{").is_err());
    }
}
