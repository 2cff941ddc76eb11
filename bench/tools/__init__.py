"""Commands built on the library: the CI gate and its baselines, tuning, timing (training steps, throughput,
paper-schedule projection), checkpoint evaluation, cluster fan-out and the GPU self-check."""
