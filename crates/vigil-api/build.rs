//! Compiles proto/vigil.proto with protox (a Rust protobuf compiler), so the
//! build needs no system protoc.
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let proto = "proto/vigil.proto";
    println!("cargo:rerun-if-changed={proto}");
    let descriptors = protox::compile([proto], ["proto"])?;
    tonic_prost_build::configure().compile_fds(descriptors)?;
    Ok(())
}
