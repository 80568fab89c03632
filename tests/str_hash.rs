//! The `str` hash pycore computes to search dicts the way CPython does (src/python/str_hash.rs)
//! against the hash every interpreter row gives the same strings itself: with
//! `PYTHONHASHSEED=0` the process's `_Py_HashSecret` is all zeros, so the hash it prints is
//! SipHash keyed by zeros under the algorithm `sys.hash_info.algorithm` names. 2.7 hashes
//! otherwise (and pycore reads its dicts key by key): skipped with that reason.

use crate::support;

use std::process::Command;
use std::time::Duration;

use pycore::HashSecret;
use support::interpreters::Interpreter;
use support::matrix::{check_wanted_rows, Outcome};
use support::process::{run_with_timeout, TestDir};

/// An interpreter printing six hashes: seconds at most, unless the machine is badly overloaded.
const PROBE_TIMEOUT: Duration = Duration::from_secs(60);

const NAMES: [&str; 5] = [
    "threading",
    "_active",
    "_name",
    "asyncio.tasks",
    "caf\u{e9}",
];

#[test]
fn str_hashes_match_each_interpreters_own() {
    let title = "str hashes (PYTHONHASHSEED=0)";
    check_wanted_rows(title, |python, _| check_row(python));
}

fn check_row(python: &Interpreter) -> Outcome {
    if python.version.major < 3 {
        return Outcome::Skipped {
            reason: "Python 2 hashes str with its own function, not SipHash".to_string(),
        };
    }
    let script =
        format!("import sys\nprint(sys.hash_info.algorithm)\nfor n in {NAMES:?}: print(hash(n))",);
    let dir = TestDir::new(&format!("str-hash-{}", python.label()));
    let output = match run_with_timeout(
        Command::new(&python.path)
            .args(["-S", "-c", &script])
            .env("PYTHONHASHSEED", "0")
            .envs(python.scenario_env()),
        PROBE_TIMEOUT,
        dir.path(),
        "hashes",
    ) {
        Ok(output) if output.status.success() => output,
        Ok(output) => return Outcome::fail("the interpreter failed", output.stderr),
        Err(e) => return Outcome::fail("cannot run the interpreter", e),
    };
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    let mut lines = text.lines();
    let which = match lines.next() {
        Some("siphash13") => 0,
        Some("siphash24") => 1,
        other => return Outcome::fail(format!("algorithm {other:?}"), text.clone()),
    };
    let secret = HashSecret::new(0, 0);
    let mut problems = Vec::new();
    for (name, line) in NAMES.iter().zip(lines) {
        let theirs: i64 = line.trim().parse().unwrap_or(0);
        let ours = secret.candidates(name).map(|hashes| hashes[which] as i64);
        if ours != Some(theirs) {
            problems.push(format!("hash({name:?}): python {theirs}, pycore {ours:?}"));
        }
    }
    if problems.is_empty() {
        dir.remove();
        Outcome::Pass {
            notes: Vec::new(),
            caveat: None,
        }
    } else {
        Outcome::fail("hashes differ", problems.join("\n"))
    }
}
