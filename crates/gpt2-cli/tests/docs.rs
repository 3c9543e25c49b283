//! The docs in `docs/` cannot drift from the code: every number they quote is the output of one
//! of our commands, and this test re-runs each command and compares.
//!
//! Convention in `docs/*.md`: an HTML comment `<!-- cmd: gpt2 ARGS -->` right before a fenced
//! code block. The block must equal the command's stdout (trailing spaces and blank lines
//! ignored); with `<!-- cmd: gpt2 ARGS | lines A-B -->`, its lines A to B (counted from 1); with
//! `<!-- cmd: gpt2 ARGS | grep "TEXT" "MORE" -->`, its lines that contain any of the texts.
//! A command that writes `--out FILE` is run with a temporary file instead, which must match the
//! committed FILE (PNG: same size, every channel within 2/255; other files: identical).
//! Commands run in the repository root with this build's `gpt2`. Those that name
//! `models/gpt2-shakespeare` are skipped, with a message, while that model is not in the tree.
//!
//! `DOCS_UPDATE=1 cargo test -p gpt2-cli --test docs` rewrites the quoted blocks and files from
//! the current output instead of failing (then review the diff).
//!
//! A second test checks the links: every relative link in the docs points at a file that exists,
//! and a link whose text is a code name (`` [`layernorm_forward`](../crates/...) ``) points at a
//! file that defines that name.

use std::path::{Path, PathBuf};
use std::process::Command;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn doc_pages() -> Vec<PathBuf> {
    let mut pages: Vec<PathBuf> = std::fs::read_dir(repo().join("docs"))
        .expect("docs/ exists")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    pages.sort();
    assert!(
        pages.len() >= 10,
        "expected the docs pages, found {pages:?}"
    );
    pages
}

/// Splits a command line as a POSIX shell would for the simple cases the docs use: spaces
/// separate words; '…' and "…" quote (with \" and \\ inside double quotes).
fn shell_words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = line.chars().peekable();
    while let Some(ch) = chars.next() {
        match ch {
            ' ' | '\t' => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            '\'' => {
                in_word = true;
                for c in chars.by_ref() {
                    if c == '\'' {
                        break;
                    }
                    cur.push(c);
                }
            }
            '"' => {
                in_word = true;
                while let Some(c) = chars.next() {
                    match c {
                        '"' => break,
                        '\\' if matches!(chars.peek(), Some('"') | Some('\\')) => {
                            cur.push(chars.next().unwrap())
                        }
                        _ => cur.push(c),
                    }
                }
            }
            _ => {
                in_word = true;
                cur.push(ch);
            }
        }
    }
    if in_word {
        words.push(cur);
    }
    words
}

/// One `<!-- cmd: ... -->` and the fenced block after it.
struct Quote {
    /// Line index (0-based) of the block's first content line, and of its closing fence.
    body: std::ops::Range<usize>,
    args: Vec<String>,
    select: Select,
}

/// Which lines of the output a block quotes.
enum Select {
    All,
    /// Lines A..=B, counted from 1.
    Lines(usize, usize),
    /// Lines containing any of these texts.
    Grep(Vec<String>),
}

fn quotes(page: &Path, text: &str) -> Vec<Quote> {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let Some(rest) = line.trim().strip_prefix("<!-- cmd:") else {
            continue;
        };
        let cmd = rest
            .strip_suffix("-->")
            .unwrap_or_else(|| panic!("{}:{}: unterminated cmd comment", page.display(), i + 1))
            .trim();
        let (cmd, select) = match cmd.split_once(" | ") {
            Some((c, s)) => {
                let sel = if let Some(range) = s.strip_prefix("lines ") {
                    let (a, b) = range.trim().split_once('-').expect("lines A-B");
                    Select::Lines(a.parse().unwrap(), b.parse().unwrap())
                } else if let Some(texts) = s.strip_prefix("grep ") {
                    Select::Grep(shell_words(texts))
                } else {
                    panic!("{}:{}: unknown selector `| {s}`", page.display(), i + 1)
                };
                (c, sel)
            }
            None => (cmd, Select::All),
        };
        let words = shell_words(cmd);
        assert_eq!(
            words.first().map(String::as_str),
            Some("gpt2"),
            "{}:{}: commands start with gpt2",
            page.display(),
            i + 1
        );
        let has_out = words.iter().any(|w| w == "--out");
        let fence = lines.get(i + 1).map(|l| l.trim_start().starts_with("```"));
        let body = if fence == Some(true) {
            let end = (i + 2..lines.len())
                .find(|&k| lines[k].trim_start().starts_with("```"))
                .unwrap_or_else(|| panic!("{}:{}: unclosed block", page.display(), i + 2));
            i + 2..end
        } else {
            assert!(
                has_out,
                "{}:{}: a cmd comment must be followed by a fenced block (or write --out FILE)",
                page.display(),
                i + 1
            );
            0..0
        };
        out.push(Quote {
            body,
            args: words[1..].to_vec(),
            select,
        });
    }
    out
}

fn normalize(text: &str) -> Vec<String> {
    let mut v: Vec<String> = text.lines().map(|l| l.trim_end().to_string()).collect();
    while v.last().is_some_and(|l| l.is_empty()) {
        v.pop();
    }
    v
}

/// Decodes an 8-bit PNG into (width, height, bytes).
fn decode_png(bytes: &[u8]) -> (u32, u32, Vec<u8>) {
    let dec = png::Decoder::new(bytes);
    let mut reader = dec.read_info().expect("a PNG");
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).expect("a PNG frame");
    buf.truncate(info.buffer_size());
    (info.width, info.height, buf)
}

fn files_match(path: &Path, got: &[u8], want: &[u8]) -> Result<(), String> {
    if path.extension().is_some_and(|e| e == "png") {
        let (gw, gh, g) = decode_png(got);
        let (ww, wh, w) = decode_png(want);
        if (gw, gh) != (ww, wh) {
            return Err(format!("size {gw}×{gh}, committed {ww}×{wh}"));
        }
        let worst = g
            .iter()
            .zip(&w)
            .map(|(a, b)| a.abs_diff(*b))
            .max()
            .unwrap_or(0);
        if worst > 2 {
            return Err(format!("a pixel channel differs by {worst}/255"));
        }
        Ok(())
    } else if got == want {
        Ok(())
    } else {
        Err("contents differ".into())
    }
}

#[test]
fn docs_quote_the_current_output_of_their_commands() {
    let update = std::env::var("DOCS_UPDATE").is_ok_and(|v| v == "1");
    let model_present = repo().join("models/gpt2-shakespeare/config.json").exists();
    let tmp = tempfile::tempdir().unwrap();
    let mut failures = Vec::new();
    let mut ran = 0;
    for page in doc_pages() {
        let text = std::fs::read_to_string(&page).unwrap();
        let mut lines: Vec<String> = text.lines().map(String::from).collect();
        let qs = quotes(&page, &text);
        // rewrite from the bottom so earlier line numbers stay valid
        for q in qs.iter().rev() {
            let shown = format!("gpt2 {}", q.args.join(" "));
            if !model_present && q.args.iter().any(|a| a.contains("models/gpt2-shakespeare")) {
                eprintln!(
                    "skipped (models/gpt2-shakespeare is not in the tree): {} — {shown}",
                    page.display()
                );
                continue;
            }
            let mut args = q.args.clone();
            let mut out_file = None;
            if let Some(k) = args.iter().position(|a| a == "--out") {
                let committed = repo().join(&args[k + 1]);
                let name = committed.file_name().unwrap().to_owned();
                let tmp_out = tmp.path().join(&name);
                args[k + 1] = tmp_out.display().to_string();
                out_file = Some((committed, tmp_out));
            }
            let output = Command::new(env!("CARGO_BIN_EXE_gpt2"))
                .args(&args)
                .current_dir(repo())
                .output()
                .expect("run gpt2");
            ran += 1;
            if !output.status.success() {
                failures.push(format!(
                    "{}: `{shown}` failed: {}",
                    page.display(),
                    String::from_utf8_lossy(&output.stderr)
                ));
                continue;
            }
            if let Some((committed, tmp_out)) = out_file {
                let got = std::fs::read(&tmp_out).unwrap();
                let verdict = match std::fs::read(&committed) {
                    Ok(want) => files_match(&committed, &got, &want),
                    Err(e) => Err(format!("cannot read the committed file: {e}")),
                };
                if let Err(why) = verdict {
                    if update {
                        std::fs::write(&committed, &got).unwrap();
                        eprintln!("updated {}", committed.display());
                    } else {
                        failures.push(format!(
                            "{}: `{shown}` writes a file unlike {}: {why}",
                            page.display(),
                            committed.display()
                        ));
                    }
                }
            }
            if q.body.is_empty() && q.body.start == 0 {
                continue; // a file-only command
            }
            let stdout = String::from_utf8(output.stdout).unwrap();
            let all = normalize(&stdout);
            let want: Vec<String> = match &q.select {
                Select::All => all.clone(),
                Select::Grep(texts) => all
                    .iter()
                    .filter(|l| texts.iter().any(|t| l.contains(t.as_str())))
                    .cloned()
                    .collect(),
                &Select::Lines(a, b) => {
                    assert!(
                        a >= 1 && a <= b && b <= all.len(),
                        "{}: `{shown}` prints {} lines; lines {a}-{b} asked",
                        page.display(),
                        all.len()
                    );
                    all[a - 1..b].to_vec()
                }
            };
            let quoted = normalize(&lines[q.body.clone()].join("\n"));
            if quoted != want {
                if update {
                    lines.splice(q.body.clone(), want.iter().cloned());
                    eprintln!("updated the output of `{shown}` in {}", page.display());
                } else {
                    failures.push(format!(
                        "{}: the block after `<!-- cmd: {shown} -->` is out of date.\n--- quoted\n{}\n--- the command prints now\n{}\n(rerun with DOCS_UPDATE=1 to rewrite it)",
                        page.display(),
                        quoted.join("\n"),
                        want.join("\n")
                    ));
                }
            }
        }
        if update {
            let mut new = lines.join("\n");
            new.push('\n');
            if new != text {
                std::fs::write(&page, new).unwrap();
            }
        }
    }
    assert!(ran > 0, "no <!-- cmd: --> quotes found in docs/");
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// The name a link's text stands for: `Tokenizer::encode` → `encode`, `layernorm_forward` →
/// itself; `None` for texts that are not code names (file names, prose).
fn code_name(text: &str) -> Option<&str> {
    let t = text.strip_prefix('`')?.strip_suffix('`')?;
    let t = t.strip_suffix("()").unwrap_or(t);
    let last = t.rsplit("::").next()?;
    let ok = !last.is_empty()
        && last.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !last.chars().next().unwrap().is_ascii_digit();
    ok.then_some(last)
}

/// A heading's anchor as GitHub makes it: lowercase, spaces to `-`, other punctuation dropped.
fn slug(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

#[test]
fn docs_links_point_at_existing_files_and_functions() {
    let model_present = repo().join("models/gpt2-shakespeare/config.json").exists();
    let mut failures = Vec::new();
    let mut checked = 0;
    for page in doc_pages() {
        let text = std::fs::read_to_string(&page).unwrap();
        // files that commands on the default model write (absent until the model is)
        let made_from_model: Vec<PathBuf> = quotes(&page, &text)
            .iter()
            .filter(|q| q.args.iter().any(|a| a.contains("models/gpt2-shakespeare")))
            .filter_map(|q| {
                let k = q.args.iter().position(|a| a == "--out")?;
                Some(repo().join(&q.args[k + 1]))
            })
            .collect();
        let dir = page.parent().unwrap();
        // every "[text](target)" outside code spans is a link
        let mut rest = text.as_str();
        while let Some(open) = rest.find("](") {
            let before = &rest[..open];
            let Some(start) = before.rfind('[') else {
                rest = &rest[open + 2..];
                continue;
            };
            let label = &before[start + 1..];
            let after = &rest[open + 2..];
            let Some(close) = after.find(')') else { break };
            let target = &after[..close];
            rest = &after[close..];
            if target.starts_with("http") || target.starts_with('#') || target.contains(' ') {
                continue;
            }
            let file = target.split('#').next().unwrap();
            let path = dir.join(file);
            checked += 1;
            if !path.exists() {
                // the default model's files, and pictures drawn from it, arrive with the model
                let from_model = file.contains("models/gpt2-shakespeare")
                    || made_from_model.iter().any(|m| m.ends_with(file));
                if model_present || !from_model {
                    failures.push(format!("{}: link to missing {file}", page.display()));
                }
                continue;
            }
            if let Some(frag) = target.split_once('#').map(|(_, f)| f) {
                if file.ends_with(".md") && path.is_file() {
                    let md = std::fs::read_to_string(&path).unwrap();
                    let found = md
                        .lines()
                        .filter_map(|l| l.strip_prefix('#'))
                        .any(|h| slug(h.trim_start_matches('#')) == frag);
                    if !found {
                        failures.push(format!("{}: no heading #{frag} in {file}", page.display()));
                    }
                }
            }
            if let Some(name) = code_name(label) {
                if path.is_file() && file.ends_with(".rs") {
                    let src = std::fs::read_to_string(&path).unwrap();
                    let defined = [
                        "fn ", "struct ", "enum ", "const ", "type ", "trait ", "mod ", "static ",
                    ]
                    .iter()
                    .any(|kw| {
                        src.match_indices(&format!("{kw}{name}")).any(|(i, m)| {
                            let next = src[i + m.len()..].chars().next();
                            !next.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
                        })
                    });
                    // enum variants and fields: `Name,` / `Name {` / `Name(` / `name:`
                    let member = src.lines().any(|l| {
                        let l = l.trim_start().trim_start_matches("pub ");
                        l.starts_with(&format!("{name},"))
                            || l.starts_with(&format!("{name} {{"))
                            || l.starts_with(&format!("{name}("))
                            || l.starts_with(&format!("{name}:"))
                    });
                    if !defined && !member {
                        failures.push(format!(
                            "{}: [{label}]({file}): {file} defines no `{name}`",
                            page.display()
                        ));
                    }
                }
            }
        }
    }
    assert!(checked > 50, "only {checked} links found in docs/");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The memory formula the docs give for the training activations is the code's: the same number
/// as [`gpt2::train::Activations::num_bytes`] and as `gpt2 inspect`.
#[test]
fn activation_memory_in_inspect_is_what_the_trainer_allocates() {
    for (preset, b, t) in [("gpt2", 2usize, 16usize), ("gpt2-medium", 1, 7)] {
        let cfg = gpt2::Gpt2Config::preset(preset).unwrap();
        let acts = gpt2::train::Activations::new(&cfg, b, t);
        let out = Command::new(env!("CARGO_BIN_EXE_gpt2"))
            .args(["inspect", "--preset", preset, "--batch"])
            .arg(b.to_string())
            .arg("--seq-len")
            .arg(t.to_string())
            .arg("--json")
            .output()
            .unwrap();
        assert!(out.status.success());
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let m = &v["train_memory"];
        assert_eq!(m["activations"], acts.num_bytes() as u64, "{preset}");
        // the formula of docs/memory-and-flops.md
        let (c, vv, nh, l) = (
            cfg.n_embd as u64,
            cfg.vocab_size as u64,
            cfg.n_head as u64,
            cfg.n_layer as u64,
        );
        let n = (b * t) as u64;
        let att = b as u64 * nh * (t * t) as u64;
        let floats = l * (n * (16 * c + 4) + att) + n * (2 * vv + 18 * c + 5) + att;
        assert_eq!(acts.num_bytes() as u64, 4 * floats, "{preset}");
        let p = cfg.num_params() as u64;
        assert_eq!(m["weights"], 4 * p);
        assert_eq!(m["total"], 16 * p + 4 * floats);
    }
}

#[test]
fn shell_words_handles_quotes() {
    assert_eq!(
        shell_words(r#"gpt2 tokenize --explain "Hello \"world\"" 'a b'"#),
        ["gpt2", "tokenize", "--explain", "Hello \"world\"", "a b"]
    );
}

/// `gpt2 inspect --attention` shows the probabilities of the block and head asked for: layer 0,
/// head 2 of the tiny fixture recomputed here in f64 from the weights (embeddings → ln_1 →
/// c_attn → softmax(q·kᵀ/√HS) over j ≤ i), and a PNG of T×T cells.
#[test]
fn inspect_attention_shows_the_requested_head() {
    let dir = repo().join("crates/gpt2/tests/fixtures/tiny");
    let text = "a b c d e";
    let run = |extra: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_gpt2"))
            .args(["inspect", "--model"])
            .arg(&dir)
            .args(["--attention", text])
            .args(extra)
            .output()
            .unwrap()
    };
    let out = run(&["--layer", "0", "--head", "2", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let got: Vec<Vec<f64>> = serde_json::from_value(v["attention"].clone()).unwrap();
    let ids: Vec<u32> = serde_json::from_value(v["tokens"].clone()).unwrap();
    assert_eq!(ids, [64, 275, 269, 288, 304]);

    let params = gpt2::checkpoint::load(&dir).unwrap();
    let (c, nh) = (params.cfg.n_embd, params.cfg.n_head);
    let (hs, t, head) = (c / nh, ids.len(), 2);
    let w = params.views();
    let l0 = &w.h[0];
    let mut q = vec![vec![0f64; hs]; t];
    let mut k = vec![vec![0f64; hs]; t];
    for (i, &id) in ids.iter().enumerate() {
        let x: Vec<f64> = (0..c)
            .map(|j| (w.wte[id as usize * c + j] + w.wpe[i * c + j]) as f64)
            .collect();
        let mu = x.iter().sum::<f64>() / c as f64;
        let var = x.iter().map(|v| (v - mu) * (v - mu)).sum::<f64>() / c as f64;
        let h: Vec<f64> = (0..c)
            .map(|j| (x[j] - mu) / (var + 1e-5).sqrt() * l0.ln_1_w[j] as f64 + l0.ln_1_b[j] as f64)
            .collect();
        for d in 0..hs {
            let (qc, kc) = (head * hs + d, c + head * hs + d);
            let dotw = |col: usize| -> f64 {
                l0.c_attn_b[col] as f64
                    + (0..c)
                        .map(|j| h[j] * l0.c_attn_w[j * 3 * c + col] as f64)
                        .sum::<f64>()
            };
            q[i][d] = dotw(qc);
            k[i][d] = dotw(kc);
        }
    }
    for i in 0..t {
        let s: Vec<f64> = (0..=i)
            .map(|j| (0..hs).map(|d| q[i][d] * k[j][d]).sum::<f64>() / (hs as f64).sqrt())
            .collect();
        let m = s.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let z: f64 = s.iter().map(|x| (x - m).exp()).sum();
        for j in 0..t {
            let want = if j <= i { (s[j] - m).exp() / z } else { 0.0 };
            assert!(
                (got[i][j] - want).abs() < 1e-5,
                "P[{i}][{j}] {} vs {want}",
                got[i][j]
            );
        }
    }

    let tmp = tempfile::tempdir().unwrap();
    let png = tmp.path().join("att.png");
    let out = run(&[
        "--layer",
        "1",
        "--head",
        "0",
        "--out",
        png.to_str().unwrap(),
    ]);
    assert!(out.status.success());
    let (wd, ht, _) = decode_png(&std::fs::read(&png).unwrap());
    assert_eq!((wd, ht), (5 * 32, 5 * 32));
    let out = run(&["--layer", "2"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--layer 2 is out of range"));
}
