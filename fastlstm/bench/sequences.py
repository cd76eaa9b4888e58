"""Sequences as users have them: variable lengths, streaming and
Bidirectional, each timed side by side with its peer.

lengths        a batch of sequences of lengths drawn from [10, 100] against
               the same batch padded to 100 (fastlstm both ways), and
               against PyTorch's packed sequences
streaming      one step at batch 1 per call: fastlstm's model.stream()
               against ONNX Runtime running a one-step graph whose states
               are inputs and outputs, and against PyTorch modules called
               per step, for single LSTM and GRU layers and the classic
               network
bidirectional  a Bidirectional layer at batch 1 on 1 thread and on all

The peers are optional: one not installed, or not among `peers`, is left
out of the tables.
"""
import numpy as np

from .. import functional, layers, models
from .._threads import threads as fastlstm_threads
from .peers import onnx_weights, torch_weights
from .timing import interleaved, paired_ratio, square_sgemm, with_blas_threads

LENGTHS_SHAPE = (64, 100, 32, 128)   # batch, padded time, features, units
LENGTHS_RANGE = (10, 100)
STREAM_UNITS = [50, 128, 256]
STREAM_STEPS = 64                    # distinct inputs a stream cycles through
BIDIRECTIONAL_SHAPE = (1, 100, 32, 128)
ONNX_STATE_NAMES = {"lstm": (("initial_h", "initial_c"), ("Y_h", "Y_c")),
                    "gru": (("initial_h",), ("Y_h",))}
ONNX_OPERATORS = {"lstm": ("LSTM", {}), "gru": ("GRU", {"linear_before_reset": 1})}


def _installed(module):
    try:
        __import__(module)
    except ImportError:
        return False
    return True


def _wanted(peer, peers):
    """Whether to run `peer`: asked for (peers None: any) and installed."""
    modules = {"torch": ("torch",), "onnxruntime": ("onnx", "onnxruntime")}[peer]
    return (peers is None or peer in peers) and all(_installed(m) for m in modules)


def _recurrent_layer(cell, units, **options):
    return (layers.LSTM if cell == "lstm" else layers.GRU)(units, **options)


def _weights(layer):
    """(kernel, recurrent_kernel, bias) of a built recurrent layer, Keras' layout."""
    return tuple(layer.get_weights()[:3])


# ---------------------------------------------------------------- lengths


def lengths_problem(cell, shape, seed=0):
    """A built layer, x (padded with data, not zeros), lengths, dy."""
    batch, time, features, units = shape
    rng = np.random.default_rng(seed)
    layer = _recurrent_layer(cell, units)
    layer.build((time, features))
    x = rng.standard_normal((batch, time, features)).astype(np.float32)
    low = min(LENGTHS_RANGE[0], time)
    lengths = rng.integers(low, min(LENGTHS_RANGE[1], time) + 1, batch)
    dy = rng.standard_normal((batch, time, units)).astype(np.float32)
    return layer, x, lengths, dy


def lengths_runners(cell, shape, training, threads, peers=None):
    """name -> callable: fastlstm padded, fastlstm with lengths, PyTorch packed."""
    layer, x, lengths, dy = lengths_problem(cell, shape)
    weights = _weights(layer)
    forward = getattr(functional, cell + "_forward")
    backward = getattr(functional, cell + "_backward")
    dy_valid = dy * (np.arange(x.shape[1]) < lengths[:, None])[..., None]

    def fastlstm_call(**options):
        def call():
            if not training:
                return forward(x, *weights, **options)[0]
            y, *_, cache = forward(x, *weights, return_cache=True, **options)
            backward(cache, dy_valid)
            return y
        return call

    runners = {"fastlstm padded": fastlstm_call(),
               "fastlstm lengths": fastlstm_call(lengths=lengths)}
    if _wanted("torch", peers):
        runners["torch packed"] = _torch_packed(cell, weights, x, lengths, dy_valid, training,
                                                threads)
    return runners


def _torch_module(cell, weights, features, units):
    import torch

    module = getattr(torch.nn, "LSTM" if cell == "lstm" else "GRU")(features, units,
                                                                    batch_first=True)
    with torch.no_grad():
        for name, value in torch_weights(cell, *weights).items():
            getattr(module, name).copy_(torch.from_numpy(np.ascontiguousarray(value)))
    return module


def _torch_packed(cell, weights, x, lengths, dy, training, threads):
    import torch
    from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

    torch.set_num_threads(threads)
    module = _torch_module(cell, weights, x.shape[2], weights[1].shape[0])
    x_t, dy_t = torch.from_numpy(x), torch.from_numpy(dy)
    lengths_t = torch.from_numpy(lengths)

    def call():
        with torch.set_grad_enabled(training):
            xg = x_t.clone().requires_grad_(training)
            packed = pack_padded_sequence(xg, lengths_t, batch_first=True, enforce_sorted=False)
            y, _ = pad_packed_sequence(module(packed)[0], batch_first=True,
                                       total_length=x.shape[1])
            if training:
                y.backward(dy_t)
            return y.detach().numpy()
    return call


def run_lengths(cells, shape, threads, repeats, peers, log):
    """Per cell and mode: each runner's median and the two goal ratios."""
    rows = []
    for cell in cells:
        for training in (False, True):
            runners = lengths_runners(cell, shape, training, threads, peers)
            lengths = lengths_problem(cell, shape)[2]
            valid = (np.arange(shape[1]) < lengths[:, None])[..., None]
            outputs = {name: fn() * valid for name, fn in runners.items()}
            for name, y in outputs.items():  # the padded run's later steps differ
                np.testing.assert_allclose(y, outputs["fastlstm lengths"], rtol=1e-3,
                                           atol=1e-4, err_msg=name)
            with fastlstm_threads(threads):
                timings = interleaved(runners, repeats)
            row = {"cell": cell, "mode": "forward + backward" if training else "forward",
                   "shape": list(shape), "threads": threads,
                   "mean_length": float(lengths.mean()),
                   "median_s": {k: t.median for k, t in timings.items()},
                   "lengths_over_padded": paired_ratio(timings["fastlstm lengths"],
                                                       timings["fastlstm padded"])}
            if "torch packed" in timings:
                row["torch_over_lengths"] = paired_ratio(timings["torch packed"],
                                                         timings["fastlstm lengths"])
            rows.append(row)
            log(f"  lengths {cell} {row['mode']}: " + ", ".join(
                f"{k} {1e3 * v:.2f} ms" for k, v in row["median_s"].items()))
    return rows


# ---------------------------------------------------------------- streaming


def stream_model(kind, units=None):
    """A built fastlstm model: one LSTM or GRU layer, or the classic network."""
    if kind == "classic":
        model = models.Sequential([layers.LSTM(50, return_sequences=True), layers.Dropout(0.2),
                                   layers.LSTM(100), layers.Dropout(0.2), layers.Dense(1)])
        model.build((60, 1))
    else:
        model = models.Sequential([_recurrent_layer(kind, units, return_sequences=True)])
        model.build((100, units))
    return model


def _recurrent_layers(model):
    return [layer for layer in model.layers if isinstance(layer, layers.Recurrent)]


def _cell_of(layer):
    return "lstm" if isinstance(layer, layers.LSTM) else "gru"


def _onnx_step_session(model, threads):
    """ONNX Runtime session of one step of `model`: x (1, 1, features) and
    every layer's states in, the output and the new states out."""
    import onnxruntime
    from onnx import TensorProto, helper, numpy_helper

    nodes, inputs, outputs, initializers = [], [], [], []
    features = model.input_shape[-1]
    inputs.append(helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, features]))
    current = "x"
    for k, layer in enumerate(_recurrent_layers(model)):
        cell, units = _cell_of(layer), layer.units
        names = {w: f"{w}{k}" for w in ("W", "R", "B")}
        for w, value in onnx_weights(cell, *_weights(layer)).items():
            initializers.append(numpy_helper.from_array(np.ascontiguousarray(value, np.float32),
                                                        names[w]))
        state_in, state_out = ONNX_STATE_NAMES[cell]
        ins = [f"{n}{k}" for n in state_in]
        outs = [f"{n}{k}" for n in state_out]
        inputs += [helper.make_tensor_value_info(n, TensorProto.FLOAT, [1, 1, units])
                   for n in ins]
        outputs += [helper.make_tensor_value_info(n, TensorProto.FLOAT, [1, 1, units])
                    for n in outs]
        operator, attributes = ONNX_OPERATORS[cell]
        nodes.append(helper.make_node(operator, [current, names["W"], names["R"], names["B"],
                                                 "", *ins], [f"Y{k}", *outs],
                                      hidden_size=units, **attributes))
        initializers.append(numpy_helper.from_array(np.array([1], np.int64), f"axis{k}"))
        nodes.append(helper.make_node("Squeeze", [f"Y{k}", f"axis{k}"], [f"seq{k}"]))
        current = f"seq{k}"  # (1, 1, units): the next layer's x
    dense = [layer for layer in model.layers if isinstance(layer, layers.Dense)]
    if dense:
        kernel, bias = dense[0].get_weights()
        initializers += [numpy_helper.from_array(kernel, "dense_kernel"),
                         numpy_helper.from_array(bias, "dense_bias")]
        nodes += [helper.make_node("MatMul", [current, "dense_kernel"], ["product"]),
                  helper.make_node("Add", ["product", "dense_bias"], ["out"])]
        current = "out"
    outputs.insert(0, helper.make_tensor_value_info(current, TensorProto.FLOAT, None))
    graph = helper.make_graph(nodes, "step", inputs, outputs, initializer=initializers)
    onnx_model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)])
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    return onnxruntime.InferenceSession(onnx_model.SerializeToString(), options,
                                        providers=["CPUExecutionProvider"])


def _cycle(steps):
    """A callable returning the next of `steps`, round and round."""
    position = [0]

    def next_step():
        position[0] = (position[0] + 1) % len(steps)
        return steps[position[0]]
    return next_step


def stream_runners(model, threads, peers=None, seed=0):
    """name -> callable running one step at batch 1, carrying its states."""
    rng = np.random.default_rng(seed)
    features = model.input_shape[-1]
    steps = [rng.standard_normal((1, features)).astype(np.float32) for _ in range(STREAM_STEPS)]
    with fastlstm_threads(threads):
        stream = model.stream(batch_size=1)
    out = np.empty((1,) + model.output_shape[-1:], np.float32)
    next_fastlstm = _cycle(steps)
    runners = {"fastlstm": lambda: stream.step(next_fastlstm(), out)}
    if _wanted("onnxruntime", peers):
        runners["onnxruntime"] = _onnx_stream(model, steps, threads)
    if _wanted("torch", peers):
        runners["torch"] = _torch_stream(model, steps, threads)
    return runners


def _onnx_stream(model, steps, threads):
    session = _onnx_step_session(model, threads)
    state_names = [i.name for i in session.get_inputs()][1:]
    states = {name: np.zeros((1, 1, int(i.shape[2])), np.float32)
              for name, i in zip(state_names, session.get_inputs()[1:])}
    next_step = _cycle([s[None] for s in steps])

    def step():
        out, *new_states = session.run(None, {"x": next_step(), **states})
        states.update(zip(state_names, new_states))
        return out
    return step


def _torch_stream(model, steps, threads):
    import torch

    torch.set_num_threads(threads)
    modules = [_torch_module(_cell_of(layer), _weights(layer), layer.input_shape[-1],
                             layer.units) for layer in _recurrent_layers(model)]
    dense = [layer for layer in model.layers if isinstance(layer, layers.Dense)]
    linear = None
    if dense:
        kernel, bias = dense[0].get_weights()
        linear = torch.nn.Linear(*kernel.shape)
        with torch.no_grad():
            linear.weight.copy_(torch.from_numpy(kernel.T.copy()))
            linear.bias.copy_(torch.from_numpy(bias))
    states = [None] * len(modules)
    next_step = _cycle([torch.from_numpy(s[None]) for s in steps])

    def step():
        with torch.no_grad():
            h = next_step()
            for k, module in enumerate(modules):
                h, states[k] = module(h, states[k])
            return (linear(h[:, -1]) if linear is not None else h).numpy()
    return step


def run_streaming(cells, units_list, threads, repeats, peers, log):
    """Per model: each runner's median seconds per step and the goal ratios."""
    rows = []
    kinds = [(cell, units) for cell in cells if cell in ONNX_OPERATORS
             for units in units_list] + [("classic", None)]
    for kind, units in kinds:
        runners = stream_runners(stream_model(kind, units), threads, peers)
        settle = {"onnxruntime": 0.05}
        with fastlstm_threads(threads):
            timings = interleaved(runners, repeats, settle)
        row = {"model": kind, "units": units, "threads": threads,
               "median_s": {k: t.median for k, t in timings.items()}}
        for peer in ("onnxruntime", "torch"):
            if peer in timings:
                row[f"{peer}_over_fastlstm"] = paired_ratio(timings[peer], timings["fastlstm"])
        rows.append(row)
        log(f"  streaming {kind} {units or ''}: " + ", ".join(
            f"{k} {1e6 * v:.1f} us/step" for k, v in row["median_s"].items()))
    return rows


# ---------------------------------------------------------------- Bidirectional


def run_bidirectional(cells, shape, threads, repeats, log):
    """A Bidirectional layer at batch 1: 1 thread against `threads`, beside
    the same comparison for SciPy's sgemm (what the machine's cores give
    at the time: on a shared host the second core may not be all there)."""
    rows = []
    product, _ = square_sgemm(512)
    batch, time, features, units = shape
    x = np.random.default_rng(0).standard_normal((batch, time, features)).astype(np.float32)
    for cell in [c for c in cells if c in ONNX_OPERATORS]:
        layer = layers.Bidirectional(_recurrent_layer(cell, units, return_sequences=True))
        layer.build((time, features))

        def on(n):
            def call():
                with fastlstm_threads(n):
                    return layer(x)
            return call

        runners = {"1 thread": on(1), f"{threads} threads": on(threads),
                   "sgemm 1 thread": with_blas_threads(1, product),
                   f"sgemm {threads} threads": with_blas_threads(threads, product)}
        timings = interleaved(runners, repeats)
        row = {"cell": cell, "shape": list(shape), "threads": threads,
               "median_s": {k: t.median for k, t in timings.items()},
               "speedup": paired_ratio(timings["1 thread"], timings[f"{threads} threads"]),
               "sgemm_speedup": paired_ratio(timings["sgemm 1 thread"],
                                             timings[f"sgemm {threads} threads"])}
        rows.append(row)
        log(f"  bidirectional {cell}: speedup {row['speedup']['median']:.2f}x on {threads} "
            "threads")
    return rows
