//! The agent's Prometheus metrics, scraped over HTTP while real work happens.
use std::{
    io::{Read, Write},
    net::TcpStream,
    process::Command,
};

use crate::{
    harness::{Agent, TestResult},
    require_agent,
};

fn scrape(addr: &str) -> String {
    let mut stream = TcpStream::connect(addr).expect("connect to the metrics server");
    let request = format!("GET /metrics HTTP/1.1\r\nHost: {addr}\r\n\r\n");
    stream.write_all(request.as_bytes()).expect("request");
    let mut text = String::new();
    stream.read_to_string(&mut text).expect("response");
    text
}

/// The value of the first sample line that starts with `series`.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(series))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

pub fn bpf_map_memory_and_program_runs_exported() -> TestResult {
    require_agent!();
    let addr = format!("127.0.0.1:{}", 20_000 + std::process::id() % 20_000);
    let agent = Agent::start(&["--metrics-server", &addr, "--enable-bpf-stats"]);
    for _ in 0..20 {
        let status = Command::new("/bin/true").status().expect("run /bin/true");
        assert!(status.success());
    }
    let text = scrape(&addr);
    // Linux 6.1 reports a ring buffer's memlock as 0; the series must be there.
    assert!(
        sample(&text, "vigil_bpf_map_memory_bytes{map=\"events\"}").is_some(),
        "no ring buffer memory in:\n{text}"
    );
    assert!(
        sample(&text, "vigil_bpf_map_memory_bytes{map=\"procs\"}").is_some_and(|b| b > 0.0),
        "process table memory:\n{text}"
    );
    let execs = sample(&text, "vigil_bpf_prog_runs_total{program=\"vigil_exec\"}")
        .unwrap_or_else(|| panic!("no vigil_exec runs in:\n{text}"));
    assert!(execs >= 20.0, "vigil_exec ran {execs} times for 20 execs");
    assert!(
        sample(
            &text,
            "vigil_bpf_prog_run_time_seconds_total{program=\"vigil_exec\"}"
        )
        .is_some_and(|s| s > 0.0),
        "vigil_exec run time:\n{text}"
    );
    agent.stop();
    Ok(())
}
