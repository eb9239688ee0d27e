//! Access the training loop needs beyond a step: the last forward output (for training
//! metrics) and the step counter (which seeds dropout masks, so a resumed run continues them).

use ndarray::ArrayViewD;

use super::Trainer;

impl Trainer {
    /// The model output of the last forward pass (in a training step: before the update).
    pub fn last_output(&self) -> Option<ArrayViewD<'_, f32>> {
        self.output_view().ok()
    }

    /// Continues counting steps from `steps_done` (resuming from a checkpoint).
    pub fn resume_at(&mut self, steps_done: u64) {
        self.steps_done = steps_done;
    }
}
