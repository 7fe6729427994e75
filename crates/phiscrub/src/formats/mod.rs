//! The container walkers of [`phiscrub_formats`], with HEIF's items read through libheif.
//!
//! Everything but HEIF is walked in pure Rust by `phiscrub-formats`; this module adds the
//! libheif inventory and routes [`scan`] to it.

pub use phiscrub_formats::*;

#[cfg(feature = "heif")]
pub mod heif;

/// Reads a file's container structure. Dimensions are checked against `limits`.
pub fn scan(format: Format, data: &[u8], limits: &Limits) -> Result<Scan, crate::Error> {
    match format {
        Format::Heif => scan_heif(data, limits),
        other => Ok(phiscrub_formats::scan(other, data, limits)?),
    }
}

#[cfg(feature = "heif")]
fn scan_heif(data: &[u8], limits: &Limits) -> Result<Scan, crate::Error> {
    heif::check_items(data, limits.max_heif_items)?;
    let scan = heif::scan(data)?;
    limits.check_dimensions(scan.width, scan.height)?;
    Ok(scan)
}

#[cfg(not(feature = "heif"))]
fn scan_heif(_: &[u8], _: &Limits) -> Result<Scan, crate::Error> {
    Err(crate::Error::unsupported(
        Format::Heif,
        "this build reads no HEIF (built without libheif)",
    ))
}
