//! # microcnn-layout
//!
//! The memory maps of the firmware targets: where the program, the **model region**
//! and the **frames region** live in flash, and how much RAM and arena there is.
//!
//! This file is the one source of truth for those numbers:
//!
//! - each firmware crate's `build.rs` writes its `memory.x` (the linker script that
//!   `cortex-m-rt` includes) with [`MemoryMap::write_memory_x`];
//! - the firmware reads the model and frames regions at [`MemoryMap::model`] and
//!   [`MemoryMap::frames`];
//! - the host tool (`microcnn flash`, `microcnn infer --on qemu`) writes model images
//!   for, and loads data into, the very same addresses.
//!
//! The model region holds a `.mcnn` blob (its header carries its length and CRC, so
//! the rest of the region may hold anything, erased flash reads `0xFF`). The frames
//! region holds a [`frames`] header followed by the frames.
#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

/// A contiguous address range.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Region {
    /// First address.
    pub origin: u32,
    /// Length in bytes.
    pub length: u32,
}

impl Region {
    /// One past the last address.
    pub const fn end(&self) -> u32 {
        self.origin + self.length
    }
}

/// The memory map of one firmware target.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemoryMap {
    /// A short name (`qemu-mps2-an386`, `nucleo-f411re`).
    pub name: &'static str,
    /// The chip name probe-rs knows it by (empty for QEMU).
    pub chip: &'static str,
    /// A boot block at the address the core boots from, when the program does not
    /// start there: it holds only the initial stack pointer and the reset vector of
    /// the program (whose reset handler then points `VTOR` at the program's own vector
    /// table, cortex-m-rt's `set-vtor`). `None`: the program starts at the boot
    /// address.
    pub boot: Option<Region>,
    /// Program flash: vector table, code, read-only data.
    pub flash: Region,
    /// The model region: a `.mcnn` blob, replaceable without rebuilding the firmware.
    pub model: Region,
    /// The frames region: frames for the replay camera (or samples for
    /// `microcnn infer --on qemu`).
    pub frames: Region,
    /// RAM: data, bss, stack and the arena.
    pub ram: Region,
    /// Bytes of the static activation arena.
    pub arena_bytes: u32,
    /// Bytes of the static capture buffer (one camera frame).
    pub frame_buffer_bytes: u32,
    /// Erased flash reads as this byte; region images are padded with it.
    pub erased_byte: u8,
}

/// QEMU `mps2-an386` (Cortex-M4F) given the memory of a real part: 2 MiB of flash
/// (1 MiB program, 512 KiB model, 512 KiB frames) and 256 KiB of RAM, so that a
/// firmware or arena that would not fit a real chip fails to link in CI. (QEMU itself
/// maps 4 MiB at `0x0000_0000` and 4 MiB at `0x2000_0000`.)
pub const QEMU_MPS2_AN386: MemoryMap = MemoryMap {
    name: "qemu-mps2-an386",
    chip: "",
    boot: None,
    flash: Region { origin: 0x0000_0000, length: 1024 * 1024 },
    model: Region { origin: 0x0010_0000, length: 512 * 1024 },
    frames: Region { origin: 0x0018_0000, length: 512 * 1024 },
    ram: Region { origin: 0x2000_0000, length: 256 * 1024 },
    arena_bytes: 128 * 1024,
    frame_buffer_bytes: 64 * 1024,
    erased_byte: 0xFF,
};

/// ST Nucleo-F411RE (STM32F411RE: 512 KiB flash, 128 KiB RAM). The regions are whole
/// flash sectors ([`F411_SECTORS`]), so that writing one erases nothing else:
///
/// | sector | address | size | holds |
/// | --- | --- | --- | --- |
/// | 0 | `0x0800_0000` | 16 KiB | boot block: initial SP + reset vector of the program |
/// | 1 | `0x0800_4000` | 16 KiB | learned head, slot A ([`learned::NUCLEO_F411RE`]) |
/// | 2 | `0x0800_8000` | 16 KiB | learned head, slot B |
/// | 3–5 | `0x0800_C000` | 16 + 64 + 128 KiB | the program (208 KiB; vector table first) |
/// | 6 | `0x0804_0000` | 128 KiB | the model |
/// | 7 | `0x0806_0000` | 128 KiB | the replay frames |
///
/// The core boots from sector 0, whose two words send it to the program's reset
/// handler; that handler first sets `VTOR` to the program's vector table
/// (cortex-m-rt's `set-vtor` feature, enabled by the board crate). The learned slots
/// sit in the small sectors so that the program gets the large ones; the largest head
/// the firmware writes (10 classes × 64 features, 2,648 B) fits a 16 KiB slot with
/// room to spare (checked at compile time in the board crate).
pub const NUCLEO_F411RE: MemoryMap = MemoryMap {
    name: "nucleo-f411re",
    chip: "STM32F411RETx",
    boot: Some(Region { origin: 0x0800_0000, length: 16 * 1024 }),
    flash: Region { origin: 0x0800_C000, length: 208 * 1024 },
    model: Region { origin: 0x0804_0000, length: 128 * 1024 },
    frames: Region { origin: 0x0806_0000, length: 128 * 1024 },
    ram: Region { origin: 0x2000_0000, length: 128 * 1024 },
    arena_bytes: 48 * 1024,
    frame_buffer_bytes: 160 * 120 * 2,
    erased_byte: 0xFF,
};

/// The erase sectors of the STM32F411RE's 512 KiB flash (RM0383 §3.3): four of
/// 16 KiB, one of 64 KiB, three of 128 KiB.
pub const F411_SECTORS: [Region; 8] = [
    Region { origin: 0x0800_0000, length: 16 * 1024 },
    Region { origin: 0x0800_4000, length: 16 * 1024 },
    Region { origin: 0x0800_8000, length: 16 * 1024 },
    Region { origin: 0x0800_C000, length: 16 * 1024 },
    Region { origin: 0x0801_0000, length: 64 * 1024 },
    Region { origin: 0x0802_0000, length: 128 * 1024 },
    Region { origin: 0x0804_0000, length: 128 * 1024 },
    Region { origin: 0x0806_0000, length: 128 * 1024 },
];

/// Every known map.
pub const ALL: [MemoryMap; 2] = [QEMU_MPS2_AN386, NUCLEO_F411RE];

/// The `-icount shift` the host passes to QEMU: every instruction advances virtual
/// time by 2^shift ns. The QEMU firmware converts SysTick ticks (25 MHz core clock,
/// 40 ns) into instructions with it.
pub const QEMU_ICOUNT_SHIFT: u32 = 7;

/// The QEMU core clock (SysTick with `CLKSOURCE` = core) in Hz.
pub const QEMU_SYSCLK_HZ: u32 = 25_000_000;

/// Why a model cannot run on a firmware target ([`MemoryMap::check_model`],
/// [`MemoryMap::check_sample`]); its `Display` is the one-line message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Misfit {
    /// The model's activation arena is larger than the firmware's.
    Arena {
        /// The target's [`MemoryMap::name`].
        target: &'static str,
        /// Bytes the model needs.
        needed: usize,
        /// Bytes the firmware has.
        available: u32,
    },
    /// The blob is larger than the model region.
    Blob {
        /// The target's [`MemoryMap::name`].
        target: &'static str,
        /// Bytes of the blob.
        bytes: usize,
        /// Bytes of the model region.
        region: u32,
    },
    /// One input sample is larger than the capture buffer it is loaded through.
    Sample {
        /// The target's [`MemoryMap::name`].
        target: &'static str,
        /// Bytes of one input sample.
        bytes: usize,
        /// Bytes of the frame buffer.
        buffer: u32,
    },
}

impl core::fmt::Display for Misfit {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match *self {
            Misfit::Arena { target, needed, available } => {
                write!(f, "the model needs a {needed} byte arena; the {target} firmware has {available} bytes")
            }
            Misfit::Blob { target, bytes, region } => {
                write!(f, "the model has {bytes} bytes; the {target} model region holds {region}")
            }
            Misfit::Sample { target, bytes, buffer } => {
                write!(f, "a {bytes} byte input exceeds the {target} firmware's {buffer} byte frame buffer")
            }
        }
    }
}

impl MemoryMap {
    /// The map whose [`name`](Self::name) or [`chip`](Self::chip) is `name`
    /// (case-insensitive).
    pub fn find(name: &str) -> Option<MemoryMap> {
        ALL.into_iter()
            .find(|m| m.name.eq_ignore_ascii_case(name) || (!m.chip.is_empty() && m.chip.eq_ignore_ascii_case(name)))
    }

    /// Whether a model with an `arena` byte activation arena and a `blob` byte blob
    /// fits this firmware: its arena and its model region.
    pub fn check_model(&self, arena: usize, blob: usize) -> Result<(), Misfit> {
        if arena > self.arena_bytes as usize {
            return Err(Misfit::Arena { target: self.name, needed: arena, available: self.arena_bytes });
        }
        if blob > self.model.length as usize {
            return Err(Misfit::Blob { target: self.name, bytes: blob, region: self.model.length });
        }
        Ok(())
    }

    /// Whether one `input` byte sample fits the frame buffer it is loaded through.
    pub fn check_sample(&self, input: usize) -> Result<(), Misfit> {
        if input > self.frame_buffer_bytes as usize {
            return Err(Misfit::Sample { target: self.name, bytes: input, buffer: self.frame_buffer_bytes });
        }
        Ok(())
    }

    /// Writes the `memory.x` linker script for this map: the `MEMORY` block with
    /// `FLASH`, `MODEL`, `FRAMES` and `RAM` (and `BOOT` when the map has a boot block),
    /// and `.model` / `.frames` output sections so that a blob can also be linked in
    /// with `#[link_section = ".model"]`. A boot block gets a `.boot` section: the
    /// program's initial stack pointer and its reset vector (`Reset`, Thumb bit set).
    pub fn write_memory_x(&self, out: &mut impl core::fmt::Write) -> core::fmt::Result {
        writeln!(out, "/* Generated by build.rs from firmware/layout/src/lib.rs ({}). Do not edit. */", self.name)?;
        writeln!(out, "MEMORY\n{{")?;
        let boot = self.boot.map(|r| ("BOOT", r));
        let regions = [("FLASH", self.flash), ("MODEL", self.model), ("FRAMES", self.frames), ("RAM", self.ram)];
        for (name, r) in boot.into_iter().chain(regions) {
            writeln!(out, "  {name:<6} : ORIGIN = {:#010x}, LENGTH = {:#x}", r.origin, r.length)?;
        }
        writeln!(out, "}}\n")?;
        writeln!(out, "SECTIONS\n{{")?;
        if boot.is_some() {
            writeln!(out, "  .boot ORIGIN(BOOT) : {{ LONG(_stack_start & 0xFFFFFFF8); LONG(Reset | 1); }} > BOOT")?;
        }
        writeln!(out, "  .model ORIGIN(MODEL) : {{ KEEP(*(.model .model.*)); }} > MODEL")?;
        writeln!(out, "  .frames ORIGIN(FRAMES) : {{ KEEP(*(.frames .frames.*)); }} > FRAMES")?;
        writeln!(out, "}} INSERT AFTER .rodata;")?;
        Ok(())
    }
}

/// The frames region: a 16-byte header, then `count` frames.
///
/// | offset | field | |
/// | --- | --- | --- |
/// | 0 | magic `MCFR` | |
/// | 4 | `u16` version | [`frames::VERSION`] |
/// | 6 | `u16` pixel format | [`frames::PixelFormat`] |
/// | 8 | `u16` width, `u16` height | pixels |
/// | 12 | `u16` channels | for `Int8Tensor`; otherwise what the format implies |
/// | 14 | `u16` count | frames that follow |
///
/// All little-endian. A frame holds [`frames::Header::frame_bytes`] bytes: width ×
/// height × bytes per pixel (`Int8Tensor`: the model's input tensor, NHWC).
pub mod frames {
    /// `MCFR`.
    pub const MAGIC: [u8; 4] = *b"MCFR";
    /// The version this firmware reads.
    pub const VERSION: u16 = 1;
    /// Header bytes.
    pub const HEADER_LEN: usize = 16;

    /// How the pixels of a frame are stored.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    #[cfg_attr(feature = "defmt", derive(defmt::Format))]
    #[repr(u16)]
    pub enum PixelFormat {
        /// Already the model's int8 input tensor (NHWC): no preprocessing.
        Int8Tensor = 0,
        /// 8-bit gray.
        Gray8 = 1,
        /// RGB565, 2 bytes per pixel, big-endian (as the OV2640 sends it).
        Rgb565Be = 2,
        /// RGB888, 3 bytes per pixel.
        Rgb888 = 3,
    }

    impl PixelFormat {
        /// The format with code `code`.
        pub fn from_code(code: u16) -> Option<Self> {
            Some(match code {
                0 => Self::Int8Tensor,
                1 => Self::Gray8,
                2 => Self::Rgb565Be,
                3 => Self::Rgb888,
                _ => return None,
            })
        }
    }

    /// A decoded frames header.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct Header {
        /// Pixel format.
        pub format: PixelFormat,
        /// Width in pixels.
        pub width: u16,
        /// Height in pixels.
        pub height: u16,
        /// Channels (1 for gray, 3 for RGB; the tensor's channels for `Int8Tensor`).
        pub channels: u16,
        /// Number of frames.
        pub count: u16,
    }

    impl Header {
        /// The 16 header bytes.
        pub fn to_bytes(&self) -> [u8; HEADER_LEN] {
            let mut b = [0u8; HEADER_LEN];
            b[0..4].copy_from_slice(&MAGIC);
            b[4..6].copy_from_slice(&VERSION.to_le_bytes());
            b[6..8].copy_from_slice(&(self.format as u16).to_le_bytes());
            b[8..10].copy_from_slice(&self.width.to_le_bytes());
            b[10..12].copy_from_slice(&self.height.to_le_bytes());
            b[12..14].copy_from_slice(&self.channels.to_le_bytes());
            b[14..16].copy_from_slice(&self.count.to_le_bytes());
            b
        }

        /// Bytes of one frame.
        pub fn frame_bytes(&self) -> usize {
            let per_pixel = match self.format {
                PixelFormat::Int8Tensor => usize::from(self.channels),
                PixelFormat::Gray8 => 1,
                PixelFormat::Rgb565Be => 2,
                PixelFormat::Rgb888 => 3,
            };
            usize::from(self.width) * usize::from(self.height) * per_pixel
        }

        /// Reads a header; `None` when the magic, version or format is unknown.
        pub fn parse(bytes: &[u8]) -> Option<Header> {
            let b = bytes.get(..HEADER_LEN)?;
            let u16_at = |i: usize| u16::from_le_bytes([b[i], b[i + 1]]);
            if b[0..4] != MAGIC || u16_at(4) != VERSION {
                return None;
            }
            Some(Header {
                format: PixelFormat::from_code(u16_at(6))?,
                width: u16_at(8),
                height: u16_at(10),
                channels: u16_at(12),
                count: u16_at(14),
            })
        }
    }
}

/// The learned-head region: two slots, each a whole number of erase blocks, where
/// `microcnn_core::learn::store::Store` keeps the head the chip learned.
pub mod learned {
    use super::Region;

    /// Where one target keeps its learned head.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct LearnedRegion {
        /// The two slots (equal lengths).
        pub slots: [Region; 2],
        /// The flash's erase block.
        pub erase_size: u32,
    }

    /// QEMU `mps2-an386` / `mps2-an385`: two 32 KiB slots just above the frames region,
    /// in the code memory QEMU maps as RAM (the firmware treats it as NOR flash with
    /// 4 KiB blocks). Outside every linker region, so nothing else is placed there.
    pub const QEMU: LearnedRegion = LearnedRegion {
        slots: [Region { origin: 0x0020_0000, length: 32 * 1024 }, Region { origin: 0x0020_8000, length: 32 * 1024 }],
        erase_size: 4096,
    };

    /// Nucleo-F411RE: sectors 1 and 2 (16 KiB each, at `0x0800_4000` and
    /// `0x0800_8000`), between the boot block and the program
    /// ([`NUCLEO_F411RE`](super::NUCLEO_F411RE)). A slot holds a head of up to
    /// 16,320 B (the store's two 32-byte records take the rest).
    pub const NUCLEO_F411RE: LearnedRegion = LearnedRegion {
        slots: [Region { origin: 0x0800_4000, length: 16 * 1024 }, Region { origin: 0x0800_8000, length: 16 * 1024 }],
        erase_size: 16 * 1024,
    };
}

/// A scripted learning session for the QEMU firmware, at the start of the frames
/// region: a 32-byte header, the labels of the frames to learn (one byte each,
/// padded to 4), then an ordinary frames region ([`frames`]) whose first
/// `learn_count` frames are learned and whose next `classify_count` are classified
/// with the learned head.
///
/// | offset | field |
/// | --- | --- |
/// | 0 | magic `MCLN` |
/// | 4 | `u16` version ([`session::VERSION`]) |
/// | 6 | `u8` method: 0 prototypes, 1 SGD |
/// | 7 | `u8` reserved (0) |
/// | 8 | `u16` epochs |
/// | 10 | `u16` learn count |
/// | 12 | `i32` learning rate, Q16.16 bits |
/// | 16 | `u16` classify count |
/// | 18 | 14 bytes reserved (0) |
pub mod session {
    /// `MCLN`.
    pub const MAGIC: [u8; 4] = *b"MCLN";
    /// The version this firmware reads.
    pub const VERSION: u16 = 1;
    /// Header bytes.
    pub const HEADER_LEN: usize = 32;

    /// A decoded session header.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct Header {
        /// 0 prototypes, 1 SGD.
        pub method: u8,
        /// SGD epochs.
        pub epochs: u16,
        /// SGD learning rate, Q16.16 bits.
        pub learning_rate_bits: i32,
        /// Frames to learn (labels follow the header).
        pub learn_count: u16,
        /// Frames to classify after learning.
        pub classify_count: u16,
    }

    impl Header {
        /// The 32 header bytes.
        pub fn to_bytes(&self) -> [u8; HEADER_LEN] {
            let mut b = [0u8; HEADER_LEN];
            b[0..4].copy_from_slice(&MAGIC);
            b[4..6].copy_from_slice(&VERSION.to_le_bytes());
            b[6] = self.method;
            b[8..10].copy_from_slice(&self.epochs.to_le_bytes());
            b[10..12].copy_from_slice(&self.learn_count.to_le_bytes());
            b[12..16].copy_from_slice(&self.learning_rate_bits.to_le_bytes());
            b[16..18].copy_from_slice(&self.classify_count.to_le_bytes());
            b
        }

        /// Where the frames region starts, from the start of the session.
        pub fn frames_offset(&self) -> usize {
            HEADER_LEN + usize::from(self.learn_count).div_ceil(4) * 4
        }

        /// Reads a header; `None` when the magic or version is not a session's.
        pub fn parse(bytes: &[u8]) -> Option<Header> {
            let b = bytes.get(..HEADER_LEN)?;
            let u16_at = |i: usize| u16::from_le_bytes([b[i], b[i + 1]]);
            if b[0..4] != MAGIC || u16_at(4) != VERSION {
                return None;
            }
            Some(Header {
                method: b[6],
                epochs: u16_at(8),
                learn_count: u16_at(10),
                learning_rate_bits: i32::from_le_bytes([b[12], b[13], b[14], b[15]]),
                classify_count: u16_at(16),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::string::String;

    /// Every flash region of a map and its learned slots, named.
    fn flash_regions(m: &MemoryMap, l: &learned::LearnedRegion) -> std::vec::Vec<(&'static str, Region)> {
        let mut all = std::vec![("program", m.flash), ("model", m.model), ("frames", m.frames)];
        all.extend(m.boot.map(|b| ("boot", b)));
        all.extend([("learned A", l.slots[0]), ("learned B", l.slots[1])]);
        all
    }

    #[test]
    fn regions_do_not_overlap_and_fit_the_arena() {
        for (m, l) in [(QEMU_MPS2_AN386, learned::QEMU), (NUCLEO_F411RE, learned::NUCLEO_F411RE)] {
            let all = flash_regions(&m, &l);
            for (i, (a, ra)) in all.iter().enumerate() {
                assert!(ra.length > 0, "{} {a}", m.name);
                for (b, rb) in &all[i + 1..] {
                    assert!(
                        ra.end() <= rb.origin || rb.end() <= ra.origin,
                        "{}: {a} {ra:x?} overlaps {b} {rb:x?}",
                        m.name
                    );
                }
            }
            assert!(m.arena_bytes + m.frame_buffer_bytes + 16 * 1024 <= m.ram.length, "{}", m.name);
        }
    }

    /// The F411's regions are whole erase sectors (so no two share one: writing one
    /// never erases another), the learned slots' erase size is their sectors' size,
    /// the core boots into the boot block, and the program has at least 192 KiB.
    #[test]
    fn f411_regions_are_whole_sectors() {
        let mut at = F411_SECTORS[0].origin;
        for s in F411_SECTORS {
            assert_eq!(s.origin, at);
            at = s.end();
        }
        assert_eq!(at - F411_SECTORS[0].origin, 512 * 1024);
        let (m, l) = (NUCLEO_F411RE, learned::NUCLEO_F411RE);
        for (name, r) in flash_regions(&m, &l) {
            let first = F411_SECTORS.iter().position(|s| s.origin == r.origin);
            let last = F411_SECTORS.iter().position(|s| s.end() == r.end());
            assert!(first.is_some() && last.is_some(), "{name} {r:x?} is not a run of whole sectors");
        }
        for slot in l.slots {
            let sectors = F411_SECTORS.iter().filter(|s| s.origin >= slot.origin && s.end() <= slot.end());
            assert!(sectors.clone().all(|s| s.length == l.erase_size), "{slot:x?}");
            assert_eq!(sectors.map(|s| s.length).sum::<u32>(), slot.length);
        }
        assert_eq!(m.boot.map(|b| b.origin), Some(F411_SECTORS[0].origin));
        assert!(m.flash.length >= 192 * 1024, "{}", m.flash.length);
    }

    #[test]
    fn memory_x_names_every_region() {
        let mut s = String::new();
        QEMU_MPS2_AN386.write_memory_x(&mut s).unwrap();
        assert!(s.contains("MODEL  : ORIGIN = 0x00100000, LENGTH = 0x80000"), "{s}");
        assert!(s.contains("RAM    : ORIGIN = 0x20000000, LENGTH = 0x40000"), "{s}");
        assert!(!s.contains("BOOT"), "{s}");
        let mut s = String::new();
        NUCLEO_F411RE.write_memory_x(&mut s).unwrap();
        assert!(s.contains("BOOT   : ORIGIN = 0x08000000, LENGTH = 0x4000"), "{s}");
        assert!(s.contains("FLASH  : ORIGIN = 0x0800c000, LENGTH = 0x34000"), "{s}");
        assert!(s.contains(".boot ORIGIN(BOOT) : { LONG(_stack_start & 0xFFFFFFF8); LONG(Reset | 1); } > BOOT"), "{s}");
    }

    #[test]
    fn header_round_trips() {
        let h =
            frames::Header { format: frames::PixelFormat::Rgb565Be, width: 160, height: 120, channels: 3, count: 3 };
        assert_eq!(h.frame_bytes(), 160 * 120 * 2);
        assert_eq!(frames::Header::parse(&h.to_bytes()), Some(h));
        assert_eq!(frames::Header::parse(&[0u8; 16]), None);
    }

    #[test]
    fn session_header_round_trips_and_learned_slots_are_erase_blocks() {
        let h =
            session::Header { method: 1, epochs: 30, learning_rate_bits: 1 << 16, learn_count: 5, classify_count: 7 };
        assert_eq!(session::Header::parse(&h.to_bytes()), Some(h));
        assert_eq!(h.frames_offset(), 40);
        assert_eq!(session::Header::parse(&[0u8; 32]), None);
        for l in [learned::QEMU, learned::NUCLEO_F411RE] {
            assert_eq!(l.slots[0].length, l.slots[1].length);
            for slot in l.slots {
                assert_eq!(slot.origin % l.erase_size, 0);
                assert_eq!(slot.length % l.erase_size, 0);
            }
        }
        assert!(learned::QEMU.slots[0].origin >= QEMU_MPS2_AN386.frames.end());
    }

    #[test]
    fn check_model_accepts_exact_fits_and_names_both_sizes_otherwise() {
        let m = NUCLEO_F411RE;
        let (arena, region) = (m.arena_bytes as usize, m.model.length as usize);
        assert_eq!(m.check_model(arena, region), Ok(()));
        let too_big = m.check_model(arena + 1, 100).unwrap_err();
        assert_eq!(too_big, Misfit::Arena { target: m.name, needed: arena + 1, available: m.arena_bytes });
        assert_eq!(
            std::format!("{too_big}"),
            std::format!("the model needs a {} byte arena; the nucleo-f411re firmware has {arena} bytes", arena + 1)
        );
        assert_eq!(
            m.check_model(0, region + 1),
            Err(Misfit::Blob { target: m.name, bytes: region + 1, region: m.model.length })
        );
        let buffer = m.frame_buffer_bytes as usize;
        assert_eq!(m.check_sample(buffer), Ok(()));
        assert_eq!(
            m.check_sample(buffer + 1),
            Err(Misfit::Sample { target: m.name, bytes: buffer + 1, buffer: m.frame_buffer_bytes })
        );
    }

    #[test]
    fn find_by_name_or_chip() {
        assert_eq!(MemoryMap::find("stm32f411retx"), Some(NUCLEO_F411RE));
        assert_eq!(MemoryMap::find("qemu-mps2-an386"), Some(QEMU_MPS2_AN386));
        assert_eq!(MemoryMap::find("nope"), None);
    }
}
