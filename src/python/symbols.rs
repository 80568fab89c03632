//! The interpreter's symbols in the binaries the core ran: the [`SymbolSource`] of a real core.

use super::{version, PythonVersion, SymbolSource};
use crate::binaries::PythonBinaries;

impl SymbolSource for PythonBinaries {
    fn symbol(&self, name: &str) -> Option<u64> {
        self.symbol_address(name)
    }

    fn api_symbol(&self, name: &str) -> Option<u64> {
        self.api_symbol_address(name)
    }

    fn abi_flags(&self) -> String {
        self.file_names()
            .into_iter()
            .find_map(version::abi_flags_from_file_name)
            .unwrap_or_default()
    }

    fn version_hint(&self) -> Option<PythonVersion> {
        self.file_names()
            .into_iter()
            .find_map(version::version_from_file_name)
    }
}
