//! Inference weights in their storage type: every matrix stays f32, f16, bf16, q8_0 or q4_0 in
//! memory (mapped from a GGUF file where the file's layout is the resident one) and is multiplied by
//! [`crate::kernels::qmatmul`] without being converted as a whole.
//!
//! Layout (llama.cpp's GGUF for GPT-2): matrices are `(out, in)` rows, so GPT-2's Conv1D weights
//! `(in, out)` are transposed once, when quantizing ([`TypedWeights::from_params`]) or when
//! converting back for training ([`TypedWeights::to_params`]). LayerNorm parameters and biases are
//! small and kept as f32 vectors.
//!
//! Which tensor gets which type is [`policy`]: it mirrors what llama.cpp's tools write, with one
//! named deviation (q4_0's tied embedding).

use std::sync::Arc;

use crate::config::Gpt2Config;
use crate::kernels::quant::{quantize_matrix, QMat, QType};
use crate::params::Params;

/// Where a tensor's bytes live.
#[derive(Debug)]
pub enum Store {
    /// Owned by the process (quantized in memory, or converted at load).
    Owned(Vec<u8>),
    /// A GGUF file mapped into memory (shared by every tensor of that file).
    File(Arc<crate::gguf::FileBytes>),
    /// Anonymous memory asked to be backed by huge pages before it was filled
    /// ([`TypedWeights::into_owned`]); `.0[.1..]` is the 2 MiB-aligned part in use.
    Anon(memmap2::MmapMut, usize),
}

impl Store {
    fn bytes(&self) -> &[u8] {
        match self {
            Store::Owned(v) => v,
            Store::File(f) => f,
            Store::Anon(m, off) => &m[*off..],
        }
    }
}

/// One weight matrix: `rows` (outputs) × `cols` (inputs) in `qtype`.
#[derive(Debug, Clone)]
pub struct QTensor {
    /// Storage type.
    pub qtype: QType,
    /// Rows (outputs).
    pub rows: usize,
    /// Columns (inputs).
    pub cols: usize,
    store: Arc<Store>,
    off: usize,
    len: usize,
}

impl QTensor {
    /// Takes ownership of `bytes` (rows × row_bytes). `None` on a size mismatch.
    pub fn owned(qtype: QType, rows: usize, cols: usize, bytes: Vec<u8>) -> Option<Self> {
        QMat::new(qtype, rows, cols, &bytes)?;
        let len = bytes.len();
        Some(Self {
            qtype,
            rows,
            cols,
            store: Arc::new(Store::Owned(bytes)),
            off: 0,
            len,
        })
    }

    /// A view of `store[off..off + len]`. `None` if out of range or of the wrong size.
    pub fn mapped(
        qtype: QType,
        rows: usize,
        cols: usize,
        store: Arc<Store>,
        off: usize,
        len: usize,
    ) -> Option<Self> {
        let bytes = store.bytes().get(off..off.checked_add(len)?)?;
        QMat::new(qtype, rows, cols, bytes)?;
        Some(Self {
            qtype,
            rows,
            cols,
            store,
            off,
            len,
        })
    }

    /// Quantizes a (rows, cols) f32 matrix. `None` if cols is not a multiple of the block size.
    pub fn quantize(qtype: QType, x: &[f32], rows: usize, cols: usize) -> Option<Self> {
        Self::owned(qtype, rows, cols, quantize_matrix(qtype, x, rows, cols)?)
    }

    /// The kernel view.
    pub fn view(&self) -> QMat<'_> {
        QMat {
            qtype: self.qtype,
            rows: self.rows,
            cols: self.cols,
            data: &self.store.bytes()[self.off..self.off + self.len],
        }
    }

    /// Stored bytes.
    pub fn bytes(&self) -> &[u8] {
        self.view().data
    }

    /// Whether the bytes are in a `Vec` of their own (quantized or converted in memory).
    pub(crate) fn is_vec(&self) -> bool {
        matches!(*self.store, Store::Owned(_))
    }

    /// Whether the bytes are mapped from a file (not copied).
    pub fn is_mapped(&self) -> bool {
        matches!(*self.store, Store::File(_))
    }
}

/// One decoder block `h.{i}` for inference. Matrices are `(out, in)`.
#[derive(Debug, Clone)]
pub struct TypedLayer {
    /// `ln_1.weight` (C)
    pub ln_1_w: Vec<f32>,
    /// `ln_1.bias` (C)
    pub ln_1_b: Vec<f32>,
    /// `attn.c_attn` (3C, C), GGUF `blk.i.attn_qkv`
    pub c_attn: QTensor,
    /// `attn.c_attn.bias` (3C)
    pub c_attn_b: Vec<f32>,
    /// `attn.c_proj` (C, C), GGUF `blk.i.attn_output`
    pub attn_proj: QTensor,
    /// `attn.c_proj.bias` (C)
    pub attn_proj_b: Vec<f32>,
    /// `ln_2.weight` (C)
    pub ln_2_w: Vec<f32>,
    /// `ln_2.bias` (C)
    pub ln_2_b: Vec<f32>,
    /// `mlp.c_fc` (4C, C), GGUF `blk.i.ffn_up`
    pub c_fc: QTensor,
    /// `mlp.c_fc.bias` (4C)
    pub c_fc_b: Vec<f32>,
    /// `mlp.c_proj` (C, 4C), GGUF `blk.i.ffn_down`
    pub mlp_proj: QTensor,
    /// `mlp.c_proj.bias` (C)
    pub mlp_proj_b: Vec<f32>,
}

/// All weights of a GPT-2 language model for inference, each matrix in its storage type.
#[derive(Debug, Clone)]
pub struct TypedWeights {
    /// The configuration.
    pub cfg: Gpt2Config,
    /// `wte` (V, C): token embeddings, and the lm_head unless [`TypedWeights::lm_head`] is set.
    pub wte: QTensor,
    /// `wpe` (maxT, C): position embeddings.
    pub wpe: QTensor,
    /// The blocks.
    pub h: Vec<TypedLayer>,
    /// `ln_f.weight` (C)
    pub ln_f_w: Vec<f32>,
    /// `ln_f.bias` (C)
    pub ln_f_b: Vec<f32>,
    /// An untied `lm_head` (V, C) (GGUF `output.weight`), if the file has one.
    pub lm_head: Option<QTensor>,
}

/// The role of a tensor for [`policy`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// `wte` (also the tied lm_head).
    TokenEmbedding,
    /// `wpe`.
    PositionEmbedding,
    /// The four matrices of a block.
    BlockMatrix,
}

/// The storage type a tensor of `role` with rows of `cols` gets when a model is converted to
/// `target`, as llama-quantize chooses it for GPT-2 (`llama_tensor_get_type`):
/// - block matrices: `target`;
/// - `wte`: `target`, except q6_K for q4_0: it is also the lm_head, which llama-quantize keeps
///   at higher precision;
/// - `wpe`: f32 (llama.cpp's converter keeps it f32 and llama-quantize never quantizes it);
/// - a row length that is not a multiple of the block size falls back as llama-quantize does:
///   q6_K to q8_0, anything else (q8_0 included) to f16.
pub fn policy(target: QType, role: Role, cols: usize) -> QType {
    let mut t = match role {
        Role::BlockMatrix => target,
        Role::TokenEmbedding if target == QType::Q4_0 => QType::Q6_K,
        Role::TokenEmbedding => target,
        Role::PositionEmbedding => QType::F32,
    };
    if t == QType::Q6_K && t.row_bytes(cols).is_none() {
        t = QType::Q8_0;
    }
    if t.row_bytes(cols).is_none() {
        QType::F16
    } else {
        t
    }
}

/// Transposes a (r, c) row-major matrix to (c, r).
fn transpose(x: &[f32], r: usize, c: usize) -> Vec<f32> {
    let mut t = vec![0f32; x.len()];
    for i in 0..r {
        for j in 0..c {
            t[j * r + i] = x[i * c + j];
        }
    }
    t
}

impl TypedWeights {
    /// Converts f32 parameters to `target` following [`policy`]. Conv1D weights `(in, out)`
    /// become `(out, in)` rows. Errors if `p` has a classification head (not an LM).
    pub fn from_params(p: &Params, target: QType) -> crate::Result<Self> {
        let cfg = p.cfg.clone();
        if cfg.num_labels.is_some() {
            return Err(crate::Error::Invalid(
                "a classification model (score head) cannot be converted to typed LM weights"
                    .into(),
            ));
        }
        let (c, v, t) = (cfg.n_embd, cfg.vocab_size, cfg.n_positions);
        let q = |role: Role, x: &[f32], rows: usize, cols: usize| {
            let ty = policy(target, role, cols);
            QTensor::quantize(ty, x, rows, cols).expect("policy gives a type that fits the row")
        };
        let conv =
            |w: &[f32], ic: usize, oc: usize| q(Role::BlockMatrix, &transpose(w, ic, oc), oc, ic);
        let views = p.views();
        let h = views
            .h
            .iter()
            .map(|l| TypedLayer {
                ln_1_w: l.ln_1_w.to_vec(),
                ln_1_b: l.ln_1_b.to_vec(),
                c_attn: conv(l.c_attn_w, c, 3 * c),
                c_attn_b: l.c_attn_b.to_vec(),
                attn_proj: conv(l.attn_proj_w, c, c),
                attn_proj_b: l.attn_proj_b.to_vec(),
                ln_2_w: l.ln_2_w.to_vec(),
                ln_2_b: l.ln_2_b.to_vec(),
                c_fc: conv(l.c_fc_w, c, 4 * c),
                c_fc_b: l.c_fc_b.to_vec(),
                mlp_proj: conv(l.mlp_proj_w, 4 * c, c),
                mlp_proj_b: l.mlp_proj_b.to_vec(),
            })
            .collect();
        Ok(Self {
            wte: q(Role::TokenEmbedding, views.wte, v, c),
            wpe: q(Role::PositionEmbedding, views.wpe, t, c),
            h,
            ln_f_w: views.ln_f_w.to_vec(),
            ln_f_b: views.ln_f_b.to_vec(),
            lm_head: None,
            cfg,
        })
    }

    /// Dequantizes into f32 [`Params`] (Conv1D layout again), e.g. master weights for fine-tuning.
    /// An untied lm_head is dropped (GPT-2 ties it); callers who care check [`Self::lm_head`].
    pub fn to_params(&self) -> Params {
        let mut p = Params::zeros(&self.cfg);
        let c = self.cfg.n_embd;
        let deq_t = |w: &QTensor| transpose(&w.view().dequantize(), w.rows, w.cols);
        let mut v = p.views_mut();
        v.wte.copy_from_slice(&self.wte.view().dequantize());
        v.wpe.copy_from_slice(&self.wpe.view().dequantize());
        for (dst, l) in v.h.iter_mut().zip(&self.h) {
            dst.ln_1_w.copy_from_slice(&l.ln_1_w);
            dst.ln_1_b.copy_from_slice(&l.ln_1_b);
            dst.c_attn_w.copy_from_slice(&deq_t(&l.c_attn));
            dst.c_attn_b.copy_from_slice(&l.c_attn_b);
            dst.attn_proj_w.copy_from_slice(&deq_t(&l.attn_proj));
            dst.attn_proj_b.copy_from_slice(&l.attn_proj_b);
            dst.ln_2_w.copy_from_slice(&l.ln_2_w);
            dst.ln_2_b.copy_from_slice(&l.ln_2_b);
            dst.c_fc_w.copy_from_slice(&deq_t(&l.c_fc));
            dst.c_fc_b.copy_from_slice(&l.c_fc_b);
            dst.mlp_proj_w.copy_from_slice(&deq_t(&l.mlp_proj));
            dst.mlp_proj_b.copy_from_slice(&l.mlp_proj_b);
        }
        v.ln_f_w.copy_from_slice(&self.ln_f_w);
        v.ln_f_b.copy_from_slice(&self.ln_f_b);
        debug_assert_eq!(self.wte.cols, c);
        p
    }

    /// Every matrix with its GGUF name, in llama-quantize's order.
    pub fn matrices(&self) -> Vec<(String, &QTensor)> {
        let mut m = vec![
            ("position_embd.weight".to_string(), &self.wpe),
            ("token_embd.weight".to_string(), &self.wte),
        ];
        if let Some(h) = &self.lm_head {
            m.push(("output.weight".to_string(), h));
        }
        for (i, l) in self.h.iter().enumerate() {
            m.push((format!("blk.{i}.attn_qkv.weight"), &l.c_attn));
            m.push((format!("blk.{i}.attn_output.weight"), &l.attn_proj));
            m.push((format!("blk.{i}.ffn_up.weight"), &l.c_fc));
            m.push((format!("blk.{i}.ffn_down.weight"), &l.mlp_proj));
        }
        m
    }

    /// Copies every mapped matrix into memory the process owns (`--no-mmap`): loading reads the
    /// whole file, but [`crate::Model::from_typed`] can then put the weights on huge pages.
    ///
    /// The copies share one anonymous mapping, advised for huge pages before it is written, each
    /// tensor at a 64-byte boundary. Errors: the mapping could not be made ([`crate::Error::Io`]).
    pub fn into_owned(mut self) -> crate::Result<Self> {
        const ALIGN: usize = 64;
        let mut tensors: Vec<&mut QTensor> = vec![&mut self.wte, &mut self.wpe];
        if let Some(t) = self.lm_head.as_mut() {
            tensors.push(t);
        }
        for l in &mut self.h {
            tensors.extend([
                &mut l.c_attn,
                &mut l.attn_proj,
                &mut l.c_fc,
                &mut l.mlp_proj,
            ]);
        }
        tensors.retain(|t| t.is_mapped());
        let total: usize = tensors.iter().map(|t| t.len.next_multiple_of(ALIGN)).sum();
        if total == 0 {
            return Ok(self);
        }
        let mut map = memmap2::MmapMut::map_anon(total + crate::hugepages::HUGE).map_err(|e| {
            crate::Error::Io {
                path: format!("anonymous mapping of {total} bytes for the weights"),
                source: e,
            }
        })?;
        let base = (map.as_ptr() as usize).next_multiple_of(crate::hugepages::HUGE)
            - map.as_ptr() as usize;
        #[cfg(target_os = "linux")]
        let _ = map.advise(memmap2::Advice::HugePage); // best effort: contents are unaffected
        let mut at = 0;
        let mut placed = Vec::with_capacity(tensors.len());
        for t in &tensors {
            map[base + at..base + at + t.len].copy_from_slice(t.bytes());
            placed.push(at);
            at += t.len.next_multiple_of(ALIGN);
        }
        let store = Arc::new(Store::Anon(map, base));
        for (t, off) in tensors.into_iter().zip(placed) {
            *t = QTensor::mapped(t.qtype, t.rows, t.cols, Arc::clone(&store), off, t.len)
                .expect("a copy of a valid tensor");
        }
        Ok(self)
    }

    /// Bytes held: (mapped from a file, owned by the process), vectors included in owned.
    pub fn resident_bytes(&self) -> (usize, usize) {
        let (mut mapped, mut owned) = (0, 0);
        for (_, t) in self.matrices() {
            if t.is_mapped() {
                mapped += t.len;
            } else {
                owned += t.len;
            }
        }
        let vec_elems: usize = self
            .h
            .iter()
            .map(|l| {
                l.ln_1_w.len()
                    + l.ln_1_b.len()
                    + l.c_attn_b.len()
                    + l.attn_proj_b.len()
                    + l.ln_2_w.len()
                    + l.ln_2_b.len()
                    + l.c_fc_b.len()
                    + l.mlp_proj_b.len()
            })
            .sum::<usize>()
            + self.ln_f_w.len()
            + self.ln_f_b.len();
        (mapped, owned + 4 * vec_elems)
    }

    /// A one-line summary of the storage types, e.g. `q4_0 (48 matrices), q8_0 (1), f32 (1)`.
    pub fn type_summary(&self) -> String {
        let mut counts: Vec<(QType, usize)> = Vec::new();
        for (_, t) in self.matrices() {
            match counts.iter_mut().find(|(q, _)| *q == t.qtype) {
                Some((_, n)) => *n += 1,
                None => counts.push((t.qtype, 1)),
            }
        }
        counts
            .iter()
            .map(|(q, n)| {
                format!(
                    "{} ({n} {})",
                    q.name(),
                    if *n == 1 { "matrix" } else { "matrices" }
                )
            })
            .collect::<Vec<_>>()
            .join(", ")
    }
}
