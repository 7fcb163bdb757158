//! Compiles the project's `.proto` files into Rust with prost.
//!
//! `protoc` comes from Debian's `protobuf-compiler` package (installed by `tests/testbed/setup.sh`
//! and `.ci/run`): the CRI and containerd client crates need it at build time anyway, so using it
//! here adds no new requirement. Set `PROTOC` to use another binary.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protos = ["nri/api.proto", "ttrpc/ttrpc.proto"];
    for proto in protos {
        println!("cargo:rerun-if-changed={proto}");
    }
    prost_build::Config::new()
        // Maps stay ordered so logs, audit records and tests are deterministic.
        .btree_map(["."])
        .compile_protos(&protos, &["."])?;
    Ok(())
}
