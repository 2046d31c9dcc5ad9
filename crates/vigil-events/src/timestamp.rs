//! Timestamps as proto3 JSON writes them: RFC 3339 in UTC with 0, 3, 6 or 9
//! fractional digits, the fewest that keep every nanosecond.
use time::{format_description::well_known::Rfc3339, OffsetDateTime};

pub fn format_unix_nanos(nanos: u128) -> String {
    let secs = (nanos / 1_000_000_000) as i64;
    let frac = (nanos % 1_000_000_000) as u32;
    let Ok(t) = OffsetDateTime::from_unix_timestamp(secs) else {
        return String::from("1970-01-01T00:00:00Z");
    };
    let mut base = t.format(&Rfc3339).unwrap_or_default();
    // Rfc3339 without subseconds ends with "Z"; put the fraction before it.
    base.pop();
    match frac {
        0 => {}
        f if f % 1_000_000 == 0 => base.push_str(&format!(".{:03}", f / 1_000_000)),
        f if f % 1_000 == 0 => base.push_str(&format!(".{:06}", f / 1_000)),
        f => base.push_str(&format!(".{f:09}")),
    }
    base.push('Z');
    base
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fraction_digits_follow_proto3_json() {
        let s = 1_696_629_837u128 * 1_000_000_000;
        assert_eq!(format_unix_nanos(s), "2023-10-06T22:03:57Z");
        assert_eq!(
            format_unix_nanos(s + 700_000_000),
            "2023-10-06T22:03:57.700Z"
        );
        assert_eq!(
            format_unix_nanos(s + 700_327_000),
            "2023-10-06T22:03:57.700327Z"
        );
        assert_eq!(
            format_unix_nanos(s + 700_327_580),
            "2023-10-06T22:03:57.700327580Z"
        );
    }
}
