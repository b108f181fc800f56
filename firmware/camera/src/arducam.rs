//! ArduCAM Mini 2MP-class camera module: an OV2640 sensor configured over I2C, and the
//! module's frame FIFO ("ArduChip") read over SPI. Written only against embedded-hal
//! 1.0: any `SpiDevice` (which owns chip select), `I2c` and `DelayNs`.
//!
//! The contract:
//!
//! - [`ArduCamMini2mp::init`] checks the SPI link (writes `0x55` to the ArduChip test
//!   register and reads it back), reads the sensor's product ID over I2C (`PIDH`,
//!   `PIDL` in sensor bank: `0x26`, `0x41`/`0x42`), resets the sensor, writes
//!   [`SENSOR_REGISTERS`] and [`DSP_REGISTERS`] (RGB565 output) and the output size;
//! - [`Camera::capture`] clears the FIFO's done flag, starts a capture, polls the
//!   done bit (1 ms apart, up to [`ArduCamMini2mp::CAPTURE_TIMEOUT_MS`]), reads the
//!   FIFO length and burst-reads one frame of big-endian RGB565 in a single SPI
//!   transaction.
//!
//! The register values are the OV2640 datasheet's documented registers only; they
//! select SVGA sensor timing and RGB565 with the DSP's down-scaler. They have been
//! checked against the bus traffic they must produce (the tests), not yet against a
//! physical module: image quality may need tuning (white balance, exposure) on
//! hardware.
//!
//! ```
//! # use embedded_hal_mock::eh1::{delay::NoopDelay, i2c::Mock as I2c, spi::Mock as Spi};
//! use microcnn_camera::arducam::{ArduCamMini2mp, Resolution};
//! use microcnn_camera::Camera;
//! let camera = ArduCamMini2mp::new(Spi::new(&[]), I2c::new(&[]), NoopDelay::new(), Resolution::Qqvga);
//! assert_eq!(camera.format().width, 160);
//! # let (mut spi, mut i2c, _) = camera.release(); spi.done(); i2c.done();
//! ```

use crate::{Camera, FrameFormat, PixelFormat};
use embedded_hal::delay::DelayNs;
use embedded_hal::i2c::{self, I2c};
use embedded_hal::spi::{self, Operation, SpiDevice};

/// The OV2640's 7-bit I2C address.
pub const SENSOR_ADDRESS: u8 = 0x30;

/// ArduChip (SPI) registers. A write sets bit 7 of the address.
pub mod reg {
    /// Test register: reads back what was written.
    pub const TEST: u8 = 0x00;
    /// Frames to capture, minus one.
    pub const FRAMES: u8 = 0x01;
    /// FIFO control: bit 0 clears the done flag, bit 1 starts a capture.
    pub const FIFO: u8 = 0x04;
    /// Status: bit 3 is "capture done".
    pub const TRIG: u8 = 0x41;
    /// FIFO length, bits 7..0.
    pub const FIFO_SIZE1: u8 = 0x42;
    /// FIFO length, bits 15..8.
    pub const FIFO_SIZE2: u8 = 0x43;
    /// FIFO length, bits 22..16 (low 7 bits).
    pub const FIFO_SIZE3: u8 = 0x44;
    /// Burst FIFO read command.
    pub const BURST_FIFO_READ: u8 = 0x3C;
    /// `FIFO` bit: clear the capture-done flag.
    pub const FIFO_CLEAR: u8 = 0x01;
    /// `FIFO` bit: start a capture.
    pub const FIFO_START: u8 = 0x02;
    /// `TRIG` bit: the capture is done.
    pub const CAPTURE_DONE: u8 = 0x08;
}

/// OV2640 registers (I2C).
pub mod sensor {
    /// Bank select: `0x00` DSP, `0x01` sensor.
    pub const BANK: u8 = 0xFF;
    /// Bank value for the DSP registers.
    pub const BANK_DSP: u8 = 0x00;
    /// Bank value for the sensor registers.
    pub const BANK_SENSOR: u8 = 0x01;
    /// Sensor bank: COM7, bit 7 is a soft reset, bits 6..4 the resolution mode.
    pub const COM7: u8 = 0x12;
    /// Sensor bank: product ID, high byte (`0x26`).
    pub const PIDH: u8 = 0x0A;
    /// Sensor bank: product ID, low byte (`0x41` or `0x42`).
    pub const PIDL: u8 = 0x0B;
    /// DSP bank: bypass the DSP (bit 0).
    pub const R_BYPASS: u8 = 0x05;
    /// DSP bank: module resets (bit 2: DVP).
    pub const RESET: u8 = 0xE0;
    /// DSP bank: output width / 4, low 8 bits.
    pub const ZMOW: u8 = 0x5A;
    /// DSP bank: output height / 4, low 8 bits.
    pub const ZMOH: u8 = 0x5B;
    /// DSP bank: bit 2 = ZMOH bit 8, bits 1..0 = ZMOW bits 9..8.
    pub const ZMHH: u8 = 0x5C;
}

/// Sensor-bank settings after the reset: SVGA (800×600) timing, clock divided by 2.
pub const SENSOR_REGISTERS: [(u8, u8); 2] = [
    (sensor::COM7, 0x40), // SVGA mode
    (0x11, 0x01),         // CLKRC: internal clock = input / 2
];

/// DSP-bank settings: 800×600 input window, RGB565 on the DVP port.
pub const DSP_REGISTERS: [(u8, u8); 13] = [
    (sensor::R_BYPASS, 0x01), // bypass the DSP while configuring it
    (sensor::RESET, 0x04),    // hold the DVP in reset
    (0xC0, (800 / 8) as u8),  // HSIZE8: image width / 8
    (0xC1, (600 / 8) as u8),  // VSIZE8: image height / 8
    (0x86, 0x3D),             // CTRL2: DCW, SDE, UV_ADJ, UV_AVG, CMX on
    (0x50, 0x00),             // CTRLI: no extra dividers
    (0x51, (800 / 4) as u8),  // HSIZE: window width / 4
    (0x52, (600 / 4) as u8),  // VSIZE: window height / 4
    (0x53, 0x00),             // XOFFL
    (0x54, 0x00),             // YOFFL
    (0x55, 0x00),             // VHYX: high bits of the above
    (0xD3, 0x04),             // R_DVP_SP: PCLK divider
    (0xDA, 0x08),             // IMAGE_MODE: RGB565
];

/// Output sizes (the DSP scales the 800×600 window down to them).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Resolution {
    /// 160×120 (38,400 bytes of RGB565).
    Qqvga,
    /// 176×144.
    Qcif,
    /// 320×240 (153,600 bytes: more RAM than many MCUs have).
    Qvga,
}

impl Resolution {
    /// `(width, height)` in pixels.
    pub const fn size(self) -> (u16, u16) {
        match self {
            Self::Qqvga => (160, 120),
            Self::Qcif => (176, 144),
            Self::Qvga => (320, 240),
        }
    }
}

/// What went wrong talking to the module.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum Error {
    /// The SPI bus reported an error.
    Spi(spi::ErrorKind),
    /// The I2C bus reported an error (no acknowledge: wrong wiring or no module).
    I2c(i2c::ErrorKind),
    /// The ArduChip test register did not read back what was written.
    SpiTest {
        /// Byte read back (written: `0x55`).
        read: u8,
    },
    /// The sensor is not an OV2640.
    WrongChipId {
        /// `PIDH << 8 | PIDL` as read.
        found: u16,
    },
    /// The capture-done bit did not come up in time.
    CaptureTimeout,
    /// The FIFO holds fewer bytes than a frame.
    FifoTooShort {
        /// Bytes in the FIFO.
        found: u32,
        /// Bytes of a frame.
        expected: u32,
    },
    /// The capture buffer is smaller than a frame.
    BufferTooSmall {
        /// Bytes of a frame.
        needed: usize,
        /// Bytes given.
        available: usize,
    },
}

/// An ArduCAM Mini 2MP (OV2640) module.
pub struct ArduCamMini2mp<SPI, I2C, D> {
    spi: SPI,
    i2c: I2C,
    delay: D,
    resolution: Resolution,
}

impl<SPI: SpiDevice, I2C: I2c, D: DelayNs> ArduCamMini2mp<SPI, I2C, D> {
    /// Polls for the capture-done bit this many milliseconds at most.
    pub const CAPTURE_TIMEOUT_MS: u32 = 1000;

    /// Takes the buses and a delay by value; nothing is sent until [`init`](Self::init).
    pub fn new(spi: SPI, i2c: I2C, delay: D, resolution: Resolution) -> Self {
        Self { spi, i2c, delay, resolution }
    }

    /// Gives the buses and the delay back.
    pub fn release(self) -> (SPI, I2C, D) {
        (self.spi, self.i2c, self.delay)
    }

    /// Checks the SPI link and the sensor's ID, resets and configures the sensor for
    /// RGB565 at the resolution given to [`new`](Self::new).
    pub fn init(&mut self) -> Result<(), Error> {
        self.write_reg(reg::TEST, 0x55)?;
        let read = self.read_reg(reg::TEST)?;
        if read != 0x55 {
            return Err(Error::SpiTest { read });
        }
        self.sensor_write(sensor::BANK, sensor::BANK_SENSOR)?;
        let id = u16::from_be_bytes([self.sensor_read(sensor::PIDH)?, self.sensor_read(sensor::PIDL)?]);
        if id != 0x2641 && id != 0x2642 {
            return Err(Error::WrongChipId { found: id });
        }
        self.sensor_write(sensor::COM7, 0x80)?; // soft reset
        self.delay.delay_ms(100);
        for (register, value) in SENSOR_REGISTERS {
            self.sensor_write(register, value)?;
        }
        self.sensor_write(sensor::BANK, sensor::BANK_DSP)?;
        for (register, value) in DSP_REGISTERS {
            self.sensor_write(register, value)?;
        }
        let (width, height) = self.resolution.size();
        let (zmow, zmoh) = (width / 4, height / 4);
        self.sensor_write(sensor::ZMOW, zmow as u8)?;
        self.sensor_write(sensor::ZMOH, zmoh as u8)?;
        self.sensor_write(sensor::ZMHH, (((zmoh >> 8) & 1) << 2) as u8 | ((zmow >> 8) & 3) as u8)?;
        self.sensor_write(sensor::RESET, 0x00)?;
        self.sensor_write(sensor::R_BYPASS, 0x00)?;
        self.write_reg(reg::FRAMES, 0x00)?; // one frame per capture
        self.write_reg(reg::FIFO, reg::FIFO_CLEAR)
    }

    /// Bytes waiting in the frame FIFO.
    pub fn fifo_length(&mut self) -> Result<u32, Error> {
        let low = u32::from(self.read_reg(reg::FIFO_SIZE1)?);
        let mid = u32::from(self.read_reg(reg::FIFO_SIZE2)?);
        let high = u32::from(self.read_reg(reg::FIFO_SIZE3)? & 0x7f);
        Ok(low | mid << 8 | high << 16)
    }

    fn write_reg(&mut self, address: u8, value: u8) -> Result<(), Error> {
        self.spi.write(&[address | 0x80, value]).map_err(|e| Error::Spi(spi::Error::kind(&e)))
    }

    fn read_reg(&mut self, address: u8) -> Result<u8, Error> {
        let mut value = [0u8];
        self.spi
            .transaction(&mut [Operation::Write(&[address & 0x7f]), Operation::Read(&mut value)])
            .map_err(|e| Error::Spi(spi::Error::kind(&e)))?;
        Ok(value[0])
    }

    fn sensor_write(&mut self, register: u8, value: u8) -> Result<(), Error> {
        self.i2c.write(SENSOR_ADDRESS, &[register, value]).map_err(|e| Error::I2c(i2c::Error::kind(&e)))
    }

    fn sensor_read(&mut self, register: u8) -> Result<u8, Error> {
        let mut value = [0u8];
        self.i2c.write_read(SENSOR_ADDRESS, &[register], &mut value).map_err(|e| Error::I2c(i2c::Error::kind(&e)))?;
        Ok(value[0])
    }
}

impl<SPI: SpiDevice, I2C: I2c, D: DelayNs> Camera for ArduCamMini2mp<SPI, I2C, D> {
    type Error = Error;

    fn format(&self) -> FrameFormat {
        let (width, height) = self.resolution.size();
        FrameFormat { width, height, channels: 3, pixels: PixelFormat::Rgb565Be }
    }

    fn capture<'b>(&mut self, buffer: &'b mut [u8]) -> Result<&'b [u8], Error> {
        let needed = self.format().frame_bytes();
        if buffer.len() < needed {
            return Err(Error::BufferTooSmall { needed, available: buffer.len() });
        }
        self.write_reg(reg::FIFO, reg::FIFO_CLEAR)?;
        self.write_reg(reg::FIFO, reg::FIFO_START)?;
        let mut waited = 0;
        while self.read_reg(reg::TRIG)? & reg::CAPTURE_DONE == 0 {
            if waited >= Self::CAPTURE_TIMEOUT_MS {
                return Err(Error::CaptureTimeout);
            }
            self.delay.delay_ms(1);
            waited += 1;
        }
        let length = self.fifo_length()?;
        if (length as usize) < needed {
            return Err(Error::FifoTooShort { found: length, expected: needed as u32 });
        }
        let frame = &mut buffer[..needed];
        self.spi
            .transaction(&mut [Operation::Write(&[reg::BURST_FIFO_READ]), Operation::Read(frame)])
            .map_err(|e| Error::Spi(spi::Error::kind(&e)))?;
        Ok(frame)
    }
}
