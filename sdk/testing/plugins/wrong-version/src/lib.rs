//! A component built against `bulkhead:plugin@0.9.0`, a version the host does not provide. It
//! exists only so the runtime's tests can check that loading it fails with an error naming the
//! import, the mistake a plugin built with a mismatched SDK makes.
//!
//! The WIT is inline and deliberately *not* `proto/wit`: it is the wrong ABI on purpose.
// wit-bindgen's generated glue is unsafe; real plugins get it from bulkhead-sdk's macro instead.
#![allow(unsafe_code, reason = "test-only crate using wit-bindgen directly")]

mod bindings {
    wit_bindgen::generate!({
        inline: r#"
            package bulkhead:plugin@0.9.0;

            interface host {
                log: func(message: string);
            }

            world security-plugin {
                import host;
                export metadata: func() -> string;
            }
        "#,
    });
}

/// Implements the wrong world.
pub struct WrongVersion;

impl bindings::Guest for WrongVersion {
    fn metadata() -> String {
        // Use the import so the component keeps it.
        bindings::bulkhead::plugin::host::log("hello from the future");
        "wrong-version".into()
    }
}

bindings::export!(WrongVersion with_types_in bindings);
