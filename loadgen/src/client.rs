//! The miner's side of one connection: connect (from a chosen loopback
//! source address), subscribe and authorize, wait for the first job; then
//! write pre-formatted `mining.submit` lines and read the pool's replies.
//!
//! Replies are matched to submits by their numeric id, which counts up per
//! connection; the pool answers strictly in order. The common reply,
//! `{"id":N,"result":true,"error":null}`, is recognised without a JSON
//! parser; anything else goes through `proofpool_stratum`'s.

use proofpool_primitives::{Difficulty, U256};
use proofpool_stratum::{self as sv1, Id, NotifyOwned, ServerMessage, SubscribeReply};
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

/// The miner every connection authorizes as; workers differ per connection.
pub(crate) const MINER: &str = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed";

/// The first id a submit gets (1 and 2 are the handshake's).
pub(crate) const FIRST_SUBMIT_ID: u64 = 10;

/// Longest line the reader keeps (the pool's notify is far shorter).
const MAX_LINE: usize = 64 * 1024;

/// Why a connection failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ClientError {
    /// The socket failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// The pool closed the connection.
    #[error("the pool closed the connection during the handshake")]
    Closed,
    /// The handshake took too long.
    #[error("no job within {0:?} of connecting")]
    Timeout(Duration),
    /// The pool refused a handshake step.
    #[error("the pool refused {what}: {message}")]
    Refused {
        /// The step.
        what: &'static str,
        /// The pool's message.
        message: String,
    },
    /// A line from the pool did not parse.
    #[error("unparsable line from the pool: {0}")]
    Protocol(String),
}

/// Newline-framed input with one reused buffer.
#[derive(Debug, Default)]
pub(crate) struct Lines {
    buf: Vec<u8>,
    start: usize,
}

impl Lines {
    /// The next complete line (without `\n`), as a range into [`Self::get`].
    pub(crate) fn pop(&mut self) -> Option<std::ops::Range<usize>> {
        let pos = self.buf[self.start..].iter().position(|&b| b == b'\n')?;
        let line = self.start..self.start + pos;
        self.start += pos + 1;
        Some(line)
    }

    /// The bytes of a range [`Self::pop`] returned.
    pub(crate) fn get(&self, range: std::ops::Range<usize>) -> &[u8] {
        &self.buf[range]
    }

    /// Reads more from `reader`; `Ok(0)` at end of stream. Fails on a line
    /// longer than the pool ever sends. Cancel-safe: a dropped call loses
    /// no bytes.
    pub(crate) async fn fill<R: AsyncRead + Unpin>(
        &mut self,
        reader: &mut R,
    ) -> std::io::Result<usize> {
        if self.start > 0 {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        if self.buf.len() > MAX_LINE {
            return Err(std::io::Error::other("line from the pool is too long"));
        }
        // `read_buf` fills spare capacity and grows the length only when
        // the read completes: cancel-safe, so this can sit in a `select!`.
        self.buf.reserve(16 * 1024);
        let n = reader.read_buf(&mut self.buf).await?;
        Ok(n)
    }

    /// Like [`Self::fill`] for a socket with [`stamp_arrivals`] on: also
    /// returns the kernel's receive timestamp of the last bytes read (so
    /// lines read together all get the latest one). Cancel-safe: the only
    /// await is for readiness, so it can sit in a `select!`.
    pub(crate) async fn fill_stamped(
        &mut self,
        stream: &TcpStream,
    ) -> std::io::Result<(usize, Option<std::time::SystemTime>)> {
        use nix::sys::socket::{ControlMessageOwned, MsgFlags, recvmsg};
        use std::os::fd::AsRawFd;
        /// Bytes read per call.
        const CHUNK: usize = 8192;
        if self.start > 0 {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        if self.buf.len() > MAX_LINE {
            return Err(std::io::Error::other("line from the pool is too long"));
        }
        let mut control = nix::cmsg_space!(nix::sys::time::TimeSpec);
        loop {
            stream.readable().await?;
            let old = self.buf.len();
            self.buf.resize(old + CHUNK, 0);
            let read = stream.try_io(tokio::io::Interest::READABLE, || {
                let mut iov = [std::io::IoSliceMut::new(&mut self.buf[old..])];
                let msg = recvmsg::<()>(
                    stream.as_raw_fd(),
                    &mut iov,
                    Some(&mut control),
                    MsgFlags::empty(),
                )
                .map_err(std::io::Error::from)?;
                let stamp = msg.cmsgs().ok().and_then(|mut cmsgs| {
                    cmsgs.find_map(|c| match c {
                        ControlMessageOwned::ScmTimestampns(ts) => Some(ts),
                        _ => None,
                    })
                });
                Ok((msg.bytes, stamp))
            });
            match read {
                Ok((n, stamp)) => {
                    self.buf.truncate(old + n);
                    let at = stamp.and_then(|ts| {
                        let secs = u64::try_from(ts.tv_sec()).ok()?;
                        let nanos = u32::try_from(ts.tv_nsec()).ok()?;
                        std::time::UNIX_EPOCH.checked_add(std::time::Duration::new(secs, nanos))
                    });
                    return Ok((n, at));
                }
                Err(e) => {
                    self.buf.truncate(old);
                    if e.kind() != std::io::ErrorKind::WouldBlock {
                        return Err(e);
                    }
                }
            }
        }
    }
}

/// Asks the kernel to stamp each packet `stream` receives with the time it
/// arrived (`SO_TIMESTAMPNS`), for [`Lines::fill_stamped`].
pub(crate) fn stamp_arrivals(stream: &TcpStream) -> std::io::Result<()> {
    nix::sys::socket::setsockopt(stream, nix::sys::socket::sockopt::ReceiveTimestampns, &true)
        .map_err(std::io::Error::from)
}

/// A connection that has subscribed, authorized and received its first job.
#[derive(Debug)]
pub(crate) struct Ready {
    /// The socket.
    pub(crate) stream: TcpStream,
    /// Input read past the job, not yet consumed.
    pub(crate) lines: Lines,
    /// The worker name the connection authorized.
    pub(crate) worker: String,
    /// The pool's extranonce1 for this connection.
    pub(crate) extranonce1: Vec<u8>,
    /// The extranonce2 size in bytes.
    pub(crate) extranonce2_size: usize,
    /// The share target from the last `mining.set_difficulty`.
    pub(crate) share_target: U256,
    /// The first job.
    pub(crate) job: NotifyOwned,
}

/// Connects to `pool` from `source` (port chosen by the kernel) and runs the
/// handshake as worker `worker`, within `timeout`.
pub(crate) async fn connect(
    pool: SocketAddr,
    source: IpAddr,
    worker: String,
    timeout: Duration,
) -> Result<Ready, ClientError> {
    tokio::time::timeout(timeout, handshake(pool, source, worker))
        .await
        .map_err(|_| ClientError::Timeout(timeout))?
}

async fn handshake(pool: SocketAddr, source: IpAddr, worker: String) -> Result<Ready, ClientError> {
    let socket = match source {
        IpAddr::V4(_) => TcpSocket::new_v4()?,
        IpAddr::V6(_) => TcpSocket::new_v6()?,
    };
    socket.bind(SocketAddr::new(source, 0))?;
    let mut stream = socket.connect(pool).await?;
    stream.set_nodelay(true)?;
    let username = format!("{MINER}.{worker}");
    let mut hello = sv1::miner::subscribe(&Id::from(1u64), "proofpool-load/0.1");
    hello.push_str(&sv1::miner::authorize(&Id::from(2u64), &username, "x"));
    stream.write_all(hello.as_bytes()).await?;

    let mut lines = Lines::default();
    let mut subscribed: Option<SubscribeReply> = None;
    let mut authorized = false;
    // Before any set_difficulty the pool's start difficulty applies; the
    // pool always sends one with the first job.
    let mut share_target = Difficulty::ONE.to_target();
    loop {
        while let Some(range) = lines.pop() {
            let line = lines.get(range);
            let message = sv1::parse_server_line(line)
                .map_err(|e| ClientError::Protocol(format!("{e}: {}", excerpt(line))))?;
            match message {
                ServerMessage::Reply { id, result, error } => {
                    let what = match id_number(&id) {
                        Some(1) => "mining.subscribe",
                        Some(2) => "mining.authorize",
                        _ => continue,
                    };
                    if let Some(error) = error {
                        return Err(ClientError::Refused {
                            what,
                            message: error.message,
                        });
                    }
                    if what == "mining.subscribe" {
                        subscribed =
                            Some(SubscribeReply::from_result(&result).ok_or_else(|| {
                                ClientError::Protocol(format!("subscribe result {result}"))
                            })?);
                    } else if result.as_bool() == Some(true) {
                        authorized = true;
                    } else {
                        return Err(ClientError::Refused {
                            what,
                            message: result.to_string(),
                        });
                    }
                }
                // The pool checks shares against the target its jobs commit
                // to: the difficulty's, rounded down to compact form.
                ServerMessage::SetDifficulty(d) => {
                    share_target =
                        proofpool_epoch::share_commitment::committed_target(d.to_target()).1;
                }
                ServerMessage::Notify(job) => {
                    let Some(sub) = subscribed.take().filter(|_| authorized) else {
                        continue;
                    };
                    return Ok(Ready {
                        stream,
                        lines,
                        worker: username,
                        extranonce1: sub.extranonce1,
                        extranonce2_size: sub.extranonce2_size,
                        share_target,
                        job,
                    });
                }
                _ => {}
            }
        }
        if lines.fill(&mut stream).await? == 0 {
            return Err(ClientError::Closed);
        }
    }
}

/// The start of a line, for error messages.
fn excerpt(line: &[u8]) -> String {
    let text = String::from_utf8_lossy(&line[..line.len().min(200)]).into_owned();
    if line.len() > 200 {
        format!("{text}… ({} bytes)", line.len())
    } else {
        text
    }
}

/// A reply's id as a number.
pub(crate) fn id_number(id: &Id) -> Option<u64> {
    match id {
        Id::Number(n) => n.as_u64(),
        _ => None,
    }
}

/// The id of `{"id":N,"result":true,"error":null}`, the accepted-share
/// reply, without a JSON parser; `None` for any other line.
pub(crate) fn accepted_id(line: &[u8]) -> Option<u64> {
    let rest = line.strip_prefix(b"{\"id\":")?;
    let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    if digits == 0 || digits > 19 {
        return None;
    }
    let tail = rest[digits..]
        .strip_suffix(b"\r")
        .unwrap_or(&rest[digits..]);
    if tail != b",\"result\":true,\"error\":null}" {
        return None;
    }
    std::str::from_utf8(&rest[..digits]).ok()?.parse().ok()
}

/// What a line from the pool meant for the share counters.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Reply {
    /// A submit was accepted.
    Accepted(u64),
    /// A submit was rejected with this code and message.
    Rejected(u64, i64, String),
    /// A job; `true` if it voids earlier ones.
    Job(bool),
    /// Anything else the pool sends (difficulty, messages).
    Other,
}

/// Classifies one line from the pool.
pub(crate) fn classify(line: &[u8]) -> Result<Reply, ClientError> {
    if let Some(id) = accepted_id(line) {
        return Ok(Reply::Accepted(id));
    }
    let message = sv1::parse_server_line(line)
        .map_err(|e| ClientError::Protocol(format!("{e}: {}", excerpt(line))))?;
    Ok(match message {
        ServerMessage::Reply { id, result, error } => {
            let Some(id) = id_number(&id) else {
                return Ok(Reply::Other);
            };
            match error {
                Some(e) => Reply::Rejected(id, e.code, e.message),
                None if result.as_bool() == Some(true) => Reply::Accepted(id),
                None => Reply::Rejected(id, 0, format!("result {result}")),
            }
        }
        ServerMessage::Notify(job) => Reply::Job(job.clean_jobs),
        _ => Reply::Other,
    })
}

/// Formats `mining.submit` lines for one work unit: everything but the id
/// and the nonce is fixed, so it is formatted once.
#[derive(Debug, Clone)]
pub(crate) struct SubmitFormat {
    /// `,"method":"mining.submit","params":["worker","job","en2","ntime","`
    middle: Vec<u8>,
}

impl SubmitFormat {
    /// The fixed part for `worker`, `job_id`, `extranonce2` and `ntime`.
    pub(crate) fn new(worker: &str, job_id: &str, extranonce2: &[u8], ntime: u32) -> Self {
        // The library builder produces the whole line; the part between the
        // id and the nonce is cut out of one so the format stays the pool's.
        let sample =
            sv1::miner::submit(&Id::from(0u64), worker, job_id, extranonce2, ntime, 0, None);
        let start = sample.find(",\"method\"").unwrap_or(0);
        let end = sample.rfind("\"00000000\"").map_or(sample.len(), |i| i + 1);
        Self {
            middle: sample.as_bytes()[start..end].to_vec(),
        }
    }

    /// Appends the line for `id` and `nonce` (newline included) to `out`.
    pub(crate) fn push(&self, out: &mut Vec<u8>, id: u64, nonce: u32) {
        out.extend_from_slice(b"{\"id\":");
        push_decimal(out, id);
        out.extend_from_slice(&self.middle);
        const HEX: &[u8; 16] = b"0123456789abcdef";
        for shift in (0..8).rev() {
            out.push(HEX[((nonce >> (shift * 4)) & 0xf) as usize]);
        }
        out.extend_from_slice(b"\"]}\n");
    }
}

fn push_decimal(out: &mut Vec<u8>, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[i..]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formatted_submit_equals_the_library_line() {
        let f = SubmitFormat::new("0xabc.w1", "1f", &[0, 1, 2, 3, 4, 5, 6, 7], 0x6543_2100);
        for (id, nonce) in [(10u64, 0u32), (12_345, 0xdead_beef), (u64::MAX, u32::MAX)] {
            let mut out = Vec::new();
            f.push(&mut out, id, nonce);
            let expected = sv1::miner::submit(
                &Id::from(id),
                "0xabc.w1",
                "1f",
                &[0, 1, 2, 3, 4, 5, 6, 7],
                0x6543_2100,
                nonce,
                None,
            );
            assert_eq!(String::from_utf8(out).unwrap(), expected);
        }
    }

    #[test]
    fn accepted_replies_are_read_without_json() {
        let line = sv1::reply_true(&Id::from(4242u64));
        let line = line.trim_end_matches('\n').as_bytes();
        assert_eq!(accepted_id(line), Some(4242));
        assert_eq!(classify(line).unwrap(), Reply::Accepted(4242));
        assert_eq!(
            accepted_id(b"{\"id\":7,\"result\":false,\"error\":null}"),
            None
        );
        let error = sv1::reply_error(
            &Id::from(9u64),
            sv1::ErrorCode::Duplicate,
            "duplicate share",
        );
        assert_eq!(
            classify(error.trim_end().as_bytes()).unwrap(),
            Reply::Rejected(9, 22, "duplicate share".to_owned())
        );
    }

    #[tokio::test]
    async fn lines_split_across_reads() {
        let data: &[u8] = b"ab\ncd";
        let mut reader = data;
        let mut lines = Lines::default();
        assert_eq!(lines.fill(&mut reader).await.unwrap(), 5);
        let first = lines.pop().unwrap();
        assert_eq!(lines.get(first), b"ab");
        assert!(lines.pop().is_none());
        let mut more: &[u8] = b"\n";
        lines.fill(&mut more).await.unwrap();
        let second = lines.pop().unwrap();
        assert_eq!(lines.get(second), b"cd");
    }
}
