"""The embedding study's networks on Equinox (``eqx.nn`` layers) and optax.

A network is described by a *spec*, a hashable tuple of layer tuples (it goes
into the settings JSON and the checkpoint key), and :func:`build` turns it into
an ``eqx.nn.Sequential`` of Equinox layers. Models act on one example (no batch
axis; :func:`predict` and the training loops ``vmap`` them); images are
channels last ``[h, w, c]`` outside and channels first inside (Equinox's
convolution layout), so image models start and end with a transpose. Layers:

* ``("conv", c_out, padding)``: ``eqx.nn.Conv2d``, 3x3, stride 1, ``"SAME"``/``"VALID"``;
* ``("dense", n_out)``: ``eqx.nn.Linear``; ``("lrelu",)`` (Keras' default slope 0.3);
* ``("maxpool",)`` / ``("avgpool",)``: ``eqx.nn.MaxPool2d`` / ``AvgPool2d``, 2x2,
  stride 2, padded at the end on odd sizes (Keras' ``"same"``: 7x7 pools to 4x4
  as in the paper's tables; the average counts only pixels inside the image);
* ``("up",)``: 2x nearest-neighbour upsampling; ``("flatten",)``;
  ``("reshape", (h, w, c))``; ``("sigmoid",)``.

Architectures (:class:`Architecture`) follow the paper's supplementary tables
(Section 7.3, Figures 7-8): :func:`mnist_architecture` is the MNIST autoencoder
layer for layer (narrower with ``channels``), :func:`pyramid_architecture` with
channels ``(16, 32, 64, 64)`` at 64x64 is the CelebA one, and
:func:`digits_architecture` scales the MNIST design down to 8x8 images. Kernels
start He-uniform (``jax.nn.initializers``), biases at zero, instead of Keras'
Glorot-uniform (the paper's framework) or Equinox's default: see ``_he_init``.
Every model trains with
``optax.rmsprop``, as the paper. Models are checkpointed with
``eqx.tree_serialise_leaves`` (:func:`save_model` / :func:`load_model`).

Training functions run one jitted ``lax.scan`` per epoch over shuffled
minibatches (the last incomplete batch is dropped); :func:`train_binary_many`
trains ``R`` discriminators at once, ``eqx.filter_vmap`` over stacked models.
"""

from __future__ import annotations

import io
import pathlib
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax

from experiments import _common

__all__ = [
    "Architecture",
    "build",
    "build_many",
    "model_shapes",
    "digits_architecture",
    "mnist_architecture",
    "pyramid_architecture",
    "mlp_spec",
    "train_autoencoder",
    "train_classifier",
    "train_binary",
    "train_binary_many",
    "apply_many",
    "predict",
    "count_params",
    "output_shape",
    "save_model",
    "load_model",
]

LEAKY_SLOPE = 0.3  # Keras' LeakyReLU default, the paper's framework

Spec = tuple


class Architecture(NamedTuple):
    """The networks of one image type.

    Attributes:
      image_shape: ``(h, w, c)``.
      code_dim: dimension of the code (the GMM's space).
      encoder: image ``[h, w, c]`` -> code ``[code_dim]``.
      decoder: code -> image in ``[0, 1]`` (sigmoid output).
      image_discriminator: image -> 1 logit (real vs reconstructed), the
        adversarial part of the autoencoder loss.
      classifier: image -> ``n_classes`` logits (purity scoring).
      code_discriminator: code -> 1 logit (real code vs GMM sample), the
        fooling-rate network.
    """

    image_shape: tuple
    code_dim: int
    encoder: Spec
    decoder: Spec
    image_discriminator: Spec
    classifier: Spec
    code_discriminator: Spec


# --------------------------------------------------------------------------- layers


def _lrelu(x):
    return jax.nn.leaky_relu(x, LEAKY_SLOPE)


class _Reshape(eqx.Module):
    """Reshape (``(-1,)`` flattens) or, with ``transpose``, permute the axes."""

    shape: tuple = eqx.field(static=True)
    transpose: bool = eqx.field(static=True, default=False)

    def __call__(self, x, *, key=None):
        return jnp.transpose(x, self.shape) if self.transpose else jnp.reshape(x, self.shape)


class _Upsample(eqx.Module):
    """2x nearest-neighbour upsampling of a ``[c, h, w]`` image."""

    def __call__(self, x, *, key=None):
        return jnp.repeat(jnp.repeat(x, 2, axis=1), 2, axis=2)


class _AvgPoolSame(eqx.Module):
    """Average pooling that, like Keras' ``"same"`` padding, averages only the pixels inside."""

    pool: eqx.nn.AvgPool2d

    def __call__(self, x, *, key=None):
        return self.pool(x) / self.pool(jnp.ones((1, *x.shape[1:]), x.dtype))


def _he_init(layer, key):
    """He-uniform kernel (``jax.nn.initializers.he_uniform``), zero bias.

    Equinox's default (uniform in ``±1/sqrt(fan_in)``, a third of the variance
    that keeps a signal's scale through a ReLU layer) and Keras' Glorot-uniform
    (about half) both shrink the signal layer by layer: at initialisation the
    quick MNIST encoder's codes varied by 1e-3 (Equinox) or 8e-3 (Glorot) across
    images and the decoder's output by 1e-4, and the autoencoder learned a
    constant image. With He-uniform: 0.17 and 0.06.
    """
    # Weights are [out, in, *kernel] (Conv2d) or [out, in] (Linear).
    init = jax.nn.initializers.he_uniform(in_axis=1, out_axis=0)
    w = init(key, layer.weight.shape, layer.weight.dtype)
    return eqx.tree_at(lambda m: (m.weight, m.bias), layer, (w, jnp.zeros_like(layer.bias)))


def _build(key: jax.Array, spec: Spec, in_shape: tuple) -> eqx.nn.Sequential:
    shape = tuple(int(v) for v in in_shape)
    layers: list[Any] = []
    if len(shape) == 3:  # [h, w, c] -> [c, h, w]
        layers.append(_Reshape((2, 0, 1), transpose=True))
        shape = (shape[2], shape[0], shape[1])
    keys = iter(jax.random.split(key, 2 * len(spec) + 1))
    for layer in spec:
        kind = layer[0]
        if kind == "conv":
            c_in, h, w = shape
            layers.append(
                _he_init(eqx.nn.Conv2d(c_in, layer[1], 3, padding=layer[2], key=next(keys)), next(keys))
            )
            shape = (layer[1], h, w) if layer[2] == "SAME" else (layer[1], h - 2, w - 2)
        elif kind == "dense":
            if len(shape) != 1:
                raise ValueError(f"dense layer needs a flat input, got shape {shape}")
            layers.append(_he_init(eqx.nn.Linear(shape[0], int(layer[1]), key=next(keys)), next(keys)))
            shape = (int(layer[1]),)
        elif kind in ("maxpool", "avgpool"):
            c, h, w = shape
            pad = ((0, h % 2), (0, w % 2))
            pool = eqx.nn.MaxPool2d(2, 2, padding=pad) if kind == "maxpool" else eqx.nn.AvgPool2d(2, 2, pad)
            layers.append(pool if kind == "maxpool" else _AvgPoolSame(pool))
            shape = (c, -(-h // 2), -(-w // 2))
        elif kind == "up":
            layers.append(_Upsample())
            shape = (shape[0], 2 * shape[1], 2 * shape[2])
        elif kind == "flatten":
            layers.append(_Reshape((-1,)))
            shape = (int(np.prod(shape)),)
        elif kind == "reshape":
            h, w, c = layer[1]
            if h * w * c != int(np.prod(shape)):
                raise ValueError(f"cannot reshape {shape} to {layer[1]}")
            layers.append(_Reshape((c, h, w)))
            shape = (c, h, w)
        elif kind == "lrelu":
            layers.append(eqx.nn.Lambda(_lrelu))
        elif kind == "sigmoid":
            layers.append(eqx.nn.Lambda(jax.nn.sigmoid))
        else:
            raise ValueError(f"unknown layer {layer!r}")
    if len(shape) == 3:  # back to [h, w, c]
        layers.append(_Reshape((1, 2, 0), transpose=True))
    return eqx.nn.Sequential(layers)


# One compilation per (spec, shape): Equinox's layer initialisers, run op by op, would compile
# one random-number kernel per new layer shape.
_build_jit = eqx.filter_jit(_build)


def build(key: jax.Array, spec: Spec, in_shape: Sequence[int]) -> eqx.nn.Sequential:
    """The Equinox model of ``spec`` for one input of shape ``in_shape`` (no batch axis)."""
    return _build_jit(key, spec, tuple(int(v) for v in in_shape))


@eqx.filter_jit
def _build_many(keys, spec, in_shape):
    return eqx.filter_vmap(lambda k: _build(k, spec, in_shape))(keys)


def build_many(keys: jax.Array, spec: Spec, in_shape: Sequence[int]) -> eqx.nn.Sequential:
    """``len(keys)`` models of ``spec`` stacked along a leading axis of every array leaf.

    Model ``r`` equals ``build(keys[r], spec, in_shape)``.
    """
    return _build_many(keys, spec, tuple(int(v) for v in in_shape))


def model_shapes(spec: Spec, in_shape: Sequence[int]) -> eqx.nn.Sequential:
    """The model of ``spec`` with ``jax.ShapeDtypeStruct`` leaves (nothing is computed)."""
    return eqx.filter_eval_shape(_build, jax.random.key(0), spec, tuple(int(v) for v in in_shape))


def output_shape(spec: Spec, in_shape: Sequence[int]) -> tuple:
    """Shape of the output of ``spec`` for one input of shape ``in_shape`` (nothing is computed)."""
    model = model_shapes(spec, in_shape)
    out = eqx.filter_eval_shape(lambda m, x: m(x), model, jax.ShapeDtypeStruct(tuple(in_shape), jnp.float32))
    return tuple(out.shape)


def count_params(model) -> int:
    """Number of parameters (array entries) of a model, concrete or from :func:`model_shapes`."""
    leaves = jax.tree.leaves(model)
    return int(sum(np.prod(a.shape) for a in leaves if isinstance(a, (jax.Array, jax.ShapeDtypeStruct))))


def save_model(path, model) -> None:
    """Write ``model``'s arrays with ``eqx.tree_serialise_leaves``, atomically."""
    buf = io.BytesIO()
    eqx.tree_serialise_leaves(buf, model)
    _common.atomic_write_bytes(pathlib.Path(path), buf.getvalue())


def load_model(path, like):
    """Read a model written by :func:`save_model`; ``like`` (:func:`model_shapes`) gives its structure."""
    return eqx.tree_deserialise_leaves(pathlib.Path(path), like)


# --------------------------------------------------------------------------- architectures


def _conv_pair(c, pad="SAME"):
    return (("conv", c, pad), ("lrelu",), ("conv", c, "SAME"), ("lrelu",))


def _conv_stack(channels, pool, n_out):
    layers = []
    for c in channels:
        layers += [*_conv_pair(c), (pool,)]
    return tuple(layers) + (("flatten",), ("dense", n_out))


def mlp_spec(widths: Sequence[int], n_out: int = 1) -> Spec:
    """Dense layers of the given widths with leaky ReLUs, then a linear output.

    The paper's fooling-rate network for MNIST is ``mlp_spec((256, 512, 256))``
    (its table lists no activation layers; they would be arguments of Keras'
    ``Dense``, so a leaky ReLU is assumed).
    """
    layers = []
    for w in widths:
        layers += [("dense", int(w)), ("lrelu",)]
    return tuple(layers) + (("dense", int(n_out)),)


def mnist_architecture(
    code_dim: int = 128, n_classes: int = 10, disc_widths=(256, 512, 256), channels=(8, 16, 32)
) -> Architecture:
    """The paper's MNIST networks (Figure 7), layer for layer with the default ``channels``.

    The encoder uses average pooling and the image discriminator max pooling,
    as in the tables. The classifier for purity is not specified in the paper:
    the image discriminator's design with ``n_classes`` outputs is used.
    ``channels`` (three stages) narrows every network for the CPU.
    """
    c1, c2, c3 = channels
    encoder = _conv_stack((c1, c2, c3), "avgpool", code_dim)
    decoder = (
        ("dense", 16 * c3),
        ("reshape", (4, 4, c3)),
        *_conv_pair(c3),
        ("up",),
        *_conv_pair(c3),
        ("up",),
        *_conv_pair(c2, "VALID"),
        ("up",),  # 16x16 -> 14x14 -> 28x28
        ("conv", 1, "SAME"),
        ("sigmoid",),
    )
    image_disc = _conv_stack((c1, c2, c3), "maxpool", 1)
    classifier = _conv_stack((c1, c2, c3), "maxpool", n_classes)
    return Architecture(
        (28, 28, 1), code_dim, encoder, decoder, image_disc, classifier, mlp_spec(disc_widths)
    )


def pyramid_architecture(
    size: int,
    channels: Sequence[int],
    code_dim: int,
    image_channels: int = 3,
    n_classes: int = 10,
    disc_widths=(512, 1024, 512),
    dense_activation: bool = True,
) -> Architecture:
    """Encoder/decoder pyramid for ``size x size`` images, the paper's CelebA design.

    Each stage is two 3x3 convolutions (leaky ReLU) and a 2x2 pooling, down to
    ``size / 2**len(channels)``; the decoder mirrors it with upsampling. With
    ``size=64, channels=(16, 32, 64, 64), code_dim=256`` this is the paper's
    CelebA autoencoder (Figure 7) and ``disc_widths=(512, 1024, 512)`` its
    fooling-rate network (Figure 8).
    """
    base = size // 2 ** len(channels)
    if base * 2 ** len(channels) != size or base < 1:
        raise ValueError(f"size {size} is not divisible by 2**{len(channels)}")
    encoder = _conv_stack(channels, "avgpool", code_dim)
    decoder = [("dense", base * base * channels[-1])]
    if dense_activation:
        decoder.append(("lrelu",))
    decoder.append(("reshape", (base, base, channels[-1])))
    for c in reversed(channels):
        decoder += [*_conv_pair(c), ("up",)]
    decoder += [("conv", image_channels, "SAME"), ("sigmoid",)]
    image_disc = _conv_stack(channels, "maxpool", 1)
    classifier = _conv_stack(channels, "maxpool", n_classes)
    return Architecture(
        (size, size, image_channels),
        code_dim,
        encoder,
        tuple(decoder),
        image_disc,
        classifier,
        mlp_spec(disc_widths),
    )


def digits_architecture(code_dim: int = 16, n_classes: int = 10, disc_widths=(256, 512, 256)) -> Architecture:
    """The MNIST design scaled to 8x8 images: two stages (8, 16 channels) down to 2x2."""
    return pyramid_architecture(
        8,
        (8, 16),
        code_dim,
        image_channels=1,
        n_classes=n_classes,
        disc_widths=disc_widths,
        dense_activation=False,
    )


# --------------------------------------------------------------------------- training


def _rmsprop(lr):
    # Keras' RMSprop: rho 0.9, epsilon 1e-7 (outside the square root in optax).
    return optax.rmsprop(lr, decay=0.9, eps=1e-7)


def _batches(key, n, batch_size):
    nb = max(n // batch_size, 1)
    b = min(batch_size, n)
    return jax.random.permutation(key, n)[: nb * b].reshape(nb, b)


def _bce_logits(logits, target):
    """Binary cross-entropy of logits against a 0/1 target, numerically stable."""
    return jnp.mean(optax.sigmoid_binary_cross_entropy(logits, jnp.broadcast_to(target, logits.shape)))


def _bce_images(probs, target):
    """Binary cross-entropy of images in ``(0, 1)`` against targets in ``[0, 1]``."""
    p = jnp.clip(probs, 1e-6, 1 - 1e-6)
    return -jnp.mean(target * jnp.log(p) + (1 - target) * jnp.log1p(-p))


def _batched(model):
    return jax.vmap(model)


@eqx.filter_jit
def _ae_epoch(models, opt_states, key, x, lr, batch_size, adv_weight, warmup_loss):
    # lr, batch_size, adv_weight and warmup_loss are Python values: static under filter_jit.
    params, static = eqx.partition(models, eqx.is_array)
    opt = _rmsprop(lr)
    idx = _batches(key, x.shape[0], batch_size)

    def step(carry, batch_idx):
        (p_ae, p_d), (s_ae, s_d) = carry
        xb = x[batch_idx]

        def autoencode(p):
            enc, dec = eqx.combine(p, static[0])
            return jax.vmap(lambda im: dec(enc(im)))(xb)

        # One forward pass of the autoencoder serves both updates: its output is
        # the discriminator's fake batch, and its pullback carries the
        # autoencoder's gradient.
        recon, pullback = jax.vjp(autoencode, p_ae)
        fake = jax.lax.stop_gradient(recon)

        def d_loss(pd):
            d = eqx.combine(pd, static[1])
            return _bce_logits(_batched(d)(xb), 1.0) + _bce_logits(_batched(d)(fake), 0.0)

        ld, gd = jax.value_and_grad(d_loss)(p_d)
        upd, s_d = opt.update(gd, s_d, p_d)
        p_d = optax.apply_updates(p_d, upd)
        disc = eqx.combine(p_d, static[1])

        def recon_loss(r):
            mae = jnp.mean(jnp.abs(r - xb))
            adv = _bce_logits(_batched(disc)(r), 1.0)
            return mae + adv_weight * adv, (mae, adv)

        if adv_weight:
            (_, (mae, adv)), g_r = jax.value_and_grad(recon_loss, has_aux=True)(recon)
        else:  # warm-up: the adversarial term is only reported
            mae = jnp.mean(jnp.abs(recon - xb))
            if warmup_loss == "bce":
                g_r = jax.grad(lambda r: _bce_images(r, xb))(recon)
            else:
                g_r = jax.grad(lambda r: jnp.mean(jnp.abs(r - xb)))(recon)
            adv = _bce_logits(_batched(disc)(fake), 1.0)
        (g,) = pullback(g_r)
        upd, s_ae = opt.update(g, s_ae, p_ae)
        p_ae = optax.apply_updates(p_ae, upd)
        return ((p_ae, p_d), (s_ae, s_d)), {"mae": mae, "adv": adv, "disc": ld}

    (params, opt_states), metrics = jax.lax.scan(step, (params, opt_states), idx)
    return eqx.combine(params, static), opt_states, jax.tree.map(jnp.mean, metrics)


def _epochs(desc, n_epochs, progress):
    if progress:
        from tqdm.auto import tqdm

        return tqdm(range(n_epochs), desc=desc, leave=False)
    return range(n_epochs)


def train_autoencoder(
    key: jax.Array,
    images: np.ndarray,
    arch: Architecture,
    *,
    epochs: int,
    batch_size: int,
    lr: float = 1e-3,
    adv_weight: float = 1.0,
    warmup_epochs: int = 0,
    warmup_loss: str = "mae",
    progress: bool = True,
) -> tuple[dict, list[dict]]:
    """Train the adversarial autoencoder of the paper (Section 7.3).

    Per minibatch: one RMSProp step of the image discriminator (cross-entropy,
    real images vs reconstructions), then one of the autoencoder on
    ``MAE(x, dec(enc(x))) + adv_weight * BCE(disc(dec(enc(x))), real)``, the
    paper's equally weighted sum for ``adv_weight = 1``.

    Args:
      key: PRNG key (initialisation, shuffling).
      images: ``[n, h, w, c]`` in ``[0, 1]``.
      arch: the networks.
      epochs, batch_size, lr: training schedule.
      adv_weight: weight of the adversarial term.
      warmup_epochs: epochs at the start with the adversarial term off (the
        image discriminator still trains), so that it starts against decent
        reconstructions.
      warmup_loss: reconstruction loss of the warm-up epochs, ``"mae"`` or
        ``"bce"`` (pixel-wise binary cross-entropy). On MNIST, MAE from the
        start drives every output pixel to 0 (the per-pixel median of sparse
        digits) and the sigmoid saturates there: the decoder outputs blank
        images for good (seen with the quick networks: test MAE 0.131, that of
        a blank image). A BCE warm-up avoids it.
      progress: show a tqdm bar over epochs.

    Returns:
      ``(models, history)``: Equinox models ``{"encoder", "decoder",
      "image_discriminator"}``, history one dict of mean losses per epoch.
    """
    k_e, k_d, k_a, k_loop = jax.random.split(key, 4)
    shape = arch.image_shape
    models = (
        (build(k_e, arch.encoder, shape), build(k_d, arch.decoder, (arch.code_dim,))),
        build(k_a, arch.image_discriminator, shape),
    )
    opt = _rmsprop(lr)
    opt_states = (
        opt.init(eqx.filter(models[0], eqx.is_array)),
        opt.init(eqx.filter(models[1], eqx.is_array)),
    )
    x = jnp.asarray(images, jnp.float32)
    history = []
    bar = _epochs("autoencoder", epochs, progress)
    for epoch, k in enumerate(jax.random.split(k_loop, epochs) if epochs else []):
        w = 0.0 if epoch < warmup_epochs else float(adv_weight)
        models, opt_states, m = _ae_epoch(
            models, opt_states, k, x, float(lr), int(batch_size), w, str(warmup_loss)
        )
        history.append({a: float(b) for a, b in m.items()})
        if progress:
            bar.update(1)
            bar.set_postfix(mae=f"{history[-1]['mae']:.4f}", adv=f"{history[-1]['adv']:.3f}")
    if progress:
        bar.close()
    (enc, dec), disc = models
    return {"encoder": enc, "decoder": dec, "image_discriminator": disc}, history


def _supervised_epoch_core(model, opt_state, key, x, y, lr, batch_size, loss):
    params, static = eqx.partition(model, eqx.is_array)
    opt = _rmsprop(lr)
    idx = _batches(key, x.shape[0], batch_size)

    def loss_fn(p, xb, yb):
        logits = _batched(eqx.combine(p, static))(xb)
        if loss == "softmax":
            ce = optax.softmax_cross_entropy_with_integer_labels(logits, yb)
            return jnp.mean(ce), jnp.mean(jnp.argmax(logits, -1) == yb)
        logits = logits[:, 0]
        return _bce_logits(logits, yb.astype(logits.dtype)), jnp.mean((logits > 0) == (yb > 0))

    def step(carry, batch_idx):
        p, s = carry
        (l, acc), g = jax.value_and_grad(loss_fn, has_aux=True)(p, x[batch_idx], y[batch_idx])
        upd, s = opt.update(g, s, p)
        return (optax.apply_updates(p, upd), s), {"loss": l, "accuracy": acc}

    (params, opt_state), metrics = jax.lax.scan(step, (params, opt_state), idx)
    return eqx.combine(params, static), opt_state, jax.tree.map(jnp.mean, metrics)


_supervised_epoch = eqx.filter_jit(_supervised_epoch_core)


def _train_supervised(key, x, y, spec, loss, epochs, batch_size, lr, progress, desc):
    k_init, k_loop = jax.random.split(key)
    model = build(k_init, spec, x.shape[1:])
    opt_state = _rmsprop(lr).init(eqx.filter(model, eqx.is_array))
    x, y = jnp.asarray(x, jnp.float32), jnp.asarray(y, jnp.int32)
    history = []
    bar = _epochs(desc, epochs, progress)
    for k in jax.random.split(k_loop, epochs) if epochs else []:
        model, opt_state, m = _supervised_epoch(model, opt_state, k, x, y, float(lr), int(batch_size), loss)
        history.append({a: float(b) for a, b in m.items()})
        if progress:
            bar.update(1)
            bar.set_postfix(loss=f"{history[-1]['loss']:.4f}")
    if progress:
        bar.close()
    return model, history


def train_classifier(
    key, images, labels, spec: Spec, *, epochs: int, batch_size: int, lr: float = 1e-3, progress: bool = True
):
    """Train an image classifier (softmax cross-entropy) on real labelled images.

    Returns:
      ``(model, history)``.
    """
    return _train_supervised(
        key, images, labels, spec, "softmax", epochs, batch_size, lr, progress, "classifier"
    )


def train_binary(
    key, x_real, x_fake, spec: Spec, *, epochs: int, batch_size: int, lr: float = 1e-3, progress: bool = True
):
    """Train a real (1) vs fake (0) discriminator with binary cross-entropy.

    Args:
      x_real: ``[n_real, ...]``; x_fake: ``[n_fake, ...]``.

    Returns:
      ``(model, history)``; the network outputs one logit, > 0 for "real".
    """
    x = np.concatenate([np.asarray(x_real), np.asarray(x_fake)])
    y = np.concatenate([np.ones(len(x_real), np.int32), np.zeros(len(x_fake), np.int32)])
    return _train_supervised(key, x, y, spec, "sigmoid", epochs, batch_size, lr, progress, "discriminator")


def train_binary_many(key, x_real, x_fakes, spec: Spec, *, epochs: int, batch_size: int, lr: float = 1e-3):
    """``train_binary`` for ``R`` discriminators at once, one per fake set: one jitted ``eqx.filter_vmap``.

    Every discriminator sees the same real points and its own fakes ``x_fakes[r]``;
    network ``r`` trains exactly as ``train_binary(jax.random.split(key, R)[r],
    x_real, x_fakes[r], ...)`` would (same initialisation, minibatches, RMSProp steps).

    Args:
      x_real: ``[n_real, ...]``; x_fakes: ``[R, n_fake, ...]``.

    Returns:
      ``(models, history)``: the models stacked along a leading ``[R]`` axis of
      every array leaf (apply them with :func:`apply_many`), history
      ``{"loss", "accuracy"}`` of shape ``[R, epochs]`` (per-epoch means).
    """
    x_fakes = jnp.asarray(x_fakes, jnp.float32)
    # Network r uses the keys train_binary(split(key, R)[r], ...) would.
    k_init, k_loop = jax.vmap(jax.random.split, out_axes=1)(jax.random.split(key, x_fakes.shape[0]))
    models = build_many(k_init, spec, x_fakes.shape[2:])
    return _train_binary_many(
        models, k_loop, jnp.asarray(x_real, jnp.float32), x_fakes, int(epochs), int(batch_size), float(lr)
    )


@eqx.filter_jit
def _train_binary_many(models, keys, x_real, x_fakes, epochs, batch_size, lr):
    y = jnp.concatenate([jnp.ones(x_real.shape[0], jnp.int32), jnp.zeros(x_fakes.shape[1], jnp.int32)])

    def one(model, key, x_fake):
        x = jnp.concatenate([x_real, x_fake])
        params, static = eqx.partition(model, eqx.is_array)

        def epoch(state, k):
            m, s, hist = _supervised_epoch_core(
                eqx.combine(state[0], static), state[1], k, x, y, lr, batch_size, "sigmoid"
            )
            return (eqx.filter(m, eqx.is_array), s), hist

        opt_state = _rmsprop(lr).init(params)
        (params, _), history = jax.lax.scan(epoch, (params, opt_state), jax.random.split(key, epochs))
        return eqx.combine(params, static), history

    return eqx.filter_vmap(one, in_axes=(eqx.if_array(0), 0, 0))(models, keys, x_fakes)


@eqx.filter_jit
def _apply_many(models, x, per_model):
    logits = lambda m, a: jax.vmap(m)(a)[:, 0]  # noqa: E731
    return eqx.filter_vmap(logits, in_axes=(eqx.if_array(0), 0 if per_model else None))(models, x)


def apply_many(models, x, *, per_model: bool = False) -> jax.Array:
    """Logits ``[R, n]`` of ``R`` stacked one-logit models (from :func:`train_binary_many`).

    Args:
      models: the models, stacked along a leading axis.
      x: ``[n, ...]``, shared by every model; with ``per_model``, ``[R, n, ...]``, one set each.
    """
    return _apply_many(models, jnp.asarray(x, jnp.float32), bool(per_model))


@eqx.filter_jit
def _apply_jit(model, x):
    return jax.vmap(model)(x)


def predict(model, x, batch_size: int = 1000, fn: Callable[[jax.Array], Any] | None = None) -> np.ndarray:
    """Apply a model to ``x[n, ...]`` in fixed-size chunks (one compilation), as NumPy.

    Args:
      fn: optional post-processing of each chunk's output (e.g. ``argmax``).
    """
    x = np.asarray(x, np.float32)
    n = x.shape[0]
    if n == 0:
        raise ValueError("x is empty")
    b = min(batch_size, n)
    outs = []
    for i in range(0, n, b):
        chunk = x[i : i + b]
        m = chunk.shape[0]
        if m < b:  # pad the last chunk: the same shape, no recompilation
            chunk = np.concatenate([chunk, np.zeros((b - m, *x.shape[1:]), np.float32)])
        out = _apply_jit(model, jnp.asarray(chunk))
        if fn is not None:
            out = fn(out)
        outs.append(np.asarray(out)[:m])
    return np.concatenate(outs)
