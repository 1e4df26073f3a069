//! A Stratum V2 connection: the Noise NX handshake, then encrypted frames
//! carrying typed messages, on the SRI crates (`noise_sv2`, `codec_sv2`,
//! `parsers_sv2`); no framing or cryptography of our own.
//!
//! Generic over the halves of any async stream, so the pool's listener,
//! the reference miner and the tests share it. Every read is bounded: the
//! handshake by a timeout, and a frame by [`MAX_FRAME`] bytes on the wire
//! (unless the connection's [`FrameLimit`] is raised, as for job
//! declaration, whose messages carry whole blocks), so a peer cannot make
//! the pool buffer more than that by declaring a large payload and
//! trickling it in.

use super::keys::AuthorityKey;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use stratum_core::codec_sv2::{
    Decrypted, Handshake, MessageFrame, NoiseDecoder, NoiseEncoder, TransportDecryptState,
    TransportEncryptState,
};
use stratum_core::noise_sv2::{
    ELLSWIFT_ENCODING_SIZE, INITIATOR_EXPECTED_HANDSHAKE_MESSAGE_SIZE, Initiator, Responder,
};
use stratum_core::parsers_sv2::{AnyMessage, AnyMessageOwned};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// The largest frame read, in encrypted bytes on the wire: well above the
/// mining protocol's largest message from a miner (`SetupConnection`, with
/// its five short strings), well below what a peer could make the pool
/// buffer by declaring a payload of the protocol's maximum.
pub const MAX_FRAME: usize = 64 * 1024;

/// The largest frame a connection's reader takes, shared with whoever may
/// raise it (the reader may be a task of its own by then).
#[derive(Debug, Clone)]
pub struct FrameLimit(Arc<AtomicUsize>);

impl FrameLimit {
    fn new() -> Self {
        Self(Arc::new(AtomicUsize::new(MAX_FRAME)))
    }

    /// Lets frames of up to `bytes` on the wire in from now on (the frame
    /// being read included).
    pub fn raise(&self, bytes: usize) {
        self.0.fetch_max(bytes, Ordering::Relaxed);
    }

    /// The limit now, in bytes on the wire.
    pub fn get(&self) -> usize {
        self.0.load(Ordering::Relaxed)
    }
}

/// Why a Stratum V2 connection failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Sv2Error {
    /// The socket.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// The peer did not complete the handshake in time.
    #[error("the Noise handshake did not complete within {0:?}")]
    HandshakeTimeout(Duration),
    /// The handshake failed: a bad key, a bad certificate, garbage.
    #[error("Noise handshake failed: {0}")]
    Handshake(String),
    /// A frame failed to decrypt or decode; the connection cannot go on.
    #[error("bad frame: {0}")]
    Frame(String),
    /// A frame larger than the connection's [`FrameLimit`].
    #[error("a frame larger than the connection's limit")]
    TooLarge,
    /// A message that does not encode (a bug, or a field too long).
    #[error("cannot encode {0}")]
    Encode(String),
}

/// SRI's errors implement `Debug` but not `std::error::Error`.
fn text(e: impl std::fmt::Debug) -> String {
    format!("{e:?}")
}

/// One encrypted Stratum V2 connection.
pub struct Sv2Connection<R, W> {
    reader: Sv2Reader<R>,
    writer: Sv2Writer<W>,
}

impl<R, W> std::fmt::Debug for Sv2Connection<R, W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sv2Connection").finish_non_exhaustive()
    }
}

impl<R: AsyncRead + Unpin, W: AsyncWrite + Unpin> Sv2Connection<R, W> {
    /// The pool's side: answers the miner's handshake with a certificate
    /// signed by `key`, valid for `cert_validity`.
    pub async fn accept(
        mut read: R,
        mut write: W,
        key: &AuthorityKey,
        cert_validity: Duration,
        timeout: Duration,
    ) -> Result<Self, Sv2Error> {
        let responder = Responder::from_authority_kp(key.public(), key.secret(), cert_validity)
            .map_err(|e| Sv2Error::Handshake(text(e)))?;
        let handshake = async {
            // The handshake's messages are raw: no Stratum V2 header.
            let mut hello = [0u8; ELLSWIFT_ENCODING_SIZE];
            read.read_exact(&mut hello).await?;
            let (reply, transport) = Handshake::responder(responder)
                .step_1(hello)
                .map_err(|e| Sv2Error::Handshake(text(e)))?;
            write.write_all(reply.payload()).await?;
            write.flush().await?;
            Ok::<_, Sv2Error>(transport)
        };
        let transport = tokio::time::timeout(timeout, handshake)
            .await
            .map_err(|_| Sv2Error::HandshakeTimeout(timeout))??;
        let (encrypt, decrypt) = transport.split();
        Ok(Self::new(read, write, encrypt, decrypt))
    }

    /// The miner's side: the pool must prove it holds the authority key
    /// whose x-only public key is `authority`.
    pub async fn connect(
        mut read: R,
        mut write: W,
        authority: [u8; 32],
        timeout: Duration,
    ) -> Result<Self, Sv2Error> {
        let initiator =
            Initiator::from_raw_k(authority).map_err(|e| Sv2Error::Handshake(text(e)))?;
        let handshake = async {
            let (hello, sent) = Handshake::initiator(initiator)
                .step_0()
                .map_err(|e| Sv2Error::Handshake(text(e)))?;
            write.write_all(hello.payload()).await?;
            write.flush().await?;
            let mut reply = [0u8; INITIATOR_EXPECTED_HANDSHAKE_MESSAGE_SIZE];
            read.read_exact(&mut reply).await?;
            sent.step_2(reply).map_err(|e| Sv2Error::Handshake(text(e)))
        };
        let transport = tokio::time::timeout(timeout, handshake)
            .await
            .map_err(|_| Sv2Error::HandshakeTimeout(timeout))??;
        let (encrypt, decrypt) = transport.split();
        Ok(Self::new(read, write, encrypt, decrypt))
    }

    fn new(
        read: R,
        write: W,
        encrypt: TransportEncryptState,
        decrypt: TransportDecryptState,
    ) -> Self {
        Self {
            reader: Sv2Reader {
                read,
                decoder: NoiseDecoder::new(),
                decrypt: Some(decrypt),
                limit: FrameLimit::new(),
            },
            writer: Sv2Writer {
                write,
                encoder: NoiseEncoder::new(),
                encrypt,
                queued: Vec::new(),
            },
        }
    }

    /// Splits the connection into its reading and its writing half, for a
    /// reader task of their own: a read is not cancellation-safe (a frame
    /// half read is lost), so it must not race other work in a `select!`.
    pub fn into_split(self) -> (Sv2Reader<R>, Sv2Writer<W>) {
        (self.reader, self.writer)
    }

    /// The largest frame this connection reads, to raise.
    pub fn frame_limit(&self) -> FrameLimit {
        self.reader.frame_limit()
    }

    /// Reads the next message (see [`Sv2Reader::read_message`]).
    pub async fn read_message(&mut self) -> Result<Option<AnyMessageOwned>, Sv2Error> {
        self.reader.read_message().await
    }

    /// Encrypts and writes `message` (see [`Sv2Writer::send`]).
    pub async fn send(&mut self, message: impl Into<AnyMessageOwned>) -> Result<(), Sv2Error> {
        self.writer.send(message).await
    }
}

/// The reading half of an [`Sv2Connection`].
pub struct Sv2Reader<R> {
    read: R,
    decoder: NoiseDecoder,
    /// `None` once a frame failed to decrypt: nothing more can be read.
    decrypt: Option<TransportDecryptState>,
    limit: FrameLimit,
}

impl<R> std::fmt::Debug for Sv2Reader<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sv2Reader").finish_non_exhaustive()
    }
}

/// What a reader task hands over: a message, the clean end (`Ok(None)`),
/// or the error that ended the connection. Boxed: the channel's buffer
/// holds slots of this size (32 at a time, however few are used), and a
/// message is 152 bytes, a box 8.
pub type Incoming = Result<Option<Box<AnyMessageOwned>>, Sv2Error>;

impl<R: AsyncRead + Unpin> Sv2Reader<R> {
    /// Reads the next message. `Ok(None)` when the peer closed the
    /// connection between frames. Not cancellation-safe.
    pub async fn read_message(&mut self) -> Result<Option<AnyMessageOwned>, Sv2Error> {
        read_message(
            &mut self.read,
            &mut self.decoder,
            &mut self.decrypt,
            &self.limit,
        )
        .await
    }

    /// The largest frame this reader takes, to raise.
    pub fn frame_limit(&self) -> FrameLimit {
        self.limit.clone()
    }
}

impl<R: AsyncRead + Unpin + Send + 'static> Sv2Reader<R> {
    /// Reads on a task of its own, handing each message over a channel of
    /// `capacity` (cancellation-safe to receive from in a `select!`), until
    /// the connection ends; the end itself is the last item. Abort the task
    /// to stop early.
    pub fn spawn(
        mut self,
        capacity: usize,
    ) -> (
        tokio::task::JoinHandle<()>,
        tokio::sync::mpsc::Receiver<Incoming>,
    ) {
        let (tx, rx) = tokio::sync::mpsc::channel(capacity);
        let task = tokio::spawn(async move {
            loop {
                let message = self.read_message().await.map(|m| m.map(Box::new));
                let last = !matches!(message, Ok(Some(_)));
                if tx.send(message).await.is_err() || last {
                    return;
                }
            }
        });
        (task, rx)
    }
}

/// The writing half of an [`Sv2Connection`].
pub struct Sv2Writer<W> {
    write: W,
    encoder: NoiseEncoder,
    encrypt: TransportEncryptState,
    /// Frames [`Sv2Writer::queue`]d and not yet written.
    queued: Vec<u8>,
}

impl<W> std::fmt::Debug for Sv2Writer<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sv2Writer").finish_non_exhaustive()
    }
}

impl<W: AsyncWrite + Unpin> Sv2Writer<W> {
    /// Encrypts and writes `message` (after anything queued before it).
    pub async fn send(&mut self, message: impl Into<AnyMessageOwned>) -> Result<(), Sv2Error> {
        self.queue(message)?;
        self.flush().await
    }

    /// Encrypts `message` and keeps it for the next [`Sv2Writer::flush`]:
    /// several messages then go out in one write. Frames are encrypted in
    /// the order they are queued, so they must be written in that order.
    pub fn queue(&mut self, message: impl Into<AnyMessageOwned>) -> Result<(), Sv2Error> {
        let frame: MessageFrame<AnyMessageOwned> = message
            .into()
            .try_into()
            .map_err(|e| Sv2Error::Encode(text(e)))?;
        let bytes = self
            .encoder
            .encode_transport(frame, &mut self.encrypt)
            .map_err(|e| Sv2Error::Encode(text(e)))?;
        self.queued.extend_from_slice(bytes.as_ref());
        Ok(())
    }

    /// Writes every queued frame.
    pub async fn flush(&mut self) -> Result<(), Sv2Error> {
        if !self.queued.is_empty() {
            self.write.write_all(&self.queued).await?;
            self.queued.clear();
        }
        self.write.flush().await?;
        Ok(())
    }
}

async fn read_message<R: AsyncRead + Unpin>(
    read: &mut R,
    decoder: &mut NoiseDecoder,
    decrypt: &mut Option<TransportDecryptState>,
    limit: &FrameLimit,
) -> Result<Option<AnyMessageOwned>, Sv2Error> {
    let mut wire = 0usize;
    loop {
        let wanted = decoder.writable_len();
        wire = wire.saturating_add(wanted);
        if wire > limit.get() {
            return Err(Sv2Error::TooLarge);
        }
        if wanted > 0 {
            let buf = decoder.writable();
            match read.read_exact(buf).await {
                Ok(_) => {}
                // A clean close: nothing of a next frame was read.
                Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof && wire == wanted => {
                    return Ok(None);
                }
                Err(e) => return Err(e.into()),
            }
        }
        let state = decrypt
            .take()
            .ok_or_else(|| Sv2Error::Frame("an earlier frame failed".into()))?;
        match decoder
            .next_transport_frame(state)
            .map_err(|e| Sv2Error::Frame(text(e)))?
        {
            Decrypted::Frame(mut frame, state) => {
                *decrypt = Some(state);
                let header = frame.header();
                let message = AnyMessage::try_from((header, frame.payload()))
                    .map_err(|e| Sv2Error::Frame(text(e)))?;
                return Ok(Some(message.into_owned()));
            }
            Decrypted::Incomplete(_, state) => *decrypt = Some(state),
        }
    }
}
