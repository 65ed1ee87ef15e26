"""Downstream tasks on embeddings: classification, retrieval, architecture mixing, baselines, report."""
