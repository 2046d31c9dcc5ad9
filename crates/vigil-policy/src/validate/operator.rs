//! Which `matchArgs` operators apply to which argument types, and what their
//! values must look like.

use crate::enums::{ArgType, Operator};

use super::value;

/// Argument types grouped by how Tetragon compares them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ArgClass {
    Integer,
    String,
    File,
    Socket,
    SockAddr,
    SockAddrUn,
    /// `auto` (resolved from BTF at load time) and kernel objects without
    /// documented operators: not checked here.
    Unchecked,
}

impl ArgClass {
    pub(super) fn of(arg_type: ArgType) -> Self {
        use ArgType::*;
        match arg_type {
            Int8 | Uint8 | Int16 | Uint16 | Int32 | Uint32 | Int64 | Uint64 | SizeT
            | Capability | KernelCapT | CapInheritable | CapPermitted | CapEffective
            | Syscall64 | BpfCmd => Self::Integer,
            String | CharBuf | CharIovec | ConstBuf | DataLoc => Self::String,
            File | Path | Fd | Filename | Dentry | LinuxBinprm => Self::File,
            Sock | Socket | Skb => Self::Socket,
            Sockaddr => Self::SockAddr,
            SockaddrUn => Self::SockAddrUn,
            Auto | Cred | UserNamespace | BpfAttr | BpfProg | BpfMap | PerfEvent | LoadInfo
            | Module | NetDevice | Nop | IovIter | Kiocb => Self::Unchecked,
        }
    }

    fn describe(self) -> &'static str {
        match self {
            Self::Integer => "integer types",
            Self::String => "string, char_buf, char_iovec, const_buf, data_loc",
            Self::File => "file, path, fd, filename, dentry, linux_binprm",
            Self::Socket => "sock, socket, skb",
            Self::SockAddr => "sockaddr",
            Self::SockAddrUn => "sockaddr_un",
            Self::Unchecked => "any type",
        }
    }
}

/// Argument classes an operator can be applied to.
pub(super) fn classes_for(operator: Operator) -> &'static [ArgClass] {
    use ArgClass::*;
    use Operator::*;
    match operator {
        Equal | NotEqual => &[Integer, String, File, SockAddrUn],
        Prefix | NotPrefix => &[String, File, SockAddrUn],
        Postfix | NotPostfix => &[String, File],
        GreaterThan | LessThan | Mask | InRange | NotInRange | InMap | NotInMap
        | CapabilitiesGained => &[Integer],
        SPort | NotSPort | SPortPriv | NotSPortPriv | SAddr | NotSAddr => &[Socket, SockAddr],
        DPort | NotDPort | DPortPriv | NotDPortPriv | DAddr | NotDAddr | Protocol | State => {
            &[Socket]
        }
        Family => &[Socket, SockAddr, SockAddrUn],
        SubString | SubStringIgnCase => &[String],
        FileType | NotFileType => &[File],
        CelExpr => &[Integer, String, File, Socket, SockAddr, SockAddrUn],
    }
}

/// Message when `operator` does not apply to `arg_type`, if so.
pub(super) fn type_mismatch(operator: Operator, arg_type: ArgType) -> Option<String> {
    let class = ArgClass::of(arg_type);
    let allowed = classes_for(operator);
    if class == ArgClass::Unchecked || allowed.contains(&class) {
        return None;
    }
    let described: Vec<&str> = allowed.iter().map(|class| class.describe()).collect();
    Some(format!(
        "operator {operator} does not apply to arg type {arg_type}; it applies to: {}",
        described.join("; ")
    ))
}

/// The Priv operators test a fixed port range and take no values.
pub(super) fn takes_values(operator: Operator) -> bool {
    !matches!(
        operator,
        Operator::SPortPriv | Operator::NotSPortPriv | Operator::DPortPriv | Operator::NotDPortPriv
    )
}

/// Limit on the number of values, where the BPF side holds them inline.
pub(super) fn max_values(operator: Operator, class: ArgClass) -> Option<usize> {
    use Operator::*;
    let inline = matches!(
        operator,
        Equal | NotEqual | GreaterThan | LessThan | Mask | InRange | NotInRange
    );
    (inline && class == ArgClass::Integer).then_some(4)
}

/// Checks one value of a filter. `list:NAME` references are checked by the caller.
pub(super) fn check_value(operator: Operator, class: ArgClass, text: &str) -> Result<(), String> {
    use Operator::*;
    match operator {
        SPort | NotSPort | DPort | NotDPort => value::check_port(text),
        SAddr | NotSAddr | DAddr | NotDAddr => value::check_address(text),
        Protocol => value::check_named_number(text, value::PROTOCOLS, "protocol"),
        Family => value::check_named_number(text, value::FAMILIES, "address family"),
        State => value::check_named_number(text, value::TCP_STATES, "TCP state"),
        FileType | NotFileType => {
            if value::FILE_TYPES.contains(&text) {
                Ok(())
            } else {
                Err(format!(
                    "\"{text}\" is not a file type; expected one of: {}",
                    value::FILE_TYPES.join(", ")
                ))
            }
        }
        Prefix | NotPrefix if text.len() > 256 => Err(format!(
            "prefix is {} bytes long; at most 256 bytes allowed",
            text.len()
        )),
        Postfix | NotPostfix if text.len() > 128 => Err(format!(
            "postfix is {} bytes long; at most 128 bytes allowed",
            text.len()
        )),
        InRange | NotInRange | InMap | NotInMap => value::check_integer_or_range(text),
        Equal | NotEqual | GreaterThan | LessThan | Mask if class == ArgClass::Integer => {
            value::check_integer(text)
        }
        _ => Ok(()),
    }
}
