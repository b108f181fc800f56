//! A camera that replays frames stored in memory (the frames region in flash).
//!
//! The region starts with a [`microcnn_layout::frames::Header`]; the frames follow
//! back to back. [`Replay::capture`] serves them in order and reports
//! [`ReplayError::Exhausted`] after the last one (or starts over, with
//! [`Replay::looping`]).

use crate::{Camera, FrameFormat};
use microcnn_layout::frames::{Header, HEADER_LEN};

/// Why a region cannot be replayed, or a frame not served.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum ReplayError {
    /// The region does not start with a valid frames header.
    NoHeader,
    /// The header promises more frames than the region holds.
    Truncated {
        /// Bytes the header promises.
        needed: usize,
        /// Bytes in the region.
        available: usize,
    },
    /// Every frame was served.
    Exhausted,
    /// The capture buffer is smaller than a frame.
    BufferTooSmall {
        /// Bytes of a frame.
        needed: usize,
        /// Bytes given.
        available: usize,
    },
}

/// Frames served from a byte region.
#[derive(Clone, Debug)]
pub struct Replay<'a> {
    header: Header,
    frames: &'a [u8],
    next: usize,
    looping: bool,
}

impl<'a> Replay<'a> {
    /// Reads the header at the start of `region` and checks that the frames fit.
    pub fn new(region: &'a [u8]) -> Result<Self, ReplayError> {
        let header = Header::parse(region).ok_or(ReplayError::NoHeader)?;
        let needed = HEADER_LEN + header.frame_bytes() * usize::from(header.count);
        if region.len() < needed {
            return Err(ReplayError::Truncated { needed, available: region.len() });
        }
        Ok(Self { header, frames: &region[HEADER_LEN..needed], next: 0, looping: false })
    }

    /// Starts over after the last frame instead of reporting `Exhausted`.
    pub fn looping(mut self) -> Self {
        self.looping = true;
        self
    }

    /// Number of frames in the region.
    pub fn len(&self) -> usize {
        usize::from(self.header.count)
    }

    /// True when the region holds no frame.
    pub fn is_empty(&self) -> bool {
        self.header.count == 0
    }

    /// Index of the frame the next capture serves.
    pub fn position(&self) -> usize {
        self.next
    }

    /// The next frame, in place (no copy).
    pub fn next_frame(&mut self) -> Result<&'a [u8], ReplayError> {
        if self.next >= self.len() {
            if !self.looping || self.is_empty() {
                return Err(ReplayError::Exhausted);
            }
            self.next = 0;
        }
        let size = self.header.frame_bytes();
        let start = self.next * size;
        self.next += 1;
        // In bounds: `new` checked that `count` frames fit.
        self.frames.get(start..start + size).ok_or(ReplayError::Exhausted)
    }
}

impl Camera for Replay<'_> {
    type Error = ReplayError;

    fn format(&self) -> FrameFormat {
        FrameFormat {
            width: self.header.width,
            height: self.header.height,
            channels: self.header.channels,
            pixels: self.header.format,
        }
    }

    fn capture<'b>(&mut self, buffer: &'b mut [u8]) -> Result<&'b [u8], ReplayError> {
        let needed = self.header.frame_bytes();
        if buffer.len() < needed {
            return Err(ReplayError::BufferTooSmall { needed, available: buffer.len() });
        }
        let frame = self.next_frame()?;
        buffer[..needed].copy_from_slice(frame);
        Ok(&buffer[..needed])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use microcnn_layout::frames::PixelFormat;

    fn region(count: u16) -> Vec<u8> {
        let h = Header { format: PixelFormat::Gray8, width: 2, height: 1, channels: 1, count };
        let mut r = h.to_bytes().to_vec();
        for i in 0..count {
            r.extend([i as u8, 100 + i as u8]);
        }
        r
    }

    #[test]
    fn serves_frames_in_order_then_exhausts() {
        let r = region(2);
        let mut cam = Replay::new(&r).unwrap();
        let mut buf = [0u8; 4];
        assert_eq!(cam.capture(&mut buf).unwrap(), &[0, 100]);
        assert_eq!(cam.capture(&mut buf).unwrap(), &[1, 101]);
        assert_eq!(cam.capture(&mut buf), Err(ReplayError::Exhausted));
        let mut looping = Replay::new(&r).unwrap().looping();
        for _ in 0..2 {
            looping.next_frame().unwrap();
        }
        assert_eq!(looping.next_frame().unwrap(), &[0, 100]);
    }

    #[test]
    fn rejects_bad_regions_and_small_buffers() {
        assert_eq!(Replay::new(&[0xFF; 64]).unwrap_err(), ReplayError::NoHeader);
        let r = region(2);
        assert_eq!(Replay::new(&r[..r.len() - 1]).unwrap_err(), ReplayError::Truncated { needed: 20, available: 19 });
        let mut cam = Replay::new(&r).unwrap();
        assert_eq!(cam.capture(&mut [0u8; 1]), Err(ReplayError::BufferTooSmall { needed: 2, available: 1 }));
    }
}
