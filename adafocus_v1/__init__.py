"""adafocus_v1."""
