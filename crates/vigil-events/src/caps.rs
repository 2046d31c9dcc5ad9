//! Capability bit sets rendered as Tetragon's `CapabilitiesType` names.

const NAMES: [&str; 41] = [
    "CAP_CHOWN",
    "DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

/// The enum name of capability `bit`; Tetragon's enum spells bit 1 `DAC_OVERRIDE`.
pub fn name(bit: u32) -> Option<&'static str> {
    NAMES.get(bit as usize).copied()
}

/// Names of the capabilities set in `mask`, lowest bit first. Unknown bits are skipped.
pub fn names(mask: u64) -> Vec<&'static str> {
    (0..64u32)
        .filter(|bit| mask & (1 << bit) != 0)
        .filter_map(name)
        .collect()
}

pub const CAP_SYS_ADMIN: u32 = 21;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_bits_in_order() {
        assert_eq!(names(0), Vec::<&str>::new());
        assert_eq!(
            names(1 | 1 << 21 | 1 << 40),
            ["CAP_CHOWN", "CAP_SYS_ADMIN", "CAP_CHECKPOINT_RESTORE"]
        );
        assert_eq!(names(1 << 63), Vec::<&str>::new());
    }
}
