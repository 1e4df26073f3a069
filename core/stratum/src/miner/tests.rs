use super::*;
use crate::{ClientMethod, ConfigureResult, ErrorCode, Message, NotifyParams, VersionRolling};
use proptest::prelude::*;
use serde_json::json;

fn server(line: &str) -> ServerMessage {
    parse_server_line(line.as_bytes()).unwrap_or_else(|e| panic!("{line}: {e}"))
}

fn client(line: &str) -> (Id, ClientMethod) {
    match crate::parse_line(line.as_bytes()) {
        Ok(Message::Request { id, method }) => (id, method),
        other => panic!("{line}: {other:?}"),
    }
}

fn d(s: &str) -> Difficulty {
    s.parse().unwrap()
}

#[test]
fn client_builders_round_trip_through_the_server_parser() {
    let id = Id::from(1);
    assert_eq!(
        client(&subscribe(&id, "proofpool-miner/0.1")),
        (
            id.clone(),
            ClientMethod::Subscribe {
                user_agent: Some("proofpool-miner/0.1".to_owned()),
                extranonce1: None
            }
        )
    );
    assert_eq!(
        client(&authorize(&Id::from(2), "0xabc.rig\"1", "x")).1,
        ClientMethod::Authorize {
            username: "0xabc.rig\"1".to_owned(),
            password: Some("x".to_owned())
        }
    );
    assert_eq!(
        client(&configure_version_rolling(&Id::from(3), 0x1fff_e000, 2)).1,
        ClientMethod::Configure {
            version_rolling: Some(VersionRolling {
                mask: 0x1fff_e000,
                min_bit_count: 2
            }),
            minimum_difficulty: None,
            subscribe_extranonce: false,
            unknown: vec![],
        }
    );
    let nerd = suggest_difficulty(&Id::from(4), d("0.0001"));
    assert_eq!(
        nerd,
        "{\"id\":4,\"method\":\"mining.suggest_difficulty\",\"params\":[0.0001]}\n"
    );
    assert_eq!(
        client(&nerd).1,
        ClientMethod::SuggestDifficulty(d("0.0001"))
    );
    assert_eq!(
        client(&extranonce_subscribe(&Id::from("e"))),
        (Id::from("e"), ClientMethod::ExtranonceSubscribe)
    );
    let share = submit(
        &Id::from(5),
        "w",
        "1a",
        &[0, 0, 0, 7],
        0x6553_a1b0,
        0xdead_beef,
        Some(0x0000_e000),
    );
    assert_eq!(
        share,
        "{\"id\":5,\"method\":\"mining.submit\",\"params\":[\"w\",\"1a\",\"00000007\",\"6553a1b0\",\"deadbeef\",\"0000e000\"]}\n"
    );
    assert_eq!(
        client(&share).1,
        ClientMethod::Submit {
            worker: "w".to_owned(),
            job_id: "1a".to_owned(),
            extranonce2: vec![0, 0, 0, 7],
            ntime: 0x6553_a1b0,
            nonce: 0xdead_beef,
            version_bits: Some(0xe000),
        }
    );
}

#[test]
fn server_builders_round_trip_through_the_client_parser() {
    let branch = [[0x5a; 32], [0x01; 32]];
    let prevhash = [0x42u8; 32];
    let line = crate::notify(&NotifyParams {
        job_id: "job-7",
        prevhash_hex: &hex::encode(prevhash),
        coinbase1: &[1, 2, 3],
        coinbase2: &[0xff],
        merkle_branch: &branch,
        version: 0x2000_0000,
        nbits: 0x1703_4219,
        ntime: 0x6553_a1b0,
        clean_jobs: true,
    });
    assert_eq!(
        server(&line),
        ServerMessage::Notify(NotifyOwned {
            job_id: "job-7".to_owned(),
            prevhash,
            coinbase1: vec![1, 2, 3],
            coinbase2: vec![0xff],
            merkle_branch: branch.to_vec(),
            version: 0x2000_0000,
            nbits: 0x1703_4219,
            ntime: 0x6553_a1b0,
            clean_jobs: true,
        })
    );
    assert_eq!(
        server(&crate::set_difficulty(d("0.00001"))),
        ServerMessage::SetDifficulty(d("0.00001"))
    );
    assert_eq!(
        server(&crate::set_version_mask(0x1fff_e000)),
        ServerMessage::SetVersionMask(0x1fff_e000)
    );
    assert_eq!(
        server(&crate::set_extranonce(&[8, 0, 0, 2], 4)),
        ServerMessage::SetExtranonce {
            extranonce1: vec![8, 0, 0, 2],
            extranonce2_size: 4
        }
    );
    assert_eq!(
        server(&crate::reconnect("pool.example", 3333, 10)),
        ServerMessage::Reconnect {
            host: Some("pool.example".to_owned()),
            port: Some(3333),
            wait_secs: Some(10)
        }
    );
    assert_eq!(
        server(&crate::show_message("hello\nminer")),
        ServerMessage::ShowMessage("hello\nminer".to_owned())
    );
    assert_eq!(
        server(&crate::get_version(&Id::from(77))),
        ServerMessage::GetVersion { id: Id::from(77) }
    );
    assert_eq!(
        server(&crate::reply_true(&Id::from(5))),
        ServerMessage::Reply {
            id: Id::from(5),
            result: Value::Bool(true),
            error: None
        }
    );
    assert_eq!(
        server(&crate::reply_error(
            &Id::from(5),
            ErrorCode::JobNotFound,
            ErrorCode::JobNotFound.message()
        )),
        ServerMessage::Reply {
            id: Id::from(5),
            result: Value::Null,
            error: Some(ReplyError {
                code: 21,
                message: "job not found".to_owned()
            })
        }
    );
}

#[test]
fn subscribe_and_configure_results() {
    let line = crate::subscribe_result(&Id::from(1), "ab12", &[8, 0, 0, 2], 4);
    let ServerMessage::Reply { result, .. } = server(&line) else {
        panic!("not a reply");
    };
    assert_eq!(
        SubscribeReply::from_result(&result),
        Some(SubscribeReply {
            extranonce1: vec![8, 0, 0, 2],
            extranonce2_size: 4
        })
    );
    assert_eq!(SubscribeReply::from_result(&json!([[], "zz", 4])), None);
    assert_eq!(SubscribeReply::from_result(&json!(true)), None);

    let line = crate::configure_result(
        &Id::from(2),
        &ConfigureResult {
            version_rolling: Some(0x1fff_e000),
            ..ConfigureResult::default()
        },
    );
    let ServerMessage::Reply { result, .. } = server(&line) else {
        panic!("not a reply");
    };
    assert_eq!(configured_version_mask(&result), Some(0x1fff_e000));
    assert_eq!(
        configured_version_mask(&json!({"version-rolling": false})),
        None
    );
    assert_eq!(configured_version_mask(&json!([])), None);
}

#[test]
fn lenient_server_lines() {
    // Some pools omit clean_jobs, send the port as a string, or leave params empty.
    let old = format!(
        r#"{{"id":null,"method":"mining.notify","params":["1","{}","","",[],"20000000","1d00ffff","00000001"]}}"#,
        "00".repeat(32)
    );
    assert!(matches!(
        server(&old),
        ServerMessage::Notify(NotifyOwned {
            clean_jobs: false,
            ..
        })
    ));
    assert_eq!(
        server(r#"{"id":null,"method":"client.reconnect","params":["h","3334"]}"#),
        ServerMessage::Reconnect {
            host: Some("h".to_owned()),
            port: Some(3334),
            wait_secs: None
        }
    );
    assert_eq!(
        server(r#"{"id":null,"method":"client.reconnect","params":[]}"#),
        ServerMessage::Reconnect {
            host: None,
            port: None,
            wait_secs: None
        }
    );
    assert_eq!(
        server(r#"{"id":null,"method":"mining.set_difficulty","params":[1024]}"#),
        ServerMessage::SetDifficulty(d("1024"))
    );
    // The SRI translator's difficulty for 1e6 H/s at a share a second keeps
    // all of an f64's digits; the miner rounds it up to 18 places.
    assert_eq!(
        server(r#"{"id":null,"method":"mining.set_difficulty","params":[0.00023283064365386963]}"#),
        ServerMessage::SetDifficulty(d("0.00023283064365387"))
    );
    assert_eq!(
        server(r#"{"id":3,"method":"mining.ping","params":[]}"#),
        ServerMessage::Unknown {
            id: Id::from(3),
            method: "mining.ping".to_owned()
        }
    );
}

#[test]
fn server_line_errors() {
    let reason = |line: &str| match parse_server_line(line.as_bytes()) {
        Err(ParseError::BadParams { reason, .. }) => reason,
        other => panic!("{line}: {other:?}"),
    };
    let notify =
        |params: &str| format!(r#"{{"id":null,"method":"mining.notify","params":[{params}]}}"#);
    let prev = "00".repeat(32);
    assert_eq!(
        reason(&notify(&format!(r##""1","{prev}","","""##))),
        "missing merkle branch"
    );
    assert_eq!(
        reason(&notify(&format!(r#""1","{prev}","","",{{}}"#))),
        "merkle branch must be an array"
    );
    assert_eq!(
        reason(&notify(&format!(
            r#""1","{prev}","","",["00"],"20000000","1d00ffff","00000001",true"#
        ))),
        "merkle branch entries must be 64 hex digits, got 2 characters"
    );
    assert_eq!(
        reason(&notify(&format!(
            r#""1","{prev}","","",[1],"20000000","1d00ffff","00000001",true"#
        ))),
        "merkle branch entries must be strings"
    );
    assert_eq!(
        reason(&notify(
            r#""1","00","","",[],"20000000","1d00ffff","00000001",true"#
        )),
        "prevhash must be 64 hex digits, got 2 characters"
    );
    assert_eq!(
        reason(&notify(&format!(
            r#""1","{prev}","","",[],"20000000","1d00ffff","00000001","yes""#
        ))),
        "clean_jobs must be a boolean"
    );
    assert_eq!(
        reason(&notify(&format!(
            r#""1","{prev}","","",[],"2000000","1d00ffff","00000001",true"#
        ))),
        "version must be 8 hex digits, got 7 characters"
    );
    assert_eq!(
        reason(r#"{"id":null,"method":"mining.set_difficulty","params":[0]}"#),
        "difficulty: difficulty is zero"
    );
    assert_eq!(
        reason(r#"{"id":null,"method":"mining.set_version_mask","params":["xyz"]}"#),
        "mask must be 1 to 8 hex digits, got \"xyz\""
    );
    assert_eq!(
        reason(r#"{"id":null,"method":"mining.set_extranonce","params":["0800",-1]}"#),
        "extranonce2 size must be an integer"
    );
    assert_eq!(
        reason(r#"{"id":null,"method":"client.reconnect","params":["h",70000]}"#),
        "port must be an integer 0 to 65535"
    );
    assert_eq!(
        reason(r#"{"id":null,"method":"client.reconnect","params":["h",1,-1]}"#),
        "wait must be a non-negative integer"
    );
    assert_eq!(
        reason(r#"{"id":null,"method":"client.reconnect","params":[5]}"#),
        "host must be a string"
    );
    assert_eq!(
        reason(r#"{"id":null,"method":"client.show_message","params":[]}"#),
        "missing message"
    );
    assert_eq!(
        parse_server_line(br#"{"id":1}"#),
        Err(ParseError::MissingMethod { id: Id::from(1) })
    );
    assert_eq!(parse_server_line(b"[]"), Err(ParseError::NotAnObject));
}

/// Whole numbers, and decimals of up to 15 significant digits: the ones a
/// JSON number carries exactly through serde_json's f64.
fn any_difficulty() -> impl Strategy<Value = Difficulty> {
    prop_oneof![
        (1u64..).prop_map(|n| Difficulty::from_integer(n).unwrap()),
        (1u64..1_000_000_000_000_000, 0u32..=18)
            .prop_map(|(m, s)| Difficulty::from_parts(m, s).unwrap()),
    ]
}

fn any_id() -> impl Strategy<Value = Id> {
    prop_oneof![
        Just(Id::Null),
        any::<u64>().prop_map(Id::from),
        "\\PC{0,10}".prop_map(Id::from),
    ]
}

proptest! {
    #[test]
    fn submit_round_trips(
        id in any_id(),
        worker in "\\PC{0,20}",
        job_id in "\\PC{0,10}",
        extranonce2 in proptest::collection::vec(any::<u8>(), 0..16),
        ntime: u32,
        nonce: u32,
        version_bits: Option<u32>,
    ) {
        let line = submit(&id, &worker, &job_id, &extranonce2, ntime, nonce, version_bits);
        prop_assert_eq!(client(&line), (id, ClientMethod::Submit {
            worker, job_id, extranonce2, ntime, nonce, version_bits,
        }));
    }

    #[test]
    fn notify_round_trips(
        job_id in "\\PC{0,10}",
        prevhash: [u8; 32],
        coinbase1 in proptest::collection::vec(any::<u8>(), 0..100),
        coinbase2 in proptest::collection::vec(any::<u8>(), 0..100),
        merkle_branch in proptest::collection::vec(any::<[u8; 32]>(), 0..14),
        version: u32,
        nbits: u32,
        ntime: u32,
        clean_jobs: bool,
    ) {
        let line = crate::notify(&NotifyParams {
            job_id: &job_id,
            prevhash_hex: &hex::encode(prevhash),
            coinbase1: &coinbase1,
            coinbase2: &coinbase2,
            merkle_branch: &merkle_branch,
            version, nbits, ntime, clean_jobs,
        });
        prop_assert_eq!(server(&line), ServerMessage::Notify(NotifyOwned {
            job_id, prevhash, coinbase1, coinbase2, merkle_branch, version, nbits, ntime, clean_jobs,
        }));
    }

    #[test]
    fn difficulty_round_trips(x in any_difficulty()) {
        prop_assert_eq!(server(&crate::set_difficulty(x)), ServerMessage::SetDifficulty(x));
        prop_assert_eq!(client(&suggest_difficulty(&Id::from(1), x)).1,
            ClientMethod::SuggestDifficulty(x));
    }

    #[test]
    fn reply_errors_round_trip(id in any_id(), message in "\\PC{0,40}") {
        let line = crate::reply_error(&id, ErrorCode::Duplicate, &message);
        prop_assert_eq!(server(&line), ServerMessage::Reply {
            id, result: Value::Null, error: Some(ReplyError { code: 22, message }),
        });
    }
}
