//! String enums of the CRD. Unknown spellings are rejected while parsing,
//! with the list of allowed values.

/// Declares a fieldless enum that deserializes from the given YAML spellings
/// (first spelling is canonical, the others are aliases accepted by the CRD).
macro_rules! string_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident {
            $($(#[$variant_meta:meta])* $variant:ident = $text:literal $(| $alias:literal)*),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Deserialize)]
        pub enum $name {
            $($(#[$variant_meta])* #[serde(rename = $text $(, alias = $alias)*)] $variant),+
        }

        impl $name {
            /// Canonical CRD spelling.
            pub const fn name(self) -> &'static str {
                match self {
                    $(Self::$variant => $text),+
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.name())
            }
        }
    };
}

string_enum! {
    /// `apiVersion`: only one version exists.
    pub enum ApiVersion {
        V1Alpha1 = "cilium.io/v1alpha1",
    }
}

string_enum! {
    pub enum Kind {
        TracingPolicy = "TracingPolicy",
        TracingPolicyNamespaced = "TracingPolicyNamespaced",
    }
}

string_enum! {
    /// `KProbeArg.type`. Aliases follow the CRD enum (`int`/`int32`/`sint32`, ...).
    #[derive(Default)]
    pub enum ArgType {
        #[default]
        Auto = "auto",
        Int8 = "int8" | "sint8",
        Uint8 = "uint8",
        Int16 = "int16" | "sint16",
        Uint16 = "uint16",
        Int32 = "int" | "int32" | "sint32",
        Uint32 = "uint32",
        Int64 = "long" | "int64" | "sint64",
        Uint64 = "ulong" | "uint64",
        SizeT = "size_t",
        String = "string",
        CharBuf = "char_buf",
        CharIovec = "char_iovec",
        ConstBuf = "const_buf",
        Skb = "skb",
        Sock = "sock",
        Sockaddr = "sockaddr",
        SockaddrUn = "sockaddr_un",
        Socket = "socket",
        Fd = "fd",
        File = "file",
        Filename = "filename",
        Path = "path",
        Dentry = "dentry",
        Kiocb = "kiocb",
        IovIter = "iov_iter",
        Cred = "cred",
        Capability = "capability",
        KernelCapT = "kernel_cap_t",
        CapInheritable = "cap_inheritable",
        CapPermitted = "cap_permitted",
        CapEffective = "cap_effective",
        UserNamespace = "user_namespace",
        BpfAttr = "bpf_attr",
        BpfProg = "bpf_prog",
        BpfMap = "bpf_map",
        BpfCmd = "bpf_cmd",
        PerfEvent = "perf_event",
        LoadInfo = "load_info",
        Module = "module",
        Syscall64 = "syscall64",
        LinuxBinprm = "linux_binprm",
        DataLoc = "data_loc",
        NetDevice = "net_device",
        Nop = "nop",
    }
}

string_enum! {
    /// `source` of a `data` entry.
    pub enum ArgSource {
        CurrentTask = "current_task",
        PtRegs = "pt_regs",
    }
}

string_enum! {
    /// Operator of `matchArgs`, `matchData` and `matchReturnArgs`.
    pub enum Operator {
        Equal = "Equal",
        NotEqual = "NotEqual",
        Prefix = "Prefix",
        NotPrefix = "NotPrefix",
        Postfix = "Postfix",
        NotPostfix = "NotPostfix",
        GreaterThan = "GreaterThan" | "GT",
        LessThan = "LessThan" | "LT",
        Mask = "Mask",
        InRange = "InRange",
        NotInRange = "NotInRange",
        InMap = "InMap",
        NotInMap = "NotInMap",
        SPort = "SPort",
        NotSPort = "NotSPort",
        SPortPriv = "SPortPriv",
        // The CRD really spells this one with a lower-case `p`.
        NotSPortPriv = "NotSportPriv",
        DPort = "DPort",
        NotDPort = "NotDPort",
        DPortPriv = "DPortPriv",
        NotDPortPriv = "NotDPortPriv",
        SAddr = "SAddr",
        NotSAddr = "NotSAddr",
        DAddr = "DAddr",
        NotDAddr = "NotDAddr",
        Protocol = "Protocol",
        Family = "Family",
        State = "State",
        CapabilitiesGained = "CapabilitiesGained",
        SubString = "SubString",
        SubStringIgnCase = "SubStringIgnCase",
        CelExpr = "CelExpr",
        FileType = "FileType",
        NotFileType = "NotFileType",
    }
}

string_enum! {
    /// Operator of `matchPIDs`, `matchNamespaces`, `matchNamespaceChanges`,
    /// `matchCapabilities` and `matchCapabilityChanges`.
    pub enum SetOperator {
        In = "In",
        NotIn = "NotIn",
    }
}

string_enum! {
    /// Operator of `matchBinaries` and `matchParentBinaries`.
    pub enum BinaryOperator {
        In = "In",
        NotIn = "NotIn",
        Prefix = "Prefix",
        NotPrefix = "NotPrefix",
        Postfix = "Postfix",
        NotPostfix = "NotPostfix",
    }
}

string_enum! {
    pub enum Namespace {
        Uts = "Uts",
        Ipc = "Ipc",
        Mnt = "Mnt",
        Pid = "Pid",
        PidForChildren = "PidForChildren",
        Net = "Net",
        Time = "Time",
        TimeForChildren = "TimeForChildren",
        Cgroup = "Cgroup",
        User = "User",
    }
}

string_enum! {
    /// `type` of a capabilities selector; the CRD default is `Effective`.
    #[derive(Default)]
    pub enum CapabilitySet {
        #[default]
        Effective = "Effective",
        Inheritable = "Inheritable",
        Permitted = "Permitted",
    }
}

string_enum! {
    pub enum ActionKind {
        Post = "Post",
        Sigkill = "Sigkill",
        Override = "Override",
        GetUrl = "GetUrl",
        DnsLookup = "DnsLookup",
        NoPost = "NoPost",
        Signal = "Signal",
        TrackSock = "TrackSock",
        UntrackSock = "UntrackSock",
        NotifyEnforcer = "NotifyEnforcer",
        CleanupEnforcerNotification = "CleanupEnforcerNotification",
        Set = "Set",
    }
}

string_enum! {
    /// `rateLimitScope`; Tetragon's default is `thread`.
    pub enum RateLimitScope {
        Thread = "thread",
        Process = "process",
        Global = "global",
    }
}

string_enum! {
    pub enum ReturnArgAction {
        Post = "Post",
        TrackSock = "TrackSock",
        UntrackSock = "UntrackSock",
    }
}

string_enum! {
    pub enum ListType {
        Syscalls = "syscalls",
        GeneratedSyscalls = "generated_syscalls",
        GeneratedFtrace = "generated_ftrace",
    }
}

string_enum! {
    /// Operator of a Kubernetes label selector requirement.
    pub enum LabelOperator {
        In = "In",
        NotIn = "NotIn",
        Exists = "Exists",
        DoesNotExist = "DoesNotExist",
    }
}
