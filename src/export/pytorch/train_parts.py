EPS = 1e-7  # Keras's epsilon in the losses


# ---- the learning rate: modelc's `runtime::schedule` (chain, plateau) ----------------------

def link_lr(link, s, spe):
    """One link's rate `s` steps after it starts (f64, as modelc computes it)."""
    lr0, kind = LR, link["kind"]
    if kind == "step":
        return lr0 * link["factor"] ** (s // max(link["every"] * spe, 1))
    if kind == "exponential":
        return lr0 * link["rate"] ** (s / max(link["every"] * spe, 1))
    if kind == "cosine":
        total = max(link["decay"] * spe, 1)
        alpha = min(max(link["min_lr"] / lr0, 0.0), 1.0)
        cosine = 0.5 * (1.0 + math.cos(math.pi * (min(s, total) / total)))
        return lr0 * ((1.0 - alpha) * cosine + alpha)
    warm = max(link["epochs"] * spe, 1)  # warmup: linear from 0 over its epochs
    return lr0 * s / warm if s < warm else lr0


def lr_at(step, spe, plateau):
    """The rate of `step` (from 0), rounded to f32 as modelc's `Chain::lr_at`: each link runs
    for its epochs, the last to the end of the run; `plateau` is the rule's state."""
    spe = max(spe, 1)
    start = 0
    for i, link in enumerate(SCHEDULE):
        local = max(step - start, 0)
        if link["epochs"] is not None and i < len(SCHEDULE) - 1:
            n = link["epochs"] * spe
            if local >= n:
                start += n
                continue
        if link["kind"] == "plateau":
            lr = plateau["lr"] if plateau is not None else LR
        else:
            lr = link_lr(link, local, spe)
        return float(np.float32(lr))
    return float(np.float32(LR))


def plateau_link():
    """The reduce_on_plateau link and the epoch it starts at, or (None, 0)."""
    start = 0
    for link in SCHEDULE:
        if link["kind"] == "plateau":
            return link, start
        start += link["epochs"] or 0
    return None, 0


def plateau_start():
    link, _ = plateau_link()
    return None if link is None else {"lr": LR, "best": None, "wait": 0, "cooldown": 0}


def plateau_after_epoch(state, record, steps_done, spe):
    """modelc's `fit::plateau::after_epoch` and Keras's ReduceLROnPlateau rule: the epoch just
    finished updates the state when the rule's link was active in it."""
    link, start = plateau_link()
    if link is None or state is None or steps_done <= start * max(spe, 1):
        return
    value = record.get(link["monitor"])
    if value is None:
        return
    if state["cooldown"] > 0:
        state["cooldown"] -= 1
        state["wait"] = 0
    best = state["best"]
    if best is None:
        better = not math.isnan(value)
    elif link["mode"] == "max":
        better = value > best + link["min_delta"]
    else:
        better = value < best - link["min_delta"]
    if better:
        state["best"], state["wait"] = value, 0
        return
    if state["cooldown"] > 0:
        return
    state["wait"] += 1
    if state["wait"] < link["patience"] or state["lr"] <= link["min_lr"]:
        return
    state["lr"] = max(state["lr"] * link["factor"], link["min_lr"])
    state["cooldown"], state["wait"] = link["cooldown"], 0


# ---- metrics: modelc's `runtime::metrics`, epoch totals reduced over the processes ----------

def true_classes(y, t):
    """The true class of each row of a multi-class output: the label, or the target's argmax."""
    if LOSS == "sparse_categorical_crossentropy":
        return t.reshape(-1).long()
    return first_argmax(t.reshape(-1, y.shape[-1]))


def first_argmax(rows):
    """The first maximum of each row; NaN never wins (a row of NaN is class 0)."""
    rows = torch.nan_to_num(rows.float(), nan=-math.inf)
    best = rows.max(-1, keepdim=True).values
    first = (rows == best).float().argmax(-1)
    return torch.where(torch.isinf(best.squeeze(-1)) & (best.squeeze(-1) < 0),
                       torch.zeros_like(first), first)


class Metric:
    """One metric's epoch totals: a mean (sum, count), confusion counts, or the scores (auc)."""

    def __init__(self, name):
        self.name = name
        self.kind = ("confusion" if name in ("precision", "recall", "f1")
                     else "scores" if name == "auc" else "mean")
        self.sum, self.count = 0.0, 0
        self.matrix = None  # int64 [classes, classes], rows the true class
        self.scores, self.truth = [], []

    def update(self, y, t):
        y, t = y.detach().float().cpu(), t.detach().cpu()
        if self.kind == "mean":
            s, c = metric_sums(self.name, y, t)
            self.sum += float(s)
            self.count += c
        elif self.kind == "confusion":
            if BINARY:
                truth, pred, classes = (t.reshape(-1) != 0).long(), (y.reshape(-1) > THRESHOLD).long(), 2
            else:
                classes = y.shape[-1]
                truth, pred = true_classes(y, t), first_argmax(y.reshape(-1, classes))
            counts = torch.bincount(truth * classes + pred, minlength=classes * classes)
            m = counts.reshape(classes, classes)
            self.matrix = m if self.matrix is None else self.matrix + m
        elif BINARY:
            self.scores.append(y.reshape(-1))
            self.truth.append(t.reshape(-1) != 0)
        else:
            rows = y.reshape(-1, y.shape[-1])
            if FROM_LOGITS:  # softmax in f64, rounded, as modelc's auc
                rows = torch.softmax(rows.double(), dim=-1).float()
            self.scores.append(rows)
            self.truth.append(true_classes(y, t))

    def result(self):
        """The metric over every process's entries (call on every process)."""
        if self.kind == "mean":
            tot = all_sum(torch.tensor([self.sum, float(self.count)], dtype=torch.float64))
            return float(np.float32(tot[0] / tot[1])) if tot[1] > 0 else float("nan")
        if self.kind == "confusion":
            m = all_sum(self.matrix.clone()).double()
            per_class = [class_scores(m, c) for c in range(m.shape[0])]
            pick = {"precision": 0, "recall": 1, "f1": 2}[self.name]
            if BINARY:
                return float(np.float32(per_class[1][pick]))
            return float(np.float32(sum(s[pick] for s in per_class) / len(per_class)))
        scores, truth = torch.cat(self.scores), torch.cat(self.truth)
        if dist.is_initialized():
            parts = [None] * dist.get_world_size()
            dist.all_gather_object(parts, (scores, truth))
            scores, truth = torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])
        if BINARY:
            a = roc_auc(scores, truth)
            return float(np.float32(0.0 if a is None else a))
        aucs = [roc_auc(scores[:, c], truth == c) for c in range(scores.shape[1])]
        aucs = [a for a in aucs if a is not None]
        return float(np.float32(sum(aucs) / len(aucs) if aucs else 0.0))


def class_scores(m, c):
    """Precision, recall and f1 of class `c`; a ratio with a zero denominator is 0."""
    tp, predicted, support = float(m[c, c]), float(m[:, c].sum()), float(m[c, :].sum())
    ratio = lambda a, b: a / b if b else 0.0  # noqa: E731
    return ratio(tp, predicted), ratio(tp, support), ratio(2 * tp, predicted + support)


def roc_auc(scores, positive):
    """The exact ROC AUC, equal scores one step of the curve (ties count one half); None when
    there are no positives or no negatives."""
    pos = int(positive.sum())
    neg = len(positive) - pos
    if pos == 0 or neg == 0:
        return None
    values, group = torch.unique(scores.double(), sorted=True, return_inverse=True)
    pos_in = torch.zeros(len(values), dtype=torch.float64).index_add_(0, group, positive.double())
    neg_in = torch.zeros(len(values), dtype=torch.float64).index_add_(0, group, (~positive).double())
    pos_in, neg_in = pos_in.flip(0), neg_in.flip(0)  # decreasing scores
    above = torch.cumsum(pos_in, 0) - pos_in
    area = float((neg_in * (above + pos_in / 2.0)).sum())
    return area / (pos * neg)


def metric_sums(name, y, t):
    """A mean metric's sum over the batch's entries, and the entry count."""
    if name == "accuracy":
        if LOSS == "sparse_categorical_crossentropy":
            hit = first_argmax(y) == t.reshape(y.shape[:-1]).long()
        elif LOSS == "categorical_crossentropy":
            hit = first_argmax(y) == first_argmax(t)
        else:
            hit = (y > THRESHOLD).float() == t
        return hit.double().sum(), hit.numel()
    if name == "top_k_accuracy":  # a hit when fewer than k classes score strictly more
        rows = y.reshape(-1, y.shape[-1])
        truth = true_classes(y, t)
        own = rows.gather(1, truth.reshape(-1, 1))
        hit = ~torch.isnan(own.squeeze(1)) & ((rows > own).sum(1) < TOP_K)
        return hit.double().sum(), hit.numel()
    if name == "mae":
        return (y.double() - t.double()).abs().sum(), y.numel()
    return ((y.double() - t.double()) ** 2).sum(), y.numel()
