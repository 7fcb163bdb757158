//! Which registries bulkhead talks to in plain HTTP: only loopback ones (a registry on the node
//! itself, as in tests) and the ones the operator names. Every other registry is HTTPS, whose
//! certificate is checked against the system's roots.

/// Whether `registry` (`host` or `host:port`, as a reference names it) may be spoken to over
/// plain HTTP, given the operator's `insecure` list.
pub fn plain_http_allowed(registry: &str, insecure: &[String]) -> bool {
    insecure.iter().any(|name| name == registry) || is_loopback(registry)
}

/// `localhost`, `127.x.x.x` or `[::1]`, with or without a port.
fn is_loopback(registry: &str) -> bool {
    let host = if let Some(rest) = registry.strip_prefix('[') {
        rest.split(']').next().unwrap_or_default()
    } else {
        registry.split(':').next().unwrap_or_default()
    };
    match host.parse::<std::net::IpAddr>() {
        Ok(ip) => ip.is_loopback(),
        Err(_) => host == "localhost",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_and_named_registries_are_plain_http() {
        for loopback in [
            "127.0.0.1:5000",
            "127.1.2.3",
            "localhost:5000",
            "[::1]:5000",
        ] {
            assert!(plain_http_allowed(loopback, &[]), "{loopback}");
        }
        for remote in [
            "ghcr.io",
            "10.0.0.1:5000",
            "localhost.example.com",
            "127.0.0.1.nip.io:5000",
        ] {
            assert!(!plain_http_allowed(remote, &[]), "{remote}");
        }
        let insecure = vec!["registry.lan:5000".to_string()];
        assert!(plain_http_allowed("registry.lan:5000", &insecure));
        assert!(
            !plain_http_allowed("registry.lan", &insecure),
            "the name must match as written, port included"
        );
    }
}
