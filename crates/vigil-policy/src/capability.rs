//! Linux capability names (`CAP_*`) and their numbers, as used by
//! `matchCapabilities` and `matchCapabilityChanges`.

/// A Linux capability; the discriminant is the kernel's capability number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Deserialize)]
#[repr(u8)]
pub enum Capability {
    #[serde(rename = "CAP_CHOWN")]
    Chown = 0,
    #[serde(rename = "CAP_DAC_OVERRIDE")]
    DacOverride = 1,
    #[serde(rename = "CAP_DAC_READ_SEARCH")]
    DacReadSearch = 2,
    #[serde(rename = "CAP_FOWNER")]
    Fowner = 3,
    #[serde(rename = "CAP_FSETID")]
    Fsetid = 4,
    #[serde(rename = "CAP_KILL")]
    Kill = 5,
    #[serde(rename = "CAP_SETGID")]
    Setgid = 6,
    #[serde(rename = "CAP_SETUID")]
    Setuid = 7,
    #[serde(rename = "CAP_SETPCAP")]
    Setpcap = 8,
    #[serde(rename = "CAP_LINUX_IMMUTABLE")]
    LinuxImmutable = 9,
    #[serde(rename = "CAP_NET_BIND_SERVICE")]
    NetBindService = 10,
    #[serde(rename = "CAP_NET_BROADCAST")]
    NetBroadcast = 11,
    #[serde(rename = "CAP_NET_ADMIN")]
    NetAdmin = 12,
    #[serde(rename = "CAP_NET_RAW")]
    NetRaw = 13,
    #[serde(rename = "CAP_IPC_LOCK")]
    IpcLock = 14,
    #[serde(rename = "CAP_IPC_OWNER")]
    IpcOwner = 15,
    #[serde(rename = "CAP_SYS_MODULE")]
    SysModule = 16,
    #[serde(rename = "CAP_SYS_RAWIO")]
    SysRawio = 17,
    #[serde(rename = "CAP_SYS_CHROOT")]
    SysChroot = 18,
    #[serde(rename = "CAP_SYS_PTRACE")]
    SysPtrace = 19,
    #[serde(rename = "CAP_SYS_PACCT")]
    SysPacct = 20,
    #[serde(rename = "CAP_SYS_ADMIN")]
    SysAdmin = 21,
    #[serde(rename = "CAP_SYS_BOOT")]
    SysBoot = 22,
    #[serde(rename = "CAP_SYS_NICE")]
    SysNice = 23,
    #[serde(rename = "CAP_SYS_RESOURCE")]
    SysResource = 24,
    #[serde(rename = "CAP_SYS_TIME")]
    SysTime = 25,
    #[serde(rename = "CAP_SYS_TTY_CONFIG")]
    SysTtyConfig = 26,
    #[serde(rename = "CAP_MKNOD")]
    Mknod = 27,
    #[serde(rename = "CAP_LEASE")]
    Lease = 28,
    #[serde(rename = "CAP_AUDIT_WRITE")]
    AuditWrite = 29,
    #[serde(rename = "CAP_AUDIT_CONTROL")]
    AuditControl = 30,
    #[serde(rename = "CAP_SETFCAP")]
    Setfcap = 31,
    #[serde(rename = "CAP_MAC_OVERRIDE")]
    MacOverride = 32,
    #[serde(rename = "CAP_MAC_ADMIN")]
    MacAdmin = 33,
    #[serde(rename = "CAP_SYSLOG")]
    Syslog = 34,
    #[serde(rename = "CAP_WAKE_ALARM")]
    WakeAlarm = 35,
    #[serde(rename = "CAP_BLOCK_SUSPEND")]
    BlockSuspend = 36,
    #[serde(rename = "CAP_AUDIT_READ")]
    AuditRead = 37,
    #[serde(rename = "CAP_PERFMON")]
    Perfmon = 38,
    #[serde(rename = "CAP_BPF")]
    Bpf = 39,
    #[serde(rename = "CAP_CHECKPOINT_RESTORE")]
    CheckpointRestore = 40,
}

impl Capability {
    /// Kernel capability number (`CAP_CHOWN` is 0).
    pub const fn number(self) -> u8 {
        self as u8
    }

    /// The `CAP_*` name.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Chown => "CAP_CHOWN",
            Self::DacOverride => "CAP_DAC_OVERRIDE",
            Self::DacReadSearch => "CAP_DAC_READ_SEARCH",
            Self::Fowner => "CAP_FOWNER",
            Self::Fsetid => "CAP_FSETID",
            Self::Kill => "CAP_KILL",
            Self::Setgid => "CAP_SETGID",
            Self::Setuid => "CAP_SETUID",
            Self::Setpcap => "CAP_SETPCAP",
            Self::LinuxImmutable => "CAP_LINUX_IMMUTABLE",
            Self::NetBindService => "CAP_NET_BIND_SERVICE",
            Self::NetBroadcast => "CAP_NET_BROADCAST",
            Self::NetAdmin => "CAP_NET_ADMIN",
            Self::NetRaw => "CAP_NET_RAW",
            Self::IpcLock => "CAP_IPC_LOCK",
            Self::IpcOwner => "CAP_IPC_OWNER",
            Self::SysModule => "CAP_SYS_MODULE",
            Self::SysRawio => "CAP_SYS_RAWIO",
            Self::SysChroot => "CAP_SYS_CHROOT",
            Self::SysPtrace => "CAP_SYS_PTRACE",
            Self::SysPacct => "CAP_SYS_PACCT",
            Self::SysAdmin => "CAP_SYS_ADMIN",
            Self::SysBoot => "CAP_SYS_BOOT",
            Self::SysNice => "CAP_SYS_NICE",
            Self::SysResource => "CAP_SYS_RESOURCE",
            Self::SysTime => "CAP_SYS_TIME",
            Self::SysTtyConfig => "CAP_SYS_TTY_CONFIG",
            Self::Mknod => "CAP_MKNOD",
            Self::Lease => "CAP_LEASE",
            Self::AuditWrite => "CAP_AUDIT_WRITE",
            Self::AuditControl => "CAP_AUDIT_CONTROL",
            Self::Setfcap => "CAP_SETFCAP",
            Self::MacOverride => "CAP_MAC_OVERRIDE",
            Self::MacAdmin => "CAP_MAC_ADMIN",
            Self::Syslog => "CAP_SYSLOG",
            Self::WakeAlarm => "CAP_WAKE_ALARM",
            Self::BlockSuspend => "CAP_BLOCK_SUSPEND",
            Self::AuditRead => "CAP_AUDIT_READ",
            Self::Perfmon => "CAP_PERFMON",
            Self::Bpf => "CAP_BPF",
            Self::CheckpointRestore => "CAP_CHECKPOINT_RESTORE",
        }
    }
}

impl std::fmt::Display for Capability {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}
