//! Helpers shared by the golden-file tests (`check_fail`, `golden_ir`) and,
//! in [`netns`], by the live network-namespace tests ([`lb_net`]: the
//! networks of the live director tests).
#![allow(dead_code)]

pub mod lb_net;
pub mod netns;

use std::fs;
use std::path::{Path, PathBuf};

/// The root of the repository.
pub fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// True when expected files should be rewritten (`BLESS=1`).
pub fn blessing() -> bool {
    std::env::var("BLESS").is_ok_and(|v| !v.is_empty() && v != "0")
}

/// The `.p4lite` files of a folder under the repository root, sorted by name
/// so failures are reported in a stable order.
pub fn p4lite_files(dir: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(root().join(dir))
        .unwrap_or_else(|e| panic!("{dir}/ must exist: {e}"))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "p4lite"))
        .collect();
    files.sort();
    files
}

/// The message of a caught panic (the panic itself is also printed to the captured stderr).
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "<non-string panic payload>".to_string()
    }
}

/// While alive, records the panics of the thread that made it (their
/// message and location) instead of printing them: property tests catch
/// thousands of panics and report a few. Other threads (other tests) keep
/// printing theirs. Dropping it puts back a hook that prints.
pub struct PanicRecorder {
    last: std::sync::Arc<std::sync::Mutex<String>>,
}

impl PanicRecorder {
    pub fn install() -> PanicRecorder {
        let last = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let recorded = last.clone();
        let this_thread = std::thread::current().id();
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if std::thread::current().id() != this_thread {
                previous(info);
            } else if let Ok(mut m) = recorded.lock() {
                *m = info.to_string();
            }
        }));
        PanicRecorder { last }
    }

    /// The last panic recorded (message and location).
    pub fn last(&self) -> String {
        self.last.lock().map(|m| m.clone()).unwrap_or_default()
    }
}

impl Drop for PanicRecorder {
    fn drop(&mut self) {
        // The default hook (the original cannot be moved back out of the
        // closure that owns it).
        let _ = std::panic::take_hook();
    }
}

/// A short description of where `actual` first departs from `expected`.
pub fn first_difference(expected: &str, actual: &str) -> String {
    let (mut e, mut a) = (expected.lines(), actual.lines());
    for line in 1.. {
        match (e.next(), a.next()) {
            (None, None) => return "only trailing whitespace differs".to_string(),
            (x, y) if x == y => continue,
            (x, y) => {
                return format!(
                    "first difference at line {line}:\n  expected: {}\n  actual:   {}",
                    x.unwrap_or("<end of file>"),
                    y.unwrap_or("<end of output>")
                )
            }
        }
    }
    unreachable!("the loop returns")
}
