"""How many frames a clip's features are computed over."""


def frames_to_sample(total_frames: int, fraction: float, min_frames: int, max_frames: int,
                     fixed: int | None = None) -> int:
    """Frames to sample from a clip: a fraction clamped to [min, max], or a fixed count; never more than exist."""
    wanted = fixed if fixed is not None else int(round(total_frames * fraction))
    wanted = max(min_frames, min(max_frames, wanted)) if fixed is None else wanted
    return max(1, min(wanted, total_frames)) if total_frames > 0 else max(1, wanted)
