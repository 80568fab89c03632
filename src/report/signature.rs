//! A crash's signature: a short stable hash that is the same for two cores of the same crash
//! (the same signal in the same innermost Python code), whatever the machine, the install
//! paths, the line numbers or the addresses. CI runs and coredump stores group by it.
//!
//! `sig1-` then 16 hex digits: FNV-1a (64-bit) over the signal's name and, for each of the
//! crashed thread's innermost [`FRAMES`] Python frames, its normalised file and function, one
//! line each; with no Python frame there, the crash site's function and module file name
//! instead. The recipe is fixed for `sig1`: a change makes `sig2`.

use super::{file_name, FrameKind, Report};

/// How many of the innermost Python frames make the signature.
const FRAMES: usize = 5;

/// The signature of a crashed core, `None` for snapshots and when nothing identifies the code.
pub(crate) fn crash_signature(report: &Report) -> Option<String> {
    let signal = report.crash.signal.as_ref()?;
    let tid = report.crash.thread?;
    if report.crash.kind != super::CoreKind::Crashed {
        return None;
    }
    let thread = report.threads.iter().find(|t| t.tid == Some(tid))?;
    let mut text = format!("{}\n", signal.name);
    let python: Vec<_> = thread
        .frames
        .iter()
        .filter(|f| f.kind == FrameKind::Python)
        .take(FRAMES)
        .collect();
    if python.is_empty() {
        let location = report.crash.location.as_ref()?;
        let function = location.function.as_deref()?;
        let module = location.module.as_deref().map_or("", file_name);
        text.push_str(&format!("{module}:{function}\n"));
    }
    for frame in python {
        text.push_str(&format!("{}:{}\n", normalised(&frame.file), frame.function));
    }
    Some(format!(
        "sig1-{:016x}",
        crate::bytes::fnv1a(text.as_bytes())
    ))
}

/// A source path without what differs between installs: the part after `site-packages/` or
/// `dist-packages/`, else after `lib/pythonX.Y/` (the standard library), else the file name.
fn normalised(path: &str) -> &str {
    for marker in ["/site-packages/", "/dist-packages/"] {
        if let Some(at) = path.rfind(marker) {
            // cannot panic: an `rfind`/`find` offset plus the ASCII marker's length stays within
            // the path, on a char boundary (here and below).
            return &path[at + marker.len()..];
        }
    }
    if let Some(at) = path.rfind("/lib/python") {
        let rest = &path[at + "/lib/python".len()..];
        if let Some(slash) = rest.find('/') {
            return &rest[slash + 1..];
        }
    }
    file_name(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_lose_what_differs_between_installs() {
        assert_eq!(
            normalised("/srv/venv/lib/python3.12/site-packages/numpy/core/x.py"),
            "numpy/core/x.py"
        );
        assert_eq!(
            normalised("/usr/lib/python3/dist-packages/apt/a.py"),
            "apt/a.py"
        );
        assert_eq!(
            normalised("/root/.pyenv/versions/3.12.1/lib/python3.12/threading.py"),
            "threading.py"
        );
        assert_eq!(
            normalised("/usr/lib/python3.11/asyncio/base_events.py"),
            "asyncio/base_events.py"
        );
        assert_eq!(normalised("/home/ci/build/app/main.py"), "main.py");
        assert_eq!(
            normalised("<frozen importlib._bootstrap>"),
            "<frozen importlib._bootstrap>"
        );
    }
}
