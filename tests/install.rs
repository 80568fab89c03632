//! Getting pycore onto a machine and plugging it in (issue 15).
//!
//! - `pycore completions bash|zsh|fish` and `pycore man` (tests/install/shell.rs): each
//!   generates; bash's script, sourced into a real bash, completes the subcommands; the man
//!   page renders with `man` and documents every subcommand's options.
//! - tools/ci-analyze-cores.sh (tests/install/ci_script.rs): on the kernel's core of a real
//!   os.abort() it writes CORE.md and CORE.json with the recorded stacks, prints the
//!   markdown and exits 1; with no core it exits 0.
//! - `pip wheel .` (tests/install/wheel.rs): the maturin wheel installs into a fresh venv and
//!   its `pycore` analyses the committed example; the glibc it needs fits the wheel's tag.

mod ci_script;
mod debuginfod;
mod shell;
mod wheel;
