//! The first-party plugins, compiled to Wasm components at build time and embedded, so that
//! `bulkhead run` with no configuration enforces the baseline policy out of the box.
//!
//! ```
//! use bulkhead_core::config::Builtin;
//!
//! let seccomp = bulkhead_builtin::component(Builtin::Seccomp);
//! assert_eq!(&seccomp[..4], b"\0asm");
//! ```

use bulkhead_core::config::Builtin;

include!(concat!(env!("OUT_DIR"), "/embedded.rs"));

/// The component bytes of an embedded plugin.
pub fn component(builtin: Builtin) -> &'static [u8] {
    EMBEDDED
        .iter()
        .find(|(name, _)| *name == builtin.name())
        .map(|(_, bytes)| *bytes)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_builtin_is_embedded_as_a_component() {
        for builtin in Builtin::ALL {
            let bytes = component(builtin);
            assert!(bytes.len() > 1000, "{} is missing", builtin.name());
            // A component's preamble: magic, then version 0x0d with layer 1.
            assert_eq!(
                &bytes[..8],
                b"\0asm\x0d\0\x01\0",
                "{} is not a component",
                builtin.name()
            );
        }
    }
}
