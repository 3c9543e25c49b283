//! Kernel benchmark of [`gpt2::kernels::qmatmul`]: weight bytes read per second by the
//! matrix-vector product of decoding, for each weight type and kernel path, with the weights hot
//! in cache (one 768 × 768 matrix, repeated) and cold (a 124M-shaped stack of matrices, ~4× the
//! last-level cache at q4_0, streamed from memory).
//!
//! ```text
//! cargo run --release -p gpt2 --example qmatmul_bench [-- ROWS [TYPE]]   # ROWS: activation rows (1)
//! ```
//!
//! Compare the cold figures with the machine's read bandwidth (`scripts/membw.c`): decode at
//! batch 1 is bound by it once the hot figure is several times the cold one.

use std::time::Instant;

use gpt2::kernels::isa::supported;
use gpt2::kernels::qmatmul::qmatmul_forward_isa;
use gpt2::kernels::quant::{quantize_matrix, QMat, QType};
use gpt2::rng::Rng;

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .map(|s| s.parse().expect("ROWS must be a number"))
        .unwrap_or(1);
    let mut rng = Rng::seed(1);
    // 124M block shapes: (R, K) of c_attn, attn.c_proj, c_fc, mlp.c_proj; 12 layers
    let shapes = [(2304, 768), (768, 768), (3072, 768), (768, 3072)];
    let f: Vec<f32> = (0..3072 * 768).map(|_| rng.normal() * 0.02).collect();
    println!(
        "rows {n}, {} threads; GB/s of weights (hot: 768x768 in cache; cold: 12 layers of 124M)",
        rayon::current_num_threads()
    );
    let only = std::env::args().nth(2);
    for t in QType::ALL.into_iter().chain([QType::Q6_K]) {
        if only.as_deref().is_some_and(|o| o != t.name()) {
            continue;
        }
        let mats: Vec<(usize, usize, Vec<u8>)> = (0..12)
            .flat_map(|_| shapes.iter())
            .map(|&(r, k)| (r, k, quantize_matrix(t, &f[..r * k], r, k).unwrap()))
            .collect();
        let hot = quantize_matrix(t, &f[..768 * 768], 768, 768).unwrap();
        for isa in supported() {
            let x: Vec<f32> = (0..n * 3072).map(|_| rng.normal()).collect();
            let mut out = vec![0f32; n * 3072];
            let mut time = |mats: &[(usize, usize, &[u8])], reps: usize| {
                let mut best = f64::MAX;
                for _ in 0..reps {
                    let t0 = Instant::now();
                    // inside the pool, as Model::forward runs
                    rayon::scope(|_| {
                        for &(r, k, b) in mats {
                            let w = QMat::new(t, r, k, b).unwrap();
                            qmatmul_forward_isa(isa, &mut out[..n * r], &x[..n * k], &w, None, n);
                        }
                    });
                    best = best.min(t0.elapsed().as_secs_f64());
                }
                let bytes: usize = mats.iter().map(|m| m.2.len()).sum();
                bytes as f64 / best / 1e9
            };
            let hot_list: Vec<(usize, usize, &[u8])> =
                (0..64).map(|_| (768, 768, &hot[..])).collect();
            let cold_list: Vec<(usize, usize, &[u8])> =
                mats.iter().map(|(r, k, b)| (*r, *k, &b[..])).collect();
            let h = time(&hot_list, 20);
            let c = time(&cold_list, 10);
            println!(
                "{:>5} {:>8}: hot {h:6.1} GB/s  cold {c:6.1} GB/s  ({:.0} µs per 124M-block pass)",
                t.name(),
                isa.name(),
                cold_list.iter().map(|m| m.2.len()).sum::<usize>() as f64 / c / 1e3
            );
        }
    }
}
