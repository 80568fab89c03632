//! Fetching a binary the core names by its build-id from debuginfod servers, when it is not on
//! this machine: elfutils' protocol (`GET URL/buildid/HEX/executable`) and its client cache
//! layout (`CACHE/HEX/executable`), so a file fetched by gdb or eu-stack is reused
//! and the other way round.
//!
//! Mirrors elfutils' debuginfod-client.c (debuginfod_query_server): `$DEBUGINFOD_URLS` is a
//! space-separated list of servers tried in order; the cache is `$DEBUGINFOD_CACHE_PATH`, else
//! `$XDG_CACHE_HOME/debuginfod_client`, else `~/.cache/debuginfod_client`; a server's "not found"
//! is remembered as an empty, mode-000 file for `CACHE/cache_miss_s` seconds (default 600).
//! `$DEBUGINFOD_MAXTIME` bounds each whole transfer (default: ten times `$DEBUGINFOD_TIMEOUT`,
//! whose default is 90 s), `$DEBUGINFOD_MAXSIZE` the file's size (pycore's default: 2 GiB). Only build-ids the core recorded are ever asked for (the caller's job).

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

/// What to fetch for a build-id. Only binaries: pycore reads Python stacks without debug
/// symbols, and fetching `debuginfo` for every stripped build would put a network round trip
/// (or a timeout) into analyses that do not need it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Artifact {
    /// The binary itself (the python executable, libpython).
    Executable,
}

impl Artifact {
    fn name(self) -> &'static str {
        match self {
            Artifact::Executable => "executable",
        }
    }
}

/// Why nothing was fetched.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("no debuginfod server has {artifact} {build_id} ({tried})")]
    NotFound {
        artifact: &'static str,
        build_id: String,
        tried: String,
    },
    #[error("debuginfod servers failed for {artifact} {build_id} ({tried})")]
    Failed {
        artifact: &'static str,
        build_id: String,
        tried: String,
    },
    #[error("debuginfod cache {path}: {source}")]
    Cache { path: PathBuf, source: io::Error },
}

/// Largest file fetched unless `$DEBUGINFOD_MAXSIZE` says otherwise.
const DEFAULT_MAX_SIZE: u64 = 2 << 30;
/// elfutils' defaults.
const DEFAULT_TIMEOUT_S: u64 = 90;
const DEFAULT_CACHE_MISS_S: u64 = 600;
/// Longest build-id accepted (SHA-1 is 20 bytes; some linkers use up to 32).
const MAX_BUILD_ID: usize = 64;
/// A progress bar appears when a download takes longer than this (on terminals only).
const PROGRESS_DELAY: Duration = Duration::from_millis(500);

/// The servers and cache from the environment.
#[derive(Debug, Clone)]
pub struct Debuginfod {
    urls: Vec<String>,
    cache: PathBuf,
    timeout: Duration,
    max_time: Option<Duration>,
    max_size: u64,
}

impl Debuginfod {
    /// The client `$DEBUGINFOD_URLS` configures, or `None` when it names no server.
    pub fn from_env() -> Option<Debuginfod> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        let urls: Vec<String> = var("DEBUGINFOD_URLS")?
            .split_ascii_whitespace()
            .map(|u| u.trim_end_matches('/').to_string())
            .filter(|u| u.starts_with("http://") || u.starts_with("https://"))
            .collect();
        if urls.is_empty() {
            return None;
        }
        let cache = var("DEBUGINFOD_CACHE_PATH")
            .map(PathBuf::from)
            .or_else(|| var("XDG_CACHE_HOME").map(|d| Path::new(&d).join("debuginfod_client")))
            .or_else(|| var("HOME").map(|h| Path::new(&h).join(".cache/debuginfod_client")))?;
        let number = |name: &str| var(name).and_then(|v| v.trim().parse::<u64>().ok());
        Some(Debuginfod {
            urls,
            cache,
            timeout: Duration::from_secs(number("DEBUGINFOD_TIMEOUT").unwrap_or(DEFAULT_TIMEOUT_S)),
            max_time: number("DEBUGINFOD_MAXTIME")
                .filter(|&s| s > 0)
                .map(Duration::from_secs),
            max_size: number("DEBUGINFOD_MAXSIZE")
                .filter(|&s| s > 0)
                .unwrap_or(DEFAULT_MAX_SIZE),
        })
    }

    /// The cached file for `build_id`, fetched from the first server that has it if it is not
    /// cached yet. The caller checks that the file is what it asked for (its build-id).
    pub fn fetch(&self, build_id: &[u8], artifact: Artifact) -> Result<PathBuf, FetchError> {
        let hex = crate::bytes::hex(build_id);
        let not_found = |tried: String| FetchError::NotFound {
            artifact: artifact.name(),
            build_id: hex.clone(),
            tried,
        };
        if build_id.is_empty() || build_id.len() > MAX_BUILD_ID {
            return Err(not_found("not a build-id".into()));
        }
        let dir = self.cache.join(&hex);
        let target = dir.join(artifact.name());
        let cache_err = |path: &Path, source| FetchError::Cache {
            path: path.to_path_buf(),
            source,
        };
        match fs::metadata(&target) {
            Ok(meta) if meta.len() > 0 => return Ok(target),
            // A remembered miss, while it is fresh.
            Ok(meta) if is_fresh(&meta, self.cache_miss()) => {
                return Err(not_found("a recent miss, remembered in the cache".into()))
            }
            _ => {}
        }
        fs::create_dir_all(&dir).map_err(|e| cache_err(&dir, e))?;
        let mut tried = Vec::new();
        for url in &self.urls {
            let address = format!("{url}/buildid/{hex}/{}", artifact.name());
            match self.download(&address, &dir, &target, artifact) {
                Ok(Some(())) => return Ok(target),
                Ok(None) => tried.push(format!("{url}: not found")),
                Err(error) => tried.push(format!("{url}: {error}")),
            }
        }
        // Every server answered "not found": remember it, as elfutils does (an empty file with
        // no permissions). Errors (timeouts, refused connections) are not remembered.
        if !tried.iter().all(|t| t.ends_with(": not found")) {
            return Err(FetchError::Failed {
                artifact: artifact.name(),
                build_id: hex,
                tried: tried.join("; "),
            });
        }
        let _ = File::create(&target).and_then(|_| {
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(&target, fs::Permissions::from_mode(0o000))
        });
        Err(not_found(tried.join("; ")))
    }

    /// How long a miss is remembered: `CACHE/cache_miss_s`, as elfutils reads it.
    fn cache_miss(&self) -> Duration {
        let seconds = fs::read_to_string(self.cache.join("cache_miss_s"))
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(DEFAULT_CACHE_MISS_S);
        Duration::from_secs(seconds)
    }

    /// GET `address` into a temporary file in `dir`, renamed to `target` once complete.
    /// `Ok(None)`: the server does not have it.
    fn download(
        &self,
        address: &str,
        dir: &Path,
        target: &Path,
        artifact: Artifact,
    ) -> Result<Option<()>, String> {
        let started = Instant::now();
        let total_timeout = self.max_time.unwrap_or(self.timeout * 10);
        let response = minreq::get(address)
            .with_timeout(total_timeout.as_secs().max(1))
            .with_header("User-Agent", concat!("pycore/", env!("CARGO_PKG_VERSION")))
            .with_max_redirects(5)
            .with_max_headers_size(64 * 1024)
            .with_max_status_line_length(8 * 1024)
            .send_lazy()
            .map_err(|e| e.to_string())?;
        match response.status_code {
            200 => {}
            404 => return Ok(None),
            code => return Err(format!("HTTP {code} {}", response.reason_phrase)),
        }
        let length = response
            .headers
            .get("content-length")
            .and_then(|v| v.trim().parse::<u64>().ok());
        if let Some(length) = length {
            if length > self.max_size {
                return Err(format!(
                    "{length} bytes, more than the {} allowed ($DEBUGINFOD_MAXSIZE)",
                    self.max_size
                ));
            }
        }
        let mut temp = tempfile::Builder::new()
            .prefix(&format!(".{}.", artifact.name()))
            .tempfile_in(dir)
            .map_err(|e| format!("cannot create a file in {}: {e}", dir.display()))?;
        let mut progress = Progress::new(address, length);
        let mut reader = response;
        let mut buf = vec![0u8; 64 * 1024];
        let mut written: u64 = 0;
        loop {
            if started.elapsed() > total_timeout {
                return Err(format!("timed out after {}s", total_timeout.as_secs()));
            }
            let n = match reader.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(format!("transfer failed: {e}")),
            };
            written += n as u64;
            if written > self.max_size {
                return Err(format!(
                    "more than the {} bytes allowed ($DEBUGINFOD_MAXSIZE)",
                    self.max_size
                ));
            }
            let chunk = buf.get(..n).unwrap_or_default();
            temp.write_all(chunk)
                .map_err(|e| format!("cannot write into {}: {e}", dir.display()))?;
            progress.advance(written);
        }
        if length.is_some_and(|l| l != written) {
            return Err(format!(
                "the transfer stopped at {written} of {} bytes",
                length.unwrap_or_default()
            ));
        }
        temp.persist(target)
            .map_err(|e| format!("cannot store {}: {e}", target.display()))?;
        Ok(Some(()))
    }
}

/// Whether a file's modification time is within `age` of now.
fn is_fresh(meta: &fs::Metadata, age: Duration) -> bool {
    meta.modified()
        .ok()
        .and_then(|m| SystemTime::now().duration_since(m).ok())
        .is_some_and(|elapsed| elapsed < age)
}

/// A progress bar on standard error for a download that takes a while (indicatif draws nothing
/// when standard error is not a terminal).
struct Progress {
    started: Instant,
    total: Option<u64>,
    label: String,
    bar: Option<indicatif::ProgressBar>,
}

impl Progress {
    fn new(address: &str, total: Option<u64>) -> Progress {
        Progress {
            started: Instant::now(),
            total,
            label: address.to_string(),
            bar: None,
        }
    }

    fn advance(&mut self, done: u64) {
        if self.bar.is_none() && self.started.elapsed() > PROGRESS_DELAY {
            let bar = indicatif::ProgressBar::with_draw_target(
                self.total,
                indicatif::ProgressDrawTarget::stderr(),
            );
            if let Ok(style) = indicatif::ProgressStyle::with_template(if self.total.is_some() {
                "debuginfod {msg} {bar:30} {bytes}/{total_bytes} {eta}"
            } else {
                "debuginfod {msg}: {bytes} {binary_bytes_per_sec}"
            }) {
                bar.set_style(style);
            }
            // The address comes from $DEBUGINFOD_URLS: no control characters on the terminal.
            let label: String = self.label.chars().filter(|c| !c.is_control()).collect();
            bar.set_message(label);
            self.bar = Some(bar);
        }
        if let Some(bar) = &self.bar {
            bar.set_position(done);
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;
    use std::thread;

    fn client(url: String, cache: &Path) -> Debuginfod {
        Debuginfod {
            urls: vec![url],
            cache: cache.to_path_buf(),
            timeout: Duration::from_secs(10),
            max_time: None,
            max_size: 1000,
        }
    }

    /// A one-shot HTTP server answering every request with `response`; returns its URL.
    fn serve(responses: Vec<&'static [u8]>) -> (String, thread::JoinHandle<Vec<String>>) {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("address"));
        let handle = thread::spawn(move || {
            let mut requests = Vec::new();
            for response in responses {
                let (mut stream, _) = listener.accept().expect("accept");
                let mut request = [0u8; 4096];
                let n = stream.read(&mut request).unwrap_or(0);
                let text = String::from_utf8_lossy(request.get(..n).unwrap_or_default());
                requests.push(text.lines().next().unwrap_or_default().to_string());
                let _ = stream.write_all(response);
            }
            requests
        });
        (url, handle)
    }

    #[test]
    fn fetches_into_the_elfutils_layout_once() {
        let cache = tempfile::tempdir().expect("tempdir");
        let (url, server) = serve(vec![
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello",
        ]);
        let client = client(url, cache.path());
        let path = client
            .fetch(&[0xab, 0xcd], Artifact::Executable)
            .expect("fetched");
        assert_eq!(path, cache.path().join("abcd/executable"));
        assert_eq!(fs::read(&path).expect("read"), b"hello");
        // The second time comes from the cache: the server would not answer.
        let again = client.fetch(&[0xab, 0xcd], Artifact::Executable);
        assert_eq!(again.expect("cached"), path);
        let requests = server.join().expect("server");
        assert_eq!(requests, ["GET /buildid/abcd/executable HTTP/1.1"]);
    }

    #[test]
    fn remembers_a_miss_and_refuses_oversized_files() {
        let cache = tempfile::tempdir().expect("tempdir");
        let (url, server) = serve(vec![
            b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: 5000\r\nConnection: close\r\n\r\n",
        ]);
        let client = client(url, cache.path());
        let miss = client.fetch(&[1, 2], Artifact::Executable);
        assert!(matches!(miss, Err(FetchError::NotFound { .. })), "{miss:?}");
        let marker = cache.path().join("0102/executable");
        assert_eq!(fs::metadata(&marker).expect("a miss marker").len(), 0);
        // Remembered: no second request for it.
        let miss = client.fetch(&[1, 2], Artifact::Executable);
        assert!(
            miss.as_ref()
                .is_err_and(|e| e.to_string().contains("remembered")),
            "{miss:?}"
        );
        let big = client.fetch(&[3, 4], Artifact::Executable);
        assert!(
            big.as_ref()
                .is_err_and(|e| e.to_string().contains("MAXSIZE")),
            "{big:?}"
        );
        assert!(!cache.path().join("0304/executable").exists());
        let requests = server.join().expect("server");
        assert_eq!(requests.len(), 2, "{requests:?}");
    }

    #[test]
    fn refuses_what_is_not_a_build_id() {
        let cache = tempfile::tempdir().expect("tempdir");
        let client = client("http://127.0.0.1:9".into(), cache.path());
        assert!(client.fetch(&[], Artifact::Executable).is_err());
        assert!(client.fetch(&[0; 65], Artifact::Executable).is_err());
    }
}
