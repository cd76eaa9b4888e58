"""PyTorch interchange: state_dicts recorded from PyTorch
(tests/data/torch_onnx_files, made by make_torch_onnx_files.py) against
PyTorch's outputs, refusals of what fastlstm or PyTorch cannot express,
and, where PyTorch is installed, modules, .pt files and hostile pickles."""
import pathlib
import pickle
import sys

import numpy as np
import pytest

import fastlstm
from fastlstm import layers as L
from fastlstm.convert import ConversionError, UnsupportedLayerError
from fastlstm.convert.torch import from_torch, read_torch_file, to_torch, write_torch_file

RECORDED = pathlib.Path(__file__).resolve().parent / "data" / "torch_onnx_files"
CASES = sorted(p.stem for p in RECORDED.glob("*.npz"))
FEATURES = 3


def recorded(case):
    """The recorded input and output, batch first, and the file's fields."""
    data = np.load(RECORDED / f"{case}.npz")
    x, y = data["x"], data["y"]
    if not data["batch_first"]:
        x = x.transpose(1, 0, 2)
        y = y.transpose(1, 0, 2) if y.ndim == 3 else y
    return x, y, data


def assert_close(actual, expected):
    np.testing.assert_allclose(actual, expected, rtol=1e-5, atol=1e-6)


def random_model(layer_list, seed=0):
    rng = np.random.default_rng(seed)
    model = fastlstm.Sequential(layer_list)
    model.build((None, FEATURES))
    model.set_weights([0.5 * rng.standard_normal(w.shape).astype(np.float32)
                       for w in model.get_weights()])
    return model


def inputs(batch=3, time=5, seed=1):
    return np.random.default_rng(seed).standard_normal((batch, time, FEATURES)).astype(np.float32)


# ------------------------------------------------------------ without PyTorch


@pytest.mark.parametrize("case", CASES)
def test_recorded_state_dicts_compute_what_pytorch_computed(case):
    x, y, data = recorded(case)
    state_dict = {key.split("/", 1)[1]: data[key] for key in data.files
                  if key.startswith("state_dict/")}
    model = from_torch(state_dict, read=str(data["read"]),
                       nonlinearity=str(data["nonlinearity"]) or None)
    assert_close(model.predict(x), y)


def test_a_description_gives_what_the_state_dict_does_not_say():
    rng = np.random.default_rng(0)
    state_dict = {"rnn.weight_ih_l0": rng.standard_normal((4, 3)),
                  "rnn.weight_hh_l0": rng.standard_normal((4, 4)),
                  "head.weight": rng.standard_normal((2, 4)),
                  "head.bias": rng.standard_normal(2)}
    with pytest.raises(ConversionError, match="nonlinearity"):
        from_torch(state_dict)
    model = from_torch(state_dict, layers=[
        {"type": "RNN", "input_size": 3, "hidden_size": 4, "bias": False, "nonlinearity": "relu"},
        {"type": "Linear", "in_features": 4, "out_features": 2}, {"type": "Sigmoid"}])
    x = inputs()
    h = np.zeros((3, 4))
    for t in range(x.shape[1]):
        h = np.maximum(x[:, t] @ state_dict["rnn.weight_ih_l0"].T
                       + h @ state_dict["rnn.weight_hh_l0"].T, 0)
    expected = 1 / (1 + np.exp(-(h @ state_dict["head.weight"].T + state_dict["head.bias"])))
    assert_close(model.predict(x), expected)
    assert model.layers[0].activation == "relu" and not model.layers[0].use_bias


def lstm_state_dict(bidirectional=False, projection=False):
    rng = np.random.default_rng(0)
    names = ["weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"]
    shapes = [(16, 3), (16, 2 if projection else 4), (16,), (16,)]
    suffixes = ["", "_reverse"] if bidirectional else [""]
    state_dict = {f"lstm.{n}{s}": rng.standard_normal(shape).astype(np.float32)
                  for s in suffixes for n, shape in zip(names, shapes)}
    if projection:
        state_dict["lstm.weight_hr_l0"] = rng.standard_normal((2, 4)).astype(np.float32)
    return state_dict


def test_what_fastlstm_cannot_express_is_refused_by_name():
    with pytest.raises(UnsupportedLayerError, match="proj_size"):
        from_torch(lstm_state_dict(projection=True))
    with pytest.raises(UnsupportedLayerError, match="final_state"):
        from_torch(lstm_state_dict(bidirectional=True), read="last_step")
    model = from_torch(lstm_state_dict(bidirectional=True), read="final_state")
    assert type(model.layers[0]) is L.Bidirectional and not model.layers[0].return_sequences
    with pytest.raises(ValueError, match="read"):
        from_torch(lstm_state_dict(), read="last")


def test_weights_that_do_not_fit_are_conversion_errors():
    state_dict = lstm_state_dict()
    state_dict["lstm.bias_hh_l0"] = state_dict["lstm.bias_hh_l0"][:-1]
    with pytest.raises(ConversionError, match="bias"):
        from_torch(state_dict)
    with pytest.raises(ConversionError, match="norm"):
        from_torch({**lstm_state_dict(), "norm.running_mean": np.zeros(4, np.float32)})
    with pytest.raises(ConversionError, match="float"):
        from_torch({"fc.weight": np.zeros((2, 3), np.int64)})
    with pytest.raises(ConversionError, match="chain"):
        from_torch({**lstm_state_dict(), "fc.weight": np.zeros((2, 5), np.float32)})
    state_dict = lstm_state_dict()
    state_dict["lstm.weight_hh_l0"] = state_dict["lstm.weight_hh_l0"].copy()
    state_dict["lstm.weight_hh_l0"][0, 0] = np.nan
    with pytest.raises(ConversionError, match=r"weights do not load into fastlstm's LSTM "
                       r"\(.*NaN") as refused:
        from_torch(state_dict)
    assert "chain" not in str(refused.value)


def test_what_pytorch_cannot_express_is_refused_before_importing_it():
    for layer in (L.LSTM(2, peephole=True), L.GRU(2, reset_after=False), L.Masking()):
        model = random_model([layer, L.Dense(1)] if type(layer) is not L.Masking
                             else [layer, L.LSTM(2)])
        with pytest.raises(UnsupportedLayerError, match=type(layer).__name__):
            to_torch(model)
    for layer in (L.LSTM(2, stateful=True), L.Bidirectional(L.GRU(2, stateful=True))):
        with pytest.raises(UnsupportedLayerError, match="stateful"):
            to_torch(random_model([layer, L.Dense(1)]))


def test_missing_packages_are_named(monkeypatch, tmp_path):
    model = random_model([L.LSTM(2), L.Dense(1)])
    monkeypatch.setitem(sys.modules, "torch", None)
    with pytest.raises(ImportError, match=r'pip install "fastlstm\[torch\]"'):
        to_torch(model)
    monkeypatch.setitem(sys.modules, "onnx", None)
    from fastlstm.convert.onnx import to_onnx
    with pytest.raises(ImportError, match=r'pip install "fastlstm\[onnx\]"'):
        to_onnx(model, tmp_path / "m.onnx")


# ------------------------------------------------------------ with PyTorch


@pytest.fixture
def torch():
    return pytest.importorskip("torch")


@pytest.mark.parametrize("case", CASES)
def test_recorded_pt_files_compute_what_pytorch_computed(case, torch):
    x, y, data = recorded(case)
    if str(data["nonlinearity"]):  # a bare state_dict does not say an nn.RNN's nonlinearity
        with pytest.raises(ConversionError, match="nonlinearity"):
            read_torch_file(RECORDED / f"{case}.pt")
        state_dict = torch.load(RECORDED / f"{case}.pt", weights_only=True)
        model = from_torch(state_dict, read=str(data["read"]),
                           nonlinearity=str(data["nonlinearity"]))
    elif str(data["read"]) == "last_step":
        model = read_torch_file(RECORDED / f"{case}.pt")
    else:
        state_dict = torch.load(RECORDED / f"{case}.pt", weights_only=True)
        model = from_torch(state_dict, read=str(data["read"]))
    assert_close(model.predict(x), y)


MODELS = {
    "lstm_sequences": lambda: [L.LSTM(4, return_sequences=True), L.TimeDistributed(L.Dense(2))],
    "gru_backwards": lambda: [L.GRU(4, go_backwards=True), L.Dropout(0.3), L.Dense(2, "tanh")],
    "simple_rnn_relu_without_bias": lambda: [L.SimpleRNN(3, activation="relu", use_bias=False,
                                                         return_sequences=True),
                                             L.SimpleRNN(2), L.Dense(1, "sigmoid")],
    "bidirectional_concat": lambda: [L.Bidirectional(L.LSTM(3)), L.Dense(2, "relu")],
    "bidirectional_ave_sequences_of_backwards": lambda: [
        L.Bidirectional(L.GRU(3, go_backwards=True, return_sequences=True), merge_mode="ave"),
        L.Dense(2)],
    "bidirectional_mul": lambda: [L.Bidirectional(L.SimpleRNN(3), merge_mode="mul"), L.Dense(1)],
}


@pytest.mark.parametrize("case", sorted(MODELS))
def test_to_torch_computes_predict_and_pt_files_round_trip(case, torch, tmp_path):
    model = random_model(MODELS[case]())
    x = inputs()
    module = to_torch(model)
    assert not module.training
    with torch.no_grad():
        assert_close(module(torch.from_numpy(x)).numpy(), model.predict(x))
    write_torch_file(model, tmp_path / "model.pt")
    back = read_torch_file(tmp_path / "model.pt")
    assert back.get_config()["layers"] == model.get_config()["layers"]
    assert all(np.array_equal(a, b) for a, b in zip(back.get_weights(), model.get_weights()))
    np.testing.assert_array_equal(back.predict(x), model.predict(x))
    checkpoint = torch.load(tmp_path / "model.pt", weights_only=True)
    to_torch(model).load_state_dict(checkpoint["state_dict"])  # a plain state_dict


def test_from_torch_reads_modules_as_pytorch_runs_them(torch):
    torch.manual_seed(0)
    rnn = torch.nn.GRU(FEATURES, 4, num_layers=2, batch_first=True, dropout=0.25).eval()
    head = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Tanh())
    x = inputs()
    with torch.no_grad():
        out, _ = rnn(torch.from_numpy(x))
        expected = head(out).numpy()
    model = from_torch([rnn, head], read="all_steps")
    assert [type(layer).__name__ for layer in model.layers] == ["GRU", "Dropout", "GRU", "Dense"]
    assert_close(model.predict(x), expected)
    with pytest.raises(UnsupportedLayerError, match="Conv1d"):
        from_torch(torch.nn.Sequential(torch.nn.Conv1d(3, 3, 1)))


def _custom_module(torch, head_registered_first=False, relu_between=False):
    """A module with a forward of its own: an LSTM, its last step, a Linear."""

    class Forecaster(torch.nn.Module):
        def __init__(self):
            super().__init__()
            if head_registered_first:
                self.fc = torch.nn.Linear(4, 4)
            self.rnn = torch.nn.LSTM(4, 4, batch_first=True)
            if not head_registered_first:
                self.fc = torch.nn.Linear(4, 4)

        def forward(self, x):
            out, _ = self.rnn(x)
            out = out[:, -1]
            return self.fc(torch.relu(out) if relu_between else out)

    torch.manual_seed(0)
    return Forecaster()


def test_a_module_whose_forward_is_not_its_children_in_order_is_refused(torch):
    x = np.random.default_rng(1).standard_normal((3, 5, 4)).astype(np.float32)
    module = _custom_module(torch).train()
    model = from_torch(module)
    assert module.training  # the probe ran in eval mode and left the mode as it was
    with torch.no_grad():
        assert_close(model.predict(x), module.eval()(torch.from_numpy(x)).numpy())
    for case in ({"head_registered_first": True}, {"relu_between": True}):
        module = _custom_module(torch, **case)
        with pytest.raises(ConversionError, match=r"forward computes something else than its "
                           r"children in order .*from_torch\(\[module\.(rnn|fc), "):
            from_torch(module)
        model = from_torch([module.rnn, module.fc])  # the modules as they run: read
        assert [type(layer).__name__ for layer in model.layers] == ["LSTM", "Dense"]


def test_a_checkpoint_can_describe_its_state_dict(torch, tmp_path):
    x, y, data = recorded("rnn_relu_bidirectional_time_major_all_steps")
    state_dict = torch.load(RECORDED / "rnn_relu_bidirectional_time_major_all_steps.pt",
                            weights_only=True)
    torch.save({"state_dict": state_dict, "read": "all_steps", "nonlinearity": "relu"},
               tmp_path / "described.pt")
    assert_close(read_torch_file(tmp_path / "described.pt").predict(x), y)


class CreatesAFile:
    """Unpickled, this would create a file: the payload of a hostile .pt."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


def test_a_malicious_pickle_runs_nothing(torch, tmp_path):
    target = tmp_path / "created_by_unpickling"
    torch.save({"state_dict": {"fc.weight": CreatesAFile(target)}}, tmp_path / "zip.pt")
    with open(tmp_path / "legacy.pt", "wb") as f:
        pickle.dump({"fc.weight": CreatesAFile(target)}, f)
    for name in ("zip.pt", "legacy.pt"):
        with pytest.raises(ConversionError, match="holds pickled objects other than those.*"
                           "fastlstm does not unpickle") as refused:
            read_torch_file(tmp_path / name)
        assert "weights_only" not in str(refused.value)  # never advice to run the pickle
        assert not target.exists()


def test_damaged_and_foreign_pt_files_are_conversion_errors(torch, tmp_path):
    content = (RECORDED / "lstm_stacked_last_step.pt").read_bytes()
    (tmp_path / "truncated.pt").write_bytes(content[:len(content) // 2])
    with pytest.raises(ConversionError):
        read_torch_file(tmp_path / "truncated.pt")
    torch.save([1, 2, 3], tmp_path / "list.pt")
    with pytest.raises(ConversionError, match="list"):
        read_torch_file(tmp_path / "list.pt")
    model = random_model([L.LSTM(2), L.Dense(1)])
    write_torch_file(model, tmp_path / "model.pt")
    checkpoint = torch.load(tmp_path / "model.pt", weights_only=True)
    checkpoint["state_dict"]["1.weight"] = torch.zeros(1, 3)
    torch.save(checkpoint, tmp_path / "wrong_shape.pt")
    with pytest.raises(ConversionError, match="shape"):
        read_torch_file(tmp_path / "wrong_shape.pt")
    checkpoint["fastlstm_model"]["layers"][0]["config"]["units"] = 2**20
    torch.save(checkpoint, tmp_path / "huge.pt")
    with pytest.raises(ConversionError, match="fewer weights"):
        read_torch_file(tmp_path / "huge.pt")
