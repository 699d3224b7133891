"""Run every benchmark: `.venv/bin/python -m benchmarks` (or `make bench`)."""

from benchmarks import sampling

if __name__ == "__main__":
    sampling.main()
