//! The engine of a build without the `detect` feature: a type with no values. Code that holds
//! an `Option<Arc<Engine>>` compiles unchanged, and the option is always `None`, so no image
//! can be mistaken for one that was searched.

use image::RgbImage;

use super::{Categories, Detections};
use crate::{Deadline, Error};

/// No engine can exist in this build (it was built without the `detect` feature).
#[derive(Debug)]
pub enum Engine {}

impl Engine {
    /// Never called: there is no engine to call it on.
    pub fn detect_only(
        &self,
        _: &RgbImage,
        _: &Deadline,
        _: Categories,
    ) -> Result<Detections, Error> {
        match *self {}
    }

    /// Never called.
    pub fn code_readable(&self, _: &RgbImage, _: &Deadline) -> Result<bool, Error> {
        match *self {}
    }

    /// Never called.
    pub fn detectors_for(&self, _: Categories) -> Vec<String> {
        match *self {}
    }
}
