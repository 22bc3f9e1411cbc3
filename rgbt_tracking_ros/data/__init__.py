"""Sequences and their files, for training and evaluation alike: benchmark dataset readers
(`datasets`), tracker result files (`results`), sequences cut to start at several frames
(`segments`), synthetic RGB-T sequences (`synthetic`), and
sequences built from real imagery fetched by package name (`real`, `packages`)."""
