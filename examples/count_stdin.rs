//! Differential-testing and quick-benchmark tool for `_native::tokens`.
//!
//! Usage:
//!   count_stdin ENCODING [--encode]    stdin: UTF-8 texts separated by NUL bytes; prints one
//!                                      count (or space-separated token ids) per text and line
//!   count_stdin ENCODING --bench FILE N
//!                                      counts FILE's text N times, prints the median ns per call
//!                                      (and the minimum on stderr); a FILE of several texts
//!                                      separated by NUL bytes is counted one text per call, in
//!                                      turn (text the piece cache has not just seen)
//!
//! Vocabularies are the tables built with the crate from `python/fast_litellm/_vocab/`.

use std::io::{Read, Write};
use std::process::ExitCode;
use std::time::Instant;

use _native::tokens::{Encoding, EncodingName};

fn load(name: &str) -> Result<Encoding, String> {
    let name = EncodingName::parse(name).map_err(|e| e.to_string())?;
    // The tables built with the crate from `python/fast_litellm/_vocab/`, as the package loads
    // them.
    Encoding::builtin(name).map_err(|e| e.to_string())
}

fn bench(enc: &Encoding, file: &str, n: usize) -> Result<(), String> {
    let data = std::fs::read_to_string(file).map_err(|e| format!("{file}: {e}"))?;
    let texts: Vec<&str> = data.split('\0').collect();
    let mut next = texts.iter().cycle();
    let n = n.max(1);
    // Warm-up: page in the tables and let the CPU clock settle.
    let mut sink = 0;
    for text in next.by_ref().take(n.min(10)) {
        sink += enc.count(text);
    }
    let mut times = Vec::with_capacity(n);
    for text in next.take(n) {
        let start = Instant::now();
        sink += std::hint::black_box(enc.count(std::hint::black_box(text)));
        times.push(start.elapsed().as_nanos());
    }
    times.sort_unstable();
    println!("{}", times[times.len() / 2]);
    // The minimum is steadier than the median on a busy machine.
    eprintln!("min {}", times[0]);
    std::hint::black_box(sink);
    Ok(())
}

fn run() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = "usage: count_stdin ENCODING [--encode | --bench FILE N]";
    let enc = load(args.first().ok_or(usage)?)?;
    match args.get(1).map(String::as_str) {
        Some("--bench") => {
            let file = args.get(2).ok_or(usage)?;
            let n = args.get(3).and_then(|n| n.parse().ok()).ok_or(usage)?;
            bench(&enc, file, n)
        }
        mode @ (None | Some("--encode")) => {
            let mut input = Vec::new();
            std::io::stdin()
                .read_to_end(&mut input)
                .map_err(|e| e.to_string())?;
            let input = String::from_utf8(input).map_err(|e| e.to_string())?;
            let stdout = std::io::stdout();
            let mut out = std::io::BufWriter::new(stdout.lock());
            for text in input.split('\0') {
                let line = if mode.is_some() {
                    let ids: Vec<String> = enc.encode(text).iter().map(u32::to_string).collect();
                    ids.join(" ")
                } else {
                    enc.count(text).to_string()
                };
                writeln!(out, "{line}").map_err(|e| e.to_string())?;
            }
            out.flush().map_err(|e| e.to_string())
        }
        Some(other) => Err(format!("unknown option {other:?}; {usage}")),
    }
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("count_stdin: {e}");
            ExitCode::FAILURE
        }
    }
}
