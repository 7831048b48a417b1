"""Small helpers shared across espnet_lp."""
