"""Saving and loading fitted mixtures: a documented, versioned ``.npz`` format (no pickle).

Format ``swgmm_jax.model``, version 2 (version 1 is version 2 with full covariances only). A
NumPy ``.npz`` archive (a zip of ``.npy`` arrays) holding:

* ``params/logits``, ``params/means``, ``params/<scale>``, ``params/reg_covar``: the leaves of
  the parameters, in their dtype, with any leading batch axes (``means[*B, K, d]``); the scale
  leaf is ``scale_tril`` (:class:`swgmm_jax.GMMParams` and :class:`swgmm_jax.TiedGMMParams`),
  ``scale_diag`` (:class:`swgmm_jax.DiagGMMParams`) or ``scale``
  (:class:`swgmm_jax.SphericalGMMParams`);
* ``header``: one 0-d unicode array, a JSON object with ``format`` (``"swgmm_jax.model"``),
  ``format_version`` (an int), ``package_version``, ``covariance_type`` (version 2; ``"full"``
  when absent), ``config`` (``null``, or
  ``{"type": "FitConfig" | "EMConfig" | ..., "fields": {...}}``, nested for the sub-configs)
  and ``metadata`` (a JSON object of the caller's).

Any NumPy reads it back with ``np.load(path, allow_pickle=False)``; JSON and ``.npy`` are read
by most languages. Files are written atomically (a temporary file in the same folder, then
``os.replace``), so an interrupted save never leaves a truncated model behind. A reader refuses a
file of a newer ``format_version`` rather than misread it.
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
import json
import os
import tempfile
import zipfile
from typing import Any, NamedTuple

import jax
import numpy as np

from swgmm_jax._config import (
    EMConfig,
    FitConfig,
    InitConfig,
    OptimizerConfig,
    RelocationConfig,
    SlicingConfig,
)
from swgmm_jax._params import PARAMS_TYPES, GMMParams, batch_shape, check_params, covariance_type_of

__all__ = ["SavedModel", "save", "load", "FORMAT_NAME", "FORMAT_VERSION"]

FORMAT_NAME = "swgmm_jax.model"
FORMAT_VERSION = 2
_HEADER = "header"
_PREFIX = "params/"
_CONFIG_TYPES = {
    cls.__name__: cls
    for cls in (FitConfig, EMConfig, SlicingConfig, OptimizerConfig, InitConfig, RelocationConfig)
}


class SavedModel(NamedTuple):
    """What :func:`load` returns.

    Attributes:
      params: the :class:`swgmm_jax.GMMParams` (JAX arrays; leading batch axes kept).
      config: the :class:`swgmm_jax.FitConfig` or :class:`swgmm_jax.EMConfig` saved with
        them, or ``None``.
      metadata: the ``metadata`` dict saved with them (``{}`` if none).
      format_version: the file's format version (an int).
      package_version: the swgmm_jax version that wrote it.

    Examples:
      >>> import os, tempfile, jax.numpy as jnp, swgmm_jax as sw
      >>> params = sw.from_moments(jnp.ones(2), jnp.zeros((2, 2)), jnp.stack([jnp.eye(2)] * 2))
      >>> path = os.path.join(tempfile.mkdtemp(), "model.npz")
      >>> sw.save(path, params, metadata={"note": "two components"})
      >>> saved = sw.load(path)
      >>> saved.metadata, saved.config is None, saved.format_version
      ({'note': 'two components'}, True, 1)
    """

    params: GMMParams
    config: FitConfig | EMConfig | None
    metadata: dict
    format_version: int
    package_version: str


def _package_version() -> str:
    try:
        return importlib.metadata.version("swgmm_jax")
    except importlib.metadata.PackageNotFoundError:  # run from a source tree, not installed
        return "unknown"


def _plain(value: Any, name: str) -> Any:
    """A JSON-ready scalar for one config field, or a ValueError/TypeError naming it."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (np.generic, np.ndarray, jax.Array)) and np.ndim(value) == 0:
        return np.asarray(value).item()
    if isinstance(value, (frozenset, set)) and all(isinstance(v, str) for v in value):
        return sorted(value)  # e.g. FitConfig.freeze; the config's constructor takes any iterable of names
    if callable(value):
        raise ValueError(
            f"{name} is a callable ({value!r}), which cannot be saved portably; use one of the named settings"
        )
    raise TypeError(f"{name}: a {type(value).__name__} cannot be saved (numbers, strings, bools or None)")


def _config_to_json(config: Any, name: str = "config") -> dict:
    fields = {}
    for field in dataclasses.fields(config):
        value = getattr(config, field.name)
        sub = f"{name}.{field.name}"
        fields[field.name] = (
            _config_to_json(value, sub) if dataclasses.is_dataclass(value) else _plain(value, sub)
        )
    return {"type": type(config).__name__, "fields": fields}


def _config_from_json(data: Any, where: str) -> Any:
    if not isinstance(data, dict) or data.get("type") not in _CONFIG_TYPES or "fields" not in data:
        raise ValueError(f"{where}: the header's config is not a swgmm_jax config: {data!r:.200}")
    kwargs = {
        name: _config_from_json(v, where) if isinstance(v, dict) else v for name, v in data["fields"].items()
    }
    try:
        return _CONFIG_TYPES[data["type"]](**kwargs)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{where}: the saved {data['type']} cannot be rebuilt: {err}") from err


def save(
    path: str | os.PathLike,
    params: GMMParams,
    *,
    config: FitConfig | EMConfig | None = None,
    metadata: dict | None = None,
) -> None:
    """Write ``params`` (and the config and metadata) to ``path`` in the ``swgmm_jax.model`` format.

    The format is described in this module's docstring (:mod:`swgmm_jax._io`): an ``.npz``
    archive of the parameter arrays plus one JSON header; no pickle. Written atomically.

    Args:
      path: the file to write (used as given; ``.npz`` is the customary suffix). Its folder must
        exist; an existing file is replaced.
      params: :class:`swgmm_jax.GMMParams`, possibly batched (``means[*B, K, d]``); leaves are
        saved in their dtype.
      config: the :class:`swgmm_jax.FitConfig` or :class:`swgmm_jax.EMConfig` of the fit, or
        ``None``. A callable ``lr_schedule`` cannot be saved (a ValueError says so).
      metadata: a dict of JSON-serialisable values (e.g. the data's provenance), or ``None``.

    Examples:
      >>> import os, tempfile, jax.numpy as jnp, swgmm_jax as sw
      >>> params = sw.from_moments(jnp.ones(2), jnp.zeros((2, 2)), jnp.stack([jnp.eye(2)] * 2))
      >>> path = os.path.join(tempfile.mkdtemp(), "model.npz")
      >>> sw.save(path, params, config=sw.FitConfig(n_steps=50))
      >>> sw.load(path).config.n_steps
      50
    """
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a str or os.PathLike, got {type(path).__name__}")
    params = check_params(params, batch_dims=batch_shape(params), values=False)
    if config is not None and not isinstance(config, (FitConfig, EMConfig)):
        raise TypeError(f"config must be a FitConfig, an EMConfig or None, got {type(config).__name__}")
    if metadata is not None and not isinstance(metadata, dict):
        raise TypeError(f"metadata must be a dict or None, got {type(metadata).__name__}")
    covariance_type = covariance_type_of(params)
    header = {
        "format": FORMAT_NAME,
        # Full-covariance files stay version 1, which every earlier reader reads.
        "format_version": 1 if covariance_type == "full" else FORMAT_VERSION,
        "covariance_type": covariance_type,
        "package_version": _package_version(),
        "config": None if config is None else _config_to_json(config),
        "metadata": {} if metadata is None else metadata,
    }
    try:
        text = json.dumps(header, allow_nan=True)
    except (TypeError, ValueError) as err:
        raise TypeError(f"metadata must hold JSON-serialisable values only: {err}") from err
    arrays = {_PREFIX + field: np.asarray(getattr(params, field)) for field in type(params)._fields}
    arrays[_HEADER] = np.array(text)
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=".npz")
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)  # type: ignore[arg-type]
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def load(path: str | os.PathLike) -> SavedModel:
    """Read a model written by :func:`save` (or :meth:`swgmm_jax.GaussianMixture.save`).

    Args:
      path: the file.

    Returns:
      :class:`SavedModel` ``(params, config, metadata, format_version, package_version)``.

    Raises:
      FileNotFoundError: naming ``path`` when there is no such file.
      ValueError: naming ``path`` for a corrupt file, an ``.npz`` that is not a swgmm_jax model,
        or one of a newer format version than this swgmm_jax reads.

    Examples:
      >>> import os, tempfile, jax, jax.numpy as jnp, swgmm_jax as sw
      >>> one = sw.from_moments(jnp.ones(2), jnp.zeros((2, 2)), jnp.stack([jnp.eye(2)] * 2))
      >>> restarts = jax.tree.map(lambda a: jnp.stack([a] * 3), one)  # batched params round-trip too
      >>> path = os.path.join(tempfile.mkdtemp(), "restarts.npz")
      >>> sw.save(path, restarts)
      >>> sw.load(path).params.means.shape
      (3, 2, 2)
    """
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a str or os.PathLike, got {type(path).__name__}")
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(2, "No such model file", path)
    if not zipfile.is_zipfile(path):  # np.load would try a .npy, or pickle, first
        raise ValueError(f"{path} is not a readable swgmm_jax model file (not an .npz archive)")
    try:
        archive = np.load(path, allow_pickle=False)
        if not isinstance(archive, np.lib.npyio.NpzFile):
            raise ValueError("a single .npy array, not an .npz archive")
        with archive:
            if _HEADER not in archive.files:
                raise _Foreign(f"it has no {_HEADER!r} entry (entries: {sorted(archive.files)[:8]})")
            text = archive[_HEADER]
            arrays = {
                f[len(_PREFIX) :]: archive[f] for f in archive.files if f.startswith(_PREFIX) and f != _HEADER
            }
    except _Foreign as err:
        raise ValueError(f"{path} is not a swgmm_jax model file: {err}") from None
    except (ValueError, OSError, EOFError, zipfile.BadZipFile, KeyError) as err:
        raise ValueError(
            f"{path} is not a readable swgmm_jax model file (corrupt or foreign): {err}"
        ) from err
    try:
        if text.dtype.kind != "U" or text.ndim != 0:
            raise ValueError(f"the header is a {text.dtype} array of shape {text.shape}, not a JSON string")
        header = json.loads(str(text))
        if not isinstance(header, dict):
            raise ValueError("the header is not a JSON object")
    except ValueError as err:
        raise ValueError(f"{path} is not a readable swgmm_jax model file (corrupt header): {err}") from err
    if header.get("format") != FORMAT_NAME:
        raise ValueError(f"{path} is not a swgmm_jax model file (format {header.get('format')!r})")
    version = header.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise ValueError(f"{path}: corrupt header (format_version {version!r})")
    if version > FORMAT_VERSION:
        raise ValueError(
            f"{path} was written in format version {version} by swgmm_jax "
            f"{header.get('package_version', '?')}; this swgmm_jax ({_package_version()}) reads versions up "
            f"to {FORMAT_VERSION}: upgrade swgmm_jax to load it"
        )
    covariance_type = header.get("covariance_type", "full")
    if covariance_type not in PARAMS_TYPES:
        raise ValueError(f"{path}: corrupt header (covariance_type {covariance_type!r})")
    cls = PARAMS_TYPES[covariance_type]
    missing = [f for f in cls._fields if f not in arrays]
    if missing:
        raise ValueError(f"{path}: corrupt model file (no {', '.join(_PREFIX + f for f in missing)})")
    try:
        raw = cls(**{f: arrays[f] for f in cls._fields})  # NumPy leaves, converted by check_params
        params = check_params(raw, "params", batch_dims=batch_shape(raw), values=False)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{path}: corrupt model file ({err})") from err
    config = None if header.get("config") is None else _config_from_json(header["config"], path)
    metadata = header.get("metadata", {})
    if not isinstance(metadata, dict):
        raise ValueError(f"{path}: corrupt header (metadata is a {type(metadata).__name__})")
    return SavedModel(params, config, metadata, version, str(header.get("package_version", "unknown")))


class _Foreign(Exception):
    """An ``.npz`` that reads, but is not a swgmm_jax model."""
