"""Kaldi nnet1's "newbob" learning-rate schedule (steps/nnet/train_scheduler.sh).

After each epoch the cross-validation loss decides:
  * accept the epoch's model if the CV loss went down (or during the first ``min_iters`` /
    ``keep_lr_iters`` epochs), else reject it and go on from the best model so far;
  * relative improvement r = (best_before - best_after) / best_before; once r < start_halving_impr
    the learning rate is multiplied by ``halving_factor`` after every epoch from then on;
  * while halving, stop when r < end_halving_impr (or after ``max_iters`` epochs).
"""
from dataclasses import asdict, dataclass


@dataclass
class Newbob:
    learn_rate: float
    start_halving_impr: float = 0.01
    end_halving_impr: float = 0.001
    halving_factor: float = 0.5
    max_iters: int = 20
    min_iters: int = 0
    keep_lr_iters: int = 0
    best_loss: float = float("inf")
    best_epoch: int = 0
    epoch: int = 0
    halving: bool = False
    finished: bool = False
    converged: bool = False   # finished by the halving rule (not by max_iters)

    def start(self, initial_cv_loss):
        """Record the CV loss of the initial model (train_scheduler's 'CROSSVAL PRERUN')."""
        self.best_loss = initial_cv_loss

    def step(self, cv_loss):
        """Take the CV loss of the epoch just trained; return True if its model is accepted."""
        self.epoch += 1
        loss_prev = self.best_loss
        accepted = cv_loss < loss_prev or self.epoch <= max(self.keep_lr_iters, self.min_iters)
        if accepted:
            self.best_loss, self.best_epoch = cv_loss, self.epoch
        if self.epoch >= self.max_iters:
            self.finished = True
        if self.epoch <= self.keep_lr_iters:
            return accepted
        rel_impr = (loss_prev - self.best_loss) / loss_prev if loss_prev not in (0.0, float("inf")) else 1.0
        if self.halving and rel_impr < self.end_halving_impr and self.epoch > self.min_iters:
            self.finished = self.converged = True
            return accepted
        if rel_impr < self.start_halving_impr:
            self.halving = True
        if self.halving:
            self.learn_rate *= self.halving_factor
        return accepted

    def state_dict(self):
        return asdict(self)

    def load_state_dict(self, state):
        state = {"converged": state.get("finished", False), **state}  # older states: finished = converged
        for k, v in state.items():
            setattr(self, k, v)

    def set_max_iters(self, max_iters):
        """Change the epoch limit of a resumed schedule: a run stopped by the old limit goes on
        (epoch k is the same whatever the limit), one past the new limit stops."""
        self.max_iters = max_iters
        self.finished = self.converged or self.epoch >= max_iters
