"""On-site inspections (现场监督) and the yearly programme with a reproducible sample."""
