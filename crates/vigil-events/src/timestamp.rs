//! Timestamps as proto3 JSON writes them: RFC 3339 in UTC with 0, 3, 6 or 9
//! fractional digits, the fewest that keep every nanosecond.
use time::{format_description::well_known::Rfc3339, OffsetDateTime};

pub fn format_unix_nanos(nanos: u128) -> String {
    TimestampFormatter::default().format(nanos)
}

/// Formats timestamps, computing the date and time of day once per second:
/// the events of one second share them.
#[derive(Debug, Default)]
pub struct TimestampFormatter {
    secs: Option<i64>,
    /// "YYYY-MM-DDTHH:MM:SS" of `secs`.
    base: String,
}

impl TimestampFormatter {
    pub fn format(&mut self, nanos: u128) -> String {
        let secs = (nanos / 1_000_000_000) as i64;
        let frac = (nanos % 1_000_000_000) as u32;
        if self.secs != Some(secs) {
            let Ok(t) = OffsetDateTime::from_unix_timestamp(secs) else {
                return String::from("1970-01-01T00:00:00Z");
            };
            let mut base = t.format(&Rfc3339).unwrap_or_default();
            // Rfc3339 without subseconds ends with "Z".
            base.pop();
            self.base = base;
            self.secs = Some(secs);
        }
        let mut out = String::with_capacity(self.base.len() + 11);
        out.push_str(&self.base);
        push_fraction(&mut out, frac);
        out.push('Z');
        out
    }
}

/// ".ddd", ".dddddd" or ".ddddddddd": the fewest digits that keep `frac`; nothing for 0.
fn push_fraction(out: &mut String, frac: u32) {
    let len = match frac {
        0 => return,
        f if f % 1_000_000 == 0 => 3,
        f if f % 1_000 == 0 => 6,
        _ => 9,
    };
    let mut digits = [b'0'; 9];
    let mut f = frac;
    for d in digits.iter_mut().rev() {
        *d += (f % 10) as u8;
        f /= 10;
    }
    out.push('.');
    out.extend(digits[..len].iter().map(|&d| char::from(d)));
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

    #[test]
    fn the_cached_second_changes_with_the_time() {
        let mut f = TimestampFormatter::default();
        let s = 1_696_629_837u128 * 1_000_000_000;
        assert_eq!(f.format(s + 5), "2023-10-06T22:03:57.000000005Z");
        assert_eq!(f.format(s + 999_999_999), "2023-10-06T22:03:57.999999999Z");
        assert_eq!(f.format(s + 1_000_000_000), "2023-10-06T22:03:58Z");
        assert_eq!(f.format(s - 1_000_000), "2023-10-06T22:03:56.999Z");
    }
}
