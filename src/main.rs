//! The `pycore` command line: parse arguments, run the library, print, exit with a documented code.
//!
//! pycore starts at C's `main` below, without Rust's runtime set-up (`#![no_main]`): that set-up
//! asks the C library for the main thread's stack bounds to catch a stack overflow, and glibc
//! answers by reading and parsing `/proc/self/maps`, 6 % of the run on a one-thread core
//! (docs/performance.md, "Fourth round"). The rest of it is done in `main`.
#![no_main]

use std::ffi::{c_char, c_int, CStr, OsString};
use std::io::{self, Write};
use std::os::unix::ffi::OsStringExt;

use clap::{CommandFactory, Parser, Subcommand, ValueEnum};

/// Large blocks (a deep stack's frames) on huge pages: `pycore::huge_pages`.
#[global_allocator]
static ALLOCATOR: pycore::huge_pages::HugePageAlloc = pycore::huge_pages::HugePageAlloc;

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
    /// Write a small, self-contained core for a bug report: only what `pycore analyze` reads of
    /// CORE (the notes, the memory the Python walk touched, the binaries' symbols it used, the
    /// source lines it shows), zstd-compressed. `pycore analyze OUT` needs no binaries and
    /// gives the same report. What it holds: docs/packed-cores.md.
    ///
    /// Exit codes as for analyze (nothing is written on an error); 2 for an already packed
    /// core; 74 when OUT cannot be written.
    Pack(pycore::pack::PackOptions),
    /// Print a shell completion script for SHELL to standard output.
    ///
    /// bash: `pycore completions bash > ~/.local/share/bash-completion/completions/pycore`;
    /// zsh: into a directory of `$fpath` as `_pycore`; fish:
    /// `pycore completions fish > ~/.config/fish/completions/pycore.fish`.
    Completions {
        /// The shell to complete for.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print pycore's man page (roff) to standard output.
    ///
    /// `pycore man > ~/.local/share/man/man1/pycore.1` (then `man pycore`).
    Man,
}

#[derive(clap::Args)]
struct AnalyzeArgs {
    /// The core file(s): kernel cores or gcore output, plain or compressed (zstd, gzip, xz,
    /// lz4); `-` reads one from standard input. Several cores, or a directory of them, are
    /// analysed in parallel: one JSON document per line with --json, else one row per core
    /// with its crash signature.
    #[arg(value_name = "CORE", required = true)]
    cores: Vec<std::path::PathBuf>,
    #[command(flatten)]
    options: pycore::Options,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
    /// Shorthand for --format json.
    #[arg(long, conflicts_with = "format")]
    json: bool,
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

/// Exit code of an analysis without warnings and of every other command that succeeded.
const EXIT_SUCCESS: u8 = 0;

/// Exit code for a bug in pycore itself (a panic): distinct from every documented outcome.
const EXIT_INTERNAL_ERROR: u8 = 70;

/// The process's entry point, called by the C library's start-up code.
///
/// What Rust's runtime set-up would have done and pycore relies on: standard streams that are
/// open (a closed one is opened on `/dev/null`, so that no file pycore opens takes its number),
/// `SIGPIPE` ignored (a closed pipe is an `EPIPE` error, which `| head` makes normal), the
/// arguments taken from `argv` (the C library does not pass them to Rust's own start-up on
/// every platform). Not done: the stack overflow handler, which would only replace the
/// `SIGSEGV` of an overflow by a message; pycore's recursions are bounded.
/// `std::process::exit` flushes standard output as a return from Rust's `main` would.
#[no_mangle]
extern "C" fn main(argc: c_int, argv: *const *const c_char) -> c_int {
    open_standard_streams();
    // SAFETY: setting a signal's disposition to SIG_IGN runs no code of ours.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_IGN) };
    // SAFETY: the C library passes `argc` NUL-terminated strings in `argv`.
    let args = unsafe { arguments(argc, argv) };
    std::process::exit(i32::from(run(args)))
}

/// `argv` as the strings clap parses.
///
/// # Safety
/// `argv` holds at least `argc` pointers to NUL-terminated strings.
unsafe fn arguments(argc: c_int, argv: *const *const c_char) -> Vec<OsString> {
    let count = usize::try_from(argc).unwrap_or(0);
    (0..count)
        .map(|i| {
            let arg = CStr::from_ptr(*argv.add(i));
            OsString::from_vec(arg.to_bytes().to_vec())
        })
        .collect()
}

/// Standard input, output and error opened on `/dev/null` where the caller closed them, as
/// Rust's runtime does: otherwise the first file pycore opens would take a stream's number, and
/// text meant for the terminal would be written into it. Aborts if it cannot.
fn open_standard_streams() {
    let closed: Vec<c_int> = match closed_standard_streams() {
        Some(closed) => closed,
        None => std::process::abort(),
    };
    for fd in closed {
        // SAFETY: the path is NUL-terminated. The lowest free number is taken, and the lower
        // streams are open (or were opened in this loop): it is `fd`.
        let opened = unsafe { libc::open(c"/dev/null".as_ptr(), libc::O_RDWR) };
        if opened != fd {
            std::process::abort();
        }
    }
}

/// Which of the three standard streams are closed, in ascending order (`None`: cannot tell).
fn closed_standard_streams() -> Option<Vec<c_int>> {
    let mut fds = [0, 1, 2].map(|fd| libc::pollfd {
        fd,
        events: 0,
        revents: 0,
    });
    loop {
        // SAFETY: `fds` is a valid array of three pollfd for the call's duration.
        if unsafe { libc::poll(fds.as_mut_ptr(), 3, 0) } >= 0 {
            let closed = fds.iter().filter(|p| p.revents & libc::POLLNVAL != 0);
            return Some(closed.map(|p| p.fd).collect());
        }
        match io::Error::last_os_error().raw_os_error() {
            Some(libc::EINTR) => continue,
            // poll refused (as some sandboxes make it): ask each descriptor instead.
            Some(libc::EINVAL | libc::EAGAIN | libc::ENOMEM) => break,
            _ => return None,
        }
    }
    let mut closed = Vec::new();
    for fd in 0..3 {
        // SAFETY: F_GETFD reads a descriptor's flags and changes nothing.
        if unsafe { libc::fcntl(fd, libc::F_GETFD) } == -1 {
            match io::Error::last_os_error().raw_os_error() {
                Some(libc::EBADF) => closed.push(fd),
                _ => return None,
            }
        }
    }
    Some(closed)
}

/// The command line's work; the process's exit status.
fn run(args: Vec<OsString>) -> u8 {
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
    let cli = Cli::parse_from(args);
    match cli.command {
        Command::Analyze(args) => analyze(args),
        Command::Pack(options) => pack(options),
        Command::Completions { shell } => completions(shell),
        Command::Man => man(),
    }
}

/// `pycore completions SHELL`: the script clap_complete generates from the same definitions
/// the parser uses, so it cannot drift from the options.
fn completions(shell: clap_complete::Shell) -> u8 {
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "pycore", &mut script);
    write_stdout(&script)
}

/// `pycore man`: one roff page, pycore(1): clap_mangen's page of the top-level command, then
/// a section per subcommand (its synopsis, description and options as subsections), so `man
/// pycore` documents every option without a page per subcommand.
fn man() -> u8 {
    match render_man() {
        Ok(page) => write_stdout(&page),
        Err(error) => {
            eprintln!("pycore: cannot render the man page: {error}");
            EXIT_INTERNAL_ERROR
        }
    }
}

fn render_man() -> io::Result<Vec<u8>> {
    let mut command = Cli::command();
    command.build();
    let subcommands: Vec<&clap::Command> = command
        .get_subcommands()
        .filter(|s| !s.is_hide_set() && s.get_name() != "help")
        .collect();
    let mut top = Vec::new();
    clap_mangen::Man::new(command.clone()).render(&mut top)?;
    // The list of subcommands names them as pages of their own (pycore-analyze(1)); they are
    // sections of this one.
    let mut page = String::from_utf8_lossy(&top).into_owned();
    for sub in command.get_subcommands() {
        let name = sub.get_name().replace('-', "\\-");
        page = page.replace(
            &format!("pycore\\-{name}(1)"),
            &format!("\\fBpycore {name}\\fR"),
        );
    }
    for sub in subcommands {
        let name = format!("pycore {}", sub.get_name());
        let sub = sub
            .clone()
            .bin_name(name.clone())
            .display_name(name.clone());
        let man = clap_mangen::Man::new(sub);
        let mut section = Vec::new();
        man.render_synopsis_section(&mut section)?;
        man.render_description_section(&mut section)?;
        man.render_options_section(&mut section)?;
        page.push_str(&format!(".SH \"{}\"\n", name.to_uppercase()));
        for line in String::from_utf8_lossy(&section).lines() {
            // The page's preamble (the apostrophe string) is already defined at its top.
            if line.starts_with(".ie \\n(.g .ds Aq") || line.starts_with(".el .ds Aq") {
                continue;
            }
            // The subcommand's own sections become subsections of its section.
            match line.strip_prefix(".SH ") {
                Some(title) => page.push_str(&format!(".SS {title}\n")),
                None => page.push_str(&format!("{line}\n")),
            }
        }
    }
    Ok(page.into_bytes())
}

/// Writes generated text to standard output; a closed pipe (`| head`) is not an error.
fn write_stdout(bytes: &[u8]) -> u8 {
    let mut stdout = io::stdout().lock();
    match stdout.write_all(bytes).and_then(|()| stdout.flush()) {
        Ok(()) => EXIT_SUCCESS,
        Err(error) if error.kind() == io::ErrorKind::BrokenPipe => EXIT_SUCCESS,
        Err(error) => {
            eprintln!("pycore: cannot write to standard output: {error}");
            EXIT_OUTPUT_ERROR
        }
    }
}

fn analyze(args: AnalyzeArgs) -> u8 {
    let format = if args.json { Format::Json } else { args.format };
    let one_file = matches!(&args.cores[..], [only] if !only.is_dir());
    if !one_file {
        return analyze_many(&args, format);
    }
    let options = &pycore::Options {
        // cannot panic: `one_file` means exactly one path.
        core: args.cores[0].clone(),
        // The text formats fold a recursion's repeats, variables and all; JSON has every
        // frame's.
        skip_folded_locals: !matches!(format, Format::Json),
        process_exits_after: true,
        ..args.options.clone()
    };
    let mut report = match pycore::analyze(options) {
        Ok(report) => report,
        Err(error) => {
            // Not even the core's notes could be read. JSON consumers still get one document.
            if matches!(format, Format::Json) {
                let _ = pycore::render::json::write_error(&error, &mut io::stdout().lock());
            }
            eprintln!("pycore: {}", terminal_safe(error.to_string()));
            return error.exit_code() as u8;
        }
    };
    if !matches!(format, Format::Json) {
        // Once, in place: the text renderers then need no cleaned copy.
        pycore::render::make_printable(&mut report);
    }
    if let Err(error) = write_report(&report, format, args.color) {
        let broken_pipe = error
            .downcast_ref::<io::Error>()
            .is_some_and(|e| e.kind() == io::ErrorKind::BrokenPipe);
        if !broken_pipe {
            eprintln!("pycore: {error:#}");
            return EXIT_OUTPUT_ERROR;
        }
    }
    let code = match &report.error {
        Some(error) => {
            // What the core says was printed; the Python part failed, as the exit code says.
            eprintln!("pycore: {}", terminal_safe(error.message.clone()));
            u8::try_from(error.code).unwrap_or(EXIT_INTERNAL_ERROR)
        }
        None => u8::try_from(report.exit_code()).unwrap_or(EXIT_INTERNAL_ERROR),
    };
    // The process ends here: freeing a report of 100,000 frames one by one costs more than
    // the kernel's taking the whole heap back.
    std::mem::forget(report);
    code
}

/// Several cores, or a directory: analysed in parallel, one line each.
fn analyze_many(args: &AnalyzeArgs, format: Format) -> u8 {
    let cores = match pycore::batch::expand(&args.cores) {
        Ok(cores) => cores,
        Err(error) => {
            eprintln!("pycore: {}", terminal_safe(error.to_string()));
            return error.exit_code() as u8;
        }
    };
    // Each core's line is written as its chunk finishes; the table keeps one row per core.
    let mut stdout = io::stdout().lock();
    let mut rows = Vec::new();
    let mut code = 0;
    let mut failed: Option<io::Error> = None;
    pycore::batch::analyze_each(&cores, &args.options, |analysed| {
        code = code.max(analysed.exit_code());
        if failed.is_some() {
            return;
        }
        if let Format::Json = format {
            let mut line = Vec::new();
            let written = pycore::render::summary::write_json_line(
                &analysed.path,
                &analysed.result,
                &mut line,
            )
            .and_then(|()| stdout.write_all(&line))
            .and_then(|()| stdout.flush());
            failed = written.err();
        } else {
            let row = pycore::render::summary::Row::of(
                &analysed.path,
                analysed.exit_code(),
                &analysed.result,
            );
            rows.push(row);
        }
    });
    let rendered = if let Format::Json = format {
        Ok(())
    } else {
        let markdown = matches!(format, Format::Markdown);
        let mut out = Vec::new();
        pycore::render::summary::write_table(&rows, markdown, &mut out)
            .and_then(|()| stdout.write_all(&out))
    };
    if let Some(error) = failed.or(rendered.and_then(|()| stdout.flush()).err()) {
        if error.kind() != io::ErrorKind::BrokenPipe {
            eprintln!("pycore: cannot write the report to standard output: {error}");
            return EXIT_OUTPUT_ERROR;
        }
    }
    u8::try_from(code).unwrap_or(EXIT_INTERNAL_ERROR)
}

fn pack(options: pycore::pack::PackOptions) -> u8 {
    match pycore::pack::pack(&options) {
        Ok(summary) => {
            let ratio = summary.original_size as f64 / summary.packed_size.max(1) as f64;
            println!(
                "packed {} ({} bytes) into {} ({} bytes, {ratio:.0}x smaller): {} memory ranges, {} bytes of memory",
                terminal_safe(options.core.display().to_string()),
                summary.original_size,
                terminal_safe(options.output.display().to_string()),
                summary.packed_size,
                summary.segments,
                summary.memory_bytes,
            );
            let warnings = summary.report.warnings.len()
                + summary
                    .report
                    .threads
                    .iter()
                    .map(|t| t.warnings.len())
                    .sum::<usize>();
            if warnings > 0 {
                println!(
                    "the analysis had {warnings} warnings; the packed core keeps them (pycore analyze shows them)"
                );
                return 1;
            }
            EXIT_SUCCESS
        }
        Err(error) => {
            eprintln!("pycore: {}", terminal_safe(error.to_string()));
            u8::try_from(error.exit_code()).unwrap_or(EXIT_INTERNAL_ERROR)
        }
    }
}

fn write_report(report: &pycore::Report, format: Format, color: ColorWhen) -> anyhow::Result<()> {
    use anyhow::Context;
    let stdout = io::stdout();
    // Colour is decided for the terminal (NO_COLOR, CLICOLOR, TERM, is it a tty), then the
    // report is written through a 64 KiB buffer: one write for a usual report, not one per
    // line, and no copy of a 100,000-frame one in memory.
    let choice = match color {
        ColorWhen::Auto => anstream::AutoStream::choice(&stdout),
        ColorWhen::Always => anstream::ColorChoice::Always,
        ColorWhen::Never => anstream::ColorChoice::Never,
    };
    // Only the text format has styles, and only when colour is on: nothing is written to be
    // filtered out again.
    let mut out = io::BufWriter::with_capacity(1 << 16, stdout.lock());
    match format {
        Format::Text => {
            let colour = !matches!(choice, anstream::ColorChoice::Never);
            pycore::render::text::write(report, &mut out, colour)
        }
        Format::Json => pycore::render::json::write(report, &mut out),
        Format::Table => pycore::render::table::write(report, &mut out),
        Format::Markdown => pycore::render::markdown::write(report, &mut out),
    }
    .and_then(|()| out.flush())
    .context("cannot render the report to standard output")
}

/// A message that may quote paths from the core, with control characters made visible.
fn terminal_safe(mut message: String) -> String {
    pycore::render::clean(&mut message);
    message
}
