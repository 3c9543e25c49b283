//! Replays every committed input of the `http_body` fuzz target (`fuzz/corpus/http_body/` and
//! `fuzz/regressions/http_body/`) through the server's request parsing and validation, on the
//! stable toolchain. The target is the function the libFuzzer binary runs
//! (`fuzz/http_targets.rs`); it must return for every input.

use std::path::Path;

// the server's request types and errors, from the binary's sources (`api` uses `super::error`)
#[allow(dead_code, unused_imports)]
#[path = "../src/server/api.rs"]
mod api;
#[allow(dead_code, unused_imports)]
#[path = "../src/server/error.rs"]
mod error;
mod server {
    pub(crate) use super::{api, error};
}

include!("../../../fuzz/http_targets.rs");

#[test]
fn http_body_inputs() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz");
    let mut n = 0;
    for kind in ["corpus", "regressions"] {
        let Ok(entries) = std::fs::read_dir(root.join(kind).join("http_body")) else {
            continue;
        };
        let mut paths: Vec<_> = entries.map(|e| e.unwrap().path()).collect();
        paths.sort();
        for path in paths {
            eprintln!("http_body: {}", path.display());
            http_body(&std::fs::read(&path).unwrap());
            n += 1;
        }
    }
    assert!(n > 0, "no inputs for fuzz target http_body");
}
