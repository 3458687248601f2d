"""Console scripts for operators."""
