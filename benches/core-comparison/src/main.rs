//! Count-only speed and exactness of fast_litellm's BPE core against the other exact Rust BPE
//! crates, on the same inputs, in one run.
//!
//! Every (encoding, crate) pair runs in a child process of this binary, one at a time, so that a
//! crate that takes too long on one input can be stopped without disturbing the others: the
//! parent kills the child when a single call has run for more than `FIRST_CALL_LIMIT`, records
//! "> 10 s" for that input and starts a new child for the remaining inputs.
//!
//! Usage (from this directory):
//!   cargo run --release -- [--quick] [--write [PATH]] [--dump DIR]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const MANIFEST_DIR: &str = env!("CARGO_MANIFEST_DIR");
/// A single call slower than this is abandoned and reported as "> 10 s".
const FIRST_CALL_LIMIT: Duration = Duration::from_secs(10);
/// A call at least this slow is timed once (its first call) instead of repeatedly.
const SINGLE_RUN_NS: f64 = 1e9;
/// Repeated calls are batched so that one timed sample lasts at least this long (and at least
/// 1/MAX_SAMPLES of the budget).
const MIN_SAMPLE_NS: f64 = 20_000.0;
const MAX_SAMPLES: usize = 51;

// ---------------------------------------------------------------------------------------------
// Inputs
// ---------------------------------------------------------------------------------------------

struct Input {
    key: &'static str,
    label: &'static str,
    text: String,
}

fn repo_path(rel: &str) -> PathBuf {
    Path::new(MANIFEST_DIR).join("../..").join(rel)
}

fn read_text(rel: &str) -> String {
    let p = repo_path(rel);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("cannot read {}: {e}", p.display()))
}

/// `text` repeated (separated by a newline when it does not end with one) until it has at least
/// `n` bytes, then cut to the last char boundary at or before `n`.
fn sized(text: &str, n: usize) -> String {
    assert!(!text.is_empty());
    let mut out = String::with_capacity(n + text.len());
    while out.len() < n {
        out.push_str(text);
        if !text.ends_with('\n') {
            out.push('\n');
        }
    }
    let mut end = n;
    while !out.is_char_boundary(end) {
        end -= 1;
    }
    out.truncate(end);
    out
}

/// splitmix64: small, seeded, and the same on every machine.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// 2,000 code points drawn uniformly from U+0000..=U+10FFFF without the surrogates.
fn random_code_points(count: usize, seed: u64) -> String {
    let mut rng = Rng(seed);
    let mut out = String::new();
    for _ in 0..count {
        let mut cp = rng.below(0x11_0000 - 0x800) as u32;
        if cp >= 0xD800 {
            cp += 0x800;
        }
        out.push(char::from_u32(cp).expect("not a surrogate"));
    }
    out
}

/// Runs of spaces, tabs, newlines and CRLFs of varying length, some separated by short words:
/// the inputs on which the `\s+(?!\S)` part of the pre-tokenizer patterns does the most work.
fn whitespace_runs(n: usize, seed: u64) -> String {
    let mut rng = Rng(seed);
    let words = ["x", "fn", "let", "}", "a1", "if", "(", "return", "::", "42"];
    let mut out = String::with_capacity(n + 64);
    while out.len() < n {
        match rng.below(6) {
            0 | 1 => out.extend(std::iter::repeat_n(' ', 1 + rng.below(40) as usize)),
            2 => out.extend(std::iter::repeat_n('\n', 1 + rng.below(6) as usize)),
            3 => out.extend(std::iter::repeat_n('\t', 1 + rng.below(4) as usize)),
            4 => {
                for _ in 0..1 + rng.below(8) {
                    out.push([' ', '\t', '\n', ' ', '\u{a0}'][rng.below(5) as usize]);
                }
            }
            _ => out.extend(std::iter::repeat_n("\r\n", 1 + rng.below(3) as usize)),
        }
        if rng.below(2) == 0 {
            out.push_str(words[rng.below(words.len() as u64) as usize]);
        }
    }
    let mut end = n;
    while !out.is_char_boundary(end) {
        end -= 1;
    }
    out.truncate(end);
    out
}

/// The Rust sources of `src/tokens/`, in name order, concatenated.
fn rust_source() -> String {
    let dir = repo_path("src/tokens");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "rs"))
        .collect();
    files.sort();
    files.iter().map(|p| std::fs::read_to_string(p).unwrap()).collect()
}

fn inputs() -> Vec<Input> {
    let english = read_text("benches/samples/english.txt");
    let cjk = read_text("benches/samples/cjk.txt");
    let multi = read_text("benches/samples/multilingual.txt");
    vec![
        Input { key: "short", label: "English, 13 B", text: "Hello, world!".to_string() },
        Input { key: "english_1k", label: "English prose, 1 KB", text: sized(&english, 1024) },
        Input { key: "code_4k", label: "Rust code, 4 KB", text: sized(&rust_source(), 4096) },
        Input { key: "english_100k", label: "English prose, 100 KB", text: sized(&english, 100 * 1024) },
        Input { key: "cjk_4k", label: "CJK, 4 KB", text: sized(&cjk, 4096) },
        Input { key: "multi_4k", label: "European/Arabic/Indic mix, 4 KB", text: sized(&multi, 4096) },
        Input { key: "whitespace_10k", label: "Whitespace runs, 10 KB", text: whitespace_runs(10 * 1024, 7) },
        Input { key: "a_100k", label: "`\"a\" * 100_000`", text: "a".repeat(100_000) },
        Input { key: "random_cp", label: "2,000 random code points", text: random_code_points(2000, 42) },
    ]
}

// ---------------------------------------------------------------------------------------------
// Crates
// ---------------------------------------------------------------------------------------------

const ENCODINGS: [&str; 2] = ["cl100k_base", "o200k_base"];
/// (key, column title, package name in Cargo.lock)
const CRATES: [(&str, &str, &str); 4] = [
    ("ours", "fast_litellm", "fast_litellm"),
    ("tiktoken-rs", "tiktoken-rs", "tiktoken-rs"),
    ("bpe-openai", "bpe-openai", "bpe-openai"),
    ("tiktoken", "tiktoken (goliajp)", "tiktoken"),
];

type Counter = Box<dyn Fn(&str) -> usize + Send + Sync>;

/// Builds the counter; the vocabulary is loaded (or its lazy static forced) here.
fn load(krate: &str, enc: &str) -> Counter {
    match krate {
        "ours" => {
            use _native::tokens::{Encoding, EncodingName};
            let name = match enc {
                "cl100k_base" => EncodingName::Cl100kBase,
                "o200k_base" => EncodingName::O200kBase,
                _ => unreachable!(),
            };
            // The tables the library carries (built from the shipped `.tiktoken` files at
            // compile time, their sha256 checked), as `fast_litellm` loads an encoding.
            let e = Encoding::builtin(name).expect("built-in vocabulary");
            Box::new(move |t| e.count(t))
        }
        "tiktoken-rs" => {
            let bpe = match enc {
                "cl100k_base" => tiktoken_rs::cl100k_base(),
                _ => tiktoken_rs::o200k_base(),
            }
            .expect("tiktoken-rs vocab");
            Box::new(move |t| bpe.count_ordinary(t))
        }
        "bpe-openai" => {
            let tok = match enc {
                "cl100k_base" => bpe_openai::cl100k_base(),
                _ => bpe_openai::o200k_base(),
            };
            Box::new(move |t| tok.count(t))
        }
        "tiktoken" => {
            let bpe = match enc {
                "cl100k_base" => tiktoken::encoding::cl100k_base(),
                _ => tiktoken::encoding::o200k_base(),
            };
            Box::new(move |t| bpe.count(t))
        }
        _ => unreachable!("unknown crate {krate}"),
    }
}

// ---------------------------------------------------------------------------------------------
// Child: time one crate on a list of inputs, one line per event on stdout
// ---------------------------------------------------------------------------------------------

/// CPU time of the calling thread, in ns. On a shared machine this leaves out the time the
/// thread spends descheduled while other work runs, which wall-clock time would count.
fn cpu_ns() -> f64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid, writable timespec.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID)");
    ts.tv_sec as f64 * 1e9 + ts.tv_nsec as f64
}

/// Median cost of reading `cpu_ns` twice, subtracted from single-call timings.
fn cpu_clock_overhead() -> f64 {
    let mut v: Vec<f64> = (0..201)
        .map(|_| {
            let a = cpu_ns();
            let b = cpu_ns();
            b - a
        })
        .collect();
    median(&mut v)
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// Protocol:
///   load <ns>
///   start <idx>
///   first <idx> <count> <ns>
///   done <idx> <warm_median_ns> <samples> <calls_per_sample> <fresh_median_ns|-> <fresh_samples>
fn child(enc: &str, krate: &str, budget_ms: u64, idxs: &[usize]) {
    let all = inputs();
    let out = std::io::stdout();
    let say = |line: String| {
        let mut o = out.lock();
        writeln!(o, "{line}").unwrap();
        o.flush().unwrap();
    };
    let t = Instant::now();
    let counter = load(krate, enc);
    std::hint::black_box(counter(""));
    say(format!("load {}", t.elapsed().as_nanos()));
    let budget = budget_ms as f64 * 1e6;
    let overhead = cpu_clock_overhead();

    for &i in idxs {
        let text = all[i].text.as_str();
        say(format!("start {i}"));
        let t = cpu_ns();
        let count = std::hint::black_box(counter(std::hint::black_box(text)));
        let first = cpu_ns() - t;
        say(format!("first {i} {count} {first}"));

        if first >= SINGLE_RUN_NS {
            say(format!("done {i} {first} 1 1 - 0"));
            continue;
        }
        // Estimate one warm call, then batch so a sample is long enough to time.
        let t = cpu_ns();
        std::hint::black_box(counter(std::hint::black_box(text)));
        let est = (cpu_ns() - t - overhead).max(1.0);
        let sample_ns = MIN_SAMPLE_NS.max(budget / MAX_SAMPLES as f64);
        let calls = ((sample_ns / est).ceil() as usize).max(1);
        let samples = ((budget / (est * calls as f64)) as usize).clamp(3, MAX_SAMPLES);
        let mut warm = Vec::with_capacity(samples);
        for _ in 0..samples {
            let t = cpu_ns();
            for _ in 0..calls {
                std::hint::black_box(counter(std::hint::black_box(text)));
            }
            warm.push((cpu_ns() - t - overhead).max(0.0) / calls as f64);
        }
        let warm_med = median(&mut warm);

        // One call per fresh thread: no state kept across calls (a thread-local cache, say)
        // can help. The thread first counts an unrelated text so thread-local storage exists.
        let fresh_n = ((budget / 2.0 / est) as usize).clamp(5, MAX_SAMPLES);
        let mut fresh = Vec::with_capacity(fresh_n);
        std::thread::scope(|s| {
            for _ in 0..fresh_n {
                let c = &counter;
                let ns = s
                    .spawn(move || {
                        std::hint::black_box(c("Qzxjv wvkqz xjqzv, zvqxj."));
                        let t = cpu_ns();
                        std::hint::black_box(c(std::hint::black_box(text)));
                        (cpu_ns() - t - overhead).max(0.0)
                    })
                    .join()
                    .unwrap();
                fresh.push(ns);
            }
        });
        let fresh_med = median(&mut fresh);
        say(format!("done {i} {warm_med} {samples} {calls} {fresh_med} {fresh_n}"));
    }
}

// ---------------------------------------------------------------------------------------------
// Parent: run the children, collect, print markdown
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Debug)]
enum Cell {
    Timed {
        count: usize,
        warm_ns: f64,
        samples: usize,
        fresh_ns: Option<f64>,
    },
    TooSlow,
    Failed(String),
}

struct Outcome {
    load_ns: Vec<f64>,
    cells: BTreeMap<usize, Cell>,
}

/// One child run (restarted after a timeout) of `krate` over the inputs `todo`.
fn run_crate(enc: &str, krate: &str, budget_ms: u64, todo: &[usize]) -> Outcome {
    let exe = std::env::current_exe().expect("own path");
    let mut remaining: Vec<usize> = todo.to_vec();
    let mut outcome = Outcome { load_ns: Vec::new(), cells: BTreeMap::new() };

    while !remaining.is_empty() {
        let list = remaining.iter().map(|i| i.to_string()).collect::<Vec<_>>().join(",");
        let mut proc = Command::new(&exe)
            .args(["--child", enc, krate, &budget_ms.to_string(), &list])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn child");
        let stdout = proc.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel::<String>();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                if tx.send(line.unwrap_or_default()).is_err() {
                    break;
                }
            }
        });

        let mut current: Option<usize> = None;
        let mut first: Option<(usize, f64)> = None;
        let mut killed = false;
        loop {
            // A call in progress gets FIRST_CALL_LIMIT; measuring after it gets more room.
            let wait = if current.is_some() && first.is_none() {
                FIRST_CALL_LIMIT
            } else {
                Duration::from_secs(120)
            };
            match rx.recv_timeout(wait) {
                Ok(line) => {
                    let f: Vec<&str> = line.split_whitespace().collect();
                    match f.first().copied() {
                        Some("load") => outcome.load_ns.push(f[1].parse().unwrap()),
                        Some("start") => {
                            current = Some(f[1].parse().unwrap());
                            first = None;
                        }
                        Some("first") => first = Some((f[2].parse().unwrap(), f[3].parse().unwrap())),
                        Some("done") => {
                            let i: usize = f[1].parse().unwrap();
                            let (count, _) = first.take().expect("first before done");
                            outcome.cells.insert(
                                i,
                                Cell::Timed {
                                    count,
                                    warm_ns: f[2].parse().unwrap(),
                                    samples: f[3].parse().unwrap(),
                                    fresh_ns: f[5].parse().ok(),
                                },
                            );
                            remaining.retain(|&r| r != i);
                            current = None;
                        }
                        _ => {}
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    let _ = proc.kill();
                    killed = true;
                    break;
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            }
        }
        let status = proc.wait().expect("wait child");
        let _ = reader.join();
        if let Some(i) = current {
            let cell = if killed && first.is_none() {
                Cell::TooSlow
            } else {
                Cell::Failed(format!("child ended ({status})"))
            };
            eprintln!("  {krate} on input #{i}: {cell:?}");
            outcome.cells.insert(i, cell);
            remaining.retain(|&r| r != i);
        } else if !remaining.is_empty() {
            // Ended between inputs without finishing: give up on the rest.
            for &i in &remaining {
                outcome.cells.insert(i, Cell::Failed(format!("child ended ({status})")));
            }
            remaining.clear();
        }
    }
    outcome
}

/// Median over rounds; a count that changed between rounds is reported as a failure.
fn merge_rounds(outs: Vec<Outcome>) -> Outcome {
    let mut load_ns: Vec<f64> = outs.iter().flat_map(|o| o.load_ns.iter().copied()).collect();
    let mut cells = BTreeMap::new();
    let inputs: std::collections::BTreeSet<usize> = outs.iter().flat_map(|o| o.cells.keys().copied()).collect();
    for i in inputs {
        let got: Vec<&Cell> = outs.iter().filter_map(|o| o.cells.get(&i)).collect();
        if let Some(bad) = got.iter().find(|c| !matches!(c, Cell::Timed { .. })) {
            cells.insert(i, (*bad).clone());
            continue;
        }
        let mut counts = Vec::new();
        let mut warm = Vec::new();
        let mut fresh = Vec::new();
        let mut samples = 0;
        for c in got {
            if let Cell::Timed { count, warm_ns, samples: n, fresh_ns } = c {
                counts.push(*count);
                warm.push(*warm_ns);
                samples += n;
                fresh.extend(*fresh_ns);
            }
        }
        counts.dedup();
        let cell = if counts.len() != 1 {
            Cell::Failed(format!("count changed between rounds: {counts:?}"))
        } else {
            Cell::Timed {
                count: counts[0],
                warm_ns: median(&mut warm),
                samples,
                fresh_ns: if fresh.is_empty() { None } else { Some(median(&mut fresh)) },
            }
        };
        cells.insert(i, cell);
    }
    let load = if load_ns.is_empty() { vec![] } else { vec![median(&mut load_ns)] };
    Outcome { load_ns: load, cells }
}

fn fmt_ns(ns: f64) -> String {
    if ns < 1e3 {
        format!("{ns:.0} ns")
    } else if ns < 1e6 {
        format!("{:.3} µs", ns / 1e3).trim_end_fmt()
    } else if ns < 1e9 {
        format!("{:.3} ms", ns / 1e6).trim_end_fmt()
    } else {
        format!("{:.2} s", ns / 1e9)
    }
}

trait TrimFmt {
    fn trim_end_fmt(self) -> String;
}

impl TrimFmt for String {
    /// Three significant digits: "12.345 µs" -> "12.3 µs", "123.456 µs" -> "123 µs".
    fn trim_end_fmt(self) -> String {
        let (num, unit) = self.split_once(' ').unwrap();
        let v: f64 = num.parse().unwrap();
        let s = if v >= 100.0 {
            format!("{v:.0}")
        } else if v >= 10.0 {
            format!("{v:.1}")
        } else {
            format!("{v:.2}")
        };
        format!("{s} {unit}")
    }
}

/// Time relative to fast_litellm's: "3.4×" slower, "0.25×" (a quarter of the time).
fn fmt_ratio(r: f64) -> String {
    if r < 1.0 {
        format!("{r:.2}×")
    } else if r < 100.0 {
        format!("{r:.1}×")
    } else {
        format!("{r:.0}×")
    }
}

fn fmt_bytes(n: usize) -> String {
    if n >= 1024 && n.is_multiple_of(1024) {
        format!("{} KiB", n / 1024)
    } else {
        format!("{n} B")
    }
}

fn lock_versions() -> BTreeMap<String, String> {
    let lock = std::fs::read_to_string(Path::new(MANIFEST_DIR).join("Cargo.lock")).unwrap_or_default();
    let mut out = BTreeMap::new();
    let mut name: Option<String> = None;
    for line in lock.lines() {
        if let Some(v) = line.strip_prefix("name = ") {
            name = Some(v.trim_matches('"').to_string());
        } else if let Some(v) = line.strip_prefix("version = ") {
            if let Some(n) = name.take() {
                out.insert(n, v.trim_matches('"').to_string());
            }
        }
    }
    out
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into())
}

fn command_line(cmd: &str, args: &[&str]) -> String {
    Command::new(cmd)
        .args(args)
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}

struct Report {
    markdown: String,
    disagreements: usize,
}

fn report(
    all: &[Input],
    results: &BTreeMap<(&str, &str), Outcome>,
    quick: bool,
    rounds: usize,
    budget_ms: u64,
) -> Report {
    let versions = lock_versions();
    let v = |n: &str| versions.get(n).cloned().unwrap_or_else(|| "?".into());
    let cpus = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0);
    let mut md = String::new();
    let mut disagreements = 0;
    md.push_str(&format!(
        "Measured {} with `cargo run --release{}` in `benches/core-comparison`: {} round(s), each \
         giving every crate about {} ms per input; a time is the median of the rounds' medians of the calling thread's CPU time \
         (`CLOCK_THREAD_CPUTIME_ID`, so time spent descheduled by other work on the machine is \
         not counted).\n\n",
        command_line("date", &["-u", "+%Y-%m-%d"]),
        if quick { " -- --quick" } else { "" },
        rounds,
        budget_ms,
    ));
    md.push_str(&format!(
        "- Machine: {} ({} logical CPUs, shared host), {}; {}\n",
        cpu_model(),
        cpus,
        command_line("uname", &["-sm"]),
        command_line("rustc", &["--version"]),
    ));
    let head = command_line("git", &["-C", &repo_path("").to_string_lossy(), "rev-parse", "--short", "HEAD"]);
    let dirty = !command_line(
        "git",
        &["-C", &repo_path("").to_string_lossy(), "status", "--porcelain", "--", "src/tokens"],
    )
    .is_empty();
    md.push_str(&format!(
        "- fast_litellm source: commit {}{}\n",
        if head.is_empty() { "?" } else { &head },
        if dirty { " with uncommitted changes in `src/tokens/`" } else { "" }
    ));
    md.push_str(&format!(
        "- Crates: fast_litellm {} (this repository), tiktoken-rs {}, bpe-openai {} (bpe {}), tiktoken {} (goliajp)\n",
        v("fast_litellm"),
        v("tiktoken-rs"),
        v("bpe-openai"),
        v("bpe"),
        v("tiktoken"),
    ));
    md.push_str(
        "- Calls: `Encoding::count` (fast_litellm), `CoreBPE::count_ordinary` (tiktoken-rs; it encodes and \
         takes the length), `Tokenizer::count` (bpe-openai), `CoreBpe::count` (tiktoken)\n\n",
    );

    for enc in ENCODINGS {
        md.push_str(&format!("### {enc}: median thread CPU time of one count call (repeated calls on one thread)\n\n"));
        md.push_str("| input | size | tokens |");
        for (_, title, _) in CRATES {
            md.push_str(&format!(" {title} |"));
        }
        md.push_str("\n|---|---:|---:|");
        for _ in CRATES {
            md.push_str("---:|");
        }
        md.push('\n');
        for (i, input) in all.iter().enumerate() {
            let ours = match results[&(enc, "ours")].cells.get(&i) {
                Some(Cell::Timed { count, warm_ns, .. }) => Some((*count, *warm_ns)),
                _ => None,
            };
            md.push_str(&format!(
                "| {} | {} | {} |",
                input.label,
                fmt_bytes(input.text.len()),
                ours.map(|o| o.0.to_string()).unwrap_or_else(|| "?".into())
            ));
            for (k, _, _) in CRATES {
                let cell = results[&(enc, k)].cells.get(&i);
                let s = match cell {
                    Some(Cell::Timed { count, warm_ns, samples, .. }) => {
                        let mut s = fmt_ns(*warm_ns);
                        if *samples == 1 {
                            s.push_str(" (1 run)");
                        }
                        if let (Some((oc, ons)), true) = (ours, k != "ours") {
                            s.push_str(&format!(" ({})", fmt_ratio(warm_ns / ons)));
                            if *count != oc {
                                disagreements += 1;
                                s = format!("**inexact: {count}** · {s}");
                            }
                        }
                        s
                    }
                    Some(Cell::TooSlow) => "> 10 s".into(),
                    Some(Cell::Failed(why)) => format!("failed: {why}"),
                    None => "?".into(),
                };
                md.push_str(&format!(" {s} |"));
            }
            md.push('\n');
        }
        md.push('\n');
    }

    md.push_str(
        "### Median thread CPU time of the first count call on a new thread\n\n\
         Each sample runs on a thread that has counted only an unrelated short text before, so \
         state kept between calls on a thread (tiktoken's piece cache is thread-local) starts \
         empty. Inputs whose single call took 1 s or more are not repeated here (–).\n\n",
    );
    md.push_str("| input |");
    for enc in ENCODINGS {
        for (_, title, _) in CRATES {
            md.push_str(&format!(" {title} ({}) |", &enc[..enc.find('_').unwrap()]));
        }
    }
    md.push_str("\n|---|");
    for _ in 0..ENCODINGS.len() * CRATES.len() {
        md.push_str("---:|");
    }
    md.push('\n');
    for (i, input) in all.iter().enumerate() {
        md.push_str(&format!("| {} |", input.label));
        for enc in ENCODINGS {
            for (k, _, _) in CRATES {
                let s = match results[&(enc, k)].cells.get(&i) {
                    Some(Cell::Timed { fresh_ns: Some(f), .. }) => fmt_ns(*f),
                    Some(Cell::Timed { .. }) => "–".into(),
                    Some(Cell::TooSlow) => "> 10 s".into(),
                    _ => "?".into(),
                };
                md.push_str(&format!(" {s} |"));
            }
        }
        md.push('\n');
    }
    md.push('\n');

    md.push_str("### Vocabulary load time (wall clock, in a new process, median over its child processes)\n\n| crate |");
    for enc in ENCODINGS {
        md.push_str(&format!(" {enc} |"));
    }
    md.push_str("\n|---|");
    for _ in ENCODINGS {
        md.push_str("---:|");
    }
    md.push('\n');
    for (k, title, _) in CRATES {
        md.push_str(&format!("| {title} |"));
        for enc in ENCODINGS {
            let l = &results[&(enc, k)].load_ns;
            let s = l.first().map(|&ns| fmt_ns(ns)).unwrap_or_else(|| "?".into());
            md.push_str(&format!(" {s} |"));
        }
        md.push('\n');
    }
    md.push('\n');
    md.push_str(&format!(
        "Exactness: {}\n",
        if disagreements == 0 {
            "every crate gave the same count as fast_litellm on every input.".to_string()
        } else {
            format!("{disagreements} count(s) differ from fast_litellm's (marked **inexact** above).")
        }
    ));
    Report { markdown: md, disagreements }
}

const START: &str = "<!-- results:start -->";
const END: &str = "<!-- results:end -->";

/// Replaces the text between the markers, or writes a new file holding only the results.
fn write_results(path: &Path, md: &str) {
    let block = format!("{START}\n{md}{END}\n");
    let new = match std::fs::read_to_string(path) {
        Ok(old) => match (old.find(START), old.find(END)) {
            (Some(a), Some(b)) if a < b => {
                let rest = &old[b + END.len()..];
                format!("{}{}{}", &old[..a], block, rest.strip_prefix('\n').unwrap_or(rest))
            }
            _ => format!("{old}\n{block}"),
        },
        Err(_) => format!("# Token counting: fast_litellm's core and other Rust BPE crates\n\n{block}"),
    };
    std::fs::write(path, new).unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
    eprintln!("wrote {}", path.display());
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--child") {
        let idxs: Vec<usize> = args[4].split(',').map(|s| s.parse().unwrap()).collect();
        child(&args[1], &args[2], args[3].parse().unwrap(), &idxs);
        return;
    }

    let mut quick = false;
    let mut write: Option<PathBuf> = None;
    let mut dump: Option<PathBuf> = None;
    let mut it = args.iter().peekable();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--quick" => quick = true,
            "--write" => {
                let p = match it.peek() {
                    Some(p) if !p.starts_with("--") => PathBuf::from(it.next().unwrap()),
                    _ => Path::new(MANIFEST_DIR).join("../core_comparison.md"),
                };
                write = Some(p);
            }
            "--dump" => dump = Some(PathBuf::from(it.next().expect("--dump DIR"))),
            "-h" | "--help" => {
                println!("usage: core-comparison [--quick] [--write [PATH]] [--dump DIR]");
                return;
            }
            other => panic!("unknown argument {other:?} (try --help)"),
        }
    }

    let all = inputs();
    if let Some(dir) = &dump {
        std::fs::create_dir_all(dir).unwrap();
        for input in &all {
            std::fs::write(dir.join(format!("{}.txt", input.key)), &input.text).unwrap();
        }
        eprintln!("wrote {} inputs to {}", all.len(), dir.display());
    }

    // The sweep runs in rounds, the crates in a rotated order each round, so that a burst of
    // load from other work on the machine does not land on one crate only; a crate's time is the
    // median of its per-round medians.
    let (rounds, budget_ms) = if quick { (1, 150) } else { (3, 400) };
    let started = Instant::now();
    let mut per_round: BTreeMap<(&str, &str), Vec<Outcome>> = BTreeMap::new();
    for round in 0..rounds {
        for enc in ENCODINGS {
            for j in 0..CRATES.len() {
                let (k, _, _) = CRATES[(j + round) % CRATES.len()];
                // An input that was too slow (or failed) once is not tried again.
                let todo: Vec<usize> = (0..all.len())
                    .filter(|i| {
                        per_round.get(&(enc, k)).is_none_or(|done| {
                            done.iter().all(|o| matches!(o.cells.get(i), Some(Cell::Timed { .. })))
                        })
                    })
                    .collect();
                eprintln!("[{:>5.1} s] round {} {enc} / {k}", started.elapsed().as_secs_f64(), round + 1);
                let o = run_crate(enc, k, budget_ms, &todo);
                per_round.entry((enc, k)).or_default().push(o);
            }
        }
    }
    let results: BTreeMap<(&str, &str), Outcome> =
        per_round.into_iter().map(|(key, outs)| (key, merge_rounds(outs))).collect();
    eprintln!("[{:>5.1} s] done", started.elapsed().as_secs_f64());

    if let Some(dir) = &dump {
        // fast_litellm's counts, for check_with_tiktoken.py.
        let mut tsv = String::from("encoding\tinput\tcount\n");
        for enc in ENCODINGS {
            for (i, input) in all.iter().enumerate() {
                if let Some(Cell::Timed { count, .. }) = results[&(enc, "ours")].cells.get(&i) {
                    tsv.push_str(&format!("{enc}\t{}\t{count}\n", input.key));
                }
            }
        }
        std::fs::write(dir.join("counts.tsv"), tsv).unwrap();
    }

    let rep = report(&all, &results, quick, rounds, budget_ms);
    println!("{}", rep.markdown);
    if let Some(path) = write {
        write_results(&path, &rep.markdown);
    }
    if rep.disagreements > 0 {
        eprintln!("{} disagreement(s) with fast_litellm's counts", rep.disagreements);
    }
}
