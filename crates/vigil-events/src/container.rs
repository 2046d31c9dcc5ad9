//! Container ids from cgroup directory names, for the runtimes that matter:
//! docker (`docker-<id>.scope`, or `<id>` under `/docker/`), containerd
//! (`cri-containerd-<id>.scope`), cri-o (`crio-<id>.scope`, `crio-conmon-` excluded),
//! podman (`libpod-<id>.scope`, `libpod-<id>`), and bare ids under kubepods.

/// Tetragon's `docker` field keeps this many characters of the id.
pub const DOCKER_FIELD_LEN: usize = 31;

const PREFIXES: [&str; 4] = ["docker-", "cri-containerd-", "crio-", "libpod-"];

/// The container id named by one cgroup directory name, if it names one.
pub fn from_cgroup_name(name: &str) -> Option<&str> {
    let name = name.strip_suffix(".scope").unwrap_or(name);
    if name.starts_with("crio-conmon-") || name.starts_with("libpod-conmon-") {
        return None;
    }
    let id = PREFIXES
        .iter()
        .find_map(|p| name.strip_prefix(p))
        .unwrap_or(name);
    is_container_id(id).then_some(id)
}

/// The container id of a process from its cgroup leaf and parent directory
/// names: a runtime may put the process in a child cgroup of the container's.
pub fn from_cgroup_names(leaf: &str, parent: &str) -> Option<String> {
    from_cgroup_name(leaf)
        .or_else(|| from_cgroup_name(parent))
        .map(str::to_owned)
}

/// The container id in a full cgroup path (`/proc/PID/cgroup` style), deepest first.
pub fn from_cgroup_path(path: &str) -> Option<String> {
    path.rsplit('/')
        .find_map(from_cgroup_name)
        .map(str::to_owned)
}

fn is_container_id(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "551e161c47d8ff0eb665438a7bcd5b4e3ef5a297282b40a92b7c77d6bd168eb3";

    #[test]
    fn runtime_formats() {
        for name in [
            format!("docker-{ID}.scope"),
            format!("cri-containerd-{ID}.scope"),
            format!("crio-{ID}.scope"),
            format!("libpod-{ID}.scope"),
            format!("libpod-{ID}"),
            ID.to_string(),
        ] {
            assert_eq!(from_cgroup_name(&name), Some(ID), "{name}");
        }
    }

    #[test]
    fn not_containers() {
        for name in [
            "",
            "user.slice",
            "session-3.scope",
            "init.scope",
            "docker",
            "kubepods-besteffort.slice",
        ] {
            assert_eq!(from_cgroup_name(name), None, "{name}");
        }
        assert_eq!(from_cgroup_name(&format!("crio-conmon-{ID}.scope")), None);
        assert_eq!(from_cgroup_name(&ID.to_uppercase()), None);
        assert_eq!(from_cgroup_name(&ID[1..]), None);
    }

    #[test]
    fn paths_and_nested_cgroups() {
        let k8s = format!("/kubepods/burstable/pod2f5d1f6e-8b7c-4e5f-9a0b-1c2d3e4f5a6b/{ID}");
        assert_eq!(from_cgroup_path(&k8s).as_deref(), Some(ID));
        let systemd = format!("/kubepods.slice/kubepods-pod1.slice/cri-containerd-{ID}.scope");
        assert_eq!(from_cgroup_path(&systemd).as_deref(), Some(ID));
        assert_eq!(
            from_cgroup_path(&format!("/docker/{ID}")).as_deref(),
            Some(ID)
        );
        assert_eq!(from_cgroup_path("/user.slice/user-0.slice"), None);
        let podman = format!("libpod-{ID}.scope");
        assert_eq!(from_cgroup_names("container", &podman).as_deref(), Some(ID));
    }
}
