//! Finding the Python interpreters on this machine, and the rows the core
//! tests must cover.
//!
//! A row is a CPython minor version in one build shape (release, debug,
//! free-threaded) and one linkage (libpython shared or linked into the
//! executable): "3.13t shared", "3.14d static". [`WANTED`] lists the rows the
//! tests must run; they come from pyenv, /usr/bin and the cache that
//! tools/fetch-test-pythons.sh fills. With `PYCORE_REQUIRE_ALL_PYTHONS=1` (CI)
//! a wanted row that is not found fails the matrix; otherwise it is skipped
//! with the reason. Interpreters found beyond the wanted rows are run too.
//!
//! The shape and linkage come from the interpreter itself (a probe run with
//! it), never from its file name.

use std::collections::HashSet;
use std::fmt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use super::process::{run_with_timeout, TestDir};

/// Oldest and newest versions pycore must handle; 3.0-3.5 are not supported.
pub const OLDEST_SUPPORTED: (u32, u32) = (2, 7);
pub const OLDEST_SUPPORTED_3: (u32, u32) = (3, 6);
pub const NEWEST_SUPPORTED: (u32, u32) = (3, 15);
/// Set to 1 (CI does) to fail, rather than skip, every wanted row that is missing.
pub const REQUIRE_ALL_ENV: &str = "PYCORE_REQUIRE_ALL_PYTHONS";
/// The cache root of tools/fetch-test-pythons.sh; default ~/.cache/pycore-pythons.
pub const CACHE_ENV: &str = "PYCORE_PYTHONS";
pub const FETCH_HINT: &str = "run tools/fetch-test-pythons.sh";

const PROBE_TIMEOUT: Duration = Duration::from_secs(30);
/// Prints the version, the linkage and the build shape; valid Python 2 and 3.
/// "t" in sys.abiflags is Py_GIL_DISABLED (3.13+); sys.gettotalrefcount exists
/// exactly in Py_DEBUG builds (which imply Py_REF_DEBUG).
const PROBE: &str = "import platform, sys\n\
                     maps = open('/proc/self/maps')\n\
                     shared = 'libpython' in maps.read()\n\
                     maps.close()\n\
                     print(platform.python_version())\n\
                     print('shared' if shared else 'static')\n\
                     print('t' in getattr(sys, 'abiflags', ''))\n\
                     print(hasattr(sys, 'gettotalrefcount'))\n";

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Version {
    pub major: u32,
    pub minor: u32,
    pub patch: u32,
}

impl Version {
    pub fn parse(text: &str) -> Option<Version> {
        let mut parts = text.trim().split('.').map(|p| {
            // "3.13.0rc1" style suffixes: keep the leading digits.
            let digits: String = p.chars().take_while(|c| c.is_ascii_digit()).collect();
            digits.parse::<u32>().ok()
        });
        Some(Version {
            major: parts.next()??,
            minor: parts.next()??,
            patch: parts.next().flatten().unwrap_or(0),
        })
    }

    pub fn major_minor(&self) -> (u32, u32) {
        (self.major, self.minor)
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

/// The build shape, as pycore's `--json` names it in `python.shape`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Build {
    Release,
    /// Py_DEBUG (`pythonX.Yd`).
    Debug,
    /// Py_GIL_DISABLED (`pythonX.Yt`, 3.13+).
    FreeThreaded,
    /// Both (`pythonX.Ytd`); not a wanted row, but run if found.
    FreeThreadedDebug,
}

impl Build {
    /// The ABI suffix of the row name: "", "d", "t", "td".
    pub fn suffix(self) -> &'static str {
        match self {
            Build::Release => "",
            Build::Debug => "d",
            Build::FreeThreaded => "t",
            Build::FreeThreadedDebug => "td",
        }
    }

    pub fn is_free_threaded(self) -> bool {
        matches!(self, Build::FreeThreaded | Build::FreeThreadedDebug)
    }
}

impl fmt::Display for Build {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Build::Release => "release",
            Build::Debug => "debug",
            Build::FreeThreaded => "free-threaded",
            Build::FreeThreadedDebug => "free-threaded debug",
        })
    }
}

/// How libpython is linked, which changes where pycore finds the runtime.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Linkage {
    /// libpythonX.Y.so is a separate mapping (pyenv's --enable-shared builds).
    Shared,
    /// The interpreter is linked into the executable (Debian's /usr/bin/python3.X).
    Static,
}

impl fmt::Display for Linkage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Linkage::Shared => "shared",
            Linkage::Static => "static",
        })
    }
}

#[derive(Clone, Debug)]
pub struct Interpreter {
    pub path: PathBuf,
    pub version: Version,
    pub build: Build,
    pub linkage: Linkage,
}

impl Interpreter {
    /// "3.13t", "2.7", "3.14d".
    pub fn label(&self) -> String {
        label(self.version.major, self.version.minor, self.build)
    }

    /// Environment a scenario process of this interpreter needs beyond the
    /// tests' usual one. The odd builds need nothing to start (the Debian ones
    /// from the cache were pointed at their own glibc by
    /// fetch-debian-pythons.sh; python3.11d finds its own stdlib under its
    /// prefix); this only keeps cores small: a free-threaded build reserves a
    /// 1 GiB mimalloc arena up front, which gcore would dump whole.
    pub fn scenario_env(&self) -> Vec<(&'static str, &'static str)> {
        if self.build.is_free_threaded() {
            vec![("MIMALLOC_ARENA_RESERVE", "16MiB")]
        } else {
            Vec::new()
        }
    }

    /// Detached debug symbols unpacked beside this interpreter: `PREFIX/lib/debug` for
    /// `PREFIX/bin/pythonX.Y`, as tools/fetch-test-pythons.sh leaves Debian's 3.14/3.15 (`--dbg`).
    /// Not the system's /usr/lib/debug, which pycore always searches.
    pub fn debug_dirs(&self) -> Vec<PathBuf> {
        let Some(prefix) = self.path.parent().and_then(Path::parent) else {
            return Vec::new();
        };
        let dir = prefix.join("lib/debug");
        if dir == Path::new("/usr/lib/debug") || !dir.join(".build-id").is_dir() {
            return Vec::new();
        }
        vec![dir]
    }

    /// pycore arguments every analysis of this interpreter's cores may pass:
    /// `--debug-dir` for each of [`Interpreter::debug_dirs`].
    pub fn pycore_args(&self) -> Vec<std::ffi::OsString> {
        self.debug_dirs()
            .into_iter()
            .flat_map(|dir| ["--debug-dir".into(), dir.into_os_string()])
            .collect()
    }

    /// Why this interpreter is not run, or `None` if the tests must pass on it.
    pub fn skip_reason(&self) -> Option<String> {
        let version = self.version.major_minor();
        if version > NEWEST_SUPPORTED {
            return Some(format!(
                "newer than {}.{}: not yet supported",
                NEWEST_SUPPORTED.0, NEWEST_SUPPORTED.1
            ));
        }
        if version < OLDEST_SUPPORTED || (version.0 == 3 && version < OLDEST_SUPPORTED_3) {
            return Some(format!(
                "not supported (pycore supports {}.{} and {}.{}-{}.{})",
                OLDEST_SUPPORTED.0,
                OLDEST_SUPPORTED.1,
                OLDEST_SUPPORTED_3.0,
                OLDEST_SUPPORTED_3.1,
                NEWEST_SUPPORTED.0,
                NEWEST_SUPPORTED.1
            ));
        }
        None
    }

    pub fn is_supported(&self) -> bool {
        self.skip_reason().is_none()
    }
}

fn label(major: u32, minor: u32, build: Build) -> String {
    format!("{major}.{minor}{}", build.suffix())
}

/// Where a wanted row comes from, for the message when it is missing.
#[derive(Clone, Copy, Debug)]
pub enum Source {
    /// `$(pyenv root)/versions/X.Y.*/bin/pythonX.Y`.
    Pyenv,
    /// The distribution's `/usr/bin/pythonX.Y`.
    System,
    /// `bin` or `usr/bin` under this folder of the cache root.
    Cache(&'static str),
}

/// A row the matrix must have: found by version, shape and linkage.
#[derive(Clone, Copy, Debug)]
pub struct Wanted {
    pub major: u32,
    pub minor: u32,
    pub build: Build,
    pub linkage: Linkage,
    pub source: Source,
}

const fn wanted(major: u32, minor: u32, build: Build, linkage: Linkage, source: Source) -> Wanted {
    Wanted {
        major,
        minor,
        build,
        linkage,
        source,
    }
}

/// Every row the gcore matrix must run (and pass, under PYCORE_REQUIRE_ALL_PYTHONS=1).
pub const WANTED: &[Wanted] = {
    use Build::*;
    use Linkage::*;
    use Source::*;
    &[
        wanted(2, 7, Release, Shared, Pyenv),
        wanted(3, 6, Release, Shared, Pyenv),
        wanted(3, 7, Release, Shared, Pyenv),
        wanted(3, 8, Release, Shared, Pyenv),
        wanted(3, 9, Release, Shared, Pyenv),
        wanted(3, 10, Release, Shared, Pyenv),
        wanted(3, 11, Release, Shared, Pyenv),
        wanted(3, 11, Release, Static, System),
        wanted(3, 11, Debug, Static, Cache("debian-3.11d")),
        wanted(3, 12, Release, Shared, Pyenv),
        wanted(3, 13, Release, Shared, Pyenv),
        wanted(3, 13, FreeThreaded, Shared, Cache("3.13t")),
        wanted(3, 14, Release, Static, Cache("debian")),
        wanted(3, 14, Debug, Static, Cache("debian")),
        wanted(3, 15, Release, Static, Cache("debian")),
        wanted(3, 15, Debug, Static, Cache("debian")),
    ]
};

impl Wanted {
    pub fn label(&self) -> String {
        label(self.major, self.minor, self.build)
    }

    pub fn matches(&self, interpreter: &Interpreter) -> bool {
        interpreter.version.major_minor() == (self.major, self.minor)
            && interpreter.build == self.build
            && interpreter.linkage == self.linkage
    }

    /// Whether `interpreter` is where this row's source puts it: such a match
    /// fills the row before a copy found elsewhere.
    pub fn is_from_source(&self, interpreter: &Interpreter) -> bool {
        let under = |dir: &Path| interpreter.path.starts_with(dir);
        match self.source {
            Source::Pyenv => pyenv_versions_dir().is_some_and(|d| under(&d)),
            Source::System => under(Path::new("/usr/bin")),
            Source::Cache(folder) => under(&cache_root().join(folder)),
        }
    }

    /// Why the row is missing and how to get it.
    pub fn why_missing(&self) -> String {
        let name = format!("python{}.{}{}", self.major, self.minor, self.build.suffix());
        match self.source {
            Source::Pyenv => format!(
                "no {} {} build {name} in {}/{}.{}.*/bin (PYTHON_CONFIGURE_OPTS=--enable-shared pyenv install {}.{})",
                self.build,
                self.linkage,
                pyenv_versions_dir().map_or("$(pyenv root)/versions".to_string(), |p| p
                    .display()
                    .to_string()),
                self.major,
                self.minor,
                self.major,
                self.minor
            ),
            Source::System => format!(
                "no {} {} /usr/bin/{name} (apt-get install {name})",
                self.build, self.linkage
            ),
            Source::Cache(folder) => format!(
                "no {} {} {name} under {}, {FETCH_HINT}",
                self.build,
                self.linkage,
                cache_root().join(folder).display()
            ),
        }
    }
}

/// True when missing wanted rows must fail (CI) rather than be skipped.
pub fn require_all() -> bool {
    std::env::var(REQUIRE_ALL_ENV).as_deref() == Ok("1")
}

/// An interpreter found on disk: probed, or the reason the probe failed.
pub type Found = Result<Interpreter, (PathBuf, String)>;

/// One row of a matrix, before it is run.
#[derive(Clone, Debug)]
pub enum Candidate {
    /// Found and probed; `wanted` if it fills a row of the wanted list.
    Found {
        interpreter: Interpreter,
        wanted: bool,
    },
    /// Found, but the probe failed (it does not start).
    Broken { path: PathBuf, error: String },
    /// A wanted row that nothing found fills.
    Missing(Wanted),
}

impl Candidate {
    fn sort_key(&self) -> (u8, u32, u32, Build, Linkage, PathBuf) {
        match self {
            Candidate::Found { interpreter: i, .. } => (
                0,
                i.version.major,
                i.version.minor,
                i.build,
                i.linkage,
                i.path.clone(),
            ),
            Candidate::Missing(w) => (0, w.major, w.minor, w.build, w.linkage, PathBuf::new()),
            Candidate::Broken { path, .. } => {
                (1, 0, 0, Build::Release, Linkage::Shared, path.clone())
            }
        }
    }
}

/// The rows for `wanted`: each filled by the first found interpreter that
/// matches it (preferring one from the row's own source), or missing. With `extras`, every other found interpreter
/// (including ones that do not start) gets a row too. Sorted by version.
pub fn rows_for(found: &[Found], wanted: &[Wanted], extras: bool) -> Vec<Candidate> {
    let mut used = vec![false; found.len()];
    let mut rows = Vec::new();
    for want in wanted {
        let unused_match = |(index, f): &(usize, &Found)| {
            !used[*index] && f.as_ref().is_ok_and(|i| want.matches(i))
        };
        let hit = found
            .iter()
            .enumerate()
            .filter(unused_match)
            .find(|(_, f)| f.as_ref().is_ok_and(|i| want.is_from_source(i)))
            .or_else(|| found.iter().enumerate().find(unused_match));
        match hit {
            Some((index, Ok(interpreter))) => {
                used[index] = true;
                rows.push(Candidate::Found {
                    interpreter: interpreter.clone(),
                    wanted: true,
                });
            }
            _ => rows.push(Candidate::Missing(*want)),
        }
    }
    if extras {
        for (found, _) in found.iter().zip(&used).filter(|(_, used)| !**used) {
            rows.push(match found {
                Ok(interpreter) => Candidate::Found {
                    interpreter: interpreter.clone(),
                    wanted: false,
                },
                Err((path, error)) => Candidate::Broken {
                    path: path.clone(),
                    error: error.clone(),
                },
            });
        }
    }
    rows.sort_by_key(Candidate::sort_key);
    rows
}

/// Every `pythonX.Y` (and `pythonX.Yd`, `pythonX.Yt`, `pythonX.Ytd`) under
/// `$(pyenv root)/versions/*/bin/`, `/usr/bin/` and `bin/` or `usr/bin/` of
/// the cache root's folders that [`WANTED`] names, probed, in a stable order.
pub fn discover() -> Vec<Found> {
    let cache = cache_root();
    let mut dirs: Vec<PathBuf> = pyenv_versions_dir()
        .into_iter()
        .flat_map(|versions| subdirectories(&versions))
        .map(|version_dir| version_dir.join("bin"))
        .collect();
    dirs.push(PathBuf::from("/usr/bin"));
    // Only the cache folders the wanted rows name (what tools/fetch-test-pythons.sh
    // fills), not a half-fetched or set-aside copy beside them.
    for folder in cache_folders() {
        dirs.push(cache.join(folder).join("bin"));
        dirs.push(cache.join(folder).join("usr/bin"));
    }
    let mut paths: Vec<PathBuf> = dirs.iter().flat_map(|d| versioned_pythons(d)).collect();
    // The same file may be reachable twice: symlinks, and hard links such as
    // pyenv's python3.13 beside python3.13t. Keep the longest name of each
    // file ("python3.13t"), which says the most about it.
    paths.sort_by_key(|p| std::cmp::Reverse(p.file_name().map_or(0, |n| n.len())));
    let mut seen = HashSet::new();
    paths.retain(|p| match std::fs::metadata(p) {
        Ok(meta) => seen.insert((meta.dev(), meta.ino())),
        Err(_) => true,
    });
    let mut found: Vec<Found> = paths
        .into_iter()
        .map(|p| probe(&p).map_err(|e| (p, e)))
        .collect();
    found.sort_by_key(|f| match f {
        Ok(i) => (0, i.version, i.build, i.linkage, i.path.clone()),
        Err((p, _)) => (
            1,
            Version {
                major: 0,
                minor: 0,
                patch: 0,
            },
            Build::Release,
            Linkage::Shared,
            p.clone(),
        ),
    });
    found
}

/// The found interpreters that pycore supports, in discover()'s order.
pub fn supported() -> Vec<Interpreter> {
    discover()
        .into_iter()
        .filter_map(Result::ok)
        .filter(Interpreter::is_supported)
        .collect()
}

/// Where discover() looks, for "nothing found" messages.
pub fn search_locations() -> String {
    let pyenv = pyenv_versions_dir().map_or("(no pyenv root)".to_string(), |p| {
        p.join("*/bin/pythonX.Y").display().to_string()
    });
    format!(
        "{pyenv}, /usr/bin/pythonX.Y and {}/{{{}}}/[usr/]bin/pythonX.Y[d|t]",
        cache_root().display(),
        cache_folders().join(",")
    )
}

/// The folders of the cache root that wanted rows come from.
fn cache_folders() -> Vec<&'static str> {
    let mut folders: Vec<&'static str> = WANTED
        .iter()
        .filter_map(|w| match w.source {
            Source::Cache(folder) => Some(folder),
            _ => None,
        })
        .collect();
    folders.sort_unstable();
    folders.dedup();
    folders
}

/// `$PYCORE_PYTHONS`, else ~/.cache/pycore-pythons (as tools/fetch-test-pythons.sh).
pub fn cache_root() -> PathBuf {
    if let Some(root) = std::env::var_os(CACHE_ENV).filter(|r| !r.is_empty()) {
        return PathBuf::from(root);
    }
    let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("/root"), PathBuf::from);
    home.join(".cache/pycore-pythons")
}

fn pyenv_versions_dir() -> Option<PathBuf> {
    pyenv_root().map(|root| root.join("versions"))
}

/// `pyenv root` if pyenv runs, else $PYENV_ROOT, else ~/.pyenv.
fn pyenv_root() -> Option<PathBuf> {
    let from_command = Command::new("pyenv")
        .arg("root")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()));
    from_command
        .or_else(|| std::env::var_os("PYENV_ROOT").map(PathBuf::from))
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".pyenv")))
        .filter(|root| root.is_dir())
}

fn subdirectories(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect()
}

/// Files named exactly `pythonX.Y` with an optional `d`, `t` or `td` ABI
/// suffix (not python3.6m, a hard link of python3.6, nor python3.11-config).
fn versioned_pythons(bin: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(bin) else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_str().is_some_and(is_versioned_python_name))
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .collect()
}

pub fn is_versioned_python_name(name: &str) -> bool {
    let Some(version) = name.strip_prefix("python") else {
        return false;
    };
    let version = ["td", "t", "d"]
        .iter()
        .find_map(|suffix| version.strip_suffix(suffix))
        .unwrap_or(version);
    let mut parts = version.split('.');
    let numeric =
        |p: Option<&str>| p.is_some_and(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    numeric(parts.next()) && numeric(parts.next()) && parts.next().is_none()
}

fn probe(path: &Path) -> Result<Interpreter, String> {
    let dir = TestDir::new("probe");
    let mut command = Command::new(path);
    command.args(["-E", "-s", "-B", "-c", PROBE]);
    let result = run_with_timeout(&mut command, PROBE_TIMEOUT, dir.path(), "probe");
    dir.remove();
    let finished = result?;
    let stdout = finished.stdout_text();
    let lines: Vec<&str> = stdout.lines().collect();
    let parsed = match (finished.status.success(), lines.as_slice()) {
        (true, [version, linkage, free_threaded, debug]) => {
            let linkage = match *linkage {
                "shared" => Some(Linkage::Shared),
                "static" => Some(Linkage::Static),
                _ => None,
            };
            let build = match (*free_threaded, *debug) {
                ("False", "False") => Some(Build::Release),
                ("False", "True") => Some(Build::Debug),
                ("True", "False") => Some(Build::FreeThreaded),
                ("True", "True") => Some(Build::FreeThreadedDebug),
                _ => None,
            };
            Version::parse(version).zip(linkage).zip(build)
        }
        _ => None,
    };
    match parsed {
        Some(((version, linkage), build)) => Ok(Interpreter {
            path: path.to_owned(),
            version,
            build,
            linkage,
        }),
        None => Err(format!(
            "probe failed ({}): stdout {:?}, stderr {:?}",
            finished.status, stdout, finished.stderr
        )),
    }
}
