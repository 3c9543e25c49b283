//! The task commands through the real binary: `gpt2 train --task classify|sft`, `gpt2 classify`,
//! `gpt2 eval --task classify` and `gpt2 eval --file` (sliding-window perplexity); their outputs,
//! JSON keys and every bad-input error.
//!
//! Models are `--preset gpt2 --n-layer 1 --n-head 2 --n-embd 32 --n-ctx 32` (1.6M parameters, V
//! 50257), trained a few steps.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

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

/// A command that must fail with a one-line error containing every `needle`.
fn fails(args: &[&str], needles: &[&str]) -> String {
    let out = gpt2(args);
    let err = String::from_utf8_lossy(&out.stderr).trim().to_string();
    assert!(!out.status.success(), "gpt2 {args:?} succeeded");
    let last = err.lines().last().unwrap_or("");
    assert!(last.starts_with("error: "), "{err}");
    for n in needles {
        assert!(last.contains(n), "`{n}` not in: {err}");
    }
    last.to_string()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Reviews whose sentiment is their last word: `n` rows, alternating labels `neg` / `pos`.
fn reviews(n: usize) -> Vec<(String, &'static str)> {
    let good = ["good", "great", "fine", "lovely"];
    let bad = ["bad", "awful", "dull", "boring"];
    let subject = ["the film", "this movie", "the plot", "the acting", "it"];
    (0..n)
        .map(|i| {
            let subj = subject[i % subject.len()];
            if i % 2 == 0 {
                (format!("{subj} was {}", bad[(i / 2) % 4]), "neg")
            } else {
                (format!("{subj} was {}", good[(i / 2) % 4]), "pos")
            }
        })
        .collect()
}

fn write_tsv(path: &Path, rows: &[(String, &str)]) {
    let mut t = String::from("sentence\tlabel\n");
    for (x, y) in rows {
        t += &format!("{x}\t{y}\n");
    }
    std::fs::write(path, t).unwrap();
}

/// Trains the tiny classifier on [`reviews`] (once per test that needs it).
fn trained(dir: &Path) -> PathBuf {
    let (train, dev) = (dir.join("train.tsv"), dir.join("dev.tsv"));
    write_tsv(&train, &reviews(64));
    write_tsv(&dev, &reviews(20));
    let out = dir.join("clf");
    let mut a = vec![
        "--threads",
        "1",
        "train",
        "--task",
        "classify",
        "--data",
        s(&train),
        "--val-data",
        s(&dev),
        "--out",
        s(&out),
    ];
    a.extend_from_slice(TINY);
    a.extend_from_slice(&[
        "--batch-size",
        "16",
        "--steps",
        "40",
        "--lr",
        "1e-2",
        "--warmup",
        "5",
        "--eval-every",
        "20",
        "--save-every",
        "0",
    ]);
    let o = ok(&a);
    let text = stdout(&o);
    assert!(text.contains("val accuracy"), "{text}");
    out
}

#[test]
fn label_names_name_integer_class_ids() {
    let dir = tempfile::tempdir().unwrap();
    let ids = |rows: Vec<(String, &'static str)>| -> Vec<(String, &'static str)> {
        rows.into_iter()
            .map(|(x, y)| (x, if y == "neg" { "0" } else { "1" }))
            .collect()
    };
    let (train, dev) = (dir.path().join("train.tsv"), dir.path().join("dev.tsv"));
    write_tsv(&train, &ids(reviews(64)));
    write_tsv(&dev, &ids(reviews(20)));
    let out = dir.path().join("clf");
    let mut a = vec![
        "--threads",
        "1",
        "train",
        "--task",
        "classify",
        "--data",
        s(&train),
        "--val-data",
        s(&dev),
        "--label-names",
        "negative,positive",
        "--out",
        s(&out),
    ];
    a.extend_from_slice(TINY);
    a.extend_from_slice(&[
        "--batch-size",
        "16",
        "--steps",
        "40",
        "--lr",
        "1e-2",
        "--warmup",
        "5",
        "--eval-every",
        "0",
        "--save-every",
        "0",
    ]);
    let o = ok(&a);
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("2 labels (negative, positive)"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let cfg: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("config.json")).unwrap()).unwrap();
    assert_eq!(cfg["id2label"]["0"], "negative");
    assert_eq!(cfg["label2id"]["positive"], 1);
    let o = ok(&[
        "classify",
        "--model",
        s(&out),
        "--text",
        "it was lovely",
        "--json",
    ]);
    let l: serde_json::Value = serde_json::from_str(stdout(&o).trim()).unwrap();
    assert_eq!(l["label"], "positive", "{l}");
    // each probability is printed as its f32's shortest decimal, not the f64 widening of it
    for p in l["probabilities"].as_object().unwrap().values() {
        let p = p.as_f64().unwrap();
        assert_eq!((p as f32).to_string().parse::<f64>().unwrap(), p, "{l}");
    }
    // eval reads the class ids (0/1) or the names
    let named = dir.path().join("named.tsv");
    write_tsv(
        &named,
        &reviews(20)
            .into_iter()
            .map(|(x, y)| (x, if y == "neg" { "negative" } else { "positive" }))
            .collect::<Vec<_>>(),
    );
    let mut acc = vec![];
    for data in [&dev, &named] {
        let o = ok(&[
            "eval",
            "--task",
            "classify",
            "--model",
            s(&out),
            "--data",
            s(data),
            "--json",
        ]);
        let m: serde_json::Value = serde_json::from_str(stdout(&o).trim()).unwrap();
        assert_eq!(m["labels"], serde_json::json!(["negative", "positive"]));
        assert_eq!(m["examples"], 20);
        acc.push(m["accuracy"].as_f64().unwrap());
    }
    assert!(acc[0] >= 0.9 && acc[0] == acc[1], "{acc:?}");

    // names need integer ids 0..K-1 and one name per class; only --task classify takes them
    let mut bad = a.clone();
    let i = bad.iter().position(|x| *x == "negative,positive").unwrap();
    bad[i] = "negative";
    let other = dir.path().join("other");
    let j = bad.iter().position(|x| *x == s(&out)).unwrap();
    bad[j] = s(&other);
    fails(&bad, &["--label-names gives 1 name(s) for 2 labels"]);
    let strs = dir.path().join("strs.tsv");
    write_tsv(&strs, &reviews(8));
    fails(
        &[
            "train",
            "--task",
            "classify",
            "--data",
            s(&strs),
            "--label-names",
            "a,b",
            "--out",
            s(&other),
            "--preset",
            "gpt2",
            "--n-layer",
            "1",
            "--steps",
            "1",
        ],
        &["--label-names", "(neg, pos)", "used as names already"],
    );
    fails(
        &[
            "train",
            "--data",
            s(&strs),
            "--label-names",
            "a,b",
            "--out",
            s(&other),
            "--preset",
            "gpt2",
            "--steps",
            "1",
        ],
        &["--label-names is for --task classify"],
    );
    assert!(!other.exists());
}

#[test]
fn classify_train_then_classify_and_eval() {
    let dir = tempfile::tempdir().unwrap();
    let model = trained(dir.path());
    let cfg: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(model.join("config.json")).unwrap()).unwrap();
    assert_eq!(cfg["architectures"][0], "GPT2ForSequenceClassification");
    assert_eq!(cfg["num_labels"], 2);
    assert_eq!(cfg["id2label"]["1"], "pos");
    assert_eq!(cfg["label2id"]["neg"], 0);
    assert_eq!(cfg["pad_token_id"], 50256);
    let metrics = std::fs::read_to_string(model.join("metrics.jsonl")).unwrap();
    assert!(metrics.contains("\"val_accuracy\""), "{metrics}");

    // one JSON line per text, probabilities over both labels summing to 1
    let texts = dir.path().join("texts.txt");
    std::fs::write(&texts, "the plot was great\n\nthe acting was awful\r\n").unwrap();
    let o = ok(&[
        "classify",
        "--model",
        s(&model),
        "--file",
        s(&texts),
        "--json",
    ]);
    let lines: Vec<serde_json::Value> = stdout(&o)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    for (l, want) in lines.iter().zip(["pos", "neg"]) {
        let p = l["probabilities"].as_object().unwrap();
        assert_eq!(p.len(), 2);
        let sum: f64 = p.values().map(|v| v.as_f64().unwrap()).sum();
        assert!((sum - 1.0).abs() < 1e-5);
        assert_eq!(l["label"], want, "{l}");
    }
    let o = ok(&["classify", "--model", s(&model), "--text", "it was lovely"]);
    assert!(stdout(&o).starts_with("pos\t"), "{}", stdout(&o));

    // eval: accuracy, macro-F1, per-class precision/recall, confusion matrix
    let dev = dir.path().join("dev.tsv");
    let o = ok(&[
        "eval",
        "--task",
        "classify",
        "--model",
        s(&model),
        "--data",
        s(&dev),
        "--json",
    ]);
    let m: serde_json::Value = serde_json::from_str(stdout(&o).trim()).unwrap();
    assert_eq!(m["examples"], 20);
    assert_eq!(m["labels"], serde_json::json!(["neg", "pos"]));
    let cm = m["confusion_matrix"].as_array().unwrap();
    let total: u64 = cm
        .iter()
        .flat_map(|r| r.as_array().unwrap())
        .map(|c| c.as_u64().unwrap())
        .sum();
    assert_eq!(total, 20);
    assert!(m["accuracy"].as_f64().unwrap() >= 0.9, "{m}");
    for k in ["precision", "recall", "f1", "support"] {
        assert!(m["per_class"]["pos"][k].is_number(), "{m}");
    }
    let o = ok(&[
        "eval",
        "--task",
        "classify",
        "--model",
        s(&model),
        "--data",
        s(&dev),
    ]);
    let text = stdout(&o);
    assert!(
        text.contains("accuracy") && text.contains("macro-F1") && text.contains("confusion"),
        "{text}"
    );

    // labels the model never saw: an error naming the line, or skipped on request
    let odd = dir.path().join("odd.tsv");
    std::fs::write(
        &odd,
        "sentence\tlabel\nit was good\tpos\nit was so-so\tmeh\n",
    )
    .unwrap();
    fails(
        &[
            "eval",
            "--task",
            "classify",
            "--model",
            s(&model),
            "--data",
            s(&odd),
        ],
        &["odd.tsv:3", "`meh`", "--unknown-label skip"],
    );
    let o = ok(&[
        "eval",
        "--task",
        "classify",
        "--model",
        s(&model),
        "--data",
        s(&odd),
        "--json",
        "--unknown-label",
        "skip",
    ]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("1 of 2 examples"));
    let m: serde_json::Value = serde_json::from_str(stdout(&o).trim()).unwrap();
    assert_eq!(m["examples"], 1);

    // the classifier is still a GPT-2: perplexity of a text longer than its context
    let text = dir.path().join("long.txt");
    std::fs::write(&text, "The film was good. The plot was dull. ".repeat(12)).unwrap();
    let o = ok(&[
        "eval",
        "--model",
        s(&model),
        "--file",
        s(&text),
        "--stride",
        "7",
        "--json",
    ]);
    let p: serde_json::Value = serde_json::from_str(stdout(&o).trim()).unwrap();
    let (nll, n) = (
        p["nll"].as_f64().unwrap(),
        p["tokens_scored"].as_u64().unwrap(),
    );
    assert!(n > 32 && (p["perplexity"].as_f64().unwrap() - nll.exp()).abs() < 1e-6 * nll.exp());
    let bytes = std::fs::metadata(&text).unwrap().len() as f64;
    let bpb = nll * n as f64 / std::f64::consts::LN_2 / bytes;
    assert!(
        (p["bits_per_byte"].as_f64().unwrap() - bpb).abs() < 1e-9,
        "{p}"
    );
    // with the default stride (16) every token is still scored once
    let o = ok(&["eval", "--model", s(&model), "--file", s(&text), "--json"]);
    let q: serde_json::Value = serde_json::from_str(stdout(&o).trim()).unwrap();
    assert_eq!(q["tokens_scored"], p["tokens_scored"]);
    fails(
        &[
            "eval",
            "--model",
            s(&model),
            "--file",
            s(&text),
            "--stride",
            "32",
        ],
        &["--stride 32"],
    );
}

#[test]
fn classification_inputs_in_csv_and_jsonl_with_named_columns() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("train.csv");
    std::fs::write(
        &csv,
        "stars,review\n5,\"great, really great\"\n1,\"awful\nreally\"\n3,ok\n5,lovely\n",
    )
    .unwrap();
    let out = dir.path().join("csv");
    let mut a = vec![
        "train",
        "--task",
        "classify",
        "--data",
        s(&csv),
        "--out",
        s(&out),
        "--text-column",
        "review",
        "--label-column",
        "stars",
        "--max-len",
        "3",
        "--steps",
        "2",
        "--batch-size",
        "2",
    ];
    a.extend_from_slice(TINY);
    let o = ok(&a);
    let err = String::from_utf8_lossy(&o.stderr);
    // labels sorted numerically; one note for the truncated texts
    assert!(err.contains("3 labels (1, 3, 5)"), "{err}");
    assert_eq!(err.matches("longer than --max-len 3").count(), 1, "{err}");
    let jsonl = dir.path().join("train.jsonl");
    std::fs::write(
        &jsonl,
        "{\"text\": \"good\", \"label\": \"pos\"}\n{\"text\": \"bad\", \"label\": \"neg\"}\n",
    )
    .unwrap();
    let jdir = dir.path().join("j");
    let mut a = vec![
        "train",
        "--task",
        "classify",
        "--data",
        s(&jsonl),
        "--out",
        s(&jdir),
        "--steps",
        "1",
        "--batch-size",
        "2",
    ];
    a.extend_from_slice(TINY);
    ok(&a);
}

#[test]
fn bad_classification_inputs_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let out = d.join("out");
    let train = |data: &Path, needles: &[&str]| {
        let mut a = vec![
            "train",
            "--task",
            "classify",
            "--data",
            s(data),
            "--out",
            s(&out),
            "--steps",
            "1",
        ];
        a.extend_from_slice(TINY);
        fails(&a, needles)
    };
    let f = |name: &str, text: &str| {
        let p = d.join(name);
        std::fs::write(&p, text).unwrap();
        p
    };
    train(
        &f("nolabel.tsv", "sentence\tstars\nx\t1\n"),
        &["no column `label`", "sentence, stars", "--label-column"],
    );
    train(
        &f("emptylabel.tsv", "sentence\tlabel\nx\t1\ny\t\n"),
        &["emptylabel.tsv:3", "empty label"],
    );
    train(&f("empty.tsv", ""), &["no examples"]);
    train(&f("header.tsv", "sentence\tlabel\n"), &["no examples"]);
    train(
        &f("one.tsv", "sentence\tlabel\nx\t1\ny\t1\n"),
        &["at least 2", "regression"],
    );
    train(
        &f("notobj.jsonl", "{\"text\":\"a\",\"label\":1}\n[1, 2]\n"),
        &["notobj.jsonl:2", "JSON object"],
    );
    train(
        &f(
            "nofield.jsonl",
            "{\"text\":\"a\",\"label\":1}\n{\"text\":\"b\"}\n",
        ),
        &["nofield.jsonl:2", "`label`"],
    );
    // task-data flags a task would silently ignore are refused
    let pairs = f(
        "pairs.jsonl",
        "{\"prompt\": \"a\", \"completion\": \"b\"}\n",
    );
    for (task, data, flag, val, msg) in [
        (
            "lm",
            &pairs,
            "--label-column",
            "stars",
            "--label-column is for --task classify;",
        ),
        (
            "lm",
            &pairs,
            "--max-len",
            "8",
            "--max-len is for --task classify or sft;",
        ),
        (
            "sft",
            &pairs,
            "--truncate",
            "left",
            "it does nothing with --task sft",
        ),
        (
            "sft",
            &pairs,
            "--text-column",
            "x",
            "--text-column is for --task classify;",
        ),
    ] {
        let mut a = vec![
            "train",
            "--task",
            task,
            "--data",
            s(data),
            "--out",
            s(&out),
            "--steps",
            "1",
            flag,
            val,
        ];
        a.extend_from_slice(TINY);
        fails(&a, &[msg]);
    }
    assert!(!out.exists(), "nothing is written for bad input");
}

#[test]
fn sft_trains_on_prompt_completion_pairs() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut lines = String::new();
    for i in 0..24 {
        let q = ["red", "blue", "green"][i % 3];
        lines += &format!(
            "{}\n",
            serde_json::json!({"prompt": format!("Colour: {q}\nAnswer:"), "completion": format!(" {q}\n")})
        );
    }
    let data = d.join("pairs.jsonl");
    std::fs::write(&data, &lines).unwrap();
    let long = d.join("long.jsonl");
    std::fs::write(
        &long,
        format!(
            "{}\n",
            serde_json::json!({"prompt": "word ".repeat(40), "completion": " yes"})
        ),
    )
    .unwrap();
    let out = d.join("sft");
    let mut a = vec![
        "train",
        "--task",
        "sft",
        "--data",
        s(&data),
        "--val-data",
        s(&long),
        "--out",
        s(&out),
        "--steps",
        "12",
        "--batch-size",
        "8",
        "--lr",
        "1e-2",
        "--eval-every",
        "6",
    ];
    a.extend_from_slice(TINY);
    let o = ok(&a);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("prompts were cut from the left"), "{err}");
    let losses: Vec<f64> = std::fs::read_to_string(out.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok()?["loss"].as_f64())
        .collect();
    assert!(losses[losses.len() - 1] < losses[0], "{losses:?}");
    // the model is an ordinary language model: generate reads it
    ok(&[
        "generate",
        "--model",
        s(&out),
        "--prompt",
        "Colour: red\nAnswer:",
        "--temperature",
        "0",
        "--max-new-tokens",
        "3",
        "--stop",
        "\n",
    ]);
    // a language model has no head to classify with
    fails(
        &["classify", "--model", s(&out), "--text", "x"],
        &["no classification head", "--task classify"],
    );
    let bad = d.join("bad.jsonl");
    std::fs::write(
        &bad,
        "{\"prompt\": \"a\", \"completion\": \"b\"}\n\"text\"\n",
    )
    .unwrap();
    let xdir = d.join("x");
    let mut a = vec![
        "train",
        "--task",
        "sft",
        "--data",
        s(&bad),
        "--out",
        s(&xdir),
    ];
    a.extend_from_slice(TINY);
    fails(&a, &["bad.jsonl:2", "JSON object"]);
}

/// A model whose vocabulary is smaller than the tokenizer's (the vocab-500 classifier fixture):
/// every path that feeds token ids to it must stop with an error naming the id and vocab_size,
/// never reach `kernels::encoder` (where an id ≥ vocab_size used to panic).
#[test]
fn token_ids_beyond_a_small_vocabulary_are_errors_in_every_task_path() {
    let model =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../gpt2/tests/fixtures/tasks/tiny-classifier");
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // "hello world" is ids 31373, 995 in GPT-2's tokenizer: both ≥ 500.
    let data = d.join("data.tsv");
    std::fs::write(&data, "sentence\tlabel\nhello world\tpos\nhello\tneg\n").unwrap();
    let pairs = d.join("pairs.jsonl");
    std::fs::write(
        &pairs,
        "{\"prompt\": \"hello\", \"completion\": \" world\"}\n",
    )
    .unwrap();
    let out = d.join("out");
    let want = ["token id 31373 is out of range", "vocab_size is 500"];
    fails(
        &["classify", "--model", s(&model), "--text", "hello world"],
        &want,
    );
    fails(
        &[
            "eval",
            "--task",
            "classify",
            "--model",
            s(&model),
            "--data",
            s(&data),
        ],
        &want,
    );
    for (task, data) in [("classify", &data), ("sft", &pairs)] {
        let err = fails(
            &[
                "train",
                "--task",
                task,
                "--init-from",
                s(&model),
                "--data",
                s(data),
                "--out",
                s(&out),
                "--steps",
                "1",
            ],
            &["vocab_size is 500"],
        );
        assert!(err.contains("line 2") || err.contains("line 1"), "{err}");
    }
    // the LM paths already refused such ids; they stay errors
    fails(
        &[
            "generate",
            "--model",
            s(&model),
            "--prompt",
            "hello world",
            "--max-new-tokens",
            "1",
        ],
        &["vocab_size is 500"],
    );
}
