//! Source lines for frames, read from the files the frames name, when they can be read.
//!
//! A core often comes from another machine: `--source-root OLD=NEW` maps path prefixes, and with
//! `--sysroot DIR` a file at `DIR/<recorded path>` is read before the host's file of the same
//! path (which may be another version: a container's stdlib is not the host's). A missing,
//! unreadable, huge or binary file simply leaves the frame without a line; it never fails the
//! analysis.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::anchors::{self, Rules};
use crate::input::{self, MappedFile};
use crate::report::Report;

/// Files larger than this are not read for a single line.
const MAX_SOURCE_BYTES: u64 = 16 << 20;
/// How many lines after `co_firstlineno` may hold a decorated function's `def`.
const DECORATOR_LINES: usize = 16;
/// At most this many distinct files are opened per report.
const MAX_FILES: usize = 4096;

/// A `--source-root OLD=NEW` mapping.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceRoot {
    pub old: PathBuf,
    pub new: PathBuf,
}

impl std::str::FromStr for SourceRoot {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let (old, new) = text
            .split_once('=')
            .ok_or_else(|| format!("expected OLD=NEW, got {text:?}"))?;
        if old.is_empty() || new.is_empty() {
            return Err(format!(
                "expected OLD=NEW with both paths non-empty, got {text:?}"
            ));
        }
        Ok(SourceRoot {
            old: PathBuf::from(old),
            new: PathBuf::from(new),
        })
    }
}

/// Fill `source` of every frame whose file and line can be read, unless the file is not the one
/// the process ran: a function's `def` must be on its code object's first line.
pub fn annotate(report: &mut Report, roots: &[SourceRoot], sysroot: Option<&Path>) {
    annotate_with(report, |file| read_file(file, roots, sysroot), false);
}

/// A frame's source file from disk ([`annotate`]'s reader).
pub(crate) fn read_file(
    file: &str,
    roots: &[SourceRoot],
    sysroot: Option<&Path>,
) -> Option<SourceText> {
    read_lines(file, roots, sysroot).map(SourceText::Whole)
}

/// A source file's lines: all of them (read from disk), or only those a packed core kept.
pub(crate) enum SourceText {
    Whole(WholeFile),
    Kept(BTreeMap<u32, String>),
}

impl SourceText {
    /// Line `number` (from 1), if known.
    fn line(&self, number: u32) -> Option<&str> {
        match self {
            SourceText::Whole(file) => file.line(number),
            SourceText::Kept(lines) => lines.get(&number).map(String::as_str),
        }
    }
}

/// A whole source file, mapped (or, when it is not UTF-8, its lossy copy), and where the lines
/// asked for start: a frame shows one line of a file of thousands, which are neither copied
/// into a `String` each (a run's heap grew by 30 pages for `threading.py` alone) nor all
/// located (indexing `threading.py`'s 1,600 line starts cost more than the rest of a
/// ten-thread analysis's reading of it).
pub(crate) struct WholeFile {
    /// Valid UTF-8 (so every slice between line ends is too): the file as mapped, or its lossy
    /// copy.
    text: MappedFile,
    /// What is known of where lines are, by line then offset: the starts of lines asked for,
    /// and a mark at the end of each block counted on the way. A line is looked for from the
    /// last mark before it, so a look-up counts at most one block that an earlier one did.
    marks: RefCell<Vec<Mark>>,
}

/// `at` lies in line `line` (the bytes before it hold `line - 1` line ends); `start`: it is
/// where that line starts.
#[derive(Clone, Copy)]
struct Mark {
    line: u32,
    at: usize,
    start: bool,
}

/// Line ends are counted this many bytes at a time until the block that holds the wanted
/// line's start.
const COUNTED_BLOCK: usize = 4096;

/// The `\n`s in `block`: counted into a byte per 255 bytes, a loop the compiler makes 16 or 32
/// byte compares of (counting into a `usize` made it two bytes a step).
fn count_line_ends(block: &[u8]) -> usize {
    block
        .chunks(255)
        .map(|chunk| {
            let ends = chunk.iter().fold(0u8, |ends, &byte| {
                ends.wrapping_add(u8::from(byte == b'\n'))
            });
            usize::from(ends)
        })
        .sum()
}

impl WholeFile {
    fn new(text: MappedFile) -> WholeFile {
        let first = Mark {
            line: 1,
            at: 0,
            start: true,
        };
        WholeFile {
            text,
            marks: RefCell::new(vec![first]),
        }
    }

    /// Where line `number` (from 1) starts; lines end at a `\n`, and a final one opens no line
    /// of its own (`str::lines`).
    fn line_start(&self, number: u32) -> Option<usize> {
        let bytes = self.text.bytes();
        let mut marks = self.marks.borrow_mut();
        let before = marks.partition_point(|m| m.line < number);
        if let Some(mark) = marks.get(before).filter(|m| m.line == number && m.start) {
            return (mark.at < bytes.len()).then_some(mark.at);
        }
        // Line 1 starts at the first mark, so a later line has a mark before it.
        let Mark {
            mut line, mut at, ..
        } = *marks.get(before.checked_sub(1)?)?;
        let mut found = Vec::new();
        loop {
            let rest = bytes.get(at..)?;
            let block = rest.get(..COUNTED_BLOCK).unwrap_or(rest);
            if block.is_empty() {
                break;
            }
            let ends = count_line_ends(block);
            // `line < number` holds here: each pass adds fewer ends than were wanted.
            let wanted = (number - line) as usize;
            if ends < wanted {
                line += ends as u32;
                at += block.len();
                found.push(Mark {
                    line,
                    at,
                    start: false,
                });
                continue;
            }
            // The block holds at least `wanted` (≥ 1) line ends.
            let end = memchr::memchr_iter(b'\n', block).nth(wanted - 1)?;
            at += end + 1;
            if at < bytes.len() {
                found.push(Mark {
                    line: number,
                    at,
                    start: true,
                });
            }
            break;
        }
        // The new marks follow the one the count started from, and precede any later one.
        let answer = found.last().filter(|m| m.start).map(|m| m.at);
        marks.splice(before..before, found);
        answer
    }

    /// Line `number` (from 1), if the file has it.
    fn line(&self, number: u32) -> Option<&str> {
        if number == 0 {
            return None;
        }
        let start = self.line_start(number)?;
        let bytes = self.text.bytes();
        let rest = bytes.get(start..)?;
        let line = match memchr::memchr(b'\n', rest) {
            Some(end) => rest.get(..end)?,
            None => rest,
        };
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        std::str::from_utf8(line).ok()
    }
}

/// The lines of each file that [`annotate_with`] looked at: what a packed core must keep to be
/// annotated the same way.
pub(crate) type LinesUsed = BTreeMap<String, BTreeMap<u32, String>>;

/// [`annotate`] with each file's lines from `read` (a packed core keeps them itself); with
/// `track`, returns the lines it looked at.
pub(crate) fn annotate_with(
    report: &mut Report,
    read: impl Fn(&str) -> Option<SourceText>,
    track: bool,
) -> LinesUsed {
    let mut used = LinesUsed::new();
    let mut keep = |file: &str, number: u32, text: &str| {
        if track
            && used
                .get(file)
                .is_none_or(|lines| !lines.contains_key(&number))
        {
            used.entry(file.to_string())
                .or_default()
                .insert(number, text.to_string());
        }
    };
    let mut files: HashMap<Arc<str>, Option<SourceText>> = HashMap::new();
    let mut last_file: Option<&Arc<str>> = None;
    let greenlet_frames = report.greenlets.iter().flat_map(|g| &g.frames);
    for frame in report
        .threads
        .iter()
        .flat_map(|t| &t.frames)
        .chain(greenlet_frames)
    {
        // Frames of one code object share their file's name: a recursion hashes it once.
        if last_file.is_some_and(|last| Arc::ptr_eq(last, &frame.file)) {
            continue;
        }
        last_file = Some(&frame.file);
        if !files.contains_key(&frame.file) && files.len() < MAX_FILES {
            files.insert(frame.file.clone(), read(&frame.file));
        }
    }
    // Nor is a frame like the one checked just before it checked again.
    let same_code = |a: &crate::report::FrameReport, b: &crate::report::FrameReport| {
        Arc::ptr_eq(&a.function, &b.function) && a.first_line == b.first_line
    };
    let mut stale = Vec::new();
    for (file, lines) in &mut files {
        let Some(found) = lines else { continue };
        let greenlet_frames = report.greenlets.iter().flat_map(|g| &g.frames);
        let frames = report
            .threads
            .iter()
            .flat_map(|t| &t.frames)
            .chain(greenlet_frames);
        let mut mismatch = false;
        let mut previous = None;
        // A code object's frames share its file name, but each code object has its own copy:
        // the last copy found equal is known by its address (the frames outlive the loop).
        let mut last_copy = None;
        let of_file = |f: &&crate::report::FrameReport| {
            let address = f.file.as_ptr() as usize;
            if last_copy == Some(address) {
                return true;
            }
            let same = crate::frame::same_text(&f.file, file);
            if same {
                last_copy = Some(address);
            }
            same
        };
        for frame in frames.filter(of_file) {
            if previous.is_some_and(|p| same_code(p, frame)) {
                continue;
            }
            previous = Some(frame);
            // Module code and lambdas have no `def NAME` line to check. For a decorated
            // function `co_firstlineno` is the first decorator's line, so the `def` may follow.
            if frame.function.starts_with('<') {
                continue;
            }
            let first = frame.first_line.max(1);
            let mut defined = false;
            for number in first..first.saturating_add(DECORATOR_LINES as u32) {
                let Some(text) = found.line(number) else {
                    break;
                };
                keep(file, number, text);
                if text.contains(&*frame.function) {
                    defined = true;
                    break;
                }
            }
            if !defined {
                mismatch = true;
                break;
            }
        }
        if mismatch {
            stale.push(file.clone());
            *lines = None;
        }
    }
    stale.sort();
    for file in stale {
        report.notes.push(format!(
            "{file} has changed since the process ran it (its functions are not on the lines the code recorded); its source lines are not shown"
        ));
    }
    let rules = report
        .python
        .as_ref()
        .and_then(|python| Rules::for_version(&python.version));
    type Position = (u32, Option<u32>, Option<u32>, Option<u32>);
    type Drawn = (Option<Arc<str>>, Option<Arc<str>>);
    let mut last: Option<(Arc<str>, Position, Drawn)> = None;
    let mut drawn: HashMap<Arc<str>, HashMap<Position, Drawn>> = HashMap::new();
    let greenlet_frames = report.greenlets.iter_mut().flat_map(|g| &mut g.frames);
    for frame in report
        .threads
        .iter_mut()
        .flat_map(|t| &mut t.frames)
        .chain(greenlet_frames)
    {
        let Some(line) = frame.line else { continue };
        // A deep recursion repeats one frame thousands of times: the same place is annotated
        // once, then copied (its lines were kept the first time).
        let position = (line, frame.end_line, frame.column, frame.end_column);
        if let Some((file, at, (source, markers))) = &last {
            if *at == position && crate::frame::same_text(file, &frame.file) {
                frame.source.clone_from(source);
                frame.markers.clone_from(markers);
                continue;
            }
        }
        // Many threads run the same code: a place seen before is copied, not drawn again.
        if let Some((source, markers)) = drawn
            .get(&*frame.file)
            .and_then(|places| places.get(&position))
        {
            frame.source.clone_from(source);
            frame.markers.clone_from(markers);
        } else {
            let raw = files
                .get(&frame.file)
                .and_then(Option::as_ref)
                .and_then(|lines| lines.line(line));
            if let Some(raw) = raw {
                keep(&frame.file, line, raw);
            }
            frame.source = raw
                .map(str::trim)
                .filter(|text| !text.is_empty())
                .map(Arc::from);
            frame.markers = raw
                .and_then(|raw| markers(raw, line, frame, rules))
                .map(Arc::from);
            drawn
                .entry(frame.file.clone())
                .or_default()
                .insert(position, (frame.source.clone(), frame.markers.clone()));
        }
        last = Some((
            frame.file.clone(),
            position,
            (frame.source.clone(), frame.markers.clone()),
        ));
    }
    used
}

/// The `~~~^^^` line under a stripped source line that marks the columns of a 3.11+ frame's
/// instruction (byte offsets into the line, as CPython records them), as that version's
/// tracebacks draw it ([`anchors`]); none when the columns are unknown or where Python leaves
/// it out. An instruction that goes on to later lines is marked `^` to the end of this one.
fn markers(
    raw: &str,
    line: u32,
    frame: &crate::report::FrameReport,
    rules: Option<Rules>,
) -> Option<String> {
    let (column, end_column) = (frame.column? as usize, frame.end_column? as usize);
    let one_line = frame.end_line.unwrap_or(line) == line;
    if let (Some(rules), true) = (rules, one_line) {
        return anchors::single_line(rules, raw, column, end_column);
    }
    let end = if one_line {
        end_column.min(raw.trim_end().len())
    } else {
        raw.trim_end().len()
    };
    let chars = |bytes: usize| raw.get(..bytes).map(|s| s.chars().count());
    let lead = chars(raw.len() - raw.trim_start().len())?;
    let (start, end) = (chars(column)?.max(lead), chars(end)?);
    let whole = lead + raw.trim().chars().count();
    if end <= start || (start == lead && end >= whole) {
        return None;
    }
    Some(format!(
        "{}{}",
        " ".repeat(start - lead),
        "^".repeat(end - start)
    ))
}

fn read_lines(file: &str, roots: &[SourceRoot], sysroot: Option<&Path>) -> Option<WholeFile> {
    // Frames of frozen or generated code have names like "<frozen importlib._bootstrap>".
    if file.starts_with('<') {
        return None;
    }
    candidates(Path::new(file), roots, sysroot)
        .iter()
        .find_map(|path| read_text(path))
}

/// Where `file` may be read, in order: its `--source-root` rewrite (explicit, so it alone when
/// one applies), else the sysroot's copy of an absolute path, then the path itself.
fn candidates(file: &Path, roots: &[SourceRoot], sysroot: Option<&Path>) -> Vec<PathBuf> {
    if let Some(mapped) = map_path(file, roots) {
        return vec![mapped];
    }
    let mut paths = Vec::new();
    if let (Some(root), Ok(relative)) = (sysroot, file.strip_prefix("/")) {
        paths.push(root.join(relative));
    }
    paths.push(file.to_path_buf());
    paths
}

fn read_text(path: &Path) -> Option<WholeFile> {
    let file = std::fs::File::open(path).ok()?;
    let metadata = file.metadata().ok()?;
    if !metadata.is_file() || metadata.len() > MAX_SOURCE_BYTES {
        return None;
    }
    let map = input::map_file_of_len(&file, metadata.len()).ok()?;
    let bytes = map.bytes();
    // A NUL byte: not a source file.
    if memchr::memchr(0, bytes).is_some() {
        return None;
    }
    let text = match std::str::from_utf8(bytes) {
        Ok(_) => map,
        Err(_) => MappedFile::from_vec(String::from_utf8_lossy(bytes).into_owned().into_bytes()),
    };
    Some(WholeFile::new(text))
}

/// The first root whose `old` prefixes `path` rewrites it.
fn map_path(path: &Path, roots: &[SourceRoot]) -> Option<PathBuf> {
    roots
        .iter()
        .find_map(|root| Some(root.new.join(path.strip_prefix(&root.old).ok()?)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_whole_file_has_the_lines_str_lines_gives() {
        let long: String = (0..3000)
            .map(|i| format!("{}\n", "x".repeat(i % 97)))
            .collect();
        let long_unended = format!("{long}last");
        for text in [
            "",
            "\n",
            "a",
            "a\n",
            "a\nb",
            "a\r\nb\r\n",
            "\n\nx\n\n",
            "def f():\n    return 1\n",
            &long,
            &long_unended,
        ] {
            let expected: Vec<&str> = text.lines().collect();
            // In order, backwards, and by strides: each order starts from other known lines.
            let count = expected.len() as u32;
            let forward: Vec<u32> = (1..=count + 1).collect();
            let backward: Vec<u32> = (1..=count + 1).rev().collect();
            let strided: Vec<u32> = (1..=count + 1)
                .step_by(37)
                .chain((1..=count).step_by(5))
                .collect();
            for order in [forward, backward, strided] {
                let file = WholeFile::new(MappedFile::from_vec(text.as_bytes().to_vec()));
                for number in order {
                    let want = expected.get(number as usize - 1).copied();
                    assert_eq!(
                        file.line(number),
                        want,
                        "line {number} of {:?}",
                        &text[..text.len().min(40)]
                    );
                }
                assert_eq!(file.line(0), None);
                assert_eq!(file.line(u32::MAX), None);
            }
        }
    }

    #[test]
    fn markers_under_the_stripped_line() {
        let frame = |column, end_column, end_line| crate::report::FrameReport {
            function: "f".into(),
            qualname: None,
            file: "x.py".into(),
            line: Some(3),
            first_line: 1,
            end_line,
            column,
            end_column,
            ..crate::report::FrameReport::default()
        };
        let raw = "    x = time.sleep(1)  # PARK";
        assert_eq!(
            markers(raw, 3, &frame(Some(8), Some(21), Some(3)), None).as_deref(),
            Some("    ^^^^^^^^^^^^^")
        );
        // The whole stripped line, unknown columns: no markers.
        let raw = "    time.sleep(1)";
        assert_eq!(
            markers(raw, 3, &frame(Some(4), Some(17), Some(3)), None),
            None
        );
        assert_eq!(markers(raw, 3, &frame(None, None, Some(3)), None), None);
        // Byte offsets past non-ASCII text count characters.
        let raw = "  é = f(1)";
        assert_eq!(
            markers(raw, 3, &frame(Some(7), Some(11), Some(3)), None).as_deref(),
            Some("    ^^^^")
        );
        // Going on to the next line: marked to the end of this one.
        let raw = "  y = g(1,";
        assert_eq!(
            markers(raw, 3, &frame(Some(6), Some(2), Some(4)), None).as_deref(),
            Some("    ^^^^")
        );
    }

    /// Interpreters (3.11.7+) to take the expected markers from: pyenv's, and the builds of
    /// tools/fetch-test-pythons.sh (`$PYCORE_PYTHONS`, default ~/.cache/pycore-pythons).
    fn marker_interpreters() -> Vec<PathBuf> {
        let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("/root"), PathBuf::from);
        let pyenv = std::env::var_os("PYENV_ROOT")
            .map_or_else(|| home.join(".pyenv"), PathBuf::from)
            .join("versions");
        let cache = std::env::var_os("PYCORE_PYTHONS")
            .map_or_else(|| home.join(".cache/pycore-pythons"), PathBuf::from);
        let mut found = Vec::new();
        let mut versions: Vec<_> = std::fs::read_dir(&pyenv)
            .into_iter()
            .flatten()
            .flatten()
            .map(|entry| entry.file_name().to_string_lossy().into_owned())
            .collect();
        versions.sort();
        for version in versions {
            let mut parts = version.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
            let (major, minor, patch) = (
                parts.next().unwrap_or(0),
                parts.next().unwrap_or(0),
                parts.next().unwrap_or(0),
            );
            // 3.11 before 3.11.7 drew anchors by older rules (see src/anchors.rs).
            if major == 3 && (minor > 11 || (minor == 11 && patch >= 7)) {
                found.push(
                    pyenv
                        .join(&version)
                        .join(format!("bin/python{major}.{minor}")),
                );
            }
        }
        for path in [
            "3.13t/bin/python3.13t",
            "debian/usr/bin/python3.14",
            "debian/usr/bin/python3.15",
        ] {
            found.push(cache.join(path));
        }
        found.retain(|path| path.exists());
        found
    }

    /// The markers of `markers()` against those each interpreter's own `traceback` module draws
    /// for the same lines and columns (tests/scenarios/traceback_markers.py).
    #[test]
    fn markers_match_each_interpreters_traceback() {
        let script = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/scenarios/traceback_markers.py"
        );
        let interpreters = marker_interpreters();
        if interpreters.is_empty() {
            eprintln!("skipped: no CPython 3.11.7+ found (pyenv, $PYCORE_PYTHONS)");
            return;
        }
        let mut problems = Vec::new();
        for python in interpreters {
            let dir = tempfile::tempdir().unwrap();
            let output = std::process::Command::new(&python)
                .arg(script)
                .arg(dir.path())
                .output()
                .unwrap();
            assert!(
                output.status.success(),
                "{}: {}",
                python.display(),
                String::from_utf8_lossy(&output.stderr)
            );
            let doc: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
            let version = doc["version"].as_str().unwrap();
            let rules = Rules::for_version(version);
            assert!(rules.is_some(), "{version}");
            let frames = doc["frames"].as_array().unwrap();
            for record in frames {
                let number = |key: &str| record[key].as_u64().map(|n| n as u32);
                let frame = crate::report::FrameReport {
                    function: "t".into(),
                    file: "snippets.py".into(),
                    line: number("lineno"),
                    end_line: number("end_lineno"),
                    column: number("colno"),
                    end_column: number("end_colno"),
                    ..crate::report::FrameReport::default()
                };
                let raw = record["raw"].as_str().unwrap();
                let got = markers(raw, frame.line.unwrap(), &frame, rules);
                let want = record["markers"].as_str();
                if got.as_deref() != want {
                    problems.push(format!(
                        "{version} {raw:?} columns {:?}-{:?}: got {got:?}, Python draws {want:?}",
                        frame.column, frame.end_column
                    ));
                }
            }
            eprintln!(
                "{version} ({}): {} lines compared",
                python.display(),
                frames.len()
            );
        }
        assert!(problems.is_empty(), "\n{}", problems.join("\n"));
    }

    #[test]
    fn roots_rewrite_prefixes_only() {
        let roots: Vec<SourceRoot> = vec!["/build/app=/home/me/app".parse().unwrap()];
        assert_eq!(
            candidates(Path::new("/build/app/x/y.py"), &roots, None),
            vec![PathBuf::from("/home/me/app/x/y.py")]
        );
        assert_eq!(
            candidates(Path::new("/other/y.py"), &roots, None),
            vec![PathBuf::from("/other/y.py")]
        );
        // The sysroot's copy first, then the host's; an explicit rewrite alone.
        let sysroot = Some(Path::new("/srv/rootfs"));
        assert_eq!(
            candidates(
                Path::new("/usr/lib/python3.11/threading.py"),
                &roots,
                sysroot
            ),
            vec![
                PathBuf::from("/srv/rootfs/usr/lib/python3.11/threading.py"),
                PathBuf::from("/usr/lib/python3.11/threading.py")
            ]
        );
        assert_eq!(
            candidates(Path::new("/build/app/y.py"), &roots, sysroot),
            vec![PathBuf::from("/home/me/app/y.py")]
        );
        assert!("nonsense".parse::<SourceRoot>().is_err());
        assert!("=x".parse::<SourceRoot>().is_err());
    }
}
