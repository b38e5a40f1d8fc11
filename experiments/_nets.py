"""Small neural networks in plain JAX + optax for the embedding experiment.

No flax/haiku/torch: a network is a *spec*, a hashable tuple of layer tuples
(static under ``jit``), and its parameters are a list of per-layer dicts (a
pytree). Layers, channels last (``NHWC`` images, ``HWIO`` kernels):

* ``("conv", c_out, padding)``: 3x3 convolution, stride 1, ``"SAME"``/``"VALID"``;
* ``("dense", n_out)``; ``("lrelu",)`` (Keras' default slope 0.3);
* ``("maxpool",)`` / ``("avgpool",)``: 2x2, stride 2, ``"SAME"`` padding (so
  7x7 pools to 4x4 as in the paper's tables; the average counts only pixels
  inside the image, as Keras does);
* ``("up",)``: 2x nearest-neighbour upsampling; ``("flatten",)``;
  ``("reshape", (h, w, c))``; ``("sigmoid",)``.

Architectures (:class:`Architecture`) follow the paper's supplementary tables
(Section 7.3, Figures 7-8): :func:`mnist_architecture` is the MNIST autoencoder
layer for layer, :func:`pyramid_architecture` with channels ``(16, 32, 64, 64)``
at 64x64 is the CelebA one, and :func:`digits_architecture` scales the MNIST
design down to 8x8 images. Weights start as Keras' defaults (Glorot-uniform
kernels, zero biases); every model trains with ``optax.rmsprop``, as the paper.

Training functions run one jitted ``lax.scan`` per epoch over shuffled
minibatches (the last incomplete batch is dropped) and take the data as
arguments, never as closures.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

__all__ = [
    "Architecture",
    "init_net",
    "apply_net",
    "digits_architecture",
    "mnist_architecture",
    "pyramid_architecture",
    "mlp_spec",
    "train_autoencoder",
    "train_classifier",
    "train_binary",
    "train_binary_many",
    "predict",
    "count_params",
    "output_shape",
    "param_shapes",
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


def _glorot(rng, shape, fan_in, fan_out, dtype):
    limit = math.sqrt(6.0 / (fan_in + fan_out))
    return jnp.asarray(rng.uniform(-limit, limit, shape), dtype)


def init_net(key: jax.Array, spec: Spec, in_shape: Sequence[int], dtype=jnp.float32) -> list[dict]:
    """Initial parameters of ``spec`` for inputs of shape ``in_shape`` (no batch axis).

    The numbers come from a NumPy generator seeded by ``key``'s bits: a
    per-layer ``jax.random`` call would compile once per new layer shape, which
    cost tens of seconds per run on CPU for these small networks.

    Returns:
      A list with one dict per layer (empty for layers without parameters).
    """
    rng = np.random.default_rng(np.asarray(jax.random.key_data(key)).ravel().astype(np.uint32))
    shape = tuple(int(v) for v in in_shape)
    params = []
    for layer in spec:
        kind = layer[0]
        if kind == "conv":
            c_in, c_out = shape[-1], layer[1]
            w = _glorot(rng, (3, 3, c_in, c_out), 9 * c_in, 9 * c_out, dtype)
            params.append({"w": w, "b": jnp.zeros((c_out,), dtype)})
            h, wd = shape[:2]
            shape = (h, wd, c_out) if layer[2] == "SAME" else (h - 2, wd - 2, c_out)
        elif kind == "dense":
            if len(shape) != 1:
                raise ValueError(f"dense layer needs a flat input, got shape {shape}")
            params.append(
                {
                    "w": _glorot(rng, (shape[0], layer[1]), shape[0], layer[1], dtype),
                    "b": jnp.zeros((layer[1],), dtype),
                }
            )
            shape = (layer[1],)
        else:
            params.append({})
            if kind in ("maxpool", "avgpool"):
                shape = (-(-shape[0] // 2), -(-shape[1] // 2), shape[2])
            elif kind == "up":
                shape = (2 * shape[0], 2 * shape[1], shape[2])
            elif kind == "flatten":
                shape = (int(np.prod(shape)),)
            elif kind == "reshape":
                if int(np.prod(layer[1])) != int(np.prod(shape)):
                    raise ValueError(f"cannot reshape {shape} to {layer[1]}")
                shape = tuple(layer[1])
            elif kind not in ("lrelu", "sigmoid"):
                raise ValueError(f"unknown layer {layer!r}")
    return params


def output_shape(spec: Spec, in_shape: Sequence[int]) -> tuple:
    """Shape of the output of ``spec`` for one input of shape ``in_shape`` (nothing is computed)."""
    params = param_shapes(spec, in_shape)
    out = jax.eval_shape(
        lambda p, x: apply_net(p, spec, x), params, jax.ShapeDtypeStruct((1, *in_shape), jnp.float32)
    )
    return tuple(out.shape[1:])


def param_shapes(spec: Spec, in_shape: Sequence[int]):
    """The parameter pytree of ``spec`` as ``ShapeDtypeStruct`` leaves."""
    return jax.tree.map(
        lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype), init_net(jax.random.key(0), spec, in_shape)
    )


def _pool(x, kind):
    window, strides = (1, 2, 2, 1), (1, 2, 2, 1)
    if kind == "maxpool":
        return jax.lax.reduce_window(x, -jnp.inf, jax.lax.max, window, strides, "SAME")
    total = jax.lax.reduce_window(x, 0.0, jax.lax.add, window, strides, "SAME")
    ones = jnp.ones((1, *x.shape[1:3], 1), x.dtype)
    count = jax.lax.reduce_window(ones, 0.0, jax.lax.add, window, strides, "SAME")
    return total / count


def apply_net(params: list[dict], spec: Spec, x: jax.Array) -> jax.Array:
    """Apply ``spec`` to a batch ``x[b, ...]``."""
    for p, layer in zip(params, spec, strict=True):
        kind = layer[0]
        if kind == "conv":
            x = (
                jax.lax.conv_general_dilated(
                    x, p["w"], (1, 1), layer[2], dimension_numbers=("NHWC", "HWIO", "NHWC")
                )
                + p["b"]
            )
        elif kind == "dense":
            x = x @ p["w"] + p["b"]
        elif kind == "lrelu":
            x = jax.nn.leaky_relu(x, LEAKY_SLOPE)
        elif kind in ("maxpool", "avgpool"):
            x = _pool(x, kind)
        elif kind == "up":
            x = jnp.repeat(jnp.repeat(x, 2, axis=1), 2, axis=2)
        elif kind == "flatten":
            x = x.reshape(x.shape[0], -1)
        elif kind == "reshape":
            x = x.reshape(x.shape[0], *layer[1])
        elif kind == "sigmoid":
            x = jax.nn.sigmoid(x)
        else:
            raise ValueError(f"unknown layer {layer!r}")
    return x


def count_params(params) -> int:
    return int(sum(np.prod(a.shape) for a in jax.tree.leaves(params)))


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


def mnist_architecture(code_dim: int = 128, n_classes: int = 10, disc_widths=(256, 512, 256)) -> Architecture:
    """The paper's MNIST networks (Figure 7), layer for layer.

    The encoder uses average pooling and the image discriminator max pooling,
    as in the tables. The classifier for purity is not specified in the paper:
    the image discriminator's design with ``n_classes`` outputs is used.
    """
    encoder = _conv_stack((8, 16, 32), "avgpool", code_dim)
    decoder = (
        ("dense", 512),
        ("reshape", (4, 4, 32)),
        *_conv_pair(32),
        ("up",),
        *_conv_pair(32),
        ("up",),
        *_conv_pair(16, "VALID"),
        ("up",),  # 16x16 -> 14x14 -> 28x28
        ("conv", 1, "SAME"),
        ("sigmoid",),
    )
    image_disc = _conv_stack((8, 16, 32), "maxpool", 1)
    classifier = _conv_stack((8, 16, 32), "maxpool", n_classes)
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


@functools.partial(jax.jit, static_argnames=("arch", "lr", "batch_size", "adv_weight"))
def _ae_epoch(state, key, x, *, arch, lr, batch_size, adv_weight):
    (enc, dec, disc), (opt_ae_state, opt_d_state) = state
    opt_ae, opt_d = _rmsprop(lr), _rmsprop(lr)
    k_perm, k_steps = jax.random.split(key)
    idx = _batches(k_perm, x.shape[0], batch_size)

    def step(carry, batch_idx):
        (enc, dec, disc), (s_ae, s_d) = carry
        xb = x[batch_idx]
        # One forward pass of the autoencoder serves both updates: its output is
        # the discriminator's fake batch, and its pullback carries the
        # autoencoder's gradient.
        recon, pullback = jax.vjp(
            lambda ae: apply_net(ae[1], arch.decoder, apply_net(ae[0], arch.encoder, xb)), (enc, dec)
        )
        fake = jax.lax.stop_gradient(recon)

        def d_loss(dp):
            return _bce_logits(apply_net(dp, arch.image_discriminator, xb), 1.0) + _bce_logits(
                apply_net(dp, arch.image_discriminator, fake), 0.0
            )

        ld, gd = jax.value_and_grad(d_loss)(disc)
        upd, s_d = opt_d.update(gd, s_d, disc)
        disc = optax.apply_updates(disc, upd)

        def recon_loss(r):
            mae = jnp.mean(jnp.abs(r - xb))
            adv = _bce_logits(apply_net(disc, arch.image_discriminator, r), 1.0)
            return mae + adv_weight * adv, (mae, adv)

        if adv_weight:
            (_, (mae, adv)), g_r = jax.value_and_grad(recon_loss, has_aux=True)(recon)
        else:  # warm-up: the adversarial term is only reported
            mae, g_r = jax.value_and_grad(lambda r: jnp.mean(jnp.abs(r - xb)))(recon)
            adv = _bce_logits(apply_net(disc, arch.image_discriminator, fake), 1.0)
        (g,) = pullback(g_r)
        upd, s_ae = opt_ae.update(g, s_ae, (enc, dec))
        enc, dec = optax.apply_updates((enc, dec), upd)
        return ((enc, dec, disc), (s_ae, s_d)), {"mae": mae, "adv": adv, "disc": ld}

    state, metrics = jax.lax.scan(step, ((enc, dec, disc), (opt_ae_state, opt_d_state)), idx)
    return state, jax.tree.map(jnp.mean, metrics)


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
      progress: show a tqdm bar over epochs.

    Returns:
      ``(params, history)``: params ``{"encoder", "decoder",
      "image_discriminator"}``, history one dict of mean losses per epoch.
    """
    k_e, k_d, k_a, k_loop = jax.random.split(key, 4)
    shape = arch.image_shape
    nets = (
        init_net(k_e, arch.encoder, shape),
        init_net(k_d, arch.decoder, (arch.code_dim,)),
        init_net(k_a, arch.image_discriminator, shape),
    )
    state = (nets, (_rmsprop(lr).init(nets[:2]), _rmsprop(lr).init(nets[2])))
    x = jnp.asarray(images, jnp.float32)
    history = []
    bar = _epochs("autoencoder", epochs, progress)
    for epoch, k in enumerate(jax.random.split(k_loop, epochs) if epochs else []):
        w = 0.0 if epoch < warmup_epochs else float(adv_weight)
        state, m = _ae_epoch(state, k, x, arch=arch, lr=float(lr), batch_size=int(batch_size), adv_weight=w)
        history.append({a: float(b) for a, b in m.items()})
        if progress:
            bar.update(1)
            bar.set_postfix(mae=f"{history[-1]['mae']:.4f}", adv=f"{history[-1]['adv']:.3f}")
    if progress:
        bar.close()
    enc, dec, disc = state[0]
    return {"encoder": enc, "decoder": dec, "image_discriminator": disc}, history


@functools.partial(jax.jit, static_argnames=("spec", "lr", "batch_size", "loss"))
def _supervised_epoch(state, key, x, y, *, spec, lr, batch_size, loss):
    params, opt_state = state
    opt = _rmsprop(lr)
    idx = _batches(key, x.shape[0], batch_size)

    def loss_fn(p, xb, yb):
        logits = apply_net(p, spec, xb)
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

    state, metrics = jax.lax.scan(step, (params, opt_state), idx)
    return state, jax.tree.map(jnp.mean, metrics)


def _train_supervised(key, x, y, spec, in_shape, loss, epochs, batch_size, lr, progress, desc):
    k_init, k_loop = jax.random.split(key)
    params = init_net(k_init, spec, in_shape)
    state = (params, _rmsprop(lr).init(params))
    x, y = jnp.asarray(x, jnp.float32), jnp.asarray(y, jnp.int32)
    history = []
    bar = _epochs(desc, epochs, progress)
    for k in jax.random.split(k_loop, epochs) if epochs else []:
        state, m = _supervised_epoch(
            state, k, x, y, spec=spec, lr=float(lr), batch_size=int(batch_size), loss=loss
        )
        history.append({a: float(b) for a, b in m.items()})
        if progress:
            bar.update(1)
            bar.set_postfix(loss=f"{history[-1]['loss']:.4f}")
    if progress:
        bar.close()
    return state[0], history


def train_classifier(
    key, images, labels, spec: Spec, *, epochs: int, batch_size: int, lr: float = 1e-3, progress: bool = True
):
    """Train an image classifier (softmax cross-entropy) on real labelled images.

    Returns:
      ``(params, history)``.
    """
    return _train_supervised(
        key, images, labels, spec, images.shape[1:], "softmax", epochs, batch_size, lr, progress, "classifier"
    )


def train_binary(
    key, x_real, x_fake, spec: Spec, *, epochs: int, batch_size: int, lr: float = 1e-3, progress: bool = True
):
    """Train a real (1) vs fake (0) discriminator with binary cross-entropy.

    Args:
      x_real: ``[n_real, ...]``; x_fake: ``[n_fake, ...]``.

    Returns:
      ``(params, history)``; the network outputs one logit, > 0 for "real".
    """
    x = np.concatenate([np.asarray(x_real), np.asarray(x_fake)])
    y = np.concatenate([np.ones(len(x_real), np.int32), np.zeros(len(x_fake), np.int32)])
    return _train_supervised(
        key, x, y, spec, x.shape[1:], "sigmoid", epochs, batch_size, lr, progress, "discriminator"
    )


def train_binary_many(key, x_real, x_fakes, spec: Spec, *, epochs: int, batch_size: int, lr: float = 1e-3):
    """``train_binary`` for ``R`` discriminators at once, one per fake set, as one jitted vmap.

    Every discriminator sees the same real points and its own fakes ``x_fakes[r]``;
    network ``r`` trains exactly as ``train_binary(jax.random.split(key, R)[r],
    x_real, x_fakes[r], ...)`` would (same initialisation, minibatches, RMSProp steps).

    Args:
      x_real: ``[n_real, ...]``; x_fakes: ``[R, n_fake, ...]``.

    Returns:
      ``(params, history)``: params stacked along a leading ``[R]`` axis, history
      ``{"loss", "accuracy"}`` of shape ``[R, epochs]`` (per-epoch means).
    """
    x_fakes = jnp.asarray(x_fakes, jnp.float32)
    # Network r uses the keys train_binary(split(key, R)[r], ...) would.
    k_init, k_loop = jax.vmap(jax.random.split, out_axes=1)(jax.random.split(key, x_fakes.shape[0]))
    inits = [init_net(k, spec, x_fakes.shape[2:]) for k in k_init]
    params = jax.tree.map(lambda *a: jnp.stack(a), *inits)
    return _train_binary_many(
        params,
        k_loop,
        jnp.asarray(x_real, jnp.float32),
        x_fakes,
        spec=spec,
        epochs=int(epochs),
        batch_size=int(batch_size),
        lr=float(lr),
    )


@functools.partial(jax.jit, static_argnames=("spec", "epochs", "batch_size", "lr"))
def _train_binary_many(params, keys, x_real, x_fakes, *, spec, epochs, batch_size, lr):
    y = jnp.concatenate([jnp.ones(x_real.shape[0], jnp.int32), jnp.zeros(x_fakes.shape[1], jnp.int32)])

    def one(p, key, x_fake):
        x = jnp.concatenate([x_real, x_fake])

        def epoch(state, k):
            return _supervised_epoch(state, k, x, y, spec=spec, lr=lr, batch_size=batch_size, loss="sigmoid")

        (p, _), history = jax.lax.scan(epoch, (p, _rmsprop(lr).init(p)), jax.random.split(key, epochs))
        return p, history

    return jax.vmap(one)(params, keys, x_fakes)


@functools.partial(jax.jit, static_argnames=("spec",))
def _apply_jit(params, x, spec):
    return apply_net(params, spec, x)


def predict(
    params, spec: Spec, x, batch_size: int = 1000, fn: Callable[[jax.Array], Any] | None = None
) -> np.ndarray:
    """Apply a network to ``x[n, ...]`` in fixed-size chunks (one compilation), as NumPy.

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
        out = _apply_jit(params, jnp.asarray(chunk), spec)
        if fn is not None:
            out = fn(out)
        outs.append(np.asarray(out)[:m])
    return np.concatenate(outs)
