//! GPT-2 weights in GGUF files: the tensor names and shapes llama.cpp's `convert_hf_to_gguf.py`
//! writes for GPT-2, read into [`TypedWeights`] (mapped, not copied, where the stored type is one
//! the kernels compute) and written back (`gpt2 quantize`).
//!
//! | GGUF tensor | ne (`ne[0]` fastest) | ours |
//! | --- | --- | --- |
//! | `token_embd.weight` | `[C, V]` | `wte` (V, C) |
//! | `position_embd.weight` | `[C, maxT]` | `wpe` (maxT, C) |
//! | `output.weight` (optional) | `[C, V]` | untied lm_head; absent = tied to `wte` |
//! | `blk.{i}.attn_norm.{weight,bias}` | `[C]` | `h.{i}.ln_1` |
//! | `blk.{i}.attn_qkv.{weight,bias}` | `[C, 3C]`, `[3C]` | `h.{i}.attn.c_attn`, transposed (Conv1D → rows) |
//! | `blk.{i}.attn_output.{weight,bias}` | `[C, C]`, `[C]` | `h.{i}.attn.c_proj`, transposed |
//! | `blk.{i}.ffn_norm.{weight,bias}` | `[C]` | `h.{i}.ln_2` |
//! | `blk.{i}.ffn_up.{weight,bias}` | `[C, 4C]`, `[4C]` | `h.{i}.mlp.c_fc`, transposed |
//! | `blk.{i}.ffn_down.{weight,bias}` | `[4C, C]`, `[C]` | `h.{i}.mlp.c_proj`, transposed |
//! | `output_norm.{weight,bias}` | `[C]` | `ln_f` |
//!
//! Types: f32, f16, bf16, q8_0, q4_0 and q6_K stay as stored. Other ggml types (q4_K of
//! llama.cpp's `Q4_K_M` files, q4_1, q5_0, q5_1) are dequantized at load and re-quantized to
//! q8_0 (or f16 where a row is not a multiple of 32); [`Loaded::notes`] says which, for the
//! caller to print. 1-D tensors of any type become f32 vectors.

use std::path::Path;
use std::sync::Arc;

use super::gpt2::{check_tokenizer, config_from_gguf, file_type, gpt2_metadata};
use super::{GgmlType, GgufError, GgufFile, GgufWriter, Result, TensorInfo};
use crate::kernels::kquants;
use crate::kernels::quant::QType;
use crate::params::Params;
use crate::tokenizer::Tokenizer;
use crate::weights::{QTensor, Store, TypedLayer, TypedWeights};

/// A model read from a GGUF file.
#[derive(Debug)]
pub struct Loaded {
    /// The weights.
    pub weights: TypedWeights,
    /// What was converted at load, for the caller to report: one line per (stored type, reason,
    /// resident type), with the number of matrices and the first and last of their names.
    pub notes: Vec<String>,
}

/// One matrix converted at load: (tensor, stored type, reason, resident type).
type Conversion = (String, &'static str, &'static str, &'static str);

/// (stored type, reason, resident type) and the tensors that had it.
type ConversionGroup<'a> = ((&'a str, &'a str, &'a str), Vec<&'a str>);

/// [`Loaded::notes`] from one [`Conversion`] per converted matrix, grouped in the order the
/// groups first appear.
fn group_notes(conv: &[Conversion]) -> Vec<String> {
    let mut groups: Vec<ConversionGroup> = Vec::new();
    for (name, from, why, to) in conv {
        let key = (*from, *why, *to);
        match groups.iter_mut().find(|(k, _)| *k == key) {
            Some((_, names)) => names.push(name),
            None => groups.push((key, vec![name])),
        }
    }
    groups
        .into_iter()
        .map(|((from, why, to), names)| {
            let which = match names.as_slice() {
                [one] => one.to_string(),
                [first, .., last] => format!("{} matrices, {first} … {last}", names.len()),
                [] => unreachable!("a group has a name"),
            };
            format!("{from} {why}: dequantized at load and stored as {to} ({which})")
        })
        .collect()
}

/// The [`QType`] of a ggml type the kernels compute natively.
pub fn native(t: GgmlType) -> Option<QType> {
    Some(match t {
        GgmlType::F32 => QType::F32,
        GgmlType::F16 => QType::F16,
        GgmlType::BF16 => QType::BF16,
        GgmlType::Q8_0 => QType::Q8_0,
        GgmlType::Q4_0 => QType::Q4_0,
        GgmlType::Q6_K => QType::Q6_K,
        _ => return None,
    })
}

/// The ggml type of a [`QType`].
pub fn ggml_type(t: QType) -> GgmlType {
    match t {
        QType::F32 => GgmlType::F32,
        QType::F16 => GgmlType::F16,
        QType::BF16 => GgmlType::BF16,
        QType::Q8_0 => GgmlType::Q8_0,
        QType::Q4_0 => GgmlType::Q4_0,
        QType::Q6_K => GgmlType::Q6_K,
    }
}

/// `general.file_type` for a file whose block matrices are `t`.
pub fn file_type_of(t: QType) -> u32 {
    match t {
        QType::F32 => file_type::ALL_F32,
        QType::F16 => file_type::MOSTLY_F16,
        QType::BF16 => file_type::MOSTLY_BF16,
        QType::Q8_0 => file_type::MOSTLY_Q8_0,
        QType::Q4_0 => file_type::MOSTLY_Q4_0,
        QType::Q6_K => file_type::MOSTLY_Q6_K,
    }
}

struct Reader<'a> {
    f: &'a GgufFile,
    store: Arc<Store>,
    notes: Vec<Conversion>,
}

impl Reader<'_> {
    fn err(&self, tensor: &str, msg: String) -> GgufError {
        GgufError::Tensor {
            file: self.f.path().display().to_string(),
            tensor: tensor.into(),
            msg,
        }
    }

    fn info(&self, name: &str, want: &[usize]) -> Result<&TensorInfo> {
        let t = self.f.tensor_req(name)?;
        let got: Vec<usize> = t.dims.iter().map(|&d| d as usize).collect();
        if got != want {
            return Err(self.err(
                name,
                format!("has dims (ne) {got:?}, but the hyper-parameters imply {want:?}"),
            ));
        }
        Ok(t)
    }

    /// Decodes any type to f32 (for vectors and for types we do not compute).
    fn to_f32(&self, name: &str, t: &TensorInfo) -> Result<Vec<f32>> {
        let bytes = self.f.tensor_data(t)?;
        let n = t.n_elements() as usize;
        let mut out = vec![0f32; n];
        match native(t.ty) {
            Some(q) => crate::kernels::quant::dequantize_row(q, bytes, &mut out),
            None => kquants::dequantize(t.ty, bytes, &mut out).map_err(|m| self.err(name, m))?,
        }
        Ok(out)
    }

    fn vector(&self, name: &str, n: usize) -> Result<Vec<f32>> {
        let t = self.info(name, &[n])?;
        self.to_f32(name, t)
    }

    /// A matrix, mapped where its type is computed natively. `in_block` marks the matrices of the
    /// blocks: q6_K has only a streaming kernel, fine for `wte` (the lm_head of one position per
    /// step) but slow for a prefill's every position, so a block's q6_K matrix (llama.cpp's
    /// `Q4_K_M` files have some) is stored as q8_0, whose packed kernel serves prompts.
    fn matrix(&mut self, name: &str, rows: usize, cols: usize, in_block: bool) -> Result<QTensor> {
        let t = self.info(name, &[cols, rows])?.clone();
        let why = match native(t.ty) {
            Some(QType::Q6_K) if in_block => "in a transformer block (no prompt kernel for it yet)",
            Some(q) => {
                let range = self.f.tensor_range(&t)?;
                return QTensor::mapped(
                    q,
                    rows,
                    cols,
                    self.store.clone(),
                    range.start,
                    range.len(),
                )
                .ok_or_else(|| self.err(name, "data size does not match its dims".into()));
            }
            None => "is not computed natively",
        };
        let x = self.to_f32(name, &t)?;
        let to = if cols.is_multiple_of(32) {
            QType::Q8_0
        } else {
            QType::F16
        };
        self.notes
            .push((name.to_string(), t.ty.name(), why, to.name()));
        QTensor::quantize(to, &x, rows, cols)
            .ok_or_else(|| self.err(name, "row length does not fit the block size".into()))
    }
}

/// Reads a GPT-2 GGUF file: hyper-parameters, tokenizer check (it must be GPT-2's byte-level BPE
/// when present), every tensor's dims, and the weights, mapped where possible.
///
/// Errors: every [`GgufError`] of the container ([`GgufFile::open`]), a wrong architecture or
/// tokenizer, a missing tensor or one of the wrong dims (naming it and both shapes), a type whose
/// rows do not fit its blocks.
pub fn load(path: &Path) -> Result<Loaded> {
    load_file(&GgufFile::open(path)?)
}

/// [`load`] of a container already opened (e.g. by [`GgufFile::from_bytes`]).
///
/// Errors: as [`load`], less the container's own.
pub fn load_file(f: &GgufFile) -> Result<Loaded> {
    let cfg = config_from_gguf(f)?;
    if let Ok(tok) = Tokenizer::gpt2() {
        check_tokenizer(f, &tok, cfg.vocab_size)?;
    }
    let store = Arc::new(Store::File(f.shared_bytes()));
    let mut r = Reader {
        f,
        store,
        notes: Vec::new(),
    };
    let (c, v, t) = (cfg.n_embd, cfg.vocab_size, cfg.n_positions);
    let wte = r.matrix("token_embd.weight", v, c, false)?;
    let wpe = r.matrix("position_embd.weight", t, c, false)?;
    let lm_head = match f.tensor("output.weight") {
        Some(_) => Some(r.matrix("output.weight", v, c, false)?),
        None => None,
    };
    // grown as the layers are found: n_layer comes from the file, so it may not size anything
    let mut h = Vec::new();
    for i in 0..cfg.n_layer {
        let b = |s: &str| format!("blk.{i}.{s}");
        h.push(TypedLayer {
            ln_1_w: r.vector(&b("attn_norm.weight"), c)?,
            ln_1_b: r.vector(&b("attn_norm.bias"), c)?,
            c_attn: r.matrix(&b("attn_qkv.weight"), 3 * c, c, true)?,
            c_attn_b: r.vector(&b("attn_qkv.bias"), 3 * c)?,
            attn_proj: r.matrix(&b("attn_output.weight"), c, c, true)?,
            attn_proj_b: r.vector(&b("attn_output.bias"), c)?,
            ln_2_w: r.vector(&b("ffn_norm.weight"), c)?,
            ln_2_b: r.vector(&b("ffn_norm.bias"), c)?,
            c_fc: r.matrix(&b("ffn_up.weight"), 4 * c, c, true)?,
            c_fc_b: r.vector(&b("ffn_up.bias"), 4 * c)?,
            mlp_proj: r.matrix(&b("ffn_down.weight"), c, 4 * c, true)?,
            mlp_proj_b: r.vector(&b("ffn_down.bias"), c)?,
        });
    }
    let weights = TypedWeights {
        ln_f_w: r.vector("output_norm.weight", c)?,
        ln_f_b: r.vector("output_norm.bias", c)?,
        wte,
        wpe,
        h,
        lm_head,
        cfg,
    };
    Ok(Loaded {
        weights,
        notes: group_notes(&r.notes),
    })
}

/// Reads a GGUF file into f32 [`Params`] (training layout), e.g. for `--init-from`: every
/// matrix dequantized, Conv1D weights transposed back. A file with an untied `output.weight` that
/// differs from `token_embd` is refused (GPT-2 ties them; training would silently drop it).
pub fn load_params(path: &Path) -> Result<Params> {
    let l = load(path)?;
    if let Some(head) = &l.weights.lm_head {
        if head.view().dequantize() != l.weights.wte.view().dequantize() {
            return Err(GgufError::Tensor {
                file: path.display().to_string(),
                tensor: "output.weight".into(),
                msg: "an untied lm_head different from token_embd: GPT-2 training ties them".into(),
            });
        }
    }
    Ok(l.weights.to_params())
}

/// Writes `w` as a GPT-2 GGUF file llama.cpp loads, atomically: metadata from
/// [`gpt2_metadata`] (hyper-parameters, GPT-2's tokenizer), then every tensor in llama-quantize's
/// order (`output_norm`, `position_embd`, `token_embd`, then each block's tensors). `target` is
/// the type of the block matrices (for `general.file_type`).
pub fn save(w: &TypedWeights, target: QType, name: &str, path: &Path) -> Result<()> {
    let tok = Tokenizer::gpt2().map_err(|e| GgufError::Tokenizer {
        file: path.display().to_string(),
        msg: e.to_string(),
    })?;
    let mut wr = GgufWriter::new(path);
    wr.extend_metadata(gpt2_metadata(&w.cfg, &tok, name, file_type_of(target))?)?;
    let f32_bytes = |v: &[f32]| v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>();
    let mut owned: Vec<Vec<u8>> = Vec::new();
    let mut order: Vec<Entry> = Vec::new();
    let mut vec_t = |name: String, v: &[f32], order: &mut Vec<_>| {
        owned.push(f32_bytes(v));
        order.push((
            name,
            vec![v.len() as u64],
            GgmlType::F32,
            Some(owned.len() - 1),
            None,
        ));
    };
    type Entry<'a> = (
        String,
        Vec<u64>,
        GgmlType,
        Option<usize>,
        Option<&'a QTensor>,
    );
    fn mat<'a>(name: &str, t: &'a QTensor) -> Entry<'a> {
        (
            name.to_string(),
            vec![t.cols as u64, t.rows as u64],
            ggml_type(t.qtype),
            None,
            Some(t),
        )
    }
    vec_t("output_norm.bias".into(), &w.ln_f_b, &mut order);
    vec_t("output_norm.weight".into(), &w.ln_f_w, &mut order);
    order.push(mat("position_embd.weight", &w.wpe));
    order.push(mat("token_embd.weight", &w.wte));
    if let Some(hd) = &w.lm_head {
        order.push(mat("output.weight", hd));
    }
    for (i, l) in w.h.iter().enumerate() {
        vec_t(format!("blk.{i}.attn_norm.bias"), &l.ln_1_b, &mut order);
        vec_t(format!("blk.{i}.attn_norm.weight"), &l.ln_1_w, &mut order);
        order.push(mat(&format!("blk.{i}.attn_output.weight"), &l.attn_proj));
        vec_t(
            format!("blk.{i}.attn_output.bias"),
            &l.attn_proj_b,
            &mut order,
        );
        order.push(mat(&format!("blk.{i}.attn_qkv.weight"), &l.c_attn));
        vec_t(format!("blk.{i}.attn_qkv.bias"), &l.c_attn_b, &mut order);
        order.push(mat(&format!("blk.{i}.ffn_down.weight"), &l.mlp_proj));
        vec_t(format!("blk.{i}.ffn_down.bias"), &l.mlp_proj_b, &mut order);
        vec_t(format!("blk.{i}.ffn_norm.bias"), &l.ln_2_b, &mut order);
        vec_t(format!("blk.{i}.ffn_norm.weight"), &l.ln_2_w, &mut order);
        order.push(mat(&format!("blk.{i}.ffn_up.weight"), &l.c_fc));
        vec_t(format!("blk.{i}.ffn_up.bias"), &l.c_fc_b, &mut order);
    }
    for (name, dims, ty, _, _) in &order {
        wr.add_tensor(name.clone(), dims, *ty)?;
    }
    let slices: Vec<&[u8]> = order
        .iter()
        .map(|(_, _, _, o, t)| match (o, t) {
            (Some(i), _) => owned[*i].as_slice(),
            (None, Some(t)) => t.bytes(),
            (None, None) => &[][..],
        })
        .collect();
    let mut data = super::slice_data(&slices);
    // bound to a name: `slices` must outlive the borrow in the returned expression (edition 2021)
    #[allow(clippy::let_and_return)]
    let res = wr.write(&mut data);
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conversion_notes_are_grouped_with_count_and_range() {
        let conv = [
            (
                "blk.0.a".to_string(),
                "q4_K",
                "is not computed natively",
                "q8_0",
            ),
            ("blk.0.b".to_string(), "q6_K", "in a block", "q8_0"),
            (
                "blk.1.a".to_string(),
                "q4_K",
                "is not computed natively",
                "q8_0",
            ),
            (
                "blk.2.a".to_string(),
                "q4_K",
                "is not computed natively",
                "q8_0",
            ),
        ];
        assert_eq!(
            group_notes(&conv),
            [
                "q4_K is not computed natively: dequantized at load and stored as q8_0 \
                 (3 matrices, blk.0.a … blk.2.a)",
                "q6_K in a block: dequantized at load and stored as q8_0 (blk.0.b)",
            ]
        );
        assert!(group_notes(&[]).is_empty());
    }
}
