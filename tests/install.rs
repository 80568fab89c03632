//! Getting pycore onto a machine and plugging it in (issue 15).
//!
//! - `pycore completions bash|zsh|fish` and `pycore man` (tests/install/shell.rs): each
//!   generates; bash's script, sourced into a real bash, completes the subcommands; the man
//!   page renders with `man` and documents every subcommand's options.

mod shell;
