//! Getting a model onto a chip: as Rust or C source ([`export`]), into the QEMU
//! firmware ([`qemu`]), into a board's model region ([`flash`]), and learning inside
//! the QEMU firmware ([`learn`]).

pub mod export;
pub mod flash;
pub mod head;
pub mod learn;
pub mod qemu;
