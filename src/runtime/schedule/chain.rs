//! Schedules in sequence (`warmup(epochs: 2) |> cosine(epochs: 20)`), as PyTorch's
//! `SequentialLR`: each link runs for its duration, then the next starts with its own step
//! counter at 0. Every link works from the optimizer's rate (a warm-up ramps up to it, a decay
//! starts from it); the last link runs to the end of the run, past its duration if it has one
//! (a cosine then stays at its `min_lr`, a warm-up at the full rate).
//!
//! Input: the links, each a step [`Schedule`] with its length in steps, or the
//! [`Plateau`] rule, whose rate lives in a [`PlateauState`] the training loop updates once an
//! epoch. Output: `lr_at(step, plateau)`. Invariant: only the last link may be open-ended
//! ([`Chain::new`] refuses otherwise), so every step falls in exactly one link.

use super::plateau::{Plateau, PlateauState};
use super::Schedule;
use crate::runtime::optim::{check_count, invalid, InvalidHyperparameter};

/// One link of a chain.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Link {
    /// A step schedule, lasting `steps` steps (`None`: to the end of the run).
    Fixed {
        schedule: Schedule,
        steps: Option<u64>,
    },
    /// The rate of the plateau rule; lasts to the end of the run.
    Plateau(Plateau),
}

impl Link {
    fn steps(&self) -> Option<u64> {
        match self {
            Link::Fixed { steps, .. } => *steps,
            Link::Plateau(_) => None,
        }
    }
}

/// Schedules in sequence.
#[derive(Debug, Clone, PartialEq)]
pub struct Chain {
    links: Vec<Link>,
}

impl Chain {
    /// A validated chain: at least one link; every link but the last has a duration `>= 1`.
    pub fn new(links: Vec<Link>) -> Result<Self, InvalidHyperparameter> {
        if links.is_empty() {
            return Err(invalid("schedule", 0.0, "at least one schedule"));
        }
        let last = links.len() - 1;
        for (i, link) in links.iter().enumerate() {
            match (link.steps(), i == last) {
                (Some(n), _) => check_count("schedule_steps", n)?,
                (None, false) => {
                    return Err(invalid(
                        "schedule",
                        i as f64,
                        "a duration before the last link",
                    ))
                }
                (None, true) => {}
            }
            match link {
                Link::Fixed { schedule, .. } => schedule.validate()?,
                Link::Plateau(p) => p.validate()?,
            }
        }
        Ok(Self { links })
    }

    /// The plateau link, if any, and the step it starts at.
    pub fn plateau(&self) -> Option<(&Plateau, u64)> {
        let mut start = 0u64;
        for link in &self.links {
            if let Link::Plateau(p) = link {
                return Some((p, start));
            }
            start = start.saturating_add(link.steps().unwrap_or(0));
        }
        None
    }

    /// The rate of step `step` (from 0); `plateau` is the plateau rule's state, when the chain
    /// has one (its link runs at the initial rate without it).
    pub fn lr_at(&self, step: u64, plateau: Option<&PlateauState>) -> f32 {
        let mut start = 0u64;
        let last = self.links.len().saturating_sub(1);
        for (i, link) in self.links.iter().enumerate() {
            let local = step.saturating_sub(start);
            if let Some(n) = link.steps().filter(|_| i < last) {
                if local >= n {
                    start = start.saturating_add(n);
                    continue;
                }
            }
            return match link {
                Link::Fixed { schedule, .. } => schedule.lr_at(local),
                Link::Plateau(p) => plateau.map_or(p.initial_lr, |s| s.lr) as f32,
            };
        }
        0.0
    }
}

#[cfg(test)]
#[path = "chain_tests.rs"]
mod tests;
