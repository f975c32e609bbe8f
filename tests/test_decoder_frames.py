"""Frames come from the decoder, not from packets (issue 8): pictures whose labels run backwards
in the decoder's output (AVI's packed B-frames come out labelled 1, 2, 4, 3, ...) take the same
labels in increasing order, never called damage. Real files of this kind: tests/test_real_corpus.py.
"""

from __future__ import annotations

from fractions import Fraction
from types import SimpleNamespace

from remaster.media.recover import Clock


def relabel(labels, depth=4):
    clock = Clock(Fraction(25), Fraction(1, 25), depth=depth)
    out = []
    for label in labels:
        out += [f.pts for f in clock.push(SimpleNamespace(pts=label))]
    return out + [f.pts for f in clock.flush()], clock.retimed


def test_pictures_labelled_out_of_order_take_the_labels_in_order():
    # Packed B-frames in AVI: pictures in display order, labelled 1, 2, 4, 3, 5, 7, 6, ...
    labels, retimed = relabel([0, 1, 2, 4, 3, 5, 7, 6, 8, 10, 9, 11])
    assert labels == list(range(12)) and retimed == 0


def test_good_timestamps_are_untouched():
    vfr = [0, 1001, 2002, 5005, 6006, 6106, 9009]  # variable rate, a jump: kept as they are
    assert relabel(vfr) == (vfr, 0)
    # Repeats or no usable order at all: the next tick after the last, counted.
    labels, retimed = relabel([0, 0, 0, 3])
    assert labels == [0, 1, 2, 3] and retimed == 2
