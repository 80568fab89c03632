//! The `pycore` command line: parse arguments, run the library, print, exit with a documented code.

use std::io::{self, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use pycore::source::SourceRoot;

/// Print every thread's Python stack from a Linux core dump, offline.
#[derive(Parser)]
#[command(version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Show why the process died and every thread's Python stack.
    ///
    /// Exit codes: 0 analysed; 1 analysed with warnings (partial data); 2 usage error;
    /// 3 not an ELF core or unreadable; 4 not a Python process; 5 python binary missing or
    /// different from the one the process ran; 6 unsupported Python version;
    /// 7 the interpreter state could not be read; 70 internal error (a bug in pycore);
    /// 74 the report could not be written.
    Analyze(AnalyzeArgs),
}

#[derive(clap::Args)]
struct AnalyzeArgs {
    /// The core file: a kernel core or gcore output, plain or compressed (zstd, gzip, xz, lz4);
    /// `-` reads it from standard input (reported as `<stdin>`).
    core: PathBuf,
    /// The python executable the process ran, if not at the path recorded in the core.
    #[arg(long, value_name = "BIN")]
    python: Option<PathBuf>,
    /// A copy of the filesystem of the machine (or container) that made the core: binaries and
    /// source files are looked up under it first.
    #[arg(long, value_name = "DIR")]
    sysroot: Option<PathBuf>,
    /// A folder holding copies of the core's binaries (libpython, python), matched by file name
    /// and build-id (repeatable).
    #[arg(long = "lib-path", value_name = "DIR")]
    lib_paths: Vec<PathBuf>,
    /// Use a binary even if its build-id differs from the one the core recorded (with a warning;
    /// the stacks may be wrong).
    #[arg(long)]
    allow_mismatch: bool,
    /// A folder of detached debug symbols laid out as `.build-id/ab/cdef….debug`, for stripped
    /// builds (repeatable; /usr/lib/debug and the sysroot's are always searched).
    #[arg(long = "debug-dir", value_name = "DIR")]
    debug_dirs: Vec<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
    /// Shorthand for --format json.
    #[arg(long, conflicts_with = "format")]
    json: bool,
    /// Rewrite source paths from the machine that made the core: OLD=NEW (repeatable).
    #[arg(long, value_name = "OLD=NEW")]
    source_root: Vec<SourceRoot>,
    /// Do not read source files to show each frame's line.
    #[arg(long)]
    no_source: bool,
    /// Native stacks: every thread's native frames (unwound with the mapped files' CFI, named by
    /// their symbols and DWARF) with the Python frames each interpreter-loop frame ran in its
    /// place; the interpreter's own native frames are folded.
    #[arg(long)]
    native: bool,
    /// Like --native, with every native frame, the interpreter's included.
    #[arg(long, conflicts_with = "native")]
    native_all: bool,
    /// When to colour the text output (NO_COLOR is honoured in `auto`).
    #[arg(long, value_enum, default_value_t = ColorWhen::Auto)]
    color: ColorWhen,
}

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    /// Faulthandler-style tracebacks, crashed thread first.
    Text,
    /// One JSON document (schema: docs/json-schema.md).
    Json,
    /// A one-screen summary, one row per thread.
    Table,
    /// Markdown for a bug report.
    Markdown,
}

#[derive(Clone, Copy, ValueEnum)]
enum ColorWhen {
    Auto,
    Always,
    Never,
}

/// Exit code when the report cannot be written (sysexits' EX_IOERR).
const EXIT_OUTPUT_ERROR: u8 = 74;

/// Exit code for a bug in pycore itself (a panic): distinct from every documented outcome.
const EXIT_INTERNAL_ERROR: u8 = 70;

fn main() -> ExitCode {
    // A panic is our bug, not the user's: one line naming it, never a backtrace, whatever
    // RUST_BACKTRACE says (that variable is for our own debugging sessions).
    std::panic::set_hook(Box::new(|info| {
        let location = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        eprintln!("pycore: internal error{location}; please report it with the core if you can");
        std::process::exit(i32::from(EXIT_INTERNAL_ERROR));
    }));
    let cli = Cli::parse();
    match cli.command {
        Command::Analyze(args) => analyze(args),
    }
}

fn analyze(args: AnalyzeArgs) -> ExitCode {
    let options = pycore::Options {
        core: args.core,
        python: args.python,
        sysroot: args.sysroot,
        lib_paths: args.lib_paths,
        allow_mismatch: args.allow_mismatch,
        debug_dirs: args.debug_dirs,
        source_roots: args.source_root,
        show_source: !args.no_source,
        native: match (args.native, args.native_all) {
            (_, true) => pycore::native::NativeMode::All,
            (true, false) => pycore::native::NativeMode::Merged,
            (false, false) => pycore::native::NativeMode::Off,
        },
    };
    let format = if args.json { Format::Json } else { args.format };
    let report = match pycore::analyze(&options) {
        Ok(report) => report,
        Err(error) => {
            // Not even the core's notes could be read. JSON consumers still get one document.
            if matches!(format, Format::Json) {
                let _ = pycore::render::json::write_error(&error, &mut io::stdout().lock());
            }
            eprintln!("pycore: {error}");
            return ExitCode::from(error.exit_code() as u8);
        }
    };
    if let Err(error) = write_report(&report, format, args.color) {
        let broken_pipe = error
            .downcast_ref::<io::Error>()
            .is_some_and(|e| e.kind() == io::ErrorKind::BrokenPipe);
        if !broken_pipe {
            eprintln!("pycore: {error:#}");
            return ExitCode::from(EXIT_OUTPUT_ERROR);
        }
    }
    if let Some(error) = &report.error {
        // What the core says was printed; the Python part failed, as the exit code says.
        eprintln!("pycore: {}", error.message);
        return ExitCode::from(u8::try_from(error.code).unwrap_or(EXIT_INTERNAL_ERROR));
    }
    let partial =
        !report.warnings.is_empty() || report.threads.iter().any(|t| !t.warnings.is_empty());
    ExitCode::from(if partial { 1 } else { 0 })
}

fn write_report(report: &pycore::Report, format: Format, color: ColorWhen) -> anyhow::Result<()> {
    use anyhow::Context;
    let choice = match color {
        ColorWhen::Auto => anstream::ColorChoice::Auto,
        ColorWhen::Always => anstream::ColorChoice::Always,
        ColorWhen::Never => anstream::ColorChoice::Never,
    };
    let mut out = anstream::AutoStream::new(io::stdout().lock(), choice);
    match format {
        Format::Text => pycore::render::text::write(report, &mut out),
        Format::Json => pycore::render::json::write(report, &mut out),
        Format::Table => pycore::render::table::write(report, &mut out),
        Format::Markdown => pycore::render::markdown::write(report, &mut out),
    }
    .and_then(|()| out.flush())
    .context("cannot write the report to standard output")
}
