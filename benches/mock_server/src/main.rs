//! A local OpenAI-compatible server for benchmarks and end-to-end tests.
//!
//! `POST /v1/chat/completions` (JSON or, with `"stream": true`, server-sent events),
//! `POST /v1/embeddings`, `GET /health`, on 127.0.0.1 only. Answers are deterministic: the same
//! request always gets the same bytes, so a client's answers can be compared across runs.
//!
//! Options: `--port N` (0 picks a free port), `--threads N`, `--latency-ms N`,
//! `--stream-events N`. Once listening it prints `LISTENING <port>` on stdout. Per request, the
//! headers `x-mock-latency-ms` and `x-mock-stream-events` override the options, and
//! `x-mock-status: <4xx|5xx>` (with `x-mock-retry-after: <seconds>`) answers an OpenAI-shaped
//! error instead.
//!
//! It must never be what a benchmark measures: no logging, responses rendered straight to bytes,
//! keep-alive, TCP_NODELAY (a client waiting on Nagle's algorithm would measure 40 ms stalls).

use std::collections::VecDeque;
use std::convert::Infallible;
use std::io::Write;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use base64::Engine;
use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::header::{HeaderMap, HeaderValue, CONTENT_TYPE, RETRY_AFTER};
use hyper::http::request::Parts;
use hyper::{Method, Request, Response, StatusCode};
use serde_json::{json, Value};

/// `created` of every answer: a fixed time, so equal requests get equal bytes.
const CREATED: u64 = 1_700_000_000;
const USAGE: &str =
    "usage: mock-server [--port N] [--threads N] [--latency-ms N] [--stream-events N]";
/// The words answers are made of; which ones an answer gets depends on the request.
const WORDS: [&str; 16] = [
    "The", "quick", "mock", "answers", "every", "request", "with", "the", "same", "words,", "so",
    "two", "runs", "compare", "equal", "bytes.",
];

#[derive(Clone, Copy)]
struct Settings {
    latency_ms: u64,
    /// Content events of a streamed answer, and the words of a non-streamed one (so that the
    /// two forms of an answer carry the same text).
    stream_events: usize,
}

struct Options {
    port: u16,
    threads: usize,
    defaults: Settings,
}

fn parse_options() -> Result<Options, String> {
    let mut options = Options {
        port: 0,
        // One thread leaves the other core of a small machine to the client being measured;
        // it serves tens of thousands of keep-alive requests a second.
        threads: 1,
        defaults: Settings {
            latency_ms: 0,
            stream_events: 16,
        },
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        if flag == "--help" || flag == "-h" {
            return Err(USAGE.to_string());
        }
        let value = args
            .next()
            .ok_or_else(|| format!("{flag} needs a value\n{USAGE}"))?;
        let bad = |_| format!("{flag}: not a number: {value:?}\n{USAGE}");
        match flag.as_str() {
            "--port" => options.port = value.parse().map_err(bad)?,
            "--threads" => options.threads = value.parse::<usize>().map_err(bad)?.max(1),
            "--latency-ms" => options.defaults.latency_ms = value.parse().map_err(bad)?,
            "--stream-events" => options.defaults.stream_events = value.parse().map_err(bad)?,
            _ => return Err(format!("unknown option {flag}\n{USAGE}")),
        }
    }
    Ok(options)
}

fn main() {
    let options = match parse_options() {
        Ok(options) => options,
        Err(message) => {
            eprintln!("{message}");
            std::process::exit(2);
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(options.threads)
        .enable_all()
        .build()
        .expect("cannot start the tokio runtime");
    if let Err(error) = runtime.block_on(serve(options)) {
        eprintln!("mock-server: {error}");
        std::process::exit(1);
    }
}

async fn serve(options: Options) -> std::io::Result<()> {
    let listener =
        tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], options.port))).await?;
    let port = listener.local_addr()?.port();
    // The launcher reads this line to learn the port; flush, stdout is a pipe (block-buffered).
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "LISTENING {port}")?;
    stdout.flush()?;
    drop(stdout);
    let defaults = Arc::new(options.defaults);
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            // Out of file descriptors, most likely: the connections in flight will free some.
            Err(_) => {
                tokio::time::sleep(Duration::from_millis(1)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let defaults = Arc::clone(&defaults);
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request| handle(request, *defaults));
            // No Date header: the same request gets the same bytes, headers included.
            // A client that drops its connection mid-request is normal in benchmarks.
            let _ = hyper::server::conn::http1::Builder::new()
                .auto_date_header(false)
                .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                .await;
        });
    }
}

async fn handle(
    request: Request<Incoming>,
    defaults: Settings,
) -> Result<Response<Frames>, hyper::Error> {
    let (parts, body) = request.into_parts();
    let body = body.collect().await?.to_bytes();
    Ok(answer(&parts, &body, defaults)
        .await
        .unwrap_or_else(Refusal::into_response))
}

async fn answer(
    parts: &Parts,
    body: &[u8],
    defaults: Settings,
) -> Result<Response<Frames>, Refusal> {
    let (settings, asked_for) = per_request(&parts.headers, defaults)?;
    if settings.latency_ms > 0 {
        tokio::time::sleep(Duration::from_millis(settings.latency_ms)).await;
    }
    if let Some(refusal) = asked_for {
        return Err(refusal);
    }
    match (&parts.method, parts.uri.path()) {
        (&Method::POST, "/v1/chat/completions") => chat(body, settings),
        (&Method::POST, "/v1/embeddings") => embeddings(body),
        (&Method::GET, "/health") => Ok(json_response(StatusCode::OK, &json!({"status": "ok"}))),
        _ => Err(Refusal(
            StatusCode::NOT_FOUND,
            "no such endpoint".into(),
            None,
        )),
    }
}

/// The settings of one request (defaults overridden by `x-mock-*` headers), and the error it
/// asked for, if any. A malformed header is the caller's mistake: it gets a 400 that names it.
fn per_request(
    headers: &HeaderMap,
    defaults: Settings,
) -> Result<(Settings, Option<Refusal>), Refusal> {
    fn number<T: std::str::FromStr>(headers: &HeaderMap, name: &str) -> Result<Option<T>, Refusal> {
        let Some(value) = headers.get(name) else {
            return Ok(None);
        };
        let parsed = value
            .to_str()
            .ok()
            .and_then(|text| text.trim().parse().ok());
        match parsed {
            Some(number) => Ok(Some(number)),
            None => Err(bad_request(&format!("{name}: not a number: {value:?}"))),
        }
    }
    let settings = Settings {
        latency_ms: number(headers, "x-mock-latency-ms")?.unwrap_or(defaults.latency_ms),
        stream_events: number(headers, "x-mock-stream-events")?.unwrap_or(defaults.stream_events),
    };
    let asked_for = match number::<u16>(headers, "x-mock-status")? {
        None => None,
        Some(code) => match StatusCode::from_u16(code) {
            Ok(status) if status.is_client_error() || status.is_server_error() => {
                let retry_after = number(headers, "x-mock-retry-after")?;
                Some(Refusal(
                    status,
                    "error requested by x-mock-status".into(),
                    retry_after,
                ))
            }
            _ => {
                return Err(bad_request(&format!(
                    "x-mock-status: {code} is not 400-599"
                )))
            }
        },
    };
    Ok((settings, asked_for))
}

/// A request body's JSON and its `model`, or the 400 that says what is wrong with it.
fn parse(body: &[u8]) -> Result<(Value, String), Refusal> {
    let request: Value = serde_json::from_slice(body)
        .map_err(|e| bad_request(&format!("the body is not JSON: {e}")))?;
    match request["model"].as_str().map(str::to_string) {
        Some(model) => Ok((request, model)),
        None => Err(bad_request("model: a string is required")),
    }
}

fn chat(body: &[u8], settings: Settings) -> Result<Response<Frames>, Refusal> {
    let (request, model) = parse(body)?;
    let messages = match request["messages"].as_array() {
        Some(messages) if !messages.is_empty() => messages,
        _ => return Err(bad_request("messages: a non-empty array is required")),
    };
    // Which words the answer has depends on the last message, so different prompts get
    // different (but always the same) answers.
    let seed = messages.last().map_or(0, |m| content_bytes(&m["content"]));
    let words: Vec<&str> = (0..settings.stream_events)
        .map(|i| WORDS[(seed + i) % WORDS.len()])
        .collect();
    let prompt_tokens: usize = messages
        .iter()
        .map(|m| 3 + content_bytes(&m["content"]) / 4)
        .sum();
    let usage = json!({
        "prompt_tokens": prompt_tokens,
        "completion_tokens": words.len(),
        "total_tokens": prompt_tokens + words.len(),
    });
    let id = format!("chatcmpl-mock-{seed}");
    if request["stream"].as_bool() != Some(true) {
        let message = json!({"role": "assistant", "content": words.join(" "), "refusal": null});
        return Ok(json_response(
            StatusCode::OK,
            &json!({
                "id": id, "object": "chat.completion", "created": CREATED, "model": model,
                "choices": [{"index": 0, "message": message, "logprobs": null,
                             "finish_reason": "stop"}],
                "usage": usage,
            }),
        ));
    }
    // As OpenAI streams: one chunk per piece of content (the first also carries the role), a
    // chunk with the finish reason, then, when asked for, one with the usage and no choices.
    // Each event is spliced from pre-rendered text: building a JSON tree per event served a
    // third as many streams a second (10k against 32k of 50 events, on one thread).
    let head = format!(
        "data: {{\"id\":\"{id}\",\"object\":\"chat.completion.chunk\",\"created\":{CREATED},\
         \"model\":{},\"choices\":",
        Value::from(model)
    );
    let event = |rest: &str| Bytes::from(format!("{head}{rest}}}\n\n"));
    let mut events = VecDeque::with_capacity(words.len() + 3);
    for (i, word) in words.iter().enumerate() {
        let delta = match i {
            0 => format!("\"role\":\"assistant\",\"content\":{}", Value::from(*word)),
            _ => format!("\"content\":{}", Value::from(format!(" {word}"))),
        };
        events.push_back(event(&format!(
            "[{{\"index\":0,\"delta\":{{{delta}}},\"logprobs\":null,\"finish_reason\":null}}]"
        )));
    }
    events.push_back(event(
        "[{\"index\":0,\"delta\":{},\"logprobs\":null,\"finish_reason\":\"stop\"}]",
    ));
    if request["stream_options"]["include_usage"].as_bool() == Some(true) {
        events.push_back(event(&format!("[],\"usage\":{usage}")));
    }
    events.push_back(Bytes::from_static(b"data: [DONE]\n\n"));
    Ok(respond(StatusCode::OK, "text/event-stream", events, true))
}

fn embeddings(body: &[u8]) -> Result<Response<Frames>, Refusal> {
    let (request, model) = parse(body)?;
    // `input` is a string, a list of strings, a list of token ids, or a list of such lists.
    let sizes: Vec<usize> = match &request["input"] {
        Value::String(text) => vec![text.len()],
        Value::Array(items) if items.iter().all(Value::is_number) => vec![items.len()],
        Value::Array(items) => items.iter().map(content_bytes).collect(),
        _ => return Err(bad_request("input: a string or an array is required")),
    };
    let dimensions = request["dimensions"].as_u64().unwrap_or(8).clamp(1, 4096) as usize;
    let base64 = request["encoding_format"].as_str() == Some("base64");
    let data: Vec<Value> = sizes
        .iter()
        .enumerate()
        .map(|(index, size)| {
            let vector = (0..dimensions).map(|j| ((size + j) % 97) as f32 / 97.0);
            let embedding = if base64 {
                let raw: Vec<u8> = vector.flat_map(f32::to_le_bytes).collect();
                Value::from(base64::engine::general_purpose::STANDARD.encode(raw))
            } else {
                Value::from(vector.collect::<Vec<f32>>())
            };
            json!({"object": "embedding", "index": index, "embedding": embedding})
        })
        .collect();
    let tokens: usize = sizes.iter().map(|size| 1 + size / 4).sum();
    let usage = json!({"prompt_tokens": tokens, "total_tokens": tokens});
    Ok(json_response(
        StatusCode::OK,
        &json!({"object": "list", "data": data, "model": model, "usage": usage}),
    ))
}

/// Bytes of a message's text: a string, or the text parts of a content array.
fn content_bytes(content: &Value) -> usize {
    match content {
        Value::String(text) => text.len(),
        Value::Array(parts) => parts.iter().map(|part| content_bytes(&part["text"])).sum(),
        _ => 0,
    }
}

/// An error answer: its status, its message and, when asked for, its Retry-After in seconds.
struct Refusal(StatusCode, String, Option<u64>);

fn bad_request(message: &str) -> Refusal {
    Refusal(StatusCode::BAD_REQUEST, message.to_string(), None)
}

impl Refusal {
    /// The error the way OpenAI shapes it, which is what clients parse into their exceptions.
    fn into_response(self) -> Response<Frames> {
        let Refusal(status, message, retry_after) = self;
        let (kind, code) = match status.as_u16() {
            429 => ("requests", "rate_limit_exceeded"),
            400..=499 => ("invalid_request_error", "invalid_request"),
            _ => ("server_error", "server_error"),
        };
        let error = json!({"message": message, "type": kind, "param": null, "code": code});
        let mut response = json_response(status, &json!({ "error": error }));
        if let Some(seconds) = retry_after {
            response
                .headers_mut()
                .insert(RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

fn json_response(status: StatusCode, body: &Value) -> Response<Frames> {
    let bytes = Bytes::from(body.to_string());
    respond(status, "application/json", VecDeque::from([bytes]), false)
}

fn respond(
    status: StatusCode,
    content_type: &'static str,
    frames: VecDeque<Bytes>,
    chunked: bool,
) -> Response<Frames> {
    let mut response = Response::new(Frames { frames, chunked });
    *response.status_mut() = status;
    let content_type = HeaderValue::from_static(content_type);
    response.headers_mut().insert(CONTENT_TYPE, content_type);
    response
}

/// A response body of pre-rendered frames. A JSON answer is one frame with a Content-Length; a
/// stream goes out chunked, one frame per event, as OpenAI sends it (hyper still coalesces the
/// frames it has into few writes).
struct Frames {
    frames: VecDeque<Bytes>,
    chunked: bool,
}

impl Body for Frames {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        Poll::Ready(self.frames.pop_front().map(|bytes| Ok(Frame::data(bytes))))
    }

    fn is_end_stream(&self) -> bool {
        self.frames.is_empty()
    }

    fn size_hint(&self) -> SizeHint {
        if self.chunked {
            return SizeHint::default();
        }
        SizeHint::with_exact(self.frames.iter().map(|frame| frame.len() as u64).sum())
    }
}
