//! Mutation test: the real `pycore` binary on corrupted copies of the committed cores.
//!
//! Cores are hostile input. For every mutant the process must exit with a documented code
//! (0, 1, 3, 4, 5, 6 or 7; never 70, our panic hook, nor 101, nor a signal), print nothing
//! about a panic or an internal error, and finish within [`RUN_TIMEOUT`].
//!
//! Each committed core (`testdata/*/core.zst` next to a `python*.zst`, and one of the packed
//! cores of `testdata/packed/`) is decompressed once,
//! shrunk (long all-zero page runs become "not dumped" program headers, the bytes the
//! analysis reads stay: the shrunk core must give the original's report) and then mutated:
//!
//! * `header`: random bytes of the ELF header and program header table flipped;
//! * `phdr`: one program header (or e_phoff/e_phnum) set to a boundary value;
//! * `note`: bytes of the PT_NOTE data flipped, or a note's namesz/descsz/type, or a NT_FILE
//!   count/page size/range set to a boundary value, or a NT_FILE name's NUL overwritten;
//! * `flip`: random bytes anywhere flipped;
//! * `truncate`: the file cut at a random length (often inside the headers and notes);
//! * `splice`: a range of the file copied over another;
//! * `zero`: random pages of segment data zeroed;
//! * `pointer`: 1 to 64 8-byte words that hold pointers into the core's own memory, in the
//!   memory the analysis reads, overwritten: NULL, all-ones, near a segment's end, pointing
//!   to themselves or at another pointer (cycles), misaligned, small integers, random;
//! * `integer`: 4- or 8-byte fields next to such pointers (sizes, counts, lengths) set to huge
//!   or negative values;
//! * `combined`: two of the above.
//!
//! "The memory the analysis reads" is measured, not guessed: before mutating, a calibration
//! pass zeroes each chunk of segment data in turn (256 KiB, then 16 KiB inside the chunks that
//! mattered) and keeps the chunks whose zeroing changes the report. Calibration runs are
//! checked like mutants. Inside those chunks, `pointer` and `integer` mutants favour the words
//! on pointer paths to the strings the report shows (see [`chase`]).
//!
//! Bounds, so CI stays fast: at most [`DEFAULT_MUTANTS`] mutants per core or
//! [`DEFAULT_BUDGET`] in all (calibration included), whichever comes first; each run is
//! killed after [`RUN_TIMEOUT`]. The PRNG is a fixed-seed xorshift, so CI runs the same
//! mutants every time. Environment: `PYCORE_MUTATION_SEED` (another seed, decimal or 0x-hex),
//! `PYCORE_MUTATION_COUNT`, `PYCORE_MUTATION_SECONDS`, and `PYCORE_MUTATION_ONLY=N` to rerun
//! mutant N alone. A failing mutant is kept under `target/tmp/mutation-failures/`, and the
//! failure message says how to rerun it.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// Mutants per core unless `PYCORE_MUTATION_COUNT` says otherwise.
const DEFAULT_MUTANTS: usize = 200;
/// Wall-clock budget for the whole test (calibration and mutants) unless
/// `PYCORE_MUTATION_SECONDS` says otherwise. A run already started may finish past it.
const DEFAULT_BUDGET: Duration = Duration::from_secs(60);
/// One pycore run; a mutant that takes longer is a hang.
const RUN_TIMEOUT: Duration = Duration::from_secs(10);
const DEFAULT_SEED: u64 = 0x7079_636f_7265_2d6d; // "pycore-m"
/// Exit codes pycore documents for `analyze` (docs/exit-codes.md), 2 (usage) excepted.
const ALLOWED_CODES: [i32; 7] = [0, 1, 3, 4, 5, 6, 7];
const PAGE: usize = 4096;
const PT_LOAD: u32 = 1;
const PT_NOTE: u32 = 4;
const NT_FILE: u32 = 0x4649_4c45;

// ---------------------------------------------------------------------------------------------
// PRNG

/// xorshift64*, seeded through splitmix64 so that neighbouring seeds give unrelated streams.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        let mut z = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        Rng((z ^ (z >> 31)) | 1)
    }

    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform in `0..n` (n > 0).
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + self.below(hi - lo)
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

// ---------------------------------------------------------------------------------------------
// ELF core layout (64-bit little-endian only, as pycore)

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes(b[at..at + 2].try_into().unwrap())
}
fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
}
fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
}
fn put_u32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_le_bytes());
}
fn put_u64(b: &mut [u8], at: usize, v: u64) {
    b[at..at + 8].copy_from_slice(&v.to_le_bytes());
}

#[derive(Clone, Copy, Debug)]
struct Phdr {
    p_type: u32,
    flags: u32,
    offset: u64,
    vaddr: u64,
    filesz: u64,
    memsz: u64,
    align: u64,
}

fn program_headers(core: &[u8]) -> Vec<Phdr> {
    assert!(core.len() >= 64 && &core[..4] == b"\x7fELF" && core[4] == 2 && core[5] == 1);
    assert_eq!(u16_at(core, 54), 56, "e_phentsize");
    let (phoff, phnum) = (u64_at(core, 32) as usize, u16_at(core, 56) as usize);
    assert_ne!(
        phnum, 0xffff,
        "extended program header numbering is not handled here"
    );
    (0..phnum)
        .map(|i| {
            let at = phoff + i * 56;
            Phdr {
                p_type: u32_at(core, at),
                flags: u32_at(core, at + 4),
                offset: u64_at(core, at + 8),
                vaddr: u64_at(core, at + 16),
                filesz: u64_at(core, at + 32),
                memsz: u64_at(core, at + 40),
                align: u64_at(core, at + 48),
            }
        })
        .collect()
}

/// The core with every run of at least 16 all-zero pages of a PT_LOAD turned into a PT_LOAD
/// with p_filesz = 0 (described, not dumped), section headers dropped. Same scheme as
/// fuzz/shrink_core.py without its --minimize step.
fn shrink(core: &[u8]) -> Vec<u8> {
    const MIN_ZERO_PAGES: usize = 16;
    // (phdr template, bytes): bytes empty for "not dumped".
    let mut out: Vec<(Phdr, &[u8])> = Vec::new();
    for ph in program_headers(core) {
        if ph.p_type != PT_LOAD {
            let start = (ph.offset as usize).min(core.len());
            let end = (ph.offset + ph.filesz).min(core.len() as u64) as usize;
            out.push((ph, &core[start..end]));
            continue;
        }
        let available = (core.len() as u64).saturating_sub(ph.offset);
        let filesz = ph.filesz.min(ph.memsz).min(available) as usize;
        let body = &core[ph.offset as usize..ph.offset as usize + filesz];
        let zero: Vec<bool> = body
            .chunks(PAGE)
            .map(|p| p.iter().all(|&b| b == 0))
            .collect();
        let mut page = 0;
        let mut piece_start = 0;
        let mut pieces: Vec<(usize, usize, bool)> = Vec::new();
        while page < zero.len() {
            let mut end = page;
            while end < zero.len() && zero[end] == zero[page] {
                end += 1;
            }
            let drop = zero[page] && end - page >= MIN_ZERO_PAGES;
            let (from, to) = (page * PAGE, (end * PAGE).min(filesz));
            if drop {
                if piece_start < from {
                    pieces.push((piece_start, from, true));
                }
                pieces.push((from, to, false));
                piece_start = to;
            }
            page = end;
        }
        if piece_start < filesz || pieces.is_empty() {
            pieces.push((piece_start, filesz, true));
        }
        for (from, to, keep) in pieces {
            let piece = Phdr {
                vaddr: ph.vaddr + from as u64,
                memsz: (to - from) as u64,
                ..ph
            };
            out.push((piece, if keep { &body[from..to] } else { &[] }));
        }
        if ph.memsz > filesz as u64 {
            let tail = Phdr {
                vaddr: ph.vaddr + filesz as u64,
                memsz: ph.memsz - filesz as u64,
                ..ph
            };
            out.push((tail, &[]));
        }
    }
    let mut offset = 64 + 56 * out.len();
    let mut header = core[..64].to_vec();
    put_u64(&mut header, 32, 64); // e_phoff
    put_u64(&mut header, 40, 0); // e_shoff
    header[52..64].copy_from_slice(&[64, 0, 56, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    header[56..58].copy_from_slice(&(out.len() as u16).to_le_bytes());
    let mut table = Vec::with_capacity(56 * out.len());
    for (ph, bytes) in &out {
        let file_offset = if bytes.is_empty() { 0 } else { offset as u64 };
        table.extend_from_slice(&ph.p_type.to_le_bytes());
        table.extend_from_slice(&ph.flags.to_le_bytes());
        table.extend_from_slice(&file_offset.to_le_bytes());
        table.extend_from_slice(&ph.vaddr.to_le_bytes());
        table.extend_from_slice(&0u64.to_le_bytes());
        table.extend_from_slice(&(bytes.len() as u64).to_le_bytes());
        table.extend_from_slice(&ph.memsz.to_le_bytes());
        table.extend_from_slice(&ph.align.to_le_bytes());
        offset += bytes.len();
    }
    let mut shrunk = header;
    shrunk.extend_from_slice(&table);
    for (_, bytes) in &out {
        shrunk.extend_from_slice(bytes);
    }
    shrunk
}

/// What the mutators need to know about a (shrunk) core.
struct Layout {
    phoff: usize,
    phnum: usize,
    /// File ranges of PT_NOTE data.
    notes: Vec<(usize, usize)>,
    /// Notes inside them: (offset of the 12-byte header, offset of desc, desc length, type).
    note_headers: Vec<(usize, usize, usize, u32)>,
    /// Dumped PT_LOAD data: (file offset, vaddr, length).
    loads: Vec<(usize, u64, usize)>,
    /// Every PT_LOAD's [vaddr, vaddr + memsz).
    mapped: Vec<(u64, u64)>,
}

impl Layout {
    fn of(core: &[u8]) -> Layout {
        let phdrs = program_headers(core);
        let mut layout = Layout {
            phoff: u64_at(core, 32) as usize,
            phnum: phdrs.len(),
            notes: Vec::new(),
            note_headers: Vec::new(),
            loads: Vec::new(),
            mapped: Vec::new(),
        };
        for ph in &phdrs {
            match ph.p_type {
                PT_NOTE => {
                    let (start, len) = (ph.offset as usize, ph.filesz as usize);
                    layout.notes.push((start, len));
                    let mut at = start;
                    while at + 12 <= start + len {
                        let namesz = u32_at(core, at) as usize;
                        let descsz = u32_at(core, at + 4) as usize;
                        let kind = u32_at(core, at + 8);
                        let desc = at + 12 + namesz.div_ceil(4) * 4;
                        layout.note_headers.push((at, desc, descsz, kind));
                        at = desc + descsz.div_ceil(4) * 4;
                    }
                }
                PT_LOAD => {
                    layout
                        .mapped
                        .push((ph.vaddr, ph.vaddr.saturating_add(ph.memsz)));
                    if ph.filesz > 0 {
                        layout
                            .loads
                            .push((ph.offset as usize, ph.vaddr, ph.filesz as usize));
                    }
                }
                _ => {}
            }
        }
        layout
    }

    /// Whether `value` is an address inside some PT_LOAD (dumped or not).
    fn is_address(&self, value: u64) -> bool {
        value >= 0x1000 && self.mapped.iter().any(|&(s, e)| value >= s && value < e)
    }

    /// The dumped segment holding file offset `at`: (file offset, vaddr, length).
    fn load_at(&self, at: usize) -> Option<(usize, u64, usize)> {
        self.loads
            .iter()
            .copied()
            .find(|&(off, _, len)| at >= off && at < off + len)
    }

    fn vaddr_of(&self, at: usize) -> Option<u64> {
        self.load_at(at)
            .map(|(off, vaddr, _)| vaddr + (at - off) as u64)
    }
}

// ---------------------------------------------------------------------------------------------
// Running pycore

#[derive(Clone, Debug, PartialEq, Eq)]
enum Outcome {
    Exited(i32),
    Signalled,
    TimedOut,
}

struct Run {
    outcome: Outcome,
    stdout: Vec<u8>,
    stderr: String,
    elapsed: Duration,
}

const FORMATS: [&str; 4] = ["text", "json", "table", "markdown"];

fn run_pycore(dir: &Path, core: &Path, python: &Path, format: &str) -> Run {
    let (out_path, err_path) = (dir.join("stdout"), dir.join("stderr"));
    let started = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_pycore"))
        .arg("analyze")
        .arg(core)
        .arg("--python")
        .arg(python)
        .args(["--no-source", "--format", format])
        // Markdown runs also unwind every thread's native stack, and JSON and markdown runs
        // read every frame's variables: the unwinder and the repr engine meet the mutants too.
        .args(match format {
            "markdown" => &["--native-all", "--locals"][..],
            "json" => &["--locals"][..],
            _ => &[],
        })
        .env("RUST_BACKTRACE", "1")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(File::create(&out_path).expect("stdout file"))
        .stderr(File::create(&err_path).expect("stderr file"))
        .spawn()
        .expect("spawn pycore");
    let outcome = loop {
        if let Some(status) = child.try_wait().expect("wait for pycore") {
            break match status.code() {
                Some(code) => Outcome::Exited(code),
                None => Outcome::Signalled,
            };
        }
        if started.elapsed() > RUN_TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            break Outcome::TimedOut;
        }
        thread::sleep(Duration::from_millis(2));
    };
    Run {
        outcome,
        stdout: fs::read(&out_path).unwrap_or_default(),
        stderr: String::from_utf8_lossy(&fs::read(&err_path).unwrap_or_default()).into_owned(),
        elapsed: started.elapsed(),
    }
}

/// Why a run breaks the rules, if it does.
fn violation(run: &Run) -> Option<String> {
    let lowered = run.stderr.to_lowercase();
    match run.outcome {
        Outcome::TimedOut => Some(format!("did not finish within {RUN_TIMEOUT:?} (killed)")),
        Outcome::Signalled => Some("killed by a signal".into()),
        Outcome::Exited(code) if !ALLOWED_CODES.contains(&code) => {
            Some(format!("exit code {code} (allowed: {ALLOWED_CODES:?})"))
        }
        _ if lowered.contains("panicked") || lowered.contains("internal error") => {
            Some("standard error reports a panic".into())
        }
        _ => None,
    }
}

// ---------------------------------------------------------------------------------------------
// Mutations

/// Boundary values for 64-bit fields.
const WORDS: [u64; 12] = [
    0,
    1,
    7,
    0xff,
    0xffff,
    0x7fff_ffff,
    0xffff_ffff,
    0x1_0000_0000,
    0x7fff_ffff_ffff_ffff,
    0x8000_0000_0000_0000,
    u64::MAX - 7,
    u64::MAX,
];
/// Boundary values for 32-bit fields.
const INTS: [u32; 9] = [
    0,
    1,
    3,
    0x7f,
    0xffff,
    0x7fff_ffff,
    0x8000_0000,
    0xffff_fff0,
    u32::MAX,
];

struct Targets {
    /// File offsets of 8-aligned pointer-looking words in the chunks the analysis reads.
    pointers: Vec<usize>,
    /// The subset of `pointers` on a pointer path to the report's strings (see [`chase`]).
    chased: Vec<usize>,
    /// File ranges whose zeroing changed the report.
    sensitive: Vec<(usize, usize)>,
}

impl Targets {
    /// A pointer word to corrupt: most often one on a path to the report's strings.
    fn pick(&self, rng: &mut Rng) -> Option<usize> {
        if !self.chased.is_empty() && rng.chance(75) {
            Some(*rng.pick(&self.chased))
        } else if !self.pointers.is_empty() {
            Some(*rng.pick(&self.pointers))
        } else {
            None
        }
    }
}

/// The pointer words (file offsets, from `pointers`) that lead to the report's strings: level
/// 1 points at most 64 bytes before a string's bytes (a str object's header precedes its
/// text, or points right at it), level 2 at most 256 bytes before a level-1 word (the object
/// holding that field: a frame's or function's code object, a dict entry...). A heuristic,
/// version-agnostic picture of what the stack walk dereferences, and an imprecise one: on the
/// example core, overwriting 16 such words at once changed the report about 1 time in 7, 64
/// words 3 times in 4, which is why `pointer` mutants corrupt up to 64 words at once.
fn chase(core: &[u8], layout: &Layout, pointers: &[usize], strings: &[Vec<u8>]) -> Vec<usize> {
    // Where the strings' bytes are, found through a 4-byte prefix index.
    let mut by_prefix: BTreeMap<[u8; 4], Vec<&[u8]>> = BTreeMap::new();
    for s in strings.iter().filter(|s| s.len() >= 4) {
        by_prefix
            .entry(s[..4].try_into().unwrap())
            .or_default()
            .push(s);
    }
    let mut targets: Vec<u64> = Vec::new();
    for &(off, vaddr, n) in &layout.loads {
        let bytes = &core[off..off + n];
        for i in 0..n.saturating_sub(3) {
            if let Some(candidates) =
                by_prefix.get(&[bytes[i], bytes[i + 1], bytes[i + 2], bytes[i + 3]])
            {
                if candidates.iter().any(|s| bytes[i..].starts_with(s)) {
                    targets.push(vaddr + i as u64);
                }
            }
        }
    }
    let words: Vec<(usize, u64, u64)> = pointers
        .iter()
        .map(|&at| (at, layout.vaddr_of(at).unwrap(), u64_at(core, at)))
        .collect();
    let mut chosen = std::collections::BTreeSet::new();
    for window in [64u64, 256] {
        targets.sort_unstable();
        targets.dedup();
        let mut next = Vec::new();
        for &(at, here, value) in &words {
            // The first target at or after `value` must be within `window` of it.
            let i = targets.partition_point(|&t| t < value);
            if targets.get(i).is_some_and(|&t| t - value <= window) && chosen.insert(at) {
                next.push(here);
            }
        }
        if next.is_empty() {
            break;
        }
        targets = next;
    }
    chosen.into_iter().collect()
}

/// Strings of a JSON report that the analysis read from the core: thread, function and file
/// names.
fn report_strings(json: &[u8]) -> Vec<Vec<u8>> {
    let doc: serde_json::Value = serde_json::from_slice(json).expect("the JSON report parses");
    let mut strings = Vec::new();
    for thread in doc["threads"].as_array().into_iter().flatten() {
        strings.extend(thread["name"].as_str().map(str::to_owned));
        for frame in thread["frames"].as_array().into_iter().flatten() {
            for key in ["function", "qualname", "file"] {
                strings.extend(frame[key].as_str().map(str::to_owned));
            }
        }
    }
    strings.sort();
    strings.dedup();
    strings.into_iter().map(String::into_bytes).collect()
}

fn flip_bytes(rng: &mut Rng, data: &mut [u8], from: usize, to: usize, n: usize, log: &mut String) {
    if from >= to {
        return;
    }
    for _ in 0..n {
        let at = rng.range(from, to);
        let old = data[at];
        data[at] = match rng.below(3) {
            0 => old ^ (1 << rng.below(8)),
            1 => rng.next() as u8,
            _ => *rng.pick(&[0u8, 0x7f, 0x80, 0xff]),
        };
        let _ = write!(log, " {at:#x}:{old:#04x}->{:#04x}", data[at]);
    }
}

/// Apply one mutation of `kind` to `data`; returns a description that, with the seed and
/// index, identifies it.
fn mutate(
    kind: &str,
    rng: &mut Rng,
    data: &mut Vec<u8>,
    layout: &Layout,
    targets: &Targets,
) -> String {
    let mut log = String::new();
    let len = data.len();
    let headers_end = (layout.phoff + 56 * layout.phnum).min(len);
    match kind {
        "header" => {
            let n = rng.range(1, 9);
            flip_bytes(rng, data, 0, headers_end, n, &mut log);
        }
        "phdr" => {
            if rng.chance(20) {
                // e_phoff or e_phnum.
                if rng.chance(50) {
                    let v = *rng.pick(&WORDS);
                    put_u64(data, 32, v);
                    let _ = write!(log, " e_phoff={v:#x}");
                } else {
                    let v = *rng.pick(&[0u16, 1, 0xfffe, 0xffff, layout.phnum as u16 + 1]);
                    data[56..58].copy_from_slice(&v.to_le_bytes());
                    let _ = write!(log, " e_phnum={v:#x}");
                }
            } else {
                let i = rng.below(layout.phnum);
                let at = layout.phoff + 56 * i;
                let (field, name) = *rng.pick(&[
                    (8, "p_offset"),
                    (16, "p_vaddr"),
                    (32, "p_filesz"),
                    (40, "p_memsz"),
                ]);
                let old = u64_at(data, at + field);
                let v = match rng.below(4) {
                    0 => *rng.pick(&WORDS),
                    1 => old.wrapping_add(rng.range(1, 1 << 20) as u64),
                    2 => old.wrapping_sub(rng.range(1, 1 << 20) as u64),
                    _ => len as u64 + rng.below(PAGE) as u64,
                };
                put_u64(data, at + field, v);
                let _ = write!(log, " phdr[{i}].{name}: {old:#x}->{v:#x}");
                if rng.chance(30) {
                    put_u32(data, at, *rng.pick(&[0u32, PT_LOAD, PT_NOTE, 0x6474_e551]));
                    let _ = write!(log, " p_type={}", u32_at(data, at));
                }
            }
        }
        "note" => {
            let structured = !layout.note_headers.is_empty() && rng.chance(60);
            if structured {
                let files: Vec<_> = layout
                    .note_headers
                    .iter()
                    .filter(|n| n.3 == NT_FILE)
                    .copied()
                    .collect();
                if !files.is_empty() && rng.chance(40) {
                    // NT_FILE: count, page size, then count * (start, end, offset), names.
                    let (_, desc, desc_len, _) = *rng.pick(&files);
                    let count = u64_at(data, desc).min(desc_len as u64) as usize;
                    let field = match rng.below(3) {
                        0 => desc,
                        1 => desc + 8,
                        _ => desc + 16 + 8 * rng.below((3 * count).clamp(1, (desc_len / 8).max(1))),
                    };
                    if field + 8 <= desc + desc_len {
                        let v = *rng.pick(&WORDS);
                        put_u64(data, field, v);
                        let _ = write!(log, " NT_FILE word at {field:#x} = {v:#x}");
                    }
                    if rng.chance(30) {
                        // Cut a file name's terminating NUL.
                        let names = desc + 16 + 24 * count.min(desc_len / 24);
                        if names < desc + desc_len {
                            if let Some(nul) =
                                data[names..desc + desc_len].iter().position(|&b| b == 0)
                            {
                                data[names + nul] = b'/';
                                let _ =
                                    write!(log, " NT_FILE name NUL at {:#x} -> '/'", names + nul);
                            }
                        }
                    }
                } else {
                    let (at, _, _, kind) = *rng.pick(&layout.note_headers);
                    let (field, name) = *rng.pick(&[(0, "namesz"), (4, "descsz"), (8, "type")]);
                    let old = u32_at(data, at + field);
                    let v = if rng.chance(50) {
                        *rng.pick(&INTS)
                    } else {
                        old.wrapping_add(rng.range(1, 64) as u32).wrapping_sub(32)
                    };
                    put_u32(data, at + field, v);
                    let _ = write!(
                        log,
                        " note at {at:#x} (type {kind:#x}) {name}: {old:#x}->{v:#x}"
                    );
                }
            } else if let Some(&(start, n)) = layout.notes.first() {
                let count = rng.range(1, 17);
                flip_bytes(rng, data, start, (start + n).min(len), count, &mut log);
            }
        }
        "flip" => {
            let n = rng.range(1, 17);
            flip_bytes(rng, data, 0, len, n, &mut log);
        }
        "truncate" => {
            let notes_end = layout
                .notes
                .iter()
                .map(|&(s, n)| s + n)
                .max()
                .unwrap_or(headers_end);
            let cut = if rng.chance(40) {
                rng.below(notes_end.min(len) + 1)
            } else {
                rng.below(len)
            };
            data.truncate(cut);
            let _ = write!(log, " at {cut:#x} of {len:#x}");
        }
        "splice" => {
            let n = rng.range(8, 4097).min(len / 2);
            let from = rng.below(len - n);
            // Often into the headers/notes or the memory the analysis reads.
            let to = if rng.chance(50) && !targets.sensitive.is_empty() {
                let &(s, e) = rng.pick(&targets.sensitive);
                rng.range(s, e)
            } else {
                rng.below(len - n)
            }
            .min(len - n);
            data.copy_within(from..from + n, to);
            let _ = write!(log, " {n:#x} bytes from {from:#x} to {to:#x}");
        }
        "zero" => {
            for _ in 0..rng.range(1, 5) {
                let (s, e) = if !targets.sensitive.is_empty() && rng.chance(70) {
                    *rng.pick(&targets.sensitive)
                } else {
                    let &(off, _, n) = rng.pick(&layout.loads);
                    (off, off + n)
                };
                let page_len = rng.pick(&[64usize, 512, PAGE]).to_owned();
                let at = rng.range(s, e);
                let end = (at + page_len).min(e);
                data[at..end].fill(0);
                let _ = write!(log, " [{at:#x}, {end:#x})");
            }
        }
        "pointer" => {
            // 1, 2, 4, ... 64 words: see `chase` for why so many.
            let words = 1 << rng.below(7);
            for n in 0..words {
                let Some(at) = targets.pick(rng) else {
                    break;
                };
                let old = u64_at(data, at);
                let (seg_off, seg_vaddr, seg_len) = layout.load_at(at).unwrap();
                let here = layout.vaddr_of(at).unwrap();
                let (v, how) = match rng.below(10) {
                    0 => (0, "NULL"),
                    1 => (u64::MAX, "all ones"),
                    2 => (here, "itself"),
                    3 => {
                        // Another pointer's address: cycles and wrong types.
                        let other = *rng.pick(&targets.pointers);
                        (
                            layout
                                .vaddr_of(other)
                                .unwrap()
                                .wrapping_sub(8 * rng.below(4) as u64),
                            "another pointer",
                        )
                    }
                    4 => (old.wrapping_add(rng.range(1, 8) as u64), "misaligned"),
                    5 => (old ^ (1 << rng.range(3, 48)), "bit flipped"),
                    6 => {
                        // The last bytes of a segment: reads run off its end.
                        let &(_, vaddr, n) = rng.pick(&layout.loads);
                        (vaddr + n as u64 - 8 * rng.range(1, 4) as u64, "segment end")
                    }
                    7 => (
                        seg_vaddr + 8 * rng.below(seg_len / 8) as u64,
                        "same segment",
                    ),
                    8 => (rng.below(0x1000) as u64, "small integer"),
                    _ => (rng.next(), "random"),
                };
                put_u64(data, at, v);
                if n < 4 {
                    let _ = write!(
                        log,
                        " {at:#x} (vaddr {here:#x}, segment at {seg_off:#x}): {old:#x}->{v:#x} ({how})"
                    );
                } else if n == words - 1 {
                    let _ = write!(log, " ... ({} more words)", words - 4);
                }
            }
        }
        "integer" => {
            for _ in 0..1 << rng.below(5) {
                let Some(base) = targets.pick(rng) else {
                    break;
                };
                let delta = 8 * rng.range(1, 9) as isize * if rng.chance(50) { 1 } else { -1 };
                let at = base as isize + delta + if rng.chance(30) { 4 } else { 0 };
                let Some((off, _, n)) = layout.load_at(at.max(0) as usize) else {
                    continue;
                };
                let at = at as usize;
                if rng.chance(50) && at + 4 <= off + n {
                    let old = u32_at(data, at);
                    let v = *rng.pick(&INTS);
                    put_u32(data, at, v);
                    let _ = write!(log, " u32 at {at:#x}: {old:#x}->{v:#x}");
                } else if at + 8 <= off + n {
                    let old = u64_at(data, at);
                    let v = *rng.pick(&WORDS);
                    put_u64(data, at, v);
                    let _ = write!(log, " u64 at {at:#x}: {old:#x}->{v:#x}");
                }
            }
        }
        other => unreachable!("mutation {other}"),
    }
    log
}

/// Mutation kinds with weights: pointer corruption, the most valuable, gets the most.
const KINDS: [(&str, usize); 9] = [
    ("header", 6),
    ("phdr", 8),
    ("note", 12),
    ("flip", 6),
    ("truncate", 8),
    ("splice", 8),
    ("zero", 8),
    ("pointer", 32),
    ("integer", 12),
];

fn pick_kind(rng: &mut Rng) -> &'static str {
    let total: usize = KINDS.iter().map(|k| k.1).sum();
    let mut n = rng.below(total);
    for (kind, weight) in KINDS {
        if n < weight {
            return kind;
        }
        n -= weight;
    }
    unreachable!()
}

// ---------------------------------------------------------------------------------------------
// The test

fn env_number(name: &str) -> Option<u64> {
    let text = std::env::var(name).ok()?;
    let text = text.trim();
    let parsed = match text.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => text.parse(),
    };
    Some(parsed.unwrap_or_else(|_| panic!("{name}={text} is not a number")))
}

/// Committed cores: `testdata/<name>/core.zst` with the interpreter as `python*.zst` beside,
/// and one packed core.
fn committed_cores() -> Vec<(String, PathBuf, PathBuf)> {
    let testdata = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata");
    let mut cores = Vec::new();
    for entry in fs::read_dir(&testdata).expect("testdata/") {
        let dir = entry.expect("testdata entry").path();
        let core = dir.join("core.zst");
        let python = fs::read_dir(&dir)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
            .find(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with("python") && n.ends_with(".zst"))
            });
        if let (true, Some(python)) = (core.is_file(), python) {
            let name = dir.file_name().unwrap().to_string_lossy().into_owned();
            cores.push((name, core, python));
        }
    }
    // A packed core (tests/pack.rs) is as untrusted as any: it is analysed from itself alone, so
    // its own path stands in for the interpreter (used only if a mutant loses the packed note).
    let packed = testdata.join("packed/3.13-shared/core.zst");
    if packed.is_file() {
        cores.push(("packed-3.13".to_string(), packed.clone(), packed));
    }
    cores.sort();
    cores
}

fn decompress(path: &Path) -> Vec<u8> {
    pycore::open_core(path)
        .unwrap_or_else(|e| panic!("decompressing {}: {e}", path.display()))
        .bytes()
        .to_vec()
}

fn normalized(stdout: &[u8], path: &Path) -> Vec<u8> {
    // Reports name the core's path; mutants live at other paths than the baseline.
    let name = path.file_name().unwrap().to_string_lossy();
    String::from_utf8_lossy(stdout)
        .replace(&path.display().to_string(), "CORE")
        .replace(&*name, "CORE")
        .into_bytes()
}

/// Failing mutants kept on disk per run (each is a few MB); the others can be rerun.
const MAX_KEPT: usize = 10;

struct Failure {
    what: String,
    /// Where the mutant was kept, unless [`MAX_KEPT`] were already.
    saved: Option<PathBuf>,
    run_again: String,
    stderr: String,
}

#[derive(Default)]
struct Tally {
    runs: usize,
    by_code: BTreeMap<String, usize>,
    /// kind -> (mutants, reports that differ from the unmutated core's)
    by_kind: BTreeMap<String, (usize, usize)>,
    slowest: Duration,
}

struct Session {
    dir: PathBuf,
    failures_dir: PathBuf,
    failures: Vec<Failure>,
    tally: Tally,
    seed: u64,
    /// The current core's interpreter, and its exit code and report in each of [`FORMATS`].
    python: PathBuf,
    baseline_outcome: Outcome,
    baselines: Vec<Vec<u8>>,
}

impl Session {
    /// Run pycore on `data` (report format `FORMATS[format]`), check the rules, count;
    /// whether the report differs from the unmutated core's.
    fn check(&mut self, label: &str, kind: &str, data: &[u8], format: usize, rerun: &str) -> bool {
        let path = self.dir.join("mutant.core");
        fs::write(&path, data).expect("write mutant");
        let run = run_pycore(&self.dir, &path, &self.python, FORMATS[format]);
        let code = match run.outcome {
            Outcome::Exited(code) => code.to_string(),
            Outcome::Signalled => "signal".into(),
            Outcome::TimedOut => "timeout".into(),
        };
        self.tally.runs += 1;
        *self.tally.by_code.entry(code).or_default() += 1;
        self.tally.slowest = self.tally.slowest.max(run.elapsed);
        let changed = run.outcome != self.baseline_outcome
            || normalized(&run.stdout, &path) != self.baselines[format];
        let entry = self.tally.by_kind.entry(kind.to_string()).or_default();
        entry.0 += 1;
        entry.1 += usize::from(changed);
        if let Some(why) = violation(&run) {
            let saved = (self.failures.len() < MAX_KEPT).then(|| {
                fs::create_dir_all(&self.failures_dir).expect("failures dir");
                let saved = self
                    .failures_dir
                    .join(format!("{}.core", label.replace([' ', '/', '#'], "_")));
                fs::write(&saved, data).expect("save the failing mutant");
                let _ = fs::write(
                    saved.with_extension("txt"),
                    format!("{}\n{rerun}\n", run.stderr),
                );
                saved
            });
            self.failures.push(Failure {
                what: format!("{label} --format {}: {why}", FORMATS[format]),
                saved,
                run_again: rerun.to_string(),
                stderr: run
                    .stderr
                    .lines()
                    .take(5)
                    .collect::<Vec<_>>()
                    .join("\n      "),
            });
        }
        changed
    }
}

#[test]
fn corrupted_cores_never_crash_or_hang_pycore() {
    let started = Instant::now();
    let seed = env_number("PYCORE_MUTATION_SEED").unwrap_or(DEFAULT_SEED);
    let count = env_number("PYCORE_MUTATION_COUNT").map_or(DEFAULT_MUTANTS, |n| n as usize);
    let budget = env_number("PYCORE_MUTATION_SECONDS").map_or(DEFAULT_BUDGET, Duration::from_secs);
    let only = env_number("PYCORE_MUTATION_ONLY").map(|n| n as usize);
    let cores = committed_cores();
    assert!(
        !cores.is_empty(),
        "no testdata/*/core.zst with a python*.zst beside it"
    );

    let dir = std::env::temp_dir().join(format!("pycore-mutation-{}", std::process::id()));
    fs::create_dir_all(&dir).expect("temp dir");
    let mut session = Session {
        dir: dir.clone(),
        failures_dir: Path::new(env!("CARGO_TARGET_TMPDIR")).join("mutation-failures"),
        failures: Vec::new(),
        tally: Tally::default(),
        seed,
        python: PathBuf::new(),
        baseline_outcome: Outcome::Exited(0),
        baselines: Vec::new(),
    };
    let mut calibration_runs = 0;
    let mut mutants_run = 0;
    let mut stopped_by_budget = false;

    for (name, core_zst, python_zst) in &cores {
        let python = dir.join(format!("{name}-python"));
        fs::write(&python, decompress(python_zst)).expect("write python");
        let original = decompress(core_zst);
        let core = shrink(&original);
        let layout = Layout::of(&core);

        // The shrunk core must give the original's report, in every format.
        let original_path = dir.join("original.core");
        fs::write(&original_path, &original).expect("write core");
        let shrunk_path = dir.join("shrunk.core");
        fs::write(&shrunk_path, &core).expect("write core");
        let mut baselines = Vec::new();
        let mut outcome = None;
        for format in FORMATS {
            let full = run_pycore(&dir, &original_path, &python, format);
            assert!(
                matches!(full.outcome, Outcome::Exited(0 | 1)),
                "{name}: pycore on the committed core: {:?} {}",
                full.outcome,
                full.stderr
            );
            let shrunk = run_pycore(&dir, &shrunk_path, &python, format);
            let full_report = normalized(&full.stdout, &original_path);
            assert!(
                shrunk.outcome == full.outcome
                    && normalized(&shrunk.stdout, &shrunk_path) == full_report,
                "{name}: shrinking the core changed its {format} report ({:?}: {})",
                shrunk.outcome,
                shrunk.stderr
            );
            outcome = Some(full.outcome);
            baselines.push(full_report);
        }
        let _ = fs::remove_file(&original_path);
        session.python = python.clone();
        session.baseline_outcome = outcome.expect("baselines ran");
        session.baselines = baselines;
        println!(
            "{name}: core {} bytes, shrunk to {} ({} program headers)",
            original.len(),
            core.len(),
            layout.phnum
        );
        drop(original);

        // Calibration: which chunks of segment data does the analysis read?
        let mut targets = Targets {
            pointers: Vec::new(),
            chased: Vec::new(),
            sensitive: Vec::new(),
        };
        // Deterministic (no time limit), so that PYCORE_MUTATION_ONLY reproduces mutants exactly.
        {
            let mut coarse = Vec::new();
            for &(off, _, n) in &layout.loads {
                let mut at = off;
                while at < off + n {
                    coarse.push((at, (at + (256 << 10)).min(off + n)));
                    at += 256 << 10;
                }
            }
            let zeroed = |range: (usize, usize)| {
                let mut data = core.clone();
                data[range.0..range.1].fill(0);
                data
            };
            const CALIBRATION: &str = "(calibration: it runs first, whatever the seed)";
            for range in coarse {
                let label = format!("{name} calibration zero [{:#x}, {:#x})", range.0, range.1);
                calibration_runs += 1;
                if !session.check(&label, "zero (calibration)", &zeroed(range), 1, CALIBRATION) {
                    continue;
                }
                let mut at = range.0;
                while at < range.1 {
                    let fine = (at, (at + (16 << 10)).min(range.1));
                    let label = format!("{name} calibration zero [{:#x}, {:#x})", fine.0, fine.1);
                    calibration_runs += 1;
                    if session.check(&label, "zero (calibration)", &zeroed(fine), 1, CALIBRATION) {
                        targets.sensitive.push(fine);
                    }
                    at = fine.1;
                }
            }
        }
        for &(s, e) in &targets.sensitive {
            let first = s + ((8 - (layout.vaddr_of(s).unwrap() % 8) as usize) % 8);
            targets.pointers.extend(
                (first..e.saturating_sub(7))
                    .step_by(8)
                    .filter(|&at| layout.is_address(u64_at(&core, at))),
            );
        }
        let strings = report_strings(&session.baselines[1]);
        targets.chased = chase(&core, &layout, &targets.pointers, &strings);
        println!(
            "{name}: calibration: {} of the segment data's 16 KiB chunks change the report when zeroed; {} pointer-like words in them, {} on paths to the report's {} strings",
            targets.sensitive.len(),
            targets.pointers.len(),
            targets.chased.len(),
            strings.len()
        );

        // Mutants.
        for index in 0..count {
            if only.is_some_and(|n| n != index) {
                continue;
            }
            if started.elapsed() > budget {
                stopped_by_budget = true;
                break;
            }
            let mut rng = Rng::new(seed ^ (index as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15));
            let mut data = core.clone();
            let mut kinds = vec![pick_kind(&mut rng)];
            if rng.chance(15) {
                kinds.push(pick_kind(&mut rng));
                // Offsets come from the unmutated layout: cut the file last.
                kinds.sort_by_key(|&k| k == "truncate");
            }
            let mut description = String::new();
            for kind in &kinds {
                let log = mutate(kind, &mut rng, &mut data, &layout, &targets);
                let _ = write!(description, "[{kind}:{log}]");
            }
            let format_index = rng.below(FORMATS.len());
            let label = format!("{name} seed {seed:#x} mutant #{index}");
            let rerun = format!(
                "PYCORE_MUTATION_SEED={seed:#x} PYCORE_MUTATION_ONLY={index} cargo test --test mutation -- --nocapture   # {description}"
            );
            let kind = kinds.join("+");
            let kind = if kinds.len() > 1 {
                "combined"
            } else {
                kind.as_str()
            };
            session.check(&label, kind, &data, format_index, &rerun);
            mutants_run += 1;
        }
        if stopped_by_budget {
            break;
        }
    }
    let _ = fs::remove_dir_all(&dir);

    // Summary.
    let tally = &session.tally;
    println!(
        "seed {:#x}: {mutants_run} mutants and {calibration_runs} calibration runs of {} core(s) in {:.1?}{}; slowest run {:.2?}",
        session.seed,
        cores.len(),
        started.elapsed(),
        if stopped_by_budget { " (time budget reached)" } else { "" },
        tally.slowest
    );
    println!("exit codes: {:?}", tally.by_code);
    for (kind, (n, changed)) in &tally.by_kind {
        println!("  {kind:<20} {n:>4} runs, {changed:>4} changed the report");
    }
    if !session.failures.is_empty() {
        let mut message = format!(
            "{} of {} runs broke the rules:\n",
            session.failures.len(),
            tally.runs
        );
        for f in &session.failures {
            let _ = writeln!(
                message,
                "  {}\n    mutant {}\n    stderr: {}\n    rerun: {}",
                f.what,
                f.saved.as_ref().map_or(
                    format!("not kept (only the first {MAX_KEPT} are)"),
                    |p| format!("kept at {}", p.display())
                ),
                f.stderr,
                f.run_again
            );
        }
        panic!("{message}");
    }
}
