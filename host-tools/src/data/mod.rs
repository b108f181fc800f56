//! Images in: labelled [`dataset`]s, the one image [`preprocess`]ing from file to
//! model input (core's, the firmware's), and random [`augment`]ation.

pub mod augment;
pub mod dataset;
pub mod preprocess;
