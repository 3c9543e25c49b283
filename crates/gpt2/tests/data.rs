//! Token shards and the data loader: round trip, every bad-shard error, the exact `--no-shuffle`
//! order (with wrap-around), seeded shuffling and resume, and BPE-safe parallel tokenization.

use std::path::{Path, PathBuf};

use gpt2::data::{
    encode_documents, split_for_bpe, write_shard, DataError, DataLoader, Order, Shard,
    HEADER_BYTES, SHARD_MAGIC,
};
use gpt2::tokenizer::{Special, Tokenizer, EOT};

fn tmp() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

/// A shard holding ids 0, 1, …, n−1 (so a token's id is its position).
fn iota_shard(dir: &Path, n: usize) -> PathBuf {
    let path = dir.join("iota.bin");
    write_shard(&path, &(0..n as u32).collect::<Vec<_>>()).unwrap();
    path
}

fn header(words: &[i32]) -> Vec<u8> {
    let mut h = vec![0u8; HEADER_BYTES];
    for (i, w) in words.iter().enumerate() {
        h[4 * i..4 * i + 4].copy_from_slice(&w.to_le_bytes());
    }
    h
}

#[test]
fn shard_round_trips_in_the_llm_c_layout() {
    let dir = tmp();
    let path = dir.path().join("s.bin");
    let ids = vec![0u32, 1, 50256, 65535, 7];
    write_shard(&path, &ids).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    assert_eq!(bytes.len(), 1024 + 2 * ids.len());
    assert_eq!(&bytes[..12], &header(&[20240520, 1, 5])[..12]);
    assert!(bytes[12..1024].iter().all(|&b| b == 0));
    assert_eq!(&bytes[1024..1028], &[0, 0, 1, 0]);
    let shard = Shard::open(&path, 65536).unwrap();
    assert_eq!(shard.len(), 5);
    assert_eq!((0..5).map(|i| shard.token(i)).collect::<Vec<_>>(), ids);
    // no temporary file is left behind
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
}

#[test]
fn reads_the_committed_fixture_shard() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/train/train.bin");
    let shard = Shard::open(&path, 50257).unwrap();
    assert_eq!(shard.len(), 2000);
}

fn open_err(bytes: &[u8], vocab: usize) -> (String, DataError) {
    let dir = tmp();
    let path = dir.path().join("bad.bin");
    std::fs::write(&path, bytes).unwrap();
    let err = Shard::open(&path, vocab).unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("bad.bin"), "error must name the file: {msg}");
    (msg, err)
}

#[test]
fn wrong_magic_is_an_error_naming_the_file() {
    let mut b = header(&[1234, 1, 0]);
    b.extend_from_slice(&[0, 0]);
    let (msg, err) = open_err(&b, 100);
    assert!(
        matches!(err, DataError::BadMagic { got: 1234, .. }),
        "{msg}"
    );
    assert!(msg.contains("20240520"), "{msg}");
    // a text file is not a shard either, even when shorter than a header
    let (_, err) = open_err(b"hello world, not a shard", 100);
    assert!(matches!(err, DataError::BadMagic { .. }));
}

#[test]
fn wrong_version_is_an_error() {
    let (msg, err) = open_err(&header(&[SHARD_MAGIC, 2, 0]), 100);
    assert!(matches!(err, DataError::BadVersion { got: 2, .. }), "{msg}");
}

#[test]
fn truncated_shards_are_errors() {
    let mut b = header(&[SHARD_MAGIC, 1, 10]);
    b.extend_from_slice(&[1, 0, 2, 0, 3]); // 2.5 tokens of 10
    let (msg, err) = open_err(&b, 100);
    assert!(
        matches!(
            err,
            DataError::Truncated {
                expected: 10,
                found: 2,
                ..
            }
        ),
        "{msg}"
    );
    // a header cut short
    let (_, err) = open_err(&header(&[SHARD_MAGIC, 1, 10])[..100], 100);
    assert!(matches!(err, DataError::Truncated { .. }));
    // bytes beyond what the header announces
    let mut b = header(&[SHARD_MAGIC, 1, 1]);
    b.extend_from_slice(&[1, 0, 2, 0]);
    let (_, err) = open_err(&b, 100);
    assert!(matches!(err, DataError::Corrupt { .. }));
}

#[test]
fn token_ids_at_or_above_vocab_size_are_errors() {
    let mut b = header(&[SHARD_MAGIC, 1, 4]);
    for id in [3u16, 99, 100, 5] {
        b.extend_from_slice(&id.to_le_bytes());
    }
    let (msg, err) = open_err(&b, 100);
    assert!(
        matches!(
            err,
            DataError::TokenOutOfRange {
                index: 2,
                id: 100,
                vocab_size: 100,
                ..
            }
        ),
        "{msg}"
    );
    // the same file is fine for a larger vocabulary
    let dir = tmp();
    let path = dir.path().join("ok.bin");
    std::fs::write(&path, &b).unwrap();
    assert!(Shard::open(&path, 101).is_ok());
}

#[test]
fn a_shard_shorter_than_one_batch_is_an_error() {
    let dir = tmp();
    let path = iota_shard(dir.path(), 12);
    // B·T + 1 = 13 > 12
    let err =
        DataLoader::new(Shard::open(&path, 100).unwrap(), 3, 4, Order::Sequential).unwrap_err();
    assert!(
        matches!(
            err,
            DataError::TooShort {
                tokens: 12,
                need: 13,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("iota.bin"));
    // exactly B·T + 1 is enough
    assert!(DataLoader::new(Shard::open(&path, 100).unwrap(), 1, 11, Order::Sequential).is_ok());
}

#[test]
fn unwritable_ids_are_refused_before_writing() {
    let dir = tmp();
    let path = dir.path().join("big.bin");
    let err = write_shard(&path, &[1, 70000]).unwrap_err();
    assert!(matches!(err, DataError::Unwritable { .. }), "{err}");
    assert!(!path.exists());
}

#[test]
fn no_shuffle_order_is_exactly_as_specified_with_wrap() {
    let dir = tmp();
    let n = 20;
    let path = iota_shard(dir.path(), n);
    let (b, t) = (2, 3);
    let mut dl =
        DataLoader::new(Shard::open(&path, 100).unwrap(), b, t, Order::Sequential).unwrap();
    let (mut x, mut y) = (vec![0u32; b * t], vec![0u32; b * t]);
    for k in 0..12usize {
        dl.next_batch(&mut x, &mut y);
        for r in 0..b {
            for i in 0..t {
                let pos = k * b * t + r * t + i;
                assert_eq!(x[r * t + i] as usize, pos % n, "k {k} row {r} col {i}");
                assert_eq!(
                    y[r * t + i] as usize,
                    (pos + 1) % n,
                    "k {k} row {r} col {i}"
                );
            }
        }
    }
    // spot-check the wrap literally: k = 3 reads 18, 19, 0 | 1, 2, 3 → targets 19, 0, 1 | 2, 3, 4
    let mut dl =
        DataLoader::new(Shard::open(&path, 100).unwrap(), b, t, Order::Sequential).unwrap();
    for _ in 0..4 {
        dl.next_batch(&mut x, &mut y);
    }
    assert_eq!(x, [18, 19, 0, 1, 2, 3]);
    assert_eq!(y, [19, 0, 1, 2, 3, 4]);
}

fn batches(dl: &mut DataLoader, k: usize) -> Vec<Vec<u32>> {
    let bt = dl.batch_size() * dl.seq_len();
    let n = dl.shard().len() as u32;
    (0..k)
        .map(|_| {
            let (mut x, mut y) = (vec![0u32; bt], vec![0u32; bt]);
            dl.next_batch(&mut x, &mut y);
            for (a, b) in x.iter().zip(&y) {
                assert_eq!(*b, (a + 1) % n, "targets are inputs shifted by one");
            }
            x
        })
        .collect()
}

#[test]
fn shuffle_is_reproducible_by_seed_and_covers_each_epoch() {
    let dir = tmp();
    let path = iota_shard(dir.path(), 101); // W = 100 / 4 = 25 windows of T + 1 = 5 tokens
    let open = |seed| {
        DataLoader::new(
            Shard::open(&path, 200).unwrap(),
            5,
            4,
            Order::Shuffled { seed },
        )
        .unwrap()
    };
    let a = batches(&mut open(7), 20);
    let b = batches(&mut open(7), 20);
    let c = batches(&mut open(8), 20);
    assert_eq!(a, b);
    assert_ne!(a, c);
    // rows start on window boundaries; every epoch (5 batches of 5 rows) visits each window once
    let starts: Vec<u32> = a.iter().flat_map(|x| x.chunks(4).map(|r| r[0])).collect();
    assert!(starts.iter().all(|s| s % 4 == 0));
    for epoch in starts.chunks(25) {
        let mut e = epoch.to_vec();
        e.sort();
        assert_eq!(e, (0..25).map(|j| 4 * j).collect::<Vec<_>>());
    }
    // each epoch has its own order
    assert_ne!(starts[..25], starts[25..50]);
}

#[test]
fn loader_state_restores_mid_epoch_and_across_epochs() {
    let dir = tmp();
    let path = iota_shard(dir.path(), 61); // 20 windows of 3 + 1; B = 3 does not divide 20
    for order in [Order::Sequential, Order::Shuffled { seed: 3 }] {
        let open = || DataLoader::new(Shard::open(&path, 100).unwrap(), 3, 3, order).unwrap();
        let mut whole = open();
        let all = batches(&mut whole, 30);
        for cut in [0, 1, 6, 7, 13] {
            let mut first = open();
            batches(&mut first, cut);
            let state = first.state();
            let json = serde_json::to_string(&state).unwrap();
            let mut resumed = open();
            resumed
                .restore(&serde_json::from_str(&json).unwrap())
                .unwrap();
            assert_eq!(
                batches(&mut resumed, 30 - cut),
                all[cut..],
                "{order:?} cut {cut}"
            );
        }
    }
}

#[test]
fn split_for_bpe_only_cuts_where_the_pretokenizer_does() {
    let tok = Tokenizer::gpt2().unwrap();
    let hard = "a \nb\n\nc  \n d\r\ne\nf's\n'll\n123\n456\n\u{3000}\nx\u{00A0}\ny\n😀\n!";
    for max in [1, 2, 3, 5, 8] {
        let pieces = split_for_bpe(hard, max);
        assert_eq!(pieces.concat(), hard);
        let chunked: Vec<u32> = pieces
            .iter()
            .flat_map(|p| tok.encode(p, Special::None))
            .collect();
        assert_eq!(
            chunked,
            tok.encode(hard, Special::None),
            "max {max}: {pieces:?}"
        );
    }
}

#[test]
fn chunked_parallel_encoding_equals_whole_file_on_tinyshakespeare() {
    // A copy in the repository's data/ if there is one, else shared/ beside the repository
    // (see shared/README.md).
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let path = [
        root.join("data/tinyshakespeare.txt"),
        root.join("../shared/data/tinyshakespeare.txt"),
    ]
    .into_iter()
    .find(|p| p.is_file())
    .expect("tinyshakespeare.txt in data/ or ../shared/data/");
    let text = std::fs::read_to_string(&path).unwrap();
    let tok = Tokenizer::gpt2().unwrap();
    let whole = tok.encode(&text, Special::None);
    let pieces = split_for_bpe(&text, 4096);
    assert!(pieces.len() > 200, "{} pieces", pieces.len());
    let done = std::sync::atomic::AtomicUsize::new(0);
    let parallel = encode_documents(&tok, &[&text], &|n| {
        done.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
    });
    assert_eq!(done.into_inner(), text.len());
    assert_eq!(parallel.len(), whole.len());
    assert_eq!(parallel, whole);
    let chunked: Vec<u32> = pieces
        .iter()
        .flat_map(|p| tok.encode(p, Special::None))
        .collect();
    assert_eq!(chunked, whole);
}

#[test]
fn documents_are_joined_by_end_of_text() {
    let tok = Tokenizer::gpt2().unwrap();
    let ids = encode_documents(&tok, &["Hello world", "", "<|endoftext|>"], &|_| {});
    let mut want = vec![15496, 995, EOT, EOT];
    want.extend(tok.encode("<|endoftext|>", Special::None));
    assert_eq!(ids, want);
}
