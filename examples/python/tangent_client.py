"""A small client for Tangent's GraphQL API, standard library only (urllib, json, base64, array).

Log a fine-tuning run from a training script: the dataset's samples, the run, a checkpoint per
epoch (weights in the TensorFlow.js layout Tangent stores), and per-sample metrics at each
checkpoint (loss, correct, logits, ...) as columns, which is what makes logging fast:

    from tangent_client import Tangent

    tangent = Tangent("http://127.0.0.1:4000/graphql")
    dataset = tangent.create_dataset("gunpoint", length=150, channels=1, class_names=["1", "2"])
    tangent.add_samples(dataset, indices=range(n), labels=labels, series=series)  # series: n x length x channels
    model = tangent.create_model("cnn", architecture="cnn1d", config={"filters": [8], "kernelSizes": [5]},
                                 input_length=150, channels=1, num_classes=2)
    run = tangent.create_run("first", model, dataset, learning_rate=1e-3, optimizer="adam", epochs=3)
    checkpoint = tangent.create_checkpoint(run, step=100, weights=[("conv1/kernel", [5, 1, 8], values), ...])
    tangent.log_metrics(checkpoint, sample_indices=range(n), loss=losses, correct=hits, logits=logits)

Numbers travel as base64 of little-endian float32 (or int32), a quarter of the size of JSON text
and far cheaper for the server to read. Large batches are split to the server's limits; each
request is one transaction, and sending one again is harmless, so requests that fail on the
network are retried.
"""

import base64
import json
import sys
import time
import urllib.error
import urllib.request
from array import array

__all__ = ["Tangent", "TangentError", "float_column", "int_column"]


class TangentError(Exception):
    """An error the server returned: `code` (e.g. BAD_USER_INPUT, CONFLICT), and for a bad row
    of a batch the `field` (e.g. input.loss[17]) and `row` it names."""

    def __init__(self, message, code=None, field=None, row=None, extensions=None):
        super().__init__(message)
        self.code = code
        self.field = field
        self.row = row
        self.extensions = extensions or {}


def _flatten(values):
    """A flat list from a list, a list of lists, or anything with .tolist() (numpy, torch)."""
    if hasattr(values, "detach"):  # a torch tensor
        values = values.detach().cpu()
    if hasattr(values, "tolist"):
        values = values.tolist()
    out = []
    stack = [iter(values)]
    while stack:
        for item in stack[-1]:
            if isinstance(item, (list, tuple, range)):
                stack.append(iter(item))
                break
            out.append(item)
        else:
            stack.pop()
    return out


def _little_endian(arr):
    if sys.byteorder == "big":
        arr.byteswap()
    return arr


def float_column(values):
    """base64 of little-endian float32, as Tangent's FloatColumn and FloatArray take them."""
    if isinstance(values, (bytes, bytearray)):
        return base64.b64encode(values).decode("ascii")
    return base64.b64encode(_little_endian(array("f", _flatten(values))).tobytes()).decode("ascii")


def int_column(values):
    """base64 of little-endian int32, as Tangent's IntColumn takes them."""
    return base64.b64encode(_little_endian(array("i", (int(v) for v in _flatten(values)))).tobytes()).decode("ascii")


class Tangent:
    """A connection to one Tangent server. Methods return ids as strings, as the API does."""

    def __init__(self, url="http://127.0.0.1:4000/graphql", api_key=None, timeout=300, retries=3):
        self.url = url
        self.api_key = api_key
        self.timeout = timeout
        self.retries = retries
        self._limits = None

    # -- transport -------------------------------------------------------------------------

    def query(self, query, variables=None, idempotent=False):
        """Sends one GraphQL operation and returns its `data`; raises TangentError on errors.
        Idempotent operations are sent again when the network fails (never on a GraphQL error)."""
        body = json.dumps({"query": query, "variables": variables or {}}).encode("utf-8")
        headers = {"content-type": "application/json"}
        if self.api_key:
            headers["authorization"] = "Bearer " + self.api_key
        attempts = self.retries + 1 if idempotent else 1
        for attempt in range(attempts):
            request = urllib.request.Request(self.url, data=body, headers=headers, method="POST")
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as response:
                    result = json.loads(response.read().decode("utf-8"))
                break
            except urllib.error.HTTPError as error:
                # GraphQL errors may come with a 4xx status; their body still says what went wrong.
                try:
                    result = json.loads(error.read().decode("utf-8"))
                    break
                except ValueError:
                    raise TangentError("HTTP %d from %s" % (error.code, self.url), code="HTTP_%d" % error.code)
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                if attempt + 1 == attempts:
                    raise
                time.sleep(0.2 * 2**attempt)
        errors = result.get("errors")
        if errors:
            first = errors[0]
            ext = first.get("extensions") or {}
            raise TangentError(first.get("message", "error"), ext.get("code"), ext.get("field"), ext.get("row"), ext)
        return result.get("data")

    def limits(self):
        """The server's bulk limits: {maxRows, maxBodyBytes}."""
        if self._limits is None:
            self._limits = self.query("{ ingestLimits { maxRows maxBodyBytes } }", idempotent=True)["ingestLimits"]
        return self._limits

    def _batch_rows(self, requested, bytes_per_row):
        limits = self.limits()
        by_bytes = max(1, int(min(limits["maxBodyBytes"] / 2, 16 * 1024 * 1024) / (bytes_per_row * 1.34 + 64)))
        return max(1, min(requested or limits["maxRows"], limits["maxRows"], by_bytes))

    # -- datasets and samples --------------------------------------------------------------

    def create_dataset(self, name, length, class_names, channels=1, description=None):
        data = self.query(
            "mutation($input: CreateDatasetInput!) { createDataset(input: $input) { id } }",
            {"input": {"name": name, "length": length, "channels": channels, "classNames": list(class_names), "description": description}},
        )
        return data["createDataset"]["id"]

    def find_dataset(self, name):
        """The id of the dataset with exactly this name, or None."""
        data = self.query(
            "query($q: String) { datasets(first: 100, filter: { nameContains: $q }) { nodes { id name } } }", {"q": name}, idempotent=True
        )
        for node in data["datasets"]["nodes"]:
            if node["name"] == name:
                return node["id"]
        return None

    def add_samples(self, dataset_id, indices, labels, series, split="train", splits=None, values_per_sample=None, batch_rows=None):
        """Adds samples in bulk: `series` holds each sample's length x channels values (time-major),
        one sample after another (flat, or one list per sample). Re-sending samples already stored
        identically is harmless. Returns the number added."""
        indices = [int(i) for i in _flatten(indices)]
        labels = [int(label) for label in _flatten(labels)]
        flat = _flatten(series)
        n = len(indices)
        per = values_per_sample or (len(flat) // n if n else 0)
        rows = self._batch_rows(batch_rows, per * 4 + 8)
        added = 0
        for start in range(0, n, rows):
            end = min(n, start + rows)
            columns = {
                "indices": int_column(indices[start:end]),
                "labels": int_column(labels[start:end]),
                "series": float_column(flat[start * per : end * per]),
            }
            if splits is not None:
                columns["splits"] = list(splits[start:end])
            else:
                columns["split"] = split
            data = self.query(
                "mutation($id: ID!, $input: SampleColumnsInput!) { addSamplesBulk(datasetId: $id, input: $input) { added } }",
                {"id": dataset_id, "input": columns},
                idempotent=True,
            )
            added += data["addSamplesBulk"]["added"]
        return added

    def import_ucr(self, paths, name=None):
        """Creates a dataset from UCR/UEA .ts files (X_TRAIN.ts, X_TEST.ts); returns its id."""
        files = []
        for path in paths:
            with open(path, encoding="utf-8") as handle:
                files.append({"text": handle.read(), "fileName": path.replace("\\", "/").rsplit("/", 1)[-1]})
        data = self.query("mutation($input: ImportUcrInput!) { importUcr(input: $input) { dataset { id } } }", {"input": {"name": name, "files": files}})
        return data["importUcr"]["dataset"]["id"]

    # -- models, runs, checkpoints ---------------------------------------------------------

    def create_model(self, name, input_length, num_classes, channels=1, architecture="cnn1d", config=None, topology=None):
        """A built-in architecture by name (BUILTIN), or a TensorFlow.js topology (TFJS_LAYERS)."""
        model = {
            "name": name,
            "format": "TFJS_LAYERS" if topology else "BUILTIN",
            "architecture": None if topology else architecture,
            "config": config or {},
            "topology": topology,
            "inputLength": input_length,
            "channels": channels,
            "numClasses": num_classes,
        }
        return self.query("mutation($input: CreateModelInput!) { createModel(input: $input) { id } }", {"input": model})["createModel"]["id"]

    def create_run(self, name, model_id, dataset_id, status="RUNNING", extra=None, **config):
        """config: learning_rate, optimizer, epochs, batch_size, seed (anything else goes in `extra`)."""
        names = {"learning_rate": "learningRate", "optimizer": "optimizer", "epochs": "epochs", "batch_size": "batchSize", "seed": "seed"}
        run_config = {names[k]: v for k, v in config.items() if k in names}
        unknown = {k: v for k, v in config.items() if k not in names}
        if extra or unknown:
            run_config["extra"] = dict(extra or {}, **unknown)
        data = self.query(
            "mutation($input: CreateRunInput!) { createRun(input: $input) { id } }",
            {"input": {"name": name, "modelId": model_id, "datasetId": dataset_id, "config": run_config, "status": status}},
        )
        return data["createRun"]["id"]

    def set_run_status(self, run_id, status):
        """PENDING, RUNNING, COMPLETED, FAILED or CANCELLED."""
        self.query("mutation($id: ID!, $s: RunStatus) { updateRun(id: $id, input: { status: $s }) { id } }", {"id": run_id, "s": status}, idempotent=True)

    def create_checkpoint(self, run_id, step, weights, epoch=None, learning_rate=None):
        """Stores a checkpoint's weights: `weights` is a list of (name, shape, values) in the order
        the model's weights are listed, values flat and in TensorFlow.js layout (Conv1D kernels
        [k, in, out], Dense kernels [in, out]). Returns the checkpoint id."""
        specs = []
        buffer = array("f")
        for name, shape, values in weights:
            flat = _flatten(values)
            size = 1
            for d in shape:
                size *= d
            if len(flat) != size:
                raise ValueError("%s has %d values; its shape %s needs %d" % (name, len(flat), list(shape), size))
            specs.append({"name": name, "shape": list(shape), "dtype": "float32"})
            buffer.extend(flat)
        data = self.query(
            "mutation($input: CreateCheckpointInput!) { createCheckpoint(input: $input) { id } }",
            {
                "input": {
                    "runId": run_id,
                    "step": step,
                    "epoch": epoch,
                    "learningRate": learning_rate,
                    "weightSpecs": specs,
                    "weightData": float_column(_little_endian(buffer).tobytes()),
                }
            },
        )
        return data["createCheckpoint"]["id"]

    # -- per-sample metrics ------------------------------------------------------------------

    def log_metrics(self, checkpoint_id, sample_indices=None, sample_ids=None, batch_rows=None, **terms):
        """Logs per-sample metrics at a checkpoint, one row per sample, named by position in the
        dataset (`sample_indices`) or by Tangent id (`sample_ids`). Terms: loss, correct (bools),
        logits and probs (n x V, flat or nested), a_norm, h_trace, h_min_eig, g_norm, k_norm,
        k_trace. Returns the number of rows written."""
        if (sample_indices is None) == (sample_ids is None):
            raise ValueError("give sample_indices or sample_ids")
        refs = [int(r) for r in _flatten(sample_indices if sample_ids is None else sample_ids)]
        n = len(refs)
        fields = {"a_norm": "aNorm", "h_trace": "hTrace", "h_min_eig": "hMinEig", "g_norm": "gNorm", "k_norm": "kNorm", "k_trace": "kTrace"}
        columns = {}
        width = {}
        for name, values in terms.items():
            if values is None:
                continue
            field = fields.get(name, name)
            flat = _flatten(values)
            if len(flat) % max(n, 1) != 0:
                raise ValueError("%s has %d values for %d rows" % (name, len(flat), n))
            columns[field] = flat
            width[field] = len(flat) // n if n else 1
        rows = self._batch_rows(batch_rows, 4 + sum(4 * w for w in width.values()))
        written = 0
        for start in range(0, n, rows):
            end = min(n, start + rows)
            batch = {("sampleIndices" if sample_ids is None else "sampleIds"): int_column(refs[start:end])}
            for field, flat in columns.items():
                w = width[field]
                chunk = flat[start * w : end * w]
                batch[field] = [bool(v) for v in chunk] if field == "correct" else float_column(chunk)
            try:
                data = self.query(
                    "mutation($c: ID!, $input: MetricColumnsInput!) { logMetrics(checkpointId: $c, input: $input) { written } }",
                    {"c": checkpoint_id, "input": batch},
                    idempotent=True,
                )
            except TangentError as error:
                if error.row is not None:
                    error.row += start  # the row in the caller's whole batch, not in this request
                raise
            written += data["logMetrics"]["written"]
        return written
