//! What LiteLLM charges for an image, read from the image's own header (the core: no PyO3 here).
//!
//! LiteLLM prices an image in one of three ways (`calculate_img_tokens`):
//! - `detail="low"`: 85 tokens, whatever the image;
//! - `detail="auto"` (the default, and every image without a `detail`: string URLs, Anthropic
//!   `image` blocks, non-PDF documents and files): high-detail tiles when the image is an inline
//!   `data:image/...;base64,` URL of a PNG, GIF, JPEG or WebP whose header it can read, else 85.
//!   It never downloads anything in this mode, so neither do we ([`auto_detail_tokens`]);
//! - `detail="high"`: tiles always. LiteLLM downloads http(s) URLs to measure them, which cannot
//!   be done offline ([`MessageError::ImageNeedsDownload`]: the caller hands the request to
//!   litellm); any other URL is decoded after its first comma, and an image it cannot identify is
//!   priced as 300x300 ([`high_detail_url_tokens`]).
//!
//! Why our own header reader and not the `imagesize` crate: the price depends on LiteLLM's reading
//! of the header, not on the true size, and the two differ where it matters here. LiteLLM masks
//! the scaling bits of a lossy WebP's 14-bit sizes (imagesize does not), prices a WebP with an
//! unknown first chunk as 300x300 (imagesize fails), walks JPEG segments skipping 0xFF fill bytes
//! without checking marker bytes (imagesize requires 0xFF markers and tracks nested SOI/EOI), and
//! identifies formats by its own signatures (an 8-byte PNG signature, `ftyp` HEIC before WebP).
//! Four readers of a few fixed offsets are less code than the adapters that would undo those
//! differences.
//!
//! Base64 as Python decodes it: the auto mode uses `b64decode(validate=True)` (only the standard
//! alphabet; which non-canonical paddings pass depends on the Python version, see
//! [`Base64Padding`]), the high mode the lenient `b64decode` (characters outside the alphabet
//! skipped, decoding stops at the padding that completes a group).

use base64::alphabet;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::Engine;

use super::messages::MessageError;

/// Tokens LiteLLM charges for an image at `detail="low"`, or in auto mode when it cannot read it.
pub const BASE_IMAGE_TOKENS: usize = 85;

const MAX_SHORT_SIDE: u64 = 768;
const MAX_LONG_SIDE: u64 = 2000;
const TILE: u64 = 512;
/// The size LiteLLM assumes for an image whose header it does not read.
const DEFAULT_SIDE: u64 = 300;
/// LiteLLM's `MAX_IMAGE_URL_DOWNLOAD_SIZE_MB` (50) in bytes: larger inline images are priced 85 in
/// auto mode without being decoded.
const MAX_INLINE_IMAGE_BYTES: usize = 50 * 1024 * 1024;
/// The longest base64 text that can decode to at most [`MAX_INLINE_IMAGE_BYTES`].
const MAX_INLINE_IMAGE_BASE64: usize = 4 * MAX_INLINE_IMAGE_BYTES.div_ceil(3);
/// Longest `data:...;base64` header (everything before the first comma) read in auto mode.
const MAX_DATA_URL_HEADER_CHARS: usize = 128;

/// The base64 data of a validated data URL, decoded: padding already checked, so any length
/// but one past a multiple of four decodes, and unused trailing bits are ignored, as in Python.
const UNPADDED_BASE64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_decode_allow_trailing_bits(true)
        .with_decode_padding_mode(DecodePaddingMode::RequireNone),
);

/// How `base64.b64decode(s, validate=True)` treats padding, which changed between the Python
/// versions LiteLLM runs on. Every version accepts only the standard alphabet, `=` only after the
/// data, and the canonical padding; they differ on the rest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Base64Padding {
    /// Python 3.10: at most two `=`, and at least enough to complete the last group (`abc==`,
    /// `=` and `abcd=` pass).
    Python310,
    /// Python 3.11 and 3.12: exactly enough `=` to complete the last group, or any number after a
    /// complete one (`abcd=` passes), but not padding alone (`=`).
    Python311,
    /// Python 3.13 and later: the canonical padding only.
    Python313,
}

impl Base64Padding {
    /// The rules of Python `major.minor`.
    pub fn for_python(major: u8, minor: u8) -> Base64Padding {
        match (major, minor) {
            (3, ..=10) => Base64Padding::Python310,
            (3, 11 | 12) => Base64Padding::Python311,
            _ => Base64Padding::Python313,
        }
    }

    fn accepts(self, data_chars: usize, pads: usize) -> bool {
        let canonical = match data_chars % 4 {
            0 => 0,
            2 => 2,
            3 => 1,
            _ => return false,
        };
        match self {
            Base64Padding::Python310 => pads <= 2 && (pads >= canonical || canonical == 0),
            Base64Padding::Python311 => pads == canonical || (canonical == 0 && data_chars > 0),
            Base64Padding::Python313 => pads == canonical,
        }
    }
}

/// `base64.b64decode(text, validate=True)` under `padding`'s rules, or `None` where Python raises.
fn decode_base64_strict(text: &str, padding: Base64Padding) -> Option<Vec<u8>> {
    let data_chars = text.trim_end_matches('=').len();
    let (data, pads) = text.split_at(data_chars);
    if !padding.accepts(data_chars, pads.len()) {
        return None;
    }
    // The engine rejects any `=` or other character left in the data.
    UNPADDED_BASE64.decode(data).ok()
}

/// LiteLLM's high-detail price for an image of `width` x `height` pixels: scaled so the short side
/// is 768 (long side at most 2000) when either side exceeds 768, then `85 + 170 * tiles` with
/// 512x512 tiles. Float steps as in Python; a zero side of a large image divides by zero there.
pub fn high_detail_image_tokens(width: u64, height: u64) -> Result<usize, MessageError> {
    let (mut w, mut h) = (width, height);
    if !(width <= MAX_SHORT_SIDE && height <= MAX_SHORT_SIDE) {
        let longer = width.max(height);
        let shorter = width.min(height);
        if shorter == 0 {
            return Err(MessageError::UnreadableImage(format!(
                "cannot price a {width}x{height} image: division by zero"
            )));
        }
        let aspect = longer as f64 / shorter as f64;
        if width <= height {
            w = MAX_SHORT_SIDE;
            h = (w as f64 * aspect) as u64;
            if h > MAX_LONG_SIDE {
                h = MAX_LONG_SIDE;
                w = (h as f64 / aspect) as u64;
            }
        } else {
            h = MAX_SHORT_SIDE;
            w = (h as f64 * aspect) as u64;
            if w > MAX_LONG_SIDE {
                w = MAX_LONG_SIDE;
                h = (w as f64 / aspect) as u64;
            }
        }
    }
    let tiles = w.div_ceil(TILE) * h.div_ceil(TILE);
    Ok(BASE_IMAGE_TOKENS + 2 * BASE_IMAGE_TOKENS * tiles as usize)
}

/// The formats LiteLLM tells apart (`get_image_type`), in its order of tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ImageFormat {
    Png,
    Gif,
    Jpeg,
    Heic,
    WebP,
}

fn image_format(data: &[u8]) -> Option<ImageFormat> {
    if data.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some(ImageFormat::Png)
    } else if data.starts_with(b"GIF8") && data.get(5) == Some(&b'a') {
        Some(ImageFormat::Gif)
    } else if data.starts_with(b"\xff\xd8\xff") {
        Some(ImageFormat::Jpeg)
    } else if data.get(4..8) == Some(b"ftyp") {
        Some(ImageFormat::Heic)
    } else if data.starts_with(b"RIFF") && data.get(8..12) == Some(b"WEBP") {
        Some(ImageFormat::WebP)
    } else {
        None
    }
}

/// A header field LiteLLM unpacks with `struct`: the bytes must all be there.
fn field<const N: usize>(data: &[u8], at: usize) -> Result<[u8; N], &'static str> {
    data.get(at..at + N)
        .and_then(|b| b.try_into().ok())
        .ok_or("image header is truncated")
}

fn be16(data: &[u8], at: usize) -> Result<u64, &'static str> {
    Ok(u16::from_be_bytes(field(data, at)?) as u64)
}

fn le16(data: &[u8], at: usize) -> Result<u64, &'static str> {
    Ok(u16::from_le_bytes(field(data, at)?) as u64)
}

fn le24(data: &[u8], at: usize) -> Result<u64, &'static str> {
    let [a, b, c] = field::<3>(data, at)?;
    Ok(u32::from_le_bytes([a, b, c, 0]) as u64)
}

/// LiteLLM's JPEG walk: from offset 2, read a marker (skipping 0xFF bytes, without checking that
/// one was there) and its 16-bit length, and jump over the segment, until a start-of-frame marker
/// (C0-CF except C4, C8, CC), whose payload holds the precision byte, height and width. The
/// position grows by at least one byte per step, so the walk ends.
fn jpeg_size(data: &[u8]) -> Result<(u64, u64), &'static str> {
    let byte_at = |at: usize| {
        data.get(at)
            .copied()
            .ok_or("JPEG data ends before a frame header")
    };
    let mut at = 2usize;
    loop {
        let mut marker = byte_at(at)?;
        at += 1;
        while marker == 0xFF {
            marker = byte_at(at)?;
            at += 1;
        }
        let length = be16(data, at)?;
        at += 2;
        if (0xC0..=0xCF).contains(&marker) && !matches!(marker, 0xC4 | 0xC8 | 0xCC) {
            return Ok((be16(data, at + 3)?, be16(data, at + 1)?));
        }
        // `length - 2` bytes further; a length below 2 steps back by at most two of the three
        // bytes just read.
        at = (at + length as usize)
            .checked_sub(2)
            .ok_or("JPEG segment length underflow")?;
    }
}

/// Width and height as LiteLLM reads them (`_image_dimensions_from_bytes`): HEIC, an unknown
/// format or a WebP with an unknown first chunk is 300x300; a truncated header is an error.
fn image_size(data: &[u8]) -> Result<(u64, u64), &'static str> {
    let unknown = Ok((DEFAULT_SIDE, DEFAULT_SIDE));
    match image_format(data) {
        Some(ImageFormat::Png) => {
            let [w0, w1, w2, w3, h0, h1, h2, h3] = field::<8>(data, 16)?;
            Ok((
                u32::from_be_bytes([w0, w1, w2, w3]) as u64,
                u32::from_be_bytes([h0, h1, h2, h3]) as u64,
            ))
        }
        Some(ImageFormat::Gif) => Ok((le16(data, 6)?, le16(data, 8)?)),
        Some(ImageFormat::Jpeg) => jpeg_size(data),
        Some(ImageFormat::WebP) => match data.get(12..16) {
            Some(b"VP8X") => Ok((le24(data, 24)? + 1, le24(data, 27)? + 1)),
            Some(b"VP8 ") => Ok((le16(data, 26)? & 0x3FFF, le16(data, 28)? & 0x3FFF)),
            Some(b"VP8L") => {
                let bits = u32::from_le_bytes(field(data, 21)?) as u64;
                Ok(((bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1))
            }
            _ => unknown,
        },
        Some(ImageFormat::Heic) | None => unknown,
    }
}

/// Python's lenient `base64.b64decode(s)`: characters outside the alphabet are skipped, a `=` that
/// completes a quantum ends the data, and leftover bits are dropped.
fn decode_base64_lenient(text: &str) -> Result<Vec<u8>, String> {
    if !text.is_ascii() {
        return Err("string argument should contain only ASCII characters".to_owned());
    }
    let mut out = Vec::with_capacity(text.len() / 4 * 3 + 3);
    let (mut quad_pos, mut pads, mut acc, mut data_chars) = (0u32, 0u32, 0u32, 0usize);
    for byte in text.bytes() {
        if byte == b'=' {
            pads += 1;
            if quad_pos >= 2 && quad_pos + pads >= 4 {
                return Ok(out);
            }
            continue;
        }
        let value = match byte {
            b'A'..=b'Z' => byte - b'A',
            b'a'..=b'z' => byte - b'a' + 26,
            b'0'..=b'9' => byte - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => continue,
        };
        pads = 0;
        data_chars += 1;
        acc = (acc << 6) | value as u32;
        quad_pos = (quad_pos + 1) % 4;
        match quad_pos {
            2 => out.push((acc >> 4) as u8),
            3 => out.push((acc >> 2) as u8),
            0 => out.push(acc as u8),
            _ => {}
        }
        acc &= 0x3F;
    }
    match quad_pos {
        0 => Ok(out),
        1 => Err(format!(
            "Invalid base64-encoded string: number of data characters ({data_chars}) cannot be 1 \
             more than a multiple of 4"
        )),
        _ => Err("Incorrect padding".to_owned()),
    }
}

/// The size LiteLLM reads in auto mode (`_auto_image_dimensions`), or `None` when it prices the
/// image at 85: not a `data:image/` URL, too large, a header that is not `...;base64`, invalid
/// base64, a format other than PNG/GIF/JPEG/WebP, a truncated header or a zero side.
fn auto_detail_size(url: &str, padding: Base64Padding) -> Option<(u64, u64)> {
    if !url.starts_with("data:image/") {
        return None;
    }
    // Lengths are in characters; a byte length within the bound is a character length within it.
    if url.len() > MAX_INLINE_IMAGE_BASE64 + MAX_DATA_URL_HEADER_CHARS
        && url.chars().count() > MAX_INLINE_IMAGE_BASE64 + MAX_DATA_URL_HEADER_CHARS
    {
        return None;
    }
    let (header, encoded) = url.split_once(',')?;
    if header.chars().count() > MAX_DATA_URL_HEADER_CHARS
        || !header.ends_with(";base64")
        || encoded.len() > MAX_INLINE_IMAGE_BASE64
    {
        return None;
    }
    let data = decode_base64_strict(encoded, padding)?;
    if data.len() > MAX_INLINE_IMAGE_BYTES
        || !matches!(
            image_format(&data),
            Some(ImageFormat::Png | ImageFormat::Gif | ImageFormat::Jpeg | ImageFormat::WebP)
        )
    {
        return None;
    }
    let (width, height) = image_size(&data).ok()?;
    (width > 0 && height > 0).then_some((width, height))
}

/// What LiteLLM charges for an image priced in auto mode (see the module notes), with base64
/// validated as the running Python validates it.
pub fn auto_detail_tokens(url: &str, padding: Base64Padding) -> Result<usize, MessageError> {
    match auto_detail_size(url, padding) {
        Some((width, height)) => high_detail_image_tokens(width, height),
        None => Ok(BASE_IMAGE_TOKENS),
    }
}

/// What LiteLLM charges for an image with `detail="high"` (`get_image_dimensions`): http(s) URLs
/// need a download ([`MessageError::ImageNeedsDownload`]); anything else is the base64 text after
/// the first comma, and every failure to read it is an error, as in LiteLLM.
pub fn high_detail_url_tokens(url: &str) -> Result<usize, MessageError> {
    if url.starts_with("http://") || url.starts_with("https://") {
        return Err(MessageError::ImageNeedsDownload);
    }
    let (_, encoded) = url.split_once(',').ok_or_else(|| {
        MessageError::UnreadableImage("the URL has no ',' before the base64 data".to_owned())
    })?;
    let data = decode_base64_lenient(encoded).map_err(MessageError::UnreadableImage)?;
    let (width, height) =
        image_size(&data).map_err(|e| MessageError::UnreadableImage(e.to_owned()))?;
    high_detail_image_tokens(width, height)
}

#[cfg(test)]
mod tests {
    use super::*;

    const CANONICAL: GeneralPurpose = base64::engine::general_purpose::STANDARD;
    const PY313: Base64Padding = Base64Padding::Python313;

    fn data_url(media: &str, bytes: &[u8]) -> String {
        format!("data:{media};base64,{}", CANONICAL.encode(bytes))
    }

    fn auto(url: &str) -> Result<usize, MessageError> {
        auto_detail_tokens(url, PY313)
    }

    fn png(width: u32, height: u32) -> Vec<u8> {
        let mut b = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec();
        b.extend(width.to_be_bytes());
        b.extend(height.to_be_bytes());
        b.extend([8, 6, 0, 0, 0]);
        b
    }

    #[test]
    fn high_detail_prices_match_litellm() {
        // Values computed with litellm's calculate_img_tokens(mode="high") arithmetic.
        for (w, h, tokens) in [
            (100, 100, 255),
            (768, 768, 765),
            (769, 300, 1445),
            (300, 2000, 765),
            (4000, 1000, 765),
            (1024, 1024, 765),
            (5000, 100, 765),
            (0, 100, 85),
            (64, 64, 255),
            (800, 3000, 1445),
        ] {
            assert_eq!(high_detail_image_tokens(w, h).unwrap(), tokens, "{w}x{h}");
        }
        assert!(matches!(
            high_detail_image_tokens(0, 1000),
            Err(MessageError::UnreadableImage(_))
        ));
    }

    #[test]
    fn auto_mode_reads_inline_images_only() {
        assert_eq!(auto(&data_url("image/png", &png(64, 64))), Ok(255));
        assert_eq!(auto(&data_url("image/png", &png(2000, 2000))), Ok(765));
        // Not an inline image, a zero side, a truncated header, not base64: 85.
        for url in [
            "https://example.com/cat.png".to_owned(),
            data_url("application/octet-stream", &png(64, 64)),
            data_url("image/png", &png(0, 64)),
            data_url("image/png", &png(64, 64)[..20]),
            "data:image/png;base64,iVBOR w0K".to_owned(),
            "data:image/png,iVBORw0K".to_owned(),
        ] {
            assert_eq!(auto(&url), Ok(BASE_IMAGE_TOKENS), "{url}");
        }
    }

    #[test]
    fn webp_follows_litellm_not_the_format() {
        let mut vp8 = b"RIFF\0\0\0\0WEBPVP8 \0\0\0\0\0\0\0\x9d\x01\x2a".to_vec();
        // 14-bit sizes with the scaling bits set: LiteLLM masks them off.
        vp8.extend([0x40, 0xC0, 0x40, 0x40]);
        assert_eq!(image_size(&vp8), Ok((64, 64)));
        let unknown = b"RIFF\0\0\0\0WEBPXXXX\0\0\0\0\0\0\0\0".to_vec();
        assert_eq!(image_size(&unknown), Ok((300, 300)));
        assert_eq!(auto(&data_url("image/webp", &unknown)), Ok(255));
    }

    #[test]
    fn jpeg_walk_skips_segments_and_fill_bytes() {
        let mut jpeg = b"\xff\xd8\xff\xe0\x00\x04ab\xff\xff\xc0\x00\x11\x08".to_vec();
        jpeg.extend(3000u16.to_be_bytes());
        jpeg.extend(800u16.to_be_bytes());
        assert_eq!(image_size(&jpeg), Ok((800, 3000)));
        assert_eq!(auto(&data_url("image/jpeg", &jpeg)), Ok(1445));
        assert!(image_size(b"\xff\xd8\xff\xe0\x00\x10").is_err());
    }

    #[test]
    fn high_mode_needs_the_network_for_http_and_fails_on_bad_data() {
        assert_eq!(
            high_detail_url_tokens("https://example.com/a.png"),
            Err(MessageError::ImageNeedsDownload)
        );
        assert!(high_detail_url_tokens("no comma").is_err());
        assert!(high_detail_url_tokens("data:image/png;base64,abc").is_err());
        // Unknown data is a 300x300 image; characters outside the alphabet are skipped.
        assert_eq!(high_detail_url_tokens("x,AAAA"), Ok(255));
        let url = data_url("image/png", &png(769, 300));
        let spaced = url.replacen("iVBOR", "iV B\nOR", 1);
        assert_eq!(high_detail_url_tokens(&spaced), Ok(1445));
    }

    #[test]
    fn strict_base64_padding_follows_each_python() {
        // b64decode(s, validate=True) on CPython 3.10, 3.11/3.12 and 3.13: Some(decoded) or None
        // for an error.
        let cases: [(&str, [Option<&[u8]>; 3]); 14] = [
            ("", [Some(b""), Some(b""), Some(b"")]),
            ("=", [Some(b""), None, None]),
            ("==", [Some(b""), None, None]),
            ("a", [None, None, None]),
            ("ab", [None, None, None]),
            ("ab=", [None, None, None]),
            ("YQ==", [Some(b"a"), Some(b"a"), Some(b"a")]),
            ("YWJ=", [Some(b"ab"), Some(b"ab"), Some(b"ab")]),
            ("abc==", [Some(b"i\xb7"), None, None]),
            ("abcd=", [Some(b"i\xb7\x1d"), Some(b"i\xb7\x1d"), None]),
            ("abcd===", [None, Some(b"i\xb7\x1d"), None]),
            ("ab=c", [None, None, None]),
            (" YQ==", [None, None, None]),
            ("YR==", [Some(b"a"), Some(b"a"), Some(b"a")]),
        ];
        let rules = [
            Base64Padding::Python310,
            Base64Padding::Python311,
            Base64Padding::Python313,
        ];
        for (text, expected) in cases {
            for (rule, want) in rules.iter().zip(expected) {
                assert_eq!(
                    decode_base64_strict(text, *rule).as_deref(),
                    want,
                    "{text:?} {rule:?}"
                );
            }
        }
        assert_eq!(Base64Padding::for_python(3, 10), Base64Padding::Python310);
        assert_eq!(Base64Padding::for_python(3, 12), Base64Padding::Python311);
        assert_eq!(Base64Padding::for_python(3, 14), Base64Padding::Python313);
    }

    #[test]
    fn lenient_base64_matches_python() {
        // Outputs of Python's base64.b64decode(s) (non-validating).
        assert_eq!(decode_base64_lenient("YQ=="), Ok(b"a".to_vec()));
        assert_eq!(decode_base64_lenient("YWJ="), Ok(b"ab".to_vec()));
        assert_eq!(decode_base64_lenient("YR=="), Ok(b"a".to_vec()));
        assert_eq!(decode_base64_lenient("Y Q = = junk"), Ok(b"a".to_vec()));
        assert_eq!(decode_base64_lenient("abcd="), Ok(b"i\xb7\x1d".to_vec()));
        assert!(decode_base64_lenient("YQ").is_err());
        assert!(decode_base64_lenient("a").is_err());
        assert!(decode_base64_lenient("é").is_err());
    }
}
