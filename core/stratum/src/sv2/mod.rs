//! Stratum V2, on the SRI crates: the authority key ([`keys`]), the
//! encrypted connection ([`noise`]) and connection setup ([`setup`]), which
//! the pool and the reference miner share. Channels, jobs and shares are
//! the pool's (`proofpool-pool`'s session core) and the miner's own.

pub mod job;
pub mod keys;
pub mod noise;
pub mod setup;

#[cfg(test)]
mod tests;
