//! A miner's channel as one state machine: [`Core::handle`] takes an
//! [`Event`] and the time, and answers with [`Actions`]. No sockets, no
//! clock, no protocol: the Stratum V1 session and each Stratum V2 channel
//! feed it what their miner sent and the pool's jobs, and turn its actions
//! into their own messages.
//!
//! The rules that live here, once for both protocols:
//! - what a job commits to: the channel's payout address and the target of
//!   the difficulty current when it is sent ([`Binding`]);
//! - a new difficulty is told before the first job that carries it, and
//!   work already out keeps the target it was sent with;
//! - a job on a new previous block (or one the pool marks clean) makes the
//!   channel's older jobs stale; a job sent again for a new difficulty
//!   does not;
//! - every share check, the share log's record and duplicates
//!   ([`Channel`]);
//! - vardiff moves the difficulty from the shares the share log took and
//!   from ticks, except on a channel that mines jobs it declared, which
//!   stays at its tokens' targets.

use super::{Accepted, Channel, Refusal, Submit, Targeting};
use crate::config::PoolConfig;
use crate::job::{Binding, Job};
use crate::share::ShareKey;
use proofpool_primitives::{Address, Difficulty};
use std::sync::Arc;
use std::time::Instant;

#[cfg(test)]
mod tests;

/// What happened to a channel.
#[derive(Debug)]
pub enum Event<'a> {
    /// The address the channel mines for is known (V1's first authorized
    /// worker, a V2 channel's user identity): jobs can be sent.
    Bind(Address),
    /// The miner asked for a difficulty (V1's `suggest_difficulty` or
    /// `suggest_target`, V2's nominal hashrate or maximum target).
    Suggest(Difficulty),
    /// The miner was told the current difficulty some other way (V2's
    /// `OpenMiningChannel.Success` carries it).
    Told,
    /// The pool's `job`, to go down the channel under id `seq`; `resend`
    /// if it is the job the channel has already, sent again only if the
    /// difficulty changed since.
    Work {
        /// The pool's job.
        job: &'a Arc<Job>,
        /// The id it goes under.
        seq: u64,
        /// Sent again for a new difficulty, not for new work.
        resend: bool,
    },
    /// A job someone else wrote to the miner for this channel (V1's
    /// fan-out) at the current difficulty, committing to `binding`; `clean`
    /// if the older jobs were dropped.
    Sent {
        /// The pool's job.
        job: Arc<Job>,
        /// The id it went under.
        seq: u64,
        /// Whether the miner was told to drop its older jobs.
        clean: bool,
        /// What its coinbase commits to.
        binding: Binding,
    },
    /// A job the miner declared (job declaration), accepted under `seq`,
    /// committing to its token's `binding`. The channel mines declared
    /// jobs from now on, at their tokens' targets.
    Declared {
        /// The declared job.
        job: Arc<Job>,
        /// The id it was accepted under.
        seq: u64,
        /// Its token's address and target.
        binding: Binding,
    },
    /// A share the miner submitted.
    Submit(Submit<'a>),
    /// A share [`Action::Accept`] passed went to the share log: the same
    /// share is a duplicate from now on, and, with `credited` (the share log
    /// took it), vardiff counts it.
    Recorded {
        /// Its duplicate key.
        key: ShareKey,
        /// The difficulty it was credited at, if the share log took it.
        credited: Option<Difficulty>,
    },
    /// Time for vardiff's check of a quiet miner and the hashrate report.
    Tick,
}

/// What the channel's front end does next.
#[derive(Debug)]
pub enum Action {
    /// Tell the miner its difficulty (and target) before the next job.
    NewTarget {
        /// The difficulty.
        difficulty: Difficulty,
        /// The channel's address and the difficulty's target.
        binding: Binding,
    },
    /// Send `job` under `seq`, committing to `binding`. Filed as sent.
    SendJob {
        /// The pool's job.
        job: Arc<Job>,
        /// Its id on this channel.
        seq: u64,
        /// The channel's older jobs are stale: the miner drops them.
        clean: bool,
        /// The channel's first job.
        first: bool,
        /// What its coinbase commits to.
        binding: Binding,
    },
    /// The share passed every check: hand it to the share log, then report
    /// [`Event::Recorded`].
    Accept(Box<Accepted>),
    /// The share is refused.
    Refuse(Refusal),
    /// Vardiff chose a new difficulty; it goes out with the current job
    /// sent again ([`Event::Work`] with `resend`).
    Retarget(Difficulty),
    /// The channel's hashrate estimate, whole hashes a second.
    Hashrate(u64),
}

/// The actions an event brings: at most two, in order.
#[derive(Debug, Default)]
pub struct Actions([Option<Action>; 2]);

impl Actions {
    fn push(&mut self, action: Action) {
        match &mut self.0 {
            [slot @ None, _] | [Some(_), slot @ None] => *slot = Some(action),
            // No event brings more than two.
            [Some(_), Some(_)] => debug_assert!(false, "a third action: {action:?}"),
        }
    }

    fn one(action: Action) -> Self {
        Self([Some(action), None])
    }

    /// Whether the event brought nothing to do.
    pub fn is_empty(&self) -> bool {
        self.0[0].is_none()
    }
}

impl IntoIterator for Actions {
    type Item = Action;
    type IntoIter = std::iter::Flatten<std::array::IntoIter<Option<Action>, 2>>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter().flatten()
    }
}

/// One channel of work, whatever protocol carries it.
#[derive(Debug)]
pub struct Core {
    channel: Channel,
    target: Targeting,
    /// The payout address, once bound.
    address: Option<Address>,
    /// What the next job commits to.
    binding: Option<Binding>,
    /// The difficulty the miner was last told.
    told: Option<Difficulty>,
    /// Mining declared jobs: vardiff's choices are not applied.
    declared: bool,
    /// Vardiff's time zero.
    opened: Instant,
}

impl Core {
    /// A channel opened at `opened`, at the pool's start difficulty.
    pub fn new(config: &PoolConfig, opened: Instant) -> Self {
        Self {
            channel: Channel::default(),
            target: Targeting::new(config),
            address: None,
            binding: None,
            told: None,
            declared: false,
            opened,
        }
    }

    /// The jobs sent and the shares accepted on them.
    pub fn channel(&self) -> &Channel {
        &self.channel
    }

    /// The difficulty the next job carries.
    pub fn difficulty(&self) -> Difficulty {
        self.target.current()
    }

    /// What the next job commits to, once the channel is bound.
    pub fn binding(&self) -> Option<Binding> {
        self.binding
    }

    /// Whether the miner was told the current difficulty (no new one waits
    /// to go out with the next job).
    pub fn told_current(&self) -> bool {
        self.told == Some(self.target.current())
    }

    /// The difficulty for a miner of `hashrate` hashes a second (see
    /// [`Targeting::for_hashrate`]).
    pub fn for_hashrate(&self, hashrate: f64) -> Option<Difficulty> {
        self.target.for_hashrate(hashrate)
    }

    /// How often vardiff wants [`Event::Tick`], at most.
    pub fn retarget_interval(&self) -> std::time::Duration {
        self.target.retarget_interval()
    }

    /// Takes `event` at `now` (not before the channel opened).
    pub fn handle(&mut self, event: Event<'_>, now: Instant) -> Actions {
        let elapsed = now.saturating_duration_since(self.opened);
        match event {
            Event::Bind(address) => {
                self.address = Some(address);
                self.rebind();
                Actions::default()
            }
            Event::Suggest(asked) => {
                self.target.suggest(elapsed, asked);
                self.rebind();
                Actions::default()
            }
            Event::Told => {
                self.told = Some(self.target.current());
                Actions::default()
            }
            Event::Work { job, seq, resend } => self.work(job, seq, resend),
            Event::Sent {
                job,
                seq,
                clean,
                binding,
            } => {
                let difficulty = self.target.current();
                self.channel
                    .record_job(job, seq, clean, binding, difficulty);
                Actions::default()
            }
            Event::Declared { job, seq, binding } => {
                self.declared = true;
                let new_tip = self.channel.last_prev_hash() != Some(job.prev_hash());
                let difficulty = Difficulty::from_target(binding.target());
                self.channel
                    .record_job(job, seq, new_tip, binding, difficulty);
                if self.binding == Some(binding) {
                    return Actions::default();
                }
                self.binding = Some(binding);
                self.told = Some(self.target.current());
                Actions::one(Action::NewTarget {
                    difficulty,
                    binding,
                })
            }
            Event::Submit(submit) => match self.channel.submit(&submit) {
                Ok(accepted) => Actions::one(Action::Accept(Box::new(accepted))),
                Err(refusal) => Actions::one(Action::Refuse(refusal)),
            },
            Event::Recorded { key, credited } => {
                self.channel.accepted(key);
                let Some(credited) = credited else {
                    return Actions::default();
                };
                match self.target.on_share(elapsed, credited) {
                    Some(next) if !self.declared => {
                        self.rebind();
                        Actions::one(Action::Retarget(next))
                    }
                    _ => Actions::default(),
                }
            }
            Event::Tick => {
                if self.channel.is_empty() {
                    return Actions::default();
                }
                let mut actions =
                    Actions::one(Action::Hashrate(self.target.estimated_hashrate(elapsed)));
                if let Some(next) = self.target.on_tick(elapsed)
                    && !self.declared
                {
                    self.rebind();
                    actions.push(Action::Retarget(next));
                }
                actions
            }
        }
    }

    /// [`Event::Work`]: the new difficulty first if the miner was not told
    /// it, then the job.
    fn work(&mut self, job: &Arc<Job>, seq: u64, resend: bool) -> Actions {
        let Some(binding) = self.binding else {
            return Actions::default();
        };
        if self.declared || (resend && self.told_current()) {
            return Actions::default();
        }
        let mut actions = Actions::default();
        let difficulty = self.target.current();
        if self.told != Some(difficulty) {
            self.told = Some(difficulty);
            actions.push(Action::NewTarget {
                difficulty,
                binding,
            });
        }
        // A job on a new previous block is clean for this miner even if the
        // pool published it as a fee refresh: only the newest job is handed
        // out, so a session that woke late may never see the clean one
        // before it (found by the block-to-notify benchmark).
        let new_block = self.channel.last_prev_hash() != Some(job.prev_hash());
        let clean = new_block || (!resend && job.clean_jobs());
        let first = self.channel.is_empty();
        self.channel
            .record_job(job.clone(), seq, clean, binding, difficulty);
        actions.push(Action::SendJob {
            job: job.clone(),
            seq,
            clean,
            first,
            binding,
        });
        actions
    }

    /// What the next job commits to, after the address or the difficulty
    /// changed.
    fn rebind(&mut self) {
        if self.declared {
            return;
        }
        self.binding = self
            .address
            .map(|address| Binding::new(address, self.target.current().to_target()));
    }
}
