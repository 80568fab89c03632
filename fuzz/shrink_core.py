#!/usr/bin/env python3
"""Shrink an x86_64/aarch64 ELF core into a small fuzzing seed that is still a valid core.

Usage: shrink_core.py IN OUT [--min-zero-pages N] [--minimize PYCORE [PYCORE-ARGS...]]

1. Every PT_LOAD is cut into pieces: runs of at least N all-zero pages (default 16, i.e.
   64 KiB: unused thread stacks, untouched heap) become PT_LOAD headers with p_filesz = 0 (the
   mapping is still described, its bytes are "not dumped", as the kernel does for clean file
   pages), the other pages keep their bytes.
2. With --minimize, pages are then dropped (made "not dumped" the same way) for as long as
   `PYCORE analyze --json --no-source CORE PYCORE-ARGS` prints the same report with the same exit code:
   first whole pieces, then halves, down to single pages. What is left is the memory the
   analysis of this core reads, plus the notes.

PT_NOTE segments are copied unchanged. Section headers (gcore's "load" sections) are dropped:
they would point at moved data. Standard library only.
"""
import json
import os
import struct
import subprocess
import sys
import tempfile

PAGE = 4096
PT_LOAD = 1


def parse(data):
    assert data[:4] == b"\x7fELF" and data[4] == 2 and data[5] == 1, "64-bit LE ELF only"
    fields = struct.unpack_from("<HHIQQQIHHHHHH", data, 16)
    e_type, e_phoff, e_phentsize, e_phnum = fields[0], fields[4], fields[8], fields[9]
    assert e_type == 4, "not a core"
    assert e_phentsize == 56 and e_phnum != 0xFFFF, "extended numbering not handled"
    return [struct.unpack_from("<IIQQQQQQ", data, e_phoff + i * 56) for i in range(e_phnum)]


def pieces_of(data, min_zero):
    """[p_type, p_flags, vaddr, memsz, bytes, align, kept-page bitmap or None]"""
    out = []
    for p_type, p_flags, off, vaddr, _paddr, filesz, memsz, align in parse(data):
        if p_type != PT_LOAD:
            out.append([p_type, p_flags, vaddr, memsz, data[off : off + filesz], align, None])
            continue
        filesz = min(filesz, memsz, max(0, len(data) - off))
        body = data[off : off + filesz]
        pages = [body[i : i + PAGE].count(0) != len(body[i : i + PAGE])
                 for i in range(0, len(body), PAGE)]
        # Zero runs shorter than min_zero pages are kept: the analysis may read them.
        i = 0
        while i < len(pages):
            if pages[i]:
                i += 1
                continue
            j = i
            while j < len(pages) and not pages[j]:
                j += 1
            if j - i < min_zero:
                for k in range(i, j):
                    pages[k] = True
            i = j
        out.append([p_type, p_flags, vaddr, filesz, body, align, pages])
        if memsz > filesz:  # what the original did not dump stays not dumped
            out.append([PT_LOAD, p_flags, vaddr + filesz, memsz - filesz, b"", align, []])
    return out


def build(pieces, ehdr_src):
    headers, blobs = [], []
    for p_type, p_flags, vaddr, memsz, body, align, pages in pieces:
        if pages is None:
            headers.append((p_type, p_flags, vaddr, memsz, body, align))
            continue
        if not pages:
            headers.append((p_type, p_flags, vaddr, memsz, b"", align))
            continue
        i = 0
        while i < len(pages):
            j = i
            while j < len(pages) and pages[j] == pages[i]:
                j += 1
            start, end = i * PAGE, min(j * PAGE, memsz)
            headers.append((p_type, p_flags, vaddr + start, end - start,
                            body[start:end] if pages[i] else b"", align))
            i = j
    offset = 64 + 56 * len(headers)
    table = []
    for p_type, p_flags, vaddr, memsz, blob, align in headers:
        table.append(struct.pack("<IIQQQQQQ", p_type, p_flags, offset if blob else 0, vaddr, 0,
                                 len(blob), memsz, align))
        blobs.append(blob)
        offset += len(blob)
    ehdr = bytearray(ehdr_src[:64])
    # e_phoff, e_shoff, e_flags kept, e_ehsize, e_phentsize, e_phnum, e_shentsize, e_shnum, e_shstrndx
    struct.pack_into("<QQ", ehdr, 32, 64, 0)
    struct.pack_into("<HHHHHH", ehdr, 52, 64, 56, len(headers), 0, 0, 0)
    return bytes(ehdr) + b"".join(table) + b"".join(blobs)


def report(pycore, args, path):
    # --no-source: source files on disk may change meanwhile; they are not in the core anyway.
    run = subprocess.run([pycore, "analyze", "--json", "--no-source", path] + args,
                         capture_output=True, timeout=60)
    try:
        doc = json.loads(run.stdout)
        doc.get("core", {}).pop("path", None)
    except ValueError:
        doc = run.stdout
    return run.returncode, doc, run.stderr


def minimize(pieces, ehdr_src, pycore, args):
    tmp = tempfile.NamedTemporaryFile(suffix=".core", delete=False)
    tmp.close()

    def outcome():
        with open(tmp.name, "wb") as f:
            f.write(build(pieces, ehdr_src))
        return report(pycore, args, tmp.name)

    want = outcome()
    if want[0] not in (0, 1):
        sys.exit(f"pycore does not analyse the core (exit {want[0]}): {want[2].decode()}")
    runs = 0
    # Work list: (piece index, first page, page count).
    work = [(n, 0, len(p[6])) for n, p in enumerate(pieces) if p[6]]
    work.sort(key=lambda w: -w[2])
    while work:
        n, first, count = work.pop(0)
        pages = pieces[n][6]
        before = pages[first : first + count]
        if not any(before):
            continue
        pages[first : first + count] = [False] * count
        runs += 1
        if outcome() == want:
            continue
        pages[first : first + count] = before
        if count > 1:
            half = count // 2
            work[:0] = [(n, first, half), (n, first + half, count - half)]
    os.unlink(tmp.name)
    return runs


def main():
    args = sys.argv[1:]
    min_zero = 16
    pycore = None
    if "--minimize" in args:
        i = args.index("--minimize")
        pycore, pycore_args = args[i + 1], args[i + 2 :]
        del args[i:]
    if "--min-zero-pages" in args:
        i = args.index("--min-zero-pages")
        min_zero = int(args[i + 1])
        del args[i : i + 2]
    src, dst = args
    data = open(src, "rb").read()
    pieces = pieces_of(data, min_zero)
    runs = minimize(pieces, data, pycore, pycore_args) if pycore else 0
    out = build(pieces, data)
    with open(dst, "wb") as f:
        f.write(out)
    print(f"{src}: {len(data)} -> {len(out)} bytes ({runs} pycore runs)", file=sys.stderr)


if __name__ == "__main__":
    main()
