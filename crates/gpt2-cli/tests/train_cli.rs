//! `gpt2 prepare`, `gpt2 train` and `gpt2 eval` through the real binary: outputs, metrics, exact
//! resume, Ctrl-C, every bad-input error, and that a tiny model learns a repetitive corpus.
//!
//! Models are `--preset gpt2 --n-layer 1 --n-head 2 --n-embd 32 --n-ctx 32` (1.6M parameters, V
//! 50257), a few steps each.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use gpt2::data::{write_shard, Shard};
use gpt2::tokenizer::{Special, Tokenizer, EOT};

const TINY: &[&str] = &[
    "--preset",
    "gpt2",
    "--n-layer",
    "1",
    "--n-head",
    "2",
    "--n-embd",
    "32",
    "--n-ctx",
    "32",
];

fn gpt2(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_gpt2"))
        .args(args)
        .output()
        .expect("run gpt2")
}

fn ok(args: &[&str]) -> Output {
    let out = gpt2(args);
    assert!(
        out.status.success(),
        "gpt2 {args:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Runs a command that must fail with a one-line error containing `needle`; returns the line.
fn fails(args: &[&str], needle: &str) -> String {
    let out = gpt2(args);
    let err = String::from_utf8_lossy(&out.stderr).trim().to_string();
    assert!(!out.status.success(), "gpt2 {args:?} succeeded");
    assert_eq!(err.lines().count(), 1, "one line expected: {err}");
    assert!(err.starts_with("error: "), "{err}");
    assert!(err.contains(needle), "`{needle}` not in: {err}");
    err
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// A repetitive English corpus of about 2,000 tokens in `dir/corpus.txt`.
fn corpus(dir: &Path) -> PathBuf {
    let line = "The quick brown fox jumps over the lazy dog, and the dog sleeps in the sun.\n";
    let path = dir.join("corpus.txt");
    std::fs::write(&path, line.repeat(110)).unwrap();
    path
}

/// `gpt2 prepare` of [`corpus`] into `dir/data` (val 10 %).
fn prepared(dir: &Path) -> PathBuf {
    let data = dir.join("data");
    ok(&["prepare", "--input", s(&corpus(dir)), "--out", s(&data)]);
    data
}

/// `gpt2 train` of the tiny model with B 4, T 32, no samples unless `extra` asks, and `extra`.
fn train_args<'a>(data: &'a str, out: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut a = vec!["train", "--data", data, "--out", out];
    a.extend_from_slice(TINY);
    a.extend_from_slice(&["--batch-size", "4", "--seq-len", "32"]);
    if !extra.contains(&"--sample-every") {
        a.extend_from_slice(&["--sample-every", "0"]);
    }
    a.extend_from_slice(extra);
    a
}

fn metrics(out: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(out.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// (step, loss) of the training rows.
fn losses(out: &Path) -> Vec<(u64, f64)> {
    metrics(out)
        .iter()
        .filter(|r| r.get("loss").is_some())
        .map(|r| (r["step"].as_u64().unwrap(), r["loss"].as_f64().unwrap()))
        .collect()
}

#[test]
fn prepare_tokenizes_files_and_folders_into_train_and_val() {
    let dir = tempfile::tempdir().unwrap();
    let docs = dir.path().join("docs");
    std::fs::create_dir(&docs).unwrap();
    std::fs::write(docs.join("b.txt"), "Second document.\nWith two lines.\n").unwrap();
    std::fs::write(docs.join("a.txt"), "First document, hello world!").unwrap();
    std::fs::write(docs.join(".hidden"), "not a document").unwrap();
    let single = dir.path().join("c.txt");
    std::fs::write(&single, "Third: <|endoftext|> stays text.").unwrap();
    let out = dir.path().join("shards");
    let o = ok(&[
        "prepare",
        "--input",
        s(&docs),
        s(&single),
        "--out",
        s(&out),
        "--val-fraction",
        "0.25",
    ]);
    let summary = String::from_utf8_lossy(&o.stdout);
    assert!(summary.contains("documents 3"), "{summary}");

    // folder files in name order, then the file; joined by <|endoftext|>
    let tok = Tokenizer::gpt2().unwrap();
    let mut want = tok.encode("First document, hello world!", Special::None);
    want.push(EOT);
    want.extend(tok.encode("Second document.\nWith two lines.\n", Special::None));
    want.push(EOT);
    want.extend(tok.encode("Third: <|endoftext|> stays text.", Special::None));
    assert!(
        summary.contains(&format!("tokens {}", want.len())),
        "{summary}"
    );
    let bytes = [
        "First document, hello world!",
        "Second document.\nWith two lines.\n",
        "Third: <|endoftext|> stays text.",
    ]
    .iter()
    .map(|t| t.len())
    .sum::<usize>();
    assert!(summary.contains(&format!("bytes {bytes}")), "{summary}");

    let read = |name: &str| {
        let sh = Shard::open(&out.join(name), 50257).unwrap();
        (0..sh.len()).map(|i| sh.token(i)).collect::<Vec<u32>>()
    };
    let (train, val) = (read("train.bin"), read("val.bin"));
    assert_eq!(val.len(), (want.len() as f64 * 0.25).round() as usize);
    assert_eq!([train, val].concat(), want);
}

#[test]
fn prepare_rejects_empty_input() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.txt");
    std::fs::write(&empty, "").unwrap();
    let out = dir.path().join("out");
    fails(
        &["prepare", "--input", s(&empty), "--out", s(&out)],
        "empty",
    );
    assert!(!out.exists());
    let folder = dir.path().join("nothing");
    std::fs::create_dir(&folder).unwrap();
    fails(
        &["prepare", "--input", s(&folder), "--out", s(&out)],
        "no input files",
    );
}

#[test]
fn train_writes_model_state_metrics_checkpoints_and_plot_then_eval_reads_it() {
    let dir = tempfile::tempdir().unwrap();
    let data = prepared(dir.path());
    let out = dir.path().join("run");
    let args = train_args(
        s(&data),
        s(&out),
        &[
            "--steps",
            "4",
            "--eval-every",
            "2",
            "--eval-steps",
            "2",
            "--save-every",
            "1",
            "--keep-checkpoints",
            "2",
            "--sample-every",
            "2",
        ],
    );
    let o = ok(&args);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(stderr.contains("sample at step 2"), "{stderr}");
    for f in [
        "config.json",
        "model.safetensors",
        "optimizer.safetensors",
        "trainer_state.json",
        "metrics.jsonl",
    ] {
        assert!(out.join(f).is_file(), "{f} missing");
    }
    let svg = std::fs::read_to_string(out.join("loss.svg")).unwrap();
    assert!(
        svg.starts_with("<svg") && svg.contains("<polyline"),
        "{svg}"
    );
    // --save-every 1 over 4 steps: checkpoints 1..3 (the final model is OUT itself), newest 2 kept
    let mut cks: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("checkpoint-") || n.starts_with('.'))
        .collect();
    cks.sort();
    assert_eq!(cks, ["checkpoint-2", "checkpoint-3"]);
    for f in [
        "config.json",
        "model.safetensors",
        "optimizer.safetensors",
        "trainer_state.json",
    ] {
        assert!(
            out.join("checkpoint-3").join(f).is_file(),
            "checkpoint-3/{f} missing"
        );
    }

    let cfg: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("config.json")).unwrap()).unwrap();
    assert_eq!(
        (cfg["n_layer"].as_u64(), cfg["n_embd"].as_u64()),
        (Some(1), Some(32))
    );
    assert_eq!(cfg["vocab_size"].as_u64(), Some(50257));
    let state: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("trainer_state.json")).unwrap())
            .unwrap();
    assert_eq!(state["step"].as_u64(), Some(4));
    assert_eq!(state["adamw_t"].as_u64(), Some(4));

    let rows = metrics(&out);
    let steps: Vec<&serde_json::Value> = rows.iter().filter(|r| r.get("loss").is_some()).collect();
    assert_eq!(steps.len(), 4);
    for (i, r) in steps.iter().enumerate() {
        let keys: Vec<&String> = r.as_object().unwrap().keys().collect();
        assert_eq!(keys.len(), 5, "{r}");
        assert_eq!(r["step"].as_u64(), Some(i as u64));
        for k in ["loss", "lr", "grad_norm", "tokens_per_s"] {
            assert!(
                r[k].as_f64().is_some_and(|x| x.is_finite() && x > 0.0),
                "{k} in {r}"
            );
        }
    }
    // initial loss of a fresh model is close to ln V
    assert!((steps[0]["loss"].as_f64().unwrap() - 50257f64.ln()).abs() < 0.3);
    let vals: Vec<u64> = rows
        .iter()
        .filter(|r| r.get("val_loss").is_some())
        .map(|r| r["step"].as_u64().unwrap())
        .collect();
    assert_eq!(vals, [0, 2, 4]);

    // eval on the validation shard: N − 1 tokens, perplexity = e^loss
    let val = data.join("val.bin");
    let n = Shard::open(&val, 50257).unwrap().len() as u64;
    let o = ok(&[
        "eval",
        "--model",
        s(&out),
        "--data",
        s(&val),
        "--seq-len",
        "16",
        "--json",
    ]);
    let r: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let (loss, ppl) = (
        r["loss"].as_f64().unwrap(),
        r["perplexity"].as_f64().unwrap(),
    );
    assert_eq!(r["tokens"].as_u64(), Some(n - 1));
    assert!(
        (ppl - loss.exp()).abs() < 1e-6 * ppl && loss > 0.0 && loss < 12.0,
        "{r}"
    );
    fails(
        &[
            "eval",
            "--model",
            s(&out),
            "--data",
            s(&val),
            "--seq-len",
            "33",
        ],
        "n_positions 32",
    );
}

#[test]
fn resume_continues_bitwise_identically() {
    let dir = tempfile::tempdir().unwrap();
    let data = prepared(dir.path());
    // the specified case (--no-shuffle), and shuffled windows with dropout and accumulation, which
    // also need the RNG states restored
    for (name, extra) in [
        ("plain", vec!["--no-shuffle"]),
        ("rng", vec!["--dropout", "0.1", "--grad-accum", "2"]),
    ] {
        let full = dir.path().join(format!("full-{name}"));
        let resumed = dir.path().join(format!("resumed-{name}"));
        let mut common = vec![
            "--steps",
            "6",
            "--save-every",
            "3",
            "--eval-every",
            "2",
            "--eval-steps",
            "1",
        ];
        common.extend(&extra);
        ok(&train_args(s(&data), s(&full), &common));
        let ck = full.join("checkpoint-3");
        let mut again = common.clone();
        again.extend(["--resume", s(&ck)]);
        ok(&train_args(s(&data), s(&resumed), &again));

        let a = losses(&full);
        let b = losses(&resumed);
        assert_eq!(a.len(), 6);
        assert_eq!(
            b.iter().map(|r| r.0).collect::<Vec<_>>(),
            [3, 4, 5],
            "{name}"
        );
        for ((sa, la), (sb, lb)) in a[3..].iter().zip(&b) {
            assert_eq!(sa, sb);
            assert_eq!(
                la.to_bits(),
                lb.to_bits(),
                "{name}: step {sa} loss {la} vs {lb}"
            );
        }
        for f in ["model.safetensors", "optimizer.safetensors"] {
            assert!(
                std::fs::read(full.join(f)).unwrap() == std::fs::read(resumed.join(f)).unwrap(),
                "{name}: {f} differs after resume"
            );
        }
    }
}

#[test]
fn resume_into_the_same_folder_keeps_earlier_metrics_and_rejects_other_flags() {
    let dir = tempfile::tempdir().unwrap();
    let data = prepared(dir.path());
    let out = dir.path().join("run");
    let flags = [
        "--steps",
        "4",
        "--save-every",
        "2",
        "--eval-every",
        "0",
        "--no-shuffle",
    ];
    ok(&train_args(s(&data), s(&out), &flags));
    let before = losses(&out);
    let ck = out.join("checkpoint-2");
    let mut again = flags.to_vec();
    again.extend(["--resume", s(&ck)]);
    ok(&train_args(s(&data), s(&out), &again));
    assert_eq!(losses(&out), before);

    let mut other = again.clone();
    other.extend(["--lr", "0.001"]);
    fails(&train_args(s(&data), s(&out), &other), "--lr");
}

#[test]
fn a_larger_steps_on_resume_trains_longer() {
    let dir = tempfile::tempdir().unwrap();
    let data = prepared(dir.path());
    let flags = |steps: &'static str| {
        vec![
            "--steps",
            steps,
            "--save-every",
            "0",
            "--eval-every",
            "0",
            "--no-shuffle",
            "--lr-schedule",
            "constant",
        ]
    };
    // 6 steps at once, or 4 and then 2 more from the final state: the same losses and weights
    let (full, short) = (dir.path().join("full"), dir.path().join("short"));
    ok(&train_args(s(&data), s(&full), &flags("6")));
    ok(&train_args(s(&data), s(&short), &flags("4")));
    let mut more = flags("6");
    more.extend(["--resume", s(&short)]);
    let o = ok(&train_args(s(&data), s(&short), &more));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("training longer: --steps 6 (the run had 4)"),
        "{err}"
    );
    assert_eq!(losses(&short), losses(&full));
    assert!(
        std::fs::read(full.join("model.safetensors")).unwrap()
            == std::fs::read(short.join("model.safetensors")).unwrap()
    );
    // nothing left to train is an error
    let mut done = flags("6");
    done.extend(["--resume", s(&short)]);
    fails(
        &train_args(s(&data), s(&short), &done),
        "leaves nothing to train",
    );
}

#[cfg(unix)]
#[test]
fn ctrl_c_saves_a_checkpoint_and_exits() {
    let dir = tempfile::tempdir().unwrap();
    let data = prepared(dir.path());
    let out = dir.path().join("run");
    let args = train_args(
        s(&data),
        s(&out),
        &["--steps", "100000", "--eval-every", "0"],
    );
    let mut child = Command::new(env!("CARGO_BIN_EXE_gpt2"))
        .args(&args)
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let t0 = std::time::Instant::now();
    while !out.join("metrics.jsonl").is_file() || losses(&out).len() < 2 {
        assert!(t0.elapsed().as_secs() < 60, "training did not start");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let kill = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130));
    let done = losses(&out).len();
    let ck = out.join(format!("checkpoint-{done}"));
    let state: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(ck.join("trainer_state.json")).unwrap())
            .unwrap();
    assert_eq!(state["step"].as_u64(), Some(done as u64));
    assert!(
        !out.join("model.safetensors").exists(),
        "no final model after an interrupt"
    );
}

#[test]
fn bad_inputs_are_one_line_errors_and_overwrite_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let data = prepared(d);
    // an existing output folder whose contents must survive every failed run
    let out = d.join("out");
    std::fs::create_dir(&out).unwrap();
    std::fs::write(out.join("metrics.jsonl"), "{\"step\":0,\"loss\":1.0}\n").unwrap();
    let unchanged = || {
        let names: Vec<_> = std::fs::read_dir(&out)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 1, "{names:?}");
        assert_eq!(
            std::fs::read_to_string(out.join("metrics.jsonl")).unwrap(),
            "{\"step\":0,\"loss\":1.0}\n"
        );
    };
    let run = |data: &Path, extra: &[&str], needle: &str| {
        fails(
            &train_args(s(data), s(&out), &[&["--steps", "2"], extra].concat()),
            needle,
        );
        unchanged();
    };

    let magic = d.join("magic.bin");
    std::fs::write(&magic, vec![7u8; 2000]).unwrap();
    let e = fails(&train_args(s(&magic), s(&out), &["--steps", "2"]), "magic");
    assert!(e.contains("magic.bin"), "{e}");
    unchanged();

    let big = d.join("big.bin");
    let mut ids = vec![11u32; 300];
    ids[123] = 60000;
    write_shard(&big, &ids).unwrap();
    run(&big, &[], "60000");

    let short = d.join("short.bin");
    write_shard(&short, &[11u32; 128]).unwrap();
    run(&short, &[], "fewer than one batch");

    let mut a = train_args(s(&data), s(&out), &["--steps", "2"]);
    let i = a.iter().position(|&x| x == "--seq-len").unwrap();
    a[i + 1] = "64";
    fails(&a, "n_positions 32");
    unchanged();

    let orphan = d.join("missing/run");
    fails(
        &train_args(s(&data), s(&orphan), &["--steps", "2"]),
        "does not exist",
    );
    assert!(!d.join("missing").exists());

    run(&data, &["--resume", s(&data)], "no training state");
    run(
        &data,
        &["--resume", s(&d.join("nowhere"))],
        "no such folder",
    );
}

#[test]
fn non_finite_loss_stops_the_run_naming_the_step() {
    let dir = tempfile::tempdir().unwrap();
    let data = prepared(dir.path());
    let out = dir.path().join("run");
    let args = train_args(
        s(&data),
        s(&out),
        &[
            "--steps",
            "5",
            "--lr",
            "1e30",
            "--lr-schedule",
            "constant",
            "--grad-clip",
            "0",
            "--save-every",
            "1",
            "--eval-every",
            "0",
        ],
    );
    let o = gpt2(&args);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    let last = err.trim().lines().last().unwrap();
    assert!(last.starts_with("error: non-finite"), "{err}");
    assert!(last.contains("at step 1"), "{last}");
    assert!(last.contains("checkpoint-1"), "{last}");
    assert!(out.join("checkpoint-1").is_dir());
    assert!(!out.join("model.safetensors").exists());
}

#[test]
fn loss_decreases_on_a_repetitive_corpus() {
    let dir = tempfile::tempdir().unwrap();
    let data = prepared(dir.path());
    let out = dir.path().join("run");
    ok(&train_args(
        s(&data),
        s(&out),
        &[
            "--steps",
            "30",
            "--lr",
            "3e-3",
            "--lr-schedule",
            "constant",
            "--eval-every",
            "0",
            "--save-every",
            "0",
        ],
    ));
    let l = losses(&out);
    let first = l[0].1;
    let last5 = l[25..].iter().map(|r| r.1).sum::<f64>() / 5.0;
    assert!(last5 < first - 2.0, "loss {first} -> {last5}");
}

/// kill -9 at 20 moments of a run that checkpoints every step: after each kill, every
/// checkpoint folder present is complete and loads (checksums included), and resuming from the
/// newest one ends with weights and optimizer state bitwise equal to an uninterrupted run's.
#[test]
fn kill_9_at_any_moment_leaves_a_loadable_checkpoint_and_resume_is_bitwise() {
    let dir = tempfile::tempdir().unwrap();
    let data = prepared(dir.path());
    let flags = [
        "--steps",
        "10",
        "--save-every",
        "1",
        "--keep-checkpoints",
        "2",
        "--eval-every",
        "0",
        "--dropout",
        "0.1",
    ];
    let full = dir.path().join("full");
    let t0 = std::time::Instant::now();
    ok(&train_args(s(&data), s(&full), &flags));
    let run_ms = t0.elapsed().as_millis() as u64;
    let want: Vec<Vec<u8>> = ["model.safetensors", "optimizer.safetensors"]
        .iter()
        .map(|f| std::fs::read(full.join(f)).unwrap())
        .collect();
    let mut rng = gpt2::Rng::seed(99);
    let mut resumed_from = Vec::new();
    for round in 0..20 {
        let out = dir.path().join(format!("run-{round}"));
        // the first kill lands anywhere in the run (the process start included)
        let delay = rng.below(run_ms.max(20) + 1);
        let mut child = Command::new(env!("CARGO_BIN_EXE_gpt2"))
            .args(train_args(s(&data), s(&out), &flags))
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(delay));
        let _ = child.kill(); // SIGKILL
        child.wait().unwrap();
        let found = gpt2::trainer::list_checkpoints(&out);
        for (_, ck) in &found {
            gpt2::trainer::load_checkpoint(ck)
                .unwrap_or_else(|e| panic!("round {round}: {} does not load: {e}", ck.display()));
        }
        // resume from the newest checkpoint, or start again into the same folder without one
        let mut again = train_args(s(&data), s(&out), &flags);
        let newest = found.last().map(|(_, ck)| ck.clone());
        if let Some(ck) = &newest {
            again.extend(["--resume", s(ck)]);
        }
        resumed_from.push(found.last().map_or(0, |(n, _)| *n));
        ok(&again);
        for (f, w) in ["model.safetensors", "optimizer.safetensors"]
            .iter()
            .zip(&want)
        {
            assert!(
                &std::fs::read(out.join(f)).unwrap() == w,
                "round {round} (resumed from {:?}): {f} differs from the uninterrupted run",
                newest
            );
        }
        let _ = std::fs::remove_dir_all(&out);
    }
    eprintln!("resumed from steps {resumed_from:?} (0: no checkpoint yet)");
}

/// A tmpfs of `size` mounted on a fresh folder, unmounted on drop (the tests run as root).
struct SmallDisk {
    _parent: tempfile::TempDir,
    path: PathBuf,
}

impl SmallDisk {
    fn mount(size: &str) -> SmallDisk {
        let parent = tempfile::tempdir().unwrap();
        let path = parent.path().join("disk");
        std::fs::create_dir(&path).unwrap();
        let st = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size}"),
                "tmpfs",
                s(&path),
            ])
            .status()
            .expect("run mount");
        assert!(
            st.success(),
            "mounting a {size} tmpfs failed: this test needs root"
        );
        SmallDisk {
            _parent: parent,
            path,
        }
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.path).status();
    }
}

/// Names in `dir` (not recursive), sorted.
fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// A disk that fills up mid-write: `gpt2 train` (mid-checkpoint), `gpt2 prepare` and
/// `gpt2 convert` each stop with an error naming the path and "No space left on device", the
/// previous checkpoint stays intact, and nothing partial is left under a final name.
#[test]
fn a_full_disk_is_a_clear_error_and_leaves_no_partial_file() {
    let dir = tempfile::tempdir().unwrap();
    let data = prepared(dir.path());

    // one checkpoint of the tiny model is 19 MB: the second does not fit in 30 MB
    let disk = SmallDisk::mount("30m");
    let out = disk.path.join("run");
    let args = train_args(
        s(&data),
        s(&out),
        &["--steps", "5", "--save-every", "1", "--eval-every", "0"],
    );
    let o = gpt2(&args);
    assert!(!o.status.success());
    let stderr = String::from_utf8_lossy(&o.stderr);
    let err = stderr.trim().lines().last().unwrap_or("").to_string();
    assert!(
        err.starts_with("error: ") && err.contains("No space left on device"),
        "{stderr}"
    );
    assert!(
        err.contains("cannot save checkpoint") && err.contains("checkpoint-2"),
        "{err}"
    );
    assert!(err.contains("checkpoint-1 is intact"), "{err}");
    gpt2::trainer::load_checkpoint(&out.join("checkpoint-1"))
        .expect("the previous checkpoint loads");
    assert_eq!(
        names(&out),
        ["checkpoint-1", "loss.svg", "metrics.jsonl"],
        "left in {}",
        out.display()
    );
    drop(disk);

    // prepare: about 40k tokens (80 kB of u16) into 32 kB
    let disk = SmallDisk::mount("32k");
    let big = dir.path().join("big.txt");
    std::fs::write(
        &big,
        std::fs::read_to_string(corpus(dir.path()))
            .unwrap()
            .repeat(20),
    )
    .unwrap();
    let shards = disk.path.join("data");
    let err = fails(
        &["prepare", "--input", s(&big), "--out", s(&shards)],
        "No space left on device",
    );
    assert!(err.contains(s(&shards)), "{err}");
    assert!(
        names(&shards)
            .iter()
            .all(|n| n != "train.bin" && n != "val.bin" && !n.contains(".tmp")),
        "{:?}",
        names(&shards)
    );
    drop(disk);

    // convert: the 440 kB fixture model into 128 kB
    let disk = SmallDisk::mount("128k");
    let model = Path::new(env!("CARGO_MANIFEST_DIR")).join("../gpt2/tests/fixtures/tiny");
    let conv = disk.path.join("conv");
    let err = fails(
        &[
            "convert",
            "--model",
            s(&model),
            "--out",
            s(&conv),
            "--dtype",
            "f32",
        ],
        "No space left on device",
    );
    assert!(err.contains(s(&conv)), "{err}");
    let left = if conv.exists() { names(&conv) } else { vec![] };
    assert!(
        left.iter()
            .all(|n| n != "model.safetensors" && !n.contains(".tmp")),
        "{left:?}"
    );
}
