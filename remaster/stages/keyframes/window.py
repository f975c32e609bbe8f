"""Window arithmetic of the keyframe carry: which frames a keyframe reaches, and which backward
passes a segment needs. Plain integers, so the plan can size its segments without the carry's tensors.
"""

from __future__ import annotations


def backward_windows(anchors, reach: int, end: int | None = None) -> list[tuple[int, int]]:
    """`(s, k)` for each keyframe k: frames s..k-1 get k's backward carry. A window reaches
    `reach - 1` frames back, or to the keyframe before it, and depends on the keyframes alone,
    so every execution of a plan computes the same carry for a frame."""
    windows, before = [], -1
    for k in sorted(set(anchors)):
        if end is None or k < end:
            s = max(k - reach + 1, before + 1, 0)
            if s < k:
                windows.append((s, k))
        before = k
    return windows


def carry_range(windows, first: int, stop: int) -> tuple[int, int] | None:
    """Frames `(a, b)` to decode, a..b inclusive, for the backward carries that reach frames
    first..stop-1 (b may lie past `stop`: tail frames, read but not written); None: none reach."""
    reaching = [(s, k) for s, k in windows if s < stop and k > first]
    return (reaching[0][0], reaching[-1][1]) if reaching else None
