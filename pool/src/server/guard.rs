//! Per-address limits: the connection count, the ban table, and the score
//! that leads to a ban; plus the per-connection share-rate limiter.
//!
//! Addresses are keyed by [`ip_key`]: an IPv4 address as is (IPv4-mapped
//! IPv6 included) and an IPv6 address by its /64, the block one subscriber
//! usually gets, so a single host cannot dodge limits by rotating through
//! its own addresses.
//!
//! Every method takes the time as an argument, so tests drive the clock.
//! The share path stays off shared state: sessions count accepted shares
//! themselves and hand them over with the next fault or tick, so only a
//! rejected share or a malformed request locks its address's (uncontended)
//! score; nothing allocates. The table itself is locked when a connection
//! opens or closes and when [`Guard::sweep`] runs.

use crate::config::BanThreshold;
pub(crate) use proofpool_primitives::ip_key;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// How often a refused address is logged at most.
const REFUSAL_LOG_EVERY: Duration = Duration::from_secs(10);

/// The per-address limits, from [`PoolConfig`](crate::PoolConfig).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    pub(crate) max_per_ip: Option<u32>,
    pub(crate) threshold: Option<BanThreshold>,
    pub(crate) ban_duration: Duration,
}

/// Why a connection was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// The address is banned.
    Banned {
        /// How long the ban still lasts.
        remaining: Duration,
    },
    /// The address already has `max_connections_per_ip` connections.
    PerIpLimit,
}

/// What a refused connection should be logged as, if at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RefusalLog {
    /// Refusals of this address not logged since the last line.
    pub(crate) suppressed: u64,
}

/// What one event did to an address's standing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Nothing changed.
    Fine,
    /// This event banned the address.
    Banned,
    /// The address was already banned (by another connection).
    AlreadyBanned,
}

/// Something a connection did wrong, which counts towards a ban.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fault {
    /// A share was rejected for the miner's fault.
    Rejected,
    /// A request was malformed.
    Malformed,
}

/// Counts that decide a ban, halved every window.
#[derive(Debug, Clone, Copy)]
struct Score {
    window_start: Instant,
    shares: u32,
    rejected: u32,
    malformed: u32,
}

impl Score {
    fn new(now: Instant) -> Self {
        Self {
            window_start: now,
            shares: 0,
            rejected: 0,
            malformed: 0,
        }
    }

    /// Counts `accepted` shares, then `fault`; true if the address now
    /// passes `threshold`.
    fn record(
        &mut self,
        accepted: u32,
        fault: Option<Fault>,
        now: Instant,
        threshold: &BanThreshold,
    ) -> bool {
        if now.saturating_duration_since(self.window_start) >= threshold.window {
            self.shares /= 2;
            self.rejected /= 2;
            self.malformed /= 2;
            self.window_start = now;
        }
        self.shares = self.shares.saturating_add(accepted);
        match fault {
            None => {}
            Some(Fault::Rejected) => {
                self.shares = self.shares.saturating_add(1);
                self.rejected = self.rejected.saturating_add(1);
            }
            Some(Fault::Malformed) => self.malformed = self.malformed.saturating_add(1),
        }
        let too_many_rejects = self.shares >= threshold.min_shares.max(1)
            && u64::from(self.rejected) * 100
                >= u64::from(threshold.reject_percent) * u64::from(self.shares);
        too_many_rejects || self.malformed >= threshold.invalid_inputs.max(1)
    }
}

/// One address's standing, shared by its connections.
#[derive(Debug)]
pub(crate) struct IpState {
    score: Mutex<Score>,
    /// Milliseconds after [`Guard`]'s base until which the address is
    /// banned; 0 when it never was.
    banned_until: AtomicU64,
}

/// A table entry: the state plus what only the table lock guards.
#[derive(Debug)]
struct Slot {
    state: Arc<IpState>,
    conns: u32,
    last_seen: Instant,
    refused_unlogged: u64,
    logged_at: Option<Instant>,
}

/// What [`Guard::sweep`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct SweepReport {
    /// Addresses banned right now.
    pub(crate) banned: usize,
    /// Addresses tracked after the sweep.
    pub(crate) tracked: usize,
}

/// The per-address table.
#[derive(Debug)]
pub(crate) struct Guard {
    limits: Limits,
    base: Instant,
    table: Mutex<HashMap<IpAddr, Slot>>,
}

impl Guard {
    /// A guard whose clock starts at `base` (every `now` passed later is at
    /// or after it).
    pub(crate) fn new(limits: Limits, base: Instant) -> Self {
        Self {
            limits,
            base,
            table: Mutex::new(HashMap::new()),
        }
    }

    fn table(&self) -> MutexGuard<'_, HashMap<IpAddr, Slot>> {
        self.table.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn millis(&self, now: Instant) -> u64 {
        u64::try_from(now.saturating_duration_since(self.base).as_millis()).unwrap_or(u64::MAX)
    }

    /// How long `state`'s ban still lasts at `now`, if it is banned.
    fn ban_remaining(&self, state: &IpState, now: Instant) -> Option<Duration> {
        let until = state.banned_until.load(Ordering::Relaxed);
        let now = self.millis(now);
        (until > now).then(|| Duration::from_millis(until - now))
    }

    /// Lets a connection from `ip` in, or says why not. The returned
    /// [`Admission`] gives the slot back when dropped.
    pub(crate) fn admit(self: &Arc<Self>, ip: IpAddr, now: Instant) -> Result<Admission, Refusal> {
        let key = ip_key(ip);
        let mut table = self.table();
        let slot = table.entry(key).or_insert_with(|| Slot {
            state: Arc::new(IpState {
                score: Mutex::new(Score::new(now)),
                banned_until: AtomicU64::new(0),
            }),
            conns: 0,
            last_seen: now,
            refused_unlogged: 0,
            logged_at: None,
        });
        slot.last_seen = now;
        if let Some(remaining) = self.ban_remaining(&slot.state, now) {
            return Err(Refusal::Banned { remaining });
        }
        if self.limits.max_per_ip.is_some_and(|max| slot.conns >= max) {
            return Err(Refusal::PerIpLimit);
        }
        slot.conns += 1;
        Ok(Admission {
            guard: self.clone(),
            key,
            state: slot.state.clone(),
        })
    }

    /// Whether a refusal of `ip` at `now` should be logged: the first one,
    /// then at most one line per [`REFUSAL_LOG_EVERY`] per address.
    pub(crate) fn log_refusal(&self, ip: IpAddr, now: Instant) -> Option<RefusalLog> {
        let mut table = self.table();
        let slot = table.get_mut(&ip_key(ip))?;
        let due = slot
            .logged_at
            .is_none_or(|at| now.saturating_duration_since(at) >= REFUSAL_LOG_EVERY);
        if due {
            slot.logged_at = Some(now);
            let suppressed = std::mem::take(&mut slot.refused_unlogged);
            Some(RefusalLog { suppressed })
        } else {
            slot.refused_unlogged += 1;
            None
        }
    }

    /// Forgets addresses with no connection, no ban and nothing seen for a
    /// score window (or a ban duration without a threshold), and counts
    /// the bans in force. Call it every few seconds.
    pub(crate) fn sweep(&self, now: Instant) -> SweepReport {
        let forget_after = self
            .limits
            .threshold
            .map_or(self.limits.ban_duration, |t| t.window);
        let mut table = self.table();
        let mut banned = 0;
        table.retain(|_, slot| {
            if self.ban_remaining(&slot.state, now).is_some() {
                banned += 1;
                return true;
            }
            slot.conns > 0 || now.saturating_duration_since(slot.last_seen) < forget_after
        });
        SweepReport {
            banned,
            tracked: table.len(),
        }
    }

    /// Bans `key` until `now + ban_duration`, unless it is banned already.
    fn ban(&self, state: &IpState, now: Instant) -> Verdict {
        let until = self.millis(now).saturating_add(
            u64::try_from(self.limits.ban_duration.as_millis()).unwrap_or(u64::MAX),
        );
        let now_ms = self.millis(now);
        let mut current = state.banned_until.load(Ordering::Relaxed);
        loop {
            if current > now_ms {
                return Verdict::AlreadyBanned;
            }
            match state.banned_until.compare_exchange_weak(
                current,
                until,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => return Verdict::Banned,
                Err(seen) => current = seen,
            }
        }
    }
}

/// A connection's place in the table, released on drop.
#[derive(Debug)]
pub(crate) struct Admission {
    guard: Arc<Guard>,
    key: IpAddr,
    state: Arc<IpState>,
}

impl Admission {
    /// The address (IPv6: the /64) this connection counts under.
    pub(crate) fn key(&self) -> IpAddr {
        self.key
    }

    /// Counts `accepted` shares and then `fault` for this connection's
    /// address; bans it when the threshold is passed.
    pub(crate) fn record(&self, accepted: u32, fault: Option<Fault>, now: Instant) -> Verdict {
        let Some(threshold) = self.guard.limits.threshold else {
            return Verdict::Fine;
        };
        let passed = self
            .state
            .score
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .record(accepted, fault, now, &threshold);
        if passed {
            let verdict = self.guard.ban(&self.state, now);
            if verdict == Verdict::Banned {
                // Start over once the ban ends.
                *self.state.score.lock().unwrap_or_else(|p| p.into_inner()) = Score::new(now);
            }
            verdict
        } else if self.is_banned(now) {
            Verdict::AlreadyBanned
        } else {
            Verdict::Fine
        }
    }

    /// Whether this connection's address is banned (by any connection).
    pub(crate) fn is_banned(&self, now: Instant) -> bool {
        self.guard.ban_remaining(&self.state, now).is_some()
    }
}

impl Drop for Admission {
    fn drop(&mut self) {
        let now = Instant::now();
        let mut table = self.guard.table();
        if let Some(slot) = table.get_mut(&self.key) {
            slot.conns = slot.conns.saturating_sub(1);
            slot.last_seen = slot.last_seen.max(now);
        }
    }
}

/// A token bucket in its GCRA form: `rate` per second on average, bursts of
/// `burst` at once. It keeps one instant and never allocates.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RateLimiter {
    /// Time one token takes to refill.
    interval: Duration,
    /// How far ahead of now the theoretical arrival time may run.
    tolerance: Duration,
    /// When the bucket would be full again.
    tat: Option<Instant>,
}

impl RateLimiter {
    /// `rate` per second, bursts of `burst` (at least 1).
    pub(crate) fn new(rate: u32, burst: u32) -> Self {
        let interval = Duration::from_secs(1) / rate.max(1);
        Self {
            interval,
            tolerance: interval * burst.max(1).saturating_sub(1),
            tat: None,
        }
    }

    /// Takes a token at `now`: false when the bucket is empty.
    pub(crate) fn allow(&mut self, now: Instant) -> bool {
        let tat = self.tat.map_or(now, |t| t.max(now));
        if tat.saturating_duration_since(now) > self.tolerance {
            return false;
        }
        self.tat = Some(tat + self.interval);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn limits(max_per_ip: Option<u32>, threshold: Option<BanThreshold>) -> Limits {
        Limits {
            max_per_ip,
            threshold,
            ban_duration: Duration::from_secs(60),
        }
    }

    fn v4(last: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(192, 0, 2, last))
    }

    const STRICT: BanThreshold = BanThreshold {
        min_shares: 10,
        reject_percent: 50,
        invalid_inputs: 5,
        window: Duration::from_secs(100),
    };

    #[test]
    fn per_ip_cap_counts_open_connections_only() {
        let t0 = Instant::now();
        let guard = Arc::new(Guard::new(limits(Some(2), None), t0));
        let a = guard.admit(v4(1), t0).unwrap();
        let b = guard.admit(v4(1), t0).unwrap();
        assert_eq!(guard.admit(v4(1), t0).unwrap_err(), Refusal::PerIpLimit);
        // Another address is unaffected.
        let _c = guard.admit(v4(2), t0).unwrap();
        drop(a);
        let _d = guard.admit(v4(1), t0).unwrap();
        drop(b);
    }

    #[test]
    fn ipv6_counts_per_slash_64_and_mapped_v4_as_v4() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::9".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(ip_key(a), ip_key(b));
        assert_ne!(ip_key(a), ip_key(c));
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().unwrap();
        assert_eq!(ip_key(mapped), v4(7));
        let t0 = Instant::now();
        let guard = Arc::new(Guard::new(limits(Some(1), None), t0));
        let _a = guard.admit(a, t0).unwrap();
        assert_eq!(guard.admit(b, t0).unwrap_err(), Refusal::PerIpLimit);
        assert!(guard.admit(c, t0).is_ok());
    }

    #[test]
    fn reject_ratio_bans_only_after_the_minimum_sample() {
        let t0 = Instant::now();
        let guard = Arc::new(Guard::new(limits(None, Some(STRICT)), t0));
        let conn = guard.admit(v4(1), t0).unwrap();
        // 9 rejects: under the sample, however bad.
        for _ in 0..9 {
            assert_eq!(conn.record(0, Some(Fault::Rejected), t0), Verdict::Fine);
        }
        // 10th share: 100% rejected over 10.
        assert_eq!(conn.record(0, Some(Fault::Rejected), t0), Verdict::Banned);
        assert!(conn.is_banned(t0));
        match guard.admit(v4(1), t0 + Duration::from_secs(1)) {
            Err(Refusal::Banned { remaining }) => assert_eq!(remaining, Duration::from_secs(59)),
            other => panic!("expected a ban, got {other:?}"),
        }
        // Another connection of the address sees it.
        assert_eq!(
            conn.record(1, None, t0 + Duration::from_secs(2)),
            Verdict::AlreadyBanned
        );
        // The ban ends.
        let later = t0 + Duration::from_secs(61);
        assert!(!conn.is_banned(later));
        assert!(guard.admit(v4(1), later).is_ok());
    }

    #[test]
    fn a_mostly_good_miner_is_never_banned() {
        let t0 = Instant::now();
        let guard = Arc::new(Guard::new(limits(None, Some(STRICT)), t0));
        let conn = guard.admit(v4(1), t0).unwrap();
        for i in 0..10_000u64 {
            let now = t0 + Duration::from_millis(i * 50);
            // Accepted shares arrive in batches, faults one by one.
            let verdict = if i % 3 == 0 {
                conn.record(2, Some(Fault::Rejected), now)
            } else {
                Verdict::Fine
            };
            assert_eq!(verdict, Verdict::Fine, "share {i}");
        }
    }

    #[test]
    fn malformed_inputs_ban_and_counts_fade_with_the_window() {
        let t0 = Instant::now();
        let guard = Arc::new(Guard::new(limits(None, Some(STRICT)), t0));
        let conn = guard.admit(v4(1), t0).unwrap();
        for _ in 0..4 {
            assert_eq!(conn.record(0, Some(Fault::Malformed), t0), Verdict::Fine);
        }
        // A window later the 4 count as 2: three more are needed, not one.
        let later = t0 + Duration::from_secs(100);
        assert_eq!(conn.record(0, Some(Fault::Malformed), later), Verdict::Fine);
        assert_eq!(conn.record(0, Some(Fault::Malformed), later), Verdict::Fine);
        assert_eq!(
            conn.record(0, Some(Fault::Malformed), later),
            Verdict::Banned
        );
    }

    #[test]
    fn no_threshold_never_bans() {
        let t0 = Instant::now();
        let guard = Arc::new(Guard::new(limits(None, None), t0));
        let conn = guard.admit(v4(1), t0).unwrap();
        for _ in 0..1000 {
            assert_eq!(conn.record(0, Some(Fault::Malformed), t0), Verdict::Fine);
        }
    }

    #[test]
    fn sweep_forgets_idle_addresses_and_counts_bans() {
        let t0 = Instant::now();
        let guard = Arc::new(Guard::new(limits(None, Some(STRICT)), t0));
        let bad = guard.admit(v4(1), t0).unwrap();
        for _ in 0..5 {
            bad.record(0, Some(Fault::Malformed), t0);
        }
        drop(bad);
        let idle = guard.admit(v4(2), t0).unwrap();
        drop(idle);
        let _open = guard.admit(v4(3), t0).unwrap();
        assert_eq!(
            guard.sweep(t0 + Duration::from_secs(1)),
            SweepReport {
                banned: 1,
                tracked: 3
            }
        );
        // After the window: the idle address is forgotten, the ban and the
        // open connection stay.
        let later = t0 + Duration::from_secs(101);
        assert_eq!(
            guard.sweep(later),
            SweepReport {
                banned: 0,
                tracked: 1
            }
        );
    }

    #[test]
    fn refusals_are_logged_once_per_period() {
        let t0 = Instant::now();
        let guard = Arc::new(Guard::new(limits(Some(0), None), t0));
        assert!(guard.admit(v4(1), t0).is_err());
        assert_eq!(
            guard.log_refusal(v4(1), t0),
            Some(RefusalLog { suppressed: 0 })
        );
        for i in 1..5 {
            assert!(
                guard
                    .log_refusal(v4(1), t0 + Duration::from_secs(i))
                    .is_none()
            );
        }
        assert_eq!(
            guard.log_refusal(v4(1), t0 + Duration::from_secs(10)),
            Some(RefusalLog { suppressed: 4 })
        );
    }

    #[test]
    fn rate_limiter_allows_the_burst_then_the_rate() {
        let t0 = Instant::now();
        let mut limiter = RateLimiter::new(10, 20);
        let allowed = (0..100).filter(|_| limiter.allow(t0)).count();
        assert_eq!(allowed, 20);
        // 100 ms refills one token.
        assert!(!limiter.allow(t0 + Duration::from_millis(50)));
        assert!(limiter.allow(t0 + Duration::from_millis(100)));
        assert!(!limiter.allow(t0 + Duration::from_millis(100)));
        // A second refills ten.
        let t1 = t0 + Duration::from_millis(1100);
        assert_eq!((0..100).filter(|_| limiter.allow(t1)).count(), 10);
        // Steady at the rate: never refused.
        let mut steady = RateLimiter::new(10, 20);
        for i in 0..1000 {
            assert!(steady.allow(t0 + Duration::from_millis(i * 100)));
        }
    }
}
