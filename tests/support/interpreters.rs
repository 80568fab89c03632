//! Finding the Python interpreters on this machine and deciding which ones
//! pycore is expected to handle.

use std::fmt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use super::process::{run_with_timeout, TestDir};

/// Oldest and newest versions pycore must handle today.
pub const OLDEST_SUPPORTED: (u32, u32) = (3, 8);
pub const NEWEST_SUPPORTED: (u32, u32) = (3, 13);
/// The scenario programs are Python 3 only (non-ASCII identifiers, ...) and
/// were checked on 3.6+.
pub const SCENARIO_MINIMUM: (u32, u32) = (3, 6);
/// Set to 1 to also run the scenarios on 3.6/3.7, which pycore does not
/// support yet (issue 3).
pub const LEGACY_ENV: &str = "PYCORE_TEST_LEGACY";

const PROBE_TIMEOUT: Duration = Duration::from_secs(30);
/// Prints the version and whether libpython is a shared library; valid Python 2 and 3.
const PROBE: &str = "import platform; maps = open('/proc/self/maps').read(); \
                     print(platform.python_version()); print('shared' if 'libpython' in maps else 'static')";

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

/// How libpython is linked, which changes where pycore finds the runtime.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    /// libpythonX.Y.so is a separate mapping (pyenv's --enable-shared builds).
    Shared,
    /// The interpreter is linked into the executable (Debian's /usr/bin/python3.X).
    Static,
}

impl fmt::Display for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Shape::Shared => "shared",
            Shape::Static => "static",
        })
    }
}

#[derive(Clone, Debug)]
pub struct Interpreter {
    pub path: PathBuf,
    pub version: Version,
    pub shape: Shape,
}

impl Interpreter {
    /// Why this interpreter is not run, or `None` if the tests must pass on it.
    pub fn skip_reason(&self) -> Option<String> {
        let version = self.version.major_minor();
        if version > NEWEST_SUPPORTED {
            return Some(format!(
                "newer than {}.{}: not yet supported",
                NEWEST_SUPPORTED.0, NEWEST_SUPPORTED.1
            ));
        }
        if version >= OLDEST_SUPPORTED {
            return None;
        }
        if version < SCENARIO_MINIMUM {
            return Some(format!(
                "not yet supported (issue 3); the scenarios also need Python {}.{}+",
                SCENARIO_MINIMUM.0, SCENARIO_MINIMUM.1
            ));
        }
        if std::env::var(LEGACY_ENV).as_deref() == Ok("1") {
            return None;
        }
        Some(format!(
            "not yet supported (issue 3); {LEGACY_ENV}=1 runs it"
        ))
    }

    pub fn is_supported(&self) -> bool {
        self.skip_reason().is_none()
    }
}

/// An interpreter found on disk: probed, or the reason the probe failed.
pub type Found = Result<Interpreter, (PathBuf, String)>;

/// Every `pythonX.Y` under `$(pyenv root)/versions/*/bin/` and `/usr/bin/`,
/// probed for version and shape, in a stable order.
pub fn discover() -> Vec<Found> {
    let mut paths: Vec<PathBuf> = pyenv_versions_dir()
        .into_iter()
        .flat_map(|versions| subdirectories(&versions))
        .flat_map(|version_dir| versioned_pythons(&version_dir.join("bin")))
        .chain(versioned_pythons(Path::new("/usr/bin")))
        .collect();
    // The same file may be reachable twice (symlinks, hard-linked pyenv dirs).
    let mut seen = std::collections::HashSet::new();
    paths.retain(|p| seen.insert(std::fs::canonicalize(p).unwrap_or_else(|_| p.clone())));
    let mut found: Vec<Found> = paths
        .into_iter()
        .map(|p| probe(&p).map_err(|e| (p, e)))
        .collect();
    found.sort_by_key(|f| match f {
        Ok(i) => (0, i.version, i.path.clone()),
        Err((p, _)) => (
            1,
            Version {
                major: 0,
                minor: 0,
                patch: 0,
            },
            p.clone(),
        ),
    });
    found
}

/// The supported interpreters only.
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
    format!("{pyenv} and /usr/bin/pythonX.Y")
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

/// Files named exactly `pythonX.Y` (not python3.6m, python3.11-config, ...).
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

fn is_versioned_python_name(name: &str) -> bool {
    let Some(version) = name.strip_prefix("python") else {
        return false;
    };
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
    let mut lines = stdout.lines();
    match (
        finished.status.success(),
        lines.next().and_then(Version::parse),
        lines.next(),
    ) {
        (true, Some(version), Some("shared")) => Ok(Interpreter {
            path: path.to_owned(),
            version,
            shape: Shape::Shared,
        }),
        (true, Some(version), Some("static")) => Ok(Interpreter {
            path: path.to_owned(),
            version,
            shape: Shape::Static,
        }),
        _ => Err(format!(
            "probe failed ({}): stdout {:?}, stderr {:?}",
            finished.status, stdout, finished.stderr
        )),
    }
}
