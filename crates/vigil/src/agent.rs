//! The agent: load the sensors, read the kernel's records, build events,
//! write them out, and account for every loss, until told to stop.
use std::{
    cell::RefCell,
    collections::VecDeque,
    fs,
    io::IsTerminal,
    mem::MaybeUninit,
    path::PathBuf,
    rc::Rc,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use anyhow::{Context, Result};
use libbpf_rs::MapHandle;
use prometheus_client::metrics::counter::Counter;
use tracing::{info, warn};
use vigil_bpf::wire::{
    VIGIL_STAT_LOST_CLONE, VIGIL_STAT_LOST_EXEC, VIGIL_STAT_LOST_EXIT, VIGIL_STAT_LOST_KPROBE,
    VIGIL_STAT_LOST_STACK, VIGIL_STAT_MAX, VIGIL_STAT_PROC_TABLE_FULL, VIGIL_STAT_PROC_TABLE_MISS,
};
use vigil_events::{Event, EventBody, LostEvents};

use crate::{
    api::{AgentStatus, Command, CommandReceiver, FeatureReport},
    config::AgentArgs,
    debug::StatsSwitch,
    decode::{self, ExecRecord, KprobeRecord, Record},
    events::{host_namespaces, EventBuilder, EventOptions},
    metrics::{self, LossLabels, Metrics, TypeLabel},
    output::{EventStream, Format, Outputs, RotatingFile, Sink},
    policy::{self, HookTable, PersistedPolicies, PolicyManager, PolicyMetrics},
    ring_reader::RingReader,
    sensors::{
        fanotify::{self, RecordSource},
        process::{ProcessSensor, ProcessSensorConfig},
        sock_addr,
    },
    stacks::StackResolver,
};

const COUNTER_INTERVAL: Duration = Duration::from_secs(1);
const ANCESTORS_MAX: usize = 64;

/// Kernel loss counters and the event kind each one loses.
const KERNEL_LOSSES: [(u32, &str); 5] = [
    (VIGIL_STAT_LOST_EXEC, "process_exec"),
    (VIGIL_STAT_LOST_CLONE, "process_clone"),
    (VIGIL_STAT_LOST_EXIT, "process_exit"),
    (VIGIL_STAT_LOST_KPROBE, "process_kprobe"),
    (VIGIL_STAT_LOST_STACK, "stack_trace"),
];

struct Pipeline {
    builder: EventBuilder,
    outputs: Outputs,
    metrics: Arc<Metrics>,
    /// `vigil_events_total` by event kind, looked up once per kind rather than per event.
    event_counters: Vec<(&'static str, Counter)>,
    kernel_counters: [u64; VIGIL_STAT_MAX as usize],
    decode_errors: u64,
    write_errors: u64,
    /// Policy hooks by number, for building their events.
    hooks: HookTable,
    /// Records of hooks decided in user space (fanotify).
    user_records: RecordSource,
    user_records_lost: u64,
    /// User-space records taken from the queue, oldest first, each waiting
    /// until the kernel records before it are handled.
    pending_user: VecDeque<KprobeRecord>,
    stacks: StackResolver,
    /// Cgroups that executed processes since the policies last looked.
    exec_cgroups: Vec<u64>,
}

impl Pipeline {
    fn on_kernel_record(&mut self, data: &[u8]) {
        self.metrics.ringbuf_records.inc();
        match decode::decode(data) {
            Ok(record) => self.handle(record),
            Err(e) => self.decode_error(&e),
        }
    }

    fn decode_error(&mut self, e: &decode::DecodeError) {
        self.decode_errors += 1;
        self.metrics.decode_errors.inc();
        warn!(error = %e, "dropping an undecodable kernel record");
        self.emit_loss("decode", "unknown", 1, self.decode_errors, 0);
    }

    fn handle(&mut self, record: Record) {
        let ktime = match &record {
            Record::Exec(e) => e.ktime,
            Record::Clone(c) => c.key.ktime,
            Record::Exit(x) => x.ktime,
            Record::Kprobe(k) => k.ktime,
        };
        // A permission event's record is queued before its answer, so
        // before the exit or exec that the answer lets happen: take it now.
        if matches!(record, Record::Exec(_) | Record::Exit(_)) {
            self.take_user_records();
        }
        self.user_records_before(ktime);
        if let Record::Kprobe(rec) = record {
            self.kprobe(&rec);
            return;
        }
        if let Record::Exec(e) = &record {
            self.exec_cgroups.push(e.cgroup_id);
        }
        if let Some(ev) = self.builder.handle(record) {
            self.emit(&ev);
        }
    }

    fn kprobe(&mut self, rec: &KprobeRecord) {
        let Some(meta) = self.hooks.get(rec.hook) else {
            self.decode_error(&decode::DecodeError::UnknownHook(rec.hook));
            return;
        };
        let (process, parent, ancestors) = self.builder.hook_context(rec);
        let mut body = policy::hook_event(rec, meta, process, parent, ancestors);
        if let Some((kernel, user)) = body.stack_traces_mut() {
            // A stack that is gone (freed, or never stored) is counted in the kernel.
            if let Some(id) = rec.kernel_stack {
                *kernel = self.stacks.kernel(id, rec.ktime).unwrap_or_default();
            }
            if let Some(id) = rec.user_stack {
                *user = self
                    .stacks
                    .user(id, rec.ktime, rec.key.pid)
                    .unwrap_or_default();
            }
        }
        let ev = self.builder.event(rec.ktime, body);
        self.emit(&ev);
    }

    /// Takes the records of hooks decided in user space from their queue.
    fn take_user_records(&mut self) {
        let before = self.pending_user.len();
        self.pending_user.extend(self.user_records.rx.try_iter());
        if self.pending_user.len() > before {
            self.pending_user.make_contiguous().sort_by_key(|r| r.ktime);
        }
    }

    /// Handles the user-space records made before `ktime`, in time order
    /// with the kernel's: a record made in user space knows the caller's pid
    /// only, and its process image is the one the pid ran then (before an
    /// exit or exec that the ring reports later).
    fn user_records_before(&mut self, ktime: u64) {
        while self.pending_user.front().is_some_and(|r| r.ktime < ktime) {
            if let Some(mut rec) = self.pending_user.pop_front() {
                rec.key = self.builder.image_at(rec.key.pid, rec.ktime);
                self.kprobe(&rec);
            }
        }
    }

    fn emit(&mut self, ev: &Event) {
        let kind = ev.body.kind();
        match self.event_counters.iter().find(|(k, _)| *k == kind) {
            Some((_, counter)) => {
                counter.inc();
            }
            None => {
                let counter = self
                    .metrics
                    .events
                    .get_or_create(&TypeLabel {
                        r#type: kind.into(),
                    })
                    .clone();
                counter.inc();
                self.event_counters.push((kind, counter));
            }
        }
        if let Err(e) = self.outputs.write(ev) {
            self.write_errors += 1;
            if self.write_errors.is_power_of_two() {
                warn!(error = %e, errors = self.write_errors, "writing an event failed");
            }
        }
    }

    fn emit_loss(&mut self, source: &str, kind: &str, count: u64, total: u64, ktime: u64) {
        self.metrics
            .lost_events
            .get_or_create(&LossLabels {
                source: source.into(),
                kind: kind.into(),
            })
            .inc_by(count);
        let ev = Event {
            body: EventBody::LostEvents(LostEvents {
                source: source.into(),
                kind: kind.into(),
                count,
                total,
            }),
            node_name: self.builder.node_name().to_owned(),
            time: self.builder.wall_time(ktime),
        };
        self.emit(&ev);
    }

    /// Reports what the kernel lost or could not track since the last look.
    fn check_kernel_counters(&mut self, now: [u64; VIGIL_STAT_MAX as usize]) {
        let ktime = monotonic_ns();
        for (idx, kind) in KERNEL_LOSSES {
            let (before, after) = (self.kernel_counters[idx as usize], now[idx as usize]);
            if after > before {
                // A stack is lost to its map (full slot, or no stack to walk), not to the ring.
                let source = if idx == VIGIL_STAT_LOST_STACK {
                    "kernel_stack_traces"
                } else {
                    "kernel_ring_buffer"
                };
                warn!(kind, source, lost = after - before, "kernel lost records");
                self.emit_loss(source, kind, after - before, after, ktime);
            }
        }
        let lost = self.user_records.lost.load(Ordering::Relaxed);
        if lost > self.user_records_lost {
            let count = lost - self.user_records_lost;
            warn!(lost = count, "fanotify event queue was full");
            self.emit_loss("fanotify_queue", "process_kprobe", count, lost, ktime);
            self.user_records_lost = lost;
        }
        let delta = |i: u32| now[i as usize].saturating_sub(self.kernel_counters[i as usize]);
        self.metrics
            .process_table_full
            .inc_by(delta(VIGIL_STAT_PROC_TABLE_FULL));
        self.metrics
            .process_table_misses
            .inc_by(delta(VIGIL_STAT_PROC_TABLE_MISS));
        self.kernel_counters = now;

        let cache = self.builder.cache_stats();
        self.metrics.process_cache_size.set(cache.size as i64);
        self.metrics
            .process_cache_capacity
            .set(cache.capacity as i64);
        let m = &self.metrics;
        m.process_cache_evictions.inc_by(
            cache
                .evictions
                .saturating_sub(m.process_cache_evictions.get()),
        );
        m.process_cache_misses
            .inc_by(cache.misses.saturating_sub(m.process_cache_misses.get()));
    }
}

/// The agent's side of the API: commands to serve, and the events stream.
pub struct ApiLink {
    pub commands: CommandReceiver,
    pub stream: EventStream,
}

pub fn run(
    args: AgentArgs,
    stop: Arc<AtomicBool>,
    metrics: Arc<Metrics>,
    api: Option<ApiLink>,
) -> Result<()> {
    let node_name = args.node_name.clone().unwrap_or_else(hostname);
    // Before the output threads start, so that they inherit it; the API's
    // threads are older and keep the normal priority.
    boost_priority(args.priority_boost);
    let policy_metrics = PolicyMetrics::default();
    if let Some(addr) = &args.metrics_server {
        let mut registry = metrics.registry();
        policy_metrics.register(&mut registry);
        registry.register(
            "fanotify_default_allowed",
            "File accesses a fanotify hook allowed without a decision (deadline passed, path unreadable)",
            fanotify::DEFAULT_ALLOWED.clone(),
        );
        metrics::serve(addr, registry)?;
        info!(%addr, "serving metrics");
    }

    let _bpf_stats = if args.enable_bpf_stats {
        let on = StatsSwitch::on()?;
        info!(via = on.how.describe(), "BPF run-time statistics on");
        Some(on)
    } else {
        None
    };

    let cfg = ProcessSensorConfig {
        ring_buffer_bytes: args.rb_size,
        process_table_entries: args.execve_map_entries,
        wakeup_bytes: u64::from(args.rb_size / 4),
    };
    let mut obj = MaybeUninit::uninit();
    let sensor = ProcessSensor::load(&mut obj, &cfg)?;
    info!("process sensor attached (tp_btf sched_process_exec/fork/exit)");

    let (mut commands, stream) = match api {
        Some(a) => (Some(a.commands), Some(a.stream)),
        None => (None, None),
    };
    let opts = EventOptions {
        node_name,
        enable_process_cred: args.enable_process_cred,
        enable_process_ns: args.enable_process_ns,
        ancestors: if args.ancestors_enabled() {
            ANCESTORS_MAX
        } else {
            0
        },
        process_cache_size: args.process_cache_size,
        cri_state_dirs: args.cri_state_dir.iter().map(PathBuf::from).collect(),
    };
    let (records, user_records) = fanotify::record_channel();
    let pipeline = Rc::new(RefCell::new(Pipeline {
        builder: EventBuilder::new(opts, host_namespaces()),
        outputs: Outputs::new(sinks(&args)?, stream),
        metrics: metrics.clone(),
        event_counters: Vec::new(),
        kernel_counters: [0; VIGIL_STAT_MAX as usize],
        decode_errors: 0,
        write_errors: 0,
        hooks: HookTable::default(),
        user_records,
        user_records_lost: 0,
        pending_user: VecDeque::new(),
        stacks: StackResolver::new(
            MapHandle::try_from(&sensor.skel.maps.stack_traces)
                .context("opening the stack trace map")?,
        ),
        exec_cgroups: Vec::new(),
    }));

    let mut policies = PolicyManager::new(policy_metrics, cfg.wakeup_bytes, records);
    policies.set_workload_sources(
        sock_addr::cgroup2_root().unwrap_or_else(|e| {
            warn!(error = %format!("{e:#}"), "no cgroup v2 hierarchy: scoped policies match nothing");
            PathBuf::from("/sys/fs/cgroup")
        }),
        args.cri_state_dir.iter().map(PathBuf::from).collect(),
    );
    let rescan = Duration::from_millis(args.workload_rescan_interval_ms.max(100));
    let mut last_rescan = Instant::now();
    policies.load_files(
        &args.tracing_policy,
        &args.tracing_policy_dir,
        &sensor,
        &mut pipeline.borrow_mut().hooks,
    );
    if args.persist_grpc_policies {
        let store = PersistedPolicies::open(&args.grpc_policies_dir).with_context(|| {
            format!(
                "opening the persisted policies directory {}",
                args.grpc_policies_dir.display()
            )
        })?;
        policies.load_persisted(store, &sensor, &mut pipeline.borrow_mut().hooks);
    }

    // Started before the start-time scan: records of processes that start
    // during it wait in the queue and are handled after it.
    let ring = MapHandle::try_from(&sensor.skel.maps.events).context("reading the ring buffer")?;
    let poll = Duration::from_millis(args.rb_poll_interval_ms.max(1));
    let reader = RingReader::spawn(ring, poll, args.event_queue_bytes, args.priority_boost)?;

    let snapshot = sensor.snapshot()?;
    let found = load_snapshot(&mut pipeline.borrow_mut(), &snapshot);
    pipeline
        .borrow_mut()
        .outputs
        .flush()
        .context("writing events")?;
    info!(processes = found, "vigil agent ready");

    let mut last_check = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        // Records decided in user space (fanotify) queued before this batch
        // go out in time order with it.
        pipeline.borrow_mut().take_user_records();
        if let Some(batch) = reader.next(poll)? {
            let mut p = pipeline.borrow_mut();
            for record in batch.records() {
                p.on_kernel_record(record);
            }
            reader.recycle(batch);
        }
        if let Some(ktime) = reader.caught_up_to() {
            // Caught up: write out what was built before waiting for more.
            // A user-space record waits until the ring has been read past its
            // time, so that the exec before it is handled first.
            let mut p = pipeline.borrow_mut();
            p.user_records_before(ktime);
            p.outputs.flush().context("writing events")?;
        }
        policies.cgroups_seen(&mut pipeline.borrow_mut().exec_cgroups);
        if last_rescan.elapsed() >= rescan {
            last_rescan = Instant::now();
            policies.rescan_workloads();
        }
        if let Some(commands) = &mut commands {
            while let Ok(command) = commands.try_recv() {
                serve_command(command, &mut policies, &sensor, &mut pipeline.borrow_mut());
            }
        }
        if last_check.elapsed() >= COUNTER_INTERVAL {
            last_check = Instant::now();
            let counters = sensor.counters()?;
            let mut p = pipeline.borrow_mut();
            p.check_kernel_counters(counters);
            p.outputs.flush().context("writing events")?;
            policies.refresh_counters();
        }
    }

    pipeline.borrow_mut().take_user_records();
    for batch in reader.finish()? {
        let mut p = pipeline.borrow_mut();
        for record in batch.records() {
            p.on_kernel_record(record);
        }
    }
    pipeline.borrow_mut().user_records_before(u64::MAX);
    let counters = sensor.counters()?;
    let mut p = pipeline.borrow_mut();
    p.check_kernel_counters(counters);
    p.outputs.flush().context("writing events")?;
    let cache = p.builder.cache_stats();
    info!(
        events = p.outputs.written,
        decode_errors = p.decode_errors,
        process_cache = cache.size,
        process_table = sensor.process_table_len(),
        "vigil agent stopped; programs detached"
    );
    Ok(())
}

/// Raises the calling thread's CPU priority (a thread's nice value is its
/// own on Linux). Failure is logged, not fatal: the agent still runs.
pub(crate) fn boost_priority(boost: u8) {
    if boost == 0 {
        return;
    }
    // SAFETY: gettid and setpriority take no pointers.
    let ret = unsafe {
        let tid = libc::gettid() as libc::id_t;
        libc::setpriority(libc::PRIO_PROCESS, tid, -libc::c_int::from(boost))
    };
    if ret != 0 {
        warn!(boost, error = %std::io::Error::last_os_error(), "could not raise the event reader's priority");
    }
}

/// Feeds the start-time scan; cwd and argv come from /proc (they were not readable in BPF).
fn load_snapshot(p: &mut Pipeline, mut data: &[u8]) -> usize {
    let mut found = 0;
    while !data.is_empty() {
        let size = match decode::record_size(data) {
            Ok(s) if s > 0 && s <= data.len() => s,
            _ => {
                p.decode_error(&decode::DecodeError::SizeMismatch {
                    said: 0,
                    got: data.len(),
                });
                break;
            }
        };
        match decode::decode(&data[..size]) {
            Ok(Record::Exec(mut rec)) => {
                complete_from_proc(&mut rec);
                p.handle(Record::Exec(rec));
                found += 1;
            }
            Ok(other) => p.handle(other),
            Err(e) => p.decode_error(&e),
        }
        data = &data[size..];
    }
    found
}

/// Runs one API command on the event loop, between two ring buffer reads.
/// A caller that went away (its reply channel closed) is no error.
fn serve_command(
    command: Command,
    policies: &mut PolicyManager,
    sensor: &ProcessSensor,
    p: &mut Pipeline,
) {
    match command {
        Command::Status(reply) => {
            let mut sensors = vec!["process".to_owned()];
            if policies.generic_loaded() {
                sensors.push("generic".to_owned());
            }
            let features = policies.features();
            let status = AgentStatus {
                node_name: p.builder.node_name().to_owned(),
                kernel_release: features.kernel.clone(),
                sensors,
                features: features
                    .features
                    .iter()
                    .map(|f| FeatureReport {
                        name: f.name.to_owned(),
                        available: f.available,
                        reason: f.reason.clone().unwrap_or_default(),
                    })
                    .collect(),
                events_written: p.outputs.written,
                policies: policies.len(),
            };
            let _ = reply.send(status);
        }
        Command::ListPolicies(reply) => {
            let _ = reply.send(policies.list());
        }
        Command::AddPolicy { yaml, reply } => {
            let _ = reply.send(policies.add_yaml(&yaml, sensor, &mut p.hooks));
        }
        Command::DeletePolicy { name, reply } => {
            let _ = reply.send(policies.delete(&name));
        }
        Command::EnablePolicy { name, reply } => {
            let _ = reply.send(policies.enable(&name, sensor, &mut p.hooks));
        }
        Command::DisablePolicy { name, reply } => {
            let _ = reply.send(policies.disable(&name));
        }
    }
}

fn complete_from_proc(rec: &mut ExecRecord) {
    let dir = format!("/proc/{}", rec.key.pid);
    if let Ok(cmdline) = fs::read(format!("{dir}/cmdline")) {
        rec.argv = decode::split_argv(&cmdline);
    }
    if let Ok(cwd) = fs::read_link(format!("{dir}/cwd")) {
        rec.cwd = cwd.to_string_lossy().into_owned();
    }
}

fn sinks(args: &AgentArgs) -> Result<Vec<Sink>> {
    let mut sinks = Vec::new();
    if let Some(path) = &args.export_filename {
        let file = RotatingFile::open(
            path,
            args.export_file_max_size_mb.saturating_mul(1 << 20),
            args.export_file_max_backups,
        )
        .with_context(|| format!("opening export file {}", path.display()))?;
        sinks.push(Sink::file(Format::Json, file).context("starting the export file writer")?);
    }
    if args.export_filename.is_none() || args.export_stdout {
        let format = args.output.unwrap_or(if std::io::stdout().is_terminal() {
            Format::Compact
        } else {
            Format::Json
        });
        sinks.push(Sink::stdout(format).context("starting the stdout writer")?);
    }
    Ok(sinks)
}

fn hostname() -> String {
    fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_owned())
        .unwrap_or_else(|_| "localhost".into())
}

pub fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into the timespec we own.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    (ts.tv_sec as u64) * 1_000_000_000 + ts.tv_nsec as u64
}
