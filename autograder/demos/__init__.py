"""Machinery that demonstrations and hidden tests share, one module per topic."""
