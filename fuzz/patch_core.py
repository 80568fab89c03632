#!/usr/bin/env python3
"""Write 8-byte little-endian values at virtual addresses of an ELF core (for reproducers).

Usage: patch_core.py IN OUT VADDR=VALUE [VADDR=VALUE...]   (numbers in 0x-hex or decimal)

The address must be dumped in IN (inside a PT_LOAD's file bytes). Standard library only.
"""
import struct
import sys


def main():
    src, dst, *patches = sys.argv[1:]
    data = bytearray(open(src, "rb").read())
    phoff, = struct.unpack_from("<Q", data, 32)
    phnum, = struct.unpack_from("<H", data, 56)
    loads = []
    for i in range(phnum):
        p_type, _, off, vaddr, _, filesz, _, _ = struct.unpack_from("<IIQQQQQQ", data, phoff + 56 * i)
        if p_type == 1 and filesz:
            loads.append((vaddr, off, filesz))
    for patch in patches:
        addr, value = (int(x, 0) for x in patch.split("="))
        for vaddr, off, filesz in loads:
            if vaddr <= addr and addr + 8 <= vaddr + filesz:
                at = off + addr - vaddr
                old, = struct.unpack_from("<Q", data, at)
                struct.pack_into("<Q", data, at, value & (2**64 - 1))
                print(f"{addr:#x} (file offset {at:#x}): {old:#x} -> {value:#x}")
                break
        else:
            sys.exit(f"{addr:#x} is not dumped in {src}")
    open(dst, "wb").write(data)


if __name__ == "__main__":
    main()
