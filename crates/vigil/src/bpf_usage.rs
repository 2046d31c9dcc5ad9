//! What vigil's own BPF objects cost, as metrics read at each scrape: the
//! kernel memory of each map and the run count and run time of each program
//! this process holds (found through its own fds, so other BPF users of the
//! machine, including other vigil agents, are never counted).
use std::{collections::BTreeMap, fs};

use libbpf_rs::query::{MapInfoIter, ProgInfoIter};
use prometheus_client::{
    collector::Collector,
    encoding::{DescriptorEncoder, EncodeMetric},
    metrics::{counter::ConstCounter, gauge::ConstGauge},
};

#[derive(Debug)]
pub struct BpfUsage;

/// The ids of the maps (with their memlock bytes) and programs behind this process's fds.
#[derive(Default)]
struct OwnObjects {
    maps: BTreeMap<u32, u64>,
    progs: Vec<u32>,
}

fn own_objects() -> OwnObjects {
    let mut own = OwnObjects::default();
    let Ok(entries) = fs::read_dir("/proc/self/fdinfo") else {
        return own;
    };
    for entry in entries.filter_map(Result::ok) {
        let Ok(text) = fs::read_to_string(entry.path()) else {
            continue;
        };
        let field = |name: &str| -> Option<u64> {
            text.lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.trim().parse().ok())
        };
        if let Some(id) = field("map_id:") {
            own.maps
                .insert(id as u32, field("memlock:").unwrap_or_default());
        } else if let Some(id) = field("prog_id:") {
            own.progs.push(id as u32);
        }
    }
    own
}

impl Collector for BpfUsage {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let own = own_objects();
        let mut map_bytes: BTreeMap<String, u64> = BTreeMap::new();
        for info in MapInfoIter::default().filter(|m| own.maps.contains_key(&m.id)) {
            *map_bytes
                .entry(info.name.to_string_lossy().into_owned())
                .or_default() += own.maps[&info.id];
        }
        let mut runs: BTreeMap<String, (u64, u64)> = BTreeMap::new();
        for info in ProgInfoIter::default().filter(|p| own.progs.contains(&p.id)) {
            let entry = runs
                .entry(info.name.to_string_lossy().into_owned())
                .or_default();
            entry.0 += info.run_cnt;
            entry.1 += info.run_time_ns;
        }

        let mut family = encoder.encode_descriptor(
            "bpf_map_memory_bytes",
            "Kernel memory of each of vigil's BPF maps (memlock)",
            None,
            prometheus_client::metrics::MetricType::Gauge,
        )?;
        for (map, bytes) in &map_bytes {
            ConstGauge::new(*bytes as i64)
                .encode(family.encode_family(&[("map", map.as_str())])?)?;
        }
        let mut family = encoder.encode_descriptor(
            "bpf_prog_runs",
            "Runs of each of vigil's BPF programs (counted while BPF statistics are on: --enable-bpf-stats)",
            None,
            prometheus_client::metrics::MetricType::Counter,
        )?;
        for (prog, (count, _)) in &runs {
            ConstCounter::new(*count)
                .encode(family.encode_family(&[("program", prog.as_str())])?)?;
        }
        let mut family = encoder.encode_descriptor(
            "bpf_prog_run_time_seconds",
            "Time spent in each of vigil's BPF programs (while BPF statistics are on)",
            None,
            prometheus_client::metrics::MetricType::Counter,
        )?;
        for (prog, (_, ns)) in &runs {
            ConstCounter::new(*ns as f64 / 1e9)
                .encode(family.encode_family(&[("program", prog.as_str())])?)?;
        }
        Ok(())
    }
}
