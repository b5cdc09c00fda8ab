//! The schedule's arithmetic: a server's stable place in the interval, its next slot, and
//! the backoff of a failing server. Pure functions of their arguments (and the process id, for
//! jitter), so they are tested without a clock.

use std::hash::{Hash, Hasher};
use std::time::Duration;

use tokio::time::Instant;
use uuid::Uuid;

/// The wait before the next attempt after `failures` failed polls in a row:
/// interval x 2^(failures-1), capped at `max` (never below the interval), then scaled by
/// 0.8..1.2 with `unit` in [0, 1) so that hosts that failed together do not retry together.
pub(super) fn backoff_delay(
    interval: Duration,
    failures: u32,
    max: Duration,
    unit: f64,
) -> Duration {
    let doubled = interval.as_secs_f64() * 2f64.powi(failures.clamp(1, 30) as i32 - 1);
    let capped = doubled.min(max.as_secs_f64()).max(interval.as_secs_f64());
    Duration::from_secs_f64(capped * (0.8 + 0.4 * unit.clamp(0.0, 1.0)))
}

/// A server's stable place in the interval: the same on every restart, spread evenly.
pub(super) fn offset(id: Uuid, interval: Duration) -> Duration {
    let ms = u64::try_from(interval.as_millis())
        .unwrap_or(u64::MAX)
        .max(1);
    Duration::from_millis(id.as_u64_pair().0 % ms)
}

/// The first slot at or after `now`: start + offset + k x interval.
pub(super) fn next_slot(
    start: Instant,
    offset: Duration,
    interval: Duration,
    now: Instant,
) -> Instant {
    let first = start + offset;
    if first >= now {
        return first;
    }
    let behind = now.duration_since(first).as_secs_f64();
    let k = (behind / interval.as_secs_f64()).ceil();
    first + interval.mul_f64(k)
}

/// A number in [0, 1) that differs per server and attempt, for jitter (no RNG needed).
pub(super) fn pseudo_random(id: Uuid, n: u32) -> f64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    (id, n, std::process::id()).hash(&mut h);
    (h.finish() % 10_000) as f64 / 10_000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_are_stable_and_inside_the_interval() {
        let interval = Duration::from_secs(60);
        let id = Uuid::new_v4();
        assert_eq!(offset(id, interval), offset(id, interval));
        let offsets: Vec<Duration> = (0..1000)
            .map(|_| offset(Uuid::new_v4(), interval))
            .collect();
        assert!(offsets.iter().all(|o| *o < interval));
        // Spread: every 6-second tenth of the interval gets some servers.
        for tenth in 0..10 {
            let lo = Duration::from_secs(tenth * 6);
            let n = offsets
                .iter()
                .filter(|o| **o >= lo && **o < lo + Duration::from_secs(6))
                .count();
            assert!(n > 50, "tenth {tenth} has {n}");
        }
    }

    #[test]
    fn backoff_doubles_with_jitter_up_to_the_cap() {
        let i = Duration::from_secs(60);
        let max = Duration::from_secs(600);
        let mid = |n| backoff_delay(i, n, max, 0.5);
        assert_eq!(mid(1), Duration::from_secs(60));
        assert_eq!(mid(2), Duration::from_secs(120));
        assert_eq!(mid(3), Duration::from_secs(240));
        assert_eq!(mid(4), Duration::from_secs(480));
        assert_eq!(mid(5), Duration::from_secs(600));
        assert_eq!(mid(40), Duration::from_secs(600));
        assert_eq!(backoff_delay(i, 2, max, 0.0), Duration::from_secs(96));
        assert!(backoff_delay(i, 2, max, 0.999) < Duration::from_secs(144));
        // A cap below the interval never makes a failing host polled more often.
        assert_eq!(backoff_delay(i, 3, Duration::from_secs(10), 0.5), i);
        // Jitter differs between hosts.
        let a = pseudo_random(Uuid::new_v4(), 1);
        let b = pseudo_random(Uuid::new_v4(), 1);
        assert!((0.0..1.0).contains(&a) && a != b);
    }

    #[test]
    fn next_slot_is_the_first_one_not_in_the_past() {
        let start = Instant::now();
        let i = Duration::from_secs(10);
        let o = Duration::from_secs(3);
        assert_eq!(next_slot(start, o, i, start), start + o);
        assert_eq!(
            next_slot(start, o, i, start + Duration::from_secs(4)),
            start + Duration::from_secs(13)
        );
        assert_eq!(
            next_slot(start, o, i, start + Duration::from_secs(13)),
            start + Duration::from_secs(13)
        );
    }
}
