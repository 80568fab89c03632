//! The integration tests, one crate (their helpers in `support` compile once): each module
//! runs the real `pycore` binary on real cores or hostile input.
//!
//! - `aarch64`: arm64 pythons under qemu-user, their cores (no NT_FILE) against their records,
//!   and kernel cores that lost their NT_FILE;
//! - `cores`: every interpreter row's parked threads, against what the process recorded;
//! - `forensics`: crashes (kernel and gdb cores) and per-thread facts;
//! - `subinterpreters`: thread states in several interpreters;
//! - `native`: native stacks against gdb on the same core;
//! - `greenlets`: every greenlet's stack against what the process recorded;
//! - `locals`: `--locals` against the values each parked function recorded;
//! - `pack`: `pycore pack` (same report, no other file opened) and the committed packed cores;
//! - `asyncio`: every event loop's tasks against what the process recorded;
//! - `str_hash`: the `str` hash pycore searches dicts with, against each interpreter's own;
//! - `batch`: many cores at once (JSON Lines, the summary) and crash signatures;
//! - `inputs`, `bad_input`, `mutation`: real-world, wrong and hostile input;
//! - `install`: completions, man page, packaging, the CI recipe script;
//! - `example`: the committed example.

mod support;

mod aarch64;
mod asyncio;
mod bad_input;
mod batch;
mod cores;
mod example;
mod forensics;
mod greenlets;
mod inputs;
mod install;
mod locals;
mod mutation;
mod native;
mod pack;
mod str_hash;
mod subinterpreters;
