//! Source line numbers from a code object's line table, one decoder per table format.
//!
//! - ≤3.9: `co_lnotab`, pairs of (byte offset delta, line delta) — `PyCode_Addr2Line` in
//!   Objects/codeobject.c; the line delta is unsigned before 3.6 and signed from 3.6.
//! - 3.10: `co_linetable`, pairs of (byte offset delta, signed line delta; -128 = no line) —
//!   Objects/lnotab_notes.txt.
//! - 3.11+: the location table of Objects/locations.md: varint-coded entries covering runs of
//!   code units.
//!
//! All decoders are bounded by the table's length and return `None` for "no line".

/// The line of the instruction at `byte_offset` in a `co_lnotab` table (≤3.9).
pub fn lnotab_line(table: &[u8], first_line: u32, byte_offset: u64, signed_deltas: bool) -> u32 {
    let mut line = i64::from(first_line);
    let mut address = 0u64;
    for pair in table.chunks_exact(2) {
        let &[advance, delta] = pair else { break };
        address += u64::from(advance);
        if address > byte_offset {
            break;
        }
        line += if signed_deltas {
            i64::from(delta as i8)
        } else {
            i64::from(delta)
        };
    }
    line.clamp(0, i64::from(u32::MAX)) as u32
}

/// The line of the instruction at `byte_offset` in a 3.10 `co_linetable`.
pub fn linetable_310_line(table: &[u8], first_line: u32, byte_offset: u64) -> Option<u32> {
    let mut line = i64::from(first_line);
    let mut end = 0u64;
    for pair in table.chunks_exact(2) {
        let &[advance, delta] = pair else { break };
        let start = end;
        end += u64::from(advance);
        let delta = delta as i8;
        let range_line = if delta == -128 {
            None
        } else {
            line += i64::from(delta);
            Some(line)
        };
        if start <= byte_offset && byte_offset < end {
            return range_line.and_then(|l| u32::try_from(l).ok());
        }
    }
    None
}

/// Where an instruction is in its source, from a 3.11+ location table, as
/// `code.co_positions()` gives it: columns are 0-based UTF-8 byte offsets; any part may be
/// unknown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Position {
    pub line: Option<u32>,
    pub end_line: Option<u32>,
    pub column: Option<u32>,
    pub end_column: Option<u32>,
}

/// The line of code unit `index` in a 3.11+ location table.
#[cfg(test)]
pub fn location_table_line(table: &[u8], first_line: u32, index: u64) -> Option<u32> {
    location_table_position(table, first_line, index).and_then(|p| p.line)
}

/// The position of code unit `index` in a 3.11+ location table (Objects/locations.md):
/// `None` when the table does not cover it or is corrupt.
pub fn location_table_position(table: &[u8], first_line: u32, index: u64) -> Option<Position> {
    let mut reader = Reader { table, at: 0 };
    let mut line = i64::from(first_line);
    let mut start = 0u64;
    let to_u32 = |v: i64| u32::try_from(v).ok();
    while let Some(first) = reader.byte() {
        if first & 0x80 == 0 {
            return None; // not at an entry start: the table is corrupt
        }
        let code = (first >> 3) & 0x0f;
        let length = u64::from(first & 0x07) + 1;
        let position = match code {
            15 => Position::default(),
            14 => {
                line = line.checked_add(reader.signed_varint()?)?;
                let end_line = line.checked_add(i64::try_from(reader.varint()?).ok()?)?;
                // Columns are stored + 1: 0 means unknown.
                let column = reader.varint()?.checked_sub(1);
                let end_column = reader.varint()?.checked_sub(1);
                Position {
                    line: to_u32(line),
                    end_line: to_u32(end_line),
                    column: column.and_then(|c| u32::try_from(c).ok()),
                    end_column: end_column.and_then(|c| u32::try_from(c).ok()),
                }
            }
            13 => {
                line = line.checked_add(reader.signed_varint()?)?;
                Position {
                    line: to_u32(line),
                    end_line: to_u32(line),
                    column: None,
                    end_column: None,
                }
            }
            10..=12 => {
                line = line.checked_add(i64::from(code - 10))?;
                let column = u32::from(reader.byte()?);
                let end_column = u32::from(reader.byte()?);
                Position {
                    line: to_u32(line),
                    end_line: to_u32(line),
                    column: Some(column),
                    end_column: Some(end_column),
                }
            }
            _ => {
                // Short form: the same line; column code * 8 + the second byte's high 3 bits,
                // end column that plus its low 4 bits.
                let second = reader.byte()?;
                let column = u32::from(code) * 8 + u32::from((second >> 4) & 7);
                Position {
                    line: to_u32(line),
                    end_line: to_u32(line),
                    column: Some(column),
                    end_column: Some(column + u32::from(second & 15)),
                }
            }
        };
        let end = start + length;
        if start <= index && index < end {
            return Some(position);
        }
        start = end;
    }
    None
}

struct Reader<'a> {
    table: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn byte(&mut self) -> Option<u8> {
        let b = *self.table.get(self.at)?;
        self.at += 1;
        Some(b)
    }

    /// 6-bit little-endian chunks, bit 6 set on all but the last.
    fn varint(&mut self) -> Option<u64> {
        let mut value = 0u64;
        for shift in (0..64).step_by(6) {
            let b = self.byte()?;
            value |= u64::from(b & 0x3f) << shift;
            if b & 0x40 == 0 {
                return Some(value);
            }
        }
        None
    }

    fn signed_varint(&mut self) -> Option<i64> {
        let raw = self.varint()?;
        let magnitude = (raw >> 1) as i64;
        Some(if raw & 1 == 1 { -magnitude } else { magnitude })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lnotab_walks_until_the_offset() {
        // line 10 at 0..6, line 12 at 6..20, line 11 from 20 on.
        let table = [6, 2, 14, 0xff];
        assert_eq!(lnotab_line(&table, 10, 0, true), 10);
        assert_eq!(lnotab_line(&table, 10, 6, true), 12);
        assert_eq!(lnotab_line(&table, 10, 19, true), 12);
        assert_eq!(lnotab_line(&table, 10, 20, true), 11);
        assert_eq!(lnotab_line(&table, 10, 20, false), 12 + 255);
    }

    #[test]
    fn linetable_310_ranges_and_no_line() {
        // 0..4 line 5, 4..8 no line, 8..12 line 7.
        let table = [4, 0, 4, 0x80, 4, 2];
        assert_eq!(linetable_310_line(&table, 5, 0), Some(5));
        assert_eq!(linetable_310_line(&table, 5, 5), None);
        assert_eq!(linetable_310_line(&table, 5, 10), Some(7));
        assert_eq!(linetable_310_line(&table, 5, 12), None);
    }

    #[test]
    fn location_table_forms() {
        let table = [
            0x80 | (13 << 3),     // no-column form, 1 unit
            2 << 1,               // +2
            0x80 | (11 << 3) | 1, // one-line form +1, 2 units
            0,
            0,
            0x80 | (15 << 3), // no location, 1 unit
            0x80 | (14 << 3), // long form, 1 unit
            (3 << 1) | 1,     // -3
            0,
            0,
            0,
            0x80 | (2 << 3) | 2, // short form, 3 units
            0,
        ];
        assert_eq!(location_table_line(&table, 100, 0), Some(102));
        assert_eq!(location_table_line(&table, 100, 2), Some(103));
        assert_eq!(location_table_line(&table, 100, 3), None);
        assert_eq!(location_table_line(&table, 100, 4), Some(100));
        assert_eq!(location_table_line(&table, 100, 7), Some(100));
        assert_eq!(location_table_line(&table, 100, 8), None);
        // A table that is cut mid-entry or garbage yields no line rather than a panic.
        assert_eq!(location_table_line(&table[..8], 100, 4), None);
        assert_eq!(location_table_line(&[0x01, 0x02], 1, 0), None);
    }

    #[test]
    fn location_table_columns() {
        let table = [
            0x80 | (3 << 3),      // short form, column 3 * 8 + 2 .. + 5, 1 unit
            (2 << 4) | 5,         //
            0x80 | (10 << 3) | 1, // one-line form +0: columns 4 .. 17, 2 units
            4,
            17,
            0x80 | (14 << 3), // long form: +2, ends 1 line later, columns 7 .. unknown
            2 << 1,
            1,
            8,
            0,
            0x80 | (13 << 3), // no-column form -1
            (1 << 1) | 1,
        ];
        let position = |index| location_table_position(&table, 10, index);
        let at = |line, end_line, column, end_column| {
            Some(Position {
                line,
                end_line,
                column,
                end_column,
            })
        };
        assert_eq!(position(0), at(Some(10), Some(10), Some(26), Some(31)));
        assert_eq!(position(2), at(Some(10), Some(10), Some(4), Some(17)));
        assert_eq!(position(3), at(Some(12), Some(13), Some(7), None));
        assert_eq!(position(4), at(Some(11), Some(11), None, None));
        assert_eq!(position(5), None);
    }

    #[test]
    fn varints_span_chunks() {
        let mut reader = Reader {
            table: &[0x41, 0x01],
            at: 0,
        };
        assert_eq!(reader.varint(), Some(1 | (1 << 6)));
    }
}
