//! Lines the pool sends to miners: replies and notifications.
//!
//! Each builder returns one complete line ending in `\n`, written straight
//! into a `String` without building a `serde_json::Value` first:
//! `mining.notify` goes to every miner on every new block template.

use crate::json::{Line, push_hex_u32, push_str};
use crate::{EncodeError, ErrorCode, Id};
use proofpool_primitives::Difficulty;

/// The params of a `mining.notify`, borrowed from the job.
#[derive(Debug, Clone, Copy)]
pub struct NotifyParams<'a> {
    /// The job id miners echo in `mining.submit`.
    pub job_id: &'a str,
    /// The previous block hash as 64 hex digits, already in Stratum's
    /// word-swapped order; sent as given.
    pub prevhash_hex: &'a str,
    /// The coinbase bytes before the extranonces.
    pub coinbase1: &'a [u8],
    /// The coinbase bytes after the extranonces.
    pub coinbase2: &'a [u8],
    /// The merkle branch of the coinbase, each hash sent as its bytes in hex.
    pub merkle_branch: &'a [[u8; 32]],
    /// The block version.
    pub version: u32,
    /// The compact network target.
    pub nbits: u32,
    /// The header time.
    pub ntime: u32,
    /// Whether miners must drop their earlier jobs.
    pub clean_jobs: bool,
}

/// The answer to a `mining.configure` request (BIP310).
#[derive(Debug, Clone, Copy, Default)]
pub struct ConfigureResult<'a> {
    /// `Some(mask)` grants version rolling with that mask.
    pub version_rolling: Option<u32>,
    /// `Some(accepted)` answers a `minimum-difficulty` request.
    pub minimum_difficulty: Option<bool>,
    /// `Some(accepted)` answers a `subscribe-extranonce` request.
    pub subscribe_extranonce: Option<bool>,
    /// Extensions answered `false`: the unknown ones, and `version-rolling`
    /// when it is requested but not granted.
    pub refused: &'a [String],
}

/// `{"id":…,"result":<result>,"error":null}`.
pub fn reply_ok(id: &Id, result: impl serde::Serialize) -> Result<String, EncodeError> {
    let result = serde_json::to_string(&result)?;
    let mut line = Line::reply(id, result.len());
    line.item().push_str(&result);
    Ok(line.finish_reply(None))
}

/// `{"id":…,"result":true,"error":null}`: an accepted share or authorization.
pub fn reply_true(id: &Id) -> String {
    let mut line = Line::reply(id, 4);
    line.item().push_str("true");
    line.finish_reply(None)
}

/// `{"id":…,"result":null,"error":[code,"message",null]}`.
///
/// Pass `code.message()` for the standard message.
pub fn reply_error(id: &Id, code: ErrorCode, message: &str) -> String {
    let mut error = String::with_capacity(message.len() + 16);
    error.push('[');
    crate::json::push_display(&mut error, code.code());
    error.push(',');
    push_str(&mut error, message);
    error.push_str(",null]");
    let mut line = Line::reply(id, error.len() + 4);
    line.item().push_str("null");
    line.finish_reply(Some(&error))
}

/// The reply to `mining.subscribe`:
/// `[[["mining.set_difficulty",sid],["mining.notify",sid]],"<en1 hex>",en2_size]`.
pub fn subscribe_result(
    id: &Id,
    subscription_id: &str,
    extranonce1: &[u8],
    extranonce2_size: usize,
) -> String {
    let mut line = Line::reply(id, 2 * subscription_id.len() + 2 * extranonce1.len() + 64);
    let out = line.item();
    out.push_str("[[[\"mining.set_difficulty\",");
    push_str(out, subscription_id);
    out.push_str("],[\"mining.notify\",");
    push_str(out, subscription_id);
    out.push_str("]],\"");
    crate::json::push_hex(out, extranonce1);
    out.push_str("\",");
    crate::json::push_display(out, extranonce2_size);
    out.push(']');
    line.finish_reply(None)
}

/// The reply to `mining.configure`, e.g.
/// `{"version-rolling":true,"version-rolling.mask":"1fffe000","minimum-difficulty":true}`.
pub fn configure_result(id: &Id, result: &ConfigureResult<'_>) -> String {
    let mut body = String::from("{");
    let mut field = |key: &str, value: &str| {
        if body.len() > 1 {
            body.push(',');
        }
        push_str(&mut body, key);
        body.push(':');
        body.push_str(value);
    };
    if let Some(mask) = result.version_rolling {
        field("version-rolling", "true");
        let mut hex = String::new();
        push_hex_u32(&mut hex, mask);
        field("version-rolling.mask", &hex);
    }
    if let Some(accepted) = result.minimum_difficulty {
        field("minimum-difficulty", bool_str(accepted));
    }
    if let Some(accepted) = result.subscribe_extranonce {
        field("subscribe-extranonce", bool_str(accepted));
    }
    for name in result.refused {
        field(name, "false");
    }
    body.push('}');
    let mut line = Line::reply(id, body.len());
    line.item().push_str(&body);
    line.finish_reply(None)
}

const fn bool_str(b: bool) -> &'static str {
    if b { "true" } else { "false" }
}

/// `mining.notify`: a new job.
///
/// Params: `[job_id, prevhash, coinbase1, coinbase2, [branch…], version,
/// nbits, ntime, clean_jobs]`, with the three numbers as 8 big-endian hex
/// digits.
pub fn notify(params: &NotifyParams<'_>) -> String {
    let capacity = params.job_id.len()
        + params.prevhash_hex.len()
        + 2 * (params.coinbase1.len() + params.coinbase2.len())
        + 67 * params.merkle_branch.len()
        + 64;
    let mut line = Line::request(&Id::Null, "mining.notify", capacity);
    line.str(params.job_id)
        .str(params.prevhash_hex)
        .hex(params.coinbase1)
        .hex(params.coinbase2);
    let out = line.item();
    out.push('[');
    for (i, hash) in params.merkle_branch.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        crate::json::push_hex_str(out, hash);
    }
    out.push(']');
    line.hex_u32(params.version)
        .hex_u32(params.nbits)
        .hex_u32(params.ntime)
        .raw(params.clean_jobs);
    line.finish_request()
}

/// `mining.set_difficulty`, with the difficulty printed exactly (`0.0001`).
pub fn set_difficulty(difficulty: Difficulty) -> String {
    let mut line = Line::request(&Id::Null, "mining.set_difficulty", 24);
    line.raw(difficulty);
    line.finish_request()
}

/// `mining.set_version_mask`: the version bits miners may roll.
pub fn set_version_mask(mask: u32) -> String {
    let mut line = Line::request(&Id::Null, "mining.set_version_mask", 10);
    line.hex_u32(mask);
    line.finish_request()
}

/// `mining.set_extranonce`: a new extranonce1 and extranonce2 size.
pub fn set_extranonce(extranonce1: &[u8], extranonce2_size: usize) -> String {
    let mut line = Line::request(
        &Id::Null,
        "mining.set_extranonce",
        2 * extranonce1.len() + 8,
    );
    line.hex(extranonce1).raw(extranonce2_size);
    line.finish_request()
}

/// `client.reconnect`: ask the miner to connect to `host:port` after
/// `wait_secs` seconds.
pub fn reconnect(host: &str, port: u16, wait_secs: u32) -> String {
    let mut line = Line::request(&Id::Null, "client.reconnect", host.len() + 16);
    line.str(host).raw(port).raw(wait_secs);
    line.finish_request()
}

/// `client.reconnect` with no parameters: reconnect to the same host and
/// port (cgminer and its descendants read missing parameters that way).
/// Behind a load balancer that moves the miner to another pool instance.
pub fn reconnect_same_server() -> String {
    Line::request(&Id::Null, "client.reconnect", 0).finish_request()
}

/// `client.show_message`: a message for the miner's operator.
pub fn show_message(message: &str) -> String {
    let mut line = Line::request(&Id::Null, "client.show_message", message.len() + 2);
    line.str(message);
    line.finish_request()
}

/// `client.get_version`: a request the miner answers with its version string.
pub fn get_version(id: &Id) -> String {
    Line::request(id, "client.get_version", 0).finish_request()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn parse(line: &str) -> Value {
        assert!(line.ends_with('\n') && !line[..line.len() - 1].contains('\n'));
        serde_json::from_str(line).unwrap()
    }

    #[test]
    fn replies() {
        assert_eq!(
            reply_true(&Id::from(4)),
            "{\"id\":4,\"result\":true,\"error\":null}\n"
        );
        assert_eq!(
            reply_error(
                &Id::from("x"),
                ErrorCode::LowDifficulty,
                "low difficulty share"
            ),
            "{\"id\":\"x\",\"result\":null,\"error\":[23,\"low difficulty share\",null]}\n"
        );
        let line = reply_error(&Id::Null, ErrorCode::Other, "bad \"quote\"\n");
        assert_eq!(parse(&line)["error"], json!([20, "bad \"quote\"\n", null]));
        let line = reply_ok(&Id::from(2), json!({"a": [1, 2]})).unwrap();
        assert_eq!(line, "{\"id\":2,\"result\":{\"a\":[1,2]},\"error\":null}\n");
        let bad_map: std::collections::HashMap<Vec<u8>, u8> = [(vec![1], 1)].into();
        assert!(reply_ok(&Id::Null, &bad_map).is_err());
    }

    #[test]
    fn subscribe_reply_has_the_standard_shape() {
        let line = subscribe_result(&Id::from(1), "deadbeef", &[0x08, 0, 0, 2], 4);
        assert_eq!(
            line,
            "{\"id\":1,\"result\":[[[\"mining.set_difficulty\",\"deadbeef\"],\
             [\"mining.notify\",\"deadbeef\"]],\"08000002\",4],\"error\":null}\n"
        );
    }

    #[test]
    fn configure_reply() {
        let refused = vec!["info".to_owned()];
        let line = configure_result(
            &Id::from(1),
            &ConfigureResult {
                version_rolling: Some(0x1fff_e000),
                minimum_difficulty: Some(true),
                subscribe_extranonce: Some(false),
                refused: &refused,
            },
        );
        assert_eq!(
            parse(&line),
            json!({"id": 1, "error": null, "result": {
                "version-rolling": true, "version-rolling.mask": "1fffe000",
                "minimum-difficulty": true, "subscribe-extranonce": false, "info": false}})
        );
        let empty = configure_result(&Id::from(1), &ConfigureResult::default());
        assert_eq!(empty, "{\"id\":1,\"result\":{},\"error\":null}\n");
    }

    #[test]
    fn notify_line() {
        let branch = [[0x11; 32], [0xab; 32]];
        let line = notify(&NotifyParams {
            job_id: "1a",
            prevhash_hex: &"ab".repeat(32),
            coinbase1: &[1, 2],
            coinbase2: &[],
            merkle_branch: &branch,
            version: 0x2000_0000,
            nbits: 0x1d00_ffff,
            ntime: 0x0000_0001,
            clean_jobs: true,
        });
        assert_eq!(
            parse(&line),
            json!({"id": null, "method": "mining.notify", "params": [
                "1a", "ab".repeat(32), "0102", "", ["11".repeat(32), "ab".repeat(32)],
                "20000000", "1d00ffff", "00000001", true]})
        );
    }

    #[test]
    fn notifications() {
        let d = |s: &str| s.parse::<Difficulty>().unwrap();
        assert_eq!(
            set_difficulty(d("1e-4")),
            "{\"id\":null,\"method\":\"mining.set_difficulty\",\"params\":[0.0001]}\n"
        );
        assert_eq!(
            set_difficulty(d("512")),
            "{\"id\":null,\"method\":\"mining.set_difficulty\",\"params\":[512]}\n"
        );
        assert_eq!(
            parse(&set_version_mask(0x1fff_e000))["params"],
            json!(["1fffe000"])
        );
        assert_eq!(
            parse(&set_extranonce(&[0xde, 0xad], 6))["params"],
            json!(["dead", 6])
        );
        assert_eq!(parse(&reconnect_same_server())["params"], json!([]));
        assert_eq!(
            parse(&reconnect("pool.example", 3333, 5))["params"],
            json!(["pool.example", 3333, 5])
        );
        assert_eq!(
            parse(&show_message("maintenance at 12:00"))["params"],
            json!(["maintenance at 12:00"])
        );
        assert_eq!(
            get_version(&Id::from(9)),
            "{\"id\":9,\"method\":\"client.get_version\",\"params\":[]}\n"
        );
    }
}
