//! KPL `.properties` files for `--config`, as `kpl_core::ProducerConfig::from_properties` reads them.

use std::path::Path;

use kpl_core::LoadedProperties;

use crate::error::CliError;

/// The file's settings, validated, warning on standard error about what it holds that the producer ignores.
pub fn load(path: &Path) -> Result<LoadedProperties, CliError> {
    let text = std::fs::read_to_string(path)
        .map_err(|source| CliError::ReadFile { path: path.to_owned(), source })?;
    let loaded = kpl_tokio::ProducerConfig::from_properties(&text)
        .map_err(|source| CliError::Properties { path: path.to_owned(), source })?;
    for warning in &loaded.warnings {
        eprintln!("kpl: warning: {}: {warning}", path.display());
    }
    Ok(loaded)
}
