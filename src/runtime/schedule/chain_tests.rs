//! Chains against rates computed by hand, one step per epoch unless said otherwise.

#![allow(clippy::float_cmp)] // rates that are exact in f32 are compared exactly

use super::*;
use crate::runtime::schedule::Decay;

fn assert_rates(chain: &Chain, expected: &[f64]) {
    for (step, &want) in expected.iter().enumerate() {
        let got = f64::from(chain.lr_at(step as u64, None));
        assert!(
            (got - want).abs() <= 1e-7 * want.abs().max(1e-3),
            "step {step}: {got} vs {want}"
        );
    }
}

fn warmup(lr: f64, steps: u64) -> Link {
    Link::Fixed {
        schedule: Schedule::constant(lr)
            .unwrap()
            .with_warmup(super::super::Warmup {
                steps,
                start_lr: 0.0,
            })
            .unwrap(),
        steps: Some(steps),
    }
}

fn cosine(lr: f64, steps: u64, alpha: f64) -> Link {
    Link::Fixed {
        schedule: Schedule::new(
            lr,
            Decay::Cosine {
                decay_steps: steps,
                alpha,
            },
        )
        .unwrap(),
        steps: Some(steps),
    }
}

fn step(lr: f64, every: u64, gamma: f64) -> Link {
    Link::Fixed {
        schedule: Schedule::step_every_epochs(lr, every, 1, gamma).unwrap(),
        steps: None,
    }
}

#[test]
fn warmup_then_cosine_ramps_up_then_decays_from_the_full_rate() {
    // warmup(epochs: 2) |> cosine(epochs: 4, min_lr: 0.1) at lr 1: the ramp 0, 1/2; then
    // 0.1 + 0.9 * 0.5 * (1 + cos(pi * k / 4)) for k = 0..4, then min_lr for good.
    let chain = Chain::new(vec![warmup(1.0, 2), cosine(1.0, 4, 0.1)]).unwrap();
    let c = |k: f64| 0.1 + 0.9 * 0.5 * (1.0 + (std::f64::consts::PI * k / 4.0).cos());
    assert_rates(
        &chain,
        &[0.0, 0.5, 1.0, c(1.0), c(2.0), c(3.0), 0.1, 0.1, 0.1],
    );
    // c(1) = 0.1 + 0.45 * (1 + 0.70710678) = 0.868198...; c(2) = 0.55; c(3) = 0.231801...
    assert_rates(&chain, &[0.0, 0.5, 1.0, 0.868_198_052, 0.55, 0.231_801_948]);
}

#[test]
fn warmup_then_step_counts_the_steps_period_from_its_own_start() {
    // warmup(epochs: 3) |> step(every: 2, factor: 0.5) at lr 0.3.
    let chain = Chain::new(vec![warmup(0.3, 3), step(0.3, 2, 0.5)]).unwrap();
    assert_rates(
        &chain,
        &[0.0, 0.1, 0.2, 0.3, 0.3, 0.15, 0.15, 0.075, 0.075, 0.0375],
    );
}

#[test]
fn three_links_and_several_steps_per_epoch() {
    // warmup(epochs: 1) |> cosine(epochs: 2, min_lr: 0) |> step(every: 1, factor: 0.1), lr 2,
    // 2 steps per epoch: warm-up steps 0-1, cosine steps 2-5 (4 steps), step from step 6.
    let spe = 2;
    let chain = Chain::new(vec![
        warmup(2.0, spe),
        cosine(2.0, 2 * spe, 0.0),
        Link::Fixed {
            schedule: Schedule::step_every_epochs(2.0, 1, spe, 0.1).unwrap(),
            steps: None,
        },
    ])
    .unwrap();
    let c = |k: f64| 2.0 * 0.5 * (1.0 + (std::f64::consts::PI * k / 4.0).cos());
    assert_rates(
        &chain,
        &[
            0.0,
            1.0,
            2.0,
            c(1.0),
            c(2.0),
            c(3.0),
            2.0,
            2.0,
            0.2,
            0.2,
            0.02,
        ],
    );
    // A cosine restarted after a cosine: warm restarts.
    let restarts = Chain::new(vec![cosine(1.0, 2, 0.0), cosine(1.0, 2, 0.0)]).unwrap();
    assert_rates(&restarts, &[1.0, 0.5, 1.0, 0.5, 0.0, 0.0]);
}

#[test]
fn the_plateau_link_runs_at_its_state_rate_after_the_links_before_it() {
    let rule = Plateau {
        initial_lr: 0.4,
        factor: 0.5,
        patience: 1,
        min_delta: 0.0,
        min_lr: 0.0,
        cooldown: 0,
        maximize: false,
    };
    let chain = Chain::new(vec![warmup(0.4, 2), Link::Plateau(rule)]).unwrap();
    assert_eq!(chain.plateau().map(|(_, start)| start), Some(2));
    let state = PlateauState {
        lr: 0.1,
        best: Some(1.0),
        wait: 0,
        cooldown: 0,
    };
    assert_eq!(chain.lr_at(1, Some(&state)), 0.2_f32);
    assert_eq!(chain.lr_at(2, Some(&state)), 0.1_f32);
    assert_eq!(chain.lr_at(2, None), 0.4_f32);
}

#[test]
fn an_open_ended_link_before_another_is_refused() {
    let err = Chain::new(vec![step(0.1, 1, 0.5), warmup(0.1, 2)]).unwrap_err();
    assert_eq!(err.name, "schedule");
    assert_eq!(Chain::new(Vec::new()).unwrap_err().name, "schedule");
}
