"""Forecasting with a small LSTM: fit, predict with intervals, backtest, save.

``Forecaster`` turns one or many series into a forecasting job:

- the target is mapped into a model space (fastlstm.transforms: log,
  differencing at lag 1 and at the season, scaling fitted on the training
  span, per-window scaling), and forecasts are mapped back exactly;
- ``transform="auto"`` trains the network for each candidate transform and
  keeps the one with the lowest error on the END of the training span (the
  validation span), never on data after it; the season comes from the
  dates' frequency or the autocorrelation when not given; ``chosen_`` says
  what was chosen and why;
- the model sees a window of past model-space values, past covariates (other
  columns, known up to the forecast origin) and calendar features of the
  dates it forecasts (known ahead); it outputs ``horizon`` values at once
  (direct), and longer forecasts feed those back (recursive);
- intervals come from the errors the model made on the validation span,
  per step ahead, as empirical quantiles (see ``predict``);
- many series train one global model, each series with its own scaling;
- ``backtest`` forecasts from every origin of a test span, beside
  persistence, seasonal naive and drift, with MAE, RMSE, MAPE, sMAPE, MASE
  and the coverage of each interval;
- ``save`` / ``load`` keep everything in fastlstm's model file (no pickle).
"""
import math
import numbers
import reprlib

import numpy as np

from . import calendar as dates_calendar
from . import timeseries
from ._random import set_random_seed
from ._series_inputs import SeriesInput, series_inputs
from ._threads import threads
from ._validation import checked_int
from .callbacks import EarlyStopping
from .evaluation import (BASELINES, BacktestResult, baseline_forecasts, forecast_errors,
                         interval_coverage)
from .layers import LSTM, Dense
from .models import Sequential, load_model
from .optimizers import Adam
from .transforms import TargetTransform, TransformSpec, level_stationary

__all__ = ["Forecaster", "Forecast", "ForecastError", "candidate_transforms"]

METADATA_KEY = "fastlstm_forecaster"
METADATA_VERSION = 1
MIN_TRAINING_WINDOWS = 4
# The model computes in float32: model-space values must stay well inside it.
_FLOAT32_LIMIT = 1e30


class ForecastError(ValueError):
    """The series cannot make a forecasting job with these settings, e.g. too
    short for the window, the season and the horizon."""


class Forecast:
    """A forecast of one series.

    Attributes
    ----------
    series : str or int
        The series' id (0 for a single series).
    name : str
        What is forecast (the column's name).
    values : ndarray of shape (steps,)
    dates : ndarray of shape (steps,), datetime64, or None
        The date of each value, when the series had dates.
    quantiles : dict
        Quantile level (float) -> ndarray of shape (steps,).
    """

    def __init__(self, series, name, values, dates, quantiles):
        self.series, self.name, self.values = series, name, values
        self.dates, self.quantiles = dates, quantiles

    def __len__(self):
        return len(self.values)

    def __repr__(self):
        return (f"Forecast({self.name!r}, {len(self)} steps, "
                f"quantiles={sorted(self.quantiles)})")

    def to_pandas(self):
        """A DataFrame indexed by date (or step): the forecast and its quantiles."""
        try:
            import pandas as pd
        except ImportError:
            raise ImportError("Forecast.to_pandas needs pandas: pip install pandas") from None
        index = (pd.DatetimeIndex(self.dates, name="date") if self.dates is not None
                 else pd.RangeIndex(1, len(self) + 1, name="step"))
        columns = {self.name: self.values}
        columns.update({f"q{level:g}": values for level, values in self.quantiles.items()})
        return pd.DataFrame(columns, index=index)


def candidate_transforms(values, season):
    """The transforms ``transform="auto"`` tries on these training spans.

    Differencing at lag 1, at the season and at both (with a season);
    scaling alone when every span passes a stationarity test (a level model
    cannot forecast values outside the range it was trained on); each also
    after the logarithm when every value is positive; and per-window
    scaling of the levels.

    Parameters
    ----------
    values : list of ndarray
        The training span of each series.
    season : int >= 1

    Returns
    -------
    list of str
    """
    bases = ["level", "diff"] + (["seasonal_diff", "seasonal_diff+diff"] if season > 1 else [])
    if not all(level_stationary(v) for v in values):
        bases.remove("level")  # a level model cannot forecast outside its training range
    names = list(bases)
    if all((v > 0).all() for v in values):
        names += ["log" if base == "level" else f"log+{base}" for base in bases]
    return names + ["window_last"]


def _small_model(input_shape, outputs, units, learning_rate):
    model = Sequential([LSTM(units, input_shape=input_shape), Dense(outputs)])
    model.compile(Adam(learning_rate=learning_rate), "mse")
    return model


# The weights of the network's forecast against the transform's "no change"
# forecast that ``fit`` tries on the validation span (see Forecaster).
DAMPINGS = np.linspace(0.0, 1.0, 11)


class _Prepared:
    """One series in model space, ready to cut into model inputs.

    Time t of the series (0-based) has model-space value ``z[t - lost]``,
    past covariates ``covariates[t]`` and the calendar features of time
    ``t + horizon``, ``calendar[t + horizon]`` (known ahead: the input at
    the origin carries the dates of the values it forecasts).
    """

    def __init__(self, record, transform, covariate_scaling, calendar, horizon):
        self.record, self.transform = record, transform
        self.z = transform.forward(record.values)
        if not (np.abs(self.z) < _FLOAT32_LIMIT).all():
            raise ForecastError(f"{_label(record)}: the values lie too far apart to scale into "
                                "the float32 range the model computes in")
        self.covariates = None
        if record.covariates is not None:
            offset, scale = covariate_scaling
            self.covariates = (record.covariates - offset) / scale
        self.calendar = calendar
        self.horizon = horizon

    def inputs(self, origins, window, z=None):
        """Model inputs for forecasts from `origins` (values seen), shape
        (len(origins), window, features), and each window's anchor (B, 1).

        `z`, when given, holds each origin's model-space window (B, window)
        (a forecast fed back); the covariates then come from the first
        forecast's origin onwards and must be known.
        """
        times = origins[:, None] - window + np.arange(window)
        if z is None:
            z = self.z[times - self.transform.lost]
        anchors = self.transform.anchors(z)
        parts = [(z - anchors)[..., None]]
        if self.covariates is not None:
            parts.append(self.covariates[times])
        if self.calendar is not None:
            parts.append(self.calendar[times + self.horizon])
        return np.concatenate(parts, axis=-1).astype(np.float32), anchors

    def targets(self, origins, anchors):
        """Model-space targets of the windows at `origins`, (B, horizon)."""
        times = origins[:, None] + np.arange(self.horizon)
        return (self.z[times - self.transform.lost] - anchors).astype(np.float32)


def _label(record):
    return "the series" if record.id == 0 and not isinstance(record.id, str) \
        else f"series {record.id!r}"


def _covariate_scaling(covariates):
    offset, scale = covariates.mean(axis=0), covariates.std(axis=0)
    return offset, np.where(scale > 0, scale, 1.0)


def _seasonal_scale(values, season):
    """The in-sample MAE of the seasonal naive forecast (lag 1 when too short)."""
    lag = season if len(values) > season else 1
    scale = float(np.mean(np.abs(values[lag:] - values[:-lag]))) if len(values) > lag else 0.0
    return scale if scale > 0 else 1.0


def _checked_quantiles(quantiles):
    if quantiles is None:
        return ()
    try:
        levels = [float(q) for q in quantiles]
    except (TypeError, ValueError):
        raise TypeError(f"quantiles must be a list of numbers in (0, 1), "
                        f"got {reprlib.repr(quantiles)}") from None
    if not all(0 < q < 1 for q in levels):
        raise ValueError(f"quantiles must lie in (0, 1), got {levels}")
    return tuple(levels)


def _interval_pairs(levels):
    """Symmetric pairs of quantile levels: {"80%": (0.1, 0.9), ...}."""
    pairs = {}
    for low in levels:
        high = round(1 - low, 10)
        if low < 0.5 and any(abs(q - high) < 1e-9 for q in levels):
            pairs[f"{100 * (high - low):.0f}%"] = (low, next(q for q in levels
                                                             if abs(q - high) < 1e-9))
    return pairs


class Forecaster:
    """A small LSTM forecaster of one or many series.

    Parameters
    ----------
    window : int >= 1, optional
        Past steps the model sees; default: twice the season, at least 24,
        at most a third of the training span.
    horizon : int >= 1
        Values the model outputs at once (1: a one-step model, made
        recursive for longer forecasts). Also the horizon ``transform="auto"``
        scores candidates at.
    model : callable, optional
        ``model(input_shape, outputs)`` returning a compiled Sequential;
        default ``LSTM(units) -> Dense(horizon)``, MSE, Adam.
    transform : str
        "auto", or a name such as "level", "diff", "log+seasonal_diff" or
        "window_last" (fastlstm.transforms).
    season : int >= 1, optional
        Default: from the dates' frequency or the autocorrelation.
    calendar_features : "auto", None or tuple of str
        Calendar features of the forecast dates fed to the model ("auto":
        the frequency's default when the series has dates).
    units, epochs, batch_size, learning_rate :
        The default network and its training; training stops early when the
        validation error has not improved for `patience` epochs.
    validation : float in (0, 1)
        The share of the training span, its end, that chooses the transform,
        the number of epochs and the intervals.
    seed : int >= 0 or None
    threads : int, optional
        Kernel threads while fitting and forecasting (default: the global
        setting).
    verbose : int
        1 prints each candidate's validation error.

    Attributes
    ----------
    chosen_ : dict
        Transform, season (and where it came from), window, epochs, each
        candidate's validation MASE and the baselines'.
    transform_, season_, window_ : the choices.
    model_ : Sequential
    """

    def __init__(self, window=None, horizon=1, model=None, transform="auto", season=None,
                 calendar_features="auto", units=32, epochs=60, batch_size=32,
                 learning_rate=0.003, patience=6, validation=0.2, seed=0, threads=None,
                 verbose=0):
        self.window = None if window is None else checked_int("window", window, 1)
        self.horizon = checked_int("horizon", horizon, 1)
        if model is not None and not callable(model):
            raise TypeError("model must be a callable (input_shape, outputs) -> compiled "
                            f"Sequential, got {type(model).__name__}")
        self.model = model
        if transform != "auto":
            TransformSpec.parse(transform)  # fails now on a bad name
        self.transform = transform
        self.season = None if season is None else checked_int("season", season, 1)
        if not (calendar_features in ("auto", None, False) or
                isinstance(calendar_features, (tuple, list))):
            raise TypeError(f"calendar_features must be 'auto', None or a tuple of names, "
                            f"got {calendar_features!r}")
        self.calendar_features = calendar_features
        self.units = checked_int("units", units, 1)
        self.epochs = checked_int("epochs", epochs, 1)
        self.batch_size = checked_int("batch_size", batch_size, 1)
        if isinstance(learning_rate, bool) or not isinstance(learning_rate, numbers.Real) \
                or not learning_rate > 0:
            raise ValueError(f"learning_rate must be a number > 0, got {learning_rate!r}")
        self.learning_rate = float(learning_rate)
        self.patience = checked_int("patience", patience, 0)
        if isinstance(validation, bool) or not isinstance(validation, numbers.Real) \
                or not 0 < validation < 1:
            raise ValueError(f"validation must be a fraction in (0, 1), got {validation!r}")
        self.validation = float(validation)
        self.seed = None if seed is None else checked_int("seed", seed, 0)
        self.threads = None if threads is None else checked_int("threads", threads, 1)
        self.verbose = verbose
        self.model_ = None
        self.damping_ = 1.0

    # ------------------------------------------------------------ settings

    def get_params(self):
        """The constructor's arguments (the model callable left out)."""
        return {"window": self.window, "horizon": self.horizon, "transform": self.transform,
                "season": self.season,
                "calendar_features": (list(self.calendar_features)
                                      if isinstance(self.calendar_features, (tuple, list))
                                      else self.calendar_features),
                "units": self.units, "epochs": self.epochs, "batch_size": self.batch_size,
                "learning_rate": self.learning_rate, "patience": self.patience,
                "validation": self.validation, "seed": self.seed}

    def _threads(self):
        return threads(self.threads) if self.threads else _NoChange()

    # ----------------------------------------------------------------- fit

    def fit(self, series, covariates=None, *, target=None, id_column=None):
        """Train on one or many series.

        Parameters
        ----------
        series : array_like, TimeSeries, pandas Series/DataFrame, list, dict
            One series of shape (n,), or many (a list or dict of them, or a
            long table with a column of ids, `id_column`). A pandas object
            with a DatetimeIndex (or a TimeSeries with dates) gives dates.
        covariates : array_like of shape (n, k), optional
            Past covariates: values of other series known up to each
            forecast origin (one per series for many series). The other
            columns of a table with a `target` column are used alike.
        target : str, optional
            The column to forecast in a table of several columns.
        id_column : str, optional
            The column of series ids in a long table.

        Returns
        -------
        self
        """
        records, many = series_inputs(series, covariates, target=target, id_column=id_column)
        with self._threads():
            self._fit_records(records)
        self.many_ = many
        return self

    def _frequency(self, records):
        dated = [r for r in records if r.dates is not None]
        if not dated:
            return None
        if len(dated) != len(records):
            raise ValueError("some series have dates and others do not: give all or none")
        frequencies = {dates_calendar.infer_frequency(r.dates) for r in records}
        if len(frequencies) > 1:
            raise ValueError(f"the series have different frequencies: "
                             f"{sorted(f.name for f in frequencies)}")
        return frequencies.pop()

    def _choose_season(self, records, frequency):
        if self.season is not None:
            return self.season, "given"
        season = timeseries.detect_season(records[0].values, frequency=frequency)
        source = "autocorrelation" if frequency is None else \
            f"frequency {frequency.name} and autocorrelation"
        return int(season), source

    def _choose_features(self, frequency):
        if frequency is None or self.calendar_features in (None, False):
            if isinstance(self.calendar_features, (tuple, list)) and self.calendar_features \
                    and frequency is None:
                raise ValueError("calendar_features need dates: give the series a DatetimeIndex "
                                 "or dates")
            return ()
        if self.calendar_features == "auto":
            return tuple(dates_calendar.default_calendar_features(frequency))
        return tuple(self.calendar_features)

    def _choose_window(self, shortest, season):
        if self.window is not None:
            return self.window
        usable = shortest * (1 - self.validation) - season - 1 - self.horizon
        return max(2, min(max(24, 2 * season), int(usable // 3)))

    def _check_lengths(self, records, window, season, specs):
        lost = max(TargetTransform(spec, season).lost for spec in specs)
        for record in records:
            n_val = self._validation_length(len(record))
            needed_fit = window + lost + self.horizon + MIN_TRAINING_WINDOWS
            if len(record) - n_val < needed_fit or n_val < 1:
                raise ForecastError(
                    f"{_label(record)} has {len(record)} values: window {window}, "
                    f"differencing {lost} (season {season}) and horizon {self.horizon} need at "
                    f"least {needed_fit + max(n_val, self.horizon + 1)} (the last "
                    f"{self.validation:.0%} are held out to validate); pass a smaller window "
                    "or a longer series")

    def _validation_length(self, n):
        return max(self.horizon + 1, int(round(n * self.validation)))

    def _fit_records(self, records):
        frequency = self._frequency(records)
        season, season_source = self._choose_season(records, frequency)
        features = self._choose_features(frequency)
        fit_spans = [r.values[:len(r) - self._validation_length(len(r))] for r in records]
        names = (candidate_transforms(fit_spans, season) if self.transform == "auto"
                 else [self.transform])
        specs = [TransformSpec.parse(name) for name in names]
        window = self._choose_window(min(len(r) for r in records), season)
        self._check_lengths(records, window, season, specs)
        self.frequency_, self.season_, self.window_ = frequency, season, window
        self.calendar_ = features

        trials = {}
        for spec in specs:
            trials[spec.name] = self._trial(spec, records)
            if self.verbose:
                print(f"  {spec.name:24} validation MASE {trials[spec.name]['score']:.4f} "
                      f"({trials[spec.name]['epochs']} epochs)")
        best = min(trials, key=lambda name: trials[name]["score"])
        trial = trials[best]
        self.transform_ = best
        self.damping_ = trial["damping"]
        self.residuals_ = self._residuals(trial, self._residual_steps(records))
        self.residual_log_ = trial["log"]
        self._train_final(TransformSpec.parse(best), records, trial["epochs"])
        self.chosen_ = {
            "transform": best, "season": season, "season_from": season_source,
            "window": window, "horizon": self.horizon, "epochs": trial["epochs"],
            "damping": trial["damping"],
            "calendar_features": list(features),
            "covariates": list(records[0].covariate_names),
            "frequency": None if frequency is None else frequency.name,
            "validation_mase": {name: t["score"] for name, t in trials.items()},
            "validation_baselines_mase": trial["baselines"],
            "intervals": "empirical quantiles of the validation errors per step ahead",
        }

    def _prepare(self, record, spec, fit_end):
        """`record` in model space, its transform and covariates scaled on
        its first `fit_end` values."""
        transform = TargetTransform(spec, self.season_)
        try:
            transform.fit(record.values[:fit_end])
        except ValueError as e:
            raise ForecastError(f"{_label(record)}: {e}") from None
        scaling = None if record.covariates is None else \
            _covariate_scaling(record.covariates[:fit_end])
        return _Prepared(record, transform, scaling,
                         self._calendar(record, len(record) + self.horizon),
                         self.horizon)

    def _calendar(self, record, length):
        """Calendar features of the record's dates and those after it, (length, 2k)."""
        if not self.calendar_:
            return None
        if record.dates is None:
            raise ValueError(f"the forecaster feeds its model calendar features "
                             f"{list(self.calendar_)}: {_label(record)} needs dates")
        dates = record.dates
        if length > len(dates):
            future = dates_calendar.future_dates(dates[-1], self.frequency_, length - len(dates))
            dates = np.concatenate([dates, np.asarray(future, dtype=dates.dtype)])
        return np.asarray(dates_calendar.calendar_features(dates[:length], self.calendar_),
                          dtype=np.float64)

    def _windows(self, prepared, first, last):
        """Training inputs and targets of the windows whose origins are in
        [first, last] for each prepared series (first clipped to the earliest)."""
        xs, ys = [], []
        for p in prepared:
            start = max(first(p), self.window_ + p.transform.lost)
            origins = np.arange(start, last(p) + 1)
            if len(origins) == 0:
                continue
            x, anchors = p.inputs(origins, self.window_)
            xs.append(x)
            ys.append(p.targets(origins, anchors))
        return np.concatenate(xs), np.concatenate(ys)

    def _new_model(self, features):
        set_random_seed(self.seed)
        shape = (self.window_, features)
        if self.model is None:
            return _small_model(shape, self.horizon, self.units, self.learning_rate)
        model = self.model(shape, self.horizon)
        if not isinstance(model, Sequential) or model.optimizer is None:
            raise TypeError("model(input_shape, outputs) must return a compiled fastlstm "
                            f"Sequential, got {type(model).__name__}")
        return model

    def _folds(self, records, lost):
        """How many validation spans, one before the other, score a candidate:
        two when the last one holds fewer than 100 values (and the series
        are long enough), for a steadier choice."""
        shortest = min(records, key=len)
        n_val = self._validation_length(len(shortest))
        fits = len(shortest) - 2 * n_val >= self.window_ + lost + self.horizon + 8 * MIN_TRAINING_WINDOWS
        return 2 if n_val < 100 and fits else 1

    def _trial(self, spec, records):
        """Train on the start of each series and score on its validation span,
        for each fold, at each damping; keep the damping with the lowest mean
        score. The epochs come from the last fold."""
        lost = TargetTransform(spec, self.season_).lost
        folds = [self._fold(spec, [r.head(len(r) - k * self._validation_length(len(r)))
                                   for r in records])
                 for k in range(self._folds(records, lost))]
        scores = np.mean([fold["scores"] for fold in folds], axis=0)
        best = int(np.argmin(scores))
        return {"score": float(scores[best]), "damping": float(DAMPINGS[best]),
                "epochs": folds[0]["epochs"], "log": spec.log, "folds": folds,
                "baselines": {name: float(np.mean([fold["baselines"][name] for fold in folds]))
                              for name in BASELINES}}

    def _fold(self, spec, records):
        """Train on the start of each series and forecast its validation span
        `horizon` steps ahead at every damping: {"epochs", "scores" (one per
        damping), "baselines" {name: MASE}, and what ``_residuals`` needs}."""
        splits = {id(r): len(r) - self._validation_length(len(r)) for r in records}
        prepared = [self._prepare(r, spec, splits[id(r)]) for r in records]
        x, y = self._windows(prepared, lambda p: 0,
                             lambda p: splits[id(p.record)] - self.horizon)
        x_val, y_val = self._windows(prepared, lambda p: splits[id(p.record)],
                                     lambda p: len(p.record) - self.horizon)
        model = self._new_model(x.shape[-1])
        stop = EarlyStopping(patience=self.patience, restore_best_weights=True)
        model.fit(x, y, epochs=self.epochs, batch_size=self.batch_size,
                  validation_data=(x_val, y_val), callbacks=[stop], verbose=0)
        self.model_ = model
        groups = [(p, np.arange(splits[id(p.record)], len(p.record))) for p in prepared]
        insamples = [p.record.values[:splits[id(p.record)]] for p in prepared]
        actuals = [_actual(p.record.values, origins, self.horizon) for p, origins in groups]
        # The first `horizon` values come from one model output, so every
        # damping is scored from one predict call.
        self.damping_ = 1.0
        undamped = self._forecast_groups(groups, self.horizon, model_space=True)
        scores = []
        for damping in DAMPINGS:
            per_series = []
            for (p, origins), (z, neutral), actual, insample in zip(groups, undamped, actuals,
                                                                    insamples):
                forecast = self._inverse(p, origins, neutral + damping * (z - neutral))
                per_series.append(np.nanmean(np.abs(actual - forecast)) /
                                  _seasonal_scale(insample, self.season_))
            scores.append(float(np.mean(per_series)))
        baselines = []
        for (p, origins), actual, insample in zip(groups, actuals, insamples):
            full = origins[:len(origins) - self.horizon + 1]
            naive = baseline_forecasts(p.record.values, full, self.horizon, self.season_)
            scale = _seasonal_scale(insample, self.season_)
            baselines.append({name: np.mean(np.abs(actual[:len(full)] - f)) / scale
                              for name, f in naive.items()})
        return {"epochs": stop.best_epoch + 1, "scores": scores, "model": model,
                "groups": groups, "insamples": insamples, "log": spec.log,
                "baselines": {name: float(np.mean([b[name] for b in baselines]))
                              for name in BASELINES}}

    def _residuals(self, trial, steps):
        """The scaled errors of each fold's model on its validation span at the
        trial's damping, `steps` ahead: one array per step."""
        space = np.log if trial["log"] else (lambda v: v)
        residuals = [[] for _ in range(steps)]
        self.damping_ = trial["damping"]
        for fold in trial["folds"]:
            self.model_ = fold["model"]
            forecasts = self._forecast_groups(fold["groups"], steps)
            for (p, origins), forecast, insample in zip(fold["groups"], forecasts,
                                                        fold["insamples"]):
                actual = _actual(p.record.values, origins, steps)
                errors = (space(actual) - space(forecast)) / \
                    _seasonal_scale(space(insample), self.season_)
                for h in range(steps):
                    column = errors[:, h]
                    residuals[h].extend(column[~np.isnan(column)].tolist())
        return [np.array(r) for r in residuals]

    def _residual_steps(self, records):
        """Steps ahead whose validation errors are kept for intervals: up to
        a season, but only the model's own horizon with past covariates
        (whose values after an origin a forecast cannot know)."""
        if any(r.covariates is not None for r in records):
            return self.horizon
        shortest = min(self._validation_length(len(r)) for r in records)
        return max(self.horizon, min(max(self.season_, 1), max(1, shortest // 2)))

    def _train_final(self, spec, records, epochs):
        prepared = [self._prepare(r, spec, len(r)) for r in records]
        x, y = self._windows(prepared, lambda p: 0, lambda p: len(p.record) - self.horizon)
        model = self._new_model(x.shape[-1])
        model.fit(x, y, epochs=epochs, batch_size=self.batch_size, verbose=0)
        self.model_ = model
        self.series_ = {r.id: _FittedSeries.from_prepared(p, self.window_, self.season_)
                        for r, p in zip(records, prepared)}
        self.name_ = records[0].name

    # ------------------------------------------------------------ forecast

    def _forecast_origins(self, prepared, origins, steps):
        """Forecasts of `steps` values from each origin, (B, steps), series units."""
        return self._forecast_groups([(prepared, origins)], steps)[0]

    def _forecast_groups(self, groups, steps, model_space=False):
        """Forecasts from the origins of several series at once: one predict
        call per `horizon` values ahead, all origins batched. With
        `model_space`, each series' (z, no-change z) of the first chunk."""
        window, horizon = self.window_, self.horizon
        chunks = -(-steps // horizon)
        buffers = []
        for p, origins in groups:
            needed = int(origins.max()) + (chunks + 1) * horizon
            if p.calendar is None or len(p.calendar) < needed:
                p.calendar = self._calendar(p.record, needed)
            times = origins[:, None] - window + np.arange(window)
            buffer = np.empty((len(origins), window + chunks * horizon))
            buffer[:, :window] = p.z[times - p.transform.lost]
            buffers.append(buffer)
        for chunk in range(chunks):
            parts, anchors = [], []
            for (p, origins), buffer in zip(groups, buffers):
                if chunk and p.covariates is not None:
                    raise ForecastError(f"forecasting {steps} steps with a horizon-{horizon} model "
                                        "needs the past covariates after the origin: fit with "
                                        f"horizon={steps} (direct) or forecast at most "
                                        f"{horizon} steps")
                shift = chunk * horizon
                x, anchor = p.inputs(origins + shift, window,
                                     z=buffer[:, shift:shift + window])
                parts.append(x)
                anchors.append(anchor)
            output = self.model_.predict(np.concatenate(parts)).astype(np.float64)
            if model_space:
                return self._model_space_chunk(groups, buffers, anchors, output)
            row = 0
            for (p, _), buffer, anchor in zip(groups, buffers, anchors):
                start = window + chunk * horizon
                z = output[row:row + len(buffer)] + anchor
                neutral = p.transform.no_change(buffer[:, start - window:start])
                buffer[:, start:start + horizon] = neutral + self.damping_ * (z - neutral)
                row += len(buffer)
        return [self._inverse(p, origins, buffer[:, window:window + steps])
                for (p, origins), buffer in zip(groups, buffers)]

    def _model_space_chunk(self, groups, buffers, anchors, output):
        chunks, row, window = [], 0, self.window_
        for (p, _), buffer, anchor in zip(groups, buffers, anchors):
            z = output[row:row + len(buffer)] + anchor
            chunks.append((z, p.transform.no_change(buffer[:, :window])))
            row += len(buffer)
        return chunks

    def _inverse(self, prepared, origins, z_future):
        """Series values of model-space forecasts from `origins`, (B, steps)."""
        needed = max(prepared.transform.lost, 1)
        history = prepared.record.values[origins[:, None] - needed + np.arange(needed)]
        with np.errstate(over="ignore"):
            return prepared.transform.inverse(z_future, history)

    def _validation_residuals(self, h):
        """The scaled validation errors `h` steps ahead (0-based); past the
        steps validated, the last step's widened by sqrt(steps / last)."""
        kept = len(self.residuals_)
        if h < kept:
            return self.residuals_[h]
        return self.residuals_[-1] * math.sqrt((h + 1) / kept)

    def _bands(self, forecast, offsets):
        return forecast * np.exp(offsets) if self.residual_log_ else forecast + offsets

    def _quantiles(self, forecast, levels, residual_scale):
        """Each quantile level's values around `forecast` (..., steps)."""
        steps = forecast.shape[-1]
        return {level: self._bands(forecast, residual_scale * np.array(
                    [_conformal_quantile(self._validation_residuals(h), level)
                     for h in range(steps)]))
                for level in levels}

    def _rolling_quantiles(self, forecast, actual, origins, levels, residual_scale):
        """As ``_quantiles`` for forecasts from many origins, each drawing on
        the validation errors and on the errors of the earlier forecasts whose
        values were known at its origin."""
        space = np.log if self.residual_log_ else (lambda v: v)
        with np.errstate(invalid="ignore", divide="ignore"):
            errors = (space(actual) - space(forecast)) / residual_scale
        bands = {level: np.empty_like(forecast) for level in levels}
        for h in range(forecast.shape[1]):
            base = self._validation_residuals(h)
            for row, origin in enumerate(origins):
                known = errors[origins + h < origin, h]
                pool = np.concatenate([base, known[~np.isnan(known)]])
                for level in levels:
                    bands[level][row, h] = self._bands(
                        forecast[row, h], residual_scale * _conformal_quantile(pool, level))
        return bands

    def _check_fitted(self):
        if self.model_ is None or not hasattr(self, "series_"):
            raise RuntimeError("this Forecaster is not fitted yet: call fit (or load) first")

    def _fitted(self, series):
        if series is None:
            if len(self.series_) != 1:
                raise ValueError(f"this forecaster knows {len(self.series_)} series: pass "
                                 f"series= one of {list(self.series_)[:10]}")
            return next(iter(self.series_.values()))
        if series not in self.series_:
            raise ValueError(f"unknown series {series!r}; the forecaster knows "
                             f"{list(self.series_)[:10]}")
        return self.series_[series]

    def predict(self, steps, quantiles=None, *, series=None, history=None, covariates=None):
        """Forecast `steps` values after the end of a series.

        Parameters
        ----------
        steps : int >= 1
        quantiles : list of float in (0, 1), optional
            E.g. [0.1, 0.5, 0.9]: the forecast plus the empirical quantile
            of the validation errors at each step ahead (in log space for a
            log transform); beyond the steps validated, the last step's
            quantiles widened by sqrt(step / last).
        series : str or int, optional
            Which fitted series (required when the forecaster knows many).
        history : series, optional
            Forecast from the end of this series instead (the same kinds as
            ``fit`` takes); it is scaled as fitted series `series` was, or,
            for a forecaster of many series given no `series`, on itself.
        covariates : array_like, optional
            The past covariates of `history`.

        Returns
        -------
        Forecast
        """
        self._check_fitted()
        steps = checked_int("steps", steps, 1)
        levels = _checked_quantiles(quantiles)
        with self._threads():
            if history is None:
                fitted = self._fitted(series)
                record, prepared = fitted.record, fitted.prepared(self)
            else:
                (record,), _ = series_inputs(history, covariates, target=self.name_
                                             if _has_columns(history) else None)
                fitted = (self._fitted(series) if series is not None or len(self.series_) == 1
                          else None)
                prepared = self._prepare_history(record, fitted, steps)
            needed = self.window_ + prepared.transform.lost
            if len(record) < needed:
                raise ForecastError(f"{_label(record)} has {len(record)} values; forecasting "
                                    f"needs the last {needed} (window {self.window_} plus "
                                    f"differencing {prepared.transform.lost})")
            origins = np.array([len(record)])
            forecast = self._forecast_origins(prepared, origins, steps)
            scale = (fitted.residual_scale if fitted is not None
                     else _FittedSeries.residual_scale_of(record.values, self))
            bands = self._quantiles(forecast, levels, scale)
        dates = None
        if record.dates is not None and len(record.dates) >= 3:
            frequency = self.frequency_ or dates_calendar.infer_frequency(record.dates)
            dates = np.asarray(dates_calendar.future_dates(record.dates[-1], frequency, steps))
        return Forecast(record.id, record.name, forecast[0], dates,
                        {level: values[0] for level, values in bands.items()})

    def _prepare_history(self, record, fitted, steps):
        if fitted is None:  # a new series for a global model: scaled on itself
            return self._prepare(record, TransformSpec.parse(self.transform_), len(record))
        if (record.covariates is None) != (fitted.covariate_offset is None):
            raise ValueError("the history must have the covariates the forecaster was fitted "
                             f"with: {list(fitted.record.covariate_names)}")
        if record.covariates is not None and \
                record.covariates.shape[1] != len(fitted.covariate_offset):
            raise ValueError(f"the history has {record.covariates.shape[1]} covariates, the "
                             f"forecaster was fitted with {len(fitted.covariate_offset)}")
        scaling = None if record.covariates is None else (fitted.covariate_offset,
                                                          fitted.covariate_scale)
        try:
            return _Prepared(record, fitted.transform, scaling, None, self.horizon)
        except ValueError as e:
            raise ForecastError(f"{_label(record)}: {e}") from None

    # ------------------------------------------------------------ backtest

    def backtest(self, series, start=0.8, horizon=None, stride=1, refit=False, covariates=None,
                 quantiles=(0.1, 0.5, 0.9), *, target=None):
        """Rolling-origin evaluation on one series.

        The forecaster is fitted on the values before `start`, then forecasts
        `horizon` values from every `stride`-th origin from `start` on (all
        origins in one batched predict call per `horizon` model outputs: the
        same forecasts as one origin at a time, with no per-origin loop).
        With ``refit=True`` it is fitted again on all values before each
        origin instead (slow: one training per origin).

        Parameters
        ----------
        series : one series, as ``fit`` takes
        start : float in (0, 1) or int
            Where the test span starts: a fraction of the series or an index.
        horizon : int >= 1, optional
            Values forecast from each origin; default: the model's horizon.
        stride : int >= 1
            Steps between origins.
        refit : bool
        quantiles : list of float in (0, 1)
            The interval levels whose coverage is reported (symmetric pairs
            make intervals, e.g. 0.1 and 0.9 the 80% one).

        Returns
        -------
        BacktestResult
            Forecasts of the model and of each baseline, every error measure
            (MASE scaled by the seasonal naive error on the values before
            `start`), interval coverage and the choices made.
        """
        (record,), _ = series_inputs(series, covariates, target=target)
        horizon = self.horizon if horizon is None else checked_int("horizon", horizon, 1)
        stride = checked_int("stride", stride, 1)
        levels = _checked_quantiles(quantiles)
        n = len(record)
        first = _start_index(start, n)
        origins = np.arange(first, n - horizon + 1, stride)
        if len(origins) == 0:
            raise ForecastError(f"start {start!r} leaves no origin with {horizon} values after "
                                f"it in a series of {n}")
        with self._threads():
            if refit:
                forecast, bands = self._refit_forecasts(record, origins, horizon, levels)
            else:
                self._fit_records([record.head(first)])
                self.many_ = False
                fitted = self._fitted(None)
                prepared = self._prepare_history(record, fitted, horizon)
                forecast = self._forecast_origins(prepared, origins, horizon)
                bands = self._rolling_quantiles(forecast, _actual(record.values, origins, horizon),
                                                origins, levels, fitted.residual_scale)
        actual = _actual(record.values, origins, horizon)
        forecasts = {"model": forecast,
                     **baseline_forecasts(record.values, origins, horizon, self.season_)}
        insample = record.values[:first]
        errors = {name: forecast_errors(actual, f, insample, self.season_)
                  for name, f in forecasts.items()}
        coverage = {name: interval_coverage(actual, bands[low], bands[high])
                    for name, (low, high) in _interval_pairs(levels).items()}
        dates = None if record.dates is None else \
            record.dates[origins[:, None] + np.arange(horizon)]
        return BacktestResult(origins, dates, actual, forecasts, bands, errors, coverage,
                              dict(self.chosen_))

    def _refit_forecasts(self, record, origins, horizon, levels):
        forecast = np.empty((len(origins), horizon))
        bands = {level: np.empty_like(forecast) for level in levels}
        for row, origin in enumerate(origins):
            self._fit_records([record.head(origin)])
            self.many_ = False
            prediction = self.predict(horizon, levels)
            forecast[row] = prediction.values
            for level in levels:
                bands[level][row] = prediction.quantiles[level]
        return forecast, bands

    # -------------------------------------------------------- save / load

    def save(self, path):
        """Write the model, its transforms, scalers, intervals and the last
        values of each series to one fastlstm model file (no pickle)."""
        self._check_fitted()
        self.model_.save(path, metadata=self.metadata())

    def metadata(self):
        """Everything but the weights, as JSON-ready data."""
        self._check_fitted()
        return {METADATA_KEY: {
            "version": METADATA_VERSION, "params": self.get_params(),
            "season": self.season_, "window": self.window_, "transform": self.transform_,
            "damping": self.damping_,
            "calendar_features": list(self.calendar_),
            "frequency": None if self.frequency_ is None else self.frequency_.name,
            "chosen": self.chosen_, "residual_log": self.residual_log_,
            "residuals": [r.tolist() for r in self.residuals_], "many": self.many_,
            "series": [s.to_dict() for s in self.series_.values()]}}

    @property
    def column(self):
        """The name of what is forecast (the fitted series' column)."""
        self._check_fitted()
        return self.name_

    @classmethod
    def load(cls, path):
        """A Forecaster from a file written by ``save``.

        Raises
        ------
        FileNotFoundError
            No file at `path`.
        ValueError
            Not a fastlstm model file, or one saved without a forecaster's
            settings, or with damaged ones (the message says which).
        """
        model = load_model(path)
        data = model.metadata.get(METADATA_KEY) if isinstance(model.metadata, dict) else None
        if not isinstance(data, dict):
            raise ValueError(f"{path} holds a model but no forecaster settings: save it with "
                             "Forecaster.save or 'fastlstm train --save'")
        try:
            return cls._from_metadata(model, data)
        except (KeyError, TypeError, ValueError) as e:
            detail = f"no {e.args[0]!r}" if isinstance(e, KeyError) else str(e)
            raise ValueError(f"{path}: damaged forecaster settings ({detail})") from None

    @classmethod
    def _from_metadata(cls, model, data):
        if data["version"] != METADATA_VERSION:
            raise ValueError(f"settings version {data['version']!r}; this fastlstm reads "
                             f"{METADATA_VERSION}")
        forecaster = cls(**data["params"])
        forecaster.season_ = checked_int("season", data["season"], 1)
        forecaster.window_ = checked_int("window", data["window"], 1)
        forecaster.transform_ = TransformSpec.parse(data["transform"]).name
        damping = data["damping"]
        if isinstance(damping, bool) or not isinstance(damping, (int, float)) or \
                not 0 <= damping <= 1:
            raise ValueError(f"damping must be a number in [0, 1], got {reprlib.repr(damping)}")
        forecaster.damping_ = float(damping)
        forecaster.calendar_ = tuple(str(f) for f in data["calendar_features"])
        forecaster.chosen_ = dict(data["chosen"])
        forecaster.residual_log_ = bool(data["residual_log"])
        forecaster.residuals_ = [_finite_array("residuals", r) for r in data["residuals"]]
        if not forecaster.residuals_ or not all(r.size for r in forecaster.residuals_):
            raise ValueError("residuals must be non-empty lists of numbers")
        forecaster.many_ = bool(data["many"])
        series = [_FittedSeries.from_dict(s, forecaster) for s in data["series"]]
        if not series:
            raise ValueError("no series")
        forecaster.series_ = {s.record.id: s for s in series}
        forecaster.name_ = series[0].record.name
        forecaster.frequency_ = None
        if data["frequency"] is not None:
            dates = series[0].record.dates
            if dates is None or len(dates) < 3:
                raise ValueError("a frequency but too few saved dates")
            forecaster.frequency_ = dates_calendar.infer_frequency(dates)
        shape = tuple(model.input_shape)
        if shape[-2] != forecaster.window_:
            raise ValueError(f"the model reads windows of {shape[-2]} steps, the settings say "
                             f"{forecaster.window_}")
        forecaster.model_ = model
        return forecaster


class _FittedSeries:
    """What forecasting one fitted series needs: its transform, covariate
    scaling, residual scale and last values (enough for one window)."""

    def __init__(self, record, transform, covariate_offset, covariate_scale, residual_scale):
        self.record, self.transform = record, transform
        self.covariate_offset, self.covariate_scale = covariate_offset, covariate_scale
        self.residual_scale = residual_scale

    @staticmethod
    def residual_scale_of(values, forecaster):
        space = np.log(values) if forecaster.residual_log_ else values
        return _seasonal_scale(space, forecaster.season_)

    @classmethod
    def from_prepared(cls, prepared, window, season):
        record = prepared.record
        keep = max(window + prepared.transform.lost, 3)  # 3 dates tell the frequency
        scaling = (None, None) if record.covariates is None else \
            _covariate_scaling(record.covariates)
        space = np.log(record.values) if prepared.transform.spec.log else record.values
        tail = SeriesInput(record.id, record.name, record.values[-keep:].copy(),
                           None if record.dates is None else record.dates[-keep:],
                           None if record.covariates is None else record.covariates[-keep:],
                           record.covariate_names)
        return cls(tail, prepared.transform, *scaling, _seasonal_scale(space, season))

    def prepared(self, forecaster):
        scaling = None if self.covariate_offset is None else (self.covariate_offset,
                                                              self.covariate_scale)
        return _Prepared(self.record, self.transform, scaling, None, forecaster.horizon)

    def to_dict(self):
        record = self.record
        return {"id": record.id if isinstance(record.id, (str, int)) else str(record.id),
                "name": record.name, "values": record.values.tolist(),
                "dates": None if record.dates is None else [str(d) for d in record.dates],
                "covariates": None if record.covariates is None else record.covariates.tolist(),
                "covariate_names": list(record.covariate_names),
                "covariate_offset": None if self.covariate_offset is None
                else self.covariate_offset.tolist(),
                "covariate_scale": None if self.covariate_scale is None
                else self.covariate_scale.tolist(),
                "transform": self.transform.to_dict(), "residual_scale": self.residual_scale}

    @classmethod
    def from_dict(cls, data, forecaster):
        values = _finite_array("values", data["values"])
        dates = None if data["dates"] is None else np.array(data["dates"], dtype="datetime64")
        covariates = None if data["covariates"] is None else \
            _finite_array("covariates", data["covariates"], ndim=2)
        series_id = data["id"]
        if not isinstance(series_id, (str, int)) or isinstance(series_id, bool):
            raise ValueError(f"a series id must be a str or int, got {reprlib.repr(series_id)}")
        if dates is not None and dates.shape != values.shape:
            raise ValueError(f"{len(dates)} saved dates for {len(values)} values")
        if covariates is not None and len(covariates) != len(values):
            raise ValueError(f"{len(covariates)} saved covariate rows for {len(values)} values")
        record = SeriesInput(series_id, str(data["name"]), values, dates, covariates,
                             tuple(str(n) for n in data["covariate_names"]))
        offset = None if data["covariate_offset"] is None else \
            _finite_array("covariate_offset", data["covariate_offset"])
        scale = None if data["covariate_scale"] is None else \
            _finite_array("covariate_scale", data["covariate_scale"])
        transform = TargetTransform.from_dict(data["transform"])
        residual_scale = float(data["residual_scale"])
        if not (math.isfinite(residual_scale) and residual_scale > 0):
            raise ValueError("residual_scale must be a number > 0")
        return cls(record, transform, offset, scale, residual_scale)


def _conformal_quantile(values, level):
    """The empirical `level` quantile of `values` with the finite-sample
    correction of split conformal prediction: the ceil((n + 1) level)-th
    smallest above the median, the floor((n + 1) level)-th below it."""
    ordered = np.sort(values)
    n = len(ordered)
    rank = math.ceil((n + 1) * level) if level >= 0.5 else math.floor((n + 1) * level)
    return float(ordered[min(max(rank, 1), n) - 1])


def _finite_array(name, value, ndim=1):
    array = np.asarray(value)
    if array.dtype.kind not in "iuf" or array.ndim != ndim:
        raise ValueError(f"{name} must be a {ndim}-D list of numbers")
    array = array.astype(np.float64)
    if not np.isfinite(array).all():
        raise ValueError(f"{name} must hold finite numbers")
    return array


def _has_columns(obj):
    return hasattr(obj, "columns") and len(getattr(obj, "columns")) > 1


def _actual(values, origins, steps):
    """values[o .. o + steps - 1] for each origin, NaN past the end."""
    times = origins[:, None] + np.arange(steps)
    padded = np.concatenate([values, np.full(steps, np.nan)])
    return padded[times]


def _start_index(start, n):
    if isinstance(start, bool):
        raise TypeError(f"start must be a fraction in (0, 1) or an int index, got {start!r}")
    if isinstance(start, (int, np.integer)):
        if not 0 < start < n:
            raise ValueError(f"start must be an index in [1, {n - 1}], got {start}")
        return int(start)
    if isinstance(start, numbers.Real) and 0 < start < 1:
        index = int(round(start * n))
        if index < 2:
            raise ForecastError(f"start {start!r} leaves {index} of the {n} values before the "
                                "test span: nothing to train on")
        return index
    raise ValueError(f"start must be a fraction in (0, 1) or an int index, got {start!r}")


class _NoChange:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False
