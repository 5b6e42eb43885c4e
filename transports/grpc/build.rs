//! Generates the gRPC code from `proto/cosigner.proto` with a vendored `protoc`, so a machine
//! without protobuf tools builds this crate with plain cargo.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protoc = protoc_bin_vendored::protoc_bin_path()?;
    let mut config = tonic_prost_build::Config::new();
    config.protoc_executable(protoc);
    println!("cargo:rerun-if-changed=proto/cosigner.proto");
    tonic_prost_build::configure().compile_with_config(config, &["proto/cosigner.proto"], &["proto"])?;
    Ok(())
}
