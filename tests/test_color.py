"""Color math: round trips, agreement with OpenCV, gamut fitting that keeps luma."""

import cv2
import numpy as np
import pytest
import torch

from remaster import color
from remaster.errors import ConfigError


@pytest.fixture
def rgb():
    return torch.rand(2, 3, 13, 17, generator=torch.Generator().manual_seed(0))


@pytest.mark.parametrize("matrix", ["bt601", "bt709"])
def test_luma_chroma_round_trip(rgb, matrix):
    back = color.luma_chroma_to_rgb(color.rgb_to_luma(rgb, matrix), color.rgb_to_chroma(rgb, matrix), matrix)
    assert torch.allclose(back, rgb, atol=1e-5)


@pytest.mark.parametrize("matrix", ["bt601", "bt709"])
@pytest.mark.parametrize("full_range", [True, False])
def test_ycbcr_code_values_round_trip(rgb, matrix, full_range):
    """Y'CbCr code values are luma and chroma offsets, shifted (and scaled to the TV range when limited)."""
    luma, cbcr = color.rgb_to_ycbcr(rgb, matrix, full_range).split((1, 2), dim=-3)
    if full_range:
        chroma = cbcr - 0.5
    else:
        luma, chroma = (luma - 16.0 / 255) * (255.0 / 219), (cbcr - 128.0 / 255) * (255.0 / 224)
    assert torch.allclose(color.luma_chroma_to_rgb(luma, chroma, matrix), rgb, atol=1e-5)


def test_limited_range_levels():
    white_black = torch.tensor([1.0, 0.0]).reshape(2, 1, 1, 1).expand(2, 3, 1, 1)
    ycbcr = color.rgb_to_ycbcr(white_black, "bt709", full_range=False) * 255
    assert ycbcr[0, 0].item() == pytest.approx(235, abs=1e-3)
    assert ycbcr[1, 0].item() == pytest.approx(16, abs=1e-3)
    assert ycbcr[:, 1:].flatten().tolist() == pytest.approx([128.0] * 4, abs=1e-3)


def test_bt601_full_range_matches_opencv(rgb):
    image = rgb[0].permute(1, 2, 0).numpy().copy()
    ycrcb = cv2.cvtColor(image, cv2.COLOR_RGB2YCrCb)
    ours = color.rgb_to_ycbcr(rgb[0], "bt601").permute(1, 2, 0).numpy()
    np.testing.assert_allclose(ours[..., 0], ycrcb[..., 0], atol=1e-5)
    # OpenCV rounds the Cb/Cr coefficients to 3 digits (0.564, 0.713).
    np.testing.assert_allclose(ours[..., 1], ycrcb[..., 2], atol=1e-3)
    np.testing.assert_allclose(ours[..., 2], ycrcb[..., 1], atol=1e-3)


def test_lab_matches_opencv_and_round_trips(rgb):
    image = rgb[0].permute(1, 2, 0).numpy().copy()
    lab_cv = cv2.cvtColor(image, cv2.COLOR_RGB2Lab)
    lab = color.rgb_to_lab(rgb)
    np.testing.assert_allclose(lab[0].permute(1, 2, 0).numpy(), lab_cv, atol=0.5)
    assert torch.allclose(color.lab_to_rgb(lab), rgb, atol=1e-4)


def test_lab_of_white_and_gray():
    white = torch.ones(3, 1, 1)
    assert color.rgb_to_lab(white).flatten().tolist() == pytest.approx([100.0, 0.0, 0.0], abs=1e-2)
    gray = torch.full((1, 1, 4, 4), 0.5)
    assert torch.allclose(color.luma_to_lightness(gray), color.rgb_to_lab(gray.expand(1, 3, 4, 4))[:, :1], atol=1e-4)


@pytest.mark.parametrize("matrix", ["bt601", "bt709"])
def test_fit_chroma_to_gamut_keeps_luma_and_range(matrix):
    generator = torch.Generator().manual_seed(1)
    luma = torch.rand(1, 1, 32, 32, generator=generator)
    chroma = torch.rand(1, 2, 32, 32, generator=generator) - 0.5
    fitted = color.fit_chroma_to_gamut(luma, chroma, matrix)
    rgb = color.luma_chroma_to_rgb(luma, fitted, matrix)
    assert rgb.min() >= -1e-5 and rgb.max() <= 1 + 1e-5
    assert torch.allclose(color.rgb_to_luma(rgb, matrix), luma, atol=1e-5)
    # In-gamut chroma is left alone; the direction (hue) never changes.
    inside = color.rgb_to_chroma(torch.rand(1, 3, 8, 8, generator=generator), matrix)
    inside_luma = color.rgb_to_luma(color.luma_chroma_to_rgb(torch.full((1, 1, 8, 8), 0.5), inside, matrix), matrix)
    assert torch.allclose(color.fit_chroma_to_gamut(inside_luma, inside * 0.1, matrix), inside * 0.1, atol=1e-6)
    cross = fitted[:, 0] * chroma[:, 1] - fitted[:, 1] * chroma[:, 0]
    assert cross.abs().max() < 1e-5


def test_unknown_matrix_is_a_clear_error(rgb):
    with pytest.raises(ConfigError, match="unknown color matrix 'bt2020'"):
        color.rgb_to_luma(rgb, "bt2020")


def test_batched_and_device_agnostic_shapes():
    rgb = torch.rand(3, 5, 7)
    assert color.rgb_to_lab(rgb).shape == (3, 5, 7)
    assert color.rgb_to_chroma(torch.rand(4, 3, 5, 7)).shape == (4, 2, 5, 7)
