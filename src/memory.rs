//! Bounded reads by virtual address: the [`Memory`] trait is the one way every reader above the
//! core reads the process, so the Python walker can run on a core ([`AddressSpace`]) or on
//! synthetic memory in unit tests.

pub use crate::address_space::AddressSpace;

/// A read that the core and its registered files cannot serve.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("memory at {addr:#x} ({len} bytes) {}", if *.cut_off { "was dumped, but the core file is cut off before it" } else { "is not in the core or in its mapped files" })]
pub struct Unreadable {
    pub addr: u64,
    pub len: usize,
    /// The core dumped this memory but the file is truncated before it.
    pub cut_off: bool,
}

/// Largest single read the readers above will ask for; bigger requests are refused so that a
/// size read from hostile memory can never drive an allocation.
pub const MAX_READ: usize = 16 << 20;

/// Bounded reads by virtual address.
pub trait Memory {
    /// Fill `buf` with the bytes at `addr`, or fail without partial results.
    fn read(&self, addr: u64, buf: &mut [u8]) -> Result<(), Unreadable>;

    fn read_u8(&self, addr: u64) -> Result<u8, Unreadable> {
        let mut buf = [0u8; 1];
        self.read(addr, &mut buf)?;
        Ok(u8::from_le_bytes(buf))
    }

    fn read_u32(&self, addr: u64) -> Result<u32, Unreadable> {
        let mut buf = [0u8; 4];
        self.read(addr, &mut buf)?;
        Ok(u32::from_le_bytes(buf))
    }

    fn read_i32(&self, addr: u64) -> Result<i32, Unreadable> {
        Ok(self.read_u32(addr)? as i32)
    }

    fn read_u64(&self, addr: u64) -> Result<u64, Unreadable> {
        let mut buf = [0u8; 8];
        self.read(addr, &mut buf)?;
        Ok(u64::from_le_bytes(buf))
    }

    /// Read `len` bytes into a new vector; `len` above [`MAX_READ`] is refused.
    fn read_vec(&self, addr: u64, len: usize) -> Result<Vec<u8>, Unreadable> {
        if len > MAX_READ {
            return Err(Unreadable {
                addr,
                len,
                cut_off: false,
            });
        }
        let mut buf = vec![0u8; len];
        self.read(addr, &mut buf)?;
        Ok(buf)
    }
}

/// A NUL-terminated string of at most `limit` bytes at `addr` (lossy UTF-8); `None` if it is
/// unreadable or longer.
pub fn read_c_string(memory: &impl Memory, addr: u64, limit: usize) -> Option<String> {
    let mut out = Vec::new();
    while out.len() < limit {
        let byte = memory.read_u8(addr.checked_add(out.len() as u64)?).ok()?;
        if byte == 0 {
            return Some(String::from_utf8_lossy(&out).into_owned());
        }
        out.push(byte);
    }
    None
}

/// Synthetic memory for unit tests: a set of byte regions at given addresses.
#[cfg(test)]
pub mod fake {
    use super::{Memory, Unreadable};

    #[derive(Default)]
    pub struct FakeMemory {
        regions: Vec<(u64, Vec<u8>)>,
    }

    impl FakeMemory {
        pub fn add(&mut self, addr: u64, bytes: Vec<u8>) {
            self.regions.push((addr, bytes));
        }
    }

    impl Memory for FakeMemory {
        fn read(&self, addr: u64, buf: &mut [u8]) -> Result<(), Unreadable> {
            let fail = Unreadable {
                addr,
                len: buf.len(),
                cut_off: false,
            };
            // The region added last wins where regions overlap (tests patch memory that way).
            for (start, bytes) in self.regions.iter().rev() {
                if addr >= *start {
                    let offset = (addr - start) as usize;
                    if let Some(src) = offset
                        .checked_add(buf.len())
                        .and_then(|end| bytes.get(offset..end))
                    {
                        buf.copy_from_slice(src);
                        return Ok(());
                    }
                }
            }
            Err(fail)
        }
    }
}
