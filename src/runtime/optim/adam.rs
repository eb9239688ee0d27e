//! Adam (Keras form), AMSGrad and AdamW (decoupled weight decay):
//! `m += (1-b1)(g-m); v += (1-b2)(g²-v); p -= lr·sqrt(1-b2^t)/(1-b1^t) · m/(sqrt(v)+eps)`.

use ndarray::{ArrayViewD, ArrayViewMutD, Zip};
use serde::{Deserialize, Serialize};

use super::slots::Slots;
use super::{
    check_non_negative, check_positive, check_step_inputs, check_unit_open, InvalidHyperparameter,
    OptimError,
};
use crate::runtime::kernels::simd_train::vectorized;

/// Hyperparameters of [`Adam`]. `Default` is Keras `Adam`; [`AdamConfig::adamw`] is AdamW.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct AdamConfig {
    /// Decay of the first moment, in `(0, 1)` (default 0.9).
    pub beta1: f32,
    /// Decay of the second moment, in `(0, 1)` (default 0.999).
    pub beta2: f32,
    /// Added to `sqrt(v)`, `> 0` (default 1e-7).
    pub epsilon: f32,
    /// Use the running maximum of `v` (AMSGrad).
    pub amsgrad: bool,
    /// Weight decay, `>= 0` (default 0).
    pub weight_decay: f32,
    /// `true`: decoupled (`p -= lr*wd*p`, AdamW); `false`: L2 added to the gradient.
    pub decoupled_weight_decay: bool,
}

impl Default for AdamConfig {
    fn default() -> Self {
        Self {
            beta1: 0.9,
            beta2: 0.999,
            epsilon: 1e-7,
            amsgrad: false,
            weight_decay: 0.0,
            decoupled_weight_decay: false,
        }
    }
}

impl AdamConfig {
    /// AdamW defaults: Keras Adam's betas and epsilon, decoupled weight decay 0.01 (PyTorch's).
    pub fn adamw() -> Self {
        Self {
            weight_decay: 0.01,
            decoupled_weight_decay: true,
            ..Self::default()
        }
    }

    /// Checks every field is in range.
    pub fn validate(&self) -> Result<(), InvalidHyperparameter> {
        check_unit_open("beta1", f64::from(self.beta1))?;
        check_unit_open("beta2", f64::from(self.beta2))?;
        check_positive("epsilon", f64::from(self.epsilon))?;
        check_non_negative("weight_decay", f64::from(self.weight_decay))
    }
}

/// Adam with its moments per parameter and the global step count.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Adam {
    config: AdamConfig,
    /// Steps taken so far (`t` of the last step).
    steps: u64,
    m: Slots,
    v: Slots,
    /// Running maximum of `v`; used only with amsgrad.
    v_max: Slots,
}

impl Adam {
    /// The moment slots by name, in a fixed order (see [`super::Optimizer::slots_mut`]).
    pub fn slots_mut(&mut self) -> Vec<(&'static str, &mut Slots)> {
        vec![
            ("m", &mut self.m),
            ("v", &mut self.v),
            ("v_max", &mut self.v_max),
        ]
    }

    /// A validated optimizer with no state yet.
    pub fn new(config: AdamConfig) -> Result<Self, InvalidHyperparameter> {
        config.validate()?;
        Ok(Self {
            config,
            steps: 0,
            m: Slots::default(),
            v: Slots::default(),
            v_max: Slots::default(),
        })
    }

    /// Its hyperparameters.
    pub fn config(&self) -> &AdamConfig {
        &self.config
    }

    /// Steps taken so far.
    pub fn steps(&self) -> u64 {
        self.steps
    }

    /// One update; see the module doc of [`super`].
    pub fn step(
        &mut self,
        params: &mut [ArrayViewMutD<f32>],
        grads: &[ArrayViewD<f32>],
        lr: f32,
    ) -> Result<(), OptimError> {
        let c = self.config;
        c.validate()?;
        check_step_inputs(params, grads, lr)?;
        self.m.prepare("m", params)?;
        self.v.prepare("v", params)?;
        if c.amsgrad {
            self.v_max.prepare("v_max", params)?;
        }
        self.steps = self.steps.saturating_add(1);
        let t = self.steps as f64;
        let correction1 = 1.0 - f64::from(c.beta1).powf(t);
        let correction2 = 1.0 - f64::from(c.beta2).powf(t);
        let alpha = (f64::from(lr) * correction2.sqrt() / correction1) as f32;
        let (b1, b2, eps) = (c.beta1, c.beta2, c.epsilon);
        let coupled_wd = if c.decoupled_weight_decay {
            0.0
        } else {
            c.weight_decay
        };
        let decay_factor = if c.decoupled_weight_decay {
            lr * c.weight_decay
        } else {
            0.0
        };
        let moments = |g: f32, m: &mut f32, v: &mut f32| {
            *m += (g - *m) * (1.0 - b1);
            *v += (g * g - *v) * (1.0 - b2);
        };
        let ms = self.m.tensors_mut();
        let vs = self.v.tensors_mut();
        let v_maxes = self.v_max.tensors_mut();
        for (index, ((p, g), (m, v))) in params
            .iter_mut()
            .zip(grads)
            .zip(ms.iter_mut().zip(vs.iter_mut()))
            .enumerate()
        {
            let plain = |p: &mut f32, g: f32, m: &mut f32, v: &mut f32| {
                let g = g + coupled_wd * *p;
                *p -= decay_factor * *p;
                moments(g, m, v);
                *p -= alpha * *m / (v.sqrt() + eps);
            };
            if !c.amsgrad {
                // Contiguous tensors (always, in the trainer): a flat loop, vectorized.
                if let (Some(ps), Some(gs), Some(msl), Some(vsl)) = (
                    p.as_slice_mut(),
                    g.as_slice(),
                    m.as_slice_mut(),
                    v.as_slice_mut(),
                ) {
                    if ps.len() == gs.len() && ps.len() == msl.len() && ps.len() == vsl.len() {
                        vectorized(
                            #[inline(always)]
                            || {
                                for (((p, &g), m), v) in ps.iter_mut().zip(gs).zip(msl).zip(vsl) {
                                    plain(p, g, m, v);
                                }
                            },
                        );
                        continue;
                    }
                }
            }
            let zip = Zip::from(p).and(g).and(m).and(v);
            match v_maxes.get_mut(index).filter(|_| c.amsgrad) {
                Some(v_max) => zip.and(v_max).for_each(|p, &g, m, v, v_max| {
                    let g = g + coupled_wd * *p;
                    *p -= decay_factor * *p;
                    moments(g, m, v);
                    *v_max = v_max.max(*v);
                    *p -= alpha * *m / (v_max.sqrt() + eps);
                }),
                None => zip.for_each(|p, &g, m, v| plain(p, g, m, v)),
            }
        }
        Ok(())
    }
}
