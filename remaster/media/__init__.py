"""Files in and out: decoding (PyAV), recovery of damaged input, frame formats, encoding, sound, joining segments,
still images."""
