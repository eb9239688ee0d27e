def parse_args():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--epochs", type=int, default=EPOCHS)
    p.add_argument("--out", default="run", help="where weights.safetensors, metrics.csv and the checkpoint go")
    p.add_argument("--data-root", default=None, help="the folder the spec's data paths are relative to")
    p.add_argument("--device", choices=["cpu", "cuda"], default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--init", default=INIT, help="start from these modelc weights (safetensors)")
    p.add_argument("--fresh", action="store_true", help="ignore OUT/checkpoint.pt")
    p.add_argument("--threads", type=int, default=0, help="torch threads per process (0: torch's default)")
    p.add_argument("--evaluate", choices=["train", "validation", "test"], default=None,
                   help="print the loss and metrics of the --init weights on a split (JSON), no training")
    return p.parse_args()


def entry_losses(y, t):
    """The train block's loss per entry (per row for the categorical ones), Keras's definition."""
    if LOSS == "mse":
        return (y - t) ** 2
    if LOSS == "mae":
        return (y - t).abs()
    if LOSS == "huber":
        d = (y - t).abs()
        return torch.where(d <= DELTA, 0.5 * d * d, DELTA * (d - 0.5 * DELTA))
    if LOSS == "log_cosh":
        d = y - t
        return d + F.softplus(-2.0 * d) - math.log(2.0)
    if LOSS == "binary_crossentropy":
        t = t * (1.0 - LABEL_SMOOTHING) + 0.5 * LABEL_SMOOTHING
        if FROM_LOGITS:
            return F.binary_cross_entropy_with_logits(y, t, reduction="none")
        p = y.clamp(EPS, 1.0 - EPS)
        return -(t * p.log() + (1.0 - t) * (1.0 - p).log())
    if LOSS == "categorical_crossentropy":
        t = t * (1.0 - LABEL_SMOOTHING) + LABEL_SMOOTHING / y.shape[-1]
        if FROM_LOGITS:
            return -(t * F.log_softmax(y, dim=-1)).sum(-1)
        p = (y / y.sum(-1, keepdim=True)).clamp(EPS, 1.0 - EPS)
        return -(t * p.log()).sum(-1)
    # sparse_categorical_crossentropy: from probabilities, the log of the clipped ones is fed
    # to a softmax cross-entropy, as Keras does.
    t = t.reshape(y.shape[:-1]).long()
    x = y if FROM_LOGITS else y.clamp(EPS, 1.0 - EPS).log()
    return F.cross_entropy(x.reshape(-1, y.shape[-1]), t.reshape(-1), reduction="none").reshape(t.shape)


def loss_fn(y, t, weights=None):
    """The mean loss over the batch's entries; with per-sample `weights` (class_weight) modelc's
    `sum_i w_i l_i / n`, `l_i` the mean over sample i's entries."""
    per = entry_losses(y, t)
    if weights is None:
        return per.mean()
    per_sample = per.reshape(per.shape[0], -1).mean(1)
    return (weights * per_sample).sum() / per.shape[0]


def sample_classes(t):
    """Each sample's class as class_weight reads it: the label; the argmax of a target row; for
    one target per sample, 1 when it is at least 0.5 (modelc's `fit::class_weight`)."""
    if not torch.is_floating_point(t):
        return t.reshape(-1).long()
    rows = t.reshape(t.shape[0], -1)
    if rows.shape[1] <= 1:
        return (rows.reshape(-1) >= 0.5).long()
    return first_argmax(rows)


def class_weights(train_y):
    """One weight per class: CLASS_WEIGHT as given, or scikit-learn's `balanced`
    n_samples / (n_present_classes * count_c) over the training split (1 for an absent class)."""
    if CLASS_WEIGHT is None:
        return None
    if CLASS_WEIGHT != "balanced":
        return torch.tensor(CLASS_WEIGHT, dtype=torch.float32)
    counts = torch.bincount(sample_classes(torch.as_tensor(train_y))).double()
    present, samples = float((counts > 0).sum()), float(counts.sum())
    w = torch.where(counts > 0, samples / (present * counts.clamp(min=1.0)), torch.ones_like(counts))
    return w.float()


def sample_weights(per_class, t):
    """The weight of each sample of a batch, from its unsmoothed targets."""
    classes = sample_classes(t)
    if int(classes.min()) < 0 or int(classes.max()) >= len(per_class):
        raise ValueError(f"a sample's class has no weight: class_weight covers classes 0..{len(per_class)}")
    return per_class.to(t.device)[classes]


class KerasAdam(torch.optim.Optimizer):
    """modelc's (Keras's) Adam: m += (1-b1)(g-m), v += (1-b2)(g²-v),
    p -= lr·sqrt(1-b2^t)/(1-b1^t) · m/(sqrt(v)+eps); weight decay as L2 (adam) or decoupled
    p -= lr·wd·p (adamw). (torch.optim.Adam adds eps after the bias correction instead.)"""

    def __init__(self, params, lr, beta1, beta2, epsilon, weight_decay, decoupled):
        super().__init__(params, {"lr": lr, "beta1": beta1, "beta2": beta2, "eps": epsilon,
                                  "wd": weight_decay, "decoupled": decoupled})

    @torch.no_grad()
    def step(self):
        for group in self.param_groups:
            lr, b1, b2, eps, wd = (group[k] for k in ("lr", "beta1", "beta2", "eps", "wd"))
            for p in group["params"]:
                if p.grad is None:
                    continue
                st = self.state[p]
                if not st:
                    st.update(t=0, m=torch.zeros_like(p), v=torch.zeros_like(p))
                st["t"] += 1
                alpha = lr * math.sqrt(1.0 - b2 ** st["t"]) / (1.0 - b1 ** st["t"])
                g = p.grad if group["decoupled"] or wd == 0 else p.grad + wd * p
                if group["decoupled"] and wd:
                    p.sub_(lr * wd * p)
                st["m"].add_((g - st["m"]) * (1.0 - b1))
                st["v"].add_((g * g - st["v"]) * (1.0 - b2))
                p.sub_(alpha * st["m"] / (st["v"].sqrt() + eps))


class KerasRMSprop(torch.optim.Optimizer):
    """modelc's (Keras's) RMSprop: v = rho·v + (1-rho)·g², p -= lr·g/sqrt(v + eps), centered
    subtracting the squared mean gradient, momentum on the increment; L2 weight decay."""

    def __init__(self, params, lr, rho, epsilon, momentum, centered, weight_decay):
        super().__init__(params, {"lr": lr, "rho": rho, "eps": epsilon, "mu": momentum,
                                  "centered": centered, "wd": weight_decay})

    @torch.no_grad()
    def step(self):
        for group in self.param_groups:
            lr, rho, eps, mu, wd = (group[k] for k in ("lr", "rho", "eps", "mu", "wd"))
            for p in group["params"]:
                if p.grad is None:
                    continue
                st = self.state[p]
                if not st:
                    st.update(v=torch.zeros_like(p), mg=torch.zeros_like(p), b=torch.zeros_like(p))
                g = p.grad + wd * p if wd else p.grad
                st["v"].mul_(rho).add_((1.0 - rho) * g * g)
                d = st["v"]
                if group["centered"]:
                    st["mg"].mul_(rho).add_((1.0 - rho) * g)
                    d = (st["v"] - st["mg"] * st["mg"]).clamp(min=0.0)
                inc = lr * g / (d + eps).sqrt()
                if mu > 0:
                    st["b"].mul_(mu).add_(inc)
                    inc = st["b"]
                p.sub_(inc)


def make_optimizer(params):
    kind, o = OPTIMIZER
    if kind in ("gd", "sgd"):
        return torch.optim.SGD(params, lr=LR, momentum=o.get("momentum", 0.0),
                               nesterov=o.get("nesterov", False), weight_decay=WEIGHT_DECAY)
    if kind in ("adam", "adamw"):
        return KerasAdam(params, LR, o["beta1"], o["beta2"], o["epsilon"], WEIGHT_DECAY,
                         decoupled=kind == "adamw")
    return KerasRMSprop(params, LR, o["rho"], o["epsilon"], o["momentum"], o["centered"],
                        WEIGHT_DECAY)


def clip(params):
    if CLIPNORM is not None:
        torch.nn.utils.clip_grad_norm_(params, CLIPNORM)
    if CLIPVALUE is not None:
        torch.nn.utils.clip_grad_value_(params, CLIPVALUE)


def f32_text(v):
    """An f32 as Rust prints it (shortest digits, no exponent), for metrics.csv's lr column."""
    return np.format_float_positional(np.float32(v), trim="-")


def write_metrics(path, history):
    """metrics.csv in modelc's columns: epoch,loss,<metrics>,val_loss,<val_...>,lr,samples_per_sec."""
    header = ["epoch", "loss"] + METRICS
    if history and history[0]["val_loss"] is not None:
        header += ["val_loss"] + [f"val_{m}" for m in METRICS]
    header += ["lr", "samples_per_sec"]
    lines = [",".join(header)]
    for r in history:
        row = [str(r["epoch"]), f"{r['loss']:.6f}"] + [f"{r[m]:.6f}" for m in METRICS]
        if r["val_loss"] is not None:
            row += [f"{r['val_loss']:.6f}"] + [f"{r['val_' + m]:.6f}" for m in METRICS]
        row += [f32_text(r["lr"]), f"{r['samples_per_sec']:.1f}"]
        lines.append(",".join(row))
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write("\n".join(lines) + "\n")
    os.replace(tmp, path)


def run_epoch(model, loader, device, optimizer=None, step=0, spe=1, plateau=None, weights=None):
    """One pass; returns (the summed loss, its sample count, the metrics, steps done, last lr)."""
    sums = torch.zeros(2, dtype=torch.float64)
    metrics = [Metric(m) for m in METRICS]
    lr = lr_at(step, spe, plateau)
    for batch in loader:
        x, t = batch[0].to(device, non_blocking=True), batch[1].to(device, non_blocking=True)
        if optimizer is not None:
            lr = lr_at(step, spe, plateau)
            for g in optimizer.param_groups:
                g["lr"] = lr
            optimizer.zero_grad(set_to_none=True)
            y = model(x)
            loss = loss_fn(y, t, None if weights is None else sample_weights(weights, t))
            loss.backward()
            clip([p for p in model.parameters() if p.grad is not None])
            optimizer.step()
            step += 1
        else:
            with torch.no_grad():
                y = model(x)
                loss = loss_fn(y, t)
        n = x.shape[0]
        sums[0] += float(loss.detach()) * n
        sums[1] += n
        with torch.no_grad():
            for m in metrics:
                m.update(y, t)
    return sums, metrics, step, lr


def all_sum(t):
    if dist.is_initialized():
        dist.all_reduce(t)
    return t


def improved(value, best):
    if best is None:
        return True
    mode, delta = EARLY_STOPPING["mode"], EARLY_STOPPING["min_delta"]
    return value < best - delta if mode == "min" else value > best + delta


def measure(model, split, device, per_process, rank, world):
    """The unweighted loss and the metrics of `split` (sharded over the processes), as a record."""
    shard = torch.utils.data.Subset(split, range(rank, len(split), world))
    loader = DataLoader(shard, batch_size=max(per_process, 1), shuffle=False)
    model.eval()
    sums, metrics, _, _ = run_epoch(model, loader, device)
    sums = all_sum(sums)
    record = {"loss": float(sums[0] / sums[1])}
    for m in metrics:
        record[m.name] = m.result()
    return record


def main():
    args = parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    distributed = "WORLD_SIZE" in os.environ
    if distributed:
        dist.init_process_group("nccl" if args.device == "cuda" else "gloo")
    rank = dist.get_rank() if distributed else 0
    world = dist.get_world_size() if distributed else 1
    if args.device == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
        torch.cuda.set_device(device)
    else:
        device = torch.device("cpu")
    torch.manual_seed(SEED)
    splits = data.load_splits(args.data_root)
    train_set, val_set = splits["train"], splits["validation"]
    model = Model()
    model.keras_init(SEED)
    if args.init:
        model.load_weights(args.init)
    model.to(device)
    per_process = -(-(data.BATCH or len(train_set)) // world)
    if args.evaluate:
        split = splits[args.evaluate]
        split.augment_steps = []
        record = measure(model, split, device, per_process, rank, world)
        if rank == 0:
            print(json.dumps(record), flush=True)
        if distributed:
            dist.destroy_process_group()
        return
    sampler = data.EpochSampler(train_set, data.SHUFFLE_SEED, num_replicas=world, rank=rank)
    loader = DataLoader(train_set, batch_size=per_process, sampler=sampler,
                        drop_last=data.DROP_REMAINDER, num_workers=0)
    weights = class_weights(train_set.y)
    ddp = DDP(model, device_ids=[device.index] if args.device == "cuda" else None) if distributed else model
    optimizer = make_optimizer([p for p in ddp.parameters() if p.requires_grad])
    os.makedirs(args.out, exist_ok=True)
    ckpt_path = os.path.join(args.out, "checkpoint.pt")
    history, start, step, best, best_state, waited = [], 0, 0, None, None, 0
    plateau = plateau_start()
    if os.path.exists(ckpt_path) and not args.fresh:
        ck = torch.load(ckpt_path, map_location=device, weights_only=False)
        model.load_state_dict(ck["model"])
        optimizer.load_state_dict(ck["optimizer"])
        history, start, step = ck["history"], ck["epoch"], ck["step"]
        best, best_state, waited = ck["best"], ck["best_state"], ck["waited"]
        plateau = ck.get("plateau", plateau)
        if rank == 0:
            print(f"resuming after epoch {start} from {ckpt_path}", flush=True)
    steps_per_epoch = len(loader)
    for epoch in range(start, args.epochs):
        sampler.set_epoch(epoch)
        train_set.set_epoch(epoch)
        ddp.train()
        began = time.perf_counter()
        sums, metrics, step, lr = run_epoch(ddp, loader, device, optimizer, step, steps_per_epoch,
                                            plateau, weights)
        seconds = time.perf_counter() - began
        sums = all_sum(sums)
        record = {"epoch": epoch + 1, "lr": lr, "val_loss": None,
                  "samples_per_sec": float(sums[1]) / max(seconds, 1e-9)}
        record["loss"] = float(sums[0] / sums[1])
        for m in metrics:
            record[m.name] = m.result()
        if val_set is not None and len(val_set):
            measured = measure(ddp, val_set, device, per_process, rank, world)
            for k, v in measured.items():
                record["val_" + k] = v
        history.append(record)
        plateau_after_epoch(plateau, record, step, steps_per_epoch)
        stop = False
        if EARLY_STOPPING is not None:
            value = record[EARLY_STOPPING["monitor"]]
            if improved(value, best):
                best, waited = value, 0
                best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            else:
                waited += 1
                stop = waited >= EARLY_STOPPING["patience"]
        if rank == 0:
            shown = " ".join(f"{k}={record[k]:.4f}" for k in ["loss"] + METRICS)
            if record["val_loss"] is not None:
                shown += " " + " ".join(f"val_{k}={record['val_' + k]:.4f}" for k in ["loss"] + METRICS)
            print(f"epoch {epoch + 1}/{args.epochs} {shown} "
                  f"({record['samples_per_sec'] / world:.1f} samples/s per process, {world} processes)",
                  flush=True)
            write_metrics(os.path.join(args.out, "metrics.csv"), history)
            if (epoch + 1) % CHECKPOINT_EVERY == 0 or stop or epoch + 1 == args.epochs:
                torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                            "history": history, "epoch": epoch + 1, "step": step, "best": best,
                            "best_state": best_state, "waited": waited, "plateau": plateau},
                           ckpt_path + ".tmp")
                os.replace(ckpt_path + ".tmp", ckpt_path)
        if stop:
            break
    if EARLY_STOPPING is not None and EARLY_STOPPING["restore_best"] and best_state is not None:
        model.load_state_dict(best_state)
    if rank == 0:
        path = os.path.join(args.out, "weights.safetensors")
        model.save_weights(path)
        print(f"wrote {path} and {os.path.join(args.out, 'metrics.csv')}", flush=True)
    if distributed:
        dist.destroy_process_group()


if __name__ == "__main__":
    main()
