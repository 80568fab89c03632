//! Finding the python executable and libpython that the core's process ran, checking that the
//! local files are the same builds (build-id), and resolving symbols to run-time addresses.

use std::path::{Path, PathBuf};

use crate::binary::{self, ElfImage};
use crate::core::{CoreFile, FileMapping};
use crate::error::{Error, Result};
use crate::held_pages;
use crate::memory::AddressSpace;
use crate::python::{version, PythonVersion, SymbolSource};

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
    pub warnings: Vec<String>,
}

/// Where to look for the binaries a core names, and how strict to be about them.
#[derive(Debug, Clone, Default)]
pub struct Locator {
    /// The executable the process ran (`--python`), wherever it is on this machine.
    pub python: Option<PathBuf>,
    /// A copy of the filesystem of the machine that made the core (`--sysroot`).
    pub sysroot: Option<PathBuf>,
    /// Folders holding copies of its binaries, matched by file name (`--lib-path`).
    pub lib_paths: Vec<PathBuf>,
    /// Go on, with a warning, when no candidate has the build-id the core recorded.
    pub allow_mismatch: bool,
    /// Roots of detached debug symbols (`DIR/.build-id/…`), besides `/usr/lib/debug` and the
    /// sysroot's (`--debug-dir`).
    pub debug_dirs: Vec<PathBuf>,
}

impl Locator {
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
                return Err(Error::NotTheBuild(format!(
                    "{} is a launcher linking {needed}, but the process ran {ran} with the interpreter linked in (no libpython was mapped), so it is not the build the process ran; pass --python of that build",
                    launcher.path.display()
                )));
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
                    Err(Error::BinaryMissing(_)) if libpython_path.is_some() => {
                        warnings.push(format!(
                            "executable {core_path} not found; reading the interpreter from libpython only"
                        ));
                        None
                    }
                    Err(Error::BinaryMissing(_)) => {
                        return Err(Error::BinaryMissing(format!(
                            "the core's executable {core_path} is not on this machine; pass --python PATH (or --sysroot DIR) to the same build"
                        )))
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
                    Err(Error::BinaryMissing(_)) => {
                        return Err(Error::BinaryMissing(format!(
                            "the core's {core_path} is not on this machine; pass --lib-path DIR (a folder with that file) or --sysroot DIR"
                        )))
                    }
                    Err(e) => return Err(e),
                }
            }
            None => None,
        };
        for image in executable.iter().chain(libpython.iter()) {
            if let (None, Some(held)) = (&image.core_build_id, &image.held_pages) {
                let local = image.image.path.display().to_string();
                warnings.push(held.describe(&image.core_path, &local));
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

impl SymbolSource for PythonBinaries {
    fn symbol(&self, name: &str) -> Option<u64> {
        self.images()
            .find_map(|loaded| Some(loaded.image.symbol(name)?.wrapping_add(loaded.bias)))
    }

    fn abi_flags(&self) -> String {
        self.images()
            .find_map(|loaded| {
                version::abi_flags_from_file_name(binary::display_name(&loaded.core_path))
            })
            .unwrap_or_default()
    }

    fn version_hint(&self) -> Option<PythonVersion> {
        self.images().find_map(|loaded| {
            version::version_from_file_name(binary::display_name(&loaded.core_path))
        })
    }
}

/// `--python PATH` opened, or an error saying what is wrong with PATH itself.
fn open_python_arg(path: &Path) -> Result<ElfImage> {
    let problem = match std::fs::metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Some("does not exist".to_string()),
        Err(e) => Some(format!("cannot be read: {e}")),
        Ok(meta) if meta.is_dir() => Some("is a directory, not a python executable".to_string()),
        Ok(meta) if !meta.is_file() => Some("is not a regular file".to_string()),
        Ok(_) => std::fs::File::open(path)
            .err()
            .map(|e| format!("cannot be read: {e}")),
    };
    match problem {
        Some(problem) => Err(Error::BinaryMissing(format!(
            "--python {} {problem}",
            path.display()
        ))),
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
    warnings: &mut Vec<String>,
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
    let core_build_id = binary::build_id_in_memory(&CoreOnly(memory), start);
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
                warnings.push(format!("skipped {}: {error}", candidate.display()));
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
            warnings.push(format!(
                "{} is not the file the process mapped as {core_path} (the core keeps no build-id for it, and the page it holds at file offset {offset:#x} differs); going on because of --allow-mismatch: stacks may be wrong",
                image.path.display()
            ));
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
            warnings.push(format!(
                "{} is not the build the process ran (build-id {file_id}, the core's {core_path} has {core_id}); going on because of --allow-mismatch: stacks may be wrong",
                image.path.display()
            ));
            image
        }
        (None, None) => {
            return Err(Error::BinaryMissing(format!(
                "none of {} exists",
                candidates
                    .iter()
                    .map(|c| c.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            )))
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

/// Reads served by the core file alone: what the process really had, not what disk says.
struct CoreOnly<'a, 'c>(&'a AddressSpace<'c>);

impl crate::memory::Memory for CoreOnly<'_, '_> {
    fn read(
        &self,
        addr: u64,
        buf: &mut [u8],
    ) -> std::result::Result<(), crate::memory::Unreadable> {
        self.0.read_core_only(addr, buf)
    }
}
