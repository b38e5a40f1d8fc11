"""Multi-process start-up: one call before any other JAX call in each process."""

from __future__ import annotations

import os

import jax

__all__ = ["initialize_distributed"]


def initialize_distributed(
    coordinator_address: str | None = None,
    num_processes: int | None = None,
    process_id: int | None = None,
    *,
    local_device_count: int | None = None,
    cpu_collectives: str | None = "gloo",
    initialization_timeout: int = 300,
) -> None:
    """Join a multi-process run: ``jax.distributed.initialize`` from arguments or env vars.

    Missing arguments are read from ``SWGMM_COORDINATOR`` (``host:port``),
    ``SWGMM_NUM_PROCESSES`` and ``SWGMM_PROCESS_ID``; when those are unset too,
    JAX's own cluster detection runs (SLURM, Open MPI, cloud TPU, ...). Call it
    once per process, before any other JAX call; afterwards ``jax.devices()``
    lists every process's devices and :func:`make_projection_mesh` (hence
    ``fit(..., mesh="auto")``) spans all of them.

    Args:
      coordinator_address: ``host:port`` of process 0's coordinator service.
      num_processes: number of processes.
      process_id: this process's id in ``[0, num_processes)``.
      local_device_count: on the CPU backend, the number of CPU devices this
        process exposes (``jax_num_cpu_devices``); ignored if ``None``.
      cpu_collectives: CPU collectives implementation (``"gloo"``; ``"mpi"``
        needs an MPI library); ``None`` leaves JAX's setting alone.
      initialization_timeout: seconds to wait for all processes to connect.

    Examples:
      First thing in each process of a job on two hosts of 4 GPUs each
      (``process_id=1`` on the other host). Not run as a doctest: the call
      blocks until every process has joined, and it must precede any other
      JAX call. ``experiments/launch_multihost.py`` is a complete launcher.

      >>> import swgmm_jax as sw
      >>> sw.initialize_distributed("10.0.0.1:12345", 2, process_id=0)  # doctest: +SKIP
      >>> import jax
      >>> jax.process_count(), jax.device_count()  # doctest: +SKIP
      (2, 8)

      Or set ``SWGMM_COORDINATOR``, ``SWGMM_NUM_PROCESSES`` and ``SWGMM_PROCESS_ID``
      in each process's environment and call ``sw.initialize_distributed()``.
    """
    env = os.environ
    if coordinator_address is None:
        coordinator_address = env.get("SWGMM_COORDINATOR")
    if num_processes is None and "SWGMM_NUM_PROCESSES" in env:
        num_processes = int(env["SWGMM_NUM_PROCESSES"])
    if process_id is None and "SWGMM_PROCESS_ID" in env:
        process_id = int(env["SWGMM_PROCESS_ID"])
    if local_device_count is not None:
        jax.config.update("jax_num_cpu_devices", int(local_device_count))
    if cpu_collectives is not None:
        jax.config.update("jax_cpu_collectives_implementation", cpu_collectives)
    jax.distributed.initialize(
        coordinator_address=coordinator_address,
        num_processes=num_processes,
        process_id=process_id,
        initialization_timeout=initialization_timeout,
    )
