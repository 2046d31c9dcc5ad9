//! The kernel side of vigil: BPF skeletons, one module per sensor, and the
//! wire format shared with the BPF programs (`bpf/include/intf.h`).

/// Structs and constants of `intf.h`, as bindgen sees them.
#[allow(non_camel_case_types, non_upper_case_globals, dead_code)]
pub mod wire {
    include!(concat!(env!("OUT_DIR"), "/intf.rs"));
}

/// The base process sensor: exec, fork, exit and the start-time scan.
#[allow(clippy::all, non_camel_case_types, non_upper_case_globals, dead_code)]
pub mod process {
    include!(concat!(env!("OUT_DIR"), "/process.skel.rs"));
}

/// `vigil probe`: one trivial program per hook kind, loaded one at a time.
#[allow(clippy::all, non_camel_case_types, non_upper_case_globals, dead_code)]
pub mod features {
    include!(concat!(env!("OUT_DIR"), "/features.skel.rs"));
}
