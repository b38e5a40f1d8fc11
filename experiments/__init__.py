"""The paper's experiments and the package's benchmarks, run from the repository root as modules.

    python -m experiments.ring_square_line      # Figure 3 (the README's main job)
    python -m experiments.energy_landscape      # Figure 1
    python -m experiments.embedding_gmm         # Section 4.2, the embedding study
    python -m experiments.benchmark             # speed against POT and scikit-learn
    python -m experiments.benchmark_scaling     # step time against N, d, K, L
    python -m experiments.large_data            # streamed fits from a memmap
    python -m experiments.launch_multihost      # multi-process fits
    python -m experiments.run_all               # the README's experiments, then the report
    python -m experiments.report                # the README's results section from results/*.json

Each takes ``--help``; ``_common`` holds what they share (scales, paths, metadata, atomic writes).
"""
