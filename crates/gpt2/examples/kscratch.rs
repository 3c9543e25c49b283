use gpt2::kernels::isa::Isa;
use gpt2::kernels::qint::{qint_forward, QAct};
use gpt2::kernels::quant::{quantize_matrix, QMat, QType};
use gpt2::rng::Rng;
use std::time::Instant;
fn main() {
    let mut rng = Rng::seed(1);
    for t in [QType::Q8_0, QType::Q4_0] {
        for n in [1usize, 4, 16, 64, 512] {
            let (r, k) = (2304usize, 768usize);
            let f: Vec<f32> = (0..r * k).map(|_| rng.normal() * 0.02).collect();
            let b = quantize_matrix(t, &f, r, k).unwrap();
            let w = QMat::new(t, r, k, &b).unwrap();
            let x: Vec<f32> = (0..n * k).map(|_| rng.normal()).collect();
            let a = QAct::quantize(&x, n, k);
            let mut out = vec![0f32; n * r];
            for isa in [Isa::Avx512, Isa::Avx2] {
                let mut best = f64::MAX;
                rayon::scope(|_| {
                    for _ in 0..(20 * 64 / n).max(5) {
                        let t0 = Instant::now();
                        qint_forward(isa, &mut out, &a, &w, None);
                        best = best.min(t0.elapsed().as_secs_f64());
                    }
                });
                let tq = Instant::now();
                for _ in 0..10 {
                    std::hint::black_box(QAct::quantize(&x, n, k));
                }
                let tq = tq.elapsed().as_secs_f64() / 10.0;
                println!("{} {r}x{k} n{n} {}: {:.2} ms, {:.2} core-cycles/block-dot@3.7GHz (quantize {:.1} us)", t.name(), isa.name(), best*1e3, 2.0 * best * 3.7e9 / (r * k / 32 * n) as f64, tq * 1e6);
            }
        }
    }
}
