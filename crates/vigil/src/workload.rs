//! Which Kubernetes pod and container a cgroup belongs to, found without the
//! Kubernetes API: the container id is in the cgroup directory name
//! (`cri-containerd-<id>.scope`, `crio-<id>.scope`, or `<id>` under cgroupfs
//! kubepods), and the container runtime keeps each container's OCI
//! `config.json`, whose annotations name the pod's namespace, the pod and the
//! container. Pod labels are not in that state.
use std::{
    collections::{HashMap, HashSet},
    os::unix::fs::MetadataExt,
    path::{Path, PathBuf},
};

use vigil_events::container;

/// containerd's task bundles (CRI namespace `k8s.io`) and CRI-O's container state.
pub const DEFAULT_STATE_DIRS: [&str; 2] = [
    "/run/containerd/io.containerd.runtime.v2.task/k8s.io",
    "/run/containers/storage/overlay-containers",
];

/// Cgroup directories deeper than this below the root are not looked at
/// (kubepods containers sit at depth 3 or 4).
const MAX_DEPTH: usize = 8;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Workload {
    pub namespace: String,
    pub pod: String,
    pub container: String,
    pub container_id: String,
    /// The runtime, as Kubernetes prefixes container ids (`containerd`, `cri-o`).
    pub runtime: &'static str,
}

/// Annotations of one runtime: pod namespace, pod name, container name, and
/// the key and value that mark a pod's sandbox (pause) container.
struct Annotations {
    runtime: &'static str,
    namespace: &'static str,
    pod: &'static str,
    container: &'static str,
    kind: &'static str,
    sandbox: &'static str,
}

const CONTAINERD: Annotations = Annotations {
    runtime: "containerd",
    namespace: "io.kubernetes.cri.sandbox-namespace",
    pod: "io.kubernetes.cri.sandbox-name",
    container: "io.kubernetes.cri.container-name",
    kind: "io.kubernetes.cri.container-type",
    sandbox: "sandbox",
};

const CRIO: Annotations = Annotations {
    runtime: "cri-o",
    namespace: "io.kubernetes.pod.namespace",
    pod: "io.kubernetes.pod.name",
    container: "io.kubernetes.container.name",
    kind: "io.kubernetes.cri-o.ContainerType",
    sandbox: "sandbox",
};

/// The container cgroups of this node and their workloads, as of the last scan.
pub struct WorkloadResolver {
    cgroup_root: PathBuf,
    state_dirs: Vec<PathBuf>,
    workloads: HashMap<u64, Workload>,
    /// Cgroups of the last scan that belong to no pod container found in
    /// the runtime state (host services, sandboxes, other runtimes).
    others: HashSet<u64>,
}

impl WorkloadResolver {
    pub fn new(cgroup_root: PathBuf, state_dirs: Vec<PathBuf>) -> Self {
        WorkloadResolver {
            cgroup_root,
            state_dirs,
            workloads: HashMap::new(),
            others: HashSet::new(),
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = (u64, &Workload)> {
        self.workloads.iter().map(|(id, w)| (*id, w))
    }

    /// The last scan saw this cgroup (a container or not).
    pub fn knows(&self, cgroup: u64) -> bool {
        self.workloads.contains_key(&cgroup) || self.others.contains(&cgroup)
    }

    /// Counts `cgroup` as seen and no container until the next scan: an id
    /// no scan finds (a cgroup v1 id, or one already removed) triggers one
    /// scan per scan period, not one per process.
    pub fn mark_seen(&mut self, cgroup: u64) {
        if !self.workloads.contains_key(&cgroup) {
            self.others.insert(cgroup);
        }
    }

    /// Walks the cgroup tree again: new containers come in, removed cgroups
    /// leave. Returns whether the container cgroups changed.
    pub fn scan(&mut self) -> bool {
        let mut workloads = HashMap::new();
        let mut others = HashSet::new();
        self.walk(&self.cgroup_root, 0, None, &mut workloads, &mut others);
        let changed = workloads != self.workloads;
        self.workloads = workloads;
        self.others = others;
        changed
    }

    /// Records the cgroup `dir` and those below it. A cgroup below a
    /// container's (a runtime may nest one) belongs to that container.
    fn walk(
        &self,
        dir: &Path,
        depth: usize,
        inherited: Option<&Workload>,
        workloads: &mut HashMap<u64, Workload>,
        others: &mut HashSet<u64>,
    ) {
        // A cgroup v2 directory's inode number is its cgroup id.
        let Ok(meta) = std::fs::metadata(dir) else {
            return;
        };
        let name = dir.file_name().and_then(|n| n.to_str()).unwrap_or("");
        let own = match inherited {
            Some(w) => Some(w.clone()),
            None => container::from_cgroup_name(name).and_then(|id| resolve(&self.state_dirs, id)),
        };
        match &own {
            Some(w) => {
                workloads.insert(meta.ino(), w.clone());
            }
            None => {
                others.insert(meta.ino());
            }
        }
        if depth >= MAX_DEPTH {
            return;
        }
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                self.walk(&entry.path(), depth + 1, own.as_ref(), workloads, others);
            }
        }
    }
}

/// The workload of container `id` from the first state directory that holds
/// its config.json (containerd's bundle, or CRI-O's userdata).
fn resolve(state_dirs: &[PathBuf], id: &str) -> Option<Workload> {
    state_dirs.iter().find_map(|root| {
        [
            root.join(id).join("config.json"),
            root.join(id).join("userdata/config.json"),
        ]
        .iter()
        .find_map(|path| std::fs::read(path).ok())
        .and_then(|text| workload_of(id, &text))
    })
}

/// Pods of containers by container id, for events: one look at the runtime
/// state per container, remembered (a container's pod never changes).
pub struct PodLookup {
    state_dirs: Vec<PathBuf>,
    known: HashMap<String, Option<Workload>>,
}

impl PodLookup {
    /// Containers remembered at most; past that the memory starts again.
    const KEPT: usize = 4096;

    pub fn new(state_dirs: Vec<PathBuf>) -> Self {
        PodLookup {
            state_dirs,
            known: HashMap::new(),
        }
    }

    pub fn get(&mut self, container_id: &str) -> Option<&Workload> {
        if !self.known.contains_key(container_id) {
            if self.known.len() >= Self::KEPT {
                self.known.clear();
            }
            let found = resolve(&self.state_dirs, container_id);
            self.known.insert(container_id.to_owned(), found);
        }
        self.known.get(container_id).and_then(Option::as_ref)
    }
}

/// The pod container an OCI config.json describes, if its annotations name
/// one (a sandbox is no workload of its own).
fn workload_of(id: &str, config: &[u8]) -> Option<Workload> {
    let config: serde_json::Value = serde_json::from_slice(config).ok()?;
    let annotations = config.get("annotations")?.as_object()?;
    let get = |key: &str| annotations.get(key).and_then(|v| v.as_str());
    [CONTAINERD, CRIO].iter().find_map(|keys| {
        if get(keys.kind) == Some(keys.sandbox) {
            return None;
        }
        Some(Workload {
            namespace: get(keys.namespace)?.to_owned(),
            pod: get(keys.pod)?.to_owned(),
            container: get(keys.container)?.to_owned(),
            container_id: id.to_owned(),
            runtime: keys.runtime,
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn containerd_annotations_name_the_pod() {
        let config = br#"{"ociVersion":"1.1.0","annotations":{
            "io.kubernetes.cri.container-type":"container",
            "io.kubernetes.cri.sandbox-namespace":"shop",
            "io.kubernetes.cri.sandbox-name":"cart-7d9f",
            "io.kubernetes.cri.container-name":"app"}}"#;
        let w = workload_of(ID, config).expect("a workload");
        assert_eq!(
            (w.namespace.as_str(), w.pod.as_str()),
            ("shop", "cart-7d9f")
        );
        assert_eq!(w.container, "app");
    }

    #[test]
    fn crio_annotations_name_the_pod() {
        let config = br#"{"annotations":{
            "io.kubernetes.pod.namespace":"kube-system",
            "io.kubernetes.pod.name":"dns-1",
            "io.kubernetes.container.name":"coredns"}}"#;
        let w = workload_of(ID, config).expect("a workload");
        assert_eq!(w.namespace, "kube-system");
        assert_eq!(w.container, "coredns");
    }

    #[test]
    fn sandboxes_and_other_configs_are_no_workload() {
        let sandbox = br#"{"annotations":{
            "io.kubernetes.cri.container-type":"sandbox",
            "io.kubernetes.cri.sandbox-namespace":"shop",
            "io.kubernetes.cri.sandbox-name":"cart-7d9f",
            "io.kubernetes.cri.container-name":"app"}}"#;
        assert_eq!(workload_of(ID, sandbox), None);
        assert_eq!(workload_of(ID, br#"{"annotations":{}}"#), None);
        assert_eq!(workload_of(ID, b"not json"), None);
    }
}
