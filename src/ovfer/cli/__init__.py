"""Command-line interface (thin over the Python API)."""
