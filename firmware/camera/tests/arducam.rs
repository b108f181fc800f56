//! The ArduCAM Mini 2MP driver against embedded-hal-mock: the exact register
//! sequence of `init`, the FIFO burst read of `capture`, and the errors.

use embedded_hal::i2c::ErrorKind as I2cErrorKind;
use embedded_hal_mock::eh1::delay::{CheckedDelay, NoopDelay, Transaction as Delay};
use embedded_hal_mock::eh1::i2c::{Mock as I2cMock, Transaction as I2c};
use embedded_hal_mock::eh1::spi::{Mock as SpiMock, Transaction as Spi};
use microcnn_camera::arducam::{
    reg, sensor, ArduCamMini2mp, Error, Resolution, DSP_REGISTERS, SENSOR_ADDRESS, SENSOR_REGISTERS,
};
use microcnn_camera::{Camera, PixelFormat};

/// One SPI register write: address with bit 7 set, then the value, under one CS.
fn spi_write(address: u8, value: u8) -> Vec<Spi<u8>> {
    vec![Spi::transaction_start(), Spi::write_vec(vec![address | 0x80, value]), Spi::transaction_end()]
}

/// One SPI register read: the address, then one byte back, under one CS.
fn spi_read(address: u8, value: u8) -> Vec<Spi<u8>> {
    vec![Spi::transaction_start(), Spi::write_vec(vec![address]), Spi::read_vec(vec![value]), Spi::transaction_end()]
}

fn i2c_write(register: u8, value: u8) -> I2c {
    I2c::write(SENSOR_ADDRESS, vec![register, value])
}

fn i2c_read(register: u8, value: u8) -> I2c {
    I2c::write_read(SENSOR_ADDRESS, vec![register], vec![value])
}

fn spi_link_check() -> Vec<Spi<u8>> {
    [spi_write(reg::TEST, 0x55), spi_read(reg::TEST, 0x55)].concat()
}

#[test]
fn init_writes_the_documented_sequence() {
    let spi = [spi_link_check(), spi_write(reg::FRAMES, 0x00), spi_write(reg::FIFO, reg::FIFO_CLEAR)].concat();
    let mut i2c = vec![
        i2c_write(sensor::BANK, sensor::BANK_SENSOR),
        i2c_read(sensor::PIDH, 0x26),
        i2c_read(sensor::PIDL, 0x42),
        i2c_write(sensor::COM7, 0x80),
    ];
    i2c.extend(SENSOR_REGISTERS.iter().map(|&(r, v)| i2c_write(r, v)));
    i2c.push(i2c_write(sensor::BANK, sensor::BANK_DSP));
    i2c.extend(DSP_REGISTERS.iter().map(|&(r, v)| i2c_write(r, v)));
    // QQVGA: 160 / 4 = 40, 120 / 4 = 30, no high bits.
    i2c.extend([
        i2c_write(sensor::ZMOW, 40),
        i2c_write(sensor::ZMOH, 30),
        i2c_write(sensor::ZMHH, 0),
        i2c_write(sensor::RESET, 0x00),
        i2c_write(sensor::R_BYPASS, 0x00),
    ]);
    let delay = CheckedDelay::new(&[Delay::delay_ms(100)]);
    let mut camera = ArduCamMini2mp::new(SpiMock::new(&spi), I2cMock::new(&i2c), delay, Resolution::Qqvga);
    camera.init().unwrap();
    let (mut spi, mut i2c, mut delay) = camera.release();
    spi.done();
    i2c.done();
    delay.done();
}

#[test]
fn capture_polls_then_burst_reads_one_frame() {
    let frame: Vec<u8> = (0..160u32 * 120 * 2).map(|i| (i % 251) as u8).collect();
    let length = frame.len() as u32 + 8; // the FIFO may hold a few bytes more
    let spi = [
        spi_write(reg::FIFO, reg::FIFO_CLEAR),
        spi_write(reg::FIFO, reg::FIFO_START),
        spi_read(reg::TRIG, 0x00),
        spi_read(reg::TRIG, 0x00),
        spi_read(reg::TRIG, reg::CAPTURE_DONE),
        spi_read(reg::FIFO_SIZE1, length as u8),
        spi_read(reg::FIFO_SIZE2, (length >> 8) as u8),
        spi_read(reg::FIFO_SIZE3, (length >> 16) as u8),
        vec![
            Spi::transaction_start(),
            Spi::write_vec(vec![reg::BURST_FIFO_READ]),
            Spi::read_vec(frame.clone()),
            Spi::transaction_end(),
        ],
    ]
    .concat();
    let delay = CheckedDelay::new(&[Delay::delay_ms(1), Delay::delay_ms(1)]);
    let mut camera = ArduCamMini2mp::new(SpiMock::new(&spi), I2cMock::new(&[]), delay, Resolution::Qqvga);
    assert_eq!(camera.format().pixels, PixelFormat::Rgb565Be);
    let mut buffer = vec![0u8; frame.len() + 100];
    let got = camera.capture(&mut buffer).unwrap();
    assert_eq!(got, &frame[..]);
    let (mut spi, mut i2c, mut delay) = camera.release();
    spi.done();
    i2c.done();
    delay.done();
}

#[test]
fn short_fifo_is_an_error_not_a_partial_frame() {
    let spi = [
        spi_write(reg::FIFO, reg::FIFO_CLEAR),
        spi_write(reg::FIFO, reg::FIFO_START),
        spi_read(reg::TRIG, reg::CAPTURE_DONE),
        spi_read(reg::FIFO_SIZE1, 0x10),
        spi_read(reg::FIFO_SIZE2, 0x00),
        spi_read(reg::FIFO_SIZE3, 0x80), // bit 7 is not part of the length
    ]
    .concat();
    let mut camera = ArduCamMini2mp::new(SpiMock::new(&spi), I2cMock::new(&[]), NoopDelay::new(), Resolution::Qqvga);
    let mut buffer = vec![0u8; 160 * 120 * 2];
    assert_eq!(camera.capture(&mut buffer), Err(Error::FifoTooShort { found: 16, expected: 38_400 }));
    let (mut spi, mut i2c, _) = camera.release();
    spi.done();
    i2c.done();
}

#[test]
fn small_buffer_is_refused_before_any_bus_traffic() {
    let mut camera = ArduCamMini2mp::new(SpiMock::new(&[]), I2cMock::new(&[]), NoopDelay::new(), Resolution::Qqvga);
    assert_eq!(camera.capture(&mut [0u8; 10]), Err(Error::BufferTooSmall { needed: 38_400, available: 10 }));
    let (mut spi, mut i2c, _) = camera.release();
    spi.done();
    i2c.done();
}

#[test]
fn i2c_error_is_reported_with_its_kind() {
    let i2c = [I2c::write(SENSOR_ADDRESS, vec![sensor::BANK, sensor::BANK_SENSOR])
        .with_error(I2cErrorKind::NoAcknowledge(embedded_hal::i2c::NoAcknowledgeSource::Address))];
    let mut camera =
        ArduCamMini2mp::new(SpiMock::new(&spi_link_check()), I2cMock::new(&i2c), NoopDelay::new(), Resolution::Qqvga);
    assert_eq!(
        camera.init(),
        Err(Error::I2c(I2cErrorKind::NoAcknowledge(embedded_hal::i2c::NoAcknowledgeSource::Address)))
    );
    let (mut spi, mut i2c, _) = camera.release();
    spi.done();
    i2c.done();
}

#[test]
fn wrong_chip_id_stops_init_before_any_write() {
    // An OV7670 (0x76, 0x73) where an OV2640 is expected.
    let i2c =
        [i2c_write(sensor::BANK, sensor::BANK_SENSOR), i2c_read(sensor::PIDH, 0x76), i2c_read(sensor::PIDL, 0x73)];
    let mut camera =
        ArduCamMini2mp::new(SpiMock::new(&spi_link_check()), I2cMock::new(&i2c), NoopDelay::new(), Resolution::Qqvga);
    assert_eq!(camera.init(), Err(Error::WrongChipId { found: 0x7673 }));
    let (mut spi, mut i2c, _) = camera.release();
    spi.done();
    i2c.done();
}

#[test]
fn spi_link_failure_is_reported() {
    let spi = [spi_write(reg::TEST, 0x55), spi_read(reg::TEST, 0xFF)].concat();
    let mut camera = ArduCamMini2mp::new(SpiMock::new(&spi), I2cMock::new(&[]), NoopDelay::new(), Resolution::Qqvga);
    assert_eq!(camera.init(), Err(Error::SpiTest { read: 0xFF }));
    let (mut spi, mut i2c, _) = camera.release();
    spi.done();
    i2c.done();
}

#[test]
fn capture_times_out_when_done_never_comes() {
    let mut spi = [spi_write(reg::FIFO, reg::FIFO_CLEAR), spi_write(reg::FIFO, reg::FIFO_START)].concat();
    for _ in 0..=ArduCamMini2mp::<SpiMock<u8>, I2cMock, NoopDelay>::CAPTURE_TIMEOUT_MS {
        spi.extend(spi_read(reg::TRIG, 0x00));
    }
    let mut camera = ArduCamMini2mp::new(SpiMock::new(&spi), I2cMock::new(&[]), NoopDelay::new(), Resolution::Qqvga);
    let mut buffer = vec![0u8; 160 * 120 * 2];
    assert_eq!(camera.capture(&mut buffer), Err(Error::CaptureTimeout));
    let (mut spi, mut i2c, _) = camera.release();
    spi.done();
    i2c.done();
}

/// The register tables against the OV2640's published register map, written here by
/// hand (not from the driver's constants). Source: OmniVision, "OV2640 Color CMOS UXGA
/// (2.0 MegaPixel) CameraChip Implementation Guide / datasheet", register tables for
/// the sensor bank (0xFF = 0x01) and the DSP bank (0xFF = 0x00): COM7 = 0x12 (bit 7
/// SRST, bits 6:4 resolution, 100 = SVGA), CLKRC = 0x11 (bits 5:0 divider, clock /
/// (n + 1)), PIDH/PIDL = 0x0A/0x0B (0x26, 0x41 or 0x42); R_BYPASS = 0x05 (bit 0 bypass
/// the DSP), RESET = 0xE0 (bit 2 DVP), HSIZE8/VSIZE8 = 0xC0/0xC1 (size / 8), CTRL2 =
/// 0x86, CTRLI = 0x50, HSIZE/VSIZE = 0x51/0x52 (size / 4), XOFFL/YOFFL/VHYX =
/// 0x53/0x54/0x55, R_DVP_SP = 0xD3, IMAGE_MODE = 0xDA (bits 3:2 = 10 RGB565), ZMOW/ZMOH/
/// ZMHH = 0x5A/0x5B/0x5C (output size / 4), BANK_SEL = 0xFF.
#[test]
fn register_tables_match_the_ov2640_register_map() {
    assert_eq!(SENSOR_ADDRESS, 0x30, "SCCB write address 0x60 >> 1");
    assert_eq!((sensor::BANK, sensor::BANK_DSP, sensor::BANK_SENSOR), (0xFF, 0x00, 0x01));
    assert_eq!((sensor::COM7, sensor::PIDH, sensor::PIDL), (0x12, 0x0A, 0x0B));
    assert_eq!((sensor::R_BYPASS, sensor::RESET), (0x05, 0xE0));
    assert_eq!((sensor::ZMOW, sensor::ZMOH, sensor::ZMHH), (0x5A, 0x5B, 0x5C));
    // SVGA (COM7 bits 6:4 = 100), clock divided by 2 (CLKRC = 1).
    assert_eq!(SENSOR_REGISTERS, [(0x12, 0x40), (0x11, 0x01)]);
    assert_eq!(
        DSP_REGISTERS,
        [
            (0x05, 0x01), // R_BYPASS: DSP bypassed while configured
            (0xE0, 0x04), // RESET: DVP held in reset
            (0xC0, 100),  // HSIZE8: 800 / 8
            (0xC1, 75),   // VSIZE8: 600 / 8
            (0x86, 0x3D), // CTRL2: DCW, SDE, UV_ADJ, UV_AVG, CMX
            (0x50, 0x00), // CTRLI
            (0x51, 200),  // HSIZE: 800 / 4
            (0x52, 150),  // VSIZE: 600 / 4
            (0x53, 0x00), // XOFFL
            (0x54, 0x00), // YOFFL
            (0x55, 0x00), // VHYX
            (0xD3, 0x04), // R_DVP_SP
            (0xDA, 0x08), // IMAGE_MODE: RGB565
        ]
    );
}
