//! Stratum V2, on the SRI crates: the authority key ([`keys`]), the
//! encrypted connection ([`noise`]) and connection setup ([`setup`]).
//! Channels, jobs and shares come with the protocol-independent session
//! core (issue 24).

pub mod keys;
pub mod noise;
pub mod setup;

#[cfg(test)]
mod tests;
