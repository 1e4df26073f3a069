//! Bad input quoted back in an error message, cut to a short prefix.
//!
//! An error that quotes what the client sent is the clearest kind, but
//! quoting it whole lets one request make the server write (and log) as much
//! as it was sent: a 65 KB address became a 65 KB error. Every error that
//! echoes input goes through [`Excerpt`].

use std::fmt;

/// Most characters of the input an error quotes.
pub const EXCERPT_CHARS: usize = 48;

/// Displays at most [`EXCERPT_CHARS`] characters of a string (or another
/// limit, see [`Excerpt::up_to`]), then `…` and the full length in bytes when
/// it was cut: `0xabc…(65536 bytes)`.
///
/// With `{:?}` the prefix is quoted and escaped like a Rust string.
#[derive(Clone, Copy)]
pub struct Excerpt<'a> {
    text: &'a str,
    max_chars: usize,
}

impl<'a> Excerpt<'a> {
    /// At most [`EXCERPT_CHARS`] characters of `text`.
    pub fn new(text: &'a str) -> Self {
        Self::up_to(text, EXCERPT_CHARS)
    }

    /// At most `max_chars` characters of `text` (for messages from a library
    /// that may quote the input somewhere inside them).
    pub fn up_to(text: &'a str, max_chars: usize) -> Self {
        Self { text, max_chars }
    }

    /// The prefix shown and whether anything was cut.
    fn parts(&self) -> (&'a str, bool) {
        match self.text.char_indices().nth(self.max_chars) {
            Some((cut, _)) => (&self.text[..cut], true),
            None => (self.text, false),
        }
    }
}

impl fmt::Display for Excerpt<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (prefix, cut) = self.parts();
        f.write_str(prefix)?;
        if cut {
            write!(f, "…({} bytes)", self.text.len())?;
        }
        Ok(())
    }
}

impl fmt::Debug for Excerpt<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (prefix, cut) = self.parts();
        write!(f, "{prefix:?}")?;
        if cut {
            write!(f, "…({} bytes)", self.text.len())?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_input_is_quoted_whole() {
        assert_eq!(Excerpt::new("0xabc").to_string(), "0xabc");
        assert_eq!(format!("{:?}", Excerpt::new("a\"b")), "\"a\\\"b\"");
        let exact = "x".repeat(48);
        assert_eq!(Excerpt::new(&exact).to_string(), exact);
    }

    #[test]
    fn long_input_is_cut_on_a_character_boundary() {
        let long = "a".repeat(65_536);
        assert_eq!(
            Excerpt::new(&long).to_string(),
            format!("{}…(65536 bytes)", "a".repeat(48))
        );
        assert_eq!(
            format!("{:?}", Excerpt::new(&long)),
            format!("\"{}\"…(65536 bytes)", "a".repeat(48))
        );
        // 49 two-byte characters: the cut falls after the 48th, never inside one.
        let wide = "é".repeat(49);
        assert_eq!(
            Excerpt::new(&wide).to_string(),
            format!("{}…(98 bytes)", "é".repeat(48))
        );
        assert_eq!(Excerpt::up_to("abcdef", 2).to_string(), "ab…(6 bytes)");
    }
}
