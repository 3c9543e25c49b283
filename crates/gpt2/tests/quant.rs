//! Block-level parity of our quantizers and converters with ggml, byte for byte.
//!
//! Fixture: `tests/fixtures/quant/blocks.json`, written by `scripts/make_quant_fixtures.py` with
//! the `gguf` package's `quants` module (numpy mirror of ggml) and cross-checked there against
//! ggml's compiled C (`quantize_row_q8_0_ref`, `quantize_row_q4_0_ref`); where the C differs from
//! gguf-py (`ggml_c_ref_bytes`), we follow the C, because llama-quantize's files carry those bytes.

use gpt2::kernels::quant::{
    dequantize_row, f32_to_bf16_bits, f32_to_f16_bits, quantize_row, QType,
};
use serde_json::Value;

fn fixture() -> Value {
    fixture_file("blocks.json")
}

fn fixture_file(name: &str) -> Value {
    let p = format!("{}/tests/fixtures/quant/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

fn hex_bytes(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn bits32(v: &Value) -> Vec<u32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|s| u32::from_str_radix(s.as_str().unwrap(), 16).unwrap())
        .collect()
}

fn bits16(v: &Value) -> Vec<u16> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|s| u16::from_str_radix(s.as_str().unwrap(), 16).unwrap())
        .collect()
}

fn same_f32(a: f32, b: f32) -> bool {
    (a.is_nan() && b.is_nan()) || a.to_bits() == b.to_bits()
}

/// A case's input row.
fn input_f32(case: &Value) -> Vec<f32> {
    bits32(&case["input_f32_bits"])
        .into_iter()
        .map(f32::from_bits)
        .collect()
}

/// Quantizes `x` to `t` and checks the bytes against `want_bytes` (hex), then dequantizes them
/// and checks every value bit for bit against `want_deq` (f32 bit patterns; any NaN equals any
/// NaN).
fn check_round_trip(t: QType, label: &str, x: &[f32], want_bytes: &Value, want_deq: &Value) {
    let mut got = vec![0u8; t.row_bytes(x.len()).unwrap()];
    quantize_row(t, x, &mut got);
    assert_eq!(
        got,
        hex_bytes(want_bytes.as_str().unwrap()),
        "{label}: bytes differ"
    );
    let mut deq = vec![0f32; x.len()];
    dequantize_row(t, &got, &mut deq);
    for (i, (&g, w)) in deq.iter().zip(bits32(want_deq)).enumerate() {
        assert!(
            same_f32(g, f32::from_bits(w)),
            "{label} dequant [{i}]: {g:e} vs {:e}",
            f32::from_bits(w)
        );
    }
}

#[test]
fn q8_0_and_q4_0_blocks_are_byte_identical_to_ggml() {
    let f = fixture();
    let cases = f["quantize"].as_array().unwrap();
    assert!(cases.len() >= 40, "fixture has {} cases", cases.len());
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let x = input_f32(case);
        for (t, key) in [(QType::Q8_0, "q8_0"), (QType::Q4_0, "q4_0")] {
            let want = &case[key];
            check_round_trip(
                t,
                &format!("{name} {key}"),
                &x,
                want.get("ggml_c_ref_bytes").unwrap_or(&want["bytes"]),
                want.get("ggml_c_ref_dequant_f32_bits")
                    .unwrap_or(&want["dequant_f32_bits"]),
            );
        }
        for (key, conv) in [
            ("f16_bits", f32_to_f16_bits as fn(f32) -> u16),
            ("bf16_bits", f32_to_bf16_bits),
        ] {
            for (i, (&v, w)) in x.iter().zip(bits16(&case[key])).enumerate() {
                assert_eq!(conv(v), w, "{name} {key}[{i}] of {v:e}");
            }
        }
    }
}

/// q6_K, the type llama-quantize gives GPT-2's tied token_embd in Q4_0 files: our quantizer
/// against ggml's compiled `quantize_row_q6_K_ref` (built as llama.cpp builds it), byte for byte,
/// and our dequantizer against `dequantize_row_q6_K`. Fixture: `tests/fixtures/quant/q6_k.json`,
/// written by `scripts/make_q6k_fixture.py`.
#[test]
fn q6_k_blocks_are_byte_identical_to_ggml() {
    let f = fixture_file("q6_k.json");
    let cases = f["cases"].as_array().unwrap();
    assert!(cases.len() >= 20, "fixture has {} cases", cases.len());
    let mut nonfinite = 0;
    for case in cases {
        let name = case["name"].as_str().unwrap();
        check_round_trip(
            QType::Q6_K,
            name,
            &input_f32(case),
            &case["bytes"],
            &case["dequant_f32_bits"],
        );
        nonfinite += case["nonfinite"].as_bool().unwrap() as usize;
    }
    assert!(nonfinite >= 1, "the fixture lost its fp16-overflow case");
}

#[test]
fn f16_and_bf16_conversion_edges_match_ggml() {
    let f = fixture();
    for case in f["convert"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let x: Vec<u32> = bits32(&case["input_f32_bits"]);
        for (i, (&v, w)) in x.iter().zip(bits16(&case["bf16_bits"])).enumerate() {
            assert_eq!(f32_to_bf16_bits(f32::from_bits(v)), w, "{name} bf16[{i}]");
        }
        if !case["f16_bits"].is_null() {
            for (i, (&v, w)) in x.iter().zip(bits16(&case["f16_bits"])).enumerate() {
                assert_eq!(f32_to_f16_bits(f32::from_bits(v)), w, "{name} f16[{i}]");
            }
        }
    }
}

#[test]
fn dequantization_of_native_types_matches_gguf_py() {
    let f = fixture();
    for case in f["dequantize"].as_array().unwrap() {
        let t = match case["type"].as_str().unwrap() {
            "Q8_0" => QType::Q8_0,
            "Q4_0" => QType::Q4_0,
            _ => continue,
        };
        let bytes = hex_bytes(case["bytes"].as_str().unwrap());
        let want = bits32(&case["dequant_f32_bits"]);
        let mut got = vec![0f32; want.len()];
        dequantize_row(t, &bytes, &mut got);
        for (i, (&g, w)) in got.iter().zip(want).enumerate() {
            assert!(same_f32(g, f32::from_bits(w)), "{} [{i}]", t.name());
        }
    }
}

#[test]
fn k_quants_and_other_load_time_types_dequantize_like_gguf_py() {
    use gpt2::gguf::GgmlType;
    let f = fixture();
    let mut seen = Vec::new();
    for case in f["dequantize"].as_array().unwrap() {
        let name = case["type"].as_str().unwrap();
        let t = match name {
            "Q4_1" => GgmlType::Q4_1,
            "Q5_0" => GgmlType::Q5_0,
            "Q5_1" => GgmlType::Q5_1,
            "Q4_K" => GgmlType::Q4_K,
            "Q6_K" => GgmlType::Q6_K,
            _ => continue,
        };
        let bytes = hex_bytes(case["bytes"].as_str().unwrap());
        let want = bits32(&case["dequant_f32_bits"]);
        let mut got = vec![0f32; want.len()];
        gpt2::kernels::kquants::dequantize(t, &bytes, &mut got).unwrap();
        for (i, (&g, w)) in got.iter().zip(want).enumerate() {
            assert!(
                same_f32(g, f32::from_bits(w)),
                "{name} [{i}]: {g:e} vs {:e}",
                f32::from_bits(w)
            );
        }
        seen.push(name);
    }
    assert_eq!(seen.len(), 5, "fixture lacks some types: {seen:?}");
}
