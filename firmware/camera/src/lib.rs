//! # microcnn-camera
//!
//! Frame sources for the classification loop.
//!
//! - [`Camera`]: the trait the loop captures through;
//! - [`replay::Replay`]: frames stored in flash (the frames region of
//!   `microcnn-layout`), for QEMU and for bring-up without a sensor;
//! - [`arducam::ArduCamMini2mp`]: an ArduCAM Mini 2MP-class module (OV2640 sensor
//!   configured over I2C, frame FIFO read over SPI), written only against
//!   embedded-hal 1.0 (`SpiDevice`, `I2c`, `DelayNs`) so any HAL can host it.
//!
//! `no_std`, no allocation; the unit tests run on the host (`cargo test
//! --target x86_64-unknown-linux-gnu -p microcnn-camera` in `firmware/`).
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod arducam;
pub mod replay;

pub use microcnn_layout::frames::PixelFormat;

/// The size and pixel format of the frames a camera delivers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct FrameFormat {
    /// Width in pixels.
    pub width: u16,
    /// Height in pixels.
    pub height: u16,
    /// Channels (used by `PixelFormat::Int8Tensor`; implied by the others).
    pub channels: u16,
    /// How pixels are stored.
    pub pixels: PixelFormat,
}

impl FrameFormat {
    /// Bytes of one frame.
    pub fn frame_bytes(&self) -> usize {
        microcnn_layout::frames::Header {
            format: self.pixels,
            width: self.width,
            height: self.height,
            channels: self.channels,
            count: 0,
        }
        .frame_bytes()
    }
}

/// A source of frames.
///
/// ```
/// use microcnn_camera::{Camera, FrameFormat};
/// fn grab<'b, C: Camera>(camera: &mut C, buffer: &'b mut [u8]) -> Option<&'b [u8]> {
///     let bytes = camera.format().frame_bytes();
///     camera.capture(buffer.get_mut(..bytes)?).ok()
/// }
/// ```
pub trait Camera {
    /// What can go wrong while capturing.
    type Error: core::fmt::Debug;

    /// The format of the frames [`capture`](Self::capture) delivers.
    fn format(&self) -> FrameFormat;

    /// Captures one frame into `buffer`, which must hold at least
    /// [`FrameFormat::frame_bytes`], and returns the frame's bytes.
    fn capture<'b>(&mut self, buffer: &'b mut [u8]) -> Result<&'b [u8], Self::Error>;
}
