//! What a systemd-coredump store file's name says (`core.COMM.UID.BOOTID.PID.USEC[.zst]`, as
//! systemd's coredump.c `make_filename` writes it; COMM has `.`, `/` and spaces escaped as
//! `\xNN`): the one place the time of the dump is recorded.

use serde::{Deserialize, Serialize};

/// `core.systemd`: the fields of a store file's name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoreName {
    /// The process's name (`comm`, unescaped).
    pub comm: String,
    pub uid: u32,
    pub boot_id: String,
    pub pid: i32,
    /// When the core was dumped, UTC, ISO 8601 to the second (`2026-11-30T08:15:02Z`).
    pub time: String,
}

/// The store name in `file_name`, if it is one.
pub fn parse(file_name: &str) -> Option<StoreName> {
    let rest = file_name.strip_prefix("core.")?;
    let mut parts: Vec<&str> = rest.split('.').collect();
    // cannot panic: `parts[5]` only when there are 6 parts.
    if parts.len() == 6 && ["zst", "xz", "lz4", "gz"].contains(&parts[5]) {
        parts.pop();
    }
    let [comm, uid, boot_id, pid, usec] = parts[..] else {
        return None;
    };
    let boot_ok = boot_id.len() == 32 && boot_id.bytes().all(|b| b.is_ascii_hexdigit());
    if !boot_ok || comm.is_empty() {
        return None;
    }
    let usec: u64 = usec.parse().ok()?;
    Some(StoreName {
        comm: unescape(comm),
        uid: uid.parse().ok()?,
        boot_id: boot_id.to_string(),
        pid: pid.parse().ok()?,
        time: iso8601(usec / 1_000_000)?,
    })
}

/// `\xNN` escapes back to their characters.
fn unescape(text: &str) -> String {
    let mut out = Vec::with_capacity(text.len());
    let bytes = text.as_bytes();
    let mut i = 0;
    while let Some(&byte) = bytes.get(i) {
        if byte == b'\\' && bytes.get(i + 1) == Some(&b'x') {
            if let Some(byte) = text
                .get(i + 2..i + 4)
                .and_then(|hex| u8::from_str_radix(hex, 16).ok())
            {
                out.push(byte);
                i += 4;
                continue;
            }
        }
        out.push(byte);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Seconds since the epoch as `YYYY-MM-DDTHH:MM:SSZ` (Howard Hinnant's civil-from-days).
fn iso8601(seconds: u64) -> Option<String> {
    let days = i64::try_from(seconds / 86_400).ok()?;
    let of_day = seconds % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    Some(format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        of_day / 3600,
        of_day % 3600 / 60,
        of_day % 60
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_names_are_read() {
        let name = parse(
            "core.python3\\x2e11.1000.8e8c1dfd1c5a4e6fa2b5c0a3d4e5f601.4242.1764490502123456.zst",
        )
        .unwrap();
        assert_eq!(name.comm, "python3.11");
        assert_eq!(name.uid, 1000);
        assert_eq!(name.pid, 4242);
        assert_eq!(name.boot_id, "8e8c1dfd1c5a4e6fa2b5c0a3d4e5f601");
        // date -u -d @1764490502 +%FT%TZ
        assert_eq!(name.time, "2025-11-30T08:15:02Z");
        assert!(parse("core.1234").is_none());
        assert!(parse("core.python.1000.nothex.42.1.zst").is_none());
        assert_eq!(iso8601(0).unwrap(), "1970-01-01T00:00:00Z");
        assert_eq!(iso8601(951_782_400).unwrap(), "2000-02-29T00:00:00Z");
    }
}
