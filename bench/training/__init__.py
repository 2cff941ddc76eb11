"""The engine every stage of every method runs on: the driver (loop, update, checkpoints, resume), numeric
precision, processes and devices, timing, evaluation and its metrics, optimiser pieces, shared losses."""
