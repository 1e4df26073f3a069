//! `SetupConnection`: what a Stratum V2 miner asks for, and what the pool
//! answers (the SV2 spec, "Protocol Overview: SetupConnection", and the
//! mining protocol's flags).

use super::noise::Sv2Error;
use stratum_core::common_messages_sv2::{
    ERROR_CODE_SETUP_CONNECTION_PROTOCOL_VERSION_MISMATCH,
    ERROR_CODE_SETUP_CONNECTION_UNSUPPORTED_FEATURE_FLAGS,
    ERROR_CODE_SETUP_CONNECTION_UNSUPPORTED_PROTOCOL, Protocol, SetupConnectionErrorOwned,
    SetupConnectionOwned, SetupConnectionSuccess,
};

/// The only protocol version there is.
pub const VERSION: u16 = 2;

/// Mining protocol, miner to pool: the miner only takes standard jobs
/// (header-only mining on standard channels).
pub const REQUIRES_STANDARD_JOBS: u32 = 1 << 0;
/// Mining protocol, miner to pool: the miner chooses its own work
/// (`SetCustomMiningJob`, after job declaration).
pub const REQUIRES_WORK_SELECTION: u32 = 1 << 1;
/// Mining protocol, miner to pool: the miner rolls version bits.
pub const REQUIRES_VERSION_ROLLING: u32 = 1 << 2;

/// The flags the pool's mining protocol serves: standard jobs (header-only
/// mining on standard channels) and version rolling; with job declaration
/// on, work selection too ([`negotiate`]).
pub const SUPPORTED_FLAGS: u32 = REQUIRES_STANDARD_JOBS | REQUIRES_VERSION_ROLLING;

/// What a miner's connection was set up with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Negotiated {
    /// The protocol version in use.
    pub version: u16,
    /// Standard channels only (header-only mining).
    pub standard_jobs: bool,
    /// The miner rolls version bits.
    pub version_rolling: bool,
    /// The miner chooses its own work (`SetCustomMiningJob` after job
    /// declaration): the pool sends its channels no jobs.
    pub work_selection: bool,
    /// A job declaration connection, not a mining one.
    pub job_declaration: bool,
}

/// A miner's `SetupConnection`: the mining protocol, version 2, with
/// `flags`, naming its software `vendor` and `firmware` (each at most 255
/// bytes).
pub fn mining_request(
    flags: u32,
    vendor: &str,
    firmware: &str,
) -> Result<SetupConnectionOwned, Sv2Error> {
    let text = |s: &str| {
        s.try_into()
            .map_err(|_| Sv2Error::Encode(format!("{s:?} is longer than 255 bytes")))
    };
    Ok(SetupConnectionOwned {
        protocol: Protocol::MiningProtocol,
        min_version: VERSION,
        max_version: VERSION,
        flags,
        endpoint_host: text("")?,
        endpoint_port: 0,
        vendor: text(vendor)?,
        hardware_version: text("")?,
        firmware: text(firmware)?,
        device_id: text("")?,
    })
}

/// The pool's answer to a `SetupConnection`.
#[derive(Debug, Clone, PartialEq)]
pub enum SetupReply {
    /// Accepted: send the success, then serve the connection.
    Accepted(SetupConnectionSuccess, Negotiated),
    /// Refused with the spec's error code: send it and close.
    Refused(SetupConnectionErrorOwned),
}

/// Answers `setup`: the mining protocol, version 2, and only flags the pool
/// serves. An unsupported flag is refused with `unsupported-feature-flags`
/// naming every such flag, as the spec asks (a proxy probes with all flags
/// set and reads them back). With `job_declaration`, the job declaration
/// protocol is served too (coinbase-only: its flags are accepted and none
/// is promised back), and mining connections may select their own work.
pub fn negotiate(setup: &SetupConnectionOwned, job_declaration: bool) -> SetupReply {
    let refuse = |flags: u32, code: &str| {
        SetupReply::Refused(SetupConnectionErrorOwned {
            flags,
            error_code: code
                .try_into()
                .expect("the spec's error codes are short ASCII, well under 255 bytes"),
        })
    };
    let declaring = setup.protocol == Protocol::JobDeclarationProtocol && job_declaration;
    if setup.protocol != Protocol::MiningProtocol && !declaring {
        return refuse(0, ERROR_CODE_SETUP_CONNECTION_UNSUPPORTED_PROTOCOL);
    }
    if setup.min_version > VERSION || setup.max_version < VERSION {
        return refuse(0, ERROR_CODE_SETUP_CONNECTION_PROTOCOL_VERSION_MISMATCH);
    }
    if declaring {
        return SetupReply::Accepted(
            SetupConnectionSuccess {
                used_version: VERSION,
                flags: 0,
            },
            Negotiated {
                version: VERSION,
                standard_jobs: false,
                version_rolling: false,
                work_selection: false,
                job_declaration: true,
            },
        );
    }
    let supported = if job_declaration {
        SUPPORTED_FLAGS | REQUIRES_WORK_SELECTION
    } else {
        SUPPORTED_FLAGS
    };
    let unsupported = setup.flags & !supported;
    if unsupported != 0 {
        return refuse(
            unsupported,
            ERROR_CODE_SETUP_CONNECTION_UNSUPPORTED_FEATURE_FLAGS,
        );
    }
    SetupReply::Accepted(
        SetupConnectionSuccess {
            used_version: VERSION,
            // Pool to miner: neither REQUIRES_FIXED_VERSION (bit 0: version
            // rolling is allowed) nor REQUIRES_EXTENDED_CHANNELS (bit 1:
            // standard channels are served).
            flags: 0,
        },
        Negotiated {
            version: VERSION,
            standard_jobs: setup.flags & REQUIRES_STANDARD_JOBS != 0,
            version_rolling: setup.flags & REQUIRES_VERSION_ROLLING != 0,
            work_selection: setup.flags & REQUIRES_WORK_SELECTION != 0,
            job_declaration: false,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn setup(
        protocol: Protocol,
        min: u16,
        max: u16,
        flags: u32,
    ) -> SetupConnectionOwned {
        SetupConnectionOwned {
            protocol,
            min_version: min,
            max_version: max,
            ..mining_request(flags, "test", "").unwrap()
        }
    }

    fn refused(reply: SetupReply) -> (u32, String) {
        match reply {
            SetupReply::Refused(e) => (e.flags, e.error_code.as_utf8_or_hex()),
            other => panic!("accepted: {other:?}"),
        }
    }

    #[test]
    fn what_the_translator_and_miners_send_is_accepted() {
        // SRI's translator: mining, 2..=2, REQUIRES_VERSION_ROLLING (0b100).
        match negotiate(&setup(Protocol::MiningProtocol, 2, 2, 0b100), false) {
            SetupReply::Accepted(ok, n) => {
                assert_eq!((ok.used_version, ok.flags), (2, 0));
                assert!(n.version_rolling && !n.standard_jobs);
            }
            other => panic!("{other:?}"),
        }
        // One offering a wider version range, without version rolling.
        assert!(matches!(
            negotiate(&setup(Protocol::MiningProtocol, 2, 3, 0), false),
            SetupReply::Accepted(
                _,
                Negotiated {
                    standard_jobs: false,
                    version_rolling: false,
                    ..
                }
            )
        ));
    }

    #[test]
    fn other_protocols_versions_and_flags_are_refused_with_the_spec_codes() {
        assert_eq!(
            refused(negotiate(
                &setup(Protocol::JobDeclarationProtocol, 2, 2, 0),
                false
            )),
            (0, "unsupported-protocol".to_owned())
        );
        assert_eq!(
            refused(negotiate(&setup(Protocol::MiningProtocol, 3, 4, 0), false)),
            (0, "protocol-version-mismatch".to_owned())
        );
        // Work selection and a flag no spec defines are named back;
        // standard jobs are served.
        assert_eq!(
            refused(negotiate(
                &setup(Protocol::MiningProtocol, 2, 2, 0b111 | 1 << 20),
                false
            )),
            (0b010 | 1 << 20, "unsupported-feature-flags".to_owned())
        );
    }

    #[test]
    fn with_job_declaration_on_its_protocol_and_work_selection_are_served() {
        // SRI's JDC: the job declaration protocol with no flags, and a
        // mining connection with work selection and version rolling (0b110).
        match negotiate(&setup(Protocol::JobDeclarationProtocol, 2, 2, 0), true) {
            SetupReply::Accepted(ok, n) => {
                assert_eq!((ok.used_version, ok.flags), (2, 0));
                assert!(n.job_declaration && !n.work_selection);
            }
            other => panic!("{other:?}"),
        }
        match negotiate(&setup(Protocol::MiningProtocol, 2, 2, 0b110), true) {
            SetupReply::Accepted(_, n) => {
                assert!(n.work_selection && n.version_rolling && !n.job_declaration);
            }
            other => panic!("{other:?}"),
        }
        // Still no template distribution, and no unknown flags.
        assert_eq!(
            refused(negotiate(
                &setup(Protocol::TemplateDistributionProtocol, 2, 2, 0),
                true
            )),
            (0, "unsupported-protocol".to_owned())
        );
        assert_eq!(
            refused(negotiate(
                &setup(Protocol::MiningProtocol, 2, 2, 0b110 | 1 << 9),
                true
            )),
            (1 << 9, "unsupported-feature-flags".to_owned())
        );
    }
}
