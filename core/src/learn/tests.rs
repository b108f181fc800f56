use super::*;
use crate::crc::crc32;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> i32 {
        (self.next() % n) as i32
    }
}

const ZP: i32 = -128;
const CRC: u32 = 0xC0FF_EE00;

fn cut(len: usize) -> FeatureCut {
    FeatureCut { op: 3, tensor: 7, len, zero_point: ZP }
}

/// Nonnegative (post-ReLU-like) clusters: `classes` centres, `per_class` noisy samples each.
fn clusters(classes: usize, features: usize, per_class: usize, noise: u64, seed: u64) -> Vec<(usize, Vec<i8>)> {
    let mut rng = Rng(seed | 1);
    let centres: Vec<Vec<i32>> = (0..classes).map(|_| (0..features).map(|_| rng.below(120)).collect()).collect();
    let mut out = Vec::new();
    for k in 0..per_class {
        for (c, centre) in centres.iter().enumerate() {
            let _ = k;
            let q = centre
                .iter()
                .map(|&m| (m + rng.below(2 * noise + 1) - noise as i32).clamp(0, 255) + ZP)
                .map(|v| v.clamp(-128, 127) as i8)
                .collect();
            out.push((c, q));
        }
    }
    out
}

fn learned<const C: usize, const F: usize, const S: usize>(
    method: Method,
    data: &[(usize, Vec<i8>)],
    config: &SgdConfig,
) -> Vec<u8> {
    let mut learner: Learner<C, F, S> = Learner::new(method, &cut(data[0].1.len()), CRC).unwrap();
    for (label, q) in data {
        learner.learn(*label, q).unwrap();
    }
    learner.train(config).unwrap();
    let mut out = vec![0u8; learner.head_len()];
    let len = learner.write_head(&mut out).unwrap();
    assert_eq!(len, out.len());
    out
}

fn accuracy(head: &Head<'_>, data: &[(usize, Vec<i8>)]) -> f64 {
    let mut scratch = vec![I16F16::ZERO; head.features()];
    let right = data.iter().filter(|(label, q)| head.classify_features(q, &mut scratch).0 == *label).count();
    right as f64 / data.len() as f64
}

#[test]
fn embeddings_are_unit_vectors_independent_of_scale() {
    let q: Vec<i8> = [3, -7, 0, 12, -128, 5].iter().map(|&d: &i32| (d / 2 + ZP + 64) as i8).collect();
    let mut e = [I16F16::ZERO; 6];
    embed(&q, ZP, &mut e);
    let norm: f64 = e.iter().map(|v| v.to_num::<f64>().powi(2)).sum();
    assert!((norm - 1.0).abs() < 1e-3, "{norm}");
    // (q − z) doubled: the same direction, the same embedding up to one unit of rounding.
    let wide: Vec<i8> = q.iter().map(|&v| ((i32::from(v) - ZP) * 2 + ZP).clamp(-128, 127) as i8).collect();
    let mut f = [I16F16::ZERO; 6];
    embed(&wide, ZP, &mut f);
    for (a, b) in e.iter().zip(&f) {
        assert!((a.to_bits() - b.to_bits()).abs() <= 1, "{a} {b}");
    }
    // Matches the f64 definition.
    let d: Vec<f64> = q.iter().map(|&v| f64::from(i32::from(v) - ZP)).collect();
    let n = d.iter().map(|v| v * v).sum::<f64>().sqrt();
    for (a, x) in e.iter().zip(&d) {
        assert!((a.to_num::<f64>() - x / n).abs() < 3e-5);
    }
    // All at the zero point: zeros, no division by zero.
    embed(&[ZP as i8; 6], ZP, &mut f);
    assert!(f.iter().all(|v| *v == I16F16::ZERO));
}

#[test]
fn one_sgd_step_from_zero_is_the_cross_entropy_gradient() {
    // One epoch over one sample of each of three classes, against an f64 replay of the
    // same order and the same formulas: W_c −= lr·(p_c − [c = y])·e, b_c −= lr·(p_c − [c = y]).
    // (From W = 0 the first step has p_c = 1/C.)
    let mut learner: Learner<3, 5, 4> = Learner::new(Method::Sgd, &cut(5), CRC).unwrap();
    learner.learn(1, &[-100, -20, 40, -128, 0]).unwrap();
    learner.learn(0, &[-128, 127, -128, 0, 5]).unwrap();
    learner.learn(2, &[50, -128, -128, -60, 127]).unwrap();
    let rate = 0.75;
    learner.train(&SgdConfig { epochs: 1, learning_rate: I16F16::from_num(rate) }).unwrap();

    let samples: Vec<(usize, Vec<i8>)> =
        learner.replay.iter().map(|s| (usize::from(s.label), s.features[..5].to_vec())).collect();
    let mut w = [[0f64; 5]; 3];
    let mut b = [0f64; 3];
    let (offset, stride) = stride_order(samples.len(), 0);
    for k in 0..samples.len() {
        let (label, q) = &samples[(offset + k * stride) % samples.len()];
        let d: Vec<f64> = q.iter().map(|&v| f64::from(i32::from(v) - ZP)).collect();
        let n = d.iter().map(|v| v * v).sum::<f64>().sqrt();
        let e: Vec<f64> = d.iter().map(|v| v / n).collect();
        let z: Vec<f64> = (0..3).map(|c| b[c] + (0..5).map(|i| w[c][i] * e[i]).sum::<f64>()).collect();
        let m = z.iter().cloned().fold(f64::MIN, f64::max);
        let s: f64 = z.iter().map(|v| (v - m).exp()).sum();
        for c in 0..3 {
            let g = (z[c] - m).exp() / s - if c == *label { 1.0 } else { 0.0 };
            for (wi, ei) in w[c].iter_mut().zip(&e) {
                *wi -= rate * g * ei;
            }
            b[c] -= rate * g;
        }
    }
    for c in 0..3 {
        assert!((learner.bias[c].to_num::<f64>() - b[c]).abs() < 2e-3, "bias {c}: {} vs {}", learner.bias[c], b[c]);
        for (i, (got, want)) in learner.weights[c].iter().zip(&w[c]).enumerate() {
            let got = got.to_num::<f64>();
            assert!((got - want).abs() < 2e-3, "w[{c}][{i}]: {got} vs {want}");
        }
    }
    assert!(learner.weights.iter().flatten().any(|v| v.abs() > I16F16::from_num(0.05)));
}

#[test]
fn sgd_lowers_the_loss_and_separates_clusters() {
    let train = clusters(6, 32, 20, 25, 11);
    let test = clusters(6, 32, 100, 25, 11);
    let mut losses = Vec::new();
    for epochs in [1u16, 5, 30] {
        let bytes =
            learned::<8, 32, 160>(Method::Sgd, &train, &SgdConfig { epochs, learning_rate: I16F16::from_num(1) });
        let head = Head::from_bytes(&bytes, CRC).unwrap();
        let mut loss = 0.0;
        let mut e = vec![I16F16::ZERO; 32];
        for (label, q) in &train {
            embed(q, ZP, &mut e);
            let z: Vec<f64> = (0..head.classes()).map(|c| head.score(c, &e).to_num::<f64>()).collect();
            let m = z.iter().cloned().fold(f64::MIN, f64::max);
            let s: f64 = z.iter().map(|v| (v - m).exp()).sum();
            loss += -((z[*label] - m) - s.ln());
        }
        losses.push(loss / train.len() as f64);
        if epochs == 30 {
            assert!(accuracy(&head, &test) > 0.95, "{}", accuracy(&head, &test));
        }
    }
    assert!(losses[0] > losses[1] && losses[1] > losses[2], "{losses:?}");
}

#[test]
fn prototypes_are_unit_rows_and_classify_clusters() {
    let train = clusters(5, 24, 20, 20, 5);
    let test = clusters(5, 24, 100, 20, 5);
    let bytes = learned::<10, 32, 0>(Method::Prototypes, &train, &SgdConfig::default());
    let head = Head::from_bytes(&bytes, CRC).unwrap();
    assert_eq!((head.classes(), head.features(), head.method()), (5, 24, Method::Prototypes));
    assert_eq!(head.samples(), 100);
    for c in 0..5 {
        assert_eq!(head.class_samples(c), 20);
        assert_eq!(head.bias(c), I16F16::ZERO);
        let norm: f64 = head.weights(c).map(|w| w.to_num::<f64>().powi(2)).sum();
        assert!((norm - 1.0).abs() < 1e-3, "{norm}");
    }
    assert!(accuracy(&head, &test) > 0.95);
}

#[test]
fn learned_bytes_are_a_fixed_function_of_the_frames() {
    // Golden CRCs of heads learned from seeded data: any change to the arithmetic (and
    // so to what the chip learns) shows up here. The QEMU tests check the chip gives
    // the same bytes.
    let train = clusters(4, 16, 10, 30, 99);
    let sgd = learned::<4, 16, 40>(Method::Sgd, &train, &SgdConfig::default());
    let prototypes = learned::<4, 16, 0>(Method::Prototypes, &train, &SgdConfig::default());
    assert_eq!(sgd.len(), head::len(4, 16));
    // (The CRC of a head without its own CRC field: with it, any head gives CRC-32's
    // constant residue.)
    let (a, b) = (crc32(&sgd[..sgd.len() - 4]), crc32(&prototypes[..prototypes.len() - 4]));
    assert_eq!((a, b), (GOLDEN_SGD, GOLDEN_PROTOTYPES), "{a:#010x} {b:#010x}");
    // And twice the same.
    assert_eq!(sgd, learned::<4, 16, 40>(Method::Sgd, &train, &SgdConfig::default()));
}

const GOLDEN_SGD: u32 = 0xda0d_7fa9;
const GOLDEN_PROTOTYPES: u32 = 0x5a2a_b4d9;

#[test]
fn capacities_and_bad_input_are_errors() {
    assert_eq!(
        Learner::<2, 4, 2>::new(Method::Sgd, &cut(5), CRC).err(),
        Some(LearnError::TooManyFeatures { features: 5, capacity: 4 })
    );
    let mut learner: Learner<2, 4, 2> = Learner::new(Method::Sgd, &cut(4), CRC).unwrap();
    let mut out = [0u8; 512];
    assert_eq!(learner.write_head(&mut out), Err(LearnError::NothingLearned));
    assert_eq!(learner.train(&SgdConfig::default()), Err(LearnError::NothingLearned));
    assert_eq!(learner.learn(2, &[0; 4]), Err(LearnError::TooManyClasses { label: 2, capacity: 2 }));
    assert_eq!(learner.learn(0, &[0; 3]), Err(LearnError::WrongFeatureLength { expected: 4, found: 3 }));
    learner.learn(1, &[1, 2, 3, 4]).unwrap();
    assert_eq!(learner.write_head(&mut out), Err(LearnError::EmptyClass { class: 0 }));
    learner.learn(0, &[4, 3, 2, 1]).unwrap();
    assert_eq!(learner.learn(0, &[4, 3, 2, 1]), Err(LearnError::ReplayFull { capacity: 2 }));
    learner.train(&SgdConfig::default()).unwrap();
    assert_eq!(
        learner.write_head(&mut out[..10]),
        Err(LearnError::BufferTooSmall { needed: head::len(2, 4), available: 10 })
    );
    let len = learner.write_head(&mut out).unwrap();
    let bytes = &mut out[..len];
    assert!(Head::from_bytes(bytes, CRC).is_ok());
    assert_eq!(Head::from_bytes(bytes, CRC + 1).err(), Some(LearnError::WrongBaseModel { head: CRC, model: CRC + 1 }));
    assert_eq!(Head::from_bytes(&bytes[..len - 1], CRC).err(), Some(LearnError::NotAHead));
    assert_eq!(Head::from_bytes(&[0xFF; 64], CRC).err(), Some(LearnError::NotAHead));
    bytes[40] ^= 1;
    assert!(matches!(Head::from_bytes(bytes, CRC), Err(LearnError::HeadChecksum { .. })));
    // One-line messages.
    for e in [LearnError::NoClassifier, LearnError::NoHead, LearnError::EmptyClass { class: 3 }] {
        let text = e.to_string();
        assert!(!text.is_empty() && !text.contains('\n'), "{text}");
    }
}

#[test]
fn ram_is_known_at_build_time() {
    // 10 classes of 64 features, 20 replay frames per class: weights 2560 B, replay
    // 13000 B, embedding scratch 256 B; the budget is 16 KiB.
    type TenClasses = Learner<10, 64, 200>;
    // Checked by the compiler: a learner that outgrows the budget fails the build of
    // this test.
    const { assert!(TenClasses::RAM_BYTES <= 16 * 1024) };
    const { assert!(TenClasses::RAM_BYTES >= 10 * 64 * 4 + 200 * 65) };
    assert_eq!(TenClasses::RAM_BYTES, core::mem::size_of::<TenClasses>());
}
