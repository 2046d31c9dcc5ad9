//! Prometheus metrics: what was emitted, what was lost and where, and the
//! state of the caches. Served as text on `--metrics-server`.
use std::{
    io::{Read, Write},
    net::TcpListener,
    sync::Arc,
    thread,
};

use anyhow::{Context, Result};
use prometheus_client::{
    encoding::{text::encode, EncodeLabelSet},
    metrics::{counter::Counter, family::Family, gauge::Gauge},
    registry::Registry,
};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TypeLabel {
    pub r#type: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct LossLabels {
    pub source: String,
    pub kind: String,
}

#[derive(Default)]
pub struct Metrics {
    pub events: Family<TypeLabel, Counter>,
    pub lost_events: Family<LossLabels, Counter>,
    pub decode_errors: Counter,
    pub ringbuf_records: Counter,
    pub process_cache_size: Gauge,
    pub process_cache_capacity: Gauge,
    pub process_cache_evictions: Counter,
    pub process_cache_misses: Counter,
    pub process_table_full: Counter,
    pub process_table_misses: Counter,
}

impl Metrics {
    pub fn registry(self: &Arc<Self>) -> Registry {
        let mut r = Registry::with_prefix("vigil");
        r.register("events", "Events written, by type", self.events.clone());
        r.register(
            "lost_events",
            "Events lost, by where and which kind",
            self.lost_events.clone(),
        );
        r.register(
            "decode_errors",
            "Kernel records that could not be decoded",
            self.decode_errors.clone(),
        );
        r.register(
            "ringbuf_records",
            "Records read from the kernel ring buffer",
            self.ringbuf_records.clone(),
        );
        r.register(
            "process_cache_size",
            "Entries in the process cache",
            self.process_cache_size.clone(),
        );
        r.register(
            "process_cache_capacity",
            "Capacity of the process cache",
            self.process_cache_capacity.clone(),
        );
        r.register(
            "process_cache_evictions",
            "Process cache entries evicted at capacity",
            self.process_cache_evictions.clone(),
        );
        r.register(
            "process_cache_misses",
            "Lookups of processes not in the cache",
            self.process_cache_misses.clone(),
        );
        r.register(
            "process_table_full",
            "In-kernel process table insertions that failed",
            self.process_table_full.clone(),
        );
        r.register(
            "process_table_misses",
            "Kernel events for a process missing from the kernel table",
            self.process_table_misses.clone(),
        );
        r.register_collector(Box::new(crate::bpf_usage::BpfUsage));
        r
    }
}

/// Reads the request up to its blank line (at most 8 KiB, 1 s), so that
/// closing the connection after the response never resets it on the client.
fn read_request_head(stream: &mut std::net::TcpStream) {
    let _ = stream.set_read_timeout(Some(std::time::Duration::from_secs(1)));
    let mut head = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    while head.len() < 8192 && !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => head.extend_from_slice(&chunk[..n]),
        }
    }
}

/// Serves the registry over plain HTTP/1.1, one short connection at a time.
pub fn serve(addr: &str, registry: Registry) -> Result<()> {
    let listener =
        TcpListener::bind(addr).with_context(|| format!("binding metrics server to {addr}"))?;
    thread::Builder::new().name("metrics".into()).spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            read_request_head(&mut stream);
            let mut body = String::new();
            if encode(&mut body, &registry).is_err() {
                continue;
            }
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Type: application/openmetrics-text; version=1.0.0; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    })?;
    Ok(())
}
