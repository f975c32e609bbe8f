"""The frame chain: its protocol, shots, optical flow, the temporal stage, restoration and the colorist's keyframes."""
