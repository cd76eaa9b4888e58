"""ONNX interchange: fastlstm -> ONNX -> fastlstm bitwise, the exported
graphs in ONNX Runtime against predict, graphs PyTorch's exporter wrote
(tests/data/torch_onnx_files, made by make_torch_onnx_files.py), and
hostile files."""
import pathlib

import numpy as np
import pytest

import fastlstm
from fastlstm import layers as L
from fastlstm.convert import ConversionError, UnsupportedLayerError

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
from fastlstm.convert.onnx import from_onnx, read_onnx_file, to_onnx, write_onnx_file  # noqa: E402

RECORDED = pathlib.Path(__file__).resolve().parent / "data" / "torch_onnx_files"
FEATURES = 3


def random_model(layer_list, input_shape=(None, FEATURES), seed=0):
    rng = np.random.default_rng(seed)
    model = fastlstm.Sequential(layer_list)
    model.build(input_shape)
    model.set_weights([0.5 * rng.standard_normal(w.shape).astype(np.float32)
                       for w in model.get_weights()])
    return model


def inputs(batch=3, time=5, seed=1):
    return np.random.default_rng(seed).standard_normal((batch, time, FEATURES)).astype(np.float32)


def session(path):
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def run(path, **feeds):
    return session(path).run(None, feeds)


def assert_close(actual, expected):
    np.testing.assert_allclose(actual, expected, rtol=1e-5, atol=1e-6)


CASES = {
    "lstm": lambda: [L.LSTM(4), L.Dense(2)],
    "lstm_peephole_sequences": lambda: [L.LSTM(4, peephole=True, return_sequences=True),
                                        L.TimeDistributed(L.Dense(2))],
    "gru_reset_after_backwards": lambda: [L.GRU(4, go_backwards=True), L.Dense(2, "tanh")],
    "gru_reset_before_sequences_backwards": lambda: [
        L.GRU(4, reset_after=False, return_sequences=True, go_backwards=True), L.Dense(2)],
    "gru_without_bias": lambda: [L.GRU(4, use_bias=False), L.Dense(1, use_bias=False)],
    "simple_rnn_tanh_relu": lambda: [L.SimpleRNN(4, return_sequences=True),
                                     L.SimpleRNN(3, activation="relu"), L.Dense(2, "sigmoid")],
    "bidirectional_concat_sequences": lambda: [
        L.Bidirectional(L.LSTM(3, return_sequences=True)), L.Dropout(0.2),
        L.TimeDistributed(L.Dense(2, "relu"))],
    "bidirectional_sum": lambda: [L.Bidirectional(L.GRU(3), merge_mode="sum"), L.Dense(1)],
    "bidirectional_mul_sequences": lambda: [
        L.Bidirectional(L.SimpleRNN(3, return_sequences=True), merge_mode="mul"), L.LSTM(2)],
    "bidirectional_ave_of_backwards": lambda: [
        L.Bidirectional(L.LSTM(3, go_backwards=True, return_sequences=True),
                        merge_mode="ave"), L.Dense(2)],
    "bidirectional_concat_of_backwards": lambda: [
        L.Bidirectional(L.GRU(3, go_backwards=True, reset_after=False)), L.Dense(2)],
    "dense_before_recurrent": lambda: [L.Dense(4, "tanh"), L.LSTM(3), L.Dropout(0.5),
                                       L.Dense(2)],
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_round_trip_is_bitwise_and_runtime_matches_predict(case, tmp_path):
    model = random_model(CASES[case]())
    path = tmp_path / "model.onnx"
    to_onnx(model, path)
    runtime = session(path)
    x = inputs(batch=4)
    expected = model.predict(x)
    assert_close(runtime.run(None, {"x": x})[0], expected)
    assert_close(runtime.run(None, {"x": x[:1]})[0], expected[:1])  # the batch axis is dynamic
    back = from_onnx(path)
    assert back.get_config()["layers"] == model.get_config()["layers"]
    assert all(np.array_equal(a, b) for a, b in zip(back.get_weights(), model.get_weights()))
    np.testing.assert_array_equal(back.predict(x), expected)


def test_exported_graphs_pass_the_full_onnx_check(tmp_path):
    model = random_model([L.Masking(), L.Bidirectional(L.LSTM(3, peephole=True,
                                                               return_sequences=True)),
                          L.GRU(2, reset_after=False), L.Dense(2, "relu")])
    to_onnx(model, tmp_path / "m.onnx", lengths=True)
    onnx.checker.check_model(onnx.load(str(tmp_path / "m.onnx")), full_check=True)
    model = random_model([L.Masking(), L.LSTM(3, peephole=True, return_sequences=True),
                          L.GRU(2, reset_after=False), L.Dense(2, "relu")])
    to_onnx(model, tmp_path / "states.onnx", lengths=True, states=True)
    onnx.checker.check_model(onnx.load(str(tmp_path / "states.onnx")), full_check=True)


def test_time_axis_stays_dynamic_when_the_model_leaves_it_open(tmp_path):
    model = random_model([L.GRU(3, return_sequences=True), L.Dense(2)])
    to_onnx(model, tmp_path / "m.onnx")
    runtime = session(tmp_path / "m.onnx")
    for time in (2, 7):
        x = inputs(time=time)
        assert_close(runtime.run(None, {"x": x})[0], model.predict(x))


def test_file_functions_use_the_defaults(tmp_path):
    model = random_model([L.LSTM(3), L.Dense(1)])
    write_onnx_file(model, tmp_path / "m.onnx")
    back = read_onnx_file(tmp_path / "m.onnx")
    np.testing.assert_array_equal(back.predict(inputs()), model.predict(inputs()))


def test_the_file_function_takes_lengths_for_a_leading_masking(tmp_path):
    model = random_model([L.Masking(), L.GRU(3), L.Dense(1)])
    with pytest.raises(UnsupportedLayerError, match=r"to_onnx\(model, path, lengths=True\)"):
        to_onnx(model, tmp_path / "m.onnx")
    write_onnx_file(model, tmp_path / "m.onnx")
    assert [i.name for i in session(tmp_path / "m.onnx").get_inputs()] == ["x", "sequence_lens"]
    lengths = np.array([6, 3], np.int32)
    x = padded(lengths)
    assert_close(run(tmp_path / "m.onnx", x=x, sequence_lens=lengths)[0], model.predict(x))
    np.testing.assert_array_equal(read_onnx_file(tmp_path / "m.onnx").predict(x),
                                  model.predict(x))


def padded(lengths, time=6, seed=2):
    x = inputs(batch=len(lengths), time=time, seed=seed)
    x[np.arange(time)[None, :] >= np.asarray(lengths)[:, None]] = 0.0
    return x


@pytest.mark.parametrize("recurrent", [
    lambda: L.LSTM(4, return_sequences=True),
    lambda: L.GRU(4, go_backwards=True, return_sequences=True),
    lambda: L.Bidirectional(L.SimpleRNN(3, return_sequences=True), merge_mode="ave"),
    lambda: L.Bidirectional(L.LSTM(3, peephole=True))], ids=["lstm", "gru_backwards",
                                                              "bidirectional_sequences",
                                                              "bidirectional_final"])
def test_lengths_stand_for_a_leading_masking(recurrent, tmp_path):
    model = random_model([L.Masking(), recurrent(), L.Dense(2)])
    path = tmp_path / "m.onnx"
    to_onnx(model, path, lengths=True)
    lengths = np.array([6, 2, 4, 1], np.int32)
    x = padded(lengths)
    assert_close(run(path, x=x, sequence_lens=lengths)[0], model.predict(x))
    back = from_onnx(path)
    assert back.get_config()["layers"] == model.get_config()["layers"]
    np.testing.assert_array_equal(back.predict(x), model.predict(x))


def test_states_let_the_graph_run_in_chunks(tmp_path):
    model = random_model([L.LSTM(4, return_sequences=True), L.GRU(3), L.Dense(2)])
    path = tmp_path / "m.onnx"
    to_onnx(model, path, states=True)
    runtime = session(path)
    names = [i.name for i in runtime.get_inputs()]
    assert names == ["x", "lstm_h", "lstm_c", "gru_h"]
    x = inputs(batch=2, time=7)
    states = {"lstm_h": np.zeros((1, 2, 4), np.float32), "lstm_c": np.zeros((1, 2, 4), np.float32),
              "gru_h": np.zeros((1, 2, 3), np.float32)}
    for chunk in (x[:, :3], x[:, 3:]):
        y, *finals = runtime.run(None, {"x": chunk, **states})
        states = dict(zip(names[1:], finals))
    assert_close(y, model.predict(x))
    back = from_onnx(path)  # the state inputs read as zero initial states
    np.testing.assert_array_equal(back.predict(x), model.predict(x))


@pytest.mark.parametrize("layer", [
    lambda: L.GRU(3, go_backwards=True),
    lambda: L.Bidirectional(L.LSTM(3, return_sequences=True)),
    lambda: L.Bidirectional(L.SimpleRNN(3, go_backwards=True))],
    ids=["go_backwards", "bidirectional", "bidirectional_of_go_backwards"])
def test_states_refuse_layers_running_backwards(layer, tmp_path):
    """Run in chunks, a backward pass would start from each chunk's last step."""
    model = random_model([L.LSTM(2, return_sequences=True), layer(), L.Dense(1)])
    with pytest.raises(UnsupportedLayerError, match=r"layer '\w+': .*runs backwards .*"
                       "states=True the graph is run in chunks"):
        to_onnx(model, tmp_path / "m.onnx", states=True)
    assert not (tmp_path / "m.onnx").exists()
    to_onnx(model, tmp_path / "m.onnx")  # whole sequences at once
    assert_close(run(tmp_path / "m.onnx", x=inputs())[0], model.predict(inputs()))


def test_what_onnx_cannot_express_is_refused_by_name(tmp_path):
    path = tmp_path / "m.onnx"
    with pytest.raises(UnsupportedLayerError, match="Masking"):
        to_onnx(random_model([L.Masking(), L.LSTM(2)]), path)
    with pytest.raises(UnsupportedLayerError, match="Masking"):
        to_onnx(random_model([L.Masking(), L.Dense(2), L.Masking(), L.LSTM(2)]), path,
                lengths=True)
    with pytest.raises(ValueError, match="Masking"):
        to_onnx(random_model([L.LSTM(2)]), path, lengths=True)
    with pytest.raises(UnsupportedLayerError, match="go_backwards"):
        to_onnx(random_model([L.Masking(), L.Bidirectional(L.LSTM(2, go_backwards=True))]),
                path, lengths=True)
    with pytest.raises(ValueError, match="opset"):
        to_onnx(random_model([L.LSTM(2)]), path, opset=13)
    with pytest.raises(UnsupportedLayerError, match="states=True"):
        to_onnx(random_model([L.GRU(2, stateful=True)]), path)
    assert not path.exists()
    to_onnx(random_model([L.GRU(2, stateful=True)]), path, states=True)


@pytest.mark.parametrize("case", sorted(p.stem for p in RECORDED.glob("*.onnx")))
def test_reads_graphs_pytorch_exported(case):
    recorded = np.load(RECORDED / f"{case}.npz")
    x, y = recorded["x"], recorded["y"]
    if not recorded["batch_first"]:  # fastlstm takes and returns batch first
        x = x.transpose(1, 0, 2)
        y = y.transpose(1, 0, 2) if y.ndim == 3 else y
    model = from_onnx(RECORDED / f"{case}.onnx")
    assert_close(model.predict(x), y)


# ------------------------------------------------------------ hostile files


def exported(tmp_path, layer_list=None):
    model = random_model(layer_list or [L.LSTM(3), L.Dense(2)])
    path = tmp_path / "m.onnx"
    to_onnx(model, path)
    return onnx.load(str(path))


def saved(tmp_path, onnx_model, name="changed.onnx"):
    path = tmp_path / name
    onnx.save(onnx_model, str(path))
    return path


def test_truncated_and_foreign_files_are_conversion_errors(tmp_path):
    exported(tmp_path)
    content = (tmp_path / "m.onnx").read_bytes()
    for name, data in (("truncated", content[:len(content) // 2]), ("empty", b""),
                       ("text", b"not a model at all")):
        (tmp_path / name).write_bytes(data)
        with pytest.raises(ConversionError):
            from_onnx(tmp_path / name)
    with pytest.raises(FileNotFoundError):
        from_onnx(tmp_path / "missing.onnx")


def test_unknown_operator_is_refused_by_name(tmp_path):
    model = exported(tmp_path)
    dense_add = next(n for n in model.graph.node if n.op_type == "Add")
    dense_add.op_type = "Einsum"
    with pytest.raises(UnsupportedLayerError, match="Einsum"):
        from_onnx(saved(tmp_path, model))


def test_initial_states_expanded_from_anything_but_zeros_are_refused(tmp_path):
    """PyTorch's export without dynamic axes expands a zero constant into
    the initial states; expanded from ones they are not what fastlstm runs."""
    model = onnx.load(str(RECORDED / "lstm_fixed_shape_all_steps.onnx"))
    expand = next(n for n in model.graph.node if n.op_type == "Expand")
    constant = next(n for n in model.graph.node if n.output[0] == expand.input[0])
    value = onnx.numpy_helper.to_array(constant.attribute[0].t)
    constant.attribute[0].t.CopyFrom(onnx.numpy_helper.from_array(np.ones_like(value)))
    with pytest.raises(UnsupportedLayerError, match="initial states must be zeros"):
        from_onnx(saved(tmp_path, model))


def test_unsupported_attribute_is_refused_by_name(tmp_path):
    model = exported(tmp_path)
    lstm = next(n for n in model.graph.node if n.op_type == "LSTM")
    lstm.attribute.append(onnx.helper.make_attribute("clip", 3.0))
    with pytest.raises(UnsupportedLayerError, match="clip"):
        from_onnx(saved(tmp_path, model))


def test_initializers_of_the_wrong_shape_are_refused(tmp_path):
    model = exported(tmp_path)
    w = next(t for t in model.graph.initializer if t.name.endswith("/W"))
    array = onnx.numpy_helper.to_array(w)
    w.CopyFrom(onnx.numpy_helper.from_array(array[:, :-1], w.name))
    with pytest.raises(ConversionError, match="W has shape"):
        from_onnx(saved(tmp_path, model))


def test_weights_that_are_not_finite_are_refused(tmp_path):
    model = exported(tmp_path)
    kernel = next(t for t in model.graph.initializer if t.name.endswith("/kernel"))
    array = onnx.numpy_helper.to_array(kernel).copy()
    array[0, 0] = np.nan
    kernel.CopyFrom(onnx.numpy_helper.from_array(array, kernel.name))
    with pytest.raises(ConversionError, match="NaN"):
        from_onnx(saved(tmp_path, model))


def test_external_data_is_never_opened(tmp_path):
    model = exported(tmp_path)
    w = next(t for t in model.graph.initializer if t.name.endswith("/W"))
    w.ClearField("raw_data")
    w.data_location = onnx.TensorProto.EXTERNAL
    w.external_data.add(key="location", value="../../etc/passwd")
    with pytest.raises(ConversionError, match="external"):
        from_onnx(saved(tmp_path, model))


def test_a_step_that_is_not_the_final_state_is_refused(tmp_path):
    model = exported(tmp_path, [L.LSTM(3, return_sequences=True), L.Dense(2)])
    graph = model.graph
    lstm_output = next(n for n in graph.node if n.op_type == "LSTM").output[0]
    squeeze = next(n for n in graph.node if n.op_type == "Squeeze" and n.input[0] == lstm_output)
    first = onnx.numpy_helper.from_array(np.array(0, np.int64), "first_step")
    graph.initializer.append(first)
    take = onnx.helper.make_node("Gather", [squeeze.output[0], "first_step"], ["first"], axis=0)
    index = list(graph.node).index(squeeze) + 1
    graph.node.insert(index, take)
    matmul = next(n for n in graph.node if n.op_type == "MatMul")
    matmul.input[0] = "first"
    with pytest.raises(UnsupportedLayerError, match="not its final state"):
        from_onnx(saved(tmp_path, model))
