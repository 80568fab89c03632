//! Helpers shared by the integration tests: finding Python interpreters,
//! running the scenario programs of tests/scenarios/, taking cores, running
//! pycore and comparing its report with what the scenario recorded.

pub mod elf;
pub mod facts;
pub mod interpreters;
pub mod kernel;
pub mod matrix;
pub mod process;
pub mod scenario;
pub mod stacks;
