"""The colorization network: its architecture, the Colorizer that runs it, hints, training and its data."""
