"""Run every benchmark: `.venv/bin/python -m benchmarks` (or `make bench`)."""

from benchmarks import sampling, stages12, stages34, training

if __name__ == "__main__":
    sampling.main()
    print()
    stages12.main()
    print()
    stages34.main()
    print()
    training.main()
