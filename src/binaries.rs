//! Finding the python executable and libpython that the core's process ran, checking that the
//! local files are the same builds (build-id), and resolving symbols to run-time addresses.

use std::path::{Path, PathBuf};

use crate::address_space::BackingResolver;
use crate::binary::{self, ElfImage};
use crate::core::{CoreFile, FileMapping};
use crate::debuginfod::{Artifact, Debuginfod};
use crate::error::{ArgumentProblem, Error, Result};
use crate::held_pages;
use crate::input;
use crate::memory::AddressSpace;
use crate::warning::{Warning, WarningKind};

/// `AT_PHDR`: address of the executable's program headers (include/uapi/linux/auxvec.h).
const AT_PHDR: u64 = 3;
const AT_ENTRY: u64 = 9;

/// One ELF image of the process, with where it was loaded.
pub struct LoadedImage {
    pub image: ElfImage,
    /// The path the core's NT_FILE recorded.
    pub core_path: String,
    /// Run-time address minus link-time address.
    pub bias: u64,
    /// Build-id the core kept in the image's first page, if it kept one.
    pub core_build_id: Option<Vec<u8>>,
    /// Detached debug symbols used for this image, if found.
    pub debug_file: Option<PathBuf>,
    /// With no build-id in the core: how the pages it holds of the file compared.
    pub held_pages: Option<held_pages::HeldPages>,
}

/// The images that may hold the interpreter: libpython first (if mapped), then the executable.
pub struct PythonBinaries {
    pub executable: Option<LoadedImage>,
    pub libpython: Option<LoadedImage>,
    pub warnings: Vec<Warning>,
}

/// Where to look for the binaries a core names, and how strict to be about them (the command
/// line's options of the same names).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct Locator {
    /// The python executable the process ran, if not at the path recorded in the core.
    #[arg(long, value_name = "BIN")]
    pub python: Option<PathBuf>,
    /// A copy of the filesystem of the machine (or container) that made the core: binaries and
    /// source files are looked up under it first.
    #[arg(long, value_name = "DIR")]
    pub sysroot: Option<PathBuf>,
    /// A folder holding copies of the core's binaries (libpython, python), matched by file name
    /// and build-id (repeatable).
    #[arg(long = "lib-path", value_name = "DIR")]
    pub lib_paths: Vec<PathBuf>,
    /// Use a binary even if its build-id differs from the one the core recorded (with a warning;
    /// the stacks may be wrong).
    #[arg(long)]
    pub allow_mismatch: bool,
    /// A folder of detached debug symbols laid out as `.build-id/ab/cdef….debug`, for stripped
    /// builds (repeatable; /usr/lib/debug and the sysroot's are always searched).
    #[arg(long = "debug-dir", value_name = "DIR")]
    pub debug_dirs: Vec<PathBuf>,
    /// Where compressed debug sections are kept once inflated, for later runs (default:
    /// $PYCORE_CACHE_DIR, else $XDG_CACHE_HOME/pycore, else ~/.cache/pycore).
    #[arg(long, value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,
    /// Keep nothing between runs: inflate compressed debug sections in memory every time.
    #[arg(long, conflicts_with = "cache_dir")]
    pub no_cache: bool,
    /// Never ask the debuginfod servers of $DEBUGINFOD_URLS for a binary missing here (by
    /// default the python executable or libpython the core names, when no local file has the
    /// build-id it recorded, is fetched by that build-id into the elfutils cache).
    #[arg(long)]
    pub offline: bool,
}

/// The resolver that backs the core's other mapped files (extension modules, libc) with their
/// local copies: the first candidate whose build-id equals the one the core kept in the file's
/// first page. A file whose build-id the core did not keep is not used: its pages could not be
/// shown to be the process's.
pub(crate) fn module_resolver(core: &CoreFile, locator: Locator) -> BackingResolver<'_> {
    Box::new(move |core_path: &str| {
        let core_id = binary::recorded_build_id(&AddressSpace::new(core), core_path)?;
        locator
            .candidates(core_path, false)
            .into_iter()
            .filter(|candidate| candidate.is_file())
            .find_map(|candidate| {
                let file = input::open_shared(&candidate, crate::elf::described_len).ok()?;
                (binary::build_id_of_file(file.bytes()).as_ref() == Some(&core_id)).then_some(file)
            })
    })
}

impl Locator {
    /// The cache folder (`--cache-dir`, $PYCORE_CACHE_DIR, $XDG_CACHE_HOME/pycore,
    /// ~/.cache/pycore), or `None` with `--no-cache` or an empty $PYCORE_CACHE_DIR.
    pub(crate) fn cache_dir(&self) -> Option<PathBuf> {
        if self.no_cache {
            return None;
        }
        if let Some(dir) = &self.cache_dir {
            return Some(dir.clone());
        }
        let nonempty = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
        if let Some(dir) = std::env::var_os("PYCORE_CACHE_DIR") {
            return (!dir.is_empty()).then(|| PathBuf::from(dir));
        }
        if let Some(dir) = nonempty("XDG_CACHE_HOME") {
            return Some(PathBuf::from(dir).join("pycore"));
        }
        nonempty("HOME").map(|home| PathBuf::from(home).join(".cache/pycore"))
    }

    /// Where detached debug symbols are looked for, in order.
    pub(crate) fn debug_roots(&self) -> Vec<PathBuf> {
        let mut roots = self.debug_dirs.clone();
        if let Some(root) = &self.sysroot {
            roots.push(root.join("usr/lib/debug"));
        }
        roots.push(PathBuf::from("/usr/lib/debug"));
        roots
    }

    /// Files that may be the core's `core_path`, in the order they are tried.
    pub(crate) fn candidates(&self, core_path: &str, is_executable: bool) -> Vec<PathBuf> {
        // An executable named on the command line is the only one considered.
        if let (true, Some(python)) = (is_executable, &self.python) {
            return vec![python.clone()];
        }
        let mut candidates = Vec::new();
        if let Some(root) = &self.sysroot {
            candidates.push(root.join(core_path.trim_start_matches('/')));
        }
        let name = binary::display_name(core_path);
        candidates.extend(self.lib_paths.iter().map(|dir| dir.join(name)));
        candidates.push(PathBuf::from(core_path));
        candidates
    }
}

impl PythonBinaries {
    /// Locate, open and verify the binaries, and register them to back `memory`'s missing pages.
    pub fn locate(memory: &mut AddressSpace<'_>, locator: &Locator) -> Result<PythonBinaries> {
        let core = memory.core();
        let mut warnings = Vec::new();
        let executable_path = executable_mapping_path(core);
        let libpython_path = core
            .files
            .iter()
            .map(|f| f.path.as_str())
            .find(|p| is_libpython(binary::display_name(p)))
            .map(str::to_string);
        // What --python names is checked first: a path that is not a readable file must be
        // reported as such, not as "the core's executable is not on this machine".
        let launcher = match &locator.python {
            Some(python) => Some(open_python_arg(python)?),
            None => None,
        };
        // A static python's process maps no libpython; a launcher needing one cannot be its
        // build (only said of executables named python*: others may not be Python at all).
        let ran_python = executable_path
            .as_deref()
            .filter(|p| binary::display_name(p).starts_with("python"));
        if let (None, Some(launcher), Some(ran)) = (&libpython_path, &launcher, ran_python) {
            if let Some(needed) = launcher.needed.iter().find(|n| is_libpython(n)) {
                return Err(Error::LauncherForStaticPython {
                    launcher: launcher.path.clone(),
                    needed: needed.clone(),
                    ran: ran.to_string(),
                });
            }
        }
        if executable_path.is_none() && locator.python.is_some() {
            return Err(Error::NotACore {
                path: core.path.clone(),
                reason: "it records no mapped executable (no NT_FILE or auxv), so --python cannot be matched".into(),
            });
        }
        let executable = match &executable_path {
            Some(core_path) => {
                let candidates = locator.candidates(core_path, true);
                match load(memory, core_path, &candidates, locator, &mut warnings) {
                    Ok(image) => Some(image),
                    // With a libpython, the interpreter lives there; the executable is optional.
                    Err(Error::NoCandidate { debuginfod, .. }) if libpython_path.is_some() => {
                        warnings.push(Warning::new(WarningKind::ExecutableMissing, format!(
                            "executable {core_path} not found{debuginfod}; reading the interpreter from libpython only"
                        )));
                        None
                    }
                    Err(Error::NoCandidate { debuginfod, .. }) => {
                        return Err(Error::ExecutableMissing {
                            core_path: core_path.clone(),
                            debuginfod,
                        })
                    }
                    Err(e) => return Err(e),
                }
            }
            None => None,
        };
        let libpython = match &libpython_path {
            Some(core_path) => {
                let mut candidates = locator.candidates(core_path, false);
                if let Some(launcher) = &launcher {
                    let name = binary::display_name(core_path);
                    for dir in library_dirs(launcher) {
                        let candidate = dir.join(name);
                        if !candidates.contains(&candidate) {
                            candidates.push(candidate);
                        }
                    }
                }
                match load(memory, core_path, &candidates, locator, &mut warnings) {
                    Ok(image) => Some(image),
                    Err(Error::NoCandidate { debuginfod, .. }) => {
                        return Err(Error::LibpythonMissing {
                            core_path: core_path.clone(),
                            debuginfod,
                        })
                    }
                    Err(e) => return Err(e),
                }
            }
            None => None,
        };
        for image in executable.iter().chain(libpython.iter()) {
            if let (None, Some(held)) = (&image.core_build_id, &image.held_pages) {
                let local = image.image.path.display().to_string();
                warnings.push(Warning::new(
                    WarningKind::BinaryUnverified,
                    held.describe(&image.core_path, &local),
                ));
            }
        }
        Ok(PythonBinaries {
            executable,
            libpython,
            warnings,
        })
    }

    fn images(&self) -> impl Iterator<Item = &LoadedImage> {
        self.libpython.iter().chain(self.executable.iter())
    }
}

impl PythonBinaries {
    /// Run-time `[start, end)` of the named functions (and their compiler clones) in the
    /// binaries.
    pub fn function_ranges(&self, names: &[&str]) -> Vec<(u64, u64)> {
        self.images()
            .flat_map(|loaded| {
                loaded
                    .image
                    .function_ranges(names)
                    .into_iter()
                    .map(|(start, end)| {
                        (
                            start.wrapping_add(loaded.bias),
                            end.wrapping_add(loaded.bias),
                        )
                    })
            })
            .collect()
    }
}

impl PythonBinaries {
    /// Run-time address of a symbol of libpython or the executable.
    pub fn symbol_address(&self, name: &str) -> Option<u64> {
        self.run_time(|image| image.symbol(name))
    }

    /// Run-time address of a symbol of Python's C API ([`ElfImage::api_symbol`]).
    pub fn api_symbol_address(&self, name: &str) -> Option<u64> {
        self.run_time(|image| image.api_symbol(name))
    }

    /// The first image's link-time answer, moved to where the image was loaded.
    fn run_time(&self, find: impl Fn(&ElfImage) -> Option<u64>) -> Option<u64> {
        self.images()
            .find_map(|loaded| Some(find(&loaded.image)?.wrapping_add(loaded.bias)))
    }

    /// The file names the core recorded for the images (`libpython3.13t.so.1.0`), libpython
    /// first: the version and ABI flags in them are a hint when memory says nothing.
    pub fn file_names(&self) -> Vec<&str> {
        self.images()
            .map(|loaded| binary::display_name(&loaded.core_path))
            .collect()
    }
}

/// `--python PATH` opened, or an error saying what is wrong with PATH itself.
fn open_python_arg(path: &Path) -> Result<ElfImage> {
    let problem = match std::fs::metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Some(ArgumentProblem::Missing),
        Err(e) => Some(ArgumentProblem::Unreadable(e)),
        Ok(meta) if meta.is_dir() => Some(ArgumentProblem::Directory),
        Ok(meta) if !meta.is_file() => Some(ArgumentProblem::NotAFile),
        Ok(_) => std::fs::File::open(path)
            .err()
            .map(ArgumentProblem::Unreadable),
    };
    match problem {
        Some(problem) => Err(Error::PythonArgument {
            path: path.to_path_buf(),
            problem,
        }),
        None => ElfImage::open(path),
    }
}

/// Where the dynamic linker would look for a launcher's libraries besides the system's: its
/// DT_RUNPATH (or DT_RPATH) entries with `$ORIGIN` expanded to its folder, then `../lib` next
/// to it (pyenv's and `make install`'s layout, also after the tree was moved).
fn library_dirs(launcher: &ElfImage) -> Vec<PathBuf> {
    let real = std::fs::canonicalize(&launcher.path).unwrap_or_else(|_| launcher.path.clone());
    let Some(origin) = real.parent() else {
        return Vec::new();
    };
    let origin_text = origin.to_string_lossy();
    let mut dirs: Vec<PathBuf> = launcher
        .run_paths
        .iter()
        .map(|p| {
            p.replace("${ORIGIN}", &origin_text)
                .replace("$ORIGIN", &origin_text)
        })
        // Other tokens ($LIB, $PLATFORM) depend on the machine that ran it: not guessed.
        .filter(|p| !p.contains('$') && p.starts_with('/'))
        .map(|p| normalize(Path::new(&p)))
        .collect();
    dirs.push(normalize(&origin.join("../lib")));
    dirs
}

/// `a/b/../c` as `a/c`, so that messages and reports name plain paths.
fn normalize(path: &Path) -> PathBuf {
    use std::path::Component;
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

fn is_libpython(name: &str) -> bool {
    name.starts_with("libpython") && name.contains(".so")
}

/// The executable's path as NT_FILE recorded it: the mapping that holds `AT_PHDR`.
pub fn executable_mapping_path(core: &CoreFile) -> Option<String> {
    let phdr = core
        .auxv_value(AT_PHDR)
        .or_else(|| core.auxv_value(AT_ENTRY));
    if let Some(address) = phdr {
        if let Some(mapping) = core
            .files
            .iter()
            .find(|f| f.start <= address && address < f.end)
        {
            return Some(mapping.path.clone());
        }
    }
    // No auxv: the first mapping named like a Python executable.
    core.files
        .iter()
        .map(|f| f.path.as_str())
        .find(|p| binary::display_name(p).starts_with("python"))
        .map(str::to_string)
}

/// Find, among `candidates`, the file the core mapped at `core_path`: the first whose build-id
/// equals the one the core kept (or any, when the core kept none). Register it as backing for
/// the core's missing pages.
fn load(
    memory: &mut AddressSpace<'_>,
    core_path: &str,
    candidates: &[PathBuf],
    locator: &Locator,
    warnings: &mut Vec<Warning>,
) -> Result<LoadedImage> {
    let allow_mismatch = locator.allow_mismatch;
    let core = memory.core();
    let header_mapping: &FileMapping = core
        .files
        .iter()
        .filter(|f| f.path == core_path && f.file_offset == 0)
        .min_by_key(|f| f.start)
        .ok_or_else(|| Error::NotACore {
            path: core.path.clone(),
            reason: format!("NT_FILE has no mapping of the start of {core_path}"),
        })?;
    let start = header_mapping.start;
    let core_build_id = binary::build_id_in_memory(&memory.core_only(), start);
    // The first candidate that differs, with the held pages' first differing offset when the
    // core kept no build-id to compare.
    let mut mismatched: Option<(ElfImage, Option<u64>)> = None;
    let mut chosen = None;
    let mut held = None;
    for candidate in candidates {
        if !candidate.is_file() {
            continue;
        }
        // The one file named by --python must parse; other candidates that don't are skipped.
        let image = match ElfImage::open(candidate) {
            Ok(image) => image,
            Err(error) if candidates.len() == 1 => return Err(error),
            Err(error) => {
                warnings.push(Warning::new(
                    WarningKind::BinarySkipped,
                    format!("skipped {}: {error}", candidate.display()),
                ));
                continue;
            }
        };
        match (&core_build_id, &image.build_id) {
            // A file without a build-id cannot be shown to be the build the core recorded.
            (Some(in_core), in_file) if in_file.as_ref() != Some(in_core) => {
                mismatched.get_or_insert((image, None));
            }
            (Some(_), _) => {
                chosen = Some(image);
                break;
            }
            // No build-id in the core: what it holds of the file must at least match.
            (None, _) => {
                let check = held_pages::compare(core, core_path, &image);
                if let Some(offset) = check.mismatch {
                    mismatched.get_or_insert((image, Some(offset)));
                } else {
                    held = Some(check);
                    chosen = Some(image);
                    break;
                }
            }
        }
    }
    // Not here (or only other builds): the servers of $DEBUGINFOD_URLS, by the build-id the
    // core recorded, never by anything else.
    let mut debuginfod = String::new();
    if let (None, Some(build_id), false) = (&chosen, &core_build_id, locator.offline) {
        match fetch_by_build_id(build_id) {
            Fetched::Image(image) => chosen = Some(*image),
            Fetched::NotConfigured => {}
            Fetched::Failed(reason) => {
                debuginfod = format!("; {reason}");
                warnings.push(Warning::new(
                    WarningKind::DebuginfodFailed,
                    format!("{core_path}: {reason}"),
                ));
            }
        }
    }
    let image = match (chosen, mismatched) {
        (Some(image), _) => image,
        (None, Some((image, Some(offset)))) => {
            if !allow_mismatch {
                return Err(Error::HeldPagesMismatch {
                    path: image.path.clone(),
                    mapped: core_path.to_string(),
                    offset,
                });
            }
            warnings.push(Warning::new(WarningKind::BinaryMismatchAllowed, format!(
                "{} is not the file the process mapped as {core_path} (the core keeps no build-id for it, and the page it holds at file offset {offset:#x} differs); going on because of --allow-mismatch: stacks may be wrong",
                image.path.display()
            )));
            image
        }
        (None, Some((image, None))) => {
            let core_id = crate::bytes::hex(core_build_id.as_deref().unwrap_or_default());
            let file_id = crate::bytes::hex(image.build_id.as_deref().unwrap_or_default());
            if !allow_mismatch {
                return Err(Error::BuildIdMismatch {
                    path: image.path.clone(),
                    mapped: core_path.to_string(),
                    core_id,
                    file_id,
                });
            }
            warnings.push(Warning::new(WarningKind::BinaryMismatchAllowed, format!(
                "{} is not the build the process ran (build-id {file_id}, the core's {core_path} has {core_id}); going on because of --allow-mismatch: stacks may be wrong",
                image.path.display()
            )));
            image
        }
        (None, None) => {
            return Err(Error::NoCandidate {
                tried: candidates.to_vec(),
                debuginfod,
            })
        }
    };
    let mut image = image;
    let debug_file = image.attach_debug_file(&locator.debug_roots());
    let bias = start.wrapping_sub(image.base_vaddr & !0xfff);
    memory.add_backing_file(core_path, image.mapped());
    Ok(LoadedImage {
        image,
        core_path: core_path.to_string(),
        bias,
        core_build_id,
        held_pages: held,
        debug_file,
    })
}

enum Fetched {
    Image(Box<ElfImage>),
    NotConfigured,
    Failed(String),
}

/// The executable with `build_id` from the debuginfod servers (cached), checked to be that
/// build.
fn fetch_by_build_id(build_id: &[u8]) -> Fetched {
    let Some(client) = Debuginfod::from_env() else {
        return Fetched::NotConfigured;
    };
    let path = match client.fetch(build_id, Artifact::Executable) {
        Ok(path) => path,
        Err(error) => return Fetched::Failed(error.to_string()),
    };
    match ElfImage::open(&path) {
        Ok(image) if image.build_id.as_deref() == Some(build_id) => Fetched::Image(Box::new(image)),
        Ok(image) => Fetched::Failed(format!(
            "{} has build-id {}, not the {} asked for",
            path.display(),
            crate::bytes::hex(image.build_id.as_deref().unwrap_or_default()),
            crate::bytes::hex(build_id)
        )),
        Err(error) => Fetched::Failed(format!("{}: {error}", path.display())),
    }
}
