//! Timeouts, the vardiff tick, and the ban score: what a session does
//! besides answering requests.

use super::Session;
use crate::server::guard::{Fault, Verdict};
use crate::session::{Action, Event};
use proofpool_primitives::Difficulty;
use proofpool_stratum as sv1;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

impl Session {
    /// The earliest of the handshake deadline, the idle deadline and the
    /// next tick (while there is work).
    pub(super) fn next_deadline(&self) -> Instant {
        let config = &self.shared.config;
        // Far enough to never fire, near enough not to overflow.
        let mut next = self.now + Duration::from_secs(24 * 3600);
        if let Some(idle) = config.idle_timeout {
            next = next.min(self.last_read + idle);
        }
        if !self.ready()
            && let Some(handshake) = config.handshake_timeout
        {
            next = next.min(self.started + handshake);
        }
        if !self.core.channel().is_empty() {
            next = next.min(self.next_tick);
        }
        next
    }

    pub(super) fn on_timer(&mut self) {
        let config = &self.shared.config;
        if !self.ready()
            && config
                .handshake_timeout
                .is_some_and(|t| self.now >= self.started + t)
        {
            tracing::debug!(peer = %self.peer, "handshake timeout: closing");
            self.push(sv1::show_message(
                "subscribe and authorize took too long; closing",
            ));
            self.close = true;
            return;
        }
        if config
            .idle_timeout
            .is_some_and(|t| self.now >= self.last_read + t)
        {
            tracing::debug!(peer = %self.peer, "idle timeout: closing");
            self.push(sv1::show_message("no message for too long; closing"));
            self.close = true;
            return;
        }
        if self.now >= self.next_tick {
            self.next_tick = self.now + self.tick_every;
            self.tick();
        }
    }

    /// Reports the hashrate estimate and lets vardiff lower the difficulty
    /// of a miner that went quiet.
    pub(super) fn tick(&mut self) {
        if self.unscored_accepted > 0 {
            self.score(None);
        }
        for action in self.core.handle(Event::Tick, self.now) {
            match action {
                Action::Hashrate(estimate) => self.report_hashrate(estimate),
                Action::Retarget(next) => {
                    self.retargeted(next);
                    self.resend_if_ready();
                }
                _ => {}
            }
        }
    }

    /// Replaces this session's contribution to the pool's hashrate.
    pub(super) fn report_hashrate(&mut self, estimate: u64) {
        let delta = estimate.wrapping_sub(self.reported_hashrate);
        self.shared.hashrate.fetch_add(delta, Ordering::Relaxed);
        self.reported_hashrate = estimate;
    }

    /// After vardiff chose `next`; [`Session::resend_if_ready`] sends it
    /// with the current job again.
    pub(super) fn retargeted(&mut self, next: Difficulty) {
        tracing::debug!(peer = %self.peer, to = %next, "vardiff retarget");
        self.shared.metrics.retargets.increment(1);
    }

    /// A difficulty the miner asked for: vardiff's new starting point.
    pub(super) fn suggest(&mut self, d: Difficulty) {
        self.core.handle(Event::Suggest(d), self.now);
    }

    /// Hands the accepted shares counted so far and `fault` to the ban
    /// score; closes the connection once banned.
    pub(super) fn score(&mut self, fault: Option<Fault>) {
        let accepted = std::mem::take(&mut self.unscored_accepted);
        match self.admission.record(accepted, fault, self.now) {
            Verdict::Fine => {}
            Verdict::Banned => {
                let duration = self.shared.config.ban_duration.as_secs();
                tracing::warn!(
                    peer = %self.peer,
                    address = %self.admission.key(),
                    ban_secs = duration,
                    "banned: too many rejected shares or malformed requests"
                );
                self.shared.metrics.bans.increment(1);
                self.push(sv1::show_message(&format!(
                    "too many rejected shares or malformed requests: banned for {duration} s"
                )));
                self.close = true;
            }
            Verdict::AlreadyBanned => {
                self.push(sv1::show_message("this address is banned"));
                self.close = true;
            }
        }
    }
}
