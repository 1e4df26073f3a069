//! The checks behind proofpool's fuzz targets, one module per input format.
//!
//! - [`stratum`]: bytes a miner sends, line by line, through
//!   [`proofpool_stratum::parse_line`] to the reply the pool would write with
//!   the crate's builders, modelling what the pool's session does with each
//!   request: [`proofpool_pool::MinerId::parse`] on usernames, exact
//!   difficulties, and [`proofpool_pool::validate`] of every `mining.submit`
//!   against a job built from the regtest template fixture.
//! - [`epoch`]: bytes of an epoch file through
//!   [`proofpool_epoch::epoch_file::EpochFile::from_bytes`] and the
//!   auditor, either raw or as edits of the seed epochs (which the settlement
//!   audit tests' fixture wrote).
//!
//! Every check asserts invariants, not only the absence of panics: a panic
//! here is a bug in the code under test (or in this model of it).

pub mod epoch;
pub mod stratum;
