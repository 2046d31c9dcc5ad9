//! vigil's gRPC API (`proto/vigil.proto`): messages, the `Vigil` service's
//! server trait and its client.
#![allow(clippy::all)]

pub mod v1 {
    tonic::include_proto!("vigil.v1");
}
