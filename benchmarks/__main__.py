"""Run every benchmark: `.venv/bin/python -m benchmarks` (or `make bench`).

Stage 5 and the model rows of `benchmarks.predict` need a trained data root
($FVC_DATA_DIR, as `make demo` leaves it); without one they say so and skip.
"""

from benchmarks import frame_batches, predict, sampling, stages12, stages34, training

if __name__ == "__main__":
    sampling.main()
    print()
    stages12.main()
    print()
    stages34.main()
    print()
    predict.main([])
    print()
    training.main()
    print()
    frame_batches.main([])
