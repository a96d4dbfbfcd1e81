//! Deadlines with saturating arithmetic.

use std::time::{Duration, Instant};

/// `now + after`, or `None` ("never") when that is past what an `Instant` can hold. A huge TTL means the
/// record never expires; it must not overflow into instant expiry (the KPL's bug with `RecordTtl` near
/// `Long.MAX_VALUE`).
pub(crate) fn deadline_after(now: Instant, after: Duration) -> Option<Instant> {
    now.checked_add(after)
}

/// The earlier of two optional deadlines, where `None` means never.
pub(crate) fn earliest(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, None) => a,
        (None, b) => b,
    }
}

/// Whether a deadline (where `None` means never) has passed.
pub(crate) fn has_passed(deadline: Option<Instant>, now: Instant) -> bool {
    deadline.is_some_and(|deadline| deadline <= now)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn huge_ttl_means_never() {
        let now = crate::test_epoch();
        assert_eq!(deadline_after(now, Duration::MAX), None);
        assert!(!has_passed(deadline_after(now, Duration::MAX), now + Duration::from_secs(1 << 40)));
        let soon = deadline_after(now, Duration::from_secs(1));
        assert!(has_passed(soon, now + Duration::from_secs(1)));
        assert!(!has_passed(soon, now));
        assert_eq!(earliest(soon, None), soon);
        assert_eq!(earliest(None, None), None);
    }
}
