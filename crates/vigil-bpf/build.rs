//! Compiles every `bpf/<sensor>/<name>.bpf.c` into a libbpf skeleton and
//! generates the Rust view of the wire format from `bpf/include/intf.h`.
use std::{env, fs, path::PathBuf};

use libbpf_cargo::SkeletonBuilder;

fn main() {
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("OUT_DIR is set by cargo"));
    let clang = env::var("CLANG").unwrap_or_else(|_| "clang-19".into());
    // The multiarch headers hold asm/errno.h, which libbpf's usdt.bpf.h
    // reaches through linux/errno.h.
    let includes = [
        "-Ibpf/include",
        "-Ibpf/lib",
        "-idirafter/usr/include/x86_64-linux-gnu",
    ];

    for sensor in fs::read_dir("bpf").expect("bpf/ exists") {
        let sensor = sensor.expect("readable bpf/").path();
        if !sensor.is_dir() || sensor.ends_with("include") || sensor.ends_with("lib") {
            continue;
        }
        for src in fs::read_dir(&sensor).expect("readable sensor folder") {
            let src = src.expect("readable sensor folder").path();
            let Some(name) = src.file_name().and_then(|n| n.to_str()) else {
                continue;
            };
            let Some(stem) = name.strip_suffix(".bpf.c") else {
                continue;
            };
            SkeletonBuilder::new()
                .source(&src)
                .clang(&clang)
                .clang_args(includes)
                .build_and_generate(out.join(format!("{stem}.skel.rs")))
                .unwrap_or_else(|e| panic!("building {}: {e:#}", src.display()));
        }
    }
    println!("cargo:rerun-if-changed=bpf");
    println!("cargo:rerun-if-env-changed=CLANG");

    bindgen::Builder::default()
        .header("bpf/include/intf.h")
        .allowlist_item("vigil_.*|VIGIL_.*")
        .derive_default(true)
        .prepend_enum_name(false)
        .generate()
        .expect("bindgen understands intf.h")
        .write_to_file(out.join("intf.rs"))
        .expect("OUT_DIR is writable");
}
