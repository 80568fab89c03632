//! The `pycore` command line: parse arguments, run the library, print, exit with a documented code.

use std::io::{self, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

/// Print every thread's Python stack from a Linux core dump, offline.
#[derive(Parser)]
#[command(version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Show the Python stack of every thread in a core dump.
    ///
    /// Exit codes: 0 analysed; 1 analysed with warnings (partial data); 2 usage error;
    /// 3 not an ELF core or unreadable; 4 not a Python process; 5 python binary missing or
    /// different from the one the process ran; 6 unsupported Python version;
    /// 7 the interpreter state could not be read; 70 internal error (a bug in pycore).
    Analyze {
        /// The core file (kernel core, gcore output; zstd-compressed is fine).
        core: PathBuf,
        /// The python executable the process ran, if not at the path recorded in the core.
        #[arg(long, value_name = "BIN")]
        python: Option<PathBuf>,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
        /// Shorthand for --format json.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    Text,
    Json,
}

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
        Command::Analyze {
            core,
            python,
            format,
            json,
        } => {
            let options = pycore::Options { core, python };
            match pycore::analyze(&options) {
                Ok(report) => {
                    let format = if json { Format::Json } else { format };
                    let mut out = io::stdout().lock();
                    let written = match format {
                        Format::Text => pycore::render::text::write(&report, &mut out),
                        Format::Json => pycore::render::json::write(&report, &mut out),
                    };
                    if let Err(e) = written.and_then(|()| out.flush()) {
                        if e.kind() != io::ErrorKind::BrokenPipe {
                            eprintln!("pycore: cannot write the report: {e}");
                            return ExitCode::from(1);
                        }
                    }
                    let partial = !report.warnings.is_empty()
                        || report.threads.iter().any(|t| !t.warnings.is_empty());
                    ExitCode::from(if partial { 1 } else { 0 })
                }
                Err(error) => {
                    eprintln!("pycore: {error}");
                    ExitCode::from(error.exit_code() as u8)
                }
            }
        }
    }
}
