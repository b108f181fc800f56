//! Optimizers with Keras's update rules and defaults: SGD with (optional) momentum,
//! and Adam (`β₁ = 0.9`, `β₂ = 0.999`, `ε = 1e-7`).

use super::{Grads, Network};
use clap::ValueEnum;
use serde::{Deserialize, Serialize};

/// Which optimizer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// Stochastic gradient descent (with `--momentum`).
    Sgd,
    /// Adam.
    Adam,
}

/// Optimizer state: one slot pair per parameter of every node.
#[derive(Clone, Debug, PartialEq)]
pub struct Optimizer {
    /// Which rule.
    pub kind: Kind,
    /// Momentum for SGD.
    pub momentum: f32,
    /// Steps taken.
    pub step: u64,
    /// First moments (Adam) or velocities (SGD), like the parameters.
    pub m: Grads,
    /// Second moments (Adam).
    pub v: Grads,
}

const BETA1: f32 = 0.9;
const BETA2: f32 = 0.999;
const EPSILON: f32 = 1e-7;

impl Optimizer {
    /// Fresh state for `net`.
    pub fn new(kind: Kind, momentum: f32, net: &Network) -> Self {
        let zeros = || -> Grads {
            net.nodes.iter().map(|n| n.params.iter().map(|p| vec![0.0; p.data.len()]).collect()).collect()
        };
        Optimizer { kind, momentum, step: 0, m: zeros(), v: if kind == Kind::Adam { zeros() } else { vec![] } }
    }

    /// One update with learning rate `lr`; empty gradients (frozen or non-trainable
    /// parameters) are skipped.
    pub fn apply(&mut self, net: &mut Network, grads: &Grads, lr: f32) {
        self.step += 1;
        let t = self.step as i32;
        let lr_t = lr * (1.0 - BETA2.powi(t)).sqrt() / (1.0 - BETA1.powi(t));
        for (i, node) in net.nodes.iter_mut().enumerate() {
            for (j, param) in node.params.iter_mut().enumerate() {
                let g = &grads[i][j];
                if g.is_empty() {
                    continue;
                }
                match self.kind {
                    Kind::Adam => {
                        let (m, v) = (&mut self.m[i][j], &mut self.v[i][j]);
                        // Sixteen lanes where the CPU has them: square roots and
                        // divisions round exactly at any width, so the bits are the same.
                        super::simd::wide(
                            #[inline(always)]
                            || {
                                for (((p, g), m), v) in param.data.iter_mut().zip(g).zip(m.iter_mut()).zip(v.iter_mut())
                                {
                                    *m = BETA1 * *m + (1.0 - BETA1) * g;
                                    *v = BETA2 * *v + (1.0 - BETA2) * g * g;
                                    *p -= lr_t * *m / (v.sqrt() + EPSILON);
                                }
                            },
                        )
                    }
                    Kind::Sgd => {
                        let velocity = &mut self.m[i][j];
                        for ((p, g), vel) in param.data.iter_mut().zip(g).zip(velocity.iter_mut()) {
                            // Keras: v = momentum·v − lr·g; p += v.
                            *vel = self.momentum * *vel - lr * g;
                            *p += *vel;
                        }
                    }
                }
            }
        }
    }
}
