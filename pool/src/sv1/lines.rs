//! A newline reader with a hard cap on line length.

use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, ReadBuf};

/// What the reader produced.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Line<'a> {
    /// A complete line, without the `\n` (a trailing `\r` is left to the parser).
    Complete(&'a [u8]),
    /// The peer sent more than the cap without a newline.
    TooLong,
    /// The peer closed the connection.
    Eof,
}

/// Reads `\n`-terminated lines into one reused buffer, never holding more than
/// `max + 1` bytes of a line: an oversized line is reported, not buffered.
#[derive(Debug)]
pub(crate) struct LineReader<R> {
    inner: R,
    buf: Vec<u8>,
    /// Start of unconsumed data in `buf`.
    start: usize,
    /// Length of the line handed out last time, consumed on the next call.
    pending: usize,
    max: usize,
}

impl<R: AsyncRead + Unpin> LineReader<R> {
    pub(crate) fn new(inner: R, max: usize) -> Self {
        Self {
            inner,
            buf: Vec::new(),
            start: 0,
            pending: 0,
            max,
        }
    }

    /// The next complete line already buffered, without reading; `None`
    /// when a read would be needed.
    pub(crate) fn next_buffered(&mut self) -> Option<Line<'_>> {
        self.start += self.pending;
        self.pending = 0;
        match self.buf[self.start..].iter().position(|&b| b == b'\n') {
            Some(pos) => {
                let line_start = self.start;
                self.pending = pos + 1;
                Some(Line::Complete(&self.buf[line_start..line_start + pos]))
            }
            None if self.buf.len() - self.start > self.max => Some(Line::TooLong),
            None => None,
        }
    }

    /// The next line. Cancel-safe: a dropped call loses no bytes.
    pub(crate) async fn next(&mut self) -> std::io::Result<Line<'_>> {
        self.start += self.pending;
        self.pending = 0;
        loop {
            if let Some(pos) = self.buf[self.start..].iter().position(|&b| b == b'\n') {
                let line_start = self.start;
                self.pending = pos + 1;
                return Ok(Line::Complete(&self.buf[line_start..line_start + pos]));
            }
            if self.buf.len() - self.start > self.max {
                return Ok(Line::TooLong);
            }
            // Compact before reading more.
            if self.start > 0 {
                self.buf.drain(..self.start);
                self.start = 0;
            }
            let n = std::future::poll_fn(|cx| self.poll_fill(cx)).await?;
            if n == 0 {
                return Ok(Line::Eof);
            }
        }
    }

    /// One read, appended to `buf`. The chunk lives on this poll's stack,
    /// not in the connection's future (which every idle connection keeps),
    /// and bytes move into `buf` only when the read completes, so dropping
    /// the future loses nothing. While the peer is quiet and nothing is
    /// buffered, the buffer is given back: an idle connection holds none.
    fn poll_fill(&mut self, cx: &mut Context<'_>) -> Poll<std::io::Result<usize>> {
        let mut chunk = [0u8; 4096];
        let mut read = ReadBuf::new(&mut chunk);
        match Pin::new(&mut self.inner).poll_read(cx, &mut read) {
            Poll::Ready(Ok(())) => {
                self.buf.extend_from_slice(read.filled());
                Poll::Ready(Ok(read.filled().len()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => {
                if self.buf.is_empty() && self.buf.capacity() > 0 {
                    self.buf = Vec::new();
                }
                Poll::Pending
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn splits_lines_and_caps_length() {
        let data: &[u8] = b"a\nbc\r\n\nxyz";
        let mut r = LineReader::new(data, 16);
        assert_eq!(r.next().await.unwrap(), Line::Complete(b"a"));
        assert_eq!(r.next().await.unwrap(), Line::Complete(b"bc\r"));
        assert_eq!(r.next().await.unwrap(), Line::Complete(b""));
        assert_eq!(r.next().await.unwrap(), Line::Eof);

        let long = [b'x'; 100];
        let mut r = LineReader::new(&long[..], 16);
        assert_eq!(r.next().await.unwrap(), Line::TooLong);
    }
}
