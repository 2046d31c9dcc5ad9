//! Names of the kernel's network constants, as Tetragon's selectors and
//! events spell them (`IPPROTO_TCP`, `AF_INET`, `TCP_SYN_SENT`, ...).

/// The number a selector value names: a known name or an integer.
pub fn value_of(table: &[(&str, u32)], text: &str) -> Option<u64> {
    if let Some((_, n)) = table.iter().find(|(name, _)| *name == text) {
        return Some(u64::from(*n));
    }
    crate::validate::value::parse_integer(text).and_then(|n| u64::try_from(n).ok())
}

/// The first name of `value` in `table`, if it has one.
pub fn name_of(table: &[(&'static str, u32)], value: u32) -> Option<&'static str> {
    table
        .iter()
        .find(|(_, n)| *n == value)
        .map(|(name, _)| *name)
}

pub const PROTOCOLS: &[(&str, u32)] = &[
    ("IPPROTO_IP", 0),
    ("IPPROTO_ICMP", 1),
    ("IPPROTO_IGMP", 2),
    ("IPPROTO_IPIP", 4),
    ("IPPROTO_TCP", 6),
    ("IPPROTO_EGP", 8),
    ("IPPROTO_UDP", 17),
    ("IPPROTO_DCCP", 33),
    ("IPPROTO_IPV6", 41),
    ("IPPROTO_RSVP", 46),
    ("IPPROTO_GRE", 47),
    ("IPPROTO_ESP", 50),
    ("IPPROTO_AH", 51),
    ("IPPROTO_ICMPV6", 58),
    ("IPPROTO_PIM", 103),
    ("IPPROTO_COMP", 108),
    ("IPPROTO_L2TP", 115),
    ("IPPROTO_SCTP", 132),
    ("IPPROTO_UDPLITE", 136),
    ("IPPROTO_MPLS", 137),
    ("IPPROTO_RAW", 255),
    ("IPPROTO_MPTCP", 262),
];

pub const FAMILIES: &[(&str, u32)] = &[
    ("AF_UNSPEC", 0),
    ("AF_UNIX", 1),
    ("AF_LOCAL", 1),
    ("AF_INET", 2),
    ("AF_BRIDGE", 7),
    ("AF_INET6", 10),
    ("AF_KEY", 15),
    ("AF_NETLINK", 16),
    ("AF_PACKET", 17),
    ("AF_CAN", 29),
    ("AF_TIPC", 30),
    ("AF_BLUETOOTH", 31),
    ("AF_ALG", 38),
    ("AF_VSOCK", 40),
    ("AF_XDP", 44),
    ("AF_MCTP", 45),
];

pub const TCP_STATES: &[(&str, u32)] = &[
    ("TCP_ESTABLISHED", 1),
    ("TCP_SYN_SENT", 2),
    ("TCP_SYN_RECV", 3),
    ("TCP_FIN_WAIT1", 4),
    ("TCP_FIN_WAIT2", 5),
    ("TCP_TIME_WAIT", 6),
    ("TCP_CLOSE", 7),
    ("TCP_CLOSE_WAIT", 8),
    ("TCP_LAST_ACK", 9),
    ("TCP_LISTEN", 10),
    ("TCP_CLOSING", 11),
    ("TCP_NEW_SYN_RECV", 12),
];

pub const SOCK_TYPES: &[(&str, u32)] = &[
    ("SOCK_STREAM", 1),
    ("SOCK_DGRAM", 2),
    ("SOCK_RAW", 3),
    ("SOCK_RDM", 4),
    ("SOCK_SEQPACKET", 5),
    ("SOCK_DCCP", 6),
    ("SOCK_PACKET", 10),
];
