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
/// thousands of panics and report a few. Other threads (other tests, which
/// may run at the same time, with recorders of their own) are not affected.
pub struct PanicRecorder {
    thread: std::thread::ThreadId,
}

/// The recording threads and the last panic of each. The hook that fills
/// it is installed once and stays: threads not in it get the hook that was
/// there before (the default, which prints).
static RECORDING: std::sync::Mutex<Vec<(std::thread::ThreadId, String)>> = std::sync::Mutex::new(Vec::new());

impl PanicRecorder {
    pub fn install() -> PanicRecorder {
        static HOOK: std::sync::Once = std::sync::Once::new();
        HOOK.call_once(|| {
            let previous = std::panic::take_hook();
            std::panic::set_hook(Box::new(move |info| {
                let me = std::thread::current().id();
                let mut recording = RECORDING.lock().unwrap_or_else(|e| e.into_inner());
                match recording.iter_mut().find(|(t, _)| *t == me) {
                    Some((_, last)) => *last = info.to_string(),
                    None => {
                        drop(recording);
                        previous(info);
                    }
                }
            }));
        });
        let thread = std::thread::current().id();
        RECORDING.lock().unwrap_or_else(|e| e.into_inner()).push((thread, String::new()));
        PanicRecorder { thread }
    }

    /// The last panic recorded (message and location).
    pub fn last(&self) -> String {
        let recording = RECORDING.lock().unwrap_or_else(|e| e.into_inner());
        recording.iter().find(|(t, _)| *t == self.thread).map(|(_, m)| m.clone()).unwrap_or_default()
    }
}

impl Drop for PanicRecorder {
    fn drop(&mut self) {
        RECORDING.lock().unwrap_or_else(|e| e.into_inner()).retain(|(t, _)| *t != self.thread);
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
