//! The kernel ring buffer read by the agent's own consumer: records of every
//! size, many of them crossing the end of a small ring, arrive whole.
use std::{collections::HashMap, fs, thread, time::Duration};

use crate::{
    harness::{of_kind, str_at, write_policy, Agent, TestResult},
    policy::{openat_policy, prefix_selector},
    require_agent,
};

/// Small enough that the records below wrap it about 30 times.
const RING_BYTES: &str = "65536";
/// File name lengths 1..=NAMES: each changes the record's size by a byte, so
/// records start and cross the ring's end at every 8-byte offset.
const NAMES: usize = 160;
const ROUNDS: usize = 12;

pub fn records_crossing_the_ring_end_arrive_whole() -> TestResult {
    require_agent!();
    let dir = tempfile::tempdir().expect("temp dir");
    let watched = dir.path().join("watched");
    fs::create_dir(&watched).expect("mkdir");
    let files: Vec<String> = (1..=NAMES)
        .map(|len| {
            let path = watched.join("f".repeat(len));
            fs::write(&path, "x").expect("write file");
            path.to_str().expect("utf-8").to_owned()
        })
        .collect();
    let policy = write_policy(
        dir.path(),
        "ring",
        &openat_policy("ring-wrap", &prefix_selector(&watched), ""),
    );
    let agent = Agent::start(&["--tracing-policy", &policy, "--rb-size", RING_BYTES]);
    for _ in 0..ROUNDS {
        for (i, file) in files.iter().enumerate() {
            fs::File::open(file).expect("open");
            // Paced so that a 64 KiB ring never fills: the test is about
            // records arriving whole, not about how fast the reader is.
            if i % 16 == 15 {
                thread::sleep(Duration::from_millis(1));
            }
        }
    }
    let expected = NAMES * ROUNDS;
    let opens = |evs: &[serde_json::Value]| {
        of_kind(evs, "process_kprobe")
            .into_iter()
            .filter(|k| str_at(k, "/policy_name") == "ring-wrap")
            .count()
    };
    let evs = agent.wait_for(Duration::from_secs(20), "an event for every open", |evs| {
        opens(evs) >= expected
    });
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for k in of_kind(&evs, "process_kprobe") {
        if str_at(k, "/policy_name") == "ring-wrap" {
            *seen.entry(str_at(k, "/args/1/string_arg")).or_default() += 1;
        }
    }
    for file in &files {
        assert_eq!(seen.get(file.as_str()), Some(&ROUNDS), "events of {file}");
    }
    assert_eq!(seen.len(), NAMES, "paths other than the files opened");
    agent.stop();
    Ok(())
}
