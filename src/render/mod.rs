//! Output formats. Each takes the finished [`Report`](crate::report::Report) and writes it; none
//! reads the core.

pub mod json;
pub mod text;
