//! Syntax of scalar values found in selectors and actions. Each checker
//! returns a message describing what is expected when the value is invalid.

use std::net::IpAddr;

pub(super) use crate::net::{FAMILIES, PROTOCOLS, TCP_STATES};

/// Integer as Go's `strconv.ParseInt(s, 0, 64)` reads it: optional sign,
/// then decimal, `0x` hex, `0o`/leading-`0` octal or `0b` binary.
pub(crate) fn parse_integer(text: &str) -> Option<i128> {
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    let lower = digits.to_ascii_lowercase();
    let (radix, body) = if let Some(body) = lower.strip_prefix("0x") {
        (16, body)
    } else if let Some(body) = lower.strip_prefix("0o") {
        (8, body)
    } else if let Some(body) = lower.strip_prefix("0b") {
        (2, body)
    } else if lower.len() > 1 && lower.starts_with('0') {
        (8, &lower[1..])
    } else {
        (10, lower.as_str())
    };
    if body.is_empty() || !body.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    let magnitude = i128::from_str_radix(body, radix).ok()?;
    Some(if negative { -magnitude } else { magnitude })
}

pub(super) fn check_integer(text: &str) -> Result<(), String> {
    parse_integer(text)
        .map(|_| ())
        .ok_or_else(|| format!("\"{text}\" is not an integer (decimal, 0x hex or 0 octal)"))
}

/// `N` or `MIN:MAX`.
pub(super) fn check_integer_or_range(text: &str) -> Result<(), String> {
    let valid = match text.split_once(':') {
        Some((low, high)) => matches!(
            (parse_integer(low), parse_integer(high)),
            (Some(low), Some(high)) if low <= high
        ),
        None => parse_integer(text).is_some(),
    };
    valid
        .then_some(())
        .ok_or_else(|| format!("\"{text}\" is not an integer or a MIN:MAX range"))
}

/// A port `0..=65535`, or a `MIN:MAX` port range.
pub(super) fn check_port(text: &str) -> Result<(), String> {
    let port = |part: &str| parse_integer(part).filter(|port| (0..=65535).contains(port));
    let valid = match text.split_once(':') {
        Some((low, high)) => {
            matches!((port(low), port(high)), (Some(low), Some(high)) if low <= high)
        }
        None => port(text).is_some(),
    };
    valid
        .then_some(())
        .ok_or_else(|| format!("\"{text}\" is not a port (0-65535) or a MIN:MAX port range"))
}

/// An IPv4/IPv6 address or CIDR.
pub(super) fn check_address(text: &str) -> Result<(), String> {
    let valid = match text.split_once('/') {
        Some((address, prefix)) => match (address.parse::<IpAddr>(), prefix.parse::<u8>()) {
            (Ok(IpAddr::V4(_)), Ok(prefix)) => prefix <= 32,
            (Ok(IpAddr::V6(_)), Ok(prefix)) => prefix <= 128,
            _ => false,
        },
        None => text.parse::<IpAddr>().is_ok(),
    };
    valid.then_some(()).ok_or_else(|| {
        format!("\"{text}\" is not an IP address or CIDR (e.g. 10.0.0.0/8, fd00::/8)")
    })
}

/// A number or one of the symbolic names of a kernel constant table.
pub(super) fn check_named_number(
    text: &str,
    table: &[(&str, u32)],
    what: &str,
) -> Result<(), String> {
    if parse_integer(text).is_some() || table.iter().any(|(name, _)| *name == text) {
        return Ok(());
    }
    let names: Vec<&str> = table.iter().map(|(name, _)| *name).collect();
    Err(format!(
        "\"{text}\" is not a {what}; expected a number or one of: {}",
        names.join(", ")
    ))
}

pub(super) const FILE_TYPES: &[&str] = &["reg", "dir", "lnk", "sock", "blk", "chr", "fifo"];

/// `rateLimit`: digits, optionally followed by `s`, `m` or `h` (any case);
/// plain digits are seconds.
pub(super) fn check_rate_limit(text: &str) -> Result<(), String> {
    let digits = text
        .strip_suffix(['s', 'S', 'm', 'M', 'h', 'H'])
        .unwrap_or(text);
    let valid =
        !digits.is_empty() && digits.len() <= 19 && digits.bytes().all(|b| b.is_ascii_digit());
    valid.then_some(()).ok_or_else(|| {
        format!(
            "invalid rate limit \"{text}\"; expected a whole number of seconds, optionally \
             followed by s, m or h (e.g. \"30\", \"30s\", \"5m\", \"1h\")"
        )
    })
}

/// `binaryDigests` entry: `sha1:`, `sha256:`, `sha384:`, `sha512:` with the
/// matching number of hex digits, or `build-id:` with hex digits.
pub(super) fn check_binary_digest(text: &str) -> Result<(), String> {
    let is_hex = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_hexdigit());
    let valid = match text.split_once(':') {
        Some(("sha1", hex)) => hex.len() == 40 && is_hex(hex),
        Some(("sha256", hex)) => hex.len() == 64 && is_hex(hex),
        Some(("sha384", hex)) => hex.len() == 96 && is_hex(hex),
        Some(("sha512", hex)) => hex.len() == 128 && is_hex(hex),
        Some(("build-id", hex)) => is_hex(hex),
        _ => false,
    };
    valid.then_some(()).ok_or_else(|| {
        format!(
            "\"{text}\" is not a digest; expected sha1:, sha256:, sha384: or sha512: followed \
             by the hex digest, or build-id: followed by hex"
        )
    })
}

/// Go's `strconv.ParseBool` spellings, used by boolean policy options.
pub(super) fn check_bool(text: &str) -> Result<(), String> {
    const SPELLINGS: [&str; 12] = [
        "1", "t", "T", "TRUE", "true", "True", "0", "f", "F", "FALSE", "false", "False",
    ];
    SPELLINGS
        .contains(&text)
        .then_some(())
        .ok_or_else(|| format!("\"{text}\" is not a boolean; expected true or false"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_follow_go_base_prefixes() {
        assert_eq!(parse_integer("42"), Some(42));
        assert_eq!(parse_integer("-1"), Some(-1));
        assert_eq!(parse_integer("0x1F"), Some(31));
        assert_eq!(parse_integer("010"), Some(8));
        assert_eq!(parse_integer("0"), Some(0));
        assert_eq!(parse_integer("4a"), None);
        assert_eq!(parse_integer(""), None);
    }

    #[test]
    fn ports_and_ranges() {
        assert!(check_port("443").is_ok());
        assert!(check_port("1:1023").is_ok());
        assert!(check_port("70000").is_err());
        assert!(check_port("10:5").is_err());
    }

    #[test]
    fn addresses_and_cidrs() {
        assert!(check_address("127.0.0.1").is_ok());
        assert!(check_address("127.0.0.1/8").is_ok());
        assert!(check_address("fd00::/8").is_ok());
        assert!(check_address("10.0.0.0/33").is_err());
        assert!(check_address("${PODCIDR}").is_err());
    }

    #[test]
    fn rate_limits() {
        for good in ["5", "5s", "1m", "1h", "10M"] {
            assert!(check_rate_limit(good).is_ok(), "{good}");
        }
        for bad in ["", "s", "5d", "-5", "1.5m", "5 m"] {
            assert!(check_rate_limit(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn digests() {
        assert!(check_binary_digest(&format!("sha256:{}", "a".repeat(64))).is_ok());
        assert!(check_binary_digest("build-id:abc123").is_ok());
        assert!(check_binary_digest("sha256:abc").is_err());
        assert!(check_binary_digest("md5:abc").is_err());
    }
}
