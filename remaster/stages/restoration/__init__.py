"""Opt-in restoration of the luma: the stage (deflicker, dust, denoise) and the filters it is made of."""
