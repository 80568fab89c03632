//! Which CPython a core ran, learned from memory and files only (never by running anything).
//!
//! In order of trust: the `_Py_DebugOffsets` header at the start of `_PyRuntime` (3.13+: cookie
//! `xdebugpy`, then `PY_VERSION_HEX`); the exported `Py_Version` (3.11+); the version in the
//! name of libpython or the executable (`libpython3.9.so.1.0`, `python3.9`).

use std::fmt;

use crate::memory::Memory;

pub const DEBUG_OFFSETS_COOKIE: &[u8; 8] = b"xdebugpy";

/// A CPython version, as `PY_VERSION_HEX` encodes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct PythonVersion {
    pub major: u8,
    pub minor: u8,
    /// `None` when only the file name told us the version.
    pub micro: Option<u8>,
    /// 0xA alpha, 0xB beta, 0xC candidate, 0xF final.
    pub level: u8,
    pub serial: u8,
}

impl PythonVersion {
    pub fn from_hex(hex: u64) -> PythonVersion {
        PythonVersion {
            major: (hex >> 24) as u8,
            minor: (hex >> 16) as u8,
            micro: Some((hex >> 8) as u8),
            level: ((hex >> 4) & 0xf) as u8,
            serial: (hex & 0xf) as u8,
        }
    }

    pub fn short(major: u8, minor: u8) -> PythonVersion {
        PythonVersion {
            major,
            minor,
            micro: None,
            level: 0xf,
            serial: 0,
        }
    }

    /// A plausible CPython 2.x/3.x version (a garbage word read from a corrupt core is not).
    pub fn is_plausible(&self) -> bool {
        matches!(self.major, 2 | 3) && self.minor < 100 && matches!(self.level, 0xa..=0xf)
    }
}

impl fmt::Display for PythonVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)?;
        if let Some(micro) = self.micro {
            write!(f, ".{micro}")?;
            match self.level {
                0xa => write!(f, "a{}", self.serial)?,
                0xb => write!(f, "b{}", self.serial)?,
                0xc => write!(f, "rc{}", self.serial)?,
                _ => {}
            }
        }
        Ok(())
    }
}

/// `X.Y` from a file name like `libpython3.9.so.1.0`, `libpython3.7m.so`, `python3.12`.
pub fn version_from_file_name(name: &str) -> Option<PythonVersion> {
    let rest = name
        .strip_prefix("libpython")
        .or_else(|| name.strip_prefix("python"))?;
    let mut parts = rest.splitn(2, '.');
    let major: u8 = parts.next()?.parse().ok()?;
    let minor_digits: String = parts
        .next()?
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    let version = PythonVersion::short(major, minor_digits.parse().ok()?);
    version.is_plausible().then_some(version)
}

/// The ABI flags after `X.Y` in a file name: `t` in `libpython3.13t.so.1.0`, `d` in
/// `python3.14d`, `m` in `libpython3.7m.so`.
pub fn abi_flags_from_file_name(name: &str) -> Option<String> {
    version_from_file_name(name)?;
    let rest = name
        .strip_prefix("libpython")
        .or_else(|| name.strip_prefix("python"))?;
    let after_major = rest.split_once('.')?.1;
    let flags: String = after_major
        .trim_start_matches(|c: char| c.is_ascii_digit())
        .chars()
        .take_while(char::is_ascii_alphabetic)
        .collect();
    Some(flags)
}

/// The version recorded in the process's own memory, if this build records one.
pub fn version_from_memory(
    memory: &impl Memory,
    runtime: Option<u64>,
    py_version: Option<u64>,
) -> Option<PythonVersion> {
    if let Some(runtime) = runtime {
        let mut head = [0u8; 16];
        // cannot panic: `head` is 16 bytes.
        if memory.read(runtime, &mut head).is_ok() && &head[..8] == DEBUG_OFFSETS_COOKIE {
            let hex = u64::from_le_bytes(head[8..16].try_into().ok()?);
            let version = PythonVersion::from_hex(hex);
            if version.is_plausible() {
                return Some(version);
            }
        }
    }
    let hex = memory.read_u32(py_version?).ok()?;
    let version = PythonVersion::from_hex(u64::from(hex));
    version.is_plausible().then_some(version)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_and_display() {
        assert_eq!(PythonVersion::from_hex(0x030c01f0).to_string(), "3.12.1");
        assert_eq!(PythonVersion::from_hex(0x030d00c1).to_string(), "3.13.0rc1");
        assert!(!PythonVersion::from_hex(0xdeadbeef).is_plausible());
    }

    #[test]
    fn file_names() {
        assert_eq!(
            version_from_file_name("libpython3.9.so.1.0"),
            Some(PythonVersion::short(3, 9))
        );
        assert_eq!(
            version_from_file_name("libpython3.7m.so"),
            Some(PythonVersion::short(3, 7))
        );
        assert_eq!(
            version_from_file_name("python3.12"),
            Some(PythonVersion::short(3, 12))
        );
        assert_eq!(version_from_file_name("python3"), None);
        assert_eq!(version_from_file_name("libc.so.6"), None);
        assert_eq!(
            abi_flags_from_file_name("libpython3.13t.so.1.0").as_deref(),
            Some("t")
        );
        assert_eq!(
            abi_flags_from_file_name("python3.14d").as_deref(),
            Some("d")
        );
        assert_eq!(
            abi_flags_from_file_name("libpython3.12.so").as_deref(),
            Some("")
        );
    }
}
