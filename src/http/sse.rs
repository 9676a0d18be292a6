//! Server-sent events (`text/event-stream`), decoded incrementally by the rules of the WHATWG
//! HTML standard's event-stream interpretation, for bodies that arrive in arbitrary pieces.
//!
//! What the rules say, and this decoder does:
//! - a line ends with CRLF, LF or CR; a CR that ends one piece and an LF that starts the next
//!   are one line end;
//! - a UTF-8 byte-order mark at the very start of the stream is dropped;
//! - `:` starts a comment; `field: value` loses one space after the colon; a line without a
//!   colon is a field with an empty value;
//! - `data` lines are joined by newlines; `event` names the event (`message` when absent); `id`
//!   is ignored if it holds NUL; `retry` only if it is all ASCII digits; other fields are ignored;
//! - a blank line dispatches the block; a block without `data` dispatches nothing; a block not
//!   ended by a blank line when the stream ends is discarded.
//!
//! `id` and `retry` are reported as given within the event's own block (`None` otherwise),
//! rather than the spec's "last event ID" that carries over: a client reconnecting needs the
//! last one, which is simply the last `Some` it saw.
//!
//! Lines are decoded as UTF-8 with replacement, after splitting, so a multi-byte character cut
//! between two pieces is never broken.

/// The most bytes one event may gather (the line not yet ended and the data lines of the block
/// so far): a stream whose line never ends, or whose block never ends, is an error once it
/// passes this, where it grew the decoder's memory without bound. Far above any event of an LLM
/// API (a chunk of a completion, a tool call's arguments, an image).
pub const MAX_EVENT_BYTES: usize = 64 * 1024 * 1024;

/// The error of a stream with an event larger than `MAX_EVENT_BYTES`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventTooLarge;

impl std::fmt::Display for EventTooLarge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "an event of the event stream is larger than {} MiB (a line, or the data lines of \
             one event, never ended)",
            MAX_EVENT_BYTES >> 20
        )
    }
}

/// One dispatched event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub event: String,
    pub data: String,
    pub id: Option<String>,
    pub retry: Option<u64>,
}

/// The incremental decoder: `feed` pieces, then `finish`.
#[derive(Debug, Default)]
pub struct SseDecoder {
    /// The bytes of a line not yet ended.
    line: Vec<u8>,
    /// The previous piece ended with CR: an LF at the start of the next one is part of it.
    after_cr: bool,
    /// Whether the first bytes (and a possible BOM) have been seen.
    started: bool,
    event: Option<String>,
    data: String,
    has_data: bool,
    id: Option<String>,
    retry: Option<u64>,
}

const BOM: &[u8] = b"\xEF\xBB\xBF";

impl SseDecoder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Decodes one more piece of the body; the events it completes, in order, or an error
    /// once the event being gathered is larger than `MAX_EVENT_BYTES` (the decoder then starts
    /// over).
    pub fn feed(&mut self, piece: &[u8]) -> Result<Vec<Event>, EventTooLarge> {
        let events = self.feed_unbounded(piece);
        if self.line.len() + self.data.len() > MAX_EVENT_BYTES {
            *self = Self::default();
            return Err(EventTooLarge);
        }
        Ok(events)
    }

    fn feed_unbounded(&mut self, mut piece: &[u8]) -> Vec<Event> {
        let mut events = Vec::new();
        if piece.is_empty() {
            // Nothing to decide, and a CR ending the previous piece still waits for its LF.
            return events;
        }
        if !self.started {
            // The BOM may itself arrive split: wait for three bytes before deciding.
            self.line.extend_from_slice(piece);
            if self.line.len() < BOM.len() && BOM.starts_with(&self.line) {
                return events;
            }
            self.started = true;
            let pending = std::mem::take(&mut self.line);
            let start = if pending.starts_with(BOM) {
                BOM.len()
            } else {
                0
            };
            self.scan(&pending[start..], &mut events);
            return events;
        }
        if self.after_cr {
            self.after_cr = false;
            if let Some(rest) = piece.strip_prefix(b"\n") {
                piece = rest;
            }
        }
        self.scan(piece, &mut events);
        events
    }

    /// The end of the stream: an unterminated block is discarded (so nothing is returned); kept
    /// as a call so that callers state where the stream ends.
    pub fn finish(&mut self) -> Vec<Event> {
        *self = Self::default();
        Vec::new()
    }

    fn scan(&mut self, piece: &[u8], events: &mut Vec<Event>) {
        let mut rest = piece;
        while let Some(end) = rest.iter().position(|&b| b == b'\n' || b == b'\r') {
            let crlf = rest[end] == b'\r';
            if self.line.is_empty() {
                self.line_done(&rest[..end], events);
            } else {
                let mut line = std::mem::take(&mut self.line);
                line.extend_from_slice(&rest[..end]);
                self.line_done(&line, events);
            }
            rest = &rest[end + 1..];
            if crlf {
                match rest.first() {
                    Some(b'\n') => rest = &rest[1..],
                    Some(_) => {}
                    None => self.after_cr = true,
                }
            }
        }
        self.line.extend_from_slice(rest);
    }

    fn line_done(&mut self, line: &[u8], events: &mut Vec<Event>) {
        if line.is_empty() {
            self.dispatch(events);
            return;
        }
        if line[0] == b':' {
            return;
        }
        let (field, value) = match line.iter().position(|&b| b == b':') {
            Some(colon) => {
                let value = &line[colon + 1..];
                (&line[..colon], value.strip_prefix(b" ").unwrap_or(value))
            }
            None => (line, &b""[..]),
        };
        match field {
            b"data" => {
                if self.has_data {
                    self.data.push('\n');
                }
                self.data.push_str(&String::from_utf8_lossy(value));
                self.has_data = true;
            }
            b"event" => self.event = Some(String::from_utf8_lossy(value).into_owned()),
            b"id" if !value.contains(&0) => {
                self.id = Some(String::from_utf8_lossy(value).into_owned());
            }
            b"retry" if !value.is_empty() && value.iter().all(u8::is_ascii_digit) => {
                // More digits than a u64 holds: no sensible reconnection time, ignored.
                self.retry = std::str::from_utf8(value).ok().and_then(|v| v.parse().ok());
            }
            _ => {}
        }
    }

    fn dispatch(&mut self, events: &mut Vec<Event>) {
        let event = self.event.take();
        let id = self.id.take();
        let retry = self.retry.take();
        if !self.has_data {
            self.data.clear();
            return;
        }
        self.has_data = false;
        events.push(Event {
            event: event
                .filter(|e| !e.is_empty())
                .unwrap_or_else(|| "message".to_owned()),
            data: std::mem::take(&mut self.data),
            id,
            retry,
        });
    }
}

/// A whole body at once.
pub fn parse(body: &[u8]) -> Vec<Event> {
    let mut decoder = SseDecoder::new();
    let events = decoder.feed_unbounded(body);
    decoder.finish();
    events
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ev(event: &str, data: &str, id: Option<&str>, retry: Option<u64>) -> Event {
        Event {
            event: event.to_owned(),
            data: data.to_owned(),
            id: id.map(str::to_owned),
            retry,
        }
    }

    #[test]
    fn fields_comments_and_line_ends() {
        let body = b"\xEF\xBB\xBF: comment\r\nevent: update\r\nid: 7\rdata: a\ndata:b\r\nretry: 250\r\n\r\ndata\n\nevent: empty\n\n";
        assert_eq!(
            parse(body),
            vec![
                ev("update", "a\nb", Some("7"), Some(250)),
                ev("message", "", None, None)
            ]
        );
    }

    #[test]
    fn unterminated_block_is_discarded() {
        assert_eq!(
            parse(b"data: x\n\ndata: y\n"),
            vec![ev("message", "x", None, None)]
        );
    }

    #[test]
    fn odd_fields_are_ignored() {
        assert_eq!(
            parse(b"retry: 1x\nid: a\0b\nfoo: bar\ndata: z\n\n"),
            vec![ev("message", "z", None, None)]
        );
    }

    fn stream() -> impl Strategy<Value = Vec<u8>> {
        let line = prop_oneof![
            "[a-z]{0,6}".prop_map(|v| format!("data: {v}")),
            "[a-zé€ ]{0,6}".prop_map(|v| format!("data:{v}")),
            "[a-z]{0,4}".prop_map(|v| format!("event: {v}")),
            "[0-9]{0,3}".prop_map(|v| format!("id: {v}")),
            "[0-9a]{0,3}".prop_map(|v| format!("retry: {v}")),
            Just(": note".to_owned()),
            Just(String::new()),
        ];
        let end = prop_oneof![Just("\n"), Just("\r\n"), Just("\r")];
        proptest::collection::vec((line, end), 0..24).prop_map(|lines| {
            lines
                .into_iter()
                .flat_map(|(l, e)| format!("{l}{e}").into_bytes())
                .collect()
        })
    }

    #[test]
    fn an_event_that_never_ends_is_an_error_not_a_leak() {
        let half = vec![b'x'; MAX_EVENT_BYTES / 2];
        // A line that never ends.
        let mut decoder = SseDecoder::new();
        assert_eq!(decoder.feed(b"data: ").unwrap(), vec![]);
        assert_eq!(decoder.feed(&half).unwrap(), vec![]);
        assert_eq!(decoder.feed(&half), Err(EventTooLarge));
        // The decoder starts over.
        assert_eq!(decoder.feed(b"data: a\n\n").unwrap().len(), 1);
        // A block whose data lines never end with a blank line.
        let mut decoder = SseDecoder::new();
        let mut line = b"data: ".to_vec();
        line.extend_from_slice(&half);
        line.push(b'\n');
        assert_eq!(decoder.feed(&line).unwrap(), vec![]);
        assert_eq!(decoder.feed(&line), Err(EventTooLarge));
        // Events up to the limit are whole.
        let mut decoder = SseDecoder::new();
        let mut event = line.clone();
        event.push(b'\n');
        let events = decoder.feed(&event).unwrap();
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].data.len(), half.len());
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

        /// However the body is cut into pieces (inside CRLF and multi-byte characters too), the
        /// events are those of the whole body.
        #[test]
        fn pieces_decode_like_the_whole(body in stream(), cuts in proptest::collection::vec(0usize..64, 0..8)) {
            let whole = parse(&body);
            let mut decoder = SseDecoder::new();
            let mut events = Vec::new();
            let mut at = 0;
            for cut in cuts {
                let end = (at + cut).min(body.len());
                events.extend(decoder.feed(&body[at..end]).unwrap());
                at = end;
            }
            events.extend(decoder.feed(&body[at..]).unwrap());
            events.extend(decoder.finish());
            prop_assert_eq!(events, whole);
        }
    }
}
