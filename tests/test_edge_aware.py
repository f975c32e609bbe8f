"""The edge-aware step on the hint network's output (issue 21, item 3): a click's color stops at edges."""

import numpy as np
import pytest
import torch

from remaster.net.edge_aware import EdgeAware, box_filter, edge_aware_step, geodesic_distance, guided_filter
from remaster.net.hints import point_hints


def _step_edge(height=16, width=24, at=12):
    """Gray luma `(1, 1, H, W)`: dark left of column `at`, bright from it on."""
    luma = torch.full((1, 1, height, width), 0.2)
    luma[..., at:] = 0.8
    return luma


def test_box_filter_is_the_clipped_window_mean():
    image = torch.rand(1, 2, 7, 9)
    out = box_filter(image, 2)
    for y, x in ((0, 0), (3, 4), (6, 8), (2, 7)):
        window = image[..., max(0, y - 2) : y + 3, max(0, x - 2) : x + 3]
        assert torch.allclose(out[..., y, x], window.mean((-2, -1)), atol=1e-6)
    assert torch.equal(box_filter(image, 0), image)


def test_geodesic_distance_pays_for_crossing_an_edge():
    luma = _step_edge()
    seeds = torch.zeros_like(luma, dtype=torch.bool)
    seeds[0, 0, 8, 2] = True
    distance = geodesic_distance(luma, seeds, spatial=1.0, edge=40.0)
    assert distance[0, 0, 8, 2] == 0
    assert distance[0, 0, 8, 11] == pytest.approx(9.0)  # 9 steps on flat luma
    assert distance[0, 0, 8, 12] == pytest.approx(10.0 + 40.0 * 0.6, rel=1e-5)  # one step across the edge
    assert distance[0, 0, 0, 0] == pytest.approx(8.0 + 2.0)  # around corners: exact over a few rounds


def test_guided_filter_keeps_the_guides_edge():
    luma = _step_edge()
    source = luma.repeat(1, 2, 1, 1) * 2 - 0.4 + torch.randn(1, 2, 16, 24) * 0.01
    out = guided_filter(luma, source, radius=4, eps=1e-4)
    assert out[..., :, :12].mean() == pytest.approx(0.0, abs=0.02)
    assert out[..., :, 12:].mean() == pytest.approx(1.2, abs=0.02)
    assert (out[..., :, 11] - out[..., :, 12]).abs().min() > 1.0  # the step is still a step


def test_a_click_stops_at_the_step_edge():
    """The net spread the click's change over the whole picture; the step keeps it on the clicked side."""
    luma = _step_edge()
    automatic = torch.zeros(1, 2, 16, 24)
    steered = torch.tensor([0.3, -0.2]).reshape(1, 2, 1, 1).expand(1, 2, 16, 24).clone()
    hints = point_hints((16, 24), [(0.5, 0.1, 40.0, -30.0)], radius=1)
    out = edge_aware_step(luma, automatic, steered, hints)
    assert out.shape == steered.shape
    clicked, other = out[..., :, :11], out[..., :, 13:]
    kept = clicked.mean((-2, -1)) / torch.tensor([[0.3, -0.2]])
    assert (kept > 0.8).all() and (kept < 1.01).all(), kept
    assert other.abs().max() < 0.01


def test_no_hints_and_dense_hints_pass_unchanged():
    luma = _step_edge()
    automatic, steered = torch.zeros(1, 2, 16, 24), torch.full((1, 2, 16, 24), 0.25)
    nothing = torch.zeros(1, 3, 16, 24)
    assert torch.equal(edge_aware_step(luma, automatic, steered, nothing), steered)
    dense = torch.ones(1, 3, 16, 24)
    out = edge_aware_step(luma, automatic, steered, dense)
    assert torch.allclose(out, steered, atol=1e-4)
    plain = EdgeAware(reach=0, radius=0)
    assert torch.allclose(edge_aware_step(luma, automatic, steered, dense, plain), steered)


def test_astronauts_face_stays_skin_when_her_suit_is_clicked_orange():
    """`remaster demo`'s astronaut, the shipped hint model, six orange clicks on the suit."""
    skimage = pytest.importorskip("skimage")
    import cv2

    from remaster.media.stills import photo_from_array
    from remaster.net.colorizer import Colorizer
    from remaster.net.hints import parse_color
    from remaster.run.photos import colorize_photo

    colorizer = Colorizer.load(device="cpu", hints=True)
    photo = photo_from_array(skimage.data.astronaut())
    a, b = parse_color("#e8602c")
    suit = [(80, 300), (60, 420), (150, 440), (330, 320), (110, 360), (200, 480)]
    points = [(x, y, a, b) for x, y in suit]
    with torch.no_grad():
        automatic = colorize_photo(photo, colorizer)
        steered = colorize_photo(photo, colorizer, points, edges=EdgeAware())
        as_the_net_gives = colorize_photo(photo, colorizer, points)

    def chroma(rgb, rows, cols):
        lab = cv2.cvtColor(rgb[rows, cols].astype(np.float32) / 255.0, cv2.COLOR_RGB2LAB)
        return lab[..., 1:].reshape(-1, 2).mean(0)

    face = (slice(90, 170), slice(185, 260))
    suit_auto, suit_steered = (chroma(rgb, slice(400, 470), slice(50, 130)) for rgb in (automatic, steered))
    assert np.linalg.norm(suit_steered - (a, b)) < np.linalg.norm(suit_auto - (a, b)) - 10  # the suit turns orange
    face_auto, face_steered = chroma(automatic, *face), chroma(steered, *face)
    assert np.linalg.norm(face_steered - face_auto) < 3.0, (face_auto, face_steered)
    assert np.linalg.norm(chroma(as_the_net_gives, *face) - face_auto) > 6.0  # without the step the face goes orange
