"""adafocus_v2."""
