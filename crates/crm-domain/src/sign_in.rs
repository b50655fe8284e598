//! Password sign-in lockout: after too many failed sign-ins in a row, an account's password
//! sign-in is refused for a while, and for twice as long after each further failure.

/// When an account locks, and for how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LockoutPolicy {
    /// Failed sign-ins in a row that lock the account; 0 switches lockout off.
    pub max_failures: u32,
    /// How long the first lock lasts, in seconds.
    pub lock_secs: u64,
}

/// The longest a lock grows to by doubling (unless the first lock is already longer).
pub const MAX_LOCK_SECS: u64 = 3600;

impl LockoutPolicy {
    /// How long to lock the account after its `failures`-th failed sign-in in a row, in
    /// seconds: nothing below the limit; at the limit the first lock, then twice as long
    /// for each failure past it, up to an hour.
    pub fn lock_after(&self, failures: u32) -> Option<u64> {
        if self.max_failures == 0 || failures < self.max_failures || self.lock_secs == 0 {
            return None;
        }
        let doublings = (failures - self.max_failures).min(16);
        let grown = self.lock_secs.saturating_mul(1u64 << doublings);
        Some(grown.min(MAX_LOCK_SECS.max(self.lock_secs)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locks_at_the_limit_and_doubles_up_to_an_hour() {
        let p = LockoutPolicy {
            max_failures: 3,
            lock_secs: 300,
        };
        assert_eq!(p.lock_after(1), None);
        assert_eq!(p.lock_after(2), None);
        assert_eq!(p.lock_after(3), Some(300));
        assert_eq!(p.lock_after(4), Some(600));
        assert_eq!(p.lock_after(5), Some(1200));
        assert_eq!(p.lock_after(6), Some(2400));
        assert_eq!(p.lock_after(7), Some(3600));
        assert_eq!(p.lock_after(4000), Some(3600));
    }

    #[test]
    fn a_zero_limit_or_a_longer_first_lock() {
        let off = LockoutPolicy {
            max_failures: 0,
            lock_secs: 300,
        };
        assert_eq!(off.lock_after(100), None);
        let long = LockoutPolicy {
            max_failures: 1,
            lock_secs: 7200,
        };
        assert_eq!(long.lock_after(1), Some(7200));
        assert_eq!(long.lock_after(5), Some(7200));
    }
}
