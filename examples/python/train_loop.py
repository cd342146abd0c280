"""Fine-tune a small 1D CNN on a UCR data set and log everything to Tangent as it trains.

    python3 train_loop.py --url http://127.0.0.1:4000/graphql --epochs 20

The model is Tangent's built-in `cnn1d` (Conv1D 'same' + ReLU -> global average pooling -> Dense
head), so Tangent can load every logged checkpoint and compute the terms nobody logged (kNorm,
gNorm, ...). With PyTorch installed the whole network trains; without it (or with --no-torch) a
pure-Python loop trains the head on a fixed random convolution (the "head" fine-tuning mode), so
the example runs anywhere Python does. Each epoch logs a checkpoint with its weights and, for every
sample of both splits, the loss, whether the prediction is right, and the logits.

The last line printed is one JSON object: the ids of what was logged.
"""

import argparse
import json
import math
import os
import random
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from tangent_client import Tangent  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
UCR = os.path.normpath(os.path.join(HERE, "..", "..", "datasets", "ucr"))
# The one-layer cnn1d both trainers use: Conv1D(FILTERS, KERNEL, same, relu) -> GAP -> Dense.
FILTERS, KERNEL = 16, 9


def read_ucr(path):
    """A UCR/UEA .ts file: (class names, [(label index, series time-major as a flat list)], length, channels)."""
    classes, rows, length, channels = None, [], 0, 0
    in_data = False
    with open(path, encoding="utf-8") as handle:
        for raw in handle:
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            if not in_data:
                lower = line.lower()
                if lower.startswith("@classlabel"):
                    classes = line.split()[2:]
                elif lower.startswith("@data"):
                    in_data = True
                continue
            *dims, label = line.split(":")
            columns = [[float(v) for v in d.split(",")] for d in dims]
            channels, length = len(columns), len(columns[0])
            rows.append((classes.index(label.strip()), [columns[c][t] for t in range(length) for c in range(channels)]))
    return classes, rows, length, channels


def softmax_loss(logits, label):
    top = max(logits)
    exps = [math.exp(z - top) for z in logits]
    total = sum(exps)
    probs = [e / total for e in exps]
    return probs, -math.log(max(probs[label], 1e-30))


class PurePythonCnn:
    """cnn1d with one Conv1D layer: the convolution stays at its seeded initial weights, the head
    is trained by SGD on the cross-entropy (fine-tuning the head only)."""

    def __init__(self, length, channels, classes, filters=16, kernel=9, seed=0):
        rng = random.Random(seed)
        bound = math.sqrt(6.0 / (kernel * channels + kernel * filters))  # Glorot uniform, as tfjs
        self.kernel = [[[rng.uniform(-bound, bound) for _ in range(filters)] for _ in range(channels)] for _ in range(kernel)]  # [k][in][out]
        self.bias = [rng.uniform(-0.05, 0.05) for _ in range(filters)]
        hb = math.sqrt(6.0 / (filters + classes))
        self.head = [[rng.uniform(-hb, hb) for _ in range(classes)] for _ in range(filters)]  # [in][out]
        self.head_bias = [0.0] * classes
        self.length, self.channels, self.classes, self.filters, self.k = length, channels, classes, filters, kernel

    def features(self, x):
        """Global average of ReLU(conv(x)) with 'same' padding: one value per filter."""
        L, C, F, K = self.length, self.channels, self.filters, self.k
        left = (K - 1) // 2
        sums = [0.0] * F
        for t in range(L):
            acc = list(self.bias)
            for j in range(K):
                s = t + j - left
                if 0 <= s < L:
                    for c in range(C):
                        v = x[s * C + c]
                        w = self.kernel[j][c]
                        for f in range(F):
                            acc[f] += v * w[f]
            for f in range(F):
                if acc[f] > 0:
                    sums[f] += acc[f]
        return [s / L for s in sums]

    def logits(self, feats):
        return [self.head_bias[o] + sum(feats[i] * self.head[i][o] for i in range(self.filters)) for o in range(self.classes)]

    def step(self, batch, lr):
        grad_w = [[0.0] * self.classes for _ in range(self.filters)]
        grad_b = [0.0] * self.classes
        for feats, label in batch:
            probs, _ = softmax_loss(self.logits(feats), label)
            for o in range(self.classes):
                g = (probs[o] - (1.0 if o == label else 0.0)) / len(batch)  # G = pi - e_y
                grad_b[o] += g
                for i in range(self.filters):
                    grad_w[i][o] += g * feats[i]
        for i in range(self.filters):
            for o in range(self.classes):
                self.head[i][o] -= lr * grad_w[i][o]
        for o in range(self.classes):
            self.head_bias[o] -= lr * grad_b[o]

    fold = None  # (mean, sd) of the features the head was trained on, if standardised

    def weights(self):
        """(name, shape, values) in tfjs layout and in the order of cnn1d's weights; a feature
        standardisation is folded into the head: W' = W / sd, b' = b - (mean / sd) W."""
        K, C, F, V = self.k, self.channels, self.filters, self.classes
        mu, sd = self.fold or ([0.0] * F, [1.0] * F)
        head = [[self.head[i][o] / sd[i] for o in range(V)] for i in range(F)]
        bias = [self.head_bias[o] - sum(mu[i] * head[i][o] for i in range(F)) for o in range(V)]
        return [
            ("conv1/kernel", [K, C, F], [self.kernel[j][c][f] for j in range(K) for c in range(C) for f in range(F)]),
            ("conv1/bias", [F], list(self.bias)),
            ("head/kernel", [F, V], [head[i][o] for i in range(F) for o in range(V)]),
            ("head/bias", [V], bias),
        ]


def train_pure_python(tangent, run, xs, ys, train_count, epochs, lr, batch_size, length, channels, classes):
    model = PurePythonCnn(length, channels, classes, FILTERS, KERNEL)
    raw = [model.features(x) for x in xs]  # the convolution is frozen: its features are fixed
    # The head learns on standardised features (mean 0, variance 1 over the training split); the
    # scaling is folded into the stored head weights, so each checkpoint is exactly cnn1d.
    n = train_count
    mu = [sum(f[i] for f in raw[:n]) / n for i in range(FILTERS)]
    sd = [math.sqrt(sum((f[i] - mu[i]) ** 2 for f in raw[:n]) / n) or 1.0 for i in range(FILTERS)]
    feats = [[(f[i] - mu[i]) / sd[i] for i in range(FILTERS)] for f in raw]
    model.fold = (mu, sd)
    order = list(range(train_count))
    rng = random.Random(1)
    checkpoints, step = [], 0
    for epoch in range(1, epochs + 1):
        rng.shuffle(order)
        for start in range(0, train_count, batch_size):
            model.step([(feats[i], ys[i]) for i in order[start : start + batch_size]], lr)
            step += 1
        logits = [model.logits(f) for f in feats]
        checkpoints.append(log_epoch(tangent, run, step, epoch, lr, model.weights(), logits, ys))
    return checkpoints


def train_torch(tangent, run, xs, ys, train_count, epochs, lr, batch_size, length, channels, classes):
    import torch

    torch.manual_seed(0)
    filters, kernel = FILTERS, KERNEL
    conv = torch.nn.Conv1d(channels, filters, kernel, padding=(kernel - 1) // 2)
    head = torch.nn.Linear(filters, classes)
    params = list(conv.parameters()) + list(head.parameters())
    optimizer = torch.optim.Adam(params, lr=lr)
    # tfjs layout is time-major [n, length, channels]; torch's Conv1d wants [n, channels, length].
    x = torch.tensor(xs, dtype=torch.float32).view(len(xs), length, channels).permute(0, 2, 1)
    y = torch.tensor(ys)

    def forward(batch):
        return head(torch.relu(conv(batch)).mean(dim=2))

    checkpoints, step = [], 0
    for epoch in range(1, epochs + 1):
        perm = torch.randperm(train_count)
        for start in range(0, train_count, batch_size):
            idx = perm[start : start + batch_size]
            optimizer.zero_grad()
            torch.nn.functional.cross_entropy(forward(x[idx]), y[idx]).backward()
            optimizer.step()
            step += 1
        with torch.no_grad():
            logits = forward(x).tolist()
        weights = [
            ("conv1/kernel", [kernel, channels, filters], conv.weight.detach().permute(2, 1, 0).contiguous()),  # [out,in,k] -> [k,in,out]
            ("conv1/bias", [filters], conv.bias.detach()),
            ("head/kernel", [filters, classes], head.weight.detach().t().contiguous()),  # [out,in] -> [in,out]
            ("head/bias", [classes], head.bias.detach()),
        ]
        checkpoints.append(log_epoch(tangent, run, step, epoch, lr, weights, logits, ys))
    return checkpoints


def log_epoch(tangent, run, step, epoch, lr, weights, logits, ys):
    """One checkpoint and one metrics row per sample (both splits), in one columnar request."""
    checkpoint = tangent.create_checkpoint(run, step=step, epoch=epoch, learning_rate=lr, weights=weights)
    losses, correct = [], []
    for z, label in zip(logits, ys):
        _, loss = softmax_loss(z, label)
        losses.append(loss)
        correct.append(max(range(len(z)), key=lambda k: z[k]) == label)
    tangent.log_metrics(checkpoint, sample_indices=range(len(ys)), loss=losses, correct=correct, logits=logits)
    accuracy = sum(correct) / len(correct)
    print("epoch %d: step %d, mean loss %.4f, accuracy %.3f, checkpoint %s" % (epoch, step, sum(losses) / len(losses), accuracy, checkpoint), file=sys.stderr)
    return checkpoint


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--url", default="http://127.0.0.1:4000/graphql")
    parser.add_argument("--api-key", default=os.environ.get("TANGENT_API_KEY"))
    parser.add_argument("--train", default=os.path.join(UCR, "ItalyPowerDemand_TRAIN.ts"))
    parser.add_argument("--test", default=os.path.join(UCR, "ItalyPowerDemand_TEST.ts"))
    parser.add_argument("--name", default="python-example-%d" % int(time.time()))
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--lr", type=float, default=None)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--no-torch", action="store_true", help="use the pure-Python loop even when PyTorch is installed")
    args = parser.parse_args()

    use_torch = False
    if not args.no_torch:
        try:
            import torch  # noqa: F401

            use_torch = True
        except ImportError:
            pass

    classes, train, length, channels = read_ucr(args.train)
    _, test, _, _ = read_ucr(args.test)
    rows = train + test
    xs = [series for _, series in rows]
    ys = [label for label, _ in rows]
    tangent = Tangent(args.url, api_key=args.api_key)

    # The dataset: train samples first, then test, numbered 0..n-1 (the positions logged below).
    dataset = tangent.create_dataset(args.name, length=length, channels=channels, class_names=classes)
    tangent.add_samples(dataset, indices=range(len(rows)), labels=ys, series=xs, splits=["train"] * len(train) + ["test"] * len(test))
    model = tangent.create_model(
        args.name,
        architecture="cnn1d",
        config={"filters": [FILTERS], "kernelSizes": [KERNEL], "pool": 0, "dropout": 0, "seed": 0},
        input_length=length,
        channels=channels,
        num_classes=len(classes),
    )
    lr = args.lr or (1e-2 if use_torch else 0.5)
    run = tangent.create_run(
        args.name, model, dataset, learning_rate=lr, optimizer="adam" if use_torch else "sgd", epochs=args.epochs,
        batch_size=args.batch_size, seed=0, trainer="torch" if use_torch else "pure-python",
    )
    train_fn = train_torch if use_torch else train_pure_python
    try:
        checkpoints = train_fn(tangent, run, xs, ys, len(train), args.epochs, lr, args.batch_size, length, channels, len(classes))
    except BaseException:
        tangent.set_run_status(run, "FAILED")
        raise
    tangent.set_run_status(run, "COMPLETED")
    print(json.dumps({"datasetId": dataset, "modelId": model, "runId": run, "checkpoints": checkpoints, "samples": len(rows), "trainer": "torch" if use_torch else "pure-python"}))


if __name__ == "__main__":
    main()
