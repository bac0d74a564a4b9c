//! Timestamps as the API answers and the store sorts them: ISO 8601 in UTC
//! with exactly three digits of milliseconds (`2026-11-25T19:04:05.120Z`).
//! The width never changes, so that a client parsing the documented `.SSS`
//! form reads every answer, and so that the strings sort in time order in the
//! organization's index.

use std::time::{SystemTime, UNIX_EPOCH};

use aws_sdk_dynamodb::primitives::{DateTime, DateTimeFormat};

/// `t` as `YYYY-MM-DDThh:mm:ss.SSSZ`.
pub fn iso8601(t: SystemTime) -> String {
    let since = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    from_millis(since.as_millis() as i64)
}

fn from_millis(millis: i64) -> String {
    let seconds = DateTime::from_secs(millis.div_euclid(1000)).fmt(DateTimeFormat::DateTime).unwrap_or_default();
    format!("{}.{:03}Z", seconds.trim_end_matches('Z'), millis.rem_euclid(1000))
}

/// A timestamp of ours (or any ISO 8601 UTC one) in epoch milliseconds.
pub fn epoch_millis(stamp: &str) -> Option<i64> {
    DateTime::from_str(stamp, DateTimeFormat::DateTime).ok()?.to_millis().ok()
}

/// A stored timestamp in the three-digit form. Items written before the
/// width was fixed carry fewer digits (`...:20.04Z`); they read as the same
/// instant. `None` for a string that is not an ISO 8601 UTC timestamp.
pub fn canonical(stamp: &str) -> Option<String> {
    let parsed = DateTime::from_str(stamp, DateTimeFormat::DateTime).ok()?;
    let millis = parsed.to_millis().ok()?;
    Some(from_millis(millis))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::time::Duration;

    #[test]
    fn always_three_digits_of_milliseconds() {
        let at = |ms: u64| iso8601(UNIX_EPOCH + Duration::from_millis(ms));
        assert_eq!(at(1_764_097_445_123), "2025-11-25T19:04:05.123Z");
        assert_eq!(at(1_764_097_445_120), "2025-11-25T19:04:05.120Z");
        assert_eq!(at(1_764_097_445_100), "2025-11-25T19:04:05.100Z");
        assert_eq!(at(1_764_097_445_000), "2025-11-25T19:04:05.000Z");
        assert_eq!(at(1_764_097_445_007), "2025-11-25T19:04:05.007Z");
    }

    #[test]
    fn the_old_narrow_forms_read_as_the_same_instant() {
        assert_eq!(canonical("2025-11-25T19:04:05.04Z").as_deref(), Some("2025-11-25T19:04:05.040Z"));
        assert_eq!(canonical("2025-11-25T19:04:05.7Z").as_deref(), Some("2025-11-25T19:04:05.700Z"));
        assert_eq!(canonical("2025-11-25T19:04:05Z").as_deref(), Some("2025-11-25T19:04:05.000Z"));
        assert_eq!(canonical("2025-11-25T19:04:05.123Z").as_deref(), Some("2025-11-25T19:04:05.123Z"));
        assert_eq!(canonical("yesterday"), None);
        assert_eq!(epoch_millis("2025-11-25T19:04:05.123Z"), Some(1_764_097_445_123));
    }

    proptest! {
        #[test]
        fn width_is_fixed_and_string_order_is_time_order(a in 0u64..4_102_444_800_000, b in 0u64..4_102_444_800_000) {
            let (sa, sb) = (iso8601(UNIX_EPOCH + Duration::from_millis(a)), iso8601(UNIX_EPOCH + Duration::from_millis(b)));
            prop_assert_eq!(sa.len(), 24);
            prop_assert_eq!(sa.cmp(&sb), a.cmp(&b));
            prop_assert_eq!(canonical(&sa), Some(sa.clone()));
        }
    }
}
