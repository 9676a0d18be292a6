//! Decoding a response body's `Content-Encoding` (gzip, deflate) for the client's own API, as
//! httpx decodes it: the encodings listed, undone last to first, unknown ones left as they are.
//! The httpx transports hand the body over as received (httpx decodes above them).
//!
//! flate2 (already in the build for gzipping request bodies) does the inflating; it is fed the
//! body as it arrives, so a stream's events come out as soon as their bytes are decoded.

use std::io::Write;

use bytes::Bytes;
use flate2::write::{DeflateDecoder, GzDecoder, ZlibDecoder};
use http::header::CONTENT_ENCODING;
use http::HeaderMap;

use super::error::HttpError;

/// One encoding to undo.
enum Stage {
    Gzip {
        decoder: Box<GzDecoder<Vec<u8>>>,
        /// The first two bytes once seen: they must be gzip's magic number, which zlib (and so
        /// httpx) checks at once; flate2 would wait for the whole header.
        magic: Vec<u8>,
    },
    /// "deflate" is zlib-wrapped by the standard and raw in practice from some servers: httpx
    /// tries zlib first and falls back to raw; so does this, from the first two bytes.
    Deflate {
        decoder: Option<Box<dyn Inflater>>,
        /// The first bytes, until there are two to tell zlib from raw.
        head: Vec<u8>,
    },
}

/// flate2's writing decoders, as one: each inflates into a `Vec` of its own.
trait Inflater: Write + Send {
    fn output(&mut self) -> &mut Vec<u8>;
    fn end(&mut self) -> std::io::Result<()>;
}

macro_rules! inflater {
    ($($decoder:ident),*) => {$(
        impl Inflater for $decoder<Vec<u8>> {
            fn output(&mut self) -> &mut Vec<u8> {
                self.get_mut()
            }
            fn end(&mut self) -> std::io::Result<()> {
                self.try_finish()
            }
        }
    )*};
}
inflater!(GzDecoder, ZlibDecoder, DeflateDecoder);

/// What `data` inflates to so far. What follows the end of the compressed stream (a trailing
/// newline, a second gzip member) is dropped, as zlib leaves it in `unused_data` and httpx
/// ignores it.
fn inflate(decoder: &mut dyn Inflater, mut data: &[u8]) -> Result<Vec<u8>, HttpError> {
    while !data.is_empty() {
        match decoder.write(data).map_err(bad)? {
            0 => break, // the stream has ended: the rest is not part of it
            taken => data = &data[taken..],
        }
    }
    // Flushed, so that what the bytes so far decode to is handed over now.
    decoder.flush().map_err(bad)?;
    Ok(std::mem::take(decoder.output()))
}

/// The rest of what the data inflates to. A body cut short gives what it decoded to, as
/// httpx's decoders do (zlib's `flush` does not check that the stream ended).
fn inflate_end(decoder: &mut dyn Inflater) -> Vec<u8> {
    let _ = decoder.end();
    std::mem::take(decoder.output())
}

/// Undoes a response's `Content-Encoding`.
pub struct ContentDecoder {
    /// In the order to apply: the last encoding listed first.
    stages: Vec<Stage>,
}

fn bad(err: std::io::Error) -> HttpError {
    HttpError::Protocol(format!("the response body could not be decoded: {err}"))
}

/// Whether `start` opens a zlib stream (RFC 1950: deflate method, a header checksum).
fn is_zlib(start: &[u8]) -> bool {
    start.len() >= 2
        && start[0] & 0x0f == 8
        && (u16::from(start[0]) << 8 | u16::from(start[1])) % 31 == 0
}

impl Stage {
    fn write(&mut self, data: &[u8]) -> Result<Vec<u8>, HttpError> {
        match self {
            Stage::Gzip { decoder, magic } => {
                if magic.len() < 2 {
                    magic.extend(data.iter().take(2 - magic.len()));
                    if !b"\x1f\x8b".starts_with(magic) {
                        return Err(HttpError::Protocol(
                            "the response body could not be decoded: not gzip".into(),
                        ));
                    }
                }
                inflate(decoder.as_mut(), data)
            }
            Stage::Deflate {
                decoder: Some(decoder),
                ..
            } => inflate(decoder.as_mut(), data),
            Stage::Deflate { decoder, head } => {
                head.extend_from_slice(data);
                if head.len() < 2 {
                    return Ok(Vec::new());
                }
                let chosen: Box<dyn Inflater> = if is_zlib(head) {
                    Box::new(ZlibDecoder::new(Vec::new()))
                } else {
                    Box::new(DeflateDecoder::new(Vec::new()))
                };
                let buffered = std::mem::take(head);
                inflate(decoder.insert(chosen).as_mut(), &buffered)
            }
        }
    }

    fn finish(&mut self) -> Result<Vec<u8>, HttpError> {
        match self {
            Stage::Gzip { decoder, .. } => Ok(inflate_end(decoder.as_mut())),
            Stage::Deflate {
                decoder: Some(decoder),
                ..
            } => Ok(inflate_end(decoder.as_mut())),
            Stage::Deflate { head, .. } if head.is_empty() => Ok(Vec::new()),
            Stage::Deflate { .. } => Err(HttpError::Protocol(
                "the response body could not be decoded: a deflate body of one byte".into(),
            )),
        }
    }
}

impl ContentDecoder {
    /// The decoder of a response with these headers; `None` when nothing is to be undone.
    pub fn for_headers(headers: &HeaderMap) -> Option<ContentDecoder> {
        let mut stages = Vec::new();
        for value in headers.get_all(CONTENT_ENCODING) {
            let Ok(value) = value.to_str() else { continue };
            for encoding in value.split(',') {
                match encoding.trim().to_ascii_lowercase().as_str() {
                    "gzip" => stages.push(Stage::Gzip {
                        decoder: Box::new(GzDecoder::new(Vec::new())),
                        magic: Vec::new(),
                    }),
                    "deflate" => stages.push(Stage::Deflate {
                        decoder: None,
                        head: Vec::new(),
                    }),
                    // identity, and what httpx does not decode either (x-gzip; br and zstd
                    // without their packages): as received
                    _ => {}
                }
            }
        }
        stages.reverse();
        (!stages.is_empty()).then_some(ContentDecoder { stages })
    }

    /// The decoded bytes of the next piece of the body (possibly none yet).
    pub fn feed(&mut self, data: &[u8]) -> Result<Bytes, HttpError> {
        let mut current = data.to_vec();
        for stage in &mut self.stages {
            current = stage.write(&current)?;
        }
        Ok(Bytes::from(current))
    }

    /// The last decoded bytes, at the end of the body (a body cut short: what it decoded to).
    pub fn finish(&mut self) -> Result<Bytes, HttpError> {
        // What a stage still holds goes through the later ones before they finish.
        let mut carried: Vec<u8> = Vec::new();
        for stage in &mut self.stages {
            let mut out = if carried.is_empty() {
                Vec::new()
            } else {
                stage.write(&carried)?
            };
            out.extend(stage.finish()?);
            carried = out;
        }
        Ok(Bytes::from(carried))
    }

    /// The whole of a body received at once.
    pub fn decode_all(mut self, body: &[u8]) -> Result<Bytes, HttpError> {
        let mut out = self.feed(body)?.to_vec();
        out.extend_from_slice(&self.finish()?);
        Ok(Bytes::from(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::write::{DeflateEncoder, GzEncoder, ZlibEncoder};
    use flate2::Compression;

    fn headers(encoding: &str) -> HeaderMap {
        let mut map = HeaderMap::new();
        map.insert(CONTENT_ENCODING, encoding.parse().unwrap());
        map
    }

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = GzEncoder::new(Vec::new(), Compression::fast());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn gzip_deflate_and_both_decode_in_any_pieces() {
        let body: Vec<u8> = (0..20_000u32)
            .flat_map(|i| (i % 251).to_le_bytes())
            .collect();
        let mut zlib = ZlibEncoder::new(Vec::new(), Compression::fast());
        zlib.write_all(&body).unwrap();
        let mut raw = DeflateEncoder::new(Vec::new(), Compression::fast());
        raw.write_all(&body).unwrap();
        let cases = [
            ("gzip", gzip(&body)),
            ("deflate", zlib.finish().unwrap()),
            ("deflate", raw.finish().unwrap()),
            (
                "deflate, gzip",
                gzip(&{
                    let mut z = ZlibEncoder::new(Vec::new(), Compression::fast());
                    z.write_all(&body).unwrap();
                    z.finish().unwrap()
                }),
            ),
        ];
        for (encoding, encoded) in cases {
            for piece in [1, 7, 4096, encoded.len()] {
                let mut decoder = ContentDecoder::for_headers(&headers(encoding)).unwrap();
                let mut out = Vec::new();
                for chunk in encoded.chunks(piece) {
                    out.extend_from_slice(&decoder.feed(chunk).unwrap());
                }
                out.extend_from_slice(&decoder.finish().unwrap());
                assert_eq!(out, body, "{encoding} in pieces of {piece}");
            }
        }
    }

    #[test]
    fn what_follows_the_end_is_dropped() {
        let body = b"hello world, hello world";
        let mut encoded = gzip(body);
        encoded.extend_from_slice(b"\n");
        encoded.extend_from_slice(&gzip(b"a second member"));
        for piece in [1, 5, encoded.len()] {
            let mut decoder = ContentDecoder::for_headers(&headers("gzip")).unwrap();
            let mut out = Vec::new();
            for chunk in encoded.chunks(piece) {
                out.extend_from_slice(&decoder.feed(chunk).unwrap());
            }
            out.extend_from_slice(&decoder.finish().unwrap());
            assert_eq!(out, body, "pieces of {piece}");
        }
        let mut zlib = ZlibEncoder::new(Vec::new(), Compression::fast());
        zlib.write_all(body).unwrap();
        let mut encoded = zlib.finish().unwrap();
        encoded.extend_from_slice(b"junk");
        let decoder = ContentDecoder::for_headers(&headers("deflate")).unwrap();
        assert_eq!(decoder.decode_all(&encoded).unwrap(), &body[..]);
    }

    #[test]
    fn identity_and_unknown_encodings_are_left_alone() {
        assert!(ContentDecoder::for_headers(&headers("identity")).is_none());
        assert!(ContentDecoder::for_headers(&headers("br")).is_none());
        assert!(ContentDecoder::for_headers(&HeaderMap::new()).is_none());
    }

    #[test]
    fn junk_is_an_error_and_a_cut_body_what_it_decodes_to() {
        let decoder = ContentDecoder::for_headers(&headers("gzip")).unwrap();
        assert!(decoder.decode_all(b"not gzip at all").is_err());
        let encoded = gzip(b"hello world, hello world");
        let decoder = ContentDecoder::for_headers(&headers("gzip")).unwrap();
        let cut = decoder.decode_all(&encoded[..encoded.len() - 6]).unwrap();
        assert!(b"hello world, hello world".starts_with(&cut));
    }
}
