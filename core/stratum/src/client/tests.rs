use super::*;
use crate::MAX_LINE_BYTES;
use proptest::prelude::*;

fn request(line: &str) -> (Id, ClientMethod) {
    match parse_line(line.as_bytes()) {
        Ok(Message::Request { id, method }) => (id, method),
        other => panic!("{line}: {other:?}"),
    }
}

fn method(line: &str) -> ClientMethod {
    request(line).1
}

fn bad_params(line: &str) -> (Id, String, String) {
    match parse_line(line.as_bytes()) {
        Err(ParseError::BadParams { id, method, reason }) => (id, method, reason),
        other => panic!("{line}: {other:?}"),
    }
}

fn d(s: &str) -> Difficulty {
    s.parse().unwrap()
}

#[test]
fn bitaxe_opening() {
    // ESP-Miner sends these as separate lines on connect.
    let lines = [
        r#"{"id": 1, "method": "mining.configure", "params": [["version-rolling"], {"version-rolling.mask": "ffffffff"}]}"#,
        r#"{"id": 2, "method": "mining.subscribe", "params": ["bitaxe/BM1366/v2.4.0"]}"#,
        r#"{"id": 3, "method": "mining.authorize", "params": ["0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed.bitaxe", "x"]}"#,
        r#"{"id": 4, "method": "mining.suggest_difficulty", "params": [1000]}"#,
    ];
    let parsed: Vec<_> = lines.iter().map(|l| request(&format!("{l}\n"))).collect();
    assert_eq!(
        parsed[0],
        (
            Id::from(1),
            ClientMethod::Configure {
                version_rolling: Some(VersionRolling {
                    mask: u32::MAX,
                    min_bit_count: 0
                }),
                minimum_difficulty: None,
                subscribe_extranonce: false,
                unknown: vec![],
            }
        )
    );
    assert_eq!(
        parsed[1].1,
        ClientMethod::Subscribe {
            user_agent: Some("bitaxe/BM1366/v2.4.0".to_owned()),
            extranonce1: None
        }
    );
    assert_eq!(
        parsed[2].1,
        ClientMethod::Authorize {
            username: "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed.bitaxe".to_owned(),
            password: Some("x".to_owned())
        }
    );
    assert_eq!(parsed[3].1, ClientMethod::SuggestDifficulty(d("1000")));
}

#[test]
fn subscribe_forms() {
    let sub = |ua: Option<&str>, en1: Option<Vec<u8>>| ClientMethod::Subscribe {
        user_agent: ua.map(str::to_owned),
        extranonce1: en1,
    };
    // cgminer and cpuminer may send no params at all.
    assert_eq!(
        method(r#"{"id":1,"method":"mining.subscribe","params":[]}"#),
        sub(None, None)
    );
    assert_eq!(
        method(r#"{"id":1,"method":"mining.subscribe"}"#),
        sub(None, None)
    );
    assert_eq!(
        method(r#"{"id":1,"method":"mining.subscribe","params":null}"#),
        sub(None, None)
    );
    assert_eq!(
        method(r#"{"id":1,"method":"mining.subscribe","params":["cgminer/4.12.1", "08000002"]}"#),
        sub(Some("cgminer/4.12.1"), Some(vec![8, 0, 0, 2]))
    );
    assert_eq!(
        method(
            r#"{"id":1,"method":"mining.subscribe","params":["ua", "08000002", "pool.example", 3333, "extra"]}"#
        ),
        sub(Some("ua"), Some(vec![8, 0, 0, 2]))
    );
    assert_eq!(
        method(r#"{"id":1,"method":"mining.subscribe","params":[null, null]}"#),
        sub(None, None)
    );
    // Unusable resume hints and user agents are dropped, never fatal.
    assert_eq!(
        method(r#"{"id":1,"method":"mining.subscribe","params":[42, "not-hex"]}"#),
        sub(None, None)
    );
    assert_eq!(
        method(r#"{"id":1,"method":"mining.subscribe","params":{"agent":"x"}}"#),
        sub(None, None)
    );
}

#[test]
fn authorize_forms() {
    let auth = |user: &str, pass: Option<&str>| ClientMethod::Authorize {
        username: user.to_owned(),
        password: pass.map(str::to_owned),
    };
    assert_eq!(
        method(r#"{"id":2,"method":"mining.authorize","params":["u.w"]}"#),
        auth("u.w", None)
    );
    assert_eq!(
        method(r#"{"id":2,"method":"mining.authorize","params":["u.w", null]}"#),
        auth("u.w", None)
    );
    assert_eq!(
        method(r#"{"id":2,"method":"mining.authorize","params":["u.w", 123]}"#),
        auth("u.w", Some("123"))
    );
    assert_eq!(
        bad_params(r#"{"id":2,"method":"mining.authorize","params":[]}"#),
        (
            Id::from(2),
            "mining.authorize".to_owned(),
            "missing username".to_owned()
        )
    );
    assert_eq!(
        bad_params(r#"{"id":2,"method":"mining.authorize","params":[7]}"#).2,
        "username must be a string"
    );
    assert_eq!(
        bad_params(r#"{"id":2,"method":"mining.authorize","params":["u", {}]}"#).2,
        "password must be a string"
    );
}

#[test]
fn configure_bip310() {
    let line = r#"{"id":1,"method":"mining.configure","params":[["version-rolling","minimum-difficulty","subscribe-extranonce","info"],{"version-rolling.mask":"1fffe000","version-rolling.min-bit-count":2,"minimum-difficulty.value":2048,"info.connection-url":"x"}]}"#;
    assert_eq!(
        method(line),
        ClientMethod::Configure {
            version_rolling: Some(VersionRolling {
                mask: 0x1fff_e000,
                min_bit_count: 2
            }),
            minimum_difficulty: Some(d("2048")),
            subscribe_extranonce: true,
            unknown: vec!["info".to_owned()],
        }
    );
    let none = ClientMethod::Configure {
        version_rolling: None,
        minimum_difficulty: None,
        subscribe_extranonce: false,
        unknown: vec![],
    };
    assert_eq!(
        method(r#"{"id":1,"method":"mining.configure","params":[]}"#),
        none
    );
    assert_eq!(
        method(r#"{"id":1,"method":"mining.configure","params":[[]]}"#),
        none
    );
    assert_eq!(
        method(
            r#"{"id":1,"method":"mining.configure","params":[["minimum-difficulty"],{"minimum-difficulty.value":0.0001}]}"#
        ),
        ClientMethod::Configure {
            version_rolling: None,
            minimum_difficulty: Some(d("0.0001")),
            subscribe_extranonce: false,
            unknown: vec![],
        }
    );
    let reason = |l: &str| bad_params(l).2;
    assert_eq!(
        reason(r#"{"id":1,"method":"mining.configure","params":["version-rolling"]}"#),
        "extensions must be an array of names"
    );
    assert_eq!(
        reason(r#"{"id":1,"method":"mining.configure","params":[["version-rolling"], []]}"#),
        "extension params must be an object"
    );
    assert_eq!(
        reason(r#"{"id":1,"method":"mining.configure","params":[[1]]}"#),
        "extension names must be strings"
    );
    assert!(
        reason(
            r#"{"id":1,"method":"mining.configure","params":[["version-rolling"],{"version-rolling.mask":"xyz"}]}"#
        )
        .starts_with("version-rolling.mask must be 1 to 8 hex digits")
    );
    assert_eq!(
        reason(
            r#"{"id":1,"method":"mining.configure","params":[["version-rolling"],{"version-rolling.mask":536862720}]}"#
        ),
        "version-rolling.mask must be a hex string"
    );
    assert_eq!(
        reason(
            r#"{"id":1,"method":"mining.configure","params":[["version-rolling"],{"version-rolling.min-bit-count":33}]}"#
        ),
        "version-rolling.min-bit-count must be an integer 0 to 32"
    );
    assert_eq!(
        reason(r#"{"id":1,"method":"mining.configure","params":[["minimum-difficulty"],{}]}"#),
        "missing minimum-difficulty.value"
    );
    assert_eq!(
        reason(
            r#"{"id":1,"method":"mining.configure","params":[["minimum-difficulty"],{"minimum-difficulty.value":-5}]}"#
        ),
        "minimum-difficulty.value: difficulty is negative"
    );
}

#[test]
fn suggest_difficulty_is_exact() {
    // NerdMiner asks for 0.0001.
    let nerd = r#"{"id": 3, "method": "mining.suggest_difficulty", "params": [0.0001]}"#;
    assert_eq!(method(nerd), ClientMethod::SuggestDifficulty(d("0.0001")));
    assert_eq!(
        method(r#"{"id":3,"method":"mining.suggest_difficulty","params":[1e-5]}"#),
        ClientMethod::SuggestDifficulty(d("0.00001"))
    );
    assert_eq!(
        method(r#"{"id":3,"method":"mining.suggest_difficulty","params":["512"]}"#),
        ClientMethod::SuggestDifficulty(d("512"))
    );
    let reason = |l: &str| bad_params(l).2;
    assert_eq!(
        reason(r#"{"id":3,"method":"mining.suggest_difficulty","params":[0]}"#),
        "difficulty: difficulty is zero"
    );
    assert_eq!(
        reason(r#"{"id":3,"method":"mining.suggest_difficulty","params":[]}"#),
        "missing difficulty"
    );
    assert_eq!(
        reason(r#"{"id":3,"method":"mining.suggest_difficulty","params":["abc"]}"#),
        "difficulty: difficulty is not a decimal number"
    );
    assert_eq!(
        reason(r#"{"id":3,"method":"mining.suggest_difficulty","params":[[1]]}"#),
        "difficulty: must be a number"
    );
}

#[test]
fn suggest_target() {
    let full = format!(
        r#"{{"id":4,"method":"mining.suggest_target","params":["{}"]}}"#,
        "00000000ffff0000000000000000000000000000000000000000000000000000"
    );
    assert_eq!(
        method(&full),
        ClientMethod::SuggestTarget(proofpool_primitives::DIFF1_TARGET)
    );
    assert_eq!(
        method(r#"{"id":4,"method":"mining.suggest_target","params":["ffff"]}"#),
        ClientMethod::SuggestTarget(U256::from(0xffffu32))
    );
    let reason = |l: &str| bad_params(l).2;
    assert_eq!(
        reason(r#"{"id":4,"method":"mining.suggest_target","params":["00"]}"#),
        "target is zero"
    );
    assert_eq!(
        reason(r#"{"id":4,"method":"mining.suggest_target","params":["zz"]}"#),
        "target must be hex"
    );
    let long = format!(
        r#"{{"id":4,"method":"mining.suggest_target","params":["{}"]}}"#,
        "f".repeat(65)
    );
    assert_eq!(reason(&long), "target must be 1 to 64 hex digits, got 65");
}

#[test]
fn submit_forms() {
    let five = r#"{"params": ["0xabc.rig1", "1a", "00000001", "504e86ed", "b2957c02"], "id": 4, "method": "mining.submit"}"#;
    assert_eq!(
        request(five),
        (
            Id::from(4),
            ClientMethod::Submit {
                worker: "0xabc.rig1".to_owned(),
                job_id: "1a".to_owned(),
                extranonce2: vec![0, 0, 0, 1],
                ntime: 0x504e_86ed,
                nonce: 0xb295_7c02,
                version_bits: None,
            }
        )
    );
    // A Bitaxe with version rolling sends the rolled bits as a 6th param.
    let six = r#"{"id": 11, "method": "mining.submit", "params": ["w", "3f", "0000000000000000", "6553a1b0", "0A1B2C3D", "00b2e000"]}"#;
    assert_eq!(
        method(six),
        ClientMethod::Submit {
            worker: "w".to_owned(),
            job_id: "3f".to_owned(),
            extranonce2: vec![0; 8],
            ntime: 0x6553_a1b0,
            nonce: 0x0a1b_2c3d,
            version_bits: Some(0x00b2_e000),
        }
    );
    let null_version = r#"{"id":1,"method":"mining.submit","params":["w","j","00","00000000","00000000",null,"extra"]}"#;
    assert!(matches!(
        method(null_version),
        ClientMethod::Submit {
            version_bits: None,
            ..
        }
    ));

    let reason = |l: &str| bad_params(l).2;
    assert_eq!(
        reason(r#"{"id":5,"method":"mining.submit","params":["w","j","00","00000000"]}"#),
        "expected 5 or 6 params, got 4"
    );
    assert_eq!(
        reason(r#"{"id":5,"method":"mining.submit","params":["w","j","00","0000000","00000000"]}"#),
        "ntime must be 8 hex digits, got 7 characters"
    );
    assert_eq!(
        reason(
            r#"{"id":5,"method":"mining.submit","params":["w","j","00","00000000","0000000g"]}"#
        ),
        "nonce must be 1 to 8 hex digits, got \"0000000g\""
    );
    assert_eq!(
        reason(
            r#"{"id":5,"method":"mining.submit","params":["w","j","00","00000000","00000000","e000"]}"#
        ),
        "version bits must be 8 hex digits, got 4 characters"
    );
    assert_eq!(
        reason(
            r#"{"id":5,"method":"mining.submit","params":["w","j","000","00000000","00000000"]}"#
        ),
        "extranonce2 must be an even number of hex digits, got 3"
    );
    assert_eq!(
        reason(
            r#"{"id":5,"method":"mining.submit","params":["w","j","zz","00000000","00000000"]}"#
        ),
        "extranonce2 must be hex"
    );
    assert_eq!(
        reason(r#"{"id":5,"method":"mining.submit","params":["w",7,"00","00000000","00000000"]}"#),
        "job id must be a string"
    );
    assert_eq!(
        reason(r#"{"id":5,"method":"mining.submit","params":{"worker":"w"}}"#),
        "params must be an array"
    );
    assert_eq!(
        reason(
            r#"{"id":5,"method":"mining.submit","params":[null,"j","00","00000000","00000000"]}"#
        ),
        "missing worker"
    );
}

#[test]
fn other_methods() {
    assert_eq!(
        method(r#"{"id":6,"method":"mining.extranonce.subscribe","params":[]}"#),
        ClientMethod::ExtranonceSubscribe
    );
    assert_eq!(
        method(r#"{"id":7,"method":"mining.get_transactions","params":["1a"]}"#),
        ClientMethod::GetTransactions {
            job_id: "1a".to_owned()
        }
    );
    assert_eq!(
        bad_params(r#"{"id":7,"method":"mining.get_transactions","params":[]}"#).2,
        "missing job id"
    );
    assert_eq!(
        method(r#"{"id":8,"method":"mining.capabilities","params":[{"notify":[]}]}"#),
        ClientMethod::Capabilities
    );
    assert_eq!(
        method(r#"{"id":9,"method":"mining.multi_version","params":[1]}"#),
        ClientMethod::MultiVersion
    );
    for line in [
        r#"{"id":1,"method":"mining.subscribe"}"#,
        r#"{"id":1,"method":"mining.authorize","params":["u"]}"#,
        r#"{"id":1,"method":"mining.configure","params":[]}"#,
        r#"{"id":1,"method":"mining.suggest_difficulty","params":[1]}"#,
        r#"{"id":1,"method":"mining.suggest_target","params":["ff"]}"#,
        r#"{"id":1,"method":"mining.extranonce.subscribe"}"#,
        r#"{"id":1,"method":"mining.submit","params":["w","j","","00000000","00000000"]}"#,
        r#"{"id":1,"method":"mining.get_transactions","params":["j"]}"#,
        r#"{"id":1,"method":"mining.capabilities"}"#,
        r#"{"id":1,"method":"mining.multi_version"}"#,
        r#"{"id":1,"method":"mining.ping"}"#,
    ] {
        let name: Value = serde_json::from_str::<Value>(line).unwrap()["method"].clone();
        assert_eq!(method(line).name(), name.as_str().unwrap());
    }
    assert_eq!(
        request(r#"{"id":"abc","method":"mining.ping","params":[]}"#),
        (
            Id::from("abc"),
            ClientMethod::Unknown {
                method: "mining.ping".to_owned()
            }
        )
    );
}

#[test]
fn client_replies() {
    assert_eq!(
        parse_line(br#"{"id":100,"result":"bitaxe/BM1366/v2.4.0","error":null}"#),
        Ok(Message::ClientReply {
            id: Id::from(100),
            result: Value::String("bitaxe/BM1366/v2.4.0".to_owned()),
            error: None,
        })
    );
    assert_eq!(
        parse_line(br#"{"id":101,"error":[20,"unsupported",null]}"#),
        Ok(Message::ClientReply {
            id: Id::from(101),
            result: Value::Null,
            error: Some(ReplyError {
                code: 20,
                message: "unsupported".to_owned()
            }),
        })
    );
    assert!(matches!(
        parse_line(br#"{"id":102,"method":null,"result":true}"#),
        Ok(Message::ClientReply { .. })
    ));
}

#[test]
fn framing_and_ids() {
    let line = br#"{"id":1,"method":"mining.extranonce.subscribe","params":[]}"#;
    let mut crlf = line.to_vec();
    crlf.extend_from_slice(b"\r\n");
    assert_eq!(parse_line(&crlf), parse_line(line));
    let mut cr = line.to_vec();
    cr.push(b'\r');
    assert_eq!(parse_line(&cr), parse_line(line));
    // Missing ids read as null; float ids are echoed as sent.
    let (id, _) = request(r#"{"method":"mining.extranonce.subscribe"}"#);
    assert_eq!(id, Id::Null);
    let (id, _) = request(r#"{"id":1.0,"method":"mining.extranonce.subscribe"}"#);
    assert_eq!(id.to_string(), "1.0");
}

#[test]
fn number_ids_that_are_not_integers_echo_back_as_sent() {
    // The first two were found by the stratum_line fuzz target: serde_json's
    // default float parsing read the second as 8000000000000614.0. The rest
    // would not survive a float (1.50, 30 digits).
    for text in [
        "8000000000000000.00000000000",
        "8000000000000615.0",
        "0.1",
        "1.50",
        "-2.5e-300",
        "1E+300",
        "123456789012345678901234567890",
    ] {
        let (id, _) = request(&format!(
            r#"{{"id":{text},"method":"mining.extranonce.subscribe"}}"#
        ));
        let reply = crate::reply_true(&id);
        assert!(
            reply.starts_with(&format!(r#"{{"id":{text},"#)),
            "{text} echoed as {reply}"
        );
        match crate::parse_server_line(reply.as_bytes()) {
            Ok(crate::ServerMessage::Reply { id: echoed, .. }) => assert_eq!(echoed, id, "{reply}"),
            other => panic!("{reply}: {other:?}"),
        }
    }
}

#[test]
fn a_fractional_id_sent_twice_echoes_as_the_one_the_json_reader_kept() {
    // Found by the stratum_line fuzz target: with two `id` members the text
    // of the kept one cannot be had, and the id was a number while its
    // reply read back as a literal. serde_json keeps the last member.
    let (id, _) = request(r#"{"id":[1],"id":1.5,"method":"mining.extranonce.subscribe"}"#);
    let reply = crate::reply_true(&id);
    assert!(reply.starts_with(r#"{"id":1.5,"#), "{reply}");
    match crate::parse_server_line(reply.as_bytes()) {
        Ok(crate::ServerMessage::Reply { id: echoed, .. }) => assert_eq!(echoed, id, "{reply}"),
        other => panic!("{reply}: {other:?}"),
    }
}

#[test]
fn every_parse_error() {
    assert_eq!(parse_line(b""), Err(ParseError::Empty));
    assert_eq!(parse_line(b"  \r\n"), Err(ParseError::Empty));
    let long = vec![b' '; MAX_LINE_BYTES + 1];
    assert_eq!(
        parse_line(&long),
        Err(ParseError::TooLong {
            len: MAX_LINE_BYTES + 1
        })
    );
    // Exactly at the limit is parsed (and here is merely empty).
    let mut at_limit = vec![b' '; MAX_LINE_BYTES];
    at_limit.extend_from_slice(b"\r\n");
    assert_eq!(parse_line(&at_limit), Err(ParseError::Empty));
    assert_eq!(parse_line(b"{\"id\":\xff}"), Err(ParseError::NotUtf8));
    assert!(matches!(
        parse_line(b"{\"id\":1,"),
        Err(ParseError::InvalidJson(_))
    ));
    assert!(matches!(
        parse_line(b"{} {}"),
        Err(ParseError::InvalidJson(_))
    ));
    assert_eq!(parse_line(b"[1,2]"), Err(ParseError::NotAnObject));
    assert_eq!(parse_line(b"\"x\""), Err(ParseError::NotAnObject));
    assert_eq!(
        parse_line(br#"{"id":[1],"method":"mining.subscribe"}"#),
        Err(ParseError::InvalidId)
    );
    assert_eq!(
        parse_line(br#"{"id":true,"method":"mining.subscribe"}"#),
        Err(ParseError::InvalidId)
    );
    let missing = parse_line(br#"{"id":5,"params":[]}"#);
    assert_eq!(missing, Err(ParseError::MissingMethod { id: Id::from(5) }));
    assert_eq!(missing.unwrap_err().id(), Some(&Id::from(5)));
    assert_eq!(
        parse_line(br#"{"id":5,"method":7}"#),
        Err(ParseError::MissingMethod { id: Id::from(5) })
    );
    let bad = parse_line(br#"{"id":"q","method":"mining.submit","params":[]}"#).unwrap_err();
    assert_eq!(bad.id(), Some(&Id::from("q")));
    assert_eq!(
        bad.to_string(),
        "bad params for mining.submit: expected 5 or 6 params, got 0"
    );
    assert_eq!(ParseError::NotUtf8.id(), None);
    // Deep nesting is refused by serde_json's recursion limit, not the stack.
    let deep = format!("{}{}", "[".repeat(5000), "]".repeat(5000));
    assert!(matches!(
        parse_line(deep.as_bytes()),
        Err(ParseError::InvalidJson(_))
    ));
}

fn method_name() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("mining.subscribe".to_owned()),
        Just("mining.authorize".to_owned()),
        Just("mining.configure".to_owned()),
        Just("mining.suggest_difficulty".to_owned()),
        Just("mining.suggest_target".to_owned()),
        Just("mining.extranonce.subscribe".to_owned()),
        Just("mining.submit".to_owned()),
        Just("mining.get_transactions".to_owned()),
        Just("mining.capabilities".to_owned()),
        Just("mining.multi_version".to_owned()),
        "[a-z.]{0,12}",
    ]
}

/// Arbitrary JSON values, biased toward the shapes Stratum params take.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        "[0-9a-fA-F]{0,66}".prop_map(Value::String),
        "\\PC{0,12}".prop_map(Value::String),
        prop_oneof![
            Just("version-rolling"),
            Just("minimum-difficulty"),
            Just("subscribe-extranonce"),
            Just("version-rolling.mask"),
            Just("minimum-difficulty.value"),
        ]
        .prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..7).prop_map(Value::Array),
            proptest::collection::btree_map(
                prop_oneof![
                    Just("version-rolling.mask".to_owned()),
                    Just("version-rolling.min-bit-count".to_owned()),
                    Just("minimum-difficulty.value".to_owned()),
                    "[a-z]{1,4}",
                ],
                inner,
                0..4
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #[test]
    fn never_panics_on_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = parse_line(&bytes);
        let _ = crate::parse_server_line(&bytes);
    }

    #[test]
    fn never_panics_on_jsonish_text(s in "[{}\\[\\]\",:0-9a-z.\\- eE\\\\]{0,200}") {
        let _ = parse_line(s.as_bytes());
        let _ = crate::parse_server_line(s.as_bytes());
    }

    #[test]
    fn never_panics_on_requests(
        id in json_value(),
        name in method_name(),
        params in json_value(),
    ) {
        let line = serde_json::json!({"id": id, "method": name, "params": params}).to_string();
        match parse_line(line.as_bytes()) {
            Ok(Message::Request { .. }) | Err(ParseError::BadParams { .. } | ParseError::InvalidId) => {}
            other => prop_assert!(false, "{line}: {other:?}"),
        }
        let _ = crate::parse_server_line(line.as_bytes());
    }
}

/// Lines that take the `mining.submit` fast path, lines that look like it but
/// must not (escapes, nulls, floats, duplicates, extra params, bad hex), and
/// lines that are not submits at all: the fast path either declines or gives
/// exactly what the general parser gives.
#[test]
fn submit_fast_path_agrees_with_the_general_parser() {
    let lines = [
        r#"{"id":4,"method":"mining.submit","params":["0xAb.w","1a","00000000deadbeef","5f5e1000","0000abcd"]}"#,
        r#"{"params":["w","1a","00","5f5e1000","0000abcd","00002000"],"method":"mining.submit","id":18446744073709551615}"#,
        r#"{"id":null,"method":"mining.submit","params":["w","1a","","5f5e1000","0000abcd"],"jsonrpc":"2.0"}"#,
        r#"{"method":"mining.submit","params":["w","1a","00","5f5e1000","0000abcd"]}"#,
        "{\"id\":1,\"method\":\"mining.submit\",\"params\":[\"w\",\"1a\",\"00\",\"5f5e1000\",\"0000abcd\"]}\r\n",
        r#"{"id":1.0,"method":"mining.submit","params":["w","1a","00","5f5e1000","0000abcd"]}"#,
        r#"{"id":-0,"method":"mining.submit","params":["w","1a","00","5f5e1000","0000abcd"]}"#,
        r#"{"id":-3,"method":"mining.submit","params":["w","1a","00","5f5e1000","0000abcd"]}"#,
        r#"{"id":"7","method":"mining.submit","params":["w","1a","00","5f5e1000","0000abcd"]}"#,
        r#"{"id":1,"method":"mining.submit","params":["w\u0041","1a","00","5f5e1000","0000abcd"]}"#,
        r#"{"id":1,"meth\u006fd":"mining.submit","params":["w","1a","00","5f5e1000","0000abcd"]}"#,
        r#"{"id":1,"method":"mining.submi\u0074","params":["w","1a","00","5f5e1000","0000abcd"]}"#,
        r#"{"id":1,"method":"mining.submit","params":["w","1a","00","5f5e1000","0000abcd",null]}"#,
        r#"{"id":1,"method":"mining.submit","params":["w","1a","00","5f5e1000","0000abcd","00002000","x"]}"#,
        r#"{"id":1,"method":"mining.submit","params":["w","1a","0","5f5e1000","0000abcd"]}"#,
        r#"{"id":1,"method":"mining.submit","params":["w","1a","00","0x5f5e10","0000abcd"]}"#,
        r#"{"id":1,"method":"mining.submit","params":["w","1a","00","5f5e1000"]}"#,
        r#"{"id":1,"method":"mining.submit","params":["w",7,"00","5f5e1000","0000abcd"]}"#,
        r#"{"id":1,"method":"mining.submit","method":"mining.submit","params":["w","1a","00","5f5e1000","0000abcd"]}"#,
        r#"{"id":1,"id":2,"method":"mining.submit","params":["w","1a","00","5f5e1000","0000abcd"]}"#,
        r#"{"id":1,"method":"mining.submit","params":["w","1a","00","5f5e1000","0000abcd"]} x"#,
        r#"{"id":1,"method":"mining.authorize","params":["w","x"]}"#,
        r#"{"id":1,"result":true,"error":null}"#,
    ];
    let mut fast = 0;
    // Invalid UTF-8 in a member the fast path skips.
    let not_utf8: &[u8] = b"{\"x\":\"K\xecK\",\"id\":1,\"method\":\"mining.submit\",\"params\":[\"w\",\"1a\",\"00\",\"5f5e1000\",\"0000abcd\"]}";
    assert_eq!(parse_submit_fast(not_utf8), None);
    assert_eq!(parse_line(not_utf8), Err(ParseError::NotUtf8));
    for line in lines {
        let general = parse_line_general(line.as_bytes());
        if let Some(quick) = parse_submit_fast(line.as_bytes()) {
            fast += 1;
            assert_eq!(Ok(quick), general, "{line}");
        }
        assert_eq!(parse_line(line.as_bytes()), general, "{line}");
    }
    // The five plain submits, and the one whose key `method` is escaped (an
    // escaped key is still the key).
    assert_eq!(fast, 6);
}

proptest! {
    #[test]
    fn submit_fast_path_agrees_on_generated_submits(
        id in prop_oneof![Just("null".to_owned()), any::<u64>().prop_map(|n| n.to_string()), any::<i64>().prop_map(|n| n.to_string()), Just("\"x\"".to_owned())],
        params in proptest::collection::vec(prop_oneof![
            "[0-9a-fA-F]{0,10}",
            "[ -~]{0,12}",
            Just("\\u0030".to_owned()),
        ], 0..8),
        nulls in any::<u8>(),
    ) {
        let items: Vec<String> = params
            .iter()
            .enumerate()
            .map(|(i, p)| if nulls & (1 << (i % 8)) != 0 && nulls > 200 { "null".to_owned() } else { serde_json::to_string(p).unwrap().replace("\\\\u0030", "\\u0030") })
            .collect();
        let line = format!(r#"{{"id":{id},"method":"mining.submit","params":[{}]}}"#, items.join(","));
        let general = parse_line_general(line.as_bytes());
        if let Some(quick) = parse_submit_fast(line.as_bytes()) {
            prop_assert_eq!(Ok(quick), general);
        }
    }
}
