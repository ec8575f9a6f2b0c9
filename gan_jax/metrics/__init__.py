"""Evaluation metrics: Frechet distances, Inception Score, KID, precision/recall, mode coverage."""
