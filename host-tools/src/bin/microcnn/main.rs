//! The `microcnn` command-line tool.

/// Writes results to stdout; a closed pipe (`microcnn zoo | head -1`) ends the program
/// quietly instead of panicking.
fn emit(args: std::fmt::Arguments<'_>) {
    use std::io::Write as _;
    if let Err(e) = std::io::stdout().write_fmt(args) {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        panic!("cannot write to stdout: {e}");
    }
}

/// `print!` through [`emit`].
macro_rules! out {
    ($($arg:tt)*) => { $crate::emit(format_args!($($arg)*)) };
}

/// `println!` through [`emit`].
macro_rules! outln {
    ($($arg:tt)*) => { $crate::emit(format_args!("{}\n", format_args!($($arg)*))) };
}

/// A status line about an output written to `$path`: on stdout, or on stderr when the
/// output itself went to stdout (`-o -`), so that a pipe gets the bytes alone.
macro_rules! status_for {
    ($path:expr, $($arg:tt)*) => {
        if $path.as_os_str() == "-" { eprintln!($($arg)*) } else { outln!($($arg)*) }
    };
}

mod cmd;

use clap::{Parser, Subcommand};

// Training allocates and frees megabyte-sized batch buffers many times a second;
// glibc's allocator returns them to the kernel and faults them back in (measured:
// as much system time as user time). mimalloc keeps them.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// microcnn: run, import and inspect int8 CNNs for microcontrollers.
#[derive(Parser, Debug)]
#[command(name = "microcnn", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Bytes a command may plan to hold (datasets, networks, batches) before it refuses
    /// with an error: a number with K, M or G (powers of 1,024). Default: half the
    /// machine's memory, or MICROCNN_MEMORY_BUDGET.
    #[arg(long, global = true, value_name = "SIZE", value_parser = parse_budget)]
    memory_budget: Option<u64>,
}

fn parse_budget(text: &str) -> Result<u64, String> {
    microcnn_tools::io::memory::parse_size(text).ok_or_else(|| "expected bytes, or a number with K, M or G".into())
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Write a model as Rust source, a C header or the raw blob, for a firmware build.
    Export(cmd::export::Cmd),
    /// Write a PNG grid that shows what augmentation options do.
    Augment(cmd::augment::Cmd),
    /// Write a model into a board's model region (probe-rs), or into a region image file.
    Flash(cmd::flash::Cmd),
    /// Convert an int8 TFLite model into a `.mcnn` blob.
    Import(cmd::import::Cmd),
    /// Run a model on int8 samples or on an image.
    Infer(cmd::infer::Cmd),
    /// Compare every layer's output on the host and on the emulated chip.
    Diff(cmd::diff::Cmd),
    /// Train a CNN in f32 on a dataset.
    Train(cmd::train::Cmd),
    /// Transfer learning from a pretrained base.
    Finetune(cmd::finetune::Cmd),
    /// List the pretrained bases shipped with the tool.
    Zoo(cmd::zoo::Cmd),
    /// Quantize a trained checkpoint to an int8 `.mcnn` model.
    Quantize(cmd::quantize::Cmd),
    /// Evaluate a model on a labelled dataset.
    Eval(cmd::eval::Cmd),
    /// Learn a new head on a base model's features, as the chip does.
    Learn(cmd::learn::Cmd),
    /// Read the head a board learned out of its learned region (probe-rs).
    Pull(cmd::pull::Cmd),
    /// Print a Keras-like summary of a model.
    Summary(cmd::summary::Cmd),
}

fn main() {
    let cli = Cli::parse();
    if let Some(bytes) = cli.memory_budget {
        microcnn_tools::io::memory::set_budget(bytes);
    }
    let result = match &cli.command {
        Command::Export(c) => cmd::export::run(c),
        Command::Augment(c) => cmd::augment::run(c),
        Command::Flash(c) => cmd::flash::run(c),
        Command::Import(c) => cmd::import::run(c),
        Command::Infer(c) => cmd::infer::run(c),
        Command::Diff(c) => cmd::diff::run(c),
        Command::Summary(c) => cmd::summary::run(c),
        Command::Train(c) => cmd::train::run(c),
        Command::Quantize(c) => cmd::quantize::run(c),
        Command::Finetune(c) => cmd::finetune::run(c),
        Command::Zoo(c) => cmd::zoo::run(c),
        Command::Eval(c) => cmd::eval::run(c),
        Command::Learn(c) => cmd::learn::run(c),
        Command::Pull(c) => cmd::pull::run(c),
    };
    if let Err(e) = result {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}
