//! Job declaration tokens (docs/job-declaration.md): what the pool promised
//! a job declarator client in `AllocateMiningJobToken.Success`, so that a
//! later `SetCustomMiningJob` is held to it.
//!
//! A token names the address it was issued to, the share target and log
//! head its commitment output carries, and when it was issued. It lives for
//! a bounded time (so a declared job never commits to an old log head) and
//! the registry holds a bounded number (the oldest go first), so a client
//! asking for tokens without end cannot grow the pool's memory.

use alloy_primitives::{Address, B256};
use proofpool_epoch::share_commitment::ShareCommitment;
use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

/// A token's bytes: an 8-byte serial number, then 8 random bytes.
pub const TOKEN_LEN: usize = 16;

/// What a token promises.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Token {
    /// The address it was issued to: only a channel of this address may
    /// use it, and its jobs' shares are credited to it.
    pub miner: Address,
    /// The share target its commitment carries, compact form.
    pub target_bits: u32,
    /// The instance's share-log head when it was issued.
    pub log_head: B256,
    /// When it was issued.
    pub issued: Instant,
}

impl Token {
    /// The share commitment output a job declared with it must carry.
    pub fn commitment(&self) -> ShareCommitment {
        ShareCommitment {
            miner: self.miner,
            target_bits: self.target_bits,
            log_head: self.log_head,
        }
    }
}

/// The live tokens.
#[derive(Debug)]
pub struct Tokens {
    next_serial: u64,
    /// Stands in for the random bytes if the system's source fails.
    salt: [u8; 8],
    live: HashMap<[u8; TOKEN_LEN], Token>,
    /// Issue order, for expiry and eviction.
    order: VecDeque<[u8; TOKEN_LEN]>,
    ttl: Duration,
    max_live: usize,
}

impl Tokens {
    /// A registry whose tokens live `ttl`, at most `max_live` at once.
    pub fn new(ttl: Duration, max_live: usize, salt: [u8; 8]) -> Self {
        Self {
            next_serial: 1,
            salt,
            live: HashMap::new(),
            order: VecDeque::new(),
            ttl,
            max_live: max_live.max(1),
        }
    }

    /// Issues a token for `miner` at `target_bits` and `log_head`.
    pub fn allocate(
        &mut self,
        miner: Address,
        target_bits: u32,
        log_head: B256,
        now: Instant,
    ) -> [u8; TOKEN_LEN] {
        self.expire(now);
        while self.live.len() >= self.max_live {
            let Some(oldest) = self.order.pop_front() else {
                break;
            };
            self.live.remove(&oldest);
        }
        let mut token = [0u8; TOKEN_LEN];
        // Random, so that no token says anything of the others: a serial
        // number first (distinct even if the random source failed), then
        // random bytes.
        token[..8].copy_from_slice(&self.next_serial.to_be_bytes());
        self.next_serial += 1;
        if getrandom::fill(&mut token[8..]).is_err() {
            token[8..].copy_from_slice(&self.salt);
        }
        self.live.insert(
            token,
            Token {
                miner,
                target_bits,
                log_head,
                issued: now,
            },
        );
        self.order.push_back(token);
        token
    }

    /// The token with these bytes, if it is live.
    pub fn get(&mut self, token: &[u8], now: Instant) -> Option<Token> {
        self.expire(now);
        let key: [u8; TOKEN_LEN] = token.try_into().ok()?;
        self.live.get(&key).copied()
    }

    /// How many tokens are live.
    pub fn len(&self) -> usize {
        self.live.len()
    }

    /// Whether none is.
    pub fn is_empty(&self) -> bool {
        self.live.is_empty()
    }

    fn expire(&mut self, now: Instant) {
        while let Some(front) = self.order.front() {
            match self.live.get(front) {
                Some(t) if now.saturating_duration_since(t.issued) < self.ttl => break,
                _ => {
                    if let Some(gone) = self.order.pop_front() {
                        self.live.remove(&gone);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn registry() -> Tokens {
        Tokens::new(Duration::from_secs(600), 3, [7; 8])
    }

    #[test]
    fn a_token_is_what_was_promised_until_it_expires() {
        let t0 = Instant::now();
        let mut tokens = registry();
        let a = Address::repeat_byte(1);
        let token = tokens.allocate(a, 0x1d00_ffff, B256::repeat_byte(2), t0);
        let got = tokens.get(&token, t0 + Duration::from_secs(599)).unwrap();
        assert_eq!((got.miner, got.target_bits), (a, 0x1d00_ffff));
        assert_eq!(
            got.commitment(),
            ShareCommitment {
                miner: a,
                target_bits: 0x1d00_ffff,
                log_head: B256::repeat_byte(2),
            }
        );
        // Ten minutes after issue it is gone.
        assert_eq!(tokens.get(&token, t0 + Duration::from_secs(600)), None);
        assert!(tokens.is_empty());
    }

    #[test]
    fn tokens_are_distinct_bounded_and_exact() {
        let t0 = Instant::now();
        let mut tokens = registry();
        let issued: Vec<_> = (0..5u8)
            .map(|i| tokens.allocate(Address::repeat_byte(i), 1, B256::ZERO, t0))
            .collect();
        for (i, a) in issued.iter().enumerate() {
            for b in &issued[i + 1..] {
                assert_ne!(a, b);
            }
        }
        // At most three live: the two oldest went first.
        assert_eq!(tokens.len(), 3);
        assert_eq!(tokens.get(&issued[0], t0), None);
        assert_eq!(tokens.get(&issued[1], t0), None);
        assert_eq!(
            tokens.get(&issued[4], t0).map(|t| t.miner),
            Some(Address::repeat_byte(4))
        );
        // Only the exact bytes name a token.
        assert_eq!(tokens.get(&issued[4][..15], t0), None);
        let mut other = issued[4];
        other[15] ^= 1;
        assert_eq!(tokens.get(&other, t0), None);
    }
}
