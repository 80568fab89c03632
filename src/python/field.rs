//! Typed struct members: a [`Field<T>`] is where a member of C type `T` sits in its struct, and
//! reading it goes through `T`'s width, so no caller picks a width by hand (PyStack's
//! `FieldOffset<T>` is the model). The generated [`Layout`](super::layout::Layout) holds one per
//! member the walker reads, grouped by C struct.

use std::fmt;
use std::marker::PhantomData;

use crate::memory::{Memory, Unreadable};

/// A pointer member, read as an address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ptr;

/// A C scalar type a member can have, and how to read it.
pub trait Scalar {
    type Value;
    fn read(memory: &(impl Memory + ?Sized), address: u64) -> Result<Self::Value, Unreadable>;
}

impl Scalar for Ptr {
    type Value = u64;
    fn read(memory: &(impl Memory + ?Sized), address: u64) -> Result<u64, Unreadable> {
        memory.read_u64(address)
    }
}

impl Scalar for u64 {
    type Value = u64;
    fn read(memory: &(impl Memory + ?Sized), address: u64) -> Result<u64, Unreadable> {
        memory.read_u64(address)
    }
}

impl Scalar for i64 {
    type Value = i64;
    fn read(memory: &(impl Memory + ?Sized), address: u64) -> Result<i64, Unreadable> {
        memory.read_u64(address).map(|v| v as i64)
    }
}

impl Scalar for u32 {
    type Value = u32;
    fn read(memory: &(impl Memory + ?Sized), address: u64) -> Result<u32, Unreadable> {
        memory.read_u32(address)
    }
}

impl Scalar for i32 {
    type Value = i32;
    fn read(memory: &(impl Memory + ?Sized), address: u64) -> Result<i32, Unreadable> {
        memory.read_i32(address)
    }
}

impl Scalar for u8 {
    type Value = u8;
    fn read(memory: &(impl Memory + ?Sized), address: u64) -> Result<u8, Unreadable> {
        memory.read_u8(address)
    }
}

/// The byte offset of a member of type `T` from the start of its struct.
pub struct Field<T> {
    offset: u32,
    member_type: PhantomData<fn() -> T>,
}

impl<T> Field<T> {
    pub const fn at(offset: u32) -> Self {
        Field {
            offset,
            member_type: PhantomData,
        }
    }

    pub const fn offset(&self) -> u32 {
        self.offset
    }

    /// The member's address in the struct at `base` (wrapping: `base` comes from the core).
    pub fn address(&self, base: u64) -> u64 {
        base.wrapping_add(u64::from(self.offset))
    }
}

impl<T: Scalar> Field<T> {
    /// The member of the struct at `base`.
    pub fn read(&self, memory: &(impl Memory + ?Sized), base: u64) -> Result<T::Value, Unreadable> {
        T::read(memory, self.address(base))
    }
}

impl<T> Clone for Field<T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for Field<T> {}

impl<T> PartialEq for Field<T> {
    fn eq(&self, other: &Self) -> bool {
        self.offset == other.offset
    }
}

impl<T> Eq for Field<T> {}

impl<T> fmt::Debug for Field<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Field({})", self.offset)
    }
}

/// Anything in a [`Layout`](super::layout::Layout) that holds one offset: a field, an array's
/// start or a size, required or optional. `_Py_DebugOffsets` overrides go through this.
pub trait OffsetSlot {
    fn get(&self) -> Option<u32>;
    fn set(&mut self, offset: u32);
}

impl<T> OffsetSlot for Field<T> {
    fn get(&self) -> Option<u32> {
        Some(self.offset)
    }
    fn set(&mut self, offset: u32) {
        self.offset = offset;
    }
}

impl<T> OffsetSlot for Option<Field<T>> {
    fn get(&self) -> Option<u32> {
        self.as_ref().map(Field::offset)
    }
    fn set(&mut self, offset: u32) {
        *self = Some(Field::at(offset));
    }
}

impl OffsetSlot for u32 {
    fn get(&self) -> Option<u32> {
        Some(*self)
    }
    fn set(&mut self, offset: u32) {
        *self = offset;
    }
}

impl OffsetSlot for Option<u32> {
    fn get(&self) -> Option<u32> {
        *self
    }
    fn set(&mut self, offset: u32) {
        *self = Some(offset);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::fake::FakeMemory;

    #[test]
    fn reads_with_the_members_width() {
        let mut memory = FakeMemory::default();
        memory.add(
            0x1000,
            vec![0xff; 8].into_iter().chain([1, 0, 0, 0]).collect(),
        );
        assert_eq!(Field::<u8>::at(0).read(&memory, 0x1000), Ok(0xff));
        assert_eq!(Field::<i32>::at(0).read(&memory, 0x1000), Ok(-1));
        assert_eq!(Field::<i64>::at(0).read(&memory, 0x1000), Ok(-1));
        assert_eq!(Field::<Ptr>::at(8).read(&memory, 0xff8), Ok(u64::MAX));
        assert_eq!(Field::<u32>::at(8).read(&memory, 0x1000), Ok(1));
        assert!(Field::<u64>::at(8).read(&memory, 0x1000).is_err());
    }

    #[test]
    fn slots_set_and_get_offsets() {
        let mut optional: Option<Field<Ptr>> = None;
        assert_eq!(optional.get(), None);
        optional.set(24);
        assert_eq!(optional, Some(Field::at(24)));
        let mut size = 8_u32;
        size.set(16);
        assert_eq!(size.get(), Some(16));
    }
}
