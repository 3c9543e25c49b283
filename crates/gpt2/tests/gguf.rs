//! GGUF container and GPT-2 metadata tests: writer → reader round trips, one crafted bad file per
//! bounds check (each must be an error naming the field, never a panic), every truncation of a
//! valid file, random corruptions, and the GPT-2 config / tokenizer mapping.
//!
//! Crafted files are built byte by byte with [`Raw`], following the layout in `gguf/mod.rs`.

use std::io::Write;

use gpt2::gguf::gpt2::{
    check_tokenizer, config_from_gguf, file_type, gpt2_merges, gpt2_metadata, keys,
    token_to_unicode, token_type, TOKEN_EMBD,
};
use gpt2::gguf::{
    slice_data, Array, GgmlType, GgufError, GgufFile, GgufWriter, TensorInfo, Value, ValueType,
    MAX_ARRAY_DEPTH,
};
use gpt2::tokenizer::Tokenizer;
use gpt2::Gpt2Config;

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/// A GGUF file built by hand, little-endian, for crafting bad files.
#[derive(Clone, Default)]
struct Raw(Vec<u8>);

impl Raw {
    /// Magic, version and the two counts.
    fn header(version: u32, n_tensors: u64, n_kv: u64) -> Self {
        Raw(b"GGUF".to_vec()).u32(version).u64(n_tensors).u64(n_kv)
    }
    fn u32(mut self, x: u32) -> Self {
        self.0.extend_from_slice(&x.to_le_bytes());
        self
    }
    fn u64(mut self, x: u64) -> Self {
        self.0.extend_from_slice(&x.to_le_bytes());
        self
    }
    fn bytes(mut self, b: &[u8]) -> Self {
        self.0.extend_from_slice(b);
        self
    }
    /// A GGUF string: u64 length + bytes.
    fn str(self, s: &[u8]) -> Self {
        self.u64(s.len() as u64).bytes(s)
    }
    /// A u32 metadata entry.
    fn kv_u32(self, key: &str, v: u32) -> Self {
        self.str(key.as_bytes()).u32(ValueType::U32 as u32).u32(v)
    }
    /// A tensor info.
    fn tensor(self, name: &str, dims: &[u64], ty: u32, offset: u64) -> Self {
        let mut r = self.str(name.as_bytes()).u32(dims.len() as u32);
        for &d in dims {
            r = r.u64(d);
        }
        r.u32(ty).u64(offset)
    }
    /// Zeros up to a multiple of `align`.
    fn pad(mut self, align: usize) -> Self {
        self.0.resize(self.0.len().next_multiple_of(align), 0);
        self
    }
    /// `n` bytes of data.
    fn data(mut self, n: usize) -> Self {
        self.0.extend((0..n).map(|i| i as u8));
        self
    }
}

/// The error message for `bytes`, which must not parse.
fn err_of(bytes: Vec<u8>) -> String {
    match GgufFile::from_bytes(bytes, "bad.gguf") {
        Ok(f) => panic!("expected an error, parsed {f:?}"),
        Err(e) => e.to_string(),
    }
}

/// Asserts the message names the file and contains every one of `parts`.
fn assert_names(msg: &str, parts: &[&str]) {
    assert!(msg.starts_with("bad.gguf: "), "{msg}");
    for p in parts {
        assert!(msg.contains(p), "`{p}` not in: {msg}");
    }
}

fn f32_bytes(xs: &[f32]) -> Vec<u8> {
    xs.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// Deterministic pseudo-random bytes (xorshift64).
fn noise(n: usize, mut seed: u64) -> Vec<u8> {
    (0..n)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed as u8
        })
        .collect()
}

/// One metadata entry of every value type, and arrays of every element type (nested too).
fn every_value_type() -> Vec<(String, Value)> {
    let v: Vec<(&str, Value)> = vec![
        ("t.u8", 200u8.into()),
        ("t.i8", (-100i8).into()),
        ("t.u16", 60000u16.into()),
        ("t.i16", (-30000i16).into()),
        ("t.u32", 4_000_000_000u32.into()),
        ("t.i32", (-2_000_000_000i32).into()),
        ("t.f32", 1e-5f32.into()),
        ("t.bool", true.into()),
        ("t.string", "Ġthe ünïcode ✓".into()),
        ("t.u64", u64::MAX.into()),
        ("t.i64", i64::MIN.into()),
        ("t.f64", std::f64::consts::PI.into()),
        ("a.u8", vec![0u8, 255].into()),
        ("a.i8", vec![-1i8, 1].into()),
        ("a.u16", vec![1u16, 65535].into()),
        ("a.i16", vec![-2i16, 2].into()),
        ("a.u32", vec![7u32; 3].into()),
        ("a.i32", vec![1i32, 3, 5].into()),
        ("a.f32", vec![0.5f32, -0.25].into()),
        ("a.bool", vec![true, false, true].into()),
        (
            "a.string",
            vec!["Ġ t".to_string(), String::new(), "h e".into()].into(),
        ),
        ("a.u64", vec![u64::MAX].into()),
        ("a.i64", vec![i64::MIN, 0].into()),
        ("a.f64", vec![1.5f64].into()),
        ("a.empty", Vec::<u32>::new().into()),
        (
            "a.nested",
            Array::Array(vec![
                Array::I32(vec![1, 2]),
                Array::String(vec!["x".into()]),
                Array::Array(vec![Array::F64(vec![2.0])]),
            ])
            .into(),
        ),
    ];
    v.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
}

/// Tensors of several types: (name, dims, type), with data of the right size.
fn some_tensors() -> Vec<(&'static str, Vec<u64>, GgmlType, Vec<u8>)> {
    let mut out = Vec::new();
    for (name, dims, ty) in [
        ("a.f32", vec![3, 2], GgmlType::F32),
        ("b.f16", vec![5], GgmlType::F16),
        ("c.q8_0", vec![64, 2], GgmlType::Q8_0),
        ("d.q4_k", vec![256], GgmlType::Q4_K),
        ("e.bf16", vec![7, 3, 1, 2], GgmlType::BF16),
        ("f.q4_0", vec![32], GgmlType::Q4_0),
    ] {
        let size = ty.tensor_bytes(&dims).unwrap() as usize;
        out.push((name, dims, ty, noise(size, size as u64 + 1)));
    }
    out
}

/// A writer holding every value type and [`some_tensors`].
fn full_writer(path: &str) -> (GgufWriter, Vec<Vec<u8>>) {
    let mut w = GgufWriter::new(path);
    w.extend_metadata(every_value_type()).unwrap();
    let mut data = Vec::new();
    for (name, dims, ty, bytes) in some_tensors() {
        let size = w.add_tensor(name, &dims, ty).unwrap();
        assert_eq!(size as usize, bytes.len());
        data.push(bytes);
    }
    (w, data)
}

fn write_to_vec(w: &GgufWriter, data: &[Vec<u8>]) -> Vec<u8> {
    let slices: Vec<&[u8]> = data.iter().map(|d| &d[..]).collect();
    let bytes = w.to_vec(&mut slice_data(&slices)).unwrap();
    bytes
}

/// A small valid file whose last tensor is a multiple of 32 bytes, so that every proper prefix
/// cuts into the header, metadata, tensor infos or tensor data (no optional trailing padding).
fn small_valid_file() -> Vec<u8> {
    let mut w = GgufWriter::new("small.gguf");
    w.add_metadata("general.architecture", "gpt2").unwrap();
    w.add_metadata("x.list", vec!["ab".to_string(), "c".into()])
        .unwrap();
    w.add_metadata("x.n", 7u32).unwrap();
    w.add_tensor("t.a", &[3], GgmlType::F32).unwrap();
    w.add_tensor("t.b", &[32], GgmlType::Q8_0).unwrap();
    w.add_tensor("t.c", &[8], GgmlType::F32).unwrap();
    let data = [noise(12, 1), noise(34, 2), noise(32, 3)];
    write_to_vec(&w, &data)
}

// ---------------------------------------------------------------------------------------------
// Types
// ---------------------------------------------------------------------------------------------

#[test]
fn ggml_type_table_matches_ggml() {
    // ids, names and sizes from ggml.h / gguf-py constants.py GGML_QUANT_SIZES
    for (id, name, block, bytes) in [
        (0, "f32", 1, 4),
        (1, "f16", 1, 2),
        (2, "q4_0", 32, 18),
        (8, "q8_0", 32, 34),
        (12, "q4_K", 256, 144),
        (14, "q6_K", 256, 210),
        (23, "iq4_xs", 256, 136),
        (30, "bf16", 1, 2),
        (34, "tq1_0", 256, 54),
        (39, "mxfp4", 32, 17),
    ] {
        let t = GgmlType::from_u32(id).unwrap();
        assert_eq!(
            (t as u32, t.name(), t.block_size(), t.type_size()),
            (id, name, block, bytes)
        );
    }
    for removed in [4, 5, 31, 32, 33, 36, 37, 38, 1000] {
        assert_eq!(GgmlType::from_u32(removed), None, "id {removed}");
    }
    for &t in GgmlType::ALL {
        assert_eq!(GgmlType::from_u32(t as u32), Some(t));
    }
    assert_eq!(GgmlType::Q8_0.row_bytes(768), Some(24 * 34));
    assert_eq!(GgmlType::Q8_0.row_bytes(33), None);
    assert_eq!(GgmlType::F32.row_bytes(3), Some(12));
    assert_eq!(GgmlType::Q4_K.row_bytes(512), Some(288));
    assert_eq!(
        GgmlType::F32.tensor_bytes(&[768, 50257]),
        Some(768 * 50257 * 4)
    );
    assert_eq!(GgmlType::F32.tensor_bytes(&[u64::MAX, 2]), None);
}

#[test]
fn value_accessors_are_exact_and_lossless() {
    assert_eq!(Value::U32(7).as_u32(), Some(7));
    assert_eq!(Value::U32(7).as_i32(), None);
    assert_eq!(Value::I32(7).to_u64(), Some(7));
    assert_eq!(Value::I32(-7).to_u64(), None);
    assert_eq!(Value::U64(u64::MAX).to_i64(), None);
    assert_eq!(Value::I8(-3).to_i64(), Some(-3));
    assert_eq!(Value::F32(1.0).to_u64(), None);
    assert_eq!(Value::from("gpt2").as_str(), Some("gpt2"));
    let toks = Value::from(vec!["a".to_string(), "b".into()]);
    assert_eq!(toks.as_string_array().map(|t| t.len()), Some(2));
    assert_eq!(toks.describe(), "array of 2 string");
    assert_eq!(Value::from("llama").describe(), "string \"llama\"");
}

// ---------------------------------------------------------------------------------------------
// Round trips
// ---------------------------------------------------------------------------------------------

#[test]
fn round_trip_every_value_type_and_several_tensor_types() {
    let (w, data) = full_writer("rt.gguf");
    let bytes = write_to_vec(&w, &data);
    let f = GgufFile::from_bytes(bytes.clone(), "rt.gguf").unwrap();

    assert_eq!(f.version(), 3);
    assert_eq!(f.alignment(), 32);
    assert_eq!(
        f.metadata(),
        &every_value_type()[..],
        "metadata in file order"
    );
    assert!(
        f.get("general.alignment").is_none(),
        "default alignment is not written"
    );
    assert_eq!(f.get("t.i64"), Some(&Value::I64(i64::MIN)));

    assert_eq!(f.data_offset() % 32, 0);
    let mut end = 0;
    for ((name, dims, ty, want), t) in some_tensors().iter().zip(f.tensors()) {
        assert_eq!((&t.name[..], &t.dims, t.ty), (*name, dims, *ty));
        assert_eq!(t.size as usize, want.len());
        assert_eq!(t.offset % 32, 0, "{name} offset aligned");
        assert_eq!(t.offset, end, "{name} packed after the previous tensor");
        end = (t.offset + t.size).next_multiple_of(32);
        assert_eq!(f.tensor_data(t).unwrap(), &want[..], "{name} data");
        let shared = f.shared_bytes();
        assert_eq!(&shared[f.tensor_range(t).unwrap()], &want[..]);
    }
    // every tensor padded to the alignment, including the last (gguf-py, ggml)
    assert_eq!(bytes.len() as u64, f.data_offset() + end);
    assert_eq!(f.tensor_req("c.q8_0").unwrap().shape(), vec![2, 64]);
    assert!(f
        .tensor_req("nope")
        .unwrap_err()
        .to_string()
        .contains("`nope`"));
}

#[test]
fn custom_alignment_is_written_and_honoured() {
    let mut w = GgufWriter::new("a64.gguf");
    w.add_metadata("general.alignment", 64u32).unwrap();
    w.add_tensor("x", &[3], GgmlType::F32).unwrap();
    w.add_tensor("y", &[5], GgmlType::F32).unwrap();
    let data = [f32_bytes(&[1.0, 2.0, 3.0]), f32_bytes(&[4.0; 5])];
    let f = GgufFile::from_bytes(write_to_vec(&w, &data), "a64.gguf").unwrap();
    assert_eq!(f.alignment(), 64);
    assert_eq!(f.data_offset() % 64, 0);
    assert_eq!(f.tensor("y").unwrap().offset, 64);
    assert_eq!(f.tensor_data(f.tensor("y").unwrap()).unwrap(), &data[1][..]);
}

#[test]
fn version_2_files_are_read() {
    let mut bytes = small_valid_file();
    bytes[4..8].copy_from_slice(&2u32.to_le_bytes());
    let f = GgufFile::from_bytes(bytes, "v2.gguf").unwrap();
    assert_eq!(f.version(), 2);
    assert_eq!(f.tensors().len(), 3);
}

#[test]
fn atomic_write_and_open_from_disk() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("model.gguf");
    let (w, data) = full_writer(path.to_str().unwrap());
    let slices: Vec<&[u8]> = data.iter().map(|d| &d[..]).collect();
    w.write(&mut slice_data(&slices)).unwrap();
    assert!(!dir.path().join("model.gguf.tmp").exists());
    let f = GgufFile::open(&path).unwrap();
    assert_eq!(f.path(), path);
    assert_eq!(f.tensors().len(), data.len());
    assert_eq!(std::fs::read(&path).unwrap(), write_to_vec(&w, &data));

    // A failing write leaves the old file as it was and no temporary file behind.
    let before = std::fs::read(&path).unwrap();
    let mut short = |_: usize, _: &TensorInfo, out: &mut dyn Write| out.write_all(&[0; 3]);
    let err = w.write(&mut short).unwrap_err().to_string();
    assert!(err.contains("`a.f32`") && err.contains("3 bytes"), "{err}");
    assert_eq!(std::fs::read(&path).unwrap(), before);
    assert!(!dir.path().join("model.gguf.tmp").exists());
}

#[test]
fn open_reports_missing_and_empty_files() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.gguf");
    let err = GgufFile::open(&missing).unwrap_err();
    assert!(matches!(err, GgufError::Io { .. }), "{err}");
    assert!(err.to_string().contains("missing.gguf"), "{err}");
    let empty = dir.path().join("empty.gguf");
    std::fs::write(&empty, b"").unwrap();
    let err = GgufFile::open(&empty).unwrap_err().to_string();
    assert!(err.contains("empty.gguf") && err.contains("magic"), "{err}");
}

#[test]
fn writer_validates_what_it_writes() {
    let mut w = GgufWriter::new("w.gguf");
    let e = w
        .add_tensor("q", &[33, 2], GgmlType::Q8_0)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("w.gguf") && e.contains("`q`") && e.contains("block size 32"),
        "{e}"
    );
    let e = w
        .add_tensor("z", &[4, 0], GgmlType::F32)
        .unwrap_err()
        .to_string();
    assert!(e.contains("`z`"), "{e}");
    let e = w
        .add_tensor("d", &[1, 1, 1, 1, 1], GgmlType::F32)
        .unwrap_err()
        .to_string();
    assert!(e.contains("`d`") && e.contains("5 dims"), "{e}");
    let e = w
        .add_tensor("n".repeat(64), &[1], GgmlType::F32)
        .unwrap_err()
        .to_string();
    assert!(e.contains("64 bytes"), "{e}");
    w.add_tensor("ok", &[4], GgmlType::F32).unwrap();
    let e = w
        .add_tensor("ok", &[4], GgmlType::F32)
        .unwrap_err()
        .to_string();
    assert!(e.contains("duplicate"), "{e}");

    w.add_metadata("k", 1u32).unwrap();
    let e = w.add_metadata("k", 2u32).unwrap_err().to_string();
    assert!(e.contains("`k`") && e.contains("duplicate"), "{e}");
    for bad in [Value::U32(0), Value::U32(3), Value::U64(32)] {
        let e = w
            .add_metadata("general.alignment", bad)
            .unwrap_err()
            .to_string();
        assert!(e.contains("general.alignment"), "{e}");
    }
    let mut deep = Array::U8(vec![1]);
    for _ in 0..MAX_ARRAY_DEPTH {
        deep = Array::Array(vec![deep]);
    }
    let e = w.add_metadata("deep", deep).unwrap_err().to_string();
    assert!(e.contains("`deep`") && e.contains("nested"), "{e}");

    // the callback must write exactly the tensor's size
    let e = w
        .to_vec(&mut slice_data(&[&[0u8; 15]]))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("`ok`") && e.contains("15 bytes") && e.contains("16 bytes"),
        "{e}"
    );
    let e = w.to_vec(&mut slice_data(&[])).unwrap_err().to_string();
    assert!(e.contains("`ok`") && e.contains("no data"), "{e}");
}

// ---------------------------------------------------------------------------------------------
// Crafted bad files: one per check
// ---------------------------------------------------------------------------------------------

#[test]
fn bad_magic() {
    let mut bytes = small_valid_file();
    bytes[..4].copy_from_slice(b"GGML");
    assert_names(&err_of(bytes), &["not a GGUF file", "GGML"]);
    assert_names(&err_of(b"GG".to_vec()), &["magic"]);
}

#[test]
fn version_1_and_99_are_rejected() {
    assert_names(&err_of(Raw::header(1, 0, 0).0), &["version 1", "v1"]);
    assert_names(&err_of(Raw::header(99, 0, 0).0), &["version 99", "2 and 3"]);
    let big_endian = Raw::header(3u32.swap_bytes(), 0, 0).0;
    assert_names(&err_of(big_endian), &["big-endian"]);
}

#[test]
fn huge_n_tensors() {
    assert_names(
        &err_of(Raw::header(3, u64::MAX, 0).0),
        &["n_tensors", "more than 2^64"],
    );
    assert_names(&err_of(Raw::header(3, 1 << 40, 0).0), &["n_tensors"]);
}

#[test]
fn huge_n_kv() {
    assert_names(&err_of(Raw::header(3, 0, u64::MAX).0), &["n_kv"]);
    assert_names(
        &err_of(Raw::header(3, 0, 2).data(20).0),
        &["n_kv", "at least 26 bytes"],
    );
}

#[test]
fn huge_string_length() {
    let key = Raw::header(3, 0, 1).u64(u64::MAX).data(16).0;
    assert_names(
        &err_of(key),
        &["key of metadata entry #0", "18446744073709551615"],
    );
    let value = Raw::header(3, 0, 1)
        .str(b"general.name")
        .u32(ValueType::String as u32)
        .u64(1 << 60)
        .data(16)
        .0;
    assert_names(&err_of(value), &["`general.name`", "truncated"]);
}

#[test]
fn huge_array_count() {
    for (ty, count) in [
        (ValueType::String, u64::MAX / 4),
        (ValueType::U8, 1 << 40),
        (ValueType::U64, u64::MAX),
    ] {
        let bytes = Raw::header(3, 0, 1)
            .str(b"tokenizer.ggml.tokens")
            .u32(ValueType::Array as u32)
            .u32(ty as u32)
            .u64(count)
            .data(64)
            .0;
        assert_names(
            &err_of(bytes),
            &["`tokenizer.ggml.tokens`", "array of", "bytes"],
        );
    }
}

#[test]
fn deeply_nested_arrays() {
    // 10,000 levels of array-of-array, one element each: recursion must stop at the limit
    let mut r = Raw::header(3, 0, 1)
        .str(b"deep")
        .u32(ValueType::Array as u32);
    for _ in 0..10_000 {
        r = r.u32(ValueType::Array as u32).u64(1);
    }
    let bytes = r.u32(ValueType::U8 as u32).u64(0).0;
    assert_names(&err_of(bytes), &["`deep`", "nested more than"]);

    // MAX_ARRAY_DEPTH itself is fine
    let mut r = Raw::header(3, 0, 1).str(b"ok").u32(ValueType::Array as u32);
    for _ in 0..MAX_ARRAY_DEPTH - 1 {
        r = r.u32(ValueType::Array as u32).u64(1);
    }
    let f = GgufFile::from_bytes(r.u32(ValueType::U8 as u32).u64(0).0, "ok.gguf").unwrap();
    assert_eq!(
        f.get("ok").unwrap().as_array().unwrap().depth(),
        MAX_ARRAY_DEPTH
    );
}

/// A file with one tensor info (and no data unless the info is valid).
fn one_tensor(dims: &[u64], ty: u32, offset: u64) -> Vec<u8> {
    Raw::header(3, 1, 0)
        .tensor("blk.3.attn_qkv.weight", dims, ty, offset)
        .pad(32)
        .data(4096)
        .0
}

#[test]
fn n_dims_0_and_5() {
    assert_names(
        &err_of(one_tensor(&[], 0, 0)),
        &["`blk.3.attn_qkv.weight`", "n_dims is 0"],
    );
    assert_names(
        &err_of(one_tensor(&[1, 1, 1, 1, 1], 0, 0)),
        &["`blk.3.attn_qkv.weight`", "n_dims is 5"],
    );
}

#[test]
fn dim_0() {
    assert_names(
        &err_of(one_tensor(&[4, 0], 0, 0)),
        &["`blk.3.attn_qkv.weight`", "dims[1] is 0"],
    );
}

#[test]
fn element_count_overflow() {
    let dims = [1 << 32, 1 << 32];
    assert_names(
        &err_of(one_tensor(&dims, 0, 0)),
        &["`blk.3.attn_qkv.weight`", "overflows"],
    );
    // the count fits in i64 but the byte size does not
    let dims = [1 << 31, 1 << 31];
    assert_names(
        &err_of(one_tensor(&dims, 0, 0)),
        &["byte size", "overflows"],
    );
}

#[test]
fn unknown_type_id() {
    for id in [4, 31, 42, u32::MAX] {
        let msg = err_of(one_tensor(&[32], id, 0));
        assert_names(
            &msg,
            &[
                "`blk.3.attn_qkv.weight`",
                &format!("unknown ggml type id {id}"),
            ],
        );
        assert!(msg.contains("0-3, 6-30, 34-35, 39-41"), "{msg}");
    }
}

#[test]
fn ne0_not_a_multiple_of_the_block_size() {
    let msg = err_of(one_tensor(&[48, 2], GgmlType::Q8_0 as u32, 0));
    assert_names(
        &msg,
        &[
            "`blk.3.attn_qkv.weight`",
            "dims[0] = 48",
            "q8_0",
            "block size 32",
        ],
    );
}

#[test]
fn misaligned_offset() {
    let msg = err_of(one_tensor(&[4], 0, 1234));
    assert_names(
        &msg,
        &[
            "`blk.3.attn_qkv.weight`",
            "offset 1234 is not aligned to 32",
        ],
    );
}

#[test]
fn tensor_past_end_of_file() {
    let msg = err_of(one_tensor(&[2048], 0, 0)); // 8192 bytes, 4096 present
    assert_names(
        &msg,
        &["`blk.3.attn_qkv.weight`", "past the end of the file"],
    );
    let msg = err_of(one_tensor(&[4], 0, u64::MAX - 31)); // offset + size overflows u64
    assert_names(
        &msg,
        &["`blk.3.attn_qkv.weight`", "past the end of the file"],
    );
}

#[test]
fn overlapping_tensors() {
    let bytes = Raw::header(3, 2, 0)
        .tensor("a", &[16], 0, 0) // [0, 64)
        .tensor("b", &[8], 0, 32) // [32, 64)
        .pad(32)
        .data(64)
        .0;
    assert_names(&err_of(bytes), &["`b`", "overlaps tensor `a`"]);
}

#[test]
fn duplicate_tensor_name() {
    let bytes = Raw::header(3, 2, 0)
        .tensor("w", &[8], 0, 0)
        .tensor("w", &[8], 0, 32)
        .pad(32)
        .data(64)
        .0;
    assert_names(&err_of(bytes), &["`w`", "duplicate tensor name"]);
}

#[test]
fn duplicate_key() {
    let bytes = Raw::header(3, 0, 2)
        .kv_u32("gpt2.block_count", 12)
        .kv_u32("gpt2.block_count", 24)
        .0;
    assert_names(&err_of(bytes), &["`gpt2.block_count`", "duplicate key"]);
}

#[test]
fn bad_alignment_values() {
    for a in [0, 3, 48] {
        let bytes = Raw::header(3, 0, 1).kv_u32("general.alignment", a).0;
        assert_names(
            &err_of(bytes),
            &["`general.alignment`", &format!("is {a}"), "power of two"],
        );
    }
    let bytes = Raw::header(3, 0, 1)
        .str(b"general.alignment")
        .u32(ValueType::U64 as u32)
        .u64(32)
        .0;
    assert_names(&err_of(bytes), &["`general.alignment`", "u32"]);
}

#[test]
fn invalid_utf8_in_keys_names_and_strings() {
    let key = Raw::header(3, 0, 1)
        .str(b"gen\xffral.name")
        .u32(ValueType::U8 as u32)
        .bytes(&[1])
        .0;
    assert_names(&err_of(key), &["not valid UTF-8", "gen\\xffral.name"]);
    let name = Raw::header(3, 1, 0)
        .str(b"blk\xc3.0")
        .u32(1)
        .u64(8)
        .u32(0)
        .u64(0)
        .pad(32)
        .data(32)
        .0;
    assert_names(&err_of(name), &["tensor", "not valid UTF-8"]);
    let value = Raw::header(3, 0, 1)
        .str(b"tokenizer.ggml.tokens")
        .u32(ValueType::Array as u32)
        .u32(ValueType::String as u32)
        .u64(2)
        .str(b"ok")
        .str(b"\xe2\x82")
        .0;
    assert_names(
        &err_of(value),
        &["`tokenizer.ggml.tokens`", "element 1", "UTF-8"],
    );
}

#[test]
fn bad_bool_and_value_type() {
    let b = Raw::header(3, 0, 1)
        .str(b"x.flag")
        .u32(ValueType::Bool as u32)
        .bytes(&[2])
        .0;
    assert_names(&err_of(b), &["`x.flag`", "not 0 or 1"]);
    let t = Raw::header(3, 0, 1).str(b"x.what").u32(13).data(8).0;
    assert_names(&err_of(t), &["`x.what`", "unknown value type 13"]);
}

#[test]
fn every_truncation_of_a_valid_file_is_an_error() {
    let bytes = small_valid_file();
    GgufFile::from_bytes(bytes.clone(), "small.gguf").unwrap();
    for len in 0..bytes.len() {
        let r = GgufFile::from_bytes(bytes[..len].to_vec(), "cut.gguf");
        let err = r
            .err()
            .unwrap_or_else(|| panic!("prefix of {len} bytes parsed"));
        assert!(err.to_string().starts_with("cut.gguf: "), "{err}");
    }
}

#[test]
fn random_corruptions_never_panic() {
    let (w, data) = full_writer("fuzz.gguf");
    let good = write_to_vec(&w, &data);
    let header_len = GgufFile::from_bytes(good.clone(), "g")
        .unwrap()
        .data_offset() as usize;
    let mut seed = 0x9E37_79B9_7F4A_7C15u64;
    let mut parsed = 0;
    for round in 0..3000 {
        let mut bytes = good.clone();
        let r = noise(8, seed);
        seed = u64::from_le_bytes(r[..8].try_into().unwrap()) | 1;
        // flip 1-4 bytes in the header/metadata/infos, where they matter
        for k in 0..1 + (r[0] % 4) as usize {
            let at = (u64::from_le_bytes(noise(8, seed + k as u64)[..8].try_into().unwrap())
                % header_len as u64) as usize;
            bytes[at] = r[1 + k];
        }
        if round % 7 == 0 {
            bytes.truncate(header_len / 2 + round % header_len / 2);
        }
        if let Ok(f) = GgufFile::from_bytes(bytes, "fuzz.gguf") {
            parsed += 1;
            for t in f.tensors() {
                assert!(f.tensor_data(t).is_ok());
            }
        }
    }
    assert!(
        parsed < 3000,
        "corruptions must be noticed at least sometimes"
    );
}

// ---------------------------------------------------------------------------------------------
// GPT-2 metadata
// ---------------------------------------------------------------------------------------------

fn tiny_cfg(vocab_size: usize) -> Gpt2Config {
    Gpt2Config {
        n_layer: 2,
        n_head: 2,
        n_embd: 8,
        n_positions: 16,
        vocab_size,
        layer_norm_epsilon: 1e-5,
        ..Gpt2Config::gpt2()
    }
}

/// A GPT-2 GGUF for `cfg`: [`gpt2_metadata`], with `edit` applied, and a zero token_embd.
fn gpt2_file(cfg: &Gpt2Config, edit: impl FnOnce(&mut Vec<(String, Value)>)) -> GgufFile {
    let tok = Tokenizer::gpt2().unwrap();
    let mut meta = gpt2_metadata(cfg, &tok, "tiny", file_type::ALL_F32).unwrap();
    edit(&mut meta);
    let mut w = GgufWriter::new("tiny.gguf");
    w.extend_metadata(meta).unwrap();
    let dims = [cfg.n_embd as u64, cfg.vocab_size as u64];
    let size = w.add_tensor(TOKEN_EMBD, &dims, GgmlType::F32).unwrap();
    let wte = vec![0u8; size as usize];
    let bytes = w.to_vec(&mut slice_data(&[&wte])).unwrap();
    GgufFile::from_bytes(bytes, "tiny.gguf").unwrap()
}

fn set(meta: &mut [(String, Value)], key: &str, v: Value) {
    meta.iter_mut().find(|(k, _)| k == key).unwrap().1 = v;
}

#[test]
fn gpt2_config_round_trips() {
    let tok = Tokenizer::gpt2().unwrap();
    for v in [1000, 50257, 50304] {
        let cfg = tiny_cfg(v);
        let f = gpt2_file(&cfg, |_| {});
        assert_eq!(config_from_gguf(&f).unwrap(), cfg, "V = {v}");
        check_tokenizer(&f, &tok, v).unwrap();
        assert_eq!(f.get_str_req(keys::TOKENIZER_PRE).unwrap(), "gpt-2");
        assert_eq!(f.get_u32_req(keys::FEED_FORWARD_LENGTH).unwrap(), 32);
        assert_eq!(f.get_u32_req(keys::EOS_TOKEN_ID).unwrap(), 50256);
        let tokens = f.get_string_array_req(keys::TOKENS).unwrap();
        let types = f.get_i32_array_opt(keys::TOKEN_TYPE).unwrap().unwrap();
        assert_eq!((tokens.len(), types.len()), (v, v));
        assert_eq!(tokens[262], "Ġthe");
        assert_eq!(tokens[198], "Ċ");
        if v > 50256 {
            assert_eq!(tokens[50256], "<|endoftext|>");
            assert_eq!(types[50256], token_type::CONTROL);
        }
        if v > 50257 {
            assert_eq!(tokens[50257], "[PAD50257]");
            assert_eq!(types[v - 1], token_type::UNUSED);
        }
        assert_eq!(types[0], token_type::NORMAL);
        let merges = f.get_string_array_req(keys::MERGES).unwrap();
        assert_eq!(merges.len(), v.min(50256) - 256);
    }
}

#[test]
fn merges_recovered_from_ranks_match_gpt2_merges_txt() {
    let tok = Tokenizer::gpt2().unwrap();
    let merges = gpt2_merges(&tok, 50257).unwrap();
    // the first lines of openai-community/gpt2's merges.txt, after "#version: 0.2"
    assert_eq!(&merges[..5], ["Ġ t", "Ġ a", "h e", "i n", "r e"]);
    assert_eq!(merges.len(), 50000);
    // its last line
    assert_eq!(merges[49999], "Ġg azed");
    assert_eq!(token_to_unicode(b" the\n"), "ĠtheĊ");
}

#[test]
fn wrong_architecture_is_named() {
    let f = gpt2_file(&tiny_cfg(1000), |m| {
        set(m, keys::ARCHITECTURE, "llama".into())
    });
    let e = config_from_gguf(&f).unwrap_err().to_string();
    assert!(e.starts_with("tiny.gguf: "), "{e}");
    assert!(
        e.contains("is a llama model") && e.contains("general.architecture = gpt2"),
        "{e}"
    );
}

#[test]
fn wrong_hyper_parameters_name_their_key() {
    let f = gpt2_file(&tiny_cfg(1000), |m| {
        set(m, keys::FEED_FORWARD_LENGTH, 30u32.into())
    });
    let e = config_from_gguf(&f).unwrap_err().to_string();
    assert!(
        e.contains("gpt2.feed_forward_length") && e.contains("is 30"),
        "{e}"
    );

    let f = gpt2_file(&tiny_cfg(1000), |m| set(m, keys::HEAD_COUNT, 3u32.into()));
    let e = config_from_gguf(&f).unwrap_err().to_string();
    assert!(
        e.contains("gpt2.embedding_length") && e.contains("n_head"),
        "{e}"
    );

    let f = gpt2_file(&tiny_cfg(1000), |m| set(m, keys::BLOCK_COUNT, "12".into()));
    let e = config_from_gguf(&f).unwrap_err().to_string();
    assert!(e.contains("`gpt2.block_count` is string \"12\""), "{e}");

    let f = gpt2_file(&tiny_cfg(1000), |m| {
        m.retain(|(k, _)| k != keys::CONTEXT_LENGTH)
    });
    let e = config_from_gguf(&f).unwrap_err().to_string();
    assert!(e.contains("`gpt2.context_length` is missing"), "{e}");

    // tokens and token_embd disagree about V
    let f = gpt2_file(&tiny_cfg(1000), |m| {
        set(m, keys::TOKENS, vec!["a".to_string(); 999].into())
    });
    let e = config_from_gguf(&f).unwrap_err().to_string();
    assert!(e.contains("999") && e.contains("1000"), "{e}");
}

#[test]
fn wrong_tokenizer_is_named() {
    let tok = Tokenizer::gpt2().unwrap();
    let f = gpt2_file(&tiny_cfg(1000), |m| {
        set(m, keys::TOKENIZER_MODEL, "llama".into())
    });
    let e = check_tokenizer(&f, &tok, 1000).unwrap_err().to_string();
    assert!(
        e.contains("tokenizer.ggml.model = llama") && e.contains("SentencePiece"),
        "{e}"
    );

    let f = gpt2_file(&tiny_cfg(1000), |m| {
        let (toks, _) = gpt2::gguf::gpt2::gpt2_token_strings(&tok, 1000).unwrap();
        let mut toks = toks;
        toks.swap(300, 301);
        set(m, keys::TOKENS, toks.into());
    });
    let e = check_tokenizer(&f, &tok, 1000).unwrap_err().to_string();
    assert!(
        e.starts_with("tiny.gguf: tokenizer: ") && e.contains("at id 300"),
        "{e}"
    );

    let f = gpt2_file(&tiny_cfg(1000), |m| {
        set(m, keys::TOKENIZER_PRE, "llama-bpe".into())
    });
    let e = check_tokenizer(&f, &tok, 1000).unwrap_err().to_string();
    assert!(e.contains("llama-bpe"), "{e}");

    let f = gpt2_file(&tiny_cfg(1000), |m| {
        set(
            m,
            keys::MERGES,
            vec!["Ġ a".to_string(), "Ġ t".into()].into(),
        )
    });
    let e = check_tokenizer(&f, &tok, 1000).unwrap_err().to_string();
    assert!(e.contains("merge #0"), "{e}");
}

#[test]
fn missing_tokenizer_metadata_is_accepted() {
    let tok = Tokenizer::gpt2().unwrap();
    let f = gpt2_file(&tiny_cfg(1000), |m| {
        m.retain(|(k, _)| !k.starts_with("tokenizer."))
    });
    check_tokenizer(&f, &tok, 1000).unwrap();
    assert_eq!(
        config_from_gguf(&f).unwrap().vocab_size,
        1000,
        "V from token_embd.weight"
    );
}

#[test]
fn token_embd_of_the_wrong_shape_is_named() {
    let tok = Tokenizer::gpt2().unwrap();
    let cfg = tiny_cfg(1000);
    let mut w = GgufWriter::new("shape.gguf");
    w.extend_metadata(gpt2_metadata(&cfg, &tok, "x", file_type::ALL_F32).unwrap())
        .unwrap();
    let size = w.add_tensor(TOKEN_EMBD, &[1000, 8], GgmlType::F32).unwrap(); // transposed
    let wte = vec![0u8; size as usize];
    let f =
        GgufFile::from_bytes(w.to_vec(&mut slice_data(&[&wte])).unwrap(), "shape.gguf").unwrap();
    let e = config_from_gguf(&f).unwrap_err().to_string();
    assert!(
        e.contains("`token_embd.weight`") && e.contains("[1000, 8]"),
        "{e}"
    );
}
