"""A colorist's keyframes inside the chain: the carry along motion, its windows, and the hint network's steering."""
